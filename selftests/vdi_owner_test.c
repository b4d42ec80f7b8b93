// SPDX-License-Identifier: GPL-2.0
/*
 * Whose set is this?  VDI_IOC_SET_INFO tells the opener of a set its owner,
 * group and mode, so that a server can refuse a set another user created
 * under the name it expected (docs/ABI.md, "Access and scope").  The
 * squatting scene is played by two processes of two uids.
 */
#include "vdi_test_util.h"

#include <stddef.h>
#include <sys/stat.h>

#define NOBODY		65534
#define VICTIM		1000	/* an unprivileged engine */
#define T_GROUP		4321	/* a group only the test gives out */
#define SKIP_CODE	77	/* a child could not set up its scene */

struct own {
	char name[VDI_NAME_MAX];
	struct vdi_set_info info;	/* what the child's SET_INFO said */
	int got;			/* its result (0 or -errno) */
	int got2;
	char note[128];
};

/* SET_INFO on @fd into @out (zeroed first): 0 or -errno. */
static int set_info(int fd, struct vdi_set_info *out)
{
	memset(out, 0, sizeof(*out));
	return vdi_ioctl(fd, VDI_IOC_SET_INFO, out);
}

FIXTURE(own) {
	struct vdi_proc p;
	struct own *a;
	int fds[6];
};

FIXTURE_SETUP(own)
{
	self->p.pid = -1;
	self->a = vdi_shared(sizeof(*self->a));
	ASSERT_NE(NULL, self->a);
	vdi_make_name(self->a->name, "own");
	for (int i = 0; i < 6; i++)
		self->fds[i] = -1;
	vdi_node_open_to_all();
}

FIXTURE_TEARDOWN(own)
{
	vdi_proc_kill(&self->p);
	for (int i = 0; i < 6; i++)
		vdi_close(&self->fds[i]);
	munmap(self->a, sizeof(*self->a));
	vdi_node_restore();
}

TEST(set_info_layout)
{
	EXPECT_EQ(32U, sizeof(struct vdi_set_info));
	EXPECT_EQ(0U, offsetof(struct vdi_set_info, flags));
	EXPECT_EQ(4U, offsetof(struct vdi_set_info, uid));
	EXPECT_EQ(8U, offsetof(struct vdi_set_info, gid));
	EXPECT_EQ(12U, offsetof(struct vdi_set_info, mode));
	EXPECT_EQ(16U, offsetof(struct vdi_set_info, reserved));
	EXPECT_EQ((unsigned long)_IOC_READ | _IOC_WRITE,
		  _IOC_DIR(VDI_IOC_SET_INFO));
	EXPECT_EQ(0xDAUL, _IOC_TYPE(VDI_IOC_SET_INFO));
}

TEST(version_announces_set_info)
{
	struct vdi_version v;
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vdi_version(fd, &v));
	EXPECT_TRUE(v.features & VDI_FEAT_SET_INFO);
	EXPECT_LE(1U, v.api_minor);
	close(fd);
}

/* Every role sees the same owner; the default mode is 0600. */
TEST_F(own, every_role_sees_owner_group_and_mode)
{
	struct vdi_set_info i;
	struct vdi_create c;
	int cfd, sfd, sec;

	vdi_create_init(&c, self->a->name, 1, 0);
	c.mode = 0660;
	c.flags = VDI_CREATE_GID;
	c.gid = T_GROUP;	/* root may name any group (CAP_CHOWN) */
	cfd = self->fds[0] = vdi_create_cfg(&c);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, set_info(cfd, &i));
	EXPECT_EQ(0U, i.uid);
	EXPECT_EQ((__u32)T_GROUP, i.gid);
	EXPECT_EQ(0660U, i.mode);
	EXPECT_EQ(0U, i.flags);
	EXPECT_EQ(0U, i.reserved[0] | i.reserved[1]);

	sfd = self->fds[1] = vdi_open_server(self->a->name);
	ASSERT_LE(0, sfd);
	ASSERT_EQ(0, set_info(sfd, &i));
	EXPECT_EQ(0U, i.uid);
	EXPECT_EQ((__u32)T_GROUP, i.gid);
	EXPECT_EQ(0660U, i.mode);
	/* Asking changes nothing: configuration goes on. */
	ASSERT_EQ(0, vdi_begin_config(sfd, VDI_VDF_WRITE_MEDIA, 0, 512,
				      65536, 0));
	ASSERT_EQ(0, vdi_end_config(sfd, 65536));
	ASSERT_EQ(0, vdi_get_config(cfd, 0, NULL));
	sec = self->fds[2] = vdi_open_secondary(self->a->name);
	ASSERT_LE(0, sec);
	ASSERT_EQ(0, set_info(sec, &i));
	EXPECT_EQ(0U, i.uid);
	EXPECT_EQ(0660U, i.mode);

	/* A set created with mode 0: 0600 and the creator's fsgid. */
	vdi_make_name(self->a->name, "own-default");
	self->fds[3] = vdi_create_set(self->a->name, 1, 0);
	ASSERT_LE(0, self->fds[3]);
	ASSERT_EQ(0, set_info(self->fds[3], &i));
	EXPECT_EQ(0U, i.uid);
	EXPECT_EQ((__u32)getegid(), i.gid);
	EXPECT_EQ(0600U, i.mode);
}

TEST_F(own, set_info_checks_its_argument_and_fd)
{
	struct vdi_set_info i;
	int cfd, sfd, dfd, fresh;

	fresh = self->fds[0] = vdi_open();
	ASSERT_LE(0, fresh);
	EXPECT_EQ(-EPROTO, set_info(fresh, &i));	/* no set yet */

	cfd = self->fds[1] = vdi_create_set(self->a->name, 1, 0);
	ASSERT_LE(0, cfd);
	memset(&i, 0, sizeof(i));
	i.flags = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(cfd, VDI_IOC_SET_INFO, &i));
	memset(&i, 0, sizeof(i));
	i.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(cfd, VDI_IOC_SET_INFO, &i));
	/* The in-fields are checked, not the out-fields: stale values in
	 * uid/gid/mode are overwritten.
	 */
	memset(&i, 0xff, sizeof(i));
	i.flags = 0;
	i.reserved[0] = i.reserved[1] = 0;
	EXPECT_EQ(0, vdi_ioctl(cfd, VDI_IOC_SET_INFO, &i));
	EXPECT_EQ(0U, i.uid);
	EXPECT_EQ(0600U, i.mode);
	EXPECT_EQ(-EFAULT, vdi_ioctl(cfd, VDI_IOC_SET_INFO, NULL));
	/* Another size is another ioctl. */
	EXPECT_EQ(-ENOTTY, vdi_ioctl(cfd, _IOC(_IOC_READ | _IOC_WRITE, 0xDA,
					       0x0e, 16), &i));

	/* Device fds have their own ioctls. */
	sfd = self->fds[2] = vdi_open_server(self->a->name);
	ASSERT_LE(0, sfd);
	ASSERT_EQ(0, vdi_begin_config(sfd, VDI_VDF_WRITE_MEDIA, 0, 512,
				      65536, 0));
	ASSERT_EQ(0, vdi_end_config(sfd, 65536));
	dfd = self->fds[3] = vdi_open_device(sfd, self->a->name, 0, NULL);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(-ENOTTY, set_info(dfd, &i));

	/* An aborted set still says whose it was. */
	ASSERT_EQ(0, vdi_abort(sfd));
	EXPECT_EQ(0, set_info(sfd, &i));
	EXPECT_EQ(0U, i.uid);
}

/* ------------------------------------------------------------------ */
/* the squatter: another user takes the name first                    */

/* Child: as nobody, create the set with mode 0666 and hold it. */
static int squatter(struct vdi_chan *ch, void *arg)
{
	struct own *a = arg;
	struct vdi_create c;
	int fd;

	CKEQ(0, vdi_become(NOBODY, NOBODY, NULL, 0));
	vdi_create_init(&c, a->name, 1, 0);
	c.mode = 0666;
	fd = vdi_create_cfg(&c);
	a->got = fd < 0 ? fd : 0;
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_chan_expect(ch, 2, 10000));
	if (fd >= 0)
		close(fd);
	return 0;
}

/* Child: as VICTIM, open the set as its server and ask whose it is. */
static int victim_engine(struct vdi_chan *ch, void *arg)
{
	struct own *a = arg;
	int fd;

	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	CKEQ(0, vdi_become(VICTIM, VICTIM, NULL, 0));
	fd = vdi_open_server(a->name);
	a->got2 = fd < 0 ? fd : 0;
	if (fd >= 0) {
		a->got2 = set_info(fd, &a->info);
		close(fd);
	}
	return 0;
}

TEST_F(own, root_engine_learns_the_squatter_owns_the_set)
{
	struct own *a = self->a;
	struct vdi_set_info i;
	int sfd;

	ASSERT_EQ(0, vdi_spawn(&self->p, squatter, a));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 10000));
	ASSERT_EQ(0, a->got);
	sfd = self->fds[0] = vdi_open_server(a->name);
	ASSERT_LE(0, sfd);
	ASSERT_EQ(0, set_info(sfd, &i));
	EXPECT_EQ((__u32)NOBODY, i.uid);
	EXPECT_EQ((__u32)NOBODY, i.gid);
	EXPECT_EQ(0666U, i.mode);
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 2));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
}

TEST_F(own, unprivileged_engine_learns_the_squatter_owns_the_set)
{
	struct own *a = self->a;
	struct vdi_proc engine;

	ASSERT_EQ(0, vdi_spawn(&self->p, squatter, a));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 10000));
	ASSERT_EQ(0, a->got);
	ASSERT_EQ(0, vdi_spawn(&engine, victim_engine, a));
	ASSERT_EQ(0, vdi_chan_send(&engine.ch, 1));
	EXPECT_EQ(0, vdi_reap(&engine, 10000));
	vdi_proc_kill(&engine);
	EXPECT_EQ(0, a->got2);
	EXPECT_EQ((__u32)NOBODY, a->info.uid);
	EXPECT_EQ((__u32)NOBODY, a->info.gid);
	EXPECT_EQ(0666U, a->info.mode);
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 2));
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
}

/* ------------------------------------------------------------------ */
/* ids in the caller's user namespace                                 */

static int read_id_file(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/*
 * Child: with the parent's server fd, enter a new user namespace; ask
 * before uid 0 is mapped there (overflow ids) and after it is mapped to
 * 1000 (gid left unmapped).
 */
static int in_user_ns(struct vdi_chan *ch, void *arg)
{
	struct own *a = arg;
	int fd = (int)(intptr_t)a->got;	/* the inherited server fd */

	(void)ch;
	if (unshare(CLONE_NEWUSER)) {
		snprintf(a->note, sizeof(a->note), "unshare: %s",
			 strerror(errno));
		return SKIP_CODE;
	}
	a->got2 = set_info(fd, &a->info);
	CKEQ(0, a->got2);
	CKEQ(read_id_file("/proc/sys/kernel/overflowuid"), a->info.uid);
	CKEQ(read_id_file("/proc/sys/kernel/overflowgid"), a->info.gid);
	CKEQ(0, write_file("/proc/self/uid_map", "1000 0 1\n"));
	a->got2 = set_info(fd, &a->info);
	return 0;
}

TEST_F(own, ids_are_those_of_the_callers_user_namespace)
{
	struct own *a = self->a;
	int sfd, r;

	self->fds[0] = vdi_create_set(a->name, 1, 0);
	ASSERT_LE(0, self->fds[0]);
	sfd = self->fds[1] = vdi_open_server(a->name);
	ASSERT_LE(0, sfd);
	a->got = sfd;
	ASSERT_EQ(0, vdi_spawn(&self->p, in_user_ns, a));
	r = vdi_reap(&self->p, 10000);
	if (r == SKIP_CODE)
		SKIP(return, "%s", a->note);
	ASSERT_EQ(0, r);
	EXPECT_EQ(0, a->got2);
	EXPECT_EQ(1000U, a->info.uid);
	EXPECT_EQ((__u32)read_id_file("/proc/sys/kernel/overflowgid"),
		  a->info.gid);
	EXPECT_EQ(0600U, a->info.mode);
}

TEST_HARNESS_MAIN
