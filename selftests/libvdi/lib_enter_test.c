// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi over VDI_IOC_ENTER (module API 1.3): one system call per turn.
 *
 *  - vdi_client_complete_and_get(): every return code, batches past one
 *    call's 64, IO-ERROR and ClearError, an abort or Close while it waits;
 *  - SendCommand in a routine on the agent's thread is collected and handed
 *    to the module with the agent's next ENTER: a full queue still said at
 *    once, an abort while commands are collected (each routine told once),
 *    the order per device, four devices in one call, a routine and another
 *    thread sending to one device, a routine that sends and then closes;
 *  - the older calls (VDI_ENTER=0, as with a module without ENTER) give the
 *    same results, and neither path uses the other's ioctls (a seccomp
 *    filter fails them);
 *  - system calls per command on a steady stream at depth 8, counted with
 *    perf on raw_syscalls:sys_enter: at most one per command on each side.
 *
 * The server is this process; the client a child (lib_test_util.h).
 */
#include "lib_test_util.h"

#include <sched.h>
#include <sys/ioctl.h>

/* Every test runs in a process of its own (the harness forks): VDI_ENTER
 * set here reaches this process's objects and the client forked after. */
static void use_enter(bool on)
{
	/* A test may run a scene twice: the routines' count starts anew. */
	pthread_mutex_lock(&lt_log_g.mu);
	lt_log_g.calls = 0;
	pthread_mutex_unlock(&lt_log_g.mu);
	if (on)
		unsetenv("VDI_ENTER");
	else
		setenv("VDI_ENTER", "0", 1);
}

/* Whether the loaded module has VDI_IOC_ENTER. */
static bool module_has_enter(void)
{
	struct vdi_version v;
	int fd = open("/dev/vdi", O_RDWR | O_CLOEXEC);
	bool has;

	if (fd < 0)
		return false;
	memset(&v, 0, sizeof(v));
	v.api_major = VDI_API_MAJOR;
	has = !ioctl(fd, VDI_IOC_VERSION, &v) && (v.features & VDI_FEAT_ENTER);
	close(fd);
	return has;
}

#define ASSERT_MODULE_HAS_ENTER() \
	ASSERT_TRUE(module_has_enter()) { \
		TH_LOG("the module in the VM must have VDI_IOC_ENTER"); \
	}

/* One vdi_client_complete_and_get in the client (RC_TURN). */
static int turn(struct lt_pair *p, int dev, int complete, uint32_t code,
		int max, int64_t timeout, struct lt_msg *out)
{
	struct lt_msg m;
	int r;

	lt_msg_init(&m, RC_TURN);
	m.a[0] = dev;
	m.a[1] = complete;
	m.a[2] = (int32_t)code;
	m.a[3] = max;
	m.a[4] = -1;
	m.q[0] = timeout;
	r = lt_call(&p->rc, &m, LT_RPC_MS);
	if (out)
		*out = m;
	return r ? r : m.ret;
}

/* The same with one bad entry at @at (LT_BAD_*). */
static int turn_bad(struct lt_pair *p, int dev, int complete, int at, int kind,
		    int max, struct lt_msg *out)
{
	struct lt_msg m;
	int r;

	lt_msg_init(&m, RC_TURN);
	m.a[0] = dev;
	m.a[1] = complete;
	m.a[3] = max;
	m.a[4] = at;
	m.a[5] = kind;
	r = lt_call(&p->rc, &m, LT_RPC_MS);
	if (out)
		*out = m;
	return r ? r : m.ret;
}

/* A routine the agent ran (not SendCommand), with this code and position. */
static void expect_done(struct __test_metadata *_metadata, struct lt_pair *p,
			struct lt_cmd *c, int32_t code, int64_t pos)
{
	EXPECT_EQ(1, c->calls) {
		TH_LOG("command %d: its routine ran %d times", c->id, c->calls);
	}
	EXPECT_EQ(0, c->in_send);
	EXPECT_TRUE(pthread_equal(c->thread, p->agent.self));
	EXPECT_EQ(code, c->code) {
		TH_LOG("command %d: completion code %d, want %d", c->id,
		       c->code, code);
	}
	EXPECT_EQ(pos, c->pos);
}

/* The module's count of commands sent on device @dev so far. */
static vdi_stats stats_g;

static int64_t module_sent(vdi_server_set *set, unsigned int dev)
{
	unsigned int i;

	if (vdi_server_get_stats(set, &stats_g) != NOERROR)
		return -1;
	for (i = 0; i < stats_g.ndevs; i++)
		if (stats_g.devs[i].index == dev)
			return (int64_t)stats_g.devs[i].sent;
	return -1;
}

/* ------------------------------------------------------------------ */
/* vdi_client_complete_and_get                                        */

static void scene_complete_and_get_codes(struct __test_metadata *_metadata,
				   bool enter)
{
	VDC_Command *cmds[4];
	vdi_client_completion c;
	unsigned int done = 9, got = 9;
	struct lt_pair_opts o;
	struct lt_cmd k[12];
	struct lt_pair p;
	struct lt_msg m;
	uint8_t *b = NULL;
	int i;

	use_enter(enter);
	memset(&o, 0, sizeof(o));
	o.depth = 16;
	ASSERT_EQ(0, lt_pair_setup(&p, "cag", &o));

	/* Bad arguments: nothing done. */
	memset(&c, 0, sizeof(c));
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_and_get(NULL, &c, 0, &done,
							    0, cmds, 4, &got));

	/* Nothing to complete, nothing queued: VD_E_TIMEOUT at once. */
	ASSERT_VD(VD_E_TIMEOUT, turn(&p, 0, 0, 0, 4, 0, &m));
	EXPECT_EQ(0, m.a[0]);
	EXPECT_EQ(0, m.a[1]);
	EXPECT_GE(200000, m.q[2]);

	/* Take two of three, then complete them and take the third. */
	for (i = 0; i < 3; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[i]));
	}
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 2, 1000, &m));
	EXPECT_EQ(2, m.a[1]);
	EXPECT_EQ(0, m.q[0]);
	EXPECT_EQ(1, m.q[1]);
	ASSERT_VD(NOERROR, turn(&p, 0, 2, 0, 4, 1000, &m));
	EXPECT_EQ(2, m.a[0]);
	EXPECT_EQ(1, m.a[1]);
	EXPECT_EQ(2, m.q[0]);
	ASSERT_EQ(0, lt_wait_calls(2, 2000));
	expect_done(_metadata, &p, &k[0], 0, 7);
	expect_done(_metadata, &p, &k[1], 0, 8);

	/* Completions, then a timeout: VD_E_TIMEOUT with *done set. */
	ASSERT_VD(VD_E_TIMEOUT, turn(&p, 0, 1, 0, 4, 0, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(0, m.a[1]);
	ASSERT_EQ(0, lt_wait_calls(3, 2000));
	expect_done(_metadata, &p, &k[2], 0, 9);

	/* An unknown pointer in the middle: the ones before it applied,
	 * nothing taken, the one after it still held. */
	for (i = 3; i < 6; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[i]));
	}
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 2, 1000, &m));
	EXPECT_EQ(2, m.a[1]);
	EXPECT_VD(VD_E_INVALID, turn_bad(&p, 0, 3, 1, LT_BAD_POINTER, 4, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(0, m.a[1]);
	EXPECT_EQ(1, m.a[4]);		/* k[4] is still the client's */
	ASSERT_EQ(0, lt_wait_calls(4, 2000));
	expect_done(_metadata, &p, &k[3], 0, 10);
	EXPECT_EQ(0, k[4].calls);
	EXPECT_EQ(0, k[5].calls);	/* not taken: still queued */

	/* The same command twice: the first applied, the second refused. */
	EXPECT_VD(VD_E_INVALID, turn_bad(&p, 0, 2, 1, LT_BAD_TWICE, 4, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(0, m.a[1]);
	EXPECT_EQ(0, m.a[4]);
	ASSERT_EQ(0, lt_wait_calls(5, 2000));
	expect_done(_metadata, &p, &k[4], 0, 11);

	/* More bytes than the Write's size: refused, still the client's. */
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 512, 0));
	lt_cmd_init(&k[6], 6, VDC_Write, 512, 6);
	k[6].cmd.buffer = b;
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[6]));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 4, 1000, &m));
	EXPECT_EQ(2, m.a[1]);		/* k[5] and k[6] */
	EXPECT_VD(VD_E_INVALID, turn_bad(&p, 0, 2, 1, LT_BAD_BYTES, 4, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(1, m.a[4]);
	ASSERT_EQ(0, lt_wait_calls(6, 2000));
	expect_done(_metadata, &p, &k[5], 0, 12);
	EXPECT_EQ(0, k[6].calls);
	/* Completed right, it goes. */
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 1, 0, 4, 0, &m));
	EXPECT_EQ(1, m.a[0]);
	ASSERT_EQ(0, lt_wait_calls(7, 2000));
	EXPECT_EQ(512, k[6].bytes);
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b, 512));

	/* The normal end: completions applied, then VD_E_CLOSE. */
	lt_cmd_init(&k[7], 7, VDC_Flush, 0, 7);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[7]));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 4, 1000, &m));
	ASSERT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	p.dev[0] = NULL;
	EXPECT_VD(VD_E_CLOSE, turn(&p, 0, 1, 0, 4, 1000, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(0, m.a[1]);
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(NOERROR, p.agent.ret);
	expect_done(_metadata, &p, &k[7], 0, 14);
	EXPECT_VD(VD_E_CLOSE, turn(&p, 0, 0, 0, 4, 0, &m));
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(complete_and_get_codes)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_complete_and_get_codes(_metadata, true);
}

TEST(complete_and_get_codes_without_enter)
{
	scene_complete_and_get_codes(_metadata, false);
}

/* The argument checks, in the client (a device of its own). */
static int bad_arguments_child(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	vdi_client_set *set = vdi_client_set_new();
	vdi_client_completion c;
	vdi_client_device *dev;
	VDC_Command *cmds[2];
	VDConfig cfg;
	unsigned int done = 9, got = 9;
	struct lt_msg m;

	memset(&cfg, 0, sizeof(cfg));
	memset(&c, 0, sizeof(c));
	cfg.deviceCount = 1;
	CKEQ(NOERROR, vdi_client_create(set, name, &cfg));
	lt_msg_init(&m, 0);
	CK(lt_send(self, &m) == 0);
	CKEQ(NOERROR, vdi_client_get_configuration(set, 5000, &cfg));
	CKEQ(NOERROR, vdi_client_open_device(set, name, &dev));
	/* The server's device is open too: the Close below cannot beat it. */
	CK(lt_recv(self, &m, 5000) == 0);
	CKEQ(VD_E_INVALID, vdi_client_complete_and_get(dev, &c, 1, NULL, 0,
						       cmds, 2, &got));
	CKEQ(VD_E_INVALID, vdi_client_complete_and_get(dev, &c, 1, &done, 0,
						       cmds, 2, NULL));
	CKEQ(VD_E_INVALID, vdi_client_complete_and_get(dev, &c, 1, &done, 0,
						       NULL, 2, &got));
	CKEQ(VD_E_INVALID, vdi_client_complete_and_get(dev, &c, 1, &done, 0,
						       cmds, 0, &got));
	CKEQ(VD_E_INVALID, vdi_client_complete_and_get(dev, NULL, 1, &done, 0,
						       cmds, 2, &got));
	/* count 0 with no array is GetCommand alone. */
	CKEQ(VD_E_TIMEOUT, vdi_client_complete_and_get(dev, NULL, 0, &done, 0,
						       cmds, 2, &got));
	CKEQ(0, done);
	CKEQ(0, got);
	/* The device has not ended: Close aborts the set. */
	CKEQ(VD_E_OPEN, vdi_client_close(set));
	vdi_client_set_free(set);
	return 0;
}

TEST(complete_and_get_bad_arguments)
{
	char name[LT_NAME_MAX];
	vdi_server_device *dev;
	vdi_server_set *set;
	struct lt_agent agent;
	struct lt_peer rc;
	struct lt_msg m;

	lt_name(name, "cagargs");
	ASSERT_EQ(0, lt_spawn(&rc, bad_arguments_child, name));
	ASSERT_EQ(0, lt_recv(&rc, &m, 5000));
	ASSERT_VD(NOERROR, vdi_server_open(&set, NULL, name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(set, VDF_WriteMedia,
							  0, 512, 65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(set));
	ASSERT_VD(NOERROR, vdi_server_open_device(set, name, &dev));
	ASSERT_EQ(0, lt_send(&rc, &m));
	ASSERT_EQ(0, lt_agent_start(&agent, set));
	EXPECT_EQ(0, lt_reap(&rc, 10000));
	ASSERT_TRUE(lt_agent_done(&agent, 5000));
	EXPECT_VD(VD_E_ABORT, agent.ret);	/* the client's Close */
	vdi_server_close(set);
	lt_peer_kill(&rc);
}

static void scene_complete_and_get_batches(struct __test_metadata *_metadata,
				     bool enter)
{
	struct lt_pair_opts o;
	struct lt_cmd *k;
	struct lt_pair p;
	struct lt_msg m;
	int i, held = 0, turns = 0;

	use_enter(enter);
	k = (struct lt_cmd *)calloc(250, sizeof(*k));
	ASSERT_TRUE(k != NULL);
	memset(&o, 0, sizeof(o));
	o.depth = 200;
	ASSERT_EQ(0, lt_pair_setup(&p, "cagbatch", &o));
	for (i = 0; i < 150; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[i]));
	}
	/* At most 64 a call, in order. */
	while (held < 150) {
		ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 200, 1000, &m));
		EXPECT_GE(64, m.a[1]);
		EXPECT_EQ(held, m.q[0]);
		held += m.a[1];
		EXPECT_EQ(held - 1, m.q[1]);
		turns++;
	}
	EXPECT_EQ(3, turns);
	/* 150 completions in one call: the first 86 go ahead of it. */
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 150, 0, 10, 0, &m));
	EXPECT_EQ(150, m.a[0]);
	EXPECT_EQ(0, m.a[4]);
	ASSERT_EQ(0, lt_wait_calls(150, 3000));
	for (i = 0; i < 150; i++)
		expect_done(_metadata, &p, &k[i], 0, i + 7);

	/* A stream served in turns of up to 8. */
	for (i = 150; i < 250; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[i]));
	}
	lt_msg_init(&m, RC_SERVE_TURNS);
	m.a[1] = 8;
	m.a[2] = LT_SERVE_ORDER;
	m.q[0] = 300;
	ASSERT_EQ(0, lt_call(&p.rc, &m, LT_RPC_MS));
	EXPECT_VD(VD_E_TIMEOUT, m.ret);
	EXPECT_EQ(100, m.a[0]);
	EXPECT_LE(1 + 100 / 8, m.a[1]);	/* turns */
	EXPECT_EQ(0, m.a[2]);
	ASSERT_EQ(0, lt_wait_calls(250, 3000));
	for (i = 150; i < 250; i++)
		expect_done(_metadata, &p, &k[i], 0, i + 7);
	lt_pair_end_normally(_metadata, &p);
	free(k);
}

TEST(complete_and_get_batches)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_complete_and_get_batches(_metadata, true);
}

TEST(complete_and_get_batches_without_enter)
{
	scene_complete_and_get_batches(_metadata, false);
}

static void scene_complete_and_get_io_error(struct __test_metadata *_metadata,
				      bool enter)
{
	struct lt_pair_opts o;
	struct lt_cmd k[6];
	struct lt_pair p;
	struct lt_msg m;
	int i;

	use_enter(enter);
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "cagioerr", &o));
	for (i = 0; i < 3; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[i]));
	}
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 2, 1000, &m));
	EXPECT_EQ(2, m.a[1]);
	/* k[0] fails: IO-ERROR; k[2], queued, is flushed; k[1] is held, so
	 * nothing can be taken. */
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 1, ERROR_DISK_FULL, 4, 0, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(0, m.a[1]);
	ASSERT_EQ(0, lt_wait_calls(2, 2000));
	expect_done(_metadata, &p, &k[0], ERROR_DISK_FULL, 7);
	expect_done(_metadata, &p, &k[2], ERROR_IO_DEVICE, 0);
	lt_cmd_init(&k[3], 3, VDC_Flush, 0, 3);
	EXPECT_VD(VD_E_IO_ERROR, lt_send_cmd(p.dev[0], &k[3]));
	EXPECT_EQ(ERROR_IO_DEVICE, k[3].code);
	lt_cmd_init(&k[4], 4, VDC_ClearError, 0, 4);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[4]));
	/* ClearError waits until the client holds nothing. */
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 0, 0, 4, 0, &m));
	ASSERT_VD(NOERROR, turn(&p, 0, 1, 0, 4, 1000, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(1, m.a[1]);
	EXPECT_EQ(VDC_ClearError, m.a[3]);
	/* ClearError done: active again. */
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 1, 0, 4, 0, &m));
	ASSERT_EQ(0, lt_wait_calls(5, 2000));
	expect_done(_metadata, &p, &k[1], 0, 8);
	expect_done(_metadata, &p, &k[4], 0, 11);
	lt_cmd_init(&k[5], 5, VDC_Flush, 0, 5);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[5]));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 4, 1000, &m));
	EXPECT_EQ(5, m.q[0]);
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 1, 0, 4, 0, &m));
	ASSERT_EQ(0, lt_wait_calls(6, 2000));
	expect_done(_metadata, &p, &k[5], 0, 12);
	lt_pair_end_normally(_metadata, &p);
}

TEST(complete_and_get_io_error_and_clear_error)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_complete_and_get_io_error(_metadata, true);
}

TEST(complete_and_get_io_error_and_clear_error_without_enter)
{
	scene_complete_and_get_io_error(_metadata, false);
}

static void scene_complete_and_get_abort(struct __test_metadata *_metadata,
				   bool enter)
{
	struct lt_pair_opts o;
	struct lt_cmd k[3];
	struct lt_pair p;
	struct lt_msg m;
	int i;

	use_enter(enter);
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "cagabort", &o));
	for (i = 0; i < 3; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k[i]));
	}
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 2, 1000, &m));
	/* Complete k[0], take k[2]. */
	ASSERT_VD(NOERROR, turn(&p, 0, 1, 0, 4, -1, &m));
	EXPECT_EQ(1, m.a[0]);
	EXPECT_EQ(1, m.a[1]);
	EXPECT_EQ(2, m.q[0]);
	/* A turn that waits for ever, ended by the server's abort. */
	lt_msg_init(&m, RC_TURN);
	m.a[3] = 4;
	m.a[4] = -1;
	m.q[0] = -1;
	ASSERT_EQ(0, lt_send(&p.rc, &m));
	lt_sleep_ms(200);
	ASSERT_VD(NOERROR, vdi_server_signal_abort(p.set));
	ASSERT_EQ(0, lt_recv(&p.rc, &m, LT_RPC_MS));
	EXPECT_VD(VD_E_ABORT, m.ret);
	EXPECT_LE(150000, m.q[2]);
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	expect_done(_metadata, &p, &k[0], 0, 7);
	expect_done(_metadata, &p, &k[1], ERROR_OPERATION_ABORTED, 0);
	expect_done(_metadata, &p, &k[2], ERROR_OPERATION_ABORTED, 0);
	/* The commands still held are gone: the first entry says so. */
	EXPECT_VD(VD_E_ABORT, turn(&p, 0, 2, 0, 4, 0, &m));
	EXPECT_EQ(0, m.a[0]);
	EXPECT_VD(VD_E_ABORT, turn(&p, 0, 0, 0, 4, -1, &m));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(complete_and_get_ended_by_an_abort)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_complete_and_get_abort(_metadata, true);
}

TEST(complete_and_get_ended_by_an_abort_without_enter)
{
	scene_complete_and_get_abort(_metadata, false);
}

/*
 * The client closes its set while one of its threads waits in
 * vdi_client_complete_and_get: that call returns VD_E_ABORT, and calls
 * after Close answer without touching anything Close released.
 */
struct close_waiter {
	vdi_client_device *dev;
	vdi_client_completion c;
	int ret;
	unsigned int done, got;
	pid_t tid;
};

static void *close_waiter_main(void *arg)
{
	struct close_waiter *w = (struct close_waiter *)arg;
	VDC_Command *cmds[4];

	__atomic_store_n(&w->tid, lt_gettid(), __ATOMIC_RELEASE);
	w->ret = vdi_client_complete_and_get(w->dev, &w->c, 1, &w->done, -1,
					     cmds, 4, &w->got);
	return NULL;
}

static int close_mid_call_child(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	char dn[LT_NAME_MAX];
	vdi_client_set *set = vdi_client_set_new();
	vdi_client_device *dev[2];
	vdi_client_completion c;
	struct close_waiter w;
	VDC_Command *cmds[4], *held, fake;
	unsigned int done, got;
	VDConfig cfg;
	pthread_t th;
	struct lt_msg m;
	int64_t end;
	int i;

	memset(&cfg, 0, sizeof(cfg));
	memset(&fake, 0, sizeof(fake));
	cfg.deviceCount = 2;
	CKEQ(NOERROR, vdi_client_create(set, name, &cfg));
	lt_msg_init(&m, 0);
	CK(lt_send(self, &m) == 0);
	CKEQ(NOERROR, vdi_client_get_configuration(set, 5000, &cfg));
	for (i = 0; i < 2; i++) {
		lt_dev_name(dn, name, (unsigned int)i);
		CKEQ(NOERROR, vdi_client_open_device(set, dn, &dev[i]));
	}
	CK(lt_send(self, &m) == 0);	/* the server sends 3 on device 0 */
	/* Device 1 ends normally: the server closed it. */
	CKEQ(VD_E_CLOSE, vdi_client_complete_and_get(dev[1], NULL, 0, &done,
						     5000, cmds, 4, &got));
	CKEQ(NOERROR, vdi_client_complete_and_get(dev[0], NULL, 0, &done,
						  5000, cmds, 2, &got));
	CKEQ(2, got);
	held = cmds[1];
	/* One thread completes cmds[0] and waits for ever, then Close. */
	memset(&w, 0, sizeof(w));
	w.dev = dev[0];
	w.c.cmd = cmds[0];
	w.ret = 1;
	CK(pthread_create(&th, NULL, close_waiter_main, &w) == 0);
	end = lt_now_ms() + 5000;
	while (lt_now_ms() < end &&
	       (!__atomic_load_n(&w.tid, __ATOMIC_ACQUIRE) ||
		lt_in_ioctl(w.tid) != 1))
		lt_sleep_ms(5);
	/* Past its completion and its spin: asleep in the module. */
	lt_sleep_ms(100);
	CK(lt_in_ioctl(w.tid) == 1);
	CKEQ(VD_E_OPEN, vdi_client_close(set));
	pthread_join(th, NULL);
	CKEQ(VD_E_ABORT, w.ret);
	CKEQ(1, w.done);
	CKEQ(0, w.got);
	/* After Close: a held command is VD_E_ABORT, an unknown one
	 * VD_E_INVALID, a wait VD_E_ABORT, the ended device VD_E_CLOSE. */
	c.cmd = held;
	c.completionCode = 0;
	c.bytesTransferred = 0;
	c.position = 0;
	CKEQ(VD_E_ABORT, vdi_client_complete_and_get(dev[0], &c, 1, &done, 0,
						     cmds, 4, &got));
	CKEQ(0, done);
	c.cmd = &fake;
	CKEQ(VD_E_INVALID, vdi_client_complete_and_get(dev[0], &c, 1, &done,
						       0, cmds, 4, &got));
	CKEQ(VD_E_ABORT, vdi_client_complete_and_get(dev[0], NULL, 0, &done,
						     -1, cmds, 4, &got));
	CKEQ(VD_E_CLOSE, vdi_client_complete_and_get(dev[1], NULL, 0, &done,
						     -1, cmds, 4, &got));
	vdi_client_set_free(set);
	return 0;
}

static void scene_close_mid_call(struct __test_metadata *_metadata, bool enter)
{
	char name[LT_NAME_MAX], dn[LT_NAME_MAX];
	vdi_server_device *dev[2];
	vdi_server_set *set;
	struct lt_agent agent;
	struct lt_cmd k[2];
	struct lt_peer rc;
	struct lt_msg m;
	int i;

	use_enter(enter);
	lt_name(name, "cagclose");
	ASSERT_EQ(0, lt_spawn(&rc, close_mid_call_child, name));
	ASSERT_EQ(0, lt_recv(&rc, &m, 5000));
	ASSERT_VD(NOERROR, vdi_server_open(&set, NULL, name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(set, VDF_WriteMedia,
							  0, 512, 65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(set));
	for (i = 0; i < 2; i++) {
		lt_dev_name(dn, name, (unsigned int)i);
		ASSERT_VD(NOERROR, vdi_server_open_device(set, dn, &dev[i]));
	}
	ASSERT_EQ(0, lt_agent_start(&agent, set));
	ASSERT_EQ(0, lt_recv(&rc, &m, 5000));
	for (i = 0; i < 2; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(dev[0], &k[i]));
	}
	ASSERT_VD(NOERROR, vdi_server_close_device(dev[1]));
	EXPECT_EQ(0, lt_reap(&rc, 15000));
	ASSERT_TRUE(lt_agent_done(&agent, 5000));
	EXPECT_VD(VD_E_ABORT, agent.ret);
	EXPECT_EQ(1, k[0].calls);
	EXPECT_EQ(0, k[0].code);
	EXPECT_EQ(1, k[1].calls);
	EXPECT_EQ(ERROR_OPERATION_ABORTED, k[1].code);
	vdi_server_close(set);
	lt_peer_kill(&rc);
}

TEST(complete_and_get_while_the_client_closes)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_close_mid_call(_metadata, true);
}

TEST(complete_and_get_while_the_client_closes_without_enter)
{
	scene_close_mid_call(_metadata, false);
}

/*
 * Fault injection for VD_E_MEMORY: while calloc_fails is set, calloc()
 * fails in this process (libvdi's records of commands are calloc()ed; the
 * executable's calloc interposes on the one libvdi.so.1 calls).
 */
static volatile int calloc_fails;
extern void *__libc_calloc(size_t n, size_t size);

void *calloc(size_t n, size_t size)
{
	if (calloc_fails) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

static int memory_child(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	vdi_client_set *set = vdi_client_set_new();
	vdi_client_completion c[2];
	vdi_client_device *dev;
	VDC_Command *cmds[4], *more[64];
	unsigned int done, got, held;
	struct lt_msg m;
	VDConfig cfg;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	CKEQ(NOERROR, vdi_client_create(set, name, &cfg));
	lt_msg_init(&m, 0);
	CK(lt_send(self, &m) == 0);
	CKEQ(NOERROR, vdi_client_get_configuration(set, 5000, &cfg));
	CKEQ(NOERROR, vdi_client_open_device(set, name, &dev));
	/* No record for a command yet, and none can be made. */
	calloc_fails = 1;
	r = vdi_client_complete_and_get(dev, NULL, 0, &done, 5000, cmds, 4,
					&got);
	calloc_fails = 0;
	CKEQ(VD_E_MEMORY, r);
	CKEQ(0, got);
	/* Hold two: a chunk of 64 records is made, 62 are spare. */
	for (held = 0; held < 2; held += got)
		CKEQ(NOERROR, vdi_client_complete_and_get(dev, NULL, 0, &done,
							  5000, cmds + held,
							  2 - held, &got));
	/* 64 asked, fewer than that spare even with the completed one's
	 * record back: the completion goes, nothing comes. */
	c[0] = lt_rc_completion(cmds[0], 0);
	calloc_fails = 1;
	r = vdi_client_complete_and_get(dev, c, 1, &done, 5000, more, 64,
					&got);
	calloc_fails = 0;
	CKEQ(VD_E_MEMORY, r);
	CKEQ(1, done);
	CKEQ(0, got);
	/* The third command waited in the queue. */
	CKEQ(NOERROR, vdi_client_complete_and_get(dev, NULL, 0, &done, 5000,
						  more, 64, &got));
	CKEQ(1, got);
	CKEQ(2, more[0]->position);
	c[0] = lt_rc_completion(cmds[1], 0);
	c[1] = lt_rc_completion(more[0], 0);
	CKEQ(VD_E_CLOSE, vdi_client_complete_and_get(dev, c, 2, &done, 5000,
						     more, 64, &got));
	CKEQ(2, done);
	CKEQ(NOERROR, vdi_client_close(set));
	vdi_client_set_free(set);
	return 0;
}

static void scene_memory(struct __test_metadata *_metadata, bool enter)
{
	char name[LT_NAME_MAX];
	vdi_server_device *dev;
	vdi_server_set *set;
	struct lt_agent agent;
	struct lt_cmd k[3];
	struct lt_peer rc;
	struct lt_msg m;
	int i;

	use_enter(enter);
	lt_name(name, "cagmem");
	ASSERT_EQ(0, lt_spawn(&rc, memory_child, name));
	ASSERT_EQ(0, lt_recv(&rc, &m, 5000));
	ASSERT_VD(NOERROR, vdi_server_open(&set, NULL, name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(set, VDF_WriteMedia,
							  0, 512, 65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(set));
	ASSERT_VD(NOERROR, vdi_server_open_device(set, name, &dev));
	ASSERT_EQ(0, lt_agent_start(&agent, set));
	for (i = 0; i < 3; i++) {
		lt_cmd_init(&k[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(dev, &k[i]));
	}
	ASSERT_EQ(0, lt_wait_calls(3, 10000));
	ASSERT_VD(NOERROR, vdi_server_close_device(dev));
	EXPECT_EQ(0, lt_reap(&rc, 10000));
	ASSERT_TRUE(lt_agent_done(&agent, 5000));
	EXPECT_VD(NOERROR, agent.ret);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(1, k[i].calls);
		EXPECT_EQ(0, k[i].code);
		EXPECT_EQ(i + 7, k[i].pos);
	}
	EXPECT_VD(NOERROR, vdi_server_close(set));
	lt_peer_kill(&rc);
}

TEST(complete_and_get_out_of_memory)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_memory(_metadata, true);
}

TEST(complete_and_get_out_of_memory_without_enter)
{
	scene_memory(_metadata, false);
}

/* ------------------------------------------------------------------ */
/* SendCommand in a routine, on the agent's thread                     */

static vdi_server_set *hook_set;
static vdi_server_device *hook_dev[4];
static struct lt_cmd hook_cmd[16];
static int hook_ret[16];
static int64_t hook_before[16], hook_after[16];
static int hook_phase2, hook_close_ret = 1, hook_finished;
static unsigned int hook_sent[16];

/* Wait until a hook said it is through (its commands may reach the
 * client before it is, without ENTER). */
static bool hook_wait_finished(void)
{
	int64_t end = lt_now_ms() + 5000;

	while (!__atomic_load_n(&hook_finished, __ATOMIC_ACQUIRE)) {
		if (lt_now_ms() > end)
			return false;
		lt_sleep_ms(1);
	}
	return true;
}

/* Routine of command 0: five commands for device 0, each looked for in
 * the module's count right after SendCommand returned. */
static void collect_hook(struct lt_cmd *c)
{
	int i;

	if (c->id != 0 || c->in_send)
		return;
	for (i = 1; i <= 5; i++) {
		lt_cmd_init(&hook_cmd[i], i, VDC_Flush, 0, i);
		hook_before[i] = module_sent(hook_set, 0);
		hook_ret[i] = lt_send_cmd(hook_dev[0], &hook_cmd[i]);
		hook_after[i] = module_sent(hook_set, 0);
	}
	__atomic_store_n(&hook_finished, 1, __ATOMIC_RELEASE);
}

static void scene_collected_in_order(struct __test_metadata *_metadata,
				     bool enter)
{
	struct lt_pair_opts o;
	struct lt_cmd k0;
	struct lt_pair p;
	struct lt_msg m;
	int i, got = 0;

	use_enter(enter);
	memset(&o, 0, sizeof(o));
	o.depth = 8;
	ASSERT_EQ(0, lt_pair_setup(&p, "collect", &o));
	hook_set = p.set;
	hook_dev[0] = p.dev[0];
	hook_finished = 0;
	lt_set_hook(collect_hook);
	lt_cmd_init(&k0, 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k0));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 8, 1000, &m));
	/* Complete it: its routine sends five, which come in order. */
	ASSERT_VD(NOERROR, turn(&p, 0, 1, 0, 8, 2000, &m));
	for (;;) {
		EXPECT_EQ(got + 1, m.q[0]);
		got += m.a[1];
		EXPECT_EQ(got, m.q[1]);
		if (got >= 5)
			break;
		ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 8, 2000, &m));
	}
	EXPECT_EQ(5, got);
	if (enter)	/* all five reached the client in the agent's call */
		EXPECT_EQ(5, m.a[1]);
	ASSERT_TRUE(hook_wait_finished());
	for (i = 1; i <= 5; i++) {
		EXPECT_VD(NOERROR, hook_ret[i]);
		EXPECT_EQ(0, hook_cmd[i].calls);
		/* Collected: the module has it only after the routine. */
		EXPECT_EQ(hook_before[i] + (enter ? 0 : 1), hook_after[i]) {
			TH_LOG("command %d: the module counted %lld sent before "
			       "SendCommand, %lld after", i,
			       (long long)hook_before[i],
			       (long long)hook_after[i]);
		}
	}
	EXPECT_EQ(1, hook_before[1]);
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 5, 0, 8, 0, &m));
	EXPECT_EQ(5, m.a[0]);
	ASSERT_EQ(0, lt_wait_calls(6, 2000));
	lt_set_hook(NULL);
	expect_done(_metadata, &p, &k0, 0, 7);
	for (i = 1; i <= 5; i++)
		expect_done(_metadata, &p, &hook_cmd[i], 0, i + 7);
	lt_pair_end_normally(_metadata, &p);
}

TEST(routine_sends_are_collected_in_order)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_collected_in_order(_metadata, true);
}

TEST(routine_sends_go_at_once_without_enter)
{
	scene_collected_in_order(_metadata, false);
}

/* Depth 4.  Command 0's routine: four fit, the fifth is refused at once,
 * a batch of two after them too (only its first told).  Then the last of
 * those four to complete sends four again, and a fifth. */
static void full_hook(struct lt_cmd *c)
{
	VDS_Command *v[2];
	int i;

	if (c->in_send)
		return;
	if (c->id == 0) {
		for (i = 1; i <= 5; i++) {
			lt_cmd_init(&hook_cmd[i], i, VDC_Flush, 0, i);
			hook_ret[i] = lt_send_cmd(hook_dev[0], &hook_cmd[i]);
		}
		lt_cmd_init(&hook_cmd[6], 6, VDC_Flush, 0, 6);
		lt_cmd_init(&hook_cmd[7], 7, VDC_Flush, 0, 7);
		v[0] = &hook_cmd[6].cmd;
		v[1] = &hook_cmd[7].cmd;
		lt_in_send = 1;
		hook_ret[6] = vdi_server_send_commands(hook_dev[0], v, 2,
						       &hook_sent[6]);
		lt_in_send = 0;
	} else if (c->id >= 1 && c->id <= 4 && ++hook_phase2 == 4) {
		for (i = 8; i <= 12; i++) {
			lt_cmd_init(&hook_cmd[i], i, VDC_Flush, 0, i);
			hook_ret[i] = lt_send_cmd(hook_dev[0], &hook_cmd[i]);
		}
	}
}

static void expect_told_in_send(struct __test_metadata *_metadata,
				struct lt_pair *p, struct lt_cmd *c,
				int32_t code)
{
	EXPECT_EQ(1, c->calls);
	EXPECT_EQ(1, c->in_send);	/* inside its SendCommand ... */
	EXPECT_TRUE(pthread_equal(c->thread, p->agent.self)); /* the agent's */
	EXPECT_EQ(code, c->code);
	EXPECT_EQ(0, c->bytes);
	EXPECT_EQ(0, c->pos);
}

static void scene_queue_full(struct __test_metadata *_metadata, bool enter)
{
	struct lt_pair_opts o;
	struct lt_cmd k0;
	struct lt_pair p;
	struct lt_msg m;
	int i, got;

	use_enter(enter);
	memset(&o, 0, sizeof(o));
	o.depth = 4;
	ASSERT_EQ(0, lt_pair_setup(&p, "collfull", &o));
	hook_dev[0] = p.dev[0];
	hook_phase2 = 0;
	lt_set_hook(full_hook);
	lt_cmd_init(&k0, 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k0));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 8, 1000, &m));
	for (got = 0; got < 4; got += m.a[1])
		ASSERT_VD(NOERROR, turn(&p, 0, got ? 0 : 1, 0, 8, 2000, &m));
	EXPECT_EQ(4, got);
	ASSERT_EQ(0, lt_wait_calls(3, 2000));	/* k0, hook 5 and 6 */
	for (i = 1; i <= 4; i++)
		EXPECT_VD(NOERROR, hook_ret[i]);
	EXPECT_VD(VD_E_QUEUE_FULL, hook_ret[5]);
	expect_told_in_send(_metadata, &p, &hook_cmd[5],
			    ERROR_NO_SYSTEM_RESOURCES);
	EXPECT_VD(VD_E_QUEUE_FULL, hook_ret[6]);
	EXPECT_EQ(0U, hook_sent[6]);
	expect_told_in_send(_metadata, &p, &hook_cmd[6],
			    ERROR_NO_SYSTEM_RESOURCES);
	EXPECT_EQ(0, hook_cmd[7].calls);
	/* All four completed at once: the last routine finds room for four
	 * and the fifth refused. */
	for (got = 0; got < 4; got += m.a[1])
		ASSERT_VD(NOERROR, turn(&p, 0, got ? 0 : 4, 0, 8, 2000, &m));
	EXPECT_EQ(4, got);
	ASSERT_EQ(0, lt_wait_calls(8, 2000));
	for (i = 8; i <= 11; i++)
		EXPECT_VD(NOERROR, hook_ret[i]);
	EXPECT_VD(VD_E_QUEUE_FULL, hook_ret[12]);
	expect_told_in_send(_metadata, &p, &hook_cmd[12],
			    ERROR_NO_SYSTEM_RESOURCES);
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 4, 0, 8, 0, &m));
	ASSERT_EQ(0, lt_wait_calls(12, 2000));
	lt_set_hook(NULL);
	for (i = 1; i <= 4; i++)
		expect_done(_metadata, &p, &hook_cmd[i], 0, i + 7);
	for (i = 8; i <= 11; i++)
		expect_done(_metadata, &p, &hook_cmd[i], 0, i + 7);
	lt_pair_end_normally(_metadata, &p);
}

TEST(queue_full_is_still_said_at_once_when_collecting)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_queue_full(_metadata, true);
}

TEST(queue_full_is_said_at_once_without_enter)
{
	scene_queue_full(_metadata, false);
}

/* Command 0's routine sends three on two devices, then the set aborts:
 * by the routine itself (0), by another thread while the routine is
 * held (1), or by Close on another thread meanwhile (2). */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static int hold_how, hold_entered, hold_released;

static void abort_hook(struct lt_cmd *c)
{
	int64_t end = lt_now_ms() + 10000;
	int i;

	if (c->id != 0 || c->in_send)
		return;
	for (i = 1; i <= 3; i++) {
		lt_cmd_init(&hook_cmd[i], i, VDC_Flush, 0, i);
		hook_ret[i] = lt_send_cmd(hook_dev[i == 2], &hook_cmd[i]);
	}
	if (hold_how == 0) {
		hook_ret[0] = vdi_server_signal_abort(hook_set);
		return;
	}
	pthread_mutex_lock(&hold_mu);
	hold_entered = 1;
	while (!hold_released && lt_now_ms() < end) {
		pthread_mutex_unlock(&hold_mu);
		lt_sleep_ms(1);
		pthread_mutex_lock(&hold_mu);
	}
	pthread_mutex_unlock(&hold_mu);
}

static bool hold_wait(void)
{
	int64_t end = lt_now_ms() + 5000;
	int e = 0;

	while (!e && lt_now_ms() < end) {
		pthread_mutex_lock(&hold_mu);
		e = hold_entered;
		pthread_mutex_unlock(&hold_mu);
		if (!e)
			lt_sleep_ms(1);
	}
	return e;
}

static void *closer_main(void *arg)
{
	struct lt_pair *p = (struct lt_pair *)arg;

	hook_ret[15] = vdi_server_close(p->set);
	return NULL;
}

static void scene_abort_collected(struct __test_metadata *_metadata,
				  bool enter, int how)
{
	struct lt_pair_opts o;
	struct lt_cmd k0;
	struct lt_pair p;
	struct lt_msg m;
	pthread_t closer;
	int i;

	use_enter(enter);
	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "collabort", &o));
	hook_set = p.set;
	hook_dev[0] = p.dev[0];
	hook_dev[1] = p.dev[1];
	hold_how = how;
	hold_entered = hold_released = 0;
	lt_set_hook(abort_hook);
	lt_cmd_init(&k0, 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k0));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 8, 1000, &m));
	ASSERT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 0, -1));
	if (how) {
		ASSERT_TRUE(hold_wait());
		if (how == 1) {
			EXPECT_VD(NOERROR, vdi_server_signal_abort(p.set));
		} else {
			ASSERT_EQ(0, pthread_create(&closer, NULL, closer_main,
						    &p));
			lt_sleep_ms(100);	/* Close waits for the agent */
		}
		pthread_mutex_lock(&hold_mu);
		hold_released = 1;
		pthread_mutex_unlock(&hold_mu);
	} else {
		ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
		EXPECT_VD(NOERROR, hook_ret[0]);
	}
	if (how == 2) {
		pthread_join(closer, NULL);
		/* Devices were open: aborted, and everything released. */
		EXPECT_VD(VD_E_PROTOCOL, hook_ret[15]);
		p.set = NULL;
	}
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	lt_set_hook(NULL);
	/* Each routine told once, before the agent returned. */
	EXPECT_EQ(4, p.agent.calls_at_return);
	expect_done(_metadata, &p, &k0, 0, 0);
	for (i = 1; i <= 3; i++) {
		EXPECT_VD(NOERROR, hook_ret[i]);
		expect_done(_metadata, &p, &hook_cmd[i],
			    ERROR_OPERATION_ABORTED, 0);
	}
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(abort_by_the_routine_while_sends_are_collected)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_abort_collected(_metadata, true, 0);
}

TEST(abort_by_another_thread_while_sends_are_collected)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_abort_collected(_metadata, true, 1);
}

TEST(close_while_sends_are_collected)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_abort_collected(_metadata, true, 2);
}

TEST(abort_after_routine_sends_without_enter)
{
	scene_abort_collected(_metadata, false, 0);
	scene_abort_collected(_metadata, false, 1);
}

/* Command 0's routine sends one command to each of four devices, then
 * counts its own thread's system calls from there on. */
static int hook_counter = -1;

static void four_hook(struct lt_cmd *c)
{
	int d;

	if (c->id != 0 || c->in_send)
		return;
	for (d = 0; d < 4; d++) {
		lt_cmd_init(&hook_cmd[1 + d], 1 + d, VDC_Flush, 0, 1 + d);
		hook_before[1 + d] = module_sent(hook_set, (unsigned int)d);
		hook_ret[1 + d] = lt_send_cmd(hook_dev[d], &hook_cmd[1 + d]);
		hook_after[1 + d] = module_sent(hook_set, (unsigned int)d);
	}
	hook_counter = lt_syscall_counter(0, false);
	if (hook_counter >= 0)
		lt_counter_enable(hook_counter, true);
}

TEST(sends_to_four_devices_go_in_one_call)
{
	struct lt_pair_opts o;
	struct lt_cmd k0;
	struct lt_pair p;
	struct lt_msg m;
	int64_t calls;
	int d;

	ASSERT_MODULE_HAS_ENTER();
	use_enter(true);
	memset(&o, 0, sizeof(o));
	o.ndev = 4;
	o.depth = 8;
	ASSERT_EQ(0, lt_pair_setup(&p, "collfour", &o));
	hook_set = p.set;
	for (d = 0; d < 4; d++)
		hook_dev[d] = p.dev[d];
	lt_set_hook(four_hook);
	lt_cmd_init(&k0, 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k0));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 8, 1000, &m));
	ASSERT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 0, -1));
	for (d = 0; d < 4; d++) {
		ASSERT_VD(NOERROR, turn(&p, d, 0, 0, 8, 2000, &m));
		EXPECT_EQ(1, m.a[1]);
		EXPECT_EQ(1 + d, m.q[0]);
	}
	/* The routine returned, the agent made one call, which handed over
	 * the four and now waits for completions. */
	ASSERT_LE(0, hook_counter) {
		TH_LOG("no system call counter: %s", strerror(-hook_counter));
	}
	calls = lt_counter_read(hook_counter);
	EXPECT_EQ(1, calls) {
		TH_LOG("the agent's thread made %lld system calls after the "
		       "routine sent to four devices (one ENTER expected)",
		       (long long)calls);
	}
	close(hook_counter);
	for (d = 0; d < 4; d++) {
		EXPECT_VD(NOERROR, hook_ret[1 + d]);
		EXPECT_EQ(hook_before[1 + d], hook_after[1 + d]);
		EXPECT_VD(VD_E_TIMEOUT, turn(&p, d, 1, 0, 8, 0, &m));
	}
	ASSERT_EQ(0, lt_wait_calls(5, 2000));
	lt_set_hook(NULL);
	for (d = 0; d < 4; d++)
		expect_done(_metadata, &p, &hook_cmd[1 + d], 0, 1 + d + 7);
	lt_pair_end_normally(_metadata, &p);
}

/*
 * A stream of even positions re-sent by the routines on the agent's
 * thread, and one of odd positions from a thread of the server's, on one
 * device: each arrives once, each in its own order.
 */
#define MIX_N		200
#define MIX_A_DEPTH	4
#define MIX_B_DEPTH	8
static struct lt_cmd *mix_a, *mix_b;
static int mix_a_next, mix_a_fail, mix_b_fail, mix_b_done;

static void mix_hook(struct lt_cmd *c)
{
	int n;

	if (c->in_send)
		return;
	if (c->id >= 1000) {
		__atomic_add_fetch(&mix_b_done, 1, __ATOMIC_SEQ_CST);
		return;
	}
	n = mix_a_next++;	/* the agent's thread only */
	if (n < MIX_N && lt_send_cmd(hook_dev[0], &mix_a[n]) != NOERROR)
		mix_a_fail++;
}

static void *mix_b_main(void *arg)
{
	int i, r;

	(void)arg;
	for (i = 0; i < MIX_N; i++) {
		while (i - __atomic_load_n(&mix_b_done, __ATOMIC_SEQ_CST) >=
		       MIX_B_DEPTH)
			sched_yield();
		do {
			r = lt_send_cmd(hook_dev[0], &mix_b[i]);
			if (r != NOERROR)
				__atomic_add_fetch(&mix_b_fail, 1,
						   __ATOMIC_SEQ_CST);
		} while (r == VD_E_QUEUE_FULL);
	}
	return NULL;
}

static void scene_mixed_senders(struct __test_metadata *_metadata, bool enter)
{
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_msg m;
	pthread_t b;
	int i;

	use_enter(enter);
	mix_a = (struct lt_cmd *)calloc(MIX_N, sizeof(*mix_a));
	mix_b = (struct lt_cmd *)calloc(MIX_N, sizeof(*mix_b));
	ASSERT_TRUE(mix_a && mix_b);
	for (i = 0; i < MIX_N; i++) {
		lt_cmd_init(&mix_a[i], i, VDC_Flush, 0, 2 * i);
		lt_cmd_init(&mix_b[i], 1000 + i, VDC_Flush, 0, 2 * i + 1);
	}
	memset(&o, 0, sizeof(o));
	o.depth = MIX_A_DEPTH + MIX_B_DEPTH + 4;
	ASSERT_EQ(0, lt_pair_setup(&p, "collmix", &o));
	hook_dev[0] = p.dev[0];
	lt_set_hook(mix_hook);
	mix_a_next = MIX_A_DEPTH;
	for (i = 0; i < MIX_A_DEPTH; i++)
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &mix_a[i]));
	ASSERT_EQ(0, pthread_create(&b, NULL, mix_b_main, NULL));
	lt_msg_init(&m, RC_SERVE_TURNS);
	m.a[1] = 4;
	m.a[2] = LT_SERVE_ORDER;
	m.q[0] = 10000;
	ASSERT_EQ(0, lt_send(&p.rc, &m));
	ASSERT_EQ(0, lt_wait_calls(2 * MIX_N, 20000));
	pthread_join(b, NULL);
	ASSERT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	p.dev[0] = NULL;
	ASSERT_EQ(0, lt_recv(&p.rc, &m, LT_RPC_MS));
	EXPECT_VD(VD_E_CLOSE, m.ret);
	EXPECT_EQ(2 * MIX_N, m.a[0]);
	EXPECT_EQ(0, m.a[2]) {
		TH_LOG("%d commands came out of their sender's order", m.a[2]);
	}
	lt_set_hook(NULL);
	EXPECT_EQ(0, mix_a_fail);
	EXPECT_EQ(0, mix_b_fail);
	for (i = 0; i < MIX_N; i++) {
		expect_done(_metadata, &p, &mix_a[i], 0, 2 * i + 7);
		expect_done(_metadata, &p, &mix_b[i], 0, 2 * i + 8);
	}
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
	free(mix_a);
	free(mix_b);
}

TEST(a_routine_and_another_thread_send_to_one_device)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_mixed_senders(_metadata, true);
}

TEST(a_routine_and_another_thread_send_to_one_device_without_enter)
{
	scene_mixed_senders(_metadata, false);
}

/* Command 0's routine sends one more and closes the device: the command
 * goes first.  It also sends to device 1, which the server closed:
 * refused at once. */
static void close_hook(struct lt_cmd *c)
{
	if (c->id != 0 || c->in_send)
		return;
	lt_cmd_init(&hook_cmd[1], 1, VDC_Flush, 0, 1);
	hook_ret[1] = lt_send_cmd(hook_dev[0], &hook_cmd[1]);
	lt_cmd_init(&hook_cmd[2], 2, VDC_Flush, 0, 2);
	hook_ret[2] = lt_send_cmd(hook_dev[1], &hook_cmd[2]);
	hook_close_ret = vdi_server_close_device(hook_dev[0]);
}

static void scene_send_then_close(struct __test_metadata *_metadata,
				  bool enter)
{
	struct lt_pair_opts o;
	struct lt_cmd k0;
	struct lt_pair p;
	struct lt_msg m;

	use_enter(enter);
	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "collclose", &o));
	hook_dev[0] = p.dev[0];
	hook_dev[1] = p.dev[1];
	hook_close_ret = 1;
	ASSERT_VD(NOERROR, vdi_server_close_device(p.dev[1]));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 1, -1, -1, -1, 2000, NULL));
	lt_set_hook(close_hook);
	lt_cmd_init(&k0, 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k0));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 8, 1000, &m));
	ASSERT_VD(NOERROR, turn(&p, 0, 1, 0, 8, 2000, &m));
	EXPECT_EQ(1, m.a[1]);
	EXPECT_EQ(1, m.q[0]);
	EXPECT_VD(VD_E_CLOSE, turn(&p, 0, 1, 0, 8, 2000, &m));
	EXPECT_EQ(1, m.a[0]);
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(NOERROR, p.agent.ret);
	lt_set_hook(NULL);
	EXPECT_VD(NOERROR, hook_close_ret);
	EXPECT_VD(NOERROR, hook_ret[1]);
	expect_done(_metadata, &p, &k0, 0, 7);
	expect_done(_metadata, &p, &hook_cmd[1], 0, 8);
	EXPECT_VD(VD_E_PROTOCOL, hook_ret[2]);
	expect_told_in_send(_metadata, &p, &hook_cmd[2], ERROR_INVALID_HANDLE);
	EXPECT_EQ(3, p.agent.calls_at_return);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* An agent run from a routine of another set's agent                 */

static vdi_server_set *nest_set;
static int nest_ret = 1;

/* Command 0's routine on set 1 sends one more to set 1 (collected), then
 * runs set 2's agent, which holds the thread until set 2 ends. */
static void nest_hook(struct lt_cmd *c)
{
	if (c->id != 0 || c->in_send)
		return;
	lt_cmd_init(&hook_cmd[1], 1, VDC_Flush, 0, 1);
	hook_ret[1] = lt_send_cmd(hook_dev[0], &hook_cmd[1]);
	nest_ret = vdi_server_execute_completion_agent(nest_set);
	__atomic_store_n(&hook_finished, 1, __ATOMIC_RELEASE);
}

TEST(an_agent_run_by_a_routine_first_hands_over_what_the_outer_collected)
{
	struct lt_pair_opts o;
	struct lt_pair p, p2;
	struct lt_cmd k0;
	struct lt_msg m;

	ASSERT_MODULE_HAS_ENTER();
	use_enter(true);
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "nestout", &o));
	o.no_agent = true;
	ASSERT_EQ(0, lt_pair_setup(&p2, "nestin", &o));
	hook_dev[0] = p.dev[0];
	nest_set = p2.set;
	hook_finished = 0;
	lt_set_hook(nest_hook);
	lt_cmd_init(&k0, 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k0));
	ASSERT_VD(NOERROR, turn(&p, 0, 0, 0, 8, 1000, &m));
	/* Completing command 0 runs the hook: while set 2's agent holds the
	 * thread, command 1 must reach set 1's client all the same. */
	EXPECT_VD(NOERROR, turn(&p, 0, 1, 0, 8, 3000, &m));
	EXPECT_EQ(1, m.a[1]);
	EXPECT_EQ(1, m.q[0]);
	EXPECT_VD(NOERROR, hook_ret[1]);
	/* Set 2 ends: its agent returns, and so does the routine. */
	EXPECT_VD(NOERROR, vdi_server_close_device(p2.dev[0]));
	EXPECT_TRUE(hook_wait_finished());
	EXPECT_VD(NOERROR, nest_ret);
	lt_set_hook(NULL);
	EXPECT_VD(VD_E_TIMEOUT, turn(&p, 0, 1, 0, 8, 0, &m));
	lt_pair_teardown(&p2);
	lt_pair_teardown(&p);
}

TEST(a_routine_that_sends_then_closes_its_device)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_send_then_close(_metadata, true);
}

TEST(a_routine_that_sends_then_closes_its_device_without_enter)
{
	scene_send_then_close(_metadata, false);
}

/* ------------------------------------------------------------------ */
/* which calls each path makes                                         */

/*
 * A chain of 100 commands, four in flight, re-sent by their routines;
 * the client serves it in turns.  The first routine forbids SEND on the
 * agent's thread (with ENTER, routines only collect).
 */
static int chain_next, chain_fail, chain_forbid_ret = 1;
static bool chain_forbid_send;
static struct lt_cmd chain_cmd[100];

static void chain_hook(struct lt_cmd *c)
{
	if (c->in_send)
		return;
	if (chain_forbid_send && chain_forbid_ret == 1)
		chain_forbid_ret = lt_forbid_ioctl(VDI_IOC_SEND);
	if (chain_next < 100 &&
	    lt_send_cmd(hook_dev[0], &chain_cmd[chain_next++]) != NOERROR)
		chain_fail++;
}

static void scene_forbidden(struct __test_metadata *_metadata, bool enter)
{
	static const unsigned long client_forbid[2][2] = {
		{ VDI_IOC_ENTER, VDI_IOC_ENTER },
		{ VDI_IOC_GET_COMMANDS, VDI_IOC_COMPLETE },
	};
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_msg m;
	int i;

	if (!lt_seccomp_filters())
		SKIP(return, "the kernel has no seccomp filters");
	use_enter(enter);
	memset(&o, 0, sizeof(o));
	o.depth = 8;
	ASSERT_EQ(0, lt_pair_spawn(&p, "forbid"));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, lt_rc_call(&p.rc, RC_FORBID,
					(int)(uint32_t)client_forbid[enter][i],
					0, 0, 0, 0, NULL));
	/* This process's threads, the agent's to come included. */
	ASSERT_EQ(0, lt_forbid_ioctl(enter ? VDI_IOC_WAIT_COMPLETIONS :
					      VDI_IOC_ENTER));
	ASSERT_EQ(0, lt_pair_configure(&p, &o));
	hook_dev[0] = p.dev[0];
	chain_forbid_send = enter;
	for (i = 0; i < 100; i++)
		lt_cmd_init(&chain_cmd[i], i, VDC_Flush, 0, i);
	chain_next = 4;
	lt_set_hook(chain_hook);
	for (i = 0; i < 4; i++)
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &chain_cmd[i]));
	lt_msg_init(&m, RC_SERVE_TURNS);
	m.a[1] = 4;
	m.a[2] = LT_SERVE_ORDER;
	m.q[0] = 5000;
	ASSERT_EQ(0, lt_send(&p.rc, &m));
	ASSERT_EQ(0, lt_wait_calls(100, 20000));
	lt_set_hook(NULL);
	ASSERT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	p.dev[0] = NULL;
	ASSERT_EQ(0, lt_recv(&p.rc, &m, LT_RPC_MS));
	EXPECT_VD(VD_E_CLOSE, m.ret);
	EXPECT_EQ(100, m.a[0]);
	EXPECT_EQ(0, m.a[2]);
	EXPECT_EQ(0, chain_fail);
	if (enter)
		EXPECT_EQ(0, chain_forbid_ret);
	for (i = 0; i < 100; i++)
		expect_done(_metadata, &p, &chain_cmd[i], 0, i + 7);
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(with_enter_no_older_wait_get_complete_or_routine_send)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_forbidden(_metadata, true);
}

TEST(without_enter_no_enter_at_all)
{
	scene_forbidden(_metadata, false);
}

/* ------------------------------------------------------------------ */
/* system calls per command                                            */

#define STREAM_DEPTH	8
#define STREAM_N	3000
#define STREAM_FROM	500
#define STREAM_TO	2500

static struct {
	vdi_server_device *dev;
	int counter;
	long done, sent, fail;
	int64_t counted;
	int wake[2];
	VDS_Command cmd[STREAM_DEPTH];
} st_g;

/* The agent's thread only: count, re-send, open and close the window. */
static void stream_routine(VDS_Command *cmd)
{
	long n = ++st_g.done;
	char x = 1;

	if (cmd->completionCode)
		st_g.fail++;
	if (n == STREAM_FROM)
		lt_counter_enable(st_g.counter, true);
	if (n == STREAM_TO) {
		lt_counter_enable(st_g.counter, false);
		st_g.counted = lt_counter_read(st_g.counter);
	}
	if (st_g.sent < STREAM_N) {
		st_g.sent++;
		if (vdi_server_send_command(st_g.dev, cmd) != NOERROR)
			st_g.fail++;
	}
	if (n == STREAM_N && write(st_g.wake[1], &x, 1) != 1)
		st_g.fail++;
}

/* A stream at depth 8, the client taking up to @max a turn: the system
 * calls each side made from command 500 to command 2500. */
static void scene_stream(struct __test_metadata *_metadata, bool enter,
			 int max, bool assert_one)
{
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_msg m;
	double server, client;
	char x;
	int i;

	use_enter(enter);
	memset(&st_g, 0, sizeof(st_g));
	memset(&o, 0, sizeof(o));
	o.depth = STREAM_DEPTH;
	ASSERT_EQ(0, pipe(st_g.wake));
	ASSERT_EQ(0, lt_pair_spawn(&p, "stream"));
	/* Every thread of this process from here on (the agent's), not the
	 * client, forked already. */
	st_g.counter = lt_syscall_counter(0, true);
	ASSERT_LE(0, st_g.counter) {
		TH_LOG("perf_event_open(raw_syscalls:sys_enter): %s",
		       strerror(-st_g.counter));
	}
	ASSERT_EQ(0, lt_pair_configure(&p, &o));
	st_g.dev = p.dev[0];
	lt_msg_init(&m, RC_SERVE_TURNS);
	m.a[1] = max;
	m.q[0] = 10000;
	m.q[1] = STREAM_FROM;
	m.q[2] = STREAM_TO;
	ASSERT_EQ(0, lt_send(&p.rc, &m));
	for (i = 0; i < STREAM_DEPTH; i++) {
		st_g.cmd[i].commandCode = VDC_Flush;
		st_g.cmd[i].completionRoutine = (uint8_t *)stream_routine;
	}
	st_g.sent = STREAM_DEPTH;
	for (i = 0; i < STREAM_DEPTH; i++)
		ASSERT_VD(NOERROR, vdi_server_send_command(p.dev[0],
							   &st_g.cmd[i]));
	ASSERT_EQ(1, read(st_g.wake[0], &x, 1));
	ASSERT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	p.dev[0] = NULL;
	ASSERT_EQ(0, lt_recv(&p.rc, &m, LT_RPC_MS));
	EXPECT_VD(VD_E_CLOSE, m.ret);
	EXPECT_EQ(STREAM_N, m.a[0]);
	EXPECT_EQ(0, st_g.fail);
	ASSERT_LT(0, st_g.counted);
	ASSERT_LT(0, m.a[3]) {
		TH_LOG("the client could not count: %s", strerror(-m.a[3]));
	}
	server = (double)st_g.counted / (STREAM_TO - STREAM_FROM);
	client = (double)m.a[3] / m.a[4];
	TH_LOG("%s, depth %d, client turns of up to %d: %.3f system calls "
	       "per command in the engine (%lld for %d), %.3f in the client "
	       "(%d for %d, %d turns in all)",
	       enter ? "VDI_IOC_ENTER" : "older calls (VDI_ENTER=0)",
	       STREAM_DEPTH, max, server, (long long)st_g.counted,
	       STREAM_TO - STREAM_FROM, client, m.a[3], m.a[4], m.a[1]);
	if (assert_one) {
		/* One more each: the ioctl that stops the counter. */
		EXPECT_GE(STREAM_TO - STREAM_FROM + 1, st_g.counted);
		EXPECT_GE(m.a[4] + 1, m.a[3]);
	}
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_EQ(0, lt_pair_teardown(&p));
	close(st_g.counter);
	close(st_g.wake[0]);
	close(st_g.wake[1]);
}

TEST(one_system_call_per_command_at_depth_8)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_stream(_metadata, true, 1, true);
}

TEST(fewer_system_calls_than_commands_when_batched)
{
	ASSERT_MODULE_HAS_ENTER();
	scene_stream(_metadata, true, STREAM_DEPTH, true);
}

/* The same streams with the older calls, for the log: no bound. */
TEST(system_calls_per_command_without_enter)
{
	scene_stream(_metadata, false, 1, false);
	scene_stream(_metadata, false, STREAM_DEPTH, false);
}

TEST_HARNESS_MAIN
