// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vdi access and scope: secondary clients, owner/group/mode checks,
 * CAP_SYS_ADMIN, the per-user set limit, and IPC / user namespaces
 * (docs/ABI.md, "Set life cycle", "Devices", "Access and scope").
 */
#include "vdi_test_util.h"

#include <linux/capability.h>

#define NOBODY		65534
#define T_GROUP		4321	/* a group only the test gives out */
#define SKIP_CODE	77	/* a child could not set up its scene */

struct acc {
	char name[VDI_NAME_MAX];
	char name2[VDI_NAME_MAX];
	uid_t uid;
	gid_t gid;
	gid_t groups[4];
	int ngroups;
	int mode;
	int want;		/* expected result of the child's call */
	int got;
	int got2;
	char note[128];
};

FIXTURE(acc) {
	struct vdi_proc p;
	struct acc *a;
	int fds[8];
	int nfds;
};

FIXTURE_SETUP(acc)
{
	self->p.pid = -1;
	self->a = vdi_shared(sizeof(*self->a));
	ASSERT_NE(NULL, self->a);
	vdi_make_name(self->a->name, "acc");
	vdi_make_name(self->a->name2, "acc");
	for (int i = 0; i < 8; i++)
		self->fds[i] = -1;
}

FIXTURE_TEARDOWN(acc)
{
	vdi_proc_kill(&self->p);
	for (int i = 0; i < 8; i++)
		vdi_close(&self->fds[i]);
	munmap(self->a, sizeof(*self->a));
}

static int keep(FIXTURE_DATA(acc) *self, int fd)
{
	if (fd >= 0 && self->nfds < 8)
		self->fds[self->nfds++] = fd;
	return fd;
}

/* Child: become a->uid/gid/groups, then try OPEN_SERVER and OPEN_SECONDARY. */
static int try_open_as(struct vdi_chan *ch, void *arg)
{
	struct acc *a = arg;
	int fd;

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	CKEQ(0, vdi_become(a->uid, a->gid, a->groups, a->ngroups));
	fd = vdi_open_server(a->name);
	a->got = fd < 0 ? fd : 0;
	fd = vdi_open_secondary(a->name);
	a->got2 = fd < 0 ? fd : 0;
	return 0;
}

/* Create a configured set (primary GET_CONFIG done) with mode/gid. */
static int make_ready_set(FIXTURE_DATA(acc) *self, uint32_t mode,
			  uint32_t flags, uint32_t gid, bool with_server)
{
	struct vdi_create c;
	int cfd, s;

	vdi_create_init(&c, self->a->name, 1, 0);
	c.mode = mode;
	c.flags = flags;
	c.gid = gid;
	cfd = keep(self, vdi_create_cfg(&c));
	if (cfd < 0 || !with_server)
		return cfd < 0 ? cfd : 0;
	s = keep(self, vdi_open_server(self->a->name));
	if (s < 0)
		return s;
	if (vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0) ||
	    vdi_end_config(s, 65536) || vdi_get_config(cfd, 0, NULL))
		return -EIO;
	return 0;
}

static void run_try_open(struct __test_metadata *_metadata,
			 FIXTURE_DATA(acc) *self)
{
	ASSERT_EQ(0, vdi_spawn(&self->p, try_open_as, self->a));
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 1));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
}

TEST_F(acc, other_uid_refused_with_mode_0600)
{
	struct acc *a = self->a;

	ASSERT_EQ(0, make_ready_set(self, 0, 0, 0, false));
	a->uid = NOBODY;
	a->gid = NOBODY;
	a->ngroups = 0;
	run_try_open(_metadata, self);
	EXPECT_EQ(-EACCES, a->got);
}

TEST_F(acc, secondary_refused_for_other_uid_on_a_ready_set)
{
	struct acc *a = self->a;

	ASSERT_EQ(0, make_ready_set(self, 0600, 0, 0, true));
	a->uid = NOBODY;
	a->gid = NOBODY;
	run_try_open(_metadata, self);
	/* Configured, primary GET_CONFIG done: only access stops it. */
	EXPECT_EQ(-EACCES, a->got2);
}

TEST_F(acc, group_granted_with_create_gid_and_mode_0660)
{
	struct acc *a = self->a;
	gid_t g = T_GROUP;

	/* The creator is in the group it grants. */
	ASSERT_EQ(0, setgroups(1, &g));
	ASSERT_EQ(0, make_ready_set(self, 0660, VDI_CREATE_GID, T_GROUP, false));
	a->uid = NOBODY;
	a->gid = NOBODY;
	a->groups[0] = T_GROUP;
	a->ngroups = 1;
	run_try_open(_metadata, self);
	EXPECT_EQ(0, a->got);
	/* The group is not the creator's fsgid: without it, refused. */
	vdi_proc_kill(&self->p);
	vdi_make_name(a->name, "acc");
	ASSERT_EQ(0, make_ready_set(self, 0660, VDI_CREATE_GID, T_GROUP, false));
	a->ngroups = 0;
	a->got = 1;
	run_try_open(_metadata, self);
	EXPECT_EQ(-EACCES, a->got);
}

TEST_F(acc, group_member_refused_with_mode_0640)
{
	struct acc *a = self->a;
	gid_t g = T_GROUP;

	ASSERT_EQ(0, setgroups(1, &g));
	ASSERT_EQ(0, make_ready_set(self, 0640, VDI_CREATE_GID, T_GROUP, false));
	a->uid = NOBODY;
	a->gid = T_GROUP;	/* even as the primary group */
	a->groups[0] = T_GROUP;
	a->ngroups = 1;
	run_try_open(_metadata, self);
	EXPECT_EQ(-EACCES, a->got);	/* read and write are both needed */
}

TEST_F(acc, group_is_the_creators_fsgid_by_default)
{
	struct acc *a = self->a;

	ASSERT_EQ(0, setgroups(0, NULL));
	ASSERT_EQ(0, setresgid(T_GROUP, T_GROUP, T_GROUP));
	ASSERT_EQ(0, make_ready_set(self, 0660, 0, 0, false));
	a->uid = NOBODY;
	a->gid = NOBODY;
	a->groups[0] = T_GROUP;
	a->ngroups = 1;
	run_try_open(_metadata, self);
	EXPECT_EQ(0, a->got);
}

TEST_F(acc, mode_0666_lets_anyone_in)
{
	struct acc *a = self->a;

	ASSERT_EQ(0, make_ready_set(self, 0666, 0, 0, false));
	a->uid = 4000;
	a->gid = 4000;
	run_try_open(_metadata, self);
	EXPECT_EQ(0, a->got);
}

/* Child: as uid 4000, create a 0600 set and open it as its own server. */
static int owner_opens_own_set(struct vdi_chan *ch, void *arg)
{
	struct acc *a = arg;
	int c, s;

	(void)ch;
	CKEQ(0, vdi_become(4000, 4000, NULL, 0));
	c = vdi_create_set(a->name, 1, 0);
	CK(c >= 0);
	s = vdi_open_server(a->name);
	a->got = s < 0 ? s : 0;
	a->got2 = vdi_open_server(a->name);
	return 0;
}

TEST_F(acc, owner_opens_its_own_0600_set)
{
	struct acc *a = self->a;

	ASSERT_EQ(0, vdi_spawn(&self->p, owner_opens_own_set, a));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
	EXPECT_EQ(0, a->got);
	EXPECT_EQ(-EBUSY, a->got2);
}

/* Child: as nobody, create two 0600 sets and keep them until told. */
static int nobody_creates_two(struct vdi_chan *ch, void *arg)
{
	struct acc *a = arg;
	int c1, c2;

	CKEQ(0, vdi_become(NOBODY, NOBODY, NULL, 0));
	c1 = vdi_create_set(a->name, 1, 0);
	CK(c1 >= 0);
	c2 = vdi_create_set(a->name2, 1, 0);
	CK(c2 >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_chan_expect(ch, 2, 10000));
	return 0;
}

TEST_F(acc, cap_sys_admin_opens_any_set_uid_0_alone_does_not)
{
	struct acc *a = self->a;
	int s;

	ASSERT_EQ(0, setgroups(0, NULL));
	ASSERT_EQ(0, vdi_spawn(&self->p, nobody_creates_two, a));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 10000));
	s = keep(self, vdi_open_server(a->name));
	EXPECT_LE(0, s);
	/* Still uid 0 with CAP_DAC_OVERRIDE, but without CAP_SYS_ADMIN. */
	ASSERT_EQ(0, vdi_drop_cap(CAP_SYS_ADMIN));
	EXPECT_EQ(-EACCES, vdi_open_server(a->name2));
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 2));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
}

/* Child: as nobody without the group, CREATE granting it. */
static int create_foreign_gid(struct vdi_chan *ch, void *arg)
{
	struct acc *a = arg;
	struct vdi_create c;
	int fd;

	(void)ch;
	CKEQ(0, vdi_become(NOBODY, NOBODY, NULL, 0));
	vdi_create_init(&c, a->name, 1, 0);
	c.mode = 0660;
	c.flags = VDI_CREATE_GID;
	c.gid = T_GROUP;
	fd = vdi_create_cfg(&c);
	a->got = fd < 0 ? fd : 0;
	/* The creator's own group is fine. */
	c.gid = NOBODY;
	snprintf(c.name, sizeof(c.name), "%s", a->name2);
	fd = vdi_create_cfg(&c);
	a->got2 = fd < 0 ? fd : 0;
	return 0;
}

TEST_F(acc, create_gid_must_be_a_group_of_the_creator)
{
	struct acc *a = self->a;

	ASSERT_EQ(0, vdi_spawn(&self->p, create_foreign_gid, a));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
	EXPECT_EQ(-EPERM, a->got);
	EXPECT_EQ(0, a->got2);
	EXPECT_EQ(-ENOENT, vdi_open_server(a->name));
}

/* Child: as uid 4242, fill the per-user quota. */
static int fill_quota(struct vdi_chan *ch, void *arg)
{
	struct acc *a = arg;
	struct vdi_version v;
	char name[VDI_NAME_MAX];
	int fds[64], i, n, fd;

	(void)ch;
	CKEQ(0, vdi_become(4242, 4242, NULL, 0));
	fd = vdi_open();
	CK(fd >= 0);
	CKEQ(0, vdi_version(fd, &v));
	close(fd);
	n = v.max_sets_per_user;
	CK(n >= 1 && n < 64);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%.100s.%d", a->name, i);
		fds[i] = vdi_create_set(name, 1, 0);
		CK(fds[i] >= 0);
	}
	snprintf(name, sizeof(name), "%.100s.x", a->name);
	a->got = vdi_create_set(name, 1, 0);
	/* Closing one set gives its place back. */
	close(fds[0]);
	fd = vdi_create_set(name, 1, 0);
	a->got2 = fd < 0 ? fd : 0;
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_chan_expect(ch, 2, 10000));
	return 0;
}

TEST_F(acc, emfile_at_max_sets_per_user)
{
	struct acc *a = self->a;
	char name[VDI_NAME_MAX];

	ASSERT_EQ(0, vdi_spawn(&self->p, fill_quota, a));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 10000));
	EXPECT_EQ(-EMFILE, a->got);
	EXPECT_EQ(0, a->got2);
	/* Another user is not affected. */
	vdi_make_name(name, "quota-root");
	EXPECT_LE(0, keep(self, vdi_create_set(name, 1, 0)));
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 2));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
}

/* ------------------------------------------------------------------ */
/* namespaces                                                         */

static int in_new_ns(struct vdi_chan *ch, void *arg)
{
	struct acc *a = arg;
	int c, c2, s;

	/* Look only once the parent has created its set. */
	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	if (unshare(a->mode)) {
		snprintf(a->note, sizeof(a->note), "unshare: %s", strerror(errno));
		return SKIP_CODE;
	}
	/* The parent's set is invisible here... */
	a->got = vdi_open_server(a->name);
	if (a->got >= 0)
		close(a->got), a->got = 0;
	a->got2 = vdi_open_secondary(a->name);
	if (a->got2 >= 0)
		close(a->got2), a->got2 = 0;
	/* ... and its name is free here. */
	c = vdi_create_set(a->name, 1, 0);
	CK(c >= 0);
	c2 = vdi_create_set(a->name2, 1, 0);
	CK(c2 >= 0);
	s = vdi_open_server(a->name);
	CK(s >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_chan_expect(ch, 2, 10000));
	close(s);
	close(c2);
	close(c);
	return 0;
}

static void check_ns(struct __test_metadata *_metadata,
		     FIXTURE_DATA(acc) *self, int flags)
{
	struct acc *a = self->a;
	int r, s;

	a->mode = flags;
	/* Fork first: the child must not inherit the parent's set fd. */
	ASSERT_EQ(0, vdi_spawn(&self->p, in_new_ns, a));
	ASSERT_LE(0, keep(self, vdi_create_set(a->name, 1, 0)));
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 1));
	r = vdi_chan_expect(&self->p.ch, 1, 10000);
	if (r) {
		int code = vdi_reap(&self->p, 5000);

		if (code == SKIP_CODE)
			SKIP(return, "%s", a->note);
		ASSERT_EQ(0, r) TH_LOG("child exit %d", code);
	}
	EXPECT_EQ(-ENOENT, a->got);
	EXPECT_EQ(-ENOENT, a->got2);
	/* The child's sets are invisible here; ours is still ours. */
	EXPECT_EQ(-ENOENT, vdi_open_server(a->name2));
	s = keep(self, vdi_open_server(a->name));
	EXPECT_LE(0, s);
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 2));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
}

TEST_F(acc, other_ipc_namespace_sees_nothing)
{
	check_ns(_metadata, self, CLONE_NEWIPC);
}

TEST_F(acc, other_user_namespace_sees_nothing)
{
	check_ns(_metadata, self, CLONE_NEWUSER);
}

/* ------------------------------------------------------------------ */
/* secondary clients                                                  */

TEST(secondary_only_after_the_primary_get_config)
{
	char name[VDI_NAME_MAX];
	int c, s, sec;

	vdi_make_name(name, "sec");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	EXPECT_EQ(-EPROTO, vdi_open_secondary(name));
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	EXPECT_EQ(-EPROTO, vdi_open_secondary(name));
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_READ_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(-EPROTO, vdi_open_secondary(name));
	ASSERT_EQ(0, vdi_end_config(s, 65536));
	/* Ready, but the primary has not had its configuration yet. */
	EXPECT_EQ(-EPROTO, vdi_open_secondary(name));
	ASSERT_EQ(0, vdi_get_config(c, 0, NULL));
	sec = vdi_open_secondary(name);
	EXPECT_LE(0, sec);
	/* A secondary fd takes one role, like any endpoint. */
	EXPECT_EQ(-EISCONN, vdi_open_on(sec, VDI_IOC_OPEN_SECONDARY, name));
	EXPECT_EQ(-EISCONN, vdi_create_on(sec, name, 1, 0));
	/* And it is a client: server calls are refused. */
	EXPECT_EQ(-EPROTO, vdi_end_config(sec, 4096));
	close(sec);
	close(s);
	close(c);
}

TEST(secondary_device_busy_when_the_primary_has_it)
{
	struct vdi_sess_opts o = { .ndev = 3, .no_devices = true };
	char dn[VDI_NAME_MAX], dn2[VDI_NAME_MAX];
	struct vdi_sess s;
	uint32_t idx;
	int sec, d;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	s.cdev[0] = vdi_open_device(s.cset, s.name, 0, &idx);
	ASSERT_LE(0, s.cdev[0]);
	sec = vdi_open_secondary(s.name);
	ASSERT_LE(0, sec);
	EXPECT_EQ(-EBUSY, vdi_open_device(sec, s.name, 0, &idx));
	vdi_dev_name(dn, s.name, 1);
	d = vdi_open_device(sec, dn, 0, &idx);
	ASSERT_LE(0, d);
	EXPECT_EQ(1U, idx);
	/* The secondary has it: busy for the primary too. */
	EXPECT_EQ(-EBUSY, vdi_open_device(s.cset, dn, 0, &idx));
	vdi_dev_name(dn2, s.name, 2);
	s.cdev[2] = vdi_open_device(s.cset, dn2, 0, &idx);
	ASSERT_LE(0, s.cdev[2]);
	EXPECT_EQ(2U, idx);
	/* The client side (both processes together) has all three. */
	EXPECT_EQ(-EALREADY, vdi_open_device(s.cset, dn, 0, &idx));
	EXPECT_EQ(-EALREADY, vdi_open_device(sec, dn2, 0, &idx));
	close(d);
	close(sec);
	vdi_sess_close(&s);
}

struct secx {
	char name[VDI_NAME_MAX];
	struct vdi_config cfg;
	int result;
};

/*
 * The secondary process: open the set, check the config, map the area,
 * serve device 1: verify a Write, fill a Read, complete one through the
 * device fd and one through the secondary set fd, until the normal end.
 */
static int secondary_main(struct vdi_chan *ch, void *arg)
{
	struct secx *x = arg;
	struct vdi_command cmd[2];
	struct vdi_config cfg;
	char dn[VDI_NAME_MAX];
	uint32_t idx;
	uint8_t *map;
	int set, dev, got = 0;

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	set = vdi_open_secondary(x->name);
	CK(set >= 0);
	CKEQ(0, vdi_get_config(set, 0, &cfg));
	CKEQ(0, memcmp(&cfg, &x->cfg, sizeof(cfg)));
	map = vdi_map(set, cfg.buffer_area_size, 0);
	CK(map != NULL);
	vdi_dev_name(dn, x->name, 1);
	dev = vdi_open_device(set, dn, 0, &idx);
	CK(dev >= 0);
	CKEQ(1, idx);
	CKEQ(0, vdi_chan_send(ch, 2));
	while (got < 2) {
		int r = vdi_get(dev, cmd + got, 2 - got, 5000);

		CK(r > 0);
		got += r;
	}
	CKEQ(VDI_VDC_WRITE, cmd[0].code);
	CK(vdi_check(map + cmd[0].buf_offset, cmd[0].size, cmd[0].position, 1));
	CKEQ(1, vdi_complete1(dev, cmd[0].tag, 0, cmd[0].size, 1));
	CKEQ(VDI_VDC_READ, cmd[1].code);
	vdi_fill(map + cmd[1].buf_offset, cmd[1].size, cmd[1].position, 2);
	CKEQ(1, vdi_complete1(set, cmd[1].tag, 0, cmd[1].size, 2));
	/* The normal end of device 1, then leave quietly. */
	CKEQ(-ESHUTDOWN, vdi_get(dev, cmd, 1, 5000));
	close(dev);
	munmap(map, cfg.buffer_area_size);
	close(set);
	return 0;
}

FIXTURE(second) {
	struct vdi_proc p;
	struct secx *x;
	struct vdi_sess s;
};

FIXTURE_SETUP(second)
{
	vdi_sess_init(&self->s);
	self->p.pid = -1;
	self->x = vdi_shared(sizeof(*self->x));
	ASSERT_NE(NULL, self->x);
}

FIXTURE_TEARDOWN(second)
{
	vdi_proc_kill(&self->p);
	vdi_sess_close(&self->s);
	munmap(self->x, sizeof(*self->x));
}

TEST_F(second, secondary_process_serves_a_device)
{
	struct vdi_sess_opts o = { .ndev = 3, .no_devices = true };
	struct vdi_sess *s = &self->s;
	struct vdi_completion cpl[4];
	struct vdi_command cmd;
	char dn[VDI_NAME_MAX];
	uint32_t idx;
	int n;

	/* Fork first; the child gets the name only. */
	ASSERT_EQ(0, vdi_spawn(&self->p, secondary_main, self->x));
	ASSERT_EQ(0, vdi_sess_setup(s, &o));
	memcpy(self->x->name, s->name, sizeof(s->name));
	self->x->cfg = s->cfg;
	s->cdev[0] = vdi_open_device(s->cset, s->name, 0, &idx);
	ASSERT_LE(0, s->cdev[0]);
	for (int i = 0; i < 3; i++) {
		vdi_dev_name(dn, s->name, i);
		s->sdev[i] = vdi_open_device(s->sset, dn, 0, &idx);
		ASSERT_LE(0, s->sdev[i]);
	}
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 1));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	/* The device belongs to the secondary process now. */
	vdi_dev_name(dn, s->name, 1);
	EXPECT_EQ(-EBUSY, vdi_open_device(s->cset, dn, 0, &idx));

	vdi_fill(s->smap + 65536, 8192, 5, 1);
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 1, VDI_VDC_WRITE, 8192, 5, 65536));
	ASSERT_EQ(1, vdi_send1(s->sdev[1], 2, VDI_VDC_READ, 4096, 6, 131072));
	n = vdi_wait_n(s->sset, cpl, 2, 5000, NULL);
	ASSERT_EQ(2, n);
	EXPECT_EQ(0U, vdi_find_cookie(cpl, n, 1)->completion_code);
	EXPECT_EQ(8192U, vdi_find_cookie(cpl, n, 1)->bytes_transferred);
	EXPECT_EQ(1U, vdi_find_cookie(cpl, n, 1)->device_index);
	EXPECT_EQ(0U, vdi_find_cookie(cpl, n, 2)->completion_code);
	EXPECT_EQ(2, vdi_find_cookie(cpl, n, 2)->position);
	EXPECT_TRUE(vdi_check(s->smap + 131072, 4096, 6, 2));
	/* The primary's own device works alongside. */
	ASSERT_EQ(1, vdi_send1(s->sdev[0], 3, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	ASSERT_EQ(1, vdi_get(s->cdev[0], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s->cdev[0], cmd.tag, 0, 0, 0));
	ASSERT_EQ(1, vdi_wait(s->sset, cpl, 4, 1000));
	/* End device 1; the secondary leaves without aborting the set. */
	ASSERT_EQ(0, vdi_close_device(s->sdev[1]));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
	EXPECT_EQ(1, vdi_send1(s->sdev[0], 4, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	EXPECT_EQ(0, vdi_poll1(s->sset, POLLERR, 0) & POLLERR);
}

TEST_HARNESS_MAIN
