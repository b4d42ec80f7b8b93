// SPDX-License-Identifier: GPL-2.0
/*
 * The reliability tests through libvdi (linked dynamically, as its users
 * link it): what a backup application and an engine see.
 *
 * peer death: the server (libvdi server set, its agent thread in
 * vdi_server_execute_completion_agent, its main thread in
 * vdi_server_send_command), the primary client (a thread per device in
 * vdi_client_get_command / vdi_client_complete_command) and a secondary
 * client, each killed with SIGKILL - and the agent's thread with
 * tgkill(SIGKILL), which takes its process - while configuring,
 * initializing, with commands queued, held, completing, closing.  Every
 * survivor's call returns VD_E_ABORT within VDI_PROMPT_MS (SendCommand:
 * VD_E_ABORT and its routine called with ERROR_OPERATION_ABORTED), every
 * thread returns, vdi_*_close() frees everything, the module's reference
 * count is 0 again.
 *
 * allocation failures (debug kernel: fail-nth, as vdi_failslab_test): every
 * library call of a set's life, with each fallible kernel allocation of the
 * calling thread failed in turn, returns VD_E_MEMORY or a code its table in
 * docs/LIBRARY.md documents; the objects can then still be closed and freed,
 * and nothing stays behind.
 */
#include "vdi_stress.h"
#include "libvdi.h"

#define NDEV	3
#define DEPTH	4

/* ------------------------------------------------------------------ */
/* peer death through the library                                     */

enum victim { V_SERVER, V_CLIENT, V_SECONDARY, V_AGENT, V_COUNT };
enum state { S_CONFIGURING, S_INITIALIZING, S_QUEUED, S_HELD, S_COMPLETING,
	     S_CLOSING, S_COUNT };
static const char *const victim_names[] = { "server", "client", "secondary", "agent" };
static const char *const state_names[] = { "configuring", "initializing",
	"queued", "held", "completing", "closing" };

#define NOBS 8
struct lobs {
	volatile int used;		/* 1 armed, 2 returned */
	volatile int code;
	volatile int64_t t_us;
	char what[40];
};

struct lboard {
	char name[VDI_NAME_MAX];
	enum state state;
	volatile int created, configured, ready[3], held[NDEV];
	volatile uint64_t reaped;
	volatile int agent_tid;
	volatile int64_t t_kill_us;
	volatile int victim_dead;	/* reaped: its fds are gone */
	volatile int finish;
	volatile int routine_995;	/* SendCommand's routine saw 995 */
	struct lobs obs[3][NOBS];
};

static struct lboard *LB;

static struct lobs *lobs_arm(int proc, const char *what)
{
	for (int i = 0; i < NOBS; i++)
		if (__sync_bool_compare_and_swap(&LB->obs[proc][i].used, 0, 1)) {
			snprintf(LB->obs[proc][i].what, sizeof(LB->obs[proc][i].what),
				 "%s", what);
			return &LB->obs[proc][i];
		}
	return NULL;
}

static void lobs_done(struct lobs *o, int code)
{
	if (!o)
		return;
	o->code = code;
	o->t_us = vdi_now_us();
	o->used = 2;
}

static bool lwait(volatile int *f, int ms)
{
	int64_t end = vdi_now_ms() + ms;

	while (!*f) {
		if (vdi_now_ms() > end)
			return false;
		vdi_sleep_ms(1);
	}
	return true;
}

static bool ljoin(pthread_t th, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000 + 1;
	return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

/* --- the server --- */

struct lsrv {
	vdi_server_set *set;
	vdi_server_device *dev[NDEV];
	VDS_Command cmds[NDEV][64];
	volatile int inflight[NDEV][64];
	uint8_t *buf;
};

static void routine(VDS_Command *c)
{
	int *busy = (int *)c->completionContext;

	if (c->completionCode == ERROR_OPERATION_ABORTED)
		LB->routine_995 = 1;
	LB->reaped++;
	*busy = 0;
}

static void *lagent_main(void *arg)
{
	struct lsrv *s = arg;
	struct lobs *o = lobs_arm(0, "ExecuteCompletionAgent");

	LB->agent_tid = vdi_gettid();
	lobs_done(o, vdi_server_execute_completion_agent(s->set));
	return NULL;
}

/* send on device d with a free command record; NOERROR, or the code */
static int lsend(struct lsrv *s, int d)
{
	for (int k = 0; k < 64; k++) {
		VDS_Command *c = &s->cmds[d][k];
		int r;

		if (s->inflight[d][k])
			continue;
		memset(c, 0, sizeof(*c));
		c->commandCode = VDC_Write;
		c->size = 512;
		c->buffer = s->buf;
		c->completionRoutine = (uint8_t *)routine;
		c->completionContext = (uint8_t *)&s->inflight[d][k];
		s->inflight[d][k] = 1;
		r = vdi_server_send_command(s->dev[d], c);
		if (r == NOERROR)
			return r;
		s->inflight[d][k] = 0;
		return r;
	}
	return VD_E_QUEUE_FULL;
}

static int lserver(void)
{
	struct lsrv *s = calloc(1, sizeof(*s));
	char dn[VDI_NAME_MAX];
	pthread_t agent;
	struct lobs *o;
	int i, r;

	CK(s != NULL);
	CK(lwait(&LB->created, 5000));
	CKEQ(NOERROR, vdi_server_open(&s->set, NULL, LB->name));
	CKEQ(NOERROR, vdi_server_set_queue_depth(s->set, DEPTH));
	CKEQ(NOERROR, vdi_server_begin_configuration(s->set,
		VDF_WriteMedia | VDF_ReadMedia, 0, 512, 65536, 1000));
	if (LB->state == S_CONFIGURING) {
		LB->ready[0] = 1;
		/* nothing of ours blocks in the library yet: Close aborts,
		 * so wait for the end as a plain observer of the board */
		while (!LB->finish)
			vdi_sleep_ms(2);
		vdi_server_close(s->set);
		return 0;
	}
	CKEQ(NOERROR, vdi_server_end_configuration(s->set));
	CKEQ(NOERROR, vdi_server_allocate_buffer(s->set, &s->buf, 512, 0));
	for (i = 0; i < NDEV; i++) {
		vdi_dev_name(dn, LB->name, i);
		CKEQ(NOERROR, vdi_server_open_device(s->set, dn, &s->dev[i]));
	}
	CKEQ(0, pthread_create(&agent, NULL, lagent_main, s));
	while (!__atomic_load_n(&LB->agent_tid, __ATOMIC_ACQUIRE))
		vdi_sleep_ms(1);
	vdi_sleep_ms(10);	/* the agent inside the library */

	switch (LB->state) {
	case S_HELD:		/* one each, the clients hold it */
		for (i = 0; i < NDEV; i++)
			CKEQ(NOERROR, lsend(s, i));
		for (i = 0; i < NDEV; i++)
			CK(lwait(&LB->held[i], 5000));
		LB->ready[0] = 1;
		break;
	case S_QUEUED:		/* queues full, nothing taken */
		for (i = 0; i < NDEV; i++)
			while ((r = lsend(s, i)) == NOERROR)
				;
		__attribute__((fallthrough));
	case S_COMPLETING:
		LB->ready[0] = 1;
		/* SendCommand until it says VD_E_ABORT (queue full: retry) */
		o = lobs_arm(0, "SendCommand");
		for (i = 0;; i++) {
			r = lsend(s, i % NDEV);
			if (r == NOERROR || r == VD_E_QUEUE_FULL) {
				vdi_sleep_ms(LB->state == S_COMPLETING ? 0 : 2);
				if (LB->finish)
					break;
				continue;
			}
			break;
		}
		lobs_done(o, r);
		if (r == VD_E_ABORT && !LB->routine_995)
			lobs_done(lobs_arm(0, "SendCommand's routine: no 995"), VD_E_UNEXPECTED);
		break;
	case S_CLOSING:
		for (i = 0; i < NDEV; i++) {
			CKEQ(NOERROR, lsend(s, i));
			CKEQ(NOERROR, vdi_server_close_device(s->dev[i]));
		}
		LB->ready[0] = 1;
		break;
	default:		/* initializing: nothing sent */
		LB->ready[0] = 1;
		break;
	}
	CK(ljoin(agent, 3000));
	r = vdi_server_close(s->set);
	CK(r == NOERROR || r == VD_E_PROTOCOL);
	free(s);
	return 0;
}

/* --- the clients --- */

struct lcdev {
	int proc, idx;
	vdi_client_device *dev;
	pthread_t th;
};

static void *lcdev_main(void *arg)
{
	struct lcdev *d = arg;
	VDC_Command *cmd;
	struct lobs *o;
	int r;

	if (LB->state == S_QUEUED || LB->state == S_CLOSING) {
		/* not taking anything until the victim is gone; then one call */
		while (!LB->victim_dead && !LB->finish)
			vdi_sleep_ms(1);
		o = lobs_arm(d->proc, "GetCommand after the kill");
		lobs_done(o, vdi_client_get_command(d->dev, INFINITE, &cmd));
		return NULL;
	}
	if (LB->state == S_HELD) {
		if (vdi_client_get_command(d->dev, 5000, &cmd) != NOERROR)
			return NULL;
		LB->held[d->idx] = 1;
	}
	for (;;) {
		o = lobs_arm(d->proc, "GetCommand");
		r = vdi_client_get_command(d->dev,
					   LB->state == S_COMPLETING ? 20 : INFINITE, &cmd);
		if (r == NOERROR && LB->state == S_COMPLETING) {
			o->used = 0;
			o = lobs_arm(d->proc, "CompleteCommand");
			r = vdi_client_complete_command(d->dev, cmd, 0, cmd->size, 0);
			if (r == NOERROR) {
				o->used = 0;
				continue;
			}
		} else if (r == VD_E_TIMEOUT) {
			o->used = 0;
			if (LB->finish)
				return NULL;
			continue;
		}
		lobs_done(o, r);
		return NULL;
	}
}

static int lclient(int proc)
{
	vdi_client_set *set = vdi_client_set_new();
	struct lcdev d[NDEV];
	VDConfig cfg = { .deviceCount = NDEV };
	char dn[VDI_NAME_MAX];
	struct lobs *o;
	int i, nd = 0, first, last, r;

	CK(set != NULL);
	if (proc == 1) {
		CKEQ(NOERROR, vdi_client_create(set, LB->name, &cfg));
		LB->created = 1;
		first = 0;
		last = NDEV - 2;
		o = lobs_arm(proc, "GetConfiguration");
		if (LB->state == S_CONFIGURING)
			LB->ready[proc] = 1;
		r = vdi_client_get_configuration(set, INFINITE, &cfg);
		if (r != NOERROR) {
			lobs_done(o, r);
			goto out;
		}
		o->used = 0;
		LB->configured = 1;
	} else {
		if (LB->state == S_CONFIGURING) {
			/* too early for OpenInSecondary: it holds nothing */
			LB->ready[proc] = 1;
			while (!LB->finish)
				vdi_sleep_ms(2);
			vdi_client_set_free(set);
			return 0;
		}
		CK(lwait(&LB->configured, 5000));
		CKEQ(NOERROR, vdi_client_open_in_secondary(set, LB->name));
		first = last = NDEV - 1;
	}
	for (i = first; i <= last; i++) {
		vdi_dev_name(dn, LB->name, i);
		d[nd] = (struct lcdev){ .proc = proc, .idx = i };
		CKEQ(NOERROR, vdi_client_open_device(set, dn, &d[nd].dev));
		CKEQ(0, pthread_create(&d[nd].th, NULL, lcdev_main, &d[nd]));
		nd++;
	}
	if (LB->state == S_HELD)
		for (i = 0; i < nd; i++)
			CK(lwait(&LB->held[d[i].idx], 5000));
	LB->ready[proc] = 1;
	for (i = 0; i < nd; i++)
		CK(ljoin(d[i].th, 5000));
out:
	r = vdi_client_close(set);
	CK(r == NOERROR || r == VD_E_OPEN);
	vdi_client_set_free(set);
	return 0;
}

static int lproc(struct vdi_chan *ch, void *arg)
{
	(void)ch;
	return (intptr_t)arg == 0 ? lserver() : lclient((int)(intptr_t)arg);
}

static int lcell(enum victim v, enum state st, struct vdi_kmsg *k)
{
	int vp = v == V_SERVER || v == V_AGENT ? 0 : v == V_CLIENT ? 1 : 2;
	bool want_abort = !(v == V_SECONDARY && st == S_CONFIGURING);
	struct vdi_proc p[3];
	int i, j, r, bad = 0;
	int64_t worst = 0;

	memset(LB, 0, sizeof(*LB));
	vdi_make_name(LB->name, "lpd");
	LB->state = st;
	for (i = 0; i < 3; i++)
		if (vdi_spawn(&p[i], lproc, (void *)(intptr_t)i))
			return 1;
	for (i = 0; i < 3; i++)
		if (!lwait(&LB->ready[i], 10000)) {
			printf("# lib %s/%s: process %d never got ready\n",
			       victim_names[v], state_names[st], i);
			bad++;
		}
	if (st == S_COMPLETING) {
		int64_t end = vdi_now_ms() + 5000;

		while (LB->reaped < 3 * DEPTH && vdi_now_ms() < end)
			vdi_sleep_ms(1);
	}
	vdi_sleep_ms(30);
	if (v == V_AGENT && st == S_CONFIGURING) {
		/* no agent yet while configuring: the server's main thread */
		v = V_SERVER;
	}
	LB->t_kill_us = vdi_now_us();
	if (v == V_AGENT)
		r = (int)syscall(SYS_tgkill, p[0].pid, LB->agent_tid, SIGKILL);
	else
		r = kill(p[vp].pid, SIGKILL);
	if (r)
		bad++;
	if (vdi_reap(&p[vp], 5000) != 128 + SIGKILL)
		bad++;
	LB->victim_dead = 1;
	if (want_abort) {
		int64_t end = vdi_now_ms() + 3000;
		bool all;

		do {
			all = true;
			for (i = 0; i < 3; i++)
				for (j = 0; j < NOBS; j++)
					if (i != vp && LB->obs[i][j].used == 1)
						all = false;
			if (!all)
				vdi_sleep_ms(2);
		} while (!all && vdi_now_ms() < end);
	} else {
		vdi_sleep_ms(VDI_PROMPT_MS);
	}
	LB->finish = 1;
	for (i = 0; i < 3; i++) {
		if (i == vp)
			continue;
		r = vdi_reap(&p[i], 6000);
		if (r) {
			printf("# lib %s/%s: survivor %d exited with %d\n",
			       victim_names[v], state_names[st], i, r);
			bad++;
		}
		for (j = 0; j < NOBS; j++) {
			struct lobs *o = &LB->obs[i][j];
			int64_t dt = (o->t_us - LB->t_kill_us) / 1000;

			if (!o->used)
				continue;
			if (!want_abort) {
				if (o->used == 2 && o->t_us < LB->t_kill_us + VDI_PROMPT_MS * 1000) {
					printf("# lib %s/%s: %s returned %s: nothing should abort\n",
					       victim_names[v], state_names[st], o->what,
					       vdi_code_name(o->code));
					bad++;
				}
				continue;
			}
			if (o->used != 2 || o->code != VD_E_ABORT || dt > VDI_PROMPT_MS) {
				printf("# lib %s/%s: %s: %s after %lld ms\n",
				       victim_names[v], state_names[st], o->what,
				       o->used == 2 ? vdi_code_name(o->code) ?: "?" : "never returned",
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
		printf("# lib %s/%s: module reference count %ld\n", victim_names[v],
		       state_names[st], vdi_module_refcnt());
		bad++;
	}
	if (vdi_kmsg_scan(k, NULL, NULL))
		bad++;
	if (!bad)
		printf("# lib: %-9s killed while %-12s: survivors %s in %lld ms\n",
		       victim_names[v], state_names[st],
		       want_abort ? "got VD_E_ABORT" : "unaffected", (long long)worst);
	return bad;
}

FIXTURE(lib) {
	struct vdi_kmsg k;
};

FIXTURE_SETUP(lib)
{
	LB = vdi_shared(sizeof(*LB));
	ASSERT_NE(NULL, LB);
	vdi_kmsg_open(&self->k);
	ASSERT_EQ(0, vdi_refcnt_settle(0, 3000) > 0);
}

FIXTURE_TEARDOWN(lib)
{
	vdi_kmsg_close(&self->k);
	munmap(LB, sizeof(*LB));
}

TEST_F_TIMEOUT(lib, peer_death_matrix, 900)
{
	long repeat = vdi_knob("VDI_PEER_REPEAT", 1, 2);
	int cells = 0, bad = 0;

	for (long n = 0; n < repeat; n++)
		for (enum victim v = 0; v < V_COUNT; v++)
			for (enum state st = 0; st < S_COUNT; st++) {
				cells++;
				bad += lcell(v, st, &self->k) != 0;
			}
	printf("# lib: %d cells (victim x state), %d failed\n", cells, bad);
	EXPECT_EQ(0, bad);
}

/* ------------------------------------------------------------------ */
/* allocation failures through the library                            */

static int fnth = -1;

static void farm(unsigned int n)
{
	char b[16];
	int l = snprintf(b, sizeof(b), "%u", n);

	if (pwrite(fnth, b, l, 0) != l)
		abort();
}

static bool ffired(void)
{
	char b[16] = "";
	bool f = pread(fnth, b, sizeof(b) - 1, 0) > 0 && strtoul(b, NULL, 10) == 0;

	if (pwrite(fnth, "0", 1, 0) != 1)
		abort();
	return f;
}

enum lstep { L_CREATE, L_OPEN, L_BEGIN, L_REQUEST, L_END, L_GETCFG, L_SECONDARY,
	     L_CDEV, L_SECDEV, L_SDEV, L_SEND, L_GET, L_COMPLETE, L_CLOSE_DEV,
	     L_DRAIN, L_CLOSE, L_COUNT };
static const char *const lstep_names[] = { "Create", "Open", "BeginConfiguration",
	"RequestBuffers", "EndConfiguration", "GetConfiguration(client)",
	"OpenInSecondary", "OpenDevice(client)", "OpenDevice(secondary)",
	"OpenDevice(server)", "SendCommand", "GetCommand", "CompleteCommand",
	"CloseDevice", "GetCommand(drained)", "Close" };

struct lscene {
	char name[VDI_NAME_MAX];
	vdi_client_set *c, *sec;
	vdi_server_set *s;
	vdi_client_device *cd[2], *secd;
	vdi_server_device *sd[2];
	VDC_Command *held[2];
	VDS_Command cmd[2];
	uint8_t *buf;
	pthread_t agent;
	bool agent_on;
	volatile int done_routines;
};

static void lroutine(VDS_Command *c)
{
	struct lscene *x = (struct lscene *)c->completionContext;

	__sync_fetch_and_add(&x->done_routines, 1);
}

static void *lagent(void *arg)
{
	struct lscene *x = arg;

	vdi_server_execute_completion_agent(x->s);
	return NULL;
}

/* The codes docs/LIBRARY.md gives each call, besides VD_E_MEMORY. */
static bool documented(enum lstep st, int code)
{
	if (code == VD_E_MEMORY)
		return true;
	switch (st) {
	case L_SEND:
		return code == VD_E_QUEUE_FULL;
	default:
		return false;
	}
}

static int lrun(struct lscene *x, enum lstep st)
{
	VDConfig cfg = { .deviceCount = 2 };
	char dn[VDI_NAME_MAX];
	int i, r;

	switch (st) {
	case L_CREATE:
		return vdi_client_create(x->c, x->name, &cfg);
	case L_OPEN:
		return vdi_server_open(&x->s, NULL, x->name);
	case L_BEGIN:
		r = vdi_server_set_queue_depth(x->s, 4);
		return r ? r : vdi_server_begin_configuration(x->s,
				VDF_WriteMedia | VDF_ReadMedia, 0, 512, 65536, 1000);
	case L_REQUEST:
		return vdi_server_request_buffers(x->s, 4096, 0, 4);
	case L_END:
		r = vdi_server_end_configuration(x->s);
		if (!r)
			r = vdi_server_allocate_buffer(x->s, &x->buf, 4096, 0);
		return r;
	case L_GETCFG:
		return vdi_client_get_configuration(x->c, 0, &cfg);
	case L_SECONDARY:
		return vdi_client_open_in_secondary(x->sec, x->name);
	case L_CDEV:
		return x->cd[0] ? 0 : vdi_client_open_device(x->c, x->name, &x->cd[0]);
	case L_SECDEV:
		vdi_dev_name(dn, x->name, 1);
		return x->secd ? 0 : vdi_client_open_device(x->sec, dn, &x->secd);
	case L_SDEV:
		for (i = 0; i < 2; i++) {
			vdi_dev_name(dn, x->name, i);
			if (!x->sd[i] && (r = vdi_server_open_device(x->s, dn, &x->sd[i])))
				return r;
		}
		if (!x->agent_on) {
			pthread_create(&x->agent, NULL, lagent, x);
			x->agent_on = true;
			vdi_sleep_ms(5);
		}
		return 0;
	case L_SEND:
		for (i = 0; i < 2; i++) {
			if (x->cmd[i].commandCode)
				continue;
			x->cmd[i] = (VDS_Command){ .commandCode = VDC_Write, .size = 512,
				.buffer = x->buf, .completionRoutine = (uint8_t *)lroutine,
				.completionContext = (uint8_t *)x };
			r = vdi_server_send_command(x->sd[i], &x->cmd[i]);
			if (r) {
				x->cmd[i].commandCode = 0;
				return r;
			}
		}
		return 0;
	case L_GET:
		if (!x->held[0] && (r = vdi_client_get_command(x->cd[0], 1000, &x->held[0])))
			return r;
		if (!x->held[1] && (r = vdi_client_get_command(x->secd, 1000, &x->held[1])))
			return r;
		return 0;
	case L_COMPLETE:
		if (x->held[0]) {
			r = vdi_client_complete_command(x->cd[0], x->held[0], 0, 512, 0);
			if (r)
				return r;
			x->held[0] = NULL;
		}
		if (x->held[1]) {
			r = vdi_client_complete_command(x->secd, x->held[1], 0, 512, 0);
			if (r)
				return r;
			x->held[1] = NULL;
		}
		return 0;
	case L_CLOSE_DEV:
		for (i = 0; i < 2; i++) {
			r = vdi_server_close_device(x->sd[i]);
			if (r && r != VD_E_CLOSE)
				return r;
		}
		return 0;
	case L_DRAIN: {
		VDC_Command *c;

		r = vdi_client_get_command(x->cd[0], 1000, &c);
		if (r != VD_E_CLOSE)
			return r ? r : VD_E_UNEXPECTED;
		r = vdi_client_get_command(x->secd, 1000, &c);
		return r == VD_E_CLOSE ? 0 : r ? r : VD_E_UNEXPECTED;
	}
	case L_CLOSE:
		r = vdi_client_close(x->sec);
		if (!r)
			r = vdi_client_close(x->c);
		return r;
	default:
		return VD_E_UNEXPECTED;
	}
}

static void lteardown(struct lscene *x)
{
	if (x->s) {
		vdi_server_close(x->s);		/* aborts, waits for the agent */
		x->s = NULL;
	}
	if (x->agent_on)
		pthread_join(x->agent, NULL);
	x->agent_on = false;
	vdi_client_set_free(x->sec);
	vdi_client_set_free(x->c);
	x->c = x->sec = NULL;
}

TEST_F_TIMEOUT(lib, every_call_survives_allocation_failures, 900)
{
	unsigned int injected = 0, failed = 0, steps_hit = 0;
	int bad = 0;

	fnth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (fnth < 0 || vdi_write_file("/sys/kernel/debug/failslab/ignore-gfp-wait", "N") ||
	    vdi_write_file("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N") ||
	    vdi_write_file("/sys/kernel/debug/fail_page_alloc/min-order", "0"))
		SKIP(return, "no fault injection here (debug kernel only)");
	vdi_write_file("/sys/kernel/debug/failslab/verbose", "0");
	vdi_write_file("/sys/kernel/debug/fail_page_alloc/verbose", "0");
	for (enum lstep st = 0; st < L_COUNT; st++) {
		unsigned int n, hit = 0;

		for (n = 1; n < 400; n++) {
			struct lscene x;
			bool fired;
			int r = 0;

			memset(&x, 0, sizeof(x));
			vdi_make_name(x.name, "lfs");
			x.c = vdi_client_set_new();
			x.sec = vdi_client_set_new();
			for (enum lstep p = 0; p < st && !r; p++)
				r = lrun(&x, p);
			if (r) {
				printf("# %s before the injection: %s\n", lstep_names[st],
				       vdi_code_name(r) ?: "?");
				bad++;
				lteardown(&x);
				break;
			}
			farm(n);
			r = lrun(&x, st);
			fired = ffired();
			if (fired) {
				injected++;
				hit++;
			}
			if (r) {
				failed++;
				if (!fired || !documented(st, r)) {
					printf("# %s with kernel allocation %u failed: %s (%s)%s\n",
					       lstep_names[st], n, vdi_code_name(r) ?: "?",
					       vdi_last_error(), fired ? "" : " - nothing was injected");
					bad++;
				}
			}
			lteardown(&x);
			if (vdi_refcnt_settle(0, 2000) > 0) {
				printf("# %s, allocation %u: module reference count %ld\n",
				       lstep_names[st], n, vdi_module_refcnt());
				bad++;
			}
			if (!fired || bad > 20)
				break;
		}
		if (hit)
			steps_hit++;
		printf("# lib: %-26s %u kernel allocations failed in turn\n",
		       lstep_names[st], hit);
		if (bad > 20)
			break;
	}
	printf("# lib: %u failures injected into %u calls, %u made the call fail\n",
	       injected, steps_hit, failed);
	EXPECT_EQ(0, vdi_kmsg_scan(&self->k, NULL, NULL));
	EXPECT_EQ(0, bad);
	close(fnth);
}

TEST_HARNESS_MAIN
