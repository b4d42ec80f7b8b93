// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi, client role: every method and each code docs/LIBRARY.md gives it
 * (Create, CreateEx, GetConfiguration, OpenDevice, GetCommand,
 * CompleteCommand, SignalAbort, Close, OpenInSecondary(Ex), GetBufferHandle,
 * MapBufferHandle), the timeouts (0, a small value, forever woken by the
 * other process), and secondary client processes.  The client is this
 * process; the server is a child (lt_rs_main), secondaries are children.
 */
#include "lib_test_util.h"

#include <limits.h>
#include <sys/resource.h>

struct cpair {
	char name[LT_NAME_MAX];
	struct lt_peer rs;		/* the remote server */
	vdi_client_set *set;
	vdi_client_device *dev[LT_MAXDEV];
	unsigned int ndev;
	VDConfig cfg;
};

static int cpair_spawn(struct cpair *c, const char *tag)
{
	int r;

	memset(c, 0, sizeof(*c));
	lt_name(c->name, tag);
	r = lt_spawn(&c->rs, lt_rs_main, c->name);
	if (r)
		return r;
	c->set = vdi_client_set_new();
	return c->set ? 0 : -ENOMEM;
}

static int cpair_create(struct cpair *c, unsigned int ndev)
{
	VDConfig cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = ndev;
	c->ndev = ndev;
	return vdi_client_create(c->set, c->name, &cfg);
}

/* Create, server configured, GetConfiguration, devices, agent. */
static int cpair_ready(struct cpair *c, unsigned int ndev, uint32_t depth)
{
	char dn[LT_NAME_MAX];
	unsigned int i;
	int r;

	r = cpair_create(c, ndev);
	if (r)
		return r;
	r = lt_rs_ready(&c->rs, depth);
	if (r)
		return r;
	r = vdi_client_get_configuration(c->set, 1000, &c->cfg);
	if (r)
		return r;
	for (i = 0; i < ndev; i++) {
		lt_dev_name(dn, c->name, i);
		r = vdi_client_open_device(c->set, dn, &c->dev[i]);
		if (r)
			return r;
	}
	r = lt_rs_call(&c->rs, RS_OPEN_DEV, -1, 0, 0, 0, 0, NULL);
	if (r)
		return r;
	return lt_rs_call(&c->rs, RS_AGENT, 0, 0, 0, 0, 0, NULL);
}

/* Finish: free the client object, then the server and its process. */
static int cpair_teardown(struct cpair *c)
{
	if (c->set)
		vdi_client_set_free(c->set);
	c->set = NULL;
	return lt_peer_finish(&c->rs, 5000);
}

static int rs_send(struct cpair *c, int dev, int code, int size, int salt,
		   int64_t pos)
{
	return lt_rs_call(&c->rs, RS_SEND, dev, code, size, salt, pos, NULL);
}

/* Ask the server for something after @delay_ms, without waiting. */
static int rs_post(struct cpair *c, int op, int a0, unsigned int delay_ms)
{
	struct lt_msg m;

	lt_msg_init(&m, op);
	m.a[0] = a0;
	m.q[3] = delay_ms;
	return lt_send(&c->rs, &m);
}

static int rs_answer(struct cpair *c, struct lt_msg *m)
{
	int r = lt_recv(&c->rs, m, LT_RPC_MS);

	return r ? r : m->ret;
}

/* The normal end, client's view: devices end, Close, agent NOERROR. */
static void end_normally(struct __test_metadata *_metadata, struct cpair *c)
{
	VDC_Command *cmd;
	struct lt_msg m;
	unsigned int i;

	for (i = 0; i < c->ndev; i++) {
		ASSERT_VD(NOERROR, lt_rs_call(&c->rs, RS_CLOSE_DEV, (int)i, 0,
					      0, 0, 0, NULL));
		EXPECT_VD(VD_E_CLOSE, vdi_client_get_command(c->dev[i], 1000,
							     &cmd));
	}
	EXPECT_VD(NOERROR, vdi_client_close(c->set));
	EXPECT_VD(0, lt_rs_call(&c->rs, RS_AGENT_WAIT, 0, 0, 0, 0, 2000, &m));
	EXPECT_VD(NOERROR, m.a[0]);
	EXPECT_VD(NOERROR, lt_rs_call(&c->rs, RS_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, cpair_teardown(c));
}

/* ------------------------------------------------------------------ */
/* Create, CreateEx, Close                                            */

TEST(create_codes)
{
	char name[LT_NAME_MAX], bad[200];
	vdi_client_set *s = vdi_client_set_new(), *s2 = vdi_client_set_new();
	VDConfig cfg;

	ASSERT_TRUE(s && s2);
	lt_name(name, "create");
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;

	/* VD_E_NOTSUPPORTED: a VDConfig value. */
	cfg.deviceCount = 0;
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.deviceCount = 65;
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.deviceCount = 1;
	cfg.features = 0x4;			/* no such feature */
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.features = VDF_LikeTape | VDF_RandomAccess;	/* two modes */
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.features = VDF_WriteMedia;		/* the server's bit */
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.features = 0;
	cfg.alignment = 3;
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.alignment = 128 * 1024;
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.alignment = 0;
	cfg.prefixZoneSize = 128 * 1024;
	EXPECT_VD(VD_E_NOTSUPPORTED, vdi_client_create(s, name, &cfg));
	cfg.prefixZoneSize = 0;

	/* VD_E_INVALID: a bad name (or argument). */
	EXPECT_VD(VD_E_INVALID, vdi_client_create(s, NULL, &cfg));
	EXPECT_VD(VD_E_INVALID, vdi_client_create(s, "", &cfg));
	EXPECT_VD(VD_E_INVALID, vdi_client_create(s, "lv\\back", &cfg));
	EXPECT_VD(VD_E_INVALID, vdi_client_create(s, "lv\001ctl", &cfg));
	memset(bad, 'n', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = 0;
	EXPECT_VD(VD_E_INVALID, vdi_client_create(s, bad, &cfg));
	bad[127] = 0;		/* 127 bytes is the longest name */
	EXPECT_VD(VD_E_INVALID, vdi_client_create(s, name, NULL));
	EXPECT_VD(VD_E_INVALID, vdi_client_create(NULL, name, &cfg));

	/* NOERROR; the server's fields of an old VDConfig are ignored. */
	cfg.features = VDF_LikeTape;
	cfg.blockSize = 12345;
	cfg.maxTransferSize = 1;
	cfg.bufferAreaSize = 99;
	EXPECT_VD(NOERROR, vdi_client_create(s, name, &cfg));
	/* VD_E_PROTOCOL: this object has a set; the name exists. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_create(s, name, &cfg));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_create(s2, name, &cfg));
	EXPECT_VD(NOERROR, vdi_client_create(s2, bad, &cfg));
	EXPECT_VD(NOERROR, vdi_client_close(s2));
	EXPECT_VD(NOERROR, vdi_client_close(s));
	/* The name is free again. */
	EXPECT_VD(NOERROR, vdi_client_create(s2, name, &cfg));
	vdi_client_set_free(s);
	vdi_client_set_free(s2);	/* closes its set */
}

TEST(create_too_many_sets_is_memory)
{
	int max = lt_max_sets_per_user(), i;
	vdi_client_set *s[65];
	char name[LT_NAME_MAX];
	VDConfig cfg;

	ASSERT_GE(64, max);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	for (i = 0; i <= max; i++) {
		s[i] = vdi_client_set_new();
		ASSERT_TRUE(s[i] != NULL);
		lt_name(name, "many");
		if (i < max)
			ASSERT_VD(NOERROR, vdi_client_create(s[i], name, &cfg));
		else
			EXPECT_VD(VD_E_MEMORY, vdi_client_create(s[i], name,
								 &cfg));
	}
	/* One closed: room for one more. */
	EXPECT_VD(NOERROR, vdi_client_close(s[0]));
	EXPECT_VD(NOERROR, vdi_client_create(s[max], name, &cfg));
	for (i = 0; i <= max; i++)
		vdi_client_set_free(s[i]);
}

/* A client process running as nobody, in group nogroup only. */
static int nobody_client(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	gid_t none[1] = { 65534 };
	vdi_client_set *s;
	VDConfig cfg;

	CK(setgroups(1, none) == 0);
	CK(setresgid(65534, 65534, 65534) == 0);
	CK(setresuid(65534, 65534, 65534) == 0);
	s = vdi_client_set_new();
	CK(s != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	CKEQ(VD_E_INVALID, vdi_client_set_access(s, 0700, -1));
	CKEQ(VD_E_INVALID, vdi_client_set_access(NULL, 0600, -1));
	/* VD_E_SECURITY: a group that is not ours. */
	CKEQ(NOERROR, vdi_client_set_access(s, 0660, 0));
	CKEQ(VD_E_SECURITY, vdi_client_create(s, name, &cfg));
	/* Our own group is fine. */
	CKEQ(NOERROR, vdi_client_set_access(s, 0660, 65534));
	CKEQ(NOERROR, vdi_client_create(s, name, &cfg));
	CKEQ(VD_E_PROTOCOL, vdi_client_set_access(s, 0600, -1));
	CKEQ(NOERROR, vdi_client_close(s));
	vdi_client_set_free(s);
	return 0;
}

TEST(create_for_a_group_not_ours_is_security)
{
	char name[LT_NAME_MAX];
	struct lt_peer nobody;

	lt_name(name, "grp");
	ASSERT_EQ(0, lt_spawn(&nobody, nobody_client, name));
	EXPECT_EQ(0, lt_reap(&nobody, 10000));
	lt_peer_kill(&nobody);
}

TEST(create_ex_instance_name)
{
	char name[LT_NAME_MAX];
	vdi_client_set *s = vdi_client_set_new();
	VDConfig cfg;

	ASSERT_TRUE(s != NULL);
	lt_name(name, "ex");
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 2;
	EXPECT_VD(VD_E_INSTANCE_NAME, vdi_client_create_ex(s, "MSSQLSERVER",
							   name, &cfg));
	EXPECT_VD(VD_E_INSTANCE_NAME, vdi_client_create_ex(s, "HOST\\INST",
							   name, &cfg));
	EXPECT_VD(NOERROR, vdi_client_create_ex(s, NULL, name, &cfg));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_create_ex(s, "", name, &cfg));
	EXPECT_VD(NOERROR, vdi_client_close(s));
	EXPECT_VD(NOERROR, vdi_client_create_ex(s, "", name, &cfg));
	EXPECT_VD(NOERROR, vdi_client_close(s));
	vdi_client_set_free(s);
}

TEST(close_codes_and_create_again)
{
	VDC_Command *cmd;
	struct lt_msg m;
	struct cpair c;

	ASSERT_EQ(0, cpair_spawn(&c, "close"));
	/* VD_E_PROTOCOL: no set. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_close(c.set));
	EXPECT_VD(VD_E_INVALID, vdi_client_close(NULL));
	/* NOERROR, right after Create. */
	ASSERT_VD(NOERROR, cpair_create(&c, 1));
	EXPECT_VD(NOERROR, vdi_client_close(c.set));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_close(c.set));
	/* The object may Create again (the same name, even). */
	ASSERT_VD(NOERROR, cpair_ready(&c, 2, 0));
	/* VD_E_OPEN: devices still open; the set is aborted. */
	EXPECT_VD(VD_E_OPEN, vdi_client_close(c.set));
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_AGENT_WAIT, 0, 0, 0, 0, 2000, &m));
	EXPECT_VD(VD_E_ABORT, m.a[0]);
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_close(c.set));
	EXPECT_VD(NOERROR, lt_rs_call(&c.rs, RS_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_peer_finish(&c.rs, 5000));

	/* And once more, to the normal end: NOERROR. */
	ASSERT_EQ(0, lt_spawn(&c.rs, lt_rs_main, c.name));
	ASSERT_VD(NOERROR, cpair_ready(&c, 1, 0));
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Flush, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000, &cmd));
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], cmd, 0, 0, 0));
	end_normally(_metadata, &c);
}

/* ------------------------------------------------------------------ */
/* GetConfiguration                                                    */

TEST(get_configuration_codes_and_timeouts)
{
	VDConfig cfg;
	struct cpair c;
	int64_t t0, dt;

	ASSERT_EQ(0, cpair_spawn(&c, "gcfg"));
	/* VD_E_PROTOCOL: no set. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_get_configuration(c.set, 0, &cfg));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_configuration(NULL, 0, &cfg));
	ASSERT_VD(NOERROR, cpair_create(&c, 2));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_configuration(c.set, 0, NULL));
	/* VD_E_TIMEOUT: 0 polls ... */
	t0 = lt_now_us();
	EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_configuration(c.set, 0, &cfg));
	EXPECT_GT(500000, lt_now_us() - t0);
	/* ... a small value waits that long, at least. */
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN, 0, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_BEGIN, VDF_ReadMedia, 0, 4096,
				      131072, 0, NULL));
	t0 = lt_now_us();
	EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_configuration(c.set, 250, &cfg));
	dt = lt_now_us() - t0;
	EXPECT_LE(250000, dt);
	EXPECT_GT(2500000, dt);
	/* NOERROR once the server ended the configuration. */
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_END, 0, 0, 0, 0, 0, NULL));
	memset(&cfg, 0, sizeof(cfg));
	t0 = lt_now_us();
	EXPECT_VD(NOERROR, vdi_client_get_configuration(c.set, 0, &cfg));
	EXPECT_EQ(2U, cfg.deviceCount);
	EXPECT_EQ((uint32_t)VDF_ReadMedia, cfg.features);
	EXPECT_EQ(4096U, cfg.blockSize);
	EXPECT_EQ(4096U, cfg.alignment);
	EXPECT_EQ(131072U, cfg.maxTransferSize);
	EXPECT_EQ(4U, cfg.maxIODepth);
	EXPECT_LE(2U * 4 * 131072, cfg.bufferAreaSize);
	/* Again: the same, at once. */
	EXPECT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000, &cfg));
	EXPECT_GT(500000, lt_now_us() - t0);
	/* VD_E_ABORT after an abort. */
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_client_get_configuration(c.set, 0, &cfg));
	EXPECT_VD(VD_E_ABORT, vdi_client_get_configuration(c.set, -1, &cfg));
	EXPECT_EQ(0, cpair_teardown(&c));
}

TEST(get_configuration_forever_is_woken_by_the_server)
{
	static const int64_t forever[] = { INFINITE, -7, 0xFFFFFFFFLL };
	struct lt_msg m;
	struct cpair c;
	VDConfig cfg;
	int64_t t0, dt;
	unsigned int i;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, cpair_spawn(&c, "gcfgw"));
		ASSERT_VD(NOERROR, cpair_create(&c, 1));
		ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN, 0, 0, 0, 0, 0,
					      NULL));
		ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_BEGIN, VDF_WriteMedia,
					      0, 512, 65536, 0, NULL));
		/* The server process ends its configuration in 300 ms. */
		ASSERT_EQ(0, rs_post(&c, RS_END, 0, 300));
		t0 = lt_now_us();
		EXPECT_VD(NOERROR, vdi_client_get_configuration(c.set,
								forever[i],
								&cfg));
		dt = lt_now_us() - t0;
		EXPECT_LE(250000, dt);
		EXPECT_GT(5000000, dt);
		EXPECT_NE(0U, cfg.bufferAreaSize);
		EXPECT_VD(NOERROR, rs_answer(&c, &m));
		EXPECT_EQ(0, cpair_teardown(&c));
	}

	/* ... or by an abort. */
	ASSERT_EQ(0, cpair_spawn(&c, "gcfga"));
	ASSERT_VD(NOERROR, cpair_create(&c, 1));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN, 0, 0, 0, 0, 0, NULL));
	ASSERT_EQ(0, rs_post(&c, RS_ABORT, 0, 200));
	t0 = lt_now_us();
	EXPECT_VD(VD_E_ABORT, vdi_client_get_configuration(c.set, INFINITE,
							   &cfg));
	EXPECT_LE(150000, lt_now_us() - t0);
	EXPECT_VD(NOERROR, rs_answer(&c, &m));
	EXPECT_EQ(0, cpair_teardown(&c));
}

/* ------------------------------------------------------------------ */
/* OpenDevice                                                          */

TEST(open_device_codes)
{
	vdi_client_device *d0 = NULL, *d1 = NULL, *dx = NULL;
	char n1[LT_NAME_MAX];
	struct cpair c;

	ASSERT_EQ(0, cpair_spawn(&c, "odev"));
	lt_dev_name(n1, c.name, 1);
	/* VD_E_PROTOCOL: no set, before GetConfiguration. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_open_device(c.set, c.name, &d0));
	ASSERT_VD(NOERROR, cpair_create(&c, 2));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_open_device(c.set, c.name, &d0));
	ASSERT_VD(NOERROR, lt_rs_ready(&c.rs, 0));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_open_device(c.set, c.name, &d0));
	EXPECT_TRUE(d0 == NULL);
	ASSERT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000, &c.cfg));
	/* The server names both devices first. */
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN_DEV, -1, 0, 0, 0, 0,
				      NULL));
	EXPECT_VD(VD_E_INVALID, vdi_client_open_device(c.set, NULL, &d0));
	EXPECT_VD(VD_E_INVALID, vdi_client_open_device(c.set, c.name, NULL));
	ASSERT_VD(NOERROR, vdi_client_open_device(c.set, c.name, &d0));
	/* VD_E_PROTOCOL: already open. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_open_device(c.set, c.name, &dx));
	/* VD_E_INVALID: not a device of this set. */
	EXPECT_VD(VD_E_INVALID, vdi_client_open_device(c.set, "lv-bogus", &dx));
	EXPECT_TRUE(dx == NULL);
	ASSERT_VD(NOERROR, vdi_client_open_device(c.set, n1, &d1));
	ASSERT_TRUE(d1 != NULL && d1 != d0);
	/* VD_E_OPEN: all open. */
	EXPECT_VD(VD_E_OPEN, vdi_client_open_device(c.set, "lv-bogus", &dx));
	EXPECT_VD(VD_E_OPEN, vdi_client_open_device(c.set, n1, &dx));
	/* VD_E_ABORT */
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_ABORT, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_ABORT, vdi_client_open_device(c.set, n1, &dx));
	EXPECT_VD(VD_E_OPEN, vdi_client_close(c.set));
	EXPECT_EQ(0, cpair_teardown(&c));
}

/*
 * OpenDevice waits for the library's part of GetConfiguration too: when the
 * module gave the configuration but mapping the area failed (VD_E_MEMORY),
 * a device would hand out buffer pointers into an area that is not there.
 */
TEST(open_device_only_once_the_area_is_mapped)
{
	struct rlimit old, low;
	vdi_client_device *d0 = NULL;
	struct lt_msg m;
	struct cpair c;
	VDC_Command *cmd;
	int r;

	ASSERT_EQ(0, cpair_spawn(&c, "odmap"));
	ASSERT_VD(NOERROR, cpair_create(&c, 1));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN, 0, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_BEGIN, VDF_WriteMedia |
				      VDF_ReadMedia, 0, 512, 1 << 20, 0, NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_END, 0, 0, 0, 0, 0, &m));
	ASSERT_LE(1 << 20, m.a[4]);	/* the area: at least 1 MiB */
	/* This process cannot map it under a limit of what it uses + 256 K. */
	ASSERT_EQ(0, getrlimit(RLIMIT_AS, &old));
	low = old;
	low.rlim_cur = lt_vm_size() + (256 << 10);
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &low));
	r = vdi_client_get_configuration(c.set, 1000, &c.cfg);
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &old));
	ASSERT_VD(VD_E_MEMORY, r);
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN_DEV, -1, 0, 0, 0, 0,
				      NULL));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_open_device(c.set, c.name, &d0));
	EXPECT_TRUE(d0 == NULL);
	/* GetConfiguration again maps it; then the device works. */
	ASSERT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000, &c.cfg));
	ASSERT_VD(NOERROR, vdi_client_open_device(c.set, c.name, &d0));
	c.dev[0] = d0;
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Write, 4096, 0x3c, 0));
	ASSERT_VD(NOERROR, vdi_client_get_command(d0, 1000, &cmd));
	ASSERT_TRUE(cmd->buffer != NULL);
	EXPECT_TRUE(lt_check(cmd->buffer, 4096, 0, 0x3c));
	EXPECT_VD(NOERROR, vdi_client_complete_command(d0, cmd, 0, 4096, 0));
	end_normally(_metadata, &c);
}

/* ------------------------------------------------------------------ */
/* GetCommand                                                          */

TEST(get_command_timeouts)
{
	VDC_Command *cmd = (VDC_Command *)1;
	int64_t t0, dt, min = INT64_MAX;
	struct cpair c;
	int k;

	ASSERT_EQ(0, cpair_spawn(&c, "gcmd"));
	ASSERT_VD(NOERROR, cpair_ready(&c, 1, 0));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_command(NULL, 0, &cmd));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_command(c.dev[0], 0, NULL));
	/* 0 polls. */
	t0 = lt_now_us();
	EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_command(c.dev[0], 0, &cmd));
	EXPECT_GT(500000, lt_now_us() - t0);
	EXPECT_TRUE(cmd == NULL);
	/* A small value waits at least that long. */
	t0 = lt_now_us();
	EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_command(c.dev[0], 200, &cmd));
	dt = lt_now_us() - t0;
	EXPECT_LE(200000, dt);
	EXPECT_GT(2000000, dt);
	/* Short waits, many times: never shorter than asked. */
	for (k = 0; k < 60; k++) {
		t0 = lt_now_us();
		EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_command(c.dev[0], 3,
							       &cmd));
		dt = lt_now_us() - t0;
		if (dt < min)
			min = dt;
	}
	EXPECT_LE(3000, min) {
		TH_LOG("GetCommand(3 ms) returned VD_E_TIMEOUT after %lld us",
		       (long long)min);
	}
	/* A command already there comes back at once, even with 0. */
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Flush, 0, 0, 42));
	EXPECT_VD(NOERROR, vdi_client_get_command(c.dev[0], 0, &cmd));
	ASSERT_TRUE(cmd != NULL);
	EXPECT_EQ(VDC_Flush, cmd->commandCode);
	EXPECT_EQ(42, cmd->position);
	EXPECT_TRUE(cmd->buffer == NULL);
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], cmd, 0, 0, 0));
	end_normally(_metadata, &c);
}

TEST(get_command_forever_is_woken_by_the_server)
{
	static const int64_t forever[] = { INFINITE, -1000, 0xFFFFFFFFLL };
	VDC_Command *cmd;
	struct lt_msg m;
	struct cpair c;
	int64_t t0, dt;
	unsigned int i;

	ASSERT_EQ(0, cpair_spawn(&c, "gcmdw"));
	ASSERT_VD(NOERROR, cpair_ready(&c, 2, 0));
	for (i = 0; i < 3; i++) {
		/* The server process sends a command in 200 ms. */
		lt_msg_init(&m, RS_SEND);
		m.a[0] = (int)(i % 2);
		m.a[1] = VDC_Write;
		m.a[2] = 1000;
		m.a[3] = 0x60 + (int)i;
		m.q[0] = 4096 * i;
		m.q[3] = 200;
		ASSERT_EQ(0, lt_send(&c.rs, &m));
		t0 = lt_now_us();
		EXPECT_VD(NOERROR, vdi_client_get_command(c.dev[i % 2],
							  forever[i], &cmd));
		dt = lt_now_us() - t0;
		EXPECT_LE(150000, dt);
		EXPECT_GT(5000000, dt);
		EXPECT_VD(NOERROR, rs_answer(&c, &m));
		ASSERT_TRUE(cmd != NULL);
		EXPECT_EQ(VDC_Write, cmd->commandCode);
		EXPECT_EQ(1000, cmd->size);
		EXPECT_TRUE(lt_check(cmd->buffer, 1000, 4096 * i,
				     (uint8_t)(0x60 + i)));
		EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[i % 2],
							       cmd, 0, 1000,
							       0));
	}
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 3, 0, 0, 0, 2000, NULL));
	end_normally(_metadata, &c);
}

TEST(get_command_close_and_abort)
{
	VDC_Command *cmd, *a, *b;
	struct lt_msg m;
	struct cpair c;
	int64_t t0;

	ASSERT_EQ(0, cpair_spawn(&c, "gcmdc"));
	ASSERT_VD(NOERROR, cpair_ready(&c, 3, 0));
	/* Device 0: commands queued before CloseDevice are delivered. */
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Flush, 0, 0, 1));
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Flush, 0, 0, 2));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_CLOSE_DEV, 0, 0, 0, 0, 0,
				      NULL));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 0, &a));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 0, &b));
	EXPECT_EQ(1, a->position);
	EXPECT_EQ(2, b->position);
	/* VD_E_CLOSE once drained; forever returns at once. */
	EXPECT_VD(VD_E_CLOSE, vdi_client_get_command(c.dev[0], 0, &cmd));
	t0 = lt_now_us();
	EXPECT_VD(VD_E_CLOSE, vdi_client_get_command(c.dev[0], INFINITE,
						     &cmd));
	EXPECT_GT(500000, lt_now_us() - t0);
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], b, 0, 0, 0));
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], a, 0, 0, 0));
	/* Device 1: a waiting GetCommand ends with the CloseDevice. */
	ASSERT_EQ(0, rs_post(&c, RS_CLOSE_DEV, 1, 200));
	t0 = lt_now_us();
	EXPECT_VD(VD_E_CLOSE, vdi_client_get_command(c.dev[1], INFINITE,
						     &cmd));
	EXPECT_LE(150000, lt_now_us() - t0);
	EXPECT_VD(NOERROR, rs_answer(&c, &m));
	/* Device 2: a waiting GetCommand ends with an abort. */
	ASSERT_EQ(0, rs_post(&c, RS_ABORT, 0, 200));
	t0 = lt_now_us();
	EXPECT_VD(VD_E_ABORT, vdi_client_get_command(c.dev[2], INFINITE,
						     &cmd));
	EXPECT_LE(150000, lt_now_us() - t0);
	EXPECT_VD(NOERROR, rs_answer(&c, &m));
	EXPECT_VD(VD_E_ABORT, vdi_client_get_command(c.dev[2], 0, &cmd));
	/* After the abort every device says so, ended ones too. */
	EXPECT_VD(VD_E_ABORT, vdi_client_get_command(c.dev[0], 0, &cmd));
	EXPECT_VD(VD_E_OPEN, vdi_client_close(c.set));
	EXPECT_EQ(0, cpair_teardown(&c));
}

/* A thread that keeps signalling another one (SIGUSR1, no SA_RESTART). */
static volatile int sig_stop;
static pthread_t sig_target;

static void on_usr1(int sig)
{
	(void)sig;
}

static void *sig_main(void *arg)
{
	while (!sig_stop) {
		pthread_kill(sig_target, SIGUSR1);
		lt_sleep_ms(3);
	}
	return arg;
}

static void signals_start(pthread_t *th)
{
	sig_stop = 0;
	sig_target = pthread_self();
	pthread_create(th, NULL, sig_main, NULL);
}

static void signals_stop(pthread_t th)
{
	sig_stop = 1;
	pthread_join(th, NULL);
}

TEST(signals_neither_end_nor_shorten_the_waits)
{
	int64_t t0, dt, min_cfg = INT64_MAX, min_cmd = INT64_MAX;
	struct sigaction sa;
	VDC_Command *cmd;
	struct lt_msg m;
	struct cpair c;
	VDConfig cfg;
	pthread_t th;
	int k;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, cpair_spawn(&c, "sig"));
	ASSERT_VD(NOERROR, cpair_create(&c, 1));

	/* Timed waits, interrupted every 3 ms: still their whole time. */
	signals_start(&th);
	for (k = 0; k < 20; k++) {
		t0 = lt_now_us();
		EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_configuration(c.set, 20,
								     &cfg));
		dt = lt_now_us() - t0;
		if (dt < min_cfg)
			min_cfg = dt;
	}
	signals_stop(th);
	EXPECT_LE(20000, min_cfg) {
		TH_LOG("GetConfiguration(20 ms) interrupted by signals "
		       "returned after %lld us", (long long)min_cfg);
	}

	ASSERT_VD(NOERROR, lt_rs_ready(&c.rs, 0));
	ASSERT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000, &c.cfg));
	ASSERT_VD(NOERROR, vdi_client_open_device(c.set, c.name, &c.dev[0]));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN_DEV, -1, 0, 0, 0, 0,
				      NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));
	signals_start(&th);
	for (k = 0; k < 20; k++) {
		t0 = lt_now_us();
		EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_command(c.dev[0], 20,
							       &cmd));
		dt = lt_now_us() - t0;
		if (dt < min_cmd)
			min_cmd = dt;
	}
	/* A wait forever is not ended by them either. */
	lt_msg_init(&m, RS_SEND);
	m.a[1] = VDC_Flush;
	m.q[3] = 200;
	ASSERT_EQ(0, lt_send(&c.rs, &m));
	EXPECT_VD(NOERROR, vdi_client_get_command(c.dev[0], INFINITE, &cmd));
	signals_stop(th);
	EXPECT_LE(20000, min_cmd) {
		TH_LOG("GetCommand(20 ms) interrupted by signals returned "
		       "after %lld us", (long long)min_cmd);
	}
	EXPECT_VD(NOERROR, rs_answer(&c, &m));
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], cmd, 0, 0, 0));
	end_normally(_metadata, &c);
}

/* ------------------------------------------------------------------ */
/* CompleteCommand                                                     */

TEST(complete_command_codes)
{
	VDC_Command *w, *f, *r, fake;
	struct lt_msg m;
	struct cpair c;

	ASSERT_EQ(0, cpair_spawn(&c, "cmpl"));
	ASSERT_VD(NOERROR, cpair_ready(&c, 2, 0));
	ASSERT_EQ(0, rs_send(&c, 0, VDC_Write, 4096, 0x71, 0));	/* id 0 */
	ASSERT_EQ(0, rs_send(&c, 0, VDC_Flush, 0, 0, 0));		/* id 1 */
	ASSERT_EQ(0, rs_send(&c, 1, VDC_Read, 2048, 0x72, 8));	/* id 2 */
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000, &w));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000, &f));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[1], 1000, &r));
	EXPECT_TRUE(lt_check(w->buffer, 4096, 0, 0x71));

	/* VD_E_INVALID */
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_command(c.dev[0], NULL, 0,
							    0, 0));
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_command(NULL, w, 0, 0, 0));
	memset(&fake, 0, sizeof(fake));
	fake = *w;	/* a copy is not the command handed out */
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_command(c.dev[0], &fake,
							    0, 0, 0));
	/* ... a command of another device */
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_command(c.dev[1], w, 0,
							    4096, 0));
	/* ... more bytes than its size: it stays held */
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_command(c.dev[0], w, 0,
							    4097, 0));
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], w, 0, 4096,
						       0));
	/* ... completed already */
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_command(c.dev[0], w, 0,
							    4096, 0));
	/* Non-data commands: any byte count is passed through. */
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], f, 0, 77, 5));
	lt_fill(r->buffer, 2048, 8, 0x72);
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[1], r, 0, 2048,
						       8));
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 3, 0, 0, 0, 2000, NULL));
	EXPECT_EQ(1, lt_rs_call(&c.rs, RS_DONE, 0, 0, 0, 0, 0, &m));
	EXPECT_EQ(0, m.a[0]);
	EXPECT_EQ(4096, m.a[1]);
	EXPECT_EQ(1, lt_rs_call(&c.rs, RS_DONE, 1, 0, 0, 0, 0, &m));
	EXPECT_EQ(77, m.a[1]);
	EXPECT_EQ(5, m.q[0]);
	EXPECT_EQ(1, lt_rs_call(&c.rs, RS_DONE, 2, 0, 0, 0, 0, &m));
	EXPECT_EQ(2048, m.a[1]);
	EXPECT_EQ(1, m.a[2]);		/* the server found the bytes */

	/* VD_E_ABORT for a command held across an abort. */
	ASSERT_EQ(0, rs_send(&c, 0, VDC_Flush, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000, &f));
	ASSERT_VD(NOERROR, vdi_client_signal_abort(c.set));
	EXPECT_VD(VD_E_ABORT, vdi_client_complete_command(c.dev[0], f, 0, 0, 0));
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 4, 0, 0, 0, 2000, NULL));
	EXPECT_EQ(1, lt_rs_call(&c.rs, RS_DONE, 3, 0, 0, 0, 0, &m));
	EXPECT_EQ(ERROR_OPERATION_ABORTED, m.a[0]);
	EXPECT_VD(VD_E_OPEN, vdi_client_close(c.set));
	EXPECT_EQ(0, cpair_teardown(&c));
}

/* ------------------------------------------------------------------ */
/* the batch extras: GetCommands, CompleteCommands                    */

static void completion(vdi_client_completion *cc, VDC_Command *cmd,
		       uint32_t code, uint32_t bytes, int64_t pos)
{
	cc->cmd = cmd;
	cc->completionCode = code;
	cc->bytesTransferred = bytes;
	cc->position = pos;
}

TEST(get_commands_and_complete_commands)
{
	VDC_Command *cmds[100], *w[3], *x;
	vdi_client_completion cc[100];
	unsigned int n = 99, done = 99;
	struct lt_msg m;
	struct cpair c;
	int i;

	ASSERT_EQ(0, cpair_spawn(&c, "batch"));
	ASSERT_VD(NOERROR, cpair_ready(&c, 2, 128));
	/* VD_E_INVALID */
	EXPECT_VD(VD_E_INVALID, vdi_client_get_commands(NULL, 0, cmds, 4, &n));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_commands(c.dev[0], 0, NULL, 4,
							&n));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_commands(c.dev[0], 0, cmds, 0,
							&n));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_commands(c.dev[0], 0, cmds, 4,
							NULL));
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_commands(NULL, cc, 1,
							     &done));
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_commands(c.dev[0], NULL, 1,
							     &done));
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_commands(c.dev[0], cc, 1,
							     NULL));
	EXPECT_VD(NOERROR, vdi_client_complete_commands(c.dev[0], cc, 0,
							&done));
	EXPECT_EQ(0U, done);
	/* VD_E_TIMEOUT */
	EXPECT_VD(VD_E_TIMEOUT, vdi_client_get_commands(c.dev[0], 0, cmds, 4,
							&n));
	EXPECT_EQ(0U, n);

	/* Up to max, in FIFO order; the rest on the next call. */
	for (i = 0; i < 6; i++)
		ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Flush, 0, 0, i));
	ASSERT_VD(NOERROR, vdi_client_get_commands(c.dev[0], 1000, cmds, 4,
						   &n));
	ASSERT_EQ(4U, n);
	ASSERT_VD(NOERROR, vdi_client_get_commands(c.dev[0], 0, cmds + 4, 10,
						   &n));
	ASSERT_EQ(2U, n);
	for (i = 0; i < 6; i++)
		EXPECT_EQ(i, cmds[i]->position);
	/* A command named twice: the first is applied, then VD_E_INVALID. */
	completion(&cc[0], cmds[0], 0, 0, 100);
	completion(&cc[1], cmds[1], 0, 0, 101);
	completion(&cc[2], cmds[0], 0, 0, 100);
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_commands(c.dev[0], cc, 3,
							     &done));
	EXPECT_EQ(2U, done);
	/* A command of another device: nothing applied. */
	completion(&cc[0], cmds[2], 0, 0, 102);
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_commands(c.dev[1], cc, 1,
							     &done));
	EXPECT_EQ(0U, done);
	for (i = 0; i < 4; i++)
		completion(&cc[i], cmds[2 + i], 0, 0, 102 + i);
	EXPECT_VD(NOERROR, vdi_client_complete_commands(c.dev[0], cc, 4,
							&done));
	EXPECT_EQ(4U, done);
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 6, 0, 0, 0, 2000, NULL));
	for (i = 0; i < 6; i++) {
		EXPECT_EQ(1, lt_rs_call(&c.rs, RS_DONE, i, 0, 0, 0, 0, &m));
		EXPECT_EQ(100 + i, m.q[0]);
	}

	/* A byte count over a Write's size stops the batch there. */
	for (i = 0; i < 3; i++)
		ASSERT_VD(NOERROR, rs_send(&c, 1, VDC_Write, 4096, i, i));
	ASSERT_VD(NOERROR, vdi_client_get_commands(c.dev[1], 1000, w, 3, &n));
	ASSERT_EQ(3U, n);
	completion(&cc[0], w[0], 0, 4096, 0);
	completion(&cc[1], w[1], 0, 4097, 0);
	completion(&cc[2], w[2], 0, 4096, 0);
	EXPECT_VD(VD_E_INVALID, vdi_client_complete_commands(c.dev[1], cc, 3,
							     &done));
	EXPECT_EQ(1U, done);
	/* ... the others are still held, and can be completed. */
	completion(&cc[1], w[1], 0, 4096, 0);
	EXPECT_VD(NOERROR, vdi_client_complete_commands(c.dev[1], cc + 1, 2,
							&done));
	EXPECT_EQ(2U, done);
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 9, 0, 0, 0, 2000, NULL));

	/* At most 64 per call. */
	for (i = 0; i < 70; i++)
		ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Flush, 0, 0, i));
	ASSERT_VD(NOERROR, vdi_client_get_commands(c.dev[0], 1000, cmds, 100,
						   &n));
	EXPECT_EQ(64U, n);
	for (i = 0; i < (int)n; i++)
		completion(&cc[i], cmds[i], 0, 0, i);
	EXPECT_VD(NOERROR, vdi_client_complete_commands(c.dev[0], cc, n,
							&done));
	EXPECT_EQ(n, done);
	ASSERT_VD(NOERROR, vdi_client_get_commands(c.dev[0], 1000, cmds, 100,
						   &n));
	EXPECT_EQ(6U, n);
	for (i = 0; i < (int)n; i++)
		completion(&cc[i], cmds[i], 0, 0, i);
	EXPECT_VD(NOERROR, vdi_client_complete_commands(c.dev[0], cc, n,
							&done));
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 79, 0, 0, 0, 2000, NULL));

	/* VD_E_ABORT */
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Flush, 0, 0, 0));
	ASSERT_VD(NOERROR, vdi_client_get_commands(c.dev[0], 1000, &x, 1, &n));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_ABORT, 0, 0, 0, 0, 0, NULL));
	completion(&cc[0], x, 0, 0, 0);
	EXPECT_VD(VD_E_ABORT, vdi_client_complete_commands(c.dev[0], cc, 1,
							   &done));
	EXPECT_EQ(0U, done);
	EXPECT_VD(VD_E_ABORT, vdi_client_get_commands(c.dev[1], -1, cmds, 4,
						      &n));
	EXPECT_VD(VD_E_OPEN, vdi_client_close(c.set));
	EXPECT_EQ(0, cpair_teardown(&c));
}

/* ------------------------------------------------------------------ */
/* SignalAbort                                                         */

TEST(signal_abort_codes)
{
	vdi_client_device *dx;
	VDC_Command *cmd;
	struct lt_msg m;
	struct cpair c;
	VDConfig cfg;

	ASSERT_EQ(0, cpair_spawn(&c, "abort"));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_signal_abort(c.set));
	EXPECT_VD(VD_E_INVALID, vdi_client_signal_abort(NULL));
	ASSERT_VD(NOERROR, cpair_ready(&c, 2, 0));
	ASSERT_VD(NOERROR, rs_send(&c, 1, VDC_Flush, 0, 0, 0));
	EXPECT_VD(NOERROR, vdi_client_signal_abort(c.set));
	EXPECT_VD(NOERROR, vdi_client_signal_abort(c.set));
	/* Everything else: VD_E_ABORT, on both sides. */
	EXPECT_VD(VD_E_ABORT, vdi_client_get_configuration(c.set, 0, &cfg));
	EXPECT_VD(VD_E_ABORT, vdi_client_get_command(c.dev[0], INFINITE, &cmd));
	EXPECT_VD(VD_E_ABORT, vdi_client_get_command(c.dev[1], 0, &cmd));
	EXPECT_VD(VD_E_ABORT, vdi_client_open_device(c.set, c.name, &dx));
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_AGENT_WAIT, 0, 0, 0, 0, 2000, &m));
	EXPECT_VD(VD_E_ABORT, m.a[0]);
	EXPECT_EQ(1, lt_rs_call(&c.rs, RS_DONE, 0, 0, 0, 0, 0, &m));
	EXPECT_EQ(ERROR_OPERATION_ABORTED, m.a[0]);
	/* Close: devices were open (VD_E_OPEN), resources released. */
	EXPECT_VD(VD_E_OPEN, vdi_client_close(c.set));
	EXPECT_VD(NOERROR, lt_rs_call(&c.rs, RS_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, cpair_teardown(&c));
}

/* ------------------------------------------------------------------ */
/* OpenInSecondary(Ex), GetBufferHandle, MapBufferHandle              */

TEST(open_in_secondary_codes)
{
	struct lt_peer sec;
	struct cpair c;
	VDConfig cfg;

	ASSERT_EQ(0, cpair_spawn(&c, "sec"));
	ASSERT_EQ(0, lt_spawn(&sec, lt_rc_main, c.name));
	/* VD_E_PROTOCOL: no such set. */
	EXPECT_VD(VD_E_PROTOCOL, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0, 0,
					    NULL));
	ASSERT_VD(NOERROR, cpair_create(&c, 2));
	/* VD_E_PROTOCOL: not yet configured. */
	EXPECT_VD(VD_E_PROTOCOL, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0, 0,
					    NULL));
	ASSERT_VD(NOERROR, lt_rs_ready(&c.rs, 0));
	EXPECT_VD(VD_E_PROTOCOL, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0, 0,
					    NULL));
	ASSERT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000, &cfg));
	/* VD_E_INSTANCE_NAME */
	EXPECT_VD(VD_E_INSTANCE_NAME, lt_rc_call(&sec, RC_SECONDARY, 1, 0, 0,
						 0, 0, NULL));
	/* NOERROR, with every spelling of the default instance. */
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0, 0, NULL));
	/* VD_E_PROTOCOL: this object has a set. */
	EXPECT_VD(VD_E_PROTOCOL, lt_rc_call(&sec, RC_SECONDARY, 2, 0, 0, 0, 0,
					    NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_SECONDARY, 2, 0, 0, 0, 0, NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_SECONDARY, 3, 0, 0, 0, 0, NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	/* A secondary's Close does not end the set. */
	EXPECT_VD(NOERROR, vdi_client_get_configuration(c.set, 0, &cfg));
	/* VD_E_ABORT: the set was aborted. */
	ASSERT_VD(NOERROR, vdi_client_signal_abort(c.set));
	EXPECT_VD(VD_E_ABORT, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0, 0,
					 NULL));
	EXPECT_EQ(0, lt_peer_finish(&sec, 5000));
	EXPECT_EQ(0, cpair_teardown(&c));
}

TEST(secondary_process_serves_a_device)
{
	vdi_client_device *dx = NULL;
	char n1[LT_NAME_MAX];
	struct lt_peer sec;
	VDC_Command *cmd;
	struct lt_msg m;
	struct cpair c;
	VDConfig cfg;
	int i;

	ASSERT_EQ(0, cpair_spawn(&c, "secdev"));
	ASSERT_EQ(0, lt_spawn(&sec, lt_rc_main, c.name));
	lt_dev_name(n1, c.name, 1);
	c.ndev = 2;
	ASSERT_VD(NOERROR, cpair_create(&c, 2));
	ASSERT_VD(NOERROR, lt_rs_ready(&c.rs, 0));
	ASSERT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000, &cfg));
	ASSERT_VD(NOERROR, vdi_client_open_device(c.set, c.name, &c.dev[0]));
	/* The secondary opens device 1: it is its own now, and with it
	 * every device of the set is open on the client side. */
	ASSERT_VD(NOERROR, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, lt_rc_call(&sec, RC_OPEN, 1, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_OPEN, vdi_client_open_device(c.set, n1, &dx));
	EXPECT_VD(VD_E_OPEN, lt_rc_call(&sec, RC_OPEN, 1, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN_DEV, -1, 0, 0, 0, 0,
				      NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));
	/* Writes to both devices, each served by its own process. */
	for (i = 0; i < 8; i++)
		ASSERT_VD(NOERROR, rs_send(&c, i % 2, VDC_Write, 65536, 0x44,
					   (int64_t)i * 65536));
	for (i = 0; i < 4; i++) {
		ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000,
							  &cmd));
		EXPECT_EQ((int64_t)i * 2 * 65536, cmd->position);
		EXPECT_TRUE(lt_check(cmd->buffer, 65536, cmd->position, 0x44));
		EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], cmd,
							       0, 65536, 0));
	}
	ASSERT_VD(NOERROR, lt_rc_serve(&sec, 1, 4, 0x44, -1, 1000, &m));
	EXPECT_EQ(4, m.a[0]);
	EXPECT_EQ(0, m.a[1]);		/* no bad payload */
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 8, 0, 0, 0, 2000, NULL));
	/* The normal end, each process seeing VD_E_CLOSE. */
	for (i = 0; i < 2; i++)
		ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_CLOSE_DEV, i, 0, 0, 0,
					      0, NULL));
	EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&sec, 1, -1, -1, -1, 1000, NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_VD(VD_E_CLOSE, vdi_client_get_command(c.dev[0], 1000, &cmd));
	EXPECT_VD(NOERROR, vdi_client_close(c.set));
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_AGENT_WAIT, 0, 0, 0, 0, 2000, &m));
	EXPECT_VD(NOERROR, m.a[0]);
	EXPECT_EQ(0, lt_peer_finish(&sec, 5000));
	EXPECT_EQ(0, cpair_teardown(&c));
}

/*
 * A device a secondary holds and has not finished is an open device: the
 * primary's Close says VD_E_OPEN (and the set is aborted), as it does for
 * its own devices; one the secondary saw end normally is not.
 */
TEST(close_with_a_device_a_secondary_holds_is_open)
{
	struct lt_peer sec;
	VDC_Command *cmd;
	struct lt_msg m;
	struct cpair c;
	VDConfig cfg;
	int still_open;

	for (still_open = 1; still_open >= 0; still_open--) {
		ASSERT_EQ(0, cpair_spawn(&c, "secopen"));
		ASSERT_EQ(0, lt_spawn(&sec, lt_rc_main, c.name));
		c.ndev = 2;
		ASSERT_VD(NOERROR, cpair_create(&c, 2));
		ASSERT_VD(NOERROR, lt_rs_ready(&c.rs, 0));
		ASSERT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000,
								&cfg));
		ASSERT_VD(NOERROR, vdi_client_open_device(c.set, c.name,
							  &c.dev[0]));
		ASSERT_VD(NOERROR, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0,
					      0, NULL));
		ASSERT_VD(NOERROR, lt_rc_call(&sec, RC_OPEN, 1, 0, 0, 0, 0,
					      NULL));
		ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN_DEV, -1, 0, 0, 0,
					      0, NULL));
		ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_AGENT, 0, 0, 0, 0, 0,
					      NULL));
		/* The primary's own device ends normally... */
		ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_CLOSE_DEV, 0, 0, 0, 0,
					      0, NULL));
		EXPECT_VD(VD_E_CLOSE, vdi_client_get_command(c.dev[0], 1000,
							     &cmd));
		if (!still_open) {
			/* ...and so does the secondary's, which it keeps. */
			ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_CLOSE_DEV, 1,
						      0, 0, 0, 0, NULL));
			EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&sec, 1, -1, -1, -1,
							  1000, NULL));
			EXPECT_VD(NOERROR, vdi_client_close(c.set));
			EXPECT_VD(0, lt_rs_call(&c.rs, RS_AGENT_WAIT, 0, 0, 0,
						0, 2000, &m));
			EXPECT_VD(NOERROR, m.a[0]);
		} else {
			/* ...but device 1 is still in the secondary's use. */
			EXPECT_VD(VD_E_OPEN, vdi_client_close(c.set));
			EXPECT_VD(0, lt_rs_call(&c.rs, RS_AGENT_WAIT, 0, 0, 0,
						0, 2000, &m));
			EXPECT_VD(VD_E_ABORT, m.a[0]);
			EXPECT_VD(VD_E_ABORT, lt_rc_serve(&sec, 1, -1, -1, -1,
							  1000, NULL));
		}
		EXPECT_VD(VD_E_PROTOCOL, vdi_client_close(c.set));
		/* The secondary's own Close: its device was in use. */
		EXPECT_VD(still_open ? VD_E_OPEN : NOERROR,
			  lt_rc_call(&sec, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
		EXPECT_EQ(0, lt_peer_finish(&sec, 5000));
		EXPECT_EQ(0, cpair_teardown(&c));
	}
}

/* ------------------------------------------------------------------ */
/* huge timeouts: "forever", not "at once"                            */

TEST(huge_timeouts_wait_forever)
{
	static const int64_t huge[] = {
		INT64_MAX, (int64_t)LONG_MAX, INT64_MAX / 1000 + 1,
		(int64_t)1 << 62, INT64_MAX / 2000 + 1,
	};
	VDC_Command *cmd;
	struct lt_msg m;
	struct cpair c;
	VDConfig cfg;
	int64_t t0;
	unsigned int i;

	ASSERT_EQ(0, cpair_spawn(&c, "huge"));
	ASSERT_VD(NOERROR, cpair_create(&c, 1));
	/* GetConfiguration: the server ends its configuration 300 ms on. */
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN, 0, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_BEGIN, VDF_WriteMedia |
				      VDF_ReadMedia, 0, 512, 65536, 0, NULL));
	ASSERT_EQ(0, rs_post(&c, RS_END, 0, 300));
	t0 = lt_now_ms();
	EXPECT_VD(NOERROR, vdi_client_get_configuration(c.set, INT64_MAX,
							&cfg));
	EXPECT_LE(250, lt_now_ms() - t0);
	EXPECT_VD(NOERROR, rs_answer(&c, &m));
	ASSERT_VD(NOERROR, vdi_client_open_device(c.set, c.name, &c.dev[0]));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN_DEV, -1, 0, 0, 0, 0,
				      NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));
	/* GetCommand: the command comes 300 ms on. */
	for (i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		lt_msg_init(&m, RS_SEND);
		m.a[0] = 0;
		m.a[1] = VDC_Flush;
		m.q[3] = 300;
		ASSERT_EQ(0, lt_send(&c.rs, &m));
		t0 = lt_now_ms();
		cmd = NULL;
		EXPECT_EQ(NOERROR, vdi_client_get_command(c.dev[0], huge[i],
							  &cmd)) {
			TH_LOG("timeout %lld: %s", (long long)huge[i],
			       vdi_last_error());
		}
		EXPECT_LE(250, lt_now_ms() - t0);
		EXPECT_VD(NOERROR, rs_answer(&c, &m));
		if (cmd)
			EXPECT_VD(NOERROR, vdi_client_complete_command(
					c.dev[0], cmd, 0, 0, 0));
	}
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 5, 0, 0, 0, 2000, NULL));
	c.ndev = 1;
	end_normally(_metadata, &c);
}

/* ------------------------------------------------------------------ */
/* fork(): a child that does not exec keeps nothing of the set alive  */

static bool is_vdi_fd(int fd)
{
	char path[64], link[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "/dev/vdi") ||
	       !strcmp(link, "anon_inode:[vdi-device]");
}

/*
 * The primary client: Create (answer op 1), GetConfiguration, a device,
 * then fork a child that neither execs nor exits; the child answers op 3
 * (a0: the buffer area is not mapped in it, a1: vdi fds it holds, a2: Close
 * of the parent's object refused, a3: the child's memory at the area's
 * address intact after Close and free), the
 * parent op 2 (a0: the child's pid), and both sleep.
 */
static int fork_client(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	vdi_client_device *dev;
	vdi_client_set *set;
	unsigned char vec[1];
	struct lt_msg m;
	uint8_t *area, *mine;
	VDConfig cfg;
	pid_t pid;
	int fd, n;

	set = vdi_client_set_new();
	CK(set != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	CKEQ(NOERROR, vdi_client_create(set, name, &cfg));
	lt_msg_init(&m, 1);
	CK(lt_send(self, &m) == 0);
	CKEQ(NOERROR, vdi_client_get_configuration(set, 10000, &cfg));
	CKEQ(NOERROR, vdi_client_open_device(set, name, &dev));
	CKEQ(NOERROR, vdi_client_map_buffer_handle(set, 0, &area));
	pid = fork();
	CK(pid >= 0);
	if (pid == 0) {
		lt_msg_init(&m, 3);
		m.a[0] = mincore((void *)((uintptr_t)area & ~4095UL), 4096,
				 vec) && errno == ENOMEM;
		for (fd = 0; fd < 1024; fd++)
			m.a[1] += is_vdi_fd(fd);
		/*
		 * The parent's object, here (as a C++ destructor at exit
		 * would): Close refuses, free leaves it alone, and memory
		 * the child now has where the area was is not touched.
		 */
		mine = mmap((void *)((uintptr_t)area & ~4095UL), 4096,
			    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			    MAP_FIXED_NOREPLACE, -1, 0);
		if (mine != MAP_FAILED)
			memset(mine, 0x5a, 4096);
		m.a[2] = vdi_client_close(set) == VD_E_PROTOCOL;
		vdi_client_set_free(set);
		m.a[3] = mine != MAP_FAILED && mine[0] == 0x5a &&
			 mine[4095] == 0x5a;
		n = lt_send(self, &m);
		if (!n)
			sleep(20);
		_exit(0);
	}
	lt_msg_init(&m, 2);
	m.a[0] = (int)pid;
	CK(lt_send(self, &m) == 0);
	sleep(30);
	return 0;
}

TEST(fork_child_does_not_keep_a_dead_parents_set)
{
	char name[LT_NAME_MAX];
	struct lt_peer rs, cl;
	struct lt_msg m, a, b;
	pid_t child;

	lt_name(name, "fork");
	ASSERT_EQ(0, lt_spawn(&rs, lt_rs_main, name));
	ASSERT_EQ(0, lt_spawn(&cl, fork_client, name));
	ASSERT_EQ(0, lt_recv(&cl, &m, LT_RPC_MS));
	ASSERT_EQ(1, m.op);
	ASSERT_VD(NOERROR, lt_rs_ready(&rs, 0));
	ASSERT_VD(NOERROR, lt_rs_call(&rs, RS_OPEN_DEV, -1, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));
	ASSERT_EQ(0, lt_recv(&cl, &a, LT_RPC_MS));
	ASSERT_EQ(0, lt_recv(&cl, &b, LT_RPC_MS));
	if (a.op == 3) {
		m = a;
		a = b;
		b = m;
	}
	ASSERT_EQ(2, a.op);
	ASSERT_EQ(3, b.op);
	child = (pid_t)a.a[0];
	/* The area is not in the child, nor is any vdi file. */
	EXPECT_EQ(1, b.a[0]);
	EXPECT_EQ(0, b.a[1]);
	/* The parent's object in the child: Close refuses, the child's own
	 * memory where the area was survives Close and free. */
	EXPECT_EQ(1, b.a[2]);
	EXPECT_EQ(1, b.a[3]);
	/* The primary dies; its child lives on: the server must learn. */
	ASSERT_EQ(0, kill(child, 0));
	lt_peer_kill(&cl);
	EXPECT_VD(0, lt_rs_call(&rs, RS_AGENT_WAIT, 0, 0, 0, 0, 3000, &m));
	EXPECT_VD(VD_E_ABORT, m.a[0]);
	EXPECT_EQ(0, kill(child, 0));
	kill(child, SIGKILL);
	EXPECT_VD(NOERROR, lt_rs_call(&rs, RS_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_peer_finish(&rs, 5000));
}

TEST(buffer_handles_across_processes)
{
	unsigned int hw = 0, hr = 0;
	struct lt_peer sec;
	VDC_Command *w, *r;
	struct lt_msg m;
	struct cpair c;

	ASSERT_EQ(0, cpair_spawn(&c, "handle"));
	ASSERT_EQ(0, lt_spawn(&sec, lt_rc_main, c.name));
	ASSERT_VD(NOERROR, cpair_ready(&c, 1, 0));
	ASSERT_VD(NOERROR, lt_rc_call(&sec, RC_SECONDARY, 0, 0, 0, 0, 0, NULL));

	/* A Write: the secondary maps its buffer and finds the bytes. */
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Write, 30000, 0x55, 1 << 20));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000, &w));
	ASSERT_VD(NOERROR, vdi_client_get_buffer_handle(c.set, w->buffer, &hw));
	EXPECT_GT(c.cfg.bufferAreaSize, hw);
	ASSERT_VD(NOERROR, lt_rc_call(&sec, RC_MAP, (int)hw, 30000, 0x55, -1,
				      1 << 20, &m));
	EXPECT_EQ(1, m.a[0]);
	/* A Read: the secondary fills the buffer, the primary completes. */
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Read, 20000, 0x66, 3 << 20));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000, &r));
	ASSERT_VD(NOERROR, vdi_client_get_buffer_handle(c.set, r->buffer, &hr));
	EXPECT_NE(hw, hr);
	ASSERT_VD(NOERROR, lt_rc_call(&sec, RC_MAP, (int)hr, 20000, -1, 0x66,
				      3 << 20, &m));
	EXPECT_TRUE(lt_check(r->buffer, 20000, 3 << 20, 0x66));
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], r, 0, 20000,
						       0));
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], w, 0, 30000,
						       0));
	EXPECT_VD(0, lt_rs_call(&c.rs, RS_WAIT, 2, 0, 0, 0, 2000, NULL));
	EXPECT_EQ(1, lt_rs_call(&c.rs, RS_DONE, 1, 0, 0, 0, 0, &m));
	EXPECT_EQ(20000, m.a[1]);
	EXPECT_EQ(1, m.a[2]);		/* the server sees those bytes */
	/* VD_E_INVALID in the secondary: a handle outside the area. */
	EXPECT_VD(VD_E_INVALID, lt_rc_call(&sec, RC_MAP,
					   (int)c.cfg.bufferAreaSize, 1, -1, -1,
					   0, NULL));
	EXPECT_VD(VD_E_INVALID, lt_rc_call(&sec, RC_MAP, -1, 1, -1, -1, 0,
					   NULL));
	EXPECT_VD(NOERROR, lt_rc_call(&sec, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_peer_finish(&sec, 5000));
	end_normally(_metadata, &c);
}

TEST(buffer_handle_codes)
{
	unsigned int h = 12345, area;
	uint8_t *p = NULL, local[8];
	VDC_Command *w;
	struct cpair c;
	VDConfig cfg;

	ASSERT_EQ(0, cpair_spawn(&c, "hcodes"));
	/* VD_E_PROTOCOL: no set. */
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_get_buffer_handle(c.set, local, &h));
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_map_buffer_handle(c.set, 0, &p));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_buffer_handle(NULL, local, &h));
	EXPECT_VD(VD_E_INVALID, vdi_client_map_buffer_handle(NULL, 0, &p));
	ASSERT_VD(NOERROR, cpair_create(&c, 1));
	/* No area before GetConfiguration: nothing is valid. */
	EXPECT_VD(VD_E_INVALID, vdi_client_map_buffer_handle(c.set, 0, &p));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_buffer_handle(c.set, local, &h));
	ASSERT_VD(NOERROR, lt_rs_ready(&c.rs, 0));
	ASSERT_VD(NOERROR, vdi_client_get_configuration(c.set, 1000, &cfg));
	ASSERT_VD(NOERROR, vdi_client_open_device(c.set, c.name, &c.dev[0]));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_OPEN_DEV, -1, 0, 0, 0, 0,
				      NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&c.rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));
	area = cfg.bufferAreaSize;
	ASSERT_VD(NOERROR, rs_send(&c, 0, VDC_Write, 4096, 1, 0));
	ASSERT_VD(NOERROR, vdi_client_get_command(c.dev[0], 1000, &w));
	/* Round trip. */
	ASSERT_VD(NOERROR, vdi_client_get_buffer_handle(c.set, w->buffer, &h));
	ASSERT_VD(NOERROR, vdi_client_map_buffer_handle(c.set, h, &p));
	EXPECT_TRUE(p == w->buffer);
	ASSERT_VD(NOERROR, vdi_client_get_buffer_handle(c.set, w->buffer + 100,
							&h));
	ASSERT_VD(NOERROR, vdi_client_map_buffer_handle(c.set, h, &p));
	EXPECT_TRUE(p == w->buffer + 100);
	ASSERT_VD(NOERROR, vdi_client_map_buffer_handle(c.set, area - 1, &p));
	/* VD_E_INVALID */
	EXPECT_VD(VD_E_INVALID, vdi_client_get_buffer_handle(c.set, local, &h));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_buffer_handle(c.set, NULL, &h));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_buffer_handle(c.set, p + 1, &h));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_buffer_handle(c.set, w->buffer,
							     NULL));
	EXPECT_VD(VD_E_INVALID, vdi_client_map_buffer_handle(c.set, area, &p));
	EXPECT_VD(VD_E_INVALID, vdi_client_map_buffer_handle(c.set, 0xffffffffU,
							     &p));
	EXPECT_VD(VD_E_INVALID, vdi_client_map_buffer_handle(c.set, 0, NULL));
	EXPECT_VD(NOERROR, vdi_client_complete_command(c.dev[0], w, 0, 4096,
						       0));
	c.ndev = 1;
	end_normally(_metadata, &c);
}

TEST_HARNESS_MAIN
