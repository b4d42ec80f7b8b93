// SPDX-License-Identifier: GPL-2.0
/*
 * Peer death, as a matrix: victim x state.
 *
 * Three processes play a set: the server S (main thread: configuration,
 * devices, sending; a second thread: the completion agent), the primary
 * client C (devices 0 and 1, one thread each) and a secondary client C2
 * (device 2).  Every process also has a watcher thread in poll() on its
 * set fd asking for nothing, so it wakes only on EPOLLERR / EPOLLHUP.
 *
 * Victims, each killed with SIGKILL:
 *   server     the server process
 *   client     the primary client process
 *   secondary  the secondary client process
 *   agent      the agent's thread, with tgkill(SIGKILL): a fatal signal
 *              takes the whole thread group, so this is the server dying
 *              while its agent is inside WAIT_COMPLETIONS (a thread cannot
 *              die alone on SIGKILL; an agent thread that is cancelled or
 *              exits leaves the fd to its process and aborts nothing -
 *              see agent_thread_exits_without_abort)
 *
 * States, each reached by every process before the kill:
 *   configuring  BEGIN_CONFIG done, no END_CONFIG: the client waits in
 *                GET_CONFIG, the agent in WAIT_COMPLETIONS
 *   initializing END_CONFIG done, every device open on both sides, nothing
 *                sent: the clients wait in GET_COMMANDS
 *   queued       every device's queue full, nothing taken: the server waits
 *                in poll(POLLOUT), the clients in poll()
 *   held         the clients hold commands, queues full again
 *   completing   commands flowing: sends, takes, completions, the agent
 *                reaping, all at once
 *   closing      the server sent its last commands and closed every device;
 *                the clients have not drained their queues
 *
 * Every survivor thread must return from its call with ECONNABORTED (poll:
 * EPOLLERR | EPOLLHUP) within VDI_PROMPT_MS of the kill, every thread of
 * the survivors must end, the survivors exit cleanly, the module's
 * reference count is 0 again (rmmod would succeed) and the kernel log is
 * clean (kmemleak: /init, at the end).  The one cell where nothing may
 * abort: the secondary killed while configuring (it cannot have opened the
 * set yet: it holds a bare endpoint).
 *
 * Knobs: VDI_STRESS=long (each cell VDI_PEER_REPEAT times, 3 by default).
 */
#include "fuzz/vdi_stress.h"

enum victim { V_SERVER, V_CLIENT, V_SECONDARY, V_AGENT, V_COUNT };
enum state { S_CONFIGURING, S_INITIALIZING, S_QUEUED, S_HELD, S_COMPLETING,
	     S_CLOSING, S_COUNT };

static const char *const victim_names[] = { "server", "client", "secondary", "agent" };
static const char *const state_names[] = { "configuring", "initializing",
	"queued", "held", "completing", "closing" };

#define NDEV	3
#define DEPTH	4
#define P_S	0
#define P_C	1
#define P_C2	2
#define NOBS	8

/* one blocked call of a survivor thread */
struct obs {
	volatile int used;		/* 1: armed, 2: returned */
	volatile int err;		/* -errno, or poll revents */
	volatile int is_poll;
	volatile int64_t t_us;
	char what[32];
};

struct board {
	char name[VDI_NAME_MAX];
	enum state state;
	enum victim victim;
	volatile int created;		/* C: the set exists */
	volatile int configured;	/* C: GET_CONFIG returned */
	volatile int ready[3];		/* process reached the state */
	volatile int held[NDEV];	/* commands held per device */
	volatile uint64_t reaped;	/* agent's completions */
	volatile int agent_tid;
	volatile int finish;		/* test: end it (no-abort cell) */
	volatile int64_t t_kill_us;
	volatile int threads_done[3];	/* every thread returned */
	struct obs obs[3][NOBS];
};

static struct board *B;

/* ------------------------------------------------------------------ */
/* survivor bookkeeping                                               */

static struct obs *obs_arm(int proc, const char *what, bool is_poll)
{
	unsigned int i;

	for (i = 0; i < NOBS; i++)
		if (__sync_bool_compare_and_swap(&B->obs[proc][i].used, 0, 1)) {
			snprintf(B->obs[proc][i].what, sizeof(B->obs[proc][i].what),
				 "%s", what);
			B->obs[proc][i].is_poll = is_poll;
			return &B->obs[proc][i];
		}
	return NULL;
}

static void obs_done(struct obs *o, int err)
{
	if (!o)
		return;
	o->err = err;
	o->t_us = vdi_now_us();
	o->used = 2;
}

/* poll @fd for nothing: only EPOLLERR / EPOLLHUP end it */
static int poll_errhup(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do {
		r = poll(&p, 1, -1);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : p.revents;
}

struct watch {
	int proc, fd;
	short events;
	const char *what;
	pthread_t th;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct obs *o = obs_arm(w->proc, w->what, true);

	obs_done(o, poll_errhup(w->fd, w->events));
	return NULL;
}

static int watch_start(struct watch *w, int proc, int fd, short events,
		       const char *what)
{
	w->proc = proc;
	w->fd = fd;
	w->events = events;
	w->what = what;
	return pthread_create(&w->th, NULL, watch_main, w) ? -EAGAIN : 0;
}

static bool wait_flag(volatile int *f, int want, int ms)
{
	int64_t end = vdi_now_ms() + ms;

	while (*f < want) {
		if (vdi_now_ms() > end)
			return false;
		vdi_sleep_ms(1);
	}
	return true;
}

/* join @th within @ms */
static bool join_within(pthread_t th, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

/* ------------------------------------------------------------------ */
/* the server                                                         */

struct srv {
	int sset;
	int sdev[NDEV];
};

static void *agent_main(void *arg)
{
	struct srv *s = arg;
	struct vdi_completion c[16];
	struct obs *o;
	int r;

	B->agent_tid = vdi_gettid();
	for (;;) {
		o = obs_arm(P_S, "agent WAIT_COMPLETIONS", false);
		r = vdi_wait(s->sset, c, 16, -1);
		if (r > 0) {
			/* not the call that ends it: give the slot back */
			o->used = 0;
			B->reaped += r;
			continue;
		}
		obs_done(o, r);
		return NULL;
	}
}

/* SEND one command; 1, or -errno */
static int send_one(int sdev, uint64_t cookie)
{
	return vdi_send1(sdev, cookie, VDI_VDC_WRITE, 512, 0,
			 4096 * (cookie % 16));
}

static int fill_queue(int sdev, uint64_t *cookie)
{
	int r;

	while ((r = send_one(sdev, (*cookie)++)) == 1)
		;
	return r == -ENOBUFS ? 0 : r;
}

static int server_main(void)
{
	struct srv s = { .sset = -1 };
	struct watch wt;
	pthread_t agent;
	uint64_t cookie = 1;
	char dn[VDI_NAME_MAX];
	bool joined = false;
	struct obs *o;
	int i, r;

	for (i = 0; i < NDEV; i++)
		s.sdev[i] = -1;
	CK(wait_flag(&B->created, 1, 5000));
	s.sset = vdi_open_server(B->name);
	CK(s.sset >= 0);
	CKEQ(0, watch_start(&wt, P_S, s.sset, 0, "server watcher"));
	CKEQ(0, pthread_create(&agent, NULL, agent_main, &s));
	CKEQ(0, vdi_begin_config(s.sset, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
				 0, 512, 65536, DEPTH));
	if (B->state == S_CONFIGURING) {
		B->ready[P_S] = 1;
		goto wait_end;
	}
	CKEQ(0, vdi_end_config(s.sset, 65536));
	for (i = 0; i < NDEV; i++) {
		vdi_dev_name(dn, B->name, i);
		s.sdev[i] = vdi_open_device(s.sset, dn, O_CLOEXEC, NULL);
		CK(s.sdev[i] >= 0);
	}
	switch (B->state) {
	case S_INITIALIZING:
		B->ready[P_S] = 1;
		break;
	case S_HELD:
		for (i = 0; i < NDEV; i++)
			CKEQ(1, send_one(s.sdev[i], cookie++));
		for (i = 0; i < NDEV; i++)
			CK(wait_flag(&B->held[i], 1, 5000));
		/* queues full again */
		__attribute__((fallthrough));
	case S_QUEUED:
		for (i = 0; i < NDEV; i++)
			CKEQ(0, fill_queue(s.sdev[i], &cookie));
		B->ready[P_S] = 1;
		o = obs_arm(P_S, "server poll(POLLOUT)", true);
		obs_done(o, poll_errhup(s.sdev[0], POLLOUT));
		break;
	case S_COMPLETING:
		B->ready[P_S] = 1;
		for (;;) {
			o = obs_arm(P_S, "server SEND", false);
			r = send_one(s.sdev[cookie % NDEV], cookie);
			cookie++;
			if (r == 1 || r == -ENOBUFS) {
				o->used = 0;
				if (r == -ENOBUFS)
					vdi_sleep_ms(1);
				if (B->finish)
					break;
				continue;
			}
			obs_done(o, r);
			break;
		}
		break;
	case S_CLOSING:
		for (i = 0; i < NDEV; i++) {
			CKEQ(1, send_one(s.sdev[i], cookie++));
			CKEQ(1, send_one(s.sdev[i], cookie++));
			CKEQ(0, vdi_close_device(s.sdev[i]));
		}
		B->ready[P_S] = 1;
		break;
	default:
		break;
	}
wait_end:
	/* the end: an abort wakes the watcher; or the test says finish */
	while (!B->finish && !(joined = join_within(wt.th, 20)))
		;
	if (!joined) {
		vdi_abort(s.sset);
		CK(join_within(wt.th, 2000));
	}
	CK(join_within(agent, 2000));
	B->threads_done[P_S] = 1;
	for (i = 0; i < NDEV; i++)
		vdi_close(&s.sdev[i]);
	vdi_close(&s.sset);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the clients                                                        */

struct cdev {
	int proc, idx, fd;
	pthread_t th;
};

static void *cdev_main(void *arg)
{
	struct cdev *d = arg;
	struct vdi_command c[DEPTH];
	struct obs *o;
	char what[32];
	int r, n;

	snprintf(what, sizeof(what), "dev %d GET_COMMANDS", d->idx);
	switch (B->state) {
	case S_INITIALIZING:
		o = obs_arm(d->proc, what, false);
		obs_done(o, vdi_get(d->fd, c, DEPTH, -1));
		return NULL;
	case S_HELD:
		n = vdi_get(d->fd, c, 1, 5000);
		if (n != 1)
			return NULL;	/* the test sees held[] missing */
		B->held[d->idx] = 1;
		/* hold it, wait for the end */
		__attribute__((fallthrough));
	case S_QUEUED:
	case S_CLOSING:
		snprintf(what, sizeof(what), "dev %d poll()", d->idx);
		o = obs_arm(d->proc, what, true);
		obs_done(o, poll_errhup(d->fd, 0));
		return NULL;
	case S_COMPLETING:
		for (;;) {
			o = obs_arm(d->proc, what, false);
			n = vdi_get(d->fd, c, DEPTH, 20);
			if (n > 0) {
				struct vdi_done dn[DEPTH];

				for (int i = 0; i < n; i++)
					dn[i] = (struct vdi_done){ .tag = c[i].tag,
						.bytes_transferred = c[i].size };
				o->used = 0;
				o = obs_arm(d->proc, "COMPLETE", false);
				r = vdi_complete(d->fd, dn, n);
				if (r == n) {
					o->used = 0;
					continue;
				}
				obs_done(o, r);
				return NULL;
			}
			if (n == -ETIMEDOUT) {
				o->used = 0;
				if (B->finish)
					return NULL;
				continue;
			}
			obs_done(o, n);
			return NULL;
		}
	default:
		return NULL;
	}
}

static int client_main(int proc)
{
	struct cdev d[NDEV];
	struct watch wt;
	struct obs *o;
	char dn[VDI_NAME_MAX];
	bool joined = false;
	int set = -1, first, last, i, nd = 0, r;

	if (proc == P_C) {
		set = vdi_create_set(B->name, NDEV, 0);
		CK(set >= 0);
		B->created = 1;
		first = 0;
		last = NDEV - 2;
	} else {
		if (B->state == S_CONFIGURING) {
			/* too early to open the set: a bare endpoint */
			set = vdi_open();
			CK(set >= 0);
			B->ready[proc] = 1;
			while (!B->finish)
				vdi_sleep_ms(5);
			close(set);
			B->threads_done[proc] = 1;
			return 0;
		}
		CK(wait_flag(&B->configured, 1, 5000));
		set = vdi_open_secondary(B->name);
		CK(set >= 0);
		first = last = NDEV - 1;
	}
	CKEQ(0, watch_start(&wt, proc, set, 0,
			    proc == P_C ? "client watcher" : "secondary watcher"));
	o = obs_arm(proc, "GET_CONFIG", false);
	if (proc == P_C && B->state == S_CONFIGURING)
		B->ready[proc] = 1;
	r = vdi_get_config(set, -1, NULL);
	if (r == 0) {
		o->used = 0;
		if (proc == P_C)
			B->configured = 1;
		for (i = first; i <= last; i++) {
			vdi_dev_name(dn, B->name, i);
			d[nd].proc = proc;
			d[nd].idx = i;
			d[nd].fd = vdi_open_device(set, dn, O_CLOEXEC, NULL);
			CK(d[nd].fd >= 0);
			nd++;
		}
		for (i = 0; i < nd; i++)
			CKEQ(0, pthread_create(&d[i].th, NULL, cdev_main, &d[i]));
		if (B->state == S_HELD)
			for (i = 0; i < nd; i++)
				CK(wait_flag(&B->held[d[i].idx], 1, 5000));
		B->ready[proc] = 1;
	} else {
		obs_done(o, r);
	}
	while (!B->finish && !(joined = join_within(wt.th, 20)))
		;
	if (!joined) {
		vdi_abort(set);
		CK(join_within(wt.th, 2000));
	}
	for (i = 0; i < nd; i++)
		CK(join_within(d[i].th, 2000));
	B->threads_done[proc] = 1;
	for (i = 0; i < nd; i++)
		close(d[i].fd);
	close(set);
	return 0;
}

static int proc_main(struct vdi_chan *ch, void *arg)
{
	(void)ch;
	switch ((int)(intptr_t)arg) {
	case P_S:
		return server_main();
	case P_C:
		return client_main(P_C);
	default:
		return client_main(P_C2);
	}
}

/* ------------------------------------------------------------------ */
/* one cell                                                           */

static int cell(struct __test_metadata *_metadata, enum victim v, enum state st,
		struct vdi_kmsg *k)
{
	struct vdi_proc p[3];
	int vp = v == V_SERVER || v == V_AGENT ? P_S : v == V_CLIENT ? P_C : P_C2;
	bool want_abort = !(v == V_SECONDARY && st == S_CONFIGURING);
	int i, j, r, bad = 0;
	int64_t worst = 0;

	memset(B, 0, sizeof(*B));
	vdi_make_name(B->name, "pd");
	B->state = st;
	B->victim = v;
	for (i = 0; i < 3; i++)
		if (vdi_spawn(&p[i], proc_main, (void *)(intptr_t)i))
			return -1;
	for (i = 0; i < 3; i++)
		if (!wait_flag(&B->ready[i], 1, 10000)) {
			printf("# %s/%s: process %d never got ready\n",
			       victim_names[v], state_names[st], i);
			bad++;
		}
	if (st == S_COMPLETING) {	/* let commands flow first */
		int64_t end = vdi_now_ms() + 5000;

		while (B->reaped < 3 * DEPTH && vdi_now_ms() < end)
			vdi_sleep_ms(1);
		if (B->reaped < 3 * DEPTH) {
			printf("# %s/%s: only %llu completions before the kill\n",
			       victim_names[v], state_names[st],
			       (unsigned long long)B->reaped);
			bad++;
		}
	}
	vdi_sleep_ms(30);	/* every thread into its call */

	B->t_kill_us = vdi_now_us();
	if (v == V_AGENT)
		r = (int)syscall(SYS_tgkill, p[P_S].pid, B->agent_tid, SIGKILL);
	else
		r = kill(p[vp].pid, SIGKILL);
	if (r) {
		printf("# kill: %s\n", strerror(errno));
		bad++;
	}
	r = vdi_reap(&p[vp], 5000);
	if (r != 128 + SIGKILL) {
		printf("# %s/%s: victim ended with %d\n", victim_names[v],
		       state_names[st], r);
		bad++;
	}

	if (!want_abort) {
		/* nothing may wake for a while; then the test ends it */
		vdi_sleep_ms(VDI_PROMPT_MS);
		for (i = 0; i < 3; i++)
			for (j = 0; j < NOBS; j++)
				if (i != vp && B->obs[i][j].used == 2) {
					printf("# %s/%s: %s returned %d: nothing should abort\n",
					       victim_names[v], state_names[st],
					       B->obs[i][j].what, B->obs[i][j].err);
					bad++;
				}
	} else {
		/* every survivor's call returns (checked below), then they end */
		int64_t end = vdi_now_ms() + 3000;
		bool all;

		do {
			all = true;
			for (i = 0; i < 3; i++)
				for (j = 0; j < NOBS; j++)
					if (i != vp && B->obs[i][j].used == 1)
						all = false;
			if (!all)
				vdi_sleep_ms(2);
		} while (!all && vdi_now_ms() < end);
	}
	B->finish = 1;		/* bare endpoints, and the no-abort cell */
	for (i = 0; i < 3; i++) {
		if (i == vp)
			continue;
		r = vdi_reap(&p[i], 5000);
		if (r) {
			printf("# %s/%s: survivor %d exited with %d%s\n",
			       victim_names[v], state_names[st], i, r,
			       B->threads_done[i] ? "" : " (a thread never returned)");
			bad++;
		}
		if (!want_abort)
			continue;
		for (j = 0; j < NOBS; j++) {
			struct obs *o = &B->obs[i][j];
			int64_t dt = (o->t_us - B->t_kill_us) / 1000;
			bool ok;

			if (!o->used)
				continue;
			if (o->used != 2) {
				printf("# %s/%s: %s never returned\n", victim_names[v],
				       state_names[st], o->what);
				bad++;
				continue;
			}
			ok = o->is_poll ? (o->err > 0 && (o->err & (POLLERR | POLLHUP)) ==
					   (POLLERR | POLLHUP)) : o->err == -ECONNABORTED;
			if (!ok || dt > VDI_PROMPT_MS || dt < 0) {
				printf("# %s/%s: %s returned %s%d after %lld ms\n",
				       victim_names[v], state_names[st], o->what,
				       o->is_poll ? "revents " : "", o->err,
				       (long long)dt);
				bad++;
			}
			if (dt > worst)
				worst = dt;
		}
	}
	for (i = 0; i < 3; i++)
		vdi_proc_kill(&p[i]);
	if (vdi_refcnt_settle(0, 3000) > 0) {
		printf("# %s/%s: module reference count %ld after the cell\n",
		       victim_names[v], state_names[st], vdi_module_refcnt());
		bad++;
	}
	if (vdi_kmsg_scan(k, NULL, NULL))
		bad++;
	if (bad)
		printf("# %s killed while %s: %d problems\n", victim_names[v],
		       state_names[st], bad);
	else
		printf("# %-9s killed while %-12s: survivors %s in %lld ms\n",
		       victim_names[v], state_names[st],
		       want_abort ? "saw ECONNABORTED" : "unaffected",
		       (long long)worst);
	return bad;
}

FIXTURE(pd) {
	struct vdi_kmsg k;
};

FIXTURE_SETUP(pd)
{
	B = vdi_shared(sizeof(*B));
	ASSERT_NE(NULL, B);
	vdi_kmsg_open(&self->k);
	ASSERT_EQ(0, vdi_refcnt_settle(0, 3000) > 0);
}

FIXTURE_TEARDOWN(pd)
{
	vdi_kmsg_close(&self->k);
	munmap(B, sizeof(*B));
}

static void row(struct __test_metadata *_metadata, FIXTURE_DATA(pd) *self,
		enum victim v)
{
	long repeat = vdi_knob("VDI_PEER_REPEAT", 1, 3);
	int bad = 0, cells = 0;

	for (long n = 0; n < repeat; n++)
		for (enum state st = 0; st < S_COUNT; st++) {
			bad += cell(_metadata, v, st, &self->k) != 0;
			cells++;
		}
	printf("# %s: %d cells, %d failed\n", victim_names[v], cells, bad);
	EXPECT_EQ(0, bad);
}

TEST_F_TIMEOUT(pd, server_killed_in_every_state, 600)
{
	row(_metadata, self, V_SERVER);
}

TEST_F_TIMEOUT(pd, client_killed_in_every_state, 600)
{
	row(_metadata, self, V_CLIENT);
}

TEST_F_TIMEOUT(pd, secondary_killed_in_every_state, 600)
{
	row(_metadata, self, V_SECONDARY);
}

TEST_F_TIMEOUT(pd, agent_thread_killed_in_every_state, 600)
{
	row(_metadata, self, V_AGENT);
}

/*
 * The agent thread alone ends (pthread_cancel in WAIT_COMPLETIONS, or it
 * returns): the set fd is its process's, so nothing aborts; a new agent
 * picks up every completion, none lost, and the set ends normally.
 */
static void *cancel_agent(void *arg)
{
	struct vdi_completion c[4];
	int fd = *(int *)arg;

	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	for (;;)
		vdi_wait(fd, c, 4, -1);
	return NULL;
}

TEST(agent_thread_exits_without_abort)
{
	struct vdi_completion cpl[16];
	struct vdi_command cmd[4];
	struct vdi_done d[4];
	struct vdi_sess s;
	pthread_t th;
	int n, got = 0, err;

	ASSERT_EQ(0, vdi_sess_simple(&s, 1, 4));
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_agent, &s.sset));
	vdi_sleep_ms(20);
	ASSERT_EQ(0, pthread_cancel(th));
	ASSERT_EQ(0, pthread_join(th, NULL));
	/* not aborted: commands go through, a new agent gets them all */
	for (n = 0; n < 4; n++)
		ASSERT_EQ(1, vdi_send1(s.sdev[0], 100 + n, VDI_VDC_WRITE, 512, n, 0));
	ASSERT_EQ(4, vdi_get(s.cdev[0], cmd, 4, 1000));
	for (n = 0; n < 4; n++)
		d[n] = (struct vdi_done){ .tag = cmd[n].tag, .bytes_transferred = 512 };
	ASSERT_EQ(4, vdi_complete(s.cdev[0], d, 4));
	got = vdi_wait_n(s.sset, cpl, 4, 2000, &err);
	EXPECT_EQ(4, got);
	EXPECT_EQ(0, vdi_close_device(s.sdev[0]));
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s.cdev[0], cmd, 1, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s.sset, cpl, 1, 1000));
	vdi_sess_close(&s);
	EXPECT_EQ(0, vdi_refcnt_settle(0, 3000) > 0);
}

/*
 * The server killed inside END_CONFIG while it allocates a large area: the
 * allocation stops at the fatal signal (EINTR path), nothing leaks, the
 * client waiting in GET_CONFIG gets ECONNABORTED.
 */
struct endcfg {
	char name[VDI_NAME_MAX];
	volatile int created, in_end;
};

static int endcfg_server(struct vdi_chan *ch, void *arg)
{
	struct endcfg *e = arg;
	int s;

	(void)ch;
	while (!e->created)
		vdi_sleep_ms(1);
	s = vdi_open_server(e->name);
	CK(s >= 0);
	CKEQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	e->in_end = 1;
	vdi_end_config(s, 128 << 20);
	e->in_end = 2;		/* finished before the kill: still fine */
	pause();
	return 0;
}

TEST_F_TIMEOUT(pd, server_killed_inside_end_config, 120)
{
	struct endcfg *e = vdi_shared(sizeof(*e));
	struct vdi_waiter w;
	struct vdi_get_config g;
	struct vdi_proc p;
	int64_t t_kill;
	int c, rounds, i;

	ASSERT_NE(NULL, e);
	rounds = (int)vdi_knob("VDI_PEER_REPEAT", 3, 6);
	for (i = 0; i < rounds; i++) {
		memset((void *)e, 0, sizeof(*e));
		vdi_make_name(e->name, "endcfg");
		ASSERT_EQ(0, vdi_spawn(&p, endcfg_server, e));
		c = vdi_create_set(e->name, 1, 0);
		ASSERT_LE(0, c);
		e->created = 1;
		memset(&g, 0, sizeof(g));
		g.timeout_ms = -1;
		ASSERT_EQ(0, vdi_waiter_start(&w, c, VDI_IOC_GET_CONFIG, &g));
		while (!e->in_end)
			vdi_sleep_ms(1);
		vdi_sleep_ms(i * 3);	/* at various points of the allocation */
		t_kill = vdi_now_ms();
		kill(p.pid, SIGKILL);
		EXPECT_EQ(128 + SIGKILL, vdi_reap(&p, 10000));
		EXPECT_TRUE(vdi_waiter_done(&w, VDI_PROMPT_MS * 2));
		EXPECT_EQ(-ECONNABORTED, w.ret);
		EXPECT_GE(VDI_PROMPT_MS, w.t_end_us / 1000 - t_kill);
		close(c);
		EXPECT_EQ(0, vdi_refcnt_settle(0, 3000));
	}
	EXPECT_EQ(0, vdi_kmsg_scan(&self->k, NULL, NULL));
	munmap(e, sizeof(*e));
}

TEST_HARNESS_MAIN
