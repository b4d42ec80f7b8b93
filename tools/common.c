// SPDX-License-Identifier: GPL-2.0
/* Shared helpers of the vdi tools; see common.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libvdi.h>

#include "common.h"

const char *prog = "vdi-tool";
bool verbose_on;

/* ------------------------------------------------------------ messages */
static void vmsg(const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	/* one write per line: threads and the progress line do not mix */
	fprintf(stderr, "%s: %s\n", prog, line);
}

void msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void verbose(const char *fmt, ...)
{
	va_list ap;

	if (!verbose_on)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void vdi_msg(const char *what, int code)
{
	const char *name = vdi_code_name(code);
	const char *why = vdi_last_error();

	msg("%s: %s%s%s", what, name ? name : "unknown VDI code",
	    why[0] ? ": " : "", why);
}

const char *win32_name(int32_t code)
{
	static __thread char other[32];

	switch (code) {
	case ERROR_SUCCESS:		return "ERROR_SUCCESS";
	case ERROR_INVALID_HANDLE:	return "ERROR_INVALID_HANDLE";
	case ERROR_HANDLE_EOF:		return "ERROR_HANDLE_EOF";
	case ERROR_HANDLE_DISK_FULL:	return "ERROR_HANDLE_DISK_FULL";
	case ERROR_NOT_SUPPORTED:	return "ERROR_NOT_SUPPORTED";
	case ERROR_DISK_FULL:		return "ERROR_DISK_FULL";
	case ERROR_OPERATION_ABORTED:	return "ERROR_OPERATION_ABORTED";
	case ERROR_END_OF_MEDIA:	return "ERROR_END_OF_MEDIA";
	case ERROR_FILEMARK_DETECTED:	return "ERROR_FILEMARK_DETECTED";
	case ERROR_NO_DATA_DETECTED:	return "ERROR_NO_DATA_DETECTED";
	case ERROR_IO_DEVICE:		return "ERROR_IO_DEVICE";
	case ERROR_EOM_OVERFLOW:	return "ERROR_EOM_OVERFLOW";
	case ERROR_NO_SYSTEM_RESOURCES:	return "ERROR_NO_SYSTEM_RESOURCES";
	}
	snprintf(other, sizeof(other), "code %d", code);
	return other;
}

void usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help'.\n", prog);
	exit(EXIT_USAGE);
}

/* ------------------------------------------------------------ values */
bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

unsigned int parse_stats_interval(const char *s)
{
	uint64_t v;

	if (!parse_uint(s, 86400, &v) || !v)
		usage_error("--stats: seconds between reports, 1..86400");
	return (unsigned int)v;
}

unsigned int parse_delay_ms(const char *s)
{
	uint64_t v;

	if (!parse_uint(s, 10000, &v))
		usage_error("--delay-ms: milliseconds, 0..10000");
	return (unsigned int)v;
}

bool parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	if (*end && strchr("kKmMgGtT", *end)) {
		shift = 10 * (unsigned int)(strchr("kmgt", *end | 0x20) -
					    "kmgt" + 1);
		end++;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = bytes;
	int i = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && i < 3) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[i]);
	return buf;
}

const char *fmt_rate(char *buf, size_t len, uint64_t bytes, double seconds)
{
	if (seconds < 1e-6)
		seconds = 1e-6;
	snprintf(buf, len, "in %.2f s, %.1f MB/s", seconds,
		 bytes / seconds / 1e6);
	return buf;
}

/* ------------------------------------------------------------ LE fields */
void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ------------------------------------------------------------ mx64 */
/* A little-endian word as a number (and back: the same swap). */
static inline uint64_t le64_to_cpu(uint64_t w)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap64(w);
#else
	return w;
#endif
}

#define MX64_SEED	0x243F6A8885A308D3ULL	/* pi */
#define MX64_K		0x9E3779B97F4A7C15ULL	/* 2^64 / golden ratio, odd */

static inline uint64_t mx64_word(uint64_t h, uint64_t w)
{
	h = (h ^ w) * MX64_K;
	return h << 31 | h >> 33;	/* high bits come back down */
}

void mx64_init(struct mx64 *m)
{
	m->h = MX64_SEED;
	m->len = 0;
	m->npart = 0;
}

void mx64_update(struct mx64 *m, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = m->h, w;

	m->len += len;
	if (m->npart) {			/* finish the word begun last time */
		while (m->npart < 8 && len) {
			m->part[m->npart++] = *p++;
			len--;
		}
		if (m->npart < 8) {
			m->h = h;
			return;
		}
		h = mx64_word(h, get_le64(m->part));
		m->npart = 0;
	}
	/* four words a turn: the chain is serial, but the loop's own
	 * instructions are a third of the work on one word at a time (the
	 * bench VM's profile counts each instruction) */
	for (; len >= 32; p += 32, len -= 32) {
		uint64_t a, b, c, d;

		/* four word loads: one 32-byte copy would go through the
		 * stack in vector registers, which costs more than it saves */
		memcpy(&a, p, 8);
		memcpy(&b, p + 8, 8);
		memcpy(&c, p + 16, 8);
		memcpy(&d, p + 24, 8);
		h = mx64_word(h, le64_to_cpu(a));
		h = mx64_word(h, le64_to_cpu(b));
		h = mx64_word(h, le64_to_cpu(c));
		h = mx64_word(h, le64_to_cpu(d));
	}
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = mx64_word(h, le64_to_cpu(w));
	}
	memcpy(m->part, p, len);
	m->npart = (unsigned int)len;
	m->h = h;
}

uint64_t mx64_final(const struct mx64 *m)
{
	uint8_t last[8] = { 0 };
	uint64_t h = m->h;

	if (m->npart) {
		memcpy(last, m->part, m->npart);
		h = mx64_word(h, get_le64(last));
	}
	h ^= m->len;
	h ^= h >> 33;			/* fmix64 */
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* ------------------------------------------------------------ summer */
void summer_init(struct summer *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
}

static void *summer_main(void *arg)
{
	struct summer *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->posted && !s->quit)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->posted)		/* quit, and nothing left */
			break;
		pthread_mutex_unlock(&s->lock);
		mx64_update(s->m, s->p, s->len);
		pthread_mutex_lock(&s->lock);
		s->posted = false;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

bool summer_start(struct summer *s, struct mx64 *m, const void *p,
		  size_t len)
{
	if (s->broken)
		return false;
	/* the caller's signal mask (the tools block their signals in every
	 * thread but one) is the new thread's */
	if (!s->started) {
		if (pthread_create(&s->thread, NULL, summer_main, s)) {
			s->broken = true;
			return false;
		}
		s->started = true;
	}
	pthread_mutex_lock(&s->lock);
	s->m = m;
	s->p = p;
	s->len = len;
	s->posted = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return true;
}

void summer_wait(struct summer *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->posted)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void summer_stop(struct summer *s)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->started = false;
}

/* ------------------------------------------------------------ generator */
static inline uint64_t splitmix64(uint64_t i)
{
	uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void gen_fill(uint8_t *buf, uint64_t offset, size_t len)
{
	uint64_t word = offset / 8, w;
	unsigned int skip = offset % 8;

	if (skip) {			/* unaligned head */
		uint8_t tmp[8];
		size_t n = 8 - skip < len ? 8 - skip : len;

		put_le64(tmp, splitmix64(word++));
		memcpy(buf, tmp + skip, n);
		buf += n;
		len -= n;
	}
	for (; len >= 8; buf += 8, len -= 8) {
		w = le64_to_cpu(splitmix64(word++));
		memcpy(buf, &w, 8);
	}
	if (len) {			/* the tail */
		w = le64_to_cpu(splitmix64(word));
		memcpy(buf, &w, len);
	}
}

/* ------------------------------------------------------------ progress */
void progress_init(struct progress *p, const char *what, uint64_t total)
{
	p->on = isatty(STDERR_FILENO);
	p->what = what;
	p->total = total;
	p->t0 = p->last = now_s();
}

void progress_update(struct progress *p, uint64_t done)
{
	char b[32], eta[48] = "";
	double t, rate;

	if (!p->on)
		return;
	t = now_s();
	if (t - p->last < 0.25)
		return;
	p->last = t;
	rate = done / (t - p->t0 > 1e-3 ? t - p->t0 : 1e-3);
	if (p->total && rate > 0 && done <= p->total) {
		unsigned long left = (unsigned long)((p->total - done) / rate);

		snprintf(eta, sizeof(eta), "  %3u%%  ETA %lu:%02lu",
			 (unsigned int)(done * 100 / p->total), left / 60,
			 left % 60);
	}
	fprintf(stderr, "\r%s: %s %12s  %7.1f MB/s%s\033[K", prog, p->what,
		fmt_bytes(b, sizeof(b), done), rate / 1e6, eta);
}

void progress_done(struct progress *p)
{
	if (p->on)
		fprintf(stderr, "\r\033[K");
}

/* ------------------------------------------------------------ signals */
/* ------------------------------------------------------------ output files */
/* "[WHO: ]PATH: WHAT" */
static void say_out(const char *who, const char *path, const char *what)
{
	msg("%s%s%s: %s", who ? who : "", who ? ": " : "", path, what);
}

/* A FIFO opens for writing only once it has a reader (ENXIO till then):
 * wait for one, but not forever. */
static int open_fifo(const char *path, unsigned int timeout_s,
		     const char *who)
{
	double deadline = now_s() + timeout_s;
	bool said = false;
	char why[64];
	int fd, fl;

	for (;;) {
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno != ENXIO) {
			say_out(who, path, strerror(errno));
			return -1;
		}
		if (interrupted())
			return -1;
		if (now_s() >= deadline) {
			snprintf(why, sizeof(why), "no reader opened the FIFO "
				 "within %u s", timeout_s);
			say_out(who, path, why);
			return -1;
		}
		if (!said)
			verbose("waiting for a reader of the FIFO %s", path);
		said = true;
		nanosleep(&(struct timespec){ 0, 50 * 1000000 }, NULL);
	}
	/* the writes block as for any pipe */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		say_out(who, path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A socket's node cannot be opened: connect to it, as a stream. */
static int open_socket(const char *path, const char *who)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		say_out(who, path, "the path is too long for a socket");
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	say_out(who, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int out_open(struct out_file *o, const char *path, int flags,
	     unsigned int timeout_s, const char *who)
{
	struct stat st;

	*o = (struct out_file){ .path = path, .fd = -1 };
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* in place: a device, a FIFO, a socket (a directory fails) */
		if (S_ISFIFO(st.st_mode))
			o->fd = open_fifo(path, timeout_s, who);
		else if (S_ISSOCK(st.st_mode))
			o->fd = open_socket(path, who);
		else if ((o->fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
			say_out(who, path, strerror(errno));
		o->unsyncable = !S_ISBLK(st.st_mode);
		return o->fd < 0 ? -1 : 0;
	}
	if (asprintf(&o->partial, "%s.partial", path) < 0) {
		o->partial = NULL;
		msg("no memory");
		return -1;
	}
	/* never through a symlink planted where our scratch file goes: its
	 * target would be truncated, and the link renamed over PATH */
	o->fd = open(o->partial, flags | O_CREAT | O_TRUNC | O_NOFOLLOW |
		     O_CLOEXEC, 0644);
	if (o->fd < 0) {
		say_out(who, o->partial, errno == ELOOP ?
			"is a symbolic link: refusing to write through it" :
			strerror(errno));
		free(o->partial);
		o->partial = NULL;
		return -1;
	}
	return 0;
}

const char *out_name(const struct out_file *o)
{
	return o->partial ? o->partial : o->path;
}

int out_sync(struct out_file *o)
{
	if (o->unsyncable)	/* a FIFO, a socket, /dev/null: EINVAL */
		return 0;
	return fsync(o->fd) < 0 ? errno : 0;
}

int out_commit(struct out_file *o)
{
	if (!o->partial)
		return 0;
	if (rename(o->partial, o->path) < 0) {
		o->complete = true;
		return errno;
	}
	sync_dir(o->path);
	free(o->partial);
	o->partial = NULL;
	return 0;
}

bool out_drop(struct out_file *o, bool keep)
{
	if (!o->partial)
		return false;
	if (!keep && !o->complete)
		unlink(o->partial);
	return true;
}

static void (*sig_handler)(int);
static volatile sig_atomic_t sig_caught;

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig))
			continue;
		if (!sig_caught)
			sig_caught = sig;
		sig_handler(sig);
	}
	return NULL;
}

void signals_setup(void (*handler)(int sig))
{
	static sigset_t set;
	pthread_t t;

	sig_handler = handler;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&t, NULL, signal_thread, &set) == 0)
		pthread_detach(t);
}

int interrupted(void)
{
	return sig_caught;
}

/* ------------------------------------------------------------ child */
pid_t spawn_piped(char *const argv[], bool to_child, int *fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		msg("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		msg("fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		/* undo what signals_setup() did: both survive exec */
		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(to_child ? p[0] : p[1],
			 to_child ? STDIN_FILENO : STDOUT_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "%s: cannot run %s: %s\n", prog, argv[0],
			strerror(errno));
		_exit(127);
	}
	close(to_child ? p[0] : p[1]);
	*fd = to_child ? p[1] : p[0];
	return pid;
}

bool wait_child(pid_t pid, const char *name)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			msg("waiting for %s: %s", name, strerror(errno));
			return false;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return true;
	if (WIFEXITED(st))
		msg("%s failed (exit status %d)", name, WEXITSTATUS(st));
	else
		msg("%s was killed by signal %d", name, WTERMSIG(st));
	return false;
}

/* ------------------------------------------------------------ I/O */
int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------ splice */
void splicer_init(struct splicer *s)
{
	s->pipe[0] = s->pipe[1] = -1;
	s->cap = 0;
	s->off = false;
}

void splicer_close(struct splicer *s)
{
	if (s->pipe[0] >= 0) {
		close(s->pipe[0]);
		close(s->pipe[1]);
	}
	s->pipe[0] = s->pipe[1] = -1;
}

/* A pipe for @fd if it is a regular file; false: write() it. */
static bool splicer_ready(struct splicer *s, int fd)
{
	struct stat st;
	int size;

	if (s->off)
		return false;
	if (s->pipe[0] >= 0)
		return true;
	/* a pipe or socket would keep references to our buffer's pages
	 * (splice moves them, it does not copy): only regular files */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    pipe2(s->pipe, O_CLOEXEC) < 0) {
		s->off = true;
		return false;
	}
	/* best effort: a user over pipe-user-pages-soft keeps 64 KiB */
	fcntl(s->pipe[1], F_SETPIPE_SZ, 1 << 20);
	size = fcntl(s->pipe[1], F_GETPIPE_SZ);
	s->cap = size > 0 ? (size_t)size : 65536;
	return true;
}

/* Give up splicing: what is in the pipe is dropped with it (the caller
 * writes those bytes again, from its buffer). */
static void splicer_give_up(struct splicer *s)
{
	splicer_close(s);
	s->off = true;
}

/* Move @len bytes from the pipe into @fd; 0 or an errno. */
static int splice_drain(struct splicer *s, int fd, size_t len, int64_t *pos,
			size_t *moved)
{
	loff_t off;
	ssize_t n;

	*moved = 0;
	while (*moved < len) {
		off = pos ? (loff_t)*pos : 0;
		n = splice(s->pipe[0], NULL, fd, pos ? &off : NULL,
			   len - *moved, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)		/* 0: nothing more fits */
			return n < 0 ? errno : ENOSPC;
		*moved += (size_t)n;
		if (pos)
			*pos += n;
	}
	return 0;
}

static int write_at(int fd, const uint8_t *p, size_t len, int64_t *pos,
		    size_t *done)
{
	ssize_t n;

	while (*done < len) {
		n = pos ? pwrite(fd, p + *done, len - *done, (off_t)*pos) :
			  write(fd, p + *done, len - *done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)		/* 0: nothing more fits */
			return n < 0 ? errno : ENOSPC;
		*done += (size_t)n;
		if (pos)
			*pos += n;
	}
	return 0;
}

int splice_write(struct splicer *s, int fd, const void *buf, size_t len,
		 int64_t *pos, size_t *done)
{
	const uint8_t *p = buf;
	struct iovec iov;
	size_t moved;
	ssize_t n;
	int err;

	*done = 0;
	while (*done < len && splicer_ready(s, fd)) {
		iov.iov_base = (void *)(p + *done);
		iov.iov_len = len - *done < s->cap ? len - *done : s->cap;
		n = vmsplice(s->pipe[1], &iov, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {		/* cannot lend the pages: write() */
			splicer_give_up(s);
			break;
		}
		err = splice_drain(s, fd, (size_t)n, pos, &moved);
		*done += moved;
		if (!err)
			continue;
		/* the pipe may hold what did not go: drop it with the pipe */
		splicer_give_up(s);
		/* a file system without splice_write says EINVAL at once:
		 * write() it; any other failure is the file's */
		if (err != EINVAL || moved)
			return err;
	}
	return write_at(fd, p, len, pos, done);
}

/* ------------------------------------------------------------ mapped reads */
#define MAP_WINDOW	(64ULL << 20)	/* mapped at a time */

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22		/* Linux 5.14 */
#endif

void mapper_init(struct mapper *m)
{
	m->map = NULL;
	m->at = m->len = 0;
	m->off = false;
}

void mapper_close(struct mapper *m)
{
	if (m->map)
		munmap(m->map, m->len);
	m->map = NULL;
}

/* The copy out of a mapping that a shrinking file turned into SIGBUS:
 * each thread's own landing place while it copies, NULL otherwise. */
static __thread sigjmp_buf *volatile bus_landing;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig)
{
	if (bus_landing)
		siglongjmp(*bus_landing, 1);
	/* not ours: the default action, when the access is tried again */
	signal(sig, SIG_DFL);
}

static void bus_setup(void)
{
	struct sigaction sa = { .sa_handler = on_sigbus };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* memcpy() that a SIGBUS ends: 0, or -1 (the file shrank). */
static int bus_safe_copy(void *dst, const void *src, size_t len)
{
	sigjmp_buf landing;

	pthread_once(&bus_once, bus_setup);
	if (sigsetjmp(landing, 1)) {
		bus_landing = NULL;
		return -1;
	}
	/* the barriers keep the compiler from moving the stores around the
	 * copy, which it knows touches nothing else */
	bus_landing = &landing;
	__asm__ volatile("" ::: "memory");
	memcpy(dst, src, len);
	__asm__ volatile("" ::: "memory");
	bus_landing = NULL;
	return 0;
}

static ssize_t read_at(int fd, void *buf, size_t len, int64_t *pos)
{
	ssize_t n;

	do
		n = pos ? pread(fd, buf, len, (off_t)*pos) : read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n > 0 && pos)
		*pos += n;
	return n;
}

ssize_t mapped_read(struct mapper *m, int fd, void *buf, size_t len,
		    int64_t *pos)
{
	uint64_t at, size, n, head;
	struct stat st;
	off_t cur;

	if (m->off || !len)
		return read_at(fd, buf, len, pos);
	cur = pos ? (off_t)*pos : lseek(fd, 0, SEEK_CUR);
	if (cur < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		m->off = true;
		return read_at(fd, buf, len, pos);
	}
	at = (uint64_t)cur;
	size = (uint64_t)st.st_size;
	if (at >= size)		/* the end, or what was added meanwhile */
		return read_at(fd, buf, len, pos);
	if (!m->map || at < m->at || at >= m->at + m->len) {
		mapper_close(m);
		m->at = at & ~(MAP_WINDOW - 1);
		m->len = size - m->at < MAP_WINDOW ? size - m->at : MAP_WINDOW;
		m->map = mmap(NULL, m->len, PROT_READ, MAP_SHARED, fd,
			      (off_t)m->at);
		if (m->map == MAP_FAILED) {
			m->map = NULL;
			m->off = true;
			return read_at(fd, buf, len, pos);
		}
	}
	n = len;
	if (n > m->at + m->len - at)	/* the window's (and size's) end */
		n = m->at + m->len - at;
	/* best effort: one call instead of a fault per page */
	head = (at - m->at) % (uint64_t)sysconf(_SC_PAGESIZE);
	madvise(m->map + (at - m->at) - head, n + head, MADV_POPULATE_READ);
	if (bus_safe_copy(buf, m->map + (at - m->at), n) < 0) {
		msg("the file being read became shorter meanwhile");
		mapper_close(m);
		m->off = true;
		errno = EIO;
		return -1;
	}
	if (pos)
		*pos += (int64_t)n;
	else if (lseek(fd, (off_t)(at + n), SEEK_SET) < 0)
		return -1;
	return (ssize_t)n;
}

void grow_pipe(int fd)
{
	struct stat st;

	/* best effort: pipe-max-size may be lower, then it stays as it is */
	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
		fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

void sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (!copy)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

static bool valid_name(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > 127)
		return false;
	for (; *s; s++)
		if (*s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

unsigned int parse_device_names(int argc, char **argv,
				const char *names[LIBVDI_MAX_DEVICES])
{
	unsigned int n = 0, i;

	if (argc < 1)
		usage_error("no set name");
	for (; argc; argc--, argv++) {
		if (n == LIBVDI_MAX_DEVICES)
			usage_error("at most %d devices", LIBVDI_MAX_DEVICES);
		if (!valid_name(*argv))
			usage_error("'%s': a device name is 1..127 bytes, no "
				    "backslash or control characters", *argv);
		for (i = 0; i < n; i++)
			if (!strcmp(names[i], *argv))
				usage_error("device '%s' named twice", *argv);
		names[n++] = *argv;
	}
	return n;
}

enum op parse_command(int *argc, char ***argv, void (*usage)(FILE *))
{
	char **av = *argv;
	enum op op;

	if (*argc >= 2 && (!strcmp(av[1], "-h") || !strcmp(av[1], "--help"))) {
		usage(stdout);
		exit(0);
	}
	if (*argc < 2)
		usage_error("say 'backup' or 'restore'");
	if (!strcmp(av[1], "backup"))
		op = BACKUP;
	else if (!strcmp(av[1], "restore"))
		op = RESTORE;
	else
		usage_error("unknown command '%s': say 'backup' or 'restore'",
			    av[1]);
	/* getopt names the program by argv[0]: keep it the program's name. */
	av[1] = av[0];
	*argv = av + 1;
	(*argc)--;
	return op;
}
