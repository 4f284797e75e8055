/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * killtest.c -- the writer and the verifier of tests/shim/killtest.sh
 *
 *   killtest write DIR SEED               (reports on fd 3)
 *   killtest verify DIR SEED REPORT...
 *
 * The writer appends records to NFILES files DIR/kt-N.dat until it is
 * killed (or every file has reached its cap: it exits 0 then). It uses
 * only open, read, write, pwrite, lseek, fstat, ftruncate, fsync and close,
 * the calls an unmodified program makes, so that through the LD_PRELOAD
 * shim it exercises what the shim makes of them. Each file is written in
 * its own way:
 *
 *   kt-0  512-byte records, O_APPEND, one write() each
 *   kt-1  4096-byte records, pwrite() at the end
 *   kt-2  8192-byte records, O_APPEND, two write()s each (100 bytes, rest)
 *   kt-3  records of 512..8192 bytes, two pwrite()s each, the tail first
 *         (a kill between them leaves a hole where the header goes)
 *
 * and fsync()ed every 2, 3, 5 and 8 records. After every write() or
 * pwrite() of a record has returned, and after every fsync(), the writer
 * reports the file's new end on fd 3 (outside the pool):
 *
 *   o FILE NREC END   at start: the records found valid, after cutting a
 *                     torn tail (the writer continues after them)
 *   w FILE SEQ END    record SEQ written, the file now ends at END
 *   s FILE SEQ END    fsync() returned with records 0..SEQ in the file
 *   d                 every file is full; the writer exits
 *
 * A record is self-describing: a 32-byte header (magic, file, sequence
 * number, length, a checksum of those and the seed, a checksum of the
 * payload), then a payload generated from seed, file and sequence number.
 * Record i of a file starts where record i-1 ends; its length is a
 * function of (seed, file, i).
 *
 * The verifier reads every file and checks it against the reports of all
 * rounds so far, in order. VEMS's rule is that a write is durable when it
 * returns, so every reported record must be there and intact, not only the
 * fsync()ed ones; past the last reported record there may be more whole
 * records (written, but killed before the report) and then at most one
 * torn record: no more bytes than the next record's length. It also checks
 * that the reports are consistent (each record where the one before
 * ended) and that a writer never restarted below a reported end.
 * Exit status: 0 all good, 1 a check failed, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NFILES 4
#define HDR_SIZE 32
#define MAX_REC 8192
#define REC_MAGIC 0x4345524bu /* "KREC" */
#define REPORT_FD 3

struct rec_hdr {
	uint32_t magic;
	uint32_t file;
	uint64_t seq;
	uint32_t len;  /* the whole record, header included */
	uint32_t hsum; /* FNV-1a of the fields above and the seed */
	uint64_t psum; /* FNV-1a of the payload */
};
_Static_assert(sizeof(struct rec_hdr) == HDR_SIZE, "header size");

/* how often each file is fsync()ed, in records */
static const unsigned fsync_every[NFILES] = {2, 3, 5, 8};

static const char *progname = "killtest";

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* --- records ----------------------------------------------------------- */

static uint64_t
mix(uint64_t x)
{
	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static uint64_t
fnv64(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

#define FNV_INIT UINT64_C(0xcbf29ce484222325)

static uint64_t
rec_key(uint64_t seed, unsigned f, uint64_t seq)
{
	return mix(seed ^ mix(((uint64_t)f << 56) ^ seq));
}

static uint32_t
rec_len(uint64_t seed, unsigned f, uint64_t seq)
{
	static const uint32_t fixed[NFILES] = {512, 4096, 8192, 0};
	if (fixed[f] != 0)
		return fixed[f];
	return 512 + (uint32_t)(rec_key(seed, f, seq) % (MAX_REC - 512 + 1));
}

static uint32_t
hdr_sum(const struct rec_hdr *h, uint64_t seed)
{
	uint64_t s = fnv64(h, offsetof(struct rec_hdr, hsum), FNV_INIT);
	s = fnv64(&seed, sizeof(seed), s);
	return (uint32_t)(s ^ (s >> 32));
}

/* Builds record seq of file f in buf (MAX_REC bytes); returns its length. */
static uint32_t
make_rec(unsigned char *buf, uint64_t seed, unsigned f, uint64_t seq)
{
	uint32_t len = rec_len(seed, f, seq);
	uint64_t x = rec_key(seed, f, seq);
	for (uint32_t i = HDR_SIZE; i < len; i += 8) {
		x += UINT64_C(0x9e3779b97f4a7c15); /* splitmix64 */
		uint64_t v = mix(x);
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
	struct rec_hdr h = {
		.magic = REC_MAGIC,
		.file = f,
		.seq = seq,
		.len = len,
	};
	h.hsum = hdr_sum(&h, seed);
	h.psum = fnv64(buf + HDR_SIZE, len - HDR_SIZE, FNV_INIT);
	memcpy(buf, &h, sizeof(h));
	return len;
}

/*
 * Whether the avail bytes at p hold record seq of file f; if not, why (in
 * why, whysz bytes).
 */
static bool
rec_ok(const unsigned char *p, size_t avail, uint64_t seed, unsigned f,
       uint64_t seq, char *why, size_t whysz)
{
	static unsigned char want[MAX_REC];
	uint32_t len = make_rec(want, seed, f, seq);
	size_t n = avail < len ? avail : len;
	size_t zeros = 0;
	while (zeros < n && p[zeros] == 0)
		zeros++;
	if (memcmp(p, want, n) == 0 && n == len)
		return true;
	struct rec_hdr h;
	memset(&h, 0, sizeof(h));
	memcpy(&h, p, avail < HDR_SIZE ? avail : HDR_SIZE);
	if (zeros == n)
		snprintf(why, whysz,
			 "%zu zero bytes where record %" PRIu64 " (%" PRIu32
			 " bytes) should be",
			 n, seq, len);
	else if (avail < HDR_SIZE)
		snprintf(why, whysz, "%zu bytes, less than a header", avail);
	else if (h.magic != REC_MAGIC)
		snprintf(why, whysz, "bad magic 0x%08" PRIx32, h.magic);
	else if (h.hsum != hdr_sum(&h, seed))
		snprintf(why, whysz, "bad header checksum");
	else if (h.file != f || h.seq != seq || h.len != len)
		snprintf(why, whysz,
			 "the header of record %" PRIu64 " of file %" PRIu32
			 " (%" PRIu32 " bytes) where record %" PRIu64
			 " (%" PRIu32 " bytes) should be",
			 h.seq, h.file, h.len, seq, len);
	else if (avail < len)
		snprintf(why, whysz,
			 "record %" PRIu64 " cut short: %zu of %" PRIu32
			 " bytes",
			 seq, avail, len);
	else {
		size_t i = 0;
		while (p[i] == want[i])
			i++;
		snprintf(why, whysz,
			 "record %" PRIu64 " (%" PRIu32
			 " bytes) differs from byte %zu on",
			 seq, len, i);
	}
	return false;
}

struct scan {
	uint64_t nrec; /* valid records from the start */
	uint64_t end;  /* where they end */
	char why[200]; /* what follows them, if anything */
};

/* Walks the records of file f in buf (size bytes). */
static void
scan(const unsigned char *buf, size_t size, uint64_t seed, unsigned f,
     struct scan *s)
{
	s->nrec = 0;
	s->end = 0;
	s->why[0] = '\0';
	while (s->end < size) {
		if (!rec_ok(buf + s->end, size - s->end, seed, f, s->nrec,
			    s->why, sizeof(s->why)))
			return;
		s->end += rec_len(seed, f, s->nrec);
		s->nrec++;
	}
}

/* --- file access ----------------------------------------------------------- */

static void
file_path(char *p, size_t n, const char *dir, unsigned f)
{
	if ((size_t)snprintf(p, n, "%s/kt-%u.dat", dir, f) >= n)
		die("path too long: %s", dir);
}

/*
 * Reads the whole file at path into *buf (malloc'ed), by read() until it
 * returns 0; checks that fstat agrees. Returns false if there is no file.
 */
static bool
read_file(const char *path, unsigned char **buf, size_t *size)
{
	*buf = NULL;
	*size = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			return false;
		die("open %s: %s", path, strerror(errno));
	}
	size_t cap = 0;
	for (;;) {
		if (cap - *size < 65536) {
			cap = cap ? cap * 2 : 1 << 20;
			*buf = realloc(*buf, cap);
			if (*buf == NULL)
				die("out of memory");
		}
		ssize_t n = read(fd, *buf + *size, cap - *size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read %s at %zu: %s", path, *size, strerror(errno));
		if (n == 0)
			break;
		*size += (size_t)n;
	}
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat %s: %s", path, strerror(errno));
	if ((uint64_t)st.st_size != *size)
		die("%s: fstat says %jd bytes, read() returned %zu", path,
		    (intmax_t)st.st_size, *size);
	if (close(fd) != 0)
		die("close %s: %s", path, strerror(errno));
	return true;
}

static void
write_all(int fd, const unsigned char *p, size_t n, const char *path)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write %s: %s", path,
			    w < 0 ? strerror(errno) : "0");
		p += w;
		n -= (size_t)w;
	}
}

static void
pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t off,
	   const char *path)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("pwrite %s at %" PRIu64 ": %s", path, off,
			    w < 0 ? strerror(errno) : "0");
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
}

/* --- the writer ---------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static void
report(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		die("report line too long");
	/* one write(2): a line is whole or (killed) missing */
	if (write(REPORT_FD, line, (size_t)n) != n)
		die("report on fd %d: %s", REPORT_FD, strerror(errno));
}

struct wfile {
	char path[4096];
	int fd, flags;
	uint64_t nrec, end;
	unsigned unsynced;
	bool full;
};

static void
wopen(struct wfile *w)
{
	w->fd = open(w->path, w->flags, 0644);
	if (w->fd < 0)
		die("open %s: %s", w->path, strerror(errno));
	struct stat st;
	if (fstat(w->fd, &st) != 0)
		die("fstat %s: %s", w->path, strerror(errno));
	if ((uint64_t)st.st_size != w->end)
		die("%s: %jd bytes at open, %" PRIu64 " written", w->path,
		    (intmax_t)st.st_size, w->end);
}

static unsigned long
env_ulong(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0')
		return dflt;
	char *e;
	errno = 0;
	unsigned long x = strtoul(v, &e, 10);
	if (errno != 0 || *e != '\0')
		die("bad %s: %s", name, v);
	return x;
}

static int
do_write(const char *dir, uint64_t seed)
{
	if (fcntl(REPORT_FD, F_GETFD) < 0)
		die("fd %d (the report) is not open", REPORT_FD);
	/* a pause after each record: a round of at most some 300 ms, and
	 * 20 rounds, should not fill the files (nor the pool) */
	unsigned long pace_us = env_ulong("KILLTEST_PACE_US", 250);
	uint64_t cap = (uint64_t)env_ulong("KILLTEST_CAP_MB", 24) << 20;
	static unsigned char buf[MAX_REC];
	static struct wfile wf[NFILES];

	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		die("mkdir %s: %s", dir, strerror(errno));
	for (unsigned f = 0; f < NFILES; f++) {
		struct wfile *w = &wf[f];
		file_path(w->path, sizeof(w->path), dir, f);
		unsigned char *data;
		size_t size;
		struct scan s;
		read_file(w->path, &data, &size);
		scan(data, size, seed, f, &s);
		free(data);
		if (s.end < size) {
			/* a torn tail: cut it, write over it */
			int fd = open(w->path, O_WRONLY);
			if (fd < 0 || ftruncate(fd, (off_t)s.end) != 0 ||
			    close(fd) != 0)
				die("cutting %s to %" PRIu64 ": %s", w->path,
				    s.end, strerror(errno));
		}
		w->nrec = s.nrec;
		w->end = s.end;
		w->flags = O_WRONLY | O_CREAT;
		if (f == 0 || f == 2)
			w->flags |= O_APPEND;
		if (f == 3)
			w->flags = O_RDWR | O_CREAT;
		wopen(w);
		w->full = w->end >= cap;
		report("o %u %" PRIu64 " %" PRIu64 "\n", f, w->nrec, w->end);
	}

	for (uint64_t i = 0;; i++) {
		unsigned f = (unsigned)(i % NFILES), nfull = 0;
		for (unsigned k = 0; k < NFILES; k++)
			nfull += wf[k].full;
		if (nfull == NFILES) {
			report("d\n");
			return 0;
		}
		struct wfile *w = &wf[f];
		if (w->full)
			continue;
		uint64_t seq = w->nrec;
		uint32_t len = make_rec(buf, seed, f, seq);
		switch (f) {
		case 0:
			write_all(w->fd, buf, len, w->path);
			break;
		case 1:
			pwrite_all(w->fd, buf, len, w->end, w->path);
			break;
		case 2:
			write_all(w->fd, buf, 100, w->path);
			write_all(w->fd, buf + 100, len - 100, w->path);
			break;
		default:
			pwrite_all(w->fd, buf + 64, len - 64, w->end + 64,
				   w->path);
			pwrite_all(w->fd, buf, 64, w->end, w->path);
			break;
		}
		w->end += len;
		w->nrec++;
		report("w %u %" PRIu64 " %" PRIu64 "\n", f, seq, w->end);

		/* an O_APPEND write leaves the offset at the end, a pwrite
		 * leaves it where it was (0: never moved) */
		off_t want = (w->flags & O_APPEND) ? (off_t)w->end : 0;
		off_t pos = lseek(w->fd, 0, SEEK_CUR);
		if (pos != want)
			die("%s: offset %jd after record %" PRIu64 ", want %jd",
			    w->path, (intmax_t)pos, seq, (intmax_t)want);

		if (++w->unsynced >= fsync_every[f]) {
			if (fsync(w->fd) != 0)
				die("fsync %s: %s", w->path, strerror(errno));
			w->unsynced = 0;
			report("s %u %" PRIu64 " %" PRIu64 "\n", f, seq,
			       w->end);
			struct stat st;
			if (fstat(w->fd, &st) != 0)
				die("fstat %s: %s", w->path, strerror(errno));
			if ((uint64_t)st.st_size != w->end)
				die("%s: fstat says %jd bytes, %" PRIu64
				    " written",
				    w->path, (intmax_t)st.st_size, w->end);
		}
		if (w->nrec % 64 == 0) {
			/* now and then a close and an open */
			if (close(w->fd) != 0)
				die("close %s: %s", w->path, strerror(errno));
			wopen(w);
		}
		if (w->end >= cap)
			w->full = true;
		if (pace_us > 0) {
			struct timespec ts = {
				.tv_sec = (time_t)(pace_us / 1000000),
				.tv_nsec = (long)(pace_us % 1000000) * 1000,
			};
			nanosleep(&ts, NULL);
		}
	}
}

/* --- the verifier --------------------------------------------------------- */

struct mark {
	uint64_t nrec, end; /* reported written: records 0..nrec-1 */
	uint64_t synced;    /* records reported fsync()ed */
	uint64_t next, at;  /* the report's next record and its offset */
	unsigned restarts;  /* "o" lines */
};

static int nfail;

__attribute__((format(printf, 1, 2))) static void
fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: FAIL: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	nfail++;
}

/* Applies one report file's lines to m[]. */
static void
read_report(const char *path, uint64_t seed, struct mark *m)
{
	unsigned char *data;
	size_t size;
	if (!read_file(path, &data, &size))
		die("no report %s", path);
	size_t lineno = 0;
	for (size_t at = 0; at < size;) {
		unsigned char *nl = memchr(data + at, '\n', size - at);
		if (nl == NULL)
			break; /* killed while writing its last line */
		*nl = '\0';
		const char *line = (const char *)data + at;
		at = (size_t)(nl - data) + 1;
		lineno++;
		char t;
		unsigned f;
		uint64_t a, b;
		int n = sscanf(line, "%c %u %" SCNu64 " %" SCNu64, &t, &f, &a,
			       &b);
		if (n == 1 && t == 'd')
			continue;
		if (n != 4 || f >= NFILES || (t != 'o' && t != 'w' && t != 's'))
			die("%s:%zu: bad line: %s", path, lineno, line);
		struct mark *k = &m[f];
		if (t == 'o') {
			if (a < k->nrec || b < k->end)
				fail("%s:%zu: the writer restarted with file "
				     "%u holding %" PRIu64 " records (%" PRIu64
				     " bytes), below the %" PRIu64
				     " records (%" PRIu64
				     " bytes) it had reported written",
				     path, lineno, f, a, b, k->nrec, k->end);
			k->next = a;
			k->at = b;
			k->restarts++;
		} else if (t == 'w') {
			if (a != k->next || b != k->at + rec_len(seed, f, a))
				die("%s:%zu: '%s' does not follow record %" PRIu64
				    " at %" PRIu64 ": the writer is wrong",
				    path, lineno, line, k->next, k->at);
			k->next = a + 1;
			k->at = b;
			if (a + 1 > k->nrec) {
				k->nrec = a + 1;
				k->end = b;
			}
		} else {
			if (a + 1 != k->next || b != k->at)
				die("%s:%zu: '%s' is not the last record "
				    "written (%" PRIu64 " at %" PRIu64 ")",
				    path, lineno, line, k->next, k->at);
			if (a + 1 > k->synced)
				k->synced = a + 1;
		}
	}
	free(data);
}

static int
do_verify(const char *dir, uint64_t seed, int nreports, char **reports)
{
	struct mark m[NFILES];
	memset(m, 0, sizeof(m));
	for (int i = 0; i < nreports; i++)
		read_report(reports[i], seed, m);
	for (unsigned f = 0; f < NFILES; f++) {
		char path[4096];
		file_path(path, sizeof(path), dir, f);
		unsigned char *data;
		size_t size;
		struct scan s;
		bool exists = read_file(path, &data, &size);
		scan(data, size, seed, f, &s);
		free(data);
		if (!exists && m[f].nrec > 0)
			fail("%s is missing; %" PRIu64 " records (%" PRIu64
			     " bytes) were reported written",
			     path, m[f].nrec, m[f].end);
		else if (s.nrec < m[f].nrec)
			fail("%s: records %" PRIu64 "..%" PRIu64
			     " were reported written (the file's first %" PRIu64
			     " records also fsync()ed) but are not there: "
			     "the file holds %zu bytes, %" PRIu64
			     " valid records (%" PRIu64 " bytes), then %s",
			     path, s.nrec, m[f].nrec - 1, m[f].synced, size,
			     s.nrec, s.end, s.why[0] ? s.why : "its end");
		uint64_t tail = size - s.end;
		uint32_t next = rec_len(seed, f, s.nrec);
		if (s.nrec >= m[f].nrec && tail > next)
			fail("%s: %" PRIu64 " bytes after %" PRIu64
			     " valid records, more than one torn record "
			     "(%" PRIu32 " bytes): %s",
			     path, tail, s.nrec, next, s.why);
		printf("file %u: %" PRIu64 " records valid (%" PRIu64
		       " bytes); reported %" PRIu64 " written, %" PRIu64
		       " fsynced; %u starts",
		       f, s.nrec, s.end, m[f].nrec, m[f].synced, m[f].restarts);
		if (tail > 0)
			printf("; then %" PRIu64 " bytes not record %" PRIu64
			       " (%s)",
			       tail, s.nrec, s.why);
		printf("\n");
	}
	if (nfail > 0)
		fprintf(stderr, "%s: %d check(s) failed\n", progname, nfail);
	return nfail > 0;
}

static int
usage(void)
{
	fprintf(stderr,
		"usage: killtest write DIR SEED   (reports on fd 3)\n"
		"       killtest verify DIR SEED REPORT...\n");
	return 2;
}

int
main(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	char *e;
	errno = 0;
	uint64_t seed = strtoull(argv[3], &e, 0);
	if (errno != 0 || *e != '\0')
		return usage();
	if (strcmp(argv[1], "write") == 0 && argc == 4) {
		progname = "killtest write";
		return do_write(argv[2], seed);
	}
	if (strcmp(argv[1], "verify") == 0 && argc >= 5) {
		progname = "killtest verify";
		return do_verify(argv[2], seed, argc - 4, argv + 4);
	}
	return usage();
}
