// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi loads module vdi through libkmod when /dev/vdi is missing
 * (docs/LIBRARY.md, "Module loading"), and says why when it cannot.
 *
 * The tests unload the module (delete_module(2), O_NONBLOCK: nothing may
 * hold it), so they hold no vdi fd themselves; the VM's initramfs has
 * /lib/modules/<kver>/extra/vdi.ko and modules.dep.bin.  Every test leaves
 * the module loaded for the programs that run after it.
 */
#include "lib_test_util.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

static bool vdi_loaded(void)
{
	char line[256];
	FILE *f = fopen("/proc/modules", "r");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strncmp(line, "vdi ", 4) == 0;
	fclose(f);
	return found;
}

static bool node_exists(void)
{
	struct stat st;

	return stat("/dev/vdi", &st) == 0 && S_ISCHR(st.st_mode);
}

/* Unload module vdi: 0, or -errno (after retrying a busy one for 3 s). */
static int unload_vdi(void)
{
	int64_t end = lt_now_ms() + 3000;

	for (;;) {
		if (syscall(SYS_delete_module, "vdi", O_NONBLOCK) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EBUSY && errno != EAGAIN)
			return -errno;
		if (lt_now_ms() > end)
			return -errno;
		lt_sleep_ms(20);
	}
}

/* Whatever happened, leave the module loaded (through the library). */
static void reload(void)
{
	vdi_client_set *s;
	char name[LT_NAME_MAX];
	VDConfig cfg;

	if (vdi_loaded() && node_exists())
		return;
	s = vdi_client_set_new();
	if (!s)
		return;
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	lt_name(name, "reload");
	vdi_client_create(s, name, &cfg);
	vdi_client_set_free(s);
}

TEST(autoload_by_the_client_and_by_the_server)
{
	char name[LT_NAME_MAX];
	vdi_server_set *srv = NULL;
	vdi_client_set *s;
	VDConfig cfg;
	int r;

	ASSERT_TRUE(vdi_loaded());
	r = unload_vdi();
	ASSERT_EQ(0, r) {
		TH_LOG("delete_module(vdi): %s", strerror(-r));
	}
	EXPECT_FALSE(vdi_loaded());
	EXPECT_FALSE(node_exists());

	/* The client's Create loads it. */
	s = vdi_client_set_new();
	ASSERT_TRUE(s != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	lt_name(name, "kmod");
	EXPECT_VD(NOERROR, vdi_client_create(s, name, &cfg));
	EXPECT_TRUE(vdi_loaded());
	EXPECT_TRUE(node_exists());
	EXPECT_VD(NOERROR, vdi_client_close(s));
	vdi_client_set_free(s);

	/* So does the server's Open (which then finds no such set). */
	ASSERT_EQ(0, unload_vdi());
	EXPECT_FALSE(node_exists());
	EXPECT_VD(VD_E_INVALID, vdi_server_open(&srv, NULL, name));
	EXPECT_TRUE(srv == NULL);
	EXPECT_TRUE(vdi_loaded());
	EXPECT_TRUE(node_exists());
	reload();
}

/*
 * In a mount namespace of its own, with an empty /lib/modules: the module
 * cannot be found, and every way into the module says so.
 */
static int no_modules_child(struct lt_peer *self, void *arg)
{
	char name[LT_NAME_MAX];
	vdi_server_set *srv = NULL;
	vdi_client_set *s;
	VDConfig cfg;
	const char *why;

	snprintf(name, sizeof(name), "%s", (const char *)arg);
	CK(unshare(CLONE_NEWNS) == 0);
	CK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	CK(mount("tmpfs", "/lib/modules", "tmpfs", 0, NULL) == 0);
	CKEQ(0, unload_vdi());
	CK(!node_exists());

	s = vdi_client_set_new();
	CK(s != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	CKEQ(VD_E_UNEXPECTED, vdi_client_create(s, name, &cfg));
	why = vdi_last_error();
	fprintf(stderr, "# Create without a module: %s\n", why);
	CK(strstr(why, "module") != NULL);
	CK(strstr(why, "vdi") != NULL);
	CKEQ(VD_E_UNEXPECTED, vdi_client_open_in_secondary(s, name));
	CK(strstr(vdi_last_error(), "module") != NULL);
	CKEQ(VD_E_UNEXPECTED, vdi_server_open(&srv, NULL, name));
	CK(strstr(vdi_last_error(), "module") != NULL);
	CK(srv == NULL);
	/* The object is still usable: no set, nothing open. */
	CKEQ(VD_E_PROTOCOL, vdi_client_close(s));
	vdi_client_set_free(s);
	CK(!vdi_loaded());
	return 0;
}

TEST(load_failure_is_unexpected_and_says_why)
{
	char name[LT_NAME_MAX];
	vdi_client_set *s;
	struct lt_peer child;
	VDConfig cfg;
	int r;

	ASSERT_TRUE(vdi_loaded());
	lt_name(name, "nomod");
	ASSERT_EQ(0, lt_spawn(&child, no_modules_child, name));
	r = lt_reap(&child, 15000);
	lt_peer_kill(&child);
	EXPECT_EQ(0, r);
	EXPECT_FALSE(vdi_loaded());

	/* Here, /lib/modules is intact: the library loads it again. */
	s = vdi_client_set_new();
	ASSERT_TRUE(s != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = 1;
	EXPECT_VD(NOERROR, vdi_client_create(s, name, &cfg));
	EXPECT_TRUE(vdi_loaded());
	EXPECT_TRUE(node_exists());
	vdi_client_set_free(s);
	reload();
}

static char other_before[256], other_after[256];

static void *other_thread(void *arg)
{
	vdi_client_set *s = vdi_client_set_new();

	snprintf(other_before, sizeof(other_before), "%s", vdi_last_error());
	if (s) {
		vdi_client_close(s);	/* VD_E_PROTOCOL: no set */
		vdi_client_set_free(s);
	}
	snprintf(other_after, sizeof(other_after), "%s", vdi_last_error());
	return arg;
}

TEST(last_error_is_per_thread_and_codes_have_names)
{
	vdi_server_set *srv = NULL;
	char mine[256];
	pthread_t th;

	EXPECT_VD(VD_E_INVALID, vdi_server_open(&srv, NULL, "lv-nothing-here"));
	snprintf(mine, sizeof(mine), "%s", vdi_last_error());
	EXPECT_TRUE(strstr(mine, "lv-nothing-here") != NULL);
	ASSERT_EQ(0, pthread_create(&th, NULL, other_thread, NULL));
	pthread_join(th, NULL);
	/* The other thread had no reason, then its own. */
	EXPECT_STREQ("", other_before);
	EXPECT_TRUE(strstr(other_after, "Close") != NULL);
	/* Ours is still ours. */
	EXPECT_STREQ(mine, vdi_last_error());

	EXPECT_STREQ("VD_E_INVALID", vdi_code_name(VD_E_INVALID));
	EXPECT_STREQ("VD_E_QUEUE_FULL", vdi_code_name((int)0x80770010U));
	EXPECT_STREQ("VD_E_IO_ERROR", vdi_code_name((int)0x80770011U));
	EXPECT_STREQ("NOERROR", vdi_code_name(NOERROR));
	EXPECT_TRUE(vdi_code_name(12345) == NULL);
	EXPECT_EQ((int)0x8077000C, VD_E_PROTOCOL);
	EXPECT_EQ(-2139684860, VD_E_ABORT);
	reload();
}

TEST_HARNESS_MAIN
