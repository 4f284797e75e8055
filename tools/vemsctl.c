/* SPDX-License-Identifier: BSD-3-Clause */
/* vemsctl.c -- the command-line tool: create, inspect and use libvems pools */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vems.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Exit codes, as documented in --help. */
#define EXIT_OK 0
#define EXIT_FAIL 1   /* check found problems, or the operation failed */
#define EXIT_USAGE 2  /* unknown command or option, bad or missing argument */
#define EXIT_NOPOOL 3 /* the pool could not be opened */

#define IO_BUF_SIZE ((size_t)1 << 20)	     /* put/get/check transfer unit */
#define PROGRESS_MIN (UINT64_C(8) << 20)     /* no progress bar below this */
#define PROGRESS_INTERVAL_NS (100 * 1000000) /* redraw at most 10x a second */

/* Prefix of the name a new object carries while "put" fills it. */
#define TMP_NAME_PREFIX ".vemsctl-put."

/* --- options and the command table ----------------------------------- */

/* Every option any command takes; an option's value is kept by its index. */
enum opt_id {
	O_HELP,
	O_JSON,
	O_PMEM_SIZE,
	O_BLOCK,
	O_BLOCK_SIZE,
	O_EXTENT,
	O_METADATA_ONLY,
	O_ALL,
	O_OID,
	O_FORCE,
	O_COUNT
};

/* Groups of options a command accepts (struct command.opts). */
#define OPTS_JSON (1u << 0)
#define OPTS_CREATE (1u << 1)
#define OPTS_CHECK (1u << 2)
#define OPTS_LS (1u << 3)
#define OPTS_RM (1u << 4)
#define OPTS_FORCE (1u << 5)

struct optdef {
	const char *name;
	const char *arg; /* argument name in help, NULL for a flag */
	unsigned group;	 /* OPTS_*, 0: every command */
	const char *help;
};

static const struct optdef optdefs[O_COUNT] = {
	[O_HELP] = {"help", NULL, 0, "show this help and exit"},
	[O_JSON] = {"json", NULL, OPTS_JSON, "print JSON instead of text"},
	[O_PMEM_SIZE] = {"pmem-size", "SIZE", OPTS_CREATE,
			 "size of the pmem file (required unless POOL exists "
			 "with a size, e.g. a device-dax node)"},
	[O_BLOCK] = {"block", "FILE", OPTS_CREATE,
		     "block file to create (default: POOL.blk)"},
	[O_BLOCK_SIZE] = {"block-size", "SIZE", OPTS_CREATE,
			  "size of the block file (default: 8 x pmem size)"},
	[O_EXTENT] = {"extent", "SIZE", OPTS_CREATE,
		      "extent size, a power of two from 4K to 2M "
		      "(default: 64K)"},
	[O_METADATA_ONLY] = {"metadata-only", NULL, OPTS_CHECK,
			     "check metadata only; do not read object data"},
	[O_ALL] = {"all", NULL, OPTS_LS,
		   "also list the objects no name refers to"},
	[O_OID] = {"oid", "P:I", OPTS_RM,
		   "remove the object with this ID (and all its names) "
		   "instead of a NAME"},
	[O_FORCE] = {"force", NULL, OPTS_FORCE,
		     "replace files that exist at the destination"},
};

struct args;

struct command {
	const char *name;
	int (*run)(const struct args *a);
	unsigned opts;		/* OPTS_* groups it accepts */
	int min_args, max_args; /* positional arguments */
	const char *argnames[3];
	const char *synopsis;
	const char *summary;
	const char *help;
};

/* A parsed command line. */
struct args {
	const struct command *cmd;
	/* option values by enum opt_id: "" for a given flag, NULL if absent */
	const char *opt[O_COUNT];
	char **pos; /* positional arguments; pos[0] is POOL */
	int npos;
};

/* --- errors and signals ---------------------------------------------- */

static char prog[64] = "vemsctl"; /* "vemsctl" or "vemsctl CMD" */

/* A progress bar is on the last line of stderr, with no newline yet. */
static bool progress_line;

/* Ends a progress bar's line so that a message starts on a line of its own. */
static void
progress_break(void)
{
	if (progress_line)
		fputc('\n', stderr);
	progress_line = false;
}

static void
msg_start(void)
{
	progress_break();
	fprintf(stderr, "%s: ", prog);
}

/*
 * Reports a failed library call as "vemsctl CMD: <context>: <reason>". The
 * reason is vems_errormsg(), which is only valid until the next vems_* call,
 * so this must run right after the failing call. A NULL fmt: no context.
 */
static void __attribute__((format(printf, 2, 3)))
lib_error(long rc, const char *fmt, ...)
{
	const char *msg = vems_errormsg();
	va_list ap;

	msg_start();
	if (fmt) {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputs(": ", stderr);
	}
	fprintf(stderr, "%s\n", msg && *msg ? msg : vems_strerror((int)rc));
}

/* Reports a failed system call as "vemsctl CMD: <context>: <strerror>". */
static void __attribute__((format(printf, 1, 2)))
sys_error(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	msg_start();
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
}

/* Reports a usage error and where to find help; returns EXIT_USAGE. */
static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return EXIT_USAGE;
}

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

/*
 * SIGINT, SIGTERM and SIGHUP set stop_signal so that put/get/check stop
 * between two chunks and clean up (a half-written object is removed).
 * They stay blocked while the pool is opened so that threads the library
 * starts then inherit the blocked mask and the signal reaches this thread,
 * whose read() and write() it interrupts (no SA_RESTART).
 */
static void
signals_setup(void)
{
	struct sigaction sa;
	sigset_t set;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	for (i = 0; i < ARRAY_SIZE(stop_signals); i++) {
		struct sigaction old;

		/* a signal ignored by the parent (nohup) stays ignored */
		if (sigaction(stop_signals[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaction(stop_signals[i], &sa, NULL);
		sigaddset(&set, stop_signals[i]);
	}
	/* a closed output pipe is an EPIPE from write(), handled there */
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

static void
signals_unblock(void)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < ARRAY_SIZE(stop_signals); i++)
		sigaddset(&set, stop_signals[i]);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* The exit code for a command stopped by a signal (shell convention). */
static int
interrupted(void)
{
	msg_start();
	fprintf(stderr, "stopped by signal %d (%s)\n", (int)stop_signal,
		strsignal(stop_signal));
	return 128 + stop_signal;
}

/* --- formatting ------------------------------------------------------ */

/* v as "512 B" or "1.5 MiB" in buf; returns buf. */
static const char *
fmt_bytes(char *buf, size_t len, uint64_t v)
{
	static const char *const units[] = {"KiB", "MiB", "GiB",
					    "TiB", "PiB", "EiB"};
	double d = (double)v;
	size_t u = 0;

	if (v < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", v);
		return buf;
	}
	d /= 1024;
	while (d >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

/*
 * Parses a size: decimal bytes, or a number with a K, M, G, T or P suffix
 * (powers of 1024, any case, optionally followed by "iB"). Rejects signs,
 * spaces, fractions, unknown suffixes and anything that overflows 64 bits.
 */
static int
parse_size(const char *s, uint64_t *out)
{
	static const char suffixes[] = "kmgtp";
	unsigned long long v;
	const char *p;
	char *end;
	unsigned shift = 0;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		/* ASCII lower case; never NUL, as *end is not */
		p = strchr(suffixes, *end | 0x20);
		if (!p)
			return -1;
		shift = 10 * (unsigned)(p - suffixes + 1);
		end++;
		if (strcasecmp(end, "") && strcasecmp(end, "ib"))
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static void
fmt_uuid(char *buf, size_t len, const uint8_t u[16])
{
	snprintf(buf, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

/*
 * Length of the valid UTF-8 sequence at p, or 0 if it is not one (overlong
 * forms, surrogates and code points past U+10FFFF are invalid). p is a
 * NUL-terminated string, so the continuation checks stop at its end.
 */
static size_t
utf8_len(const unsigned char *p)
{
	uint32_t cp, min;
	size_t n, i;

	if (p[0] < 0x80) {
		return 1;
	} else if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p) {
		n = utf8_len(p);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

/*
 * Writes s escaped, for the inside of a JSON string or for one line of text.
 * Valid UTF-8 passes through; '\\', newline and tab get C escapes in both;
 * '"' is escaped in JSON. Other control bytes are \\u00XX in JSON, \\xNN in
 * text. A byte that is not part of valid UTF-8 is \\xNN in text; JSON is
 * UTF-8 and cannot carry it, so it becomes U+FFFD (see print_name_json).
 */
static void
put_escaped(const char *s, bool json)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p) {
		n = utf8_len(p);
		if (n > 1) {
			fwrite(p, 1, n, stdout);
			p += n;
			continue;
		}
		if (*p == '\\' || (json && *p == '"'))
			printf("\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", stdout);
		else if (*p == '\t')
			fputs("\\t", stdout);
		else if (json && n == 0)
			fputs("\\ufffd", stdout);
		else if (json && (*p < 0x20 || *p == 0x7f))
			printf("\\u%04x", *p);
		else if (n == 0 || *p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
		p++;
	}
}

static void
json_str(const char *s)
{
	putchar('"');
	put_escaped(s, true);
	putchar('"');
}

/* "name": "..." and, if the name is not valid UTF-8, its exact bytes. */
static void
print_name_json(const char *name)
{
	const unsigned char *p;

	fputs("\"name\": ", stdout);
	json_str(name);
	if (utf8_valid(name))
		return;
	fputs(", \"name_hex\": \"", stdout);
	for (p = (const unsigned char *)name; *p; p++)
		printf("%02x", *p);
	putchar('"');
}

/*
 * Key/value output shared by info and stats: text as "key name:  value"
 * (underscores read as spaces, byte counts also in KiB/MiB/...), or a JSON
 * object with the keys as they are.
 */
enum kv_type { KV_U64, KV_BYTES, KV_STR, KV_BOOL };

struct kv {
	const char *key;
	enum kv_type type;
	uint64_t u;
	const char *s;
};

static void
print_kv(const struct kv *kv, size_t n, bool json)
{
	char label[64], human[32];
	size_t i, j;

	if (json)
		fputs("{\n", stdout);
	for (i = 0; i < n; i++) {
		if (json) {
			printf("  \"%s\": ", kv[i].key);
			if (kv[i].type == KV_STR)
				json_str(kv[i].s ? kv[i].s : "");
			else if (kv[i].type == KV_BOOL)
				fputs(kv[i].u ? "true" : "false", stdout);
			else
				printf("%" PRIu64, kv[i].u);
			fputs(i + 1 < n ? ",\n" : "\n", stdout);
			continue;
		}
		snprintf(label, sizeof(label), "%s:", kv[i].key);
		for (j = 0; label[j]; j++)
			if (label[j] == '_')
				label[j] = ' ';
		printf("%-20s ", label);
		switch (kv[i].type) {
		case KV_STR:
			put_escaped(kv[i].s ? kv[i].s : "", false);
			break;
		case KV_BOOL:
			fputs(kv[i].u ? "yes" : "no", stdout);
			break;
		case KV_BYTES:
			printf("%" PRIu64, kv[i].u);
			if (kv[i].u >= 1024)
				printf(" (%s)",
				       fmt_bytes(human, sizeof(human),
						 kv[i].u));
			break;
		case KV_U64:
			printf("%" PRIu64, kv[i].u);
			break;
		}
		putchar('\n');
	}
	if (json)
		fputs("}\n", stdout);
}

/* --- progress bar ---------------------------------------------------- */

/*
 * A one-line progress bar on stderr, drawn only if stderr is a terminal and
 * the transfer is large (more than PROGRESS_MIN bytes, known in advance or
 * seen so far). total 0 means unknown (a pipe): bytes and rate only.
 */
struct progress {
	const char *what;
	uint64_t total;
	bool tty;
	bool drawn;
	struct timespec start, last;
};

static uint64_t
elapsed_ns(const struct timespec *from, const struct timespec *to)
{
	return (uint64_t)(to->tv_sec - from->tv_sec) * 1000000000u +
		(uint64_t)to->tv_nsec - (uint64_t)from->tv_nsec;
}

static void
progress_init(struct progress *pg, const char *what, uint64_t total)
{
	memset(pg, 0, sizeof(*pg));
	pg->what = what;
	pg->total = total;
	pg->tty = isatty(STDERR_FILENO) == 1;
	clock_gettime(CLOCK_MONOTONIC, &pg->start);
	pg->last = pg->start;
}

static void
progress_draw(struct progress *pg, uint64_t done, const struct timespec *now)
{
	char a[32], b[32], r[32];
	uint64_t ns = elapsed_ns(&pg->start, now);
	double rate = ns ? (double)done * 1e9 / (double)ns : 0;
	char bar[26];
	unsigned pct, fill, i;

	fmt_bytes(a, sizeof(a), done);
	fmt_bytes(r, sizeof(r), (uint64_t)rate);
	if (pg->total) {
		pct = (unsigned)(done >= pg->total ? 100
						   : done * 100 / pg->total);
		fill = pct / 4;
		for (i = 0; i < sizeof(bar) - 1; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[sizeof(bar) - 1] = '\0';
		fprintf(stderr, "\r%-5s %3u%% [%s] %s / %s  %s/s\033[K",
			pg->what, pct, bar, a,
			fmt_bytes(b, sizeof(b), pg->total), r);
	} else {
		fprintf(stderr, "\r%-5s %s  %s/s\033[K", pg->what, a, r);
	}
	pg->drawn = true;
	progress_line = true;
}

static void
progress_update(struct progress *pg, uint64_t done)
{
	struct timespec now;

	if (!pg->tty || (pg->total ? pg->total : done) <= PROGRESS_MIN)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (pg->drawn && elapsed_ns(&pg->last, &now) < PROGRESS_INTERVAL_NS)
		return;
	pg->last = now;
	progress_draw(pg, done, &now);
}

/*
 * Draws the final state and ends the line, if the bar is shown and no
 * message has ended its line already.
 */
static void
progress_end(struct progress *pg, uint64_t done)
{
	struct timespec now;

	if (!pg->drawn || !progress_line)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	progress_draw(pg, done, &now);
	fputc('\n', stderr);
	progress_line = false;
}

/* --- I/O helpers ----------------------------------------------------- */

/* Fills buf from fd; returns less than len only at end of file, -1 on error
 * (errno EINTR if a stop signal came). */
static ssize_t
read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, buf + got, len - got);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR && !stop_signal)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR && !stop_signal)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The 1 MiB transfer buffer, page aligned (friendly to O_DIRECT paths). */
static char *
io_buf_alloc(void)
{
	void *p = NULL;

	if (posix_memalign(&p, VEMS_PAGE_SIZE, IO_BUF_SIZE)) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return NULL;
	}
	return p;
}

/* --- pool helpers ---------------------------------------------------- */

/*
 * Opens a pool; on failure prints the library's sentence as
 * "vemsctl: <sentence>" and returns EXIT_NOPOOL.
 */
static int
open_pool(const char *path, struct vems_pool **pool)
{
	const char *msg;
	int rc;

	rc = vems_pool_open(pool, path, NULL);
	signals_unblock();
	if (rc == 0)
		return EXIT_OK;
	msg = vems_errormsg();
	if (msg && *msg)
		fprintf(stderr, "vemsctl: %s\n", msg);
	else
		fprintf(stderr, "vemsctl: cannot open pool %s: %s\n", path,
			vems_strerror(rc));
	return EXIT_NOPOOL;
}

/* Closes the pool; a failure to flush turns a success into EXIT_FAIL. */
static int
close_pool(struct vems_pool **pool, int ret)
{
	int rc = vems_pool_close(pool);

	if (rc) {
		lib_error(rc, "closing the pool failed");
		if (ret == EXIT_OK)
			ret = EXIT_FAIL;
	}
	return ret;
}

#define OID_FMT "%" PRIu64 ":%" PRIu64
#define OID_ARGS(o) (o).partition, (o).id

/* "P:I", two decimal numbers: the spelling OID_FMT prints. 0 or -1. */
static int
parse_oid(const char *s, struct vems_oid *oid)
{
	unsigned long long p, i;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	p = strtoull(s, &end, 10);
	if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
		return -1;
	i = strtoull(end + 1, &end, 10);
	if (errno || *end)
		return -1;
	oid->partition = p;
	oid->id = i;
	return 0;
}

static bool
oid_eq(struct vems_oid a, struct vems_oid b)
{
	return a.partition == b.partition && a.id == b.id;
}

/* A growing array of (name, oid) pairs or of oids. */
struct name_ent {
	char *name;
	struct vems_oid oid;
};

struct vec {
	void *v;
	size_t n, cap, elem;
	bool oom;
};

static void *
vec_push(struct vec *v)
{
	void *p;

	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;

		p = realloc(v->v, cap * v->elem);
		if (!p) {
			v->oom = true;
			return NULL;
		}
		v->v = p;
		v->cap = cap;
	}
	return (char *)v->v + v->elem * v->n++;
}

static int
collect_name(const char *name, const struct vems_oid *oid, void *arg)
{
	struct vec *v = arg;
	struct name_ent *e = vec_push(v);

	if (!e)
		return 1;
	e->oid = *oid;
	e->name = strdup(name);
	if (!e->name) {
		v->n--;
		v->oom = true;
		return 1;
	}
	return 0;
}

/*
 * Copies out the names under prefix first, so that no library call is made
 * from inside the walk's callback. Returns 0 or EXIT_FAIL (reported).
 */
static int
collect_names(struct vems_pool *pool, const char *prefix, struct vec *v)
{
	int rc;

	memset(v, 0, sizeof(*v));
	v->elem = sizeof(struct name_ent);
	rc = vems_name_list(pool, prefix, collect_name, v);
	if (v->oom) {
		fprintf(stderr, "%s: out of memory listing names\n", prog);
		return EXIT_FAIL;
	}
	if (rc < 0) {
		lib_error(rc, "listing names failed");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static void
names_free(struct vec *v)
{
	struct name_ent *e = v->v;
	size_t i;

	for (i = 0; i < v->n; i++)
		free(e[i].name);
	free(v->v);
	memset(v, 0, sizeof(*v));
}

/* Is oid bound to any name other than except (which may be NULL)? */
struct other_name {
	struct vems_oid oid;
	const char *except;
};

static int
match_other_name(const char *name, const struct vems_oid *oid, void *arg)
{
	const struct other_name *o = arg;

	return oid_eq(*oid, o->oid) && (!o->except || strcmp(name, o->except));
}

static int
has_other_name(struct vems_pool *pool, struct vems_oid oid, const char *except)
{
	struct other_name o = {oid, except};

	return vems_name_list(pool, NULL, match_other_name, &o);
}

/* --- commands -------------------------------------------------------- */

static int
cmd_create(const struct args *a)
{
	static const struct {
		enum opt_id opt;
		int (*set)(struct vems_config *cfg, uint64_t bytes);
	} sizes[] = {
		{O_PMEM_SIZE, vems_config_set_pmem_size},
		{O_BLOCK_SIZE, vems_config_set_block_size},
		{O_EXTENT, vems_config_set_extent_size},
	};
	const char *path = a->pos[0];
	struct vems_config *cfg = NULL;
	struct vems_pool *pool = NULL;
	struct vems_pool_info info;
	char h1[32], h2[32], h3[32];
	uint64_t v[ARRAY_SIZE(sizes)];
	int ret = EXIT_USAGE, rc;
	size_t i;

	/* every value is checked before any file is touched */
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		const char *s = a->opt[sizes[i].opt];

		if (s && parse_size(s, &v[i]))
			return usage_error("invalid size '%s' for --%s (bytes, "
					   "or a number with K, M, G, T or P: "
					   "512K, 64M, 4G)",
					   s, optdefs[sizes[i].opt].name);
	}
	/* a device (device-dax, a pmem block device) has its own size;
	 * anything else needs one */
	struct stat st;
	if (!a->opt[O_PMEM_SIZE] &&
	    !(stat(path, &st) == 0 &&
	      (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))))
		return usage_error("create needs --pmem-size SIZE: %s is not "
				   "a device, whose size would be its own",
				   path);
	rc = vems_config_new(&cfg);
	if (rc) {
		lib_error(rc, "cannot create a configuration");
		return EXIT_FAIL;
	}
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		if (!a->opt[sizes[i].opt])
			continue;
		rc = sizes[i].set(cfg, v[i]);
		if (rc) {
			ret = usage_error(
				"--%s %s: %s", optdefs[sizes[i].opt].name,
				a->opt[sizes[i].opt], vems_errormsg());
			goto out;
		}
	}
	if (a->opt[O_BLOCK]) {
		rc = vems_config_set_block_path(cfg, a->opt[O_BLOCK]);
		if (rc) {
			ret = usage_error("--block %s: %s", a->opt[O_BLOCK],
					  vems_errormsg());
			goto out;
		}
	}
	ret = EXIT_FAIL;
	rc = vems_pool_create(&pool, path, cfg);
	signals_unblock();
	if (rc) {
		lib_error(rc, "cannot create pool %s", path);
		goto out;
	}
	ret = EXIT_OK;
	if (vems_pool_info(pool, &info) == 0)
		printf("created pool %s: pmem %s (%" PRIu64 " extents of %s), "
		       "block file %s: %s\n",
		       path, fmt_bytes(h1, sizeof(h1), info.pmem_size),
		       info.pmem_extents,
		       fmt_bytes(h2, sizeof(h2), info.extent_size),
		       info.block_path,
		       fmt_bytes(h3, sizeof(h3), info.block_size));
	ret = close_pool(&pool, ret);
out:
	vems_config_delete(&cfg);
	return ret;
}

static int
cmd_info(const struct args *a)
{
	struct vems_pool *pool = NULL;
	struct vems_pool_info in;
	char uuid[40];
	int ret, rc;

	ret = open_pool(a->pos[0], &pool);
	if (ret)
		return ret;
	rc = vems_pool_info(pool, &in);
	if (rc) {
		lib_error(rc, "cannot read pool info");
		return close_pool(&pool, EXIT_FAIL);
	}
	fmt_uuid(uuid, sizeof(uuid), in.uuid);
	{
		const struct kv kv[] = {
			{"uuid", KV_STR, 0, uuid},
			{"format_version", KV_U64, in.format_version, NULL},
			{"library_version", KV_STR, 0, vems_version()},
			{"page_size", KV_BYTES, in.page_size, NULL},
			{"extent_size", KV_BYTES, in.extent_size, NULL},
			{"pmem_path", KV_STR, 0, in.pmem_path},
			{"pmem_size", KV_BYTES, in.pmem_size, NULL},
			{"pmem_extents", KV_U64, in.pmem_extents, NULL},
			{"pmem_capacity", KV_BYTES,
			 in.pmem_extents * in.extent_size, NULL},
			{"is_pmem", KV_BOOL, (uint64_t) !!in.is_pmem, NULL},
			{"block_path", KV_STR, 0, in.block_path},
			{"block_size", KV_BYTES, in.block_size, NULL},
			{"block_extents", KV_U64, in.block_extents, NULL},
			{"block_io", KV_STR, 0, in.block_io},
		};

		print_kv(kv, ARRAY_SIZE(kv), a->opt[O_JSON] != NULL);
	}
	return close_pool(&pool, EXIT_OK);
}

/* Every field of struct vems_pool_stats, in order; bytes fields marked. */
static const struct {
	const char *key;
	size_t off;
	bool bytes;
} stat_fields[] = {
#define F(f, b) #f, offsetof(struct vems_pool_stats, f), b
	{F(objects, false)},
	{F(names, false)},
	{F(pmem_bytes_used, true)},
	{F(pmem_bytes_free, true)},
	{F(block_bytes_used, true)},
	{F(block_bytes_free, true)},
	{F(extents_pmem, false)},
	{F(extents_both, false)},
	{F(extents_block, false)},
	{F(reads, false)},
	{F(writes, false)},
	{F(bytes_read, true)},
	{F(bytes_written, true)},
	{F(pmem_hits, false)},
	{F(block_hits, false)},
	{F(hole_reads, false)},
	{F(extents_allocated, false)},
	{F(extents_freed, false)},
	{F(spills, false)},
	{F(promotions, false)},
	{F(clean_drops, false)},
	{F(bytes_spilled, true)},
	{F(bytes_promoted, true)},
	{F(checksum_failures, false)},
	{F(uring_max_inflight, false)},
	{F(sync_spills, false)},
	{F(block_fetches, false)},
	{F(block_errors, false)},
	{F(bytes_block_read, true)},
	{F(inline_objects, false)},
	{F(inline_bytes, true)},
	{F(inline_evictions, false)},
#undef F
};

static int
cmd_stats(const struct args *a)
{
	struct kv kv[ARRAY_SIZE(stat_fields)];
	struct vems_pool *pool = NULL;
	struct vems_pool_stats st;
	int ret, rc;
	size_t i;

	ret = open_pool(a->pos[0], &pool);
	if (ret)
		return ret;
	rc = vems_pool_stats(pool, &st);
	if (rc) {
		lib_error(rc, "cannot read pool statistics");
		return close_pool(&pool, EXIT_FAIL);
	}
	for (i = 0; i < ARRAY_SIZE(stat_fields); i++) {
		kv[i].key = stat_fields[i].key;
		kv[i].type = stat_fields[i].bytes ? KV_BYTES : KV_U64;
		memcpy(&kv[i].u, (const char *)&st + stat_fields[i].off,
		       sizeof(uint64_t));
		kv[i].s = NULL;
	}
	print_kv(kv, ARRAY_SIZE(kv), a->opt[O_JSON] != NULL);
	return close_pool(&pool, EXIT_OK);
}

static int collect_oid(const struct vems_oid *oid, void *arg);

static int
oid_cmp(const void *x, const void *y)
{
	const struct vems_oid *a = x, *b = y;

	if (a->partition != b->partition)
		return a->partition < b->partition ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * The objects no name refers to (left by a crash between create and bind,
 * a program that keeps IDs itself, or a replaced name), sorted by ID, into
 * *out. 0 or EXIT_FAIL (reported).
 */
static int
collect_unnamed(struct vems_pool *pool, struct vec *out)
{
	struct vec names, oids = {.elem = sizeof(struct vems_oid)};
	struct vems_oid *named = NULL, *o;
	struct name_ent *e;
	size_t i;
	int rc, ret;

	memset(out, 0, sizeof(*out));
	out->elem = sizeof(struct vems_oid);
	ret = collect_names(pool, NULL, &names);
	if (ret)
		return ret;
	rc = vems_obj_list(pool, collect_oid, &oids);
	if (rc < 0 || oids.oom) {
		if (oids.oom)
			fprintf(stderr, "%s: out of memory\n", prog);
		else
			lib_error(rc, "listing objects failed");
		ret = EXIT_FAIL;
		goto out;
	}
	named = malloc((names.n ? names.n : 1) * sizeof(*named));
	if (!named) {
		fprintf(stderr, "%s: out of memory\n", prog);
		ret = EXIT_FAIL;
		goto out;
	}
	e = names.v;
	for (i = 0; i < names.n; i++)
		named[i] = e[i].oid;
	qsort(named, names.n, sizeof(*named), oid_cmp);
	o = oids.v;
	qsort(o, oids.n, sizeof(*o), oid_cmp);
	for (i = 0; i < oids.n; i++) {
		if (bsearch(&o[i], named, names.n, sizeof(*named), oid_cmp))
			continue;
		struct vems_oid *d = vec_push(out);
		if (!d) {
			fprintf(stderr, "%s: out of memory\n", prog);
			ret = EXIT_FAIL;
			goto out;
		}
		*d = o[i];
	}
out:
	free(named);
	free(oids.v);
	names_free(&names);
	if (ret) {
		free(out->v);
		memset(out, 0, sizeof(*out));
	}
	return ret;
}

static int
cmd_ls(const struct args *a)
{
	const char *prefix = a->npos > 1 ? a->pos[1] : NULL;
	bool json = a->opt[O_JSON] != NULL;
	struct vems_pool *pool = NULL;
	struct vems_obj_stat st;
	struct name_ent *e;
	char oidbuf[48];
	struct vec names;
	int ret, rc;
	size_t i;

	ret = open_pool(a->pos[0], &pool);
	if (ret)
		return ret;
	ret = collect_names(pool, prefix, &names);
	if (ret)
		goto out;
	e = names.v;
	if (json)
		fputs("[", stdout);
	for (i = 0; i < names.n; i++) {
		rc = vems_obj_stat_oid(pool, e[i].oid, &st);
		if (rc) {
			lib_error(rc, "cannot stat object " OID_FMT " of %s",
				  OID_ARGS(e[i].oid), e[i].name);
			ret = EXIT_FAIL;
		}
		if (json) {
			fputs(i ? ",\n  { " : "\n  { ", stdout);
			print_name_json(e[i].name);
			printf(", \"oid\": { \"partition\": %" PRIu64
			       ", \"id\": %" PRIu64 " }, \"size\": ",
			       OID_ARGS(e[i].oid));
			if (rc)
				fputs("null }", stdout);
			else
				printf("%" PRIu64 " }", st.size);
			continue;
		}
		snprintf(oidbuf, sizeof(oidbuf), OID_FMT, OID_ARGS(e[i].oid));
		if (rc)
			printf("%-12s %15s  ", oidbuf, "?");
		else
			printf("%-12s %15" PRIu64 "  ", oidbuf, st.size);
		put_escaped(e[i].name, false);
		putchar('\n');
	}
	if (a->opt[O_ALL]) {
		struct vec un;
		struct vems_oid *u;

		rc = collect_unnamed(pool, &un);
		if (rc)
			ret = rc;
		u = un.v;
		for (i = 0; i < un.n; i++) {
			rc = vems_obj_stat_oid(pool, u[i], &st);
			if (json) {
				fputs(i || names.n ? ",\n  { " : "\n  { ",
				      stdout);
				printf("\"name\": null, \"oid\": { "
				       "\"partition\": %" PRIu64
				       ", \"id\": %" PRIu64 " }, \"size\": ",
				       OID_ARGS(u[i]));
				if (rc)
					fputs("null }", stdout);
				else
					printf("%" PRIu64 " }", st.size);
				continue;
			}
			snprintf(oidbuf, sizeof(oidbuf), OID_FMT,
				 OID_ARGS(u[i]));
			if (rc)
				printf("%-12s %15s  (no name)\n", oidbuf, "?");
			else
				printf("%-12s %15" PRIu64 "  (no name)\n",
				       oidbuf, st.size);
		}
		if (json && un.n && !names.n)
			fputs("\n]\n", stdout);
		else if (json)
			fputs(names.n ? "\n]\n" : "]\n", stdout);
		free(un.v);
	} else if (json) {
		fputs(names.n ? "\n]\n" : "]\n", stdout);
	}
	names_free(&names);
out:
	return close_pool(&pool, ret);
}

/*
 * One problem "check" found: a "problem: ..." line, or with --json kept
 * for the report (g_problems).
 */
static struct vec *g_problems;

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
problem(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (g_problems) {
		char **p = vec_push(g_problems);
		if (p && (*p = strdup(buf)) == NULL)
			g_problems->n--;
		return;
	}
	progress_break();
	printf("problem: %s\n", buf);
}

/* Reads every byte of one object; read errors are problems, not fatal. */
static unsigned
check_object_data(struct vems_pool *pool, struct vems_oid oid, char *buf,
		  struct progress *pg, uint64_t *done)
{
	struct vems_obj *obj = NULL;
	uint64_t off = 0;
	unsigned problems = 0;
	ssize_t n;
	int rc;

	rc = vems_obj_open(pool, oid, VEMS_O_RDONLY, &obj);
	if (rc) {
		problem("object " OID_FMT " cannot be opened: %s",
			OID_ARGS(oid), vems_errormsg());
		return 1;
	}
	while (!stop_signal) {
		n = vems_obj_pread(obj, buf, IO_BUF_SIZE, off);
		if (n == 0)
			break;
		if (n < 0) {
			problem("object " OID_FMT ": reading %zu bytes at "
				"offset %" PRIu64 " failed: %s",
				OID_ARGS(oid), IO_BUF_SIZE, off,
				*vems_errormsg() ? vems_errormsg()
						 : vems_strerror((int)n));
			problems++;
			n = IO_BUF_SIZE; /* go on with the next chunk */
		}
		off += (uint64_t)n;
		*done += (uint64_t)n;
		progress_update(pg, *done);
	}
	vems_obj_close(&obj);
	return problems;
}

static int
collect_oid(const struct vems_oid *oid, void *arg)
{
	struct vec *v = arg;
	struct vems_oid *o = vec_push(v);

	if (!o)
		return 1;
	*o = *oid;
	return 0;
}

/*
 * The data half of "check": reads every object end to end, so that every
 * mapped extent is read back through the data path. Returns the number of
 * problems, or -1 if the scan could not run.
 */
static long
check_data(struct vems_pool *pool, uint64_t *bytes)
{
	struct vec oids = {.elem = sizeof(struct vems_oid)};
	struct vems_obj_stat st;
	struct vems_oid *o;
	struct progress pg;
	uint64_t total = 0;
	long problems = 0;
	char *buf;
	size_t i;
	int rc;

	rc = vems_obj_list(pool, collect_oid, &oids);
	if (oids.oom || rc < 0) {
		if (oids.oom)
			fprintf(stderr, "%s: out of memory\n", prog);
		else
			lib_error(rc, "listing objects failed");
		free(oids.v);
		return -1;
	}
	o = oids.v;
	for (i = 0; i < oids.n; i++)
		if (vems_obj_stat_oid(pool, o[i], &st) == 0)
			total += st.size;
	buf = io_buf_alloc();
	if (!buf) {
		free(oids.v);
		return -1;
	}
	*bytes = 0;
	progress_init(&pg, "check", total);
	for (i = 0; i < oids.n && !stop_signal; i++)
		problems += check_object_data(pool, o[i], buf, &pg, bytes);
	progress_end(&pg, *bytes);
	free(buf);
	free(oids.v);
	return problems;
}

static void
report_problem(const char *msg, void *arg)
{
	(void)arg;
	problem("%s", msg);
}

static int
cmd_check(const struct args *a)
{
	struct vems_pool *pool = NULL;
	struct vems_pool_stats st;
	char h[32];
	uint64_t bytes = 0;
	long problems, data;
	int ret;

	struct vec found = {.elem = sizeof(char *)};
	bool json = a->opt[O_JSON] != NULL;

	ret = open_pool(a->pos[0], &pool);
	if (ret)
		return ret;
	if (json)
		g_problems = &found;
	problems = vems_pool_check(pool, report_problem, NULL);
	if (problems < 0) {
		lib_error(problems, "the metadata check could not run");
		return close_pool(&pool, EXIT_FAIL);
	}
	if (!a->opt[O_METADATA_ONLY]) {
		data = check_data(pool, &bytes);
		if (stop_signal)
			return close_pool(&pool, interrupted());
		if (data < 0)
			return close_pool(&pool, EXIT_FAIL);
		problems += data;
	}
	if (json) {
		char **m = found.v;
		size_t i;

		g_problems = NULL;
		fputs("{\n  \"problems\": [", stdout);
		for (i = 0; i < found.n; i++) {
			fputs(i ? ",\n    " : "\n    ", stdout);
			json_str(m[i]);
			free(m[i]);
		}
		free(found.v);
		/* problems the list could not keep (out of memory) count */
		printf("%s],\n  \"problem_count\": %ld,\n",
		       found.n ? "\n  " : "", problems);
		if (vems_pool_stats(pool, &st) == 0)
			printf("  \"objects\": %" PRIu64
			       ",\n  \"names\": %" PRIu64 ",\n",
			       st.objects, st.names);
		if (a->opt[O_METADATA_ONLY])
			fputs("  \"data_bytes_read\": null,\n", stdout);
		else
			printf("  \"data_bytes_read\": %" PRIu64 ",\n", bytes);
		printf("  \"ok\": %s\n}\n", problems ? "false" : "true");
		return close_pool(&pool, problems ? EXIT_FAIL : EXIT_OK);
	}
	if (problems) {
		printf("%ld problem%s found\n", problems,
		       problems == 1 ? "" : "s");
		return close_pool(&pool, EXIT_FAIL);
	}
	if (vems_pool_stats(pool, &st) == 0)
		printf("no problems found: %" PRIu64 " objects, %" PRIu64
		       " names",
		       st.objects, st.names);
	else
		printf("no problems found");
	if (!a->opt[O_METADATA_ONLY])
		printf(", %s of data read", fmt_bytes(h, sizeof(h), bytes));
	putchar('\n');
	return close_pool(&pool, EXIT_OK);
}

/* Copies fd into the (empty) object oid and makes it durable. */
static int
copy_in(struct vems_pool *pool, struct vems_oid oid, int fd, const char *src,
	char *buf, uint64_t total)
{
	struct vems_obj *obj = NULL;
	struct progress pg;
	uint64_t off = 0;
	int ret = EXIT_FAIL, rc;
	ssize_t n, w;

	rc = vems_obj_open(pool, oid, 0, &obj);
	if (rc) {
		lib_error(rc, "cannot open object " OID_FMT, OID_ARGS(oid));
		return EXIT_FAIL;
	}
	progress_init(&pg, "put", total);
	while (!stop_signal) {
		n = read_full(fd, buf, IO_BUF_SIZE);
		if (n < 0) {
			if (!stop_signal)
				sys_error("reading %s failed", src);
			break;
		}
		if (n == 0) {
			ret = EXIT_OK;
			break;
		}
		/* the fence comes once, from vems_obj_persist below */
		w = vems_obj_pwrite(obj, buf, (size_t)n, off, VEMS_W_NODRAIN);
		if (w != n) {
			lib_error(w < 0 ? w : -EIO,
				  "writing %zd bytes at offset %" PRIu64
				  " of object " OID_FMT " failed",
				  n, off, OID_ARGS(oid));
			break;
		}
		off += (uint64_t)n;
		progress_update(&pg, off);
	}
	progress_end(&pg, off);
	if (stop_signal)
		ret = interrupted();
	if (ret == EXIT_OK) {
		rc = vems_obj_persist(obj);
		if (rc) {
			lib_error(rc,
				  "making object " OID_FMT " durable failed",
				  OID_ARGS(oid));
			ret = EXIT_FAIL;
		}
	}
	rc = vems_obj_close(&obj);
	if (rc && ret == EXIT_OK) {
		lib_error(rc, "closing object " OID_FMT " failed",
			  OID_ARGS(oid));
		ret = EXIT_FAIL;
	}
	return ret;
}

/*
 * Removes an object that lost its name, unless another name still refers
 * to it. A failure here is a warning: the command's own work is done.
 */
static void
remove_replaced(struct vems_pool *pool, struct vems_oid oid)
{
	int rc = has_other_name(pool, oid, NULL);

	if (rc == 0)
		rc = vems_obj_remove(pool, oid);
	if (rc < 0)
		lib_error(rc, "warning: cannot remove replaced object " OID_FMT,
			  OID_ARGS(oid));
}

/*
 * put: the new content goes into a NEW object under a temporary name, is
 * made durable, and only then replaces NAME in one crash-atomic rename. A
 * reader (or a crash) sees the old content or the new, never a mix. A crash
 * before the rename leaves a TMP_NAME_PREFIX name that "rm" can remove.
 */
static int
put_object(struct vems_pool *pool, const char *name, int fd, const char *src,
	   char *buf, uint64_t total)
{
	struct vems_oid oid = {0, 0}, old;
	char tmp[80];
	int ret, rc, replaced = 0;

	rc = vems_obj_create(pool, &oid);
	if (rc) {
		lib_error(rc, "cannot create an object");
		return EXIT_FAIL;
	}
	snprintf(tmp, sizeof(tmp), TMP_NAME_PREFIX OID_FMT, OID_ARGS(oid));
	rc = vems_name_bind(pool, tmp, oid);
	if (rc) {
		lib_error(rc, "cannot bind the temporary name %s", tmp);
		ret = EXIT_FAIL;
		goto remove_new;
	}
	ret = copy_in(pool, oid, fd, src, buf, total);
	if (ret)
		goto remove_new;
	rc = vems_name_rename(pool, tmp, name, &old, &replaced);
	if (rc) {
		lib_error(rc, "cannot bind the name %s", name);
		ret = EXIT_FAIL;
		goto remove_new;
	}
	if (replaced && !oid_eq(old, oid))
		remove_replaced(pool, old);
	return EXIT_OK;

remove_new:
	/* removing the object unbinds the temporary name in the same step */
	rc = vems_obj_remove(pool, oid);
	if (rc)
		lib_error(rc,
			  "warning: cannot remove the new object " OID_FMT
			  " (%s)",
			  OID_ARGS(oid), tmp);
	return ret;
}

static int
cmd_put(const struct args *a)
{
	const char *name = a->pos[1];
	const char *src = a->npos > 2 ? a->pos[2] : "-";
	struct vems_pool *pool = NULL;
	uint64_t total = 0;
	struct stat sb;
	int fd = STDIN_FILENO, ret = EXIT_FAIL;
	char *buf;

	if (strcmp(src, "-")) {
		fd = open(src, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			sys_error("cannot open %s", src);
			return EXIT_FAIL;
		}
	} else {
		src = "standard input";
	}
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
		total = (uint64_t)sb.st_size;
	buf = io_buf_alloc();
	if (!buf)
		goto out;
	ret = open_pool(a->pos[0], &pool);
	if (ret)
		goto out;
	ret = put_object(pool, name, fd, src, buf, total);
	ret = close_pool(&pool, ret);
out:
	free(buf);
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}

/* Copies object oid to fd. */
static int
copy_out(struct vems_pool *pool, struct vems_oid oid, int fd, const char *dst,
	 char *buf)
{
	struct vems_obj *obj = NULL;
	struct vems_obj_stat st;
	struct progress pg;
	uint64_t off = 0;
	int ret = EXIT_FAIL, rc;
	ssize_t n;

	rc = vems_obj_open(pool, oid, VEMS_O_RDONLY, &obj);
	if (rc) {
		lib_error(rc, "cannot open object " OID_FMT, OID_ARGS(oid));
		return EXIT_FAIL;
	}
	progress_init(&pg, "get", vems_obj_stat(obj, &st) == 0 ? st.size : 0);
	while (!stop_signal) {
		n = vems_obj_pread(obj, buf, IO_BUF_SIZE, off);
		if (n < 0) {
			lib_error(n,
				  "reading object " OID_FMT
				  " at offset %" PRIu64 " failed",
				  OID_ARGS(oid), off);
			break;
		}
		if (n == 0) {
			ret = EXIT_OK;
			break;
		}
		if (write_all(fd, buf, (size_t)n)) {
			/* a reader that went away (| head) is not an error
			 * worth a message */
			if (errno != EPIPE && !stop_signal)
				sys_error("writing %s failed", dst);
			break;
		}
		off += (uint64_t)n;
		progress_update(&pg, off);
	}
	progress_end(&pg, off);
	if (stop_signal)
		ret = interrupted();
	vems_obj_close(&obj);
	return ret;
}

static int
cmd_get(const struct args *a)
{
	const char *name = a->pos[1];
	const char *dst = a->npos > 2 ? a->pos[2] : "-";
	struct vems_pool *pool = NULL;
	struct vems_oid oid;
	struct stat sb;
	int fd = STDOUT_FILENO, ret, rc;
	char *buf, tmp[PATH_MAX];

	buf = io_buf_alloc();
	if (!buf)
		return EXIT_FAIL;
	ret = open_pool(a->pos[0], &pool);
	if (ret)
		goto out;
	rc = vems_name_lookup(pool, name, &oid);
	if (rc) {
		lib_error(rc, NULL);
		ret = close_pool(&pool, EXIT_FAIL);
		goto out;
	}
	/*
	 * A regular file (or a new one) is written under a temporary name in
	 * its directory and renamed over DST only when every byte is there,
	 * so an error or a kill leaves DST as it was. Anything else (a
	 * device, a FIFO) is written in place.
	 */
	bool atomic = false;
	if (strcmp(dst, "-")) {
		bool exists = stat(dst, &sb) == 0;
		if (!exists || S_ISREG(sb.st_mode)) {
			int n = snprintf(tmp, sizeof(tmp), "%s.vemsctl-XXXXXX",
					 dst);
			if (n < 0 || (size_t)n >= sizeof(tmp)) {
				ret = usage_error("output path too long: %s",
						  dst);
				ret = close_pool(&pool, ret);
				goto out;
			}
			fd = mkostemp(tmp, O_CLOEXEC);
			atomic = fd >= 0;
			/* the file's own mode, or the one open(2) would
			 * have given a new file */
			mode_t um = umask(0);
			umask(um);
			mode_t mode = exists ? sb.st_mode & 07777 : 0666 & ~um;
			if (atomic && fchmod(fd, mode) != 0) {
				sys_error("cannot set the mode of %s", tmp);
				close(fd);
				unlink(tmp);
				fd = -1;
			}
		} else {
			fd = open(dst, O_WRONLY | O_TRUNC | O_CLOEXEC);
		}
		if (fd < 0) {
			sys_error("cannot create %s", atomic ? tmp : dst);
			ret = close_pool(&pool, EXIT_FAIL);
			goto out;
		}
	} else {
		dst = "standard output";
	}
	ret = copy_out(pool, oid, fd, dst, buf);
	if (fd != STDOUT_FILENO) {
		if (close(fd) && ret == EXIT_OK) {
			sys_error("writing %s failed", dst);
			ret = EXIT_FAIL;
		}
		if (atomic && ret == EXIT_OK && rename(tmp, dst) != 0) {
			sys_error("cannot rename %s to %s", tmp, dst);
			ret = EXIT_FAIL;
		}
		if (atomic && ret != EXIT_OK)
			unlink(tmp); /* DST is as it was */
	}
	ret = close_pool(&pool, ret);
out:
	free(buf);
	return ret;
}

/*
 * rm: if NAME is the object's only name, removing the object unbinds it in
 * the same crash-atomic step; otherwise only NAME goes and the object stays
 * for its other names.
 */
static int
cmd_rm(const struct args *a)
{
	const char *name = a->npos > 1 ? a->pos[1] : NULL;
	struct vems_pool *pool = NULL;
	struct vems_oid oid;
	int ret, rc;

	if (!name == !a->opt[O_OID])
		return usage_error("give a NAME or --oid P:I, not both");
	if (a->opt[O_OID] && parse_oid(a->opt[O_OID], &oid))
		return usage_error("bad object ID '%s' (want P:I, e.g. 0:12)",
				   a->opt[O_OID]);
	ret = open_pool(a->pos[0], &pool);
	if (ret)
		return ret;
	if (!name) {
		/* the object and every name of it, in one transaction */
		rc = vems_obj_remove(pool, oid);
		if (rc) {
			lib_error(rc, "cannot remove object " OID_FMT,
				  OID_ARGS(oid));
			return close_pool(&pool, EXIT_FAIL);
		}
		return close_pool(&pool, EXIT_OK);
	}
	rc = vems_name_lookup(pool, name, &oid);
	if (rc) {
		lib_error(rc, NULL);
		return close_pool(&pool, EXIT_FAIL);
	}
	rc = has_other_name(pool, oid, name);
	if (rc == 0)
		rc = vems_obj_remove(pool, oid);
	else if (rc > 0)
		rc = vems_name_unbind(pool, name);
	if (rc) {
		lib_error(rc, "cannot remove %s", name);
		return close_pool(&pool, EXIT_FAIL);
	}
	return close_pool(&pool, EXIT_OK);
}

/* --- remove, backup, restore ----------------------------------------- */

/* Copies the regular file src to dst (created; with force, replaced),
 * keeping holes, and makes it durable. 0 or EXIT_FAIL (reported). */
static int
copy_file(const char *src, const char *dst, bool force)
{
	int in = -1, out = -1, ret = EXIT_FAIL;
	struct stat st;
	off_t data = 0, hole;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, src, strerror(errno));
		goto out;
	}
	out = open(dst,
		   O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL),
		   st.st_mode & 0777);
	if (out < 0) {
		fprintf(stderr, "%s: %s: %s%s\n", prog, dst, strerror(errno),
			errno == EEXIST ? " (--force replaces it)" : "");
		goto out;
	}
	while (data < st.st_size && !stop_signal) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* a hole to the end */
			goto io_err;
		}
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			goto io_err;
		while (data < hole) {
			off_t o = data;
			ssize_t n = copy_file_range(in, &o, out, &o,
						    (size_t)(hole - data), 0);
			if (n <= 0) {
				if (n < 0)
					goto io_err;
				break;
			}
			data += n;
		}
	}
	if (stop_signal) {
		ret = interrupted();
		goto out;
	}
	if (ftruncate(out, st.st_size) != 0 || fsync(out) != 0)
		goto io_err;
	ret = EXIT_OK;
	goto out;
io_err:
	fprintf(stderr, "%s: copying %s to %s: %s\n", prog, src, dst,
		strerror(errno));
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && ret == EXIT_OK) {
		fprintf(stderr, "%s: %s: %s\n", prog, dst, strerror(errno));
		ret = EXIT_FAIL;
	}
	if (ret != EXIT_OK && out >= 0)
		unlink(dst);
	return ret;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAIL;
	}
	close(fd);
	return EXIT_OK;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

#define MANIFEST "vems-backup"

/* Opens the pool and copies out the paths of its two files (PATH_MAX). */
static int
open_with_paths(const char *path, struct vems_pool **pool, char *pmem,
		char *blk)
{
	struct vems_pool_info in;
	int ret, rc;

	ret = open_pool(path, pool);
	if (ret)
		return ret;
	rc = vems_pool_info(*pool, &in);
	if (rc) {
		lib_error(rc, NULL);
		return close_pool(pool, EXIT_FAIL);
	}
	snprintf(pmem, PATH_MAX, "%s", in.pmem_path);
	snprintf(blk, PATH_MAX, "%s", in.block_path);
	return EXIT_OK;
}

/*
 * "remove": both files of the pool, while this process holds it (so that
 * no other process has it open); the pool file goes first, so that what
 * is left on a failure is never a pool without its block file.
 */
static int
cmd_remove(const struct args *a)
{
	struct vems_pool *pool = NULL;
	char pmem[PATH_MAX], blk[PATH_MAX], locks[PATH_MAX + 8];
	struct stat st;
	int ret;

	ret = open_with_paths(a->pos[0], &pool, pmem, blk);
	if (ret)
		return ret;
	if (stat(pmem, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(stderr,
			"%s: %s is not a regular file (device DAX?): remove "
			"deletes files only\n",
			prog, pmem);
		return close_pool(&pool, EXIT_FAIL);
	}
	if (unlink(pmem) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, pmem, strerror(errno));
		return close_pool(&pool, EXIT_FAIL);
	}
	if (unlink(blk) != 0) {
		fprintf(stderr, "%s: %s: %s (the pool file is removed)\n", prog,
			blk, strerror(errno));
		ret = EXIT_FAIL;
	}
	/* the LD_PRELOAD shim's lock file, if it ever served this pool */
	snprintf(locks, sizeof(locks), "%s.locks", pmem);
	(void)unlink(locks);
	ret = close_pool(&pool, ret);
	if (ret == EXIT_OK)
		printf("removed %s and %s\n", pmem, blk);
	return ret;
}

/*
 * "backup": with the pool open by this process alone (nothing else can
 * write it) and persisted, copies both files into DIR with a manifest,
 * then opens the copy and checks its metadata.
 */
static int
cmd_backup(const struct args *a)
{
	const char *dir = a->pos[1];
	bool force = a->opt[O_FORCE] != NULL;
	struct vems_pool *pool = NULL, *copy = NULL;
	struct vems_config *cfg = NULL;
	char pmem[PATH_MAX], blk[PATH_MAX], dp[PATH_MAX], db[PATH_MAX],
		man[PATH_MAX];
	FILE *m;
	int ret, rc;
	long problems;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return EXIT_FAIL;
	}
	ret = open_with_paths(a->pos[0], &pool, pmem, blk);
	if (ret)
		return ret;
	rc = vems_pool_persist(pool);
	if (rc) {
		lib_error(rc, NULL);
		return close_pool(&pool, EXIT_FAIL);
	}
	if ((size_t)snprintf(dp, sizeof(dp), "%s/%s", dir, base_name(pmem)) >=
		    sizeof(dp) ||
	    (size_t)snprintf(db, sizeof(db), "%s/%s", dir, base_name(blk)) >=
		    sizeof(db) ||
	    (size_t)snprintf(man, sizeof(man), "%s/%s", dir, MANIFEST) >=
		    sizeof(man)) {
		fprintf(stderr, "%s: %s: path too long\n", prog, dir);
		return close_pool(&pool, EXIT_FAIL);
	}
	if (!strcmp(base_name(pmem), base_name(blk)) ||
	    !strcmp(base_name(pmem), MANIFEST)) {
		fprintf(stderr, "%s: the pool's files are both named %s\n",
			prog, base_name(pmem));
		return close_pool(&pool, EXIT_FAIL);
	}
	ret = copy_file(blk, db, force);
	if (ret == EXIT_OK)
		ret = copy_file(pmem, dp, force);
	if (ret == EXIT_OK) {
		m = fopen(man, force ? "w" : "wx");
		if (!m) {
			fprintf(stderr, "%s: %s: %s\n", prog, man,
				strerror(errno));
			ret = EXIT_FAIL;
		} else {
			fprintf(m,
				"vems-backup 1\npmem %s\nblock %s\n"
				"pmem-path %s\nblock-path %s\n",
				base_name(pmem), base_name(blk), pmem, blk);
			if (fflush(m) != 0 || fsync(fileno(m)) != 0)
				ret = EXIT_FAIL;
			if (fclose(m) != 0)
				ret = EXIT_FAIL;
		}
	}
	if (ret == EXIT_OK)
		ret = fsync_dir(dir);
	ret = close_pool(&pool, ret);
	if (ret != EXIT_OK)
		return ret;
	/* the copy must open (paired with the copied block file) and check */
	if ((rc = vems_config_new(&cfg)) == 0 &&
	    (rc = vems_config_set_block_path(cfg, db)) == 0)
		rc = vems_pool_open(&copy, dp, cfg);
	vems_config_delete(&cfg);
	if (rc) {
		lib_error(rc, "the copy in %s does not open", dir);
		return EXIT_FAIL;
	}
	problems = vems_pool_check(copy, report_problem, NULL);
	rc = vems_pool_close(&copy);
	if (problems || rc) {
		fprintf(stderr, "%s: the copy in %s does not check clean\n",
			prog, dir);
		return EXIT_FAIL;
	}
	printf("backed up %s and %s into %s (checked)\n", pmem, blk, dir);
	return EXIT_OK;
}

/* One "key value" line of a backup's manifest into out. */
static int
manifest_get(const char *man, const char *key, char *out, size_t len)
{
	char line[2 * PATH_MAX];
	size_t kl = strlen(key);
	FILE *m = fopen(man, "r");
	int ret = -1;

	if (!m)
		return -1;
	while (fgets(line, sizeof(line), m)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, key, kl) && line[kl] == ' ' &&
		    strlen(line + kl + 1) < len) {
			strcpy(out, line + kl + 1);
			ret = 0;
			break;
		}
	}
	fclose(m);
	return ret;
}

/*
 * "restore DIR [POOL]": the backup's two files back to where they were
 * (POOL: the pool file elsewhere; its block file stays the one its header
 * names), then the pool opens and checks.
 */
static int
cmd_restore(const struct args *a)
{
	const char *dir = a->pos[0];
	bool force = a->opt[O_FORCE] != NULL;
	char man[PATH_MAX], pn[PATH_MAX], bn[PATH_MAX], pmem[PATH_MAX],
		blk[PATH_MAX], sp[2 * PATH_MAX], sb[2 * PATH_MAX], v[16];
	struct vems_pool *pool = NULL;
	char *slash;
	int ret;
	long problems;

	snprintf(man, sizeof(man), "%s/%s", dir, MANIFEST);
	if (manifest_get(man, "vems-backup", v, sizeof(v)) || strcmp(v, "1") ||
	    manifest_get(man, "pmem", pn, sizeof(pn)) ||
	    manifest_get(man, "block", bn, sizeof(bn)) ||
	    manifest_get(man, "pmem-path", pmem, sizeof(pmem)) ||
	    manifest_get(man, "block-path", blk, sizeof(blk))) {
		fprintf(stderr,
			"%s: %s is not a backup made by 'vemsctl backup' (no "
			"readable %s)\n",
			prog, dir, man);
		return EXIT_FAIL;
	}
	if (a->npos > 1)
		snprintf(pmem, sizeof(pmem), "%s", a->pos[1]);
	snprintf(sp, sizeof(sp), "%s/%s", dir, pn);
	snprintf(sb, sizeof(sb), "%s/%s", dir, bn);
	if (force && access(pmem, F_OK) == 0 &&
	    vems_pool_open(&pool, pmem, NULL) == -EBUSY) {
		fprintf(stderr,
			"%s: %s is open in another process: not replaced\n",
			prog, pmem);
		return EXIT_NOPOOL;
	}
	if (pool)
		vems_pool_close(&pool);
	ret = copy_file(sb, blk, force);
	if (ret == EXIT_OK) {
		ret = copy_file(sp, pmem, force);
		if (ret != EXIT_OK && !force)
			unlink(blk); /* made here, of no use alone */
	}
	for (int i = 0; ret == EXIT_OK && i < 2; i++) {
		char d[PATH_MAX];

		snprintf(d, sizeof(d), "%s", i ? blk : pmem);
		slash = strrchr(d, '/');
		if (slash == d)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		else
			strcpy(d, ".");
		ret = fsync_dir(d);
	}
	if (ret != EXIT_OK)
		return ret;
	ret = open_pool(pmem, &pool);
	if (ret)
		return ret;
	problems = vems_pool_check(pool, report_problem, NULL);
	ret = close_pool(&pool, problems ? EXIT_FAIL : EXIT_OK);
	if (ret == EXIT_OK)
		printf("restored %s and %s from %s (checked)\n", pmem, blk,
		       dir);
	return ret;
}

static const struct command commands[] = {
	{"create",
	 cmd_create,
	 OPTS_CREATE,
	 1,
	 1,
	 {"POOL"},
	 "POOL --pmem-size SIZE [--block FILE]\n"
	 "                      [--block-size SIZE] [--extent SIZE]",
	 "create a pool",
	 "Creates the pmem file POOL and the block file, and formats them as "
	 "one pool.\nFails if the block file exists or POOL already holds a "
	 "pool.\n"},
	{"info",
	 cmd_info,
	 OPTS_JSON,
	 1,
	 1,
	 {"POOL"},
	 "POOL [--json]",
	 "show a pool's geometry and files",
	 "Prints the pool's UUID, format version, extent size, and the size "
	 "and\ncapacity of both tiers.\n"},
	{"check",
	 cmd_check,
	 OPTS_CHECK | OPTS_JSON,
	 1,
	 1,
	 {"POOL"},
	 "POOL [--metadata-only] [--json]",
	 "verify a pool",
	 "Verifies every metadata invariant of the pool and reads every "
	 "extent in the\nblock file back against its checksum, then reads "
	 "every object end to end\nso that every mapped extent is read back "
	 "(not with --metadata-only).\n"
	 "Prints one 'problem:' line per problem "
	 "and exits 1 if there is any.\n"
	 "--json prints {\"problems\": [...], \"problem_count\", \"objects\", "
	 "\"names\",\n\"data_bytes_read\" (null with --metadata-only), "
	 "\"ok\"}.\n"},
	{"ls",
	 cmd_ls,
	 OPTS_JSON | OPTS_LS,
	 1,
	 2,
	 {"POOL", "PREFIX"},
	 "POOL [PREFIX] [--all] [--json]",
	 "list names",
	 "Lists the names that start with PREFIX (all if absent), in byte "
	 "order:\nthe object ID (partition:id), the size in bytes, the name. "
	 "In text output,\ncontrol characters, '\\' and bytes that are not "
	 "UTF-8 are C-escaped (\\n,\n\\t, \\\\, \\xNN). --json gives "
	 "each name as a JSON string (and its\nbytes as \"name_hex\" if it "
	 "is not valid UTF-8).\n"
	 "--all lists after them the objects that no name refers to, by "
	 "ID, as\n\"(no name)\" (in JSON, \"name\": null); 'vemsctl rm "
	 "--oid' removes them.\n"},
	{"put",
	 cmd_put,
	 0,
	 2,
	 3,
	 {"POOL", "NAME", "FILE"},
	 "POOL NAME [FILE|-]",
	 "store a file as a named object",
	 "Stores FILE (standard input if '-' or absent) as a new object and "
	 "makes it\ndurable, then binds NAME to it in one crash-atomic "
	 "rename, replacing an\nexisting NAME: readers see the old content "
	 "or the new, never a mix. The\nreplaced object is removed unless "
	 "another name refers to it. Use '--'\nbefore a NAME that starts "
	 "with '-'.\n"},
	{"get",
	 cmd_get,
	 0,
	 2,
	 3,
	 {"POOL", "NAME", "FILE"},
	 "POOL NAME [FILE|-]",
	 "read a named object",
	 "Writes the object named NAME to FILE (standard output if '-' or "
	 "absent).\nA regular FILE is written under a temporary name beside "
	 "it and renamed\nover FILE when complete (keeping FILE's mode), so "
	 "an error leaves FILE\nas it was.\n"},
	{"rm",
	 cmd_rm,
	 OPTS_RM,
	 1,
	 2,
	 {"POOL", "NAME"},
	 "POOL NAME | POOL --oid P:I",
	 "remove a name and its object",
	 "Unbinds NAME and removes its object, in one crash-atomic step. If "
	 "other\nnames refer to the same object, only NAME is removed. "
	 "--oid removes the object\nwith that ID and all its names (how an "
	 "object 'ls --all' shows with no\nname is removed).\n"},
	{"remove",
	 cmd_remove,
	 0,
	 1,
	 1,
	 {"POOL"},
	 "POOL",
	 "delete a pool's files",
	 "Deletes the pool file and its block file (and the LD_PRELOAD "
	 "shim's lock\nfile POOL.locks, if there is one). The pool is "
	 "opened first, so a pool\nanother process has open is left alone "
	 "(exit 3).\n"},
	{"backup",
	 cmd_backup,
	 OPTS_FORCE,
	 2,
	 2,
	 {"POOL", "DIR"},
	 "POOL DIR [--force]",
	 "copy a pool's files into a directory",
	 "Opens the pool (no other process can then write it), makes it "
	 "durable, and\ncopies both files into DIR (made if absent; holes "
	 "stay holes), with a\nmanifest 'vems-backup'; then opens the copy "
	 "and checks its metadata.\nFiles that exist in DIR are not "
	 "replaced without --force.\n"},
	{"restore",
	 cmd_restore,
	 OPTS_FORCE,
	 1,
	 2,
	 {"DIR", "POOL"},
	 "DIR [POOL] [--force]",
	 "put a backup's files back",
	 "Copies the files of a backup made by 'vemsctl backup' back: the "
	 "block file to\nthe path it had, the pool file to the path it had "
	 "or to POOL. Then opens\nthe pool and checks its metadata. "
	 "Existing files are not replaced without\n--force.\n"},
	{"stats",
	 cmd_stats,
	 OPTS_JSON,
	 1,
	 1,
	 {"POOL"},
	 "POOL [--json]",
	 "show a pool's counters",
	 "Prints the pool's gauges (objects, names, space used in each tier, "
	 "extents\nby state) and its counters. Counters count from the "
	 "pool's open, which\nfor this tool is the command itself.\n"},
};

static const char exit_help[] =
	"Exit status:\n"
	"  0  success\n"
	"  1  check found problems, or the operation failed\n"
	"  2  usage error: unknown command or option, bad or missing "
	"argument\n"
	"  3  the pool could not be opened (the library says why)\n";

static const char size_help[] =
	"SIZE is a number of bytes, or a number with a K, M, G, T or P "
	"suffix\n(powers of 1024, \"iB\" may follow): 512K, 64M, 4G.\n";

static void
top_help(FILE *f)
{
	size_t i;

	fprintf(f,
		"Usage: vemsctl COMMAND [OPTIONS] POOL [ARGS]\n"
		"       vemsctl help [COMMAND] | --help | --version\n\n"
		"Creates, inspects and uses libvems pools: a pmem file (DAX, "
		"device-dax or\nemulated pmem, e.g. on /dev/shm) plus a "
		"block file, holding named objects.\n\nCommands:\n");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f,
		"\nRun 'vemsctl COMMAND --help' for its options.\n"
		"A progress bar is drawn on stderr for put, get and check of "
		"more than\n8 MiB when stderr is a terminal.\n\n%s\n%s\n"
		"Environment:\n"
		"  PMEM_IS_PMEM_FORCE=1  flush emulated pmem (a file on "
		"tmpfs or a disk)\n"
		"                        with CPU cache instructions instead "
		"of msync\n",
		size_help, exit_help);
}

/*
 * Prints text after column indent as " word" after " word", wrapped at
 * word boundaries to fit 80 columns; further lines start at the same column.
 */
static void
print_wrapped(const char *text, int indent)
{
	int col = indent, len;

	while (*text) {
		len = (int)strcspn(text, " ");
		if (col > indent && col + 1 + len > 79) {
			printf("\n%*s", indent, "");
			col = indent;
		}
		printf(" %.*s", len, text);
		col += 1 + len;
		text += len;
		text += strspn(text, " ");
	}
	putchar('\n');
}

static void
command_help(const struct command *c)
{
	size_t i;

	printf("Usage: vemsctl %s %s\n\n%s\nOptions:\n", c->name, c->synopsis,
	       c->help);
	for (i = 0; i < O_COUNT; i++) {
		const struct optdef *d = &optdefs[i];
		char lhs[40];

		if (d->group && !(d->group & c->opts))
			continue;
		snprintf(lhs, sizeof(lhs), "%s--%s%s%s",
			 i == O_HELP ? "-h, " : "", d->name, d->arg ? " " : "",
			 d->arg ? d->arg : "");
		printf("  %-22s", lhs);
		print_wrapped(d->help, 24);
	}
	if (c->opts & OPTS_CREATE)
		printf("\n%s", size_help);
	printf("\n%s", exit_help);
}

static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/*
 * Parses a command's options (anywhere on the line, GNU style; "--" ends
 * them) and checks the number of positional arguments. Returns -1 to go on
 * running the command, or the exit code (after --help, or a usage error).
 */
static int
parse_args(const struct command *c, int argc, char **argv, struct args *a)
{
	struct option lo[O_COUNT + 1];
	size_t i, n = 0;
	int opt;

	memset(a, 0, sizeof(*a));
	a->cmd = c;
	for (i = 0; i < O_COUNT; i++) {
		if (optdefs[i].group && !(optdefs[i].group & c->opts))
			continue;
		lo[n].name = optdefs[i].name;
		lo[n].has_arg =
			optdefs[i].arg ? required_argument : no_argument;
		lo[n].flag = NULL;
		lo[n++].val = 256 + (int)i;
	}
	memset(&lo[n], 0, sizeof(lo[n]));
	argv[0] = prog; /* getopt's own messages start with it */
	optind = 0;	/* full re-initialisation (glibc) */
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (opt == 'h')
			opt = 256 + O_HELP;
		if (opt < 256 || opt >= 256 + O_COUNT) {
			fprintf(stderr, "Try '%s --help'.\n", prog);
			return EXIT_USAGE;
		}
		a->opt[opt - 256] = optarg ? optarg : "";
	}
	if (a->opt[O_HELP]) {
		command_help(c);
		return EXIT_OK;
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	if (a->npos < c->min_args)
		return usage_error("missing %s argument", c->argnames[a->npos]);
	if (a->npos > c->max_args)
		return usage_error("unexpected argument '%s'",
				   a->pos[c->max_args]);
	for (i = 1; i < (size_t)a->npos; i++) {
		if (strcmp(c->argnames[i], "NAME"))
			continue;
		if (!*a->pos[i])
			return usage_error("NAME must not be empty");
		if (strlen(a->pos[i]) > VEMS_NAME_MAX)
			return usage_error("NAME is longer than %u bytes",
					   VEMS_NAME_MAX);
	}
	if (!*a->pos[0])
		return usage_error("POOL must not be empty");
	return -1;
}

int
main(int argc, char **argv)
{
	const struct command *c;
	struct args a;
	int ret;

	if (argc < 2) {
		top_help(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		top_help(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("vemsctl %d.%d.%d (libvems %s, pool format %d)\n",
		       VEMS_VERSION_MAJOR, VEMS_VERSION_MINOR,
		       VEMS_VERSION_PATCH, vems_version(), VEMS_FORMAT_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc == 2) {
			top_help(stdout);
			return EXIT_OK;
		}
		c = find_command(argv[2]);
		if (!c || argc > 3)
			return usage_error("help: unknown command '%s'",
					   argv[2]);
		snprintf(prog, sizeof(prog), "vemsctl %s", c->name);
		command_help(c);
		return EXIT_OK;
	}
	c = find_command(argv[1]);
	if (!c) {
		if (argv[1][0] == '-')
			return usage_error("unknown option '%s'", argv[1]);
		return usage_error("unknown command '%s'", argv[1]);
	}
	snprintf(prog, sizeof(prog), "vemsctl %s", c->name);
	ret = parse_args(c, argc - 1, argv + 1, &a);
	if (ret >= 0)
		return ret;
	signals_setup();
	ret = c->run(&a);
	if (stop_signal && ret == EXIT_OK)
		ret = 128 + stop_signal;
	if (fflush(stdout) || ferror(stdout)) {
		if (errno != EPIPE)
			sys_error("writing standard output failed");
		if (ret == EXIT_OK)
			ret = EXIT_FAIL;
	}
	return ret;
}
