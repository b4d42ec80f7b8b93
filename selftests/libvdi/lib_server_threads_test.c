// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi, server role, from several threads: Close while another thread
 * is inside a call of the same set (blocked in WaitAgent, or held in the
 * middle of a SendCommand), and SendCommand from several threads per
 * device while a controller thread closes the devices.  The server is this
 * process; the client a child (lt_rc_main, or a thread per device).
 */
#include "lib_test_util.h"

struct waiter {
	pthread_t th;
	vdi_server_set *set;
	int64_t timeout;
	pid_t tid;
	int ret;
	int done;		/* under lt_log_g.mu */
};

static void *waiter_main(void *arg)
{
	struct waiter *w = (struct waiter *)arg;
	int r;

	__atomic_store_n(&w->tid, lt_gettid(), __ATOMIC_RELEASE);
	r = vdi_server_wait_agent(w->set, w->timeout);

	pthread_mutex_lock(&lt_log_g.mu);
	w->ret = r;
	w->done = 1;
	pthread_cond_broadcast(&lt_log_g.cv);
	pthread_mutex_unlock(&lt_log_g.mu);
	return NULL;
}

static bool flag_wait(int *flag, int timeout_ms)
{
	int64_t end = lt_now_ms() + timeout_ms;
	int v;

	for (;;) {
		pthread_mutex_lock(&lt_log_g.mu);
		v = *flag;
		pthread_mutex_unlock(&lt_log_g.mu);
		if (v || lt_now_ms() >= end)
			return v;
		lt_sleep_ms(1);
	}
}

/*
 * Whether thread @tid of this process sleeps in futex() (202 on x86-64),
 * as one blocked in vdi_server_wait_agent() does: -1 if /proc cannot tell.
 */
static int in_futex(pid_t tid)
{
	return lt_in_syscall(tid, SYS_futex);
}

/* Until the waiter blocks inside the library (Close must find it in). */
static bool settle(struct waiter *w)
{
	int64_t end = lt_now_ms() + 3000;
	pid_t tid;
	int r;

	while (lt_now_ms() < end) {
		tid = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);
		r = tid ? in_futex(tid) : 0;
		if (r < 0) {
			lt_sleep_ms(200);	/* cannot tell: give it time */
			return true;
		}
		if (r == 1)
			return true;
		lt_sleep_ms(1);
	}
	return false;
}

TEST(close_ends_a_wait_agent_on_another_thread)
{
	struct lt_pair_opts o;
	struct waiter w[2];
	struct lt_pair p;
	int i, r;

	memset(&o, 0, sizeof(o));
	o.no_agent = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "closewait", &o));
	memset(w, 0, sizeof(w));
	w[0].timeout = INFINITE;
	w[1].timeout = 60000;
	for (i = 0; i < 2; i++) {
		w[i].set = p.set;
		ASSERT_EQ(0, pthread_create(&w[i].th, NULL, waiter_main, &w[i]));
	}
	for (i = 0; i < 2; i++)
		ASSERT_TRUE(settle(&w[i]));
	EXPECT_FALSE(flag_wait(&w[0].done, 0));
	/* Close: the waiters return (the set is aborted), then it frees. */
	r = vdi_server_close(p.set);
	p.set = NULL;
	EXPECT_VD(VD_E_PROTOCOL, r);	/* a device was open */
	for (i = 0; i < 2; i++) {
		EXPECT_TRUE(flag_wait(&w[i].done, 3000)) {
			TH_LOG("waiter %d still in vdi_server_wait_agent after "
			       "Close returned", i);
		}
		if (!w[i].done) {
			pthread_detach(w[i].th);
			continue;
		}
		pthread_join(w[i].th, NULL);
		EXPECT_VD(VD_E_ABORT, w[i].ret);
	}
	EXPECT_VD(VD_E_ABORT, lt_rc_serve(&p.rc, 0, -1, -1, -1, 1000, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/*
 * A SendCommand held in the middle: its command array crosses into a page
 * that faults, and the fault handler (on the sending thread) waits until
 * the test lets it go on.
 */
static uint8_t *hold_page;
static size_t hold_len;
static int hold_pipe[2];	/* the handler reads its release here */
static int held;		/* under lt_log_g.mu */

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	uint8_t *a = (uint8_t *)si->si_addr;
	struct pollfd pfd;
	char c;

	(void)sig;
	(void)uc;
	if (a < hold_page || a >= hold_page + hold_len) {
		signal(SIGSEGV, SIG_DFL);
		return;
	}
	__atomic_store_n(&held, 1, __ATOMIC_RELEASE);
	pfd.fd = hold_pipe[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) == 1 && read(hold_pipe[0], &c, 1) != 1)
		c = 0;
	mprotect(hold_page, hold_len, PROT_READ | PROT_WRITE);
}

struct sender {
	pthread_t th;
	vdi_server_device *dev;
	VDS_Command **v;
	unsigned int count, sent;
	int ret;
	int done;
};

static void *sender_main(void *arg)
{
	struct sender *s = (struct sender *)arg;
	int r;

	r = vdi_server_send_commands(s->dev, s->v, s->count, &s->sent);
	pthread_mutex_lock(&lt_log_g.mu);
	s->ret = r;
	s->done = 1;
	pthread_mutex_unlock(&lt_log_g.mu);
	return NULL;
}

struct closer {
	pthread_t th;
	vdi_server_set *set;
	int ret;
	int done;
};

static void *closer_main(void *arg)
{
	struct closer *c = (struct closer *)arg;
	int r = vdi_server_close(c->set);

	pthread_mutex_lock(&lt_log_g.mu);
	c->ret = r;
	c->done = 1;
	pthread_mutex_unlock(&lt_log_g.mu);
	return NULL;
}

TEST(close_waits_for_a_send_in_progress)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct sigaction sa, old;
	struct lt_pair_opts o;
	struct lt_cmd c[4];
	struct closer cl;
	struct sender s;
	struct lt_pair p;
	uint8_t *mem;
	int64_t end;
	int i, calls;

	memset(&o, 0, sizeof(o));
	o.depth = 16;
	ASSERT_EQ(0, lt_pair_setup(&p, "closesend", &o));
	mem = (uint8_t *)mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, pipe2(hold_pipe, O_CLOEXEC));
	memset(&s, 0, sizeof(s));
	s.v = (VDS_Command **)(mem + pg) - 2;
	for (i = 0; i < 4; i++) {
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
		s.v[i] = &c[i].cmd;
	}
	s.dev = p.dev[0];
	s.count = 4;
	hold_page = mem + pg;
	hold_len = pg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, &old));
	ASSERT_EQ(0, mprotect(hold_page, hold_len, PROT_NONE));
	ASSERT_EQ(0, pthread_create(&s.th, NULL, sender_main, &s));
	end = lt_now_ms() + 3000;
	while (!__atomic_load_n(&held, __ATOMIC_ACQUIRE) && lt_now_ms() < end)
		lt_sleep_ms(1);
	ASSERT_TRUE(__atomic_load_n(&held, __ATOMIC_ACQUIRE));

	/* SendCommand is inside the library: Close must wait for it. */
	memset(&cl, 0, sizeof(cl));
	cl.set = p.set;
	ASSERT_EQ(0, pthread_create(&cl.th, NULL, closer_main, &cl));
	lt_sleep_ms(300);
	EXPECT_FALSE(flag_wait(&cl.done, 0)) {
		TH_LOG("Close returned (and freed the set and its devices) "
		       "while a SendCommand on another thread was still "
		       "inside the library");
	}
	/* Let the send go on: it finds the set aborted by Close. */
	ASSERT_EQ(1, write(hold_pipe[1], "x", 1));
	EXPECT_TRUE(flag_wait(&s.done, 3000));
	EXPECT_TRUE(flag_wait(&cl.done, 3000));
	pthread_join(s.th, NULL);
	pthread_join(cl.th, NULL);
	sigaction(SIGSEGV, &old, NULL);
	p.set = NULL;
	EXPECT_VD(VD_E_PROTOCOL, cl.ret);
	EXPECT_VD(VD_E_ABORT, s.ret);
	/* Each command's routine ran exactly once: the ones sent through the
	 * agent (aborted), the failing one by SendCommand; none after it. */
	calls = 0;
	for (i = 0; i < 4; i++) {
		if ((unsigned int)i <= s.sent) {
			EXPECT_EQ(1, c[i].calls);
			EXPECT_EQ(ERROR_OPERATION_ABORTED, c[i].code);
		} else {
			EXPECT_EQ(0, c[i].calls);
		}
		calls += c[i].calls;
	}
	EXPECT_EQ(calls, lt_calls());
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	munmap(mem, 2 * pg);
	close(hold_pipe[0]);
	close(hold_pipe[1]);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* SendCommand from several threads per device, CloseDevice meanwhile  */

#define NDEV	4
#define PERDEV	2		/* sending threads per device */
#define NCMD	3000		/* commands per sending thread, at most */

/* The client: a thread per device, serving until the device ends. */
struct cthread {
	vdi_client_device *dev;
	int ret, served;
};

static void *cthread_main(void *arg)
{
	struct cthread *t = (struct cthread *)arg;
	VDC_Command *cmd;
	int r;

	for (;;) {
		r = vdi_client_get_command(t->dev, 5000, &cmd);
		if (r)
			break;
		r = vdi_client_complete_command(t->dev, cmd, 0, 0,
						cmd->position);
		if (r)
			break;
		t->served++;
	}
	t->ret = r;
	return NULL;
}

static int client_main(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	struct cthread t[NDEV];
	pthread_t th[NDEV];
	char dn[LT_NAME_MAX];
	vdi_client_set *set;
	struct lt_msg m;
	VDConfig cfg;
	int i;

	set = vdi_client_set_new();
	CK(set);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = NDEV;
	CKEQ(NOERROR, vdi_client_create(set, name, &cfg));
	lt_msg_init(&m, 2);
	CK(lt_send(self, &m) == 0);
	CKEQ(NOERROR, vdi_client_get_configuration(set, 10000, &cfg));
	memset(t, 0, sizeof(t));
	for (i = 0; i < NDEV; i++) {
		lt_dev_name(dn, name, (unsigned int)i);
		CKEQ(NOERROR, vdi_client_open_device(set, dn, &t[i].dev));
		CK(pthread_create(&th[i], NULL, cthread_main, &t[i]) == 0);
	}
	for (i = 0; i < NDEV; i++) {
		pthread_join(th[i], NULL);
		CKEQ(VD_E_CLOSE, t[i].ret);
	}
	CKEQ(NOERROR, vdi_client_close(set));
	vdi_client_set_free(set);
	return 0;
}

struct sthread {
	pthread_t th;
	vdi_server_device *dev;
	struct lt_cmd *cmds;
	int ntried, last, sync_failures;
};

static void *sthread_main(void *arg)
{
	struct sthread *t = (struct sthread *)arg;
	int i, r = NOERROR;

	/* Until the device is closed: every command tried gets its routine
	 * once, through the agent or (refused) from SendCommand. */
	for (i = 0; i < NCMD; i++) {
		lt_cmd_init(&t->cmds[i], i, VDC_Flush, 0, i);
		r = vdi_server_send_command(t->dev, &t->cmds[i].cmd);
		if (r == VD_E_QUEUE_FULL) {
			t->sync_failures++;
			sched_yield();
			continue;
		}
		if (r != NOERROR) {
			t->sync_failures++;
			i++;
			break;
		}
	}
	t->last = r;
	t->ntried = i;
	return NULL;
}

TEST(send_from_many_threads_while_devices_close)
{
	struct sthread st[NDEV][PERDEV];
	vdi_server_device *dev[NDEV];
	char name[LT_NAME_MAX], dn[LT_NAME_MAX];
	struct lt_agent agent;
	struct lt_peer rc;
	vdi_server_set *set;
	struct lt_msg m;
	int d, k, i, tried = 0, once = 0, bad = 0;

	lt_name(name, "sendmt");
	ASSERT_EQ(0, lt_spawn(&rc, client_main, name));
	ASSERT_EQ(0, lt_recv(&rc, &m, 5000));
	ASSERT_VD(NOERROR, vdi_server_open(&set, NULL, name));
	ASSERT_VD(NOERROR, vdi_server_set_queue_depth(set, 8));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(set, VDF_WriteMedia,
							  0, 512, 65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(set));
	for (d = 0; d < NDEV; d++) {
		lt_dev_name(dn, name, (unsigned int)d);
		ASSERT_VD(NOERROR, vdi_server_open_device(set, dn, &dev[d]));
	}
	ASSERT_EQ(0, lt_agent_start(&agent, set));
	memset(st, 0, sizeof(st));
	for (d = 0; d < NDEV; d++)
		for (k = 0; k < PERDEV; k++) {
			st[d][k].dev = dev[d];
			st[d][k].cmds = (struct lt_cmd *)calloc(NCMD,
						sizeof(struct lt_cmd));
			ASSERT_TRUE(st[d][k].cmds != NULL);
			ASSERT_EQ(0, pthread_create(&st[d][k].th, NULL,
						    sthread_main, &st[d][k]));
		}
	/* A controller closes the devices while they send. */
	lt_sleep_ms(50);
	for (d = 0; d < NDEV; d++) {
		EXPECT_VD(NOERROR, vdi_server_close_device(dev[d]));
		lt_sleep_ms(5);
	}
	for (d = 0; d < NDEV; d++)
		for (k = 0; k < PERDEV; k++)
			pthread_join(st[d][k].th, NULL);
	ASSERT_TRUE(lt_agent_done(&agent, 10000));
	EXPECT_VD(NOERROR, agent.ret);
	/* Every command tried had its routine run exactly once. */
	for (d = 0; d < NDEV; d++)
		for (k = 0; k < PERDEV; k++) {
			struct sthread *t = &st[d][k];

			if (t->last != NOERROR && t->last != VD_E_QUEUE_FULL)
				EXPECT_VD(VD_E_PROTOCOL, t->last);
			for (i = 0; i < t->ntried; i++) {
				tried++;
				if (t->cmds[i].calls == 1)
					once++;
				else
					bad++;
			}
			free(t->cmds);
		}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(tried, once);
	EXPECT_EQ(tried, lt_calls());
	EXPECT_VD(NOERROR, vdi_server_close(set));
	EXPECT_EQ(0, lt_reap(&rc, 10000));
	lt_peer_kill(&rc);
}

TEST_HARNESS_MAIN
