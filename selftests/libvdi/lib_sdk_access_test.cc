// SPDX-License-Identifier: GPL-2.0
/*
 * The SDK's access model through libvdi's SDK classes (include/sqlvdi):
 * ClientVirtualDeviceSet::Create gives the set the mode 0666 less the
 * umask (the calling thread's), as the SDK's shared-memory files get.  SQL Server runs as
 * another user, so SDK clients call umask(0) (or rely on a shared group);
 * the engine's owner check (vdi_server_open_ex) applies all the same.
 *
 * The SDK client is a child process (of some uid, with some umask); the
 * engine is this process (root) or a child of another uid.
 */
#include "lib_test_util.h"

#include <sched.h>
#include <sys/stat.h>

#include "vdi.h"
#include "vdierror.h"

#define CLIENT_UID	1000
#define ENGINE_UID	2000

struct access_case {
	char name[LT_NAME_MAX];
	uid_t client_uid;	/* 0: stay root */
	mode_t umask;		/* the client's */
	uid_t engine_uid;
	gid_t engine_group;	/* a supplementary group of the engine */
	int64_t owner;		/* vdi_server_open_ex's argument */
	bool own_fs_thread;	/* Create in a thread with its own umask */
};

/*
 * Create from a thread that has its own filesystem context (unshare
 * CLONE_FS), so its own umask: that one applies, as it would to the files
 * the thread creates, not the process's main thread's.
 */
struct thread_create {
	const struct access_case *c;
	ClientVirtualDeviceSet *vds;
	char *name;
	VDConfig *config;
	int ret;
	int umask_after;
};

static void *create_in_thread(void *arg)
{
	struct thread_create *t = (struct thread_create *)arg;

	if (unshare(CLONE_FS)) {
		t->ret = -errno;
		return NULL;
	}
	umask(t->c->umask);
	t->ret = t->vds->Create(t->name, t->config);
	t->umask_after = (int)umask(0);
	return NULL;
}

/* The SDK client: Create with the case's umask, answer, wait to be told. */
static int sdk_client(struct lt_peer *self, void *arg)
{
	const struct access_case *c = (const struct access_case *)arg;
	ClientVirtualDeviceSet *vds;
	char name[LT_NAME_MAX];
	VDConfig config;
	struct lt_msg m;

	if (c->client_uid)
		CKEQ(0, lt_become(c->client_uid, 0));
	umask(c->umask);
	snprintf(name, sizeof(name), "%s", c->name);
	memset(&config, 0, sizeof(config));
	config.deviceCount = 1;
	vds = new ClientVirtualDeviceSet();
	lt_msg_init(&m, 1);
	if (c->own_fs_thread) {
		struct thread_create t = { c, vds, name, &config, -1, -1 };
		pthread_t th;

		umask(c->umask ^ 022);	/* the process's: not this one */
		CKEQ(0, pthread_create(&th, NULL, create_in_thread, &t));
		CKEQ(0, pthread_join(th, NULL));
		m.ret = t.ret;
		m.a[0] = t.umask_after;
	} else {
		m.ret = vds->Create(name, &config);
		/* Reading the umask must not have changed it. */
		m.a[0] = (int32_t)umask(0);
	}
	CK(lt_send(self, &m) == 0);
	CK(lt_recv(self, &m, LT_RPC_MS) == 0);
	delete vds;
	return 0;
}

/* The engine: open the set as the case says; its mode on success. */
static int engine_open(const struct access_case *c, uint32_t *mode)
{
	vdi_server_set *s = NULL;
	uint32_t uid, gid;
	int r;

	r = vdi_server_open_ex(&s, NULL, c->name, c->owner);
	if (r == NOERROR) {
		r = vdi_server_get_owner(s, &uid, &gid, mode);
		vdi_server_close(s);
	}
	return r;
}

static int engine_child(struct lt_peer *self, void *arg)
{
	const struct access_case *c = (const struct access_case *)arg;
	struct lt_msg m;
	uint32_t mode = 0;

	CKEQ(0, lt_become(c->engine_uid, c->engine_group));
	lt_msg_init(&m, 2);
	m.ret = engine_open(c, &mode);
	m.a[0] = (int32_t)mode;
	CK(lt_send(self, &m) == 0);
	return 0;
}

/*
 * One case's state.  (The harness's fixtures do not build as C++: each test
 * sets up and tears down itself; a failed ASSERT leaves /dev/vdi open to
 * all, in a test VM that is failing anyway.)
 */
struct acc {
	struct access_case c;
	struct lt_peer cl;
};

static void acc_setup(struct acc *self)
{
	memset(&self->c, 0, sizeof(self->c));
	lt_name(self->c.name, "sacc");
	self->c.owner = VDI_OWNER_ANY;
	lt_peer_init(&self->cl);
	lt_node_open_to_all();
}

static void acc_teardown(struct acc *self)
{
	lt_peer_kill(&self->cl);
	lt_node_restore();
}

#define ACC_TEST(name) \
	static void name##_body(struct __test_metadata *_metadata, \
				struct acc *self); \
	TEST(name) \
	{ \
		struct acc a; \
		acc_setup(&a); \
		name##_body(_metadata, &a); \
		acc_teardown(&a); \
	} \
	static void name##_body(struct __test_metadata *_metadata, \
				struct acc *self)

/* Start the client; it has created the set when this returns. */
static void client_create(struct __test_metadata *_metadata,
			  struct acc *self)
{
	struct lt_msg m;

	ASSERT_EQ(0, lt_spawn(&self->cl, sdk_client, &self->c));
	ASSERT_EQ(0, lt_recv(&self->cl, &m, LT_RPC_MS));
	ASSERT_VD(NOERROR, m.ret);
	EXPECT_EQ((int)self->c.umask, m.a[0]);
}

static void client_finish(struct __test_metadata *_metadata,
			  struct acc *self)
{
	struct lt_msg m;

	lt_msg_init(&m, 3);
	ASSERT_EQ(0, lt_send(&self->cl, &m));
	EXPECT_EQ(0, lt_reap(&self->cl, LT_RPC_MS));
}

/* The engine as root: the mode the set got. */
static uint32_t mode_seen(struct __test_metadata *_metadata,
			  struct acc *self)
{
	uint32_t mode = 0;

	EXPECT_VD(NOERROR, engine_open(&self->c, &mode));
	return mode;
}

/* The engine as another uid: its Open's code, *mode on NOERROR. */
static int engine_as_other(struct __test_metadata *_metadata,
			   struct acc *self, uint32_t *mode)
{
	struct lt_peer e;
	struct lt_msg m;

	memset(&m, 0, sizeof(m));
	m.ret = -1;
	EXPECT_EQ(0, lt_spawn(&e, engine_child, &self->c));
	EXPECT_EQ(0, lt_recv(&e, &m, LT_RPC_MS));
	EXPECT_EQ(0, lt_reap(&e, LT_RPC_MS));
	lt_peer_kill(&e);
	*mode = (uint32_t)m.a[0];
	return m.ret;
}

ACC_TEST(umask_0_gives_0666)
{
	self->c.umask = 0;
	client_create(_metadata, self);
	EXPECT_EQ(0666U, mode_seen(_metadata, self));
	client_finish(_metadata, self);
}

ACC_TEST(umask_022_gives_0644)
{
	self->c.umask = 022;
	client_create(_metadata, self);
	EXPECT_EQ(0644U, mode_seen(_metadata, self));
	client_finish(_metadata, self);
}

ACC_TEST(umask_007_gives_0660)
{
	self->c.umask = 007;
	client_create(_metadata, self);
	EXPECT_EQ(0660U, mode_seen(_metadata, self));
	client_finish(_metadata, self);
}

/* Nothing left for the owner either: the module's default, 0600. */
ACC_TEST(umask_0666_gives_0600)
{
	self->c.umask = 0666;
	client_create(_metadata, self);
	EXPECT_EQ(0600U, mode_seen(_metadata, self));
	client_finish(_metadata, self);
}

/* The umask of the thread that calls Create, when it has its own. */
ACC_TEST(umask_of_the_calling_thread)
{
	self->c.umask = 0;
	self->c.own_fs_thread = true;
	client_create(_metadata, self);
	EXPECT_EQ(0666U, mode_seen(_metadata, self));
	client_finish(_metadata, self);
}

/* SQL Server's case: another user opens the set of a umask(0) client. */
ACC_TEST(umask_0_lets_another_user_in)
{
	uint32_t mode = 0;

	self->c.client_uid = CLIENT_UID;
	self->c.umask = 0;
	self->c.engine_uid = ENGINE_UID;
	self->c.owner = CLIENT_UID;
	client_create(_metadata, self);
	EXPECT_VD(NOERROR, engine_as_other(_metadata, self, &mode));
	EXPECT_EQ(0666U, mode);
	client_finish(_metadata, self);
}

/* The usual umask keeps another user out (no write permission). */
ACC_TEST(umask_022_keeps_another_user_out)
{
	uint32_t mode = 0;

	self->c.client_uid = CLIENT_UID;
	self->c.umask = 022;
	self->c.engine_uid = ENGINE_UID;
	self->c.owner = CLIENT_UID;
	client_create(_metadata, self);
	EXPECT_VD(VD_E_SECURITY, engine_as_other(_metadata, self, &mode));
	client_finish(_metadata, self);
}

/*
 * Group access: umask 007, the engine in the client's group.  A user outside
 * the group is refused first (a refused access check does not claim the
 * set; a refused owner check would abort it).
 */
ACC_TEST(umask_007_lets_the_group_in)
{
	uint32_t mode = 0;

	self->c.client_uid = CLIENT_UID;
	self->c.umask = 007;
	self->c.engine_uid = ENGINE_UID;
	self->c.owner = CLIENT_UID;
	client_create(_metadata, self);
	EXPECT_VD(VD_E_SECURITY, engine_as_other(_metadata, self, &mode));
	self->c.engine_group = CLIENT_UID;	/* lt_become() gives gid = uid */
	EXPECT_VD(NOERROR, engine_as_other(_metadata, self, &mode));
	EXPECT_EQ(0660U, mode);
	client_finish(_metadata, self);
}

/* umask(0) opens the set, not the engine's owner check: an engine that
 * accepts only its own sets still refuses it. */
ACC_TEST(owner_check_still_applies)
{
	uint32_t mode = 0;

	self->c.client_uid = CLIENT_UID;
	self->c.umask = 0;
	self->c.engine_uid = ENGINE_UID;
	self->c.owner = VDI_OWNER_SELF;
	client_create(_metadata, self);
	EXPECT_VD(VD_E_SECURITY, engine_as_other(_metadata, self, &mode));
	client_finish(_metadata, self);
}

/* ... nor one that expects a third user's set. */
ACC_TEST(owner_check_names_the_owner)
{
	uint32_t mode = 0;

	self->c.client_uid = CLIENT_UID;
	self->c.umask = 0;
	self->c.engine_uid = ENGINE_UID;
	self->c.owner = CLIENT_UID + 1;
	client_create(_metadata, self);
	EXPECT_VD(VD_E_SECURITY, engine_as_other(_metadata, self, &mode));
	client_finish(_metadata, self);
}

TEST_HARNESS_MAIN
