// SPDX-License-Identifier: GPL-2.0
/*
 * The buffer area's memory (docs/ABI.md, "Memory"): charged to the set's
 * creator (locked memory of its user, VmPin of its process, its memory
 * cgroup), bounded per user by max(RLIMIT_MEMLOCK, max_user_area_mb), and an
 * area that does not fit fails with ENOMEM (VD_E_MEMORY in libvdi) without
 * waking the OOM killer.  Sizes follow the VM's memory (/proc/meminfo).
 */
#include "vdi_test_util.h"

#include <grp.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define PARAM_USER_MB	"/sys/module/vdi/parameters/max_user_area_mb"
#define PARAM_AREA_MB	"/sys/module/vdi/parameters/max_area_mb"
#define MIB		(1ULL << 20)
#define U_A		5100	/* test users: no capability, no group */
#define U_B		5101
#define U_CLIENT	5200	/* members of T_GROUP */
#define U_SERVER	5201
#define T_GROUP		5299	/* what the udev rule's group "vdi" is */
#define CG		"/tmp/vdi-memtest-cg"

/* ------------------------------------------------------------------ */

static long long read_param(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return buf[0] ? atoll(buf) : -EINVAL;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int write_param(const char *path, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return write_str(path, buf);
}

/* A "Key:  N kB" line of a /proc file, in bytes; -1 if absent. */
static long long proc_kb(const char *path, const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = atoll(line + kl + 1) * 1024;
			break;
		}
	fclose(f);
	return v;
}

/* A "key N" line (/proc/vmstat, memory.events); -1 if absent. */
static long long kv_count(const char *path, const char *key)
{
	char k[64];
	long long v, ret = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (!strcmp(k, key)) {
			ret = v;
			break;
		}
	fclose(f);
	return ret;
}

/*
 * OOM kills so far; 0 where the kernel keeps no VM event counters (the
 * debug kernel): there the bystander and the rig's dmesg check still see
 * one.
 */
static long long oom_kills(void)
{
	long long n = kv_count("/proc/vmstat", "oom_kill");

	return n < 0 ? 0 : n;
}

/*
 * One set, configured by its own creator: CREATE, OPEN_SERVER,
 * BEGIN_CONFIG, END_CONFIG(@area).  *c and *s get the fds (or -1); the
 * result is END_CONFIG's (or the first step's error).
 */
static int own_set(uint64_t area, int *c, int *s)
{
	char name[VDI_NAME_MAX];
	int r;

	*c = *s = -1;
	vdi_make_name(name, "mem");
	r = vdi_create_set(name, 1, 0);
	if (r < 0)
		return r;
	*c = r;
	r = vdi_open_server(name);
	if (r < 0)
		return r;
	*s = r;
	r = vdi_begin_config(*s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0);
	if (r < 0)
		return r;
	return vdi_end_config(*s, area);
}

static void close_set(int *c, int *s)
{
	vdi_close(s);
	vdi_close(c);
}

/* In a child: become @uid (no groups) with RLIMIT_MEMLOCK @memlock. */
static int become_limited(uid_t uid, rlim_t memlock)
{
	struct rlimit rl = { memlock, memlock };

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return -errno;
	return vdi_become(uid, uid, NULL, 0);
}

FIXTURE(mem) {
	struct vdi_proc p, q;
	long long user_mb;	/* max_user_area_mb at the start */
};

FIXTURE_SETUP(mem)
{
	self->p.pid = self->q.pid = -1;
	/* The tests that set it fail if it is missing. */
	self->user_mb = read_param(PARAM_USER_MB);
}

FIXTURE_TEARDOWN(mem)
{
	vdi_proc_kill(&self->p);
	vdi_proc_kill(&self->q);
	if (self->user_mb >= 0)
		write_param(PARAM_USER_MB, self->user_mb);
}

/* ------------------------------------------------------------------ */
/* the per-user byte limit                                            */

/* Child: uid U_A, RLIMIT_MEMLOCK 1 MiB, limit 8 MiB. */
static int user_a_fills_its_limit(struct vdi_chan *ch, void *arg)
{
	int c1, s1, c2, s2, c3, s3;
	long long pin;

	(void)arg;
	CKEQ(0, become_limited(U_A, 1 * MIB));
	CKEQ(0, own_set(6 * MIB, &c1, &s1));
	/* 6 + 4 > 8: refused, the set stays configuring */
	CKEQ(-ENOMEM, own_set(4 * MIB, &c2, &s2));
	CKEQ(-ENOMEM, vdi_end_config(s2, 4 * MIB));
	/* 6 + 2 = 8: fits, on the same set (retry with less) */
	CKEQ(0, vdi_end_config(s2, 2 * MIB));
	/* the creator's process shows it (VmPin) */
	pin = proc_kb("/proc/self/status", "VmPin");
	CK(pin >= (long long)(8 * MIB));
	/* a page more is too much */
	CKEQ(-ENOMEM, own_set(VDI_PAGE, &c3, &s3));
	close_set(&c3, &s3);
	/* freeing a set gives its bytes back */
	close_set(&c1, &s1);
	CKEQ(0, own_set(6 * MIB, &c3, &s3));
	CKEQ(0, vdi_chan_send(ch, 1));		/* holding 8 MiB */
	CKEQ(0, vdi_chan_expect(ch, 2, 10000));
	close_set(&c3, &s3);
	close_set(&c2, &s2);
	pin = proc_kb("/proc/self/status", "VmPin");
	CKEQ(0, pin);
	CKEQ(0, own_set(8 * MIB, &c1, &s1));
	return 0;
}

/* Child: uid U_B, unaffected by what U_A holds. */
static int user_b_has_its_own(struct vdi_chan *ch, void *arg)
{
	int c, s;

	(void)ch;
	(void)arg;
	CKEQ(0, become_limited(U_B, 1 * MIB));
	CKEQ(0, own_set(8 * MIB, &c, &s));
	CKEQ(-ENOMEM, own_set(VDI_PAGE, &c, &s));
	return 0;
}

TEST_F(mem, user_over_its_byte_limit_gets_enomem)
{
	ASSERT_EQ(0, write_param(PARAM_USER_MB, 8));
	ASSERT_EQ(0, vdi_spawn(&self->p, user_a_fills_its_limit, NULL));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 20000));
	ASSERT_EQ(0, vdi_spawn(&self->q, user_b_has_its_own, NULL));
	EXPECT_EQ(0, vdi_reap(&self->q, 20000));
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 2));
	EXPECT_EQ(0, vdi_reap(&self->p, 20000));
}

/* Child: RLIMIT_MEMLOCK 12 MiB above a 4 MiB module limit: 12 MiB. */
static int memlock_raises_it(struct vdi_chan *ch, void *arg)
{
	int c1, s1, c2, s2;

	(void)ch;
	(void)arg;
	CKEQ(0, become_limited(U_A, 12 * MIB));
	CKEQ(0, own_set(10 * MIB, &c1, &s1));
	CKEQ(-ENOMEM, own_set(4 * MIB, &c2, &s2));
	CKEQ(0, vdi_end_config(s2, 2 * MIB));
	return 0;
}

/* Child: RLIMIT_MEMLOCK 0 and limit 0: no area at all (but size 0). */
static int nothing_allowed(struct vdi_chan *ch, void *arg)
{
	int c, s;

	(void)ch;
	(void)arg;
	CKEQ(0, become_limited(U_A, 0));
	CKEQ(-ENOMEM, own_set(VDI_PAGE, &c, &s));
	CKEQ(0, vdi_end_config(s, 0));
	return 0;
}

TEST_F(mem, rlimit_memlock_above_the_module_limit_wins)
{
	ASSERT_EQ(0, write_param(PARAM_USER_MB, 4));
	ASSERT_EQ(0, vdi_spawn(&self->p, memlock_raises_it, NULL));
	EXPECT_EQ(0, vdi_reap(&self->p, 20000));
	ASSERT_EQ(0, write_param(PARAM_USER_MB, 0));
	ASSERT_EQ(0, vdi_spawn(&self->q, nothing_allowed, NULL));
	EXPECT_EQ(0, vdi_reap(&self->q, 20000));
}

TEST_F(mem, cap_ipc_lock_is_not_limited_but_charged)
{
	struct rlimit rl = { 0, 0 };
	int c, s;

	/* Root here: CAP_IPC_LOCK, as for mlock(). */
	ASSERT_EQ(0, write_param(PARAM_USER_MB, 1));
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));
	ASSERT_EQ(0, own_set(4 * MIB, &c, &s));
	EXPECT_LE((long long)(4 * MIB),
		  proc_kb("/proc/self/status", "VmPin"));
	close_set(&c, &s);
	EXPECT_EQ(0, proc_kb("/proc/self/status", "VmPin"));
}

/* ------------------------------------------------------------------ */
/* a default install: group members, default limits, a large area     */

struct big {
	char name[VDI_NAME_MAX];
	uint64_t area;
};

/* As the udev rule does: root:T_GROUP 0660; returns the old mode. */
static int node_like_the_rule(struct stat *old)
{
	if (stat(VDI_PATH, old))
		return -errno;
	if (chown(VDI_PATH, 0, T_GROUP) || chmod(VDI_PATH, 0660))
		return -errno;
	return 0;
}

static void node_restore(const struct stat *old)
{
	if (chown(VDI_PATH, old->st_uid, old->st_gid) ||
	    chmod(VDI_PATH, old->st_mode & 07777))
		fprintf(stderr, "# cannot restore %s: %s\n", VDI_PATH,
			strerror(errno));
}

static int become_member(uid_t uid)
{
	gid_t g = T_GROUP;
	struct rlimit rl = { 8 * MIB, 8 * MIB };	/* Debian's default */

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return -errno;
	return vdi_become(uid, uid, &g, 1);
}

/* Child: the backup application (creates the set, reads the area). */
static int big_client(struct vdi_chan *ch, void *arg)
{
	struct big *b = arg;
	struct vdi_create cr;
	struct vdi_config cfg;
	uint8_t *m;
	size_t i;
	int c;

	alarm(200);	/* a large area takes a while under emulation */
	CKEQ(0, become_member(U_CLIENT));
	vdi_create_init(&cr, b->name, 1, 0);
	cr.mode = 0660;
	cr.flags = VDI_CREATE_GID;
	cr.gid = T_GROUP;
	c = vdi_create_cfg(&cr);
	CK(c >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_get_config(c, 100000, &cfg));
	CKEQ(b->area, cfg.buffer_area_size);
	m = vdi_map(c, b->area, 0);
	CK(m != NULL);
	CKEQ(0, vdi_chan_expect(ch, 3, 100000));	/* the server wrote */
	for (i = 0; i < b->area; i += 64 * VDI_PAGE)
		CKEQ((uint8_t)(i >> 18), m[i]);
	CKEQ(0xa5, m[b->area - 1]);
	return 0;
}

/* Child: the engine (configures the area, writes it). */
static int big_server(struct vdi_chan *ch, void *arg)
{
	struct big *b = arg;
	uint8_t *m;
	size_t i;
	int s;

	alarm(200);
	CKEQ(0, become_member(U_SERVER));
	s = vdi_open_server(b->name);
	CK(s >= 0);
	CKEQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	CKEQ(0, vdi_end_config(s, b->area));
	m = vdi_map(s, b->area, 0);
	CK(m != NULL);
	for (i = 0; i < b->area; i += 64 * VDI_PAGE)
		m[i] = (uint8_t)(i >> 18);
	m[b->area - 1] = 0xa5;
	CKEQ(0, vdi_chan_send(ch, 2));
	CKEQ(0, vdi_chan_expect(ch, 4, 100000));
	return 0;
}

TEST_F_TIMEOUT(mem, default_limits_give_a_group_member_a_1g_area, 300)
{
	long long avail = proc_kb("/proc/meminfo", "MemAvailable");
	long long total = proc_kb("/proc/meminfo", "MemTotal");
	long long area_mb = read_param(PARAM_AREA_MB);
	struct big *b = vdi_shared(sizeof(*b));
	struct stat old;
	long long fit;

	ASSERT_NE(NULL, b);
	ASSERT_LT(0, avail);
	ASSERT_LT(0, area_mb);
	/* The defaults: max_area_mb 1024, max_user_area_mb 2048. */
	if (self->user_mb >= 0)
		ASSERT_LE(1024, self->user_mb);
	ASSERT_LE(1024, area_mb);
	/* 1 GiB where the VM has it; else what it has, less a margin. */
	fit = avail - total / 32 - 64 * (long long)MIB;
	fit = fit < 0 ? 0 : fit & ~(long long)(MIB - 1);
	b->area = fit < (long long)(1024 * MIB) ? (uint64_t)fit : 1024 * MIB;
	TH_LOG("MemTotal %lld MiB, MemAvailable %lld MiB: area %llu MiB",
	       total >> 20, avail >> 20, (unsigned long long)(b->area >> 20));
	ASSERT_LE(64 * MIB, b->area);
	vdi_make_name(b->name, "big");

	ASSERT_EQ(0, node_like_the_rule(&old));
	ASSERT_EQ(0, vdi_spawn(&self->p, big_client, b));
	EXPECT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 20000));
	ASSERT_EQ(0, vdi_spawn(&self->q, big_server, b));
	EXPECT_EQ(0, vdi_chan_expect(&self->q.ch, 2, 200000));
	EXPECT_EQ(0, vdi_chan_send(&self->p.ch, 3));
	EXPECT_EQ(0, vdi_reap(&self->p, 100000));
	EXPECT_EQ(0, vdi_chan_send(&self->q.ch, 4));
	EXPECT_EQ(0, vdi_reap(&self->q, 100000));
	node_restore(&old);
	munmap(b, sizeof(*b));
}

/* ------------------------------------------------------------------ */
/* more than the machine has: ENOMEM, and nobody killed               */

/* Child: an innocent process with some memory of its own. */
static int bystander(struct vdi_chan *ch, void *arg)
{
	size_t len = 16 * MIB;
	char *p = malloc(len);

	(void)arg;
	CK(p != NULL);
	memset(p, 1, len);
	CKEQ(0, vdi_chan_send(ch, 1));
	alarm(0);
	for (;;)
		pause();
	return 0;
}

static bool alive(struct vdi_proc *p)
{
	return waitpid(p->pid, &p->status, WNOHANG) == 0;
}

TEST_F_TIMEOUT(mem, more_than_the_vm_has_fails_with_enomem_kills_nobody, 300)
{
	long long total = proc_kb("/proc/meminfo", "MemTotal");
	long long area_mb = read_param(PARAM_AREA_MB);
	long long kills = oom_kills();
	int c[24], s[24], n, r = 0;
	uint64_t size, sum = 0;

	ASSERT_LT(0, total);
	ASSERT_LE(0, kills);
	/* Half the RAM per area (within max_area_mb): the second or a
	 * later one cannot fit.  Root here: no per-user limit applies.
	 */
	size = (uint64_t)total / 2 & ~(MIB - 1);
	if (size > (uint64_t)area_mb * MIB)
		size = (uint64_t)area_mb * MIB;
	ASSERT_EQ(0, vdi_spawn(&self->p, bystander, NULL));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 10000));

	for (n = 0; n < 24; n++) {
		r = own_set(size, &c[n], &s[n]);
		if (r)
			break;
		sum += size;
	}
	TH_LOG("MemTotal %lld MiB: %d areas of %llu MiB, then %d", total >> 20,
	       n, (unsigned long long)(size >> 20), r);
	EXPECT_EQ(-ENOMEM, r);
	EXPECT_GE((uint64_t)total, sum);
	/* still configuring: a small area still works */
	EXPECT_EQ(0, vdi_end_config(s[n], 4 * MIB));
	EXPECT_TRUE(alive(&self->p));
	EXPECT_EQ(kills, oom_kills());
	for (; n >= 0; n--)
		close_set(&c[n], &s[n]);

	/* One area as big as the RAM, where max_area_mb allows it. */
	if ((uint64_t)total <= (uint64_t)area_mb * MIB) {
		EXPECT_EQ(-ENOMEM, own_set((uint64_t)total, &c[0], &s[0]));
		close_set(&c[0], &s[0]);
	}
	EXPECT_TRUE(alive(&self->p));
	EXPECT_EQ(kills, oom_kills());
	/* and everything came back */
	EXPECT_EQ(0, own_set(size, &c[0], &s[0]));
	close_set(&c[0], &s[0]);
}

/* ------------------------------------------------------------------ */
/* a memory cgroup's limit: ENOMEM, not the cgroup's OOM killer       */

static int cg_setup(void)
{
	char buf[256] = "";
	int fd;

	mkdir(CG, 0700);
	if (access(CG "/cgroup.controllers", F_OK) &&
	    mount("none", CG, "cgroup2", 0, NULL))
		return -errno;
	fd = open(CG "/cgroup.controllers", O_RDONLY);
	if (fd < 0)
		return -errno;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	if (!strstr(buf, "memory"))
		return -EOPNOTSUPP;
	if (write_str(CG "/cgroup.subtree_control", "+memory"))
		return -EOPNOTSUPP;
	if (mkdir(CG "/t", 0755) && errno != EEXIST)
		return -errno;
	return write_str(CG "/t/memory.max", "33554432");	/* 32 MiB */
}

static void cg_teardown(void)
{
	rmdir(CG "/t");
	umount(CG);
	rmdir(CG);
}

/* Child: in the limited cgroup, create a set and wait. */
static int cg_creator(struct vdi_chan *ch, void *arg)
{
	char pid[32];
	int c;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	CKEQ(0, write_str(CG "/t/cgroup.procs", pid));
	c = vdi_create_set(arg, 1, 0);
	CK(c >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_chan_expect(ch, 2, 60000));
	return 0;
}

TEST_F_TIMEOUT(mem, memcg_limit_gives_enomem_not_an_oom_kill, 120)
{
	char name[VDI_NAME_MAX];
	long long kills = oom_kills(), cg_kills;
	int s, r;

	r = cg_setup();
	if (r == -EOPNOTSUPP || r == -ENODEV) {
		cg_teardown();
		SKIP(return, "no cgroup2 memory controller");
	}
	ASSERT_EQ(0, r);
	vdi_make_name(name, "cg");
	ASSERT_EQ(0, vdi_spawn(&self->p, cg_creator, name));
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 1, 10000));
	/* The server is outside the cgroup: the creator's is charged. */
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(-ENOMEM, vdi_end_config(s, 64 * MIB));
	EXPECT_TRUE(alive(&self->p));
	cg_kills = kv_count(CG "/t/memory.events", "oom_kill");
	EXPECT_EQ(0, cg_kills);
	EXPECT_EQ(kills, oom_kills());
	EXPECT_EQ(0, vdi_end_config(s, 8 * MIB));
	close(s);
	EXPECT_EQ(0, vdi_chan_send(&self->p.ch, 2));
	EXPECT_EQ(0, vdi_reap(&self->p, 10000));
	cg_teardown();
}

TEST_HARNESS_MAIN
