// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vdi wake-ups and waits: every change that can make a waiter's
 * condition true wakes it, and a wait ends only for a reason the caller can
 * see (docs/ABI.md, "Waits and signals", "IO-ERROR", "Polling").
 *
 *  - a GET_COMMANDS or WAIT_COMPLETIONS whose copy-out fails puts its
 *    entries back and wakes the pollers of the fd: the copy is held on a
 *    userfaultfd page while a poll() and an epoll_wait() waiter go to
 *    sleep, then made to fail;
 *  - a ClearError that makes a device active again wakes the device's
 *    waiters, and GET_COMMANDS hands out one ClearError at a time;
 *  - SIGSTOP/SIGCONT and a ptrace attach do not end a wait; a handled
 *    signal ends a timed wait (EINTR) and restarts an infinite one under
 *    SA_RESTART;
 *  - a failed OPEN_DEVICE leaves the device's name unbound;
 *  - poll() on an endpoint without a role returns at once;
 *  - close() of an fd wakes the threads blocked on it.
 *
 * The two sides of a set are two processes: the test and a peer child
 * that it drives over a channel.
 */
#include "vdi_test_util.h"

#include <linux/userfaultfd.h>
#include <sys/epoll.h>
#include <sys/ptrace.h>
#include <sys/resource.h>

#define W_LONG_MS	3000	/* a wait the fix must end well before */

/* ------------------------------------------------------------------ */
/* a peer child playing the other side                                */

enum {
	P_SEND = 1,		/* server: send one non-data command, code */
	P_WAIT,			/* server: WAIT_COMPLETIONS for up to N */
	P_GET_COMPLETE,		/* client: take one command, complete with code */
	P_EXIT,
};

#define P_OP(op, arg)	((uint64_t)(op) << 56 | (uint32_t)(arg))

struct peer_arg {
	char name[VDI_NAME_MAX];
	unsigned int ndev;
	bool server;		/* the peer's role */
};

static int peer_server_setup(const struct peer_arg *a, int *set, int *dev)
{
	char dn[VDI_NAME_MAX];
	unsigned int i;

	*set = vdi_open_server(a->name);
	CK(*set >= 0);
	CKEQ(0, vdi_get_config(*set, 0, NULL));
	CKEQ(0, vdi_begin_config(*set, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
				 0, 512, 65536, 0));
	CKEQ(0, vdi_end_config(*set, 1 << 20));
	for (i = 0; i < a->ndev; i++) {
		vdi_dev_name(dn, a->name, i);
		dev[i] = vdi_open_device(*set, dn, 0, NULL);
		CK(dev[i] >= 0);
	}
	return 0;
}

static int peer_client_setup(const struct peer_arg *a, struct vdi_chan *ch,
			     int *set, int *dev)
{
	char dn[VDI_NAME_MAX];
	unsigned int i;

	*set = vdi_create_set(a->name, a->ndev, 0);
	CK(*set >= 0);
	CKEQ(0, vdi_chan_send(ch, 0));			/* created */
	CKEQ(0, vdi_get_config(*set, 10000, NULL));
	for (i = 0; i < a->ndev; i++) {
		vdi_dev_name(dn, a->name, i);
		dev[i] = vdi_open_device(*set, dn, 0, NULL);
		CK(dev[i] >= 0);
	}
	return 0;
}

static int peer_main(struct vdi_chan *ch, void *arg)
{
	const struct peer_arg *a = arg;
	struct vdi_completion cpl[8];
	struct vdi_command cmd;
	int set = -1, dev[VDI_SESS_MAXDEV];
	uint64_t op, cookie = 1;
	int r;

	r = a->server ? peer_server_setup(a, &set, dev) :
			peer_client_setup(a, ch, &set, dev);
	if (r)
		return r;
	CKEQ(0, vdi_chan_send(ch, 0));			/* ready */
	for (;;) {
		CKEQ(0, vdi_chan_recv(ch, &op, 15000));
		switch (op >> 56) {
		case P_SEND:
			r = vdi_send1(dev[0], cookie++, (uint32_t)op, 0, 0,
				      VDI_NO_BUFFER);
			break;
		case P_WAIT:
			r = vdi_wait(set, cpl, (uint32_t)op, 2000);
			break;
		case P_GET_COMPLETE:
			r = vdi_get(dev[0], &cmd, 1, 2000);
			if (r == 1)
				r = vdi_complete1(dev[0], cmd.tag, (uint32_t)op,
						  0, 0);
			break;
		case P_EXIT:
			return 0;
		default:
			return 200;
		}
		CKEQ(0, vdi_chan_send(ch, (uint64_t)(int64_t)r));
	}
}

/* Ask the peer to do one thing; its result, or a channel error - 1000. */
static int peer_do(struct vdi_proc *p, int op, uint32_t arg)
{
	uint64_t v;

	if (vdi_chan_send(&p->ch, P_OP(op, arg)))
		return -1000 - EPIPE;
	if (vdi_chan_recv(&p->ch, &v, 10000))
		return -1000 - ETIMEDOUT;
	return (int)(int64_t)v;
}

struct pair {
	struct peer_arg a;
	struct vdi_proc peer;
	int set;
	int dev[VDI_SESS_MAXDEV];
	unsigned int ndev;
};

static int open_server_retry(const char *name)
{
	int64_t end = vdi_now_ms() + 5000;
	int r;

	while ((r = vdi_open_server(name)) == -ENOENT && vdi_now_ms() < end)
		vdi_sleep_ms(2);
	return r;
}

/* The test is the client of a set whose server is the peer. */
static int pair_as_client(struct pair *p, unsigned int ndev)
{
	char dn[VDI_NAME_MAX];
	unsigned int i;
	int r;

	memset(p, 0, sizeof(*p));
	p->set = -1;
	for (i = 0; i < VDI_SESS_MAXDEV; i++)
		p->dev[i] = -1;
	p->ndev = ndev;
	vdi_make_name(p->a.name, "wc");
	p->a.ndev = ndev;
	p->a.server = true;
	p->set = vdi_create_set(p->a.name, ndev, 0);
	if (p->set < 0)
		return p->set;
	r = vdi_spawn(&p->peer, peer_main, &p->a);
	if (r)
		return r;
	r = vdi_get_config(p->set, 10000, NULL);
	if (r)
		return r;
	for (i = 0; i < ndev; i++) {
		vdi_dev_name(dn, p->a.name, i);
		p->dev[i] = vdi_open_device(p->set, dn, 0, NULL);
		if (p->dev[i] < 0)
			return p->dev[i];
	}
	return vdi_chan_expect(&p->peer.ch, 0, 10000);
}

/* The test is the server of a set whose client is the peer. */
static int pair_as_server(struct pair *p, unsigned int ndev)
{
	char dn[VDI_NAME_MAX];
	unsigned int i;
	int r;

	memset(p, 0, sizeof(*p));
	p->set = -1;
	for (i = 0; i < VDI_SESS_MAXDEV; i++)
		p->dev[i] = -1;
	p->ndev = ndev;
	vdi_make_name(p->a.name, "ws");
	p->a.ndev = ndev;
	p->a.server = false;
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
				     VDI_VDF_READ_MEDIA, 0, 512, 65536, 0);
	if (!r)
		r = vdi_end_config(p->set, 1 << 20);
	if (r)
		return r;
	for (i = 0; i < ndev; i++) {
		vdi_dev_name(dn, p->a.name, i);
		p->dev[i] = vdi_open_device(p->set, dn, 0, NULL);
		if (p->dev[i] < 0)
			return p->dev[i];
	}
	return vdi_chan_expect(&p->peer.ch, 0, 10000);
}

static void pair_close(struct pair *p)
{
	unsigned int i;

	if (p->peer.pid > 0 && !p->peer.reaped) {
		vdi_chan_send(&p->peer.ch, P_OP(P_EXIT, 0));
		vdi_reap(&p->peer, 5000);
	}
	vdi_proc_kill(&p->peer);
	for (i = 0; i < VDI_SESS_MAXDEV; i++)
		vdi_close(&p->dev[i]);
	vdi_close(&p->set);
}

/* ------------------------------------------------------------------ */
/* a thread in poll() or epoll_wait()                                 */

struct poller {
	pthread_t th;
	int fd;
	bool epoll;
	int timeout_ms;
	int ret;		/* revents, 0 on timeout, or -errno */
	int pipe[2];
	bool started;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	char c = 1;

	if (p->epoll) {
		struct epoll_event ev = { .events = EPOLLIN };
		int ep = epoll_create1(EPOLL_CLOEXEC);

		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev)) {
			p->ret = -errno;
		} else {
			int r = epoll_wait(ep, &ev, 1, p->timeout_ms);

			p->ret = r < 0 ? -errno : r ? (int)ev.events : 0;
		}
		if (ep >= 0)
			close(ep);
	} else {
		p->ret = vdi_poll1(p->fd, POLLIN, p->timeout_ms);
	}
	if (write(p->pipe[1], &c, 1) != 1)
		p->ret = -EPIPE;
	return NULL;
}

static int poller_start(struct poller *p, int fd, bool epoll, int timeout_ms)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->epoll = epoll;
	p->timeout_ms = timeout_ms;
	if (pipe2(p->pipe, O_CLOEXEC))
		return -errno;
	if (pthread_create(&p->th, NULL, poller_main, p))
		return -EAGAIN;
	p->started = true;
	return 0;
}

/* Has the poller returned within @timeout_ms?  Joins it if so. */
static bool poller_done(struct poller *p, int timeout_ms)
{
	struct pollfd pfd = { .fd = p->pipe[0], .events = POLLIN };

	if (!p->started)
		return true;
	if (poll(&pfd, 1, timeout_ms) != 1)
		return false;
	pthread_join(p->th, NULL);
	close(p->pipe[0]);
	close(p->pipe[1]);
	p->started = false;
	return true;
}

/* ------------------------------------------------------------------ */
/* a page whose first touch by the kernel waits for us                */

struct uffd_page {
	int uffd;
	void *page;
};

/* 0, or -errno (then the test skips: no userfaultfd for kernel faults). */
static int uffd_arm(struct uffd_page *u)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;

	u->page = NULL;
	/* Not UFFD_USER_MODE_ONLY: the faults to catch are the kernel's. */
	u->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->uffd < 0)
		return -errno;
	if (ioctl(u->uffd, UFFDIO_API, &api))
		return -errno;
	u->page = vdi_pages(1, PROT_READ | PROT_WRITE);
	if (!u->page)
		return -ENOMEM;
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)u->page;
	reg.range.len = VDI_PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(u->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	return 0;
}

/* Wait until something faults on the page: a copy to it is now held. */
static int uffd_wait_fault(struct uffd_page *u, int timeout_ms)
{
	struct pollfd pfd = { .fd = u->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	if (read(u->uffd, &msg, sizeof(msg)) != sizeof(msg))
		return -errno;
	if (msg.event != UFFD_EVENT_PAGEFAULT ||
	    (msg.arg.pagefault.address & ~(VDI_PAGE - 1)) != (uintptr_t)u->page)
		return -EBADMSG;
	return 0;
}

/* Make the held copy fail: the page goes away, then the fault is let go. */
static void uffd_fail(struct uffd_page *u)
{
	if (u->page)
		munmap(u->page, VDI_PAGE);
	u->page = NULL;
	vdi_close(&u->uffd);
}

/* ------------------------------------------------------------------ */
/* 9: lost wake-ups after a failed copy-out                           */

FIXTURE(cli) {
	struct pair p;
};

FIXTURE_SETUP(cli)
{
	ASSERT_EQ(0, pair_as_client(&self->p, 2));
}

FIXTURE_TEARDOWN(cli)
{
	pair_close(&self->p);
}

FIXTURE(srv) {
	struct pair p;
};

FIXTURE_SETUP(srv)
{
	ASSERT_EQ(0, pair_as_server(&self->p, 1));
}

FIXTURE_TEARDOWN(srv)
{
	pair_close(&self->p);
}

TEST_F(cli, failed_get_commands_copy_wakes_pollers_of_the_device)
{
	struct vdi_command cmd[2];
	struct poller pl[2];
	struct uffd_page u;
	struct vdi_waiter w;
	struct vdi_batch b;
	int r, i;

	r = uffd_arm(&u);
	if (r)
		SKIP(return, "userfaultfd: %s", strerror(-r));
	ASSERT_EQ(1, peer_do(&self->p.peer, P_SEND, T_VDC_FLUSH));

	/* The client takes the command; its copy-out waits on the page. */
	vdi_batch_init(&b, u.page, 1, W_LONG_MS);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->p.dev[0],
				      VDI_IOC_GET_COMMANDS, &b));
	ASSERT_EQ(0, uffd_wait_fault(&u, 5000));

	/* Meanwhile the queue is empty: a poll() and an epoll_wait() sleep. */
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, poller_start(&pl[i], self->p.dev[0], i,
					  W_LONG_MS));
	EXPECT_FALSE(poller_done(&pl[0], 200));
	EXPECT_FALSE(poller_done(&pl[1], 0));

	/* The copy fails: the command goes back, and both wake at once. */
	uffd_fail(&u);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(-EFAULT, w.ret);
	for (i = 0; i < 2; i++) {
		EXPECT_TRUE(poller_done(&pl[i], VDI_PROMPT_MS))
			TH_LOG("%s waiter slept on", i ? "epoll" : "poll");
		ASSERT_TRUE(poller_done(&pl[i], 5000));
		EXPECT_EQ(POLLIN, pl[i].ret);
	}
	/* Nothing was lost. */
	ASSERT_EQ(1, vdi_get(self->p.dev[0], cmd, 2, 0));
	EXPECT_EQ((uint32_t)T_VDC_FLUSH, cmd[0].code);
	ASSERT_EQ(1, vdi_complete1(self->p.dev[0], cmd[0].tag, 0, 0, 0));
	EXPECT_EQ(1, peer_do(&self->p.peer, P_WAIT, 2));
}

TEST_F(srv, failed_wait_completions_copy_wakes_pollers_of_the_agent)
{
	struct vdi_completion cpl[2];
	struct poller pl[2];
	struct uffd_page u;
	struct vdi_waiter w;
	struct vdi_batch b;
	int r, i;

	r = uffd_arm(&u);
	if (r)
		SKIP(return, "userfaultfd: %s", strerror(-r));
	ASSERT_EQ(1, vdi_send1(self->p.dev[0], 42, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, peer_do(&self->p.peer, P_GET_COMPLETE, 0));

	/* The agent reaps the completion; its copy-out waits on the page. */
	vdi_batch_init(&b, u.page, 1, W_LONG_MS);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->p.set,
				      VDI_IOC_WAIT_COMPLETIONS, &b));
	ASSERT_EQ(0, uffd_wait_fault(&u, 5000));

	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, poller_start(&pl[i], self->p.set, i, W_LONG_MS));
	EXPECT_FALSE(poller_done(&pl[0], 200));
	EXPECT_FALSE(poller_done(&pl[1], 0));

	/* The copy fails: the completion goes back, and both wake at once. */
	uffd_fail(&u);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(-EFAULT, w.ret);
	for (i = 0; i < 2; i++) {
		EXPECT_TRUE(poller_done(&pl[i], VDI_PROMPT_MS))
			TH_LOG("%s waiter slept on", i ? "epoll" : "poll");
		ASSERT_TRUE(poller_done(&pl[i], 5000));
		EXPECT_EQ(POLLIN, pl[i].ret);
	}
	ASSERT_EQ(1, vdi_wait(self->p.set, cpl, 2, 0));
	EXPECT_EQ(42U, cpl[0].cookie);
}

/* ------------------------------------------------------------------ */
/* 9: ClearError                                                      */

/* Send F, take it, send @nce ClearErrors, fail F: the device is IO-ERROR. */
static int into_io_error(struct pair *p, unsigned int nce)
{
	struct vdi_command cmd;
	unsigned int i;
	int r;

	r = peer_do(&p->peer, P_SEND, T_VDC_FLUSH);
	if (r != 1)
		return r < 0 ? r : -EBADE;
	r = vdi_get(p->dev[0], &cmd, 1, 2000);
	if (r != 1)
		return r < 0 ? r : -EBADE;
	for (i = 0; i < nce; i++) {
		r = peer_do(&p->peer, P_SEND, VDI_VDC_CLEAR_ERROR);
		if (r != 1)
			return r < 0 ? r : -EBADE;
	}
	r = vdi_complete1(p->dev[0], cmd.tag, T_ERROR_DISK_FULL, 0, 0);
	if (r != 1)
		return r < 0 ? r : -EBADE;
	/* Now only ClearError may be sent. */
	r = peer_do(&p->peer, P_SEND, T_VDC_FLUSH);
	return r == -EIO ? 0 : -EBADE;
}

TEST_F(cli, batched_get_commands_hands_out_one_clear_error)
{
	struct vdi_command cmd[4];
	int dev = self->p.dev[0];

	ASSERT_EQ(0, into_io_error(&self->p, 3));

	/* Three ClearErrors queued, nothing held: one comes out. */
	ASSERT_EQ(1, vdi_get(dev, cmd, 4, 0));
	EXPECT_EQ((uint32_t)VDI_VDC_CLEAR_ERROR, cmd[0].code);
	/* While it is held, no other. */
	EXPECT_EQ(-ETIMEDOUT, vdi_get(dev, cmd + 1, 3, 0));
	EXPECT_EQ(0, vdi_poll1(dev, POLLIN, 0));

	/* Failed, the device stays in IO-ERROR: again one only. */
	ASSERT_EQ(1, vdi_complete1(dev, cmd[0].tag, T_ERROR_DISK_FULL, 0, 0));
	ASSERT_EQ(1, vdi_get(dev, cmd, 4, 0));
	EXPECT_EQ((uint32_t)VDI_VDC_CLEAR_ERROR, cmd[0].code);
	EXPECT_EQ(-ETIMEDOUT, vdi_get(dev, cmd + 1, 3, 0));

	/* Succeeded: the device is active, the last one is an ordinary
	 * command.
	 */
	ASSERT_EQ(1, vdi_complete1(dev, cmd[0].tag, 0, 0, 0));
	ASSERT_EQ(1, vdi_get(dev, cmd, 4, 0));
	EXPECT_EQ((uint32_t)VDI_VDC_CLEAR_ERROR, cmd[0].code);
	ASSERT_EQ(1, vdi_complete1(dev, cmd[0].tag, 0, 0, 0));
	/* F failed, CE failed, CE and CE succeeded. */
	EXPECT_EQ(4, peer_do(&self->p.peer, P_WAIT, 8));
}

TEST_F(cli, clear_error_back_to_active_wakes_the_device)
{
	struct vdi_command cmd[4], got[2];
	int dev = self->p.dev[0];
	struct vdi_waiter w;
	struct poller pl;
	struct vdi_batch b;

	ASSERT_EQ(0, into_io_error(&self->p, 3));

	/* The client holds the first ClearError: the next one waits. */
	ASSERT_EQ(1, vdi_get(dev, cmd, 1, 0));
	ASSERT_EQ(0, poller_start(&pl, dev, false, W_LONG_MS));
	EXPECT_FALSE(poller_done(&pl, 200));
	/* It succeeds; the device is active: the poller wakes at once. */
	ASSERT_EQ(1, vdi_complete1(dev, cmd[0].tag, 0, 0, 0));
	EXPECT_TRUE(poller_done(&pl, VDI_PROMPT_MS));
	ASSERT_TRUE(poller_done(&pl, 5000));
	EXPECT_EQ(POLLIN, pl.ret);

	/* Again through a set fd's COMPLETE, with a thread in GET_COMMANDS:
	 * hold both ClearErrors left, fail one (IO-ERROR, one held), queue
	 * another.
	 */
	ASSERT_EQ(2, vdi_get(dev, cmd, 2, 0));
	ASSERT_EQ(1, vdi_complete1(dev, cmd[0].tag, T_ERROR_DISK_FULL, 0, 0));
	ASSERT_EQ(1, peer_do(&self->p.peer, P_SEND, VDI_VDC_CLEAR_ERROR));
	vdi_batch_init(&b, got, 2, W_LONG_MS);
	ASSERT_EQ(0, vdi_waiter_start(&w, dev, VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	ASSERT_EQ(1, vdi_complete1(self->p.set, cmd[1].tag, 0, 0, 0));
	EXPECT_TRUE(vdi_waiter_done(&w, VDI_PROMPT_MS));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	ASSERT_EQ(1, w.ret);
	EXPECT_EQ((uint32_t)VDI_VDC_CLEAR_ERROR, got[0].code);
	ASSERT_EQ(1, vdi_complete1(dev, got[0].tag, 0, 0, 0));
	/* F, CE ok, CE failed, CE ok, CE ok. */
	EXPECT_EQ(5, peer_do(&self->p.peer, P_WAIT, 8));
}

/* ------------------------------------------------------------------ */
/* 11: signals, stops and ptrace                                      */

struct tid_waiter {
	struct vdi_waiter w;
	pid_t tid;
	void *arg;
};

static void *tid_waiter_main(void *p)
{
	struct tid_waiter *t = p;

	__atomic_store_n(&t->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	return vdi_waiter_main(&t->w);
}

static int tid_waiter_start(struct tid_waiter *t, int fd, unsigned long req,
			    void *arg)
{
	int64_t end = vdi_now_ms() + 5000;

	memset(t, 0, sizeof(*t));
	t->w.fd = fd;
	t->w.req = req;
	t->w.arg = arg;
	if (pipe2(t->w.pipe, O_CLOEXEC))
		return -errno;
	if (pthread_create(&t->w.th, NULL, tid_waiter_main, t))
		return -EAGAIN;
	t->w.started = true;
	while (!__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE))
		if (vdi_now_ms() > end)
			return -ETIMEDOUT;
	return 0;
}

struct stop_names {
	char a[VDI_NAME_MAX];	/* child client, test server: 2 devices */
	char b[VDI_NAME_MAX];	/* test client, child server */
	char c[VDI_NAME_MAX];	/* child client waiting for its config */
};

enum { SW_GET, SW_GET_TIMED, SW_WAIT, SW_CONFIG, SW_N };

/*
 * The stopped process: four threads in the four kinds of wait, infinite
 * but one; no signal handler.  Reports their tids, then expects every wait
 * to end the normal way once the test has done its part.
 */
static int stopped_child(struct vdi_chan *ch, void *arg)
{
	const struct stop_names *n = arg;
	struct vdi_command cmd0[1], cmd1[1];
	struct vdi_completion cpl[1];
	struct tid_waiter t[SW_N];
	struct vdi_batch bt[3];
	struct vdi_get_config g;
	char dn[VDI_NAME_MAX];
	int a, b, c, a0, a1, b0, i;

	a = vdi_create_set(n->a, 2, 0);
	CK(a >= 0);
	c = vdi_create_set(n->c, 1, 0);
	CK(c >= 0);
	b = open_server_retry(n->b);
	CK(b >= 0);
	CKEQ(0, vdi_get_config(b, 0, NULL));
	CKEQ(0, vdi_begin_config(b, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	CKEQ(0, vdi_end_config(b, 0));
	b0 = vdi_open_device(b, n->b, 0, NULL);
	CK(b0 >= 0);
	CKEQ(0, vdi_get_config(a, 10000, NULL));
	a0 = vdi_open_device(a, n->a, 0, NULL);
	CK(a0 >= 0);
	vdi_dev_name(dn, n->a, 1);
	a1 = vdi_open_device(a, dn, 0, NULL);
	CK(a1 >= 0);
	CKEQ(1, vdi_send1(b0, 7, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));

	vdi_batch_init(&bt[0], cmd0, 1, -1);
	CKEQ(0, tid_waiter_start(&t[SW_GET], a0, VDI_IOC_GET_COMMANDS, &bt[0]));
	vdi_batch_init(&bt[1], cmd1, 1, 15000);
	CKEQ(0, tid_waiter_start(&t[SW_GET_TIMED], a1, VDI_IOC_GET_COMMANDS,
				 &bt[1]));
	vdi_batch_init(&bt[2], cpl, 1, -1);
	CKEQ(0, tid_waiter_start(&t[SW_WAIT], b, VDI_IOC_WAIT_COMPLETIONS,
				 &bt[2]));
	memset(&g, 0, sizeof(g));
	g.timeout_ms = -1;
	CKEQ(0, tid_waiter_start(&t[SW_CONFIG], c, VDI_IOC_GET_CONFIG, &g));
	for (i = 0; i < SW_N; i++)
		CKEQ(0, vdi_chan_send(ch, (uint64_t)t[i].tid));

	CKEQ(0, vdi_chan_expect(ch, 1, 15000));	/* go: the test did its part */
	for (i = 0; i < SW_N; i++)
		CK(vdi_waiter_done(&t[i].w, 5000));
	CKEQ(1, t[SW_GET].w.ret);
	CKEQ(1, t[SW_GET_TIMED].w.ret);
	CKEQ(1, t[SW_WAIT].w.ret);
	CKEQ(7, cpl[0].cookie);
	CKEQ(0, t[SW_CONFIG].w.ret);
	CKEQ(1, vdi_complete1(a0, cmd0[0].tag, 0, 0, 0));
	CKEQ(1, vdi_complete1(a1, cmd1[0].tag, 0, 0, 0));
	return 0;
}

/* Stop and continue the child, then attach to and detach from each thread. */
static int stop_and_trace(pid_t pid, const pid_t *tids, unsigned int n)
{
	unsigned int i;
	int st;

	if (kill(pid, SIGSTOP))
		return -errno;
	if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st))
		return -ECHILD;
	vdi_sleep_ms(100);
	if (kill(pid, SIGCONT))
		return -errno;
	if (waitpid(pid, &st, WCONTINUED) != pid || !WIFCONTINUED(st))
		return -ECHILD;
	vdi_sleep_ms(100);

	for (i = 0; i < n; i++) {
		if (ptrace(PTRACE_SEIZE, tids[i], 0, 0))
			return -errno;
		if (ptrace(PTRACE_INTERRUPT, tids[i], 0, 0))
			return -errno;
		if (waitpid(tids[i], &st, __WALL) != tids[i] ||
		    !WIFSTOPPED(st))
			return -ECHILD;
		if (ptrace(PTRACE_DETACH, tids[i], 0, 0))
			return -errno;
	}
	return 0;
}

TEST(stop_continue_and_ptrace_do_not_end_waits)
{
	struct stop_names n;
	struct vdi_command cmd;
	struct vdi_proc child;
	char dn[VDI_NAME_MAX];
	pid_t tids[SW_N];
	int a, a0, a1, b, b0, c;
	uint64_t v;
	unsigned int i;

	vdi_make_name(n.a, "stopa");
	vdi_make_name(n.b, "stopb");
	vdi_make_name(n.c, "stopc");
	b = vdi_create_set(n.b, 1, 0);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, vdi_spawn(&child, stopped_child, &n));

	/* Our side of each set. */
	a = open_server_retry(n.a);
	ASSERT_LE(0, a);
	ASSERT_EQ(0, vdi_get_config(a, 0, NULL));
	ASSERT_EQ(0, vdi_begin_config(a, VDI_VDF_WRITE_MEDIA, 0, 512, 65536,
				      0));
	ASSERT_EQ(0, vdi_end_config(a, 0));
	a0 = vdi_open_device(a, n.a, 0, NULL);
	ASSERT_LE(0, a0);
	vdi_dev_name(dn, n.a, 1);
	a1 = vdi_open_device(a, dn, 0, NULL);
	ASSERT_LE(0, a1);
	ASSERT_EQ(0, vdi_get_config(b, 10000, NULL));
	b0 = vdi_open_device(b, n.b, 0, NULL);
	ASSERT_LE(0, b0);

	for (i = 0; i < SW_N; i++) {
		ASSERT_EQ(0, vdi_chan_recv(&child.ch, &v, 10000));
		tids[i] = (pid_t)v;
	}
	vdi_sleep_ms(200);		/* every thread asleep in its wait */
	EXPECT_EQ(0, stop_and_trace(child.pid, tids, SW_N));
	vdi_sleep_ms(200);

	/* Now give each wait its normal end. */
	ASSERT_EQ(1, vdi_send1(a0, 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_send1(a1, 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(b0, &cmd, 1, 2000));
	ASSERT_EQ(1, vdi_complete1(b0, cmd.tag, 0, 0, 0));
	c = open_server_retry(n.c);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, vdi_get_config(c, 0, NULL));
	ASSERT_EQ(0, vdi_begin_config(c, VDI_VDF_WRITE_MEDIA, 0, 512, 65536,
				      0));
	ASSERT_EQ(0, vdi_end_config(c, 0));
	ASSERT_EQ(0, vdi_chan_send(&child.ch, 1));
	EXPECT_EQ(0, vdi_reap(&child, 10000));

	vdi_proc_kill(&child);
	close(c);
	close(b0);
	close(b);
	close(a1);
	close(a0);
	close(a);
}

static void on_usr1(int sig)
{
	(void)sig;
}

TEST_F(cli, handled_signal_restarts_an_infinite_wait_and_ends_a_timed_one)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	struct sigaction old;
	struct vdi_command cmd[2];
	struct vdi_waiter w;
	struct vdi_batch b;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old));

	/* Infinite, SA_RESTART: the handler runs, the wait goes on. */
	vdi_batch_init(&b, cmd, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->p.dev[0],
				      VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	pthread_kill(w.th, SIGUSR1);
	EXPECT_FALSE(vdi_waiter_done(&w, 300))
		TH_LOG("returned %d", w.ret);
	ASSERT_EQ(1, peer_do(&self->p.peer, P_SEND, T_VDC_FLUSH));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(1, w.ret);
	ASSERT_EQ(1, vdi_complete1(self->p.dev[0], cmd[0].tag, 0, 0, 0));

	/* Timed: a handled signal ends it, even under SA_RESTART, so that a
	 * periodic signal cannot stretch it for ever.
	 */
	vdi_batch_init(&b, cmd, 2, 10000);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->p.dev[0],
				      VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	pthread_kill(w.th, SIGUSR1);
	ASSERT_TRUE(vdi_waiter_done(&w, VDI_PROMPT_MS));
	EXPECT_EQ(-EINTR, w.ret);

	ASSERT_EQ(0, sigaction(SIGUSR1, &old, NULL));
	EXPECT_EQ(1, peer_do(&self->p.peer, P_WAIT, 2));
}

TEST(handled_signal_restarts_the_agent_wait_with_the_watchdog_armed)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	struct vdi_sess_opts o = { .server_timeout = 5000 };
	struct vdi_completion cpl[2];
	struct vdi_command cmd;
	struct vdi_waiter w;
	struct vdi_batch b;
	struct vdi_sess s;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	/* A command in flight: the agent sleeps until the watchdog is due. */
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 9, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	vdi_batch_init(&b, cpl, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, s.sset, VDI_IOC_WAIT_COMPLETIONS,
				      &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	pthread_kill(w.th, SIGUSR1);
	EXPECT_FALSE(vdi_waiter_done(&w, 300))
		TH_LOG("returned %d", w.ret);
	ASSERT_EQ(1, vdi_get(s.cdev[0], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s.cdev[0], cmd.tag, 0, 0, 0));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(1, w.ret);
	EXPECT_EQ(9U, cpl[0].cookie);
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* 11: a failed OPEN_DEVICE                                           */

TEST(failed_open_device_leaves_the_name_unbound)
{
	struct vdi_sess_opts o = { .ndev = 3, .no_devices = true };
	struct vdi_open_device *ro;
	struct rlimit rl, low;
	struct vdi_sess s;
	uint32_t idx;
	int fd, spare;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));

	/* EFAULT writing the index back: "x" must not keep device 1. */
	ro = vdi_pages(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, ro);
	memset(ro, 0, sizeof(*ro));
	snprintf(ro->name, sizeof(ro->name), "%.100s.x", s.name);
	ASSERT_EQ(0, mprotect(ro, VDI_PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, vdi_ioctl(s.cset, VDI_IOC_OPEN_DEVICE, ro));
	munmap(ro, VDI_PAGE);

	fd = vdi_open_device(s.cset, "y", 0, &idx);
	ASSERT_LE(0, fd);
	EXPECT_EQ(1U, idx);
	s.cdev[1] = fd;

	/* EMFILE on the server side: "z" must not keep device 2. */
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	spare = dup(0);
	ASSERT_LE(0, spare);
	low = rl;
	low.rlim_cur = spare;		/* no fd at or above the lowest free */
	close(spare);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &low));
	fd = vdi_open_device(s.sset, "z", 0, &idx);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	EXPECT_EQ(-EMFILE, fd);

	fd = vdi_open_device(s.sset, "w", 0, &idx);
	ASSERT_LE(0, fd);
	EXPECT_EQ(2U, idx);
	s.sdev[2] = fd;
	/* The names are "y" and "w"; "x" and "z" were never bound. */
	fd = vdi_open_device(s.sset, "y", 0, &idx);
	ASSERT_LE(0, fd);
	EXPECT_EQ(1U, idx);
	s.sdev[1] = fd;
	EXPECT_EQ(-ENOENT, vdi_open_device(s.cset, "x", 0, NULL));
	EXPECT_EQ(-ENOENT, vdi_open_device(s.cset, "z", 0, NULL));
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* 11: poll() on an endpoint without a role                           */

TEST(poll_on_an_endpoint_without_a_role_returns_at_once)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
	int fd = vdi_open(), ep;
	int64_t t0;

	ASSERT_LE(0, fd);
	t0 = vdi_now_ms();
	EXPECT_EQ(POLLERR, vdi_poll1(fd, POLLIN | POLLOUT, W_LONG_MS));
	EXPECT_GT(VDI_PROMPT_MS, vdi_now_ms() - t0);

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	t0 = vdi_now_ms();
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, W_LONG_MS));
	EXPECT_EQ((uint32_t)EPOLLERR, ev.events);
	EXPECT_GT(VDI_PROMPT_MS, vdi_now_ms() - t0);
	close(ep);

	/* The endpoint still takes its role. */
	EXPECT_EQ(-ENOENT, vdi_open_on(fd, VDI_IOC_OPEN_SERVER, "no-such-set"));
	close(fd);
}

/* ------------------------------------------------------------------ */
/* 11: close() wakes the threads blocked on the fd                    */

TEST_F(cli, close_wakes_a_thread_in_get_commands)
{
	struct vdi_command cmd[2];
	struct vdi_waiter w;
	struct vdi_batch b;
	int dup0;

	/* A second fd for the same file: closing one does not end the wait. */
	dup0 = dup(self->p.dev[0]);
	ASSERT_LE(0, dup0);
	vdi_batch_init(&b, cmd, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->p.dev[0],
				      VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	vdi_close(&self->p.dev[0]);
	EXPECT_FALSE(vdi_waiter_done(&w, 300));
	ASSERT_EQ(1, peer_do(&self->p.peer, P_SEND, T_VDC_FLUSH));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	ASSERT_EQ(1, w.ret);
	ASSERT_EQ(1, vdi_complete1(dup0, cmd[0].tag, 0, 0, 0));
	ASSERT_EQ(1, peer_do(&self->p.peer, P_WAIT, 2));

	/* The last fd: the wait ends with EBADF. */
	ASSERT_EQ(0, vdi_waiter_start(&w, dup0, VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	close(dup0);
	EXPECT_TRUE(vdi_waiter_done(&w, VDI_PROMPT_MS));
	if (!vdi_waiter_done(&w, 0)) {
		/* Let it go before failing: the set still has other fds. */
		vdi_abort(self->p.set);
		ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	}
	EXPECT_EQ(-EBADF, w.ret);
	/* Then the file went away before its device ended: an abort. */
	EXPECT_EQ(-ECONNABORTED, peer_do(&self->p.peer, P_WAIT, 2));
}

TEST_F(srv, close_wakes_a_thread_in_wait_completions)
{
	struct vdi_completion cpl[2];
	struct vdi_waiter w;
	struct vdi_batch b;
	int dev = self->p.dev[0];

	vdi_batch_init(&b, cpl, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->p.set,
				      VDI_IOC_WAIT_COMPLETIONS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	vdi_close(&self->p.set);
	EXPECT_TRUE(vdi_waiter_done(&w, VDI_PROMPT_MS));
	if (!vdi_waiter_done(&w, 0)) {
		/* Let it go: the device fd still reaches the set. */
		vdi_close(&dev);
		self->p.dev[0] = -1;
		ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	}
	EXPECT_EQ(-EBADF, w.ret);
	/* The server set fd went away: the client sees the abort. */
	EXPECT_EQ(-ECONNABORTED, peer_do(&self->p.peer, P_GET_COMPLETE, 0));
}

TEST(close_wakes_a_thread_in_get_config)
{
	char name[VDI_NAME_MAX];
	struct vdi_get_config g;
	struct vdi_waiter w;
	struct poller pl;
	int c;

	vdi_make_name(name, "closecfg");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	memset(&g, 0, sizeof(g));
	g.timeout_ms = -1;
	ASSERT_EQ(0, vdi_waiter_start(&w, c, VDI_IOC_GET_CONFIG, &g));
	ASSERT_EQ(0, poller_start(&pl, c, false, W_LONG_MS));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	EXPECT_FALSE(poller_done(&pl, 0));
	close(c);
	EXPECT_TRUE(vdi_waiter_done(&w, VDI_PROMPT_MS));
	/* A poll() of the closed fd wakes too, and finds it gone. */
	EXPECT_TRUE(poller_done(&pl, VDI_PROMPT_MS));
	ASSERT_TRUE(poller_done(&pl, 5000));
	EXPECT_EQ(POLLNVAL, pl.ret);
	if (!vdi_waiter_done(&w, 0)) {
		int s = vdi_open_server(name);

		/* Let it go: abort the set from its server. */
		ASSERT_LE(0, s);
		vdi_abort(s);
		close(s);
		ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	}
	EXPECT_EQ(-EBADF, w.ret);
}

TEST_HARNESS_MAIN
