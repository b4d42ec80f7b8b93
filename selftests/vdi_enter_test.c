// SPDX-License-Identifier: GPL-2.0
/*
 * VDI_IOC_ENTER (API 1.3): one call per turn of each side (docs/ABI.md,
 * "One call per turn").  A client device fd completes and takes in one
 * call, the server's set fd sends and reaps in one call; each half behaves
 * as the older ioctl does, and the reap may busy-poll before it sleeps.
 *
 *  - every return of ENTER on each kind of fd: the struct's EINVAL and
 *    EFAULT (nothing written back, nothing done), ENOTTY and EPROTO for
 *    the other fds, the submit's errnos (ESTALE, EINVAL, EFAULT from a
 *    completion; EINVAL, ENOBUFS, EIO, EPROTO, ECONNABORTED from a send)
 *    with `submitted` counting what went in and nothing reaped, the
 *    reap's (ETIMEDOUT, ESHUTDOWN, ECONNABORTED, EINTR, EBADF, EFAULT with
 *    the entries queued again), the watchdog;
 *  - a signal: a wait with nothing submitted restarts as the older
 *    ioctl's would, one after a submit ends with EINTR (a restart would
 *    submit twice); the spin stops on it;
 *  - the spin: it burns the CPU for spin_us and no longer, and a command
 *    that arrives meanwhile is taken;
 *  - sends to several devices in one call; a steady stream where each side
 *    makes one call per command; the figures count it all as before;
 *  - a depth-1 ping-pong: ENTER with and without the spin against the
 *    older calls polled from user space, in round trips and system calls.
 *
 * The two sides are two processes: the test and a peer child it drives
 * over a channel (or, for the stream, two children).
 */
#include "vdi_test_util.h"

#include <sys/resource.h>

#define E_LONG_MS	5000	/* a wait something must end well before */
#define E_IN_WAIT_MS	100	/* time for a thread to reach its wait */

/* ------------------------------------------------------------------ */
/* the peer: the other side of the set, driven over the channel        */

enum {
	P_SEND = 1,		/* server: SEND n commands of code arg on dev */
	P_WAIT,			/* server: collect n completions (arg ms) */
	P_CLOSE,		/* server: CLOSE_DEVICE dev */
	P_TAKE,			/* client: GET_COMMANDS n on dev (arg ms), hold */
	P_COMPLETE,		/* client: COMPLETE the n oldest held, code arg */
	P_ABORT,		/* either: SIGNAL_ABORT on the set fd */
	P_EXIT,
};

/* op, device, count, argument */
#define P_OP(op, dev, n, arg)	((uint64_t)(op) << 56 | (uint64_t)(dev) << 48 | \
				 (uint64_t)(n) << 32 | (uint32_t)(arg))
#define P_HELD_MAX	256

struct peer_arg {
	char name[VDI_NAME_MAX];
	unsigned int ndev;		/* devices of the set */
	unsigned int nopen;		/* opened by the server peer (0: all) */
	uint32_t depth;			/* queue depth (server peer) */
	uint32_t server_timeout;	/* ms (client peer) */
	bool server;			/* the peer's role */
};

struct peer {
	int set;
	int dev[VDI_SESS_MAXDEV];
	uint64_t cookie;		/* server: the next one */
	struct vdi_command held[P_HELD_MAX];	/* client: oldest first */
	unsigned int held_dev[P_HELD_MAX];	/* ... and their devices */
	unsigned int nheld;
};

static int peer_server_setup(const struct peer_arg *a, struct vdi_chan *ch,
			     struct peer *p)
{
	unsigned int i, n = a->nopen ? a->nopen : a->ndev;
	char dn[VDI_NAME_MAX];

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));		/* created */
	p->set = vdi_open_server(a->name);
	CK(p->set >= 0);
	CKEQ(0, vdi_get_config(p->set, 0, NULL));
	CKEQ(0, vdi_begin_config(p->set, VDI_VDF_WRITE_MEDIA |
				 VDI_VDF_READ_MEDIA, 0, 512, 65536, a->depth));
	CKEQ(0, vdi_end_config(p->set, 1 << 20));
	for (i = 0; i < n; i++) {
		vdi_dev_name(dn, a->name, i);
		p->dev[i] = vdi_open_device(p->set, dn, 0, NULL);
		CK(p->dev[i] >= 0);
	}
	return 0;
}

static int peer_client_setup(const struct peer_arg *a, struct vdi_chan *ch,
			     struct peer *p)
{
	char dn[VDI_NAME_MAX];
	struct vdi_create c;
	unsigned int i;

	vdi_create_init(&c, a->name, a->ndev, 0);
	c.config.server_timeout = a->server_timeout;
	p->set = vdi_create_cfg(&c);
	CK(p->set >= 0);
	CKEQ(0, vdi_chan_send(ch, 0));			/* created */
	CKEQ(0, vdi_get_config(p->set, 10000, NULL));
	for (i = 0; i < a->ndev; i++) {
		vdi_dev_name(dn, a->name, i);
		p->dev[i] = vdi_open_device(p->set, dn, 0, NULL);
		CK(p->dev[i] >= 0);
	}
	return 0;
}

/* SEND n commands: Writes of 512 bytes at 0, or buffer-less; position i. */
static int peer_send(struct peer *p, unsigned int dev, unsigned int n,
		     uint32_t code)
{
	struct vdi_send s[P_HELD_MAX];
	unsigned int i;

	if (n > P_HELD_MAX || dev >= VDI_SESS_MAXDEV)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		bool data = code == VDI_VDC_WRITE || code == VDI_VDC_READ;

		s[i] = (struct vdi_send){
			.cookie = p->cookie + i, .code = code,
			.size = data ? 512 : 0, .position = p->cookie + i,
			.buf_offset = data ? 0 : VDI_NO_BUFFER,
		};
	}
	i = vdi_send(p->dev[dev], s, n);
	if ((int)i > 0)
		p->cookie += i;
	return (int)i;
}

/* Collect n completions; the count, then cookie and code/device of each. */
static int peer_wait(struct peer *p, struct vdi_chan *ch, unsigned int n,
		     int timeout_ms)
{
	struct vdi_completion c[P_HELD_MAX];
	int r, i;

	if (n > P_HELD_MAX)
		return 200;
	r = vdi_wait_n(p->set, c, n, timeout_ms, NULL);
	CKEQ(0, vdi_chan_send(ch, (uint64_t)(int64_t)r));
	for (i = 0; i < r; i++) {
		CKEQ(0, vdi_chan_send(ch, c[i].cookie));
		CKEQ(0, vdi_chan_send(ch, (uint64_t)c[i].completion_code << 32 |
				      c[i].device_index));
	}
	return 0;
}

/* Take up to n; the count, then the position of each. */
static int peer_take(struct peer *p, struct vdi_chan *ch, unsigned int dev,
		     unsigned int n, int timeout_ms)
{
	struct vdi_command *c = p->held + p->nheld;
	int r, i;

	if (n > P_HELD_MAX - p->nheld || dev >= VDI_SESS_MAXDEV)
		return 200;
	r = vdi_get(p->dev[dev], c, n, timeout_ms);
	CKEQ(0, vdi_chan_send(ch, (uint64_t)(int64_t)r));
	for (i = 0; i < r; i++) {
		CKEQ(0, vdi_chan_send(ch, (uint64_t)c[i].position));
		p->held_dev[p->nheld++] = dev;
	}
	return 0;
}

/* Complete the n oldest commands held, each on its own device's fd. */
static int peer_complete(struct peer *p, unsigned int n, uint32_t code)
{
	struct vdi_done d;
	unsigned int i;
	int r = 0;

	if (n > p->nheld)
		return -EINVAL;
	for (i = 0; i < n && r >= 0; i++) {
		d = (struct vdi_done){ .tag = p->held[i].tag,
				       .completion_code = code };
		r = vdi_complete(p->dev[p->held_dev[i]], &d, 1);
	}
	memmove(p->held, p->held + i, (p->nheld - i) * sizeof(p->held[0]));
	memmove(p->held_dev, p->held_dev + i,
		(p->nheld - i) * sizeof(p->held_dev[0]));
	p->nheld -= i;
	return r < 0 ? r : (int)i;
}

static int peer_main(struct vdi_chan *ch, void *arg)
{
	const struct peer_arg *a = arg;
	struct peer p = { .set = -1, .cookie = 1 };
	unsigned int dev, n;
	uint64_t op;
	uint32_t x;
	int r;

	r = a->server ? peer_server_setup(a, ch, &p) :
			peer_client_setup(a, ch, &p);
	if (r)
		return r;
	CKEQ(0, vdi_chan_send(ch, 0));			/* ready */
	for (;;) {
		CKEQ(0, vdi_chan_recv(ch, &op, 15000));
		dev = (op >> 48) & 0xff;
		n = (op >> 32) & 0xffff;
		x = (uint32_t)op;
		switch (op >> 56) {
		case P_SEND:
			r = peer_send(&p, dev, n, x);
			break;
		case P_WAIT:
			r = peer_wait(&p, ch, n, x);
			if (r)
				return r;
			continue;
		case P_CLOSE:
			r = vdi_close_device(p.dev[dev]);
			break;
		case P_TAKE:
			r = peer_take(&p, ch, dev, n, x);
			if (r)
				return r;
			continue;
		case P_COMPLETE:
			r = peer_complete(&p, n, x);
			break;
		case P_ABORT:
			r = vdi_abort(p.set);
			break;
		case P_EXIT:
			return 0;
		default:
			return 201;
		}
		CKEQ(0, vdi_chan_send(ch, (uint64_t)(int64_t)r));
	}
}

/* The test and its peer. */
struct pair {
	struct peer_arg a;
	struct vdi_proc peer;
	int set;
	int dev[VDI_SESS_MAXDEV];
};

/* Ask the peer to do one thing: its result, or a channel error - 1000. */
static int peer_do(struct pair *p, int op, unsigned int dev, unsigned int n,
		   uint32_t arg)
{
	uint64_t v;

	if (vdi_chan_send(&p->peer.ch, P_OP(op, dev, n, arg)))
		return -1000 - EPIPE;
	if (vdi_chan_recv(&p->peer.ch, &v, 15000))
		return -1000 - ETIMEDOUT;
	return (int)(int64_t)v;
}

/* The next value a P_WAIT or P_TAKE streams back after its count. */
static uint64_t peer_next(struct pair *p)
{
	uint64_t v = ~0ULL;

	vdi_chan_recv(&p->peer.ch, &v, 15000);
	return v;
}

struct pair_opts {
	unsigned int ndev;		/* default 1 */
	unsigned int nopen;		/* server devices opened: 0 = all */
	uint32_t depth;			/* default: the module's */
	uint32_t server_timeout;
};

static void pair_init(struct pair *p, const struct pair_opts *o, bool server)
{
	unsigned int i;

	memset(p, 0, sizeof(*p));
	p->set = -1;
	for (i = 0; i < VDI_SESS_MAXDEV; i++)
		p->dev[i] = -1;
	vdi_make_name(p->a.name, server ? "es" : "ec");
	p->a.ndev = o->ndev ? o->ndev : 1;
	p->a.nopen = o->nopen;
	p->a.depth = o->depth;
	p->a.server_timeout = o->server_timeout;
	p->a.server = !server;
}

/* The test is the client of a set whose server is the peer. */
static int pair_as_client(struct pair *p, const struct pair_opts *o)
{
	char dn[VDI_NAME_MAX];
	struct vdi_create c;
	unsigned int i;
	int r;

	pair_init(p, o, false);
	/* Fork first: the peer holds no fd of the test's role. */
	r = vdi_spawn(&p->peer, peer_main, &p->a);
	if (r)
		return r;
	vdi_create_init(&c, p->a.name, p->a.ndev, 0);
	c.config.server_timeout = o->server_timeout;
	p->set = vdi_create_cfg(&c);
	if (p->set < 0)
		return p->set;
	r = vdi_chan_send(&p->peer.ch, 1);
	if (r)
		return r;
	r = vdi_get_config(p->set, 10000, NULL);
	if (r)
		return r;
	for (i = 0; i < p->a.ndev; i++) {
		vdi_dev_name(dn, p->a.name, i);
		p->dev[i] = vdi_open_device(p->set, dn, 0, NULL);
		if (p->dev[i] < 0)
			return p->dev[i];
	}
	return vdi_chan_expect(&p->peer.ch, 0, 10000);
}

/* The test is the server of a set whose client is the peer. */
static int pair_as_server(struct pair *p, const struct pair_opts *o)
{
	unsigned int i, n;
	char dn[VDI_NAME_MAX];
	int r;

	pair_init(p, o, true);
	n = o->nopen ? o->nopen : p->a.ndev;
	r = vdi_spawn(&p->peer, peer_main, &p->a);
	if (r)
		return r;
	r = vdi_chan_expect(&p->peer.ch, 0, 10000);	/* created */
	if (r)
		return r;
	p->set = vdi_open_server(p->a.name);
	if (p->set < 0)
		return p->set;
	r = vdi_get_config(p->set, 0, NULL);
	if (!r)
		r = vdi_begin_config(p->set, VDI_VDF_WRITE_MEDIA |
				     VDI_VDF_READ_MEDIA, 0, 512, 65536,
				     o->depth);
	if (!r)
		r = vdi_end_config(p->set, 1 << 20);
	if (r)
		return r;
	for (i = 0; i < n; i++) {
		vdi_dev_name(dn, p->a.name, i);
		p->dev[i] = vdi_open_device(p->set, dn, 0, NULL);
		if (p->dev[i] < 0)
			return p->dev[i];
	}
	return vdi_chan_expect(&p->peer.ch, 0, 10000);	/* ready */
}

static void pair_close(struct pair *p)
{
	unsigned int i;

	if (p->peer.pid > 0 && !p->peer.reaped) {
		vdi_chan_send(&p->peer.ch, P_OP(P_EXIT, 0, 0, 0));
		vdi_reap(&p->peer, 5000);
	}
	vdi_proc_kill(&p->peer);
	for (i = 0; i < VDI_SESS_MAXDEV; i++)
		vdi_close(&p->dev[i]);
	vdi_close(&p->set);
}

/* ------------------------------------------------------------------ */
/* helpers                                                            */

/* One call: submit @nsub, reap up to @nreap; the struct as written back. */
static int enter(int fd, const void *submit, uint32_t nsub, void *reap,
		 uint32_t nreap, int64_t timeout_ms, uint32_t spin_us,
		 struct vdi_enter *out)
{
	struct vdi_enter e;
	int r;

	vdi_enter_init(&e, submit, nsub, reap, nreap, timeout_ms, spin_us);
	r = vdi_enter(fd, &e);
	if (out)
		*out = e;
	return r;
}

static struct vdi_done done_of(const struct vdi_command *c, uint32_t code)
{
	return (struct vdi_done){
		.tag = c->tag, .completion_code = code,
		.bytes_transferred = c->code == VDI_VDC_WRITE ? c->size : 0,
		.position = c->position,
	};
}

static struct vdi_send_to send_to(uint32_t dev, uint64_t cookie, uint32_t code)
{
	bool data = code == VDI_VDC_WRITE || code == VDI_VDC_READ;

	return (struct vdi_send_to){
		.send = { .cookie = cookie, .code = code,
			  .size = data ? 512 : 0, .position = (int64_t)cookie,
			  .buf_offset = data ? 0 : VDI_NO_BUFFER },
		.device_index = dev,
	};
}

/* The calling thread's CPU time, µs. */
static int64_t thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_signal(int sig)
{
	(void)sig;	/* only interrupts the current wait */
}

static void handle(int sig, bool restart)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* A thread making one ENTER call. */
struct enterer {
	pthread_t th;
	int fd;
	struct vdi_enter e;
	int ret;
	int64_t t0_us, t1_us;		/* wall clock around the call */
	int64_t cpu_us;			/* the thread's CPU time in it */
	int pipe[2];
	bool started;
};

static void *enterer_main(void *arg)
{
	struct enterer *w = arg;
	int64_t cpu0;
	char c = 1;

	cpu0 = thread_cpu_us();
	w->t0_us = vdi_now_us();
	w->ret = vdi_enter(w->fd, &w->e);
	w->t1_us = vdi_now_us();
	w->cpu_us = thread_cpu_us() - cpu0;
	if (write(w->pipe[1], &c, 1) != 1)
		w->ret = -EPIPE;
	return NULL;
}

static int enterer_start(struct enterer *w, int fd, const void *submit,
			 uint32_t nsub, void *reap, uint32_t nreap,
			 int64_t timeout_ms, uint32_t spin_us)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	vdi_enter_init(&w->e, submit, nsub, reap, nreap, timeout_ms, spin_us);
	if (pipe2(w->pipe, O_CLOEXEC))
		return -errno;
	if (pthread_create(&w->th, NULL, enterer_main, w))
		return -EAGAIN;
	w->started = true;
	return 0;
}

/* Has the call returned within @timeout_ms?  Joins the thread if so. */
static bool enterer_done(struct enterer *w, int timeout_ms)
{
	struct pollfd p = { .fd = w->pipe[0], .events = POLLIN };

	if (!w->started)
		return true;
	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	pthread_join(w->th, NULL);
	close(w->pipe[0]);
	close(w->pipe[1]);
	w->started = false;
	return true;
}

/* ------------------------------------------------------------------ */
/* the handshake                                                      */

TEST(version_reports_enter)
{
	struct vdi_version v;
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vdi_version(fd, &v));
	EXPECT_EQ(VDI_FEAT_ENTER, v.features & VDI_FEAT_ENTER);
	EXPECT_LE(3U, v.api_minor);
	EXPECT_EQ(10000, VDI_SPIN_MAX_US);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* one call per turn                                                  */

TEST(client_completes_and_takes_in_one_call)
{
	struct pair_opts o = { 0 };
	struct vdi_command cmd[4];
	struct vdi_done done[4];
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_client(&p, &o));
	ASSERT_EQ(3, peer_do(&p, P_SEND, 0, 3, T_VDC_FLUSH));
	/* Reap only. */
	ASSERT_EQ(2, enter(p.dev[0], NULL, 0, cmd, 2, E_LONG_MS, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(2U, e.reaped);
	EXPECT_EQ(1, cmd[0].position);
	EXPECT_EQ(2, cmd[1].position);
	/* Complete both and take the third in the same call. */
	done[0] = done_of(&cmd[0], 0);
	done[1] = done_of(&cmd[1], 0);
	ASSERT_EQ(1, enter(p.dev[0], done, 2, cmd, 4, E_LONG_MS, 50, &e));
	EXPECT_EQ(2U, e.submitted);
	EXPECT_EQ(1U, e.reaped);
	EXPECT_EQ(3, cmd[0].position);
	/* Submit only: returns 0, nothing reaped. */
	done[0] = done_of(&cmd[0], T_ERROR_DISK_FULL);
	ASSERT_EQ(0, enter(p.dev[0], done, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	/* Nothing at all: 0, both written. */
	ASSERT_EQ(0, enter(p.dev[0], NULL, 0, NULL, 0, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	/* The server got the three, in order, with their codes. */
	ASSERT_EQ(3, peer_do(&p, P_WAIT, 0, 3, E_LONG_MS));
	for (uint64_t i = 1; i <= 3; i++) {
		EXPECT_EQ(i, peer_next(&p));
		EXPECT_EQ((uint64_t)(i == 3 ? T_ERROR_DISK_FULL : 0) << 32,
			  peer_next(&p));
	}
	pair_close(&p);
}

TEST(agent_sends_and_reaps_in_one_call)
{
	struct pair_opts o = { .ndev = 2 };
	struct vdi_send_to snd[3];
	struct vdi_completion cpl[4];
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	snd[0] = send_to(1, 0x10, VDI_VDC_WRITE);
	snd[1] = send_to(0, 0x20, T_VDC_FLUSH);
	/* Send only. */
	ASSERT_EQ(0, enter(p.set, snd, 2, NULL, 0, 0, 0, &e));
	EXPECT_EQ(2U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 1, 1, E_LONG_MS));
	EXPECT_EQ(0x10U, peer_next(&p));
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 0, 1, E_LONG_MS));
	EXPECT_EQ(0x20U, peer_next(&p));
	ASSERT_EQ(2, peer_do(&p, P_COMPLETE, 0, 2, 0));
	/* Send one more and reap the two completions in the same call. */
	snd[2] = send_to(0, 0x30, T_VDC_FLUSH);
	ASSERT_EQ(2, enter(p.set, &snd[2], 1, cpl, 4, E_LONG_MS, 50, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(2U, e.reaped);
	EXPECT_EQ(0x10U, cpl[0].cookie);
	EXPECT_EQ(1U, cpl[0].device_index);
	EXPECT_EQ((uint32_t)VDI_VDC_WRITE, cpl[0].code);
	EXPECT_EQ(0x20U, cpl[1].cookie);
	EXPECT_EQ(0U, cpl[1].device_index);
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 0, 1, E_LONG_MS));
	EXPECT_EQ(0x30U, peer_next(&p));
	ASSERT_EQ(1, peer_do(&p, P_COMPLETE, 0, 1, 0));
	ASSERT_EQ(1, enter(p.set, NULL, 0, cpl, 4, E_LONG_MS, 0, &e));
	EXPECT_EQ(0x30U, cpl[0].cookie);
	pair_close(&p);
}

TEST_HARNESS_MAIN
