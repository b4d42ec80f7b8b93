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
	unsigned int signal_us;		/* SIGUSR1 to itself this long after
					 * it enters the call (0: none)
					 */
	int pipe[2];
	bool started;
};

/*
 * A timer that sends SIGUSR1 to the calling thread every @us: it fires on
 * the thread's own CPU, so it needs no other CPU to be running (a loaded
 * host may stall one vCPU), and one that comes before the call is
 * followed by another.  0, or -errno.
 */
static int signal_me_in(timer_t *t, unsigned int us)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID,
				.sigev_signo = SIGUSR1 };
	struct itimerspec its = { .it_value = { 0, us * 1000L },
				  .it_interval = { 0, us * 1000L } };

	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, t))
		return -errno;
	if (timer_settime(*t, 0, &its, NULL)) {
		timer_delete(*t);
		return -errno;
	}
	return 0;
}

static void *enterer_main(void *arg)
{
	struct enterer *w = arg;
	int64_t cpu0;
	char c = 1;

	timer_t t;

	if (w->signal_us && (w->ret = signal_me_in(&t, w->signal_us)))
		goto out;
	cpu0 = thread_cpu_us();
	__atomic_store_n(&w->t0_us, vdi_now_us(), __ATOMIC_RELEASE);
	w->ret = vdi_enter(w->fd, &w->e);
	w->t1_us = vdi_now_us();
	w->cpu_us = thread_cpu_us() - cpu0;
	if (w->signal_us)
		timer_delete(t);
out:
	if (write(w->pipe[1], &c, 1) != 1)
		w->ret = -EPIPE;
	return NULL;
}

static int enterer_start_signalled(struct enterer *w, unsigned int signal_us,
				   int fd, const void *submit, uint32_t nsub,
				   void *reap, uint32_t nreap,
				   int64_t timeout_ms, uint32_t spin_us)
{
	memset(w, 0, sizeof(*w));
	w->signal_us = signal_us;
	w->fd = fd;
	vdi_enter_init(&w->e, submit, nsub, reap, nreap, timeout_ms, spin_us);
	if (pipe2(w->pipe, O_CLOEXEC))
		return -errno;
	if (pthread_create(&w->th, NULL, enterer_main, w))
		return -EAGAIN;
	w->started = true;
	return 0;
}

static int enterer_start(struct enterer *w, int fd, const void *submit,
			 uint32_t nsub, void *reap, uint32_t nreap,
			 int64_t timeout_ms, uint32_t spin_us)
{
	return enterer_start_signalled(w, 0, fd, submit, nsub, reap, nreap,
				       timeout_ms, spin_us);
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

/* ------------------------------------------------------------------ */
/* the struct                                                         */

/* Every bad field: EINVAL, nothing written back (and nothing done). */
static void check_bad_structs(struct __test_metadata *_metadata, int fd,
			      const void *submit, void *reap)
{
	struct vdi_enter e;

	for (int i = 0; i < 14; i++) {
		vdi_enter_init(&e, submit, 1, reap, 1, 0, 0);
		switch (i) {
		case 0: e.flags = 1; break;
		case 1: e.flags = 1U << 31; break;
		case 2: e.reserved[0] = 1; break;
		case 3: e.reserved[1] = 1ULL << 63; break;
		case 4: e.submit_count = VDI_BATCH_MAX + 1; break;
		case 5: e.submit_count = UINT32_MAX; break;
		case 6: e.reap_count = VDI_BATCH_MAX + 1; break;
		case 7: e.reap_count = UINT32_MAX; break;
		case 8: e.spin_us = VDI_SPIN_MAX_US + 1; break;
		case 9: e.spin_us = UINT32_MAX; break;
		case 10: e.reap_count = 0; e.timeout_ms = 1; break;
		case 11: e.reap_count = 0; e.timeout_ms = -1; break;
		case 12: e.reap_count = 0; e.spin_us = 1; break;
		default: e.reap_count = 0; e.timeout_ms = INT64_MIN; break;
		}
		EXPECT_EQ(-EINVAL, vdi_enter(fd, &e)) TH_LOG("case %d", i);
		EXPECT_EQ(VDI_ENTER_UNWRITTEN, e.submitted) TH_LOG("case %d", i);
		EXPECT_EQ(VDI_ENTER_UNWRITTEN, e.reaped) TH_LOG("case %d", i);
	}
}

static struct vdi_command big_cmd[VDI_BATCH_MAX];
static struct vdi_completion big_cpl[VDI_BATCH_MAX];

TEST(client_bad_struct_is_einval_and_changes_nothing)
{
	struct pair_opts o = { 0 };
	struct vdi_command cmd;
	struct vdi_done done;
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_client(&p, &o));
	ASSERT_EQ(2, peer_do(&p, P_SEND, 0, 2, T_VDC_FLUSH));
	ASSERT_EQ(1, vdi_get(p.dev[0], &cmd, 1, E_LONG_MS));
	done = done_of(&cmd, 0);
	check_bad_structs(_metadata, p.dev[0], &done, big_cmd);
	/* The command is still held, the other still queued. */
	EXPECT_EQ(-ETIMEDOUT, peer_do(&p, P_WAIT, 0, 1, 0));
	/* The limits themselves are accepted. */
	ASSERT_EQ(1, enter(p.dev[0], &done, 1, big_cmd, VDI_BATCH_MAX, 0,
			   VDI_SPIN_MAX_US, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(1U, e.reaped);
	EXPECT_EQ(2, big_cmd[0].position);
	ASSERT_EQ(0, enter(p.dev[0], NULL, 0, NULL, 0, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(1, peer_do(&p, P_WAIT, 0, 1, E_LONG_MS));
	EXPECT_EQ(1U, peer_next(&p));
	EXPECT_EQ(0U, peer_next(&p));
	pair_close(&p);
}

TEST(agent_bad_struct_is_einval_and_changes_nothing)
{
	struct pair_opts o = { 0 };
	struct vdi_send_to snd = send_to(0, 7, T_VDC_FLUSH);
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	check_bad_structs(_metadata, p.set, &snd, big_cpl);
	/* Nothing was sent. */
	EXPECT_EQ(-ETIMEDOUT, peer_do(&p, P_TAKE, 0, 1, 0));
	/* The limits themselves are accepted. */
	ASSERT_EQ(-ETIMEDOUT, enter(p.set, &snd, 1, big_cpl, VDI_BATCH_MAX, 0,
				    VDI_SPIN_MAX_US, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 0, 1, E_LONG_MS));
	EXPECT_EQ(7U, peer_next(&p));
	pair_close(&p);
}

TEST(other_fds_are_enotty_or_eproto)
{
	struct vdi_sess_opts so = { .ndev = 2, .no_devices = true };
	int ep, sec, secdev, cdev, sdev[2], notty[3];
	struct vdi_command cmd;
	char dn[VDI_NAME_MAX];
	struct vdi_enter e;
	struct vdi_sess s;
	struct vdi_done d;

	ASSERT_EQ(0, vdi_sess_setup(&s, &so));
	ep = vdi_open();
	ASSERT_LE(0, ep);
	sec = vdi_open_secondary(s.name);
	ASSERT_LE(0, sec);
	cdev = vdi_open_device(s.cset, s.name, 0, NULL);
	ASSERT_LE(0, cdev);
	vdi_dev_name(dn, s.name, 1);
	secdev = vdi_open_device(sec, dn, 0, NULL);
	ASSERT_LE(0, secdev);
	sdev[0] = vdi_open_device(s.sset, s.name, 0, NULL);
	ASSERT_LE(0, sdev[0]);
	sdev[1] = vdi_open_device(s.sset, dn, 0, NULL);
	ASSERT_LE(0, sdev[1]);

	/* A client's set fds (primary, secondary), a server device fd. */
	notty[0] = s.cset;
	notty[1] = sec;
	notty[2] = sdev[0];
	for (int i = 0; i < 3; i++) {
		vdi_enter_init(&e, NULL, 0, &cmd, 1, 0, 0);
		EXPECT_EQ(-ENOTTY, vdi_enter(notty[i], &e)) TH_LOG("fd %d", i);
		EXPECT_EQ(VDI_ENTER_UNWRITTEN, e.submitted);
		EXPECT_EQ(VDI_ENTER_UNWRITTEN, e.reaped);
		/* Decided before the struct is read. */
		EXPECT_EQ(-ENOTTY, vdi_ioctl(notty[i], VDI_IOC_ENTER, NULL));
	}
	/* An endpoint without a role. */
	vdi_enter_init(&e, NULL, 0, &cmd, 1, 0, 0);
	EXPECT_EQ(-EPROTO, vdi_enter(ep, &e));
	EXPECT_EQ(VDI_ENTER_UNWRITTEN, e.reaped);
	EXPECT_EQ(-EPROTO, vdi_ioctl(ep, VDI_IOC_ENTER, NULL));
	/* A secondary's device fd is a client device fd like any. */
	ASSERT_EQ(1, vdi_send1(sdev[1], 9, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, enter(secdev, NULL, 0, &cmd, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ((uint32_t)T_VDC_FLUSH, cmd.code);
	d = done_of(&cmd, 0);
	ASSERT_EQ(-ETIMEDOUT, enter(secdev, &d, 1, &cmd, 1, 0, 0, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	EXPECT_EQ(-ETIMEDOUT, enter(cdev, NULL, 0, &cmd, 1, 0, 0, &e));
	close(sdev[0]);
	close(sdev[1]);
	close(secdev);
	close(cdev);
	close(sec);
	close(ep);
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* EFAULT                                                             */

/* @n entries of @size bytes whose entry @ok and later are in PROT_NONE. */
static void *straddling(size_t size, unsigned int ok)
{
	uint8_t *p = vdi_pages(2, PROT_READ | PROT_WRITE);

	if (!p || mprotect(p + VDI_PAGE, VDI_PAGE, PROT_NONE))
		return NULL;
	return p + VDI_PAGE - ok * size;
}

/* The struct cannot be read or written back: EFAULT, nothing done. */
static void check_struct_efault(struct __test_metadata *_metadata, int fd,
				const void *submit, void *reap)
{
	struct vdi_enter *ro = vdi_pages(1, PROT_READ | PROT_WRITE);
	uint8_t *tail = straddling(sizeof(struct vdi_enter), 1);
	void *none = vdi_pages(1, PROT_NONE);
	struct vdi_enter e;

	ASSERT_NE(NULL, ro);
	ASSERT_NE(NULL, tail);
	ASSERT_NE(NULL, none);
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_ENTER, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_ENTER, none));
	/* Its last 8 bytes in a PROT_NONE page. */
	vdi_enter_init(&e, submit, 1, reap, 1, 0, 0);
	memcpy(tail + 8, &e, sizeof(e) - 8);
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_ENTER, tail + 8));
	/* Readable, valid, but cannot be written back: refused before
	 * anything is done.
	 */
	vdi_enter_init(ro, submit, 1, reap, 1, 0, 0);
	ASSERT_EQ(0, mprotect(ro, VDI_PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_ENTER, ro));
	EXPECT_EQ(VDI_ENTER_UNWRITTEN, ro->submitted);
}

TEST(client_struct_efault_changes_nothing)
{
	struct pair_opts o = { 0 };
	struct vdi_command cmd;
	struct vdi_done done;
	struct pair p;

	ASSERT_EQ(0, pair_as_client(&p, &o));
	ASSERT_EQ(2, peer_do(&p, P_SEND, 0, 2, T_VDC_FLUSH));
	ASSERT_EQ(1, vdi_get(p.dev[0], &cmd, 1, E_LONG_MS));
	done = done_of(&cmd, 0);
	check_struct_efault(_metadata, p.dev[0], &done, &cmd);
	/* Not completed, not taken. */
	EXPECT_EQ(-ETIMEDOUT, peer_do(&p, P_WAIT, 0, 1, 0));
	ASSERT_EQ(1, vdi_get(p.dev[0], &cmd, 1, 0));
	EXPECT_EQ(2, cmd.position);
	pair_close(&p);
}

TEST(agent_struct_efault_changes_nothing)
{
	struct pair_opts o = { 0 };
	struct vdi_send_to snd = send_to(0, 5, T_VDC_FLUSH);
	struct vdi_completion cpl;
	struct pair p;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	check_struct_efault(_metadata, p.set, &snd, &cpl);
	EXPECT_EQ(-ETIMEDOUT, peer_do(&p, P_TAKE, 0, 1, 0));
	pair_close(&p);
}

TEST(client_entries_efault_lose_nothing)
{
	struct pair_opts o = { .depth = 64 };
	struct vdi_command cmd[40], *bad_cmd;
	struct vdi_done done[40], *bad_done;
	struct vdi_enter e;
	struct pair p;
	void *none = vdi_pages(1, PROT_NONE);
	int got;

	ASSERT_NE(NULL, none);
	bad_done = straddling(sizeof(*bad_done), 32);
	bad_cmd = straddling(sizeof(*bad_cmd), 32);
	ASSERT_NE(NULL, bad_done);
	ASSERT_NE(NULL, bad_cmd);
	ASSERT_EQ(0, pair_as_client(&p, &o));

	/* The submit array cannot be read: nothing submitted. */
	ASSERT_EQ(-EFAULT, enter(p.dev[0], NULL, 1, cmd, 1, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	/* Its second chunk cannot: the first 32 go in, and only they. */
	ASSERT_EQ(40, peer_do(&p, P_SEND, 0, 40, T_VDC_FLUSH));
	ASSERT_EQ(40, vdi_get(p.dev[0], cmd, 40, E_LONG_MS));
	for (int i = 0; i < 32; i++)
		bad_done[i] = done_of(&cmd[i], 0);
	ASSERT_EQ(-EFAULT, enter(p.dev[0], bad_done, 40, cmd, 1, E_LONG_MS, 0,
				 &e));
	EXPECT_EQ(32U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(32, peer_do(&p, P_WAIT, 0, 40, 300));
	for (int i = 0; i < 32; i++) {
		EXPECT_EQ((uint64_t)i + 1, peer_next(&p));
		peer_next(&p);
	}
	for (int i = 0; i < 8; i++)
		done[i] = done_of(&cmd[32 + i], 0);
	ASSERT_EQ(0, enter(p.dev[0], done, 8, NULL, 0, 0, 0, &e));
	EXPECT_EQ(8U, e.submitted);
	ASSERT_EQ(8, peer_do(&p, P_WAIT, 0, 8, E_LONG_MS));
	for (int i = 0; i < 16; i++)
		peer_next(&p);

	/* Taken but not copied out: queued again, in order. */
	ASSERT_EQ(2, peer_do(&p, P_SEND, 0, 2, T_VDC_FLUSH));	/* 41, 42 */
	ASSERT_EQ(-EFAULT, enter(p.dev[0], NULL, 0, none, 2, E_LONG_MS, 0,
				 &e));
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(2, enter(p.dev[0], NULL, 0, cmd, 2, E_LONG_MS, 0, &e));
	EXPECT_EQ(41, cmd[0].position);
	EXPECT_EQ(42, cmd[1].position);
	/* With a submit before it: the submit stays done. */
	ASSERT_EQ(1, peer_do(&p, P_SEND, 0, 1, T_VDC_FLUSH));	/* 43 */
	done[0] = done_of(&cmd[0], 0);
	done[1] = done_of(&cmd[1], 0);
	ASSERT_EQ(-EFAULT, enter(p.dev[0], done, 2, none, 1, E_LONG_MS, 0,
				 &e));
	EXPECT_EQ(2U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(2, peer_do(&p, P_WAIT, 0, 2, E_LONG_MS));
	EXPECT_EQ(41U, peer_next(&p));
	peer_next(&p);
	EXPECT_EQ(42U, peer_next(&p));
	peer_next(&p);
	/* A reap whose second chunk faults: the first chunk, as GET_COMMANDS. */
	ASSERT_EQ(39, peer_do(&p, P_SEND, 0, 39, T_VDC_FLUSH));	/* 44..82 */
	ASSERT_EQ(32, enter(p.dev[0], NULL, 0, bad_cmd, 40, E_LONG_MS, 0, &e));
	EXPECT_EQ(32U, e.reaped);
	EXPECT_EQ(43, bad_cmd[0].position);
	EXPECT_EQ(74, bad_cmd[31].position);
	got = enter(p.dev[0], NULL, 0, cmd, 40, E_LONG_MS, 0, &e);
	ASSERT_EQ(8, got);
	EXPECT_EQ(75, cmd[0].position);
	EXPECT_EQ(82, cmd[7].position);
	pair_close(&p);
}

TEST(agent_entries_efault_lose_nothing)
{
	struct pair_opts o = { .depth = 64 };
	struct vdi_send_to snd[40], *bad_snd;
	struct vdi_completion cpl[40], *bad_cpl;
	bool seen[41] = { false };
	struct vdi_enter e;
	struct pair p;
	void *none = vdi_pages(1, PROT_NONE);
	int r, n;

	ASSERT_NE(NULL, none);
	bad_snd = straddling(sizeof(*bad_snd), 32);
	bad_cpl = straddling(sizeof(*bad_cpl), 32);
	ASSERT_NE(NULL, bad_snd);
	ASSERT_NE(NULL, bad_cpl);
	ASSERT_EQ(0, pair_as_server(&p, &o));

	ASSERT_EQ(-EFAULT, enter(p.set, NULL, 1, cpl, 1, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	/* The second chunk faults: 32 sent, and only they. */
	for (int i = 0; i < 32; i++)
		bad_snd[i] = send_to(0, i + 1, T_VDC_FLUSH);
	ASSERT_EQ(-EFAULT, enter(p.set, bad_snd, 40, cpl, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(32U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(32, peer_do(&p, P_TAKE, 0, 40, 300));
	for (int i = 0; i < 32; i++)
		EXPECT_EQ((uint64_t)i + 1, peer_next(&p));
	for (int i = 0; i < 8; i++)
		snd[i] = send_to(0, 33 + i, T_VDC_FLUSH);
	ASSERT_EQ(0, enter(p.set, snd, 8, NULL, 0, 0, 0, &e));
	EXPECT_EQ(8U, e.submitted);
	ASSERT_EQ(8, peer_do(&p, P_TAKE, 0, 8, E_LONG_MS));
	for (int i = 0; i < 8; i++)
		peer_next(&p);
	ASSERT_EQ(40, peer_do(&p, P_COMPLETE, 0, 40, 0));

	/* Reaped but not copied out: back on the list. */
	ASSERT_EQ(-EFAULT, enter(p.set, NULL, 0, none, 2, E_LONG_MS, 0, &e));
	EXPECT_EQ(0U, e.reaped);
	/* A second chunk that faults: the first, as WAIT_COMPLETIONS. */
	ASSERT_EQ(32, enter(p.set, NULL, 0, bad_cpl, 40, E_LONG_MS, 0, &e));
	EXPECT_EQ(32U, e.reaped);
	for (int i = 0; i < 32; i++) {
		ASSERT_GE(40U, bad_cpl[i].cookie);
		EXPECT_FALSE(seen[bad_cpl[i].cookie]);
		seen[bad_cpl[i].cookie] = true;
	}
	for (n = 32; n < 40; n += r) {
		r = enter(p.set, NULL, 0, cpl, 40, E_LONG_MS, 0, &e);
		ASSERT_LT(0, r);
		for (int i = 0; i < r; i++) {
			ASSERT_GE(40U, cpl[i].cookie);
			EXPECT_FALSE(seen[cpl[i].cookie]);
			seen[cpl[i].cookie] = true;
		}
	}
	EXPECT_EQ(40, n);
	pair_close(&p);
}

/* ------------------------------------------------------------------ */
/* the submit's errnos                                                */

TEST(bad_completion_stops_the_submit_and_reaps_nothing)
{
	struct pair_opts o = { .ndev = 2 };
	struct vdi_command c[4], c1, extra;
	struct vdi_done d[3];
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_client(&p, &o));
	ASSERT_EQ(3, peer_do(&p, P_SEND, 0, 3, VDI_VDC_WRITE));	/* 1..3 */
	ASSERT_EQ(1, peer_do(&p, P_SEND, 1, 1, VDI_VDC_WRITE));	/* 4 */
	ASSERT_EQ(3, enter(p.dev[0], NULL, 0, c, 4, E_LONG_MS, 0, &e));
	ASSERT_EQ(1, enter(p.dev[1], NULL, 0, &c1, 1, E_LONG_MS, 0, &e));
	ASSERT_EQ(1, peer_do(&p, P_SEND, 0, 1, T_VDC_FLUSH));	/* 5 */

	/* The second names a command already completed: the first only. */
	d[0] = done_of(&c[0], 0);
	d[1] = done_of(&c[0], 0);
	d[2] = done_of(&c[2], 0);
	ASSERT_EQ(-ESTALE, enter(p.dev[0], d, 3, &extra, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	/* A forged tag, another device's tag on this device's fd. */
	d[0] = done_of(&c[1], 0);
	d[0].tag ^= 1ULL << 40;
	ASSERT_EQ(-ESTALE, enter(p.dev[0], d, 1, &extra, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	d[0] = done_of(&c1, 0);
	ASSERT_EQ(-ESTALE, enter(p.dev[0], d, 1, &extra, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	/* More bytes than the Write had. */
	d[0] = done_of(&c[1], 0);
	d[0].bytes_transferred = c[1].size + 1;
	ASSERT_EQ(-EINVAL, enter(p.dev[0], d, 1, &extra, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	/* Only the first went to the server. */
	ASSERT_EQ(1, peer_do(&p, P_WAIT, 0, 5, 300));
	EXPECT_EQ(1U, peer_next(&p));
	peer_next(&p);
	/* The rest is as it was: two held here, one there, one queued. */
	d[0] = done_of(&c[1], 0);
	d[1] = done_of(&c[2], 0);
	ASSERT_EQ(1, enter(p.dev[0], d, 2, &extra, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(2U, e.submitted);
	EXPECT_EQ(5, extra.position);
	d[0] = done_of(&c1, 0);
	ASSERT_EQ(0, enter(p.dev[1], d, 1, NULL, 0, 0, 0, &e));
	d[0] = done_of(&extra, 0);
	ASSERT_EQ(0, enter(p.dev[0], d, 1, NULL, 0, 0, 0, &e));
	ASSERT_EQ(4, peer_do(&p, P_WAIT, 0, 4, E_LONG_MS));
	pair_close(&p);
}

TEST(send_errors_are_those_of_send)
{
	/* Three devices, the server opened two; two slots each. */
	struct pair_opts o = { .ndev = 3, .nopen = 2, .depth = 2 };
	struct vdi_send_to snd[4];
	struct vdi_completion cpl[8];
	struct vdi_enter e;
	struct pair p;
	int r, n;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	/* EINVAL: the index, the reserved field, the command's checks. */
	snd[0] = send_to(3, 1, T_VDC_FLUSH);
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	snd[0] = send_to(UINT32_MAX, 1, T_VDC_FLUSH);
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	snd[0] = send_to(0, 1, T_VDC_FLUSH);
	snd[0].reserved = 1;
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	snd[0] = send_to(0, 1, 0);
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	snd[0] = send_to(0, 1, VDI_VDC_MAX + 1);
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	snd[0] = send_to(0, 1, VDI_VDC_WRITE);
	snd[0].send.buf_offset = (1 << 20) - 511;
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(-EINVAL, vdi_send(p.dev[0], &snd[0].send, 1));
	snd[0].send.size = 65536 + 512;
	snd[0].send.buf_offset = 0;
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	/* EPROTO: a device the server has not opened. */
	snd[0] = send_to(2, 1, T_VDC_FLUSH);
	EXPECT_EQ(-EPROTO, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	/* ENOBUFS: the third on a device of depth 2, as SEND says. */
	for (int i = 0; i < 3; i++)
		snd[i] = send_to(0, 10 + i, T_VDC_FLUSH);
	EXPECT_EQ(-ENOBUFS, enter(p.set, snd, 3, cpl, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(2U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	EXPECT_EQ(-ENOBUFS, vdi_send1(p.dev[0], 99, T_VDC_FLUSH, 0, 0,
				      VDI_NO_BUFFER));
	/* Several devices, stopped by the bad one in the middle. */
	snd[0] = send_to(1, 20, T_VDC_FLUSH);
	snd[1] = send_to(3, 21, T_VDC_FLUSH);
	snd[2] = send_to(1, 22, T_VDC_FLUSH);
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 3, NULL, 0, 0, 0, &e));
	EXPECT_EQ(1U, e.submitted);
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 1, 2, 300));
	EXPECT_EQ(20U, peer_next(&p));
	/* EIO: device 1 in IO-ERROR takes only ClearError. */
	ASSERT_EQ(1, peer_do(&p, P_COMPLETE, 0, 1, T_ERROR_DISK_FULL));
	snd[0] = send_to(1, 23, T_VDC_FLUSH);
	EXPECT_EQ(-EIO, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(-EIO, vdi_send1(p.dev[1], 99, T_VDC_FLUSH, 0, 0,
				  VDI_NO_BUFFER));
	snd[0] = send_to(1, 24, VDI_VDC_CLEAR_ERROR);
	EXPECT_EQ(0, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(1U, e.submitted);
	/* EPROTO: a device the server closed. */
	ASSERT_EQ(0, vdi_close_device(p.dev[0]));
	snd[0] = send_to(0, 25, T_VDC_FLUSH);
	EXPECT_EQ(-EPROTO, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(-EPROTO, vdi_send1(p.dev[0], 99, T_VDC_FLUSH, 0, 0,
				     VDI_NO_BUFFER));
	/* ECONNABORTED once the client aborted; the reap hands out what the
	 * abort ended, then says so too.
	 */
	ASSERT_EQ(0, peer_do(&p, P_ABORT, 0, 0, 0));
	snd[0] = send_to(1, 26, T_VDC_FLUSH);
	EXPECT_EQ(-ECONNABORTED, enter(p.set, snd, 1, cpl, 8, E_LONG_MS, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	for (n = 0; n < 10; n++) {
		r = enter(p.set, NULL, 0, cpl, 8, E_LONG_MS, 0, &e);
		if (r < 0)
			break;
	}
	EXPECT_EQ(-ECONNABORTED, r);
	EXPECT_GT(10, n);
	pair_close(&p);
}

/* ------------------------------------------------------------------ */
/* the reap's errnos                                                  */

/* Timeouts: 0 polls, a timeout is kept, the spin does not outlast it. */
static void check_timeouts(struct __test_metadata *_metadata, int fd,
			   void *reap)
{
	struct vdi_enter e;
	int64_t t0;

	t0 = vdi_now_us();
	EXPECT_EQ(-ETIMEDOUT, enter(fd, NULL, 0, reap, 1, 0, VDI_SPIN_MAX_US,
				    &e));
	EXPECT_GT(VDI_PROMPT_MS * 1000, vdi_now_us() - t0);
	EXPECT_EQ(0U, e.reaped);
	EXPECT_EQ(0U, e.submitted);
	t0 = vdi_now_us();
	EXPECT_EQ(-ETIMEDOUT, enter(fd, NULL, 0, reap, 1, 100, 0, &e));
	EXPECT_LE(100000, vdi_now_us() - t0);
	t0 = vdi_now_us();
	EXPECT_EQ(-ETIMEDOUT, enter(fd, NULL, 0, reap, 1, 20, VDI_SPIN_MAX_US,
				    &e));
	EXPECT_LE(20000, vdi_now_us() - t0);
}

TEST(reap_times_out_on_both_sides)
{
	struct pair_opts o = { 0 };
	struct vdi_send_to snd = send_to(0, 3, T_VDC_FLUSH);
	struct vdi_completion cpl;
	struct vdi_command cmd;
	struct vdi_done d;
	struct vdi_enter e;
	struct pair c, s;

	ASSERT_EQ(0, pair_as_client(&c, &o));
	check_timeouts(_metadata, c.dev[0], &cmd);
	/* A submit, then the timeout. */
	ASSERT_EQ(1, peer_do(&c, P_SEND, 0, 1, T_VDC_FLUSH));
	ASSERT_EQ(1, enter(c.dev[0], NULL, 0, &cmd, 1, E_LONG_MS, 0, &e));
	d = done_of(&cmd, 0);
	EXPECT_EQ(-ETIMEDOUT, enter(c.dev[0], &d, 1, &cmd, 1, 50, 50, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	pair_close(&c);

	ASSERT_EQ(0, pair_as_server(&s, &o));
	check_timeouts(_metadata, s.set, &cpl);
	EXPECT_EQ(-ETIMEDOUT, enter(s.set, &snd, 1, &cpl, 1, 50, 50, &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	pair_close(&s);
}

TEST(client_reap_ends_with_eshutdown)
{
	struct pair_opts o = { 0 };
	struct vdi_command cmd, more;
	struct enterer w;
	struct vdi_done d;
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_client(&p, &o));
	ASSERT_EQ(1, peer_do(&p, P_SEND, 0, 1, T_VDC_FLUSH));
	ASSERT_EQ(1, enter(p.dev[0], NULL, 0, &cmd, 1, E_LONG_MS, 0, &e));
	/* A reap waiting when the server closes the device wakes. */
	ASSERT_EQ(0, enterer_start(&w, p.dev[0], NULL, 0, &more, 1, E_LONG_MS,
				   50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	ASSERT_EQ(0, peer_do(&p, P_CLOSE, 0, 0, 0));
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(-ESHUTDOWN, w.ret);
	EXPECT_GT(E_LONG_MS * 1000 / 2, w.t1_us - w.t0_us);
	/* The last completion goes in; the reap says the device ended. */
	d = done_of(&cmd, 0);
	EXPECT_EQ(-ESHUTDOWN, enter(p.dev[0], &d, 1, &more, 1, E_LONG_MS, 0,
				    &e));
	EXPECT_EQ(1U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(1, peer_do(&p, P_WAIT, 0, 1, E_LONG_MS));
	EXPECT_EQ(1U, peer_next(&p));
	pair_close(&p);
}

TEST(agent_reap_ends_with_eshutdown)
{
	struct pair_opts o = { 0 };
	struct vdi_send_to snd = send_to(0, 8, T_VDC_FLUSH);
	struct vdi_completion cpl;
	struct enterer w;
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	ASSERT_EQ(0, enter(p.set, &snd, 1, NULL, 0, 0, 0, &e));
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 0, 1, E_LONG_MS));
	peer_next(&p);
	ASSERT_EQ(1, peer_do(&p, P_COMPLETE, 0, 1, 0));
	ASSERT_EQ(1, enter(p.set, NULL, 0, &cpl, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(8U, cpl.cookie);
	/* An agent waiting with nothing in flight wakes at the end. */
	ASSERT_EQ(0, enterer_start(&w, p.set, NULL, 0, &cpl, 1, E_LONG_MS, 50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	ASSERT_EQ(0, vdi_close_device(p.dev[0]));
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(-ESHUTDOWN, w.ret);
	EXPECT_GT(E_LONG_MS * 1000 / 2, w.t1_us - w.t0_us);
	EXPECT_EQ(-ESHUTDOWN, enter(p.set, NULL, 0, &cpl, 1, E_LONG_MS, 0, &e));
	/* A send after the end: the device is closed. */
	EXPECT_EQ(-EPROTO, enter(p.set, &snd, 1, &cpl, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	pair_close(&p);
}

TEST(client_calls_after_an_abort_are_econnaborted)
{
	struct pair_opts o = { 0 };
	struct vdi_command cmd[2], more;
	struct enterer w;
	struct vdi_done d;
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_client(&p, &o));
	ASSERT_EQ(2, peer_do(&p, P_SEND, 0, 2, T_VDC_FLUSH));
	ASSERT_EQ(2, enter(p.dev[0], NULL, 0, cmd, 2, E_LONG_MS, 0, &e));
	/* A spinning, then sleeping reap wakes at the abort. */
	ASSERT_EQ(0, enterer_start(&w, p.dev[0], NULL, 0, &more, 1, E_LONG_MS,
				   VDI_SPIN_MAX_US));
	vdi_sleep_ms(E_IN_WAIT_MS);
	ASSERT_EQ(0, peer_do(&p, P_ABORT, 0, 0, 0));
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(-ECONNABORTED, w.ret);
	EXPECT_EQ(0U, w.e.reaped);
	/* The submit too: the abort ended the commands. */
	d = done_of(&cmd[0], 0);
	EXPECT_EQ(-ECONNABORTED, enter(p.dev[0], &d, 1, &more, 1, E_LONG_MS, 0,
				       &e));
	EXPECT_EQ(0U, e.submitted);
	EXPECT_EQ(-ECONNABORTED, enter(p.dev[0], NULL, 0, &more, 1, 0, 0, &e));
	/* The agent got both, ended by the abort. */
	ASSERT_EQ(2, peer_do(&p, P_WAIT, 0, 2, E_LONG_MS));
	for (int i = 0; i < 2; i++) {
		peer_next(&p);
		EXPECT_EQ((uint64_t)VDI_ERROR_OPERATION_ABORTED << 32,
			  peer_next(&p));
	}
	pair_close(&p);
}

TEST(agent_after_an_abort_reaps_the_ended_then_econnaborted)
{
	struct pair_opts o = { 0 };
	struct vdi_send_to snd[2] = { send_to(0, 1, T_VDC_FLUSH),
				      send_to(0, 2, T_VDC_FLUSH) };
	struct vdi_completion cpl[4];
	struct enterer w;
	struct vdi_enter e;
	struct pair p;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	ASSERT_EQ(0, enterer_start(&w, p.set, snd, 2, cpl, 4, E_LONG_MS,
				   VDI_SPIN_MAX_US));
	/* The client holds one, the other stays queued; then it aborts. */
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 0, 1, E_LONG_MS));
	EXPECT_EQ(1U, peer_next(&p));
	ASSERT_EQ(0, peer_do(&p, P_ABORT, 0, 0, 0));
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	ASSERT_LE(1, w.ret);
	EXPECT_EQ(2U, w.e.submitted);
	EXPECT_EQ((uint32_t)w.ret, w.e.reaped);
	if (w.ret == 1)
		ASSERT_EQ(1, enter(p.set, NULL, 0, &cpl[1], 1, E_LONG_MS, 0, &e));
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ((uint64_t)i + 1, cpl[i].cookie);
		EXPECT_EQ((uint32_t)VDI_ERROR_OPERATION_ABORTED,
			  cpl[i].completion_code);
	}
	EXPECT_EQ(-ECONNABORTED, enter(p.set, NULL, 0, cpl, 4, E_LONG_MS, 0, &e));
	EXPECT_EQ(-ECONNABORTED, enter(p.set, snd, 1, NULL, 0, 0, 0, &e));
	EXPECT_EQ(0U, e.submitted);
	pair_close(&p);
}

TEST(agent_reap_runs_the_watchdog)
{
	struct pair_opts o = { .server_timeout = 100 };
	struct vdi_send_to snd = send_to(0, 6, T_VDC_FLUSH);
	struct vdi_set_stats st;
	struct vdi_stats_req req;
	struct vdi_completion cpl;
	struct vdi_enter e;
	struct pair p;
	int64_t t0;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	/* Sent, taken, never completed: two server timeouts later the
	 * agent's own wait aborts the set, spin or not.
	 */
	t0 = vdi_now_us();
	ASSERT_EQ(0, enter(p.set, &snd, 1, NULL, 0, 0, 0, &e));
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 0, 1, E_LONG_MS));
	peer_next(&p);
	ASSERT_EQ(1, enter(p.set, NULL, 0, &cpl, 1, E_LONG_MS, VDI_SPIN_MAX_US,
			   &e));
	EXPECT_LE(190000, vdi_now_us() - t0);
	EXPECT_GT(E_LONG_MS * 1000 / 2, vdi_now_us() - t0);
	EXPECT_EQ(6U, cpl.cookie);
	EXPECT_EQ((uint32_t)VDI_ERROR_OPERATION_ABORTED, cpl.completion_code);
	EXPECT_EQ(-ECONNABORTED, enter(p.set, NULL, 0, &cpl, 1, 0, 0, &e));
	memset(&req, 0, sizeof(req));
	req.set = (uintptr_t)&st;
	req.set_size = sizeof(st);
	req.dev_size = sizeof(struct vdi_dev_stats);
	ASSERT_EQ(0, vdi_ioctl(p.set, VDI_IOC_SET_STATS, &req));
	EXPECT_EQ((uint32_t)VDI_ABORT_WATCHDOG, st.abort_reason);
	pair_close(&p);
}

TEST(close_of_the_fd_ends_the_wait_with_ebadf)
{
	struct pair_opts o = { 0 };
	struct vdi_completion cpl;
	struct vdi_command cmd;
	struct enterer w;
	struct pair c, s;

	ASSERT_EQ(0, pair_as_client(&c, &o));
	ASSERT_EQ(0, enterer_start(&w, c.dev[0], NULL, 0, &cmd, 1, E_LONG_MS,
				   50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	vdi_close(&c.dev[0]);
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(-EBADF, w.ret);
	EXPECT_GT(E_LONG_MS * 1000 / 2, w.t1_us - w.t0_us);
	pair_close(&c);

	ASSERT_EQ(0, pair_as_server(&s, &o));
	ASSERT_EQ(0, enterer_start(&w, s.set, NULL, 0, &cpl, 1, E_LONG_MS, 50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	vdi_close(&s.set);
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(-EBADF, w.ret);
	EXPECT_GT(E_LONG_MS * 1000 / 2, w.t1_us - w.t0_us);
	pair_close(&s);
}

/* ------------------------------------------------------------------ */
/* signals                                                            */

/* A handled signal ends a wait: EINTR. */
static void check_eintr(struct __test_metadata *_metadata, int fd, void *reap,
			int64_t timeout_ms)
{
	struct enterer w;

	ASSERT_EQ(0, enterer_start(&w, fd, NULL, 0, reap, 1, timeout_ms, 50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	pthread_kill(w.th, SIGUSR1);
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(-EINTR, w.ret);
	EXPECT_EQ(0U, w.e.reaped);
	EXPECT_GT(E_LONG_MS * 1000 / 2, w.t1_us - w.t0_us);
}

TEST(a_handled_signal_ends_the_wait_with_eintr)
{
	struct pair_opts o = { 0 };
	struct vdi_completion cpl;
	struct vdi_command cmd;
	struct pair c, s;

	handle(SIGUSR1, false);
	ASSERT_EQ(0, pair_as_client(&c, &o));
	check_eintr(_metadata, c.dev[0], &cmd, E_LONG_MS);
	check_eintr(_metadata, c.dev[0], &cmd, -1);
	pair_close(&c);
	ASSERT_EQ(0, pair_as_server(&s, &o));
	check_eintr(_metadata, s.set, &cpl, E_LONG_MS);
	check_eintr(_metadata, s.set, &cpl, -1);
	pair_close(&s);
}

TEST(a_wait_after_a_submit_is_never_restarted)
{
	struct pair_opts o = { 0 };
	struct vdi_send_to snd = send_to(0, 4, T_VDC_FLUSH);
	struct vdi_completion cpl;
	struct vdi_command cmd, more;
	struct enterer w;
	struct vdi_done d;
	struct vdi_enter e;
	struct pair c, s;

	/* SA_RESTART: the older ioctls' infinite waits restart. */
	handle(SIGUSR1, true);
	ASSERT_EQ(0, pair_as_client(&c, &o));
	ASSERT_EQ(1, peer_do(&c, P_SEND, 0, 1, T_VDC_FLUSH));
	ASSERT_EQ(1, enter(c.dev[0], NULL, 0, &cmd, 1, E_LONG_MS, 0, &e));
	d = done_of(&cmd, 0);
	ASSERT_EQ(0, enterer_start(&w, c.dev[0], &d, 1, &more, 1, -1, 50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	pthread_kill(w.th, SIGUSR1);
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	/* Restarted, it would have found the tag stale (ESTALE). */
	EXPECT_EQ(-EINTR, w.ret);
	EXPECT_EQ(1U, w.e.submitted);
	ASSERT_EQ(1, peer_do(&c, P_WAIT, 0, 2, 300));
	EXPECT_EQ(1U, peer_next(&c));
	peer_next(&c);
	/* Nothing submitted: restarted, it waits on and takes what comes. */
	ASSERT_EQ(0, enterer_start(&w, c.dev[0], NULL, 0, &more, 1, -1, 50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	pthread_kill(w.th, SIGUSR1);
	EXPECT_FALSE(enterer_done(&w, 2 * E_IN_WAIT_MS));
	ASSERT_EQ(1, peer_do(&c, P_SEND, 0, 1, T_VDC_FLUSH));
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(1, w.ret);
	EXPECT_EQ(2, more.position);
	pair_close(&c);

	/* The agent: restarted, it would have sent the command twice. */
	ASSERT_EQ(0, pair_as_server(&s, &o));
	ASSERT_EQ(0, enterer_start(&w, s.set, &snd, 1, &cpl, 1, -1, 50));
	vdi_sleep_ms(E_IN_WAIT_MS);
	pthread_kill(w.th, SIGUSR1);
	ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
	EXPECT_EQ(-EINTR, w.ret);
	EXPECT_EQ(1U, w.e.submitted);
	ASSERT_EQ(1, peer_do(&s, P_TAKE, 0, 2, 300));
	EXPECT_EQ(4U, peer_next(&s));
	pair_close(&s);
}

/* ------------------------------------------------------------------ */
/* the spin                                                           */

/*
 * With nothing coming, a call spins for spin_us of CPU time and then
 * sleeps: CLOCK_THREAD_CPUTIME_ID sees the spin, not the sleep.
 */
static void check_spin_cpu(struct __test_metadata *_metadata, int fd,
			   void *reap)
{
	int64_t least[2] = { INT64_MAX, INT64_MAX }, most = 0;
	struct enterer w;

	/*
	 * A loaded host that stalls the VM's CPU adds to a thread's CPU time
	 * (the guest cannot tell): the least of three tries for the upper
	 * bounds, the most for the lower one.
	 */
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, enterer_start(&w, fd, NULL, 0, reap, 1, 100, 0));
		ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
		EXPECT_EQ(-ETIMEDOUT, w.ret);
		least[0] = w.cpu_us < least[0] ? w.cpu_us : least[0];
		ASSERT_EQ(0, enterer_start(&w, fd, NULL, 0, reap, 1, 200,
					   VDI_SPIN_MAX_US));
		ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
		EXPECT_EQ(-ETIMEDOUT, w.ret);
		EXPECT_LE(200000, w.t1_us - w.t0_us);
		least[1] = w.cpu_us < least[1] ? w.cpu_us : least[1];
		most = w.cpu_us > most ? w.cpu_us : most;
	}
	EXPECT_GT(3000, least[0]) TH_LOG("no spin: %lld us of CPU",
					 (long long)least[0]);
	EXPECT_LE(VDI_SPIN_MAX_US * 6 / 10, most)
		TH_LOG("10 ms spin: %lld us of CPU", (long long)most);
	/* ...and then it slept: far less than the 200 ms of the call. */
	EXPECT_GT(60000, least[1]) TH_LOG("10 ms spin: %lld us of CPU",
					  (long long)least[1]);
}

TEST(spin_burns_spin_us_then_sleeps)
{
	struct pair_opts o = { 0 };
	struct vdi_completion cpl;
	struct vdi_command cmd;
	struct vdi_send_to snd = send_to(0, 1, T_VDC_FLUSH);
	struct vdi_enter e;
	struct pair c, s;

	ASSERT_EQ(0, pair_as_client(&c, &o));
	check_spin_cpu(_metadata, c.dev[0], &cmd);
	pair_close(&c);
	ASSERT_EQ(0, pair_as_server(&s, &o));
	/* In flight, so the set is not at its end. */
	ASSERT_EQ(0, enter(s.set, &snd, 1, NULL, 0, 0, 0, &e));
	check_spin_cpu(_metadata, s.set, &cpl);
	pair_close(&s);
}

TEST(spin_takes_what_arrives_meanwhile)
{
	struct pair_opts o = { 0 };
	struct vdi_send_to snd = send_to(0, 2, T_VDC_FLUSH);
	struct vdi_completion cpl;
	struct vdi_command cmd;
	struct enterer w;
	struct pair c, s;

	ASSERT_EQ(0, pair_as_client(&c, &o));
	for (int i = 1; i <= 5; i++) {
		ASSERT_EQ(0, enterer_start(&w, c.dev[0], NULL, 0, &cmd, 1,
					   E_LONG_MS, VDI_SPIN_MAX_US));
		ASSERT_EQ(1, peer_do(&c, P_SEND, 0, 1, T_VDC_FLUSH));
		ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
		EXPECT_EQ(1, w.ret);
		EXPECT_EQ(i, cmd.position);
	}
	pair_close(&c);
	ASSERT_EQ(0, pair_as_server(&s, &o));
	for (int i = 1; i <= 5; i++) {
		ASSERT_EQ(0, enterer_start(&w, s.set, &snd, 1, &cpl, 1,
					   E_LONG_MS, VDI_SPIN_MAX_US));
		ASSERT_EQ(1, peer_do(&s, P_TAKE, 0, 1, E_LONG_MS));
		peer_next(&s);
		ASSERT_EQ(1, peer_do(&s, P_COMPLETE, 0, 1, 0));
		ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
		EXPECT_EQ(1, w.ret);
		EXPECT_EQ(2U, cpl.cookie);
	}
	pair_close(&s);
}

TEST(spin_stops_on_a_signal)
{
	int64_t least = INT64_MAX, full = 0;
	struct pair_opts o = { 0 };
	struct vdi_command cmd;
	struct enterer w;
	struct pair c;

	handle(SIGUSR1, false);
	ASSERT_EQ(0, pair_as_client(&c, &o));
	/*
	 * A 10 ms spin that nothing ends costs about 10 ms of CPU (plus what
	 * a call costs on this kernel); with a signal at most 1 ms into it,
	 * the call returns at once, having used at least half the spin less.
	 * Of five tries, the most a spin cost (another task wanting the CPU
	 * ends one early) and the least the signalled call cost (the host
	 * may stall the VM).
	 */
	for (int i = 0; i < 5; i++) {
		ASSERT_EQ(0, enterer_start(&w, c.dev[0], NULL, 0, &cmd, 1, 30,
					   VDI_SPIN_MAX_US));
		ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
		EXPECT_EQ(-ETIMEDOUT, w.ret);
		full = w.cpu_us > full ? w.cpu_us : full;
		ASSERT_EQ(0, enterer_start_signalled(&w, 1000, c.dev[0], NULL,
						     0, &cmd, 1, E_LONG_MS,
						     VDI_SPIN_MAX_US));
		ASSERT_TRUE(enterer_done(&w, E_LONG_MS));
		EXPECT_EQ(-EINTR, w.ret);
		least = w.cpu_us < least ? w.cpu_us : least;
	}
	EXPECT_GT(full - VDI_SPIN_MAX_US / 2, least)
		TH_LOG("%lld us of CPU with a signal, %lld without",
		       (long long)least, (long long)full);
	pair_close(&c);
}

/* ------------------------------------------------------------------ */
/* several devices                                                    */

TEST(sends_to_several_devices_in_one_call)
{
	struct pair_opts o = { .ndev = 4, .depth = 8 };
	struct vdi_send_to snd[16];
	struct vdi_completion cpl[16];
	bool seen[16] = { false };
	struct vdi_enter e;
	struct pair p;
	int r, n;

	ASSERT_EQ(0, pair_as_server(&p, &o));
	for (int i = 0; i < 16; i++)
		snd[i] = send_to(i % 4, 100 + i, T_VDC_FLUSH);
	ASSERT_EQ(0, enter(p.set, snd, 16, NULL, 0, 0, 0, &e));
	EXPECT_EQ(16U, e.submitted);
	/* Each device got its four, in the order of the call. */
	for (unsigned int d = 0; d < 4; d++) {
		ASSERT_EQ(4, peer_do(&p, P_TAKE, d, 8, E_LONG_MS));
		for (unsigned int k = 0; k < 4; k++)
			EXPECT_EQ(100 + d + 4 * k, peer_next(&p));
	}
	ASSERT_EQ(16, peer_do(&p, P_COMPLETE, 0, 16, 0));
	for (n = 0; n < 16; n += r) {
		r = enter(p.set, NULL, 0, cpl, 16, E_LONG_MS, 50, &e);
		ASSERT_LT(0, r);
		for (int i = 0; i < r; i++) {
			unsigned int k = cpl[i].cookie - 100;

			ASSERT_GT(16U, k);
			EXPECT_FALSE(seen[k]);
			seen[k] = true;
			EXPECT_EQ(k % 4, cpl[i].device_index);
		}
	}
	/* A bad entry in the middle: those before it went, no other. */
	snd[0] = send_to(0, 200, T_VDC_FLUSH);
	snd[1] = send_to(1, 201, T_VDC_FLUSH);
	snd[2] = send_to(4, 202, T_VDC_FLUSH);
	snd[3] = send_to(2, 203, T_VDC_FLUSH);
	EXPECT_EQ(-EINVAL, enter(p.set, snd, 4, cpl, 1, E_LONG_MS, 0, &e));
	EXPECT_EQ(2U, e.submitted);
	EXPECT_EQ(0U, e.reaped);
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 0, 2, 300));
	EXPECT_EQ(200U, peer_next(&p));
	ASSERT_EQ(1, peer_do(&p, P_TAKE, 1, 2, 300));
	EXPECT_EQ(201U, peer_next(&p));
	EXPECT_EQ(-ETIMEDOUT, peer_do(&p, P_TAKE, 2, 1, 0));
	pair_close(&p);
}

/* ------------------------------------------------------------------ */
/* a stream between two processes                                     */

enum flow_mode {
	F_ENTER,		/* one ENTER per turn, spin_us in the kernel */
	F_OLD,			/* SEND / COMPLETE, then GET / WAIT polled with
				 * timeout 0 for up to spin_us, then a wait:
				 * what a library did before ENTER
				 */
};

#define F_SERVER	0
#define F_CLIENT	1
#define F_MAX_DEPTH	64

struct flow {
	char name[VDI_NAME_MAX];
	enum flow_mode mode;
	uint32_t depth;			/* commands kept in flight */
	uint32_t batch;			/* reap up to this many a call */
	uint32_t spin_us;
	uint32_t n;			/* commands in all */
	/* out, per side */
	uint64_t calls[2];		/* ioctls from the first send to the end */
	uint64_t multi[2];		/* ENTER calls that reaped more than one */
	int64_t cpu_us[2];		/* the process's CPU time over that */
	int64_t csw[2];			/* its context switches over that */
	int64_t wall_us;		/* server: first send to last completion */
	struct vdi_dev_stats dev;	/* server: the figures before the end */
	int stats_ret;
};

/* The process's user + system time, µs; *csw its context switches. */
static int64_t proc_cpu_us(int64_t *csw)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*csw = ru.ru_nvcsw + ru.ru_nivcsw;
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}


/* F_OLD's wait: poll with timeout 0 for up to spin_us, then sleep. */
static int flow_poll(struct flow *f, int side, int fd, unsigned long req,
		     void *out)
{
	int64_t end = vdi_now_us() + f->spin_us;
	int r;

	if (f->spin_us) {
		do {
			f->calls[side]++;
			r = vdi_batch(fd, req, out, f->batch, 0);
		} while (r == -ETIMEDOUT && vdi_now_us() < end);
		if (r != -ETIMEDOUT)
			return r;
	}
	f->calls[side]++;
	return vdi_batch(fd, req, out, f->batch, E_LONG_MS);
}

/* The engine: keep depth Writes in flight until n completed, then end. */
static int flow_server(struct vdi_chan *ch, void *arg)
{
	struct flow *f = arg;
	struct vdi_send_to snd[F_MAX_DEPTH];
	struct vdi_send s[F_MAX_DEPTH];
	struct vdi_completion cpl[F_MAX_DEPTH];
	uint32_t sent = 0, reaped = 0, nsub, i;
	struct vdi_stats_req req;
	struct vdi_set_stats st;
	struct vdi_enter e;
	int set, dev, r;
	int64_t t0, cpu0, csw0;

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	set = vdi_open_server(f->name);
	CK(set >= 0);
	CKEQ(0, vdi_begin_config(set, VDI_VDF_WRITE_MEDIA, 0, 512, 65536,
				 f->depth));
	CKEQ(0, vdi_end_config(set, 1 << 20));
	dev = vdi_open_device(set, f->name, 0, NULL);
	CK(dev >= 0);
	CKEQ(0, vdi_chan_expect(ch, 2, 10000));		/* the client is ready */
	t0 = vdi_now_us();
	cpu0 = proc_cpu_us(&csw0);
	while (reaped < f->n) {
		nsub = f->depth - (sent - reaped);
		if (nsub > f->n - sent)
			nsub = f->n - sent;
		for (i = 0; i < nsub; i++)
			snd[i] = send_to(0, sent + i, VDI_VDC_WRITE);
		if (f->mode == F_ENTER) {
			f->calls[F_SERVER]++;
			r = enter(set, snd, nsub, cpl, f->batch, E_LONG_MS,
				  f->spin_us, &e);
			CKEQ(nsub, e.submitted);
		} else {
			for (i = 0; i < nsub; i++)
				s[i] = snd[i].send;
			if (nsub) {
				f->calls[F_SERVER]++;
				CKEQ(nsub, vdi_send(dev, s, nsub));
			}
			r = flow_poll(f, F_SERVER, set,
				      VDI_IOC_WAIT_COMPLETIONS, cpl);
		}
		CK(r >= 1 && (uint32_t)r <= f->batch);
		f->multi[F_SERVER] += r > 1;
		sent += nsub;
		/* In order: the client completes them in order. */
		for (i = 0; i < (uint32_t)r; i++) {
			CKEQ(reaped + i, cpl[i].cookie);
			CKEQ(0, cpl[i].completion_code);
			CKEQ(512, cpl[i].bytes_transferred);
		}
		reaped += r;
	}
	f->wall_us = vdi_now_us() - t0;
	f->cpu_us[F_SERVER] = proc_cpu_us(&f->csw[F_SERVER]) - cpu0;
	f->csw[F_SERVER] -= csw0;
	memset(&req, 0, sizeof(req));
	req.devs = (uintptr_t)&f->dev;
	req.dev_size = sizeof(f->dev);
	req.dev_count = 1;
	req.set = (uintptr_t)&st;
	req.set_size = sizeof(st);
	f->stats_ret = vdi_ioctl(set, VDI_IOC_SET_STATS, &req);
	CKEQ(0, vdi_close_device(dev));
	CKEQ(-ESHUTDOWN, enter(set, NULL, 0, cpl, 1, E_LONG_MS, 0, &e));
	close(dev);
	close(set);
	return 0;
}

/* The backup application: complete each command, take the next. */
static int flow_client(struct vdi_chan *ch, void *arg)
{
	struct flow *f = arg;
	struct vdi_command cmd[F_MAX_DEPTH];
	struct vdi_done done[F_MAX_DEPTH];
	uint32_t taken = 0, ndone = 0, i;
	struct vdi_enter e;
	int set, dev, r;
	int64_t cpu0, csw0;

	set = vdi_create_set(f->name, 1, 0);
	CK(set >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));			/* created */
	CKEQ(0, vdi_get_config(set, 10000, NULL));
	dev = vdi_open_device(set, f->name, 0, NULL);
	CK(dev >= 0);
	CKEQ(0, vdi_chan_send(ch, 2));			/* ready */
	cpu0 = proc_cpu_us(&csw0);
	for (;;) {
		if (f->mode == F_ENTER) {
			f->calls[F_CLIENT]++;
			r = enter(dev, done, ndone, cmd, f->batch, E_LONG_MS,
				  f->spin_us, &e);
			CKEQ(ndone, e.submitted);
		} else {
			if (ndone) {
				f->calls[F_CLIENT]++;
				CKEQ(ndone, vdi_complete(dev, done, ndone));
			}
			r = flow_poll(f, F_CLIENT, dev, VDI_IOC_GET_COMMANDS,
				      cmd);
		}
		if (r == -ESHUTDOWN)
			break;
		CK(r >= 1 && (uint32_t)r <= f->batch);
		f->multi[F_CLIENT] += r > 1;
		for (i = 0; i < (uint32_t)r; i++) {
			CKEQ(taken + i, cmd[i].position);
			done[i] = done_of(&cmd[i], 0);
		}
		ndone = r;
		taken += r;
	}
	f->cpu_us[F_CLIENT] = proc_cpu_us(&f->csw[F_CLIENT]) - cpu0;
	f->csw[F_CLIENT] -= csw0;
	CKEQ(f->n, taken);
	close(dev);
	close(set);
	return 0;
}

/* Run one stream: 0, or why not. */
static int flow_run(struct flow *f)
{
	struct vdi_proc client, server;
	int rc, rs;

	vdi_make_name(f->name, "flow");
	if (vdi_spawn(&client, flow_client, f))
		return -1;
	if (vdi_chan_expect(&client.ch, 1, 10000) ||
	    vdi_spawn(&server, flow_server, f)) {
		vdi_proc_kill(&client);
		return -2;
	}
	if (vdi_chan_send(&server.ch, 1) ||
	    vdi_chan_expect(&client.ch, 2, 10000) ||
	    vdi_chan_send(&server.ch, 2)) {
		vdi_proc_kill(&client);
		vdi_proc_kill(&server);
		return -3;
	}
	rs = vdi_reap(&server, 60000);
	rc = vdi_reap(&client, 10000);
	vdi_proc_kill(&client);
	vdi_proc_kill(&server);
	return rs ? 100 + rs : rc ? 1000 + rc : 0;
}

static struct flow *flow_new(enum flow_mode mode, uint32_t depth,
			     uint32_t batch, uint32_t spin_us, uint32_t n)
{
	struct flow *f = vdi_shared(sizeof(*f));

	if (f) {
		f->mode = mode;
		f->depth = depth;
		f->batch = batch;
		f->spin_us = spin_us;
		f->n = n;
	}
	return f;
}

#define STREAM_N	2000

/* The streams take seconds on a loaded machine: a longer timeout. */
FIXTURE(flow) {
	int unused;
};

FIXTURE_SETUP(flow)
{
}

FIXTURE_TEARDOWN(flow)
{
}

/*
 * Depth 8, one command a call: each side makes one ENTER per command, as
 * the counts returned say (the client one more: its last call hands in
 * the last completion and learns the end).  The figures count it all as
 * they count the older calls.
 */
TEST_F_TIMEOUT(flow, stream_one_enter_per_command_on_each_side, 300)
{
	struct flow *f = flow_new(F_ENTER, 8, 1, 50, STREAM_N);

	ASSERT_NE(NULL, f);
	ASSERT_EQ(0, flow_run(f));
	EXPECT_EQ(STREAM_N, f->calls[F_SERVER]);
	EXPECT_EQ(STREAM_N + 1, f->calls[F_CLIENT]);
	ASSERT_EQ(0, f->stats_ret);
	EXPECT_EQ(STREAM_N, f->dev.sent);
	EXPECT_EQ(STREAM_N, f->dev.sent_by_code[VDI_VDC_WRITE]);
	EXPECT_EQ(STREAM_N, f->dev.taken);
	EXPECT_EQ(STREAM_N, f->dev.completed);
	EXPECT_EQ(STREAM_N, f->dev.reaped);
	EXPECT_EQ(512ULL * STREAM_N, f->dev.bytes_written);
	EXPECT_EQ(0U, f->dev.queued);
	EXPECT_EQ(0U, f->dev.held);
	EXPECT_EQ(0U, f->dev.done);
	EXPECT_EQ(8U, f->dev.inflight_peak);
	EXPECT_GE(8U, f->dev.queued_peak);
	EXPECT_EQ(0U, f->dev.completions[0].code);
	EXPECT_EQ(STREAM_N, f->dev.completions[0].count);
	munmap(f, sizeof(*f));
}

/* Batched: never more than one call per command, fewer when both batch. */
TEST_F_TIMEOUT(flow, stream_batched_fewer_calls, 300)
{
	struct flow *f = flow_new(F_ENTER, 32, 32, 50, STREAM_N);

	ASSERT_NE(NULL, f);
	ASSERT_EQ(0, flow_run(f));
	EXPECT_GE(STREAM_N, f->calls[F_SERVER]);
	EXPECT_GE(STREAM_N + 1, f->calls[F_CLIENT]);
	TH_LOG("depth 32, batches of 32: %.3f server, %.3f client calls a command; %llu and %llu calls reaped more than one",
	       (double)f->calls[F_SERVER] / STREAM_N,
	       (double)f->calls[F_CLIENT] / STREAM_N,
	       (unsigned long long)f->multi[F_SERVER],
	       (unsigned long long)f->multi[F_CLIENT]);
	ASSERT_EQ(0, f->stats_ret);
	EXPECT_EQ(STREAM_N, f->dev.reaped);
	munmap(f, sizeof(*f));
}

#define PING_N		500
#define PING_ROUNDS	5

/* The median of @n values (sorts them). */
static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * A depth-1 ping-pong: (a) ENTER with a 50 µs spin, (b) the older calls
 * polled from user space for 50 µs, as a library did, (c) ENTER without a
 * spin, (d) the older calls without a spin.  The figures are printed for
 * the report; what is asserted is one call per turn for ENTER, two for
 * the older calls without a spin.  Same boot, same load for all: the
 * modes take turns, five rounds, and the medians are printed (a loaded
 * host stalls the VM's CPUs at random).
 */
TEST_F_TIMEOUT(flow, ping_pong_round_trips_and_calls, 600)
{
	static const struct { const char *what; enum flow_mode mode;
			      uint32_t spin; } m[] = {
		{ "(a) ENTER, spin_us 50", F_ENTER, 50 },
		{ "(b) older calls, 50 us user poll", F_OLD, 50 },
		{ "(c) ENTER, spin_us 0", F_ENTER, 0 },
		{ "(d) older calls, no poll", F_OLD, 0 },
	};
	double rt[4][PING_ROUNDS], calls[4][2][PING_ROUNDS];
	double cpu[4][2][PING_ROUNDS], csw[4][2][PING_ROUNDS];

	for (unsigned int k = 0; k < PING_ROUNDS * ARRAY_SIZE(m); k++) {
		unsigned int i = k % ARRAY_SIZE(m), r = k / ARRAY_SIZE(m);
		struct flow *f = flow_new(m[i].mode, 1, 1, m[i].spin, PING_N);

		ASSERT_NE(NULL, f);
		ASSERT_EQ(0, flow_run(f)) TH_LOG("%s", m[i].what);
		if (m[i].mode == F_ENTER) {
			EXPECT_EQ(PING_N, f->calls[F_SERVER]);
			EXPECT_EQ(PING_N + 1, f->calls[F_CLIENT]);
		} else if (!m[i].spin) {
			/* a send and a wait; a take, then a complete each */
			EXPECT_EQ(2 * PING_N, f->calls[F_SERVER]);
			EXPECT_EQ(2 * PING_N + 1, f->calls[F_CLIENT]);
		} else {
			EXPECT_LE(2 * PING_N, f->calls[F_SERVER]);
			EXPECT_LE(2 * PING_N, f->calls[F_CLIENT]);
		}
		rt[i][r] = (double)f->wall_us / PING_N;
		for (int side = 0; side < 2; side++) {
			calls[i][side][r] = (double)f->calls[side] / PING_N;
			cpu[i][side][r] = (double)f->cpu_us[side] / PING_N;
			csw[i][side][r] = (double)f->csw[side] / PING_N;
		}
		munmap(f, sizeof(*f));
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(m); i++) {
		double lo = rt[i][0], hi = rt[i][0];

		for (int r = 1; r < PING_ROUNDS; r++) {
			lo = rt[i][r] < lo ? rt[i][r] : lo;
			hi = rt[i][r] > hi ? rt[i][r] : hi;
		}
		printf("# ping-pong %-32s median %7.1f us/round trip (%.1f..%.1f); per round trip, server/client: %.2f/%.2f syscalls, %.1f/%.1f us CPU, %.2f/%.2f context switches\n",
		       m[i].what, median(rt[i], PING_ROUNDS), lo, hi,
		       median(calls[i][0], PING_ROUNDS),
		       median(calls[i][1], PING_ROUNDS),
		       median(cpu[i][0], PING_ROUNDS),
		       median(cpu[i][1], PING_ROUNDS),
		       median(csw[i][0], PING_ROUNDS),
		       median(csw[i][1], PING_ROUNDS));
	}
	fflush(stdout);		/* the harness's test process ends with _exit() */
}

TEST_HARNESS_MAIN
