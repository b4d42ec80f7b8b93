// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vdi ABI: struct layout, the VERSION handshake, ioctl number checks,
 * which ioctl applies to which fd, and the validation of CREATE, OPEN_*,
 * GET_CONFIG, BEGIN_CONFIG, END_CONFIG and OPEN_DEVICE (docs/ABI.md,
 * "Objects and fds", "Set life cycle", "Devices", "Access and scope").
 */
#include "vdi_test_util.h"

#include <stddef.h>

/* Every ioctl of the ABI, with the kind of fd it belongs to. */
static const unsigned long all_ioctls[] = {
	VDI_IOC_VERSION, VDI_IOC_CREATE, VDI_IOC_OPEN_SERVER,
	VDI_IOC_OPEN_SECONDARY, VDI_IOC_GET_CONFIG, VDI_IOC_BEGIN_CONFIG,
	VDI_IOC_END_CONFIG, VDI_IOC_OPEN_DEVICE, VDI_IOC_SEND,
	VDI_IOC_GET_COMMANDS, VDI_IOC_COMPLETE, VDI_IOC_WAIT_COMPLETIONS,
	VDI_IOC_CLOSE_DEVICE, VDI_IOC_SIGNAL_ABORT, VDI_IOC_SET_INFO,
	VDI_IOC_LIST_SETS, VDI_IOC_SET_STATS, VDI_IOC_ABORT_SET,
	VDI_IOC_ENTER,
};

/* New endpoint + CREATE; 0 (fd closed again) or -errno. */
static int try_create(const struct vdi_create *c)
{
	int fd = vdi_create_cfg(c);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int try_create_features(const char *tag, uint32_t ndev, uint32_t feat)
{
	struct vdi_create c;
	char name[VDI_NAME_MAX];

	vdi_make_name(name, tag);
	vdi_create_init(&c, name, ndev, feat);
	return try_create(&c);
}

/* A region whose last @len bytes end exactly at a PROT_NONE page. */
static void *before_guard(size_t len)
{
	uint8_t *p = vdi_pages(2, PROT_READ | PROT_WRITE);

	if (!p || mprotect(p + VDI_PAGE, VDI_PAGE, PROT_NONE))
		return NULL;
	return p + VDI_PAGE - len;
}

TEST(abi_struct_layout)
{
	/* VDConfig: eleven 32-bit fields, 44 bytes, in the spec's order. */
	EXPECT_EQ(44U, sizeof(struct vdi_config));
	EXPECT_EQ(0U, offsetof(struct vdi_config, device_count));
	EXPECT_EQ(4U, offsetof(struct vdi_config, features));
	EXPECT_EQ(8U, offsetof(struct vdi_config, prefix_zone_size));
	EXPECT_EQ(12U, offsetof(struct vdi_config, alignment));
	EXPECT_EQ(16U, offsetof(struct vdi_config, soft_file_mark_block_size));
	EXPECT_EQ(20U, offsetof(struct vdi_config, eom_warning_size));
	EXPECT_EQ(24U, offsetof(struct vdi_config, server_timeout));
	EXPECT_EQ(28U, offsetof(struct vdi_config, block_size));
	EXPECT_EQ(32U, offsetof(struct vdi_config, max_io_depth));
	EXPECT_EQ(36U, offsetof(struct vdi_config, max_transfer_size));
	EXPECT_EQ(40U, offsetof(struct vdi_config, buffer_area_size));

	/* No implicit padding anywhere: sizes are the sums of the fields. */
	EXPECT_EQ(72U, sizeof(struct vdi_version));
	EXPECT_EQ(200U, sizeof(struct vdi_create));
	EXPECT_EQ(152U, sizeof(struct vdi_open));
	EXPECT_EQ(72U, sizeof(struct vdi_get_config));
	EXPECT_EQ(40U, sizeof(struct vdi_begin_config));
	EXPECT_EQ(32U, sizeof(struct vdi_end_config));
	EXPECT_EQ(152U, sizeof(struct vdi_open_device));
	EXPECT_EQ(32U, sizeof(struct vdi_send));
	EXPECT_EQ(32U, sizeof(struct vdi_command));
	EXPECT_EQ(24U, sizeof(struct vdi_done));
	EXPECT_EQ(32U, sizeof(struct vdi_completion));
	EXPECT_EQ(40U, sizeof(struct vdi_batch));
	EXPECT_EQ(16U, sizeof(struct vdi_ctl));
	EXPECT_EQ(32U, sizeof(struct vdi_set_info));
	EXPECT_EQ(16U, sizeof(struct vdi_code_count));
	EXPECT_EQ(616U, sizeof(struct vdi_dev_stats));
	EXPECT_EQ(336U, sizeof(struct vdi_set_stats));
	EXPECT_EQ(40U, sizeof(struct vdi_list_sets));
	EXPECT_EQ(56U, sizeof(struct vdi_stats_req));
	EXPECT_EQ(32U, sizeof(struct vdi_abort_set));
	EXPECT_EQ(616U, VDI_DEV_STATS_SIZE_VER0);
	EXPECT_EQ(336U, VDI_SET_STATS_SIZE_VER0);
	EXPECT_EQ(172U, offsetof(struct vdi_create, mode));
	EXPECT_EQ(184U, offsetof(struct vdi_create, reserved));
	EXPECT_EQ(52U, offsetof(struct vdi_get_config, flags));

	/* One call per turn (API 1.3): no hole, every __u64 8-aligned. */
	EXPECT_EQ(40U, sizeof(struct vdi_send_to));
	EXPECT_EQ(0U, offsetof(struct vdi_send_to, send));
	EXPECT_EQ(32U, offsetof(struct vdi_send_to, device_index));
	EXPECT_EQ(36U, offsetof(struct vdi_send_to, reserved));
	EXPECT_EQ(64U, sizeof(struct vdi_enter));
	EXPECT_EQ(0U, offsetof(struct vdi_enter, submit));
	EXPECT_EQ(8U, offsetof(struct vdi_enter, reap));
	EXPECT_EQ(16U, offsetof(struct vdi_enter, submit_count));
	EXPECT_EQ(20U, offsetof(struct vdi_enter, reap_count));
	EXPECT_EQ(24U, offsetof(struct vdi_enter, submitted));
	EXPECT_EQ(28U, offsetof(struct vdi_enter, reaped));
	EXPECT_EQ(32U, offsetof(struct vdi_enter, timeout_ms));
	EXPECT_EQ(40U, offsetof(struct vdi_enter, flags));
	EXPECT_EQ(44U, offsetof(struct vdi_enter, spin_us));
	EXPECT_EQ(48U, offsetof(struct vdi_enter, reserved));
	EXPECT_EQ(10000, VDI_SPIN_MAX_US);
	EXPECT_EQ(1ULL << 7, VDI_FEAT_ENTER);
	EXPECT_EQ(1, VDI_API_MAJOR);
	EXPECT_EQ(3, VDI_API_MINOR);

	/* ioctl numbers: one magic, consecutive numbers, exact sizes. */
	for (unsigned int i = 0; i < ARRAY_SIZE(all_ioctls); i++) {
		EXPECT_EQ(0xDAU, _IOC_TYPE(all_ioctls[i]));
		EXPECT_EQ(i, _IOC_NR(all_ioctls[i]));
		/* unique: no two share a number, whatever their size */
		for (unsigned int j = 0; j < i; j++)
			EXPECT_NE(_IOC_NR(all_ioctls[j]), _IOC_NR(all_ioctls[i]));
	}
	EXPECT_EQ(sizeof(struct vdi_version), _IOC_SIZE(VDI_IOC_VERSION));
	EXPECT_EQ(sizeof(struct vdi_create), _IOC_SIZE(VDI_IOC_CREATE));
	EXPECT_EQ(sizeof(struct vdi_batch), _IOC_SIZE(VDI_IOC_SEND));
	EXPECT_EQ(sizeof(struct vdi_ctl), _IOC_SIZE(VDI_IOC_SIGNAL_ABORT));
	EXPECT_EQ(sizeof(struct vdi_set_info), _IOC_SIZE(VDI_IOC_SET_INFO));
	EXPECT_EQ(sizeof(struct vdi_list_sets), _IOC_SIZE(VDI_IOC_LIST_SETS));
	EXPECT_EQ(sizeof(struct vdi_stats_req), _IOC_SIZE(VDI_IOC_SET_STATS));
	EXPECT_EQ(sizeof(struct vdi_abort_set), _IOC_SIZE(VDI_IOC_ABORT_SET));
	EXPECT_EQ(sizeof(struct vdi_enter), _IOC_SIZE(VDI_IOC_ENTER));
	EXPECT_EQ(0x12U, _IOC_NR(VDI_IOC_ENTER));
	EXPECT_EQ((unsigned long)_IOC_READ | _IOC_WRITE, _IOC_DIR(VDI_IOC_ENTER));
	EXPECT_EQ((unsigned long)_IOC_READ | _IOC_WRITE, _IOC_DIR(VDI_IOC_LIST_SETS));
	EXPECT_EQ((unsigned long)_IOC_READ | _IOC_WRITE, _IOC_DIR(VDI_IOC_SET_STATS));
	EXPECT_EQ((unsigned long)_IOC_WRITE, _IOC_DIR(VDI_IOC_ABORT_SET));

	/* VDI's own constants. */
	EXPECT_EQ(0x173U, VDI_VDF_LIKE_TAPE);
	EXPECT_EQ(0x200U, VDI_VDF_RANDOM_ACCESS);
	EXPECT_EQ(0x2000U, VDI_VDF_REQUEST_COMPLETE);
	EXPECT_EQ(0x10000U, VDI_VDF_WRITE_MEDIA);
	EXPECT_EQ(0x20000U, VDI_VDF_READ_MEDIA);
	EXPECT_EQ(0x40000U, VDI_VDF_COMPLETE_ENABLED);
	EXPECT_EQ(19, VDI_VDC_MAX);
	EXPECT_EQ(1117, VDI_ERROR_IO_DEVICE);
	EXPECT_EQ(995, VDI_ERROR_OPERATION_ABORTED);
}

/*
 * The figures (API 1.2).  Every field at the offset the sum of the ones
 * before gives: no implicit padding (no kernel byte can leak through a
 * hole), and the same layout for 32-bit callers (every __u64 8-aligned).
 */
TEST(figures_struct_layout)
{
	EXPECT_EQ(16U, sizeof(struct vdi_code_count));
	EXPECT_EQ(8U, offsetof(struct vdi_code_count, count));

	EXPECT_EQ(616U, sizeof(struct vdi_dev_stats));
	EXPECT_EQ(0U, offsetof(struct vdi_dev_stats, name));
	EXPECT_EQ(128U, offsetof(struct vdi_dev_stats, index));
	EXPECT_EQ(132U, offsetof(struct vdi_dev_stats, state));
	EXPECT_EQ(136U, offsetof(struct vdi_dev_stats, flags));
	EXPECT_EQ(140U, offsetof(struct vdi_dev_stats, queued));
	EXPECT_EQ(144U, offsetof(struct vdi_dev_stats, held));
	EXPECT_EQ(148U, offsetof(struct vdi_dev_stats, done));
	EXPECT_EQ(152U, offsetof(struct vdi_dev_stats, queued_peak));
	EXPECT_EQ(156U, offsetof(struct vdi_dev_stats, inflight_peak));
	EXPECT_EQ(160U, offsetof(struct vdi_dev_stats, io_error_episodes));
	EXPECT_EQ(164U, offsetof(struct vdi_dev_stats, reserved0));
	EXPECT_EQ(168U, offsetof(struct vdi_dev_stats, sent));
	EXPECT_EQ(176U, offsetof(struct vdi_dev_stats, taken));
	EXPECT_EQ(184U, offsetof(struct vdi_dev_stats, completed));
	EXPECT_EQ(192U, offsetof(struct vdi_dev_stats, reaped));
	EXPECT_EQ(200U, offsetof(struct vdi_dev_stats, bytes_read));
	EXPECT_EQ(208U, offsetof(struct vdi_dev_stats, bytes_written));
	EXPECT_EQ(216U, offsetof(struct vdi_dev_stats, queued_ns));
	EXPECT_EQ(224U, offsetof(struct vdi_dev_stats, held_ns));
	EXPECT_EQ(232U, offsetof(struct vdi_dev_stats, reaping_ns));
	EXPECT_EQ(240U, offsetof(struct vdi_dev_stats, client_busy_ns));
	EXPECT_EQ(248U, offsetof(struct vdi_dev_stats, client_idle_ns));
	EXPECT_EQ(256U, offsetof(struct vdi_dev_stats, sent_by_code));
	EXPECT_EQ(8U * (VDI_VDC_MAX + 1),
		  sizeof(((struct vdi_dev_stats *)0)->sent_by_code));
	EXPECT_EQ(416U, offsetof(struct vdi_dev_stats, completions));
	EXPECT_EQ(16U * VDI_STATS_CODES,
		  sizeof(((struct vdi_dev_stats *)0)->completions));
	EXPECT_EQ(544U, offsetof(struct vdi_dev_stats, completions_other));
	EXPECT_EQ(552U, offsetof(struct vdi_dev_stats, reserved));

	EXPECT_EQ(336U, sizeof(struct vdi_set_stats));
	EXPECT_EQ(0U, offsetof(struct vdi_set_stats, id));
	EXPECT_EQ(8U, offsetof(struct vdi_set_stats, name));
	EXPECT_EQ(136U, offsetof(struct vdi_set_stats, state));
	EXPECT_EQ(140U, offsetof(struct vdi_set_stats, flags));
	EXPECT_EQ(144U, offsetof(struct vdi_set_stats, uid));
	EXPECT_EQ(148U, offsetof(struct vdi_set_stats, gid));
	EXPECT_EQ(152U, offsetof(struct vdi_set_stats, mode));
	EXPECT_EQ(156U, offsetof(struct vdi_set_stats, device_count));
	EXPECT_EQ(160U, offsetof(struct vdi_set_stats, client_pid));
	EXPECT_EQ(164U, offsetof(struct vdi_set_stats, server_pid));
	EXPECT_EQ(168U, offsetof(struct vdi_set_stats, secondaries));
	EXPECT_EQ(172U, offsetof(struct vdi_set_stats, queue_depth));
	EXPECT_EQ(176U, offsetof(struct vdi_set_stats, config));
	EXPECT_EQ(220U, offsetof(struct vdi_set_stats, abort_reason));
	EXPECT_EQ(224U, offsetof(struct vdi_set_stats, abort_device));
	EXPECT_EQ(228U, offsetof(struct vdi_set_stats, abort_pid));
	EXPECT_EQ(232U, offsetof(struct vdi_set_stats, area_size));
	EXPECT_EQ(240U, offsetof(struct vdi_set_stats, age_ns));
	EXPECT_EQ(248U, offsetof(struct vdi_set_stats, ready_age_ns));
	EXPECT_EQ(256U, offsetof(struct vdi_set_stats, end_age_ns));
	EXPECT_EQ(264U, offsetof(struct vdi_set_stats, agent_wait_ns));
	EXPECT_EQ(272U, offsetof(struct vdi_set_stats, reserved));

	EXPECT_EQ(40U, sizeof(struct vdi_list_sets));
	EXPECT_EQ(0U, offsetof(struct vdi_list_sets, ids));
	EXPECT_EQ(8U, offsetof(struct vdi_list_sets, count));
	EXPECT_EQ(12U, offsetof(struct vdi_list_sets, flags));
	EXPECT_EQ(16U, offsetof(struct vdi_list_sets, total));
	EXPECT_EQ(20U, offsetof(struct vdi_list_sets, written));
	EXPECT_EQ(24U, offsetof(struct vdi_list_sets, reserved));

	EXPECT_EQ(56U, sizeof(struct vdi_stats_req));
	EXPECT_EQ(0U, offsetof(struct vdi_stats_req, id));
	EXPECT_EQ(8U, offsetof(struct vdi_stats_req, set));
	EXPECT_EQ(16U, offsetof(struct vdi_stats_req, devs));
	EXPECT_EQ(24U, offsetof(struct vdi_stats_req, set_size));
	EXPECT_EQ(28U, offsetof(struct vdi_stats_req, dev_size));
	EXPECT_EQ(32U, offsetof(struct vdi_stats_req, dev_count));
	EXPECT_EQ(36U, offsetof(struct vdi_stats_req, flags));
	EXPECT_EQ(40U, offsetof(struct vdi_stats_req, reserved));

	EXPECT_EQ(32U, sizeof(struct vdi_abort_set));
	EXPECT_EQ(0U, offsetof(struct vdi_abort_set, id));
	EXPECT_EQ(8U, offsetof(struct vdi_abort_set, flags));
	EXPECT_EQ(12U, offsetof(struct vdi_abort_set, reserved0));
	EXPECT_EQ(16U, offsetof(struct vdi_abort_set, reserved));

	/* the first published sizes are these */
	EXPECT_EQ(336U, VDI_SET_STATS_SIZE_VER0);
	EXPECT_EQ(616U, VDI_DEV_STATS_SIZE_VER0);
	/* the abort reasons and states are distinct, in their order */
	EXPECT_EQ(8, VDI_ABORT_ADMIN);
	EXPECT_EQ(5, VDI_STATE_ABORTED);
	EXPECT_EQ(0xffffffffU, VDI_ABORT_NO_DEVICE);
}

TEST(version_handshake_on_every_kind_of_fd)
{
	struct vdi_sess s;
	struct vdi_version v;
	int ep, fds[5];

	ep = vdi_open();
	ASSERT_LE(0, ep) TH_LOG("open %s: %s", VDI_PATH, strerror(-ep));
	ASSERT_EQ(0, vdi_sess_simple(&s, 1, 0));
	fds[0] = ep;
	fds[1] = s.cset;
	fds[2] = s.sset;
	fds[3] = s.cdev[0];
	fds[4] = s.sdev[0];
	for (int i = 0; i < 5; i++) {
		ASSERT_EQ(0, vdi_version(fds[i], &v)) TH_LOG("fd kind %d", i);
		EXPECT_EQ((__u32)VDI_API_MAJOR, v.api_major);
		EXPECT_EQ((__u32)VDI_API_MINOR, v.api_minor);
		EXPECT_EQ(VDI_ALL_FEATURES, v.features & VDI_ALL_FEATURES);
		EXPECT_EQ((__u32)VDI_MAX_DEVICES, v.max_devices);
		EXPECT_EQ((__u32)VDI_NAME_MAX, v.name_max);
		EXPECT_LE(1U, v.max_queue_depth);
		EXPECT_LE(1U, v.max_sets_per_user);
		EXPECT_LE((uint64_t)VDI_PAGE, v.max_area_size);
		EXPECT_EQ(0U, v.max_area_size % VDI_PAGE);
		for (int j = 0; j < 4; j++) {
			EXPECT_EQ(0U, v.reserved[j]);
		}
	}
	/* The handshake changed nothing: the session still works. */
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	vdi_sess_close(&s);
	close(ep);
}

TEST(version_reserved_nonzero_is_einval)
{
	struct vdi_version v;
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	for (int j = 0; j < 4; j++) {
		memset(&v, 0, sizeof(v));
		v.api_major = VDI_API_MAJOR;
		v.reserved[j] = 1ULL << (j * 13);
		EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_VERSION, &v));
	}
	memset(&v, 0, sizeof(v));
	v.api_major = VDI_API_MAJOR;
	v.reserved[3] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_VERSION, &v));
	EXPECT_EQ(0, vdi_version(fd, &v));
	close(fd);
}

TEST(version_efault)
{
	struct vdi_version *ro;
	void *none = vdi_pages(1, PROT_NONE);
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, none);
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_VERSION, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_VERSION, none));
	/* Readable but not writable: the answer cannot be written back. */
	ro = vdi_pages(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, ro);
	ro->api_major = VDI_API_MAJOR;
	ASSERT_EQ(0, mprotect(ro, VDI_PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_VERSION, ro));
	/* The struct's end inside a guard page. */
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_VERSION,
				     (uint8_t *)before_guard(64)));
	close(fd);
}

/* Wrong size, wrong magic, wrong direction, unknown number: ENOTTY on every fd. */
static void check_enotty_everywhere(struct __test_metadata *_metadata,
				    const int *fds, int nfds,
				    unsigned long cmd, const char *what)
{
	static uint8_t buf[8192] __attribute__((aligned(64)));

	for (int i = 0; i < nfds; i++) {
		memset(buf, 0, sizeof(buf));
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fds[i], cmd, buf))
			TH_LOG("%s cmd %#lx on fd kind %d", what, cmd, i);
	}
}

FIXTURE(fds) {
	struct vdi_sess s;
	int ep;
	int all[5];
};

FIXTURE_SETUP(fds)
{
	self->ep = vdi_open();
	ASSERT_LE(0, self->ep);
	ASSERT_EQ(0, vdi_sess_simple(&self->s, 1, 0));
	self->all[0] = self->ep;
	self->all[1] = self->s.cset;
	self->all[2] = self->s.sset;
	self->all[3] = self->s.cdev[0];
	self->all[4] = self->s.sdev[0];
}

FIXTURE_TEARDOWN(fds)
{
	vdi_sess_close(&self->s);
	vdi_close(&self->ep);
}

TEST_F(fds, wrong_size_is_enotty)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(all_ioctls); i++) {
		unsigned long c = all_ioctls[i];
		unsigned int dir = _IOC_DIR(c), nr = _IOC_NR(c);
		unsigned int size = _IOC_SIZE(c);

		check_enotty_everywhere(_metadata, self->all, 5,
					_IOC(dir, VDI_IOC_MAGIC, nr, size + 8),
					"size+8");
		check_enotty_everywhere(_metadata, self->all, 5,
					_IOC(dir, VDI_IOC_MAGIC, nr, size - 8),
					"size-8");
		check_enotty_everywhere(_metadata, self->all, 5,
					_IOC(dir, VDI_IOC_MAGIC, nr, 4), "size4");
	}
	/* Nothing happened to the set. */
	EXPECT_EQ(1, vdi_send1(self->s.sdev[0], 1, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
}

TEST_F(fds, wrong_magic_is_enotty)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(all_ioctls); i++) {
		unsigned long c = all_ioctls[i];

		check_enotty_everywhere(_metadata, self->all, 5,
					_IOC(_IOC_DIR(c), 0xDB, _IOC_NR(c),
					     _IOC_SIZE(c)), "magic DB");
		check_enotty_everywhere(_metadata, self->all, 5,
					_IOC(_IOC_DIR(c), 0x00, _IOC_NR(c),
					     _IOC_SIZE(c)), "magic 0");
	}
	EXPECT_EQ(1, vdi_send1(self->s.sdev[0], 1, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
}

TEST_F(fds, unknown_number_or_direction_is_enotty)
{
	static const unsigned long bad[] = {
		_IOW(VDI_IOC_MAGIC, 0x0e, struct vdi_batch),
		_IOW(VDI_IOC_MAGIC, 0x0f, struct vdi_ctl),
		_IOWR(VDI_IOC_MAGIC, 0x20, struct vdi_version),
		_IOW(VDI_IOC_MAGIC, 0xff, struct vdi_ctl),
		_IOR(VDI_IOC_MAGIC, 0x00, struct vdi_version),
		_IOW(VDI_IOC_MAGIC, 0x00, struct vdi_version),
		_IOWR(VDI_IOC_MAGIC, 0x01, struct vdi_create),
		_IOR(VDI_IOC_MAGIC, 0x08, struct vdi_batch),
		_IOWR(VDI_IOC_MAGIC, 0x0b, struct vdi_batch),
		_IO(VDI_IOC_MAGIC, 0x0d),
		_IO(VDI_IOC_MAGIC, 0x0c),
		/* the figures' numbers, with another direction or size */
		_IOW(VDI_IOC_MAGIC, 0x0f, struct vdi_list_sets),
		_IOR(VDI_IOC_MAGIC, 0x10, struct vdi_stats_req),
		_IOWR(VDI_IOC_MAGIC, 0x11, struct vdi_abort_set),
		_IOWR(VDI_IOC_MAGIC, 0x10, struct vdi_set_stats),
		_IOW(VDI_IOC_MAGIC, 0x12, struct vdi_abort_set),
		_IOWR(VDI_IOC_MAGIC, 0x12, struct vdi_list_sets),
		/* ENTER's number, with another direction; the next number */
		_IOW(VDI_IOC_MAGIC, 0x12, struct vdi_enter),
		_IOR(VDI_IOC_MAGIC, 0x12, struct vdi_enter),
		_IOWR(VDI_IOC_MAGIC, 0x13, struct vdi_enter),
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++)
		check_enotty_everywhere(_metadata, self->all, 5, bad[i],
					"unknown");
}

TEST_F(fds, device_ioctls_on_set_fds_are_enotty)
{
	struct vdi_send snd = { .cookie = 1, .code = T_VDC_FLUSH,
				.buf_offset = VDI_NO_BUFFER };
	struct vdi_command cmd[2];
	struct vdi_ctl ctl = { 0 };
	int sets[3] = { self->ep, self->s.cset, self->s.sset };

	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(-ENOTTY, vdi_send(sets[i], &snd, 1));
		EXPECT_EQ(-ENOTTY, vdi_get(sets[i], cmd, 2, 0));
		EXPECT_EQ(-ENOTTY, vdi_ioctl(sets[i], VDI_IOC_CLOSE_DEVICE,
					     &ctl));
	}
	/* The device is still open and active. */
	EXPECT_EQ(1, vdi_send(self->s.sdev[0], &snd, 1));
	EXPECT_EQ(1, vdi_get(self->s.cdev[0], cmd, 2, 0));
}

TEST_F(fds, set_ioctls_on_device_fds_are_enotty)
{
	int devs[2] = { self->s.cdev[0], self->s.sdev[0] };
	struct vdi_completion cpl[2];
	struct vdi_create cr;
	struct vdi_open op;
	struct vdi_get_config gc;
	struct vdi_begin_config bc;
	struct vdi_end_config ec;
	struct vdi_open_device od;
	struct vdi_ctl ctl;
	char name[VDI_NAME_MAX];

	vdi_make_name(name, "dev");
	for (int i = 0; i < 2; i++) {
		int fd = devs[i];

		vdi_create_init(&cr, name, 1, 0);
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_CREATE, &cr));
		memset(&op, 0, sizeof(op));
		strcpy(op.name, self->s.name);
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER, &op));
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_OPEN_SECONDARY, &op));
		memset(&gc, 0, sizeof(gc));
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_GET_CONFIG, &gc));
		memset(&bc, 0, sizeof(bc));
		bc.features = VDI_VDF_WRITE_MEDIA;
		bc.block_size = 512;
		bc.max_transfer_size = 65536;
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_BEGIN_CONFIG, &bc));
		memset(&ec, 0, sizeof(ec));
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_END_CONFIG, &ec));
		memset(&od, 0, sizeof(od));
		strcpy(od.name, self->s.name);
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_OPEN_DEVICE, &od));
		EXPECT_EQ(-ENOTTY, vdi_wait(fd, cpl, 2, 0));
		memset(&ctl, 0, sizeof(ctl));
		EXPECT_EQ(-ENOTTY, vdi_ioctl(fd, VDI_IOC_SIGNAL_ABORT, &ctl));
	}
	/* SIGNAL_ABORT on a device fd did not abort; CREATE made no set. */
	EXPECT_EQ(1, vdi_send1(self->s.sdev[0], 1, T_VDC_FLUSH, 0, 0,
			       VDI_NO_BUFFER));
	EXPECT_EQ(-ENOENT, vdi_open_server(name));
}

/*
 * ENTER (API 1.3) belongs to a client device fd and to the server's set
 * fd; the other fds say ENOTTY before reading the struct, an endpoint
 * without a role EPROTO.
 */
TEST_F(fds, enter_on_every_kind_of_fd)
{
	static const int want[5] = { -EPROTO, -ENOTTY, -ETIMEDOUT, -ETIMEDOUT,
				     -ENOTTY };
	struct vdi_completion room;	/* 32 bytes: a command's too */
	struct vdi_enter e;

	for (int i = 0; i < 5; i++) {
		vdi_enter_init(&e, NULL, 0, &room, 1, 0, 0);
		EXPECT_EQ(want[i], vdi_enter(self->all[i], &e))
			TH_LOG("fd kind %d", i);
		if (want[i] == -ETIMEDOUT) {
			EXPECT_EQ(0U, e.submitted);
			EXPECT_EQ(0U, e.reaped);
		} else {
			EXPECT_EQ(want[i], vdi_ioctl(self->all[i],
						     VDI_IOC_ENTER, NULL));
			EXPECT_EQ(VDI_ENTER_UNWRITTEN, e.reaped);
		}
	}
}

TEST_F(fds, other_role_calls_are_eproto)
{
	struct vdi_send snd = { .cookie = 7, .code = T_VDC_FLUSH,
				.buf_offset = VDI_NO_BUFFER };
	struct vdi_command cmd;
	struct vdi_completion cpl;
	struct vdi_done done;

	/* Server calls on the client set fd. */
	EXPECT_EQ(-EPROTO, vdi_begin_config(self->s.cset, VDI_VDF_WRITE_MEDIA,
					    0, 512, 65536, 0));
	EXPECT_EQ(-EPROTO, vdi_end_config(self->s.cset, 4096));
	EXPECT_EQ(-EPROTO, vdi_wait(self->s.cset, &cpl, 1, 0));
	/* A client call on the server set fd. */
	ASSERT_EQ(1, vdi_send(self->s.sdev[0], &snd, 1));
	ASSERT_EQ(1, vdi_get(self->s.cdev[0], &cmd, 1, 0));
	done = (struct vdi_done){ .tag = cmd.tag };
	EXPECT_EQ(-EPROTO, vdi_complete(self->s.sset, &done, 1));
	/* The same on device fds (an extension of the set-fd rule). */
	EXPECT_EQ(-EPROTO, vdi_send(self->s.cdev[0], &snd, 1));
	EXPECT_EQ(-EPROTO, vdi_get(self->s.sdev[0], &cmd, 1, 0));
	EXPECT_EQ(-EPROTO, vdi_complete(self->s.sdev[0], &done, 1));
	EXPECT_EQ(-EPROTO, vdi_close_device(self->s.cdev[0]));
	/* None of them did anything: the command is still held. */
	EXPECT_EQ(-ETIMEDOUT, vdi_wait(self->s.sset, &cpl, 1, 0));
	EXPECT_EQ(1, vdi_complete(self->s.cdev[0], &done, 1));
	ASSERT_EQ(1, vdi_wait(self->s.sset, &cpl, 1, 0));
	EXPECT_EQ(7U, cpl.cookie);
}

TEST(endpoint_without_role_refuses_set_calls)
{
	struct vdi_completion cpl;
	struct vdi_done done = { 0 };
	char name[VDI_NAME_MAX];
	uint32_t idx;
	int fd = vdi_open();
	int c;

	ASSERT_LE(0, fd);
	vdi_make_name(name, "ep");
	EXPECT_EQ(-EPROTO, vdi_get_config(fd, 0, NULL));
	EXPECT_EQ(-EPROTO, vdi_begin_config(fd, VDI_VDF_WRITE_MEDIA, 0, 512,
					    65536, 0));
	EXPECT_EQ(-EPROTO, vdi_end_config(fd, 4096));
	EXPECT_EQ(-EPROTO, vdi_wait(fd, &cpl, 1, 0));
	EXPECT_EQ(-EPROTO, vdi_complete(fd, &done, 1));
	EXPECT_EQ(-EPROTO, vdi_abort(fd));
	EXPECT_EQ(-EPROTO, vdi_ioctl(fd, VDI_IOC_ENTER, NULL));
	EXPECT_EQ(-EPROTO, vdi_open_device(fd, name, 0, &idx));
	EXPECT_EQ(NULL, vdi_map(fd, VDI_PAGE, 0));
	/* The endpoint is still free to take a role. */
	ASSERT_EQ(0, vdi_create_on(fd, name, 1, 0));
	c = vdi_open_server(name);
	EXPECT_LE(0, c);
	close(c);
	close(fd);
}

TEST(create_device_count_range)
{
	static const uint32_t bad[] = { 0, 65, 1000, 0xffffffffU };
	struct vdi_create c;
	char name[VDI_NAME_MAX];
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	vdi_make_name(name, "cnt");
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		vdi_create_init(&c, name, bad[i], 0);
		EXPECT_EQ(-EOPNOTSUPP, vdi_ioctl(fd, VDI_IOC_CREATE, &c))
			TH_LOG("device_count %u", bad[i]);
	}
	/* The refusals left the endpoint free and the name unused. */
	EXPECT_EQ(-ENOENT, vdi_open_server(name));
	EXPECT_EQ(0, try_create_features("cnt1", 1, 0));
	vdi_create_init(&c, name, VDI_MAX_DEVICES, 0);
	EXPECT_EQ(0, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	close(fd);
}

TEST(create_valid_feature_combinations)
{
	static const uint32_t ok[] = {
		0,						/* pipe */
		VDI_VDF_REMOVABLE,				/* pipe, removable */
		VDI_VDF_LIKE_TAPE,				/* tape */
		VDI_VDF_RANDOM_ACCESS,				/* disk */
		VDI_VDF_RANDOM_ACCESS | VDI_VDF_REMOVABLE,	/* disk, removable */
		T_VDF_DISCARD,
		VDI_VDF_LIKE_TAPE | T_VDF_DISCARD,
		VDI_VDF_RANDOM_ACCESS | T_VDF_DISCARD,
		T_VDF_SNAPSHOT_PREPARE | T_VDF_ENUM_FROZEN | T_VDF_VSS_WRITER,
		VDI_VDF_REQUEST_COMPLETE,
		VDI_VDF_RANDOM_ACCESS | VDI_VDF_REMOVABLE | T_VDF_DISCARD |
			T_VDF_SNAPSHOT_PREPARE | T_VDF_ENUM_FROZEN |
			T_VDF_VSS_WRITER | VDI_VDF_REQUEST_COMPLETE,
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(ok); i++) {
		EXPECT_EQ(0, try_create_features("feat", 1, ok[i]))
			TH_LOG("features %#x", ok[i]);
	}
}

TEST(create_invalid_feature_combinations)
{
	static const uint32_t bad[] = {
		T_VDF_REWIND,				/* tape bits alone */
		T_VDF_POSITION,
		T_VDF_FILEMARKS,
		0x20, 0x40,
		VDI_VDF_LIKE_TAPE & ~VDI_VDF_REMOVABLE,	/* 0x172: not a mode */
		VDI_VDF_LIKE_TAPE | VDI_VDF_RANDOM_ACCESS,	/* tape + disk */
		VDI_VDF_RANDOM_ACCESS | T_VDF_REWIND,
		VDI_VDF_REMOVABLE | T_VDF_FILEMARKS,
		0x4000, 0x8000, 0x100000,		/* unknown bits */
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EOPNOTSUPP, try_create_features("badf", 1, bad[i]))
			TH_LOG("features %#x", bad[i]);
	}
}

TEST(create_server_bits_are_eopnotsupp)
{
	static const uint32_t bad[] = {
		VDI_VDF_WRITE_MEDIA, VDI_VDF_READ_MEDIA,
		VDI_VDF_COMPLETE_ENABLED, T_VDF_LATCH_STATS,
		VDI_VDF_REQUEST_COMPLETE | VDI_VDF_COMPLETE_ENABLED,
		VDI_VDF_RANDOM_ACCESS | VDI_VDF_WRITE_MEDIA,
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EOPNOTSUPP, try_create_features("srvb", 1, bad[i]))
			TH_LOG("features %#x", bad[i]);
	}
}

TEST(create_alignment_and_prefix_zone)
{
	static const uint32_t bad_align[] = { 3, 768, 4097, 131072,
					      0x80000000U };
	static const uint32_t ok_align[] = { 0, 512, 4096, 65536 };
	static const uint32_t bad_prefix[] = { 65537, 1U << 20, 0xffffffffU };
	static const uint32_t ok_prefix[] = { 0, 1, 512, 65536 };
	struct vdi_create c;
	char name[VDI_NAME_MAX];

	for (unsigned int i = 0; i < ARRAY_SIZE(bad_align); i++) {
		vdi_make_name(name, "al");
		vdi_create_init(&c, name, 1, 0);
		c.config.alignment = bad_align[i];
		EXPECT_EQ(-EOPNOTSUPP, try_create(&c))
			TH_LOG("alignment %u", bad_align[i]);
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(ok_align); i++) {
		vdi_make_name(name, "al");
		vdi_create_init(&c, name, 1, 0);
		c.config.alignment = ok_align[i];
		EXPECT_EQ(0, try_create(&c)) TH_LOG("alignment %u", ok_align[i]);
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(bad_prefix); i++) {
		vdi_make_name(name, "pz");
		vdi_create_init(&c, name, 1, 0);
		c.config.prefix_zone_size = bad_prefix[i];
		EXPECT_EQ(-EOPNOTSUPP, try_create(&c))
			TH_LOG("prefix %u", bad_prefix[i]);
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(ok_prefix); i++) {
		vdi_make_name(name, "pz");
		vdi_create_init(&c, name, 1, 0);
		c.config.prefix_zone_size = ok_prefix[i];
		EXPECT_EQ(0, try_create(&c)) TH_LOG("prefix %u", ok_prefix[i]);
	}
}

TEST(create_bad_names_are_einval)
{
	static const char *const bad[] = {
		"", "back\\slash", "\\", "new\nline", "\x01start", "tab\tin",
		"end\x1f", "del\x7f",
	};
	struct vdi_create c;
	int fd = vdi_open(), s;

	ASSERT_LE(0, fd);
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		vdi_create_init(&c, bad[i], 1, 0);
		EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c))
			TH_LOG("name #%u", i);
	}
	/* No NUL within the 128 bytes. */
	vdi_create_init(&c, "", 1, 0);
	memset(c.name, 'n', sizeof(c.name));
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	/* 127 bytes and a NUL is the longest name. */
	c.name[VDI_NAME_MAX - 1] = 0;
	snprintf(c.name, 20, "max-%d-", (int)getpid());
	c.name[strlen(c.name)] = 'n';
	ASSERT_EQ(VDI_NAME_MAX - 1, (int)strlen(c.name));
	EXPECT_EQ(0, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	/* ... and the server finds it by that name. */
	s = vdi_open_server(c.name);
	EXPECT_LE(0, s);
	if (s >= 0)
		close(s);
	close(fd);
}

TEST(create_flags_reserved_and_mode_are_einval)
{
	struct vdi_create c;
	char name[VDI_NAME_MAX];
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	vdi_make_name(name, "fl");
	vdi_create_init(&c, name, 1, 0);
	c.flags = 1U << 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	c.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	c.flags = 0;
	c.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	c.reserved[0] = 0;
	c.reserved[1] = 1ULL << 40;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	c.reserved[1] = 0;
	/* mode holds rw bits only. */
	c.mode = 0700;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	c.mode = 0611;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	c.mode = 01600;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	c.mode = 04666;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	EXPECT_EQ(-ENOENT, vdi_open_server(name));
	c.mode = 0640;
	EXPECT_EQ(0, vdi_ioctl(fd, VDI_IOC_CREATE, &c));
	close(fd);
}

TEST(create_eexist_then_name_free_after_close)
{
	char name[VDI_NAME_MAX];
	int a, b;

	vdi_make_name(name, "dup");
	a = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, a);
	EXPECT_EQ(-EEXIST, vdi_create_set(name, 1, 0));
	EXPECT_EQ(-EEXIST, vdi_create_set(name, 2, VDI_VDF_LIKE_TAPE));
	close(a);
	b = vdi_create_set(name, 1, 0);
	EXPECT_LE(0, b);
	close(b);
}

TEST(create_efault_loses_nothing)
{
	struct vdi_create *c;
	void *none = vdi_pages(1, PROT_NONE);
	char name[VDI_NAME_MAX];
	int fd = vdi_open(), s;

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, none);
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_CREATE, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_CREATE, none));
	/* A valid struct whose tail lies in a guard page. */
	vdi_make_name(name, "cef");
	c = before_guard(sizeof(*c) - 8);
	ASSERT_NE(NULL, c);
	memset(c, 0, sizeof(*c) - 8);
	strcpy(c->name, name);
	c->config.device_count = 1;
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_CREATE, c));
	EXPECT_EQ(-ENOENT, vdi_open_server(name));
	/* The endpoint is still free; the name was never taken. */
	ASSERT_EQ(0, vdi_create_on(fd, name, 1, 0));
	s = vdi_open_server(name);
	EXPECT_LE(0, s);
	close(s);
	close(fd);
}

TEST(second_role_is_eisconn)
{
	char name[VDI_NAME_MAX], other[VDI_NAME_MAX];
	int c, s;

	vdi_make_name(name, "isc");
	vdi_make_name(other, "isc");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	s = vdi_open_server(name);
	ASSERT_LE(0, s);

	EXPECT_EQ(-EISCONN, vdi_create_on(c, other, 1, 0));
	EXPECT_EQ(-EISCONN, vdi_open_on(c, VDI_IOC_OPEN_SERVER, name));
	EXPECT_EQ(-EISCONN, vdi_open_on(c, VDI_IOC_OPEN_SECONDARY, name));
	EXPECT_EQ(-EISCONN, vdi_create_on(s, other, 1, 0));
	EXPECT_EQ(-EISCONN, vdi_open_on(s, VDI_IOC_OPEN_SERVER, name));
	EXPECT_EQ(-EISCONN, vdi_open_on(s, VDI_IOC_OPEN_SECONDARY, name));
	/* The refused CREATEs registered nothing. */
	EXPECT_EQ(-ENOENT, vdi_open_server(other));
	close(s);
	close(c);
}

TEST(open_argument_errors)
{
	struct vdi_open o;
	char name[VDI_NAME_MAX], missing[VDI_NAME_MAX];
	int c, fd = vdi_open(), s;

	ASSERT_LE(0, fd);
	vdi_make_name(name, "oa");
	vdi_make_name(missing, "oa-missing");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);

	EXPECT_EQ(-ENOENT, vdi_open_on(fd, VDI_IOC_OPEN_SERVER, missing));
	EXPECT_EQ(-ENOENT, vdi_open_on(fd, VDI_IOC_OPEN_SECONDARY, missing));
	EXPECT_EQ(-EINVAL, vdi_open_on(fd, VDI_IOC_OPEN_SERVER, ""));
	EXPECT_EQ(-EINVAL, vdi_open_on(fd, VDI_IOC_OPEN_SERVER, "a\\b"));
	EXPECT_EQ(-EINVAL, vdi_open_on(fd, VDI_IOC_OPEN_SERVER, "a\x02"));
	memset(&o, 0, sizeof(o));
	memset(o.name, 'x', sizeof(o.name));
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER, &o));
	memset(&o, 0, sizeof(o));
	strcpy(o.name, name);
	o.flags = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER, &o));
	o.flags = 0;
	o.reserved0 = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER, &o));
	o.reserved0 = 0;
	o.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER, &o));
	EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_OPEN_SECONDARY, &o));
	o.reserved[1] = 0;
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER,
				     vdi_pages(1, PROT_NONE)));
	EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_OPEN_SECONDARY, NULL));
	/* After all that the endpoint can still become the server. */
	EXPECT_EQ(0, vdi_ioctl(fd, VDI_IOC_OPEN_SERVER, &o));
	s = vdi_open_server(name);
	EXPECT_EQ(-EBUSY, s);
	close(fd);
	close(c);
}

TEST(one_server_per_set_ebusy)
{
	char name[VDI_NAME_MAX];
	struct vdi_config cfg;
	int c, s1, s2, s3;

	vdi_make_name(name, "busy");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	s1 = vdi_open_server(name);
	ASSERT_LE(0, s1);
	s2 = vdi_open_server(name);
	EXPECT_EQ(-EBUSY, s2);
	EXPECT_EQ(0, vdi_begin_config(s1, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	s3 = vdi_open_server(name);
	EXPECT_EQ(-EBUSY, s3);
	EXPECT_EQ(0, vdi_end_config(s1, 65536));
	EXPECT_EQ(-EBUSY, vdi_open_server(name));
	EXPECT_EQ(0, vdi_get_config(c, 0, &cfg));
	close(s1);
	close(c);
}

TEST(server_get_config_returns_client_config_at_once)
{
	struct vdi_create c;
	struct vdi_config got;
	char name[VDI_NAME_MAX];
	int64_t t0;
	int cfd, s;

	vdi_make_name(name, "sgc");
	vdi_create_init(&c, name, 3, VDI_VDF_RANDOM_ACCESS | VDI_VDF_REMOVABLE |
			T_VDF_DISCARD);
	c.config.prefix_zone_size = 512;
	c.config.alignment = 4096;
	c.config.soft_file_mark_block_size = 0;
	c.config.eom_warning_size = 777;
	c.config.server_timeout = 0;
	cfd = vdi_create_cfg(&c);
	ASSERT_LE(0, cfd);
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	t0 = vdi_now_ms();
	/* The server's timeout is ignored: it never waits. */
	ASSERT_EQ(0, vdi_get_config(s, 5000, &got));
	EXPECT_GT(500, vdi_now_ms() - t0);
	EXPECT_EQ(3U, got.device_count);
	EXPECT_EQ(c.config.features, got.features);
	EXPECT_EQ(512U, got.prefix_zone_size);
	EXPECT_EQ(4096U, got.alignment);
	EXPECT_EQ(777U, got.eom_warning_size);
	EXPECT_EQ(0U, got.server_timeout);
	ASSERT_EQ(0, vdi_get_config(s, -1, &got));
	EXPECT_EQ(3U, got.device_count);
	close(s);
	close(cfd);
}

TEST(client_get_config_times_out)
{
	char name[VDI_NAME_MAX];
	int64_t t0, dt;
	int c, s;

	vdi_make_name(name, "cgt");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	/* No server yet. */
	t0 = vdi_now_ms();
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(c, 0, NULL));
	EXPECT_GT(500, vdi_now_ms() - t0);
	t0 = vdi_now_ms();
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(c, 50, NULL));
	dt = vdi_now_ms() - t0;
	EXPECT_LE(40, dt);
	EXPECT_GT(50 + VDI_PROMPT_MS, dt);
	/* A server configuring is not enough either. */
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(c, 0, NULL));
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_READ_MEDIA, 0, 512, 65536, 0));
	t0 = vdi_now_ms();
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(c, 120, NULL));
	dt = vdi_now_ms() - t0;
	EXPECT_LE(110, dt);
	EXPECT_GT(120 + VDI_PROMPT_MS, dt);
	ASSERT_EQ(0, vdi_end_config(s, 0));
	t0 = vdi_now_ms();
	EXPECT_EQ(0, vdi_get_config(c, 0, NULL));
	EXPECT_EQ(0, vdi_get_config(c, 5000, NULL));
	EXPECT_GT(500, vdi_now_ms() - t0);
	close(s);
	close(c);
}

TEST(get_config_argument_errors)
{
	struct vdi_get_config g, *ro;
	char name[VDI_NAME_MAX];
	int c, s;

	vdi_make_name(name, "gca");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	for (int k = 0; k < 2; k++) {
		int fd = k ? s : c;

		memset(&g, 0, sizeof(g));
		g.flags = 1;
		EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_GET_CONFIG, &g));
		g.flags = 0;
		g.reserved[0] = 1;
		EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_GET_CONFIG, &g));
		g.reserved[0] = 0;
		g.reserved[1] = 1;
		EXPECT_EQ(-EINVAL, vdi_ioctl(fd, VDI_IOC_GET_CONFIG, &g));
		EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_GET_CONFIG, NULL));
		EXPECT_EQ(-EFAULT, vdi_ioctl(fd, VDI_IOC_GET_CONFIG,
					     vdi_pages(1, PROT_NONE)));
	}
	/* The server's answer cannot be written to a read-only struct. */
	ro = vdi_pages(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, ro);
	ASSERT_EQ(0, mprotect(ro, VDI_PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, vdi_ioctl(s, VDI_IOC_GET_CONFIG, ro));
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	ASSERT_EQ(0, vdi_end_config(s, 4096));
	EXPECT_EQ(-EFAULT, vdi_ioctl(c, VDI_IOC_GET_CONFIG, ro));
	/* Nothing lost: the client gets its config on a retry. */
	EXPECT_EQ(0, vdi_get_config(c, 0, NULL));
	close(s);
	close(c);
}

/* A set with an open server, not configured yet. */
struct conn {
	char name[VDI_NAME_MAX];
	int c, s;
};

static int conn_open(struct conn *k, uint32_t ndev, uint32_t cfeatures)
{
	vdi_make_name(k->name, "cn");
	k->c = vdi_create_set(k->name, ndev, cfeatures);
	if (k->c < 0)
		return k->c;
	k->s = vdi_open_server(k->name);
	return k->s < 0 ? k->s : 0;
}

static void conn_close(struct conn *k)
{
	vdi_close(&k->s);
	vdi_close(&k->c);
}

TEST(begin_end_config_states)
{
	struct conn k;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	EXPECT_EQ(-EPROTO, vdi_end_config(k.s, 4096));	/* not configuring */
	EXPECT_EQ(-EPROTO, vdi_begin_config(k.c, VDI_VDF_WRITE_MEDIA, 0, 512,
					    65536, 0));
	ASSERT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(-EPROTO, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512,
					    65536, 0));
	EXPECT_EQ(-EPROTO, vdi_end_config(k.c, 4096));
	ASSERT_EQ(0, vdi_end_config(k.s, 4096));
	EXPECT_EQ(-EPROTO, vdi_end_config(k.s, 4096));
	EXPECT_EQ(-EPROTO, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512,
					    65536, 0));
	conn_close(&k);
}

TEST(begin_config_features)
{
	static const uint32_t bad[] = {
		0, VDI_VDF_COMPLETE_ENABLED,
		VDI_VDF_WRITE_MEDIA | VDI_VDF_COMPLETE_ENABLED,	/* not asked */
		VDI_VDF_WRITE_MEDIA | VDI_VDF_REMOVABLE,
		VDI_VDF_READ_MEDIA | 0x100000,
	};
	struct vdi_config cfg;
	struct conn k;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, vdi_begin_config(k.s, bad[i], 0, 512, 65536, 0))
			TH_LOG("features %#x", bad[i]);
	}
	/* The refusals left the set connected. */
	EXPECT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA |
				      VDI_VDF_READ_MEDIA, 0, 512, 65536, 0));
	conn_close(&k);

	/* CompleteEnabled once the client asked for RequestComplete. */
	ASSERT_EQ(0, conn_open(&k, 1, VDI_VDF_REQUEST_COMPLETE));
	EXPECT_EQ(-EINVAL, vdi_begin_config(k.s, VDI_VDF_COMPLETE_ENABLED, 0,
					    512, 65536, 0));
	ASSERT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA |
				      VDI_VDF_COMPLETE_ENABLED, 0, 512, 65536, 0));
	ASSERT_EQ(0, vdi_end_config(k.s, 4096));
	ASSERT_EQ(0, vdi_get_config(k.c, 0, &cfg));
	EXPECT_EQ(VDI_VDF_REQUEST_COMPLETE | VDI_VDF_WRITE_MEDIA |
		  VDI_VDF_COMPLETE_ENABLED, cfg.features);
	conn_close(&k);
}

TEST(begin_config_block_size)
{
	static const uint32_t bad[] = { 0, 1, 256, 511, 513, 1000, 3072,
					131072, 0x80000000U };
	static const uint32_t ok[] = { 512, 1024, 65536 };
	struct conn k;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0,
						    bad[i], 65536, 0))
			TH_LOG("block_size %u", bad[i]);
	}
	conn_close(&k);
	for (unsigned int i = 0; i < ARRAY_SIZE(ok); i++) {
		ASSERT_EQ(0, conn_open(&k, 1, 0));
		EXPECT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, ok[i],
					      65536, 0))
			TH_LOG("block_size %u", ok[i]);
		conn_close(&k);
	}
}

TEST(begin_config_alignment)
{
	/* Alignment below the block size is refused: catches a swap. */
	static const struct { uint32_t align, block; } bad[] = {
		{ 512, 4096 }, { 2048, 4096 }, { 3000, 512 }, { 4097, 4096 },
		{ 131072, 512 }, { 0x80000000U, 512 },
	};
	static const struct { uint32_t align, block; } ok[] = {
		{ 0, 4096 }, { 4096, 4096 }, { 65536, 512 }, { 8192, 1024 },
	};
	struct conn k;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA,
						    bad[i].align, bad[i].block,
						    65536, 0))
			TH_LOG("alignment %u block %u", bad[i].align, bad[i].block);
	}
	conn_close(&k);
	for (unsigned int i = 0; i < ARRAY_SIZE(ok); i++) {
		ASSERT_EQ(0, conn_open(&k, 1, 0));
		EXPECT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA,
					      ok[i].align, ok[i].block, 65536, 0));
		conn_close(&k);
	}
}

TEST(begin_config_max_transfer_size)
{
	static const uint32_t bad[] = { 0, 512, 65535, 65536 + 512, 100000,
					(4U << 20) + 65536, 8U << 20,
					0xffff0000U };
	static const uint32_t ok[] = { 65536, 131072, 1U << 20, 4U << 20 };
	struct conn k;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0,
						    512, bad[i], 0))
			TH_LOG("max_transfer_size %u", bad[i]);
	}
	conn_close(&k);
	for (unsigned int i = 0; i < ARRAY_SIZE(ok); i++) {
		ASSERT_EQ(0, conn_open(&k, 1, 0));
		EXPECT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512,
					      ok[i], 0));
		conn_close(&k);
	}
}

TEST(begin_config_queue_depth_and_reserved)
{
	struct vdi_begin_config b;
	struct vdi_version v;
	struct conn k;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	ASSERT_EQ(0, vdi_version(k.s, &v));
	EXPECT_EQ(-EINVAL, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512,
					    65536, v.max_queue_depth + 1));
	EXPECT_EQ(-EINVAL, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512,
					    65536, 0xffffffffU));
	memset(&b, 0, sizeof(b));
	b.features = VDI_VDF_WRITE_MEDIA;
	b.block_size = 512;
	b.max_transfer_size = 65536;
	b.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(k.s, VDI_IOC_BEGIN_CONFIG, &b));
	b.reserved[0] = 0;
	b.reserved[1] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, vdi_ioctl(k.s, VDI_IOC_BEGIN_CONFIG, &b));
	EXPECT_EQ(-EFAULT, vdi_ioctl(k.s, VDI_IOC_BEGIN_CONFIG, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(k.s, VDI_IOC_BEGIN_CONFIG,
				     vdi_pages(1, PROT_NONE)));
	/* The module's maximum itself is accepted. */
	EXPECT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536,
				      v.max_queue_depth));
	conn_close(&k);
}

TEST(end_config_area_too_big_then_retry)
{
	struct vdi_version v;
	struct vdi_config cfg;
	struct conn k;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	ASSERT_EQ(0, vdi_version(k.s, &v));
	ASSERT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(-E2BIG, vdi_end_config(k.s, v.max_area_size + 1));
	EXPECT_EQ(-E2BIG, vdi_end_config(k.s, v.max_area_size + VDI_PAGE));
	EXPECT_EQ(-E2BIG, vdi_end_config(k.s, 1ULL << 63));
	/* Rounding up to pages must not wrap around. */
	EXPECT_EQ(-E2BIG, vdi_end_config(k.s, ~0ULL));
	EXPECT_EQ(-E2BIG, vdi_end_config(k.s, ~0ULL - VDI_PAGE + 2));
	/* Still configuring: the client waits, a retry with less works. */
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(k.c, 0, NULL));
	ASSERT_EQ(0, vdi_end_config(k.s, 3 * VDI_PAGE));
	ASSERT_EQ(0, vdi_get_config(k.c, 0, &cfg));
	EXPECT_EQ(3 * VDI_PAGE, cfg.buffer_area_size);
	conn_close(&k);
}

TEST(end_config_zero_area_and_arguments)
{
	struct vdi_end_config e;
	struct vdi_config cfg;
	struct conn k;
	uint32_t idx;
	int sd;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	ASSERT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	memset(&e, 0, sizeof(e));
	e.flags = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(k.s, VDI_IOC_END_CONFIG, &e));
	e.flags = 0;
	e.reserved0 = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(k.s, VDI_IOC_END_CONFIG, &e));
	e.reserved0 = 0;
	e.reserved[1] = 2;
	EXPECT_EQ(-EINVAL, vdi_ioctl(k.s, VDI_IOC_END_CONFIG, &e));
	EXPECT_EQ(-EFAULT, vdi_ioctl(k.s, VDI_IOC_END_CONFIG, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(k.s, VDI_IOC_END_CONFIG,
				     vdi_pages(1, PROT_NONE)));
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(k.c, 0, NULL));
	/* An empty area is allowed: no data command is possible then. */
	ASSERT_EQ(0, vdi_end_config(k.s, 0));
	ASSERT_EQ(0, vdi_get_config(k.c, 0, &cfg));
	EXPECT_EQ(0U, cfg.buffer_area_size);
	errno = 0;
	EXPECT_EQ(NULL, vdi_map(k.s, VDI_PAGE, 0));
	EXPECT_EQ(EINVAL, errno);
	sd = vdi_open_device(k.s, k.name, 0, &idx);
	ASSERT_LE(0, sd);
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 1, VDI_VDC_WRITE, 512, 0, 0));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 1, VDI_VDC_READ, 512, 0, 0));
	EXPECT_EQ(-EINVAL, vdi_send1(sd, 1, T_VDC_FLUSH, 0, 0, 0));
	EXPECT_EQ(1, vdi_send1(sd, 2, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	close(sd);
	conn_close(&k);
}

static void check_final_config(struct __test_metadata *_metadata,
			       uint32_t calign, uint32_t salign, uint32_t block,
			       uint32_t want_align)
{
	struct vdi_create c;
	struct vdi_config cc, sc;
	char name[VDI_NAME_MAX];
	int cfd, s;

	vdi_make_name(name, "fin");
	vdi_create_init(&c, name, 2, VDI_VDF_RANDOM_ACCESS);
	c.config.alignment = calign;
	c.config.prefix_zone_size = 4096;
	c.config.eom_warning_size = 12345;
	c.config.soft_file_mark_block_size = 0;
	/* The server's fields are ignored. */
	c.config.block_size = 3;
	c.config.max_io_depth = 77;
	c.config.max_transfer_size = 5;
	c.config.buffer_area_size = 9;
	cfd = vdi_create_cfg(&c);
	ASSERT_LE(0, cfd);
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, salign, block,
				      131072, 8));
	ASSERT_EQ(0, vdi_end_config(s, 100000));
	ASSERT_EQ(0, vdi_get_config(cfd, 0, &cc));
	ASSERT_EQ(0, vdi_get_config(s, 0, &sc));
	EXPECT_EQ(0, memcmp(&cc, &sc, sizeof(cc)));
	EXPECT_EQ(2U, cc.device_count);
	EXPECT_EQ(VDI_VDF_RANDOM_ACCESS | VDI_VDF_WRITE_MEDIA, cc.features);
	EXPECT_EQ(4096U, cc.prefix_zone_size);
	EXPECT_EQ(want_align, cc.alignment);
	EXPECT_EQ(0U, cc.soft_file_mark_block_size);
	EXPECT_EQ(12345U, cc.eom_warning_size);
	EXPECT_EQ(0U, cc.server_timeout);
	EXPECT_EQ(block, cc.block_size);
	EXPECT_EQ(4U, cc.max_io_depth);
	EXPECT_EQ(131072U, cc.max_transfer_size);
	EXPECT_EQ(25 * VDI_PAGE, cc.buffer_area_size);	/* 100000 rounded up */
	close(s);
	close(cfd);
}

TEST(final_config_values)
{
	/* Alignment: the larger of the client's and the server's. */
	check_final_config(_metadata, 1024, 0, 4096, 4096);
	check_final_config(_metadata, 0, 0, 512, 512);
	check_final_config(_metadata, 65536, 0, 512, 65536);
	check_final_config(_metadata, 1024, 8192, 2048, 8192);
	check_final_config(_metadata, 16384, 8192, 2048, 16384);
}

TEST(open_device_states)
{
	struct conn k;
	uint32_t idx = 99;
	int sd, cd;

	ASSERT_EQ(0, conn_open(&k, 1, 0));
	EXPECT_EQ(-EPROTO, vdi_open_device(k.s, k.name, 0, &idx));
	EXPECT_EQ(-EPROTO, vdi_open_device(k.c, k.name, 0, &idx));
	ASSERT_EQ(0, vdi_begin_config(k.s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(-EPROTO, vdi_open_device(k.s, k.name, 0, &idx));
	EXPECT_EQ(-EPROTO, vdi_open_device(k.c, k.name, 0, &idx));
	ASSERT_EQ(0, vdi_end_config(k.s, 65536));
	/* Ready, but the client has not had its GET_CONFIG yet. */
	EXPECT_EQ(-EPROTO, vdi_open_device(k.c, k.name, 0, &idx));
	sd = vdi_open_device(k.s, k.name, 0, &idx);
	ASSERT_LE(0, sd);
	EXPECT_EQ(0U, idx);
	ASSERT_EQ(0, vdi_get_config(k.c, 0, NULL));
	idx = 99;
	cd = vdi_open_device(k.c, k.name, 0, &idx);
	ASSERT_LE(0, cd);
	EXPECT_EQ(0U, idx);
	close(cd);
	close(sd);
	conn_close(&k);
}

TEST(open_device_names_bind_in_order)
{
	char n1[VDI_NAME_MAX], n2[VDI_NAME_MAX], n3[VDI_NAME_MAX];
	struct vdi_sess_opts o = { .ndev = 3, .no_devices = true };
	struct vdi_command cmd;
	struct vdi_sess s;
	uint32_t idx;
	int c0, c1, c2, s0, s1, s2;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	snprintf(n1, sizeof(n1), "%.100s-b", s.name);
	snprintf(n2, sizeof(n2), "%.100s-c", s.name);
	snprintf(n3, sizeof(n3), "%.100s-d", s.name);

	c0 = vdi_open_device(s.cset, s.name, 0, &idx);	/* device 0: set name */
	ASSERT_LE(0, c0);
	EXPECT_EQ(0U, idx);
	c1 = vdi_open_device(s.cset, n1, 0, &idx);	/* next unnamed: 1 */
	ASSERT_LE(0, c1);
	EXPECT_EQ(1U, idx);
	EXPECT_EQ(-EBUSY, vdi_open_device(s.cset, n1, 0, &idx));
	EXPECT_EQ(-EBUSY, vdi_open_device(s.cset, s.name, 0, &idx));
	s2 = vdi_open_device(s.sset, n2, 0, &idx);	/* the server names 2 */
	ASSERT_LE(0, s2);
	EXPECT_EQ(2U, idx);
	EXPECT_EQ(-EBUSY, vdi_open_device(s.sset, n2, 0, &idx));
	/* Every device has a name now: an unknown one does not exist. */
	EXPECT_EQ(-ENOENT, vdi_open_device(s.sset, n3, 0, &idx));
	EXPECT_EQ(-ENOENT, vdi_open_device(s.cset, n3, 0, &idx));
	s0 = vdi_open_device(s.sset, s.name, 0, &idx);
	ASSERT_LE(0, s0);
	EXPECT_EQ(0U, idx);
	s1 = vdi_open_device(s.sset, n1, 0, &idx);
	ASSERT_LE(0, s1);
	EXPECT_EQ(1U, idx);
	c2 = vdi_open_device(s.cset, n2, 0, &idx);
	ASSERT_LE(0, c2);
	EXPECT_EQ(2U, idx);
	/* Each side has all its devices: EALREADY, whatever the name. */
	EXPECT_EQ(-EALREADY, vdi_open_device(s.cset, n1, 0, &idx));
	EXPECT_EQ(-EALREADY, vdi_open_device(s.sset, s.name, 0, &idx));
	EXPECT_EQ(-EALREADY, vdi_open_device(s.sset, n3, 0, &idx));
	/* The fds are wired to the right devices. */
	EXPECT_EQ(1, vdi_send1(s1, 11, T_VDC_FLUSH, 0, 1, VDI_NO_BUFFER));
	EXPECT_EQ(1, vdi_send1(s2, 12, T_VDC_FLUSH, 0, 2, VDI_NO_BUFFER));
	EXPECT_EQ(-ETIMEDOUT, vdi_get(c0, &cmd, 1, 0));
	ASSERT_EQ(1, vdi_get(c1, &cmd, 1, 0));
	EXPECT_EQ(1, cmd.position);
	ASSERT_EQ(1, vdi_get(c2, &cmd, 1, 0));
	EXPECT_EQ(2, cmd.position);
	close(c0); close(c1); close(c2);
	close(s0); close(s1); close(s2);
	vdi_sess_close(&s);
}

TEST(open_device_argument_errors)
{
	struct vdi_sess_opts o = { .ndev = 2, .no_devices = true };
	struct vdi_open_device d;
	struct vdi_sess s;
	uint32_t idx;
	int fd;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	EXPECT_EQ(-EINVAL, vdi_open_device(s.cset, s.name, O_NONBLOCK, &idx));
	EXPECT_EQ(-EINVAL, vdi_open_device(s.cset, s.name, 1, &idx));
	EXPECT_EQ(-EINVAL, vdi_open_device(s.sset, s.name, 0x80000000U, &idx));
	EXPECT_EQ(-EINVAL, vdi_open_device(s.cset, "", 0, &idx));
	EXPECT_EQ(-EINVAL, vdi_open_device(s.cset, "x\\y", 0, &idx));
	EXPECT_EQ(-EINVAL, vdi_open_device(s.sset, "x\ny", 0, &idx));
	memset(&d, 0, sizeof(d));
	memset(d.name, 'd', sizeof(d.name));
	EXPECT_EQ(-EINVAL, vdi_ioctl(s.cset, VDI_IOC_OPEN_DEVICE, &d));
	memset(&d, 0, sizeof(d));
	strcpy(d.name, s.name);
	d.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(s.cset, VDI_IOC_OPEN_DEVICE, &d));
	d.reserved[0] = 0;
	d.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(s.sset, VDI_IOC_OPEN_DEVICE, &d));
	EXPECT_EQ(-EFAULT, vdi_ioctl(s.cset, VDI_IOC_OPEN_DEVICE, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(s.sset, VDI_IOC_OPEN_DEVICE,
				     vdi_pages(1, PROT_NONE)));
	/* None of these opened or named anything. */
	fd = vdi_open_device(s.cset, s.name, 0, &idx);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0U, idx);
	close(fd);
	vdi_sess_close(&s);
}

TEST(open_device_efault_on_writeback_loses_nothing)
{
	struct vdi_sess_opts o = { .ndev = 1, .no_devices = true };
	struct vdi_open_device *ro;
	struct vdi_sess s;
	uint32_t idx;
	int probe, fd;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	ro = vdi_pages(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, ro);
	strcpy(ro->name, s.name);
	ASSERT_EQ(0, mprotect(ro, VDI_PAGE, PROT_READ));
	for (int k = 0; k < 2; k++) {
		int set = k ? s.sset : s.cset;

		probe = fcntl(s.cset, F_DUPFD, 0);	/* the lowest free fd */
		ASSERT_LE(0, probe);
		close(probe);

		/* The index cannot be written back. */
		EXPECT_EQ(-EFAULT, vdi_ioctl(set, VDI_IOC_OPEN_DEVICE, ro));
		/* No fd leaked, the device is not left open. */
		fd = fcntl(s.cset, F_DUPFD, 0);
		EXPECT_EQ(probe, fd);
		close(fd);
		fd = vdi_open_device(set, s.name, 0, &idx);
		ASSERT_LE(0, fd);
		EXPECT_EQ(0U, idx);
		if (k)
			s.sdev[0] = fd;
		else
			s.cdev[0] = fd;
	}
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	vdi_sess_close(&s);
}

TEST(open_device_cloexec_and_anon_inode)
{
	struct vdi_sess_opts o = { .ndev = 2, .no_devices = true };
	char dn[VDI_NAME_MAX], path[64], link[128];
	struct vdi_sess s;
	uint32_t idx;
	int a, b;
	ssize_t n;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	vdi_dev_name(dn, s.name, 1);
	a = vdi_open_device(s.cset, s.name, O_CLOEXEC, &idx);
	ASSERT_LE(0, a);
	b = vdi_open_device(s.cset, dn, 0, &idx);
	ASSERT_LE(0, b);
	EXPECT_EQ(FD_CLOEXEC, fcntl(a, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(0, fcntl(b, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDWR, fcntl(a, F_GETFL) & O_ACCMODE);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", a);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0 && errno == ENOENT) {
		TH_LOG("no /proc: anon inode name not checked");
	} else {
		ASSERT_LT(0, n);
		link[n] = 0;
		EXPECT_STREQ("anon_inode:[vdi-device]", link);
	}
	/* A device fd is not an mmap target (only set fds are). */
	errno = 0;
	EXPECT_EQ(NULL, vdi_map(a, VDI_PAGE, 0));
	EXPECT_EQ(ENODEV, errno);
	close(a);
	close(b);
	vdi_sess_close(&s);
}

TEST_HARNESS_MAIN
