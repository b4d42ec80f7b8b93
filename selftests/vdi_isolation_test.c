// SPDX-License-Identifier: GPL-2.0
/*
 * Isolation between users and scopes, per-user limits, and what the kernel
 * writes into user memory.
 *
 *  - a process of another uid, without CAP_SYS_ADMIN, cannot open, map,
 *    complete, read from or abort a set it was not granted, by any way in:
 *    by name (EACCES), through its own endpoint (EPROTO: no role), with the
 *    owner's live tags on a set of its own (ESTALE), through
 *    /proc/<owner>/fd (EACCES) or pidfd_getfd (EPERM); and the owner's
 *    set goes on undisturbed to its normal end;
 *  - reopening a set fd through /proc/self/fd gives a bare endpoint;
 *  - a set made in another user or IPC namespace is invisible, and the same
 *    name lives independently in both scopes;
 *  - per-user limits: max_sets_per_user counts every set of the uid that
 *    is still alive (held by a server fd or a mapping after its primary
 *    closed), holds under concurrent CREATEs, follows the writable
 *    parameter; max_area_mb and max_queue_depth hold;
 *  - no uninitialised byte reaches user space: every output buffer is
 *    filled with 0xAA first, and every byte the kernel wrote must be the
 *    expected value; entries it did not process stay 0xAA.
 */
#include "fuzz/vdi_stress.h"

#include <stddef.h>

#define OWNER	4101
#define OTHER	4102

static long param(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/vdi/parameters/%s", name);
	return vdi_read_long(path, -1);
}

static int set_param(const char *name, long v)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/vdi/parameters/%s", name);
	return vdi_write_file(path, "%ld", v);
}

/* ------------------------------------------------------------------ */
/* another uid                                                        */

struct owner_info {
	char name[VDI_NAME_MAX];
	volatile int ready;
	volatile int pid;
	volatile int setfd, devfd;
	volatile uint64_t tags[4];
	volatile int done;		/* attacker finished */
	volatile int owner_ok;		/* the owner's set ended normally */
	/* the attacker's results */
	volatile int open_server, open_secondary, create, ep_mmap, ep_complete,
		ep_abort, ep_open_device, ep_wait, ep_get_config, own_complete,
		proc_fd, pidfd_getfd, own_set;
};

/* The owner: a ready set, commands held, waiting while the other uid tries. */
static int owner_main(struct vdi_chan *ch, void *arg)
{
	struct owner_info *o = arg;
	struct vdi_command cmd[4];
	struct vdi_completion cpl[8];
	struct vdi_done d[4];
	struct vdi_sess s;
	int i, err;

	(void)ch;
	CKEQ(0, vdi_become(OWNER, OWNER, NULL, 0));
	CKEQ(0, vdi_sess_simple(&s, 1, 8));
	snprintf(o->name, sizeof(o->name), "%s", s.name);
	for (i = 0; i < 4; i++)
		CKEQ(1, vdi_send1(s.sdev[0], 10 + i, VDI_VDC_WRITE, 512, i, 4096 * i));
	CKEQ(4, vdi_get(s.cdev[0], cmd, 4, 1000));
	for (i = 0; i < 4; i++)
		o->tags[i] = cmd[i].tag;
	o->setfd = s.cset;
	o->devfd = s.cdev[0];
	o->pid = getpid();
	o->ready = 1;
	while (!o->done)
		vdi_sleep_ms(2);
	/* nothing was disturbed: complete, reap, end */
	for (i = 0; i < 4; i++)
		d[i] = (struct vdi_done){ .tag = cmd[i].tag, .bytes_transferred = 512 };
	CKEQ(4, vdi_complete(s.cdev[0], d, 4));
	CKEQ(4, vdi_wait_n(s.sset, cpl, 4, 2000, &err));
	for (i = 0; i < 4; i++)
		CKEQ(0, cpl[i].completion_code);
	CKEQ(0, vdi_close_device(s.sdev[0]));
	CKEQ(-ESHUTDOWN, vdi_get(s.cdev[0], cmd, 1, 0));
	CKEQ(-ESHUTDOWN, vdi_wait(s.sset, cpl, 1, 1000));
	vdi_sess_close(&s);
	o->owner_ok = 1;
	return 0;
}

static int attacker_main(struct vdi_chan *ch, void *arg)
{
	struct owner_info *o = arg;
	char path[64];
	struct vdi_done d;
	struct vdi_sess s;
	void *m;
	int ep, fd;

	(void)ch;
	CKEQ(0, vdi_become(OTHER, OTHER, NULL, 0));
	while (!o->ready)
		vdi_sleep_ms(2);
	/* by name */
	fd = vdi_open_server(o->name);
	o->open_server = fd < 0 ? fd : 0;
	fd = vdi_open_secondary(o->name);
	o->open_secondary = fd < 0 ? fd : 0;
	fd = vdi_create_set(o->name, 1, 0);
	o->create = fd < 0 ? fd : 0;
	if (fd >= 0)
		close(fd);
	/* through an endpoint of its own */
	ep = vdi_open();
	CK(ep >= 0);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ep, 0);
	o->ep_mmap = m == MAP_FAILED ? -errno : 0;
	d = (struct vdi_done){ .tag = o->tags[0], .bytes_transferred = 1 };
	o->ep_complete = vdi_complete(ep, &d, 1);
	o->ep_abort = vdi_abort(ep);
	o->ep_open_device = vdi_open_device(ep, o->name, 0, NULL);
	o->ep_wait = vdi_wait(ep, NULL, 1, 0);
	o->ep_get_config = vdi_get_config(ep, 0, NULL);
	close(ep);
	/* the owner's live tags on a set of its own */
	o->own_set = vdi_sess_simple(&s, 1, 8);
	if (!o->own_set) {
		int i;

		/* make its slots hold commands too: the same tags exist here */
		for (i = 0; i < 4; i++)
			vdi_send1(s.sdev[0], i, VDI_VDC_WRITE, 512, 0, 0);
		d = (struct vdi_done){ .tag = o->tags[1], .bytes_transferred = 1 };
		o->own_complete = vdi_complete(s.cset, &d, 1);
		vdi_sess_close(&s);
	}
	/* the owner's fds, through /proc and pidfd_getfd */
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", o->pid, o->setfd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	o->proc_fd = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
#ifdef SYS_pidfd_open
	{
		int pfd = (int)syscall(SYS_pidfd_open, o->pid, 0);

		if (pfd >= 0) {
			fd = (int)syscall(438 /* pidfd_getfd */, pfd, o->devfd, 0);
			o->pidfd_getfd = fd < 0 ? -errno : 0;
			if (fd >= 0)
				close(fd);
			close(pfd);
		} else {
			o->pidfd_getfd = -EPERM;	/* no pidfd: nothing to try */
		}
	}
#else
	o->pidfd_getfd = -EPERM;
#endif
	o->done = 1;
	return 0;
}

TEST(other_uid_cannot_reach_a_set_it_was_not_granted)
{
	struct owner_info *o = vdi_shared(sizeof(*o));
	struct vdi_proc own, att;

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, vdi_spawn(&own, owner_main, o));
	ASSERT_EQ(0, vdi_spawn(&att, attacker_main, o));
	EXPECT_EQ(0, vdi_reap(&att, 15000));
	EXPECT_EQ(0, vdi_reap(&own, 15000));
	EXPECT_EQ(-EACCES, o->open_server);
	EXPECT_EQ(-EACCES, o->open_secondary);
	EXPECT_EQ(-EEXIST, o->create);		/* the name is taken in this scope */
	EXPECT_EQ(-EPROTO, o->ep_mmap);
	EXPECT_EQ(-EPROTO, o->ep_complete);
	EXPECT_EQ(-EPROTO, o->ep_abort);
	EXPECT_EQ(-EPROTO, o->ep_open_device);
	EXPECT_EQ(-EPROTO, o->ep_wait);
	EXPECT_EQ(-EPROTO, o->ep_get_config);
	EXPECT_EQ(0, o->own_set);
	EXPECT_EQ(-ESTALE, o->own_complete);	/* tags name slots of one set only */
	EXPECT_EQ(-EACCES, o->proc_fd);
	EXPECT_EQ(-EPERM, o->pidfd_getfd);
	EXPECT_EQ(1, o->owner_ok);
	vdi_proc_kill(&own);
	vdi_proc_kill(&att);
	munmap(o, sizeof(*o));
	EXPECT_EQ(0, vdi_refcnt_settle(0, 3000) > 0);
}

/* /proc/self/fd/N of a set fd opens /dev/vdi again: a new, bare endpoint */
TEST(reopening_a_set_fd_through_proc_gives_a_bare_endpoint)
{
	struct vdi_sess s;
	char path[64];
	void *m;
	int fd;

	ASSERT_EQ(0, vdi_sess_simple(&s, 1, 4));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s.cset);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EPROTO, vdi_abort(fd));
	EXPECT_EQ(-EPROTO, vdi_get_config(fd, 0, NULL));
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, m);
	close(fd);
	/* a device fd is an anonymous inode: no reopening at all */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s.cdev[0]);
	fd = open(path, O_RDWR | O_CLOEXEC);
	EXPECT_GT(0, fd);
	if (fd >= 0)
		close(fd);
	/* the set is untouched */
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* namespaces                                                         */

struct ns_info {
	char name[VDI_NAME_MAX];
	char name2[VDI_NAME_MAX];	/* exists in the parent's scope only */
	int flags;
	volatile int created, seen_parent, done;
	volatile int child_sees_parent;
	volatile int skip;
};

static int ns_child(struct vdi_chan *ch, void *arg)
{
	struct ns_info *n = arg;
	struct vdi_create c;
	struct vdi_config cfg;
	int cset, sset, r;

	(void)ch;
	if (unshare(n->flags)) {
		n->skip = errno;
		n->created = 1;
		return 0;
	}
	/* the same name as the parent's set, made here */
	vdi_create_init(&c, n->name, 1, 0);
	cset = vdi_create_cfg(&c);
	CK(cset >= 0);
	sset = vdi_open_server(n->name);
	CK(sset >= 0);
	CKEQ(0, vdi_begin_config(sset, VDI_VDF_READ_MEDIA, 0, 4096, 65536, 0));
	CKEQ(0, vdi_end_config(sset, 8192));
	CKEQ(0, vdi_get_config(cset, 0, &cfg));
	CKEQ(4096, cfg.block_size);	/* ours, not the parent's */
	n->created = 1;
	while (!n->seen_parent)
		vdi_sleep_ms(2);
	/* the parent's sets stay invisible: one of the same name (ours is
	 * found, and it has its server) and one only the parent has */
	r = vdi_open_server(n->name);
	n->child_sees_parent = r == -EBUSY ? 0 : r >= 0 ? 1 : r;
	if (r >= 0)
		close(r);
	r = vdi_open_server(n->name2);
	if (!n->child_sees_parent)
		n->child_sees_parent = r == -ENOENT ? 0 : r >= 0 ? 2 : r;
	if (r >= 0)
		close(r);
	close(sset);
	close(cset);
	n->done = 1;
	return 0;
}

static void ns_case(struct __test_metadata *_metadata, int flags)
{
	struct ns_info *n = vdi_shared(sizeof(*n));
	struct vdi_config cfg;
	struct vdi_proc p;
	int cset, sset, c2;

	ASSERT_NE(NULL, n);
	vdi_make_name(n->name, "ns");
	vdi_make_name(n->name2, "ns");
	n->flags = flags;
	ASSERT_EQ(0, vdi_spawn(&p, ns_child, n));
	ASSERT_TRUE(({ while (!n->created) vdi_sleep_ms(2); true; }));
	if (n->skip) {
		vdi_proc_kill(&p);
		SKIP(return, "unshare: %s", strerror(n->skip));
	}
	/* the child's set is invisible here; the name is free here */
	EXPECT_EQ(-ENOENT, vdi_open_server(n->name));
	cset = vdi_create_set(n->name, 1, 0);
	ASSERT_LE(0, cset);
	sset = vdi_open_server(n->name);
	ASSERT_LE(0, sset);
	EXPECT_EQ(0, vdi_begin_config(sset, VDI_VDF_READ_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(0, vdi_end_config(sset, 4096));
	EXPECT_EQ(0, vdi_get_config(cset, 0, &cfg));
	EXPECT_EQ(512, cfg.block_size);
	c2 = vdi_create_set(n->name2, 1, 0);
	ASSERT_LE(0, c2);
	n->seen_parent = 1;
	EXPECT_EQ(0, vdi_reap(&p, 10000));
	EXPECT_EQ(0, n->child_sees_parent);
	close(c2);
	close(sset);
	close(cset);
	munmap(n, sizeof(*n));
}

TEST(set_made_in_another_ipc_namespace_is_invisible)
{
	ns_case(_metadata, CLONE_NEWIPC);
}

TEST(set_made_in_another_user_namespace_is_invisible)
{
	ns_case(_metadata, CLONE_NEWUSER);
}

TEST(set_made_in_other_user_and_ipc_namespaces_is_invisible)
{
	ns_case(_metadata, CLONE_NEWUSER | CLONE_NEWIPC);
}

/* ------------------------------------------------------------------ */
/* per-user limits                                                    */

struct quota {
	volatile int made, emfile, other;
	volatile int alive_made, alive_emfile;
	volatile int after_close;
	volatile long limit;
};

/* Threads of one uid creating at once never go past the limit. */
static void *quota_thread(void *arg)
{
	struct quota *q = arg;
	char name[VDI_NAME_MAX];
	int fds[40], n = 0, fd, i;

	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "q-%d-%ld-%d", (int)getpid(),
			 (long)vdi_gettid(), i);
		fd = vdi_create_set(name, 1, 0);
		if (fd >= 0) {
			fds[n++] = fd;
			__sync_fetch_and_add(&q->made, 1);
		} else if (fd == -EMFILE) {
			__sync_fetch_and_add(&q->emfile, 1);
		} else {
			__sync_fetch_and_add(&q->other, 1);
		}
	}
	while (!q->after_close)
		vdi_sleep_ms(2);
	for (i = 0; i < n; i++)
		close(fds[i]);
	return NULL;
}

static int quota_concurrent(struct vdi_chan *ch, void *arg)
{
	struct quota *q = arg;
	pthread_t th[8];
	int i;

	(void)ch;
	CKEQ(0, vdi_become(OWNER + 10, OWNER + 10, NULL, 0));
	for (i = 0; i < 8; i++)
		CKEQ(0, pthread_create(&th[i], NULL, quota_thread, q));
	while (q->made + q->emfile + q->other < 8 * 40)
		vdi_sleep_ms(2);
	q->after_close = 1;
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	return 0;
}

TEST(max_sets_per_user_holds_under_concurrent_creates)
{
	struct quota *q = vdi_shared(sizeof(*q));
	struct vdi_proc p;
	long limit = param("max_sets_per_user");

	ASSERT_NE(NULL, q);
	if (limit < 0)
		SKIP(return, "no /sys/module/vdi/parameters");
	ASSERT_EQ(0, vdi_spawn(&p, quota_concurrent, q));
	EXPECT_EQ(0, vdi_reap(&p, 20000));
	EXPECT_EQ(limit, q->made);
	EXPECT_EQ(8 * 40 - limit, q->emfile);
	EXPECT_EQ(0, q->other);
	munmap(q, sizeof(*q));
}

/*
 * A set whose primary closed lives on while a server fd or a mapping holds
 * it (with its area): it is still one of the uid's sets.  Otherwise a uid
 * holds any number of sets (and areas of max_area_mb each): create, open
 * as server, END_CONFIG, close the primary, again.
 */
static int quota_alive(struct vdi_chan *ch, void *arg)
{
	struct quota *q = arg;
	int held[64], nheld = 0, i;

	(void)ch;
	CKEQ(0, vdi_become(OWNER + 11, OWNER + 11, NULL, 0));
	for (i = 0; i < q->limit + 4 && nheld < 64; i++) {
		char name[VDI_NAME_MAX];
		int c, s;

		snprintf(name, sizeof(name), "alive-%d-%d", (int)getpid(), i);
		c = vdi_create_set(name, 1, 0);
		if (c == -EMFILE) {
			q->alive_emfile++;
			continue;
		}
		CK(c >= 0);
		s = vdi_open_server(name);
		CK(s >= 0);
		CKEQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
		CKEQ(0, vdi_end_config(s, 65536));
		close(c);		/* the name goes; the set and its area stay */
		held[nheld++] = s;
		q->alive_made++;
	}
	for (i = 0; i < nheld; i++)
		close(held[i]);
	return 0;
}

TEST(max_sets_per_user_counts_sets_still_alive)
{
	struct quota *q = vdi_shared(sizeof(*q));
	struct vdi_proc p;

	ASSERT_NE(NULL, q);
	q->limit = param("max_sets_per_user");
	if (q->limit < 0)
		SKIP(return, "no /sys/module/vdi/parameters");
	ASSERT_EQ(0, vdi_spawn(&p, quota_alive, q));
	EXPECT_EQ(0, vdi_reap(&p, 20000));
	EXPECT_EQ(q->limit, q->alive_made)
		TH_LOG("one uid keeps %d sets (with their areas) alive; the limit is %ld",
		       q->alive_made, q->limit);
	EXPECT_EQ(4, q->alive_emfile);
	munmap(q, sizeof(*q));
	EXPECT_EQ(0, vdi_refcnt_settle(0, 3000) > 0);
}

TEST(max_sets_per_user_follows_the_parameter)
{
	long old = param("max_sets_per_user");
	char name[VDI_NAME_MAX];
	int fds[3], i;

	if (old < 0)
		SKIP(return, "no /sys/module/vdi/parameters");
	ASSERT_EQ(0, set_param("max_sets_per_user", 2));
	for (i = 0; i < 3; i++) {
		vdi_make_name(name, "param");
		fds[i] = vdi_create_set(name, 1, 0);
	}
	EXPECT_LE(0, fds[0]);
	EXPECT_LE(0, fds[1]);
	EXPECT_EQ(-EMFILE, fds[2]);
	ASSERT_EQ(0, set_param("max_sets_per_user", old));
	vdi_make_name(name, "param");
	fds[2] = vdi_create_set(name, 1, 0);
	EXPECT_LE(0, fds[2]);
	for (i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

TEST(max_area_and_max_queue_depth_hold)
{
	struct vdi_version v;
	char name[VDI_NAME_MAX];
	int c, s;

	vdi_make_name(name, "lim");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, vdi_version(c, &v));
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	EXPECT_EQ(-EINVAL, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536,
					    v.max_queue_depth + 1));
	EXPECT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536,
				      v.max_queue_depth));
	EXPECT_EQ(-E2BIG, vdi_end_config(s, v.max_area_size + 1));
	EXPECT_EQ(-E2BIG, vdi_end_config(s, v.max_area_size + 4096));
	EXPECT_EQ(0, vdi_end_config(s, 4096));
	close(s);
	close(c);
}

/* ------------------------------------------------------------------ */
/* no uninitialised byte reaches user space                           */

/* the ABI's structs have no implicit padding: a copy of one cannot leak */
_Static_assert(sizeof(struct vdi_version) == 4 + 4 + 8 + 4 * 4 + 8 + 32, "vdi_version");
_Static_assert(offsetof(struct vdi_get_config, flags) == 8 + 44 &&
	       offsetof(struct vdi_get_config, reserved) == 56 &&
	       sizeof(struct vdi_get_config) == 72, "vdi_get_config");
_Static_assert(sizeof(struct vdi_command) == 32, "vdi_command");
_Static_assert(sizeof(struct vdi_completion) == 32, "vdi_completion");
_Static_assert(offsetof(struct vdi_open_device, index) == 132 &&
	       sizeof(struct vdi_open_device) == 152, "vdi_open_device");

#define AA 0xAA

static bool all_aa(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		if (*b++ != AA)
			return false;
	return true;
}

TEST(every_byte_the_kernel_writes_is_meaningful)
{
	struct vdi_sess_opts o = { .ndev = 2, .depth = 8, .server_timeout = 0 };
	struct vdi_version v, vexp;
	struct vdi_get_config g, gexp;
	struct vdi_open_device od, odexp;
	struct vdi_command cmd[8];
	struct vdi_completion cpl[8];
	struct vdi_done d[2];
	struct vdi_sess s;
	char dn[VDI_NAME_MAX];
	int i, r, fd;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));

	/* VERSION: the whole struct is input and output */
	memset(&v, AA, sizeof(v));
	v.api_major = VDI_API_MAJOR;
	memset(v.reserved, 0, sizeof(v.reserved));
	ASSERT_EQ(0, vdi_ioctl(s.cset, VDI_IOC_VERSION, &v));
	memset(&vexp, 0, sizeof(vexp));
	vexp.api_major = VDI_API_MAJOR;
	vexp.api_minor = VDI_API_MINOR;
	vexp.features = v.features;
	vexp.max_devices = VDI_MAX_DEVICES;
	vexp.max_queue_depth = v.max_queue_depth;
	vexp.name_max = VDI_NAME_MAX;
	vexp.max_sets_per_user = v.max_sets_per_user;
	vexp.max_area_size = v.max_area_size;
	EXPECT_EQ(0, memcmp(&v, &vexp, sizeof(v)));
	EXPECT_EQ(VDI_ALL_FEATURES, v.features);
	EXPECT_NE(0, v.max_queue_depth);

	/* GET_CONFIG, both sides: config exact, the rest as given */
	for (i = 0; i < 2; i++) {
		memset(&g, AA, sizeof(g));
		g.timeout_ms = 0;
		g.flags = 0;
		memset(g.reserved, 0, sizeof(g.reserved));
		ASSERT_EQ(0, vdi_ioctl(i ? s.sset : s.cset, VDI_IOC_GET_CONFIG, &g));
		memset(&gexp, 0, sizeof(gexp));
		gexp.config = s.cfg;
		EXPECT_EQ(0, memcmp(&g, &gexp, sizeof(g)));
	}
	EXPECT_EQ(2, s.cfg.device_count);
	EXPECT_EQ(4, s.cfg.max_io_depth);

	/* OPEN_DEVICE: only the index is written */
	vdi_sess_close(&s);
	o.no_devices = true;
	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	vdi_dev_name(dn, s.name, 1);
	memset(&od, 0, sizeof(od));
	snprintf(od.name, sizeof(od.name), "%s", dn);
	memset(od.name + strlen(dn) + 1, AA, sizeof(od.name) - strlen(dn) - 1);
	odexp = od;
	odexp.index = 1;
	fd = vdi_ioctl(s.cset, VDI_IOC_OPEN_DEVICE, &od);
	ASSERT_LE(0, fd);
	s.cdev[1] = fd;
	EXPECT_EQ(0, memcmp(&od, &odexp, sizeof(od)));
	s.cdev[0] = vdi_open_device(s.cset, s.name, 0, NULL);
	for (i = 0; i < 2; i++) {
		vdi_dev_name(dn, s.name, i);
		s.sdev[i] = vdi_open_device(s.sset, dn, 0, NULL);
		ASSERT_LE(0, s.sdev[i]);
	}

	/* GET_COMMANDS: n entries exactly, the rest untouched */
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 0x1111222233334444ULL, VDI_VDC_WRITE,
			       1024, -5, 8192));
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 7, T_VDC_FLUSH, 0, 77, VDI_NO_BUFFER));
	memset(cmd, AA, sizeof(cmd));
	ASSERT_EQ(2, vdi_get(s.cdev[0], cmd, 8, 0));
	EXPECT_EQ(VDI_VDC_WRITE, cmd[0].code);
	EXPECT_EQ(1024, cmd[0].size);
	EXPECT_EQ(-5, cmd[0].position);
	EXPECT_EQ(8192, cmd[0].buf_offset);
	EXPECT_EQ(T_VDC_FLUSH, cmd[1].code);
	EXPECT_EQ(0, cmd[1].size);
	EXPECT_EQ(77, cmd[1].position);
	EXPECT_EQ(VDI_NO_BUFFER, cmd[1].buf_offset);
	EXPECT_EQ(0, (cmd[0].tag >> 16) & 0xffff);	/* device 0 */
	EXPECT_TRUE(all_aa(&cmd[2], 6 * sizeof(cmd[0])));

	/* WAIT_COMPLETIONS: every field, the rest untouched */
	d[0] = (struct vdi_done){ .tag = cmd[0].tag, .completion_code = 0,
		.bytes_transferred = 1000, .position = 123456789012LL };
	d[1] = (struct vdi_done){ .tag = cmd[1].tag, .completion_code = 0,
		.position = -1 };
	ASSERT_EQ(2, vdi_complete(s.cdev[0], d, 2));
	memset(cpl, AA, sizeof(cpl));
	ASSERT_EQ(2, vdi_wait(s.sset, cpl, 8, 1000));
	{
		struct vdi_completion want[2] = {
			{ .cookie = 0x1111222233334444ULL, .completion_code = 0,
			  .bytes_transferred = 1000, .position = 123456789012LL,
			  .device_index = 0, .code = VDI_VDC_WRITE },
			{ .cookie = 7, .completion_code = 0, .bytes_transferred = 0,
			  .position = -1, .device_index = 0, .code = T_VDC_FLUSH },
		};
		EXPECT_EQ(0, memcmp(cpl, want, sizeof(want)));
	}
	EXPECT_TRUE(all_aa(&cpl[2], 6 * sizeof(cpl[0])));

	/* IO-ERROR: queued commands end with 1117, bytes and position 0 */
	ASSERT_EQ(1, vdi_send1(s.sdev[1], 21, VDI_VDC_READ, 512, 9, 0));
	ASSERT_EQ(1, vdi_send1(s.sdev[1], 22, VDI_VDC_READ, 512, 10, 4096));
	memset(cmd, AA, sizeof(cmd));
	ASSERT_EQ(1, vdi_get(s.cdev[1], cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s.cdev[1], cmd[0].tag, T_ERROR_DISK_FULL, 100, 3));
	memset(cpl, AA, sizeof(cpl));
	ASSERT_EQ(2, vdi_wait(s.sset, cpl, 8, 1000));
	{
		struct vdi_completion want[2] = {
			{ .cookie = 21, .completion_code = T_ERROR_DISK_FULL,
			  .bytes_transferred = 100, .position = 3, .device_index = 1,
			  .code = VDI_VDC_READ },
			{ .cookie = 22, .completion_code = VDI_ERROR_IO_DEVICE,
			  .device_index = 1, .code = VDI_VDC_READ },
		};
		EXPECT_EQ(0, memcmp(cpl, want, sizeof(want)));
	}
	EXPECT_TRUE(all_aa(&cpl[2], 6 * sizeof(cpl[0])));

	/* abort: queued and held end with 995, bytes and position 0 */
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 31, VDI_VDC_WRITE, 512, 1, 0));
	ASSERT_EQ(1, vdi_send1(s.sdev[0], 32, VDI_VDC_WRITE, 512, 2, 0));
	ASSERT_EQ(1, vdi_get(s.cdev[0], cmd, 1, 0));
	ASSERT_EQ(0, vdi_abort(s.cset));
	memset(cpl, AA, sizeof(cpl));
	r = vdi_wait(s.sset, cpl, 8, 1000);
	ASSERT_EQ(2, r);
	{
		struct vdi_completion want[2] = {
			{ .cookie = 31, .completion_code = VDI_ERROR_OPERATION_ABORTED,
			  .code = VDI_VDC_WRITE },
			{ .cookie = 32, .completion_code = VDI_ERROR_OPERATION_ABORTED,
			  .code = VDI_VDC_WRITE },
		};
		/* in slot order: either way round */
		if (cpl[0].cookie == 32) {
			struct vdi_completion t = cpl[0];

			cpl[0] = cpl[1];
			cpl[1] = t;
		}
		EXPECT_EQ(0, memcmp(cpl, want, sizeof(want)));
	}
	EXPECT_TRUE(all_aa(&cpl[2], 6 * sizeof(cpl[0])));
	/* and errors write nothing at all */
	memset(cpl, AA, sizeof(cpl));
	EXPECT_EQ(-ECONNABORTED, vdi_wait(s.sset, cpl, 8, 0));
	EXPECT_TRUE(all_aa(cpl, sizeof(cpl)));
	memset(cmd, AA, sizeof(cmd));
	EXPECT_EQ(-ECONNABORTED, vdi_get(s.cdev[0], cmd, 8, 0));
	EXPECT_TRUE(all_aa(cmd, sizeof(cmd)));
	memset(&g, AA, sizeof(g));
	g.timeout_ms = 0;
	g.flags = 0;
	memset(g.reserved, 0, sizeof(g.reserved));
	EXPECT_EQ(-ECONNABORTED, vdi_ioctl(s.cset, VDI_IOC_GET_CONFIG, &g));
	EXPECT_TRUE(all_aa(&g.config, sizeof(g.config)));
	vdi_sess_close(&s);
}

TEST_HARNESS_MAIN
