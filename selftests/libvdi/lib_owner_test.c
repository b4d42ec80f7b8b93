// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: Open refuses a set another user created (a set name is anyone's
 * to take); vdi_server_open_ex names the expected owner;
 * vdi_server_get_owner tells whose a set is.  The squatter and the engine
 * are processes of different uids.
 */
#include "lib_test_util.h"

#include <sys/stat.h>

#define NOBODY		65534
#define VICTIM		1000	/* an unprivileged engine */

/*
 * Child: the squatter.  As uid a[0], create the set (one device) with mode
 * 0666 and answer 0; then, told so, wait for the configuration and answer
 * GetConfiguration's code.
 */
#define OP_SQUAT	20
#define OP_WAITCFG	21

static int squatter(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	vdi_client_set *c = NULL;
	VDConfig cfg;
	struct lt_msg m;

	for (;;) {
		CK(lt_recv(self, &m, LT_RPC_MS) == 0);
		switch (m.op) {
		case OP_SQUAT:
			CKEQ(0, lt_become((uid_t)m.a[0], 0));
			c = vdi_client_set_new();
			CK(c != NULL);
			CKEQ(NOERROR, vdi_client_set_access(c, 0666, -1));
			memset(&cfg, 0, sizeof(cfg));
			cfg.deviceCount = 1;
			m.ret = vdi_client_create(c, name, &cfg);
			break;
		case OP_WAITCFG:
			m.ret = vdi_client_get_configuration(c, m.q[0], &cfg);
			break;
		default:	/* LT_OP_EXIT */
			lt_send(self, &m);
			if (c)
				vdi_client_set_free(c);
			return 0;
		}
		CK(lt_send(self, &m) == 0);
	}
}

struct owner_case {
	char name[LT_NAME_MAX];
	uid_t engine;		/* the engine's uid */
	int64_t owner;		/* vdi_server_open_ex's argument */
	int want;		/* its result */
	char reason[256];	/* vdi_last_error() after it */
	uint32_t uid, gid, mode;	/* vdi_server_get_owner on NOERROR */
};

/* The engine: as c->engine, Open(Ex) the set. */
static int engine_open(struct owner_case *c)
{
	vdi_server_set *s = NULL;
	int r;

	if (c->owner == VDI_OWNER_SELF)
		r = vdi_server_open(&s, NULL, c->name);
	else
		r = vdi_server_open_ex(&s, NULL, c->name, c->owner);
	snprintf(c->reason, sizeof(c->reason), "%s", vdi_last_error());
	if (r == NOERROR) {
		CKEQ(NOERROR, vdi_server_get_owner(s, &c->uid, &c->gid,
						   &c->mode));
		vdi_server_close(s);
	} else {
		CK(s == NULL);
	}
	return r;
}

static int engine_child(struct lt_peer *self, void *arg)
{
	struct owner_case *c = arg;
	int r;

	(void)self;
	CKEQ(0, lt_become(c->engine, 0));
	r = engine_open(c);
	CKEQ(c->want, r);
	return 0;
}

FIXTURE(own) {
	struct lt_peer sq;
	struct owner_case *c;
};

FIXTURE_SETUP(own)
{
	lt_peer_init(&self->sq);
	self->c = mmap(NULL, sizeof(*self->c), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, (void *)self->c);
	memset(self->c, 0, sizeof(*self->c));
	lt_name(self->c->name, "own");
	lt_node_open_to_all();
}

FIXTURE_TEARDOWN(own)
{
	lt_peer_kill(&self->sq);
	munmap(self->c, sizeof(*self->c));
	lt_node_restore();
}

/* The squatter (uid @uid) takes c->name. */
static void squat(struct __test_metadata *_metadata, FIXTURE_DATA(own) *self,
		  uid_t uid)
{
	struct lt_msg m;

	ASSERT_EQ(0, lt_spawn(&self->sq, squatter, self->c->name));
	lt_msg_init(&m, OP_SQUAT);
	m.a[0] = (int32_t)uid;
	ASSERT_EQ(0, lt_call(&self->sq, &m, LT_RPC_MS));
	ASSERT_VD(NOERROR, m.ret);
}

/* The squatter's GetConfiguration (waiting up to @ms). */
static int squatter_config(FIXTURE_DATA(own) *self, int64_t ms)
{
	struct lt_msg m;
	int r;

	lt_msg_init(&m, OP_WAITCFG);
	m.q[0] = ms;
	r = lt_call(&self->sq, &m, LT_RPC_MS);
	return r ? r : m.ret;
}

/* Run the engine case in a child of uid c->engine. */
static void run_engine(struct __test_metadata *_metadata,
		       FIXTURE_DATA(own) *self)
{
	struct lt_peer e;

	ASSERT_EQ(0, lt_spawn(&e, engine_child, self->c));
	EXPECT_EQ(0, lt_reap(&e, LT_RPC_MS)) {
		TH_LOG("engine uid %u, owner %lld: %s", self->c->engine,
		       (long long)self->c->owner, self->c->reason);
	}
	lt_peer_kill(&e);
}

TEST_F(own, root_engine_refuses_a_squatters_set_and_sends_nothing)
{
	vdi_server_set *s = (vdi_server_set *)1;

	squat(_metadata, self, NOBODY);
	EXPECT_VD(VD_E_SECURITY, vdi_server_open(&s, NULL, self->c->name));
	EXPECT_TRUE(s == NULL);
	/* The reason names whose set it is. */
	EXPECT_NE(NULL, strstr(vdi_last_error(), "uid 65534")) {
		TH_LOG("reason: %s", vdi_last_error());
	}
	/* The squatter never gets a configuration: its set is ended. */
	EXPECT_VD(VD_E_ABORT, squatter_config(self, 5000));
	EXPECT_EQ(0, lt_peer_finish(&self->sq, 5000));
}

TEST_F(own, open_ex_accepts_the_named_owner)
{
	vdi_server_set *s = NULL;
	uint32_t uid = 1, gid = 1, mode = 1;

	squat(_metadata, self, NOBODY);
	ASSERT_VD(NOERROR, vdi_server_open_ex(&s, NULL, self->c->name,
					      NOBODY));
	ASSERT_VD(NOERROR, vdi_server_get_owner(s, &uid, &gid, &mode));
	EXPECT_EQ((uint32_t)NOBODY, uid);
	EXPECT_EQ((uint32_t)NOBODY, gid);
	EXPECT_EQ(0666U, mode);
	/* Each output may be NULL. */
	EXPECT_VD(NOERROR, vdi_server_get_owner(s, NULL, NULL, &mode));
	EXPECT_VD(VD_E_INVALID, vdi_server_get_owner(NULL, &uid, &gid, &mode));
	/* The configuration goes on as usual. */
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(s, VDF_WriteMedia, 0,
							  512, 65536, 0));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(s));
	EXPECT_VD(NOERROR, squatter_config(self, 5000));
	vdi_server_close(s);
	EXPECT_EQ(0, lt_peer_finish(&self->sq, 5000));
}

TEST_F(own, open_ex_refuses_an_owner_not_named)
{
	vdi_server_set *s = NULL;

	squat(_metadata, self, NOBODY);
	EXPECT_VD(VD_E_SECURITY, vdi_server_open_ex(&s, NULL, self->c->name,
						    VICTIM));
	EXPECT_TRUE(s == NULL);
	EXPECT_NE(NULL, strstr(vdi_last_error(), "uid 65534")) {
		TH_LOG("reason: %s", vdi_last_error());
	}
	EXPECT_NE(NULL, strstr(vdi_last_error(), "1000")) {
		TH_LOG("reason: %s", vdi_last_error());
	}
	EXPECT_VD(VD_E_ABORT, squatter_config(self, 5000));
	EXPECT_EQ(0, lt_peer_finish(&self->sq, 5000));
}

TEST_F(own, open_ex_any_owner_is_the_old_open)
{
	vdi_server_set *s = NULL;

	squat(_metadata, self, NOBODY);
	ASSERT_VD(NOERROR, vdi_server_open_ex(&s, NULL, self->c->name,
					      VDI_OWNER_ANY));
	vdi_server_close(s);
	EXPECT_EQ(0, lt_peer_finish(&self->sq, 5000));
}

TEST_F(own, open_ex_checks_the_owner_argument)
{
	vdi_server_set *s = (vdi_server_set *)1;

	squat(_metadata, self, NOBODY);
	EXPECT_VD(VD_E_INVALID, vdi_server_open_ex(&s, NULL, self->c->name,
						   -3));
	EXPECT_TRUE(s == NULL);
	EXPECT_VD(VD_E_INVALID, vdi_server_open_ex(&s, NULL, self->c->name,
						   (int64_t)UINT32_MAX));
	EXPECT_VD(VD_E_INVALID, vdi_server_open_ex(&s, NULL, self->c->name,
						   (int64_t)1 << 32));
	/* Nothing was opened: the set is still free for its engine. */
	ASSERT_VD(NOERROR, vdi_server_open_ex(&s, NULL, self->c->name,
					      NOBODY));
	vdi_server_close(s);
	EXPECT_EQ(0, lt_peer_finish(&self->sq, 5000));
}

/* Two unprivileged users: the engine of uid 1000, the squatter nobody. */
TEST_F(own, unprivileged_engine_refuses_another_users_set)
{
	squat(_metadata, self, NOBODY);
	self->c->engine = VICTIM;
	self->c->owner = VDI_OWNER_SELF;
	self->c->want = VD_E_SECURITY;
	run_engine(_metadata, self);
	EXPECT_NE(NULL, strstr(self->c->reason, "uid 65534")) {
		TH_LOG("reason: %s", self->c->reason);
	}
	EXPECT_VD(VD_E_ABORT, squatter_config(self, 5000));
	EXPECT_EQ(0, lt_peer_finish(&self->sq, 5000));
}

TEST_F(own, unprivileged_engine_accepts_its_own_set)
{
	squat(_metadata, self, VICTIM);
	self->c->engine = VICTIM;
	self->c->owner = VDI_OWNER_SELF;
	self->c->want = NOERROR;
	run_engine(_metadata, self);
	EXPECT_EQ((uint32_t)VICTIM, self->c->uid);
	EXPECT_EQ(0666U, self->c->mode);
	EXPECT_EQ(0, lt_peer_finish(&self->sq, 5000));
}

/* A set of root's: an unprivileged engine trusts it by default. */
TEST_F(own, unprivileged_engine_accepts_roots_set)
{
	vdi_client_set *c = vdi_client_set_new();
	VDConfig cfg = { .deviceCount = 1 };

	ASSERT_NE(NULL, c);
	ASSERT_VD(NOERROR, vdi_client_set_access(c, 0666, -1));
	ASSERT_VD(NOERROR, vdi_client_create(c, self->c->name, &cfg));
	self->c->engine = NOBODY;
	self->c->owner = VDI_OWNER_SELF;
	self->c->want = NOERROR;
	run_engine(_metadata, self);
	EXPECT_EQ(0U, self->c->uid);
	EXPECT_EQ(0666U, self->c->mode);
	vdi_client_set_free(c);
}

TEST_HARNESS_MAIN
