// SPDX-License-Identifier: GPL-2.0
/*
 * Who sees which set: LIST_SETS, SET_STATS and ABORT_SET (API 1.2,
 * docs/ABI.md "Figures", the contract in include/uapi/linux/vdi.h).
 *
 *  - scope: a set is in scope for a caller in the same user and IPC
 *    namespaces as its creator, as set names are; nothing else is ever
 *    listed, and an id out of scope is ENOENT, even for root;
 *  - visibility: in scope, and the caller's fsuid is the creator's, or the
 *    caller has CAP_SYS_ADMIN in the set's user namespace (uid 0 alone is
 *    not enough); a set in scope but not visible is EPERM;
 *  - id 0 on a set or device fd names that fd's own set, with no check
 *    (a fd passed across namespaces still answers for its set);
 *  - ABORT_SET aborts as SIGNAL_ABORT does, for the owner or a privileged
 *    caller: both sides see ECONNABORTED, the set records VDI_ABORT_ADMIN
 *    and the caller's pid; a stranger's attempt harms nothing;
 *  - the snapshot: owner, mode, name, devices, both sides' pids (in the
 *    caller's pid namespace), the life cycle; sizes, truncation, flags,
 *    reserved fields and bad pointers.
 *
 * The actors are processes the test drives one call at a time (become a
 * uid, enter a namespace, create, list, ...), so each call is made by the
 * right credentials in the right namespaces.
 */
#include "vdi_test_util.h"

#include <stddef.h>
#include <sys/fsuid.h>
#include <linux/capability.h>

#define UID_A		4301
#define UID_B		4302
#define UID_C		4303
#define NS_ROOT_KUID	4310	/* uid 0 of the child user namespace */
#define NS_USER_KUID	4311	/* uid NS_USER there */
#define NS_USER		1000
#define SKIP_CODE	77	/* a child could not set up its scene */
#define LOST		9999	/* an actor did not answer */
#define MAX_IDS		1024	/* what a privileged list may hold here */

/* ------------------------------------------------------------------ */
/* the three calls                                                    */

static int list_sets(int fd, uint64_t *ids, uint32_t room, uint32_t *total,
		     uint32_t *written)
{
	struct vdi_list_sets l;
	int r;

	memset(&l, 0, sizeof(l));
	l.ids = (uintptr_t)ids;
	l.count = room;
	l.total = l.written = 0xdeadbeef;	/* outputs: must be written */
	r = vdi_ioctl(fd, VDI_IOC_LIST_SETS, &l);
	if (total)
		*total = l.total;
	if (written)
		*written = l.written;
	return r;
}

/* SET_STATS into @st (and *ndev device entries of @devs, *ndev = written) */
static int set_stats(int fd, uint64_t id, struct vdi_set_stats *st,
		     struct vdi_dev_stats *devs, uint32_t *ndev)
{
	struct vdi_stats_req q;
	int r;

	memset(&q, 0, sizeof(q));
	q.id = id;
	q.set = (uintptr_t)st;
	q.devs = (uintptr_t)devs;
	q.set_size = sizeof(*st);
	q.dev_size = sizeof(*devs);
	q.dev_count = ndev ? *ndev : 0;
	r = vdi_ioctl(fd, VDI_IOC_SET_STATS, &q);
	if (!r && q.set_size != sizeof(*st))
		return -EBADE;
	if (!r && devs && q.dev_size != sizeof(*devs))
		return -EBADE;
	if (ndev)
		*ndev = r ? 0 : q.dev_count;
	return r;
}

static int abort_set(int fd, uint64_t id)
{
	struct vdi_abort_set a;

	memset(&a, 0, sizeof(a));
	a.id = id;
	return vdi_ioctl(fd, VDI_IOC_ABORT_SET, &a);
}

/* The id of @fd's own set, or 0. */
static uint64_t own_id(int fd)
{
	struct vdi_set_stats st;

	memset(&st, 0, sizeof(st));
	return set_stats(fd, 0, &st, NULL, NULL) ? 0 : st.id;
}

static bool has_id(const uint64_t *ids, uint32_t n, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Where @id is in the list (-1: absent). */
static int pos_of(const uint64_t *ids, uint32_t n, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return (int)i;
	return -1;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

static int read_int(const char *path)
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

/* A child inherits every fd of the test; an actor must hold only its own. */
static void close_inherited(const struct vdi_chan *ch)
{
	int fd;

	for (fd = 3; fd < 1024; fd++)
		if (fd != ch->rd && fd != ch->wr)
			close(fd);
}

/* ------------------------------------------------------------------ */
/* actors                                                             */

enum act_op {
	OP_EXIT = 1,
	OP_BECOME,		/* uid, gid */
	OP_BECOME_FS,		/* ruid = fsuid = uid, euid = suid = uid2 */
	OP_DROP_ADMIN,		/* lose CAP_SYS_ADMIN */
	OP_UNSHARE,		/* flags */
	OP_JOIN_USERNS,		/* the user namespace of process pid */
	OP_CREATE,		/* name, mode, gid (VDI_CREATE_GID if nonzero), ndev */
	OP_OPEN_SERVER,		/* name */
	OP_GET_CONFIG,		/* on the last fd, no wait */
	OP_LIST,		/* room (ids NULL if null_ids) */
	OP_STATS,		/* id, through a fresh endpoint */
	OP_STATS_OWN,		/* id 0 on the last fd */
	OP_STATS_LAST,		/* id through the last fd */
	OP_ABORT,		/* id */
	OP_CLOSE_LAST,
};

#define ACT_FDS		16

struct act {
	/* arguments */
	uint32_t uid, uid2, gid;
	int flags;
	int pid;
	char name[VDI_NAME_MAX];
	uint32_t mode, ndev, cgid;
	uint64_t id;
	uint32_t room;
	bool null_ids;
	/* results */
	int self_pid;
	uint64_t made;			/* OP_CREATE, OP_OPEN_SERVER: its id */
	uint32_t total, written;
	struct vdi_set_stats st;
	uint64_t ids[MAX_IDS];
};

struct actor {
	struct vdi_proc p;
	struct act *a;
};

static int act_do(struct act *a, int op, int *fds, int *nfds)
{
	int fd, r;

	switch (op) {
	case OP_BECOME:
		return vdi_become(a->uid, a->gid, NULL, 0);
	case OP_BECOME_FS:
		if (setgroups(0, NULL) || setresgid(a->gid, a->gid, a->gid) ||
		    setresuid(a->uid, a->uid2, a->uid2))
			return -errno;
		setfsuid(a->uid);
		return (int)setfsuid(-1) == (int)a->uid ? 0 : -EPERM;
	case OP_DROP_ADMIN:
		return vdi_drop_cap(CAP_SYS_ADMIN);
	case OP_UNSHARE:
		return unshare(a->flags) ? -errno : 0;
	case OP_JOIN_USERNS: {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/ns/user", a->pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		r = setns(fd, CLONE_NEWUSER) ? -errno : 0;
		close(fd);
		return r;
	}
	case OP_CREATE: {
		struct vdi_create c;

		if (*nfds >= ACT_FDS)
			return -EMFILE;
		vdi_create_init(&c, a->name, a->ndev ? a->ndev : 1, 0);
		c.mode = a->mode;
		if (a->cgid) {
			c.flags = VDI_CREATE_GID;
			c.gid = a->cgid;
		}
		fd = vdi_create_cfg(&c);
		if (fd < 0)
			return fd;
		fds[(*nfds)++] = fd;
		a->made = own_id(fd);
		return a->made ? 0 : -EBADE;
	}
	case OP_OPEN_SERVER:
		if (*nfds >= ACT_FDS)
			return -EMFILE;
		fd = vdi_open_server(a->name);
		if (fd < 0)
			return fd;
		fds[(*nfds)++] = fd;
		a->made = own_id(fd);
		return a->made ? 0 : -EBADE;
	case OP_GET_CONFIG:
		return *nfds ? vdi_get_config(fds[*nfds - 1], 0, NULL) : -EBADF;
	case OP_LIST:
		fd = vdi_open();
		if (fd < 0)
			return fd;
		memset(a->ids, 0xa5, sizeof(a->ids));
		r = list_sets(fd, a->null_ids ? NULL : a->ids, a->room,
			      &a->total, &a->written);
		close(fd);
		return r;
	case OP_STATS:
		fd = vdi_open();
		if (fd < 0)
			return fd;
		memset(&a->st, 0, sizeof(a->st));
		r = set_stats(fd, a->id, &a->st, NULL, NULL);
		close(fd);
		return r;
	case OP_STATS_OWN:
	case OP_STATS_LAST:
		if (!*nfds)
			return -EBADF;
		memset(&a->st, 0, sizeof(a->st));
		return set_stats(fds[*nfds - 1], op == OP_STATS_OWN ? 0 : a->id,
				 &a->st, NULL, NULL);
	case OP_ABORT:
		fd = vdi_open();
		if (fd < 0)
			return fd;
		r = abort_set(fd, a->id);
		close(fd);
		return r;
	case OP_CLOSE_LAST:
		if (!*nfds)
			return -EBADF;
		close(fds[--(*nfds)]);
		return 0;
	default:
		return -EINVAL;
	}
}

static int actor_main(struct vdi_chan *ch, void *arg)
{
	struct act *a = arg;
	int fds[ACT_FDS], nfds = 0;

	close_inherited(ch);
	a->self_pid = getpid();
	for (;;) {
		uint64_t op;
		int r;

		if (vdi_chan_recv(ch, &op, 15000))
			return 0;	/* the test is gone */
		if (op == OP_EXIT)
			return 0;
		r = act_do(a, (int)op, fds, &nfds);
		if (vdi_chan_send(ch, (uint64_t)(int64_t)r))
			return 0;
	}
}

static int actor_start(struct actor *x)
{
	x->p.pid = -1;
	x->a = vdi_shared(sizeof(*x->a));
	if (!x->a)
		return -ENOMEM;
	return vdi_spawn(&x->p, actor_main, x->a);
}

static void actor_stop(struct actor *x)
{
	if (x->a && x->p.pid > 0)
		vdi_chan_send(&x->p.ch, OP_EXIT);
	vdi_proc_kill(&x->p);
	if (x->a)
		munmap(x->a, sizeof(*x->a));
	x->a = NULL;
}

/* One call by the actor: its result (0 or -errno), LOST if it is gone. */
static int act(struct actor *x, int op)
{
	uint64_t v;

	if (vdi_chan_send(&x->p.ch, op) || vdi_chan_recv(&x->p.ch, &v, 15000))
		return LOST;
	return (int)(int64_t)v;
}

static int act_become(struct actor *x, uint32_t uid, uint32_t gid)
{
	x->a->uid = uid;
	x->a->gid = gid;
	return act(x, OP_BECOME);
}

static int act_create(struct actor *x, const char *name, uint32_t mode)
{
	snprintf(x->a->name, sizeof(x->a->name), "%s", name);
	x->a->mode = mode;
	x->a->made = 0;
	return act(x, OP_CREATE);
}

/* Create a set of a fresh name; its id, or 0. */
static uint64_t act_new_set(struct actor *x, const char *tag)
{
	char name[VDI_NAME_MAX];

	vdi_make_name(name, tag);
	return act_create(x, name, 0) ? 0 : x->a->made;
}

static int act_list(struct actor *x, uint32_t room)
{
	x->a->room = room;
	x->a->null_ids = false;
	return act(x, OP_LIST);
}

static int act_stats(struct actor *x, uint64_t id)
{
	x->a->id = id;
	return act(x, OP_STATS);
}

static int act_abort(struct actor *x, uint64_t id)
{
	x->a->id = id;
	return act(x, OP_ABORT);
}

/* Does the actor's list have @id?  (After a successful act_list.) */
static bool act_sees(struct actor *x, uint64_t id)
{
	return has_id(x->a->ids, x->a->written, id);
}

/* ------------------------------------------------------------------ */
/* the fixture                                                        */

#define NACT 4

FIXTURE(sc) {
	struct actor act[NACT];
	int ep;				/* the test's own endpoint (root) */
	int fds[16];
	int nfds;
	uint64_t ids[MAX_IDS];		/* the test's last list */
	uint32_t total, written;
};

FIXTURE_SETUP(sc)
{
	int i;

	vdi_node_open_to_all();
	for (i = 0; i < NACT; i++)
		ASSERT_EQ(0, actor_start(&self->act[i]));
	for (i = 0; i < 16; i++)
		self->fds[i] = -1;
	self->nfds = 0;
	self->ep = vdi_open();
	ASSERT_LE(0, self->ep);
}

FIXTURE_TEARDOWN(sc)
{
	int i;

	for (i = 0; i < NACT; i++)
		actor_stop(&self->act[i]);
	for (i = 0; i < 16; i++)
		vdi_close(&self->fds[i]);
	vdi_close(&self->ep);
	vdi_node_restore();
}

static int keep(FIXTURE_DATA(sc) *self, int fd)
{
	if (fd >= 0 && self->nfds < 16)
		self->fds[self->nfds++] = fd;
	return fd;
}

/* The test's (root's) list, into self->ids. */
static int root_list(FIXTURE_DATA(sc) *self)
{
	memset(self->ids, 0xa5, sizeof(self->ids));
	return list_sets(self->ep, self->ids, MAX_IDS, &self->total,
			 &self->written);
}

static bool root_sees(FIXTURE_DATA(sc) *self, uint64_t id)
{
	return has_id(self->ids, self->written, id);
}

/* ------------------------------------------------------------------ */
/* version                                                            */

TEST(version_announces_the_figures)
{
	struct vdi_version v;
	int fd = vdi_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vdi_version(fd, &v));
	EXPECT_TRUE(v.features & VDI_FEAT_STATS);
	EXPECT_LE(2U, v.api_minor);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* two uids, and a privileged reader                                  */

TEST_F(sc, a_user_lists_its_own_sets_only_root_lists_all)
{
	struct actor *A = &self->act[0], *B = &self->act[1];
	uint64_t a1, a2, b1;
	struct vdi_set_stats st;

	ASSERT_EQ(0, act_become(A, UID_A, UID_A));
	ASSERT_EQ(0, act_become(B, UID_B, UID_B));
	a1 = act_new_set(A, "la");
	a2 = act_new_set(A, "la");
	b1 = act_new_set(B, "lb");
	ASSERT_NE(0, a1);
	ASSERT_NE(0, a2);
	ASSERT_NE(0, b1);
	EXPECT_NE(a1, a2);
	EXPECT_NE(a1, b1);

	/* each user: exactly its own sets, oldest first */
	ASSERT_EQ(0, act_list(A, 16));
	EXPECT_EQ(2U, A->a->total);
	EXPECT_EQ(2U, A->a->written);
	EXPECT_EQ(a1, A->a->ids[0]);
	EXPECT_EQ(a2, A->a->ids[1]);
	ASSERT_EQ(0, act_list(B, 16));
	EXPECT_EQ(1U, B->a->total);
	EXPECT_EQ(1U, B->a->written);
	EXPECT_EQ(b1, B->a->ids[0]);

	/* another user's set: in scope, not visible */
	EXPECT_EQ(-EPERM, act_stats(A, b1));
	EXPECT_EQ(-EPERM, act_stats(B, a1));
	EXPECT_EQ(-EPERM, act_abort(A, b1));
	EXPECT_EQ(0, act_stats(A, a2));
	EXPECT_EQ(a2, A->a->st.id);
	EXPECT_EQ((__u32)UID_A, A->a->st.uid);

	/* root (CAP_SYS_ADMIN): every set of its scope */
	ASSERT_EQ(0, root_list(self));
	EXPECT_TRUE(root_sees(self, a1));
	EXPECT_TRUE(root_sees(self, a2));
	EXPECT_TRUE(root_sees(self, b1));
	EXPECT_EQ(self->total, self->written);
	EXPECT_LT(pos_of(self->ids, self->written, a1),
		  pos_of(self->ids, self->written, b1));
	ASSERT_EQ(0, set_stats(self->ep, a1, &st, NULL, NULL));
	EXPECT_EQ((__u32)UID_A, st.uid);
	ASSERT_EQ(0, set_stats(self->ep, b1, &st, NULL, NULL));
	EXPECT_EQ((__u32)UID_B, st.uid);
	EXPECT_EQ(b1, st.id);
	/* nothing was aborted by the refused ABORT_SET */
	EXPECT_EQ((__u32)VDI_STATE_CREATED, st.state);
	EXPECT_EQ((__u32)VDI_ABORT_NONE, st.abort_reason);
}

TEST_F(sc, uid_0_without_cap_sys_admin_sees_only_its_own)
{
	struct actor *A = &self->act[0], *R = &self->act[1];
	uint64_t a1, r1;

	ASSERT_EQ(0, act_become(A, UID_A, UID_A));
	a1 = act_new_set(A, "ca");
	ASSERT_NE(0, a1);
	ASSERT_EQ(0, act(R, OP_DROP_ADMIN));
	r1 = act_new_set(R, "cr");
	ASSERT_NE(0, r1);
	ASSERT_EQ(0, act_list(R, MAX_IDS));
	EXPECT_TRUE(act_sees(R, r1));
	EXPECT_FALSE(act_sees(R, a1));
	EXPECT_EQ(-EPERM, act_stats(R, a1));
	EXPECT_EQ(-EPERM, act_abort(R, a1));
	EXPECT_EQ(0, act_stats(R, r1));
	EXPECT_EQ(0U, R->a->st.uid);
	/* with it, the test (root) sees both */
	ASSERT_EQ(0, root_list(self));
	EXPECT_TRUE(root_sees(self, a1));
	EXPECT_TRUE(root_sees(self, r1));
}

/* The owner is the creator's fsuid, and the caller's fsuid is compared. */
TEST_F(sc, ownership_follows_the_fsuid)
{
	struct actor *A = &self->act[0], *F = &self->act[1], *G = &self->act[2];
	uint64_t a1, f1;

	ASSERT_EQ(0, act_become(A, UID_A, UID_A));
	a1 = act_new_set(A, "fa");
	ASSERT_NE(0, a1);
	/* F: real and fs uid A, effective B */
	F->a->uid = UID_A;
	F->a->uid2 = UID_B;
	F->a->gid = UID_B;
	ASSERT_EQ(0, act(F, OP_BECOME_FS));
	/* G: real and fs uid B, effective A */
	G->a->uid = UID_B;
	G->a->uid2 = UID_A;
	G->a->gid = UID_A;
	ASSERT_EQ(0, act(G, OP_BECOME_FS));

	ASSERT_EQ(0, act_list(F, 16));
	EXPECT_TRUE(act_sees(F, a1));
	EXPECT_EQ(0, act_stats(F, a1));
	ASSERT_EQ(0, act_list(G, 16));
	EXPECT_FALSE(act_sees(G, a1));
	EXPECT_EQ(-EPERM, act_stats(G, a1));
	/* a set F creates is A's: A lists it */
	f1 = act_new_set(F, "ff");
	ASSERT_NE(0, f1);
	ASSERT_EQ(0, act_list(A, 16));
	EXPECT_TRUE(act_sees(A, f1));
	EXPECT_EQ(0, act_stats(A, f1));
	EXPECT_EQ((__u32)UID_A, A->a->st.uid);
}

/* ------------------------------------------------------------------ */
/* IPC namespaces                                                     */

TEST_F(sc, another_ipc_namespace_is_out_of_scope_even_for_root)
{
	struct actor *I = &self->act[0], *J = &self->act[1];
	struct actor *A = &self->act[2], *B = &self->act[3];
	char name[VDI_NAME_MAX];
	uint64_t i1, j1, a1, p1;
	int c;

	/* I: root in a new IPC namespace; J: uid A in another new one */
	I->a->flags = CLONE_NEWIPC;
	if (act(I, OP_UNSHARE))
		SKIP(return, "unshare(CLONE_NEWIPC) failed");
	J->a->flags = CLONE_NEWIPC;
	ASSERT_EQ(0, act(J, OP_UNSHARE));
	ASSERT_EQ(0, act_become(J, UID_A, UID_A));
	ASSERT_EQ(0, act_become(A, UID_A, UID_A));
	ASSERT_EQ(0, act_become(B, UID_B, UID_B));

	i1 = act_new_set(I, "ii");
	j1 = act_new_set(J, "ij");
	a1 = act_new_set(A, "ia");
	vdi_make_name(name, "ip");
	c = keep(self, vdi_create_set(name, 1, 0));
	ASSERT_LE(0, c);
	p1 = own_id(c);
	ASSERT_NE(0, i1);
	ASSERT_NE(0, j1);
	ASSERT_NE(0, a1);
	ASSERT_NE(0, p1);

	/* root here: neither I's nor J's set, by list, id or abort */
	ASSERT_EQ(0, root_list(self));
	EXPECT_TRUE(root_sees(self, p1));
	EXPECT_TRUE(root_sees(self, a1));
	EXPECT_FALSE(root_sees(self, i1));
	EXPECT_FALSE(root_sees(self, j1));
	EXPECT_EQ(-ENOENT, set_stats(self->ep, i1, &A->a->st, NULL, NULL));
	EXPECT_EQ(-ENOENT, set_stats(self->ep, j1, &A->a->st, NULL, NULL));
	EXPECT_EQ(-ENOENT, abort_set(self->ep, i1));
	/* root there: only its own namespace's set */
	ASSERT_EQ(0, act_list(I, MAX_IDS));
	EXPECT_EQ(1U, I->a->total);
	EXPECT_EQ(1U, I->a->written);
	EXPECT_EQ(i1, I->a->ids[0]);
	EXPECT_EQ(-ENOENT, act_stats(I, p1));
	EXPECT_EQ(-ENOENT, act_stats(I, a1));
	EXPECT_EQ(-ENOENT, act_stats(I, j1));
	EXPECT_EQ(-ENOENT, act_abort(I, p1));
	/* the same uid in another IPC namespace: not its set there */
	ASSERT_EQ(0, act_list(J, 16));
	EXPECT_EQ(1U, J->a->total);
	EXPECT_EQ(j1, J->a->ids[0]);
	EXPECT_EQ(-ENOENT, act_stats(J, a1));
	EXPECT_EQ(-ENOENT, act_abort(J, a1));
	ASSERT_EQ(0, act_list(A, 16));
	EXPECT_EQ(1U, A->a->total);
	EXPECT_EQ(a1, A->a->ids[0]);
	EXPECT_EQ(-ENOENT, act_stats(A, j1));
	/* out of scope comes before permission: ENOENT, not EPERM */
	EXPECT_EQ(-ENOENT, act_stats(B, i1));
	EXPECT_EQ(-ENOENT, act_abort(B, i1));
	/* the refused aborts did nothing */
	EXPECT_EQ(0, act_stats(I, i1));
	EXPECT_EQ((__u32)VDI_STATE_CREATED, I->a->st.state);
	EXPECT_EQ(0, set_stats(self->ep, p1, &A->a->st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_ABORT_NONE, A->a->st.abort_reason);
}

/* ------------------------------------------------------------------ */
/* user namespaces                                                    */

/* Map uid/gid 0 and NS_USER of @pid's new user namespace. */
static int map_ns_ids(pid_t pid)
{
	char path[64], map[64];
	int r;

	snprintf(map, sizeof(map), "0 %d 1\n%d %d 1\n", NS_ROOT_KUID, NS_USER,
		 NS_USER_KUID);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	r = write_text(path, map);
	if (r)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	return write_text(path, map);
}

TEST_F(sc, another_user_namespace_is_out_of_scope_both_ways)
{
	struct actor *N = &self->act[0], *U = &self->act[1];
	struct actor *A = &self->act[2];
	struct vdi_set_stats st;
	char name[VDI_NAME_MAX];
	uint64_t n1, u1, a1, p1;
	int c;

	/* N: uid 0 of a new user namespace; U: uid NS_USER there */
	N->a->flags = CLONE_NEWUSER;
	if (act(N, OP_UNSHARE))
		SKIP(return, "unshare(CLONE_NEWUSER) failed");
	ASSERT_EQ(0, map_ns_ids(N->p.pid));
	ASSERT_EQ(0, act_become(N, 0, 0));
	U->a->pid = N->p.pid;
	ASSERT_EQ(0, act(U, OP_JOIN_USERNS));
	/*
	 * setns() gave U every capability there.  Only a uid change away
	 * from the namespace's root drops them: U's kuid 0 is not that
	 * root (NS_ROOT_KUID is), so it becomes the root first.
	 */
	ASSERT_EQ(0, act_become(U, 0, 0));
	ASSERT_EQ(0, act_become(U, NS_USER, NS_USER));
	ASSERT_EQ(0, act_become(A, UID_A, UID_A));

	n1 = act_new_set(N, "un");
	u1 = act_new_set(U, "uu");
	a1 = act_new_set(A, "ua");
	vdi_make_name(name, "up");
	c = keep(self, vdi_create_set(name, 1, 0));
	ASSERT_LE(0, c);
	p1 = own_id(c);
	ASSERT_NE(0, n1);
	ASSERT_NE(0, u1);
	ASSERT_NE(0, a1);
	ASSERT_NE(0, p1);

	/* the namespace's root sees every set of its namespace, only them */
	ASSERT_EQ(0, act_list(N, MAX_IDS));
	EXPECT_EQ(2U, N->a->total);
	EXPECT_EQ(2U, N->a->written);
	EXPECT_EQ(n1, N->a->ids[0]);
	EXPECT_EQ(u1, N->a->ids[1]);
	EXPECT_EQ(0, act_stats(N, u1));
	EXPECT_EQ((__u32)NS_USER, N->a->st.uid);	/* in its namespace */
	EXPECT_EQ((__u32)NS_USER, N->a->st.gid);
	EXPECT_EQ(-ENOENT, act_stats(N, p1));
	EXPECT_EQ(-ENOENT, act_stats(N, a1));
	EXPECT_EQ(-ENOENT, act_abort(N, a1));
	/* the namespace's user: its own set */
	ASSERT_EQ(0, act_list(U, 16));
	EXPECT_EQ(1U, U->a->total);
	EXPECT_EQ(u1, U->a->ids[0]);
	EXPECT_EQ(-EPERM, act_stats(U, n1));
	EXPECT_EQ(-EPERM, act_abort(U, n1));
	EXPECT_EQ(-ENOENT, act_stats(U, a1));

	/* from the parent namespace, root included: nothing of theirs */
	ASSERT_EQ(0, root_list(self));
	EXPECT_TRUE(root_sees(self, p1));
	EXPECT_TRUE(root_sees(self, a1));
	EXPECT_FALSE(root_sees(self, n1));
	EXPECT_FALSE(root_sees(self, u1));
	EXPECT_EQ(-ENOENT, set_stats(self->ep, n1, &st, NULL, NULL));
	EXPECT_EQ(-ENOENT, set_stats(self->ep, u1, &st, NULL, NULL));
	EXPECT_EQ(-ENOENT, abort_set(self->ep, u1));
	ASSERT_EQ(0, act_list(A, 16));
	EXPECT_EQ(1U, A->a->total);
	EXPECT_EQ(-ENOENT, act_stats(A, u1));

	/* the refused aborts did nothing */
	EXPECT_EQ(0, act_stats(N, n1));
	EXPECT_EQ((__u32)VDI_ABORT_NONE, N->a->st.abort_reason);
	EXPECT_EQ(0, act_stats(N, u1));
	EXPECT_EQ((__u32)VDI_ABORT_NONE, N->a->st.abort_reason);
	EXPECT_EQ(0, set_stats(self->ep, a1, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_ABORT_NONE, st.abort_reason);
}

struct peek {
	int cfd, dfd;
	uint64_t id;
	int own, own_dev, by_id, list, abort;
	uint32_t total;
	struct vdi_set_stats st;
	char note[96];
};

/*
 * Child with the test's set and device fds: in a new user namespace, id 0
 * still names the fd's set (no check), the set's id names nothing.
 */
static int peek_from_user_ns(struct vdi_chan *ch, void *arg)
{
	struct peek *k = arg;
	struct vdi_set_stats st;
	int ep;

	(void)ch;
	if (unshare(CLONE_NEWUSER)) {
		snprintf(k->note, sizeof(k->note), "unshare: %s", strerror(errno));
		return SKIP_CODE;
	}
	k->own = set_stats(k->cfd, 0, &k->st, NULL, NULL);
	memset(&st, 0, sizeof(st));
	k->own_dev = set_stats(k->dfd, 0, &st, NULL, NULL);
	CKEQ(k->id, st.id);
	k->by_id = set_stats(k->cfd, k->id, &st, NULL, NULL);
	ep = vdi_open();
	CK(ep >= 0);
	k->list = list_sets(ep, NULL, 0, &k->total, NULL);
	k->abort = abort_set(ep, k->id);
	close(ep);
	return 0;
}

TEST(a_fd_carried_into_another_user_namespace_answers_for_its_set)
{
	struct peek *k = vdi_shared(sizeof(*k));
	struct vdi_set_stats st;
	struct vdi_proc p;
	struct vdi_sess s;
	int r;

	ASSERT_NE(NULL, k);
	ASSERT_EQ(0, vdi_sess_simple(&s, 1, 4));
	k->cfd = s.cset;
	k->dfd = s.cdev[0];
	k->id = own_id(s.cset);
	ASSERT_NE(0, k->id);
	ASSERT_EQ(0, vdi_spawn(&p, peek_from_user_ns, k));
	r = vdi_reap(&p, 10000);
	if (r == SKIP_CODE) {
		vdi_sess_close(&s);
		SKIP(return, "%s", k->note);
	}
	ASSERT_EQ(0, r);
	EXPECT_EQ(0, k->own);
	EXPECT_EQ(k->id, k->st.id);
	EXPECT_STREQ(s.name, k->st.name);
	/* root of the parent namespace is not mapped there */
	EXPECT_EQ((__u32)read_int("/proc/sys/kernel/overflowuid"), k->st.uid);
	EXPECT_EQ(0, k->own_dev);
	EXPECT_EQ(-ENOENT, k->by_id);
	EXPECT_EQ(0, k->list);
	EXPECT_EQ(0U, k->total);
	EXPECT_EQ(-ENOENT, k->abort);
	/* and the set is untouched */
	ASSERT_EQ(0, set_stats(s.sset, 0, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_READY, st.state);
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	vdi_sess_close(&s);
	munmap(k, sizeof(*k));
}

/* ------------------------------------------------------------------ */
/* id 0, and the kinds of fd                                          */

TEST_F(sc, id_0_names_the_fds_own_set_without_checks)
{
	struct actor *A = &self->act[0], *B = &self->act[1];
	uint64_t a1;

	ASSERT_EQ(0, act_become(A, UID_A, UID_A));
	ASSERT_EQ(0, act_become(B, UID_B, UID_B));
	vdi_make_name(A->a->name, "zero");
	A->a->mode = 0666;
	ASSERT_EQ(0, act(A, OP_CREATE));
	a1 = A->a->made;
	/* B may serve A's 0666 set, but it stays A's */
	snprintf(B->a->name, sizeof(B->a->name), "%s", A->a->name);
	ASSERT_EQ(0, act(B, OP_OPEN_SERVER));
	EXPECT_EQ(a1, B->a->made);			/* id 0 on its fd */
	EXPECT_EQ(0, act(B, OP_STATS_OWN));
	EXPECT_EQ((__u32)UID_A, B->a->st.uid);
	EXPECT_EQ((__u32)VDI_STATE_CONNECTED, B->a->st.state);
	B->a->id = a1;
	EXPECT_EQ(-EPERM, act(B, OP_STATS_LAST));	/* by id: checked */
	EXPECT_EQ(-EPERM, act_stats(B, a1));
	EXPECT_EQ(-EPERM, act_abort(B, a1));
	ASSERT_EQ(0, act_list(B, 16));
	EXPECT_EQ(0U, B->a->total);
	/* on an endpoint without a set, id 0 names nothing */
	EXPECT_EQ(-EPROTO, set_stats(self->ep, 0, &A->a->st, NULL, NULL));
}

/*
 * LIST_SETS and ABORT_SET belong to /dev/vdi fds (an endpoint, a set fd of
 * any role); a device fd has its own ioctls, and SET_STATS (id 0: its
 * set).  Every one of them reads another set by id.
 */
TEST(every_kind_of_fd_lists_and_reads)
{
	struct vdi_sess s, t;
	struct vdi_set_stats st;
	uint64_t ids[MAX_IDS], sid, tid, uid;
	uint32_t total, written;
	int fds[4], devs[2], i, ep, sec;
	char name[VDI_NAME_MAX];
	int u;

	ASSERT_EQ(0, vdi_sess_simple(&s, 1, 4));
	ASSERT_EQ(0, vdi_sess_simple(&t, 1, 4));
	vdi_make_name(name, "kinds");
	u = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, u);
	ep = vdi_open();
	ASSERT_LE(0, ep);
	sec = vdi_open_secondary(s.name);
	ASSERT_LE(0, sec);
	sid = own_id(s.cset);
	tid = own_id(t.cset);
	uid = own_id(u);
	ASSERT_NE(0, sid);
	ASSERT_NE(0, tid);
	ASSERT_NE(0, uid);
	fds[0] = ep;
	fds[1] = s.cset;
	fds[2] = s.sset;
	fds[3] = sec;
	devs[0] = s.cdev[0];
	devs[1] = s.sdev[0];
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, list_sets(fds[i], ids, MAX_IDS, &total, &written))
			TH_LOG("fd kind %d", i);
		EXPECT_TRUE(has_id(ids, written, sid));
		EXPECT_TRUE(has_id(ids, written, tid));
		EXPECT_EQ(0, set_stats(fds[i], tid, &st, NULL, NULL));
		EXPECT_EQ(tid, st.id);
		if (i) {	/* id 0: its own set, whatever its role */
			EXPECT_EQ(0, set_stats(fds[i], 0, &st, NULL, NULL));
			EXPECT_EQ(sid, st.id) TH_LOG("fd kind %d", i);
		}
	}
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(-ENOTTY, list_sets(devs[i], ids, MAX_IDS, &total,
					     &written)) TH_LOG("device %d", i);
		EXPECT_EQ(-ENOTTY, abort_set(devs[i], uid)) TH_LOG("device %d", i);
		EXPECT_EQ(0, set_stats(devs[i], 0, &st, NULL, NULL));
		EXPECT_EQ(sid, st.id) TH_LOG("device %d", i);
		EXPECT_EQ(0, set_stats(devs[i], tid, &st, NULL, NULL));
		EXPECT_EQ(tid, st.id) TH_LOG("device %d", i);
	}
	EXPECT_EQ(0, set_stats(ep, uid, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_CREATED, st.state);	/* not aborted */

	/* one set's fd aborts another set */
	EXPECT_EQ(0, abort_set(sec, tid));
	EXPECT_EQ(-ECONNABORTED, vdi_send1(t.sdev[0], 1, T_VDC_FLUSH, 0, 0,
					   VDI_NO_BUFFER));
	EXPECT_EQ(0, set_stats(ep, tid, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_ABORTED, st.state);
	EXPECT_EQ((__u32)VDI_ABORT_ADMIN, st.abort_reason);
	EXPECT_EQ((__u32)getpid(), st.abort_pid);
	/* and left its own set alone */
	EXPECT_EQ(0, set_stats(ep, sid, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_READY, st.state);
	EXPECT_EQ(1U, st.secondaries);
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 1, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	close(sec);
	close(ep);
	close(u);
	vdi_sess_close(&t);
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* sets without a name; ids                                           */

TEST_F(sc, an_unlinked_set_held_by_its_server_stays_listed)
{
	struct vdi_set_stats st;
	char name[VDI_NAME_MAX];
	uint64_t id, id2;
	int c, s, c2;

	vdi_make_name(name, "unlinked");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	s = keep(self, vdi_open_server(name));
	ASSERT_LE(0, s);
	id = own_id(c);
	ASSERT_NE(0, id);
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	EXPECT_EQ((__u32)(VDI_SET_LINKED | VDI_SET_HAS_SERVER),
		  st.flags & (VDI_SET_LINKED | VDI_SET_HAS_SERVER));
	close(c);		/* the name goes; the server fd holds the set */

	ASSERT_EQ(0, root_list(self));
	EXPECT_TRUE(root_sees(self, id));
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	EXPECT_EQ(0U, st.flags & VDI_SET_LINKED);
	EXPECT_EQ((__u32)VDI_SET_HAS_SERVER, st.flags & VDI_SET_HAS_SERVER);
	EXPECT_STREQ(name, st.name);
	EXPECT_EQ((__u32)VDI_STATE_ABORTED, st.state);
	EXPECT_EQ((__u32)VDI_ABORT_CLIENT_CLOSE, st.abort_reason);
	EXPECT_EQ(0, set_stats(s, 0, &st, NULL, NULL));
	EXPECT_EQ(id, st.id);

	/* the name is free: a new set takes it, both are listed */
	c2 = keep(self, vdi_create_set(name, 1, 0));
	ASSERT_LE(0, c2);
	id2 = own_id(c2);
	EXPECT_NE(0, id2);
	EXPECT_NE(id, id2);
	ASSERT_EQ(0, root_list(self));
	EXPECT_TRUE(root_sees(self, id));
	EXPECT_TRUE(root_sees(self, id2));
	EXPECT_LT(pos_of(self->ids, self->written, id),
		  pos_of(self->ids, self->written, id2));
	ASSERT_EQ(0, set_stats(self->ep, id2, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_SET_LINKED, st.flags & VDI_SET_LINKED);

	/* the last fd gone, the set is gone */
	vdi_close(&self->fds[0]);
	ASSERT_EQ(0, root_list(self));
	EXPECT_FALSE(root_sees(self, id));
	EXPECT_TRUE(root_sees(self, id2));
	EXPECT_EQ(-ENOENT, set_stats(self->ep, id, &st, NULL, NULL));
	EXPECT_EQ(-ENOENT, abort_set(self->ep, id));
}

TEST_F(sc, ids_are_never_reused_and_unknown_ids_are_enoent)
{
	struct vdi_set_stats st;
	char name[VDI_NAME_MAX];
	uint64_t id, id2;
	int c;

	vdi_make_name(name, "reuse");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	id = own_id(c);
	ASSERT_NE(0, id);
	close(c);
	EXPECT_EQ(-ENOENT, set_stats(self->ep, id, &st, NULL, NULL));
	c = keep(self, vdi_create_set(name, 1, 0));
	ASSERT_LE(0, c);
	id2 = own_id(c);
	EXPECT_NE(0, id2);
	EXPECT_NE(id, id2);
	EXPECT_EQ(-ENOENT, set_stats(self->ep, id, &st, NULL, NULL));
	EXPECT_EQ(-ENOENT, set_stats(self->ep, ~0ULL, &st, NULL, NULL));
	EXPECT_EQ(-ENOENT, set_stats(self->ep, id2 + 1000000, &st, NULL, NULL));
	EXPECT_EQ(-ENOENT, abort_set(self->ep, ~0ULL));
	EXPECT_EQ(-ENOENT, abort_set(self->ep, id));
	EXPECT_EQ(0, set_stats(c, 0, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_CREATED, st.state);
}

TEST_F(sc, list_truncates_to_the_room_given)
{
	struct actor *C = &self->act[0];
	uint64_t c[3];
	int i;

	ASSERT_EQ(0, act_become(C, UID_C, UID_C));
	for (i = 0; i < 3; i++) {
		c[i] = act_new_set(C, "room");
		ASSERT_NE(0, c[i]);
	}
	ASSERT_EQ(0, act_list(C, 1));
	EXPECT_EQ(3U, C->a->total);
	EXPECT_EQ(1U, C->a->written);
	EXPECT_EQ(c[0], C->a->ids[0]);			/* oldest first */
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, C->a->ids[1]);	/* no further */

	C->a->room = 0;
	C->a->null_ids = true;
	ASSERT_EQ(0, act(C, OP_LIST));
	EXPECT_EQ(3U, C->a->total);
	EXPECT_EQ(0U, C->a->written);
	C->a->null_ids = false;
	ASSERT_EQ(0, act(C, OP_LIST));			/* room 0, a buffer */
	EXPECT_EQ(3U, C->a->total);
	EXPECT_EQ(0U, C->a->written);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, C->a->ids[0]);

	ASSERT_EQ(0, act_list(C, 3));
	EXPECT_EQ(3U, C->a->total);
	EXPECT_EQ(3U, C->a->written);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(c[i], C->a->ids[i]);
	ASSERT_EQ(0, act_list(C, 10));
	EXPECT_EQ(3U, C->a->written);
	EXPECT_EQ(0xa5a5a5a5a5a5a5a5ULL, C->a->ids[3]);

	/* the newest closed: the others keep their order */
	ASSERT_EQ(0, act(C, OP_CLOSE_LAST));
	ASSERT_EQ(0, act_list(C, 10));
	EXPECT_EQ(2U, C->a->total);
	EXPECT_EQ(c[0], C->a->ids[0]);
	EXPECT_EQ(c[1], C->a->ids[1]);
}

/* ------------------------------------------------------------------ */
/* the snapshot                                                       */

static int dev_index_of(const struct vdi_dev_stats *d, uint32_t n,
			uint32_t index)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (d[i].index == index)
			return (int)i;
	return -1;
}

TEST_F(sc, the_snapshot_shows_owner_name_devices_and_both_sides)
{
	struct actor *A = &self->act[0];
	struct vdi_dev_stats devs[4];
	struct vdi_set_stats st;
	struct vdi_config cfg;
	char dn[VDI_NAME_MAX];
	uint32_t n;
	uint64_t id;
	int s, sec, d1, i;

	ASSERT_EQ(0, act_become(A, UID_A, UID_A));
	vdi_make_name(A->a->name, "snap");
	A->a->mode = 0660;
	A->a->cgid = UID_A;
	A->a->ndev = 3;
	ASSERT_EQ(0, act(A, OP_CREATE));
	id = A->a->made;

	memset(&st, 0xaa, sizeof(st));
	n = 4;
	ASSERT_EQ(0, set_stats(self->ep, id, &st, devs, &n));
	EXPECT_EQ(id, st.id);
	EXPECT_STREQ(A->a->name, st.name);
	/* the name's tail is zeroes, not the 0xaa put there */
	for (i = strlen(st.name); i < VDI_NAME_MAX; i++)
		EXPECT_EQ(0, st.name[i]);
	EXPECT_EQ((__u32)VDI_STATE_CREATED, st.state);
	EXPECT_EQ((__u32)VDI_SET_LINKED, st.flags & (VDI_SET_LINKED | VDI_SET_HAS_SERVER));
	EXPECT_EQ((__u32)UID_A, st.uid);
	EXPECT_EQ((__u32)UID_A, st.gid);
	EXPECT_EQ(0660U, st.mode);
	EXPECT_EQ(3U, st.device_count);
	EXPECT_EQ((__u32)A->a->self_pid, st.client_pid);
	EXPECT_EQ(0U, st.server_pid);
	EXPECT_EQ(0U, st.secondaries);
	EXPECT_EQ(0U, st.queue_depth);
	EXPECT_EQ(3U, st.config.device_count);
	EXPECT_EQ((__u32)VDI_ABORT_NONE, st.abort_reason);
	EXPECT_EQ(0U, st.abort_pid);
	EXPECT_EQ(0U, st.area_size);
	EXPECT_LT(0U, st.age_ns);
	EXPECT_EQ(0U, st.ready_age_ns);
	EXPECT_EQ(0U, st.end_age_ns);
	for (i = 0; i < 8; i++)
		EXPECT_EQ(0U, st.reserved[i]);
	EXPECT_EQ(3U, n);
	for (i = 0; i < 3; i++) {
		int k = dev_index_of(devs, n, i);

		ASSERT_LE(0, k) TH_LOG("device %d missing", i);
		EXPECT_EQ(0U, devs[k].flags);
		EXPECT_EQ(0U, devs[k].sent);
		for (int j = 0; j < 8; j++)
			EXPECT_EQ(0U, devs[k].reserved[j]);
	}
	EXPECT_STREQ(A->a->name, devs[dev_index_of(devs, n, 0)].name);

	/* the owner reads the same */
	ASSERT_EQ(0, act_stats(A, id));
	EXPECT_EQ((__u32)A->a->self_pid, A->a->st.client_pid);
	EXPECT_EQ(0660U, A->a->st.mode);

	/* the test serves it */
	s = keep(self, vdi_open_server(A->a->name));
	ASSERT_LE(0, s);
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_CONNECTED, st.state);
	EXPECT_EQ((__u32)(VDI_SET_LINKED | VDI_SET_HAS_SERVER),
		  st.flags & (VDI_SET_LINKED | VDI_SET_HAS_SERVER));
	EXPECT_EQ((__u32)getpid(), st.server_pid);
	EXPECT_EQ((__u32)A->a->self_pid, st.client_pid);
	ASSERT_EQ(0, vdi_begin_config(s, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
				      0, 4096, 65536, 5));
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_CONFIGURING, st.state);
	EXPECT_EQ(5U, st.queue_depth);
	ASSERT_EQ(0, vdi_end_config(s, 65536));
	ASSERT_EQ(0, vdi_get_config(s, 0, &cfg));
	ASSERT_EQ(0, act(A, OP_GET_CONFIG));
	sec = keep(self, vdi_open_secondary(A->a->name));
	ASSERT_LE(0, sec);
	vdi_dev_name(dn, A->a->name, 1);
	d1 = keep(self, vdi_open_device(s, dn, 0, NULL));
	ASSERT_LE(0, d1);

	n = 4;
	ASSERT_EQ(0, set_stats(self->ep, id, &st, devs, &n));
	EXPECT_EQ((__u32)VDI_STATE_READY, st.state);
	EXPECT_EQ(65536U, st.area_size);
	EXPECT_EQ(4096U, st.config.block_size);
	EXPECT_EQ(0, memcmp(&cfg, &st.config, sizeof(cfg)));
	EXPECT_EQ(1U, st.secondaries);
	EXPECT_LT(0U, st.ready_age_ns);
	EXPECT_LE(st.ready_age_ns, st.age_ns);
	EXPECT_EQ(0U, st.end_age_ns);
	EXPECT_EQ(3U, n);
	i = dev_index_of(devs, n, 1);
	ASSERT_LE(0, i);
	EXPECT_STREQ(dn, devs[i].name);
	EXPECT_EQ((__u32)VDI_DEV_SERVER_OPEN, devs[i].flags);
	EXPECT_EQ((__u32)VDI_DEV_STATE_ACTIVE, devs[i].state);
	i = dev_index_of(devs, n, 2);
	ASSERT_LE(0, i);
	EXPECT_STREQ("", devs[i].name);			/* not bound yet */

	/* room for one device: one written */
	n = 1;
	ASSERT_EQ(0, set_stats(self->ep, id, &st, devs, &n));
	EXPECT_EQ(1U, n);
}

/* A set whose client died answers with client_pid 0 ("gone"). */
TEST_F(sc, a_dead_client_shows_pid_0)
{
	struct actor *A = &self->act[0];
	struct vdi_set_stats st;
	uint64_t id;
	int s;

	ASSERT_EQ(0, act_become(A, UID_A, UID_A));
	vdi_make_name(A->a->name, "gone");
	A->a->mode = 0;
	ASSERT_EQ(0, act(A, OP_CREATE));
	id = A->a->made;
	s = keep(self, vdi_open_server(A->a->name));
	ASSERT_LE(0, s);
	ASSERT_EQ(0, set_stats(s, 0, &st, NULL, NULL));
	EXPECT_EQ((__u32)A->a->self_pid, st.client_pid);
	actor_stop(A);			/* killed and reaped */
	ASSERT_EQ(0, set_stats(s, 0, &st, NULL, NULL));
	EXPECT_EQ(id, st.id);
	EXPECT_EQ(0U, st.client_pid);
	EXPECT_EQ((__u32)getpid(), st.server_pid);
	EXPECT_EQ((__u32)VDI_STATE_ABORTED, st.state);
	EXPECT_EQ((__u32)UID_A, st.uid);	/* still its owner */
}

/* ------------------------------------------------------------------ */
/* pids in a child pid namespace                                      */

struct pidns {
	char name[VDI_NAME_MAX];
	uint64_t parent_id, own_id;
	int r_parent, r_own;
	struct vdi_set_stats st_parent, st_own;
	volatile int inner_pid, outer_pid;
	volatile int go, ready, release;
	char note[96];
};

static int pidns_inner(struct pidns *p)
{
	int ep, c;
	int64_t end = vdi_now_ms() + 15000;

	p->inner_pid = getpid();
	while (!p->go && vdi_now_ms() < end)
		vdi_sleep_ms(2);
	CK(p->go);
	ep = vdi_open();
	CK(ep >= 0);
	p->r_parent = set_stats(ep, p->parent_id, &p->st_parent, NULL, NULL);
	c = vdi_create_set(p->name, 1, 0);
	CK(c >= 0);
	p->r_own = set_stats(c, 0, &p->st_own, NULL, NULL);
	p->own_id = p->st_own.id;
	p->ready = 1;
	while (!p->release && vdi_now_ms() < end)
		vdi_sleep_ms(2);
	close(c);
	close(ep);
	return 0;
}

static int pidns_child(struct vdi_chan *ch, void *arg)
{
	struct pidns *p = arg;
	int status;
	pid_t pid;

	close_inherited(ch);
	if (unshare(CLONE_NEWPID)) {
		snprintf(p->note, sizeof(p->note), "unshare: %s", strerror(errno));
		p->ready = 1;
		return SKIP_CODE;
	}
	pid = fork();
	CK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(VDI_CHILD_ALARM);
		_exit(pidns_inner(p));
	}
	p->outer_pid = pid;
	CKEQ(pid, waitpid(pid, &status, 0));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST(pids_are_those_of_the_callers_pid_namespace)
{
	struct pidns *p = vdi_shared(sizeof(*p));
	struct vdi_set_stats st;
	struct vdi_proc pr;
	char name[VDI_NAME_MAX];
	int c, s, r;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, vdi_spawn(&pr, pidns_child, p));	/* before our fds */
	vdi_make_name(name, "pidp");
	vdi_make_name(p->name, "pidc");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	s = vdi_open_server(name);
	ASSERT_LE(0, s);
	p->parent_id = own_id(c);
	ASSERT_NE(0, p->parent_id);
	p->go = 1;
	ASSERT_TRUE(({ int64_t e = vdi_now_ms() + 10000;
		       while (!p->ready && vdi_now_ms() < e) vdi_sleep_ms(2);
		       p->ready; }));
	if (p->note[0]) {
		vdi_reap(&pr, 5000);
		SKIP(return, "%s", p->note);
	}
	/* inside: the test's process (both sides) is not visible */
	EXPECT_EQ(0, p->r_parent);
	EXPECT_EQ(p->parent_id, p->st_parent.id);
	EXPECT_EQ(0U, p->st_parent.client_pid);
	EXPECT_EQ(0U, p->st_parent.server_pid);
	/* inside, its own pid is 1; here, the pid fork() gave */
	EXPECT_EQ(0, p->r_own);
	EXPECT_EQ(1, p->inner_pid);
	EXPECT_EQ(1U, p->st_own.client_pid);
	ASSERT_EQ(0, set_stats(c, p->own_id, &st, NULL, NULL));
	EXPECT_EQ((__u32)p->outer_pid, st.client_pid);
	EXPECT_NE(1U, st.client_pid);
	ASSERT_EQ(0, set_stats(c, 0, &st, NULL, NULL));
	EXPECT_EQ((__u32)getpid(), st.client_pid);
	EXPECT_EQ((__u32)getpid(), st.server_pid);
	p->release = 1;
	r = vdi_reap(&pr, 10000);
	EXPECT_EQ(0, r);
	close(s);
	close(c);
	munmap(p, sizeof(*p));
}

/* ------------------------------------------------------------------ */
/* ABORT_SET: two sides in two processes, a third one aborts          */

struct duo {
	char name[VDI_NAME_MAX];
	uint32_t client_uid, server_uid;
	volatile uint64_t id;
	volatile int served;		/* commands the client completed */
	volatile int client_end;	/* its last GET_COMMANDS result */
};

/*
 * The client: create, wait for the configuration, then take and complete
 * one command after another until a GET_COMMANDS fails (or 15 s pass).
 */
static int duo_client(struct vdi_chan *ch, void *arg)
{
	struct duo *d = arg;
	struct vdi_command cmd;
	int set, dev, r;

	close_inherited(ch);
	CKEQ(0, vdi_become(d->client_uid, d->client_uid, NULL, 0));
	set = vdi_create_set(d->name, 1, 0);
	CK(set >= 0);
	d->id = own_id(set);
	CK(d->id != 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	CKEQ(0, vdi_get_config(set, 10000, NULL));
	dev = vdi_open_device(set, d->name, 0, NULL);
	CK(dev >= 0);
	CKEQ(0, vdi_chan_send(ch, 2));
	for (;;) {
		r = vdi_get(dev, &cmd, 1, 15000);
		if (r != 1)
			break;
		CKEQ(1, vdi_complete1(dev, cmd.tag, 0, cmd.size, cmd.position));
		d->served++;
	}
	d->client_end = r;
	CKEQ(0, vdi_chan_send(ch, 3));
	CKEQ(0, vdi_chan_expect(ch, 9, 15000));
	close(dev);
	close(set);
	return 0;
}

#define DUO_SEND	'S'	/* one Write there and back: 0 or what failed */
#define DUO_WAIT	'W'	/* WAIT_COMPLETIONS: its result */
#define DUO_EXIT	'X'

/* The server: open and configure, then do what the test says. */
static int duo_server(struct vdi_chan *ch, void *arg)
{
	struct duo *d = arg;
	struct vdi_completion c;
	uint64_t op, cookie = 0;
	int set, dev, r;

	close_inherited(ch);
	CKEQ(0, vdi_become(d->server_uid, d->server_uid, NULL, 0));
	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	set = vdi_open_server(d->name);
	CK(set >= 0);
	CKEQ(0, vdi_begin_config(set, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
				 0, 512, 65536, 4));
	CKEQ(0, vdi_end_config(set, 65536));
	dev = vdi_open_device(set, d->name, 0, NULL);
	CK(dev >= 0);
	CKEQ(0, vdi_chan_send(ch, 1));
	for (;;) {
		CKEQ(0, vdi_chan_recv(ch, &op, 15000));
		switch (op) {
		case DUO_SEND:
			cookie++;
			r = vdi_send1(dev, cookie, VDI_VDC_WRITE, 512, cookie, 0);
			if (r != 1)
				break;
			r = vdi_wait(set, &c, 1, 5000);
			if (r != 1)
				break;
			r = c.cookie != cookie ? -EBADMSG :
			    c.completion_code ? (int)c.completion_code :
			    c.bytes_transferred != 512 ? -EBADE : 0;
			break;
		case DUO_WAIT:
			r = vdi_wait(set, &c, 1, 5000);
			break;
		case DUO_EXIT:
			close(dev);
			close(set);
			return 0;
		default:
			r = -EINVAL;
		}
		CKEQ(0, vdi_chan_send(ch, (uint64_t)(int64_t)r));
	}
}

FIXTURE(ab) {
	struct duo *d;
	struct vdi_proc client, server;
	struct actor act[2];
	int ep;
};

FIXTURE_SETUP(ab)
{
	vdi_node_open_to_all();
	self->client.pid = self->server.pid = -1;
	self->d = vdi_shared(sizeof(*self->d));
	ASSERT_NE(NULL, self->d);
	vdi_make_name(self->d->name, "abort");
	self->d->client_uid = UID_A;
	self->d->server_uid = UID_A;	/* the owner serves its own set */
	ASSERT_EQ(0, actor_start(&self->act[0]));
	ASSERT_EQ(0, actor_start(&self->act[1]));
	ASSERT_EQ(0, vdi_spawn(&self->client, duo_client, self->d));
	ASSERT_EQ(0, vdi_spawn(&self->server, duo_server, self->d));
	self->ep = vdi_open();
	ASSERT_LE(0, self->ep);
	/* a ready set, a device open on both sides */
	ASSERT_EQ(0, vdi_chan_expect(&self->client.ch, 1, 10000));
	ASSERT_EQ(0, vdi_chan_send(&self->server.ch, 1));
	ASSERT_EQ(0, vdi_chan_expect(&self->server.ch, 1, 10000));
	ASSERT_EQ(0, vdi_chan_expect(&self->client.ch, 2, 10000));
}

FIXTURE_TEARDOWN(ab)
{
	/* the server first: its leaving wakes the client's wait */
	vdi_chan_send(&self->server.ch, DUO_EXIT);
	vdi_chan_send(&self->client.ch, 9);
	vdi_reap(&self->client, 3000);
	vdi_reap(&self->server, 3000);
	vdi_proc_kill(&self->client);
	vdi_proc_kill(&self->server);
	actor_stop(&self->act[0]);
	actor_stop(&self->act[1]);
	vdi_close(&self->ep);
	munmap(self->d, sizeof(*self->d));
	vdi_node_restore();
}

static int duo_call(struct vdi_proc *p, uint64_t op)
{
	uint64_t v;

	if (vdi_chan_send(&p->ch, op) || vdi_chan_recv(&p->ch, &v, 10000))
		return LOST;
	return (int)(int64_t)v;
}

/* After an abort: both sides see ECONNABORTED, promptly. */
static void both_sides_aborted(struct __test_metadata *_metadata,
			       FIXTURE_DATA(ab) *self)
{
	int64_t t0 = vdi_now_ms();

	ASSERT_EQ(0, vdi_chan_expect(&self->client.ch, 3, 5000));
	EXPECT_EQ(-ECONNABORTED, self->d->client_end);
	EXPECT_GT(VDI_PROMPT_MS * 2, vdi_now_ms() - t0);
	EXPECT_EQ(-ECONNABORTED, duo_call(&self->server, DUO_WAIT));
	EXPECT_EQ(-ECONNABORTED, duo_call(&self->server, DUO_SEND));
}

static void check_admin_abort(struct __test_metadata *_metadata,
			      const struct vdi_set_stats *st, uint64_t id,
			      int by)
{
	EXPECT_EQ(id, st->id);
	EXPECT_EQ((__u32)VDI_STATE_ABORTED, st->state);
	EXPECT_EQ((__u32)VDI_ABORT_ADMIN, st->abort_reason);
	EXPECT_EQ((__u32)by, st->abort_pid);
	EXPECT_EQ(VDI_ABORT_NO_DEVICE, st->abort_device);
	EXPECT_LT(0U, st->end_age_ns);
}

TEST_F(ab, the_owner_aborts_its_set)
{
	struct actor *O = &self->act[0];
	struct vdi_set_stats st;
	uint64_t id = self->d->id;

	ASSERT_EQ(0, duo_call(&self->server, DUO_SEND));
	ASSERT_EQ(0, act_become(O, UID_A, UID_A));	/* a third process of A */
	ASSERT_EQ(0, act_stats(O, id));
	EXPECT_EQ((__u32)self->client.pid, O->a->st.client_pid);
	EXPECT_EQ((__u32)self->server.pid, O->a->st.server_pid);
	EXPECT_EQ((__u32)VDI_STATE_READY, O->a->st.state);
	ASSERT_EQ(0, act_abort(O, id));
	both_sides_aborted(_metadata, self);
	ASSERT_EQ(0, act_stats(O, id));
	check_admin_abort(_metadata, &O->a->st, id, O->a->self_pid);
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	check_admin_abort(_metadata, &st, id, O->a->self_pid);
	/* again, by root: changes nothing, the first cause stays */
	EXPECT_EQ(0, abort_set(self->ep, id));
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	check_admin_abort(_metadata, &st, id, O->a->self_pid);
	EXPECT_EQ(1, self->d->served);
}

TEST_F(ab, a_stranger_is_refused_and_harms_nothing)
{
	struct actor *S = &self->act[0];
	struct vdi_set_stats st;
	uint64_t id = self->d->id;

	ASSERT_EQ(0, duo_call(&self->server, DUO_SEND));
	ASSERT_EQ(0, act_become(S, UID_B, UID_B));
	EXPECT_EQ(-EPERM, act_abort(S, id));
	EXPECT_EQ(-EPERM, act_stats(S, id));
	ASSERT_EQ(0, act_list(S, 16));
	EXPECT_FALSE(act_sees(S, id));
	/* the set goes on: another command there and back */
	EXPECT_EQ(0, duo_call(&self->server, DUO_SEND));
	EXPECT_EQ(0, duo_call(&self->server, DUO_SEND));
	EXPECT_EQ(3, self->d->served);
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_READY, st.state);
	EXPECT_EQ((__u32)VDI_ABORT_NONE, st.abort_reason);
	EXPECT_EQ(0U, st.abort_pid);
	EXPECT_EQ(0U, st.end_age_ns);
}

TEST_F(ab, root_aborts_any_set_of_its_scope)
{
	struct vdi_set_stats st;
	uint64_t id = self->d->id;

	ASSERT_EQ(0, duo_call(&self->server, DUO_SEND));
	ASSERT_EQ(0, abort_set(self->ep, id));
	both_sides_aborted(_metadata, self);
	ASSERT_EQ(0, set_stats(self->ep, id, &st, NULL, NULL));
	check_admin_abort(_metadata, &st, id, getpid());
	EXPECT_EQ((__u32)UID_A, st.uid);
}

/* After the normal end there is nothing to abort: it stays DONE. */
TEST(abort_set_after_the_normal_end_changes_nothing)
{
	struct vdi_set_stats st;
	struct vdi_command cmd;
	struct vdi_completion c;
	struct vdi_sess s;
	uint64_t id;

	ASSERT_EQ(0, vdi_sess_simple(&s, 1, 4));
	id = own_id(s.cset);
	ASSERT_NE(0, id);
	ASSERT_EQ(0, vdi_close_device(s.sdev[0]));
	EXPECT_EQ(-ESHUTDOWN, vdi_get(s.cdev[0], &cmd, 1, 0));
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s.sset, &c, 1, 1000));
	ASSERT_EQ(0, set_stats(s.sset, 0, &st, NULL, NULL));
	ASSERT_EQ((__u32)VDI_STATE_DONE, st.state);
	EXPECT_EQ(0, abort_set(s.cset, id));		/* as SIGNAL_ABORT */
	ASSERT_EQ(0, set_stats(s.sset, 0, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_DONE, st.state);
	EXPECT_EQ((__u32)VDI_ABORT_NONE, st.abort_reason);
	EXPECT_EQ(-ESHUTDOWN, vdi_wait(s.sset, &c, 1, 0));
	vdi_sess_close(&s);
}

/* ------------------------------------------------------------------ */
/* arguments                                                          */

/* A region whose last @len bytes end exactly at a PROT_NONE page. */
static void *before_guard(size_t len)
{
	uint8_t *p = vdi_pages(2, PROT_READ | PROT_WRITE);

	if (!p || mprotect(p + VDI_PAGE, VDI_PAGE, PROT_NONE))
		return NULL;
	return p + VDI_PAGE - len;
}

TEST(flags_and_reserved_fields_must_be_zero)
{
	struct vdi_set_stats st;
	struct vdi_list_sets l;
	struct vdi_stats_req q;
	struct vdi_abort_set a;
	char name[VDI_NAME_MAX];
	uint64_t ids[4], id;
	int c, i;

	vdi_make_name(name, "resv");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	id = own_id(c);
	ASSERT_NE(0, id);
	for (i = 0; i < 3; i++) {
		memset(&l, 0, sizeof(l));
		l.ids = (uintptr_t)ids;
		l.count = 4;
		if (i == 0)
			l.flags = 1U << 31;
		else
			l.reserved[i - 1] = 1;
		EXPECT_EQ(-EINVAL, vdi_ioctl(c, VDI_IOC_LIST_SETS, &l)) TH_LOG("%d", i);

		memset(&q, 0, sizeof(q));
		q.id = id;
		q.set = (uintptr_t)&st;
		q.set_size = sizeof(st);
		q.dev_size = sizeof(struct vdi_dev_stats);
		if (i == 0)
			q.flags = 1;
		else
			q.reserved[i - 1] = 1ULL << 40;
		EXPECT_EQ(-EINVAL, vdi_ioctl(c, VDI_IOC_SET_STATS, &q)) TH_LOG("%d", i);

		memset(&a, 0, sizeof(a));
		a.id = id;
		if (i == 0)
			a.flags = 1;
		else
			a.reserved[i - 1] = 1;
		EXPECT_EQ(-EINVAL, vdi_ioctl(c, VDI_IOC_ABORT_SET, &a)) TH_LOG("%d", i);
	}
	memset(&a, 0, sizeof(a));
	a.id = id;
	a.reserved0 = 1;
	EXPECT_EQ(-EINVAL, vdi_ioctl(c, VDI_IOC_ABORT_SET, &a));
	/* none of them aborted it */
	ASSERT_EQ(0, set_stats(c, 0, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_CREATED, st.state);
	close(c);
}

/* Smaller than the first published sizes: EINVAL; larger: the module's. */
TEST(sizes_older_are_refused_newer_get_what_the_module_has)
{
	struct big_set { struct vdi_set_stats s; uint8_t more[64]; } bs;
	struct big_dev { struct vdi_dev_stats d; uint8_t more[24]; } bd[3];
	struct vdi_stats_req q;
	struct vdi_sess s;
	uint64_t id;
	int i;

	ASSERT_EQ(0, vdi_sess_simple(&s, 2, 4));
	id = own_id(s.cset);
	ASSERT_NE(0, id);
	ASSERT_EQ(616U, VDI_DEV_STATS_SIZE_VER0);
	ASSERT_EQ(336U, VDI_SET_STATS_SIZE_VER0);

	memset(&q, 0, sizeof(q));
	q.id = id;
	q.set = (uintptr_t)&bs;
	q.devs = (uintptr_t)bd;
	q.dev_count = 3;
	q.set_size = VDI_SET_STATS_SIZE_VER0 - 8;
	q.dev_size = VDI_DEV_STATS_SIZE_VER0;
	EXPECT_EQ(-EINVAL, vdi_ioctl(s.cset, VDI_IOC_SET_STATS, &q));
	q.set_size = 0;
	EXPECT_EQ(-EINVAL, vdi_ioctl(s.cset, VDI_IOC_SET_STATS, &q));
	q.set_size = VDI_SET_STATS_SIZE_VER0;
	q.dev_size = VDI_DEV_STATS_SIZE_VER0 - 8;
	EXPECT_EQ(-EINVAL, vdi_ioctl(s.cset, VDI_IOC_SET_STATS, &q));
	/* no room for devices (may be 0), no device pointer */
	q.dev_size = VDI_DEV_STATS_SIZE_VER0;
	q.dev_count = 0;
	q.devs = 0;
	EXPECT_EQ(0, vdi_ioctl(s.cset, VDI_IOC_SET_STATS, &q));
	EXPECT_EQ(0U, q.dev_count);

	/* a newer caller: the module writes its own size, stride the caller's */
	memset(&bs, 0xaa, sizeof(bs));
	memset(bd, 0xaa, sizeof(bd));
	memset(&q, 0, sizeof(q));
	q.id = id;
	q.set = (uintptr_t)&bs;
	q.devs = (uintptr_t)bd;
	q.dev_count = 3;
	q.set_size = sizeof(bs);
	q.dev_size = sizeof(bd[0]);
	ASSERT_EQ(0, vdi_ioctl(s.cset, VDI_IOC_SET_STATS, &q));
	EXPECT_EQ(VDI_SET_STATS_SIZE_VER0, q.set_size);
	EXPECT_EQ(VDI_DEV_STATS_SIZE_VER0, q.dev_size);
	EXPECT_EQ(2U, q.dev_count);
	EXPECT_EQ(id, bs.s.id);
	EXPECT_STREQ(s.name, bs.s.name);
	for (i = 0; i < 64; i++)
		EXPECT_EQ(0xaa, bs.more[i]);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ((uint32_t)i, bd[i].d.index);
		EXPECT_EQ((__u32)(VDI_DEV_SERVER_OPEN | VDI_DEV_CLIENT_OPEN),
			  bd[i].d.flags);
		for (int j = 0; j < 24; j++)
			EXPECT_EQ(0xaa, bd[i].more[j]);
	}
	/* the third had no device: untouched */
	for (i = 0; i < (int)sizeof(bd[2]); i++)
		EXPECT_EQ(0xaa, ((uint8_t *)&bd[2])[i]);
	vdi_sess_close(&s);
}

TEST(bad_pointers_are_efault)
{
	struct vdi_set_stats *st_tail;
	struct vdi_dev_stats *dev_tail;
	struct vdi_set_stats st;
	struct vdi_stats_req q;
	uint64_t *id_tail;
	uint32_t total;
	void *none = vdi_pages(1, PROT_NONE);
	char name[VDI_NAME_MAX];
	int c, c2;
	uint64_t id;

	ASSERT_NE(NULL, none);
	vdi_make_name(name, "efault");
	c = vdi_create_set(name, 2, 0);
	ASSERT_LE(0, c);
	vdi_make_name(name, "efault");
	c2 = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c2);
	id = own_id(c);
	ASSERT_NE(0, id);

	EXPECT_EQ(-EFAULT, vdi_ioctl(c, VDI_IOC_LIST_SETS, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(c, VDI_IOC_SET_STATS, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(c, VDI_IOC_ABORT_SET, NULL));
	EXPECT_EQ(-EFAULT, vdi_ioctl(c, VDI_IOC_LIST_SETS, none));
	/* ids: unmapped, or room for two where one fits */
	EXPECT_EQ(-EFAULT, list_sets(c, none, 4, &total, NULL));
	id_tail = before_guard(sizeof(uint64_t));
	ASSERT_NE(NULL, id_tail);
	EXPECT_EQ(0, list_sets(c, id_tail, 1, &total, NULL));
	EXPECT_EQ(-EFAULT, list_sets(c, id_tail, 2, &total, NULL));
	/* the set snapshot, the devices */
	EXPECT_EQ(-EFAULT, set_stats(c, id, none, NULL, NULL));
	st_tail = before_guard(sizeof(*st_tail) - 8);
	ASSERT_NE(NULL, st_tail);
	EXPECT_EQ(-EFAULT, set_stats(c, id, st_tail, NULL, NULL));
	memset(&q, 0, sizeof(q));
	q.id = id;
	q.set = (uintptr_t)&st;
	q.devs = (uintptr_t)none;
	q.set_size = sizeof(st);
	q.dev_size = sizeof(struct vdi_dev_stats);
	q.dev_count = 1;
	EXPECT_EQ(-EFAULT, vdi_ioctl(c, VDI_IOC_SET_STATS, &q));
	dev_tail = before_guard(sizeof(*dev_tail));
	ASSERT_NE(NULL, dev_tail);
	q.devs = (uintptr_t)dev_tail;
	q.dev_count = 1;
	EXPECT_EQ(0, vdi_ioctl(c, VDI_IOC_SET_STATS, &q));
	EXPECT_EQ(1U, q.dev_count);
	q.dev_count = 2;
	q.set_size = sizeof(st);
	q.dev_size = sizeof(struct vdi_dev_stats);
	EXPECT_EQ(-EFAULT, vdi_ioctl(c, VDI_IOC_SET_STATS, &q));
	/* nothing happened to the sets */
	ASSERT_EQ(0, set_stats(c, 0, &st, NULL, NULL));
	EXPECT_EQ((__u32)VDI_STATE_CREATED, st.state);
	close(c2);
	close(c);
}

TEST_HARNESS_MAIN
