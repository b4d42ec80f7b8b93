/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the reliability tests (vdi_fuzz_test, vdi_failslab_test,
 * vdi_peerdeath_test, vdi_soak_test, vdi_isolation_test), on top of
 * ../vdi_test_util.h:
 *
 *  - size knobs: VDI_STRESS=long (check-debug puts it on the kernel command
 *    line, /init hands it to every test) selects the long versions; a
 *    test's own knob (VDI_FUZZ_CALLS, ...) overrides either;
 *  - a kernel log watcher (/dev/kmsg): each test checks that its own
 *    actions left no KASAN / lockdep / UBSAN / WARN / BUG / oops line, so
 *    a report is pinned on the test that caused it (/init checks the whole
 *    log again at the end);
 *  - the module's reference count (/sys/module/vdi/refcnt): 0 once every
 *    fd and mapping is gone, i.e. rmmod would succeed;
 *  - a small seeded PRNG (xorshift64*), so a run can be replayed.
 */
#ifndef VDI_STRESS_H
#define VDI_STRESS_H

#include "../vdi_test_util.h"

#include <ctype.h>
#include <stdarg.h>

/* ------------------------------------------------------------------ */
/* knobs                                                              */

static inline bool vdi_stress_long(void)
{
	const char *s = getenv("VDI_STRESS");

	return s && !strcmp(s, "long");
}

/* @name from the environment, else the short or the long default. */
static inline long vdi_knob(const char *name, long short_val, long long_val)
{
	const char *s = getenv(name);

	if (s && *s)
		return strtol(s, NULL, 0);
	return vdi_stress_long() ? long_val : short_val;
}

/* ------------------------------------------------------------------ */
/* PRNG                                                               */

struct vdi_rng {
	uint64_t s;
};

static inline void vdi_rng_seed(struct vdi_rng *r, uint64_t seed)
{
	r->s = seed * 0x9e3779b97f4a7c15ULL + 0x6a09e667f3bcc909ULL;
	if (!r->s)
		r->s = 1;
}

static inline uint64_t vdi_rng_next(struct vdi_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* 0..n-1 (n > 0) */
static inline uint32_t vdi_rng_below(struct vdi_rng *r, uint32_t n)
{
	return (uint32_t)(((vdi_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* true with probability pct/100 */
static inline bool vdi_rng_pct(struct vdi_rng *r, unsigned int pct)
{
	return vdi_rng_below(r, 100) < pct;
}

/* The run's seed: VDI_FUZZ_SEED if given, else from the clock. */
static inline uint64_t vdi_seed(void)
{
	const char *s = getenv("VDI_FUZZ_SEED");
	struct timespec ts;

	if (s && *s)
		return strtoull(s, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
}

/* ------------------------------------------------------------------ */
/* kernel log watcher                                                 */

/*
 * What /init's final dmesg check also refuses.  A failure the test injected
 * (failslab, fail_page_alloc) prints its own report and, for allocations
 * without __GFP_NOWARN, an allocation-failure warning with a call trace:
 * those are expected, and skipped (up to the end of their trace) unless a
 * real report starts inside them.
 */
#define VDI_KMSG_BAD "BUG:|WARNING:|Oops|general protection|Call Trace|KASAN|" \
	"UBSAN|kmemleak|lockdep|possible circular|INFO: task .* blocked|"      \
	"soft lockup|hard LOCKUP|rcu.*stall|refcount_t:|list_(add|del) corruption|" \
	"Kernel panic|invalid opcode"
#define VDI_KMSG_HEADER "BUG:|WARNING:|Oops|general protection|KASAN:|UBSAN:|" \
	"kmemleak:|possible circular|INFO: task|soft lockup|hard LOCKUP|"	\
	"refcount_t:|corruption|Kernel panic|invalid opcode"
#define VDI_KMSG_INJECTED "FAULT_INJECTION: forcing a failure|" \
	"page allocation failure: order:|vmalloc error: size"

#include <regex.h>

struct vdi_kmsg {
	int fd;
	bool skip;		/* inside an injected failure's report */
	unsigned int bad;	/* problem lines seen */
	unsigned int printed;
	regex_t re_bad, re_header, re_injected;
};

static inline int vdi_kmsg_open(struct vdi_kmsg *k)
{
	memset(k, 0, sizeof(*k));
	k->fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (k->fd < 0)
		return -errno;
	lseek(k->fd, 0, SEEK_END);
	regcomp(&k->re_bad, VDI_KMSG_BAD, REG_EXTENDED | REG_NOSUB);
	regcomp(&k->re_header, VDI_KMSG_HEADER, REG_EXTENDED | REG_NOSUB);
	regcomp(&k->re_injected, VDI_KMSG_INJECTED, REG_EXTENDED | REG_NOSUB);
	return 0;
}

/*
 * Read what the kernel logged since the last call.  @line (may be NULL) sees
 * every message; problem lines are printed as TAP comments and counted.
 * Returns the number of new problem lines.
 */
static inline unsigned int vdi_kmsg_scan(struct vdi_kmsg *k,
					 void (*line)(void *ctx, const char *msg),
					 void *ctx)
{
	char buf[8192];
	unsigned int bad = 0;

	if (k->fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(k->fd, buf, sizeof(buf) - 1);
		char *msg, *nl;

		if (n < 0) {
			if (errno == EPIPE)	/* overwritten: go on */
				continue;
			break;			/* EAGAIN: nothing more */
		}
		buf[n] = 0;
		msg = strchr(buf, ';');
		msg = msg ? msg + 1 : buf;
		nl = strchr(msg, '\n');
		if (nl)
			*nl = 0;
		if (line)
			line(ctx, msg);
		if (!regexec(&k->re_injected, msg, 0, NULL, 0)) {
			k->skip = true;
			continue;
		}
		if (k->skip) {
			if (strstr(msg, "</TASK>")) {
				k->skip = false;
				continue;
			}
			if (regexec(&k->re_header, msg, 0, NULL, 0))
				continue;
			k->skip = false;
		}
		if (!regexec(&k->re_bad, msg, 0, NULL, 0)) {
			bad++;
			if (k->printed++ < 60)
				printf("# kmsg: %s\n", msg);
		}
	}
	k->bad += bad;
	return bad;
}

static inline void vdi_kmsg_close(struct vdi_kmsg *k)
{
	if (k->fd >= 0) {
		close(k->fd);
		regfree(&k->re_bad);
		regfree(&k->re_header);
		regfree(&k->re_injected);
	}
	k->fd = -1;
}

/* Write a mark into the kernel log (shows where a test was). */
static inline void vdi_kmsg_mark(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, buf, n > 0 && n < (int)sizeof(buf) ? n : (int)strlen(buf)) < 0)
		n = 0;
	close(fd);
}

/* ------------------------------------------------------------------ */
/* the module's reference count                                       */

/* /sys/module/vdi/refcnt, or -1 if unreadable (module built in?). */
static inline long vdi_module_refcnt(void)
{
	char buf[32] = "";
	int fd = open("/sys/module/vdi/refcnt", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

/*
 * Wait up to @ms for the module's reference count to drop to @want: every
 * fd and mapping of the test's sets gone, as rmmod needs.  Returns the last
 * value read (-1 when the count cannot be read: not checked then).
 */
static inline long vdi_refcnt_settle(long want, int ms)
{
	int64_t end = vdi_now_ms() + ms;
	long r;

	for (;;) {
		r = vdi_module_refcnt();
		if (r < 0 || r == want || vdi_now_ms() > end)
			return r;
		vdi_sleep_ms(5);
	}
}

/* ------------------------------------------------------------------ */
/* small things                                                       */

static inline int vdi_write_file(const char *path, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int fd, n, r = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, n) != n)
		r = -errno;
	close(fd);
	return r;
}

static inline long vdi_read_long(const char *path, long dflt)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return dflt;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return dflt;
	buf[n] = 0;
	return strtol(buf, NULL, 0);
}

static inline pid_t vdi_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

#endif /* VDI_STRESS_H */
