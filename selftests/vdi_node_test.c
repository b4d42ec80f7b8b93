// SPDX-License-Identifier: GPL-2.0
/*
 * The mode of /dev/vdi (docs/ABI.md, "The node"): the module alone makes it
 * 0600 root:root, so where no udev rule runs (a container, this VM) only
 * root can use VDI; the rule of "make install" grants group "vdi" (0660).
 *
 * The rig opens the node to every user for the other tests, so this test
 * unloads and loads the module (/vdi.ko, finit_module(2)) to see the node
 * as devtmpfs creates it.  It holds no vdi fd while it does, and leaves the
 * module loaded, the node as it found it.
 */
#include "vdi_test_util.h"

#include <sys/stat.h>

#define KO		"/vdi.ko"
#define UEVENT		"/sys/class/misc/vdi/uevent"
#define U_OTHER		5300
#define T_GROUP		5399	/* what the udev rule's group "vdi" is */

static int unload_vdi(void)
{
	int64_t end = vdi_now_ms() + 3000;

	while (syscall(SYS_delete_module, "vdi", O_NONBLOCK)) {
		if (errno != EWOULDBLOCK && errno != EBUSY && errno != EAGAIN)
			return -errno;
		if (vdi_now_ms() > end)
			return -errno;
		vdi_sleep_ms(20);
	}
	return 0;
}

static int load_vdi(void)
{
	int fd = open(KO, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
		r = -errno;
	close(fd);
	return r;
}

/* Wait for the node to (dis)appear: devtmpfs works asynchronously. */
static bool node_is(bool there)
{
	struct stat st;
	int i;

	for (i = 0; i < 100; i++) {
		if ((stat(VDI_PATH, &st) == 0 && S_ISCHR(st.st_mode)) == there)
			return true;
		vdi_sleep_ms(50);
	}
	return false;
}

/* Child: open /dev/vdi as @arg's uid, with or without T_GROUP. */
struct who {
	uid_t uid;
	bool member;
};

static int try_open(struct vdi_chan *ch, void *arg)
{
	struct who *w = arg;
	gid_t g = T_GROUP;
	int fd;

	(void)ch;
	CKEQ(0, vdi_become(w->uid, w->uid, &g, w->member ? 1 : 0));
	fd = vdi_open();
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd == -EACCES ? 13 : 1;
}

static int open_as(uid_t uid, bool member)
{
	struct who w = { uid, member };
	struct vdi_proc p;
	int r;

	if (vdi_spawn(&p, try_open, &w))
		return -1;
	r = vdi_reap(&p, 10000);
	vdi_proc_kill(&p);
	return r;
}

FIXTURE(node) {
	struct stat old;	/* the node as the rig left it */
	bool have_old;
};

FIXTURE_SETUP(node)
{
	if (access(KO, R_OK))
		SKIP(return, "no %s to load again", KO);
	self->have_old = stat(VDI_PATH, &self->old) == 0;
	ASSERT_TRUE(self->have_old);
}

FIXTURE_TEARDOWN(node)
{
	if (!node_is(true)) {
		load_vdi();
		node_is(true);
	}
	if (self->have_old &&
	    (chown(VDI_PATH, self->old.st_uid, self->old.st_gid) ||
	     chmod(VDI_PATH, self->old.st_mode & 07777)))
		fprintf(stderr, "# cannot restore %s: %s\n", VDI_PATH,
			strerror(errno));
}

TEST_F(node, the_module_asks_for_0600)
{
	char line[128];
	FILE *f = fopen(UEVENT, "r");

	ASSERT_NE(NULL, f);
	/* No DEVMODE: devtmpfs's default, 0600; or an explicit 0600. */
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "DEVMODE=", 8))
			EXPECT_EQ(0, strcmp(line, "DEVMODE=0600\n")) {
				TH_LOG("%s: %s", UEVENT, line);
			}
	fclose(f);
}

TEST_F(node, without_udev_root_only)
{
	struct stat st;
	int r;

	r = unload_vdi();
	ASSERT_EQ(0, r) {
		TH_LOG("delete_module(vdi): %s", strerror(-r));
	}
	ASSERT_TRUE(node_is(false));
	r = load_vdi();
	ASSERT_EQ(0, r) {
		TH_LOG("finit_module(%s): %s", KO, strerror(-r));
	}
	ASSERT_TRUE(node_is(true));

	ASSERT_EQ(0, stat(VDI_PATH, &st));
	EXPECT_EQ(0600, st.st_mode & 07777) {
		TH_LOG("%s is %04o", VDI_PATH, st.st_mode & 07777);
	}
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
	/* Another user: EACCES, even in the group the rule would name. */
	EXPECT_EQ(13, open_as(U_OTHER, false));
	EXPECT_EQ(13, open_as(U_OTHER, true));
	/* Root still can. */
	r = vdi_open();
	EXPECT_LE(0, r);
	vdi_close(&r);
}

TEST_F(node, the_udev_rule_grants_its_group)
{
	/* What 60-vdi.rules does: GROUP="vdi", MODE="0660". */
	ASSERT_EQ(0, chown(VDI_PATH, 0, T_GROUP));
	ASSERT_EQ(0, chmod(VDI_PATH, 0660));
	EXPECT_EQ(0, open_as(U_OTHER, true));
	EXPECT_EQ(13, open_as(U_OTHER, false));
}

TEST_HARNESS_MAIN
