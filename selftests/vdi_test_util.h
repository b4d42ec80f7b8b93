/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the /dev/vdi selftests.
 *
 * Conventions:
 *  - every wrapper returns the ioctl's non-negative result, or -errno;
 *  - every blocking call is given a finite timeout, and every child process
 *    gets PR_SET_PDEATHSIG(SIGKILL) and an alarm(), so no test can hang;
 *  - children never use ASSERT_*: they return a non-zero status (and print
 *    the failing line) which the parent asserts on;
 *  - processes are forked before any vdi fd is opened, so an fd is never
 *    shared between the two roles (closing or killing one side must really
 *    drop the last reference of its fds).
 */
#ifndef VDI_TEST_UTIL_H
#define VDI_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/vdi.h>

/*
 * The 6.1 harness's TEST()/TEST_F() wrappers and its SIGALRM handler have
 * unused parameters, which -Wextra reports at every test; nothing else.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define VDI_PATH		"/dev/vdi"
#define VDI_PAGE		4096UL
#define VDI_PROMPT_MS		1000	/* "promptly" under emulation */
#define VDI_CHILD_ALARM		20	/* seconds: a child never lives longer */

#define VDI_ALL_FEATURES	(VDI_FEAT_BATCH | VDI_FEAT_POLL | \
				 VDI_FEAT_SECONDARY | VDI_FEAT_WATCHDOG | \
				 VDI_FEAT_GROUP_ACCESS | VDI_FEAT_SET_INFO | \
				 VDI_FEAT_STATS | VDI_FEAT_ENTER)

/* VDF_* bits named in the spec but not in the uapi header. */
#define T_VDF_REWIND		0x2U
#define T_VDF_POSITION		0x10U
#define T_VDF_DISCARD		0x80U
#define T_VDF_FILEMARKS		0x100U
#define T_VDF_SNAPSHOT_PREPARE	0x400U
#define T_VDF_ENUM_FROZEN	0x800U
#define T_VDF_VSS_WRITER	0x1000U
#define T_VDF_LATCH_STATS	0x80000000U

/* VDC_* codes used by the tests. */
#define T_VDC_SKIP_BLOCKS	7
#define T_VDC_GET_POSITION	9
#define T_VDC_FLUSH		12

/* Win32 codes a client reports. */
#define T_ERROR_DISK_FULL	112
#define T_ERROR_INVALID_DATA	13

/* ------------------------------------------------------------------ */
/* time                                                               */

static inline int64_t vdi_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t vdi_now_ms(void)
{
	return vdi_now_us() / 1000;
}

static inline void vdi_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* raw ioctl wrappers                                                 */

static inline int vdi_ioctl(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

/* Drop @cap from every capability set of the calling thread: 0 or -errno. */
static inline int vdi_drop_cap(int cap)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
	};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[cap / 32].effective &= ~(1U << (cap % 32));
	d[cap / 32].permitted &= ~(1U << (cap % 32));
	d[cap / 32].inheritable &= ~(1U << (cap % 32));
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

/*
 * Tests whose children drop to other uids: the rig may make /dev/vdi 0600,
 * or 0660 for a group, so the node is made 0666 for the test and put back
 * after.
 */
static mode_t vdi_node_mode_saved __attribute__((unused));

static inline void vdi_node_open_to_all(void)
{
	struct stat st;

	vdi_node_mode_saved = 0;
	if (!stat(VDI_PATH, &st)) {
		vdi_node_mode_saved = st.st_mode & 07777;
		chmod(VDI_PATH, 0666);
	}
}

static inline void vdi_node_restore(void)
{
	if (vdi_node_mode_saved)
		chmod(VDI_PATH, vdi_node_mode_saved);
}

static inline int vdi_open(void)
{
	int fd = open(VDI_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static inline void vdi_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static unsigned int vdi_name_counter;

/* A name unique to this process (tests run in their own process). */
static inline void vdi_make_name(char *buf, const char *tag)
{
	snprintf(buf, VDI_NAME_MAX, "vdi-%s-%d-%u", tag, (int)getpid(),
		 vdi_name_counter++);
}

/* Name of device i of set @set: device 0 carries the set's name. */
static inline void vdi_dev_name(char *buf, const char *set, unsigned int i)
{
	if (i == 0)
		snprintf(buf, VDI_NAME_MAX, "%s", set);
	else
		snprintf(buf, VDI_NAME_MAX, "%.100s.dev%u", set, i);
}

static inline int vdi_version(int fd, struct vdi_version *v)
{
	memset(v, 0, sizeof(*v));
	v->api_major = VDI_API_MAJOR;
	v->api_minor = VDI_API_MINOR;
	return vdi_ioctl(fd, VDI_IOC_VERSION, v);
}

static inline void vdi_create_init(struct vdi_create *c, const char *name,
				   unsigned int devices, unsigned int features)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->config.device_count = devices;
	c->config.features = features;
}

/* CREATE on an existing endpoint fd. */
static inline int vdi_create_on(int fd, const char *name, unsigned int devices,
				unsigned int features)
{
	struct vdi_create c;

	vdi_create_init(&c, name, devices, features);
	return vdi_ioctl(fd, VDI_IOC_CREATE, &c);
}

/* New endpoint + CREATE; returns the client set fd or -errno. */
static inline int vdi_create_cfg(const struct vdi_create *c)
{
	int fd = vdi_open(), r;

	if (fd < 0)
		return fd;
	r = vdi_ioctl(fd, VDI_IOC_CREATE, (void *)c);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static inline int vdi_create_set(const char *name, unsigned int devices,
				 unsigned int features)
{
	struct vdi_create c;

	vdi_create_init(&c, name, devices, features);
	return vdi_create_cfg(&c);
}

static inline int vdi_open_on(int fd, unsigned long req, const char *name)
{
	struct vdi_open o;

	memset(&o, 0, sizeof(o));
	snprintf(o.name, sizeof(o.name), "%s", name);
	return vdi_ioctl(fd, req, &o);
}

/* New endpoint + OPEN_SERVER / OPEN_SECONDARY; returns set fd or -errno. */
static inline int vdi_open_role(unsigned long req, const char *name)
{
	int fd = vdi_open(), r;

	if (fd < 0)
		return fd;
	r = vdi_open_on(fd, req, name);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static inline int vdi_open_server(const char *name)
{
	return vdi_open_role(VDI_IOC_OPEN_SERVER, name);
}

static inline int vdi_open_secondary(const char *name)
{
	return vdi_open_role(VDI_IOC_OPEN_SECONDARY, name);
}

static inline int vdi_get_config(int fd, int64_t timeout_ms,
				 struct vdi_config *out)
{
	struct vdi_get_config g;
	int r;

	memset(&g, 0, sizeof(g));
	g.timeout_ms = timeout_ms;
	r = vdi_ioctl(fd, VDI_IOC_GET_CONFIG, &g);
	if (out)
		*out = g.config;	/* zeroes when the call failed */
	return r;
}

static inline int vdi_begin_config(int fd, uint32_t features, uint32_t align,
				   uint32_t block, uint32_t maxxfer,
				   uint32_t depth)
{
	struct vdi_begin_config b;

	memset(&b, 0, sizeof(b));
	b.features = features;
	b.alignment = align;
	b.block_size = block;
	b.max_transfer_size = maxxfer;
	b.timeout_ms = 1000;
	b.queue_depth = depth;
	return vdi_ioctl(fd, VDI_IOC_BEGIN_CONFIG, &b);
}

static inline int vdi_end_config(int fd, uint64_t area)
{
	struct vdi_end_config e;

	memset(&e, 0, sizeof(e));
	e.area_size = area;
	return vdi_ioctl(fd, VDI_IOC_END_CONFIG, &e);
}

/* Returns the new device fd or -errno; *index gets the device index. */
static inline int vdi_open_device(int setfd, const char *name, uint32_t flags,
				  uint32_t *index)
{
	struct vdi_open_device d;
	int r;

	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "%s", name);
	d.flags = flags;
	r = vdi_ioctl(setfd, VDI_IOC_OPEN_DEVICE, &d);
	if (r >= 0 && index)
		*index = d.index;
	return r;
}

static inline int vdi_batch(int fd, unsigned long req, const void *entries,
			    uint32_t count, int64_t timeout_ms)
{
	struct vdi_batch b;

	memset(&b, 0, sizeof(b));
	b.entries = (uint64_t)(uintptr_t)entries;
	b.count = count;
	b.timeout_ms = timeout_ms;
	return vdi_ioctl(fd, req, &b);
}

static inline int vdi_send(int devfd, const struct vdi_send *e, uint32_t n)
{
	return vdi_batch(devfd, VDI_IOC_SEND, e, n, 0);
}

static inline int vdi_send1(int devfd, uint64_t cookie, uint32_t code,
			    uint32_t size, int64_t pos, uint64_t off)
{
	struct vdi_send s = {
		.cookie = cookie, .code = code, .size = size,
		.position = pos, .buf_offset = off,
	};

	return vdi_send(devfd, &s, 1);
}

static inline int vdi_get(int devfd, struct vdi_command *e, uint32_t n,
			  int64_t timeout_ms)
{
	return vdi_batch(devfd, VDI_IOC_GET_COMMANDS, e, n, timeout_ms);
}

static inline int vdi_complete(int fd, const struct vdi_done *e, uint32_t n)
{
	return vdi_batch(fd, VDI_IOC_COMPLETE, e, n, 0);
}

static inline int vdi_complete1(int fd, uint64_t tag, uint32_t code,
				uint32_t bytes, int64_t pos)
{
	struct vdi_done d = {
		.tag = tag, .completion_code = code,
		.bytes_transferred = bytes, .position = pos,
	};

	return vdi_complete(fd, &d, 1);
}

static inline int vdi_wait(int setfd, struct vdi_completion *e, uint32_t n,
			   int64_t timeout_ms)
{
	return vdi_batch(setfd, VDI_IOC_WAIT_COMPLETIONS, e, n, timeout_ms);
}

/* struct vdi_enter, with submitted/reaped preset to show what was written. */
#define VDI_ENTER_UNWRITTEN	0xdeadbeefU

static inline void vdi_enter_init(struct vdi_enter *e, const void *submit,
				  uint32_t nsubmit, void *reap, uint32_t nreap,
				  int64_t timeout_ms, uint32_t spin_us)
{
	memset(e, 0, sizeof(*e));
	e->submit = (uint64_t)(uintptr_t)submit;
	e->submit_count = nsubmit;
	e->reap = (uint64_t)(uintptr_t)reap;
	e->reap_count = nreap;
	e->timeout_ms = timeout_ms;
	e->spin_us = spin_us;
	e->submitted = VDI_ENTER_UNWRITTEN;
	e->reaped = VDI_ENTER_UNWRITTEN;
}

/* VDI_IOC_ENTER: entries reaped, or -errno; *e holds what was written. */
static inline int vdi_enter(int fd, struct vdi_enter *e)
{
	return vdi_ioctl(fd, VDI_IOC_ENTER, e);
}

static inline int vdi_ctl(int fd, unsigned long req)
{
	struct vdi_ctl c;

	memset(&c, 0, sizeof(c));
	return vdi_ioctl(fd, req, &c);
}

static inline int vdi_close_device(int devfd)
{
	return vdi_ctl(devfd, VDI_IOC_CLOSE_DEVICE);
}

static inline int vdi_abort(int setfd)
{
	return vdi_ctl(setfd, VDI_IOC_SIGNAL_ABORT);
}

/* poll() one fd: revents, 0 on timeout, or -errno. */
static inline int vdi_poll1(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r = poll(&p, 1, timeout_ms);

	if (r < 0)
		return -errno;
	return r ? p.revents : 0;
}

/*
 * Collect completions until @want have arrived or @timeout_ms passed.
 * Returns how many were collected, or the -errno that stopped it when
 * none could be (ETIMEDOUT when the time ran out).  *last_err gets the
 * errno that ended the loop (0 if it ended because @want was reached).
 */
static inline int vdi_wait_n(int setfd, struct vdi_completion *out,
			     unsigned int want, int timeout_ms, int *last_err)
{
	int64_t end = vdi_now_ms() + timeout_ms;
	unsigned int got = 0;
	int err = 0;

	while (got < want) {
		int64_t left = end - vdi_now_ms();
		int r;

		if (left < 0)
			left = 0;
		r = vdi_wait(setfd, out + got, want - got, left);
		if (r < 0) {
			err = r;
			if (r != -ETIMEDOUT || left == 0)
				break;
			continue;
		}
		got += r;
	}
	if (last_err)
		*last_err = err;
	return got ? (int)got : err;
}

/* Find a completion by cookie in an array (NULL if absent). */
static inline const struct vdi_completion *
vdi_find_cookie(const struct vdi_completion *c, unsigned int n, uint64_t cookie)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (c[i].cookie == cookie)
			return &c[i];
	return NULL;
}

/* An anonymous page region with the given protection (NULL on failure). */
static inline void *vdi_pages(size_t npages, int prot)
{
	void *p = mmap(NULL, npages * VDI_PAGE, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Memory shared between a test and its children (not a vdi area). */
static inline void *vdi_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Map the buffer area of a set fd; NULL (errno set) on failure. */
static inline uint8_t *vdi_map(int setfd, size_t len, off_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, setfd,
		       off);

	return p == MAP_FAILED ? NULL : p;
}

/* Payload pattern of a transfer at @pos, byte @i; @salt tells directions apart. */
static inline uint8_t vdi_pat(int64_t pos, uint32_t i, uint8_t salt)
{
	uint64_t x = (uint64_t)pos * 0x9e3779b97f4a7c15ULL + i;

	return (uint8_t)((x >> 7) ^ (x >> 29) ^ i ^ salt);
}

static inline void vdi_fill(uint8_t *p, uint32_t n, int64_t pos, uint8_t salt)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		p[i] = vdi_pat(pos, i, salt);
}

static inline bool vdi_check(const uint8_t *p, uint32_t n, int64_t pos,
			     uint8_t salt)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (p[i] != vdi_pat(pos, i, salt))
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* one process playing both roles                                     */

#define VDI_SESS_MAXDEV 8

struct vdi_sess_opts {
	unsigned int ndev;		/* 1..VDI_SESS_MAXDEV (default 1) */
	uint32_t cfeatures;		/* client VDF_* */
	uint32_t calign;		/* client alignment */
	uint32_t server_timeout;	/* ms */
	uint32_t sfeatures;		/* default VDF_WriteMedia|ReadMedia */
	uint32_t block;			/* default 512 */
	uint32_t align;			/* default 0 */
	uint32_t maxxfer;		/* default 64 KiB */
	uint32_t depth;			/* default 0 (module default) */
	uint64_t area;			/* default 1 MiB */
	bool no_devices;		/* stop after the configuration */
	bool no_map;			/* do not mmap the area */
};

struct vdi_sess {
	char name[VDI_NAME_MAX];
	int cset, sset;
	unsigned int ndev;
	int cdev[VDI_SESS_MAXDEV];
	int sdev[VDI_SESS_MAXDEV];
	struct vdi_config cfg;		/* final config as the client got it */
	uint8_t *smap, *cmap;		/* server's and client's mapping */
	size_t area;
};

static inline void vdi_sess_init(struct vdi_sess *s)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->cset = s->sset = -1;
	for (i = 0; i < VDI_SESS_MAXDEV; i++)
		s->cdev[i] = s->sdev[i] = -1;
}

#define VDI_SESS_FAIL(what, r) do { \
	fprintf(stderr, "# vdi_sess_setup(%s): %s failed: %d (%s)\n", \
		s->name, what, r, strerror(-(r))); \
	return r; \
} while (0)

static inline int vdi_sess_setup(struct vdi_sess *s, const struct vdi_sess_opts *o)
{
	struct vdi_sess_opts d = *o;
	struct vdi_create c;
	struct vdi_config sc;
	unsigned int i;
	int r;

	vdi_sess_init(s);
	if (!d.ndev)
		d.ndev = 1;
	if (!d.sfeatures)
		d.sfeatures = VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA;
	if (!d.block)
		d.block = 512;
	if (!d.maxxfer)
		d.maxxfer = 65536;
	if (!d.area)
		d.area = 1 << 20;
	if (d.ndev > VDI_SESS_MAXDEV)
		return -E2BIG;
	s->ndev = d.ndev;
	vdi_make_name(s->name, "s");

	vdi_create_init(&c, s->name, d.ndev, d.cfeatures);
	c.config.alignment = d.calign;
	c.config.server_timeout = d.server_timeout;
	r = vdi_create_cfg(&c);
	if (r < 0)
		VDI_SESS_FAIL("CREATE", r);
	s->cset = r;
	r = vdi_open_server(s->name);
	if (r < 0)
		VDI_SESS_FAIL("OPEN_SERVER", r);
	s->sset = r;
	r = vdi_get_config(s->sset, 0, &sc);
	if (r < 0)
		VDI_SESS_FAIL("server GET_CONFIG", r);
	r = vdi_begin_config(s->sset, d.sfeatures, d.align, d.block, d.maxxfer,
			     d.depth);
	if (r < 0)
		VDI_SESS_FAIL("BEGIN_CONFIG", r);
	r = vdi_end_config(s->sset, d.area);
	if (r < 0)
		VDI_SESS_FAIL("END_CONFIG", r);
	r = vdi_get_config(s->cset, 1000, &s->cfg);
	if (r < 0)
		VDI_SESS_FAIL("client GET_CONFIG", r);
	s->area = s->cfg.buffer_area_size;
	if (!d.no_devices) {
		for (i = 0; i < d.ndev; i++) {
			char dn[VDI_NAME_MAX];
			uint32_t idx;

			vdi_dev_name(dn, s->name, i);
			r = vdi_open_device(s->cset, dn, 0, &idx);
			if (r < 0)
				VDI_SESS_FAIL("client OPEN_DEVICE", r);
			s->cdev[i] = r;
			if (idx != i)
				VDI_SESS_FAIL("client device index", -EBADE);
			r = vdi_open_device(s->sset, dn, 0, &idx);
			if (r < 0)
				VDI_SESS_FAIL("server OPEN_DEVICE", r);
			s->sdev[i] = r;
			if (idx != i)
				VDI_SESS_FAIL("server device index", -EBADE);
		}
	}
	if (!d.no_map && s->area) {
		s->smap = vdi_map(s->sset, s->area, 0);
		if (!s->smap)
			VDI_SESS_FAIL("server mmap", -errno);
		s->cmap = vdi_map(s->cset, s->area, 0);
		if (!s->cmap)
			VDI_SESS_FAIL("client mmap", -errno);
	}
	return 0;
}

static inline void vdi_sess_close(struct vdi_sess *s)
{
	unsigned int i;

	if (s->smap)
		munmap(s->smap, s->area);
	if (s->cmap)
		munmap(s->cmap, s->area);
	s->smap = s->cmap = NULL;
	for (i = 0; i < VDI_SESS_MAXDEV; i++) {
		vdi_close(&s->cdev[i]);
		vdi_close(&s->sdev[i]);
	}
	vdi_close(&s->sset);
	vdi_close(&s->cset);
}

/* Default session: one device, both directions, 1 MiB area. */
static inline int vdi_sess_simple(struct vdi_sess *s, unsigned int ndev,
				  uint32_t depth)
{
	struct vdi_sess_opts o = { .ndev = ndev, .depth = depth };

	return vdi_sess_setup(s, &o);
}

/* ------------------------------------------------------------------ */
/* child processes and their channels                                 */

struct vdi_chan {
	int rd, wr;
};

struct vdi_proc {
	pid_t pid;
	struct vdi_chan ch;		/* the parent's end */
	int status;			/* wait status once reaped */
	bool reaped;
};

typedef int (*vdi_child_fn)(struct vdi_chan *ch, void *arg);

/*
 * Fork a child running fn(ch, arg); its exit status is fn's return value.
 * The child dies with its parent and after VDI_CHILD_ALARM seconds.
 */
static inline int vdi_spawn(struct vdi_proc *p, vdi_child_fn fn, void *arg)
{
	int p2c[2], c2p[2];

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(p2c, O_CLOEXEC) || pipe2(c2p, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		struct vdi_chan ch = { .rd = p2c[0], .wr = c2p[1] };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(99);
		alarm(VDI_CHILD_ALARM);
		close(p2c[1]);
		close(c2p[0]);
		_exit(fn(&ch, arg));
	}
	close(p2c[0]);
	close(c2p[1]);
	p->ch.rd = c2p[0];
	p->ch.wr = p2c[1];
	return 0;
}

static inline int vdi_chan_send(struct vdi_chan *ch, uint64_t v)
{
	return write(ch->wr, &v, sizeof(v)) == sizeof(v) ? 0 : -EPIPE;
}

/* Receive one value; -ETIMEDOUT, or -EPIPE when the peer is gone. */
static inline int vdi_chan_recv(struct vdi_chan *ch, uint64_t *v, int timeout_ms)
{
	struct pollfd pfd = { .fd = ch->rd, .events = POLLIN };
	uint64_t tmp;
	ssize_t n;
	int r;

	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	n = read(ch->rd, &tmp, sizeof(tmp));
	if (n != sizeof(tmp))
		return -EPIPE;
	if (v)
		*v = tmp;
	return 0;
}

/* Receive and require a given value. */
static inline int vdi_chan_expect(struct vdi_chan *ch, uint64_t want,
				  int timeout_ms)
{
	uint64_t v;
	int r = vdi_chan_recv(ch, &v, timeout_ms);

	if (r)
		return r;
	return v == want ? 0 : -EBADMSG;
}

/*
 * Reap the child within @timeout_ms (killing it when the time is up).
 * Returns its exit code, 128 + signal when it was killed by a signal,
 * or -ETIMEDOUT.
 */
static inline int vdi_reap(struct vdi_proc *p, int timeout_ms)
{
	int64_t end = vdi_now_ms() + timeout_ms;

	if (p->pid <= 0)
		return -ECHILD;
	while (!p->reaped) {
		pid_t r = waitpid(p->pid, &p->status, WNOHANG);

		if (r == p->pid) {
			p->reaped = true;
			break;
		}
		if (r < 0)
			return -errno;
		if (vdi_now_ms() > end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &p->status, 0);
			p->reaped = true;
			return -ETIMEDOUT;
		}
		vdi_sleep_ms(2);
	}
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	if (WIFSIGNALED(p->status))
		return 128 + WTERMSIG(p->status);
	return -EINVAL;
}

/* Teardown: kill and reap a child, close the channel. */
static inline void vdi_proc_kill(struct vdi_proc *p)
{
	if (p->pid > 0 && !p->reaped) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->reaped = true;
	}
	if (p->pid > 0) {
		vdi_close(&p->ch.rd);
		vdi_close(&p->ch.wr);
	}
	p->pid = -1;
}

/* In a child: report a failed check and give a non-zero exit status. */
#define CK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "# child %d: %s:%d: check failed: %s " \
			"(errno %d %s)\n", (int)getpid(), __FILE__, __LINE__, \
			#cond, errno, strerror(errno)); \
		return (__LINE__ % 250) + 1; \
	} \
} while (0)

/* In a child: require a value. */
#define CKEQ(want, expr) do { \
	long long __w = (long long)(want), __g = (long long)(expr); \
	if (__w != __g) { \
		fprintf(stderr, "# child %d: %s:%d: %s: want %lld, got %lld\n", \
			(int)getpid(), __FILE__, __LINE__, #expr, __w, __g); \
		return (__LINE__ % 250) + 1; \
	} \
} while (0)

/* Drop to uid/gid with the given supplementary groups (in a child). */
static inline int vdi_become(uid_t uid, gid_t gid, const gid_t *groups,
			     size_t ngroups)
{
	if (setgroups(ngroups, groups))
		return -errno;
	if (setresgid(gid, gid, gid))
		return -errno;
	if (setresuid(uid, uid, uid))
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------ */
/* a thread blocked in one ioctl                                      */

struct vdi_waiter {
	pthread_t th;
	int fd;
	unsigned long req;
	void *arg;
	int ret;
	int64_t t_start_us, t_end_us;
	int pipe[2];
	bool started;
	unsigned int delay_ms;		/* sleep first (a delayed action) */
};

static inline void *vdi_waiter_main(void *p)
{
	struct vdi_waiter *w = p;
	char c = 1;

	if (w->delay_ms)
		vdi_sleep_ms(w->delay_ms);
	w->t_start_us = vdi_now_us();
	w->ret = vdi_ioctl(w->fd, w->req, w->arg);
	w->t_end_us = vdi_now_us();
	if (write(w->pipe[1], &c, 1) != 1)
		w->ret = -EPIPE;
	return NULL;
}

/* Start a thread doing ioctl(fd, req, arg) once, after @delay_ms. */
static inline int vdi_waiter_start_delayed(struct vdi_waiter *w,
					   unsigned int delay_ms, int fd,
					   unsigned long req, void *arg)
{
	memset(w, 0, sizeof(*w));
	w->delay_ms = delay_ms;
	w->fd = fd;
	w->req = req;
	w->arg = arg;
	if (pipe2(w->pipe, O_CLOEXEC))
		return -errno;
	if (pthread_create(&w->th, NULL, vdi_waiter_main, w))
		return -EAGAIN;
	w->started = true;
	return 0;
}

/* Start a thread doing ioctl(fd, req, arg) once. */
static inline int vdi_waiter_start(struct vdi_waiter *w, int fd,
				   unsigned long req, void *arg)
{
	return vdi_waiter_start_delayed(w, 0, fd, req, arg);
}

/* Has the waiter returned within @timeout_ms?  Joins it if so. */
static inline bool vdi_waiter_done(struct vdi_waiter *w, int timeout_ms)
{
	struct pollfd p = { .fd = w->pipe[0], .events = POLLIN };

	if (!w->started)
		return true;
	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	pthread_join(w->th, NULL);
	close(w->pipe[0]);
	close(w->pipe[1]);
	w->started = false;
	return true;
}

/* A batch argument for a waiter. */
static inline void vdi_batch_init(struct vdi_batch *b, void *entries,
				  uint32_t count, int64_t timeout_ms)
{
	memset(b, 0, sizeof(*b));
	b->entries = (uint64_t)(uintptr_t)entries;
	b->count = count;
	b->timeout_ms = timeout_ms;
}

#endif /* VDI_TEST_UTIL_H */
