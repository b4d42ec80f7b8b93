// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi, server role: SendCommand (both tables of docs/LIBRARY.md: each
 * return code, and for each failure the completion routine called on the
 * sending thread before SendCommand returns, with its completionCode),
 * ExecuteCompletionAgent (when it may start, when and how it returns, what
 * the routines get, on which thread), and the IO-ERROR / ClearError
 * protocol end to end.  The server is this process; the client a child.
 */
#include "lib_test_util.h"

#include <limits.h>

/* The routine ran once, synchronously, for a SendCommand that failed. */
static void expect_sync_failure(struct __test_metadata *_metadata,
				struct lt_cmd *c, int32_t code)
{
	EXPECT_EQ(1, c->calls);
	EXPECT_EQ(1, c->in_send);		/* inside SendCommand ... */
	EXPECT_TRUE(pthread_equal(c->thread, pthread_self()));	/* here */
	EXPECT_TRUE(c->seen == &c->cmd);
	EXPECT_EQ(code, c->code);
	EXPECT_EQ(code, c->cmd.completionCode);
	EXPECT_EQ(0, c->bytes);
	EXPECT_EQ(0, c->pos);
	EXPECT_TRUE(c->ctx_seen == lt_ctx_of(c));
	EXPECT_TRUE(c->cmd.completionContext == lt_ctx_of(c));
	EXPECT_TRUE(c->cmd.completionRoutine ==
		    (uint8_t *)(uintptr_t)lt_routine);
}

/* A routine run by the agent for a completed command. */
static void expect_agent_done(struct __test_metadata *_metadata,
			      struct lt_pair *p, struct lt_cmd *c,
			      int32_t code, int32_t bytes, int64_t pos)
{
	EXPECT_EQ(1, c->calls);
	EXPECT_EQ(0, c->in_send);
	EXPECT_TRUE(pthread_equal(c->thread, p->agent.self));
	EXPECT_TRUE(c->seen == &c->cmd);
	EXPECT_EQ(code, c->code);
	EXPECT_EQ(bytes, c->bytes);
	EXPECT_EQ(pos, c->pos);
	EXPECT_TRUE(c->ctx_seen == lt_ctx_of(c));
	EXPECT_TRUE(c->cmd.completionContext == lt_ctx_of(c));
}

/* ------------------------------------------------------------------ */
/* a routine that can be held on the agent's thread                   */

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold_id = -1, hold_entered, hold_released;
static unsigned int slow_ms;

static void hold_hook(struct lt_cmd *c)
{
	int64_t end = lt_now_ms() + 10000;

	if (slow_ms)
		lt_sleep_ms(slow_ms);
	pthread_mutex_lock(&hold_mu);
	if (c->id == hold_id && !c->in_send) {
		hold_entered = 1;
		pthread_cond_broadcast(&hold_cv);
		while (!hold_released && lt_now_ms() < end) {
			pthread_mutex_unlock(&hold_mu);
			lt_sleep_ms(1);
			pthread_mutex_lock(&hold_mu);
		}
	}
	pthread_mutex_unlock(&hold_mu);
}

static bool hold_wait_entered(int timeout_ms)
{
	int64_t end = lt_now_ms() + timeout_ms;
	int e;

	do {
		pthread_mutex_lock(&hold_mu);
		e = hold_entered;
		pthread_mutex_unlock(&hold_mu);
		if (e)
			return true;
		lt_sleep_ms(1);
	} while (lt_now_ms() < end);
	return false;
}

static void hold_release(void)
{
	pthread_mutex_lock(&hold_mu);
	hold_released = 1;
	pthread_mutex_unlock(&hold_mu);
}

/* ------------------------------------------------------------------ */
/* SendCommand                                                         */

TEST(send_before_the_agent_runs_is_protocol)
{
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_cmd c, c2;
	VDS_Command bare;
	struct lt_msg m;
	uint8_t *b = NULL;

	memset(&o, 0, sizeof(o));
	o.no_agent = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "noagent", &o));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 4096, 0));
	lt_cmd_init(&c, 7, VDC_Write, 4096, 8192);
	c.cmd.buffer = b;
	lt_fill(b, 4096, 8192, 3);
	EXPECT_VD(VD_E_PROTOCOL, lt_send_cmd(p.dev[0], &c));
	expect_sync_failure(_metadata, &c, ERROR_INVALID_HANDLE);
	/* The inputs are untouched. */
	EXPECT_EQ(VDC_Write, c.cmd.commandCode);
	EXPECT_EQ(4096, c.cmd.size);
	EXPECT_EQ(8192, c.cmd.inPosition);
	EXPECT_TRUE(c.cmd.buffer == b);
	/* Nothing reached the client. */
	EXPECT_VD(VD_E_TIMEOUT, lt_rc_get(&p.rc, 0, 0, -1, &m));
	/* A command without a routine fails the same way, harmlessly. */
	memset(&bare, 0, sizeof(bare));
	bare.commandCode = VDC_Flush;
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_send_command(p.dev[0], &bare));
	EXPECT_EQ(ERROR_INVALID_HANDLE, bare.completionCode);

	/* Once the agent runs, the same command goes through. */
	ASSERT_EQ(0, lt_agent_start(&p.agent, p.set));
	lt_cmd_init(&c2, 8, VDC_Write, 4096, 8192);
	c2.cmd.buffer = b;
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c2));
	EXPECT_EQ(0, c2.calls);
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, 3, &m));
	EXPECT_EQ(1, m.a[3]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 4096, 0, -1));
	ASSERT_EQ(0, lt_wait_calls(2, 2000));
	expect_agent_done(_metadata, &p, &c2, 0, 4096, 0);
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b, 4096));
	lt_pair_end_normally(_metadata, &p);
}

TEST(send_to_a_full_queue_is_queue_full)
{
	struct lt_pair_opts o;
	struct lt_cmd c[8];
	struct lt_pair p;
	struct lt_msg m;
	int i;

	memset(&o, 0, sizeof(o));
	o.depth = 4;
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "qfull", &o));
	for (i = 0; i < 8; i++)
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
	for (i = 0; i < 4; i++)
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[i]));
	EXPECT_VD(VD_E_QUEUE_FULL, lt_send_cmd(p.dev[0], &c[4]));
	expect_sync_failure(_metadata, &c[4], ERROR_NO_SYSTEM_RESOURCES);
	EXPECT_EQ(1, lt_calls());
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, c[i].calls);
	/* Queues are per device. */
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[1], &c[5]));

	/* Two completed and reaped by the agent: room for two more. */
	ASSERT_VD(NOERROR, lt_rc_serve(&p.rc, 0, 2, -1, -1, 1000, &m));
	EXPECT_EQ(2, m.a[0]);
	ASSERT_EQ(0, lt_wait_calls(3, 2000));
	expect_agent_done(_metadata, &p, &c[0], 0, 0, 7);
	expect_agent_done(_metadata, &p, &c[1], 0, 0, 8);
	lt_cmd_init(&c[4], 4, VDC_Flush, 0, 4);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[4]));
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[6]));
	EXPECT_VD(VD_E_QUEUE_FULL, lt_send_cmd(p.dev[0], &c[7]));
	expect_sync_failure(_metadata, &c[7], ERROR_NO_SYSTEM_RESOURCES);
	lt_pair_end_normally(_metadata, &p);
	EXPECT_EQ(1, c[4].calls);
	EXPECT_EQ(1, c[6].calls);
	EXPECT_EQ(11, c[4].pos);
}

TEST(send_in_io_error_is_io_error)
{
	struct lt_pair_opts o;
	struct lt_cmd c[6];
	struct lt_pair p;
	struct lt_msg m;
	int i;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "ioerr", &o));
	for (i = 0; i < 6; i++)
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[0]));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], ERROR_DISK_FULL, 0,
					  0, -1));
	ASSERT_EQ(0, lt_wait_calls(1, 2000));
	expect_agent_done(_metadata, &p, &c[0], ERROR_DISK_FULL, 0, 0);

	EXPECT_VD(VD_E_IO_ERROR, lt_send_cmd(p.dev[0], &c[1]));
	expect_sync_failure(_metadata, &c[1], ERROR_IO_DEVICE);
	/* Only that device. */
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[1], &c[2]));
	/* ClearError is the one command it takes. */
	lt_cmd_init(&c[3], 3, VDC_ClearError, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[3]));
	EXPECT_EQ(0, c[3].calls);
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_EQ(VDC_ClearError, m.a[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 0, -1));
	ASSERT_EQ(0, lt_wait_calls(3, 2000));
	expect_agent_done(_metadata, &p, &c[3], 0, 0, 0);
	/* Active again. */
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[4]));
	lt_pair_end_normally(_metadata, &p);
	EXPECT_EQ(1, c[4].calls);
	EXPECT_EQ(0, c[4].code);
}

TEST(send_to_a_closed_device_is_protocol)
{
	struct lt_pair_opts o;
	struct lt_cmd c[3];
	struct lt_pair p;
	int i;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "closed", &o));
	for (i = 0; i < 3; i++)
		lt_cmd_init(&c[i], i, i == 1 ? VDC_ClearError : VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	EXPECT_VD(VD_E_PROTOCOL, lt_send_cmd(p.dev[0], &c[0]));
	expect_sync_failure(_metadata, &c[0], ERROR_INVALID_HANDLE);
	EXPECT_VD(VD_E_PROTOCOL, lt_send_cmd(p.dev[0], &c[1]));
	expect_sync_failure(_metadata, &c[1], ERROR_INVALID_HANDLE);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[1], &c[2]));
	p.dev[0] = NULL;	/* closed already */
	lt_pair_end_normally(_metadata, &p);
	EXPECT_EQ(1, c[2].calls);
	EXPECT_EQ(3, lt_calls());
}

TEST(send_in_an_aborted_set_is_abort)
{
	struct lt_pair_opts o;
	struct lt_cmd c[3];
	struct lt_pair p;
	struct lt_msg m;
	int i, who;

	/* The agent still runs (held in a routine) when the set aborts. */
	for (who = 0; who < 2; who++) {
		memset(&o, 0, sizeof(o));
		ASSERT_EQ(0, lt_pair_setup(&p, "sendab", &o));
		hold_id = 0;
		hold_entered = hold_released = 0;
		lt_set_hook(hold_hook);
		for (i = 0; i < 3; i++)
			lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[0]));
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[1]));
		ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
		EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 0, -1));
		ASSERT_TRUE(hold_wait_entered(3000));
		if (who == 0)	/* the client aborts */
			ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0,
						      0, 0, NULL));
		else
			ASSERT_VD(NOERROR, vdi_server_signal_abort(p.set));
		EXPECT_VD(VD_E_ABORT, lt_send_cmd(p.dev[0], &c[2]));
		expect_sync_failure(_metadata, &c[2], ERROR_OPERATION_ABORTED);
		hold_release();
		ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
		EXPECT_VD(VD_E_ABORT, p.agent.ret);
		expect_agent_done(_metadata, &p, &c[0], 0, 0, 0);
		expect_agent_done(_metadata, &p, &c[1], ERROR_OPERATION_ABORTED,
				  0, 0);
		EXPECT_EQ(3, p.agent.calls_at_return);
		lt_set_hook(NULL);
		lt_log_g.calls = 0;
		EXPECT_EQ(0, lt_pair_teardown(&p));
	}
}

TEST(send_after_an_abort_ended_the_agent_is_abort)
{
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_cmd c;
	int r;

	/* The usual case: the agent has already returned VD_E_ABORT. */
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "sendab2", &o));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	lt_cmd_init(&c, 1, VDC_Flush, 0, 0);
	r = lt_send_cmd(p.dev[0], &c);
	EXPECT_EQ(VD_E_ABORT, r) {
		TH_LOG("SendCommand in an aborted set: %s, routine got %d: "
		       "the set is aborted, not merely without an agent",
		       lt_code(r), c.code);
	}
	expect_sync_failure(_metadata, &c, ERROR_OPERATION_ABORTED);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(send_invalid_calls_no_routine)
{
	uint8_t *b = NULL, local[4096];
	struct lt_pair_opts o;
	struct lt_cmd c;
	struct lt_pair p;
	struct lt_msg m;

	memset(&o, 0, sizeof(o));
	o.req_size = 131072;
	o.req_count = 1;
	ASSERT_EQ(0, lt_pair_setup(&p, "inval", &o));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 131072, 0));

	EXPECT_VD(VD_E_INVALID, vdi_server_send_command(p.dev[0], NULL));
	lt_cmd_init(&c, 1, VDC_Flush, 0, 0);
	EXPECT_VD(VD_E_INVALID, vdi_server_send_command(NULL, &c.cmd));
	/* A buffer outside the area. */
	lt_cmd_init(&c, 1, VDC_Write, sizeof(local), 0);
	c.cmd.buffer = local;
	EXPECT_VD(VD_E_INVALID, lt_send_cmd(p.dev[0], &c));
	/* Read/Write over maxTransferSize (64 KiB here). */
	lt_cmd_init(&c, 1, VDC_Read, 65536 + 512, 0);
	c.cmd.buffer = b;
	EXPECT_VD(VD_E_INVALID, lt_send_cmd(p.dev[0], &c));
	lt_cmd_init(&c, 1, VDC_Write, 131072, 0);
	c.cmd.buffer = b;
	EXPECT_VD(VD_E_INVALID, lt_send_cmd(p.dev[0], &c));
	/* Codes outside 1..19. */
	lt_cmd_init(&c, 1, 0, 0, 0);
	EXPECT_VD(VD_E_INVALID, lt_send_cmd(p.dev[0], &c));
	lt_cmd_init(&c, 1, 20, 0, 0);
	EXPECT_VD(VD_E_INVALID, lt_send_cmd(p.dev[0], &c));
	lt_cmd_init(&c, 1, -1, 0, 0);
	EXPECT_VD(VD_E_INVALID, lt_send_cmd(p.dev[0], &c));
	EXPECT_EQ(0, lt_calls());
	EXPECT_EQ(0, c.calls);
	EXPECT_VD(VD_E_TIMEOUT, lt_rc_get(&p.rc, 0, 0, -1, &m));

	/* Every code 1..19 passes through, with its size and position. */
	for (int code = 1; code <= 19; code++) {
		struct lt_cmd k;
		bool data = code == VDC_Read || code == VDC_Write;

		lt_cmd_init(&k, code, code, data ? 65536 : code * 3, -code);
		if (data)
			k.cmd.buffer = b;
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &k));
		ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
		EXPECT_EQ(code, m.a[0]);
		EXPECT_EQ(data ? 65536 : code * 3, m.a[1]);
		EXPECT_EQ(-code, m.q[0]);
		EXPECT_EQ(data ? 0 : 1, m.a[5]);	/* buffer NULL */
		EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, code,
						  -1));
		ASSERT_EQ(0, lt_wait_calls(code, 2000));
		expect_agent_done(_metadata, &p, &k, 0, 0, code);
	}
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b, 131072));
	lt_pair_end_normally(_metadata, &p);
}

TEST(send_commands_stops_at_the_first_failure)
{
	VDS_Command *v[12], bare;
	struct lt_pair_opts o;
	struct lt_cmd c[12];
	struct lt_pair p;
	unsigned int sent = 99;
	uint8_t local[512];
	int i, r;

	memset(&o, 0, sizeof(o));
	o.depth = 8;
	o.no_agent = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "sendmany", &o));
	for (i = 0; i < 12; i++) {
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
		v[i] = &c[i].cmd;
	}
	EXPECT_VD(VD_E_INVALID, vdi_server_send_commands(p.dev[0], v, 1, NULL));
	EXPECT_VD(VD_E_INVALID, vdi_server_send_commands(NULL, v, 1, &sent));
	EXPECT_VD(VD_E_INVALID, vdi_server_send_commands(p.dev[0], NULL, 1,
							 &sent));
	EXPECT_VD(NOERROR, vdi_server_send_commands(p.dev[0], v, 0, &sent));
	EXPECT_EQ(0U, sent);
	/* No agent: the first command's routine says so, the rest wait. */
	lt_in_send = 1;
	r = vdi_server_send_commands(p.dev[0], v, 3, &sent);
	lt_in_send = 0;
	EXPECT_VD(VD_E_PROTOCOL, r);
	EXPECT_EQ(0U, sent);
	expect_sync_failure(_metadata, &c[0], ERROR_INVALID_HANDLE);
	EXPECT_EQ(0, c[1].calls + c[2].calls);

	ASSERT_EQ(0, lt_agent_start(&p.agent, p.set));
	lt_cmd_init(&c[0], 0, VDC_Flush, 0, 0);
	/* Five in one call. */
	EXPECT_VD(NOERROR, vdi_server_send_commands(p.dev[0], v, 5, &sent));
	EXPECT_EQ(5U, sent);
	/* Five more, three fit: the fourth is refused, the fifth not sent. */
	lt_in_send = 1;
	r = vdi_server_send_commands(p.dev[0], v + 5, 5, &sent);
	lt_in_send = 0;
	EXPECT_VD(VD_E_QUEUE_FULL, r);
	EXPECT_EQ(3U, sent);
	expect_sync_failure(_metadata, &c[8], ERROR_NO_SYSTEM_RESOURCES);
	EXPECT_EQ(0, c[9].calls);
	EXPECT_EQ(2, lt_calls());	/* c[0] without an agent, and c[8] */
	ASSERT_VD(NOERROR, lt_rc_serve(&p.rc, 0, 8, -1, -1, 1000, NULL));
	ASSERT_EQ(0, lt_wait_calls(10, 2000));
	for (i = 0; i < 8; i++)
		expect_agent_done(_metadata, &p, &c[i], 0, 0, i + 7);

	/* A NULL command, or a buffer outside the area, in the middle:
	 * VD_E_INVALID there, no routine for it, the ones before sent. */
	lt_cmd_init(&c[8], 8, VDC_Flush, 0, 8);
	v[9] = NULL;
	EXPECT_VD(VD_E_INVALID, vdi_server_send_commands(p.dev[0], v + 8, 3,
							 &sent));
	EXPECT_EQ(1U, sent);
	EXPECT_EQ(0, c[10].calls);
	memset(&bare, 0, sizeof(bare));
	bare.commandCode = VDC_Write;
	bare.size = sizeof(local);
	bare.buffer = local;
	bare.completionCode = -1;
	v[0] = &c[10].cmd;
	v[1] = &bare;
	v[2] = &c[11].cmd;
	EXPECT_VD(VD_E_INVALID, vdi_server_send_commands(p.dev[0], v, 3,
							 &sent));
	EXPECT_EQ(1U, sent);
	EXPECT_EQ(-1, bare.completionCode);
	EXPECT_EQ(0, c[11].calls);
	ASSERT_VD(NOERROR, lt_rc_serve(&p.rc, 0, 2, -1, -1, 1000, NULL));
	ASSERT_EQ(0, lt_wait_calls(12, 2000));
	expect_agent_done(_metadata, &p, &c[8], 0, 0, 15);
	expect_agent_done(_metadata, &p, &c[10], 0, 0, 17);
	lt_pair_end_normally(_metadata, &p);
}

/* ------------------------------------------------------------------ */
/* ExecuteCompletionAgent                                             */

static void *late_agent(void *arg)
{
	struct lt_agent *a = (struct lt_agent *)arg;

	lt_sleep_ms(200);
	a->ret = vdi_server_execute_completion_agent(a->set);
	return NULL;
}

TEST(wait_agent_codes)
{
	struct lt_pair_opts o;
	struct lt_agent late;
	struct lt_pair p;
	struct lt_cmd c;
	int64_t t0, dt;

	memset(&o, 0, sizeof(o));
	o.no_agent = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "waitagent", &o));
	EXPECT_VD(VD_E_INVALID, vdi_server_wait_agent(NULL, 0));
	/* VD_E_TIMEOUT: at once with 0, after the time given otherwise. */
	t0 = lt_now_us();
	EXPECT_VD(VD_E_TIMEOUT, vdi_server_wait_agent(p.set, 0));
	EXPECT_GT(500000, lt_now_us() - t0);
	t0 = lt_now_us();
	EXPECT_VD(VD_E_TIMEOUT, vdi_server_wait_agent(p.set, 150));
	dt = lt_now_us() - t0;
	EXPECT_LE(150000, dt);
	EXPECT_GT(2000000, dt);
	/* NOERROR as soon as another thread enters the agent. */
	memset(&late, 0, sizeof(late));
	late.set = p.set;
	late.ret = -1;
	ASSERT_EQ(0, pthread_create(&late.th, NULL, late_agent, &late));
	t0 = lt_now_us();
	EXPECT_VD(NOERROR, vdi_server_wait_agent(p.set, INFINITE));
	EXPECT_LE(150000, lt_now_us() - t0);
	EXPECT_VD(NOERROR, vdi_server_wait_agent(p.set, 0));
	/* ... so a command can be sent right away. */
	lt_cmd_init(&c, 0, VDC_Flush, 0, 0);
	EXPECT_VD(NOERROR, lt_send_cmd(p.dev[0], &c));
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 0, -1, -1, -1, 1000, NULL));
	pthread_join(late.th, NULL);
	EXPECT_VD(NOERROR, late.ret);
	EXPECT_EQ(1, c.calls);
	/* It returned: nothing runs any more. */
	EXPECT_VD(VD_E_TIMEOUT, vdi_server_wait_agent(p.set, 0));
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(agent_start_conditions)
{
	struct lt_agent second;
	struct lt_pair p;
	int64_t t0;

	ASSERT_EQ(0, lt_pair_spawn(&p, "agentpr"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	EXPECT_VD(VD_E_INVALID, vdi_server_execute_completion_agent(NULL));
	/* VD_E_PROTOCOL before EndConfiguration (it returns at once). */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_execute_completion_agent(p.set));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set,
			VDF_WriteMedia, 0, 512, 65536, 0));
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_execute_completion_agent(p.set));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 1000,
				      NULL));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_OPEN, -1, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, vdi_server_open_device(p.set, p.name, &p.dev[0]));
	p.ndev = 1;
	/* It may start before or after OpenDevice; here after. */
	ASSERT_EQ(0, lt_agent_start(&p.agent, p.set));
	ASSERT_FALSE(lt_agent_done(&p.agent, 0));
	/* VD_E_PROTOCOL when already running, on this or another thread. */
	t0 = lt_now_ms();
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_execute_completion_agent(p.set));
	ASSERT_EQ(0, lt_agent_start(&second, p.set));
	ASSERT_TRUE(lt_agent_done(&second, 2000));
	EXPECT_VD(VD_E_PROTOCOL, second.ret);
	EXPECT_GT(1000, lt_now_ms() - t0);
	ASSERT_FALSE(lt_agent_done(&p.agent, 0));
	lt_pair_end_normally(_metadata, &p);
}

TEST(agent_returns_noerror_after_every_device_is_closed)
{
	struct lt_pair_opts o;
	struct lt_cmd c[2];
	struct lt_pair p;

	memset(&o, 0, sizeof(o));
	o.ndev = 3;
	ASSERT_EQ(0, lt_pair_setup(&p, "agentend", &o));
	lt_cmd_init(&c[0], 0, VDC_Flush, 0, 0);
	lt_cmd_init(&c[1], 1, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[1], &c[0]));
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[2], &c[1]));
	/* Closing devices one by one: it returns only after the last. */
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[1]));
	EXPECT_FALSE(lt_agent_done(&p.agent, 100));
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[2]));
	/* ... and once the queued commands have been completed. */
	EXPECT_FALSE(lt_agent_done(&p.agent, 100));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 0, -1, -1, -1, 1000, NULL));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 1, -1, -1, -1, 1000, NULL));
	EXPECT_FALSE(lt_agent_done(&p.agent, 100));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 2, -1, -1, -1, 1000, NULL));
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(NOERROR, p.agent.ret);
	/* Every routine had run before it returned. */
	EXPECT_EQ(2, p.agent.calls_at_return);
	expect_agent_done(_metadata, &p, &c[0], 0, 0, 7);
	expect_agent_done(_metadata, &p, &c[1], 0, 0, 7);
	/* After the normal end it has nothing more to do. */
	EXPECT_VD(NOERROR, vdi_server_execute_completion_agent(p.set));
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

static int threads_in_routine = -1;

static void count_threads_hook(struct lt_cmd *c)
{
	if (!c->in_send)
		threads_in_routine = lt_thread_count();
}

TEST(agent_fills_the_very_command_on_its_own_thread)
{
	struct lt_pair_opts o;
	struct lt_cmd c[5];
	struct lt_pair p;
	struct lt_msg m;
	uint8_t *b[2];
	int n0, i;

	memset(&o, 0, sizeof(o));
	o.no_agent = true;
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "agentfill", &o));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b[0], 8192, 0));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b[1], 8192, 0));
	n0 = lt_thread_count();
	ASSERT_EQ(0, lt_agent_start(&p.agent, p.set));
	/* The agent starts no thread: ours is the only new one. */
	EXPECT_EQ(n0 + 1, lt_thread_count());
	lt_set_hook(count_threads_hook);

	lt_cmd_init(&c[0], 0, VDC_Write, 8192, 1 << 20);
	c[0].cmd.buffer = b[0];
	lt_fill(b[0], 8192, 1 << 20, 0x21);
	lt_cmd_init(&c[1], 1, VDC_Read, 8192, 3 << 20);
	c[1].cmd.buffer = b[1];
	c[1].salt = 0x42;
	lt_cmd_init(&c[2], 2, VDC_GetPosition, 0, 0);
	lt_cmd_init(&c[3], 3, VDC_SetPosition, VDC_End, 1234);
	lt_cmd_init(&c[4], 4, VDC_SkipBlocks, 17, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[0]));
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[1], &c[1]));
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[2]));
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[1], &c[3]));
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[4]));

	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, 0x21, &m));
	EXPECT_EQ(1, m.a[3]);		/* the client saw the payload */
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 8192, 11, -1));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 1, 1000, -1, &m));
	EXPECT_EQ(VDC_Read, m.a[0]);
	EXPECT_EQ(3 << 20, m.q[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 5000, 22, 0x42));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_EQ(VDC_GetPosition, m.a[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0,
					  123456789012LL, -1));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 1, 1000, -1, &m));
	EXPECT_EQ(VDC_SetPosition, m.a[0]);
	EXPECT_EQ(VDC_End, m.a[1]);
	EXPECT_EQ(1234, m.q[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 99999, -1));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_EQ(VDC_SkipBlocks, m.a[0]);
	EXPECT_EQ(17, m.a[1]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], ERROR_NOT_SUPPORTED,
					  0, -5, -1));
	ASSERT_EQ(0, lt_wait_calls(5, 3000));

	expect_agent_done(_metadata, &p, &c[0], 0, 8192, 11);
	expect_agent_done(_metadata, &p, &c[1], 0, 5000, 22);
	EXPECT_EQ(1, c[1].data_ok);	/* the client's bytes, in place */
	expect_agent_done(_metadata, &p, &c[2], 0, 0, 123456789012LL);
	expect_agent_done(_metadata, &p, &c[3], 0, 0, 99999);
	expect_agent_done(_metadata, &p, &c[4], ERROR_NOT_SUPPORTED, 0, -5);
	for (i = 0; i < 5; i++)
		EXPECT_EQ(i + 1, c[i].seq);	/* in completion order */
	EXPECT_EQ(n0 + 1, threads_in_routine);
	EXPECT_EQ(n0 + 1, lt_thread_count());
	lt_set_hook(NULL);
	/* The device of SkipBlocks is in IO-ERROR now: close it anyway. */
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b[0], 8192));
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b[1], 8192));
	lt_pair_end_normally(_metadata, &p);
}

TEST(agent_calls_routines_in_completion_order)
{
	static const int order[] = { 2, 0, 3, 1, 5, 4 };
	struct lt_cmd c[6];
	int slot[6];
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_msg m;
	int i;

	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "order", &o));
	for (i = 0; i < 6; i++) {
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i * 10);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[i]));
	}
	/* FIFO to the client ... */
	for (i = 0; i < 6; i++) {
		ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
		EXPECT_EQ(i * 10, m.q[0]);
		slot[i] = m.a[2];
	}
	/* ... completed in any order, routines in that order. */
	for (i = 0; i < 6; i++) {
		EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, slot[order[i]], 0, 0,
						  order[i], -1));
		if (i == 2)
			ASSERT_EQ(0, lt_wait_calls(3, 2000));
	}
	ASSERT_EQ(0, lt_wait_calls(6, 2000));
	for (i = 0; i < 6; i++) {
		EXPECT_EQ(i + 1, c[order[i]].seq);
		expect_agent_done(_metadata, &p, &c[order[i]], 0, 0, order[i]);
	}
	lt_pair_end_normally(_metadata, &p);
}

/* A routine that sends the next command itself, from the agent's thread. */
static vdi_server_device *chain_dev;
static struct lt_cmd chain[64];
static int chain_next, chain_fail;

static void chain_hook(struct lt_cmd *c)
{
	int r;

	if (c->in_send || chain_next >= 64)
		return;
	lt_cmd_init(&chain[chain_next], chain_next, VDC_Flush, 0, chain_next);
	r = vdi_server_send_command(chain_dev, &chain[chain_next].cmd);
	if (r != NOERROR)
		chain_fail++;
	chain_next++;
}

TEST(routines_may_send_commands)
{
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_msg m;
	int i;

	memset(&o, 0, sizeof(o));
	o.depth = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "chain", &o));
	chain_dev = p.dev[0];
	lt_set_hook(chain_hook);
	lt_cmd_init(&chain[0], 0, VDC_Flush, 0, 0);
	chain_next = 1;
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &chain[0]));
	/* Each completion's routine queues the next one. */
	ASSERT_VD(NOERROR, lt_rc_serve(&p.rc, 0, 64, -1, -1, 2000, &m));
	EXPECT_EQ(64, m.a[0]);
	ASSERT_EQ(0, lt_wait_calls(64, 3000));
	lt_set_hook(NULL);
	EXPECT_EQ(0, chain_fail);
	for (i = 0; i < 64; i++) {
		expect_agent_done(_metadata, &p, &chain[i], 0, 0, i + 7);
		EXPECT_EQ(i + 1, chain[i].seq);
	}
	lt_pair_end_normally(_metadata, &p);
}

/* Signals to the agent's thread do not end it. */
static void on_usr1(int sig)
{
	(void)sig;
}

TEST(signals_do_not_end_the_agent)
{
	struct sigaction sa;
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_cmd c;
	int i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;	/* no SA_RESTART: ioctl gets EINTR */
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "sigagent", &o));
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, pthread_kill(p.agent.th, SIGUSR1));
		lt_sleep_ms(20);
	}
	ASSERT_FALSE(lt_agent_done(&p.agent, 0));
	lt_cmd_init(&c, 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c));
	ASSERT_VD(NOERROR, lt_rc_serve(&p.rc, 0, 1, -1, -1, 1000, NULL));
	ASSERT_EQ(0, lt_wait_calls(1, 2000));
	expect_agent_done(_metadata, &p, &c, 0, 0, 7);
	lt_pair_end_normally(_metadata, &p);
}

/* Commands in every state when the set aborts: queued, held, done. */
static void abort_scene(struct __test_metadata *_metadata, struct lt_pair *p,
			struct lt_cmd *c, int *held)
{
	struct lt_msg m;
	int i;

	for (i = 0; i < 4; i++) {
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p->dev[i % 2], &c[i]));
	}
	/* c0 completed, c1 held by the client, c2 and c3 queued. */
	ASSERT_VD(NOERROR, lt_rc_get(&p->rc, 0, 1000, -1, &m));
	EXPECT_VD(NOERROR, lt_rc_complete(&p->rc, m.a[2], 0, 0, 50, -1));
	ASSERT_VD(NOERROR, lt_rc_get(&p->rc, 1, 1000, -1, &m));
	*held = m.a[2];
	ASSERT_EQ(0, lt_wait_calls(1, 2000));
	EXPECT_FALSE(lt_agent_done(&p->agent, 0));
}

static void abort_outcome(struct __test_metadata *_metadata,
			  struct lt_pair *p, struct lt_cmd *c)
{
	int i;

	ASSERT_TRUE(lt_agent_done(&p->agent, 3000));
	EXPECT_VD(VD_E_ABORT, p->agent.ret);
	/* Every outstanding routine ran, before it returned. */
	EXPECT_EQ(4, p->agent.calls_at_return);
	expect_agent_done(_metadata, p, &c[0], 0, 0, 50);
	for (i = 1; i < 4; i++)
		expect_agent_done(_metadata, p, &c[i], ERROR_OPERATION_ABORTED,
				  0, 0);
}

TEST(agent_returns_abort_after_server_signal_abort)
{
	struct lt_pair_opts o;
	struct lt_cmd c[4];
	struct lt_pair p;
	int held;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "abs", &o));
	abort_scene(_metadata, &p, c, &held);
	EXPECT_VD(NOERROR, vdi_server_signal_abort(p.set));
	abort_outcome(_metadata, &p, c);
	/* The client's calls: VD_E_ABORT, its held command included. */
	EXPECT_VD(VD_E_ABORT, lt_rc_complete(&p.rc, held, 0, 0, 0, -1));
	EXPECT_VD(VD_E_ABORT, lt_rc_get(&p.rc, 0, -1, -1, NULL));
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(agent_returns_abort_after_client_signal_abort)
{
	struct lt_pair_opts o;
	struct lt_cmd c[4];
	struct lt_pair p;
	int held;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "abc", &o));
	abort_scene(_metadata, &p, c, &held);
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	abort_outcome(_metadata, &p, c);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(agent_returns_abort_when_the_client_dies)
{
	struct lt_pair_opts o;
	struct lt_cmd c[4];
	struct lt_pair p;
	int held;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "death", &o));
	abort_scene(_metadata, &p, c, &held);
	kill(p.rc.pid, SIGKILL);
	abort_outcome(_metadata, &p, c);
	EXPECT_EQ(128 + SIGKILL, lt_reap(&p.rc, 2000));
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	lt_peer_kill(&p.rc);
}

TEST(close_while_the_agent_runs_waits_for_it)
{
	struct lt_pair_opts o;
	struct lt_cmd c[4];
	struct lt_pair p;
	int held;
	int64_t t0, dt;
	int r;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "closewait", &o));
	abort_scene(_metadata, &p, c, &held);
	slow_ms = 150;		/* each routine now takes a while */
	lt_set_hook(hold_hook);
	t0 = lt_now_ms();
	r = vdi_server_close(p.set);
	dt = lt_now_ms() - t0;
	p.set = NULL;
	/* Devices were open: VD_E_PROTOCOL, the set was aborted. */
	EXPECT_VD(VD_E_PROTOCOL, r);
	/* Close returned only after the agent ran every routine. */
	EXPECT_EQ(4, lt_calls());
	EXPECT_LE(3 * 150 - 20, dt);
	abort_outcome(_metadata, &p, c);
	slow_ms = 0;
	lt_set_hook(NULL);
	EXPECT_VD(VD_E_ABORT, lt_rc_serve(&p.rc, 0, -1, -1, -1, 1000, NULL));
	EXPECT_VD(VD_E_OPEN, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(watchdog_aborts_after_two_server_timeouts)
{
	struct lt_pair_opts o;
	struct lt_cmd c;
	struct lt_pair p;
	int64_t t0;

	memset(&o, 0, sizeof(o));
	o.server_timeout = 100;
	ASSERT_EQ(0, lt_pair_setup(&p, "wdog", &o));
	lt_cmd_init(&c, 0, VDC_Flush, 0, 0);
	t0 = lt_now_us();
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c));
	/* The client never takes it: within 2 x 100 ms, the set aborts. */
	ASSERT_TRUE(lt_agent_done(&p.agent, 2500)) {
		TH_LOG("no watchdog abort: the agent was already waiting "
		       "when the command went in flight");
	}
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	EXPECT_LE(200000, p.agent.returned_us - t0);
	expect_agent_done(_metadata, &p, &c, ERROR_OPERATION_ABORTED, 0, 0);
	EXPECT_VD(VD_E_ABORT, lt_rc_get(&p.rc, 0, 0, -1, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* IO-ERROR and ClearError, end to end                                */

TEST(io_error_protocol_end_to_end)
{
	struct lt_pair_opts o;
	struct lt_cmd c[8];
	struct lt_pair p;
	struct lt_msg m;
	uint8_t *b[5];
	int i;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	o.req_size = 4096;
	o.req_count = 6;
	ASSERT_EQ(0, lt_pair_setup(&p, "ioe2e", &o));
	for (i = 0; i < 5; i++) {
		ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b[i],
							      4096, 0));
		lt_cmd_init(&c[i], i, VDC_Write, 4096, i * 4096);
		c[i].cmd.buffer = b[i];
		lt_fill(b[i], 4096, i * 4096, 0x33);
	}
	/* Three writes queued; the client fails the first. */
	for (i = 0; i < 3; i++)
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[i]));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, 0x33, &m));
	EXPECT_EQ(1, m.a[3]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], ERROR_EOM_OVERFLOW,
					  1000, 0, -1));
	/* The queued ones come back with ERROR_IO_DEVICE, after it. */
	ASSERT_EQ(0, lt_wait_calls(3, 2000));
	expect_agent_done(_metadata, &p, &c[0], ERROR_EOM_OVERFLOW, 1000, 0);
	expect_agent_done(_metadata, &p, &c[1], ERROR_IO_DEVICE, 0, 0);
	expect_agent_done(_metadata, &p, &c[2], ERROR_IO_DEVICE, 0, 0);
	EXPECT_EQ(1, c[0].seq);
	/* The client never sees them. */
	EXPECT_VD(VD_E_TIMEOUT, lt_rc_get(&p.rc, 0, 0, -1, &m));
	/* SendCommand refuses everything but ClearError ... */
	EXPECT_VD(VD_E_IO_ERROR, lt_send_cmd(p.dev[0], &c[3]));
	expect_sync_failure(_metadata, &c[3], ERROR_IO_DEVICE);
	/* ... on that device only. */
	lt_cmd_init(&c[5], 5, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[1], &c[5]));
	lt_cmd_init(&c[6], 6, VDC_ClearError, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[6]));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_EQ(VDC_ClearError, m.a[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 0, -1));
	ASSERT_EQ(0, lt_wait_calls(5, 2000));
	expect_agent_done(_metadata, &p, &c[6], 0, 0, 0);
	/* Active again: the write goes through, payload intact. */
	lt_cmd_init(&c[3], 3, VDC_Write, 4096, 3 * 4096);
	c[3].cmd.buffer = b[3];
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[3]));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, 0x33, &m));
	EXPECT_EQ(1, m.a[3]);
	EXPECT_EQ(3 * 4096, m.q[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 4096, 0, -1));
	ASSERT_EQ(0, lt_wait_calls(6, 2000));
	expect_agent_done(_metadata, &p, &c[3], 0, 4096, 0);
	for (i = 0; i < 5; i++)
		EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b[i], 4096));
	lt_pair_end_normally(_metadata, &p);
}

TEST(clear_error_waits_for_the_held_commands)
{
	struct lt_pair_opts o;
	struct lt_cmd c[6];
	struct lt_pair p;
	struct lt_msg m;
	int s1, s2, i;

	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "clrwait", &o));
	for (i = 0; i < 3; i++) {
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[i]));
	}
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	s1 = m.a[2];
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	s2 = m.a[2];
	/* The client fails c0 while it holds c1; c2 was still queued. */
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, s1, ERROR_DISK_FULL, 0, 0,
					  -1));
	ASSERT_EQ(0, lt_wait_calls(2, 2000));
	expect_agent_done(_metadata, &p, &c[2], ERROR_IO_DEVICE, 0, 0);
	lt_cmd_init(&c[3], 3, VDC_ClearError, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[3]));
	/* ClearError is not handed out while c1 is held. */
	EXPECT_VD(VD_E_TIMEOUT, lt_rc_get(&p.rc, 0, 0, -1, &m));
	EXPECT_VD(VD_E_TIMEOUT, lt_rc_get(&p.rc, 0, 100, -1, &m));
	EXPECT_LE(100000, m.q[1]);
	/* c1 completes (successfully): now it is. */
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, s2, 0, 0, 1, -1));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_EQ(VDC_ClearError, m.a[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 0, -1));
	ASSERT_EQ(0, lt_wait_calls(4, 2000));
	expect_agent_done(_metadata, &p, &c[0], ERROR_DISK_FULL, 0, 0);
	expect_agent_done(_metadata, &p, &c[1], 0, 0, 1);
	expect_agent_done(_metadata, &p, &c[3], 0, 0, 0);
	lt_cmd_init(&c[4], 4, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[4]));
	lt_pair_end_normally(_metadata, &p);
}

TEST(clear_error_failing_keeps_io_error)
{
	struct lt_pair_opts o;
	struct lt_cmd c[5];
	struct lt_pair p;
	struct lt_msg m;

	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "clrfail", &o));
	lt_cmd_init(&c[0], 0, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[0]));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], ERROR_DISK_FULL, 0, 0,
					  -1));
	lt_cmd_init(&c[1], 1, VDC_ClearError, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[1]));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], ERROR_NOT_SUPPORTED,
					  0, 0, -1));
	ASSERT_EQ(0, lt_wait_calls(2, 2000));
	expect_agent_done(_metadata, &p, &c[1], ERROR_NOT_SUPPORTED, 0, 0);
	lt_cmd_init(&c[2], 2, VDC_Flush, 0, 0);
	EXPECT_VD(VD_E_IO_ERROR, lt_send_cmd(p.dev[0], &c[2]));
	expect_sync_failure(_metadata, &c[2], ERROR_IO_DEVICE);
	/* The server may end the device instead of clearing the error. */
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	EXPECT_VD(VD_E_CLOSE, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* Huge timeouts, Close from a routine, a batch the agent leaves      */

TEST(wait_agent_huge_timeouts_wait)
{
	static const int64_t forever[] = {
		INT64_MAX, LONG_MAX, INT64_MAX - 999, (int64_t)1 << 62,
		0xffffffffLL, INT64_MAX / 1000 + 1, 9223372036854775LL,
	};
	struct lt_pair_opts o;
	struct lt_agent late;
	struct lt_pair p;
	unsigned int i;
	int64_t t0, dt;
	int r;

	memset(&o, 0, sizeof(o));
	o.no_agent = true;
	for (i = 0; i < sizeof(forever) / sizeof(forever[0]); i++) {
		ASSERT_EQ(0, lt_pair_setup(&p, "waithuge", &o));
		memset(&late, 0, sizeof(late));
		late.set = p.set;
		late.ret = -1;
		ASSERT_EQ(0, pthread_create(&late.th, NULL, late_agent, &late));
		t0 = lt_now_us();
		r = vdi_server_wait_agent(p.set, forever[i]);
		dt = lt_now_us() - t0;
		EXPECT_EQ(NOERROR, r) {
			TH_LOG("timeout %lld: %s after %lld us", (long long)
			       forever[i], lt_code(r), (long long)dt);
		}
		EXPECT_LE(150000, dt);
		EXPECT_VD(NOERROR, vdi_server_signal_abort(p.set));
		pthread_join(late.th, NULL);
		EXPECT_VD(VD_E_ABORT, late.ret);
		EXPECT_EQ(0, lt_pair_teardown(&p));
	}
}

static vdi_server_set *close_in_routine_set;
static int close_in_routine_id = -1, close_in_routine_ret = 1;

static void close_hook(struct lt_cmd *c)
{
	if (c->id == close_in_routine_id && close_in_routine_set) {
		close_in_routine_ret = vdi_server_close(close_in_routine_set);
		close_in_routine_id = -1;
	}
}

TEST(close_from_an_agent_routine_is_protocol)
{
	struct lt_pair_opts o;
	struct lt_cmd c;
	struct lt_pair p;

	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, lt_pair_setup(&p, "closeagt", &o));
	close_in_routine_set = p.set;
	lt_set_hook(close_hook);
	/* Close would wait for the agent, that is for itself. */
	close_in_routine_ret = 1;
	close_in_routine_id = 1;
	lt_cmd_init(&c, 1, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c));
	ASSERT_VD(NOERROR, lt_rc_serve(&p.rc, 0, 1, -1, -1, 1000, NULL));
	ASSERT_EQ(0, lt_wait_calls(1, 3000));
	lt_set_hook(NULL);
	EXPECT_VD(VD_E_PROTOCOL, close_in_routine_ret);
	expect_agent_done(_metadata, &p, &c, 0, 0, 7);
	/* Nothing was released: the set goes on to its normal end. */
	ASSERT_FALSE(lt_agent_done(&p.agent, 0));
	lt_pair_end_normally(_metadata, &p);
}

TEST(close_from_a_send_routine_is_protocol)
{
	struct lt_pair_opts o;
	struct lt_cmd c[2];
	struct lt_pair p;

	memset(&o, 0, sizeof(o));
	o.no_agent = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "closesnd", &o));
	close_in_routine_set = p.set;
	lt_set_hook(close_hook);
	/* A routine run by SendCommand itself (no agent yet): the set is in
	 * use by the SendCommand that runs it. */
	close_in_routine_ret = 1;
	close_in_routine_id = 0;
	lt_cmd_init(&c[0], 0, VDC_Flush, 0, 0);
	EXPECT_VD(VD_E_PROTOCOL, lt_send_cmd(p.dev[0], &c[0]));
	lt_set_hook(NULL);
	EXPECT_EQ(1, c[0].calls);
	EXPECT_VD(VD_E_PROTOCOL, close_in_routine_ret);
	/* Nothing was released. */
	ASSERT_EQ(0, lt_agent_start(&p.agent, p.set));
	lt_cmd_init(&c[1], 1, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c[1]));
	ASSERT_VD(NOERROR, lt_rc_serve(&p.rc, 0, 1, -1, -1, 1000, NULL));
	ASSERT_EQ(0, lt_wait_calls(2, 3000));
	expect_agent_done(_metadata, &p, &c[1], 0, 0, 7);
	lt_pair_end_normally(_metadata, &p);
}

/*
 * A batch send that reads its command array across a page that faults:
 * the fault handler aborts the set and waits until the agent returned, so
 * the agent stops after the batch's first commands were checked and
 * before the next one is.
 */
static struct lt_pair *fault_pair;
static uint8_t *fault_page;
static size_t fault_len;
static int fault_hits;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	uint8_t *a = (uint8_t *)si->si_addr;
	struct pollfd pfd;

	(void)sig;
	(void)uc;
	if (a < fault_page || a >= fault_page + fault_len) {
		signal(SIGSEGV, SIG_DFL);
		return;			/* a real fault: die of it */
	}
	fault_hits++;
	vdi_server_signal_abort(fault_pair->set);
	pfd.fd = fault_pair->agent.pipe[0];
	pfd.events = POLLIN;
	poll(&pfd, 1, 5000);
	mprotect(fault_page, fault_len, PROT_READ | PROT_WRITE);
}

TEST(batch_send_whose_agent_stops_calls_one_routine)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct sigaction sa, old;
	struct lt_pair_opts o;
	VDS_Command **v;
	struct lt_cmd c[6];
	struct lt_pair p;
	unsigned int sent = 99;
	uint8_t *mem;
	int i, r;

	memset(&o, 0, sizeof(o));
	o.depth = 16;
	ASSERT_EQ(0, lt_pair_setup(&p, "batchstop", &o));
	mem = (uint8_t *)mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	/* v[0..2] at the end of the first page, v[3..5] on the second. */
	v = (VDS_Command **)(mem + pg) - 3;
	for (i = 0; i < 6; i++) {
		lt_cmd_init(&c[i], i, VDC_Flush, 0, i);
		v[i] = &c[i].cmd;
	}
	fault_pair = &p;
	fault_page = mem + pg;
	fault_len = pg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, &old));
	ASSERT_EQ(0, mprotect(fault_page, fault_len, PROT_NONE));
	lt_in_send = 1;
	r = vdi_server_send_commands(p.dev[0], v, 6, &sent);
	lt_in_send = 0;
	sigaction(SIGSEGV, &old, NULL);
	EXPECT_EQ(1, fault_hits);
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	/* Nothing was queued: the first command reports the abort, the
	 * others are untouched. */
	EXPECT_VD(VD_E_ABORT, r);
	EXPECT_EQ(0U, sent);
	expect_sync_failure(_metadata, &c[0], ERROR_OPERATION_ABORTED);
	for (i = 1; i < 6; i++) {
		EXPECT_EQ(0, c[i].calls) {
			TH_LOG("command %d: routine called %d times, code %d",
			       i, c[i].calls, c[i].code);
		}
	}
	EXPECT_EQ(1, lt_calls());
	munmap(mem, 2 * pg);
	/* The abort ended the devices: Close has nothing to complain of. */
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST_HARNESS_MAIN
