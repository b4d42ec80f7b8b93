// SPDX-License-Identifier: GPL-2.0
/*
 * Figures (API 1.2, VDI_FEAT_STATS; docs/ABI.md, "Figures"): the counts of
 * a known workload, exactly; the time totals and the busy/idle clock when
 * one side is slow; every abort reason with its device and process; the
 * "stats" parameter; fdinfo of every kind of fd; SET_STATS, LIST_SETS and
 * ABORT_SET's size rules and checks.
 *
 * The two-process tests fork a scripted client (client_main): the test
 * process is the engine and tells the client, one word at a time over a
 * pipe, what to take, hold, complete or close; the client answers each word
 * once it is done, so the engine knows where the client is.  Scoping across
 * users and namespaces is vdi_scope_test's.
 */
#include "vdi_test_util.h"

#include <linux/userfaultfd.h>

#define MS		1000000ULL	/* nanoseconds */
#define NDEV_MAX	4
#define STATS_PARAM	"/sys/module/vdi/parameters/stats"

/* ------------------------------------------------------------------ */
/* snapshots                                                          */

struct snap {
	struct vdi_stats_req req;	/* as the module gave it back */
	struct vdi_set_stats set;
	struct vdi_dev_stats dev[NDEV_MAX];
};

/* SET_STATS on @fd for set @id (0: the fd's own); 0 or -errno. */
static int snap_take(int fd, uint64_t id, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->req.id = id;
	s->req.set = (uintptr_t)&s->set;
	s->req.devs = (uintptr_t)s->dev;
	s->req.set_size = sizeof(s->set);
	s->req.dev_size = sizeof(s->dev[0]);
	s->req.dev_count = NDEV_MAX;
	return vdi_ioctl(fd, VDI_IOC_SET_STATS, &s->req);
}

/* SET_STATS by id from a fresh endpoint, as a tool would. */
static int snap_by_id(uint64_t id, struct snap *s)
{
	int ep = vdi_open(), r;

	if (ep < 0)
		return ep;
	r = snap_take(ep, id, s);
	close(ep);
	return r;
}

static uint64_t set_id_of(int fd)
{
	struct snap s;

	return snap_take(fd, 0, &s) ? 0 : s.set.id;
}

/* The count of completion @code in a device's table (-1: not there). */
static long long code_count(const struct vdi_dev_stats *d, uint32_t code)
{
	for (unsigned int i = 0; i < VDI_STATS_CODES; i++)
		if (d->completions[i].count && d->completions[i].code == code)
			return (long long)d->completions[i].count;
	return -1;
}

/* ABORT_SET from a fresh endpoint. */
static int abort_set(uint64_t id)
{
	struct vdi_abort_set a = { .id = id };
	int ep = vdi_open(), r;

	if (ep < 0)
		return ep;
	r = vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a);
	close(ep);
	return r;
}

/* ------------------------------------------------------------------ */
/* fdinfo                                                             */

/* /proc/self/fdinfo/@fd into @buf; its length or -errno. */
static int fdinfo_read(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	n = read(f, buf, len - 1);
	close(f);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

/* The value of the line "@key:\t..." (NULL when there is none). */
static const char *fdinfo_get(const char *buf, const char *key, char *val,
			      size_t len)
{
	size_t kl = strlen(key);
	const char *p = buf;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == ':' && p[kl + 1] == '\t') {
			const char *v = p + kl + 2, *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);

			if (n >= len)
				n = len - 1;
			memcpy(val, v, n);
			val[n] = '\0';
			return val;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* A number line of fdinfo; -1 when absent or not a number. */
static long long fdinfo_num(const char *buf, const char *key)
{
	char v[64], *end;
	long long n;

	if (!fdinfo_get(buf, key, v, sizeof(v)) || !v[0])
		return -1;
	n = strtoll(v, &end, 10);
	return *end ? -1 : n;
}

static unsigned int fdinfo_vdi_lines(const char *buf)
{
	unsigned int n = 0;
	const char *p = buf;

	while (p && *p) {
		n += !strncmp(p, "vdi-", 4);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}

/* The counter lines of fdinfo, in order, and what each must read. */
static const char *const counter_keys[] = {
	"vdi-queued", "vdi-held", "vdi-done", "vdi-queued-peak", "vdi-sent",
	"vdi-taken", "vdi-completed", "vdi-io-errors", "vdi-bytes-read",
	"vdi-bytes-written",
};

static const char *const time_keys[] = {
	"vdi-queued-ns", "vdi-held-ns", "vdi-reaping-ns",
	"vdi-client-busy-ns", "vdi-client-idle-ns",
};

struct fd_expect {
	const char *role;
	const char *set;
	uint64_t id;
	const char *state;
	const char *abort;		/* start of the vdi-abort value */
	const char *device;		/* "INDEX NAME", NULL for a set fd */
	const char *dev_state;
	long long counters[ARRAY_SIZE(counter_keys)];
};

/* 0, or -1 with the first mismatch in @why. */
static int fdinfo_check(int fd, const struct fd_expect *e, char *why,
			size_t wl)
{
	char buf[4096], v[256];
	unsigned int lines;
	long long n;

	if (fdinfo_read(fd, buf, sizeof(buf)) < 0) {
		snprintf(why, wl, "fd %d: cannot read its fdinfo", fd);
		return -1;
	}
#define WANT_STR(key, want) do { \
	if (!fdinfo_get(buf, key, v, sizeof(v)) || strcmp(v, want)) { \
		snprintf(why, wl, "fd %d: %s: want '%s', got '%s'", fd, key, \
			 want, fdinfo_get(buf, key, v, sizeof(v)) ? v : "(none)"); \
		return -1; \
	} \
} while (0)
	WANT_STR("vdi-role", e->role);
	WANT_STR("vdi-set", e->set);
	n = fdinfo_num(buf, "vdi-set-id");
	if (n < 0 || (uint64_t)n != e->id) {
		snprintf(why, wl, "fd %d: vdi-set-id %lld, want %llu", fd, n,
			 (unsigned long long)e->id);
		return -1;
	}
	WANT_STR("vdi-state", e->state);
	if (!fdinfo_get(buf, "vdi-abort", v, sizeof(v)) ||
	    strncmp(v, e->abort, strlen(e->abort))) {
		snprintf(why, wl, "fd %d: vdi-abort '%s', want '%s...'", fd,
			 fdinfo_get(buf, "vdi-abort", v, sizeof(v)) ? v : "(none)",
			 e->abort);
		return -1;
	}
	if (e->device) {
		WANT_STR("vdi-device", e->device);
		WANT_STR("vdi-dev-state", e->dev_state);
	} else if (fdinfo_get(buf, "vdi-device", v, sizeof(v)) ||
		   fdinfo_get(buf, "vdi-dev-state", v, sizeof(v))) {
		snprintf(why, wl, "fd %d: a set fd shows a device", fd);
		return -1;
	}
#undef WANT_STR
	for (unsigned int i = 0; i < ARRAY_SIZE(counter_keys); i++) {
		n = fdinfo_num(buf, counter_keys[i]);
		if (n != e->counters[i]) {
			snprintf(why, wl, "fd %d: %s %lld, want %lld", fd,
				 counter_keys[i], n, e->counters[i]);
			return -1;
		}
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(time_keys); i++) {
		if (fdinfo_num(buf, time_keys[i]) < 0) {
			snprintf(why, wl, "fd %d: no number in %s", fd,
				 time_keys[i]);
			return -1;
		}
	}
	/* role set set-id state abort [device dev-state] counters times */
	lines = 5 + (e->device ? 2 : 0) + ARRAY_SIZE(counter_keys) +
		ARRAY_SIZE(time_keys);
	if (fdinfo_vdi_lines(buf) != lines) {
		snprintf(why, wl, "fd %d: %u vdi- lines, want %u", fd,
			 fdinfo_vdi_lines(buf), lines);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the scripted client                                                */

enum cli_op {
	C_TAKE = 1,		/* arg: dev << 16 | n: take exactly n */
	C_COMPLETE,		/* arg: code << 24 | bytes: the oldest held */
	C_SLEEP,		/* arg: ms */
	C_SHUTDOWN,		/* arg: dev: GET_COMMANDS must say ESHUTDOWN */
	C_ABORT,		/* SIGNAL_ABORT on the primary set fd */
	C_CLOSE_DEV,		/* arg: dev: close its device fd */
	C_SECONDARY,		/* open a secondary set fd */
	C_SEC_ABORT,		/* SIGNAL_ABORT on the secondary set fd */
	C_CLOSE_SECONDARY,
	C_EXIT,
	C_TAKE_FAULT,		/* arg: dev << 16 | n: GET_COMMANDS into a bad
				 * buffer must say EFAULT
				 */
	C_TAKE_STALL,		/* arg: dev << 16 | n: a thread's GET_COMMANDS
				 * stops in its copy out (a userfaultfd page)
				 */
	C_STALL_FAIL,		/* that copy fails: the page goes, EFAULT */
};

#define OP(k, a)		((uint64_t)(k) << 56 | (uint64_t)(a))
#define TAKE(dev, n)		OP(C_TAKE, (dev) << 16 | (n))
#define COMPLETE(code, bytes)	OP(C_COMPLETE, (uint64_t)(code) << 24 | (bytes))

struct cli_arg {
	char name[VDI_NAME_MAX];
	unsigned int ndev;
	uint32_t server_timeout;
};

/*
 * A GET_COMMANDS whose copy out stops half way: its buffer is a page that
 * a userfaultfd holds, so the commands stay taken, but not received, for as
 * long as the script wants; then the page goes and the copy fails.
 */
struct stall {
	int uffd, dev, ret;
	uint32_t n;
	void *page;
	pthread_t thread;
};

static void *stall_take(void *p)
{
	struct stall *st = p;

	st->ret = vdi_get(st->dev, st->page, st->n, 2000);
	return NULL;
}

/* Start the GET_COMMANDS; return once it waits on the page. */
static int stall_start(struct stall *st, int dev, uint32_t n)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffd_msg msg;
	struct pollfd pfd;

	st->dev = dev;
	st->n = n;
	st->page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CK(st->page != MAP_FAILED);
	st->uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	CK(st->uffd >= 0);
	CKEQ(0, ioctl(st->uffd, UFFDIO_API, &api));
	reg.range.start = (uintptr_t)st->page;
	reg.range.len = 4096;
	CKEQ(0, ioctl(st->uffd, UFFDIO_REGISTER, &reg));
	CKEQ(0, pthread_create(&st->thread, NULL, stall_take, st));
	pfd = (struct pollfd){ .fd = st->uffd, .events = POLLIN };
	CKEQ(1, poll(&pfd, 1, 5000));
	CKEQ(sizeof(msg), read(st->uffd, &msg, sizeof(msg)));
	CKEQ(UFFD_EVENT_PAGEFAULT, msg.event);
	return 0;
}

/* Unmap the page and let the copy retry: it must fail, EFAULT. */
static int stall_fail(struct stall *st)
{
	struct uffdio_range r = { .start = (uintptr_t)st->page, .len = 4096 };

	CKEQ(0, munmap(st->page, 4096));
	CKEQ(0, ioctl(st->uffd, UFFDIO_WAKE, &r));
	CKEQ(0, pthread_join(st->thread, NULL));
	close(st->uffd);
	CKEQ(-EFAULT, st->ret);
	return 0;
}

/* Child: create the set, open every device, then follow the script. */
static int client_main(struct vdi_chan *ch, void *p)
{
	struct cli_arg *a = p;
	struct vdi_command held[64];
	unsigned int nheld = 0, i;
	int cset, sec = -1, cdev[NDEV_MAX], r;
	struct vdi_create c;
	struct stall st;
	char dn[VDI_NAME_MAX];
	uint64_t op, arg;

	vdi_create_init(&c, a->name, a->ndev, 0);
	c.config.server_timeout = a->server_timeout;
	cset = vdi_create_cfg(&c);
	CK(cset >= 0);
	CK(!vdi_chan_send(ch, 1));
	CKEQ(0, vdi_get_config(cset, 5000, NULL));
	for (i = 0; i < a->ndev; i++) {
		vdi_dev_name(dn, a->name, i);
		cdev[i] = vdi_open_device(cset, dn, 0, NULL);
		CK(cdev[i] >= 0);
	}
	CK(!vdi_chan_send(ch, 2));
	for (;;) {
		CKEQ(0, vdi_chan_recv(ch, &op, 15000));
		arg = op & ((1ULL << 56) - 1);
		switch (op >> 56) {
		case C_TAKE:
			CK(nheld + (arg & 0xffff) <= ARRAY_SIZE(held));
			r = vdi_get(cdev[arg >> 16], held + nheld, arg & 0xffff,
				    2000);
			CKEQ(arg & 0xffff, r);
			nheld += r;
			break;
		case C_COMPLETE:
			CK(nheld > 0);
			CKEQ(1, vdi_complete1(cset, held[0].tag, arg >> 24,
					      arg & 0xffffff, 0));
			memmove(held, held + 1, --nheld * sizeof(held[0]));
			break;
		case C_SLEEP:
			vdi_sleep_ms(arg);
			break;
		case C_SHUTDOWN:
			CKEQ(-ESHUTDOWN, vdi_get(cdev[arg], held + nheld, 1,
						 2000));
			break;
		case C_ABORT:
			CKEQ(0, vdi_abort(cset));
			break;
		case C_CLOSE_DEV:
			vdi_close(&cdev[arg]);
			break;
		case C_SECONDARY:
			sec = vdi_open_secondary(a->name);
			CK(sec >= 0);
			break;
		case C_SEC_ABORT:
			CKEQ(0, vdi_abort(sec));
			break;
		case C_CLOSE_SECONDARY:
			vdi_close(&sec);
			break;
		case C_EXIT:
			CK(!vdi_chan_send(ch, op));
			return 0;
		case C_TAKE_FAULT:
			CKEQ(-EFAULT, vdi_get(cdev[arg >> 16],
					      (struct vdi_command *)8,
					      arg & 0xffff, 2000));
			break;
		case C_TAKE_STALL:
			CKEQ(0, stall_start(&st, cdev[arg >> 16], arg & 0xffff));
			break;
		case C_STALL_FAIL:
			CKEQ(0, stall_fail(&st));
			break;
		default:
			CK(0);
		}
		CK(!vdi_chan_send(ch, op));
	}
}

/* The engine's side of a two-process set. */
struct pair {
	struct cli_arg a;
	struct vdi_proc p;
	unsigned int ndev;
	int sset, sdev[NDEV_MAX];
	uint64_t id;
};

static void pair_init(struct pair *t)
{
	memset(t, 0, sizeof(*t));
	t->p.pid = -1;
	t->sset = -1;
	for (int i = 0; i < NDEV_MAX; i++)
		t->sdev[i] = -1;
}

/* Fork the client, configure the set and open every device; 0 or -errno. */
static int pair_start(struct pair *t, unsigned int ndev, uint32_t depth,
		      uint32_t server_timeout)
{
	char dn[VDI_NAME_MAX];
	int r;

	vdi_make_name(t->a.name, "st");
	t->a.ndev = t->ndev = ndev;
	t->a.server_timeout = server_timeout;
	r = vdi_spawn(&t->p, client_main, &t->a);
	if (!r)
		r = vdi_chan_expect(&t->p.ch, 1, 5000);
	if (r)
		return r;
	t->sset = vdi_open_server(t->a.name);
	if (t->sset < 0)
		return t->sset;
	r = vdi_get_config(t->sset, 0, NULL);
	if (!r)
		r = vdi_begin_config(t->sset, VDI_VDF_WRITE_MEDIA |
				     VDI_VDF_READ_MEDIA, 0, 512, 65536, depth);
	if (!r)
		r = vdi_end_config(t->sset, 1 << 20);
	for (unsigned int i = 0; !r && i < ndev; i++) {
		vdi_dev_name(dn, t->a.name, i);
		t->sdev[i] = vdi_open_device(t->sset, dn, 0, NULL);
		if (t->sdev[i] < 0)
			r = t->sdev[i];
	}
	if (!r)
		r = vdi_chan_expect(&t->p.ch, 2, 5000);
	t->id = set_id_of(t->sset);
	return r ? r : t->id ? 0 : -EBADE;
}

static void pair_end(struct pair *t)
{
	vdi_proc_kill(&t->p);
	for (int i = 0; i < NDEV_MAX; i++)
		vdi_close(&t->sdev[i]);
	vdi_close(&t->sset);
}

/* Script words: post without waiting, then collect their answers. */
static int cli_post(struct pair *t, uint64_t op)
{
	return vdi_chan_send(&t->p.ch, op);
}

static int cli_sync(struct pair *t, uint64_t op)
{
	return vdi_chan_expect(&t->p.ch, op, 10000);
}

static int cli_do(struct pair *t, uint64_t op)
{
	int r = cli_post(t, op);

	return r ? r : cli_sync(t, op);
}

/* Wait until the set of @fd is aborted (a peer's exit is asynchronous). */
static bool wait_aborted(int fd, int ms)
{
	int64_t end = vdi_now_ms() + ms;
	struct snap s;

	for (;;) {
		if (snap_take(fd, 0, &s))
			return false;
		if (s.set.state == VDI_STATE_ABORTED)
			return true;
		if (vdi_now_ms() > end)
			return false;
		vdi_sleep_ms(2);
	}
}

FIXTURE(pair) {
	struct pair t;
};

FIXTURE_SETUP(pair)
{
	pair_init(&self->t);
}

FIXTURE_TEARDOWN(pair)
{
	pair_end(&self->t);
}

/* ------------------------------------------------------------------ */
/* the handshake                                                      */

TEST(version_reports_figures)
{
	struct vdi_version v;
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vdi_version(fd, &v));
	EXPECT_EQ(1U, v.api_major);
	/* the figures came with API 1.2; later minors keep them */
	EXPECT_LE(2U, v.api_minor);
	EXPECT_TRUE(v.features & VDI_FEAT_STATS);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* counts                                                             */

/*
 * Phase 1: Write 4096, Write 4096, Read 512, Flush; all taken, completed
 *          with 4096, 4096, 300 and 0 bytes, and reaped.
 * Phase 2: Read A, Read B, Write C, Write D, Write E queued; the client takes
 *          A and fails it (112): IO-ERROR, B..E flushed with 1117.
 * Phase 3: with the five completions not reaped, ClearError (accepted where
 *          a Write gets EIO), completed with success: active again.
 * Phase 4: Write 2048.  Then every completion is reaped, the device closed.
 */
TEST_F(pair, counts_of_a_known_workload)
{
	struct pair *t = &self->t;
	const struct vdi_dev_stats *d;
	struct vdi_completion cpl[16];
	struct snap s, s2;
	int sdev;
	struct vdi_send p1[4] = {
		{ 1, VDI_VDC_WRITE, 4096, 0, 0 },
		{ 2, VDI_VDC_WRITE, 4096, 4096, 4096 },
		{ 3, VDI_VDC_READ, 512, 8192, 8192 },
		{ 4, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER },
	};
	struct vdi_send p2[5] = {
		{ 5, VDI_VDC_READ, 512, 0, 0 },
		{ 6, VDI_VDC_READ, 512, 512, 512 },
		{ 7, VDI_VDC_WRITE, 4096, 0, 4096 },
		{ 8, VDI_VDC_WRITE, 4096, 4096, 8192 },
		{ 9, VDI_VDC_WRITE, 4096, 8192, 12288 },
	};

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	sdev = t->sdev[0];
	ASSERT_EQ(0, cli_do(t, OP(C_SECONDARY, 0)));

	/* Nothing yet: zero counts, both sides open, the clock running. */
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ(1U, s.req.dev_count);
	EXPECT_EQ(0U, s.dev[0].sent);
	EXPECT_EQ((__u32)(VDI_DEV_SERVER_OPEN | VDI_DEV_CLIENT_OPEN),
		  s.dev[0].flags);
	EXPECT_EQ(1U, s.set.secondaries);
	EXPECT_EQ((__u32)VDI_STATE_READY, s.set.state);

	ASSERT_EQ(4, vdi_send(sdev, p1, 4));
	ASSERT_EQ(0, cli_do(t, TAKE(0, 4)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 4096)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 4096)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 300)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 0)));
	ASSERT_EQ(4, vdi_wait_n(t->sset, cpl, 4, 2000, NULL));

	ASSERT_EQ(5, vdi_send(sdev, p2, 5));
	ASSERT_EQ(0, cli_do(t, TAKE(0, 1)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(T_ERROR_DISK_FULL, 0)));
	EXPECT_EQ(-EIO, vdi_send1(sdev, 10, VDI_VDC_WRITE, 512, 0, 0));
	ASSERT_EQ(1, vdi_send1(sdev, 11, VDI_VDC_CLEAR_ERROR, 0, 0,
			       VDI_NO_BUFFER));

	/* The middle: one ClearError queued, five completions waiting. */
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	d = &s.dev[0];
	EXPECT_EQ((__u32)VDI_DEV_STATE_IO_ERROR, d->state);
	EXPECT_EQ(1U, d->queued);
	EXPECT_EQ(0U, d->held);
	EXPECT_EQ(5U, d->done);
	EXPECT_EQ(5U, d->queued_peak);
	EXPECT_EQ(6U, d->inflight_peak);
	EXPECT_EQ(1U, d->io_error_episodes);
	EXPECT_EQ(10U, d->sent);
	EXPECT_EQ(5U, d->taken);
	EXPECT_EQ(9U, d->completed);
	EXPECT_EQ(4U, d->reaped);

	ASSERT_EQ(0, cli_do(t, TAKE(0, 1)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 0)));
	ASSERT_EQ(1, vdi_send1(sdev, 12, VDI_VDC_WRITE, 2048, 0, 0));
	ASSERT_EQ(0, cli_do(t, TAKE(0, 1)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 2048)));
	ASSERT_EQ(7, vdi_wait_n(t->sset, cpl, 7, 2000, NULL));
	EXPECT_EQ((__u32)T_ERROR_DISK_FULL,
		  vdi_find_cookie(cpl, 7, 5)->completion_code);
	for (uint64_t c = 6; c <= 9; c++)
		EXPECT_EQ((__u32)VDI_ERROR_IO_DEVICE,
			  vdi_find_cookie(cpl, 7, c)->completion_code);

	ASSERT_EQ(0, cli_do(t, OP(C_CLOSE_SECONDARY, 0)));
	ASSERT_EQ(0, vdi_close_device(sdev));
	ASSERT_EQ(0, cli_do(t, OP(C_SHUTDOWN, 0)));
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(t->sset, cpl, 1, 1000));

	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	d = &s.dev[0];
	EXPECT_EQ(t->id, s.set.id);
	EXPECT_STREQ(t->a.name, s.set.name);
	EXPECT_STREQ(t->a.name, d->name);
	EXPECT_EQ((__u32)VDI_STATE_DONE, s.set.state);
	EXPECT_EQ((__u32)(VDI_SET_LINKED | VDI_SET_HAS_SERVER |
			  VDI_SET_STATS_ON), s.set.flags);
	EXPECT_EQ((__u32)getuid(), s.set.uid);
	EXPECT_EQ((__u32)getgid(), s.set.gid);
	EXPECT_EQ(0600U, s.set.mode);
	EXPECT_EQ(1U, s.set.device_count);
	EXPECT_EQ((__u32)t->p.pid, s.set.client_pid);
	EXPECT_EQ((__u32)getpid(), s.set.server_pid);
	EXPECT_EQ(0U, s.set.secondaries);
	EXPECT_EQ(8U, s.set.queue_depth);
	EXPECT_EQ(1U, s.set.config.device_count);
	EXPECT_EQ(512U, s.set.config.block_size);
	EXPECT_EQ(1U << 20, s.set.area_size);
	EXPECT_EQ((__u32)VDI_ABORT_NONE, s.set.abort_reason);
	EXPECT_EQ(VDI_ABORT_NO_DEVICE, s.set.abort_device);
	EXPECT_EQ(0U, s.set.abort_pid);
	EXPECT_LT(0U, s.set.end_age_ns);
	EXPECT_LE(s.set.end_age_ns, s.set.ready_age_ns);
	EXPECT_LE(s.set.ready_age_ns, s.set.age_ns);

	EXPECT_EQ((__u32)VDI_DEV_STATE_CLOSED, d->state);
	EXPECT_EQ(0U, d->index);
	EXPECT_EQ(0U, d->queued);
	EXPECT_EQ(0U, d->held);
	EXPECT_EQ(0U, d->done);
	EXPECT_EQ(5U, d->queued_peak);
	/* Phase 4's Write joined six completions not yet reaped. */
	EXPECT_EQ(7U, d->inflight_peak);
	EXPECT_EQ(1U, d->io_error_episodes);
	EXPECT_EQ(11U, d->sent);
	EXPECT_EQ(7U, d->taken);
	EXPECT_EQ(11U, d->completed);
	EXPECT_EQ(11U, d->reaped);
	EXPECT_EQ(300U, d->bytes_read);
	EXPECT_EQ(4096U + 4096 + 2048, d->bytes_written);
	for (unsigned int c = 0; c <= VDI_VDC_MAX; c++) {
		uint64_t want = c == VDI_VDC_READ ? 3 :
				c == VDI_VDC_WRITE ? 6 :
				c == VDI_VDC_CLEAR_ERROR ? 1 :
				c == T_VDC_FLUSH ? 1 : 0;

		EXPECT_EQ(want, d->sent_by_code[c]) TH_LOG("code %u", c);
	}
	/* First seen first: success, the client's 112, the flushes' 1117. */
	EXPECT_EQ(0U, d->completions[0].code);
	EXPECT_EQ(6U, d->completions[0].count);
	EXPECT_EQ((__u32)T_ERROR_DISK_FULL, d->completions[1].code);
	EXPECT_EQ(1U, d->completions[1].count);
	EXPECT_EQ((__u32)VDI_ERROR_IO_DEVICE, d->completions[2].code);
	EXPECT_EQ(4U, d->completions[2].count);
	for (unsigned int i = 3; i < VDI_STATS_CODES; i++)
		EXPECT_EQ(0U, d->completions[i].count);
	EXPECT_EQ(0U, d->completions_other);
	/* Timed, with time on both sides. */
	EXPECT_LT(0U, d->queued_ns);
	EXPECT_LT(0U, d->held_ns);
	EXPECT_LT(0U, d->reaping_ns);
	EXPECT_LT(0U, d->client_busy_ns);
	EXPECT_LT(0U, d->client_idle_ns);

	/* The same through the id, from another fd; frozen clocks. */
	ASSERT_EQ(0, snap_by_id(t->id, &s2));
	EXPECT_EQ(0, memcmp(&s.dev[0], &s2.dev[0], sizeof(s.dev[0])));
	EXPECT_EQ(s.set.agent_wait_ns, s2.set.agent_wait_ns);

	/* An ended set stays as it ended. */
	EXPECT_EQ(0, abort_set(t->id));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s2));
	EXPECT_EQ((__u32)VDI_STATE_DONE, s2.set.state);
	EXPECT_EQ((__u32)VDI_ABORT_NONE, s2.set.abort_reason);

	/* The client leaves: the name goes, its pid reads 0 once reaped. */
	ASSERT_EQ(0, cli_do(t, OP(C_EXIT, 0)));
	ASSERT_EQ(0, vdi_reap(&t->p, 5000));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s2));
	EXPECT_EQ((__u32)(VDI_SET_HAS_SERVER | VDI_SET_STATS_ON),
		  s2.set.flags);
	EXPECT_EQ(0U, s2.set.client_pid);
	EXPECT_EQ((__u32)VDI_ABORT_NONE, s2.set.abort_reason);
}

/* Every distinct code past the first VDI_STATS_CODES is "other". */
TEST(completion_codes_past_the_table_are_other)
{
	struct vdi_completion cpl[2];
	struct vdi_command cmd;
	struct vdi_sess sess;
	struct snap s;
	const struct vdi_dev_stats *d;

	ASSERT_EQ(0, vdi_sess_simple(&sess, 1, 4));
	/* Codes 101..110 each put the device in IO-ERROR; ClearError
	 * (success, code 0) takes it out: 11 distinct codes.
	 */
	for (uint32_t code = 101; code <= 110; code++) {
		ASSERT_EQ(1, vdi_send1(sess.sdev[0], code, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
		ASSERT_EQ(1, vdi_get(sess.cdev[0], &cmd, 1, 0));
		ASSERT_EQ(1, vdi_complete1(sess.cdev[0], cmd.tag, code, 0, 0));
		ASSERT_EQ(1, vdi_send1(sess.sdev[0], 0, VDI_VDC_CLEAR_ERROR,
				       0, 0, VDI_NO_BUFFER));
		ASSERT_EQ(1, vdi_get(sess.cdev[0], &cmd, 1, 0));
		ASSERT_EQ(1, vdi_complete1(sess.cdev[0], cmd.tag, 0, 0, 0));
		ASSERT_EQ(2, vdi_wait_n(sess.sset, cpl, 2, 1000, NULL));
	}
	ASSERT_EQ(0, snap_take(sess.cset, 0, &s));
	d = &s.dev[0];
	EXPECT_EQ(101U, d->completions[0].code);
	EXPECT_EQ(0U, d->completions[1].code);
	EXPECT_EQ(10U, d->completions[1].count);
	for (unsigned int i = 2; i < VDI_STATS_CODES; i++) {
		EXPECT_EQ(100U + i, d->completions[i].code);
		EXPECT_EQ(1U, d->completions[i].count);
	}
	EXPECT_EQ(3U, d->completions_other);
	EXPECT_EQ(10U, d->io_error_episodes);
	EXPECT_EQ(20U, d->completed);
	EXPECT_EQ(10U, d->sent_by_code[VDI_VDC_CLEAR_ERROR]);
	EXPECT_EQ(10U, d->sent_by_code[T_VDC_FLUSH]);
	vdi_sess_close(&sess);
}

/* ------------------------------------------------------------------ */
/* times                                                              */

TEST_F(pair, times_follow_the_slow_side)
{
	struct pair *t = &self->t;
	struct vdi_completion cpl[2];
	struct vdi_waiter w;
	struct vdi_batch b;
	struct snap s0, s1, f1, f2;
	const struct vdi_dev_stats *d;

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));

	/* Both sides open, nothing sent: the client is idle, growing. */
	ASSERT_EQ(0, snap_take(t->sset, 0, &s0));
	vdi_sleep_ms(60);
	ASSERT_EQ(0, snap_take(t->sset, 0, &s1));
	EXPECT_LE(s0.dev[0].client_idle_ns + 60 * MS, s1.dev[0].client_idle_ns);
	EXPECT_EQ(0U, s1.dev[0].client_busy_ns);

	/* The client takes 50 ms late and holds 50 ms; the agent waits. */
	ASSERT_EQ(1, vdi_send1(t->sdev[0], 1, VDI_VDC_WRITE, 4096, 0, 0));
	vdi_batch_init(&b, cpl, 1, 5000);
	ASSERT_EQ(0, vdi_waiter_start(&w, t->sset, VDI_IOC_WAIT_COMPLETIONS,
				      &b));
	ASSERT_EQ(0, cli_post(t, OP(C_SLEEP, 50)));
	ASSERT_EQ(0, cli_post(t, TAKE(0, 1)));
	ASSERT_EQ(0, cli_post(t, OP(C_SLEEP, 50)));
	ASSERT_EQ(0, cli_post(t, COMPLETE(0, 4096)));
	ASSERT_EQ(0, cli_sync(t, OP(C_SLEEP, 50)));
	ASSERT_EQ(0, cli_sync(t, TAKE(0, 1)));
	ASSERT_EQ(0, cli_sync(t, OP(C_SLEEP, 50)));
	ASSERT_EQ(0, cli_sync(t, COMPLETE(0, 4096)));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	ASSERT_EQ(1, w.ret);

	/* The agent comes 50 ms after the client completed. */
	ASSERT_EQ(1, vdi_send1(t->sdev[0], 2, VDI_VDC_WRITE, 4096, 0, 0));
	ASSERT_EQ(0, cli_do(t, TAKE(0, 1)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 4096)));
	vdi_sleep_ms(50);
	ASSERT_EQ(1, vdi_wait(t->sset, cpl, 1, 0));

	ASSERT_EQ(0, vdi_close_device(t->sdev[0]));
	ASSERT_EQ(0, cli_do(t, OP(C_SHUTDOWN, 0)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &f1));
	vdi_sleep_ms(30);
	ASSERT_EQ(0, snap_take(t->sset, 0, &f2));

	d = &f1.dev[0];
	EXPECT_LE(50 * MS, d->queued_ns);
	EXPECT_LE(50 * MS, d->held_ns);
	EXPECT_LE(50 * MS, d->reaping_ns);
	EXPECT_LE(100 * MS, d->client_busy_ns);
	EXPECT_LE(60 * MS, d->client_idle_ns);
	EXPECT_LE(50 * MS, f1.set.agent_wait_ns);
	EXPECT_LE(d->client_busy_ns + d->client_idle_ns, f1.set.age_ns);
	EXPECT_EQ(2U, d->reaped);
	EXPECT_EQ(8192U, d->bytes_written);
	/* Closed: the clock stopped; the set's age goes on. */
	EXPECT_EQ(d->client_busy_ns, f2.dev[0].client_busy_ns);
	EXPECT_EQ(d->client_idle_ns, f2.dev[0].client_idle_ns);
	EXPECT_EQ(d->queued_ns, f2.dev[0].queued_ns);
	EXPECT_LE(f1.set.age_ns + 30 * MS, f2.set.age_ns);
}

/* The verdict: a client slow with work in hand is busy... */
TEST_F(pair, slow_client_is_busy)
{
	struct pair *t = &self->t;
	struct vdi_completion cpl[3];
	struct snap s;
	struct vdi_send w[3] = {
		{ 1, VDI_VDC_WRITE, 4096, 0, 0 },
		{ 2, VDI_VDC_WRITE, 4096, 4096, 4096 },
		{ 3, VDI_VDC_WRITE, 4096, 8192, 8192 },
	};

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	ASSERT_EQ(3, vdi_send(t->sdev[0], w, 3));
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, cli_post(t, TAKE(0, 1)));
		ASSERT_EQ(0, cli_post(t, OP(C_SLEEP, 60)));
		ASSERT_EQ(0, cli_post(t, COMPLETE(0, 4096)));
	}
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, cli_sync(t, TAKE(0, 1)));
		ASSERT_EQ(0, cli_sync(t, OP(C_SLEEP, 60)));
		ASSERT_EQ(0, cli_sync(t, COMPLETE(0, 4096)));
	}
	ASSERT_EQ(3, vdi_wait_n(t->sset, cpl, 3, 2000, NULL));
	ASSERT_EQ(0, vdi_close_device(t->sdev[0]));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_LE(180 * MS, s.dev[0].client_busy_ns);
	EXPECT_LE(180 * MS, s.dev[0].held_ns);
	EXPECT_GT(s.dev[0].client_busy_ns, s.dev[0].client_idle_ns)
		TH_LOG("busy %llu ns, idle %llu ns",
		       (unsigned long long)s.dev[0].client_busy_ns,
		       (unsigned long long)s.dev[0].client_idle_ns);
}

/* ... and one that waits for an engine slow to send is idle. */
TEST_F(pair, slow_engine_is_idle)
{
	struct pair *t = &self->t;
	struct vdi_completion cpl;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	for (int i = 0; i < 3; i++) {
		/* The client waits in GET_COMMANDS, ready to complete at once. */
		ASSERT_EQ(0, cli_post(t, TAKE(0, 1)));
		ASSERT_EQ(0, cli_post(t, COMPLETE(0, 4096)));
		vdi_sleep_ms(100);
		ASSERT_EQ(1, vdi_send1(t->sdev[0], i, VDI_VDC_WRITE, 4096, 0,
				       0));
		ASSERT_EQ(0, cli_sync(t, TAKE(0, 1)));
		ASSERT_EQ(0, cli_sync(t, COMPLETE(0, 4096)));
		ASSERT_EQ(1, vdi_wait(t->sset, &cpl, 1, 1000));
	}
	ASSERT_EQ(0, vdi_close_device(t->sdev[0]));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_LE(300 * MS, s.dev[0].client_idle_ns);
	EXPECT_GT(s.dev[0].client_idle_ns, s.dev[0].client_busy_ns)
		TH_LOG("busy %llu ns, idle %llu ns",
		       (unsigned long long)s.dev[0].client_busy_ns,
		       (unsigned long long)s.dev[0].client_idle_ns);
}

/*
 * Commands the client could not receive (GET_COMMANDS, EFAULT) go back to
 * the queue: not taken, queued again, and the time until they are taken
 * for real counts as queued.
 */
TEST_F(pair, a_take_the_client_cannot_receive_is_not_counted)
{
	struct pair *t = &self->t;
	struct vdi_completion cpl[2];
	const struct vdi_dev_stats *d;
	struct snap s;
	struct vdi_send w[2] = {
		{ 1, VDI_VDC_WRITE, 4096, 0, 0 },
		{ 2, VDI_VDC_WRITE, 4096, 4096, 4096 },
	};

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	ASSERT_EQ(2, vdi_send(t->sdev[0], w, 2));
	ASSERT_EQ(0, cli_do(t, OP(C_TAKE_FAULT, 0 << 16 | 2)));

	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	d = &s.dev[0];
	EXPECT_EQ(2U, d->sent);
	EXPECT_EQ(0U, d->taken);
	EXPECT_EQ(2U, d->queued);
	EXPECT_EQ(0U, d->held);
	EXPECT_EQ(0U, d->completed);
	EXPECT_EQ(2U, d->queued_peak);
	EXPECT_EQ(0U, d->held_ns);

	vdi_sleep_ms(50);
	ASSERT_EQ(0, cli_do(t, TAKE(0, 2)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ(2U, d->taken);
	EXPECT_EQ(0U, d->queued);
	EXPECT_EQ(2U, d->held);
	/* Both were queued from SEND to the second take: 50 ms and more. */
	EXPECT_LE(2 * 50 * MS, d->queued_ns);

	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 4096)));
	ASSERT_EQ(0, cli_do(t, COMPLETE(0, 4096)));
	ASSERT_EQ(2, vdi_wait_n(t->sset, cpl, 2, 2000, NULL));
	ASSERT_EQ(0, vdi_close_device(t->sdev[0]));
	ASSERT_EQ(0, cli_do(t, OP(C_SHUTDOWN, 0)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ((__u32)VDI_STATE_DONE, s.set.state);
	EXPECT_EQ(2U, d->sent);
	EXPECT_EQ(2U, d->taken);
	EXPECT_EQ(2U, d->completed);
	EXPECT_EQ(2U, d->reaped);
	EXPECT_EQ(0U, d->queued);
	EXPECT_EQ(0U, d->held);
	EXPECT_EQ(0U, d->done);
	EXPECT_EQ(8192U, d->bytes_written);
	/* Work was in hand from SEND to the last COMPLETE: busy. */
	EXPECT_LE(50 * MS, d->client_busy_ns);
}

/*
 * The queue's peak counts commands that come back: four taken but stuck in
 * their copy out while the engine queues four more, then the copy fails and
 * the four go back: eight queued at once.
 */
TEST_F(pair, commands_that_come_back_count_in_the_queued_peak)
{
	struct pair *t = &self->t;
	struct vdi_completion cpl[8];
	const struct vdi_dev_stats *d;
	struct vdi_send w[8];
	struct snap s;
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (uffd < 0)
		SKIP(return, "no userfaultfd (errno %d)", errno);
	close(uffd);
	for (int i = 0; i < 8; i++)
		w[i] = (struct vdi_send){ i + 1, VDI_VDC_WRITE, 4096,
					  i * 4096ULL, i * 4096ULL };

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	ASSERT_EQ(4, vdi_send(t->sdev[0], w, 4));
	ASSERT_EQ(0, cli_do(t, OP(C_TAKE_STALL, 0 << 16 | 4)));
	ASSERT_EQ(4, vdi_send(t->sdev[0], w + 4, 4));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	d = &s.dev[0];
	EXPECT_EQ(4U, d->queued);
	EXPECT_EQ(4U, d->held);
	EXPECT_EQ(4U, d->queued_peak);

	ASSERT_EQ(0, cli_do(t, OP(C_STALL_FAIL, 0)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ(8U, d->queued);
	EXPECT_EQ(0U, d->held);
	EXPECT_EQ(0U, d->taken);
	EXPECT_LE(d->queued, d->queued_peak);
	EXPECT_EQ(8U, d->queued_peak);
	EXPECT_EQ(8U, d->inflight_peak);

	ASSERT_EQ(0, cli_do(t, TAKE(0, 8)));
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, cli_do(t, COMPLETE(0, 4096)));
	ASSERT_EQ(8, vdi_wait_n(t->sset, cpl, 8, 2000, NULL));
	ASSERT_EQ(0, vdi_close_device(t->sdev[0]));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ((__u32)VDI_STATE_DONE, s.set.state);
	EXPECT_EQ(8U, d->sent);
	EXPECT_EQ(8U, d->taken);
	EXPECT_EQ(8U, d->reaped);
	EXPECT_EQ(8U, d->queued_peak);
}

/* ------------------------------------------------------------------ */
/* the stats parameter                                                */

static int param_write(const char *v)
{
	int fd = open(STATS_PARAM, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, v, strlen(v));
	close(fd);
	return n == (ssize_t)strlen(v) ? 0 : -EIO;
}

/* One command held 30 ms, reaped 30 ms late, an agent wait of 30 ms. */
static int slow_round(struct vdi_sess *sess)
{
	struct vdi_completion cpl;
	struct vdi_command cmd;

	if (vdi_send1(sess->sdev[0], 1, VDI_VDC_WRITE, 4096, 0, 0) != 1 ||
	    vdi_get(sess->cdev[0], &cmd, 1, 0) != 1)
		return -1;
	vdi_sleep_ms(30);
	if (vdi_complete1(sess->cdev[0], cmd.tag, 0, 4096, 0) != 1)
		return -2;
	vdi_sleep_ms(30);
	if (vdi_wait(sess->sset, &cpl, 1, 0) != 1)
		return -3;
	return vdi_wait(sess->sset, &cpl, 1, 30) == -ETIMEDOUT ? 0 : -4;
}

TEST(stats_off_counts_without_times)
{
	struct vdi_sess on, off;
	struct snap s;
	const struct vdi_dev_stats *d;
	char buf[4096];
	int r;

	r = param_write("1");
	if (r == -ENOENT || r == -EACCES)
		SKIP(return, "%s not writable: %s", STATS_PARAM, strerror(-r));
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, vdi_sess_simple(&on, 1, 4));
	/* The parameter counts at CREATE only: set it back at once. */
	ASSERT_EQ(0, param_write("0"));
	r = vdi_sess_simple(&off, 1, 4);
	ASSERT_EQ(0, param_write("1"));
	ASSERT_EQ(0, r);

	ASSERT_EQ(0, slow_round(&on));
	ASSERT_EQ(0, slow_round(&off));

	ASSERT_EQ(0, snap_take(on.sset, 0, &s));
	d = &s.dev[0];
	EXPECT_TRUE(s.set.flags & VDI_SET_STATS_ON);
	EXPECT_LE(30 * MS, d->held_ns);
	EXPECT_LE(30 * MS, d->reaping_ns);
	EXPECT_LE(30 * MS, d->client_busy_ns);
	EXPECT_LE(30 * MS, s.set.agent_wait_ns);

	ASSERT_EQ(0, snap_take(off.sset, 0, &s));
	d = &s.dev[0];
	EXPECT_FALSE(s.set.flags & VDI_SET_STATS_ON);
	EXPECT_EQ(1U, d->sent);
	EXPECT_EQ(1U, d->taken);
	EXPECT_EQ(1U, d->completed);
	EXPECT_EQ(1U, d->reaped);
	EXPECT_EQ(4096U, d->bytes_written);
	EXPECT_EQ(1U, d->sent_by_code[VDI_VDC_WRITE]);
	EXPECT_EQ(1U, d->completions[0].count);
	EXPECT_EQ(1U, d->queued_peak);
	EXPECT_EQ(0U, d->queued_ns);
	EXPECT_EQ(0U, d->held_ns);
	EXPECT_EQ(0U, d->reaping_ns);
	EXPECT_EQ(0U, d->client_busy_ns);
	EXPECT_EQ(0U, d->client_idle_ns);
	EXPECT_EQ(0U, s.set.agent_wait_ns);
	/* The set's ages are kept either way. */
	EXPECT_LT(0U, s.set.age_ns);
	ASSERT_LT(0, fdinfo_read(off.cdev[0], buf, sizeof(buf)));
	EXPECT_EQ(1, fdinfo_num(buf, "vdi-completed"));
	EXPECT_EQ(0, fdinfo_num(buf, "vdi-held-ns"));
	EXPECT_EQ(0, fdinfo_num(buf, "vdi-client-busy-ns"));
	vdi_sess_close(&on);
	vdi_sess_close(&off);
}

/* ------------------------------------------------------------------ */
/* abort reasons                                                      */

/* The abort as recorded: reason, device, pid. */
#define EXPECT_ABORT(snap, reason, device, pid) do { \
	EXPECT_EQ((__u32)VDI_STATE_ABORTED, (snap).set.state); \
	EXPECT_EQ((__u32)(reason), (snap).set.abort_reason); \
	EXPECT_EQ((__u32)(device), (snap).set.abort_device); \
	EXPECT_EQ((__u32)(pid), (snap).set.abort_pid); \
	EXPECT_LT(0U, (snap).set.end_age_ns); \
} while (0)

TEST_F(pair, abort_by_client_signal)
{
	struct pair *t = &self->t;
	struct vdi_completion cpl[2];
	struct vdi_send w[2] = {
		{ 1, VDI_VDC_WRITE, 4096, 0, 0 },
		{ 2, VDI_VDC_WRITE, 4096, 4096, 4096 },
	};
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	ASSERT_EQ(2, vdi_send(t->sdev[0], w, 2));
	ASSERT_EQ(0, cli_do(t, TAKE(0, 1)));
	ASSERT_EQ(0, cli_do(t, OP(C_ABORT, 0)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_CLIENT_SIGNAL, VDI_ABORT_NO_DEVICE,
		     t->p.pid);
	/* One queued, one held: both completed with 995 by the abort. */
	EXPECT_EQ(2U, s.dev[0].completed);
	EXPECT_EQ(2, code_count(&s.dev[0], VDI_ERROR_OPERATION_ABORTED));
	EXPECT_EQ(0U, s.dev[0].queued);
	EXPECT_EQ(0U, s.dev[0].held);
	EXPECT_EQ(2U, s.dev[0].done);
	ASSERT_EQ(2, vdi_wait_n(t->sset, cpl, 2, 1000, NULL));
	EXPECT_EQ(-ECONNABORTED, vdi_wait(t->sset, cpl, 1, 0));
	/* Only the first cause counts. */
	EXPECT_EQ(0, vdi_abort(t->sset));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_CLIENT_SIGNAL, VDI_ABORT_NO_DEVICE,
		     t->p.pid);
	EXPECT_EQ(2U, s.dev[0].reaped);
	EXPECT_EQ(0U, s.dev[0].done);
}

TEST_F(pair, abort_by_secondary_signal)
{
	struct pair *t = &self->t;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	ASSERT_EQ(0, cli_do(t, OP(C_SECONDARY, 0)));
	ASSERT_EQ(0, cli_do(t, OP(C_SEC_ABORT, 0)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_CLIENT_SIGNAL, VDI_ABORT_NO_DEVICE,
		     t->p.pid);
}

TEST_F(pair, abort_by_server_signal)
{
	struct pair *t = &self->t;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	EXPECT_EQ(0, vdi_abort(t->sset));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_SERVER_SIGNAL, VDI_ABORT_NO_DEVICE,
		     getpid());
}

TEST_F(pair, abort_by_client_device_close)
{
	struct pair *t = &self->t;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 2, 8, 0));
	ASSERT_EQ(0, cli_do(t, OP(C_CLOSE_DEV, 1)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_CLIENT_CLOSE, 1, t->p.pid);
}

TEST_F(pair, abort_by_server_device_close)
{
	struct pair *t = &self->t;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 2, 8, 0));
	vdi_close(&t->sdev[1]);
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_SERVER_CLOSE, 1, getpid());
}

TEST_F(pair, abort_by_server_set_close)
{
	struct pair *t = &self->t;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 2, 8, 0));
	/* Device 0 ends normally; its fd stays open, holding the set. */
	ASSERT_EQ(0, vdi_close_device(t->sdev[0]));
	ASSERT_EQ(0, snap_take(t->sdev[0], 0, &s));
	EXPECT_EQ((__u32)VDI_STATE_READY, s.set.state);
	vdi_close(&t->sset);
	ASSERT_EQ(0, snap_take(t->sdev[0], 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_SERVER_CLOSE, VDI_ABORT_NO_DEVICE, getpid());
}

TEST_F(pair, abort_by_client_exit)
{
	struct pair *t = &self->t;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	ASSERT_EQ(0, kill(t->p.pid, SIGKILL));
	ASSERT_TRUE(wait_aborted(t->sset, 3000));
	/* The child is a zombie: its pid still names it. */
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ((__u32)VDI_ABORT_CLIENT_EXIT, s.set.abort_reason);
	EXPECT_EQ((__u32)t->p.pid, s.set.abort_pid);
	EXPECT_TRUE(s.set.abort_device == 0 ||
		    s.set.abort_device == VDI_ABORT_NO_DEVICE);
	EXPECT_EQ(128 + SIGKILL, vdi_reap(&t->p, 2000));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ((__u32)VDI_ABORT_CLIENT_EXIT, s.set.abort_reason);
	EXPECT_EQ(0U, s.set.abort_pid);
	EXPECT_EQ(0U, s.set.client_pid);
}

/* Child: the engine, killed by its parent once it has a device open. */
static int server_main(struct vdi_chan *ch, void *p)
{
	const char *name = p;
	char dn[VDI_NAME_MAX];
	int sset, sdev;

	sset = vdi_open_server(name);
	CK(sset >= 0);
	CKEQ(0, vdi_begin_config(sset, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 4));
	CKEQ(0, vdi_end_config(sset, 1 << 20));
	vdi_dev_name(dn, name, 0);
	sdev = vdi_open_device(sset, dn, 0, NULL);
	CK(sdev >= 0);
	CKEQ(1, vdi_send1(sdev, 1, VDI_VDC_WRITE, 4096, 0, 0));
	CK(!vdi_chan_send(ch, 1));
	vdi_chan_recv(ch, NULL, 15000);		/* until killed */
	return 0;
}

TEST(abort_by_server_exit)
{
	char name[VDI_NAME_MAX], dn[VDI_NAME_MAX];
	struct vdi_proc p;
	struct snap s;
	int cset, cdev;

	vdi_make_name(name, "sx");
	cset = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, cset);
	ASSERT_EQ(0, vdi_spawn(&p, server_main, name));
	ASSERT_EQ(0, vdi_get_config(cset, 5000, NULL));
	vdi_dev_name(dn, name, 0);
	cdev = vdi_open_device(cset, dn, 0, NULL);
	ASSERT_LE(0, cdev);
	ASSERT_EQ(0, vdi_chan_expect(&p.ch, 1, 5000));
	ASSERT_EQ(0, kill(p.pid, SIGKILL));
	ASSERT_TRUE(wait_aborted(cset, 3000));
	ASSERT_EQ(0, snap_take(cset, 0, &s));
	EXPECT_EQ((__u32)VDI_ABORT_SERVER_EXIT, s.set.abort_reason);
	EXPECT_EQ((__u32)p.pid, s.set.abort_pid);
	EXPECT_EQ((__u32)p.pid, s.set.server_pid);
	EXPECT_EQ((__u32)getpid(), s.set.client_pid);
	EXPECT_EQ(1, code_count(&s.dev[0], VDI_ERROR_OPERATION_ABORTED));
	EXPECT_EQ(128 + SIGKILL, vdi_reap(&p, 2000));
	ASSERT_EQ(0, snap_take(cset, 0, &s));
	EXPECT_EQ(0U, s.set.abort_pid);
	EXPECT_EQ(0U, s.set.server_pid);
	vdi_proc_kill(&p);
	close(cdev);
	close(cset);
}

TEST_F(pair, abort_by_watchdog)
{
	struct pair *t = &self->t;
	struct vdi_completion cpl;
	int64_t t0;
	struct snap s;

	ASSERT_EQ(0, pair_start(t, 1, 8, 100));
	t0 = vdi_now_ms();
	ASSERT_EQ(1, vdi_send1(t->sdev[0], 1, VDI_VDC_WRITE, 4096, 0, 0));
	ASSERT_EQ(1, vdi_wait(t->sset, &cpl, 1, 5000));
	EXPECT_LE(200, vdi_now_ms() - t0);
	EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl.completion_code);
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_WATCHDOG, VDI_ABORT_NO_DEVICE, 0);
}

TEST_F(pair, abort_by_admin)
{
	struct pair *t = &self->t;
	struct vdi_abort_set a;
	struct snap s;
	int ep;

	ASSERT_EQ(0, pair_start(t, 1, 8, 0));
	ep = vdi_open();
	ASSERT_LE(0, ep);
	/* Refused: flags, reserved, no such id; not on a device fd. */
	memset(&a, 0, sizeof(a));
	a.id = t->id;
	a.flags = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a));
	a.flags = 0;
	a.reserved0 = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a));
	a.reserved0 = 0;
	a.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a));
	a.reserved[1] = 0;
	a.id = 0;
	EXPECT_EQ(-ENOENT, vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a));
	a.id = t->id + (1ULL << 40);
	EXPECT_EQ(-ENOENT, vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a));
	a.id = t->id;
	EXPECT_EQ(-ENOTTY, vdi_ioctl(t->sdev[0], VDI_IOC_ABORT_SET, &a));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_EQ((__u32)VDI_STATE_READY, s.set.state);

	/* From any /dev/vdi fd: here a set fd of the set itself. */
	EXPECT_EQ(0, vdi_ioctl(t->sset, VDI_IOC_ABORT_SET, &a));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_ADMIN, VDI_ABORT_NO_DEVICE, getpid());
	EXPECT_TRUE(wait_aborted(t->sset, 0));
	/* Again: still the first cause. */
	EXPECT_EQ(0, vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a));
	ASSERT_EQ(0, cli_do(t, OP(C_ABORT, 0)));
	ASSERT_EQ(0, snap_take(t->sset, 0, &s));
	EXPECT_ABORT(s, VDI_ABORT_ADMIN, VDI_ABORT_NO_DEVICE, getpid());
	close(ep);
}

/* ------------------------------------------------------------------ */
/* fdinfo                                                             */

TEST(fdinfo_of_every_kind_of_fd)
{
	struct vdi_completion cpl[2];
	struct vdi_command cmd[2];
	struct vdi_sess s;
	struct fd_expect e;
	char why[512], dev0[VDI_NAME_MAX + 8], dev1[VDI_NAME_MAX + 8];
	char dn[VDI_NAME_MAX], buf[4096];
	int ep, sec;
	uint64_t id;
	struct vdi_send w[3] = {
		{ 1, VDI_VDC_WRITE, 4096, 0, 0 },
		{ 2, VDI_VDC_WRITE, 4096, 4096, 4096 },
		{ 3, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER },
	};
	const long long c_dev0[] = { 1, 1, 1, 3, 3, 2, 1, 0, 0, 4096 };
	const long long c_dev1[] = { 0, 0, 1, 1, 1, 1, 1, 0, 512, 0 };
	const long long c_set[] = { 1, 1, 2, 4, 4, 3, 2, 0, 512, 4096 };

	ASSERT_EQ(0, vdi_sess_simple(&s, 2, 8));
	ep = vdi_open();
	ASSERT_LE(0, ep);
	sec = vdi_open_secondary(s.name);
	ASSERT_LE(0, sec);
	id = set_id_of(s.cset);
	ASSERT_NE(0U, id);

	/* Device 0: three sent, two taken, one completed. */
	ASSERT_EQ(3, vdi_send(s.sdev[0], w, 3));
	ASSERT_EQ(2, vdi_get(s.cdev[0], cmd, 2, 0));
	ASSERT_EQ(1, vdi_complete1(s.cdev[0], cmd[0].tag, 0, 4096, 0));
	/* Device 1: a read of 512 bytes, done. */
	ASSERT_EQ(1, vdi_send1(s.sdev[1], 4, VDI_VDC_READ, 512, 0, 8192));
	ASSERT_EQ(1, vdi_get(s.cdev[1], cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s.cdev[1], cmd[0].tag, 0, 512, 0));

	snprintf(dev0, sizeof(dev0), "0 %s", s.name);
	vdi_dev_name(dn, s.name, 1);
	snprintf(dev1, sizeof(dev1), "1 %s", dn);
	memset(&e, 0, sizeof(e));
	e.set = s.name;
	e.id = id;
	e.state = "ready";
	e.abort = "none";
	e.dev_state = "active";

	e.role = "client";
	e.device = dev0;
	memcpy(e.counters, c_dev0, sizeof(c_dev0));
	EXPECT_EQ(0, fdinfo_check(s.cdev[0], &e, why, sizeof(why)))
		TH_LOG("%s", why);
	e.role = "server";
	EXPECT_EQ(0, fdinfo_check(s.sdev[0], &e, why, sizeof(why)))
		TH_LOG("%s", why);
	e.device = dev1;
	memcpy(e.counters, c_dev1, sizeof(c_dev1));
	EXPECT_EQ(0, fdinfo_check(s.sdev[1], &e, why, sizeof(why)))
		TH_LOG("%s", why);
	e.role = "client";
	EXPECT_EQ(0, fdinfo_check(s.cdev[1], &e, why, sizeof(why)))
		TH_LOG("%s", why);

	/* Set fds: the sums over the devices. */
	e.device = NULL;
	memcpy(e.counters, c_set, sizeof(c_set));
	EXPECT_EQ(0, fdinfo_check(s.cset, &e, why, sizeof(why)))
		TH_LOG("%s", why);
	e.role = "server";
	EXPECT_EQ(0, fdinfo_check(s.sset, &e, why, sizeof(why)))
		TH_LOG("%s", why);
	e.role = "secondary";
	EXPECT_EQ(0, fdinfo_check(sec, &e, why, sizeof(why)))
		TH_LOG("%s", why);

	/* A roleless endpoint: its role, nothing else. */
	ASSERT_LT(0, fdinfo_read(ep, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "vdi-role:\tnone\n"));
	EXPECT_EQ(1U, fdinfo_vdi_lines(buf));

	/* An error on device 1: IO-ERROR, one episode. */
	ASSERT_EQ(2, vdi_wait_n(s.sset, cpl, 2, 1000, NULL));
	ASSERT_EQ(1, vdi_send1(s.sdev[1], 5, VDI_VDC_READ, 512, 0, 8192));
	ASSERT_EQ(1, vdi_get(s.cdev[1], cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s.cdev[1], cmd[0].tag, T_ERROR_DISK_FULL,
				   0, 0));
	ASSERT_LT(0, fdinfo_read(s.cdev[1], buf, sizeof(buf)));
	EXPECT_EQ(1, fdinfo_num(buf, "vdi-io-errors"));
	EXPECT_NE(NULL, strstr(buf, "vdi-dev-state:\tio-error\n"));

	/* Aborted: the state and the cause, on every fd. */
	ASSERT_EQ(0, vdi_abort(s.cset));
	ASSERT_LT(0, fdinfo_read(s.sdev[0], buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "vdi-state:\taborted\n"));
	EXPECT_NE(NULL, strstr(buf, "vdi-abort:\tclient-signal device=none age-ns="));
	ASSERT_LT(0, fdinfo_read(s.sset, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "vdi-abort:\tclient-signal device=none age-ns="));

	close(sec);
	close(ep);
	vdi_sess_close(&s);
}

TEST_F(pair, fdinfo_names_the_aborting_device)
{
	struct pair *t = &self->t;
	char buf[4096];

	ASSERT_EQ(0, pair_start(t, 2, 8, 0));
	ASSERT_EQ(0, cli_do(t, OP(C_CLOSE_DEV, 1)));
	ASSERT_LT(0, fdinfo_read(t->sdev[0], buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "vdi-abort:\tclient-close device=1 age-ns="));
}

/* ------------------------------------------------------------------ */
/* SET_STATS, LIST_SETS: sizes and checks                             */

TEST(set_stats_size_rules)
{
	static uint8_t setbuf[sizeof(struct vdi_set_stats) + 64];
	static uint8_t devbuf[3 * (sizeof(struct vdi_dev_stats) + 40)];
	const size_t dstride = sizeof(struct vdi_dev_stats) + 40;
	struct vdi_set_stats *ss = (struct vdi_set_stats *)setbuf;
	struct vdi_dev_stats *ds;
	struct vdi_stats_req r;
	struct vdi_sess sess;
	struct snap s;
	char dn[VDI_NAME_MAX];
	int ep;

	ASSERT_EQ(0, vdi_sess_simple(&sess, 2, 8));
	ep = vdi_open();
	ASSERT_LE(0, ep);

#define REQ_INIT() do { \
	memset(&r, 0, sizeof(r)); \
	r.set = (uintptr_t)setbuf; \
	r.devs = (uintptr_t)devbuf; \
	r.set_size = sizeof(struct vdi_set_stats); \
	r.dev_size = sizeof(struct vdi_dev_stats); \
	r.dev_count = 2; \
} while (0)
	/* Below version 0, flags, reserved: EINVAL, nothing written. */
	REQ_INIT();
	r.set_size = VDI_SET_STATS_SIZE_VER0 - 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	REQ_INIT();
	r.dev_size = VDI_DEV_STATS_SIZE_VER0 - 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	REQ_INIT();
	r.set_size = 0;
	r.dev_count = 0;
	EXPECT_EQ(-EINVAL, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	REQ_INIT();
	r.flags = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	REQ_INIT();
	r.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	REQ_INIT();
	r.reserved[1] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	/* Faults. */
	REQ_INIT();
	r.set = 0;
	EXPECT_EQ(-EFAULT, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	REQ_INIT();
	r.devs = 0;
	EXPECT_EQ(-EFAULT, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	EXPECT_EQ(-EFAULT, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, NULL));
	/* Ids: 0 on an endpoint without a set; unknown. */
	REQ_INIT();
	EXPECT_EQ(-EPROTO, vdi_ioctl(ep, VDI_IOC_SET_STATS, &r));
	REQ_INIT();
	r.id = set_id_of(sess.cset) + (1ULL << 40);
	EXPECT_EQ(-ENOENT, vdi_ioctl(ep, VDI_IOC_SET_STATS, &r));

	/* Bigger than the module's: it writes its own size, at the caller's
	 * stride, and as many devices as there are.
	 */
	memset(setbuf, 0xab, sizeof(setbuf));
	memset(devbuf, 0xab, sizeof(devbuf));
	REQ_INIT();
	r.set_size = sizeof(setbuf);
	r.dev_size = dstride;
	r.dev_count = 3;
	ASSERT_EQ(0, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	EXPECT_EQ(sizeof(struct vdi_set_stats), r.set_size);
	EXPECT_EQ(sizeof(struct vdi_dev_stats), r.dev_size);
	EXPECT_EQ(2U, r.dev_count);
	EXPECT_STREQ(sess.name, ss->name);
	EXPECT_EQ(2U, ss->device_count);
	for (size_t i = sizeof(*ss); i < sizeof(setbuf); i++) {
		ASSERT_EQ(0xab, setbuf[i]) TH_LOG("set byte %zu", i);
	}
	for (unsigned int i = 0; i < 2; i++) {
		ds = (struct vdi_dev_stats *)(devbuf + i * dstride);
		EXPECT_EQ(i, ds->index);
		vdi_dev_name(dn, sess.name, i);
		EXPECT_STREQ(dn, ds->name);
		EXPECT_EQ(0U, ds->reserved0);
		for (unsigned int j = 0; j < 8; j++)
			EXPECT_EQ(0U, ds->reserved[j]);
		for (size_t j = sizeof(*ds); j < dstride; j++) {
			ASSERT_EQ(0xab, devbuf[i * dstride + j])
				TH_LOG("device %u byte %zu", i, j);
		}
	}
	for (size_t j = 2 * dstride; j < sizeof(devbuf); j++) {
		ASSERT_EQ(0xab, devbuf[j]) TH_LOG("third device byte %zu", j);
	}
	for (unsigned int j = 0; j < 8; j++)
		EXPECT_EQ(0U, ss->reserved[j]);

	/* No room for devices: only the set. */
	REQ_INIT();
	r.dev_count = 0;
	r.devs = 0;
	ASSERT_EQ(0, vdi_ioctl(sess.cset, VDI_IOC_SET_STATS, &r));
	EXPECT_EQ(0U, r.dev_count);
	EXPECT_EQ(sizeof(struct vdi_set_stats), r.set_size);

	/* Id 0 on a device fd, the id from an endpoint: the same set. */
	ASSERT_EQ(0, snap_take(sess.cdev[1], 0, &s));
	EXPECT_EQ(ss->id, s.set.id);
	EXPECT_EQ(2U, s.req.dev_count);
	ASSERT_EQ(0, snap_take(ep, ss->id, &s));
	EXPECT_STREQ(sess.name, s.set.name);
	EXPECT_EQ((__u32)(VDI_SET_LINKED | VDI_SET_HAS_SERVER |
			  VDI_SET_STATS_ON), s.set.flags);
	EXPECT_EQ(0U, s.set.end_age_ns);
	EXPECT_LT(0U, s.set.ready_age_ns);
#undef REQ_INIT
	close(ep);
	vdi_sess_close(&sess);
}

/* LIST_SETS into @ids (room @n); 0 or -errno. */
static int list_sets(int fd, uint64_t *ids, uint32_t n,
		     struct vdi_list_sets *out)
{
	memset(out, 0, sizeof(*out));
	out->ids = (uintptr_t)ids;
	out->count = n;
	return vdi_ioctl(fd, VDI_IOC_LIST_SETS, out);
}

static bool listed(const uint64_t *ids, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

TEST(list_sets_lists_every_live_set)
{
	struct vdi_sess a, b;
	struct vdi_list_sets l;
	uint64_t ids[256], ida, idb;
	struct snap s;
	int ep;

	ASSERT_EQ(0, vdi_sess_simple(&a, 1, 0));
	ASSERT_EQ(0, vdi_sess_simple(&b, 1, 0));
	ep = vdi_open();
	ASSERT_LE(0, ep);
	ida = set_id_of(a.cset);
	idb = set_id_of(b.cset);
	EXPECT_LT(ida, idb);

	/* Checks. */
	memset(&l, 0, sizeof(l));
	l.flags = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(ep, VDI_IOC_LIST_SETS, &l));
	memset(&l, 0, sizeof(l));
	l.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(ep, VDI_IOC_LIST_SETS, &l));
	EXPECT_EQ(-ENOTTY, list_sets(a.cdev[0], ids, 256, &l));
	EXPECT_EQ(-EFAULT, list_sets(ep, NULL, 256, &l));
	EXPECT_EQ(-EFAULT, vdi_ioctl(ep, VDI_IOC_LIST_SETS, NULL));

	/* Counting only. */
	ASSERT_EQ(0, list_sets(ep, NULL, 0, &l));
	EXPECT_LE(2U, l.total);
	EXPECT_EQ(0U, l.written);
	ASSERT_GE(256U, l.total);

	ASSERT_EQ(0, list_sets(a.sset, ids, 256, &l));
	EXPECT_EQ(l.total, l.written);
	EXPECT_TRUE(listed(ids, l.written, ida));
	EXPECT_TRUE(listed(ids, l.written, idb));
	for (uint32_t i = 1; i < l.written; i++)
		EXPECT_LT(ids[i - 1], ids[i]);	/* oldest first */

	/* Room for one: the oldest. */
	ASSERT_EQ(0, list_sets(ep, ids, 1, &l));
	EXPECT_EQ(1U, l.written);
	EXPECT_LE(2U, l.total);
	EXPECT_LE(ids[0], ida);

	/* The primary goes (an abort): the name is free, the server's fds
	 * keep the set, which is still listed, no longer linked.
	 */
	vdi_close(&a.cdev[0]);
	if (a.cmap)
		munmap(a.cmap, a.area);
	a.cmap = NULL;
	vdi_close(&a.cset);
	ASSERT_EQ(0, list_sets(ep, ids, 256, &l));
	EXPECT_TRUE(listed(ids, l.written, ida));
	ASSERT_EQ(0, snap_take(ep, ida, &s));
	EXPECT_EQ((__u32)VDI_SET_HAS_SERVER | VDI_SET_STATS_ON, s.set.flags);
	EXPECT_EQ((__u32)VDI_STATE_ABORTED, s.set.state);
	EXPECT_EQ((__u32)VDI_ABORT_CLIENT_CLOSE, s.set.abort_reason);
	EXPECT_EQ(0U, s.set.abort_device);

	/* Freed: gone from the list, its id unknown. */
	vdi_sess_close(&a);
	ASSERT_EQ(0, list_sets(ep, ids, 256, &l));
	EXPECT_FALSE(listed(ids, l.written, ida));
	EXPECT_TRUE(listed(ids, l.written, idb));
	EXPECT_EQ(-ENOENT, snap_take(ep, ida, &s));
	vdi_sess_close(&b);
	close(ep);
}

TEST_HARNESS_MAIN
