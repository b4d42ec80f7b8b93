// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi, client role, driven the way a threaded backup client drives it:
 * per device a fetch thread (GetCommand) and a completion thread
 * (CompleteCommand), and a controller thread that calls SignalAbort and
 * Close while the device threads are still inside the library.
 *
 *  - fetch_and_complete_on_different_threads: thousands of commands per
 *    device, each fetched on one thread and completed on another;
 *  - abort_and_close_under_blocked_device_threads: the controller pattern,
 *    then every call on the device objects after Close;
 *  - stress.abort_and_close_at_random_points: iterations of the same with
 *    the controller acting at random points, until VDI_STRESS_ITERS
 *    iterations (2000; VDI_STRESS=long: 20000) or VDI_STRESS_SECS seconds
 *    (40; long: 150); the seed is printed, VDI_STRESS_SEED replays it.
 *
 * The server is a child process with a sender thread per device and the
 * completion agent; it serves one set per message and answers with what
 * it saw.
 */
#include "lib_test_util.h"

#include <semaphore.h>

#define NDEV		4
#define DEPTH		8		/* commands in flight per device */
#define BUFSZ		4096
#define SRV_ALARM	600		/* the server child's own limit */
#define SRV_SET		7		/* the server's one request */

/* Under ThreadSanitizer (mk/debug.mk) everything runs some 10x slower. */
#ifdef __SANITIZE_THREAD__
#define SLOW		10
#define SLOW_TSAN	1
#else
#define SLOW		1
#define SLOW_TSAN	0
#endif

/* ------------------------------------------------------------------ */
/* the server process                                                 */

struct sdev;

struct scmd {
	VDS_Command cmd;
	struct sdev *d;
	int slot;
	bool sending;			/* inside SendCommand */
};

struct sdev {
	int idx;
	vdi_server_device *dev;
	sem_t room;
	pthread_mutex_t mu;
	bool busy[DEPTH];
	uint8_t *buf[DEPTH];
	struct scmd cmds[DEPTH];
	int per;			/* commands to send, < 0: until abort */
	int *stop;
	int sent, ok, aborted, bad, ret;
};

static void scmd_done(VDS_Command *vc)
{
	struct scmd *c = (struct scmd *)vc;
	struct sdev *d = c->d;

	pthread_mutex_lock(&d->mu);
	if (vc->completionCode == 0 && vc->bytesTransferred == vc->size)
		d->ok++;
	else if (vc->completionCode == ERROR_OPERATION_ABORTED)
		d->aborted++;
	else if (!c->sending)
		d->bad++;
	d->busy[c->slot] = false;
	pthread_mutex_unlock(&d->mu);
	sem_post(&d->room);
}

/* A slot free within 20 ms, -1 when none (check *stop again). */
static int sdev_slot(struct sdev *d)
{
	struct timespec ts;
	int slot;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 20 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (sem_timedwait(&d->room, &ts))
		return -1;
	pthread_mutex_lock(&d->mu);
	for (slot = 0; slot < DEPTH && d->busy[slot]; slot++)
		;
	if (slot < DEPTH)
		d->busy[slot] = true;
	pthread_mutex_unlock(&d->mu);
	return slot < DEPTH ? slot : -1;
}

static void *sdev_main(void *arg)
{
	struct sdev *d = (struct sdev *)arg;
	struct scmd *c;
	int i, slot, r, back;

	for (i = 0; d->per < 0 || i < d->per;) {
		if (__atomic_load_n(d->stop, __ATOMIC_ACQUIRE))
			return NULL;
		slot = sdev_slot(d);
		if (slot < 0)
			continue;
		c = &d->cmds[slot];
		memset(c, 0, sizeof(*c));
		c->d = d;
		c->slot = slot;
		c->cmd.commandCode = VDC_Write;
		c->cmd.size = BUFSZ;
		c->cmd.inPosition = (int64_t)i * BUFSZ;
		c->cmd.buffer = d->buf[slot];
		c->cmd.completionRoutine = (uint8_t *)(uintptr_t)scmd_done;
		lt_fill(c->cmd.buffer, BUFSZ, c->cmd.inPosition,
			(uint8_t)d->idx);
		c->sending = true;	/* a refusal calls the routine here */
		r = vdi_server_send_command(d->dev, &c->cmd);
		c->sending = false;
		if (r != NOERROR) {
			/* Refused (the set aborted): the routine ran. */
			d->ret = r;
			return NULL;
		}
		d->sent++;
		i++;
	}
	/* Everything back, then the normal end of this device. */
	for (back = 0; back < DEPTH;) {
		if (__atomic_load_n(d->stop, __ATOMIC_ACQUIRE))
			return NULL;
		if (sdev_slot(d) >= 0)
			back++;
	}
	d->ret = vdi_server_close_device(d->dev);
	return NULL;
}

/*
 * One set: q[0] the iteration, a[0] devices, a[1] commands per device
 * (< 0: until the client aborts), a[2] the client's pid.  Answers a[0] the
 * agent's code, a[1] commands sent, a[2] completed fine, a[3] completed
 * with another code than success or ERROR_OPERATION_ABORTED.
 */
static int srv_one(struct lt_msg *m)
{
	struct sdev d[LT_MAXDEV];
	pthread_t th[LT_MAXDEV];
	char name[LT_NAME_MAX], dn[LT_NAME_MAX];
	vdi_server_set *set = NULL;
	struct lt_agent ag;
	int ndev = m->a[0], i, k, r, started = 0;
	int stop = 0;

	snprintf(name, sizeof(name), "lv-st-%d-%lld", m->a[2],
		 (long long)m->q[0]);
	memset(d, 0, sizeof(d));
	r = vdi_server_open(&set, NULL, name);
	if (!r)
		r = vdi_server_begin_configuration(set, VDF_WriteMedia |
						   VDF_ReadMedia, 0, 512,
						   65536, 1000);
	if (!r)
		r = vdi_server_request_buffers(set, BUFSZ, 0,
					       (uint32_t)(ndev * DEPTH));
	if (!r)
		r = vdi_server_end_configuration(set);
	for (i = 0; i < ndev && !r; i++) {
		lt_dev_name(dn, name, (unsigned int)i);
		d[i].idx = i;
		d[i].per = m->a[1];
		d[i].stop = &stop;
		sem_init(&d[i].room, 0, DEPTH);
		pthread_mutex_init(&d[i].mu, NULL);
		r = vdi_server_open_device(set, dn, &d[i].dev);
		for (k = 0; k < DEPTH && !r; k++)
			r = vdi_server_allocate_buffer(set, &d[i].buf[k],
						       BUFSZ, 0);
	}
	/* SendCommand wants the agent running. */
	if (!r)
		r = lt_agent_start(&ag, set);
	if (r) {
		/* The client may abort before the server is done: fine. */
		if (r != VD_E_ABORT)
			fprintf(stderr, "# server: %s: %s\n", lt_code(r),
				vdi_last_error());
		m->a[0] = r;
		m->a[1] = m->a[2] = m->a[3] = 0;
		goto out;
	}
	for (i = 0; i < ndev; i++, started++)
		if (pthread_create(&th[i], NULL, sdev_main, &d[i]))
			break;
	/* The agent returns at the normal end or on the abort: the
	 * senders stop then. */
	while (!lt_agent_done(&ag, 1000))
		;
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < ndev; i++)
		sem_post(&d[i].room);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	m->a[0] = ag.ret;
	m->a[1] = m->a[2] = m->a[3] = 0;
	for (i = 0; i < ndev; i++) {
		m->a[1] += d[i].sent;
		m->a[2] += d[i].ok;
		m->a[3] += d[i].bad;
	}
out:
	if (set)
		vdi_server_close(set);
	return 0;
}

static int srv_main(struct lt_peer *self, void *arg)
{
	struct lt_msg m;
	int r;

	alarm(SRV_ALARM);
	for (;;) {
		r = lt_recv(self, &m, 60000);
		if (r || m.op == LT_OP_EXIT)
			return r ? 1 : 0;
		r = srv_one(&m);
		if (r)
			return r;
		CK(lt_send(self, &m) == 0);
	}
}

/* ------------------------------------------------------------------ */
/* the client: a fetch thread and a completion thread per device      */

struct cdev {
	vdi_client_device *dev;
	int idx;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	VDC_Command *q[DEPTH * 2];
	unsigned int qh, qn;
	bool fetch_done;
	int fetch_ret;			/* GetCommand's last code */
	int fetched, completed, complete_bad, payload_bad;
	int complete_last;		/* a CompleteCommand code not NOERROR */
	bool check;			/* read the buffers */
	unsigned int seed;		/* random delays of the completion */
	int max_delay_us;
};

/* GetCommands in batches: the records' bookkeeping works longest. */
static void *fetch_main(void *arg)
{
	struct cdev *c = (struct cdev *)arg;
	VDC_Command *cmds[DEPTH];
	unsigned int i, n;
	int r;

	for (;;) {
		r = vdi_client_get_commands(c->dev, INFINITE, cmds, DEPTH, &n);
		if (r != NOERROR)
			break;
		pthread_mutex_lock(&c->mu);
		for (i = 0; i < n; i++)
			c->q[(c->qh + c->qn++) % (DEPTH * 2)] = cmds[i];
		c->fetched += n;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_lock(&c->mu);
	c->fetch_ret = r;
	c->fetch_done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Complete what is there, as one CompleteCommands. */
static void *complete_main(void *arg)
{
	struct cdev *c = (struct cdev *)arg;
	vdi_client_completion comp[DEPTH * 2];
	bool ok[DEPTH * 2];
	unsigned int i, k, n, done;
	VDC_Command *cmd;
	int r;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->qn && !c->fetch_done)
			pthread_cond_wait(&c->cv, &c->mu);
		for (n = 0; c->qn; n++) {
			cmd = c->q[c->qh];
			c->qh = (c->qh + 1) % (DEPTH * 2);
			c->qn--;
			memset(&comp[n], 0, sizeof(comp[n]));
			comp[n].cmd = cmd;
			comp[n].bytesTransferred = (uint32_t)cmd->size;
		}
		pthread_mutex_unlock(&c->mu);
		if (!n)
			break;
		/* The buffers are the client's until CompleteCommand. */
		for (i = 0; i < n; i++)
			ok[i] = !c->check ||
				lt_check(comp[i].cmd->buffer, BUFSZ,
					 comp[i].cmd->position,
					 (uint8_t)c->idx);
		if (c->max_delay_us)
			usleep(rand_r(&c->seed) % (unsigned int)c->max_delay_us);
		for (i = 0; i < n;) {
			r = vdi_client_complete_commands(c->dev, &comp[i],
							 n - i, &done);
			/* Not aborted when completed: not when read either
			 * (after an abort the server may reuse a buffer). */
			for (k = 0; k < done; k++)
				c->payload_bad += !ok[i + k];
			c->completed += done;
			i += done;
			if (r == NOERROR) {
				if (!done)
					break;
				continue;
			}
			c->complete_last = r;
			if (r != VD_E_ABORT)
				c->complete_bad++;
			i++;		/* that one failed: the next */
		}
	}
	return NULL;
}

enum ctl_how {
	CTL_ABORT_CLOSE,	/* SignalAbort, then Close at once */
	CTL_CLOSE,		/* Close alone (it aborts) */
	CTL_ABORT_WAIT_CLOSE,	/* SignalAbort, a pause, Close */
	CTL_NONE,		/* nothing: the server ends the devices */
};

struct ctl {
	vdi_client_set *set;
	enum ctl_how how;
	unsigned int delay_us, pause_us;
	int abort_ret, close_ret;
};

static void *ctl_main(void *arg)
{
	struct ctl *t = (struct ctl *)arg;

	if (t->delay_us)
		usleep(t->delay_us);
	if (t->how == CTL_ABORT_CLOSE || t->how == CTL_ABORT_WAIT_CLOSE)
		t->abort_ret = vdi_client_signal_abort(t->set);
	if (t->how == CTL_ABORT_WAIT_CLOSE && t->pause_us)
		usleep(t->pause_us);
	t->close_ret = vdi_client_close(t->set);
	return NULL;
}

struct run {
	int ndev, per;
	enum ctl_how how;
	unsigned int delay_us, pause_us, seed;
	int max_delay_us;
	/* results */
	struct cdev c[NDEV];
	struct ctl ctl;
	struct lt_msg srv;
	int setup_ret;
};

/*
 * One set through the server peer @srv: Create, the devices, the threads,
 * the controller (CTL_NONE: Close after the threads ended).  @set may be
 * reused (Create again after Close).
 */
static int run_one(struct lt_peer *srv, vdi_client_set *set, long iter,
		   struct run *r)
{
	pthread_t fth[NDEV], cth[NDEV], tth;
	char name[LT_NAME_MAX], dn[LT_NAME_MAX];
	struct lt_msg m;
	VDConfig cfg;
	int i, ret;

	snprintf(name, sizeof(name), "lv-st-%d-%ld", (int)getpid(), iter);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = (uint32_t)r->ndev;
	r->setup_ret = vdi_client_create(set, name, &cfg);
	if (r->setup_ret)
		return -1;
	lt_msg_init(&m, SRV_SET);
	m.a[0] = r->ndev;
	m.a[1] = r->per;
	m.a[2] = (int)getpid();
	m.q[0] = iter;
	if (lt_send(srv, &m))
		return -2;
	ret = vdi_client_get_configuration(set, 10000, &cfg);
	for (i = 0; i < r->ndev && !ret; i++) {
		memset(&r->c[i], 0, sizeof(r->c[i]));
		lt_dev_name(dn, name, (unsigned int)i);
		ret = vdi_client_open_device(set, dn, &r->c[i].dev);
		r->c[i].idx = i;
		r->c[i].seed = r->seed + (unsigned int)i;
		r->c[i].max_delay_us = r->max_delay_us;
		/* A buffer read while another thread Closes is harmless (the
		 * area's addresses stay mapped) but a race TSan reports. */
		r->c[i].check = !SLOW_TSAN || r->how == CTL_NONE;
		pthread_mutex_init(&r->c[i].mu, NULL);
		pthread_cond_init(&r->c[i].cv, NULL);
	}
	if (ret) {
		r->setup_ret = ret;
		vdi_client_close(set);
		lt_recv(srv, &r->srv, 20000);
		return -3;
	}
	for (i = 0; i < r->ndev; i++) {
		if (pthread_create(&fth[i], NULL, fetch_main, &r->c[i]) ||
		    pthread_create(&cth[i], NULL, complete_main, &r->c[i]))
			return -4;
	}
	r->ctl.set = set;
	r->ctl.how = r->how;
	r->ctl.delay_us = r->delay_us;
	r->ctl.pause_us = r->pause_us;
	r->ctl.abort_ret = r->ctl.close_ret = -1;
	if (r->how != CTL_NONE &&
	    pthread_create(&tth, NULL, ctl_main, &r->ctl))
		return -5;
	for (i = 0; i < r->ndev; i++) {
		pthread_join(fth[i], NULL);
		pthread_join(cth[i], NULL);
	}
	if (r->how != CTL_NONE)
		pthread_join(tth, NULL);
	else
		r->ctl.close_ret = vdi_client_close(set);
	if (lt_recv(srv, &r->srv, 20000))
		return -6;
	return 0;
}

static void run_destroy(struct run *r)
{
	int i;

	for (i = 0; i < r->ndev; i++) {
		pthread_mutex_destroy(&r->c[i].mu);
		pthread_cond_destroy(&r->c[i].cv);
	}
}

TEST(fetch_and_complete_on_different_threads)
{
	struct lt_peer srv;
	vdi_client_set *set;
	struct run r;
	int i;

	ASSERT_EQ(0, lt_spawn(&srv, srv_main, NULL));
	set = vdi_client_set_new();
	ASSERT_TRUE(set != NULL);
	memset(&r, 0, sizeof(r));
	r.ndev = NDEV;
	r.per = 2000 / SLOW;
	r.how = CTL_NONE;
	ASSERT_EQ(0, run_one(&srv, set, 0, &r)) {
		TH_LOG("setup: %s; %s", lt_code(r.setup_ret),
		       vdi_last_error());
	}
	for (i = 0; i < NDEV; i++) {
		EXPECT_VD(VD_E_CLOSE, r.c[i].fetch_ret);
		EXPECT_EQ(r.per, r.c[i].fetched);
		EXPECT_EQ(r.per, r.c[i].completed);
		EXPECT_EQ(0, r.c[i].complete_bad) {
			TH_LOG("device %d: CompleteCommand said %s", i,
			       lt_code(r.c[i].complete_last));
		}
		EXPECT_EQ(0, r.c[i].payload_bad);
	}
	EXPECT_VD(NOERROR, r.ctl.close_ret);
	EXPECT_VD(NOERROR, r.srv.a[0]);		/* the agent: normal end */
	EXPECT_EQ(NDEV * r.per, r.srv.a[1]);
	EXPECT_EQ(NDEV * r.per, r.srv.a[2]);
	EXPECT_EQ(0, r.srv.a[3]);
	run_destroy(&r);
	vdi_client_set_free(set);
	EXPECT_EQ(0, lt_peer_finish(&srv, 5000));
}

TEST(abort_and_close_under_blocked_device_threads)
{
	static const enum ctl_how hows[] = { CTL_ABORT_CLOSE, CTL_CLOSE };
	unsigned int h, i;
	struct lt_peer srv;
	vdi_client_set *set;
	VDC_Command *cmd;
	struct run r;
	int fetched;

	ASSERT_EQ(0, lt_spawn(&srv, srv_main, NULL));
	for (h = 0; h < 2; h++) {
		set = vdi_client_set_new();
		ASSERT_TRUE(set != NULL);
		memset(&r, 0, sizeof(r));
		r.ndev = NDEV;
		r.per = -1;
		r.how = hows[h];
		/* Let the devices fill, and the workers hold commands. */
		r.delay_us = 200000;
		r.max_delay_us = 20000;
		r.seed = h;
		ASSERT_EQ(0, run_one(&srv, set, (long)h, &r)) {
			TH_LOG("setup: %s; %s", lt_code(r.setup_ret),
			       vdi_last_error());
		}
		if (r.how == CTL_ABORT_CLOSE)
			EXPECT_VD(NOERROR, r.ctl.abort_ret);
		/* Devices were in use: Close says so, and aborts. */
		EXPECT_VD(VD_E_OPEN, r.ctl.close_ret);
		fetched = 0;
		for (i = 0; i < NDEV; i++) {
			EXPECT_VD(VD_E_ABORT, r.c[i].fetch_ret);
			fetched += r.c[i].fetched;
			EXPECT_EQ(0, r.c[i].complete_bad) {
				TH_LOG("device %u: CompleteCommand said %s", i,
				       lt_code(r.c[i].complete_last));
			}
			EXPECT_EQ(0, r.c[i].payload_bad);
		}
		EXPECT_LT(0, fetched);
		EXPECT_VD(VD_E_ABORT, r.srv.a[0]);
		EXPECT_EQ(0, r.srv.a[3]);
		/* The device objects outlive Close: every call on them
		 * answers, none touches what Close released. */
		for (i = 0; i < NDEV; i++) {
			cmd = NULL;
			EXPECT_VD(VD_E_ABORT, vdi_client_get_command(r.c[i].dev,
								     0, &cmd));
			EXPECT_TRUE(cmd == NULL);
			EXPECT_VD(VD_E_ABORT,
				  vdi_client_get_command(r.c[i].dev, INFINITE,
							 &cmd));
			if (r.c[i].qn)
				EXPECT_VD(VD_E_ABORT,
					  vdi_client_complete_command(
						r.c[i].dev,
						r.c[i].q[r.c[i].qh], 0, 0, 0));
		}
		run_destroy(&r);
		vdi_client_set_free(set);
	}
	EXPECT_EQ(0, lt_peer_finish(&srv, 5000));
}

TEST(device_calls_after_a_normal_close)
{
	struct lt_peer srv;
	vdi_client_set *set;
	VDC_Command *cmd;
	struct run r;
	int i;

	ASSERT_EQ(0, lt_spawn(&srv, srv_main, NULL));
	set = vdi_client_set_new();
	ASSERT_TRUE(set != NULL);
	memset(&r, 0, sizeof(r));
	r.ndev = 2;
	r.per = 10;
	r.how = CTL_NONE;
	ASSERT_EQ(0, run_one(&srv, set, 0, &r));
	EXPECT_VD(NOERROR, r.ctl.close_ret);
	/* A device that ended normally keeps saying so. */
	for (i = 0; i < 2; i++) {
		EXPECT_VD(VD_E_CLOSE, r.c[i].fetch_ret);
		EXPECT_VD(VD_E_CLOSE, vdi_client_get_command(r.c[i].dev, 0,
							     &cmd));
	}
	/* The same object Creates again; the old devices stay answered. */
	run_destroy(&r);
	r.per = 5;
	ASSERT_EQ(0, run_one(&srv, set, 1, &r));
	EXPECT_VD(NOERROR, r.ctl.close_ret);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(5, r.c[i].completed);
	run_destroy(&r);
	vdi_client_set_free(set);
	EXPECT_EQ(0, lt_peer_finish(&srv, 5000));
}

static long knob(const char *name, long short_val, long long_val)
{
	const char *s = getenv(name), *l = getenv("VDI_STRESS");

	if (s && *s)
		return strtol(s, NULL, 0);
	return l && !strcmp(l, "long") ? long_val : short_val;
}

FIXTURE(stress) {
	int unused;
};

FIXTURE_SETUP(stress)
{
}

FIXTURE_TEARDOWN(stress)
{
}

TEST_F_TIMEOUT(stress, abort_and_close_at_random_points, 900)
{
	long iters = knob("VDI_STRESS_ITERS", 2000 / SLOW, 20000 / SLOW);
	long secs = knob("VDI_STRESS_SECS", 40, 150);
	unsigned int seed = (unsigned int)knob("VDI_STRESS_SEED",
					       (long)(getpid() ^ time(NULL)),
					       (long)(getpid() ^ time(NULL)));
	int64_t end = lt_now_ms() + secs * 1000;
	int opened[4] = { 0 }, bad = 0;
	vdi_client_set *set = NULL;
	struct lt_peer srv;
	struct run r;
	long it;
	int i;

	TH_LOG("seed %u (VDI_STRESS_SEED replays it), up to %ld iterations "
	       "or %ld s", seed, iters, secs);
	ASSERT_EQ(0, lt_spawn(&srv, srv_main, NULL));
	for (it = 0; it < iters && lt_now_ms() < end && !bad; it++) {
		if (!set)
			set = vdi_client_set_new();
		ASSERT_TRUE(set != NULL);
		memset(&r, 0, sizeof(r));
		r.ndev = 1 + rand_r(&seed) % NDEV;
		r.per = -1;
		r.how = (enum ctl_how)(rand_r(&seed) % 3);
		r.delay_us = rand_r(&seed) % 3000;
		r.pause_us = rand_r(&seed) % 500;
		r.max_delay_us = rand_r(&seed) % 2 ? 200 : 0;
		r.seed = rand_r(&seed);
		ASSERT_EQ(0, run_one(&srv, set, it, &r)) {
			TH_LOG("iteration %ld: setup: %s; %s", it,
			       lt_code(r.setup_ret), vdi_last_error());
		}
		opened[r.how]++;
		if (r.ctl.close_ret != VD_E_OPEN) {
			TH_LOG("iteration %ld: Close said %s", it,
			       lt_code(r.ctl.close_ret));
			bad++;
		}
		for (i = 0; i < r.ndev; i++) {
			if (r.c[i].fetch_ret != VD_E_ABORT) {
				TH_LOG("iteration %ld device %d: GetCommand "
				       "ended with %s", it, i,
				       lt_code(r.c[i].fetch_ret));
				bad++;
			}
			if (r.c[i].complete_bad || r.c[i].payload_bad) {
				TH_LOG("iteration %ld device %d: "
				       "CompleteCommand %s, bad payload %d",
				       it, i, lt_code(r.c[i].complete_last),
				       r.c[i].payload_bad);
				bad++;
			}
		}
		if (r.srv.a[3]) {
			TH_LOG("iteration %ld: the server saw %d bad "
			       "completions", it, r.srv.a[3]);
			bad++;
		}
		run_destroy(&r);
		/* Now and then a new object; else Create again on this one. */
		if (rand_r(&seed) % 4 == 0) {
			vdi_client_set_free(set);
			set = NULL;
		}
	}
	if (set)
		vdi_client_set_free(set);
	TH_LOG("%ld iterations (abort+close %d, close %d, abort, pause, "
	       "close %d)", it, opened[0], opened[1], opened[2]);
	EXPECT_EQ(0, bad);
	EXPECT_LE(200 / SLOW, it);
	EXPECT_EQ(0, lt_peer_finish(&srv, 5000));
}

TEST_HARNESS_MAIN
