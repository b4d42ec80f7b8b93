// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vdi endings: the normal end (CLOSE_DEVICE, ESHUTDOWN), the abort
 * (SIGNAL_ABORT from either side, fds closed early, a peer killed, the
 * watchdog) and what every waiter sees then (docs/ABI.md, "Endings").
 */
#include "vdi_test_util.h"

FIXTURE(one) {
	struct vdi_sess s;
};

FIXTURE_SETUP(one)
{
	ASSERT_EQ(0, vdi_sess_simple(&self->s, 2, 0));
}

FIXTURE_TEARDOWN(one)
{
	vdi_sess_close(&self->s);
}

/* ------------------------------------------------------------------ */
/* the normal end                                                     */

TEST_F(one, close_device_twice_is_eshutdown_and_send_eproto)
{
	struct vdi_sess *s = &self->s;
	struct vdi_ctl c = { .flags = 1 };

	ASSERT_EQ(0, vdi_close_device(s->sdev[0]));
	EXPECT_EQ(-ESHUTDOWN, vdi_close_device(s->sdev[0]));
	EXPECT_EQ(-ESHUTDOWN, vdi_close_device(s->sdev[0]));
	EXPECT_EQ(-EPROTO, vdi_send1(s->sdev[0], 1, T_VDC_FLUSH, 0, 0,
				     VDI_NO_BUFFER));
	EXPECT_EQ(-EPROTO, vdi_send1(s->sdev[0], 1, VDI_VDC_CLEAR_ERROR, 0, 0,
				     VDI_NO_BUFFER));
	/* The other device is not affected. */
	EXPECT_EQ(1, vdi_send1(s->sdev[1], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	/* CLOSE_DEVICE takes the usual vdi_ctl checks. */
	EXPECT_EQ(-EINVAL, vdi_ioctl(s->sdev[1], VDI_IOC_CLOSE_DEVICE, &c));
	c = (struct vdi_ctl){ .reserved0 = 1 };
	EXPECT_EQ(-EINVAL, vdi_ioctl(s->sdev[1], VDI_IOC_CLOSE_DEVICE, &c));
	c = (struct vdi_ctl){ .reserved = 1 };
	EXPECT_EQ(-EINVAL, vdi_ioctl(s->sdev[1], VDI_IOC_CLOSE_DEVICE, &c));
	EXPECT_EQ(-EFAULT, vdi_ioctl(s->sdev[1], VDI_IOC_CLOSE_DEVICE, NULL));
	EXPECT_EQ(1, vdi_send1(s->sdev[1], 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
}

TEST_F(one, get_commands_drains_the_queue_then_eshutdown)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[4];
	int64_t t0;

	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], i, T_VDC_FLUSH, 0, i,
				       VDI_NO_BUFFER));
	}
	ASSERT_EQ(0, vdi_close_device(s->sdev[0]));
	ASSERT_EQ(2, vdi_get(s->cdev[0], cmd, 2, 0));
	EXPECT_EQ(0, cmd[0].position);
	EXPECT_EQ(1, cmd[1].position);
	ASSERT_EQ(1, vdi_get(s->cdev[0], cmd + 2, 4, -1));
	EXPECT_EQ(2, cmd[2].position);
	t0 = vdi_now_ms();
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s->cdev[0], cmd, 4, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s->cdev[0], cmd, 4, 3000));
	EXPECT_GT(1000, vdi_now_ms() - t0);
	/* Commands held across the close can still be completed. */
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(1, vdi_complete1(s->cdev[0], cmd[i].tag, 0, 0, 0));
	}
	/* Device 1 is still open: no normal end yet. */
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[1], cmd, 4, 0));
}

TEST_F(one, blocked_get_commands_wakes_on_close_device)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[2];
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t0;

	vdi_batch_init(&b, cmd, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, s->cdev[1], VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	t0 = vdi_now_us();
	ASSERT_EQ(0, vdi_close_device(s->sdev[1]));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(-ESHUTDOWN, w.ret);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w.t_end_us - t0);
}

TEST_F(one, wait_completions_eshutdown_after_every_device_closed_and_reaped)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command c0, c1;
	struct vdi_completion cpl[4];
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t0;

	ASSERT_EQ(1, vdi_send1(s->sdev[0], 10, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 11, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &c0, 1, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[1], &c1, 1, 0));
	ASSERT_EQ(0, vdi_close_device(s->sdev[0]));
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, cpl, 4, 0));
	ASSERT_EQ(0, vdi_close_device(s->sdev[1]));
	/* Every device closed, but two commands are still held. */
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, cpl, 4, 0));
	EXPECT_EQ(0, vdi_poll1(s->sset, POLLIN, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], c0.tag, 0, 0, 0));
	ASSERT_EQ(1, vdi_wait(s->sset, cpl, 4, 0));
	EXPECT_EQ(10U, cpl[0].cookie);
	/* Completions still come before the end is reported. */
	ASSERT_EQ(1, vdi_complete1(s->cdev[1], c1.tag, 0, 0, 0));
	ASSERT_EQ(1, vdi_wait(s->sset, cpl, 4, 0));
	EXPECT_EQ(11U, cpl[0].cookie);
	t0 = vdi_now_ms();
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s->sset, cpl, 4, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s->sset, cpl, 4, -1));
	EXPECT_GT(1000, vdi_now_ms() - t0);
	EXPECT_EQ(POLLIN | POLLHUP, vdi_poll1(s->sset, POLLIN, 0));
	/* The client sees the end on both devices. */
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s->cdev[0], &c0, 1, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s->cdev[1], &c0, 1, 0));
	/* After the normal end an abort is not an abort any more. */
	EXPECT_EQ(0, vdi_abort(s->cset));
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s->sset, cpl, 4, 0));
	vdi_batch_init(&b, cpl, 4, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, s->sset, VDI_IOC_WAIT_COMPLETIONS, &b));
	ASSERT_TRUE(vdi_waiter_done(&w, 2000));
	EXPECT_EQ(-ESHUTDOWN, w.ret);
}

TEST_F(one, blocked_agent_wakes_at_the_normal_end)
{
	struct vdi_sess *s = &self->s;
	struct vdi_completion cpl[4];
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t0;

	ASSERT_EQ(0, vdi_close_device(s->sdev[0]));
	vdi_batch_init(&b, cpl, 4, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, s->sset, VDI_IOC_WAIT_COMPLETIONS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	t0 = vdi_now_us();
	ASSERT_EQ(0, vdi_close_device(s->sdev[1]));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(-ESHUTDOWN, w.ret);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w.t_end_us - t0);
}

TEST_F(one, closing_fds_after_their_end_does_not_abort)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_completion cpl;

	/* Device 0 ends normally; both sides close its fds. */
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(0, vdi_close_device(s->sdev[0]));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd.tag, 0, 0, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s->cdev[0], &cmd, 1, 0));
	vdi_close(&s->sdev[0]);
	vdi_close(&s->cdev[0]);
	/* Not aborted: device 1 still works, the agent still gets results. */
	ASSERT_EQ(1, vdi_wait(s->sset, &cpl, 1, 0));
	EXPECT_EQ(1U, cpl.cookie);
	EXPECT_EQ(0U, cpl.completion_code);
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[1], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[1], cmd.tag, 0, 0, 0));
	ASSERT_EQ(1, vdi_wait(s->sset, &cpl, 1, 0));
	EXPECT_EQ(2U, cpl.cookie);
	ASSERT_EQ(0, vdi_close_device(s->sdev[1]));
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s->sset, &cpl, 1, 0));
	/* After the normal end, closing the rest aborts nothing either. */
	vdi_close(&s->cdev[1]);
	vdi_close(&s->sdev[1]);
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s->sset, &cpl, 1, 0));
	EXPECT_EQ(0, vdi_get_config(s->cset, 0, NULL));
	EXPECT_EQ(POLLIN | POLLHUP, vdi_poll1(s->sset, POLLIN, 0));
}

/* ------------------------------------------------------------------ */
/* SIGNAL_ABORT                                                       */

FIXTURE(abort) {
	struct vdi_sess s;
};

FIXTURE_VARIANT(abort) {
	bool from_client;
};

FIXTURE_VARIANT_ADD(abort, from_client) { .from_client = true };
FIXTURE_VARIANT_ADD(abort, from_server) { .from_client = false };

FIXTURE_SETUP(abort)
{
	struct vdi_sess_opts o = { .ndev = 3, .no_devices = true };
	char dn[VDI_NAME_MAX];
	uint32_t idx;

	/* Devices 0 and 1 open on both sides; device 2 not yet. */
	ASSERT_EQ(0, vdi_sess_setup(&self->s, &o));
	for (unsigned int i = 0; i < 2; i++) {
		vdi_dev_name(dn, self->s.name, i);
		self->s.cdev[i] = vdi_open_device(self->s.cset, dn, 0, &idx);
		ASSERT_LE(0, self->s.cdev[i]);
		self->s.sdev[i] = vdi_open_device(self->s.sset, dn, 0, &idx);
		ASSERT_LE(0, self->s.sdev[i]);
	}
}

FIXTURE_TEARDOWN(abort)
{
	vdi_sess_close(&self->s);
}

static int abort_fd(const struct vdi_sess *s, bool from_client)
{
	return from_client ? s->cset : s->sset;
}

TEST_F(abort, queued_and_held_commands_end_with_995)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command held[2], cmd;
	struct vdi_completion cpl[8];
	struct vdi_version v;
	char dn[VDI_NAME_MAX];
	uint32_t idx;
	int err, n, fds[4];

	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], i, VDI_VDC_WRITE, 512, 0,
				       i * 4096));
	}
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 10, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 11, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &held[0], 1, 0));	/* 0 */
	ASSERT_EQ(1, vdi_get(s->cdev[1], &held[1], 1, 0));	/* 10 */
	/* One normal completion already waits for the agent. */
	ASSERT_EQ(1, vdi_complete1(s->cdev[1], held[1].tag, 0, 0, 42));

	ASSERT_EQ(0, vdi_abort(abort_fd(s, variant->from_client)));

	/* Everything ends: 0 held, 1, 2, 11 queued: 995; 10 as completed. */
	n = vdi_wait_n(s->sset, cpl, 8, 2000, &err);
	ASSERT_EQ(5, n);
	EXPECT_EQ(-ECONNABORTED, err);
	for (uint64_t k = 0; k < 3; k++) {
		ASSERT_NE(NULL, vdi_find_cookie(cpl, n, k));
		EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED,
			  vdi_find_cookie(cpl, n, k)->completion_code);
		EXPECT_EQ((__u32)VDI_VDC_WRITE, vdi_find_cookie(cpl, n, k)->code);
	}
	ASSERT_NE(NULL, vdi_find_cookie(cpl, n, 11));
	EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED,
		  vdi_find_cookie(cpl, n, 11)->completion_code);
	EXPECT_EQ(1U, vdi_find_cookie(cpl, n, 11)->device_index);
	ASSERT_NE(NULL, vdi_find_cookie(cpl, n, 10));
	EXPECT_EQ(0U, vdi_find_cookie(cpl, n, 10)->completion_code);
	EXPECT_EQ(42, vdi_find_cookie(cpl, n, 10)->position);
	EXPECT_EQ(-ECONNABORTED, vdi_wait(s->sset, cpl, 8, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_wait(s->sset, cpl, 8, -1));

	/* Every later call: ECONNABORTED. */
	EXPECT_EQ(-ECONNABORTED, vdi_complete1(s->cdev[0], held[0].tag, 0, 512, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_complete1(s->cset, held[0].tag, 0, 512, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_get(s->cdev[0], &cmd, 1, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_get(s->cdev[1], &cmd, 1, -1));
	EXPECT_EQ(-ECONNABORTED, vdi_send1(s->sdev[0], 5, T_VDC_FLUSH, 0, 0,
					   VDI_NO_BUFFER));
	EXPECT_EQ(-ECONNABORTED, vdi_send1(s->sdev[1], 5, VDI_VDC_CLEAR_ERROR, 0,
					   0, VDI_NO_BUFFER));
	EXPECT_EQ(-ECONNABORTED, vdi_close_device(s->sdev[0]));
	EXPECT_EQ(-ECONNABORTED, vdi_get_config(s->cset, 0, NULL));
	EXPECT_EQ(-ECONNABORTED, vdi_get_config(s->cset, -1, NULL));
	EXPECT_EQ(-ECONNABORTED, vdi_get_config(s->sset, 0, NULL));
	vdi_dev_name(dn, s->name, 2);
	EXPECT_EQ(-ECONNABORTED, vdi_open_device(s->cset, dn, 0, &idx));
	EXPECT_EQ(-ECONNABORTED, vdi_open_device(s->sset, dn, 0, &idx));
	/* Abort is idempotent, from either side; VERSION still answers. */
	EXPECT_EQ(0, vdi_abort(s->cset));
	EXPECT_EQ(0, vdi_abort(s->sset));
	EXPECT_EQ(0, vdi_version(s->cdev[0], &v));
	/* poll: error and hang-up on every fd. */
	fds[0] = s->cset;
	fds[1] = s->sset;
	fds[2] = s->cdev[0];
	fds[3] = s->sdev[1];
	for (int i = 0; i < 4; i++) {
		int ev = vdi_poll1(fds[i], POLLIN | POLLOUT, 0);

		EXPECT_EQ(POLLERR | POLLHUP, ev & (POLLERR | POLLHUP))
			TH_LOG("fd kind %d: revents %#x", i, ev);
	}
}

TEST_F(abort, every_waiter_of_the_other_side_wakes)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command c0[2], c1[2];
	struct vdi_completion cpl[2];
	struct vdi_batch b0, b1, b2;
	struct vdi_waiter w0, w1, w2;
	int64_t t0;

	vdi_batch_init(&b0, c0, 2, -1);
	vdi_batch_init(&b1, c1, 2, 10000);
	vdi_batch_init(&b2, cpl, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w0, s->cdev[0], VDI_IOC_GET_COMMANDS, &b0));
	ASSERT_EQ(0, vdi_waiter_start(&w1, s->cdev[1], VDI_IOC_GET_COMMANDS, &b1));
	ASSERT_EQ(0, vdi_waiter_start(&w2, s->sset, VDI_IOC_WAIT_COMPLETIONS, &b2));
	EXPECT_FALSE(vdi_waiter_done(&w0, 200));
	EXPECT_FALSE(vdi_waiter_done(&w1, 0));
	EXPECT_FALSE(vdi_waiter_done(&w2, 0));
	t0 = vdi_now_us();
	ASSERT_EQ(0, vdi_abort(abort_fd(s, variant->from_client)));
	ASSERT_TRUE(vdi_waiter_done(&w0, 5000));
	ASSERT_TRUE(vdi_waiter_done(&w1, 5000));
	ASSERT_TRUE(vdi_waiter_done(&w2, 5000));
	EXPECT_EQ(-ECONNABORTED, w0.ret);
	EXPECT_EQ(-ECONNABORTED, w1.ret);
	EXPECT_EQ(-ECONNABORTED, w2.ret);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w0.t_end_us - t0);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w1.t_end_us - t0);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w2.t_end_us - t0);
}

TEST_F(abort, blocked_poll_wakes_with_error_and_hangup)
{
	struct vdi_sess *s = &self->s;
	struct vdi_ctl ctl = { 0 };
	struct vdi_waiter w;
	int64_t t0;
	int ev;

	ASSERT_EQ(0, vdi_waiter_start_delayed(&w, 150,
					      abort_fd(s, variant->from_client),
					      VDI_IOC_SIGNAL_ABORT, &ctl));
	t0 = vdi_now_ms();
	ev = vdi_poll1(variant->from_client ? s->sdev[0] : s->cdev[0],
		       POLLIN, 5000);
	EXPECT_EQ(POLLERR | POLLHUP, ev & (POLLERR | POLLHUP));
	EXPECT_GT(150 + VDI_PROMPT_MS, vdi_now_ms() - t0);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(0, w.ret);
}

TEST_F(abort, signal_abort_argument_checks)
{
	struct vdi_sess *s = &self->s;
	int fd = abort_fd(s, variant->from_client);
	struct vdi_ctl c = { .flags = 1 };

	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_SIGNAL_ABORT, &c));
	c = (struct vdi_ctl){ .reserved0 = 2 };
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_SIGNAL_ABORT, &c));
	c = (struct vdi_ctl){ .reserved = 1ULL << 63 };
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_SIGNAL_ABORT, &c));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_SIGNAL_ABORT, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_SIGNAL_ABORT,
				     vdi_pages(1, PROT_NONE)));
	/* None of them aborted. */
	EXPECT_EQ(1, vdi_send1(s->sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	EXPECT_EQ(0, vdi_poll1(s->cset, POLLERR, 0) & POLLERR);
}

TEST(abort_before_end_config_wakes_the_client)
{
	struct vdi_get_config g;
	struct vdi_waiter w;
	char name[VDI_NAME_MAX];
	int64_t t0;
	int c, s;

	for (int how = 0; how < 3; how++) {
		vdi_make_name(name, "abc");
		c = vdi_create_set(name, 1, 0);
		ASSERT_LE(0, c);
		s = vdi_open_server(name);
		ASSERT_LE(0, s);
		if (how) {
			ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0,
						      512, 65536, 0));
		}
		memset(&g, 0, sizeof(g));
		g.timeout_ms = -1;
		ASSERT_EQ(0, vdi_waiter_start(&w, c, VDI_IOC_GET_CONFIG, &g));
		EXPECT_FALSE(vdi_waiter_done(&w, 150));
		t0 = vdi_now_us();
		if (how == 2)
			vdi_close(&s);		/* the server set fd goes away */
		else {
			ASSERT_EQ(0, vdi_abort(s));
		}
		ASSERT_TRUE(vdi_waiter_done(&w, 5000));
		EXPECT_EQ(-ECONNABORTED, w.ret) TH_LOG("how %d", how);
		EXPECT_GT(VDI_PROMPT_MS * 1000, w.t_end_us - t0);
		EXPECT_EQ(POLLERR | POLLHUP, vdi_poll1(c, POLLIN, 0) &
					     (POLLERR | POLLHUP));
		if (s >= 0) {
			EXPECT_EQ(-ECONNABORTED, vdi_end_config(s, 4096));
			EXPECT_EQ(-ECONNABORTED,
				  vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512,
						   65536, 0));
		}
		vdi_close(&s);
		close(c);
	}
}

TEST(client_abort_before_the_server_comes)
{
	char name[VDI_NAME_MAX];
	int c, s;

	vdi_make_name(name, "abn");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	EXPECT_EQ(0, vdi_abort(c));
	EXPECT_EQ(-ECONNABORTED, vdi_get_config(c, 0, NULL));
	EXPECT_EQ(-ECONNABORTED, vdi_get_config(c, 50, NULL));
	/* A server may still find it, but only to learn it is over. */
	s = vdi_open_server(name);
	if (s >= 0) {
		EXPECT_EQ(-ECONNABORTED, vdi_get_config(s, 0, NULL));
		EXPECT_EQ(-ECONNABORTED, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA,
							  0, 512, 65536, 0));
		close(s);
	} else {
		EXPECT_EQ(-ECONNABORTED, s);
	}
	close(c);
}

/* ------------------------------------------------------------------ */
/* fds closed before the normal end                                   */

FIXTURE(early) {
	struct vdi_sess s;
	struct vdi_command held;
};

FIXTURE_VARIANT(early) {
	int which;	/* the fd closed early */
};

enum { E_SERVER_SET, E_SERVER_DEV, E_CLIENT_SET, E_CLIENT_DEV };

FIXTURE_VARIANT_ADD(early, server_set) { .which = E_SERVER_SET };
FIXTURE_VARIANT_ADD(early, server_device) { .which = E_SERVER_DEV };
FIXTURE_VARIANT_ADD(early, client_set) { .which = E_CLIENT_SET };
FIXTURE_VARIANT_ADD(early, client_device) { .which = E_CLIENT_DEV };

FIXTURE_SETUP(early)
{
	/* No mapping: a mapping would keep its fd's file open. */
	struct vdi_sess_opts o = { .ndev = 2, .no_map = true };

	ASSERT_EQ(0, vdi_sess_setup(&self->s, &o));
	ASSERT_EQ(1, vdi_send1(self->s.sdev[0], 1, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_send1(self->s.sdev[0], 2, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(self->s.cdev[0], &self->held, 1, 0));
}

FIXTURE_TEARDOWN(early)
{
	vdi_sess_close(&self->s);
}

TEST_F(early, closing_an_fd_still_needed_aborts)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_completion cpl[4];
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t0;
	int n, err;

	/* A waiter on the side that stays. */
	if (variant->which <= E_SERVER_DEV) {
		vdi_batch_init(&b, &cmd, 1, 10000);
		ASSERT_EQ(0, vdi_waiter_start(&w, s->cdev[1],
					      VDI_IOC_GET_COMMANDS, &b));
	} else {
		vdi_batch_init(&b, cpl, 4, 10000);
		ASSERT_EQ(0, vdi_waiter_start(&w, s->sset,
					      VDI_IOC_WAIT_COMPLETIONS, &b));
	}
	EXPECT_FALSE(vdi_waiter_done(&w, 150));
	t0 = vdi_now_us();
	switch (variant->which) {
	case E_SERVER_SET:
		vdi_close(&s->sset);
		break;
	case E_SERVER_DEV:
		vdi_close(&s->sdev[1]);	/* an idle device, never closed */
		break;
	case E_CLIENT_SET:
		vdi_close(&s->cset);
		break;
	case E_CLIENT_DEV:
		vdi_close(&s->cdev[1]);	/* an idle device, not ended */
		break;
	}
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_GT(VDI_PROMPT_MS * 1000, w.t_end_us - t0);
	if (variant->which <= E_SERVER_DEV) {
		EXPECT_EQ(-ECONNABORTED, w.ret);
		EXPECT_EQ(-ECONNABORTED, vdi_complete1(s->cdev[0], self->held.tag,
						       0, 0, 0));
		EXPECT_EQ(-ECONNABORTED, vdi_get(s->cdev[0], &cmd, 1, 0));
	} else {
		/* The agent gets the held and the queued command, aborted. */
		ASSERT_LE(1, w.ret);
		n = w.ret;
		if (n < 2)
			n += vdi_wait_n(s->sset, cpl + n, 2 - n, 1000, NULL);
		ASSERT_EQ(2, n);
		EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl[0].completion_code);
		EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl[1].completion_code);
		n = vdi_wait_n(s->sset, cpl, 4, 500, &err);
		EXPECT_EQ(-ECONNABORTED, n);
		EXPECT_EQ(-ECONNABORTED, vdi_send1(s->sdev[0], 3, T_VDC_FLUSH, 0,
						   0, VDI_NO_BUFFER));
	}
}

TEST(secondary_set_fd_close_does_not_abort)
{
	struct vdi_sess_opts o = { .ndev = 1, .no_map = true };
	struct vdi_command cmd;
	struct vdi_sess s;
	int sec;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	sec = vdi_open_secondary(s.name);
	ASSERT_LE(0, sec);
	close(sec);
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	EXPECT_EQ(1, vdi_get(s.cdev[0], &cmd, 1, 0));
	EXPECT_EQ(0, vdi_poll1(s.cset, POLLERR, 0) & POLLERR);
	vdi_sess_close(&s);
}

TEST(secondary_signal_abort_aborts_the_set)
{
	struct vdi_sess_opts o = { .ndev = 1, .no_map = true };
	struct vdi_completion cpl[2];
	struct vdi_command cmd;
	struct vdi_sess s;
	int sec, n, err;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	sec = vdi_open_secondary(s.name);
	ASSERT_LE(0, sec);
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s.cdev[0], &cmd, 1, 0));
	/* A command taken by the primary, completed through the secondary. */
	ASSERT_EQ(1, vdi_complete1(sec, cmd.tag, 0, 0, 77));
	ASSERT_EQ(1, vdi_wait(s.sset, cpl, 2, 0));
	EXPECT_EQ(77, cpl[0].position);
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(0, vdi_abort(sec));
	n = vdi_wait_n(s.sset, cpl, 2, 1000, &err);
	ASSERT_EQ(1, n);
	EXPECT_EQ(-ECONNABORTED, err);
	EXPECT_EQ(2U, cpl[0].cookie);
	EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl[0].completion_code);
	EXPECT_EQ(-ECONNABORTED, vdi_get(s.cdev[0], &cmd, 1, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_get_config(sec, 0, NULL));
	close(sec);
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* the watchdog                                                       */

static int watchdog_sess(struct vdi_sess *s, uint32_t t)
{
	struct vdi_sess_opts o = { .ndev = 1, .server_timeout = t,
				   .no_map = true };

	return vdi_sess_setup(s, &o);
}

TEST(watchdog_aborts_when_nothing_completes_for_2t)
{
	struct vdi_completion cpl[4];
	struct vdi_command cmd;
	struct vdi_sess s;
	int64_t t0, dt;
	int n, err;

	ASSERT_EQ(0, watchdog_sess(&s, 100));
	EXPECT_EQ(100U, s.cfg.server_timeout);
	t0 = vdi_now_ms();
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s.cdev[0], &cmd, 1, 0));	/* held, never done */
	n = vdi_wait(s.sset, cpl, 4, 5000);
	dt = vdi_now_ms() - t0;
	ASSERT_LE(1, n) TH_LOG("WAIT gave %d after %lld ms", n, (long long)dt);
	EXPECT_LE(150, dt);
	EXPECT_GT(200 + VDI_PROMPT_MS, dt);
	if (n < 2)
		n += vdi_wait_n(s.sset, cpl + n, 2 - n, 1000, NULL);
	ASSERT_EQ(2, n);
	EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl[0].completion_code);
	EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl[1].completion_code);
	EXPECT_EQ(-ECONNABORTED, vdi_wait_n(s.sset, cpl, 4, 200, &err));
	EXPECT_EQ(-ECONNABORTED, vdi_get(s.cdev[0], &cmd, 1, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_send1(s.sdev[0], 3, T_VDC_FLUSH, 0, 0,
					   VDI_NO_BUFFER));
	vdi_sess_close(&s);
}

TEST(watchdog_needs_commands_in_flight_and_a_waiting_agent)
{
	struct vdi_completion cpl[4];
	struct vdi_command cmd;
	struct vdi_sess s;

	ASSERT_EQ(0, watchdog_sess(&s, 50));
	/* Nothing in flight: the agent may wait as long as it likes. */
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s.sset, cpl, 4, 400));
	/* In flight, but no agent waiting: no abort either. */
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s.cdev[0], &cmd, 1, 0));
	vdi_sleep_ms(400);
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	EXPECT_EQ(1, vdi_complete1(s.cdev[0], cmd.tag, 0, 0, 0));
	EXPECT_EQ(1, vdi_wait(s.sset, cpl, 4, 0));
	EXPECT_EQ(0U, cpl[0].completion_code);
	vdi_sess_close(&s);
}

struct completer {
	int fd;
	struct vdi_command *cmd;
	int n;
	unsigned int every_ms;
	int ret;
};

static void *completer_main(void *p)
{
	struct completer *c = p;

	for (int i = 0; i < c->n; i++) {
		vdi_sleep_ms(c->every_ms);
		if (vdi_complete1(c->fd, c->cmd[i].tag, 0, 0, i) != 1) {
			c->ret = -1;
			break;
		}
	}
	return NULL;
}

TEST(watchdog_does_not_fire_while_completions_flow)
{
	struct vdi_completion cpl[32];
	struct vdi_command cmd[16];
	struct completer c;
	struct vdi_sess s;
	pthread_t th;
	int got = 0;

	ASSERT_EQ(0, watchdog_sess(&s, 150));	/* 2T = 300 ms */
	for (int i = 0; i < 16; i++) {
		ASSERT_EQ(1, vdi_send1(s.sdev[0], i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	ASSERT_EQ(16, vdi_get(s.cdev[0], cmd, 16, 0));
	c = (struct completer){ .fd = s.cdev[0], .cmd = cmd, .n = 16,
				.every_ms = 50 };
	ASSERT_EQ(0, pthread_create(&th, NULL, completer_main, &c));
	while (got < 16) {
		int r = vdi_wait(s.sset, cpl + got, 32 - got, 3000);

		if (r <= 0) {
			EXPECT_LT(0, r) TH_LOG("after %d completions", got);
			break;
		}
		got += r;
	}
	pthread_join(th, NULL);
	EXPECT_EQ(0, c.ret);
	EXPECT_EQ(16, got);
	for (int i = 0; i < got; i++) {
		EXPECT_EQ(0U, cpl[i].completion_code);
	}
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 99, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* a peer process dies, or aborts                                     */

struct peer {
	char name[VDI_NAME_MAX];
	int mode;
};

enum {
	P_CLIENT_HOLDING,	/* client: holds 2 commands, 2 more queued */
	P_CLIENT_IDLE,		/* client: devices open, nothing held */
	P_SERVER_SENT,		/* server: sent 2 on device 0 */
	P_SERVER_CONFIGURING,	/* server: BEGIN_CONFIG, no END_CONFIG */
	P_SERVER_ABORTS,	/* server: sent 2, then SIGNAL_ABORT on request */
};

/* The child's side; it stays alive (pause) until it is killed. */
static int peer_client(struct vdi_chan *ch, void *arg)
{
	struct peer *p = arg;
	struct vdi_command cmd[2];
	uint32_t idx;
	int set, dev;

	set = vdi_create_set(p->name, 1, 0);
	CK(set >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_get_config(set, 10000, NULL));
	dev = vdi_open_device(set, p->name, 0, &idx);
	CK(dev >= 0);
	for (int got = 0; p->mode == P_CLIENT_HOLDING && got < 2; ) {
		int r = vdi_get(dev, cmd + got, 2 - got, 10000);

		CK(r > 0);
		got += r;
	}
	CKEQ(0, vdi_chan_send(ch, 2));
	for (;;)
		pause();
	return 0;
}

static int peer_server(struct vdi_chan *ch, void *arg)
{
	struct peer *p = arg;
	char dn[VDI_NAME_MAX];
	uint32_t idx;
	int set, d0, d1;

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	set = vdi_open_server(p->name);
	CK(set >= 0);
	CKEQ(0, vdi_begin_config(set, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	if (p->mode == P_SERVER_CONFIGURING) {
		CKEQ(0, vdi_chan_send(ch, 2));
		for (;;)
			pause();
	}
	CKEQ(0, vdi_end_config(set, 65536));
	d0 = vdi_open_device(set, p->name, 0, &idx);
	CK(d0 >= 0);
	vdi_dev_name(dn, p->name, 1);
	d1 = vdi_open_device(set, dn, 0, &idx);
	CK(d1 >= 0);
	CKEQ(1, vdi_send1(d0, 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	CKEQ(1, vdi_send1(d0, 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	CKEQ(0, vdi_chan_send(ch, 2));
	if (p->mode == P_SERVER_ABORTS) {
		struct vdi_completion cpl[4];
		int n, err;

		CKEQ(0, vdi_chan_expect(ch, 3, 10000));
		CKEQ(0, vdi_abort(set));
		/* The held and the queued one both come back with 995. */
		n = vdi_wait_n(set, cpl, 4, 2000, &err);
		CKEQ(2, n);
		CKEQ(-ECONNABORTED, err);
		CKEQ(VDI_ERROR_OPERATION_ABORTED, cpl[0].completion_code);
		CKEQ(VDI_ERROR_OPERATION_ABORTED, cpl[1].completion_code);
		CKEQ(-ECONNABORTED, vdi_send1(d1, 3, T_VDC_FLUSH, 0, 0,
					      VDI_NO_BUFFER));
		return 0;
	}
	for (;;)
		pause();
	return 0;
}

struct killer {
	pthread_t th;
	pid_t pid;
	unsigned int delay_ms;
	int64_t t_us;
};

static void *killer_main(void *p)
{
	struct killer *k = p;

	vdi_sleep_ms(k->delay_ms);
	k->t_us = vdi_now_us();
	kill(k->pid, SIGKILL);
	return NULL;
}

FIXTURE(peer) {
	struct vdi_proc p;
	struct peer *arg;
	struct vdi_sess s;	/* this process's fds */
	struct killer k;
	bool killer_started;
};

FIXTURE_SETUP(peer)
{
	vdi_sess_init(&self->s);
	self->p.pid = -1;
	self->arg = vdi_shared(sizeof(*self->arg));
	ASSERT_NE(NULL, self->arg);
	vdi_make_name(self->arg->name, "peer");
	strcpy(self->s.name, self->arg->name);
}

FIXTURE_TEARDOWN(peer)
{
	if (self->killer_started)
		pthread_join(self->k.th, NULL);
	vdi_proc_kill(&self->p);
	vdi_sess_close(&self->s);
	munmap(self->arg, sizeof(*self->arg));
}

/* This process as the server of a client child; returns 0 or -errno. */
static int serve_child(struct vdi_sess *s, struct vdi_proc *p)
{
	uint32_t idx;
	int r;

	r = vdi_chan_expect(&p->ch, 1, 10000);
	if (r)
		return r;
	s->sset = vdi_open_server(s->name);
	if (s->sset < 0)
		return s->sset;
	r = vdi_begin_config(s->sset, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0);
	if (!r)
		r = vdi_end_config(s->sset, 65536);
	if (r)
		return r;
	s->sdev[0] = vdi_open_device(s->sset, s->name, 0, &idx);
	return s->sdev[0] < 0 ? s->sdev[0] : 0;
}

static void start_killer(FIXTURE_DATA(peer) *self, unsigned int delay_ms)
{
	self->k.pid = self->p.pid;
	self->k.delay_ms = delay_ms;
	self->killer_started =
		!pthread_create(&self->k.th, NULL, killer_main, &self->k);
}

TEST_F(peer, client_killed_with_commands_held_and_queued)
{
	struct vdi_completion cpl[8];
	int64_t t_wake;
	int n, err;

	self->arg->mode = P_CLIENT_HOLDING;
	ASSERT_EQ(0, vdi_spawn(&self->p, peer_client, self->arg));
	ASSERT_EQ(0, serve_child(&self->s, &self->p));
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(1, vdi_send1(self->s.sdev[0], i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	/* The agent is blocked when the client dies. */
	start_killer(self, 150);
	ASSERT_TRUE(self->killer_started);
	n = vdi_wait(self->s.sset, cpl, 8, 5000);
	t_wake = vdi_now_us();
	pthread_join(self->k.th, NULL);
	self->killer_started = false;
	ASSERT_LE(1, n) TH_LOG("WAIT gave %d", n);
	EXPECT_GT(VDI_PROMPT_MS * 1000, t_wake - self->k.t_us);
	if (n < 4)
		n += vdi_wait_n(self->s.sset, cpl + n, 4 - n, 1000, NULL);
	ASSERT_EQ(4, n);
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl[i].completion_code);
	}
	EXPECT_EQ(-ECONNABORTED, vdi_wait_n(self->s.sset, cpl, 8, 200, &err));
	EXPECT_EQ(-ECONNABORTED, vdi_send1(self->s.sdev[0], 9, T_VDC_FLUSH, 0, 0,
					   VDI_NO_BUFFER));
	EXPECT_EQ(POLLERR | POLLHUP, vdi_poll1(self->s.sdev[0], POLLOUT, 0) &
				     (POLLERR | POLLHUP));
	EXPECT_EQ(128 + SIGKILL, vdi_reap(&self->p, 5000));
}

TEST_F(peer, client_killed_wakes_an_idle_agent)
{
	struct vdi_completion cpl[2];
	int64_t t_wake;
	int n;

	self->arg->mode = P_CLIENT_IDLE;
	ASSERT_EQ(0, vdi_spawn(&self->p, peer_client, self->arg));
	ASSERT_EQ(0, serve_child(&self->s, &self->p));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	start_killer(self, 150);
	ASSERT_TRUE(self->killer_started);
	n = vdi_wait(self->s.sset, cpl, 2, 5000);
	t_wake = vdi_now_us();
	pthread_join(self->k.th, NULL);
	self->killer_started = false;
	EXPECT_EQ(-ECONNABORTED, n);
	EXPECT_GT(VDI_PROMPT_MS * 1000, t_wake - self->k.t_us);
}

/* This process as the client of a server child, up to its GET_CONFIG. */
static int client_of_child(struct vdi_sess *s, struct vdi_proc *p,
			   unsigned int ndev)
{
	s->cset = vdi_create_set(s->name, ndev, 0);
	if (s->cset < 0)
		return s->cset;
	return vdi_chan_send(&p->ch, 1);
}

TEST_F(peer, server_killed_wakes_a_blocked_client)
{
	struct vdi_command cmd[2];
	char dn[VDI_NAME_MAX];
	int64_t t_wake;
	uint32_t idx;
	int r;

	self->arg->mode = P_SERVER_SENT;
	ASSERT_EQ(0, vdi_spawn(&self->p, peer_server, self->arg));
	ASSERT_EQ(0, client_of_child(&self->s, &self->p, 2));
	ASSERT_EQ(0, vdi_get_config(self->s.cset, 10000, NULL));
	self->s.cdev[0] = vdi_open_device(self->s.cset, self->s.name, 0, &idx);
	ASSERT_LE(0, self->s.cdev[0]);
	vdi_dev_name(dn, self->s.name, 1);
	self->s.cdev[1] = vdi_open_device(self->s.cset, dn, 0, &idx);
	ASSERT_LE(0, self->s.cdev[1]);
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	/* Hold one command, leave one queued, block on the idle device. */
	ASSERT_EQ(1, vdi_get(self->s.cdev[0], cmd, 1, 1000));
	start_killer(self, 150);
	ASSERT_TRUE(self->killer_started);
	r = vdi_get(self->s.cdev[1], cmd + 1, 1, 5000);
	t_wake = vdi_now_us();
	pthread_join(self->k.th, NULL);
	self->killer_started = false;
	EXPECT_EQ(-ECONNABORTED, r);
	EXPECT_GT(VDI_PROMPT_MS * 1000, t_wake - self->k.t_us);
	/* The queued command is not handed out; the held one is over. */
	EXPECT_EQ(-ECONNABORTED, vdi_get(self->s.cdev[0], cmd + 1, 1, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_complete1(self->s.cdev[0], cmd[0].tag, 0, 0, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_get_config(self->s.cset, 0, NULL));
	EXPECT_EQ(POLLERR | POLLHUP, vdi_poll1(self->s.cdev[0], POLLIN, 0) &
				     (POLLERR | POLLHUP));
	EXPECT_EQ(POLLERR | POLLHUP, vdi_poll1(self->s.cset, POLLIN, 0) &
				     (POLLERR | POLLHUP));
	EXPECT_EQ(128 + SIGKILL, vdi_reap(&self->p, 5000));
}

TEST_F(peer, server_killed_during_configuration_wakes_get_config)
{
	int64_t t_wake;
	int r;

	self->arg->mode = P_SERVER_CONFIGURING;
	ASSERT_EQ(0, vdi_spawn(&self->p, peer_server, self->arg));
	ASSERT_EQ(0, client_of_child(&self->s, &self->p, 1));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	start_killer(self, 150);
	ASSERT_TRUE(self->killer_started);
	r = vdi_get_config(self->s.cset, 5000, NULL);
	t_wake = vdi_now_us();
	pthread_join(self->k.th, NULL);
	self->killer_started = false;
	EXPECT_EQ(-ECONNABORTED, r);
	EXPECT_GT(VDI_PROMPT_MS * 1000, t_wake - self->k.t_us);
}

TEST_F(peer, server_process_aborts_and_the_client_wakes)
{
	struct vdi_command cmd[2];
	char dn[VDI_NAME_MAX];
	uint32_t idx;
	int64_t t0, t1;
	int r;

	self->arg->mode = P_SERVER_ABORTS;
	ASSERT_EQ(0, vdi_spawn(&self->p, peer_server, self->arg));
	ASSERT_EQ(0, client_of_child(&self->s, &self->p, 2));
	ASSERT_EQ(0, vdi_get_config(self->s.cset, 10000, NULL));
	self->s.cdev[0] = vdi_open_device(self->s.cset, self->s.name, 0, &idx);
	ASSERT_LE(0, self->s.cdev[0]);
	vdi_dev_name(dn, self->s.name, 1);
	self->s.cdev[1] = vdi_open_device(self->s.cset, dn, 0, &idx);
	ASSERT_LE(0, self->s.cdev[1]);
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	ASSERT_EQ(1, vdi_get(self->s.cdev[0], cmd, 1, 1000));
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 3));
	t0 = vdi_now_us();
	r = vdi_get(self->s.cdev[1], cmd + 1, 1, 5000);
	t1 = vdi_now_us();
	EXPECT_EQ(-ECONNABORTED, r);
	EXPECT_GT(VDI_PROMPT_MS * 1000, t1 - t0);
	EXPECT_EQ(-ECONNABORTED, vdi_complete1(self->s.cdev[0], cmd[0].tag, 0, 0, 0));
	/* The server child checked its side and exits cleanly. */
	EXPECT_EQ(0, vdi_reap(&self->p, 5000));
}

/* A secondary client process holding commands of device 1. */
static int peer_secondary(struct vdi_chan *ch, void *arg)
{
	struct peer *p = arg;
	struct vdi_command cmd[2];
	char dn[VDI_NAME_MAX];
	uint32_t idx;
	int set, dev, got = 0;

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	set = vdi_open_secondary(p->name);
	CK(set >= 0);
	vdi_dev_name(dn, p->name, 1);
	dev = vdi_open_device(set, dn, 0, &idx);
	CK(dev >= 0);
	CKEQ(0, vdi_chan_send(ch, 2));
	while (got < 2) {
		int r = vdi_get(dev, cmd + got, 2 - got, 10000);

		CK(r > 0);
		got += r;
	}
	CKEQ(0, vdi_chan_send(ch, 3));
	for (;;)
		pause();
	return 0;
}

TEST_F(peer, secondary_killed_holding_commands_aborts_the_set)
{
	struct vdi_sess_opts o = { .ndev = 2, .no_devices = true,
				   .no_map = true };
	struct vdi_completion cpl[8];
	struct vdi_command cmd;
	char dn[VDI_NAME_MAX];
	int64_t t_wake;
	uint32_t idx;
	int n, err;

	ASSERT_EQ(0, vdi_spawn(&self->p, peer_secondary, self->arg));
	ASSERT_EQ(0, vdi_sess_setup(&self->s, &o));
	memcpy(self->arg->name, self->s.name, sizeof(self->s.name));
	self->s.cdev[0] = vdi_open_device(self->s.cset, self->s.name, 0, &idx);
	ASSERT_LE(0, self->s.cdev[0]);
	for (int i = 0; i < 2; i++) {
		vdi_dev_name(dn, self->s.name, i);
		self->s.sdev[i] = vdi_open_device(self->s.sset, dn, 0, &idx);
		ASSERT_LE(0, self->s.sdev[i]);
	}
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 1));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(1, vdi_send1(self->s.sdev[1], i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 3, 10000));
	/* Its device fd goes before the device ended: an abort. */
	start_killer(self, 150);
	ASSERT_TRUE(self->killer_started);
	n = vdi_wait(self->s.sset, cpl, 8, 5000);
	t_wake = vdi_now_us();
	pthread_join(self->k.th, NULL);
	self->killer_started = false;
	ASSERT_LE(1, n) TH_LOG("WAIT gave %d", n);
	EXPECT_GT(VDI_PROMPT_MS * 1000, t_wake - self->k.t_us);
	if (n < 3)
		n += vdi_wait_n(self->s.sset, cpl + n, 3 - n, 1000, NULL);
	ASSERT_EQ(3, n);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ((__u32)VDI_ERROR_OPERATION_ABORTED, cpl[i].completion_code);
		EXPECT_EQ(1U, cpl[i].device_index);
	}
	EXPECT_EQ(-ECONNABORTED, vdi_wait_n(self->s.sset, cpl, 8, 200, &err));
	EXPECT_EQ(-ECONNABORTED, vdi_get(self->s.cdev[0], &cmd, 1, 0));
	EXPECT_EQ(128 + SIGKILL, vdi_reap(&self->p, 5000));
}

TEST_HARNESS_MAIN
