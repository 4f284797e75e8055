/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * preload.c -- libvems_preload.so: unmodified programs keep their files in
 * a vems pool.
 *
 *   LD_PRELOAD=libvems_preload.so VEMS_POOL=pool.pmem VEMS_PREFIX=/vems prog
 *
 * serves every path under VEMS_PREFIX from the pool and passes every other
 * path, and every fd that is not a vems file, to the real libc untouched.
 *
 * Names. A file is an object named by its path below the prefix ("a/b"),
 * created with its name in one crash-atomic step (vems_obj_create_named). A
 * directory is an empty marker object named with a trailing slash ("a/");
 * the prefix itself is the root and has no marker. A file or directory can
 * be created only in an existing directory, so every name's parents exist.
 *
 * Descriptors. Every vems fd is a real kernel fd on a memfd of one page
 * named "vems-ofd", mapped shared, that holds the open file description:
 * the object's ID, the status flags and the offset. So fd numbers come from
 * the kernel and never clash with the program's own, poll() and select() on
 * them do not crash, FD_CLOEXEC is the kernel's, and dup, fork and exec
 * share the description (its offset) as they share any: the kernel shares
 * the memfd, a new program finds its inherited vems fds by that name. What
 * is per process is the object handle, reopened by ID when a process first
 * uses an fd it inherited.
 *
 * Pool ownership. One process owns a pool at a time (libvems's rule). The
 * pool is opened at the first call that needs it; a process that finds it
 * held waits up to VEMS_LOCK_TIMEOUT seconds, and while it waits it holds a
 * shared OFD lock on byte 2 of the pool file: the holder's idle thread sees
 * it and releases the pool between two calls (g.use), unless a file
 * unlinked while open needs it; the vems fds stay open and reopen their
 * objects when next used. fork releases it too (fork_prepare). exec
 * releases the pool first (the new program reopens it); a fork child does
 * not use its parent's pool (it opens its own when it needs one, so it
 * waits for the parent to release it). The pool is closed at exit; a
 * program killed before that loses nothing that a call had returned for
 * (a write is durable when it returns), the next open recovers.
 */
#undef _FORTIFY_SOURCE /* the fortified names are defined here */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "shim.h"
#include "vems.h"

/* --- the real libc ------------------------------------------------------ */

/*
 * real_NAME() returns libc's NAME (the next definition after ours),
 * resolved at first use: other libraries' constructors may call before
 * ours has run.
 */
#define DEFINE_REAL(name)                                                      \
	static __typeof__(name) *real_##name##_fn;                             \
	static __typeof__(name) *real_##name(void)                             \
	{                                                                      \
		__typeof__(name) *f =                                          \
			__atomic_load_n(&real_##name##_fn, __ATOMIC_ACQUIRE);  \
		if (f == NULL) {                                               \
			*(void **)&f = dlsym(RTLD_NEXT, #name);                \
			if (f == NULL)                                         \
				missing(#name);                                \
			__atomic_store_n(&real_##name##_fn, f,                 \
					 __ATOMIC_RELEASE);                    \
		}                                                              \
		return f;                                                      \
	}

/* where diagnostics go: a copy of fd 2 taken at load (programs close
 * stderr before they exit: coreutils' close_stdout does) */
static int g_errfd = 2;

static void __attribute__((noreturn)) missing(const char *name)
{
	static const char m[] = "vems-shim: libc has no ";
	(void)!syscall(SYS_write, g_errfd, m, sizeof(m) - 1);
	(void)!syscall(SYS_write, g_errfd, name, strlen(name));
	(void)!syscall(SYS_write, g_errfd, "\n", 1);
	abort();
}

/* The shim's own system calls, past every interposer (ours included). */
static int
sys_open(const char *path, int flags)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0);
}

static int
sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static int
sys_fcntl(int fd, int cmd, void *arg)
{
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

bool shim_active;

/* --- state ---------------------------------------------------------------- */

#define OFD_MAGIC UINT64_C(0x76656d732d6f6664) /* "vems-ofd" */
#define OFD_NAME "vems-ofd"
#define SHIM_PARTITION 1    /* shim files' objects live in partition 1 */
#define VEMS_DEV 0x76656d73 /* st_dev of vems files ("vems") */

/* The shared part of an open file description: one memfd page. */
struct ofd {
	uint64_t magic;
	uint64_t partition, id; /* the object (a directory: its marker) */
	_Atomic int64_t offset; /* file offset; a directory's position */
	_Atomic uint32_t flags; /* O_ACCMODE, O_APPEND, O_NONBLOCK ... */
	uint32_t is_dir;	/* 1: a directory */
	/* 1: opened in a fork child that cannot use the pool (see
	 * pool_get): the open, with pend_flags, is done at first use after
	 * exec */
	_Atomic uint32_t pending;
	uint32_t pend_flags;
	/* pool name at open: "" is the root, a directory's ends with '/' */
	char name[4096 - 48];
};
_Static_assert(sizeof(struct ofd) == 4096, "one page");

struct dent {
	uint64_t ino;
	unsigned char type; /* DT_REG or DT_DIR */
	char name[NAME_MAX + 1];
};

/* This process's view of one vems fd. */
struct vfile {
	int fd;
	struct ofd *ofd; /* the mapped page */
	pthread_mutex_t lock;
	struct vems_obj *obj; /* valid while gen == g.gen */
	unsigned gen;
	uint64_t ofd_ino; /* the memfd's inode: who owns OFD and flock locks */
	/* directories: the listing, taken at the first read after a rewind */
	struct dent *ents;
	size_t nents;
	bool listed;
	bool orphan; /* its file was unlinked (counted in g.orphans) */
	/* no other fd anywhere shares its description: its memfd may be
	 * recycled at close (see spare_put) */
	bool recycle;
};

static struct {
	bool debug, stats;
	char prefix[PATH_MAX];
	size_t prefix_len;
	char pool_path[PATH_MAX];
	int lock_timeout_ms;
	pid_t pid; /* the process this state belongs to (see fork) */

	/* g.lock guards the pool pointer, the namespace and the cwd */
	pthread_mutex_t lock;
	/* held (read) across every use of an object handle, so that the pool
	 * is released (written) only between them */
	pthread_rwlock_t use;
	struct vems_pool *pool;
	_Atomic unsigned gen; /* bumped whenever the pool is released */
	atomic_int nopen;     /* vems fds and DIR streams open */
	atomic_int maxfd;     /* the highest fd ever a vems fd */
	/* vems fds on files unlinked while open: the pool is not released
	 * (its close would reclaim them) while there are any */
	atomic_int orphans;
	int watch_fd; /* the holder's fd on the pool file */
	/* who vems files belong to: the pool file's owner, read at open */
	uid_t uid;
	gid_t gid;
	bool idle_thread;
	struct timespec last_use;

	char cwd[PATH_MAX]; /* a cwd inside the prefix, else "" */

	/* fd -> vfile */
	_Atomic(struct vfile *) *fds;
	int nfds;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .use = PTHREAD_RWLOCK_INITIALIZER,
       .watch_fd = -1};

/* g.lock, with a note of whether this thread holds it: libvems forks (to
 * validate a pool) while the shim holds it, and the fork handlers must
 * not take it again */
static __thread bool t_holds;
static __thread bool t_fork_locked;

static void
glock(void)
{
	pthread_mutex_lock(&g.lock);
	t_holds = true;
}

static void
gunlock(void)
{
	t_holds = false;
	pthread_mutex_unlock(&g.lock);
}

static void
now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

/* --- diagnostics ------------------------------------------------------- */

#define MAX_CALLS 160
static struct {
	const char *name;
	atomic_ulong vems, real;
} g_calls[MAX_CALLS];
static atomic_int g_ncalls;
static pthread_mutex_t g_calls_lock = PTHREAD_MUTEX_INITIALIZER;

void
shim_count(const char *call, bool vems)
{
	if (!g.stats)
		return;
	int n = atomic_load(&g_ncalls);
	for (int i = 0; i < n; i++)
		if (g_calls[i].name == call) {
			atomic_fetch_add(
				vems ? &g_calls[i].vems : &g_calls[i].real, 1);
			return;
		}
	pthread_mutex_lock(&g_calls_lock);
	n = atomic_load(&g_ncalls);
	int i;
	for (i = 0; i < n && g_calls[i].name != call; i++)
		;
	if (i == n && n < MAX_CALLS) {
		g_calls[n].name = call;
		atomic_store(&g_ncalls, n + 1);
	}
	pthread_mutex_unlock(&g_calls_lock);
	if (i < MAX_CALLS)
		atomic_fetch_add(vems ? &g_calls[i].vems : &g_calls[i].real, 1);
}

void
shim_debug(const char *fmt, ...)
{
	if (!g.debug)
		return;
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "vems-shim[%d]: ", (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	/* straight to the kernel: stdio may be what is being interposed */
	(void)!syscall(SYS_write, g_errfd, buf, len);
}

/* A one-line message on stderr, whatever VEMS_SHIM_DEBUG says. */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "vems-shim: ");
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	(void)!syscall(SYS_write, g_errfd, buf, len);
}

static void
print_stats(void)
{
	int n = atomic_load(&g_ncalls);
	char line[160];
	int len = snprintf(line, sizeof(line),
			   "vems-shim[%d] stats: %-22s %12s %12s\n",
			   (int)getpid(), "call", "vems", "real libc");
	(void)!syscall(SYS_write, g_errfd, line, (size_t)len);
	for (int i = 0; i < n; i++) {
		len = snprintf(line, sizeof(line),
			       "vems-shim[%d] stats: %-22s %12lu %12lu\n",
			       (int)getpid(), g_calls[i].name,
			       atomic_load(&g_calls[i].vems),
			       atomic_load(&g_calls[i].real));
		(void)!syscall(SYS_write, g_errfd, line, (size_t)len);
	}
}

/* Copies the string src into dst of cap bytes, cut to fit. */
static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t l = strnlen(src, cap - 1);
	memcpy(dst, src, l);
	dst[l] = '\0';
}

/* For arguments glibc declares non-null that the kernel accepts as NULL
 * (utimensat's path): compared in a function of its own. */
static bool __attribute__((noinline)) is_null(const void *p)
{
	return p == NULL;
}

/* errno = e, return -1: the libc way of failing */
static int
fail(int e)
{
	errno = e;
	return -1;
}

/* --- paths ---------------------------------------------------------------- */

/*
 * Lexically normalises the absolute path `in` into out: no ".", "..",
 * repeated or trailing slashes ("/" stays "/"). The real file system is not
 * consulted: nothing under the prefix exists there, and a symbolic link
 * leading into the prefix is not followed (see README: not supported).
 */
static int
normalize(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t l = (size_t)(p - s);
		if (l == 1 && s[0] == '.')
			continue;
		if (l == 2 && s[0] == '.' && s[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		if (o + 1 + l + 1 > cap)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, s, l);
		o += l;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

/* A resolved path. */
struct rpath {
	char name[PATH_MAX]; /* pool name: "" for the root, "a/b" */
	char abs[PATH_MAX];  /* normalised absolute path */
	const char *real;    /* not ours: the path to give the real call */
	bool dir_only;	     /* ends with "/", "." or "..": a directory */
};

static struct vfile *vfile_of(int fd);

/*
 * Resolves path, relative to dirfd (AT_FDCWD or a directory fd): 1 when it
 * is under the prefix (r->name is its pool name), 0 when not (r->real is
 * what to pass to libc: path itself, or an absolute path built from a cwd
 * or a directory inside the prefix), or -errno.
 */
static int
resolve(int dirfd, const char *path, struct rpath *r)
{
	r->real = path;
	r->dir_only = false;
	if (!shim_active || path == NULL || path[0] == '\0')
		return 0;
	char raw[2 * PATH_MAX];
	size_t plen = strlen(path);
	if (path[0] == '/') {
		/* fast path: an absolute path that cannot normalise into the
		 * prefix */
		if (strncmp(path, g.prefix, g.prefix_len) != 0 &&
		    strstr(path, "/.") == NULL && strstr(path, "//") == NULL)
			return 0;
		if (plen >= sizeof(raw))
			return -ENAMETOOLONG;
		memcpy(raw, path, plen + 1);
	} else if (dirfd == AT_FDCWD) {
		glock();
		bool in = g.cwd[0] != '\0';
		if (in)
			snprintf(raw, sizeof(raw), "%s/%s", g.cwd, path);
		gunlock();
		if (!in)
			return 0; /* the real cwd is never inside the prefix */
	} else {
		struct vfile *d = vfile_of(dirfd);
		if (d == NULL)
			return 0; /* a real directory (or a bad fd): libc's */
		if (!d->ofd->is_dir)
			return -ENOTDIR;
		snprintf(raw, sizeof(raw), "%s/%s/%s", g.prefix, d->ofd->name,
			 path);
	}
	if (strlen(raw) >= PATH_MAX)
		return -ENAMETOOLONG;
	const char *last = strrchr(path, '/');
	last = last ? last + 1 : path;
	r->dir_only = path[plen - 1] == '/' || strcmp(last, ".") == 0 ||
		strcmp(last, "..") == 0;
	int ret = normalize(raw, r->abs, sizeof(r->abs));
	if (ret)
		return ret;
	if (strncmp(r->abs, g.prefix, g.prefix_len) == 0 &&
	    (r->abs[g.prefix_len] == '\0' || r->abs[g.prefix_len] == '/')) {
		const char *rest = r->abs + g.prefix_len;
		if (*rest == '/')
			rest++;
		if (strlen(rest) + 2 > sizeof(((struct ofd *)0)->name))
			return -ENAMETOOLONG;
		strcpy(r->name, rest);
		return 1;
	}
	/* not ours: a relative path, or one that passes through the prefix
	 * ("/vems/.."), goes to libc resolved */
	if (path[0] != '/' ||
	    (strncmp(path, g.prefix, g.prefix_len) == 0 &&
	     (path[g.prefix_len] == '/' || path[g.prefix_len] == '\0')))
		r->real = r->abs;
	return 0;
}

bool
shim_is_vems_path(const char *path)
{
	struct rpath r;
	return resolve(AT_FDCWD, path, &r) == 1;
}

/* --- the pool ------------------------------------------------------------- */

static bool g_forked_holder; /* forked while the parent held the pool */

static void
idle_release_locked(void)
{
	if (g.pool == NULL)
		return;
	int ret = vems_pool_close(&g.pool);
	if (ret)
		say("closing pool %s: %s", g.pool_path, vems_errormsg());
	atomic_fetch_add(&g.gen, 1);
	if (g.watch_fd >= 0) {
		sys_close(g.watch_fd);
		g.watch_fd = -1;
	}
	shim_debug("pool %s released", g.pool_path);
}

/* Whether another process waits for the pool (holds byte 2, see top). */
static bool
someone_waits(void)
{
	if (g.watch_fd < 0)
		return false;
	struct flock q = {.l_type = F_WRLCK,
			  .l_whence = SEEK_SET,
			  .l_start = 2,
			  .l_len = 1};
	return sys_fcntl(g.watch_fd, F_OFD_GETLK, &q) == 0 &&
		q.l_type != F_UNLCK;
}

/* The holder's idle thread: releases the pool to a waiter once no vems
 * file is open here. */
static void *
idle_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		glock();
		if (g.pool == NULL) {
			g.idle_thread = false;
			gunlock();
			return NULL;
		}
		/* between two uses of the pool (vems files stay open: their
		 * handles are reopened when next used) */
		if (atomic_load(&g.orphans) == 0 && someone_waits() &&
		    pthread_rwlock_trywrlock(&g.use) == 0) {
			idle_release_locked();
			pthread_rwlock_unlock(&g.use);
		}
		gunlock();
	}
}

/*
 * The pool, opened if need be (g.lock held). Waits up to VEMS_LOCK_TIMEOUT
 * for another holder, advertising the wait (byte 2). -errno on failure,
 * with a one-line message.
 */
static int
pool_get(struct vems_pool **pp)
{
	if (g.pool) {
		*pp = g.pool;
		return 0;
	}
	if (g_forked_holder) {
		say("process %d was forked while its parent held pool %s: "
		    "vems files work again after exec",
		    (int)getpid(), g.pool_path);
		return -EIO;
	}
	if (getpid() != g.pid) {
		/* a vfork()ed child, sharing its parent's memory */
		say("no pool in a vfork()ed child before exec");
		return -EIO;
	}
	struct timespec t0, t;
	now(&t0);
	int wfd = -1;
	for (;;) {
		struct vems_pool *p = NULL;
		int ret = vems_pool_open(&p, g.pool_path, NULL);
		if (ret == 0) {
			g.pool = p;
			struct stat pst;
			if (syscall(SYS_newfstatat, AT_FDCWD, g.pool_path, &pst,
				    0) == 0) {
				g.uid = pst.st_uid;
				g.gid = pst.st_gid;
			}
			break;
		}
		if (ret != -EBUSY) {
			say("cannot open pool %s: %s", g.pool_path,
			    vems_errormsg());
			if (wfd >= 0)
				sys_close(wfd);
			return ret == -ENOENT ? -ENOENT : -EIO;
		}
		if (wfd < 0) {
			wfd = sys_open(g.pool_path, O_RDONLY | O_CLOEXEC);
			struct flock fl = {.l_type = F_RDLCK,
					   .l_whence = SEEK_SET,
					   .l_start = 2,
					   .l_len = 1};
			if (wfd >= 0)
				(void)sys_fcntl(wfd, F_OFD_SETLK, &fl);
		}
		now(&t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 +
			(t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= g.lock_timeout_ms) {
			say("%s (waited %d ms, VEMS_LOCK_TIMEOUT)",
			    vems_errormsg(), g.lock_timeout_ms);
			if (wfd >= 0)
				sys_close(wfd);
			return -EBUSY;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (wfd >= 0)
		sys_close(wfd);
	g.watch_fd = sys_open(g.pool_path, O_RDONLY | O_CLOEXEC);
	if (!g.idle_thread) {
		pthread_t th;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &a, idle_main, NULL) == 0)
			g.idle_thread = true;
		pthread_attr_destroy(&a);
	}
	shim_debug("pool %s opened", g.pool_path);
	*pp = g.pool;
	return 0;
}

/* --- descriptors ---------------------------------------------------------- */

static struct vfile *
vfile_of(int fd)
{
	if (fd < 0 || fd >= g.nfds || g.fds == NULL)
		return NULL;
	return atomic_load_explicit(&g.fds[fd], memory_order_acquire);
}

bool
shim_is_vems_fd(int fd)
{
	return vfile_of(fd) != NULL;
}

/* errno for a libvems error code */
static int
err_of(int r)
{
	if (r == -EINVAL)
		return EINVAL;
	return r < 0 && r > -4096 ? -r : EIO;
}

static void stdio_attach(int fd);
static void stdio_detach(int fd);
static void locks_release(uint64_t owner);
static void posix_unlock_all(uint64_t partition, uint64_t id);

/*
 * Makes fd (a memfd on the page ofd) a vems fd. ino: the memfd's inode,
 * 0 if not known yet. -errno.
 */
static int
vfile_attach(int fd, struct ofd *o, uint64_t ino)
{
	if (fd >= g.nfds) {
		say("fd %d is past the shim's table (%d): raise it with "
		    "RLIMIT_NOFILE before the first vems call",
		    fd, g.nfds);
		return -EMFILE;
	}
	struct vfile *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->fd = fd;
	f->ofd = o;
	pthread_mutex_init(&f->lock, NULL);
	struct stat st;
	if (ino)
		f->ofd_ino = ino;
	else if (syscall(SYS_fstat, fd, &st) == 0)
		f->ofd_ino = (uint64_t)st.st_ino;
	atomic_fetch_add(&g.nopen, 1);
	int m = atomic_load(&g.maxfd);
	while (fd > m && !atomic_compare_exchange_weak(&g.maxfd, &m, fd))
		;
	atomic_store_explicit(&g.fds[fd], f, memory_order_release);
	if (fd <= 2)
		stdio_attach(fd);
	return 0;
}

static bool spare_put(int fd, struct ofd *o, uint64_t ino);

/*
 * Forgets fd's vems file (the kernel fd stays open: the caller closes
 * it). recycle: the fd is being closed, and its description may be kept
 * for the next open.
 */
static void
vfile_detach(int fd, bool recycle)
{
	struct vfile *f = vfile_of(fd);
	if (f == NULL)
		return;
	if (fd <= 2)
		stdio_detach(fd);
	atomic_store_explicit(&g.fds[fd], NULL, memory_order_release);
	pthread_rwlock_rdlock(&g.use);
	if (f->obj && f->gen == atomic_load(&g.gen)) {
		int r = vems_obj_close(&f->obj);
		if (r)
			say("closing %s: %s", f->ofd->name, vems_errormsg());
	}
	pthread_rwlock_unlock(&g.use);
	if (f->orphan)
		atomic_fetch_sub(&g.orphans, 1);
	free(f->ents);
	if (!(recycle && f->recycle && spare_put(fd, f->ofd, f->ofd_ino)))
		munmap(f->ofd, sizeof(struct ofd));
	pthread_mutex_destroy(&f->lock);
	free(f);
	atomic_fetch_sub(&g.nopen, 1);
}

/* --- recycled descriptions ------------------------------------------------ */

/*
 * A memfd made and mapped at every open and torn down at every close (an
 * inode, its page, the mapping and its TLB shootdown, the eviction) costs
 * more than the pool's own work for a small file: SQLite opens and deletes
 * its journal in every transaction. So a description that no other fd can
 * share is kept at close, on a spare fd near the descriptor limit, and
 * handed to the next open: two fcntl and an fstat (an open and close, 1.03
 * us: vems-bench --only shim-pwrite).
 *
 * "No other fd can share it" (vfile.recycle): this process opened it with
 * O_CLOEXEC (so no exec inherits it), and it was never dup'ed, made
 * inheritable (F_SETFD), or open across a fork, posix_spawn or a dup2 in a
 * vfork()ed child. Spares themselves are closed before a fork: the child
 * would hold copies. Passing a vems fd over a socket (SCM_RIGHTS) is not
 * supported: the receiver could see its description reused.
 */
#define SPARE_MAX 8

static struct spare {
	int fd;
	struct ofd *o;
	uint64_t ino;
} g_spares[SPARE_MAX];
static atomic_int g_nspares;
static int g_spare_base = -1; /* the lowest spare fd number; < 0: none */
static pthread_mutex_t g_spare_lock = PTHREAD_MUTEX_INITIALIZER;

/* Keeps fd's description (fd itself is about to be closed). */
static bool
spare_put(int fd, struct ofd *o, uint64_t ino)
{
	if (g_spare_base < 0 || ino == 0) /* close checked it is no vfork */
		return false;
	pthread_mutex_lock(&g_spare_lock);
	int n = atomic_load(&g_nspares), s = -1;
	if (n < SPARE_MAX)
		s = sys_fcntl(fd, F_DUPFD_CLOEXEC,
			      (void *)(intptr_t)g_spare_base);
	if (s >= 0) {
		g_spares[n] = (struct spare){s, o, ino};
		atomic_store(&g_nspares, n + 1);
	}
	pthread_mutex_unlock(&g_spare_lock);
	return s >= 0;
}

/*
 * A kept description on the lowest free fd, or -1. Its inode is checked:
 * a spare closed behind the shim's back (a raw close syscall) is dropped.
 */
static int
spare_take(int oflags, struct ofd **op, uint64_t *inop)
{
	if (atomic_load(&g_nspares) == 0)
		return -1;
	pthread_mutex_lock(&g_spare_lock);
	int fd = -1;
	for (int n = atomic_load(&g_nspares); n > 0 && fd < 0; n--) {
		struct spare s = g_spares[n - 1];
		atomic_store(&g_nspares, n - 1);
		fd = sys_fcntl(s.fd,
			       (oflags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD,
			       (void *)(intptr_t)0);
		struct stat st;
		if (fd >= 0 && syscall(SYS_fstat, fd, &st) == 0 &&
		    (uint64_t)st.st_ino == s.ino) {
			sys_close(s.fd);
			memset(s.o, 0, offsetof(struct ofd, name) + 1);
			*op = s.o;
			*inop = s.ino;
		} else {
			if (fd >= 0)
				sys_close(fd);
			fd = -1;
			munmap(s.o, sizeof(*s.o));
		}
	}
	pthread_mutex_unlock(&g_spare_lock);
	return fd;
}

/*
 * The program is about to close or replace fd: if it is a spare, the shim
 * lets it go. hi: the last fd of a range.
 */
static void
spares_drop(int lo, int hi)
{
	if (atomic_load(&g_nspares) == 0 || hi < g_spare_base)
		return;
	pthread_mutex_lock(&g_spare_lock);
	int n = atomic_load(&g_nspares);
	for (int i = n - 1; i >= 0; i--)
		if (g_spares[i].fd >= lo && g_spares[i].fd <= hi) {
			munmap(g_spares[i].o, sizeof(struct ofd));
			g_spares[i] = g_spares[--n];
		}
	atomic_store(&g_nspares, n);
	pthread_mutex_unlock(&g_spare_lock);
}

/* Before a fork: no spares, and no description is private any more. */
static void
spares_unshare_all(bool close_spares)
{
	if (close_spares) {
		pthread_mutex_lock(&g_spare_lock);
		int n = atomic_load(&g_nspares);
		for (int i = 0; i < n; i++) {
			munmap(g_spares[i].o, sizeof(struct ofd));
			sys_close(g_spares[i].fd);
		}
		atomic_store(&g_nspares, 0);
		pthread_mutex_unlock(&g_spare_lock);
	}
	int m = atomic_load(&g.maxfd);
	for (int fd = 0; fd <= m; fd++) {
		struct vfile *f = vfile_of(fd);
		if (f)
			f->recycle = false;
	}
}

/* A new open file description: a memfd and its mapped page. */
static int
ofd_new(int oflags, struct ofd **op, uint64_t *inop)
{
	*inop = 0;
	int sfd = spare_take(oflags, op, inop);
	if (sfd >= 0)
		return sfd;
	int fd = memfd_create(OFD_NAME, (oflags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (fd < 0)
		return -errno;
	void *m = MAP_FAILED;
	if (syscall(SYS_ftruncate, fd, (long)sizeof(struct ofd)) == 0)
		m = (void *)syscall(SYS_mmap, NULL, sizeof(struct ofd),
				    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || (uintptr_t)m > (uintptr_t)-4096) {
		int e = errno;
		sys_close(fd);
		return -e;
	}
	*op = m;
	return fd;
}

/* Maps the page of an existing memfd (dup, exec). NULL if it is none. */
static struct ofd *
ofd_map(int fd)
{
	void *m = (void *)syscall(SYS_mmap, NULL, sizeof(struct ofd),
				  PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || (uintptr_t)m > (uintptr_t)-4096)
		return NULL;
	struct ofd *o = m;
	if (o->magic != OFD_MAGIC) {
		munmap(m, sizeof(*o));
		return NULL;
	}
	return o;
}

/* After dup: newfd shares oldfd's description. */
static int
vfile_dup(int newfd)
{
	struct ofd *o = ofd_map(newfd);
	if (o == NULL)
		return -EIO;
	int r = vfile_attach(newfd, o, 0);
	if (r)
		munmap(o, sizeof(*o));
	return r;
}

/* --- names ---------------------------------------------------------------- */

enum kind { K_NONE, K_FILE, K_DIR };

/* name + "/" (a directory's marker) into out */
static void
dir_name(const char *name, char *out, size_t cap)
{
	size_t l = strnlen(name, cap - 2);
	memcpy(out, name, l);
	if (l)
		out[l++] = '/';
	out[l] = '\0';
}

/* What name is (g.lock held). */
static enum kind
lookup(struct vems_pool *p, const char *name, struct vems_oid *oid)
{
	if (name[0] == '\0') {
		*oid = (struct vems_oid){0, 0};
		return K_DIR;
	}
	if (vems_name_lookup(p, name, oid) == 0)
		return K_FILE;
	char d[PATH_MAX + 1];
	dir_name(name, d, sizeof(d));
	if (vems_name_lookup(p, d, oid) == 0)
		return K_DIR;
	return K_NONE;
}

/* The parent of name ("" for a top-level name) into out. */
static void
parent_of(const char *name, char *out)
{
	const char *sl = strrchr(name, '/');
	if (sl == NULL) {
		out[0] = '\0';
		return;
	}
	memcpy(out, name, (size_t)(sl - name));
	out[sl - name] = '\0';
}

/* 0 if name's parent is a directory; else -ENOENT or -ENOTDIR. */
static int
parent_ok(struct vems_pool *p, const char *name)
{
	char par[PATH_MAX];
	parent_of(name, par);
	struct vems_oid o;
	enum kind k = lookup(p, par, &o);
	if (k == K_DIR)
		return 0;
	if (k == K_FILE)
		return -ENOTDIR;
	/* a missing parent: ENOTDIR if some ancestor is a file */
	while (par[0]) {
		char up[PATH_MAX];
		parent_of(par, up);
		strcpy(par, up);
		k = lookup(p, par, &o);
		if (k == K_FILE)
			return -ENOTDIR;
		if (k == K_DIR)
			break;
	}
	return -ENOENT;
}

/* The error for a name that does not exist. */
static int
missing_err(struct vems_pool *p, const char *name)
{
	int r = parent_ok(p, name);
	return r ? r : -ENOENT;
}

static uint64_t g_rand;

/* An object ID for a new file or directory (g.lock held). */
static struct vems_oid
new_oid(void)
{
	uint64_t x;
	do {
		/* xorshift64*: ids only need to be distinct and non-zero */
		g_rand ^= g_rand >> 12;
		g_rand ^= g_rand << 25;
		g_rand ^= g_rand >> 27;
		x = (g_rand * UINT64_C(2685821657736338717)) >> 1;
	} while (x == 0);
	return (struct vems_oid){SHIM_PARTITION, x};
}

/* Creates an object named name (a file, or with a '/' a directory
 * marker): -errno. */
static int
create_named(struct vems_pool *p, const char *name, struct vems_oid *oid)
{
	for (int tries = 0; tries < 8; tries++) {
		*oid = new_oid();
		int r = vems_obj_create_named(p, name, oid);
		if (r == 0)
			return 0;
		/* the name is free (looked up under g.lock): the id clashed */
		if (r != -EEXIST)
			return -err_of(r);
	}
	return -EEXIST;
}

/* --- directory listings ------------------------------------------------- */

struct list_ctx {
	size_t dlen; /* strlen of the directory's marker name */
	struct dent *v;
	size_t n, cap;
	size_t subdirs;
	bool any;   /* (for emptiness) something besides the marker */
	bool count; /* only count, do not collect */
};

static int
list_fn(const char *name, const struct vems_oid *oid, void *arg)
{
	struct list_ctx *c = arg;
	const char *rest = name + c->dlen;
	if (*rest == '\0')
		return 0; /* the marker itself */
	const char *sl = strchr(rest, '/');
	if (sl && sl[1] != '\0')
		return 0; /* deeper */
	c->any = true;
	if (sl)
		c->subdirs++;
	if (c->count)
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct dent *v = realloc(c->v, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	struct dent *d = &c->v[c->n];
	size_t l = sl ? (size_t)(sl - rest) : strlen(rest);
	if (l > NAME_MAX)
		return 0; /* not a name a directory entry can carry */
	memcpy(d->name, rest, l);
	d->name[l] = '\0';
	d->type = sl ? DT_DIR : DT_REG;
	d->ino = oid->id;
	c->n++;
	return 0;
}

/* Lists the directory `dname` (its marker name, "" for the root). */
static int
list_dir(struct vems_pool *p, const char *dname, struct list_ctx *c)
{
	c->dlen = strlen(dname);
	int r = vems_name_list(p, dname[0] ? dname : NULL, list_fn, c);
	return r < 0 ? -err_of(r) : 0;
}

/* --- stat ------------------------------------------------------------------ */

static struct timespec
ts_of(int64_t ns)
{
	return (struct timespec){.tv_sec = ns / 1000000000,
				 .tv_nsec = ns % 1000000000};
}

/* The root's times: the pool file's mtime. */
static int64_t
root_time(void)
{
	struct stat st;
	if (syscall(SYS_newfstatat, AT_FDCWD, g.pool_path, &st, 0) != 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void
fill_common(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = VEMS_DEV;
	st->st_uid = g.uid;
	st->st_gid = g.gid;
	st->st_blksize = 4096;
}

/* stat of a file from its object's */
static void
fill_file(struct stat *st, const struct vems_obj_stat *os)
{
	fill_common(st);
	st->st_ino = os->oid.id;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = (off_t)os->size;
	st->st_blocks = (blkcnt_t)((os->size + 4095) / 4096 * 8);
	st->st_atim = st->st_mtim = st->st_ctim = ts_of(os->mtime_ns);
}

/* stat of name, of kind k and object oid (g.lock held). */
static int
stat_name(struct vems_pool *p, const char *name, enum kind k,
	  struct vems_oid oid, struct stat *st)
{
	fill_common(st);
	if (k == K_DIR) {
		char d[PATH_MAX + 1];
		dir_name(name, d, sizeof(d));
		struct list_ctx c = {.count = true};
		int r = list_dir(p, d, &c);
		if (r)
			return r;
		int64_t t = root_time();
		if (name[0]) {
			struct vems_obj_stat os;
			if (vems_obj_stat_oid(p, oid, &os) == 0)
				t = os.mtime_ns;
		}
		st->st_ino = name[0] ? oid.id : 1;
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2 + c.subdirs;
		st->st_size = 4096;
		st->st_blocks = 8;
		st->st_atim = st->st_mtim = st->st_ctim = ts_of(t);
		return 0;
	}
	struct vems_obj_stat os;
	int r = vems_obj_stat_oid(p, oid, &os);
	if (r)
		return -err_of(r);
	fill_file(st, &os);
	return 0;
}

/* stat of a path under the prefix. */
static int
vstat(const struct rpath *r, struct stat *st)
{
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret == 0) {
		struct vems_oid oid;
		enum kind k = lookup(p, r->name, &oid);
		if (k == K_NONE)
			ret = missing_err(p, r->name);
		else if (k == K_FILE && r->dir_only)
			ret = -ENOTDIR;
		else
			ret = stat_name(p, r->name, k, oid, st);
	}
	gunlock();
	return ret;
}

/* --- opening ---------------------------------------------------------------- */

/*
 * Opens name (kind k, object oid) for the description o (g.lock held):
 * the work of open() once the name is settled. Creates and truncates as
 * flags say. -errno.
 */
static int
open_name(struct vems_pool *p, const char *name, int flags, bool dir_only,
	  struct vems_oid *oidp, enum kind *kp)
{
	int acc = flags & O_ACCMODE;
	struct vems_oid oid;
	enum kind k = lookup(p, name, &oid);
	if (k == K_DIR) {
		if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
			return -EEXIST;
		if (acc != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))
			return -EISDIR;
	} else if (k == K_FILE) {
		if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
			return -EEXIST;
		if ((flags & O_DIRECTORY) || dir_only)
			return -ENOTDIR;
		if ((flags & O_TRUNC) && acc != O_RDONLY) {
			struct vems_obj *h;
			int r = vems_obj_open(p, oid, 0, &h);
			if (r == 0) {
				r = vems_obj_truncate(h, 0);
				int c = vems_obj_close(&h);
				if (r == 0)
					r = c;
			}
			if (r)
				return -err_of(r);
		}
	} else {
		if (!(flags & O_CREAT))
			return missing_err(p, name);
		if ((flags & O_DIRECTORY) || dir_only)
			return dir_only ? -EISDIR : -ENOENT;
		int r = parent_ok(p, name);
		if (r)
			return r;
		r = create_named(p, name, &oid);
		if (r)
			return r;
		k = K_FILE;
	}
	*oidp = oid;
	*kp = k;
	return 0;
}

/* Fills o for an opened name. */
static void
ofd_fill(struct ofd *o, const char *name, enum kind k, struct vems_oid oid,
	 int flags)
{
	o->magic = OFD_MAGIC;
	o->partition = oid.partition;
	o->id = oid.id;
	atomic_store(&o->offset, 0);
	atomic_store(&o->flags,
		     (uint32_t)(flags &
				~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY |
				  O_CLOEXEC)));
	o->is_dir = k == K_DIR;
	if (k == K_DIR)
		dir_name(name, o->name, sizeof(o->name));
	else
		copy_str(o->name, sizeof(o->name), name);
}

/* open() of a path under the prefix: the new fd or -errno. */
static int
vopen(const struct rpath *r, int flags)
{
	if ((flags & O_TMPFILE) == O_TMPFILE)
		return -EOPNOTSUPP;
	if (flags & O_PATH)
		flags = (flags & ~(O_PATH | O_ACCMODE)) | O_RDONLY;
	struct ofd *o = NULL;
	uint64_t ino;
	int fd = ofd_new(flags, &o, &ino);
	if (fd < 0)
		return fd;
	glock();
	struct vems_pool *p = NULL;
	int ret;
	if (g_forked_holder && !r->dir_only && !(flags & O_DIRECTORY)) {
		/*
		 * A fork child of the pool's holder (a shell setting up a
		 * redirection): the open is done at the first use after exec
		 */
		o->magic = OFD_MAGIC;
		atomic_store(
			&o->flags,
			(uint32_t)(flags &
				   ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC)));
		o->pend_flags = (uint32_t)flags;
		atomic_store(&o->pending, 1);
		copy_str(o->name, sizeof(o->name), r->name);
		ret = 0;
	} else if ((ret = pool_get(&p)) == 0) {
		struct vems_oid oid;
		enum kind k;
		ret = open_name(p, r->name, flags, r->dir_only, &oid, &k);
		if (ret == 0)
			ofd_fill(o, r->name, k, oid, flags);
	}
	struct vems_obj *h = NULL;
	if (ret == 0 && !o->is_dir && !atomic_load(&o->pending)) {
		/* the handle now: the file may be unlinked before first use */
		struct vems_oid oid = {o->partition, o->id};
		int e = vems_obj_open(
			p, oid,
			(flags & O_ACCMODE) == O_RDONLY ? VEMS_O_RDONLY : 0,
			&h);
		if (e)
			ret = -err_of(e);
	}
	if (ret == 0)
		ret = vfile_attach(fd, o, ino);
	if (ret == 0) {
		struct vfile *f = vfile_of(fd);
		f->recycle = (flags & O_CLOEXEC) && !atomic_load(&o->pending);
		if (h) {
			f->obj = h;
			f->gen = atomic_load(&g.gen);
		}
	} else if (h) {
		vems_obj_close(&h);
	}
	gunlock();
	if (ret) {
		munmap(o, sizeof(*o));
		sys_close(fd);
		return ret;
	}
	shim_debug("open %s flags %#x -> fd %d", r->abs, flags, fd);
	return fd;
}

int
shim_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

/* The object handle of a file, for this process's pool. -errno. */
static int
vfile_obj(struct vfile *f, struct vems_obj **op)
{
	pthread_mutex_lock(&f->lock);
	unsigned gen = atomic_load(&g.gen);
	if (f->obj && f->gen == gen && !atomic_load(&f->ofd->pending)) {
		*op = f->obj;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret == 0 && atomic_load(&f->ofd->pending)) {
		/* opened by a fork child before exec: open it now */
		struct vems_oid oid;
		enum kind k;
		int fl = (int)f->ofd->pend_flags;
		ret = open_name(p, f->ofd->name, fl, false, &oid, &k);
		if (ret == 0) {
			f->ofd->partition = oid.partition;
			f->ofd->id = oid.id;
			f->ofd->is_dir = k == K_DIR;
			atomic_store(&f->ofd->pending, 0);
		} else {
			say("%s%s: deferred open failed: %s", g.prefix,
			    f->ofd->name, strerror(-ret));
		}
	}
	if (ret == 0) {
		gen = atomic_load(&g.gen);
		struct vems_oid oid = {f->ofd->partition, f->ofd->id};
		unsigned fl =
			(atomic_load(&f->ofd->flags) & O_ACCMODE) == O_RDONLY
			? VEMS_O_RDONLY
			: 0;
		struct vems_obj *h = NULL;
		ret = vems_obj_open(p, oid, fl, &h);
		if (ret == 0) {
			f->obj = h;
			f->gen = gen;
			*op = h;
		} else {
			say("%s/%s: %s", g.prefix, f->ofd->name,
			    ret == -ENOENT ? "removed while open in another "
					     "process"
					   : vems_errormsg());
			ret = -EIO;
		}
	}
	gunlock();
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/* --- file I/O ---------------------------------------------------------------- */

static pthread_mutex_t g_append_lock = PTHREAD_MUTEX_INITIALIZER;

static ssize_t
vpwritev_unlocked(struct vfile *f, const struct iovec *iov, int cnt,
		  int64_t off, bool use_offset)
{
	uint32_t fl = atomic_load(&f->ofd->flags);
	if (f->ofd->is_dir || (fl & O_ACCMODE) == O_RDONLY)
		return fail(EBADF);
	struct vems_obj *h;
	int r = vfile_obj(f, &h);
	if (r)
		return fail(-r);
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	bool append = (fl & O_APPEND) != 0;
	ssize_t n;
	if (append || use_offset) {
		/* the offset (and for O_APPEND the size) is read and moved
		 * in one step */
		pthread_mutex_t *l = append ? &g_append_lock : &f->lock;
		pthread_mutex_lock(l);
		if (append) {
			struct vems_obj_stat st;
			if ((r = vems_obj_stat(h, &st)) != 0) {
				pthread_mutex_unlock(l);
				return fail(err_of(r));
			}
			/* POSIX: O_APPEND writes at the end, pwrite too (as
			 * Linux does) */
			off = (int64_t)st.size;
		} else {
			off = atomic_load(&f->ofd->offset);
		}
		n = vems_obj_pwritev(h, iov, cnt, (uint64_t)off, 0);
		if (n > 0 && (use_offset || append))
			atomic_store(&f->ofd->offset, off + n);
		pthread_mutex_unlock(l);
	} else {
		if (off < 0)
			return fail(EINVAL);
		n = vems_obj_pwritev(h, iov, cnt, (uint64_t)off, 0);
	}
	if (n < 0)
		return fail(n == -EINVAL ? EFBIG : err_of((int)n));
	return n;
}

static ssize_t
vpwritev(struct vfile *f, const struct iovec *iov, int cnt, int64_t off,
	 bool use_offset)
{
	pthread_rwlock_rdlock(&g.use);
	ssize_t r_ = vpwritev_unlocked(f, iov, cnt, off, use_offset);
	int e_ = errno;
	pthread_rwlock_unlock(&g.use);
	errno = e_;
	return r_;
}

static ssize_t
vpreadv_unlocked(struct vfile *f, const struct iovec *iov, int cnt, int64_t off,
		 bool use_offset)
{
	uint32_t fl = atomic_load(&f->ofd->flags);
	if (f->ofd->is_dir)
		return fail(EISDIR);
	if ((fl & O_ACCMODE) == O_WRONLY)
		return fail(EBADF);
	struct vems_obj *h;
	int r = vfile_obj(f, &h);
	if (r)
		return fail(-r);
	ssize_t n;
	if (use_offset) {
		pthread_mutex_lock(&f->lock);
		off = atomic_load(&f->ofd->offset);
		n = vems_obj_preadv(h, iov, cnt, (uint64_t)off);
		if (n > 0)
			atomic_store(&f->ofd->offset, off + n);
		pthread_mutex_unlock(&f->lock);
	} else {
		if (off < 0)
			return fail(EINVAL);
		n = vems_obj_preadv(h, iov, cnt, (uint64_t)off);
	}
	if (n < 0)
		return fail(err_of((int)n));
	return n;
}

static ssize_t
vpreadv(struct vfile *f, const struct iovec *iov, int cnt, int64_t off,
	bool use_offset)
{
	pthread_rwlock_rdlock(&g.use);
	ssize_t r_ = vpreadv_unlocked(f, iov, cnt, off, use_offset);
	int e_ = errno;
	pthread_rwlock_unlock(&g.use);
	errno = e_;
	return r_;
}

ssize_t
shim_read(int fd, void *buf, size_t len)
{
	return read(fd, buf, len);
}

ssize_t
shim_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

off_t
shim_lseek(int fd, off_t off, int whence)
{
	return lseek(fd, off, whence);
}

int
shim_close(int fd)
{
	return close(fd);
}

/* The size of a file. */
static int
vsize_unlocked(struct vfile *f, uint64_t *size)
{
	struct vems_obj *h;
	int r = vfile_obj(f, &h);
	if (r)
		return r;
	struct vems_obj_stat st;
	r = vems_obj_stat(h, &st);
	if (r)
		return -err_of(r);
	*size = st.size;
	return 0;
}

static int
vsize(struct vfile *f, uint64_t *size)
{
	pthread_rwlock_rdlock(&g.use);
	int r_ = vsize_unlocked(f, size);
	int e_ = errno;
	pthread_rwlock_unlock(&g.use);
	errno = e_;
	return r_;
}

static off_t
vlseek(struct vfile *f, off_t off, int whence)
{
	if (f->ofd->is_dir) {
		if (whence != SEEK_SET || off < 0)
			return fail(EINVAL);
		pthread_mutex_lock(&f->lock);
		atomic_store(&f->ofd->offset, off);
		if (off == 0)
			f->listed = false; /* a rewind lists again */
		pthread_mutex_unlock(&f->lock);
		return off;
	}
	int64_t base = 0;
	uint64_t size = 0;
	int r;
	switch (whence) {
	case SEEK_SET:
		break;
	case SEEK_CUR:
		base = atomic_load(&f->ofd->offset);
		break;
	case SEEK_END:
	case SEEK_DATA:
	case SEEK_HOLE:
		if ((r = vsize(f, &size)) != 0)
			return fail(-r);
		if (whence == SEEK_END) {
			base = (int64_t)size;
		} else {
			/* one data run: holes inside a file are not reported */
			if (off < 0)
				return fail(EINVAL);
			if ((uint64_t)off >= size)
				return fail(ENXIO);
			if (whence == SEEK_HOLE)
				off = (off_t)size;
			whence = SEEK_SET;
		}
		break;
	default:
		return fail(EINVAL);
	}
	int64_t pos = base + off;
	if (pos < 0 || (off > 0 && pos < base))
		return fail(EINVAL);
	atomic_store(&f->ofd->offset, pos);
	return (off_t)pos;
}

static int
vfstat_unlocked(struct vfile *f, struct stat *st)
{
	if (!f->ofd->is_dir) {
		/* through the handle: an unlinked open file has no name */
		struct vems_obj *h;
		int r = vfile_obj(f, &h);
		if (r)
			return r;
		struct vems_obj_stat os;
		if ((r = vems_obj_stat(h, &os)) != 0)
			return -err_of(r);
		fill_file(st, &os);
		return 0;
	}
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret == 0) {
		struct vems_oid oid = {f->ofd->partition, f->ofd->id};
		char name[PATH_MAX];
		snprintf(name, sizeof(name), "%s", f->ofd->name);
		if (name[0])
			name[strlen(name) - 1] = '\0';
		ret = stat_name(p, name, K_DIR, oid, st);
	}
	gunlock();
	return ret;
}

static int
vfstat(struct vfile *f, struct stat *st)
{
	pthread_rwlock_rdlock(&g.use);
	int r_ = vfstat_unlocked(f, st);
	int e_ = errno;
	pthread_rwlock_unlock(&g.use);
	errno = e_;
	return r_;
}

/* --- directories -------------------------------------------------------------- */

/* Takes the listing of a directory fd if it has none (f->lock held). */
static int
vdir_list(struct vfile *f)
{
	if (f->listed)
		return 0;
	glock();
	struct vems_pool *p;
	int r = pool_get(&p);
	struct list_ctx c = {0};
	if (r == 0)
		r = list_dir(p, f->ofd->name, &c);
	gunlock();
	if (r) {
		free(c.v);
		return r;
	}
	/* "." and ".." first, as a kernel directory has them */
	struct dent *v = malloc((c.n + 2) * sizeof(*v));
	if (v == NULL) {
		free(c.v);
		return -ENOMEM;
	}
	v[0] = (struct dent){.ino = f->ofd->id ? f->ofd->id : 1,
			     .type = DT_DIR};
	strcpy(v[0].name, ".");
	v[1] = (struct dent){.ino = 1, .type = DT_DIR};
	strcpy(v[1].name, "..");
	if (c.n)
		memcpy(v + 2, c.v, c.n * sizeof(*v));
	free(c.v);
	free(f->ents);
	f->ents = v;
	f->nents = c.n + 2;
	f->listed = true;
	return 0;
}

/* The next entry of a directory fd, copied to *d: 1, 0 at the end, or
 * -errno. */
static int
vdir_next(struct vfile *f, struct dent *d)
{
	pthread_mutex_lock(&f->lock);
	int r = vdir_list(f);
	if (r == 0) {
		int64_t pos = atomic_load(&f->ofd->offset);
		if (pos >= 0 && (size_t)pos < f->nents) {
			*d = f->ents[pos];
			atomic_store(&f->ofd->offset, pos + 1);
			r = 1;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static ssize_t
vgetdents(struct vfile *f, void *buf, size_t len)
{
	if (!f->ofd->is_dir)
		return fail(ENOTDIR);
	pthread_mutex_lock(&f->lock);
	int r = vdir_list(f);
	if (r) {
		pthread_mutex_unlock(&f->lock);
		return fail(-r);
	}
	size_t used = 0;
	int64_t pos = atomic_load(&f->ofd->offset);
	while (pos >= 0 && (size_t)pos < f->nents) {
		const struct dent *e = &f->ents[pos];
		size_t nl = strlen(e->name);
		size_t rec =
			(offsetof(struct linux_dirent64, d_name) + nl + 1 + 7) &
			~(size_t)7;
		if (used + rec > len)
			break;
		struct linux_dirent64 *d = (void *)((char *)buf + used);
		d->d_ino = e->ino;
		d->d_off = pos + 1;
		d->d_reclen = (unsigned short)rec;
		d->d_type = e->type;
		memcpy(d->d_name, e->name, nl + 1);
		used += rec;
		pos++;
	}
	atomic_store(&f->ofd->offset, pos);
	pthread_mutex_unlock(&f->lock);
	if (used == 0 && pos >= 0 && (size_t)pos < f->nents)
		return fail(EINVAL); /* buffer too small for one entry */
	return (ssize_t)used;
}

/* --- namespace calls ---------------------------------------------------------- */

static int
vmkdir(const struct rpath *r)
{
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret == 0) {
		struct vems_oid oid;
		if (lookup(p, r->name, &oid) != K_NONE) {
			ret = -EEXIST;
		} else if ((ret = parent_ok(p, r->name)) == 0) {
			char d[PATH_MAX + 1];
			dir_name(r->name, d, sizeof(d));
			ret = create_named(p, d, &oid);
		}
	}
	gunlock();
	return ret;
}

/* Whether directory marker d has entries (g.lock held): 1, 0 or -errno. */
static int
dir_has_entries(struct vems_pool *p, const char *d)
{
	struct list_ctx c = {.count = true};
	int r = list_dir(p, d, &c);
	return r ? r : c.any;
}

static int
vrmdir(const struct rpath *r)
{
	if (r->name[0] == '\0')
		return -EBUSY; /* the root */
	const char *last = strrchr(r->abs, '/');
	if (last && strcmp(last, "/.") == 0)
		return -EINVAL;
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret == 0) {
		struct vems_oid oid;
		enum kind k = lookup(p, r->name, &oid);
		if (k == K_NONE) {
			ret = missing_err(p, r->name);
		} else if (k == K_FILE) {
			ret = -ENOTDIR;
		} else {
			char d[PATH_MAX + 1];
			dir_name(r->name, d, sizeof(d));
			ret = dir_has_entries(p, d);
			if (ret == 1)
				ret = -ENOTEMPTY;
			else if (ret == 0 && (ret = vems_obj_remove(p, oid)))
				ret = -err_of(ret);
		}
	}
	gunlock();
	return ret;
}

/* After the removal of a file: its open fds here become orphans (g.lock
 * held). */
static void
mark_orphans(struct vems_oid oid)
{
	int m = atomic_load(&g.maxfd);
	for (int fd = 0; fd <= m; fd++) {
		struct vfile *f = vfile_of(fd);
		if (f && !f->orphan && !f->ofd->is_dir &&
		    f->ofd->partition == oid.partition &&
		    f->ofd->id == oid.id) {
			f->orphan = true;
			atomic_fetch_add(&g.orphans, 1);
		}
	}
}

static int
vunlink(const struct rpath *r)
{
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret == 0) {
		struct vems_oid oid;
		enum kind k = lookup(p, r->name, &oid);
		if (k == K_NONE)
			ret = missing_err(p, r->name);
		else if (k == K_DIR)
			ret = -EISDIR;
		else if (r->dir_only)
			ret = -ENOTDIR;
		else if ((ret = vems_obj_remove(p, oid)) != 0)
			ret = -err_of(ret);
		else
			mark_orphans(oid);
	}
	gunlock();
	return ret;
}

struct move_ctx {
	char **names;
	size_t n, cap;
};

static int
collect_fn(const char *name, const struct vems_oid *oid, void *arg)
{
	(void)oid;
	struct move_ctx *c = arg;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		char **v = realloc(c->names, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		c->names = v;
		c->cap = cap;
	}
	if ((c->names[c->n] = strdup(name)) == NULL)
		return -ENOMEM;
	c->n++;
	return 0;
}

/*
 * Renames a directory: a marker for the new name first, then every name
 * below, then the old marker goes. Not one crash-atomic step (README): a
 * crash in between leaves both directories, each entry in one of them.
 */
static int
move_dir(struct vems_pool *p, const char *from, const char *to,
	 struct vems_oid from_oid)
{
	char fd_[PATH_MAX + 1], td[PATH_MAX + 1];
	dir_name(from, fd_, sizeof(fd_));
	dir_name(to, td, sizeof(td));
	struct vems_oid noid;
	int r = create_named(p, td, &noid);
	if (r)
		return r;
	struct move_ctx c = {0};
	r = vems_name_list(p, fd_, collect_fn, &c);
	r = r < 0 ? -err_of(r) : 0;
	size_t flen = strlen(fd_);
	for (size_t i = 0; i < c.n && r == 0; i++) {
		if (strcmp(c.names[i], fd_) == 0)
			continue;
		char nn[2 * PATH_MAX];
		snprintf(nn, sizeof(nn), "%s%s", td, c.names[i] + flen);
		if (strlen(nn) > VEMS_NAME_MAX)
			r = -ENAMETOOLONG;
		else if ((r = vems_name_rename(p, c.names[i], nn, NULL,
					       NULL)) != 0)
			r = -err_of(r);
	}
	for (size_t i = 0; i < c.n; i++)
		free(c.names[i]);
	free(c.names);
	if (r == 0 && (r = vems_obj_remove(p, from_oid)) != 0)
		r = -err_of(r);
	return r;
}

static int
vrename(const struct rpath *a, const struct rpath *b, unsigned flags)
{
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret)
		goto out;
	struct vems_oid fo, to;
	enum kind fk = lookup(p, a->name, &fo);
	enum kind tk = lookup(p, b->name, &to);
	if (fk == K_NONE) {
		ret = missing_err(p, a->name);
		goto out;
	}
	if (a->name[0] == '\0' || b->name[0] == '\0') {
		ret = -EBUSY;
		goto out;
	}
	if (tk != K_NONE && (flags & RENAME_NOREPLACE)) {
		ret = -EEXIST;
		goto out;
	}
	if (tk == K_NONE && (ret = parent_ok(p, b->name)) != 0)
		goto out;
	if (fk == K_FILE) {
		if (a->dir_only || (tk == K_NONE && b->dir_only)) {
			ret = -ENOTDIR;
		} else if (tk == K_DIR) {
			ret = -EISDIR;
		} else if (tk == K_FILE && to.id == fo.id &&
			   to.partition == fo.partition) {
			ret = 0; /* the same file */
		} else {
			struct vems_oid old;
			int any = 0;
			ret = vems_name_rename(p, a->name, b->name, &old, &any);
			if (ret)
				ret = -err_of(ret);
			else if (any && (ret = vems_obj_remove(p, old)) != 0)
				ret = -err_of(ret);
			else if (any)
				mark_orphans(old);
		}
		goto out;
	}
	/* a directory */
	size_t al = strlen(a->name);
	if (strcmp(a->name, b->name) == 0)
		goto out;
	if (strncmp(b->name, a->name, al) == 0 && b->name[al] == '/') {
		ret = -EINVAL; /* into itself */
		goto out;
	}
	if (tk == K_FILE) {
		ret = -ENOTDIR;
		goto out;
	}
	if (tk == K_DIR) {
		char d[PATH_MAX + 1];
		dir_name(b->name, d, sizeof(d));
		ret = dir_has_entries(p, d);
		if (ret == 1) {
			ret = -ENOTEMPTY;
			goto out;
		}
		if (ret < 0 || (ret = vems_obj_remove(p, to)) != 0) {
			ret = ret < 0 ? ret : -err_of(ret);
			goto out;
		}
	}
	ret = move_dir(p, a->name, b->name, fo);
out:
	gunlock();
	return ret;
}

/* truncate() of a path */
static int
vtruncate(const struct rpath *r, off_t len)
{
	if (len < 0)
		return -EINVAL;
	glock();
	struct vems_pool *p;
	int ret = pool_get(&p);
	if (ret == 0) {
		struct vems_oid oid;
		enum kind k = lookup(p, r->name, &oid);
		if (k == K_NONE) {
			ret = missing_err(p, r->name);
		} else if (k == K_DIR) {
			ret = -EISDIR;
		} else {
			struct vems_obj *h;
			ret = vems_obj_open(p, oid, 0, &h);
			if (ret == 0) {
				ret = vems_obj_truncate(h, (uint64_t)len);
				int c = vems_obj_close(&h);
				if (ret == 0)
					ret = c;
			}
			if (ret)
				ret = ret == -EINVAL ? -EFBIG : -err_of(ret);
		}
	}
	gunlock();
	return ret;
}

static int
vftruncate_unlocked(struct vfile *f, off_t len)
{
	if (f->ofd->is_dir ||
	    (atomic_load(&f->ofd->flags) & O_ACCMODE) == O_RDONLY)
		return -EINVAL;
	if (len < 0)
		return -EINVAL;
	struct vems_obj *h;
	int r = vfile_obj(f, &h);
	if (r)
		return r;
	r = vems_obj_truncate(h, (uint64_t)len);
	return r ? (r == -EINVAL ? -EFBIG : -err_of(r)) : 0;
}

static int
vftruncate(struct vfile *f, off_t len)
{
	pthread_rwlock_rdlock(&g.use);
	int r_ = vftruncate_unlocked(f, len);
	int e_ = errno;
	pthread_rwlock_unlock(&g.use);
	errno = e_;
	return r_;
}

static int
vfsync_unlocked(struct vfile *f)
{
	if (f->ofd->is_dir)
		return 0; /* names are durable when their call returns */
	struct vems_obj *h;
	int r = vfile_obj(f, &h);
	if (r)
		return r;
	r = vems_obj_persist(h);
	return r ? -err_of(r) : 0;
}

static int
vfsync(struct vfile *f)
{
	pthread_rwlock_rdlock(&g.use);
	int r_ = vfsync_unlocked(f);
	int e_ = errno;
	pthread_rwlock_unlock(&g.use);
	errno = e_;
	return r_;
}

/* access() rules for the modes 0644 and 0755 the shim reports */
static int
vaccess(const struct rpath *r, int mode)
{
	struct stat st;
	int ret = vstat(r, &st);
	if (ret)
		return ret;
	if ((mode & X_OK) && !S_ISDIR(st.st_mode))
		return -EACCES; /* no execute bit is set, for root neither */
	return 0;
}

/* --- stdio -------------------------------------------------------------------- */

/*
 * glibc's stdio reads and writes through internal calls that no
 * interposer sees, so a FILE on a vems fd is a fopencookie stream whose
 * functions call the shim. fopen, fdopen and freopen of vems files give
 * one; fileno works on it. When a vems file becomes fd 0, 1 or 2 (a
 * shell's redirection, an inherited fd) stdin, stdout or stderr is
 * swapped for such a stream, and swapped back when the fd stops being a
 * vems file.
 */
struct cookie {
	int fd;
	bool own; /* fclose closes fd */
	FILE *fp;
	struct cookie *next;
};
static struct cookie *g_cookies;
static pthread_mutex_t g_cookie_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *g_std_orig[3];

static ssize_t
ck_read(void *c, char *buf, size_t n)
{
	return read(((struct cookie *)c)->fd, buf, n);
}

static ssize_t
ck_write(void *c, const char *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w =
			write(((struct cookie *)c)->fd, buf + done, n - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return (ssize_t)done; /* 0 (an error) or a short count */
}

static int
ck_seek(void *c, off64_t *off, int whence)
{
	off_t r = lseek(((struct cookie *)c)->fd, (off_t)*off, whence);
	if (r < 0)
		return -1;
	*off = r;
	return 0;
}

static int
ck_close(void *arg)
{
	struct cookie *c = arg;
	pthread_mutex_lock(&g_cookie_lock);
	for (struct cookie **pp = &g_cookies; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&g_cookie_lock);
	int r = c->own ? close(c->fd) : 0;
	free(c);
	return r;
}

static FILE *
cookie_open(int fd, const char *mode, bool own)
{
	struct cookie *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->own = own;
	cookie_io_functions_t io = {ck_read, ck_write, ck_seek, ck_close};
	FILE *fp = fopencookie(c, mode, io);
	if (fp == NULL) {
		free(c);
		return NULL;
	}
	c->fp = fp;
	pthread_mutex_lock(&g_cookie_lock);
	c->next = g_cookies;
	g_cookies = c;
	pthread_mutex_unlock(&g_cookie_lock);
	return fp;
}

/* The vems fd of a shim stream, or -1. */
static int
cookie_fd(FILE *fp)
{
	int fd = -1;
	pthread_mutex_lock(&g_cookie_lock);
	for (struct cookie *c = g_cookies; c; c = c->next)
		if (c->fp == fp) {
			fd = c->fd;
			break;
		}
	pthread_mutex_unlock(&g_cookie_lock);
	return fd;
}

static FILE **
std_stream(int fd)
{
	return fd == 0 ? &stdin : fd == 1 ? &stdout : &stderr;
}

static void
stdio_attach(int fd)
{
	if (g_std_orig[fd])
		return;
	uint32_t acc = atomic_load(&vfile_of(fd)->ofd->flags) & O_ACCMODE;
	const char *mode = fd == 0 ? (acc == O_WRONLY ? NULL : "r")
				   : (acc == O_RDONLY ? NULL : "a");
	if (mode == NULL)
		return;
	FILE *c = cookie_open(fd, mode, false);
	if (c == NULL)
		return;
	if (fd == 2)
		setvbuf(c, NULL, _IONBF, 0);
	FILE **sp = std_stream(fd);
	g_std_orig[fd] = *sp;
	*sp = c;
}

static void
stdio_detach(int fd)
{
	if (g_std_orig[fd] == NULL)
		return;
	FILE **sp = std_stream(fd);
	FILE *c = *sp;
	*sp = g_std_orig[fd];
	g_std_orig[fd] = NULL;
	fclose(c); /* flushes it; the fd stays open */
}

/* open(2) flags for an fopen mode */
static int
mode_flags(const char *mode)
{
	int fl;
	switch (mode[0]) {
	case 'r':
		fl = O_RDONLY;
		break;
	case 'w':
		fl = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		fl = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	for (const char *m = mode + 1; *m && *m != ','; m++) {
		if (*m == '+')
			fl = (fl & ~O_ACCMODE) | O_RDWR;
		else if (*m == 'x')
			fl |= O_EXCL;
		else if (*m == 'e')
			fl |= O_CLOEXEC;
	}
	return fl;
}

/* --- the pool's end, fork, exec ----------------------------------------------- */

/*
 * A cwd inside the prefix exists only here: exec passes it on as
 * VEMS_CWD (a new program starts there), and removes a stale one.
 */
static char **
exec_env(char *const envp[])
{
	if (!shim_active)
		return (char **)envp;
	static __thread char *env[4096 + 2];
	static __thread char cwd_var[PATH_MAX + 16];
	size_t n = 0;
	for (size_t i = 0; envp && envp[i]; i++) {
		if (strncmp(envp[i], "VEMS_CWD=", 9) == 0)
			continue;
		if (n == 4096)
			return (char **)envp; /* too many: left as they are */
		env[n++] = envp[i];
	}
	glock();
	if (g.cwd[0]) {
		snprintf(cwd_var, sizeof(cwd_var), "VEMS_CWD=%s", g.cwd);
		env[n++] = cwd_var;
	}
	gunlock();
	env[n] = NULL;
	return env;
}

static void
release_for_exec(void)
{
	if (!shim_active)
		return;
	fflush(NULL); /* shim streams write through the pool */
	pthread_rwlock_wrlock(&g.use);
	glock();
	if (g.pool && getpid() == g.pid)
		idle_release_locked();
	gunlock();
	pthread_rwlock_unlock(&g.use);
}

/*
 * Before fork: a process that holds the pool and is not using it lets it
 * go, so that the child (fio's workers, a shell's subshell) can open it
 * for itself: a child forked while its parent holds the pool can never
 * use it (its copy of libpmemobj's state and mapping are the parent's).
 * The parent reopens it when it next needs it. Not when the fork comes
 * from inside the shim (libvems validates a pool in a child), nor while
 * a call is using the pool or an unlinked open file needs it.
 */
static void
fork_prepare(void)
{
	if (!t_holds) /* not libvems's own validation child */
		spares_unshare_all(true);
	if (!t_holds) {
		glock();
		t_fork_locked = true;
		if (g.pool && getpid() == g.pid &&
		    atomic_load(&g.orphans) == 0 &&
		    pthread_rwlock_trywrlock(&g.use) == 0) {
			idle_release_locked();
			pthread_rwlock_unlock(&g.use);
		}
	}
}

static void
fork_parent(void)
{
	if (t_fork_locked) {
		t_fork_locked = false;
		gunlock();
	}
}

static void
fork_child(void)
{
	if (t_fork_locked) {
		t_fork_locked = false;
		gunlock();
	}
	g.pid = getpid();
	if (g.pool) {
		/* the parent's: never used nor closed here */
		g_forked_holder = true;
		g.pool = NULL;
	}
	atomic_fetch_add(&g.gen, 1);
	g.idle_thread = false;
	if (g.watch_fd >= 0) {
		sys_close(g.watch_fd);
		g.watch_fd = -1;
	}
}

/* Adopts the vems fds this program inherited through exec. */
static void
adopt_inherited(void)
{
	int dfd = sys_open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	int found[256];
	size_t nf = 0;
	char buf[4096];
	long n;
	while ((n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			off += d->d_reclen;
			char *end;
			long fd = strtol(d->d_name, &end, 10);
			if (*end != '\0' || end == d->d_name || fd == dfd)
				continue;
			char lp[64], target[256];
			snprintf(lp, sizeof(lp), "/proc/self/fd/%ld", fd);
			long l = syscall(SYS_readlinkat, AT_FDCWD, lp, target,
					 sizeof(target) - 1);
			if (l <= 0)
				continue;
			target[l] = '\0';
			if (strncmp(target, "/memfd:" OFD_NAME,
				    sizeof("/memfd:" OFD_NAME) - 1) == 0 &&
			    nf < sizeof(found) / sizeof(found[0]))
				found[nf++] = (int)fd;
		}
	}
	sys_close(dfd);
	for (size_t i = 0; i < nf; i++) {
		struct ofd *o = ofd_map(found[i]);
		if (o && vfile_attach(found[i], o, 0) != 0)
			munmap(o, sizeof(*o));
		else if (o)
			shim_debug("fd %d: inherited %s/%s", found[i], g.prefix,
				   o->name);
	}
}

__attribute__((constructor)) static void
shim_init(void)
{
	const char *e;
	g.debug = (e = getenv("VEMS_SHIM_DEBUG")) && strcmp(e, "0") != 0 && *e;
	g.stats = (e = getenv("VEMS_SHIM_STATS")) && strcmp(e, "0") != 0 && *e;
	g.pid = getpid();
	if (g.stats || g.debug) {
		int d = (int)syscall(SYS_fcntl, 2, F_DUPFD_CLOEXEC, 512);
		if (d >= 0)
			g_errfd = d;
	}
	const char *pool = getenv("VEMS_POOL"), *prefix = getenv("VEMS_PREFIX");
	if (pool == NULL || *pool == '\0' || prefix == NULL ||
	    *prefix == '\0') {
		if ((pool && *pool) || (prefix && *prefix))
			say("VEMS_POOL and VEMS_PREFIX must both be set: "
			    "serving nothing");
		return;
	}
	if (prefix[0] != '/' ||
	    normalize(prefix, g.prefix, sizeof(g.prefix)) != 0 ||
	    strcmp(g.prefix, "/") == 0) {
		say("VEMS_PREFIX=%s: must be an absolute path other than /: "
		    "serving nothing",
		    prefix);
		return;
	}
	g.prefix_len = strlen(g.prefix);
	if (pool[0] == '/') {
		snprintf(g.pool_path, sizeof(g.pool_path), "%s", pool);
	} else {
		char cwd[PATH_MAX];
		if (syscall(SYS_getcwd, cwd, sizeof(cwd)) < 0) {
			say("VEMS_POOL=%s: cannot resolve it: serving nothing",
			    pool);
			return;
		}
		size_t cl = strlen(cwd), pl = strlen(pool);
		if (cl + 1 + pl >= sizeof(g.pool_path)) {
			say("VEMS_POOL=%s: path too long: serving nothing",
			    pool);
			return;
		}
		memcpy(g.pool_path, cwd, cl);
		g.pool_path[cl] = '/';
		memcpy(g.pool_path + cl + 1, pool, pl + 1);
	}
	g.lock_timeout_ms = 5000;
	if ((e = getenv("VEMS_LOCK_TIMEOUT")) && *e) {
		char *end;
		double s = strtod(e, &end);
		if (*end == '\0' && s >= 0 && s < 86400)
			g.lock_timeout_ms = (int)(s * 1000);
		else
			say("VEMS_LOCK_TIMEOUT=%s: not a number of seconds; "
			    "using 5",
			    e);
	}
	struct rlimit rl;
	rlim_t want = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		want = rl.rlim_max == RLIM_INFINITY ? (1u << 20) : rl.rlim_max;
		if (want > (1u << 20))
			want = 1u << 20;
		if (want < rl.rlim_cur)
			want = rl.rlim_cur;
		if (want < 1024)
			want = 1024;
	}
	g.fds = calloc(want, sizeof(*g.fds));
	if (g.fds == NULL) {
		say("out of memory: serving nothing");
		return;
	}
	g.nfds = (int)want;
	g.uid = geteuid();
	g.gid = getegid();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 256)
		g_spare_base = (rl.rlim_cur > 4096 ? 4096 : (int)rl.rlim_cur) -
			2 * SPARE_MAX;
	if (syscall(SYS_getrandom, &g_rand, sizeof(g_rand), 0) !=
		    (long)sizeof(g_rand) ||
	    g_rand == 0)
		g_rand = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)g.pid;
	if ((e = getenv("VEMS_CWD")) && e[0] == '/') {
		char c[PATH_MAX];
		if (normalize(e, c, sizeof(c)) == 0 &&
		    strncmp(c, g.prefix, g.prefix_len) == 0 &&
		    (c[g.prefix_len] == '\0' || c[g.prefix_len] == '/'))
			strcpy(g.cwd, c);
	}
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	shim_active = true;
	adopt_inherited();
	shim_debug("serving %s from %s", g.prefix, g.pool_path);
}

__attribute__((destructor)) static void
shim_fini(void)
{
	if (shim_active) {
		fflush(NULL); /* shim streams write through the pool */
		glock();
		if (g.pool && getpid() == g.pid) {
			int r = vems_pool_close(&g.pool);
			if (r)
				say("closing pool %s: %s", g.pool_path,
				    vems_errormsg());
			atomic_fetch_add(&g.gen, 1);
		}
		gunlock();
	}
	if (g.stats)
		print_stats();
}

/* =========================================================================
 * The interposed calls. Each one serves a vems path or fd, or passes the
 * call to libc unchanged (a path rebuilt from a vems cwd or directory fd is
 * passed absolute).
 * ========================================================================= */

/* fortified and legacy names glibc's headers do not declare */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t len, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t len, off64_t off,
		      size_t buflen);
char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen);
char *__getcwd_chk(char *buf, size_t size, size_t buflen);
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st,
	       int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st,
		 int flags);
void __chk_fail(void) __attribute__((noreturn));

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat64");

DEFINE_REAL(openat)
DEFINE_REAL(close)
DEFINE_REAL(read)
DEFINE_REAL(write)
DEFINE_REAL(pread64)
DEFINE_REAL(pwrite64)
DEFINE_REAL(readv)
DEFINE_REAL(writev)
DEFINE_REAL(preadv64)
DEFINE_REAL(pwritev64)
DEFINE_REAL(preadv64v2)
DEFINE_REAL(pwritev64v2)
DEFINE_REAL(lseek64)
DEFINE_REAL(fstatat64)
DEFINE_REAL(fstat64)
DEFINE_REAL(statx)
DEFINE_REAL(faccessat)
DEFINE_REAL(truncate64)
DEFINE_REAL(ftruncate64)
DEFINE_REAL(fsync)
DEFINE_REAL(fdatasync)
DEFINE_REAL(sync_file_range)
DEFINE_REAL(syncfs)
DEFINE_REAL(fallocate64)
DEFINE_REAL(posix_fallocate64)
DEFINE_REAL(unlinkat)
DEFINE_REAL(renameat2)
DEFINE_REAL(mkdirat)
DEFINE_REAL(fcntl64)
DEFINE_REAL(flock)
DEFINE_REAL(dup)
DEFINE_REAL(dup2)
DEFINE_REAL(dup3)
DEFINE_REAL(linkat)
DEFINE_REAL(symlinkat)
DEFINE_REAL(readlinkat)
DEFINE_REAL(fchmodat)
DEFINE_REAL(fchmod)
DEFINE_REAL(fchownat)
DEFINE_REAL(fchown)
DEFINE_REAL(utimensat)
DEFINE_REAL(futimens)
DEFINE_REAL(chdir)
DEFINE_REAL(fchdir)
DEFINE_REAL(getcwd)
DEFINE_REAL(realpath)
DEFINE_REAL(opendir)
DEFINE_REAL(fdopendir)
DEFINE_REAL(readdir)
DEFINE_REAL(readdir64)
DEFINE_REAL(closedir)
DEFINE_REAL(rewinddir)
DEFINE_REAL(telldir)
DEFINE_REAL(seekdir)
DEFINE_REAL(dirfd)
DEFINE_REAL(scandir)
DEFINE_REAL(scandir64)
DEFINE_REAL(getdents64)
DEFINE_REAL(mmap64)
DEFINE_REAL(sendfile64)
DEFINE_REAL(copy_file_range)
DEFINE_REAL(splice)
DEFINE_REAL(fopen64)
DEFINE_REAL(fdopen)
DEFINE_REAL(freopen64)
DEFINE_REAL(fileno)
DEFINE_REAL(execve)
DEFINE_REAL(close_range)
DEFINE_REAL(closefrom)
DEFINE_REAL(posix_spawn)
DEFINE_REAL(posix_spawnp)
DEFINE_REAL(_Fork)
DEFINE_REAL(execvpe)
DEFINE_REAL(fexecve)

/* resolve, or return the libc call: a statement for the call wrappers */
#define SERVE_PATH(dirfd, path, r, realcall)                                   \
	struct rpath r;                                                        \
	do {                                                                   \
		int rr_ = resolve((dirfd), (path), &r);                        \
		if (rr_ < 0)                                                   \
			return fail(-rr_);                                     \
		if (rr_ == 0) {                                                \
			shim_count(__func__, false);                           \
			return realcall;                                       \
		}                                                              \
		shim_count(__func__, true);                                    \
		shim_debug("%s %s", __func__, r.abs);                          \
	} while (0)

/* 0 or -errno as the libc result */
static int
ret0(int r)
{
	return r ? fail(-r) : 0;
}

/* --- open, close ---------------------------------------------------------- */

static int
do_open(int dirfd, const char *path, int flags, mode_t mode, const char *call)
{
	struct rpath r;
	int rr = resolve(dirfd, path, &r);
	if (rr < 0)
		return fail(-rr);
	if (rr == 0) {
		shim_count(call, false);
		return real_openat()(r.real == path ? dirfd : AT_FDCWD, r.real,
				     flags, mode);
	}
	shim_count(call, true);
	int fd = vopen(&r, flags);
	return fd < 0 ? fail(-fd) : fd;
}

#define OPEN_MODE(flags, mode)                                                 \
	mode_t mode = 0;                                                       \
	if ((flags) & (O_CREAT | O_TMPFILE)) {                                 \
		va_list ap;                                                    \
		va_start(ap, flags);                                           \
		mode = (mode_t)va_arg(ap, int);                                \
		va_end(ap);                                                    \
	}

int
open(const char *path, int flags, ...)
{
	OPEN_MODE(flags, mode);
	return do_open(AT_FDCWD, path, flags, mode, __func__);
}

int
open64(const char *path, int flags, ...)
{
	OPEN_MODE(flags, mode);
	return do_open(AT_FDCWD, path, flags, mode, __func__);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags, mode);
	return do_open(dirfd, path, flags, mode, __func__);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(flags, mode);
	return do_open(dirfd, path, flags, mode, __func__);
}

int
__open_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags, 0, __func__);
}

int
__open64_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags, 0, __func__);
}

int
__openat_2(int dirfd, const char *path, int flags)
{
	return do_open(dirfd, path, flags, 0, __func__);
}

int
__openat64_2(int dirfd, const char *path, int flags)
{
	return do_open(dirfd, path, flags, 0, __func__);
}

int
creat(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode,
		       __func__);
}

int
creat64(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode,
		       __func__);
}

int
close(int fd)
{
	struct vfile *f = vfile_of(fd);
	shim_count(__func__, f != NULL);
	if (f == NULL) {
		spares_drop(fd, fd);
		return real_close()(fd);
	}
	if (getpid() != g.pid) /* a vfork()ed child: the table is the
				  parent's */
		return real_close()(fd);
	shim_debug("close %d (%s)", fd, f->ofd->name);
	uint64_t owner = f->ofd_ino;
	if (!f->ofd->is_dir)
		posix_unlock_all(f->ofd->partition, f->ofd->id);
	vfile_detach(fd, true);
	int r = real_close()(fd);
	locks_release(owner);
	return r;
}

/* vems fds among [lo, hi] closed as close() would; spares let go */
static void
close_vems_range(unsigned lo, unsigned hi)
{
	int m = atomic_load(&g.maxfd);
	if (getpid() == g.pid)
		for (unsigned fd = lo; fd <= hi && (int)fd <= m; fd++)
			if (vfile_of((int)fd))
				close((int)fd);
	spares_drop((int)(lo > INT_MAX ? INT_MAX : lo),
		    (int)(hi > INT_MAX ? INT_MAX : hi));
}

int
close_range(unsigned lo, unsigned hi, int flags)
{
	shim_count(__func__, false);
	if (lo <= hi && !(flags & CLOSE_RANGE_CLOEXEC))
		close_vems_range(lo, hi);
	return real_close_range()(lo, hi, flags);
}

void
closefrom(int lo)
{
	shim_count(__func__, false);
	if (lo >= 0)
		close_vems_range((unsigned)lo, ~0u);
	real_closefrom()(lo);
}

/* --- read, write -------------------------------------------------------- */

ssize_t
read(int fd, void *buf, size_t len)
{
	struct vfile *f = vfile_of(fd);
	shim_count(__func__, f != NULL);
	if (f == NULL)
		return real_read()(fd, buf, len);
	struct iovec v = {buf, len};
	return vpreadv(f, &v, 1, 0, true);
}

ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return read(fd, buf, len);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	struct vfile *f = vfile_of(fd);
	shim_count(__func__, f != NULL);
	if (f == NULL)
		return real_write()(fd, buf, len);
	struct iovec v = {(void *)buf, len};
	return vpwritev(f, &v, 1, 0, true);
}

static ssize_t
do_pread(int fd, void *buf, size_t len, off64_t off, const char *call)
{
	struct vfile *f = vfile_of(fd);
	shim_count(call, f != NULL);
	if (f == NULL)
		return real_pread64()(fd, buf, len, off);
	struct iovec v = {buf, len};
	return vpreadv(f, &v, 1, off, false);
}

static ssize_t
do_pwrite(int fd, const void *buf, size_t len, off64_t off, const char *call)
{
	struct vfile *f = vfile_of(fd);
	shim_count(call, f != NULL);
	if (f == NULL)
		return real_pwrite64()(fd, buf, len, off);
	struct iovec v = {(void *)buf, len};
	return vpwritev(f, &v, 1, off, false);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	return do_pread(fd, buf, len, off, __func__);
}

ssize_t
pread64(int fd, void *buf, size_t len, off64_t off)
{
	return do_pread(fd, buf, len, off, __func__);
}

ssize_t
__pread_chk(int fd, void *buf, size_t len, off_t off, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return do_pread(fd, buf, len, off, __func__);
}

ssize_t
__pread64_chk(int fd, void *buf, size_t len, off64_t off, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return do_pread(fd, buf, len, off, __func__);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return do_pwrite(fd, buf, len, off, __func__);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	return do_pwrite(fd, buf, len, off, __func__);
}

/* vectored: off < 0 with use_offset means the file offset */
static ssize_t
do_preadv(int fd, const struct iovec *iov, int cnt, off64_t off,
	  bool use_offset, int flags, const char *call)
{
	struct vfile *f = vfile_of(fd);
	shim_count(call, f != NULL);
	if (f == NULL) {
		if (use_offset && off == -2)
			return real_readv()(fd, iov, cnt);
		if (use_offset || flags)
			return real_preadv64v2()(fd, iov, cnt,
						 use_offset ? -1 : off, flags);
		return real_preadv64()(fd, iov, cnt, off);
	}
	return vpreadv(f, iov, cnt, off, use_offset);
}

static ssize_t
do_pwritev(int fd, const struct iovec *iov, int cnt, off64_t off,
	   bool use_offset, int flags, const char *call)
{
	struct vfile *f = vfile_of(fd);
	shim_count(call, f != NULL);
	if (f == NULL) {
		if (use_offset && off == -2)
			return real_writev()(fd, iov, cnt);
		if (use_offset || flags)
			return real_pwritev64v2()(fd, iov, cnt,
						  use_offset ? -1 : off, flags);
		return real_pwritev64()(fd, iov, cnt, off);
	}
	return vpwritev(f, iov, cnt, off, use_offset);
}

ssize_t
readv(int fd, const struct iovec *iov, int cnt)
{
	return do_preadv(fd, iov, cnt, -2, true, 0, __func__);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	return do_pwritev(fd, iov, cnt, -2, true, 0, __func__);
}

ssize_t
preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return do_preadv(fd, iov, cnt, off, false, 0, __func__);
}

ssize_t
preadv64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	return do_preadv(fd, iov, cnt, off, false, 0, __func__);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return do_pwritev(fd, iov, cnt, off, false, 0, __func__);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	return do_pwritev(fd, iov, cnt, off, false, 0, __func__);
}

ssize_t
preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return do_preadv(fd, iov, cnt, off, off == -1, flags, __func__);
}

ssize_t
preadv64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	return do_preadv(fd, iov, cnt, off, off == -1, flags, __func__);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return do_pwritev(fd, iov, cnt, off, off == -1, flags, __func__);
}

ssize_t
pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	return do_pwritev(fd, iov, cnt, off, off == -1, flags, __func__);
}

static off64_t
do_lseek(int fd, off64_t off, int whence, const char *call)
{
	struct vfile *f = vfile_of(fd);
	shim_count(call, f != NULL);
	if (f == NULL)
		return real_lseek64()(fd, off, whence);
	return vlseek(f, off, whence);
}

off_t
lseek(int fd, off_t off, int whence)
{
	return do_lseek(fd, off, whence, __func__);
}

off64_t
lseek64(int fd, off64_t off, int whence)
{
	return do_lseek(fd, off, whence, __func__);
}

/* --- stat ------------------------------------------------------------------ */

static int
do_fstatat(int dirfd, const char *path, struct stat *st, int flags,
	   const char *call)
{
	if (path && path[0] == '\0' && (flags & AT_EMPTY_PATH)) {
		struct vfile *f = vfile_of(dirfd);
		shim_count(call, f != NULL);
		if (f)
			return ret0(vfstat(f, st));
		return real_fstatat64()(dirfd, path, (struct stat64 *)st,
					flags);
	}
	struct rpath r;
	int rr = resolve(dirfd, path, &r);
	if (rr < 0)
		return fail(-rr);
	if (rr == 0) {
		shim_count(call, false);
		return real_fstatat64()(r.real == path ? dirfd : AT_FDCWD,
					r.real, (struct stat64 *)st, flags);
	}
	shim_count(call, true);
	return ret0(vstat(&r, st));
}

static int
do_fstat(int fd, struct stat *st, const char *call)
{
	struct vfile *f = vfile_of(fd);
	shim_count(call, f != NULL);
	if (f == NULL)
		return real_fstat64()(fd, (struct stat64 *)st);
	return ret0(vfstat(f, st));
}

int
stat(const char *path, struct stat *st)
{
	return do_fstatat(AT_FDCWD, path, st, 0, __func__);
}

int
stat64(const char *path, struct stat64 *st)
{
	return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0, __func__);
}

int
lstat(const char *path, struct stat *st)
{
	return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW, __func__);
}

int
lstat64(const char *path, struct stat64 *st)
{
	return do_fstatat(AT_FDCWD, path, (struct stat *)st,
			  AT_SYMLINK_NOFOLLOW, __func__);
}

int
fstat(int fd, struct stat *st)
{
	return do_fstat(fd, st, __func__);
}

int
fstat64(int fd, struct stat64 *st)
{
	return do_fstat(fd, (struct stat *)st, __func__);
}

int
fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return do_fstatat(dirfd, path, st, flags, __func__);
}

int
fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return do_fstatat(dirfd, path, (struct stat *)st, flags, __func__);
}

int
__xstat(int ver, const char *path, struct stat *st)
{
	(void)ver;
	return do_fstatat(AT_FDCWD, path, st, 0, __func__);
}

int
__xstat64(int ver, const char *path, struct stat64 *st)
{
	(void)ver;
	return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0, __func__);
}

int
__lxstat(int ver, const char *path, struct stat *st)
{
	(void)ver;
	return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW, __func__);
}

int
__lxstat64(int ver, const char *path, struct stat64 *st)
{
	(void)ver;
	return do_fstatat(AT_FDCWD, path, (struct stat *)st,
			  AT_SYMLINK_NOFOLLOW, __func__);
}

int
__fxstat(int ver, int fd, struct stat *st)
{
	(void)ver;
	return do_fstat(fd, st, __func__);
}

int
__fxstat64(int ver, int fd, struct stat64 *st)
{
	(void)ver;
	return do_fstat(fd, (struct stat *)st, __func__);
}

int
__fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	(void)ver;
	return do_fstatat(dirfd, path, st, flags, __func__);
}

int
__fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	(void)ver;
	return do_fstatat(dirfd, path, (struct stat *)st, flags, __func__);
}

static struct statx_timestamp
stx_ts(struct timespec t)
{
	return (struct statx_timestamp){.tv_sec = t.tv_sec,
					.tv_nsec = (uint32_t)t.tv_nsec};
}

int
statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *sx)
{
	struct stat st;
	int r;
	struct vfile *f =
		!is_null(path) && path[0] == '\0' && (flags & AT_EMPTY_PATH)
		? vfile_of(dirfd)
		: NULL;
	if (f) {
		shim_count(__func__, true);
		r = vfstat(f, &st);
	} else {
		struct rpath rp;
		int rr = resolve(dirfd, path, &rp);
		if (rr < 0)
			return fail(-rr);
		if (rr == 0) {
			shim_count(__func__, false);
			return real_statx()(rp.real == path ? dirfd : AT_FDCWD,
					    rp.real, flags, mask, sx);
		}
		shim_count(__func__, true);
		r = vstat(&rp, &st);
	}
	if (r)
		return fail(-r);
	memset(sx, 0, sizeof(*sx));
	sx->stx_mask = STATX_BASIC_STATS;
	sx->stx_blksize = (uint32_t)st.st_blksize;
	sx->stx_nlink = (uint32_t)st.st_nlink;
	sx->stx_uid = st.st_uid;
	sx->stx_gid = st.st_gid;
	sx->stx_mode = (uint16_t)st.st_mode;
	sx->stx_ino = st.st_ino;
	sx->stx_size = (uint64_t)st.st_size;
	sx->stx_blocks = (uint64_t)st.st_blocks;
	sx->stx_atime = stx_ts(st.st_atim);
	sx->stx_mtime = stx_ts(st.st_mtim);
	sx->stx_ctime = stx_ts(st.st_ctim);
	sx->stx_dev_major = (uint32_t)(VEMS_DEV >> 8);
	sx->stx_dev_minor = (uint32_t)(VEMS_DEV & 0xff);
	return 0;
}

static int
do_faccessat(int dirfd, const char *path, int mode, int flags, const char *call)
{
	struct rpath r;
	int rr = resolve(dirfd, path, &r);
	if (rr < 0)
		return fail(-rr);
	if (rr == 0) {
		shim_count(call, false);
		return real_faccessat()(r.real == path ? dirfd : AT_FDCWD,
					r.real, mode, flags);
	}
	shim_count(call, true);
	return ret0(vaccess(&r, mode));
}

int
access(const char *path, int mode)
{
	return do_faccessat(AT_FDCWD, path, mode, 0, __func__);
}

int
faccessat(int dirfd, const char *path, int mode, int flags)
{
	return do_faccessat(dirfd, path, mode, flags, __func__);
}

int
euidaccess(const char *path, int mode)
{
	return do_faccessat(AT_FDCWD, path, mode, AT_EACCESS, __func__);
}

int
eaccess(const char *path, int mode)
{
	return do_faccessat(AT_FDCWD, path, mode, AT_EACCESS, __func__);
}

/* --- size, sync, space ----------------------------------------------------- */

int
truncate(const char *path, off_t len)
{
	SERVE_PATH(AT_FDCWD, path, r, real_truncate64()(r.real, len));
	return ret0(vtruncate(&r, len));
}

int
truncate64(const char *path, off64_t len)
{
	SERVE_PATH(AT_FDCWD, path, r, real_truncate64()(r.real, len));
	return ret0(vtruncate(&r, len));
}

#define SERVE_FD(fd, f, realcall)                                              \
	struct vfile *f = vfile_of(fd);                                        \
	shim_count(__func__, f != NULL);                                       \
	if (f == NULL)                                                         \
		return realcall;

int
ftruncate(int fd, off_t len)
{
	SERVE_FD(fd, f, real_ftruncate64()(fd, len));
	return ret0(vftruncate(f, len));
}

int
ftruncate64(int fd, off64_t len)
{
	SERVE_FD(fd, f, real_ftruncate64()(fd, len));
	return ret0(vftruncate(f, len));
}

int
fsync(int fd)
{
	SERVE_FD(fd, f, real_fsync()(fd));
	return ret0(vfsync(f));
}

int
fdatasync(int fd)
{
	SERVE_FD(fd, f, real_fdatasync()(fd));
	return ret0(vfsync(f));
}

int
sync_file_range(int fd, off64_t off, off64_t len, unsigned flags)
{
	SERVE_FD(fd, f, real_sync_file_range()(fd, off, len, flags));
	return ret0(vfsync(f));
}

static int
pool_persist(void)
{
	glock();
	int r = g.pool ? vems_pool_persist(g.pool) : 0;
	gunlock();
	return r ? -err_of(r) : 0;
}

int
syncfs(int fd)
{
	SERVE_FD(fd, f, real_syncfs()(fd));
	return ret0(pool_persist());
}

void
sync(void)
{
	shim_count(__func__, false);
	(void)pool_persist();
	syscall(SYS_sync);
}

/* fallocate: space is not reserved ahead (README); a size change is. */
static int
vfallocate(struct vfile *f, int mode, off64_t off, off64_t len)
{
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;
	if (f->ofd->is_dir)
		return -EISDIR;
	if ((atomic_load(&f->ofd->flags) & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	uint64_t size;
	int r = vsize(f, &size);
	if (r)
		return r;
	if (mode & FALLOC_FL_KEEP_SIZE || (uint64_t)(off + len) <= size)
		return 0;
	return vftruncate(f, off + len);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	SERVE_FD(fd, f, real_fallocate64()(fd, mode, off, len));
	return ret0(vfallocate(f, mode, off, len));
}

int
fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	SERVE_FD(fd, f, real_fallocate64()(fd, mode, off, len));
	return ret0(vfallocate(f, mode, off, len));
}

/* posix_fallocate returns the error instead of setting errno */
int
posix_fallocate(int fd, off_t off, off_t len)
{
	SERVE_FD(fd, f, real_posix_fallocate64()(fd, off, len));
	return -vfallocate(f, 0, off, len);
}

int
posix_fallocate64(int fd, off64_t off, off64_t len)
{
	SERVE_FD(fd, f, real_posix_fallocate64()(fd, off, len));
	return -vfallocate(f, 0, off, len);
}

/* --- names -------------------------------------------------------------------- */

int
unlink(const char *path)
{
	SERVE_PATH(AT_FDCWD, path, r, real_unlinkat()(AT_FDCWD, r.real, 0));
	return ret0(vunlink(&r));
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	SERVE_PATH(dirfd, path, r,
		   real_unlinkat()(r.real == path ? dirfd : AT_FDCWD, r.real,
				   flags));
	return ret0(flags & AT_REMOVEDIR ? vrmdir(&r) : vunlink(&r));
}

int
rmdir(const char *path)
{
	SERVE_PATH(AT_FDCWD, path, r,
		   real_unlinkat()(AT_FDCWD, r.real, AT_REMOVEDIR));
	return ret0(vrmdir(&r));
}

int
mkdir(const char *path, mode_t mode)
{
	SERVE_PATH(AT_FDCWD, path, r, real_mkdirat()(AT_FDCWD, r.real, mode));
	return ret0(vmkdir(&r));
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	SERVE_PATH(dirfd, path, r,
		   real_mkdirat()(r.real == path ? dirfd : AT_FDCWD, r.real,
				  mode));
	return ret0(vmkdir(&r));
}

static int
do_rename(int ad, const char *a, int bd, const char *b, unsigned flags,
	  const char *call)
{
	struct rpath ra, rb;
	int x = resolve(ad, a, &ra), y = resolve(bd, b, &rb);
	if (x < 0 || y < 0)
		return fail(x < 0 ? -x : -y);
	if (x == 0 && y == 0) {
		shim_count(call, false);
		return real_renameat2()(ra.real == a ? ad : AT_FDCWD, ra.real,
					rb.real == b ? bd : AT_FDCWD, rb.real,
					flags);
	}
	shim_count(call, true);
	if (x != y)
		return fail(EXDEV); /* mv copies, then unlinks */
	shim_debug("rename %s -> %s", ra.abs, rb.abs);
	return ret0(vrename(&ra, &rb, flags));
}

int
rename(const char *a, const char *b)
{
	return do_rename(AT_FDCWD, a, AT_FDCWD, b, 0, __func__);
}

int
renameat(int ad, const char *a, int bd, const char *b)
{
	return do_rename(ad, a, bd, b, 0, __func__);
}

int
renameat2(int ad, const char *a, int bd, const char *b, unsigned flags)
{
	return do_rename(ad, a, bd, b, flags, __func__);
}

static int
do_link(int ad, const char *a, int bd, const char *b, int flags,
	const char *call)
{
	struct rpath ra, rb;
	int x = resolve(ad, a, &ra), y = resolve(bd, b, &rb);
	if (x < 0 || y < 0)
		return fail(x < 0 ? -x : -y);
	if (x == 0 && y == 0) {
		shim_count(call, false);
		return real_linkat()(ra.real == a ? ad : AT_FDCWD, ra.real,
				     rb.real == b ? bd : AT_FDCWD, rb.real,
				     flags);
	}
	shim_count(call, true);
	/* hard links are not supported (README): EPERM, as on file systems
	 * without them, and programs (git) fall back to rename */
	return fail(x != y ? EXDEV : EPERM);
}

int
link(const char *a, const char *b)
{
	return do_link(AT_FDCWD, a, AT_FDCWD, b, 0, __func__);
}

int
linkat(int ad, const char *a, int bd, const char *b, int flags)
{
	return do_link(ad, a, bd, b, flags, __func__);
}

int
symlink(const char *target, const char *path)
{
	SERVE_PATH(AT_FDCWD, path, r,
		   real_symlinkat()(target, AT_FDCWD, r.real));
	return fail(EPERM); /* symbolic links are not supported (README) */
}

int
symlinkat(const char *target, int dirfd, const char *path)
{
	SERVE_PATH(dirfd, path, r,
		   real_symlinkat()(target, r.real == path ? dirfd : AT_FDCWD,
				    r.real));
	return fail(EPERM);
}

static ssize_t
do_readlinkat(int dirfd, const char *path, char *buf, size_t len,
	      const char *call)
{
	struct rpath r;
	int rr = resolve(dirfd, path, &r);
	if (rr < 0)
		return fail(-rr);
	if (rr == 0) {
		shim_count(call, false);
		return real_readlinkat()(r.real == path ? dirfd : AT_FDCWD,
					 r.real, buf, len);
	}
	shim_count(call, true);
	struct stat st;
	int e = vstat(&r, &st);
	return fail(e ? -e : EINVAL); /* never a link */
}

ssize_t
readlink(const char *path, char *buf, size_t len)
{
	return do_readlinkat(AT_FDCWD, path, buf, len, __func__);
}

ssize_t
readlinkat(int dirfd, const char *path, char *buf, size_t len)
{
	return do_readlinkat(dirfd, path, buf, len, __func__);
}

/* chmod, chown, utimes: accepted on files that exist; stat reports 0644
 * (directories 0755), the caller's ids and the data's mtime (README) */
static int
exists(const struct rpath *r)
{
	struct stat st;
	return vstat(r, &st);
}

int
chmod(const char *path, mode_t mode)
{
	SERVE_PATH(AT_FDCWD, path, r,
		   real_fchmodat()(AT_FDCWD, r.real, mode, 0));
	return ret0(exists(&r));
}

int
fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	SERVE_PATH(dirfd, path, r,
		   real_fchmodat()(r.real == path ? dirfd : AT_FDCWD, r.real,
				   mode, flags));
	return ret0(exists(&r));
}

int
fchmod(int fd, mode_t mode)
{
	SERVE_FD(fd, f, real_fchmod()(fd, mode));
	return 0;
}

int
chown(const char *path, uid_t u, gid_t gr)
{
	SERVE_PATH(AT_FDCWD, path, r,
		   real_fchownat()(AT_FDCWD, r.real, u, gr, 0));
	return ret0(exists(&r));
}

int
lchown(const char *path, uid_t u, gid_t gr)
{
	SERVE_PATH(
		AT_FDCWD, path, r,
		real_fchownat()(AT_FDCWD, r.real, u, gr, AT_SYMLINK_NOFOLLOW));
	return ret0(exists(&r));
}

int
fchownat(int dirfd, const char *path, uid_t u, gid_t gr, int flags)
{
	SERVE_PATH(dirfd, path, r,
		   real_fchownat()(r.real == path ? dirfd : AT_FDCWD, r.real, u,
				   gr, flags));
	return ret0(exists(&r));
}

int
fchown(int fd, uid_t u, gid_t gr)
{
	SERVE_FD(fd, f, real_fchown()(fd, u, gr));
	return 0;
}

int
utimensat(int dirfd, const char *path, const struct timespec t[2], int flags)
{
	if (is_null(path)) {
		SERVE_FD(dirfd, f, real_utimensat()(dirfd, path, t, flags));
		return 0;
	}
	SERVE_PATH(dirfd, path, r,
		   real_utimensat()(r.real == path ? dirfd : AT_FDCWD, r.real,
				    t, flags));
	return ret0(exists(&r));
}

int
futimens(int fd, const struct timespec t[2])
{
	SERVE_FD(fd, f, real_futimens()(fd, t));
	return 0;
}

int
utimes(const char *path, const struct timeval tv[2])
{
	struct timespec t[2], *tp = NULL;
	if (tv) {
		for (int i = 0; i < 2; i++)
			t[i] = (struct timespec){tv[i].tv_sec,
						 tv[i].tv_usec * 1000};
		tp = t;
	}
	return utimensat(AT_FDCWD, path, tp, 0);
}

int
lutimes(const char *path, const struct timeval tv[2])
{
	struct timespec t[2], *tp = NULL;
	if (tv) {
		for (int i = 0; i < 2; i++)
			t[i] = (struct timespec){tv[i].tv_sec,
						 tv[i].tv_usec * 1000};
		tp = t;
	}
	return utimensat(AT_FDCWD, path, tp, AT_SYMLINK_NOFOLLOW);
}

int
futimes(int fd, const struct timeval tv[2])
{
	struct timespec t[2], *tp = NULL;
	if (tv) {
		for (int i = 0; i < 2; i++)
			t[i] = (struct timespec){tv[i].tv_sec,
						 tv[i].tv_usec * 1000};
		tp = t;
	}
	return futimens(fd, tp);
}

int
utime(const char *path, const struct utimbuf *u)
{
	struct timespec t[2], *tp = NULL;
	if (u) {
		t[0] = (struct timespec){u->actime, 0};
		t[1] = (struct timespec){u->modtime, 0};
		tp = t;
	}
	return utimensat(AT_FDCWD, path, tp, 0);
}

/* --- locks ---------------------------------------------------------------------- */

/*
 * Record locks. Classic POSIX locks are the kernel's, on a lock file (see
 * posix_lock): they work between processes. OFD locks and flock() locks
 * belong to an open file description (the memfd's inode) and conflict
 * between descriptions; they are kept here, for the process that has the
 * descriptions open (correct within it; between processes they do not
 * conflict: README).
 */
struct rlock {
	uint64_t part, id;  /* the file */
	uint64_t owner;	    /* the description */
	int kind;	    /* 0: OFD lock, 1: flock */
	short type;	    /* F_RDLCK, F_WRLCK */
	int64_t start, end; /* [start, end) */
	struct rlock *next;
};
static struct rlock *g_locks;
static pthread_mutex_t g_locks_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_locks_cond = PTHREAD_COND_INITIALIZER;

static const struct rlock *
lock_conflict(const struct rlock *w)
{
	for (const struct rlock *l = g_locks; l; l = l->next)
		if (l->part == w->part && l->id == w->id &&
		    l->kind == w->kind && l->owner != w->owner &&
		    l->start < w->end && w->start < l->end &&
		    (l->type == F_WRLCK || w->type == F_WRLCK))
			return l;
	return NULL;
}

/* Drops owner's locks of kind in [start, end), keeping the parts of them
 * outside it. -ENOMEM. */
static int
lock_cut(const struct rlock *w)
{
	for (struct rlock **pp = &g_locks; *pp;) {
		struct rlock *l = *pp;
		if (l->part != w->part || l->id != w->id ||
		    l->kind != w->kind || l->owner != w->owner ||
		    l->end <= w->start || w->end <= l->start) {
			pp = &l->next;
			continue;
		}
		if (l->start < w->start && l->end > w->end) {
			struct rlock *right = malloc(sizeof(*right));
			if (right == NULL)
				return -ENOMEM;
			*right = *l;
			right->start = w->end;
			l->end = w->start;
			right->next = l->next;
			l->next = right;
			return 0;
		}
		if (l->start < w->start) {
			l->end = w->start;
			pp = &l->next;
		} else if (l->end > w->end) {
			l->start = w->end;
			pp = &l->next;
		} else {
			*pp = l->next;
			free(l);
		}
	}
	return 0;
}

static int
lock_set(struct rlock *w, bool wait)
{
	pthread_mutex_lock(&g_locks_lock);
	int r = 0;
	if (w->type != F_UNLCK) {
		while (lock_conflict(w)) {
			if (!wait) {
				r = -EAGAIN;
				goto out;
			}
			pthread_cond_wait(&g_locks_cond, &g_locks_lock);
		}
	}
	if ((r = lock_cut(w)) != 0)
		goto out;
	if (w->type != F_UNLCK) {
		struct rlock *n = malloc(sizeof(*n));
		if (n == NULL) {
			r = -ENOLCK;
			goto out;
		}
		*n = *w;
		n->next = g_locks;
		g_locks = n;
	}
	pthread_cond_broadcast(&g_locks_cond);
out:
	pthread_mutex_unlock(&g_locks_lock);
	return r;
}

/* The last fd of a description is gone: its locks go too. */
static void
locks_release(uint64_t owner)
{
	pthread_mutex_lock(&g_locks_lock);
	if (g_locks == NULL) {
		pthread_mutex_unlock(&g_locks_lock);
		return;
	}
	for (int fd = 0; fd < g.nfds; fd++) {
		struct vfile *f = vfile_of(fd);
		if (f && f->ofd_ino == owner) {
			pthread_mutex_unlock(&g_locks_lock);
			return; /* another fd still has it */
		}
	}
	for (struct rlock **pp = &g_locks; *pp;) {
		struct rlock *l = *pp;
		if (l->owner == owner) {
			*pp = l->next;
			free(l);
		} else {
			pp = &l->next;
		}
	}
	pthread_cond_broadcast(&g_locks_cond);
	pthread_mutex_unlock(&g_locks_lock);
}

/* the range of a struct flock on f */
static int
lock_range(struct vfile *f, const struct flock *fl, struct rlock *w)
{
	int64_t base = 0;
	if (fl->l_whence == SEEK_CUR) {
		base = atomic_load(&f->ofd->offset);
	} else if (fl->l_whence == SEEK_END) {
		uint64_t size;
		int r = vsize(f, &size);
		if (r)
			return r;
		base = (int64_t)size;
	} else if (fl->l_whence != SEEK_SET) {
		return -EINVAL;
	}
	int64_t s = base + fl->l_start, e;
	if (fl->l_len > 0) {
		e = s + fl->l_len;
	} else if (fl->l_len < 0) {
		e = s;
		s += fl->l_len;
	} else {
		e = INT64_MAX;
	}
	if (s < 0)
		return -EINVAL;
	*w = (struct rlock){.part = f->ofd->partition,
			    .id = f->ofd->id,
			    .owner = f->ofd_ino,
			    .type = fl->l_type,
			    .start = s,
			    .end = e};
	return 0;
}

/*
 * Classic POSIX locks are kept by the kernel, on a lock file next to the
 * pool (VEMS_POOL.locks), so that they work between processes as on any
 * file system (SQLite's locking relies on it): each object gets a window
 * of 2^40 bytes at an offset from its id, and a lock on bytes [s, e) of
 * the file is a lock on [base + s, base + e) there. The kernel's rules
 * then apply as they are: per process, merged, not inherited by fork.
 * Two objects whose ids share their low 23 bits share a window (a false
 * conflict at worst). As POSIX has it, closing any fd of a file drops the
 * process's locks on it (close()).
 */
#define LOCK_WINDOW_SHIFT 40
static int g_lockfile = -1;

static int
lockfile(void)
{
	if (g_lockfile >= 0)
		return g_lockfile;
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s.locks", g.pool_path);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path,
			      O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	g_lockfile = fd;
	return fd;
}

static int64_t
lock_base(uint64_t partition, uint64_t id)
{
	return (int64_t)(((id ^ partition) & 0x7fffff) << LOCK_WINDOW_SHIFT);
}

static int
posix_lock(struct vfile *f, int cmd, struct flock *fl, const struct rlock *w)
{
	glock();
	int lf = lockfile();
	gunlock();
	if (lf < 0) {
		say("cannot open the lock file %s.locks: %s", g.pool_path,
		    strerror(-lf));
		return -ENOLCK;
	}
	const int64_t window = INT64_C(1) << LOCK_WINDOW_SHIFT;
	if (w->start >= window || (w->end != INT64_MAX && w->end > window))
		return -EOVERFLOW;
	int64_t base = lock_base(f->ofd->partition, f->ofd->id);
	struct flock k = {.l_type = fl->l_type,
			  .l_whence = SEEK_SET,
			  .l_start = base + w->start,
			  .l_len = (w->end == INT64_MAX ? window : w->end) -
				  w->start};
	if (syscall(SYS_fcntl, lf, cmd, &k) != 0)
		return -errno;
	if (cmd == F_GETLK) {
		fl->l_type = k.l_type;
		if (k.l_type != F_UNLCK) {
			fl->l_whence = SEEK_SET;
			fl->l_start = k.l_start - base;
			fl->l_len = k.l_start + k.l_len >= base + window
				? 0
				: k.l_len;
			fl->l_pid = k.l_pid;
		}
	}
	return 0;
}

/* close() of a vems fd: the process's POSIX locks on its file go. */
static void
posix_unlock_all(uint64_t partition, uint64_t id)
{
	if (g_lockfile < 0)
		return;
	struct flock k = {.l_type = F_UNLCK,
			  .l_whence = SEEK_SET,
			  .l_start = lock_base(partition, id),
			  .l_len = INT64_C(1) << LOCK_WINDOW_SHIFT};
	(void)syscall(SYS_fcntl, g_lockfile, F_SETLK, &k);
}

static int
vfcntl_lock(struct vfile *f, int cmd, struct flock *fl)
{
	if (fl->l_type != F_RDLCK && fl->l_type != F_WRLCK &&
	    fl->l_type != F_UNLCK)
		return -EINVAL;
	uint32_t acc = atomic_load(&f->ofd->flags) & O_ACCMODE;
	if (cmd != F_GETLK && cmd != F_OFD_GETLK &&
	    ((fl->l_type == F_RDLCK && acc == O_WRONLY) ||
	     (fl->l_type == F_WRLCK && acc == O_RDONLY)))
		return -EBADF;
	struct rlock w;
	int r = lock_range(f, fl, &w);
	if (r == 0 && (cmd == F_SETLK || cmd == F_SETLKW || cmd == F_GETLK))
		return posix_lock(f, cmd, fl, &w);
	if (r)
		return r;
	if (cmd == F_OFD_GETLK) {
		pthread_mutex_lock(&g_locks_lock);
		const struct rlock *c = lock_conflict(&w);
		if (c) {
			fl->l_type = c->type;
			fl->l_whence = SEEK_SET;
			fl->l_start = c->start;
			fl->l_len = c->end == INT64_MAX ? 0 : c->end - c->start;
			fl->l_pid = -1;
		} else {
			fl->l_type = F_UNLCK;
		}
		pthread_mutex_unlock(&g_locks_lock);
		return 0;
	}
	return lock_set(&w, cmd == F_OFD_SETLKW);
}

int
flock(int fd, int op)
{
	SERVE_FD(fd, f, real_flock()(fd, op));
	struct rlock w = {.part = f->ofd->partition,
			  .id = f->ofd->id,
			  .owner = f->ofd_ino,
			  .kind = 1,
			  .start = 0,
			  .end = INT64_MAX};
	switch (op & ~LOCK_NB) {
	case LOCK_SH:
		w.type = F_RDLCK;
		break;
	case LOCK_EX:
		w.type = F_WRLCK;
		break;
	case LOCK_UN:
		w.type = F_UNLCK;
		break;
	default:
		return fail(EINVAL);
	}
	int r = lock_set(&w, !(op & LOCK_NB));
	return r == -EAGAIN ? fail(EWOULDBLOCK) : ret0(r);
}

/* --- fcntl, dup --------------------------------------------------------------- */

static int
do_fcntl(int fd, int cmd, void *arg)
{
	struct vfile *f = vfile_of(fd);
	shim_count("fcntl", f != NULL);
	if (f == NULL)
		return real_fcntl64()(fd, cmd, arg);
	switch (cmd) {
	case F_GETFL:
		return (int)(atomic_load(&f->ofd->flags) | O_LARGEFILE);
	case F_SETFL: {
		const uint32_t settable =
			O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
		uint32_t v = (uint32_t)(uintptr_t)arg, old;
		do
			old = atomic_load(&f->ofd->flags);
		while (!atomic_compare_exchange_weak(&f->ofd->flags, &old,
						     (old & ~settable) |
							     (v & settable)));
		return 0;
	}
	case F_SETFD:
		if (!((uintptr_t)arg & FD_CLOEXEC))
			f->recycle = false; /* an exec may inherit it */
		return real_fcntl64()(fd, cmd, arg);
	case F_GETFD:
		return real_fcntl64()(fd, cmd, arg);
	case F_DUPFD:
	case F_DUPFD_CLOEXEC: {
		f->recycle = false;
		int n = real_fcntl64()(fd, cmd, arg);
		if (n >= 0 && getpid() == g.pid) {
			int r = vfile_dup(n);
			if (r) {
				real_close()(n);
				return fail(-r);
			}
		}
		return n;
	}
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_GETLK:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		if (arg == NULL)
			return fail(EFAULT);
		return ret0(vfcntl_lock(f, cmd, arg));
	default:
		return fail(EINVAL);
	}
}

int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(fd, cmd, arg);
}

int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(fd, cmd, arg);
}

int
dup(int fd)
{
	SERVE_FD(fd, f, real_dup()(fd));
	f->recycle = false;
	int n = real_dup()(fd);
	if (n >= 0 && getpid() == g.pid) {
		int r = vfile_dup(n);
		if (r) {
			real_close()(n);
			return fail(-r);
		}
	}
	return n;
}

static int
do_dup3(int old, int nfd, int flags, bool is_dup2, const char *call)
{
	struct vfile *of = vfile_of(old), *nf = vfile_of(nfd);
	shim_count(call, of || nf);
	if (of == NULL && nf == NULL) {
		if (nfd >= 0 && nfd <= 2 && old != nfd)
			fflush(*std_stream(nfd));
		if (old != nfd)
			spares_drop(nfd, nfd);
		return is_dup2 ? real_dup2()(old, nfd)
			       : real_dup3()(old, nfd, flags);
	}
	if (old == nfd)
		return is_dup2 ? nfd : fail(EINVAL);
	if (of)
		of->recycle = false;
	if (getpid() != g.pid) /* a vfork()ed child: the kernel's fds only */
		return is_dup2 ? real_dup2()(old, nfd)
			       : real_dup3()(old, nfd, flags);
	if (of == NULL && real_fcntl64()(old, F_GETFD, NULL) < 0)
		return -1; /* EBADF: nfd stays as it was */
	if (nfd >= 0 && nfd <= 2 && nf == NULL)
		fflush(*std_stream(nfd));
	if (nf) {
		uint64_t owner = nf->ofd_ino;
		if (!nf->ofd->is_dir)
			posix_unlock_all(nf->ofd->partition, nf->ofd->id);
		vfile_detach(nfd, false);
		locks_release(owner);
	}
	int r = is_dup2 ? real_dup2()(old, nfd) : real_dup3()(old, nfd, flags);
	if (r >= 0 && of) {
		int e = vfile_dup(r);
		if (e) {
			real_close()(r);
			return fail(-e);
		}
	}
	return r;
}

int
dup2(int old, int nfd)
{
	return do_dup3(old, nfd, 0, true, __func__);
}

int
dup3(int old, int nfd, int flags)
{
	return do_dup3(old, nfd, flags, false, __func__);
}

/* --- cwd, realpath --------------------------------------------------------------- */

int
chdir(const char *path)
{
	struct rpath r;
	int rr = resolve(AT_FDCWD, path, &r);
	if (rr < 0)
		return fail(-rr);
	shim_count(__func__, rr == 1);
	if (rr == 0) {
		int ret = real_chdir()(r.real);
		if (ret == 0 && shim_active) {
			glock();
			g.cwd[0] = '\0';
			gunlock();
		}
		return ret;
	}
	struct stat st;
	int e = vstat(&r, &st);
	if (e)
		return fail(-e);
	if (!S_ISDIR(st.st_mode))
		return fail(ENOTDIR);
	glock();
	strcpy(g.cwd, r.abs);
	gunlock();
	return 0;
}

int
fchdir(int fd)
{
	struct vfile *f = vfile_of(fd);
	shim_count(__func__, f != NULL);
	if (f == NULL) {
		int ret = real_fchdir()(fd);
		if (ret == 0 && shim_active) {
			glock();
			g.cwd[0] = '\0';
			gunlock();
		}
		return ret;
	}
	if (!f->ofd->is_dir)
		return fail(ENOTDIR);
	glock();
	char cwd[sizeof(g.prefix) + sizeof(f->ofd->name) + 1];
	snprintf(cwd, sizeof(cwd), "%s/%s", g.prefix, f->ofd->name);
	copy_str(g.cwd, sizeof(g.cwd), cwd);
	size_t l = strlen(g.cwd);
	if (l > 1 && g.cwd[l - 1] == '/')
		g.cwd[l - 1] = '\0';
	gunlock();
	return 0;
}

char *
getcwd(char *buf, size_t size)
{
	if (shim_active) {
		glock();
		if (g.cwd[0]) {
			size_t l = strlen(g.cwd);
			char *out = buf;
			if (buf == NULL)
				out = malloc(size > l ? size : l + 1);
			if (out == NULL || (buf && size <= l)) {
				gunlock();
				errno = out ? ERANGE : ENOMEM;
				return NULL;
			}
			memcpy(out, g.cwd, l + 1);
			gunlock();
			shim_count(__func__, true);
			return out;
		}
		gunlock();
	}
	shim_count(__func__, false);
	return real_getcwd()(buf, size);
}

char *
__getcwd_chk(char *buf, size_t size, size_t buflen)
{
	if (size > buflen)
		__chk_fail();
	return getcwd(buf, size);
}

char *
get_current_dir_name(void)
{
	return getcwd(NULL, 0);
}

char *
realpath(const char *path, char *resolved)
{
	struct rpath r;
	int rr = resolve(AT_FDCWD, path, &r);
	if (rr < 0) {
		errno = -rr;
		return NULL;
	}
	shim_count(__func__, rr == 1);
	if (rr == 0)
		return real_realpath()(r.real, resolved);
	struct stat st;
	int e = vstat(&r, &st);
	if (e) {
		errno = -e;
		return NULL;
	}
	char *out = resolved ? resolved : malloc(PATH_MAX);
	if (out == NULL)
		return NULL;
	snprintf(out, PATH_MAX, "%s", r.abs);
	return out;
}

char *
__realpath_chk(const char *path, char *resolved, size_t resolvedlen)
{
	if (resolvedlen < PATH_MAX)
		__chk_fail();
	return realpath(path, resolved);
}

char *
canonicalize_file_name(const char *path)
{
	return realpath(path, NULL);
}

/* --- directory streams ------------------------------------------------------------ */

#define VDIR_MAGIC UINT64_C(0x76656d732d646972) /* "vems-dir" */

struct vdir {
	uint64_t magic;
	int fd;
	struct dirent64 ent;
	struct vdir *next;
};
static struct vdir *g_dirs;
static pthread_mutex_t g_dirs_lock = PTHREAD_MUTEX_INITIALIZER;

/* ours, or NULL (a libc DIR) */
static struct vdir *
vdir_of(DIR *d)
{
	struct vdir *v = NULL;
	pthread_mutex_lock(&g_dirs_lock);
	for (struct vdir *x = g_dirs; x; x = x->next)
		if ((DIR *)x == d) {
			v = x;
			break;
		}
	pthread_mutex_unlock(&g_dirs_lock);
	return v;
}

static DIR *
vdir_new(int fd)
{
	struct vdir *v = calloc(1, sizeof(*v));
	if (v == NULL)
		return NULL;
	v->magic = VDIR_MAGIC;
	v->fd = fd;
	pthread_mutex_lock(&g_dirs_lock);
	v->next = g_dirs;
	g_dirs = v;
	pthread_mutex_unlock(&g_dirs_lock);
	return (DIR *)v;
}

static void
vdir_free(struct vdir *v)
{
	pthread_mutex_lock(&g_dirs_lock);
	for (struct vdir **pp = &g_dirs; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	pthread_mutex_unlock(&g_dirs_lock);
	free(v);
}

DIR *
opendir(const char *path)
{
	struct rpath r;
	int rr = resolve(AT_FDCWD, path, &r);
	if (rr < 0) {
		errno = -rr;
		return NULL;
	}
	shim_count(__func__, rr == 1);
	if (rr == 0)
		return real_opendir()(r.real);
	int fd = vopen(&r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	DIR *d = vdir_new(fd);
	if (d == NULL) {
		close(fd);
		errno = ENOMEM;
	}
	return d;
}

DIR *
fdopendir(int fd)
{
	struct vfile *f = vfile_of(fd);
	shim_count(__func__, f != NULL);
	if (f == NULL)
		return real_fdopendir()(fd);
	if (!f->ofd->is_dir) {
		errno = ENOTDIR;
		return NULL;
	}
	DIR *d = vdir_new(fd);
	if (d == NULL)
		errno = ENOMEM;
	return d;
}

static struct dirent64 *
vreaddir(struct vdir *v)
{
	struct vfile *f = vfile_of(v->fd);
	if (f == NULL) {
		errno = EBADF;
		return NULL;
	}
	struct dent d;
	int r = vdir_next(f, &d);
	if (r <= 0) {
		if (r < 0)
			errno = -r;
		return NULL;
	}
	v->ent.d_ino = d.ino;
	v->ent.d_off = atomic_load(&f->ofd->offset);
	v->ent.d_reclen = sizeof(v->ent);
	v->ent.d_type = d.type;
	snprintf(v->ent.d_name, sizeof(v->ent.d_name), "%s", d.name);
	return &v->ent;
}

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "dirent64");

struct dirent *
readdir(DIR *d)
{
	struct vdir *v = vdir_of(d);
	shim_count(__func__, v != NULL);
	if (v == NULL)
		return real_readdir()(d);
	return (struct dirent *)vreaddir(v);
}

struct dirent64 *
readdir64(DIR *d)
{
	struct vdir *v = vdir_of(d);
	shim_count(__func__, v != NULL);
	if (v == NULL)
		return real_readdir64()(d);
	return vreaddir(v);
}

int
closedir(DIR *d)
{
	struct vdir *v = vdir_of(d);
	shim_count(__func__, v != NULL);
	if (v == NULL)
		return real_closedir()(d);
	int r = close(v->fd);
	vdir_free(v);
	return r;
}

void
rewinddir(DIR *d)
{
	struct vdir *v = vdir_of(d);
	shim_count(__func__, v != NULL);
	if (v == NULL) {
		real_rewinddir()(d);
		return;
	}
	lseek(v->fd, 0, SEEK_SET);
}

long
telldir(DIR *d)
{
	struct vdir *v = vdir_of(d);
	shim_count(__func__, v != NULL);
	if (v == NULL)
		return real_telldir()(d);
	struct vfile *f = vfile_of(v->fd);
	return f ? (long)atomic_load(&f->ofd->offset) : -1;
}

void
seekdir(DIR *d, long pos)
{
	struct vdir *v = vdir_of(d);
	shim_count(__func__, v != NULL);
	if (v == NULL) {
		real_seekdir()(d, pos);
		return;
	}
	struct vfile *f = vfile_of(v->fd);
	if (f && pos >= 0)
		atomic_store(&f->ofd->offset, pos);
}

int
dirfd(DIR *d)
{
	struct vdir *v = vdir_of(d);
	shim_count(__func__, v != NULL);
	if (v == NULL)
		return real_dirfd()(d);
	return v->fd;
}

/* scandir over a vems directory, with the shim's own stream */
static int
vscandir(const struct rpath *r, struct dirent64 ***list,
	 int (*filter)(const struct dirent64 *),
	 int (*compar)(const struct dirent64 **, const struct dirent64 **))
{
	int fd = vopen(r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(-fd);
	DIR *d = vdir_new(fd);
	if (d == NULL) {
		close(fd);
		return fail(ENOMEM);
	}
	struct dirent64 **v = NULL, *e;
	size_t n = 0, cap = 0;
	int err = 0;
	errno = 0;
	while ((e = vreaddir((struct vdir *)d)) != NULL) {
		if (filter && !filter(e))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			struct dirent64 **nv = realloc(v, cap * sizeof(*nv));
			if (nv == NULL) {
				err = ENOMEM;
				break;
			}
			v = nv;
		}
		if ((v[n] = malloc(sizeof(*e))) == NULL) {
			err = ENOMEM;
			break;
		}
		memcpy(v[n++], e, sizeof(*e));
	}
	if (err == 0)
		err = errno;
	close(fd);
	vdir_free((struct vdir *)d);
	if (err) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return fail(err);
	}
	if (compar && n > 1)
		qsort(v, n, sizeof(*v),
		      (int (*)(const void *, const void *))compar);
	*list = v;
	return (int)n;
}

int
scandir(const char *path, struct dirent ***list,
	int (*filter)(const struct dirent *),
	int (*compar)(const struct dirent **, const struct dirent **))
{
	SERVE_PATH(AT_FDCWD, path, r,
		   real_scandir()(r.real, list, filter, compar));
	return vscandir(&r, (struct dirent64 ***)list,
			(int (*)(const struct dirent64 *))filter,
			(int (*)(const struct dirent64 **,
				 const struct dirent64 **))compar);
}

int
scandir64(const char *path, struct dirent64 ***list,
	  int (*filter)(const struct dirent64 *),
	  int (*compar)(const struct dirent64 **, const struct dirent64 **))
{
	SERVE_PATH(AT_FDCWD, path, r,
		   real_scandir64()(r.real, list, filter, compar));
	return vscandir(&r, list, filter, compar);
}

ssize_t
getdents64(int fd, void *buf, size_t len)
{
	SERVE_FD(fd, f, real_getdents64()(fd, buf, len));
	return vgetdents(f, buf, len);
}

/* --- mmap ------------------------------------------------------------------------- */

static void *
do_mmap(void *addr, size_t len, int prot, int flags, int fd, off64_t off,
	const char *call)
{
	struct vfile *f = (flags & MAP_ANONYMOUS) ? NULL : vfile_of(fd);
	shim_count(call, f != NULL);
	if (f == NULL)
		return real_mmap64()(addr, len, prot, flags, fd, off);
	if ((flags & MAP_TYPE) != MAP_PRIVATE || f->ofd->is_dir) {
		static atomic_bool said;
		if (!atomic_exchange(&said, true))
			say("mmap(MAP_SHARED) of %s/%s is not supported "
			    "(ENODEV); MAP_PRIVATE is",
			    g.prefix, f->ofd->name);
		errno = ENODEV;
		return MAP_FAILED;
	}
	if ((atomic_load(&f->ofd->flags) & O_ACCMODE) == O_WRONLY) {
		errno = EACCES;
		return MAP_FAILED;
	}
	if (len == 0 || off < 0 || (off & 4095)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	/* a private copy of the range: exactly MAP_PRIVATE's semantics,
	 * short of later writes by others showing through */
	int keep = flags &
		(MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE |
		 MAP_POPULATE | MAP_32BIT);
	void *m = real_mmap64()(addr, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | keep, -1, 0);
	if (m == MAP_FAILED)
		return m;
	size_t done = 0;
	while (done < len) {
		struct iovec v = {(char *)m + done, len - done};
		ssize_t n = vpreadv(f, &v, 1, off + (off64_t)done, false);
		if (n < 0) {
			int e = errno;
			munmap(m, len);
			errno = e;
			return MAP_FAILED;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (prot != (PROT_READ | PROT_WRITE) && mprotect(m, len, prot) != 0) {
		int e = errno;
		munmap(m, len);
		errno = e;
		return MAP_FAILED;
	}
	return m;
}

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off, __func__);
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off, __func__);
}

/* --- copies between fds ------------------------------------------------------------ */

/*
 * sendfile, copy_file_range and splice with a vems file on either side:
 * through the shim's read and write. in_off/out_off: NULL for the fd's
 * offset.
 */
static ssize_t
copy_fds(int in, off64_t *in_off, int out, off64_t *out_off, size_t len)
{
	char buf[65536];
	size_t total = 0;
	while (total < len) {
		size_t want =
			len - total < sizeof(buf) ? len - total : sizeof(buf);
		ssize_t n = in_off ? pread64(in, buf, want, *in_off)
				   : read(in, buf, want);
		if (n < 0)
			return total ? (ssize_t)total : -1;
		if (n == 0)
			break;
		size_t w = 0;
		while (w < (size_t)n) {
			ssize_t m = out_off
				? pwrite64(out, buf + w, (size_t)n - w,
					   *out_off)
				: write(out, buf + w, (size_t)n - w);
			if (m <= 0) {
				if (in_off)
					*in_off += (off64_t)w;
				total += w;
				return total ? (ssize_t)total : -1;
			}
			w += (size_t)m;
			if (out_off)
				*out_off += m;
		}
		if (in_off)
			*in_off += n;
		total += (size_t)n;
		if ((size_t)n < want)
			break;
	}
	return (ssize_t)total;
}

ssize_t
sendfile(int out, int in, off_t *off, size_t count)
{
	bool v = shim_is_vems_fd(in) || shim_is_vems_fd(out);
	shim_count(__func__, v);
	if (!v)
		return real_sendfile64()(out, in, (off64_t *)off, count);
	return copy_fds(in, (off64_t *)off, out, NULL, count);
}

ssize_t
sendfile64(int out, int in, off64_t *off, size_t count)
{
	bool v = shim_is_vems_fd(in) || shim_is_vems_fd(out);
	shim_count(__func__, v);
	if (!v)
		return real_sendfile64()(out, in, off, count);
	return copy_fds(in, off, out, NULL, count);
}

ssize_t
copy_file_range(int in, off64_t *in_off, int out, off64_t *out_off, size_t len,
		unsigned flags)
{
	bool v = shim_is_vems_fd(in) || shim_is_vems_fd(out);
	shim_count(__func__, v);
	if (!v)
		return real_copy_file_range()(in, in_off, out, out_off, len,
					      flags);
	if (flags)
		return fail(EINVAL);
	return copy_fds(in, in_off, out, out_off, len);
}

ssize_t
splice(int in, off64_t *in_off, int out, off64_t *out_off, size_t len,
       unsigned flags)
{
	bool v = shim_is_vems_fd(in) || shim_is_vems_fd(out);
	shim_count(__func__, v);
	if (!v)
		return real_splice()(in, in_off, out, out_off, len, flags);
	return copy_fds(in, in_off, out, out_off, len);
}

/* --- stdio ---------------------------------------------------------------------- */

static FILE *
do_fopen(const char *path, const char *mode, const char *call)
{
	struct rpath r;
	int rr = resolve(AT_FDCWD, path, &r);
	if (rr < 0) {
		errno = -rr;
		return NULL;
	}
	shim_count(call, rr == 1);
	if (rr == 0)
		return real_fopen64()(r.real, mode);
	int fl = mode ? mode_flags(mode) : -1;
	if (fl < 0) {
		errno = EINVAL;
		return NULL;
	}
	int fd = vopen(&r, fl);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	FILE *fp = cookie_open(fd, mode, true);
	if (fp == NULL) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return fp;
}

FILE *
fopen(const char *path, const char *mode)
{
	return do_fopen(path, mode, __func__);
}

FILE *
fopen64(const char *path, const char *mode)
{
	return do_fopen(path, mode, __func__);
}

FILE *
fdopen(int fd, const char *mode)
{
	struct vfile *f = vfile_of(fd);
	shim_count(__func__, f != NULL);
	if (f == NULL)
		return real_fdopen()(fd, mode);
	return cookie_open(fd, mode, true);
}

static FILE *
do_freopen(const char *path, const char *mode, FILE *stream, const char *call)
{
	struct rpath r;
	int rr = path ? resolve(AT_FDCWD, path, &r) : 0;
	if (rr < 0) {
		errno = -rr;
		return NULL;
	}
	shim_count(call, rr == 1);
	if (rr == 0)
		return real_freopen64()(path ? r.real : NULL, mode, stream);
	int fl = mode ? mode_flags(mode) : -1;
	if (fl < 0) {
		errno = EINVAL;
		return NULL;
	}
	fflush(stream);
	int fd = vopen(&r, fl);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	for (int i = 0; i <= 2; i++)
		if (stream == *std_stream(i)) {
			/* the standard stream: its fd becomes the file, and
			 * the stream a shim stream on it */
			int d = dup2(fd, i);
			close(fd);
			return d < 0 ? NULL : *std_stream(i);
		}
	/* another stream: it is closed, a new one returned (README) */
	fclose(stream);
	FILE *fp = cookie_open(fd, mode, true);
	if (fp == NULL)
		close(fd);
	return fp;
}

FILE *
freopen(const char *path, const char *mode, FILE *stream)
{
	return do_freopen(path, mode, stream, __func__);
}

FILE *
freopen64(const char *path, const char *mode, FILE *stream)
{
	return do_freopen(path, mode, stream, __func__);
}

int
fileno(FILE *fp)
{
	int fd = shim_active ? cookie_fd(fp) : -1;
	return fd >= 0 ? fd : real_fileno()(fp);
}

int
fileno_unlocked(FILE *fp)
{
	return fileno(fp);
}

/* --- exec ---------------------------------------------------------------------------- */

int
execve(const char *path, char *const argv[], char *const envp[])
{
	release_for_exec();
	return real_execve()(path, argv, exec_env(envp));
}

int
execv(const char *path, char *const argv[])
{
	release_for_exec();
	return real_execve()(path, argv, exec_env(environ));
}

int
execvp(const char *file, char *const argv[])
{
	release_for_exec();
	return real_execvpe()(file, argv, exec_env(environ));
}

int
execvpe(const char *file, char *const argv[], char *const envp[])
{
	release_for_exec();
	return real_execvpe()(file, argv, exec_env(envp));
}

int
fexecve(int fd, char *const argv[], char *const envp[])
{
	release_for_exec();
	return real_fexecve()(fd, argv, exec_env(envp));
}

/*
 * posix_spawn's file actions may dup2 any fd into the child past exec, and
 * _Fork runs no fork handlers: no description stays private (spare_put).
 */
int
posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
	    const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
	spares_unshare_all(false);
	return real_posix_spawn()(pid, path, fa, at, argv, envp);
}

int
posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
	     const posix_spawnattr_t *at, char *const argv[],
	     char *const envp[])
{
	spares_unshare_all(false);
	return real_posix_spawnp()(pid, file, fa, at, argv, envp);
}

pid_t
_Fork(void)
{
	spares_unshare_all(true);
	return real__Fork()();
}

#define MAX_EXEC_ARGS 4096

/* the arguments of an execl-style call, up to the NULL */
static int
collect_args(const char *arg0, va_list ap, char **argv, char ***envp)
{
	int n = 0;
	argv[n++] = (char *)arg0;
	while (arg0 != NULL) {
		if (n == MAX_EXEC_ARGS)
			return fail(E2BIG);
		char *a = va_arg(ap, char *);
		argv[n++] = a;
		if (a == NULL)
			break;
	}
	if (envp)
		*envp = va_arg(ap, char **);
	return 0;
}

int
execl(const char *path, const char *arg, ...)
{
	static __thread char *argv[MAX_EXEC_ARGS + 1];
	va_list ap;
	va_start(ap, arg);
	int r = collect_args(arg, ap, argv, NULL);
	va_end(ap);
	return r ? r : execv(path, argv);
}

int
execlp(const char *file, const char *arg, ...)
{
	static __thread char *argv[MAX_EXEC_ARGS + 1];
	va_list ap;
	va_start(ap, arg);
	int r = collect_args(arg, ap, argv, NULL);
	va_end(ap);
	return r ? r : execvp(file, argv);
}

int
execle(const char *path, const char *arg, ...)
{
	static __thread char *argv[MAX_EXEC_ARGS + 1];
	char **envp = NULL;
	va_list ap;
	va_start(ap, arg);
	int r = collect_args(arg, ap, argv, &envp);
	va_end(ap);
	return r ? r : execve(path, argv, envp);
}

/* --- extended attributes ---------------------------------------------------------- */

/* vems files have none and take none: ENOTSUP, which ls and cp read as
 * "no ACLs, no labels" */
static ssize_t
no_xattr(const char *path, bool follow, const char *call)
{
	(void)follow;
	struct rpath r;
	int rr = resolve(AT_FDCWD, path, &r);
	if (rr <= 0)
		return rr < 0 ? fail(-rr) : -2; /* -2: not ours */
	shim_count(call, true);
	struct stat st;
	int e = vstat(&r, &st);
	return fail(e ? -e : ENOTSUP);
}

#define XATTR_PATH(call, realcall, follow)                                     \
	ssize_t x_ = no_xattr(path, follow, call);                             \
	if (x_ != -2)                                                          \
		return x_;                                                     \
	shim_count(call, false);                                               \
	struct rpath r_;                                                       \
	(void)resolve(AT_FDCWD, path, &r_);                                    \
	return realcall;

DEFINE_REAL(getxattr)
DEFINE_REAL(lgetxattr)
DEFINE_REAL(fgetxattr)
DEFINE_REAL(setxattr)
DEFINE_REAL(lsetxattr)
DEFINE_REAL(fsetxattr)
DEFINE_REAL(listxattr)
DEFINE_REAL(llistxattr)
DEFINE_REAL(flistxattr)
DEFINE_REAL(removexattr)
DEFINE_REAL(lremovexattr)
DEFINE_REAL(fremovexattr)

ssize_t
getxattr(const char *path, const char *name, void *v, size_t size)
{
	XATTR_PATH(__func__, real_getxattr()(r_.real, name, v, size), true);
}

ssize_t
lgetxattr(const char *path, const char *name, void *v, size_t size)
{
	XATTR_PATH(__func__, real_lgetxattr()(r_.real, name, v, size), false);
}

ssize_t
fgetxattr(int fd, const char *name, void *v, size_t size)
{
	SERVE_FD(fd, f, real_fgetxattr()(fd, name, v, size));
	return fail(ENOTSUP);
}

int
setxattr(const char *path, const char *name, const void *v, size_t size,
	 int flags)
{
	XATTR_PATH(__func__, real_setxattr()(r_.real, name, v, size, flags),
		   true);
}

int
lsetxattr(const char *path, const char *name, const void *v, size_t size,
	  int flags)
{
	XATTR_PATH(__func__, real_lsetxattr()(r_.real, name, v, size, flags),
		   false);
}

int
fsetxattr(int fd, const char *name, const void *v, size_t size, int flags)
{
	SERVE_FD(fd, f, real_fsetxattr()(fd, name, v, size, flags));
	return fail(ENOTSUP);
}

ssize_t
listxattr(const char *path, char *list, size_t size)
{
	XATTR_PATH(__func__, real_listxattr()(r_.real, list, size), true);
}

ssize_t
llistxattr(const char *path, char *list, size_t size)
{
	XATTR_PATH(__func__, real_llistxattr()(r_.real, list, size), false);
}

ssize_t
flistxattr(int fd, char *list, size_t size)
{
	SERVE_FD(fd, f, real_flistxattr()(fd, list, size));
	return fail(ENOTSUP);
}

int
removexattr(const char *path, const char *name)
{
	XATTR_PATH(__func__, real_removexattr()(r_.real, name), true);
}

int
lremovexattr(const char *path, const char *name)
{
	XATTR_PATH(__func__, real_lremovexattr()(r_.real, name), false);
}

int
fremovexattr(int fd, const char *name)
{
	SERVE_FD(fd, f, real_fremovexattr()(fd, name));
	return fail(ENOTSUP);
}

/* --- temporary files ------------------------------------------------------------- */

/*
 * glibc's mkstemp family opens through internal calls: under the prefix
 * it is done here (template's last 6 + suffixlen characters "XXXXXX").
 */
static int
vmktemp(char *tmpl, int suffixlen, int flags, bool dir)
{
	size_t l = strlen(tmpl);
	if (suffixlen < 0 || l < 6 + (size_t)suffixlen)
		return fail(EINVAL);
	char *x = tmpl + l - 6 - suffixlen;
	if (strncmp(x, "XXXXXX", 6) != 0)
		return fail(EINVAL);
	static const char set[] = "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t v;
		glock();
		v = new_oid().id;
		gunlock();
		for (int i = 0; i < 6; i++, v /= 62)
			x[i] = set[v % 62];
		int r = dir
			? mkdir(tmpl, 0700)
			: open(tmpl,
			       (flags & ~O_ACCMODE) | O_RDWR | O_CREAT | O_EXCL,
			       0600);
		if (r >= 0)
			return dir ? 0 : r;
		if (errno != EEXIST)
			return -1;
	}
	return fail(EEXIST);
}

DEFINE_REAL(mkstemp)
DEFINE_REAL(mkstemp64)
DEFINE_REAL(mkostemp)
DEFINE_REAL(mkostemp64)
DEFINE_REAL(mkstemps)
DEFINE_REAL(mkstemps64)
DEFINE_REAL(mkostemps)
DEFINE_REAL(mkostemps64)
DEFINE_REAL(mkdtemp)

#define SERVE_TEMPLATE(tmpl, realcall)                                         \
	do {                                                                   \
		if (!shim_is_vems_path(tmpl)) {                                \
			shim_count(__func__, false);                           \
			return realcall;                                       \
		}                                                              \
		shim_count(__func__, true);                                    \
	} while (0)

int
mkstemp(char *tmpl)
{
	SERVE_TEMPLATE(tmpl, real_mkstemp()(tmpl));
	return vmktemp(tmpl, 0, 0, false);
}

int
mkstemp64(char *tmpl)
{
	SERVE_TEMPLATE(tmpl, real_mkstemp64()(tmpl));
	return vmktemp(tmpl, 0, 0, false);
}

int
mkostemp(char *tmpl, int flags)
{
	SERVE_TEMPLATE(tmpl, real_mkostemp()(tmpl, flags));
	return vmktemp(tmpl, 0, flags, false);
}

int
mkostemp64(char *tmpl, int flags)
{
	SERVE_TEMPLATE(tmpl, real_mkostemp64()(tmpl, flags));
	return vmktemp(tmpl, 0, flags, false);
}

int
mkstemps(char *tmpl, int suffixlen)
{
	SERVE_TEMPLATE(tmpl, real_mkstemps()(tmpl, suffixlen));
	return vmktemp(tmpl, suffixlen, 0, false);
}

int
mkstemps64(char *tmpl, int suffixlen)
{
	SERVE_TEMPLATE(tmpl, real_mkstemps64()(tmpl, suffixlen));
	return vmktemp(tmpl, suffixlen, 0, false);
}

int
mkostemps(char *tmpl, int suffixlen, int flags)
{
	SERVE_TEMPLATE(tmpl, real_mkostemps()(tmpl, suffixlen, flags));
	return vmktemp(tmpl, suffixlen, flags, false);
}

int
mkostemps64(char *tmpl, int suffixlen, int flags)
{
	SERVE_TEMPLATE(tmpl, real_mkostemps64()(tmpl, suffixlen, flags));
	return vmktemp(tmpl, suffixlen, flags, false);
}

char *
mkdtemp(char *tmpl)
{
	if (!shim_is_vems_path(tmpl)) {
		shim_count(__func__, false);
		return real_mkdtemp()(tmpl);
	}
	shim_count(__func__, true);
	return vmktemp(tmpl, 0, 0, true) == 0 ? tmpl : NULL;
}
