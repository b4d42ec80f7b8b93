// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi, server role: every method and each code docs/LIBRARY.md gives it
 * (Open, GetConfiguration, BeginConfiguration, RequestBuffers,
 * QueryAvailableBuffers, EndConfiguration, OpenDevice, AllocateBuffer,
 * FreeBuffer, IsSharedBuffer, SignalAbort, Close, CloseDevice), and the
 * buffer rules (summing, default area, alignment, prefix zone).  The server
 * is this process; the client is a child process (lt_rc_main).
 */
#include "lib_test_util.h"

#include <sys/resource.h>

#define WR_RD		(VDF_WriteMedia | VDF_ReadMedia)

static bool aligned(const void *p, uint32_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

/* ------------------------------------------------------------------ */
/* Open                                                                */

TEST(open_codes)
{
	char longname[200];
	vdi_server_set *s = NULL, *s2 = NULL;
	struct lt_pair p;

	ASSERT_EQ(0, lt_pair_spawn(&p, "open"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));

	EXPECT_VD(VD_E_INVALID, vdi_server_open(&s, NULL, "lv-no-such-set"));
	EXPECT_TRUE(s == NULL);
	EXPECT_VD(VD_E_INVALID, vdi_server_open(&s, NULL, NULL));
	EXPECT_VD(VD_E_INVALID, vdi_server_open(NULL, NULL, p.name));
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	EXPECT_VD(VD_E_INVALID, vdi_server_open(&s, NULL, longname));
	EXPECT_VD(VD_E_INSTANCE_NAME, vdi_server_open(&s, "MSSQLSERVER",
						      p.name));
	EXPECT_TRUE(s == NULL);
	/* The default instance may be named NULL or "". */
	ASSERT_VD(NOERROR, vdi_server_open(&s, "", p.name));
	ASSERT_TRUE(s != NULL);
	/* One server per set. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_open(&s2, NULL, p.name));
	EXPECT_TRUE(s2 == NULL);
	EXPECT_VD(NOERROR, vdi_server_close(s));
	/* The server left before the normal end: the set is aborted. */
	EXPECT_VD(VD_E_ABORT, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 0,
					 NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_peer_finish(&p.rc, 5000));
}

TEST(open_aborted_set_is_abort)
{
	vdi_server_set *s = NULL;
	struct lt_pair p;

	ASSERT_EQ(0, lt_pair_spawn(&p, "openab"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_server_open(&s, NULL, p.name));
	EXPECT_TRUE(s == NULL);
	EXPECT_EQ(0, lt_peer_finish(&p.rc, 5000));
}

/* A server process running as nobody. */
static int nobody_server(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	vdi_server_set *s = NULL;
	struct lt_msg m;
	gid_t none[1] = { 65534 };
	int r;

	CK(setgroups(1, none) == 0);
	CK(setresgid(65534, 65534, 65534) == 0);
	CK(setresuid(65534, 65534, 65534) == 0);
	/* Told: 0 = expect VD_E_SECURITY, 1 = expect NOERROR. */
	CK(lt_recv(self, &m, 10000) == 0);
	r = vdi_server_open(&s, NULL, name);
	if (m.a[0] == 0) {
		CKEQ(VD_E_SECURITY, r);
		CK(s == NULL);
	} else {
		CKEQ(NOERROR, r);
		CKEQ(NOERROR, vdi_server_begin_configuration(s, VDF_WriteMedia,
							     0, 512, 65536, 0));
		vdi_server_close(s);
	}
	lt_send(self, &m);
	return 0;
}

TEST(open_denied_by_owner_and_mode_is_security)
{
	struct lt_peer nobody;
	struct lt_pair p;
	struct lt_msg m;
	int mode;

	for (mode = 0; mode < 2; mode++) {
		ASSERT_EQ(0, lt_pair_spawn(&p, "sec"));
		ASSERT_EQ(0, lt_spawn(&nobody, nobody_server, p.name));
		if (mode)	/* others may read and write */
			ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ACCESS, 0666,
						      -1, 0, 0, 0, NULL));
		ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
		lt_msg_init(&m, 0);
		m.a[0] = mode;
		ASSERT_EQ(0, lt_call(&nobody, &m, 10000));
		EXPECT_EQ(0, lt_reap(&nobody, 5000));
		lt_peer_kill(&nobody);
		EXPECT_EQ(0, lt_peer_finish(&p.rc, 5000));
	}
}

/* ------------------------------------------------------------------ */
/* GetConfiguration, BeginConfiguration                               */

TEST(get_configuration_follows_the_set)
{
	VDConfig c;
	struct lt_pair p;

	ASSERT_EQ(0, lt_pair_spawn(&p, "gcfg"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 3, VDF_LikeDisk | VDF_Discard,
					512, 4096, 7000));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	EXPECT_VD(VD_E_INVALID, vdi_server_get_configuration(p.set, NULL));
	EXPECT_VD(VD_E_INVALID, vdi_server_get_configuration(NULL, &c));

	/* Right after Open: the client's part, the rest still zero. */
	memset(&c, 0xff, sizeof(c));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	EXPECT_EQ(3U, c.deviceCount);
	EXPECT_EQ((uint32_t)(VDF_LikeDisk | VDF_Discard), c.features);
	EXPECT_EQ(512U, c.prefixZoneSize);
	EXPECT_EQ(4096U, c.alignment);
	EXPECT_EQ(7000U, c.serverTimeOut);
	EXPECT_EQ(0U, c.blockSize);
	EXPECT_EQ(0U, c.maxTransferSize);
	EXPECT_EQ(0U, c.bufferAreaSize);

	/* BeginConfiguration adds the server's part. */
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set,
			VDF_WriteMedia, 0, 1024, 131072, 1000));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	EXPECT_EQ((uint32_t)(VDF_LikeDisk | VDF_Discard | VDF_WriteMedia),
		  c.features);
	EXPECT_EQ(1024U, c.blockSize);
	EXPECT_EQ(4096U, c.alignment);	/* the larger of the two */
	EXPECT_EQ(131072U, c.maxTransferSize);
	EXPECT_EQ(4U, c.maxIODepth);
	EXPECT_EQ(0U, c.bufferAreaSize);

	/* EndConfiguration sizes the area. */
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	EXPECT_NE(0U, c.bufferAreaSize);
	EXPECT_EQ(0U, c.bufferAreaSize % 4096);

	/* After an abort (here by the client): VD_E_ABORT. */
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_server_get_configuration(p.set, &c));
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(begin_configuration_codes)
{
	VDConfig c;
	struct lt_pair p;
	vdi_server_set *s;

	ASSERT_EQ(0, lt_pair_spawn(&p, "begin"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	s = p.set;

	/* VD_E_INVALID: a value out of range. */
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(NULL, WR_RD,
							       0, 512, 65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, 0, 0, 512,
							       65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s,
			VDF_WriteMedia | VDF_Removable, 0, 512, 65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s,
			VDF_ReadMedia | VDF_CompleteEnabled, 0, 512, 65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 0,
							       256, 65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 0,
							       3000, 65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 0,
							       131072, 131072, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 256,
							       512, 65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 3072,
							       512, 65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD,
							       131072, 512,
							       65536, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 0,
							       512, 0, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 0,
							       512, 100000, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_begin_configuration(s, WR_RD, 0,
							       512, 8 << 20, 0));
	/* None of these changed the state: the set is still connected. */
	ASSERT_VD(NOERROR, vdi_server_get_configuration(s, &c));
	EXPECT_EQ(0U, c.blockSize);
	EXPECT_VD(NOERROR, vdi_server_set_queue_depth(s, 8));

	ASSERT_VD(NOERROR, vdi_server_begin_configuration(s, WR_RD, 4096, 512,
							  4 << 20, 1000));
	/* VD_E_PROTOCOL: not right after Open. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_begin_configuration(s, WR_RD, 0,
								512, 65536, 0));
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_set_queue_depth(s, 8));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(s));
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_begin_configuration(s, WR_RD, 0,
								512, 65536, 0));
	EXPECT_EQ(0, lt_pair_teardown(&p));

	/* VD_E_ABORT: the client aborted before the server configured. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "beginab"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_server_begin_configuration(p.set, WR_RD, 0,
							     512, 65536, 0));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(complete_enabled_only_when_requested)
{
	VDConfig c;
	struct lt_pair p;
	struct lt_msg m;

	ASSERT_EQ(0, lt_pair_spawn(&p, "cplt"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, VDF_RequestComplete, 0, 0,
					0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set,
			VDF_WriteMedia | VDF_CompleteEnabled, 0, 512, 65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	EXPECT_EQ((uint32_t)(VDF_RequestComplete | VDF_WriteMedia |
			     VDF_CompleteEnabled), c.features);
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 1000,
				      &m));
	EXPECT_EQ((int32_t)c.features, m.a[0]);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* RequestBuffers, QueryAvailableBuffers, EndConfiguration            */

TEST(request_buffers_codes)
{
	struct lt_pair p;
	vdi_server_set *s;

	ASSERT_EQ(0, lt_pair_spawn(&p, "req"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	s = p.set;
	/* VD_E_PROTOCOL before BeginConfiguration. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_request_buffers(s, 65536, 0, 2));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(s, WR_RD, 0, 512,
							  65536, 0));
	/* VD_E_INVALID */
	EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(NULL, 65536, 0, 2));
	EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(s, 0, 0, 2));
	EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(s, 65536, 0, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(s, 65536, 3, 2));
	EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(s, 65536, 6144, 2));
	/* NOERROR while configuring: summed. */
	EXPECT_VD(NOERROR, vdi_server_request_buffers(s, 65536, 0, 2));
	EXPECT_VD(NOERROR, vdi_server_request_buffers(s, 4096, 8192, 1));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(s));
	/* After EndConfiguration: whether they still fit. */
	EXPECT_VD(NOERROR, vdi_server_request_buffers(s, 65536, 0, 2));
	EXPECT_VD(NOERROR, vdi_server_request_buffers(s, 4096, 8192, 1));
	EXPECT_VD(VD_E_MEMORY, vdi_server_request_buffers(s, 65536, 0, 3));
	EXPECT_VD(VD_E_MEMORY, vdi_server_request_buffers(s, 1 << 20, 0, 1));
	EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(s, 65536, 0, 0));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(request_buffers_are_summed)
{
	uint8_t *big[3], *small[5], *extra = NULL;
	uint32_t area, worst;
	struct lt_pair p;
	VDConfig c;
	int i;

	ASSERT_EQ(0, lt_pair_spawn(&p, "sum"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 2, 0, 1000, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0,
							  512, 65536, 0));
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 65536, 0, 3));
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 4096, 4096, 5));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	area = c.bufferAreaSize;
	/* Each buffer: prefix zone + size + worst-case padding. */
	worst = 3 * (1000 + 65536 + 511) + 5 * (1000 + 4096 + 4095);
	EXPECT_LE(worst, area);
	EXPECT_GT(worst + 4096, area);	/* the sum, not the default area */
	/* Every buffer requested can be allocated, whatever the order. */
	for (i = 0; i < 5; i++) {
		ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &small[i],
							      4096, 4096));
		EXPECT_TRUE(aligned(small[i], 4096));
	}
	for (i = 0; i < 3; i++)
		ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &big[i],
							      65536, 0));
	EXPECT_VD(VD_E_MEMORY, vdi_server_allocate_buffer(p.set, &extra,
							  65536, 0));
	EXPECT_TRUE(extra == NULL);
	for (i = 0; i < 5; i++)
		EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, small[i], 4096));
	for (i = 0; i < 3; i++)
		EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, big[i], 65536));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(end_configuration_default_area)
{
	uint8_t *b[8];
	uint32_t n = 0;
	struct lt_pair p;
	VDConfig c;
	int i;

	/* Nothing requested: room for 4 transfers per device. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "defarea"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 2, 0, 512, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0,
							  512, 131072, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	EXPECT_LE(2U * 4 * (131072 + 512), c.bufferAreaSize);
	ASSERT_VD(NOERROR, vdi_server_query_available_buffers(p.set, 131072,
							      0, &n));
	EXPECT_LE(8U, n);
	for (i = 0; i < 8; i++)
		ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b[i],
							      131072, 0));
	for (i = 0; i < 8; i++)
		EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b[i], 131072));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(query_available_buffers_codes_and_counts)
{
	static const uint32_t sizes[][2] = {
		{ 65536, 0 }, { 4096, 0 }, { 1000, 4096 }, { 512, 16384 },
		{ 100000, 0 },
	};
	uint8_t *bufs[300];
	uint32_t n, before, k;
	struct lt_pair p;
	vdi_server_set *s;
	unsigned int i;

	ASSERT_EQ(0, lt_pair_spawn(&p, "query"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 64, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	s = p.set;
	/* VD_E_PROTOCOL before BeginConfiguration. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_query_available_buffers(s, 4096, 0,
								    &n));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(s, WR_RD, 0, 512,
							  65536, 0));
	/* VD_E_INVALID */
	EXPECT_VD(VD_E_INVALID, vdi_server_query_available_buffers(s, 0, 0,
								   &n));
	EXPECT_VD(VD_E_INVALID, vdi_server_query_available_buffers(s, 4096, 6,
								   &n));
	EXPECT_VD(VD_E_INVALID, vdi_server_query_available_buffers(s, 4096, 0,
								   NULL));
	EXPECT_VD(VD_E_INVALID, vdi_server_query_available_buffers(NULL, 4096,
								   0, &n));
	/* While configuring: no limit yet. */
	n = 0;
	EXPECT_VD(NOERROR, vdi_server_query_available_buffers(s, 4096, 0, &n));
	EXPECT_EQ(UINT32_MAX, n);
	ASSERT_VD(NOERROR, vdi_server_request_buffers(s, 65536, 0, 4));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(s));

	/* Afterwards: exactly how many more AllocateBuffer gives. */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t size = sizes[i][0], align = sizes[i][1];

		ASSERT_VD(NOERROR, vdi_server_query_available_buffers(s, size,
								      align,
								      &before));
		if (size == 65536)
			EXPECT_LE(4U, before);
		ASSERT_GT(300U, before);
		for (k = 0; k < before; k++) {
			ASSERT_VD(NOERROR, vdi_server_allocate_buffer(s,
				&bufs[k], size, align));
			ASSERT_VD(NOERROR, vdi_server_query_available_buffers(
				s, size, align, &n));
			EXPECT_EQ(before - k - 1, n);
		}
		EXPECT_VD(VD_E_MEMORY, vdi_server_allocate_buffer(s, &bufs[k],
								  size, align));
		EXPECT_VD(VD_E_MEMORY, vdi_server_request_buffers(s, size,
								  align, 1));
		for (k = 0; k < before; k++)
			EXPECT_VD(NOERROR, vdi_server_free_buffer(s, bufs[k],
								  size));
		/* Everything merged back. */
		ASSERT_VD(NOERROR, vdi_server_query_available_buffers(s, size,
								      align, &n));
		EXPECT_EQ(before, n);
		EXPECT_VD(NOERROR, vdi_server_request_buffers(s, size, align,
							      before));
	}
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(end_configuration_codes)
{
	struct lt_pair p;
	struct lt_msg m;

	ASSERT_EQ(0, lt_pair_spawn(&p, "end"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	EXPECT_VD(VD_E_INVALID, vdi_server_end_configuration(NULL));
	/* VD_E_PROTOCOL before BeginConfiguration. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	/* The client is still waiting for the configuration. */
	EXPECT_VD(VD_E_TIMEOUT, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 0,
					   NULL));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 0, &m));
	EXPECT_EQ(4, m.a[5]);
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_end_configuration(p.set));
	EXPECT_EQ(0, lt_pair_teardown(&p));

	/* VD_E_ABORT: aborted while configurable. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "endab"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_server_end_configuration(p.set));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(end_configuration_too_big_is_memory_then_retry_smaller)
{
	uint8_t *b = NULL;
	uint32_t n = 0;
	struct lt_pair p;
	struct lt_msg m;
	VDConfig c;
	int r;

	ASSERT_EQ(0, lt_pair_spawn(&p, "big"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  4 << 20, 0));
	/* 1.2 GiB: over the module's max_area_mb (1024). */
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 4 << 20, 0, 300));
	EXPECT_VD(VD_E_MEMORY, vdi_server_end_configuration(p.set));

	/* Still configurable: nothing changed for either side. */
	EXPECT_VD(NOERROR, vdi_server_query_available_buffers(p.set, 4096, 0,
							      &n));
	EXPECT_EQ(UINT32_MAX, n);
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_allocate_buffer(p.set, &b, 4096,
							    0));
	EXPECT_VD(VD_E_TIMEOUT, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 0,
					   NULL));
	EXPECT_VD(NOERROR, vdi_server_request_buffers(p.set, 65536, 0, 4));

	/* Retry with less. */
	r = vdi_server_end_configuration(p.set);
	EXPECT_EQ(NOERROR, r) {
		TH_LOG("retry: %s (%s); the request of the failed "
		       "EndConfiguration is still counted: a server cannot "
		       "lower its needs and retry", lt_code(r),
		       vdi_last_error());
	}
	if (r == NOERROR) {
		ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
		EXPECT_GT(64U << 20, c.bufferAreaSize);
		EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0,
					      1000, &m));
		EXPECT_EQ((int32_t)c.bufferAreaSize, m.a[4]);
		ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 65536,
							      0));
		EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b, 65536));
	}
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* OpenDevice, CloseDevice                                            */

TEST(open_device_codes)
{
	vdi_server_device *d0 = NULL, *d1 = NULL, *dx = NULL;
	char n1[LT_NAME_MAX];
	struct lt_pair p;

	ASSERT_EQ(0, lt_pair_spawn(&p, "odev"));
	lt_dev_name(n1, p.name, 1);
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 2, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	/* VD_E_PROTOCOL before EndConfiguration. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_open_device(p.set, p.name, &d0));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_open_device(p.set, p.name, &d0));
	EXPECT_TRUE(d0 == NULL);
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	/* The client names both devices first. */
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 1000,
				      NULL));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_OPEN, -1, 0, 0, 0, 0, NULL));

	EXPECT_VD(VD_E_INVALID, vdi_server_open_device(p.set, NULL, &d0));
	EXPECT_VD(VD_E_INVALID, vdi_server_open_device(p.set, p.name, NULL));
	ASSERT_VD(NOERROR, vdi_server_open_device(p.set, p.name, &d0));
	ASSERT_TRUE(d0 != NULL);
	/* VD_E_PROTOCOL: this device is already open. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_open_device(p.set, p.name, &dx));
	EXPECT_TRUE(dx == NULL);
	/* VD_E_INVALID: unknown name once all are named. */
	EXPECT_VD(VD_E_INVALID, vdi_server_open_device(p.set, "lv-bogus", &dx));
	ASSERT_VD(NOERROR, vdi_server_open_device(p.set, n1, &d1));
	ASSERT_TRUE(d1 != NULL && d1 != d0);
	/* VD_E_OPEN: all devices open. */
	EXPECT_VD(VD_E_OPEN, vdi_server_open_device(p.set, "lv-bogus", &dx));
	EXPECT_VD(VD_E_OPEN, vdi_server_open_device(p.set, n1, &dx));
	/* VD_E_ABORT */
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_server_open_device(p.set, n1, &dx));
	EXPECT_TRUE(dx == NULL);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(server_may_open_devices_first)
{
	vdi_server_device *d[3], *dx = NULL;
	char dn[LT_NAME_MAX];
	struct lt_pair p;
	struct lt_msg m;
	int i;

	/* Names bind on first use, by either side. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "first"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 3, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	for (i = 2; i >= 0; i--) {
		lt_dev_name(dn, p.name, (unsigned int)i);
		ASSERT_VD(NOERROR, vdi_server_open_device(p.set, dn, &d[i]));
	}
	EXPECT_VD(VD_E_OPEN, vdi_server_open_device(p.set, p.name, &dx));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 1000,
				      NULL));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_OPEN, -1, 0, 0, 0, 0, NULL));
	ASSERT_EQ(0, lt_agent_start(&p.agent, p.set));
	/* Each server device reaches the client device of its name. */
	for (i = 0; i < 3; i++) {
		struct lt_cmd c;

		lt_cmd_init(&c, i, VDC_Flush, 0, 100 + i);
		ASSERT_VD(NOERROR, lt_send_cmd(d[i], &c));
		ASSERT_VD(NOERROR, lt_rc_get(&p.rc, i, 1000, -1, &m));
		EXPECT_EQ(100 + i, m.q[0]);
		EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 0, -1));
		ASSERT_EQ(0, lt_wait_calls(i + 1, 2000));
		EXPECT_EQ(1, c.calls);
	}
	for (i = 0; i < 3; i++)
		EXPECT_VD(NOERROR, vdi_server_close_device(d[i]));
	for (i = 0; i < 3; i++)
		EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, i, -1, -1, -1, 1000,
						  NULL));
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(close_device_codes)
{
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_cmd c;
	struct lt_msg m;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "cdev", &o));
	EXPECT_VD(VD_E_INVALID, vdi_server_close_device(NULL));
	/* A command queued before CloseDevice is still delivered. */
	lt_cmd_init(&c, 1, VDC_Flush, 0, 5);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c));
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	/* VD_E_CLOSE: already closed. */
	EXPECT_VD(VD_E_CLOSE, vdi_server_close_device(p.dev[0]));
	ASSERT_VD(NOERROR, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	EXPECT_EQ(VDC_Flush, m.a[0]);
	EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0, 0, 9, -1));
	EXPECT_VD(VD_E_CLOSE, lt_rc_get(&p.rc, 0, 1000, -1, &m));
	ASSERT_EQ(0, lt_wait_calls(1, 2000));
	EXPECT_EQ(9, c.pos);
	/* VD_E_ABORT: in an aborted set. */
	ASSERT_VD(NOERROR, vdi_server_signal_abort(p.set));
	EXPECT_VD(VD_E_ABORT, vdi_server_close_device(p.dev[1]));
	EXPECT_VD(VD_E_ABORT, vdi_server_close_device(p.dev[0]));
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* AllocateBuffer, FreeBuffer, IsSharedBuffer                         */

TEST(allocate_buffer_codes)
{
	uint8_t *b = NULL, *b2 = NULL;
	struct lt_pair p;

	ASSERT_EQ(0, lt_pair_spawn(&p, "alloc"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	/* VD_E_PROTOCOL before EndConfiguration. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_allocate_buffer(p.set, &b, 4096,
							    0));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_allocate_buffer(p.set, &b, 4096,
							    0));
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 65536, 0, 1));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	/* VD_E_INVALID */
	EXPECT_VD(VD_E_INVALID, vdi_server_allocate_buffer(p.set, &b, 0, 0));
	EXPECT_VD(VD_E_INVALID, vdi_server_allocate_buffer(p.set, &b, 4096, 3));
	EXPECT_VD(VD_E_INVALID, vdi_server_allocate_buffer(p.set, &b, 4096,
							   12288));
	EXPECT_VD(VD_E_INVALID, vdi_server_allocate_buffer(p.set, NULL, 4096,
							   0));
	EXPECT_VD(VD_E_INVALID, vdi_server_allocate_buffer(NULL, &b, 4096, 0));
	EXPECT_TRUE(b == NULL);
	/* NOERROR, then VD_E_MEMORY when there is no room. */
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 65536, 0));
	ASSERT_TRUE(b != NULL);
	memset(b, 0x5a, 65536);
	EXPECT_VD(VD_E_MEMORY, vdi_server_allocate_buffer(p.set, &b2, 65536,
							  0));
	EXPECT_TRUE(b2 == NULL);
	EXPECT_VD(VD_E_MEMORY, vdi_server_allocate_buffer(p.set, &b2, 1 << 20,
							  0));
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b, 65536));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b2, 65536, 0));
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b2, 65536));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(allocate_buffer_alignment_and_prefix_zone)
{
	static const uint32_t req[][2] = {	/* size, alignment */
		{ 1000, 0 }, { 5000, 8192 }, { 3000, 65536 }, { 512, 4096 },
		{ 70000, 16384 }, { 1, 0 },
	};
	enum { N = sizeof(req) / sizeof(req[0]) };
	const uint32_t prefix = 100;
	struct lt_cmd cmds[N];
	uint8_t *b[N];
	struct lt_pair p;
	struct lt_msg m;
	int i, j;

	/* The client asks for a 100-byte prefix zone and 1 KiB alignment. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "align"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, prefix, 1024, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  131072, 0));
	for (i = 0; i < N; i++)
		ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, req[i][0],
							      req[i][1], 1));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &p.cfg));
	EXPECT_EQ(1024U, p.cfg.alignment);
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 1000,
				      NULL));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_OPEN, -1, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, vdi_server_open_device(p.set, p.name, &p.dev[0]));
	p.ndev = 1;

	for (i = 0; i < N; i++) {
		uint32_t a = req[i][1] > 1024 ? req[i][1] : 1024;

		ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b[i],
							      req[i][0],
							      req[i][1]));
		/* The data start is aligned to max(alignment, the set's). */
		EXPECT_TRUE(aligned(b[i], a)) {
			TH_LOG("buffer %d (%u bytes, alignment %u) at %p: "
			       "misaligned by %lu", i, req[i][0], a,
			       (void *)b[i],
			       (unsigned long)((uintptr_t)b[i] & (a - 1)));
		}
		lt_fill(b[i], req[i][0], i, 0x11);
	}
	/* Each buffer's prefix zone lies before it, outside every other. */
	for (i = 0; i < N; i++)
		for (j = 0; j < N; j++) {
			uintptr_t s1 = (uintptr_t)b[i] - prefix;
			uintptr_t e1 = (uintptr_t)b[i] + req[i][0];
			uintptr_t s2 = (uintptr_t)b[j] - prefix;
			uintptr_t e2 = (uintptr_t)b[j] + req[j][0];

			if (i != j)
				EXPECT_TRUE(e1 <= s2 || e2 <= s1);
		}

	/* The client sees the same alignment and may write its prefixes. */
	ASSERT_EQ(0, lt_agent_start(&p.agent, p.set));
	for (i = 0; i < N; i++) {
		uint32_t a = req[i][1] > 1024 ? req[i][1] : 1024;

		lt_cmd_init(&cmds[i], i, VDC_Write, (int32_t)req[i][0], i);
		cmds[i].cmd.buffer = b[i];
		cmds[i].salt = 0x11;
		ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &cmds[i]));
		ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_GET, 0, 0x11,
					      (int)prefix, 0, 1000, &m));
		EXPECT_EQ(1, m.a[3]);	/* the payload is there */
		EXPECT_EQ(0, m.a[4] % (int32_t)(a < 65536 ? a : 65536)) {
			TH_LOG("client's buffer %d misaligned (%d mod 64K)",
			       i, m.a[4]);
		}
		EXPECT_VD(NOERROR, lt_rc_complete(&p.rc, m.a[2], 0,
						  req[i][0], 0, -1));
	}
	ASSERT_EQ(0, lt_wait_calls(N, 3000));
	for (i = 0; i < N; i++) {
		EXPECT_TRUE(lt_check(b[i], req[i][0], i, 0x11));
		EXPECT_TRUE(b[i][-1] == 0xab && b[i][-(int)prefix] == 0xab);
		EXPECT_EQ(0, vdi_server_is_shared_buffer(p.set, b[i] - 1));
		EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b[i],
							  req[i][0]));
	}
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 0, -1, -1, -1, 1000, NULL));
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(free_buffer_codes)
{
	uint8_t *a = NULL, *b = NULL, local[64];
	struct lt_pair_opts o;
	struct lt_pair p;

	memset(&o, 0, sizeof(o));
	o.no_agent = true;
	o.no_devices = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "free", &o));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &a, 8192, 0));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 8192, 0));
	/* VD_E_INVALID: another size, not a buffer, not in the area. */
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(p.set, a, 4096));
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(p.set, a, 8193));
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(p.set, a + 512, 4096));
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(p.set, local,
						       sizeof(local)));
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(p.set, NULL, 8192));
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(NULL, a, 8192));
	/* NOERROR, then VD_E_INVALID for the same buffer again. */
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, a, 8192));
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(p.set, a, 8192));
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b, 8192));
	EXPECT_VD(VD_E_INVALID, vdi_server_free_buffer(p.set, b, 8192));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(is_shared_buffer)
{
	uint8_t *a = NULL, local[16];
	struct lt_pair p;

	ASSERT_EQ(0, lt_pair_spawn(&p, "shared"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	/* No area yet. */
	EXPECT_EQ(0, vdi_server_is_shared_buffer(p.set, local));
	EXPECT_EQ(0, vdi_server_is_shared_buffer(p.set, NULL));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &a, 10000, 0));
	/* 1 (TRUE) anywhere inside an allocated buffer. */
	EXPECT_EQ(1, vdi_server_is_shared_buffer(p.set, a));
	EXPECT_EQ(1, vdi_server_is_shared_buffer(p.set, a + 4321));
	EXPECT_EQ(1, vdi_server_is_shared_buffer(p.set, a + 9999));
	/* 0 (FALSE) elsewhere. */
	EXPECT_EQ(0, vdi_server_is_shared_buffer(p.set, a + 10000));
	EXPECT_EQ(0, vdi_server_is_shared_buffer(p.set, local));
	EXPECT_EQ(0, vdi_server_is_shared_buffer(p.set, NULL));
	EXPECT_EQ(0, vdi_server_is_shared_buffer(NULL, a));
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, a, 10000));
	EXPECT_EQ(0, vdi_server_is_shared_buffer(p.set, a));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* SignalAbort, Close                                                  */

TEST(signal_abort_ends_both_sides)
{
	vdi_server_device *dx = NULL;
	struct lt_pair_opts o;
	struct lt_pair p;
	struct lt_cmd c;
	struct lt_msg m;
	VDConfig cfg;

	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "sabort", &o));
	lt_cmd_init(&c, 1, VDC_Flush, 0, 0);
	ASSERT_VD(NOERROR, lt_send_cmd(p.dev[0], &c));
	EXPECT_VD(VD_E_INVALID, vdi_server_signal_abort(NULL));
	EXPECT_VD(NOERROR, vdi_server_signal_abort(p.set));
	EXPECT_VD(NOERROR, vdi_server_signal_abort(p.set));
	/* The queued command ends through its routine. */
	ASSERT_EQ(0, lt_wait_calls(1, 2000));
	EXPECT_EQ(ERROR_OPERATION_ABORTED, c.code);
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	/* Every later call of either side: VD_E_ABORT. */
	EXPECT_VD(VD_E_ABORT, vdi_server_get_configuration(p.set, &cfg));
	EXPECT_VD(VD_E_ABORT, vdi_server_open_device(p.set, p.name, &dx));
	EXPECT_VD(VD_E_ABORT, vdi_server_close_device(p.dev[1]));
	EXPECT_VD(VD_E_ABORT, lt_rc_get(&p.rc, 0, 0, -1, &m));
	EXPECT_VD(VD_E_ABORT, lt_rc_get(&p.rc, 1, -1, -1, &m));
	EXPECT_VD(VD_E_ABORT, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 0,
					 NULL));
	/* Close after an abort: the devices ended with it. */
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(VD_E_OPEN, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(close_codes)
{
	struct lt_pair_opts o;
	struct lt_pair p;

	EXPECT_VD(VD_E_INVALID, vdi_server_close(NULL));

	/* NOERROR after the normal end. */
	memset(&o, 0, sizeof(o));
	o.ndev = 2;
	ASSERT_EQ(0, lt_pair_setup(&p, "close1", &o));
	EXPECT_VD(NOERROR, lt_pair_close_devices(&p));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 0, -1, -1, -1, 1000, NULL));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, 1, -1, -1, -1, 1000, NULL));
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));

	/* VD_E_PROTOCOL with a device still open: the set is aborted. */
	ASSERT_EQ(0, lt_pair_setup(&p, "close2", &o));
	EXPECT_VD(NOERROR, vdi_server_close_device(p.dev[0]));
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_close(p.set));
	p.set = NULL;
	ASSERT_TRUE(lt_agent_done(&p.agent, 2000));
	EXPECT_VD(VD_E_ABORT, p.agent.ret);
	EXPECT_VD(VD_E_ABORT, lt_rc_serve(&p.rc, 1, -1, -1, -1, 1000, NULL));
	EXPECT_VD(VD_E_OPEN, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));

	/* Right after Open: NOERROR, and the client sees the abort. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "close3"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(VD_E_ABORT, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, -1,
					 NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* Alignment above 64 KiB, aborted sets, huge requests, late failures  */

TEST(alignment_over_64k_is_invalid)
{
	static const uint32_t big[] = { 131072, 1U << 20, 1U << 31 };
	uint8_t *b = NULL;
	uint32_t n = 7;
	struct lt_pair p;
	unsigned int i;

	/* The area starts on a 64 KiB boundary in every process: a larger
	 * alignment cannot hold for both sides, so it is refused. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "al128k"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(p.set, 4096,
								   big[i], 1));
		EXPECT_VD(VD_E_INVALID, vdi_server_query_available_buffers(
			p.set, 4096, big[i], &n));
	}
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 4096, 65536, 4));
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 65536, 0, 4));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		b = NULL;
		EXPECT_VD(VD_E_INVALID, vdi_server_allocate_buffer(p.set, &b,
								   4096,
								   big[i]));
		EXPECT_TRUE(b == NULL) {
			TH_LOG("alignment %u gave %p (%s aligned)", big[i], b,
			       aligned(b, big[i]) ? "" : "NOT");
		}
		EXPECT_VD(VD_E_INVALID, vdi_server_request_buffers(p.set, 4096,
								   big[i], 1));
		EXPECT_VD(VD_E_INVALID, vdi_server_query_available_buffers(
			p.set, 4096, big[i], &n));
	}
	/* 64 KiB itself: granted, for real. */
	for (i = 0; i < 4; i++) {
		ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 4096,
							      65536));
		EXPECT_TRUE(aligned(b, 65536));
	}
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(buffer_calls_in_an_aborted_set_are_abort)
{
	uint8_t *b = NULL, *b2 = NULL;
	struct lt_pair p;
	uint32_t n = 0;

	/* Aborted while configurable. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "bufab1"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_server_request_buffers(p.set, 65536, 0, 2));
	EXPECT_VD(VD_E_ABORT, vdi_server_query_available_buffers(p.set, 65536,
								 0, &n));
	EXPECT_VD(VD_E_ABORT, vdi_server_end_configuration(p.set));
	EXPECT_EQ(0, lt_pair_teardown(&p));

	/* Aborted once ready, with a buffer allocated. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "bufab2"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 65536, 0, 2));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 65536, 0));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_server_allocate_buffer(p.set, &b2, 65536, 0));
	EXPECT_TRUE(b2 == NULL);
	EXPECT_VD(VD_E_ABORT, vdi_server_request_buffers(p.set, 65536, 0, 1));
	EXPECT_VD(VD_E_ABORT, vdi_server_query_available_buffers(p.set, 65536,
								 0, &n));
	EXPECT_VD(VD_E_ABORT, vdi_server_free_buffer(p.set, b, 65536));
	/* A bad argument is still VD_E_INVALID. */
	EXPECT_VD(VD_E_INVALID, vdi_server_allocate_buffer(p.set, &b2, 0, 0));
	/* Close releases the buffer anyway. */
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_EQ(0, lt_pair_teardown(&p));

	/* The server's own SignalAbort, too. */
	ASSERT_EQ(0, lt_pair_spawn(&p, "bufab3"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_signal_abort(p.set));
	EXPECT_VD(VD_E_ABORT, vdi_server_allocate_buffer(p.set, &b2, 4096, 0));
	EXPECT_VD(VD_E_ABORT, vdi_server_request_buffers(p.set, 4096, 0, 1));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(request_buffers_sum_does_not_overflow)
{
	struct lt_pair p;
	VDConfig c;
	int r1, r2;

	ASSERT_EQ(0, lt_pair_spawn(&p, "reqovf"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	/*
	 * Each such buffer needs 0xffff0001 + 65535 = 2^32 bytes: 2^32 - 1
	 * of them and one more are 2^64, which wraps a 64-bit sum to 0.
	 * Neither can ever be met: VD_E_MEMORY at once, not counted.
	 */
	r1 = vdi_server_request_buffers(p.set, 0xffff0001U, 65536, 0xffffffffU);
	r2 = vdi_server_request_buffers(p.set, 0xffff0001U, 65536, 1);
	EXPECT_VD(VD_E_MEMORY, r1);
	EXPECT_VD(VD_E_MEMORY, r2);
	/* The product alone wraps too: (2^32 + 510) x (2^32 - 1). */
	EXPECT_VD(VD_E_MEMORY, vdi_server_request_buffers(p.set, 0xffffffffU,
							  0, 0xffffffffU));
	/* What the server then needs for real is what the area holds. */
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 65536, 0, 4));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(p.set));
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	EXPECT_LE(4U * 65536, c.bufferAreaSize);
	EXPECT_GT(1U << 20, c.bufferAreaSize) {
		TH_LOG("area %u: the failed requests were counted",
		       c.bufferAreaSize);
	}
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST(end_configuration_late_failure_can_be_retried)
{
	struct rlimit old, low;
	uint8_t *b = NULL;
	struct lt_pair p;
	struct lt_msg m;
	VDConfig c;
	int r;

	ASSERT_EQ(0, lt_pair_spawn(&p, "endlate"));
	ASSERT_VD(NOERROR, lt_rc_create(&p.rc, 1, 0, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_server_open(&p.set, NULL, p.name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(p.set, WR_RD, 0, 512,
							  65536, 0));
	/* 32 MiB: the module allocates it, but this process cannot map it
	 * under an address-space limit of what it uses now plus 4 MiB. */
	ASSERT_VD(NOERROR, vdi_server_request_buffers(p.set, 65536, 0, 512));
	ASSERT_EQ(0, getrlimit(RLIMIT_AS, &old));
	low = old;
	low.rlim_cur = lt_vm_size() + (4 << 20);
	ASSERT_LT(low.rlim_cur, old.rlim_cur);
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &low));
	r = vdi_server_end_configuration(p.set);
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &old));
	ASSERT_VD(VD_E_MEMORY, r);
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_allocate_buffer(p.set, &b, 4096,
							    0));
	/* With the limit gone, the retry completes the configuration. */
	r = vdi_server_end_configuration(p.set);
	ASSERT_VD(NOERROR, r);
	ASSERT_VD(NOERROR, vdi_server_get_configuration(p.set, &c));
	EXPECT_LE(32U << 20, c.bufferAreaSize);
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_GETCONFIG, 0, 0, 0, 0, 1000,
				      &m));
	EXPECT_EQ((int32_t)c.bufferAreaSize, m.a[4]);
	ASSERT_VD(NOERROR, vdi_server_allocate_buffer(p.set, &b, 65536, 0));
	memset(b, 0x5a, 65536);
	EXPECT_VD(NOERROR, vdi_server_free_buffer(p.set, b, 65536));
	EXPECT_VD(VD_E_PROTOCOL, vdi_server_end_configuration(p.set));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

TEST_HARNESS_MAIN
