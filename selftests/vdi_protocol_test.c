// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vdi commands: SEND, GET_COMMANDS, COMPLETE, WAIT_COMPLETIONS, their
 * checks and batches, EFAULT recovery, timeouts, IO-ERROR and ClearError,
 * poll(), the buffer area, and two processes exchanging data both ways
 * (docs/ABI.md, "Commands", "IO-ERROR", "Buffer area", "Polling").
 */
#include "vdi_test_util.h"

/* ------------------------------------------------------------------ */
/* single process, both roles                                         */

FIXTURE(one) {
	struct vdi_sess s;
};

FIXTURE_SETUP(one)
{
	ASSERT_EQ(0, vdi_sess_simple(&self->s, 1, 0));
}

FIXTURE_TEARDOWN(one)
{
	vdi_sess_close(&self->s);
}

TEST_F(one, write_and_read_round_trip_every_field)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_completion cpl;

	/* Write: the server's bytes are visible to the client. */
	vdi_fill(s->smap, 4096, 8192, 0xA5);
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 0xC0FFEE0000000001ULL, VDI_VDC_WRITE,
			       4096, 8192, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	EXPECT_EQ((__u32)VDI_VDC_WRITE, cmd.code);
	EXPECT_EQ(4096U, cmd.size);
	EXPECT_EQ(8192, cmd.position);
	EXPECT_EQ(0U, cmd.buf_offset);
	EXPECT_TRUE(vdi_check(s->cmap, 4096, 8192, 0xA5));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd.tag, 0, 4096, 12288));
	ASSERT_EQ(1, vdi_wait(s->sset, &cpl, 1, 0));
	EXPECT_EQ(0xC0FFEE0000000001ULL, cpl.cookie);
	EXPECT_EQ(0U, cpl.completion_code);
	EXPECT_EQ(4096U, cpl.bytes_transferred);
	EXPECT_EQ(12288, cpl.position);
	EXPECT_EQ(0U, cpl.device_index);
	EXPECT_EQ((__u32)VDI_VDC_WRITE, cpl.code);

	/* Read: the client's bytes are visible to the server. */
	ASSERT_EQ(1, vdi_send1(s->sdev[0], ~0ULL, VDI_VDC_READ, 65536, -5,
			       s->area - 65536));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	EXPECT_EQ((__u32)VDI_VDC_READ, cmd.code);
	EXPECT_EQ(65536U, cmd.size);
	EXPECT_EQ(-5, cmd.position);
	EXPECT_EQ(s->area - 65536, cmd.buf_offset);
	vdi_fill(s->cmap + cmd.buf_offset, 1000, 77, 0x5A);
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd.tag, 38 /* HANDLE_EOF */,
				   1000, INT64_MIN));
	ASSERT_EQ(1, vdi_wait(s->sset, &cpl, 1, 0));
	EXPECT_EQ(~0ULL, cpl.cookie);
	EXPECT_EQ(38U, cpl.completion_code);
	EXPECT_EQ(1000U, cpl.bytes_transferred);
	EXPECT_EQ(INT64_MIN, cpl.position);
	EXPECT_EQ((__u32)VDI_VDC_READ, cpl.code);
	EXPECT_TRUE(vdi_check(s->smap + s->area - 65536, 1000, 77, 0x5A));
	/* Nothing else is pending on either side. */
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], &cmd, 1, 0));
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, &cpl, 1, 0));
}

TEST_F(one, every_vdc_code_passes_through)
{
	struct vdi_sess *s = &self->s;
	struct vdi_send snd[VDI_VDC_MAX];
	struct vdi_command cmd[32];
	struct vdi_done done[VDI_VDC_MAX];
	struct vdi_completion cpl[32];
	int n;

	for (uint32_t code = 1; code <= VDI_VDC_MAX; code++) {
		struct vdi_send *e = &snd[code - 1];

		e->cookie = 0x1000 + code;
		e->code = code;
		e->position = (int64_t)code * 1000003;
		if (code == VDI_VDC_READ || code == VDI_VDC_WRITE) {
			e->size = 512 * code;
			e->buf_offset = 65536 * code;
		} else {
			e->size = code * 7;	/* counts, whence... */
			/* Non-data commands: no buffer, or one in the area. */
			e->buf_offset = code % 2 ? VDI_NO_BUFFER : 4096 * code;
		}
	}
	ASSERT_EQ(VDI_VDC_MAX, vdi_send(s->sdev[0], snd, VDI_VDC_MAX));
	n = vdi_get(s->cdev[0], cmd, 32, 0);
	ASSERT_EQ(VDI_VDC_MAX, n);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(snd[i].code, cmd[i].code);
		EXPECT_EQ(snd[i].size, cmd[i].size);
		EXPECT_EQ(snd[i].position, cmd[i].position);
		EXPECT_EQ(snd[i].buf_offset, cmd[i].buf_offset);
		for (int j = 0; j < i; j++) {
			EXPECT_NE(cmd[j].tag, cmd[i].tag);
		}
		done[i] = (struct vdi_done){
			.tag = cmd[i].tag, .completion_code = 0,
			.bytes_transferred = cmd[i].code <= 2 ? cmd[i].size : 0,
			.position = cmd[i].position + 1,
		};
	}
	ASSERT_EQ(n, vdi_complete(s->cdev[0], done, n));
	ASSERT_EQ(n, vdi_wait_n(s->sset, cpl, n, 2000, NULL));
	for (uint32_t code = 1; code <= VDI_VDC_MAX; code++) {
		const struct vdi_completion *c =
			vdi_find_cookie(cpl, n, 0x1000 + code);

		ASSERT_NE(NULL, c) TH_LOG("code %u missing", code);
		EXPECT_EQ(code, c->code);
		EXPECT_EQ(0U, c->completion_code);
		EXPECT_EQ(snd[code - 1].position + 1, c->position);
	}
}

TEST_F(one, invalid_codes_are_einval)
{
	static const uint32_t bad[] = { 0, VDI_VDC_MAX + 1, 99, 0xffffffffU };
	struct vdi_command cmd;

	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, vdi_send1(self->s.sdev[0], i, bad[i], 0, 0,
					     VDI_NO_BUFFER)) TH_LOG("code %u", bad[i]);
	}
	EXPECT_EQ(-ETIMEDOUT, vdi_get(self->s.cdev[0], &cmd, 1, 0));
}

TEST_F(one, buffer_range_checks)
{
	struct vdi_sess *s = &self->s;
	const uint64_t area = s->area;	/* 1 MiB, max transfer 64 KiB */
	struct vdi_command cmd[32];
	int sd = s->sdev[0], n;

	ASSERT_EQ(1U << 20, area);
	/* Fits exactly at the end. */
	EXPECT_EQ(1, vdi_send1(sd, 1, VDI_VDC_WRITE, 65536, 0, area - 65536));
	/* One byte over the end. */
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_WRITE, 65536, 0,
				     area - 65535));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_READ, 1, 0, area));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_READ, 512, 0, area + 4096));
	/* offset + size wraps around 2^64. */
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_WRITE, 512, 0, ~0ULL - 100));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_WRITE, 8192, 0,
				     0ULL - 4096));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_READ, 0xffffffffU, 0, 4096));
	/* A data command needs a buffer. */
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_WRITE, 512, 0,
				     VDI_NO_BUFFER));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_READ, 512, 0, VDI_NO_BUFFER));
	/* Larger than max_transfer_size, though inside the area. */
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_WRITE, 65536 + 512, 0, 0));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 2, VDI_VDC_READ, 131072, 0, 0));
	EXPECT_EQ(1, vdi_send1(sd, 3, VDI_VDC_READ, 65536, 0, 0));
	/* Other commands: no buffer, or an offset inside the area. */
	EXPECT_EQ(1, vdi_send1(sd, 4, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	EXPECT_EQ(1, vdi_send1(sd, 5, T_VDC_FLUSH, 0, 0, area - 1));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 6, T_VDC_FLUSH, 0, 0, area));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 6, T_VDC_GET_POSITION, 0, 0,
				     VDI_NO_BUFFER - 1));
	/* Their size is a count, not bounded by max_transfer_size. */
	EXPECT_EQ(1, vdi_send1(sd, 7, T_VDC_SKIP_BLOCKS, 5U << 20, 0,
			       VDI_NO_BUFFER));
	n = vdi_get(s->cdev[0], cmd, 32, 0);
	ASSERT_EQ(5, n);
	EXPECT_EQ(area - 65536, cmd[0].buf_offset);
	EXPECT_EQ(65536U, cmd[1].size);
	EXPECT_EQ(VDI_NO_BUFFER, cmd[2].buf_offset);
	EXPECT_EQ(area - 1, cmd[3].buf_offset);
	EXPECT_EQ(5U << 20, cmd[4].size);
	EXPECT_EQ((__u32)T_VDC_SKIP_BLOCKS, cmd[4].code);
}

TEST_F(one, send_batch_stops_at_first_invalid_entry)
{
	struct vdi_sess *s = &self->s;
	struct vdi_send snd[4] = {
		{ .cookie = 1, .code = T_VDC_FLUSH, .buf_offset = VDI_NO_BUFFER },
		{ .cookie = 2, .code = VDI_VDC_WRITE, .size = 512, .buf_offset = 0 },
		{ .cookie = 3, .code = 0, .buf_offset = VDI_NO_BUFFER },
		{ .cookie = 4, .code = T_VDC_FLUSH, .buf_offset = VDI_NO_BUFFER },
	};
	struct vdi_command cmd[8];

	EXPECT_EQ(2, vdi_send(s->sdev[0], snd, 4));
	/* Nothing was processed: an error. */
	EXPECT_EQ(-EINVAL, vdi_send(s->sdev[0], &snd[2], 2));
	ASSERT_EQ(2, vdi_get(s->cdev[0], cmd, 8, 0));
	EXPECT_EQ((__u32)T_VDC_FLUSH, cmd[0].code);
	EXPECT_EQ((__u32)VDI_VDC_WRITE, cmd[1].code);
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], cmd, 8, 0));
	/* The rest, sent again, goes through. */
	EXPECT_EQ(1, vdi_send(s->sdev[0], &snd[3], 1));
	ASSERT_EQ(1, vdi_get(s->cdev[0], cmd, 8, 0));
}

TEST_F(one, batch_descriptor_errors)
{
	struct vdi_sess *s = &self->s;
	struct vdi_send snd = { .cookie = 1, .code = T_VDC_FLUSH,
				.buf_offset = VDI_NO_BUFFER };
	static struct vdi_command cmd[VDI_BATCH_MAX + 1];
	struct vdi_done done = { 0 };
	struct vdi_completion cpl[4];
	struct {
		int fd;
		unsigned long req;
		void *entries;
		bool waits;
	} calls[4] = {
		{ s->sdev[0], VDI_IOC_SEND, &snd, false },
		{ s->cdev[0], VDI_IOC_GET_COMMANDS, cmd, true },
		{ s->cdev[0], VDI_IOC_COMPLETE, &done, false },
		{ s->sset, VDI_IOC_WAIT_COMPLETIONS, cpl, true },
	};
	struct vdi_batch b;

	for (int i = 0; i < 4; i++) {
		vdi_batch_init(&b, calls[i].entries, 0, 0);
		EXPECT_EQ(-EINVAL, vdi_ioctl(calls[i].fd, calls[i].req, &b));
		vdi_batch_init(&b, calls[i].entries, VDI_BATCH_MAX + 1, 0);
		EXPECT_EQ(-EINVAL, vdi_ioctl(calls[i].fd, calls[i].req, &b));
		vdi_batch_init(&b, calls[i].entries, 1, 0);
		b.flags = 1;
		EXPECT_EQ(-EINVAL, vdi_ioctl(calls[i].fd, calls[i].req, &b));
		vdi_batch_init(&b, calls[i].entries, 1, 0);
		b.reserved[0] = 1;
		EXPECT_EQ(-EINVAL, vdi_ioctl(calls[i].fd, calls[i].req, &b));
		vdi_batch_init(&b, calls[i].entries, 1, 0);
		b.reserved[1] = 1ULL << 63;
		EXPECT_EQ(-EINVAL, vdi_ioctl(calls[i].fd, calls[i].req, &b));
		if (!calls[i].waits) {
			/* timeout_ms must be 0 for a call that does not wait */
			vdi_batch_init(&b, calls[i].entries, 1, 10);
			EXPECT_EQ(-EINVAL, vdi_ioctl(calls[i].fd, calls[i].req, &b));
			vdi_batch_init(&b, calls[i].entries, 1, -1);
			EXPECT_EQ(-EINVAL, vdi_ioctl(calls[i].fd, calls[i].req, &b));
		}
		EXPECT_EQ(-EFAULT, vdi_ioctl(calls[i].fd, calls[i].req, NULL));
		EXPECT_EQ(-EFAULT, vdi_ioctl(calls[i].fd, calls[i].req,
					     vdi_pages(1, PROT_NONE)));
	}
	/* None of that queued anything; a valid 1-entry SEND does. */
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], cmd, VDI_BATCH_MAX, 0));
	EXPECT_EQ(1, vdi_send(s->sdev[0], &snd, 1));
	/* count == VDI_BATCH_MAX is allowed. */
	EXPECT_EQ(1, vdi_get(s->cdev[0], cmd, VDI_BATCH_MAX, 0));
}

FIXTURE(depth) {
	struct vdi_sess s;
};

FIXTURE_SETUP(depth)
{
	struct vdi_sess_opts o = { .ndev = 2, .depth = 4 };

	ASSERT_EQ(0, vdi_sess_setup(&self->s, &o));
}

FIXTURE_TEARDOWN(depth)
{
	vdi_sess_close(&self->s);
}

TEST_F(depth, queue_full_until_the_agent_reads)
{
	struct vdi_sess *s = &self->s;
	struct vdi_send snd[6];
	struct vdi_command cmd[8];
	struct vdi_completion cpl[8];

	for (int i = 0; i < 6; i++)
		snd[i] = (struct vdi_send){ .cookie = 100 + i, .code = T_VDC_FLUSH,
					    .position = 100 + i,
					    .buf_offset = VDI_NO_BUFFER };
	/* depth 4: a batch of 6 stops after 4. */
	EXPECT_EQ(4, vdi_send(s->sdev[0], snd, 6));
	EXPECT_EQ(-ENOBUFS, vdi_send(s->sdev[0], &snd[4], 2));
	EXPECT_EQ(0, vdi_poll1(s->sdev[0], POLLOUT, 0));
	/* Taken by the client: the slots are still in use. */
	ASSERT_EQ(2, vdi_get(s->cdev[0], cmd, 2, 0));
	EXPECT_EQ(-ENOBUFS, vdi_send(s->sdev[0], &snd[4], 1));
	/* Completed, but the agent has not read it: still in use. */
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[0].tag, 0, 0, 0));
	EXPECT_EQ(-ENOBUFS, vdi_send(s->sdev[0], &snd[4], 1));
	EXPECT_EQ(0, vdi_poll1(s->sdev[0], POLLOUT, 0));
	/* The agent read it: one slot free. */
	ASSERT_EQ(1, vdi_wait(s->sset, cpl, 8, 0));
	EXPECT_EQ(100U, cpl[0].cookie);
	EXPECT_EQ(POLLOUT, vdi_poll1(s->sdev[0], POLLOUT, 0) & POLLOUT);
	EXPECT_EQ(1, vdi_send(s->sdev[0], &snd[4], 2));
	EXPECT_EQ(-ENOBUFS, vdi_send(s->sdev[0], &snd[5], 1));
	/* The queue kept its order: 102, 103, 104. */
	ASSERT_EQ(3, vdi_get(s->cdev[0], cmd + 2, 6, 0));
	EXPECT_EQ(102, cmd[2].position);
	EXPECT_EQ(103, cmd[3].position);
	EXPECT_EQ(104, cmd[4].position);
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], cmd, 1, 0));
}

TEST_F(depth, queue_depth_is_per_device)
{
	struct vdi_sess *s = &self->s;

	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	EXPECT_EQ(-ENOBUFS, vdi_send1(s->sdev[0], 9, T_VDC_FLUSH, 0, 0,
				      VDI_NO_BUFFER));
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(1, vdi_send1(s->sdev[1], i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	EXPECT_EQ(-ENOBUFS, vdi_send1(s->sdev[1], 9, T_VDC_FLUSH, 0, 0,
				      VDI_NO_BUFFER));
}

TEST_F(depth, send_error_precedence)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_completion cpl[8];
	int sd = s->sdev[0];

	/* Fill the queue, then put the device in IO-ERROR. */
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(1, vdi_send1(sd, i, VDI_VDC_WRITE, 512, 0, 4096 * i));
	}
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd.tag, T_ERROR_DISK_FULL, 0, 0));
	/* Full and in IO-ERROR: EIO comes before ENOBUFS ... */
	EXPECT_EQ(-EIO, vdi_send1(sd, 10, VDI_VDC_WRITE, 512, 0, 0));
	/* ... and a ClearError, which IO-ERROR allows, finds it full. */
	EXPECT_EQ(-ENOBUFS, vdi_send1(sd, 11, VDI_VDC_CLEAR_ERROR, 0, 0,
				      VDI_NO_BUFFER));
	ASSERT_EQ(4, vdi_wait_n(s->sset, cpl, 4, 2000, NULL));
	EXPECT_EQ(1, vdi_send1(sd, 12, VDI_VDC_CLEAR_ERROR, 0, 0, VDI_NO_BUFFER));
	/* Closed: EPROTO comes before EIO. */
	ASSERT_EQ(0, vdi_close_device(sd));
	EXPECT_EQ(-EPROTO, vdi_send1(sd, 13, VDI_VDC_WRITE, 512, 0, 0));
	EXPECT_EQ(-EPROTO, vdi_send1(sd, 14, VDI_VDC_CLEAR_ERROR, 0, 0,
				     VDI_NO_BUFFER));
	/* Aborted: ECONNABORTED comes before EPROTO. */
	ASSERT_EQ(0, vdi_abort(s->cset));
	EXPECT_EQ(-ECONNABORTED, vdi_send1(sd, 15, VDI_VDC_WRITE, 512, 0, 0));
	EXPECT_EQ(-ECONNABORTED, vdi_send1(s->sdev[1], 16, T_VDC_FLUSH, 0, 0,
					   VDI_NO_BUFFER));
}

FIXTURE(two) {
	struct vdi_sess s;
};

FIXTURE_SETUP(two)
{
	ASSERT_EQ(0, vdi_sess_simple(&self->s, 2, 0));
}

FIXTURE_TEARDOWN(two)
{
	vdi_sess_close(&self->s);
}

TEST_F(two, fifo_per_device)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[32];
	int n;

	/* Interleave 10 commands on each device. */
	for (int i = 0; i < 20; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[i % 2], i, T_VDC_FLUSH, 0, i,
				       VDI_NO_BUFFER));
	}
	ASSERT_EQ(4, vdi_get(s->cdev[1], cmd, 4, 0));
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(2 * i + 1, cmd[i].position);
	}
	n = vdi_get(s->cdev[0], cmd, 32, 0);
	ASSERT_EQ(10, n);
	for (int i = 0; i < 10; i++) {
		EXPECT_EQ(2 * i, cmd[i].position);
	}
	ASSERT_EQ(6, vdi_get(s->cdev[1], cmd, 32, 0));
	for (int i = 0; i < 6; i++) {
		EXPECT_EQ(2 * (i + 4) + 1, cmd[i].position);
	}
}

TEST_F(two, completions_in_any_order)
{
	struct vdi_sess *s = &self->s;
	static const int order[8] = { 7, 0, 5, 2, 3, 6, 1, 4 };
	struct vdi_command cmd[8];
	struct vdi_completion cpl[8];
	int i;

	for (i = 0; i < 8; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], 500 + i, VDI_VDC_READ, 4096,
				       i * 4096, i * 65536));
	}
	ASSERT_EQ(8, vdi_get(s->cdev[0], cmd, 8, 0));
	for (i = 0; i < 8; i++) {
		int k = order[i];

		ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[k].tag, 0, 100 + k,
					   cmd[k].position + 1));
		ASSERT_EQ(1, vdi_wait(s->sset, &cpl[i], 1, 0));
		EXPECT_EQ((uint64_t)(500 + k), cpl[i].cookie);
		EXPECT_EQ((uint32_t)(100 + k), cpl[i].bytes_transferred);
		EXPECT_EQ(k * 4096 + 1, cpl[i].position);
	}
	/* The slots came back: the same number can be sent again. */
	for (i = 0; i < 8; i++) {
		EXPECT_EQ(1, vdi_send1(s->sdev[0], 600 + i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
}

TEST_F(two, complete_estale_and_wrong_device)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command c0, c1, c2;
	struct vdi_completion cpl, cpl2[2];

	ASSERT_EQ(1, vdi_send1(s->sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &c0, 1, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[1], &c1, 1, 0));
	EXPECT_NE(c0.tag, c1.tag);
	/* Forged tags. */
	EXPECT_EQ(-ESTALE, vdi_complete1(s->cdev[0], c0.tag ^ (1ULL << 40), 0, 0, 0));
	EXPECT_EQ(-ESTALE, vdi_complete1(s->cdev[0], c0.tag + 1, 0, 0, 0));
	EXPECT_EQ(-ESTALE, vdi_complete1(s->cdev[0], ~0ULL, 0, 0, 0));
	EXPECT_EQ(-ESTALE, vdi_complete1(s->cset, ~0ULL, 0, 0, 0));
	/* Device 1's command through device 0's fd. */
	EXPECT_EQ(-ESTALE, vdi_complete1(s->cdev[0], c1.tag, 0, 0, 0));
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, &cpl, 1, 0));
	EXPECT_EQ(1, vdi_complete1(s->cdev[1], c1.tag, 0, 0, 0));
	EXPECT_EQ(1, vdi_complete1(s->cdev[0], c0.tag, 0, 0, 0));
	/* Twice. */
	EXPECT_EQ(-ESTALE, vdi_complete1(s->cdev[0], c0.tag, 0, 0, 0));
	EXPECT_EQ(-ESTALE, vdi_complete1(s->cset, c1.tag, 0, 0, 0));
	ASSERT_EQ(2, vdi_wait_n(s->sset, cpl2, 2, 1000, NULL));
	/*
	 * Cycle through more commands than the queue has slots: every slot
	 * is reused, and the old tag stays stale all along.
	 */
	for (int i = 0; i < 70; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], 1000 + i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
		ASSERT_EQ(1, vdi_get(s->cdev[0], &c2, 1, 0));
		EXPECT_NE(c0.tag, c2.tag);
		EXPECT_EQ(-ESTALE, vdi_complete1(s->cdev[0], c0.tag, 0, 0, 0));
		ASSERT_EQ(1, vdi_complete1(s->cdev[0], c2.tag, 0, 0, 0));
		EXPECT_EQ(-ESTALE, vdi_complete1(s->cdev[0], c2.tag, 0, 0, 0));
		ASSERT_EQ(1, vdi_wait(s->sset, &cpl, 1, 0));
		EXPECT_EQ((uint64_t)(1000 + i), cpl.cookie);
	}
}

TEST_F(two, complete_bytes_beyond_size_is_einval)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[3];
	struct vdi_completion cpl[3];

	ASSERT_EQ(1, vdi_send1(s->sdev[0], 1, VDI_VDC_READ, 4096, 0, 0));
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 2, VDI_VDC_WRITE, 512, 0, 65536));
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 3, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(3, vdi_get(s->cdev[0], cmd, 3, 0));
	EXPECT_EQ(-EINVAL, vdi_complete1(s->cdev[0], cmd[0].tag, 0, 4097, 0));
	EXPECT_EQ(-EINVAL, vdi_complete1(s->cdev[0], cmd[1].tag, 0, 0xffffffffU, 0));
	/* Still held: the right numbers are accepted. */
	EXPECT_EQ(1, vdi_complete1(s->cdev[0], cmd[0].tag, 0, 4096, 0));
	EXPECT_EQ(1, vdi_complete1(s->cdev[0], cmd[1].tag, 0, 0, 0));
	/* Only Read and Write have their bytes checked. */
	EXPECT_EQ(1, vdi_complete1(s->cdev[0], cmd[2].tag, 0, 12345, 0));
	ASSERT_EQ(3, vdi_wait_n(s->sset, cpl, 3, 2000, NULL));
	EXPECT_EQ(12345U, vdi_find_cookie(cpl, 3, 3)->bytes_transferred);
	EXPECT_EQ(4096U, vdi_find_cookie(cpl, 3, 1)->bytes_transferred);
}

TEST_F(two, complete_through_the_client_set_fd)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command c0, c1;
	struct vdi_done done[2];
	struct vdi_completion cpl[2];

	ASSERT_EQ(1, vdi_send1(s->sdev[0], 10, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 11, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &c0, 1, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[1], &c1, 1, 0));
	/* One batch, two devices, through the set fd. */
	done[0] = (struct vdi_done){ .tag = c1.tag, .position = 1 };
	done[1] = (struct vdi_done){ .tag = c0.tag, .position = 2 };
	EXPECT_EQ(2, vdi_complete(s->cset, done, 2));
	ASSERT_EQ(2, vdi_wait_n(s->sset, cpl, 2, 2000, NULL));
	EXPECT_EQ(1U, vdi_find_cookie(cpl, 2, 11)->device_index);
	EXPECT_EQ(1, vdi_find_cookie(cpl, 2, 11)->position);
	EXPECT_EQ(0U, vdi_find_cookie(cpl, 2, 10)->device_index);
	EXPECT_EQ(2, vdi_find_cookie(cpl, 2, 10)->position);
}

TEST_F(two, batched_calls_with_count_above_one)
{
	struct vdi_sess *s = &self->s;
	struct vdi_send snd[6];
	struct vdi_command cmd[8];
	struct vdi_done done[6];
	struct vdi_completion cpl[8];

	for (int i = 0; i < 6; i++)
		snd[i] = (struct vdi_send){ .cookie = 70 + i, .code = VDI_VDC_WRITE,
					    .size = 1024, .position = i,
					    .buf_offset = i * 1024 };
	ASSERT_EQ(6, vdi_send(s->sdev[1], snd, 6));
	ASSERT_EQ(4, vdi_get(s->cdev[1], cmd, 4, 0));
	ASSERT_EQ(2, vdi_get(s->cdev[1], cmd + 4, 8, 0));
	for (int i = 0; i < 6; i++) {
		EXPECT_EQ(i, cmd[i].position);
		done[i] = (struct vdi_done){ .tag = cmd[5 - i].tag,
					     .bytes_transferred = 1024,
					     .position = 100 + cmd[5 - i].position };
	}
	ASSERT_EQ(6, vdi_complete(s->cdev[1], done, 6));
	ASSERT_EQ(3, vdi_wait(s->sset, cpl, 3, 0));
	ASSERT_EQ(3, vdi_wait(s->sset, cpl + 3, 8, 0));
	for (int i = 0; i < 6; i++) {
		const struct vdi_completion *c = vdi_find_cookie(cpl, 6, 70 + i);

		ASSERT_NE(NULL, c);
		EXPECT_EQ(100 + i, c->position);
		EXPECT_EQ(1U, c->device_index);
		EXPECT_EQ(1024U, c->bytes_transferred);
	}
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, cpl, 8, 0));
}

TEST_F(two, complete_batch_stops_at_the_first_bad_entry)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[3];
	struct vdi_done done[4];
	struct vdi_completion cpl[4];

	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], 20 + i, VDI_VDC_READ, 512, i,
				       i * 4096));
	}
	ASSERT_EQ(3, vdi_get(s->cdev[0], cmd, 3, 0));
	/* valid, stale, valid: one applied, the rest untouched. */
	done[0] = (struct vdi_done){ .tag = cmd[0].tag, .position = 1 };
	done[1] = (struct vdi_done){ .tag = cmd[0].tag ^ (1ULL << 50) };
	done[2] = (struct vdi_done){ .tag = cmd[1].tag, .position = 2 };
	EXPECT_EQ(1, vdi_complete(s->cdev[0], done, 3));
	/* The same tag twice in one batch: the second is stale. */
	done[0] = (struct vdi_done){ .tag = cmd[1].tag, .position = 2 };
	done[1] = (struct vdi_done){ .tag = cmd[1].tag, .position = 3 };
	EXPECT_EQ(1, vdi_complete(s->cdev[0], done, 2));
	/* Bytes beyond the size stop a batch too. */
	done[0] = (struct vdi_done){ .tag = cmd[2].tag, .bytes_transferred = 513 };
	EXPECT_EQ(-EINVAL, vdi_complete(s->cdev[0], done, 1));
	done[0].bytes_transferred = 512;
	EXPECT_EQ(1, vdi_complete(s->cset, done, 1));
	ASSERT_EQ(3, vdi_wait_n(s->sset, cpl, 4, 300, NULL));
	EXPECT_EQ(1, vdi_find_cookie(cpl, 3, 20)->position);
	EXPECT_EQ(2, vdi_find_cookie(cpl, 3, 21)->position);
	EXPECT_EQ(512U, vdi_find_cookie(cpl, 3, 22)->bytes_transferred);
}

FIXTURE(deep) {
	struct vdi_sess s;
};

FIXTURE_SETUP(deep)
{
	struct vdi_sess_opts o = { .ndev = 1, .depth = 64 };

	ASSERT_EQ(0, vdi_sess_setup(&self->s, &o));
}

FIXTURE_TEARDOWN(deep)
{
	vdi_sess_close(&self->s);
}

TEST_F(deep, large_batches_in_one_call)
{
	struct vdi_sess *s = &self->s;
	static struct vdi_command cmd[VDI_BATCH_MAX];
	static struct vdi_completion cpl[VDI_BATCH_MAX];
	static struct vdi_send snd[VDI_BATCH_MAX];
	struct vdi_done done[64];
	int64_t t0;

	for (int i = 0; i < VDI_BATCH_MAX; i++)
		snd[i] = (struct vdi_send){ .cookie = 1000 + i, .code = T_VDC_FLUSH,
					    .position = i,
					    .buf_offset = VDI_NO_BUFFER };
	/* A 1024-entry SEND stops when the 64 slots are in use. */
	ASSERT_EQ(64, vdi_send(s->sdev[0], snd, VDI_BATCH_MAX));
	ASSERT_EQ(64, vdi_get(s->cdev[0], cmd, VDI_BATCH_MAX, 0));
	for (int i = 0; i < 64; i++) {
		EXPECT_EQ(i, cmd[i].position);
		done[i] = (struct vdi_done){ .tag = cmd[63 - i].tag,
					     .position = 5000 + cmd[63 - i].position };
	}
	ASSERT_EQ(64, vdi_complete(s->cdev[0], done, 64));
	ASSERT_EQ(64, vdi_wait(s->sset, cpl, VDI_BATCH_MAX, 0));
	for (int i = 0; i < 64; i++) {
		const struct vdi_completion *c = vdi_find_cookie(cpl, 64, 1000 + i);

		ASSERT_NE(NULL, c) TH_LOG("cookie %d", 1000 + i);
		EXPECT_EQ(5000 + i, c->position);
	}
	/* A wait for many returns what is there, it does not wait for more. */
	ASSERT_EQ(3, vdi_send(s->sdev[0], snd, 3));
	t0 = vdi_now_ms();
	ASSERT_EQ(3, vdi_get(s->cdev[0], cmd, 64, 3000));
	EXPECT_GT(1000, vdi_now_ms() - t0);
	for (int i = 0; i < 3; i++)
		done[i] = (struct vdi_done){ .tag = cmd[i].tag };
	ASSERT_EQ(3, vdi_complete(s->cdev[0], done, 3));
	t0 = vdi_now_ms();
	ASSERT_EQ(3, vdi_wait(s->sset, cpl, 64, 3000));
	EXPECT_GT(1000, vdi_now_ms() - t0);
}

/* An array of @room entries of @size bytes that ends at a PROT_NONE page. */
static void *guarded(size_t size, unsigned int room)
{
	size_t len = size * room, pages = (len + VDI_PAGE - 1) / VDI_PAGE + 1;
	uint8_t *p = vdi_pages(pages, PROT_READ | PROT_WRITE);

	if (!p || mprotect(p + (pages - 1) * VDI_PAGE, VDI_PAGE, PROT_NONE))
		return NULL;
	return p + (pages - 1) * VDI_PAGE - len;
}

TEST_F(deep, partial_faults_lose_nothing)
{
	static const unsigned int rooms[] = { 1, 15, 16, 17, 33 };
	struct vdi_sess *s = &self->s;
	struct vdi_send snd[40], *sg;
	struct vdi_command cmd[64], *cg;
	struct vdi_completion cpl[64], *wg;
	struct vdi_done done[40];

	for (unsigned int k = 0; k < ARRAY_SIZE(rooms); k++) {
		unsigned int room = rooms[k];
		int r, n, got;

		for (int i = 0; i < 40; i++)
			snd[i] = (struct vdi_send){ .cookie = 100 * k + i,
						    .code = T_VDC_FLUSH,
						    .position = i,
						    .buf_offset = VDI_NO_BUFFER };
		/* SEND: what it reports as sent is exactly what is queued. */
		sg = guarded(sizeof(*sg), room);
		ASSERT_NE(NULL, sg);
		memcpy(sg, snd, room * sizeof(*sg));
		r = vdi_send(s->sdev[0], sg, 40);
		ASSERT_TRUE(r == -EFAULT || (r >= 1 && r <= (int)room))
			TH_LOG("room %u: SEND gave %d", room, r);
		got = r > 0 ? r : 0;
		if (got < 40) {
			ASSERT_EQ(40 - got, vdi_send(s->sdev[0], snd + got, 40 - got));
		}
		/* GET: what is not returned stays queued, in order. */
		cg = guarded(sizeof(*cg), room);
		ASSERT_NE(NULL, cg);
		r = vdi_get(s->cdev[0], cg, 40, 0);
		ASSERT_TRUE(r == -EFAULT || (r >= 1 && r <= (int)room))
			TH_LOG("room %u: GET gave %d", room, r);
		got = r > 0 ? r : 0;
		for (int i = 0; i < got; i++) {
			EXPECT_EQ(i, cg[i].position);
			done[i] = (struct vdi_done){ .tag = cg[i].tag };
		}
		n = vdi_get(s->cdev[0], cmd, 64, 0);
		ASSERT_EQ(40 - got, n);
		for (int i = 0; i < n; i++) {
			EXPECT_EQ(got + i, cmd[i].position);
			done[got + i] = (struct vdi_done){ .tag = cmd[i].tag };
		}
		ASSERT_EQ(40, vdi_complete(s->cdev[0], done, 40));
		/* WAIT: what is not returned is returned by the next call. */
		wg = guarded(sizeof(*wg), room);
		ASSERT_NE(NULL, wg);
		r = vdi_wait(s->sset, wg, 40, 0);
		ASSERT_TRUE(r == -EFAULT || (r >= 1 && r <= (int)room))
			TH_LOG("room %u: WAIT gave %d", room, r);
		got = r > 0 ? r : 0;
		memcpy(cpl, wg, got * sizeof(*wg));
		n = vdi_wait_n(s->sset, cpl + got, 40 - got, 1000, NULL);
		ASSERT_EQ(40 - got, n);
		for (int i = 0; i < 40; i++) {
			int seen = 0;

			for (int j = 0; j < 40; j++)
				seen += cpl[j].cookie == 100 * k + i;
			EXPECT_EQ(1, seen) TH_LOG("room %u cookie %d", room, i);
		}
		EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, cpl, 64, 0));
	}
}

/* ------------------------------------------------------------------ */
/* EFAULT: nothing is lost                                            */

TEST_F(one, send_efault_queues_nothing)
{
	struct vdi_sess *s = &self->s;
	struct vdi_send *tail;
	struct vdi_command cmd[4];
	int r, n;

	EXPECT_EQ(-EFAULT, vdi_send(s->sdev[0], NULL, 1));
	EXPECT_EQ(-EFAULT, vdi_send(s->sdev[0], vdi_pages(1, PROT_NONE), 2));
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], cmd, 4, 0));
	/* Two readable entries, the third in a guard page. */
	tail = vdi_pages(2, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, tail);
	ASSERT_EQ(0, mprotect((uint8_t *)tail + VDI_PAGE, VDI_PAGE, PROT_NONE));
	tail = (struct vdi_send *)((uint8_t *)tail + VDI_PAGE) - 2;
	for (int i = 0; i < 2; i++)
		tail[i] = (struct vdi_send){ .cookie = i, .code = T_VDC_FLUSH,
					     .position = i,
					     .buf_offset = VDI_NO_BUFFER };
	r = vdi_send(s->sdev[0], tail, 3);
	/* Either the two readable ones were sent, or none. */
	ASSERT_TRUE(r == 2 || r == -EFAULT) TH_LOG("SEND returned %d", r);
	n = vdi_get(s->cdev[0], cmd, 4, 0);
	if (r == 2) {
		ASSERT_EQ(2, n);
		EXPECT_EQ(0, cmd[0].position);
		EXPECT_EQ(1, cmd[1].position);
	} else {
		EXPECT_EQ(-ETIMEDOUT, n);
	}
}

TEST_F(one, get_commands_efault_requeues_in_order)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[8], *ro, *tail;
	struct vdi_completion cpl[3];
	int r, n, got = 0;

	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], i, T_VDC_FLUSH, 0, i,
				       VDI_NO_BUFFER));
	}
	EXPECT_EQ(-EFAULT, vdi_get(s->cdev[0], NULL, 3, 0));
	EXPECT_EQ(-EFAULT, vdi_get(s->cdev[0], vdi_pages(1, PROT_NONE), 3, 0));
	ro = vdi_pages(1, PROT_READ);
	ASSERT_NE(NULL, ro);
	EXPECT_EQ(-EFAULT, vdi_get(s->cdev[0], ro, 3, 0));
	/* Still queued, still first, still in order. */
	EXPECT_EQ(POLLIN, vdi_poll1(s->cdev[0], POLLIN, 0));
	ASSERT_EQ(3, vdi_get(s->cdev[0], cmd, 8, 0));
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(i, cmd[i].position);
	}
	/* The commands are held now: complete them, all arrive. */
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[i].tag, 0, 0, i));
	}
	ASSERT_EQ(3, vdi_wait_n(s->sset, cpl, 3, 2000, NULL));

	/* Partly writable array: whatever is not returned stays queued. */
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], 10 + i, T_VDC_FLUSH, 0, 10 + i,
				       VDI_NO_BUFFER));
	}
	tail = vdi_pages(2, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, tail);
	ASSERT_EQ(0, mprotect((uint8_t *)tail + VDI_PAGE, VDI_PAGE, PROT_NONE));
	tail = (struct vdi_command *)((uint8_t *)tail + VDI_PAGE) - 2;
	r = vdi_get(s->cdev[0], tail, 4, 0);
	ASSERT_TRUE(r == -EFAULT || r == 1 || r == 2) TH_LOG("GET gave %d", r);
	if (r > 0) {
		for (int i = 0; i < r; i++) {
			EXPECT_EQ(10 + i, tail[i].position);
		}
		got = r;
	}
	n = vdi_get(s->cdev[0], cmd, 8, 0);
	ASSERT_EQ(4 - got, n);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(10 + got + i, cmd[i].position);
	}
}

TEST_F(one, complete_efault_keeps_commands_held)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[2];
	struct vdi_done *done;
	struct vdi_completion cpl[2];

	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], 40 + i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	ASSERT_EQ(2, vdi_get(s->cdev[0], cmd, 2, 0));
	EXPECT_EQ(-EFAULT, vdi_complete(s->cdev[0], NULL, 2));
	EXPECT_EQ(-EFAULT, vdi_complete(s->cdev[0], vdi_pages(1, PROT_NONE), 2));
	EXPECT_EQ(-EFAULT, vdi_complete(s->cset, NULL, 1));
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, cpl, 2, 0));
	/* From a read-only page: completing only reads the entries. */
	done = vdi_pages(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, done);
	done[0] = (struct vdi_done){ .tag = cmd[0].tag, .position = 5 };
	done[1] = (struct vdi_done){ .tag = cmd[1].tag, .position = 6 };
	ASSERT_EQ(0, mprotect(done, VDI_PAGE, PROT_READ));
	EXPECT_EQ(2, vdi_complete(s->cdev[0], done, 2));
	ASSERT_EQ(2, vdi_wait_n(s->sset, cpl, 2, 2000, NULL));
	EXPECT_EQ(5, vdi_find_cookie(cpl, 2, 40)->position);
	EXPECT_EQ(6, vdi_find_cookie(cpl, 2, 41)->position);
}

TEST_F(one, wait_completions_efault_keeps_completions)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[2];
	struct vdi_completion cpl[4], *ro;

	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], 50 + i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	ASSERT_EQ(2, vdi_get(s->cdev[0], cmd, 2, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[0].tag, 0, 0, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[1].tag, 0, 0, 0));
	EXPECT_EQ(-EFAULT, vdi_wait(s->sset, NULL, 2, 0));
	EXPECT_EQ(-EFAULT, vdi_wait(s->sset, vdi_pages(1, PROT_NONE), 2, 0));
	ro = vdi_pages(1, PROT_READ);
	ASSERT_NE(NULL, ro);
	EXPECT_EQ(-EFAULT, vdi_wait(s->sset, ro, 2, 1000));
	EXPECT_EQ(POLLIN, vdi_poll1(s->sset, POLLIN, 0) & POLLIN);
	ASSERT_EQ(2, vdi_wait(s->sset, cpl, 4, 0));
	EXPECT_NE(NULL, vdi_find_cookie(cpl, 2, 50));
	EXPECT_NE(NULL, vdi_find_cookie(cpl, 2, 51));
	/* The slots were freed only by the successful read. */
	for (int i = 0; i < 30; i++) {
		EXPECT_EQ(1, vdi_send1(s->sdev[0], i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
}

/* ------------------------------------------------------------------ */
/* timeouts                                                           */

static void check_timeouts(struct __test_metadata *_metadata, int fd,
			   unsigned long req, void *entries)
{
	int64_t t0, dt;

	t0 = vdi_now_ms();
	EXPECT_EQ(-ETIMEDOUT, vdi_batch(fd, req, entries, 4, 0));
	EXPECT_GT(500, vdi_now_ms() - t0);
	t0 = vdi_now_ms();
	EXPECT_EQ(-ETIMEDOUT, vdi_batch(fd, req, entries, 4, 50));
	dt = vdi_now_ms() - t0;
	EXPECT_LE(40, dt);
	EXPECT_GT(50 + VDI_PROMPT_MS, dt);
	t0 = vdi_now_ms();
	EXPECT_EQ(-ETIMEDOUT, vdi_batch(fd, req, entries, 1, 200));
	dt = vdi_now_ms() - t0;
	EXPECT_LE(190, dt);
	EXPECT_GT(200 + VDI_PROMPT_MS, dt);
}

TEST_F(one, get_commands_timeouts)
{
	struct vdi_command cmd[4];

	check_timeouts(_metadata, self->s.cdev[0], VDI_IOC_GET_COMMANDS, cmd);
}

TEST_F(one, wait_completions_timeouts)
{
	struct vdi_completion cpl[4];
	struct vdi_command cmd;

	check_timeouts(_metadata, self->s.sset, VDI_IOC_WAIT_COMPLETIONS, cpl);
	/* Also with a command in flight (held by the client). */
	ASSERT_EQ(1, vdi_send1(self->s.sdev[0], 1, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(self->s.cdev[0], &cmd, 1, 0));
	check_timeouts(_metadata, self->s.sset, VDI_IOC_WAIT_COMPLETIONS, cpl);
}

TEST_F(one, get_commands_negative_timeout_waits_until_woken)
{
	struct vdi_command cmd[2];
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t_send;

	vdi_batch_init(&b, cmd, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->s.cdev[0],
				      VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 300));
	t_send = vdi_now_us();
	ASSERT_EQ(1, vdi_send1(self->s.sdev[0], 9, T_VDC_FLUSH, 0, 99,
			       VDI_NO_BUFFER));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(1, w.ret);
	EXPECT_EQ(99, cmd[0].position);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w.t_end_us - t_send);
}

TEST_F(one, wait_completions_negative_timeout_waits_until_woken)
{
	struct vdi_completion cpl[2];
	struct vdi_command cmd;
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t_done;

	ASSERT_EQ(1, vdi_send1(self->s.sdev[0], 9, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(self->s.cdev[0], &cmd, 1, 0));
	vdi_batch_init(&b, cpl, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->s.sset,
				      VDI_IOC_WAIT_COMPLETIONS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 300));
	t_done = vdi_now_us();
	ASSERT_EQ(1, vdi_complete1(self->s.cdev[0], cmd.tag, 0, 0, 31));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(1, w.ret);
	EXPECT_EQ(9U, cpl[0].cookie);
	EXPECT_EQ(31, cpl[0].position);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w.t_end_us - t_done);
}

TEST(get_config_negative_timeout_waits_until_woken)
{
	struct vdi_get_config g;
	struct vdi_waiter w;
	char name[VDI_NAME_MAX];
	int64_t t_end;
	int c, s;

	vdi_make_name(name, "gcw");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	memset(&g, 0, sizeof(g));
	g.timeout_ms = -1;
	ASSERT_EQ(0, vdi_waiter_start(&w, c, VDI_IOC_GET_CONFIG, &g));
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 4096, 65536, 0));
	EXPECT_FALSE(vdi_waiter_done(&w, 300));
	t_end = vdi_now_us();
	ASSERT_EQ(0, vdi_end_config(s, 8192));
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(0, w.ret);
	EXPECT_EQ(4096U, g.config.block_size);
	EXPECT_EQ(8192U, g.config.buffer_area_size);
	EXPECT_GT(VDI_PROMPT_MS * 1000, w.t_end_us - t_end);
	close(s);
	close(c);
}

TEST_F(one, any_negative_or_huge_timeout_waits_until_woken)
{
	static const int64_t tmo[] = { -2, -12345, INT64_MIN, INT64_MAX,
				       (int64_t)UINT32_MAX + 10 };
	struct vdi_command cmd[2];
	struct vdi_completion cpl[2];
	struct vdi_waiter w;
	struct vdi_batch b;

	for (unsigned int i = 0; i < ARRAY_SIZE(tmo); i++) {
		vdi_batch_init(&b, cmd, 2, tmo[i]);
		ASSERT_EQ(0, vdi_waiter_start(&w, self->s.cdev[0],
					      VDI_IOC_GET_COMMANDS, &b));
		EXPECT_FALSE(vdi_waiter_done(&w, 150))
			TH_LOG("timeout %lld returned %d", (long long)tmo[i], w.ret);
		ASSERT_EQ(1, vdi_send1(self->s.sdev[0], i, T_VDC_FLUSH, 0, i,
				       VDI_NO_BUFFER));
		ASSERT_TRUE(vdi_waiter_done(&w, 5000));
		ASSERT_EQ(1, w.ret);
		EXPECT_EQ((int64_t)i, cmd[0].position);

		vdi_batch_init(&b, cpl, 2, tmo[i]);
		ASSERT_EQ(0, vdi_waiter_start(&w, self->s.sset,
					      VDI_IOC_WAIT_COMPLETIONS, &b));
		EXPECT_FALSE(vdi_waiter_done(&w, 150));
		ASSERT_EQ(1, vdi_complete1(self->s.cdev[0], cmd[0].tag, 0, 0, 0));
		ASSERT_TRUE(vdi_waiter_done(&w, 5000));
		ASSERT_EQ(1, w.ret);
		EXPECT_EQ((uint64_t)i, cpl[0].cookie);
	}
}

static void on_usr1(int sig)
{
	(void)sig;
}

TEST_F(one, waits_interrupted_by_a_signal_give_eintr)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	char name[VDI_NAME_MAX];
	struct vdi_get_config g;
	struct vdi_command cmd[2];
	int c;
	struct vdi_completion cpl[2];
	struct vdi_waiter w;
	struct vdi_batch b;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	vdi_batch_init(&b, cmd, 2, 10000);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->s.cdev[0],
				      VDI_IOC_GET_COMMANDS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	pthread_kill(w.th, SIGUSR1);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(-EINTR, w.ret);

	vdi_batch_init(&b, cpl, 2, -1);
	ASSERT_EQ(0, vdi_waiter_start(&w, self->s.sset,
				      VDI_IOC_WAIT_COMPLETIONS, &b));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	pthread_kill(w.th, SIGUSR1);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(-EINTR, w.ret);

	/* A client waiting for its configuration, on a fresh set. */
	vdi_make_name(name, "eintr");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	memset(&g, 0, sizeof(g));
	g.timeout_ms = -1;
	ASSERT_EQ(0, vdi_waiter_start(&w, c, VDI_IOC_GET_CONFIG, &g));
	EXPECT_FALSE(vdi_waiter_done(&w, 200));
	pthread_kill(w.th, SIGUSR1);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(-EINTR, w.ret);
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(c, 0, NULL));
	close(c);
	/* Nothing was lost by the interruptions. */
	ASSERT_EQ(1, vdi_send1(self->s.sdev[0], 3, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(self->s.cdev[0], cmd, 2, 1000));
	ASSERT_EQ(1, vdi_complete1(self->s.cdev[0], cmd[0].tag, 0, 0, 0));
	ASSERT_EQ(1, vdi_wait(self->s.sset, cpl, 2, 1000));
	EXPECT_EQ(3U, cpl[0].cookie);
}

/* ------------------------------------------------------------------ */
/* IO-ERROR and ClearError                                            */

TEST_F(two, io_error_flushes_queued_commands_with_1117)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[8];
	struct vdi_completion cpl[8];
	int n;

	for (int i = 1; i <= 5; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], i, VDI_VDC_WRITE, 4096, i,
				       i * 65536));
	}
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 100, VDI_VDC_WRITE, 4096, 0, 0));
	ASSERT_EQ(2, vdi_get(s->cdev[0], cmd, 2, 0));		/* 1 and 2 */
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[0].tag, T_ERROR_DISK_FULL,
				   100, 7));
	/* 1 failed; the queued 3, 4, 5 come back with ERROR_IO_DEVICE. */
	n = vdi_wait_n(s->sset, cpl, 4, 2000, NULL);
	ASSERT_EQ(4, n);
	EXPECT_EQ((__u32)T_ERROR_DISK_FULL, vdi_find_cookie(cpl, n, 1)->completion_code);
	EXPECT_EQ(100U, vdi_find_cookie(cpl, n, 1)->bytes_transferred);
	EXPECT_EQ(7, vdi_find_cookie(cpl, n, 1)->position);
	for (uint64_t k = 3; k <= 5; k++) {
		const struct vdi_completion *c = vdi_find_cookie(cpl, n, k);

		ASSERT_NE(NULL, c) TH_LOG("cookie %llu", (unsigned long long)k);
		EXPECT_EQ((__u32)VDI_ERROR_IO_DEVICE, c->completion_code);
		EXPECT_EQ(0U, c->bytes_transferred);
		EXPECT_EQ((__u32)VDI_VDC_WRITE, c->code);
		EXPECT_EQ(0U, c->device_index);
	}
	/* The client never sees them; the held one is still its own. */
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], cmd + 2, 6, 0));
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(s->sset, cpl, 8, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[1].tag, 0, 4096, 0));
	ASSERT_EQ(1, vdi_wait(s->sset, cpl, 8, 1000));
	EXPECT_EQ(2U, cpl[0].cookie);
	EXPECT_EQ(0U, cpl[0].completion_code);
	/* IO-ERROR is per device: device 1 is untouched. */
	ASSERT_EQ(1, vdi_get(s->cdev[1], cmd, 1, 0));
	EXPECT_EQ(1, vdi_send1(s->sdev[1], 101, VDI_VDC_WRITE, 4096, 0, 4096));
	EXPECT_EQ(-EIO, vdi_send1(s->sdev[0], 6, VDI_VDC_WRITE, 4096, 0, 0));
}

TEST_F(two, io_error_eio_then_clear_error_after_held_commands)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd[4], ce;
	struct vdi_completion cpl[8];
	int n;

	for (int i = 1; i <= 3; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], i, VDI_VDC_WRITE, 512, 0,
				       i * 4096));
	}
	ASSERT_EQ(3, vdi_get(s->cdev[0], cmd, 3, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[0].tag, T_ERROR_DISK_FULL,
				   0, 0));
	/* IO-ERROR: every code but ClearError is refused. */
	for (uint32_t code = 1; code <= VDI_VDC_MAX; code++) {
		if (code == VDI_VDC_CLEAR_ERROR)
			continue;
		EXPECT_EQ(-EIO, vdi_send1(s->sdev[0], 50, code,
					  code <= 2 ? 512 : 0, 0,
					  code <= 2 ? 0 : VDI_NO_BUFFER))
			TH_LOG("code %u", code);
	}
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 60, VDI_VDC_CLEAR_ERROR, 0, 0,
			       VDI_NO_BUFFER));
	EXPECT_EQ(-EIO, vdi_send1(s->sdev[0], 61, VDI_VDC_WRITE, 512, 0, 0));
	/* The client still holds 2 and 3: no ClearError for it yet. */
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], &ce, 1, 0));
	EXPECT_EQ(0, vdi_poll1(s->cdev[0], POLLIN, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[1].tag, 0, 512, 0));
	EXPECT_EQ(-ETIMEDOUT, vdi_get(s->cdev[0], &ce, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd[2].tag, T_ERROR_DISK_FULL, 0, 0));
	/* Now it holds nothing: ClearError is handed out. */
	EXPECT_EQ(POLLIN, vdi_poll1(s->cdev[0], POLLIN, 0) & POLLIN);
	ASSERT_EQ(1, vdi_get(s->cdev[0], &ce, 1, 0));
	EXPECT_EQ((__u32)VDI_VDC_CLEAR_ERROR, ce.code);
	/* Not active again before the ClearError completes. */
	EXPECT_EQ(-EIO, vdi_send1(s->sdev[0], 62, VDI_VDC_WRITE, 512, 0, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], ce.tag, 0, 0, 0));
	EXPECT_EQ(1, vdi_send1(s->sdev[0], 63, VDI_VDC_WRITE, 512, 0, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &ce, 1, 0));
	EXPECT_EQ((__u32)VDI_VDC_WRITE, ce.code);
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], ce.tag, 0, 512, 0));
	/* The agent saw 1, 2, 3, the ClearError and 63; no refused send. */
	n = vdi_wait_n(s->sset, cpl, 8, 300, NULL);
	ASSERT_EQ(5, n);
	EXPECT_EQ((__u32)T_ERROR_DISK_FULL, vdi_find_cookie(cpl, n, 1)->completion_code);
	EXPECT_EQ(0U, vdi_find_cookie(cpl, n, 2)->completion_code);
	EXPECT_EQ((__u32)T_ERROR_DISK_FULL, vdi_find_cookie(cpl, n, 3)->completion_code);
	EXPECT_EQ(0U, vdi_find_cookie(cpl, n, 60)->completion_code);
	EXPECT_EQ((__u32)VDI_VDC_CLEAR_ERROR, vdi_find_cookie(cpl, n, 60)->code);
	EXPECT_NE(NULL, vdi_find_cookie(cpl, n, 63));
	EXPECT_EQ(NULL, vdi_find_cookie(cpl, n, 50));
	EXPECT_EQ(NULL, vdi_find_cookie(cpl, n, 61));
}

TEST_F(two, clear_error_failing_keeps_io_error)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_completion cpl[4];

	ASSERT_EQ(1, vdi_send1(s->sdev[1], 1, VDI_VDC_READ, 512, 0, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[1], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[1], cmd.tag, 1104, 0, 0));
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 2, VDI_VDC_CLEAR_ERROR, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[1], &cmd, 1, 0));
	EXPECT_EQ((__u32)VDI_VDC_CLEAR_ERROR, cmd.code);
	ASSERT_EQ(1, vdi_complete1(s->cdev[1], cmd.tag, 50, 0, 0));
	EXPECT_EQ(-EIO, vdi_send1(s->sdev[1], 3, VDI_VDC_READ, 512, 0, 0));
	/* A second ClearError, completed with success, recovers. */
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 4, VDI_VDC_CLEAR_ERROR, 0, 0,
			       VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[1], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[1], cmd.tag, 0, 0, 0));
	EXPECT_EQ(1, vdi_send1(s->sdev[1], 5, VDI_VDC_READ, 512, 0, 0));
	ASSERT_EQ(3, vdi_wait_n(s->sset, cpl, 3, 1000, NULL));
	EXPECT_EQ(50U, vdi_find_cookie(cpl, 3, 2)->completion_code);
	EXPECT_EQ(1U, vdi_find_cookie(cpl, 3, 4)->device_index);
}

/* ------------------------------------------------------------------ */
/* poll()                                                             */

TEST(poll_client_set_when_config_is_final)
{
	char name[VDI_NAME_MAX];
	struct vdi_end_config e = { .area_size = 4096 };
	struct vdi_waiter w;
	int64_t t0;
	int c, s;

	vdi_make_name(name, "pcs");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	EXPECT_EQ(0, vdi_poll1(c, POLLIN, 0));
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	EXPECT_EQ(0, vdi_poll1(c, POLLIN, 0));
	EXPECT_EQ(0, vdi_poll1(s, POLLIN, 0));
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(0, vdi_poll1(c, POLLIN, 0));
	/* A poll() blocked on the client set wakes at END_CONFIG. */
	ASSERT_EQ(0, vdi_waiter_start_delayed(&w, 150, s, VDI_IOC_END_CONFIG, &e));
	t0 = vdi_now_ms();
	EXPECT_EQ(POLLIN, vdi_poll1(c, POLLIN, 5000) & (POLLIN | POLLERR));
	EXPECT_GT(150 + VDI_PROMPT_MS, vdi_now_ms() - t0);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(0, w.ret);
	EXPECT_EQ(0, vdi_get_config(c, 0, NULL));
	close(s);
	close(c);
}

TEST_F(one, poll_client_device)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_waiter w;
	struct vdi_send snd = { .cookie = 1, .code = T_VDC_FLUSH,
				.buf_offset = VDI_NO_BUFFER };
	struct vdi_batch b;
	int64_t t0;

	EXPECT_EQ(0, vdi_poll1(s->cdev[0], POLLIN, 0));
	vdi_batch_init(&b, &snd, 1, 0);
	ASSERT_EQ(0, vdi_waiter_start_delayed(&w, 150, s->sdev[0], VDI_IOC_SEND, &b));
	t0 = vdi_now_ms();
	EXPECT_EQ(POLLIN, vdi_poll1(s->cdev[0], POLLIN, 5000));
	EXPECT_GT(150 + VDI_PROMPT_MS, vdi_now_ms() - t0);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	ASSERT_EQ(1, w.ret);
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	EXPECT_EQ(0, vdi_poll1(s->cdev[0], POLLIN, 0));
	/* Closed with one still queued: readable, not yet hung up. */
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(0, vdi_close_device(s->sdev[0]));
	EXPECT_EQ(POLLIN, vdi_poll1(s->cdev[0], POLLIN, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	/* Closed and drained: readable and hung up. */
	EXPECT_EQ(POLLIN | POLLHUP, vdi_poll1(s->cdev[0], POLLIN, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s->cdev[0], &cmd, 1, 0));
}

TEST_F(depth, poll_server_device_room)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_completion cpl;
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t0;

	EXPECT_EQ(POLLOUT, vdi_poll1(s->sdev[0], POLLOUT, 0));
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(1, vdi_send1(s->sdev[0], i, T_VDC_FLUSH, 0, 0,
				       VDI_NO_BUFFER));
	}
	EXPECT_EQ(0, vdi_poll1(s->sdev[0], POLLOUT, 0));
	EXPECT_EQ(POLLOUT, vdi_poll1(s->sdev[1], POLLOUT, 0));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd.tag, 0, 0, 0));
	EXPECT_EQ(0, vdi_poll1(s->sdev[0], POLLOUT, 0));
	/* The agent reading a completion wakes a blocked poll. */
	vdi_batch_init(&b, &cpl, 1, 0);
	ASSERT_EQ(0, vdi_waiter_start_delayed(&w, 150, s->sset,
					      VDI_IOC_WAIT_COMPLETIONS, &b));
	t0 = vdi_now_ms();
	EXPECT_EQ(POLLOUT, vdi_poll1(s->sdev[0], POLLOUT, 5000));
	EXPECT_GT(150 + VDI_PROMPT_MS, vdi_now_ms() - t0);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(1, w.ret);
	/* Closed: hung up, no more room to offer. */
	ASSERT_EQ(0, vdi_close_device(s->sdev[1]));
	EXPECT_EQ(POLLHUP, vdi_poll1(s->sdev[1], POLLOUT, 0));
}

TEST_F(one, poll_server_set_completions_and_done)
{
	struct vdi_sess *s = &self->s;
	struct vdi_command cmd;
	struct vdi_completion cpl;
	struct vdi_done done;
	struct vdi_waiter w;
	struct vdi_batch b;
	int64_t t0;

	EXPECT_EQ(0, vdi_poll1(s->sset, POLLIN, 0));
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	EXPECT_EQ(0, vdi_poll1(s->sset, POLLIN, 0));
	done = (struct vdi_done){ .tag = cmd.tag };
	vdi_batch_init(&b, &done, 1, 0);
	ASSERT_EQ(0, vdi_waiter_start_delayed(&w, 150, s->cdev[0],
					      VDI_IOC_COMPLETE, &b));
	t0 = vdi_now_ms();
	EXPECT_EQ(POLLIN, vdi_poll1(s->sset, POLLIN, 5000));
	EXPECT_GT(150 + VDI_PROMPT_MS, vdi_now_ms() - t0);
	ASSERT_TRUE(vdi_waiter_done(&w, 5000));
	EXPECT_EQ(1, w.ret);
	ASSERT_EQ(1, vdi_wait(s->sset, &cpl, 1, 0));
	EXPECT_EQ(0, vdi_poll1(s->sset, POLLIN, 0));
	/* The normal end: readable and hung up. */
	ASSERT_EQ(0, vdi_close_device(s->sdev[0]));
	EXPECT_EQ(POLLIN | POLLHUP, vdi_poll1(s->sset, POLLIN, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s->sset, &cpl, 1, 0));
}

/* ------------------------------------------------------------------ */
/* the buffer area                                                    */

TEST(mmap_bounds_and_flags)
{
	struct vdi_sess_opts o = { .area = 4 * VDI_PAGE, .no_map = true };
	struct vdi_sess s;
	uint8_t *p;
	void *q;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	ASSERT_EQ(4 * VDI_PAGE, s.area);
	for (int k = 0; k < 2; k++) {
		int fd = k ? s.sset : s.cset;

		p = vdi_map(fd, 4 * VDI_PAGE, 0);
		ASSERT_NE(NULL, p);
		munmap(p, 4 * VDI_PAGE);
		p = vdi_map(fd, 3 * VDI_PAGE, VDI_PAGE);
		ASSERT_NE(NULL, p);
		munmap(p, 3 * VDI_PAGE);
		errno = 0;
		EXPECT_EQ(NULL, vdi_map(fd, VDI_PAGE, 4 * VDI_PAGE));
		EXPECT_EQ(EINVAL, errno);
		errno = 0;
		EXPECT_EQ(NULL, vdi_map(fd, 5 * VDI_PAGE, 0));
		EXPECT_EQ(EINVAL, errno);
		errno = 0;
		EXPECT_EQ(NULL, vdi_map(fd, 2 * VDI_PAGE, 3 * VDI_PAGE));
		EXPECT_EQ(EINVAL, errno);
		errno = 0;
		EXPECT_EQ(NULL, vdi_map(fd, VDI_PAGE, (off_t)1 << 40));
		EXPECT_EQ(EINVAL, errno);
		/* MAP_SHARED is required. */
		errno = 0;
		q = mmap(NULL, VDI_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			 fd, 0);
		EXPECT_EQ(MAP_FAILED, q);
		EXPECT_EQ(EINVAL, errno);
		errno = 0;
		q = mmap(NULL, VDI_PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		EXPECT_EQ(MAP_FAILED, q);
		EXPECT_EQ(EINVAL, errno);
	}
	vdi_sess_close(&s);
}

TEST(mmap_before_end_config_fails)
{
	char name[VDI_NAME_MAX];
	int c, s;

	vdi_make_name(name, "mbe");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	errno = 0;
	EXPECT_EQ(NULL, vdi_map(c, VDI_PAGE, 0));
	EXPECT_EQ(EPROTO, errno);
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	errno = 0;
	EXPECT_EQ(NULL, vdi_map(s, VDI_PAGE, 0));
	EXPECT_EQ(EPROTO, errno);
	ASSERT_EQ(0, vdi_end_config(s, VDI_PAGE));
	/* Ready: both sides can map it now. */
	EXPECT_NE(NULL, vdi_map(s, VDI_PAGE, 0));
	EXPECT_NE(NULL, vdi_map(c, VDI_PAGE, 0));
	close(s);
	close(c);
}

TEST(mmap_zeroed_shared_and_offset_mappings)
{
	struct vdi_sess_opts o = { .area = 3 * VDI_PAGE + 100, .no_map = true };
	struct vdi_sess s;
	uint8_t *a, *b, *tail;
	size_t i;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	ASSERT_EQ(4 * VDI_PAGE, s.area);	/* rounded up to pages */
	a = vdi_map(s.sset, 4 * VDI_PAGE, 0);
	b = vdi_map(s.cset, 4 * VDI_PAGE, 0);
	tail = vdi_map(s.cset, VDI_PAGE, 3 * VDI_PAGE);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, tail);
	for (i = 0; i < 4 * VDI_PAGE; i++) {
		if (a[i])
			break;
	}
	EXPECT_EQ(4 * VDI_PAGE, i);		/* zeroed */
	vdi_fill(a, 4 * VDI_PAGE, 123, 1);
	EXPECT_TRUE(vdi_check(b, 4 * VDI_PAGE, 123, 1));
	EXPECT_EQ(0, memcmp(tail, a + 3 * VDI_PAGE, VDI_PAGE));
	memset(tail + 10, 0xEE, 20);
	EXPECT_EQ(0xEE, a[3 * VDI_PAGE + 10]);
	EXPECT_EQ(0xEE, b[3 * VDI_PAGE + 29]);
	munmap(a, 4 * VDI_PAGE);
	munmap(b, 4 * VDI_PAGE);
	munmap(tail, VDI_PAGE);
	vdi_sess_close(&s);
}

TEST(mmap_stays_valid_after_the_fds_are_closed)
{
	struct vdi_sess_opts o = { .area = 2 * VDI_PAGE, .no_map = true };
	struct vdi_sess s;
	uint8_t *a, *b;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	a = vdi_map(s.sset, 2 * VDI_PAGE, 0);
	b = vdi_map(s.cset, 2 * VDI_PAGE, 0);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	vdi_fill(a, 2 * VDI_PAGE, 9, 3);
	vdi_sess_close(&s);		/* every fd closed */
	/* Both mappings still work, and still share the same pages. */
	EXPECT_TRUE(vdi_check(b, 2 * VDI_PAGE, 9, 3));
	vdi_fill(b, 2 * VDI_PAGE, 10, 4);
	EXPECT_TRUE(vdi_check(a, 2 * VDI_PAGE, 10, 4));
	munmap(a, 2 * VDI_PAGE);
	EXPECT_TRUE(vdi_check(b, 2 * VDI_PAGE, 10, 4));
	munmap(b, 2 * VDI_PAGE);
}

/*
 * A child forked by a process that maps the area gets no mapping of it: the
 * area's pages are not the child's to keep alive, nor to scribble on, and a
 * backup client that forks a helper must not hand it the set's memory.
 */
TEST(mmap_is_not_inherited_by_fork)
{
	struct vdi_sess_opts o = { .area = 2 * VDI_PAGE, .no_map = true };
	struct vdi_sess s;
	uint8_t *a;
	int status;
	pid_t pid;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	a = vdi_map(s.cset, 2 * VDI_PAGE, 0);
	ASSERT_NE(NULL, a);
	a[0] = 1;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)	/* msync() of an unmapped range: ENOMEM */
		_exit(msync(a, 2 * VDI_PAGE, MS_ASYNC) == -1 && errno == ENOMEM ?
		      0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));	/* 1: the child had the area */
	EXPECT_EQ(1, a[0]);			/* the parent keeps it */
	munmap(a, 2 * VDI_PAGE);
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* two processes                                                      */

#define X_MAXLOG 1024

struct xent {
	uint32_t dev;
	uint32_t pad;
	struct vdi_command c;
};

struct xshared {
	char name[VDI_NAME_MAX];
	unsigned int ndev;
	int mode;			/* X_DATA or X_CODES */
	int reverse;			/* client completes batches backwards */
	unsigned int batch;		/* client GET count */
	unsigned int rounds;
	struct vdi_config ccfg;
	int nsent, nrecv;
	struct xent sent[X_MAXLOG];	/* by the server, in send order */
	struct xent recv[X_MAXLOG];	/* by the client, in receive order */
	int bad_payload;		/* Write bytes the client found wrong */
	int bad_read;			/* Read bytes the server found wrong */
	int completions;
};

enum { X_DATA, X_CODES };

#define SALT_W 0xA5
#define SALT_R 0x5A

/* The client: create, wait for the config, serve commands until the end. */
static int x_client(struct vdi_chan *ch, void *arg)
{
	struct xshared *x = arg;
	struct vdi_command cmd[64];
	struct vdi_done done[64];
	int set, dev[VDI_SESS_MAXDEV];
	bool shut[VDI_SESS_MAXDEV] = { false };
	unsigned int nshut = 0, i;
	uint8_t *map = NULL;
	int64_t end;

	set = vdi_create_set(x->name, x->ndev, 0);
	CK(set >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_get_config(set, 10000, &x->ccfg));
	for (i = 0; i < x->ndev; i++) {
		char dn[VDI_NAME_MAX];
		uint32_t idx;

		vdi_dev_name(dn, x->name, i);
		dev[i] = vdi_open_device(set, dn, 0, &idx);
		CK(dev[i] >= 0);
		CKEQ(i, idx);
	}
	map = vdi_map(set, x->ccfg.buffer_area_size, 0);
	CK(map != NULL);

	end = vdi_now_ms() + 15000;
	while (nshut < x->ndev) {
		CK(vdi_now_ms() < end);
		for (i = 0; i < x->ndev; i++) {
			int r, k;

			if (shut[i])
				continue;
			r = vdi_get(dev[i], cmd, x->batch, 10);
			if (r == -ETIMEDOUT)
				continue;
			if (r == -ESHUTDOWN) {
				shut[i] = true;
				nshut++;
				continue;
			}
			CK(r > 0);
			for (k = 0; k < r; k++) {
				struct vdi_command *c = &cmd[k];
				struct vdi_done *d = &done[x->reverse ? r - 1 - k : k];

				CK(x->nrecv < X_MAXLOG);
				x->recv[x->nrecv].dev = i;
				x->recv[x->nrecv].c = *c;
				x->nrecv++;
				*d = (struct vdi_done){ .tag = c->tag };
				if (c->code == VDI_VDC_WRITE) {
					bool ok = vdi_check(map + c->buf_offset,
							    c->size, c->position,
							    SALT_W);
					if (!ok)
						x->bad_payload++;
					d->completion_code = ok ? 0 : T_ERROR_INVALID_DATA;
					d->bytes_transferred = c->size;
					d->position = c->position + c->size;
				} else if (c->code == VDI_VDC_READ) {
					vdi_fill(map + c->buf_offset, c->size,
						 c->position, SALT_R);
					d->bytes_transferred = c->size;
					d->position = c->position + c->size;
				} else {
					d->position = c->position + 1000 + c->code;
				}
			}
			CKEQ(r, vdi_complete(dev[i], done, r));
		}
	}
	munmap(map, x->ccfg.buffer_area_size);
	for (i = 0; i < x->ndev; i++)
		close(dev[i]);
	close(set);
	return 0;
}

/* The server: open by name, configure, send rounds, check, end normally. */
static int x_server(struct vdi_chan *ch, void *arg)
{
	struct xshared *x = arg;
	struct vdi_send snd[VDI_SESS_MAXDEV][32];
	struct vdi_completion cpl[64];
	unsigned int nsnd[VDI_SESS_MAXDEV];
	int set, dev[VDI_SESS_MAXDEV], total, got, err;
	const size_t area = 1 << 20;
	struct vdi_config cfg;
	uint8_t *map;
	unsigned int i, r;

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	set = vdi_open_server(x->name);
	CK(set >= 0);
	CKEQ(0, vdi_get_config(set, 0, &cfg));
	CKEQ(x->ndev, cfg.device_count);
	CKEQ(0, vdi_begin_config(set, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
				 0, 4096, 65536, 0));
	CKEQ(0, vdi_end_config(set, area));
	for (i = 0; i < x->ndev; i++) {
		char dn[VDI_NAME_MAX];
		uint32_t idx;

		vdi_dev_name(dn, x->name, i);
		dev[i] = vdi_open_device(set, dn, 0, &idx);
		CK(dev[i] >= 0);
		CKEQ(i, idx);
	}
	map = vdi_map(set, area, 0);
	CK(map != NULL);

	for (r = 0; r < x->rounds; r++) {
		memset(nsnd, 0, sizeof(nsnd));
		total = 0;
		if (x->mode == X_DATA) {
			/* 16 buffers of 64 KiB; writes and reads mixed. */
			for (i = 0; i < 16; i++) {
				unsigned int d = i % x->ndev;
				struct vdi_send *e = &snd[d][nsnd[d]++];

				e->cookie = ((uint64_t)r << 32) | i;
				e->code = (i / 2) % 2 ? VDI_VDC_READ : VDI_VDC_WRITE;
				e->size = 4096 * (1 + (i + r) % 16);
				e->position = (int64_t)r * 100000000 + i * 65536;
				e->buf_offset = (uint64_t)i * 65536;
				if (e->code == VDI_VDC_WRITE)
					vdi_fill(map + e->buf_offset, e->size,
						 e->position, SALT_W);
				else
					memset(map + e->buf_offset, 0, e->size);
			}
		} else {
			for (i = 0; i < x->ndev * VDI_VDC_MAX; i++) {
				unsigned int d = i % x->ndev;
				uint32_t code = 1 + i / x->ndev;
				struct vdi_send *e = &snd[d][nsnd[d]++];

				e->cookie = ((uint64_t)r << 32) | (d << 16) | code;
				e->code = code;
				e->position = (int64_t)(r * 1000 + d * 100 + code);
				if (code <= 2) {
					e->size = 4096;
					e->buf_offset = (uint64_t)(d * 2 + code - 1) * 65536;
					if (code == VDI_VDC_WRITE)
						vdi_fill(map + e->buf_offset, 4096,
							 e->position, SALT_W);
				} else {
					e->size = code;
					e->buf_offset = VDI_NO_BUFFER;
				}
			}
		}
		for (i = 0; i < x->ndev; i++) {
			/* Record, then send in one batch per device. */
			for (unsigned int k = 0; k < nsnd[i]; k++) {
				CK(x->nsent < X_MAXLOG);
				x->sent[x->nsent].dev = i;
				x->sent[x->nsent].c = (struct vdi_command){
					.code = snd[i][k].code,
					.size = snd[i][k].size,
					.position = snd[i][k].position,
					.buf_offset = snd[i][k].buf_offset,
				};
				x->nsent++;
			}
			CKEQ(nsnd[i], vdi_send(dev[i], snd[i], nsnd[i]));
			total += nsnd[i];
		}
		got = vdi_wait_n(set, cpl, total, 10000, &err);
		CKEQ(total, got);
		x->completions += got;
		for (i = 0; i < (unsigned int)got; i++) {
			const struct vdi_completion *c = &cpl[i];
			unsigned int d = c->device_index;
			const struct vdi_send *e = NULL;

			CK(d < x->ndev);
			for (unsigned int k = 0; k < nsnd[d]; k++)
				if (snd[d][k].cookie == c->cookie)
					e = &snd[d][k];
			CK(e != NULL);
			CKEQ(0, c->completion_code);
			CKEQ(e->code, c->code);
			if (e->code <= 2) {
				CKEQ(e->size, c->bytes_transferred);
				CKEQ(e->position + e->size, c->position);
			} else {
				CKEQ(0, c->bytes_transferred);
				CKEQ(e->position + 1000 + e->code, c->position);
			}
			if (e->code == VDI_VDC_READ &&
			    !vdi_check(map + e->buf_offset, e->size, e->position,
				       SALT_R))
				x->bad_read++;
		}
	}
	/* The normal end. */
	for (i = 0; i < x->ndev; i++) {
		CKEQ(0, vdi_close_device(dev[i]));
		CKEQ(-ESHUTDOWN, vdi_close_device(dev[i]));
	}
	CKEQ(-ESHUTDOWN, vdi_wait(set, cpl, 4, 10000));
	munmap(map, area);
	for (i = 0; i < x->ndev; i++)
		close(dev[i]);
	close(set);
	return 0;
}

FIXTURE(xproc) {
	struct vdi_proc p;
	struct xshared *x;
};

FIXTURE_SETUP(xproc)
{
	self->p.pid = -1;
	self->x = vdi_shared(sizeof(*self->x));
	ASSERT_NE(NULL, self->x);
	vdi_make_name(self->x->name, "xp");
}

FIXTURE_TEARDOWN(xproc)
{
	vdi_proc_kill(&self->p);
	if (self->x)
		munmap(self->x, sizeof(*self->x));
}

/* The client and the server saw the same commands, per device in order. */
static void x_check_logs(struct __test_metadata *_metadata,
			 const struct xshared *x)
{
	ASSERT_EQ(x->nsent, x->nrecv);
	for (unsigned int d = 0; d < x->ndev; d++) {
		int si = 0, ri = 0;

		for (;;) {
			while (si < x->nsent && x->sent[si].dev != d)
				si++;
			while (ri < x->nrecv && x->recv[ri].dev != d)
				ri++;
			if (si == x->nsent || ri == x->nrecv)
				break;
			EXPECT_EQ(x->sent[si].c.code, x->recv[ri].c.code);
			EXPECT_EQ(x->sent[si].c.size, x->recv[ri].c.size);
			EXPECT_EQ(x->sent[si].c.position, x->recv[ri].c.position)
				TH_LOG("device %u: FIFO order broken", d);
			EXPECT_EQ(x->sent[si].c.buf_offset,
				  x->recv[ri].c.buf_offset);
			si++;
			ri++;
		}
		EXPECT_EQ(x->nsent, si);
		EXPECT_EQ(x->nrecv, ri);
	}
	EXPECT_EQ(0, x->bad_payload);
	EXPECT_EQ(0, x->bad_read);
}

TEST_F(xproc, server_parent_client_child_data_both_ways)
{
	struct xshared *x = self->x;

	x->ndev = 2;
	x->mode = X_DATA;
	x->batch = 3;
	x->rounds = 4;
	ASSERT_EQ(0, vdi_spawn(&self->p, x_client, x));
	ASSERT_EQ(0, x_server(&self->p.ch, x));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
	EXPECT_EQ(64, x->completions);
	x_check_logs(_metadata, x);
	EXPECT_EQ(2U, x->ccfg.device_count);
	EXPECT_EQ(4096U, x->ccfg.block_size);
	EXPECT_EQ(1U << 20, x->ccfg.buffer_area_size);
}

TEST_F(xproc, client_parent_server_child_data_both_ways)
{
	struct xshared *x = self->x;

	x->ndev = 3;
	x->mode = X_DATA;
	x->batch = 16;
	x->reverse = 1;
	x->rounds = 3;
	ASSERT_EQ(0, vdi_spawn(&self->p, x_server, x));
	ASSERT_EQ(0, x_client(&self->p.ch, x));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
	EXPECT_EQ(48, x->completions);
	x_check_logs(_metadata, x);
}

TEST_F(xproc, every_code_fifo_and_out_of_order_completion)
{
	struct xshared *x = self->x;

	x->ndev = 2;
	x->mode = X_CODES;
	x->batch = 7;
	x->reverse = 1;
	x->rounds = 2;
	ASSERT_EQ(0, vdi_spawn(&self->p, x_client, x));
	ASSERT_EQ(0, x_server(&self->p.ch, x));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
	EXPECT_EQ(2 * 2 * VDI_VDC_MAX, x->completions);
	x_check_logs(_metadata, x);
}

/* ------------------------------------------------------------------ */
/* many commands, many threads, two processes                         */

#define ST_NDEV		4
#define ST_PER_DEV	250
#define ST_DEPTH	8

struct stshared {
	char name[VDI_NAME_MAX];
	int fifo_errors;
	int other_errors;
	int done_threads;
};

struct st_thread {
	struct stshared *x;
	int dev;
	int ret;
};

static void *st_client_thread(void *p)
{
	struct st_thread *t = p;
	struct vdi_command cmd[4];
	struct vdi_done done[4];
	int64_t expect = 0, end = vdi_now_ms() + 18000;

	while (vdi_now_ms() < end) {
		int r = vdi_get(t->dev, cmd, 4, 20);

		if (r == -ETIMEDOUT)
			continue;
		if (r == -ESHUTDOWN) {
			if (expect != ST_PER_DEV)
				__atomic_add_fetch(&t->x->other_errors, 1,
						   __ATOMIC_RELAXED);
			__atomic_add_fetch(&t->x->done_threads, 1,
					   __ATOMIC_RELAXED);
			return NULL;
		}
		if (r <= 0) {
			t->ret = r;
			break;
		}
		for (int k = 0; k < r; k++) {
			if (cmd[k].position != expect++)
				__atomic_add_fetch(&t->x->fifo_errors, 1,
						   __ATOMIC_RELAXED);
			done[r - 1 - k] = (struct vdi_done){
				.tag = cmd[k].tag, .position = -cmd[k].position,
			};
		}
		if (vdi_complete(t->dev, done, r) != r)
			__atomic_add_fetch(&t->x->other_errors, 1,
					   __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&t->x->other_errors, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* The client: one thread per device. */
static int st_client(struct vdi_chan *ch, void *arg)
{
	struct stshared *x = arg;
	struct st_thread t[ST_NDEV];
	pthread_t th[ST_NDEV];
	int set, i;

	set = vdi_create_set(x->name, ST_NDEV, 0);
	CK(set >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_get_config(set, 10000, NULL));
	for (i = 0; i < ST_NDEV; i++) {
		char dn[VDI_NAME_MAX];
		uint32_t idx;

		vdi_dev_name(dn, x->name, i);
		t[i] = (struct st_thread){ .x = x };
		t[i].dev = vdi_open_device(set, dn, 0, &idx);
		CK(t[i].dev >= 0);
		CK(pthread_create(&th[i], NULL, st_client_thread, &t[i]) == 0);
	}
	for (i = 0; i < ST_NDEV; i++) {
		pthread_join(th[i], NULL);
		CKEQ(0, t[i].ret);
		close(t[i].dev);
	}
	close(set);
	return 0;
}

struct st_agent {
	int set;
	uint8_t seen[ST_NDEV][ST_PER_DEV];
	int total, bad, end_err;
};

static void *st_agent_main(void *p)
{
	struct st_agent *a = p;
	struct vdi_completion cpl[64];
	int64_t end = vdi_now_ms() + 18000;

	while (vdi_now_ms() < end) {
		int r = vdi_wait(a->set, cpl, 64, 200);

		if (r == -ETIMEDOUT)
			continue;
		if (r < 0) {
			a->end_err = r;
			return NULL;
		}
		for (int i = 0; i < r; i++) {
			uint32_t d = cpl[i].cookie >> 32;
			uint32_t n = (uint32_t)cpl[i].cookie;

			if (d >= ST_NDEV || n >= ST_PER_DEV ||
			    cpl[i].device_index != d || cpl[i].completion_code ||
			    cpl[i].position != -(int64_t)n) {
				a->bad++;
				continue;
			}
			a->seen[d][n]++;
			__atomic_add_fetch(&a->total, 1, __ATOMIC_RELEASE);
		}
	}
	a->end_err = -ETIME;
	return NULL;
}

TEST_F_TIMEOUT(xproc, stress_four_devices_many_threads, 60)
{
	struct stshared *x = vdi_shared(sizeof(*x));
	struct vdi_sess s;
	struct st_agent *a = calloc(1, sizeof(*a));
	struct pollfd pfd[ST_NDEV];
	int sent[ST_NDEV] = { 0 };
	pthread_t agent;
	int64_t end;
	int i, all = ST_NDEV * ST_PER_DEV, nsent = 0;

	ASSERT_NE(NULL, x);
	ASSERT_NE(NULL, a);
	vdi_sess_init(&s);
	memcpy(x->name, self->x->name, sizeof(x->name));
	ASSERT_EQ(0, vdi_spawn(&self->p, st_client, x));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 10000));
	s.sset = vdi_open_server(x->name);
	ASSERT_LE(0, s.sset);
	ASSERT_EQ(0, vdi_begin_config(s.sset, VDI_VDF_WRITE_MEDIA, 0, 512, 65536,
				      ST_DEPTH));
	ASSERT_EQ(0, vdi_end_config(s.sset, 0));
	for (i = 0; i < ST_NDEV; i++) {
		char dn[VDI_NAME_MAX];
		uint32_t idx;

		vdi_dev_name(dn, x->name, i);
		s.sdev[i] = vdi_open_device(s.sset, dn, 0, &idx);
		ASSERT_LE(0, s.sdev[i]);
	}
	a->set = s.sset;
	ASSERT_EQ(0, pthread_create(&agent, NULL, st_agent_main, a));

	/* Send everything, as fast as the queues take it. */
	end = vdi_now_ms() + 20000;
	while (nsent < all && vdi_now_ms() < end) {
		for (i = 0; i < ST_NDEV; i++) {
			struct vdi_send snd[ST_DEPTH];
			int k, r, n = 0;

			for (k = sent[i]; k < ST_PER_DEV && n < ST_DEPTH; k++, n++)
				snd[n] = (struct vdi_send){
					.cookie = ((uint64_t)i << 32) | k,
					.code = T_VDC_FLUSH, .position = k,
					.buf_offset = VDI_NO_BUFFER,
				};
			if (!n)
				continue;
			r = vdi_send(s.sdev[i], snd, n);
			if (r == -ENOBUFS)
				continue;
			ASSERT_LT(0, r) TH_LOG("SEND on %d: %d", i, r);
			sent[i] += r;
			nsent += r;
		}
		for (i = 0; i < ST_NDEV; i++)
			pfd[i] = (struct pollfd){ .fd = s.sdev[i],
						  .events = sent[i] < ST_PER_DEV ?
							    POLLOUT : 0 };
		poll(pfd, ST_NDEV, 100);
	}
	ASSERT_EQ(all, nsent);
	/* Every completion arrives, then the normal end. */
	while (__atomic_load_n(&a->total, __ATOMIC_ACQUIRE) < all &&
	       vdi_now_ms() < end && !a->end_err)
		vdi_sleep_ms(10);
	for (i = 0; i < ST_NDEV; i++) {
		EXPECT_EQ(0, vdi_close_device(s.sdev[i]));
	}
	pthread_join(agent, NULL);
	EXPECT_EQ(-ESHUTDOWN, a->end_err);
	EXPECT_EQ(all, a->total);
	EXPECT_EQ(0, a->bad);
	for (i = 0; i < ST_NDEV; i++) {
		for (int k = 0; k < ST_PER_DEV; k++) {
			EXPECT_EQ(1, a->seen[i][k]) TH_LOG("device %d command %d", i, k);
			if (a->seen[i][k] != 1)
				break;
		}
	}
	EXPECT_EQ(0, vdi_reap(&self->p, 10000));
	EXPECT_EQ(0, x->fifo_errors);
	EXPECT_EQ(0, x->other_errors);
	EXPECT_EQ(ST_NDEV, x->done_threads);
	vdi_sess_close(&s);
	free(a);
	munmap(x, sizeof(*x));
}

TEST_HARNESS_MAIN
