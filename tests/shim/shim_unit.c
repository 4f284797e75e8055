/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shim_unit.c -- the POSIX semantics of files under the prefix, run with
 * libvems_preload.so preloaded (tests/shim/unit.sh sets up the pool and
 * the environment). Plain POSIX calls only: what an unmodified program
 * makes. Every test works in a directory of its own under VEMS_PREFIX.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

static char P[PATH_MAX / 2];

/* P/name into a static buffer (one of four, rotating) */
static const char *at(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static const char *
at(const char *fmt, ...)
{
	static char bufs[4][PATH_MAX];
	static int k;
	char *b = bufs[k++ % 4];
	size_t l = strlen(P);
	memcpy(b, P, l);
	b[l++] = '/';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b + l, PATH_MAX - l, fmt, ap);
	va_end(ap);
	return b;
}

#define ERR(expr, e)                                                           \
	do {                                                                   \
		errno = 0;                                                     \
		long r_ = (long)(expr);                                        \
		if (r_ != -1 || errno != (e))                                  \
			fail_msg("%s = %ld, errno %d (%s); expected -1, %s",   \
				 #expr, r_, errno, strerror(errno), #e);       \
	} while (0)

#define OK(expr)                                                               \
	do {                                                                   \
		if ((long)(expr) < 0)                                          \
			fail_msg("%s failed: %s", #expr, strerror(errno));     \
	} while (0)

static void
put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	OK(fd);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	OK(close(fd));
}

/* the whole file as a string (static buffer) */
static const char *
get(const char *path)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static void
test_open_flags(void **state)
{
	(void)state;
	OK(mkdir(at("of"), 0755));
	int fd = open(at("of/a"), O_RDWR | O_CREAT | O_EXCL, 0644);
	OK(fd);
	ERR(open(at("of/a"), O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
	ERR(open(at("of/none"), O_RDONLY), ENOENT);
	ERR(open(at("of/a"), O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(open(at("of/a/"), O_RDONLY), ENOTDIR);
	ERR(open(at("of/a/x"), O_RDWR | O_CREAT, 0644), ENOTDIR);
	ERR(open(at("of/nodir/x"), O_RDWR | O_CREAT, 0644), ENOENT);
	ERR(open(at("of"), O_WRONLY), EISDIR);
	ERR(open(at("of"), O_RDONLY | O_CREAT, 0644), EISDIR);
	assert_int_equal(write(fd, "hello", 5), 5);
	OK(close(fd));

	int ro = open(at("of/a"), O_RDONLY);
	OK(ro);
	ERR(write(ro, "x", 1), EBADF);
	ERR(ftruncate(ro, 0), EINVAL);
	int wo = open(at("of/a"), O_WRONLY);
	char c;
	ERR(read(wo, &c, 1), EBADF);
	OK(close(wo));
	OK(close(ro));

	/* O_TRUNC, O_APPEND (two descriptions append, never overwrite) */
	fd = open(at("of/a"), O_WRONLY | O_TRUNC);
	OK(fd);
	struct stat st;
	OK(fstat(fd, &st));
	assert_int_equal(st.st_size, 0);
	OK(close(fd));
	int a1 = open(at("of/a"), O_WRONLY | O_APPEND);
	int a2 = open(at("of/a"), O_WRONLY | O_APPEND);
	assert_int_equal(write(a1, "12", 2), 2);
	assert_int_equal(write(a2, "34", 2), 2);
	assert_int_equal(write(a1, "5", 1), 1);
	OK(close(a1));
	OK(close(a2));
	assert_string_equal(get(at("of/a")), "12345");

	/* O_CLOEXEC is the kernel's, on the reserved fd */
	fd = open(at("of/a"), O_RDONLY | O_CLOEXEC);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	OK(close(fd));
	/* fds never clash with the program's own: a real file opened now
	 * gets a number of its own and works */
	int v = open(at("of/a"), O_RDONLY);
	int real = open("/dev/null", O_RDONLY);
	assert_int_not_equal(v, real);
	assert_int_equal(read(real, &c, 1), 0);
	assert_int_equal(read(v, &c, 1), 1);
	OK(close(v));
	OK(close(real));
	ERR(close(v), EBADF);
}

static void
test_offsets_dup_vectors(void **state)
{
	(void)state;
	OK(mkdir(at("od"), 0755));
	int fd = open(at("od/f"), O_RDWR | O_CREAT, 0644);
	OK(fd);
	assert_int_equal(write(fd, "abcdef", 6), 6);
	int d = dup(fd);
	OK(d);
	assert_int_equal(lseek(d, 0, SEEK_CUR), 6); /* shared offset */
	assert_int_equal(lseek(fd, 1, SEEK_SET), 1);
	char b[16] = {0};
	assert_int_equal(read(d, b, 2), 2);
	assert_memory_equal(b, "bc", 2);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
	int d2 = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	assert_true(d2 >= 100);
	assert_int_equal(lseek(d2, 0, SEEK_CUR), 3);
	int d3 = dup2(fd, 90);
	assert_int_equal(d3, 90);
	assert_int_equal(lseek(d3, -1, SEEK_END), 5);
	/* pread/pwrite leave the offset alone */
	assert_int_equal(pwrite(fd, "XY", 2, 10), 2);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 5);
	assert_int_equal(pread(fd, b, 16, 0), 12);
	assert_memory_equal(b, "abcdef\0\0\0\0XY", 12); /* a hole of zeros */
	assert_int_equal(lseek(fd, 0, SEEK_DATA), 0);
	assert_int_equal(lseek(fd, 0, SEEK_HOLE), 12);
	ERR(lseek(fd, 12, SEEK_DATA), ENXIO);
	ERR(lseek(fd, -100, SEEK_SET), EINVAL);
	/* vectors */
	struct iovec iov[2] = {{"12", 2}, {"345", 3}};
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(writev(fd, iov, 2), 5);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 5);
	char x[3], y[4];
	struct iovec rv[2] = {{x, 3}, {y, 4}};
	assert_int_equal(preadv(fd, rv, 2, 0), 7);
	assert_memory_equal(x, "123", 3);
	assert_memory_equal(y, "45f\0", 4);
	assert_int_equal(pwritev(fd, iov, 2, 20), 5);
	struct stat st;
	OK(fstat(d, &st));
	assert_int_equal(st.st_size, 25);
	OK(close(fd));
	OK(close(d));
	OK(close(d2));
	/* dup2 onto a vems fd closes that one */
	int other = open(at("od/g"), O_RDWR | O_CREAT, 0644);
	assert_int_equal(dup2(other, d3), d3);
	assert_int_equal(write(d3, "g", 1), 1);
	OK(close(d3));
	OK(close(other));
	assert_string_equal(get(at("od/g")), "g");
}

/* fork + exec: the child program adopts the inherited vems fds, shares
 * their offsets, and its stdout (a vems file) goes through stdio */
static void
test_fork_exec(void **state)
{
	(void)state;
	OK(mkdir(at("fx"), 0755));
	int fd = open(at("fx/log"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	OK(fd);
	assert_int_equal(write(fd, "ab", 2), 2);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* fork handed the pool over: the child uses it too */
		char c = 0;
		if (pread(fd, &c, 1, 0) != 1 || c != 'a')
			_exit(3);
		if (dup2(fd, 1) != 1)
			_exit(4);
		execl("/bin/sh", "sh", "-c", "printf x; printf y >&1", NULL);
		_exit(5);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the shared offset moved with the child's writes */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 4);
	assert_int_equal(write(fd, "c", 1), 1);
	OK(close(fd));
	assert_string_equal(get(at("fx/log")), "abxyc");

	/* stdio of an exec'd program whose stdout is a vems file */
	pid = fork();
	if (pid == 0) {
		int out =
			open(at("fx/echo"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (out < 0 || dup2(out, 1) != 1)
			_exit(4);
		close(out);
		execl("/bin/echo", "echo", "hello", "world", NULL);
		_exit(5);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(get(at("fx/echo")), "hello world\n");
}

/* A parent that cannot let the pool go at fork (it holds a file unlinked
 * while open): the child's vems calls fail with EIO, nothing changes */
static void
test_fork_child_of_holder(void **state)
{
	(void)state;
	OK(mkdir(at("fh"), 0755));
	put(at("fh/kept"), "kept");
	int fd = open(at("fh/orphan"), O_RDWR | O_CREAT, 0644);
	OK(fd);
	OK(unlink(at("fh/orphan")));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		errno = 0;
		if (pread(fd, &c, 1, 0) != -1 || errno != EIO)
			_exit(3);
		/* an open is taken (done after exec), its use fails */
		int k = open(at("fh/kept"), O_RDONLY);
		if (k < 0)
			_exit(4);
		errno = 0;
		if (read(k, &c, 1) != -1 || errno != EIO)
			_exit(5);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(write(fd, "x", 1), 1); /* the parent goes on */
	OK(close(fd));
	assert_string_equal(get(at("fh/kept")), "kept");
}

static void
test_unlink_open_file(void **state)
{
	(void)state;
	OK(mkdir(at("ul"), 0755));
	put(at("ul/f"), "still here");
	int fd = open(at("ul/f"), O_RDWR);
	OK(fd);
	OK(unlink(at("ul/f")));
	struct stat st;
	ERR(stat(at("ul/f"), &st), ENOENT);
	ERR(unlink(at("ul/f")), ENOENT);
	char b[32] = {0};
	assert_int_equal(pread(fd, b, sizeof(b), 0), 10);
	assert_string_equal(b, "still here");
	assert_int_equal(pwrite(fd, "!", 1, 10), 1);
	OK(fstat(fd, &st));
	assert_int_equal(st.st_size, 11);
	/* a new file of the same name is another file */
	put(at("ul/f"), "new");
	assert_int_equal(pread(fd, b, sizeof(b), 0), 11);
	OK(close(fd));
	assert_string_equal(get(at("ul/f")), "new");
	ERR(unlink(at("ul")), EISDIR);
}

static void
test_rename(void **state)
{
	(void)state;
	OK(mkdir(at("rn"), 0755));
	put(at("rn/a"), "A");
	put(at("rn/b"), "B");
	int fb = open(at("rn/b"), O_RDONLY);
	OK(rename(at("rn/a"), at("rn/b"))); /* replaces b */
	assert_string_equal(get(at("rn/b")), "A");
	struct stat st;
	ERR(stat(at("rn/a"), &st), ENOENT);
	char c = 0;
	assert_int_equal(pread(fb, &c, 1, 0), 1); /* the replaced file */
	assert_int_equal(c, 'B');
	OK(close(fb));
	OK(rename(at("rn/b"), at("rn/b"))); /* itself */
	/* directories, with what is in them */
	OK(mkdir(at("rn/d"), 0755));
	OK(mkdir(at("rn/d/sub"), 0755));
	put(at("rn/d/sub/f"), "deep");
	put(at("rn/d/g"), "g");
	OK(rename(at("rn/d"), at("rn/e")));
	assert_string_equal(get(at("rn/e/sub/f")), "deep");
	assert_string_equal(get(at("rn/e/g")), "g");
	ERR(stat(at("rn/d"), &st), ENOENT);
	ERR(rename(at("rn/e"), at("rn/e/sub/x")), EINVAL);
	OK(mkdir(at("rn/full"), 0755));
	put(at("rn/full/x"), "x");
	ERR(rename(at("rn/e"), at("rn/full")), ENOTEMPTY);
	OK(mkdir(at("rn/empty"), 0755));
	OK(rename(at("rn/e"), at("rn/empty"))); /* over an empty one */
	assert_string_equal(get(at("rn/empty/g")), "g");
	ERR(rename(at("rn/b"), at("rn/full")), EISDIR);
	ERR(rename(at("rn/full"), at("rn/b")), ENOTDIR);
	ERR(rename(at("rn/none"), at("rn/x")), ENOENT);
	ERR(rename(at("rn/b"), at("rn/none/x")), ENOENT);
	ERR(rename(at("rn/b"), "/tmp/shim-unit-xdev"), EXDEV);
	ERR(renameat2(AT_FDCWD, at("rn/b"), AT_FDCWD, at("rn/full/x"),
		      RENAME_NOREPLACE),
	    EEXIST);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the entries of a directory, sorted, as "name/" or "name", joined by
 * spaces (static buffer) */
static const char *
listing(const char *path)
{
	static char out[4096];
	DIR *d = opendir(path);
	if (d == NULL)
		return NULL;
	char *names[256];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 256) {
		char b[NAME_MAX + 2];
		snprintf(b, sizeof(b), "%s%s", e->d_name,
			 e->d_type == DT_DIR ? "/" : "");
		names[n++] = strdup(b);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), by_name);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		strcat(out, i ? " " : "");
		strcat(out, names[i]);
		free(names[i]);
	}
	return out;
}

static void
test_directories(void **state)
{
	(void)state;
	OK(mkdir(at("dr"), 0755));
	ERR(mkdir(at("dr"), 0755), EEXIST);
	ERR(mkdir(at("dr/x/y"), 0755), ENOENT);
	OK(mkdir(at("dr/s1"), 0755));
	OK(mkdir(at("dr/s2"), 0755));
	put(at("dr/f"), "f");
	put(at("dr/s1/deeper"), "d");
	ERR(mkdir(at("dr/f"), 0755), EEXIST);
	ERR(mkdir(at("dr/f/x"), 0755), ENOTDIR);
	assert_string_equal(listing(at("dr")), "../ ./ f s1/ s2/");
	struct stat st;
	OK(stat(at("dr"), &st));
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_nlink, 4); /* 2 + two subdirectories */
	ERR(rmdir(at("dr/s1")), ENOTEMPTY);
	ERR(rmdir(at("dr/f")), ENOTDIR);
	ERR(rmdir(at("dr/none")), ENOENT);
	OK(rmdir(at("dr/s2")));
	assert_string_equal(listing(at("dr")), "../ ./ f s1/");
	/* scandir, fdopendir, rewinddir, seekdir */
	struct dirent **nl;
	int n = scandir(at("dr"), &nl, NULL, alphasort);
	assert_int_equal(n, 4);
	assert_string_equal(nl[2]->d_name, "f");
	assert_string_equal(nl[3]->d_name, "s1");
	for (int i = 0; i < n; i++)
		free(nl[i]);
	free(nl);
	int dfd = open(at("dr"), O_RDONLY | O_DIRECTORY);
	DIR *d = fdopendir(dfd);
	assert_non_null(d);
	assert_int_equal(dirfd(d), dfd);
	int count = 0;
	while (readdir(d))
		count++;
	assert_int_equal(count, 4);
	rewinddir(d);
	assert_non_null(readdir(d));
	long pos = telldir(d);
	struct dirent *e1 = readdir(d);
	char name[NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", e1->d_name);
	seekdir(d, pos);
	assert_string_equal(readdir(d)->d_name, name);
	/* openat relative to a vems directory fd */
	int f = openat(dirfd(d), "s1/deeper", O_RDONLY);
	OK(f);
	OK(close(f));
	OK(fstatat(dirfd(d), "f", &st, 0));
	assert_int_equal(st.st_size, 1);
	OK(closedir(d));
	ERR(opendir(at("dr/f")) == NULL ? -1 : 0, ENOTDIR);
	ERR(opendir(at("dr/none")) == NULL ? -1 : 0, ENOENT);
	/* the root */
	OK(stat(P, &st));
	assert_true(S_ISDIR(st.st_mode));
	ERR(rmdir(getenv("VEMS_PREFIX")), EBUSY);
}

static void
test_stat_size_access(void **state)
{
	(void)state;
	OK(mkdir(at("st"), 0755));
	put(at("st/f"), "12345");
	struct stat a, b, c;
	OK(stat(at("st/f"), &a));
	OK(lstat(at("st/f"), &b));
	int fd = open(at("st/f"), O_RDWR);
	OK(fstat(fd, &c));
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_ino, c.st_ino);
	assert_int_equal(a.st_dev, c.st_dev);
	assert_int_equal(a.st_size, 5);
	assert_true(S_ISREG(a.st_mode));
	assert_int_equal(a.st_mode & 0777, 0644);
	struct statx sx;
	OK(statx(AT_FDCWD, at("st/f"), 0, STATX_BASIC_STATS, &sx));
	assert_int_equal(sx.stx_size, 5);
	assert_int_equal(sx.stx_ino, a.st_ino);
	OK(statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx));
	assert_int_equal(sx.stx_size, 5);
	OK(access(at("st/f"), R_OK | W_OK));
	ERR(access(at("st/f"), X_OK), EACCES);
	OK(access(at("st"), X_OK));
	ERR(access(at("st/none"), F_OK), ENOENT);
	ERR(stat(at("st/f/"), &a), ENOTDIR);
	/* sizes */
	OK(ftruncate(fd, 2));
	assert_string_equal(get(at("st/f")), "12");
	OK(truncate(at("st/f"), 100000));
	OK(fstat(fd, &c));
	assert_int_equal(c.st_size, 100000);
	OK(fallocate(fd, 0, 0, 200000));
	OK(fstat(fd, &c));
	assert_int_equal(c.st_size, 200000);
	OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 300000));
	OK(fstat(fd, &c));
	assert_int_equal(c.st_size, 200000);
	assert_int_equal(posix_fallocate(fd, 0, 250000), 0);
	ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 10),
	    EOPNOTSUPP);
	OK(fsync(fd));
	OK(fdatasync(fd));
	OK(syncfs(fd));
	/* mode and times are accepted, not stored */
	OK(chmod(at("st/f"), 0600));
	OK(fchmod(fd, 0600));
	OK(utimensat(AT_FDCWD, at("st/f"), NULL, 0));
	OK(futimens(fd, NULL));
	ERR(chmod(at("st/none"), 0600), ENOENT);
	OK(close(fd));
}

static void
test_mmap(void **state)
{
	(void)state;
	OK(mkdir(at("mm"), 0755));
	char data[10000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	int fd = open(at("mm/f"), O_RDWR | O_CREAT, 0644);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	char *m = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(m != MAP_FAILED);
	assert_memory_equal(m, data, sizeof(data));
	assert_int_equal(m[sizeof(data)], 0); /* past the end: zeros */
	m[0] = 'Z'; /* private: the file does not change */
	char c;
	assert_int_equal(pread(fd, &c, 1, 0), 1);
	assert_int_equal(c, 'a');
	OK(munmap(m, 16384));
	m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
	assert_true(m != MAP_FAILED);
	assert_memory_equal(m, data + 4096, 4096);
	OK(munmap(m, 4096));
	errno = 0;
	assert_true(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) ==
		    MAP_FAILED);
	assert_int_equal(errno, ENODEV);
	OK(close(fd));
}

static void
test_locks(void **state)
{
	(void)state;
	OK(mkdir(at("lk"), 0755));
	put(at("lk/f"), "0123456789");
	int a = open(at("lk/f"), O_RDWR), b = open(at("lk/f"), O_RDWR);
	int a2 = dup(a);
	struct flock fl = {.l_type = F_WRLCK,
			   .l_whence = SEEK_SET,
			   .l_start = 0,
			   .l_len = 5};
	OK(fcntl(a, F_OFD_SETLK, &fl));
	OK(fcntl(a2, F_OFD_SETLK, &fl)); /* the same description */
	ERR(fcntl(b, F_OFD_SETLK, &fl), EAGAIN);
	struct flock q = {.l_type = F_WRLCK,
			  .l_whence = SEEK_SET,
			  .l_start = 2,
			  .l_len = 1};
	OK(fcntl(b, F_OFD_GETLK, &q));
	assert_int_equal(q.l_type, F_WRLCK);
	assert_int_equal(q.l_start, 0);
	assert_int_equal(q.l_len, 5);
	fl.l_start = 5; /* beyond a's range: granted */
	OK(fcntl(b, F_OFD_SETLK, &fl));
	/* classic POSIX locks: one process never conflicts with itself */
	struct flock p = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	OK(fcntl(a, F_SETLK, &p));
	OK(fcntl(b, F_SETLK, &p));
	OK(fcntl(b, F_GETLK, &p));
	assert_int_equal(p.l_type, F_UNLCK);
	/* flock */
	OK(flock(a, LOCK_EX | LOCK_NB));
	ERR(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
	OK(close(a));
	ERR(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK); /* a2 still has it */
	OK(close(a2)); /* the last fd of the description: its locks go */
	OK(flock(b, LOCK_SH | LOCK_NB));
	fl.l_start = 0;
	OK(fcntl(b, F_OFD_SETLK, &fl));
	OK(close(b));
}

static void
test_stdio(void **state)
{
	(void)state;
	OK(mkdir(at("io"), 0755));
	FILE *f = fopen(at("io/t"), "w");
	assert_non_null(f);
	assert_true(fileno(f) >= 0);
	fprintf(f, "line %d\n", 1);
	fputs("line 2\n", f);
	OK(fflush(f));
	OK(fsync(fileno(f)));
	OK(fclose(f));
	f = fopen(at("io/t"), "a+");
	fputs("line 3\n", f);
	OK(fclose(f));
	f = fopen(at("io/t"), "r");
	char line[64];
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "line 1\n");
	OK(fseek(f, -7, SEEK_END));
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "line 3\n");
	OK(fclose(f));
	assert_null(fopen(at("io/none"), "r"));
	assert_int_equal(errno, ENOENT);
	assert_null(fopen(at("io/t"), "wx"));
	assert_int_equal(errno, EEXIST);
	int fd = open(at("io/t"), O_RDONLY);
	f = fdopen(fd, "r");
	assert_non_null(f);
	assert_int_equal(fileno(f), fd);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "line 1\n");
	OK(fclose(f)); /* closes fd */
	ERR(close(fd), EBADF);
}

static void
test_cwd_realpath(void **state)
{
	(void)state;
	OK(mkdir(at("cw"), 0755));
	OK(mkdir(at("cw/sub"), 0755));
	char old[PATH_MAX], buf[PATH_MAX];
	assert_non_null(getcwd(old, sizeof(old)));
	OK(chdir(at("cw")));
	assert_non_null(getcwd(buf, sizeof(buf)));
	assert_string_equal(buf, at("cw"));
	put("rel", "relative");
	assert_string_equal(get(at("cw/rel")), "relative");
	OK(chdir("sub"));
	assert_string_equal(get("../rel"), "relative");
	assert_non_null(realpath("../rel", buf));
	assert_string_equal(buf, at("cw/rel"));
	assert_null(realpath("../none", buf));
	assert_int_equal(errno, ENOENT);
	ERR(chdir(at("cw/rel")), ENOTDIR);
	int d = open(at("cw"), O_RDONLY | O_DIRECTORY);
	OK(chdir(old));
	assert_string_equal(getcwd(buf, sizeof(buf)), old);
	OK(fchdir(d));
	assert_string_equal(getcwd(buf, sizeof(buf)), at("cw"));
	OK(chdir(old));
	OK(close(d));
}

static void
test_copies(void **state)
{
	(void)state;
	OK(mkdir(at("cp"), 0755));
	char real[] = "/tmp/shim-unit-XXXXXX";
	int r = mkstemp(real);
	OK(r);
	char data[100000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	assert_int_equal(write(r, data, sizeof(data)), (ssize_t)sizeof(data));
	int v = open(at("cp/f"), O_RDWR | O_CREAT, 0644);
	off_t off = 0;
	assert_int_equal(sendfile(v, r, &off, sizeof(data)),
			 (ssize_t)sizeof(data));
	assert_int_equal(off, sizeof(data));
	int w = open(at("cp/g"), O_RDWR | O_CREAT, 0644);
	off64_t in = 0;
	assert_int_equal(copy_file_range(v, &in, w, NULL, sizeof(data), 0),
			 (ssize_t)sizeof(data));
	char back[sizeof(data)];
	assert_int_equal(pread(w, back, sizeof(back), 0),
			 (ssize_t)sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	OK(close(r));
	OK(unlink(real));
	OK(close(v));
	OK(close(w));
	/* temporary files under the prefix */
	char tmpl[PATH_MAX];
	snprintf(tmpl, sizeof(tmpl), "%s", at("cp/tmpXXXXXX"));
	int t = mkstemp(tmpl);
	OK(t);
	assert_null(strstr(tmpl, "XXXXXX"));
	struct stat st;
	OK(stat(tmpl, &st));
	OK(close(t));
	snprintf(tmpl, sizeof(tmpl), "%s", at("cp/dXXXXXX"));
	assert_non_null(mkdtemp(tmpl));
	OK(stat(tmpl, &st));
	assert_true(S_ISDIR(st.st_mode));
}

/* the inode of the memfd behind a vems fd (the kernel's fstat, not the
 * shim's): equal for two fds when one description was recycled */
static uint64_t
memfd_ino(int fd)
{
	struct stat st;
	if (syscall(SYS_fstat, fd, &st) != 0)
		fail_msg("fstat of fd %d: %s", fd, strerror(errno));
	return (uint64_t)st.st_ino;
}

static int
open_put(const char *path, const char *s)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	OK(fd);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	return fd;
}

/* the fds of this process on a "vems-ofd" memfd */
static int
ofd_fds(int *out, int max)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max) {
		char l[PATH_MAX], t[300];
		snprintf(t, sizeof(t), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(t, l, sizeof(l) - 1);
		if (k > 0) {
			l[k] = '\0';
			if (strstr(l, "memfd:vems-ofd") &&
			    atoi(e->d_name) != dirfd(d))
				out[n++] = atoi(e->d_name);
		}
	}
	closedir(d);
	return n;
}

/*
 * A closed O_CLOEXEC file's description is handed to the next open: the
 * new file starts clean (its own object, offset 0, its own flags); one
 * that another fd shares (dup, fork, posix_spawn, F_SETFD) is never
 * reused under it.
 */
static void
test_recycled_descriptions(void **state)
{
	(void)state;
	OK(mkdir(at("rc"), 0755));
	int a = open_put(at("rc/a"), "alpha alpha");
	uint64_t ia = memfd_ino(a);
	OK(close(a));
	int b = open(at("rc/b"), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
	OK(b);
	assert_int_equal(memfd_ino(b), ia); /* recycled */
	char buf[32] = "";
	assert_int_equal(read(b, buf, sizeof(buf)), 0); /* b is empty */
	assert_int_equal(lseek(b, 0, SEEK_CUR), 0);
	ERR(write(b, "x", 1), EBADF); /* b's O_RDONLY, not a's O_RDWR */
	assert_int_equal(fcntl(b, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	OK(close(b));
	assert_string_equal(get(at("rc/a")), "alpha alpha");

	/* dup: the copy keeps a's description while another file opens */
	a = open_put(at("rc/a"), "alpha");
	int d = dup(a);
	OK(d);
	ia = memfd_ino(a);
	OK(close(a));
	int c = open_put(at("rc/c"), "gamma");
	assert_int_not_equal(memfd_ino(c), ia);
	assert_int_equal(lseek(d, 0, SEEK_CUR), 5);
	assert_int_equal(pread(d, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "alpha", 5);
	OK(close(c));
	OK(close(d));

	/* made inheritable */
	a = open_put(at("rc/a"), "alpha");
	ia = memfd_ino(a);
	OK(fcntl(a, F_SETFD, 0));
	OK(close(a));
	c = open_put(at("rc/c"), "gamma");
	assert_int_not_equal(memfd_ino(c), ia);
	OK(close(c));

	/* open across a fork: the child has a copy */
	a = open_put(at("rc/a"), "alpha");
	ia = memfd_ino(a);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(memfd_ino(a) == ia ? 0 : 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	OK(close(a));
	c = open_put(at("rc/c"), "gamma");
	assert_int_not_equal(memfd_ino(c), ia);
	OK(close(c));

	/* posix_spawn may dup2 it into a program that outlives the close */
	a = open_put(at("rc/a"), "alpha");
	ia = memfd_ino(a);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, a, 9);
	char *argv[] = {"true", NULL};
	extern char **environ;
	assert_int_equal(posix_spawnp(&pid, "true", &fa, NULL, argv, environ),
			 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	OK(close(a));
	c = open_put(at("rc/c"), "gamma");
	assert_int_not_equal(memfd_ino(c), ia);
	OK(close(c));
	assert_string_equal(get(at("rc/a")), "alpha");
	assert_string_equal(get(at("rc/c")), "gamma");
}

/*
 * close_range and closefrom close vems fds as close does; a program that
 * closes or replaces the shim's spare fds (it cannot know them) takes
 * them from the shim, which then never uses them.
 */
static void
test_close_range_and_spares(void **state)
{
	(void)state;
	OK(mkdir(at("cr"), 0755));
	int f[3];
	for (int i = 0; i < 3; i++)
		f[i] = open_put(at("cr/%d", i), "data");
	/* (a range over the pool's own fds would close them too) */
	OK(dup2(f[1], 900));
	OK(dup2(f[2], 901));
	OK(close_range(900, 901, 0));
	ERR(fcntl(900, F_GETFD), EBADF);
	ERR(fcntl(901, F_GETFD), EBADF);
	for (int i = 0; i < 3; i++) {
		OK(close_range((unsigned)f[i], (unsigned)f[i], 0));
		ERR(fcntl(f[i], F_GETFD), EBADF);
		/* the number is the kernel's again, for a real file */
		int r = open("/dev/null", O_RDONLY);
		OK(r);
		if (r != f[i]) {
			OK(dup2(r, f[i]));
			OK(close(r));
		}
		char c;
		assert_int_equal(read(f[i], &c, 1), 0); /* /dev/null's EOF */
		struct stat st;
		OK(fstat(f[i], &st));
		assert_true(S_ISCHR(st.st_mode));
		OK(close(f[i]));
	}
	f[0] = open_put(at("cr/x"), "x");
	OK(close(f[0]));
	/* closefrom closes the pool's own fds too: a child's call (before
	 * an exec) */
	f[0] = open_put(at("cr/y"), "y");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		closefrom(f[0]);
		_exit(fcntl(f[0], F_GETFD) == -1 && errno == EBADF ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	OK(close(f[0]));
	f[0] = open_put(at("cr/w"), "w"); /* again a spare after the fork */
	OK(close(f[0]));

	/* the spares: fds on "vems-ofd" memfds that are no open file */
	int o[64];
	int n = ofd_fds(o, 64);
	assert_true(n >= 1); /* the closes above left some */
	int devnull = open("/dev/null", O_RDONLY);
	OK(devnull);
	for (int i = 0; i < n; i++)
		OK(dup2(devnull, o[i]));
	OK(close(o[n - 1]));
	int c = open_put(at("cr/z"), "zeta");
	char l[PATH_MAX], t[64];
	for (int i = 0; i < n - 1; i++) {
		snprintf(t, sizeof(t), "/proc/self/fd/%d", o[i]);
		ssize_t k = readlink(t, l, sizeof(l) - 1);
		assert_true(k > 0);
		l[k] = '\0';
		assert_string_equal(l, "/dev/null");
		OK(close(o[i]));
	}
	OK(close(c));
	OK(close(devnull));
	assert_string_equal(get(at("cr/z")), "zeta");
	assert_string_equal(get(at("cr/1")), "data");
}

static void
test_unsupported(void **state)
{
	(void)state;
	OK(mkdir(at("un"), 0755));
	put(at("un/f"), "f");
	char v[16];
	ERR(getxattr(at("un/f"), "user.x", v, sizeof(v)), ENOTSUP);
	ERR(setxattr(at("un/f"), "user.x", "1", 1, 0), ENOTSUP);
	ERR(getxattr(at("un/none"), "user.x", v, sizeof(v)), ENOENT);
	ERR(symlink("f", at("un/l")), EPERM);
	ERR(link(at("un/f"), at("un/h")), EPERM);
	ERR(link(at("un/f"), "/tmp/shim-unit-link"), EXDEV);
	ERR(readlink(at("un/f"), v, sizeof(v)), EINVAL);
	ERR(open(at("un"), O_TMPFILE | O_RDWR, 0600), EOPNOTSUPP);
}

int
main(void)
{
	const char *p = getenv("VEMS_PREFIX"), *sub = getenv("SHIM_UNIT_DIR");
	if (p == NULL || sub == NULL) {
		fprintf(stderr, "shim_unit: run by tests/shim/unit.sh\n");
		return 2;
	}
	snprintf(P, sizeof(P), "%s/%s", p, sub);
	if (mkdir(P, 0755) != 0) {
		fprintf(stderr, "shim_unit: mkdir %s: %s\n", P,
			strerror(errno));
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_flags),
		cmocka_unit_test(test_recycled_descriptions),
		cmocka_unit_test(test_close_range_and_spares),
		cmocka_unit_test(test_offsets_dup_vectors),
		cmocka_unit_test(test_fork_exec),
		cmocka_unit_test(test_fork_child_of_holder),
		cmocka_unit_test(test_unlink_open_file),
		cmocka_unit_test(test_rename),
		cmocka_unit_test(test_directories),
		cmocka_unit_test(test_stat_size_access),
		cmocka_unit_test(test_mmap),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_stdio),
		cmocka_unit_test(test_cwd_realpath),
		cmocka_unit_test(test_copies),
		cmocka_unit_test(test_unsupported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
