/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for libvdi's own tests (selftests/libvdi/).
 *
 * Conventions:
 *  - the two VDI roles live in separate processes: a test forks its peers
 *    (lt_spawn) BEFORE it opens anything of libvdi, so no vdi fd is ever
 *    shared between processes and closing one side really drops its fds;
 *  - a peer is driven over a pipe with fixed-size messages (struct lt_msg):
 *    the remote client (lt_rc_main) and the remote server (lt_rs_main) each
 *    perform one libvdi call per message and answer with its result, so a
 *    test reads as one sequence of steps of both roles;
 *  - every child dies with its parent (PR_SET_PDEATHSIG) and after
 *    LT_CHILD_ALARM seconds; every wait has a timeout;
 *  - children never use ASSERT_*: they return a non-zero exit status (CK,
 *    CKEQ print the failing line) which the parent checks when it reaps;
 *  - names are unique: "lv-<tag>-<pid>-<n>".
 *
 * Compiles as C (gcc) and as C++11 (g++, for the SDK test).
 */
#ifndef LIB_TEST_UTIL_H
#define LIB_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "libvdi.h"
#include "lt_syscalls.h"

/*
 * The 6.1 harness's TEST() wrappers have unused parameters, which -Wextra
 * reports at every test.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#ifdef __cplusplus
/*
 * The 6.1 kselftest harness is C: two spots do not compile as C++11.  Its
 * SIGALRM set-up initialises struct sigaction's sa_sigaction, a glibc macro
 * for a nested union member (a nested designator C++ lacks), and it assigns
 * mmap()'s void * without a cast.  Both are redirected, for the harness
 * only, to equivalents that C++ accepts.  TEST_F() passes a const void *
 * where C++ wants a cast, so the C++ tests use TEST() only.
 */
#undef sa_sigaction
struct lt_sigaction {
	void (*sa_sigaction)(int, siginfo_t *, void *);
	int sa_flags;
	struct sigaction real;		/* an old action, for restoring */
};

static inline int lt_sigaction(int sig, struct lt_sigaction *act,
			       struct lt_sigaction *old)
{
	struct sigaction a, o;
	int r;

	memset(&a, 0, sizeof(a));
	if (act && act->sa_sigaction) {
		a.__sigaction_handler.sa_sigaction = act->sa_sigaction;
		a.sa_flags = act->sa_flags;
		sigemptyset(&a.sa_mask);
	} else if (act) {
		a = act->real;
	}
	r = sigaction(sig, act ? &a : NULL, &o);
	if (!r && old) {
		memset(old, 0, sizeof(*old));
		old->real = o;
	}
	return r;
}

struct lt_voidp {
	void *p;
	template <class T> operator T *() const { return static_cast<T *>(p); }
};

static inline lt_voidp lt_mmap(void *addr, size_t len, int prot, int flags,
			       int fd, off_t off)
{
	lt_voidp r = { mmap(addr, len, prot, flags, fd, off) };

	return r;
}

#define sigaction lt_sigaction
#define mmap lt_mmap
#include "kselftest_harness.h"
#undef mmap
#undef sigaction
#else
#include "kselftest_harness.h"
#endif

/*
 * Tests whose children drop to other uids: /dev/vdi is made 0666 for the
 * test (the rig may have made it 0600, or 0660 for a group) and put back
 * after.
 */
static mode_t lt_node_mode_saved __attribute__((unused));

static inline void lt_node_open_to_all(void)
{
	struct stat st;

	lt_node_mode_saved = 0;
	if (!stat("/dev/vdi", &st)) {
		lt_node_mode_saved = st.st_mode & 07777;
		chmod("/dev/vdi", 0666);
	}
}

static inline void lt_node_restore(void)
{
	if (lt_node_mode_saved)
		chmod("/dev/vdi", lt_node_mode_saved);
}

/* Become @uid (gid @uid), with @group as one more supplementary group (0:
 * none).  0 or -errno. */
static inline int lt_become(uid_t uid, gid_t group)
{
	gid_t groups[2] = { (gid_t)uid, group };

	if (setgroups(group ? 2 : 1, groups) || setresgid(uid, uid, uid) ||
	    setresuid(uid, uid, uid))
		return -errno;
	return 0;
}

#define LT_NAME_MAX		128
#define LT_MAXDEV		64
#define LT_CHILD_ALARM		25	/* seconds: no child lives longer */
#define LT_RPC_MS		10000	/* an answer from a peer */
#define LT_MAXCMD		2048	/* commands a peer remembers */

/* Win32 codes a client may report (not in libvdi.h). */
#define LT_ERROR_INVALID_DATA	13

#define LT_UNUSED __attribute__((unused))

/* ------------------------------------------------------------------ */
/* time, names, payload                                               */

static inline int64_t lt_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t lt_now_ms(void)
{
	return lt_now_us() / 1000;
}

static inline void lt_sleep_ms(unsigned int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static unsigned int lt_name_counter LT_UNUSED;

/* A set name unique to this process (each test runs in its own). */
static inline void lt_name(char *buf, const char *tag)
{
	snprintf(buf, LT_NAME_MAX, "lv-%s-%d-%u", tag, (int)getpid(),
		 lt_name_counter++);
}

/* Device i of a set: device 0 carries the set's name. */
static inline void lt_dev_name(char *buf, const char *set, unsigned int i)
{
	if (i == 0)
		snprintf(buf, LT_NAME_MAX, "%s", set);
	else
		snprintf(buf, LT_NAME_MAX, "%.100s.d%u", set, i);
}

static inline const char *lt_code(int code)
{
	const char *n = vdi_code_name(code);

	return n ? n : "(not a VDI code)";
}

/* The byte a transfer at @pos carries at @i; @salt tells transfers apart. */
static inline uint8_t lt_pat(int64_t pos, uint32_t i, uint8_t salt)
{
	uint64_t x = (uint64_t)pos * 0x9e3779b97f4a7c15ULL + i;

	return (uint8_t)((x >> 7) ^ (x >> 29) ^ i ^ salt);
}

static inline void lt_fill(uint8_t *p, uint32_t n, int64_t pos, uint8_t salt)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		p[i] = lt_pat(pos, i, salt);
}

static inline bool lt_check(const uint8_t *p, uint32_t n, int64_t pos,
			    uint8_t salt)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (p[i] != lt_pat(pos, i, salt))
			return false;
	return true;
}

/* Threads of this process, from /proc/self/status (-1 if unknown). */
static inline int lt_thread_count(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	int n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static inline pid_t lt_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * Whether thread @tid of this process is blocked in system call @nr (the
 * first number of /proc/.../syscall): -1 if /proc cannot tell.
 */
static inline int lt_in_syscall(pid_t tid, long nr)
{
	char path[64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10) == nr && buf[0] != '-';
}

/* Address space in use by this process, from /proc/self/status (bytes). */
static inline uint64_t lt_vm_size(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	unsigned long long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* Whether thread @tid of this process is blocked in ioctl(). */
static inline int lt_in_ioctl(pid_t tid)
{
	return lt_in_syscall(tid, SYS_ioctl);
}

/* The set-per-user limit of the module (16 unless changed). */
static inline int lt_max_sets_per_user(void)
{
	FILE *f = fopen("/sys/module/vdi/parameters/max_sets_per_user", "r");
	int n = 16;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = 16;
		fclose(f);
	}
	return n;
}

/* Check a VDI code; on failure also print both names and the reason. */
#define EXPECT_VD(want, expr) do { \
	int __lt_w = (int)(want), __lt_g = (int)(expr); \
	EXPECT_EQ(__lt_w, __lt_g) { \
		TH_LOG("%s: want %s, got %s; last error: %s", #expr, \
		       lt_code(__lt_w), lt_code(__lt_g), vdi_last_error()); \
	} \
} while (0)

#define ASSERT_VD(want, expr) do { \
	int __lt_w = (int)(want), __lt_g = (int)(expr); \
	ASSERT_EQ(__lt_w, __lt_g) { \
		TH_LOG("%s: want %s, got %s; last error: %s", #expr, \
		       lt_code(__lt_w), lt_code(__lt_g), vdi_last_error()); \
	} \
} while (0)

/* ------------------------------------------------------------------ */
/* peer processes and their messages                                  */

struct lt_msg {
	int32_t op;		/* request: what to do; answer: echoed */
	int32_t ret;		/* answer: the libvdi code (or -errno) */
	int32_t a[6];
	int64_t q[4];		/* q[3] of a request to an RPC peer: wait
				 * that many ms first (a delayed action) */
};

struct lt_peer {
	pid_t pid;
	int rd, wr;		/* this process's ends */
	int status;
	bool reaped;
};

typedef int (*lt_child_fn)(struct lt_peer *self, void *arg);

/* In a child: report a failed check and give a non-zero exit status. */
#define CK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "# child %d: %s:%d: check failed: %s\n", \
			(int)getpid(), __FILE__, __LINE__, #cond); \
		return (__LINE__ % 250) + 1; \
	} \
} while (0)

#define CKEQ(want, expr) do { \
	long long __w = (long long)(want), __g = (long long)(expr); \
	if (__w != __g) { \
		fprintf(stderr, "# child %d: %s:%d: %s: want %lld (%s), " \
			"got %lld (%s); last error: %s\n", (int)getpid(), \
			__FILE__, __LINE__, #expr, __w, lt_code((int)__w), \
			__g, lt_code((int)__g), vdi_last_error()); \
		return (__LINE__ % 250) + 1; \
	} \
} while (0)

static inline void lt_peer_init(struct lt_peer *p)
{
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->rd = p->wr = -1;
}

/*
 * Fork a child running fn(self, arg); its exit status is fn's value.  The
 * child dies with the forking thread and after LT_CHILD_ALARM seconds.
 */
static inline int lt_spawn(struct lt_peer *p, lt_child_fn fn, void *arg)
{
	int p2c[2], c2p[2];

	lt_peer_init(p);
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(p2c, O_CLOEXEC))
		return -errno;
	if (pipe2(c2p, O_CLOEXEC)) {
		close(p2c[0]);
		close(p2c[1]);
		return -errno;
	}
	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		struct lt_peer self;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(99);
		alarm(LT_CHILD_ALARM);
		close(p2c[1]);
		close(c2p[0]);
		lt_peer_init(&self);
		self.pid = getpid();
		self.rd = p2c[0];
		self.wr = c2p[1];
		_exit(fn(&self, arg));
	}
	close(p2c[0]);
	close(c2p[1]);
	p->rd = c2p[0];
	p->wr = p2c[1];
	return 0;
}

static inline int lt_send(struct lt_peer *p, const struct lt_msg *m)
{
	ssize_t n = write(p->wr, m, sizeof(*m));

	return n == (ssize_t)sizeof(*m) ? 0 : -EPIPE;
}

/* One message; -ETIMEDOUT, or -EPIPE once the peer is gone. */
static inline int lt_recv(struct lt_peer *p, struct lt_msg *m, int timeout_ms)
{
	struct pollfd pfd;
	int64_t end = lt_now_ms() + timeout_ms;
	size_t got = 0;
	ssize_t n;
	int r;

	pfd.fd = p->rd;
	pfd.events = POLLIN;
	while (got < sizeof(*m)) {
		int64_t left = timeout_ms < 0 ? -1 : end - lt_now_ms();

		if (timeout_ms >= 0 && left < 0)
			left = 0;
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ETIMEDOUT;
		n = read(p->rd, (char *)m + got, sizeof(*m) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

static inline void lt_msg_init(struct lt_msg *m, int op)
{
	memset(m, 0, sizeof(*m));
	m->op = op;
}

/* Send a request and wait for its answer, which replaces *m. */
static inline int lt_call(struct lt_peer *p, struct lt_msg *m, int timeout_ms)
{
	int op = m->op, r = lt_send(p, m);

	if (r)
		return r;
	r = lt_recv(p, m, timeout_ms);
	if (!r && m->op != op)
		return -EBADMSG;
	return r;
}

/*
 * Reap the child within @timeout_ms (killing it when the time is up).
 * Its exit code, 128 + signal, or -ETIMEDOUT.
 */
static inline int lt_reap(struct lt_peer *p, int timeout_ms)
{
	int64_t end = lt_now_ms() + timeout_ms;

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
		if (lt_now_ms() > end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &p->status, 0);
			p->reaped = true;
			return -ETIMEDOUT;
		}
		lt_sleep_ms(2);
	}
	if (WIFEXITED(p->status))
		return WEXITSTATUS(p->status);
	if (WIFSIGNALED(p->status))
		return 128 + WTERMSIG(p->status);
	return -EINVAL;
}

static inline void lt_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Teardown: kill and reap a child (if still there), close the pipes. */
static inline void lt_peer_kill(struct lt_peer *p)
{
	if (p->pid > 0 && !p->reaped) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->reaped = true;
	}
	lt_close_fd(&p->rd);
	lt_close_fd(&p->wr);
}

/*
 * Ask an RPC peer to finish (LT_OP_EXIT), then reap it: its exit status,
 * or a negative value if it had to be killed.
 */
#define LT_OP_EXIT	1

static inline int lt_peer_finish(struct lt_peer *p, int timeout_ms)
{
	struct lt_msg m;
	int r;

	if (p->pid <= 0)
		return -ECHILD;
	if (!p->reaped) {
		lt_msg_init(&m, LT_OP_EXIT);
		lt_call(p, &m, timeout_ms);
		lt_close_fd(&p->wr);	/* EOF: a busy peer ends too */
	}
	r = lt_reap(p, timeout_ms);
	lt_peer_kill(p);
	return r;
}

/* ------------------------------------------------------------------ */
/* server side: commands and their completion routine                 */

/*
 * One command the server sends, and what its completion routine saw.  The
 * VDS_Command comes first: the routine finds its record from the pointer
 * it is given, never from completionContext (which it only records).
 */
struct lt_cmd {
	VDS_Command cmd;
	int id;
	int dev;
	uint8_t salt;
	uint32_t bufsize;		/* allocated buffer to free, or 0 */
	vdi_server_set *set;
	/* what the routine saw */
	int calls;
	int seq;			/* completion order, from 1 */
	int in_send;			/* ran inside lt_send_cmd, same thread */
	pthread_t thread;
	VDS_Command *seen;
	uint8_t *ctx_seen;
	int32_t code, bytes;
	int64_t pos;
	int data_ok;			/* Read: pattern found (1) or not (0) */
	int free_ret;
};

struct lt_log {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	void (*hook)(struct lt_cmd *c);	/* extra work in the routine */
};

static struct lt_log lt_log_g LT_UNUSED = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL
};
static __thread int lt_in_send LT_UNUSED;

static inline uint8_t *lt_ctx_of(const struct lt_cmd *c)
{
	return (uint8_t *)(uintptr_t)(0xc0de0000u + (unsigned int)c->id);
}

static void lt_routine(VDS_Command *vc) LT_UNUSED;
static void lt_routine(VDS_Command *vc)
{
	struct lt_cmd *c = (struct lt_cmd *)vc;
	void (*hook)(struct lt_cmd *);

	c->thread = pthread_self();
	c->in_send = lt_in_send;
	c->seen = vc;
	c->ctx_seen = vc->completionContext;
	c->code = vc->completionCode;
	c->bytes = vc->bytesTransferred;
	c->pos = vc->outPosition;
	if (vc->commandCode == VDC_Read && vc->buffer)
		c->data_ok = lt_check(vc->buffer, (uint32_t)vc->bytesTransferred,
				      vc->inPosition, c->salt);
	if (c->bufsize) {
		c->free_ret = vdi_server_free_buffer(c->set, vc->buffer,
						     c->bufsize);
		c->bufsize = 0;
	}
	pthread_mutex_lock(&lt_log_g.mu);
	hook = lt_log_g.hook;
	pthread_mutex_unlock(&lt_log_g.mu);
	if (hook)
		hook(c);
	pthread_mutex_lock(&lt_log_g.mu);
	c->seq = ++lt_log_g.calls;
	c->calls++;
	pthread_cond_broadcast(&lt_log_g.cv);
	pthread_mutex_unlock(&lt_log_g.mu);
}

/* A command record, ready to send (no buffer). */
static inline void lt_cmd_init(struct lt_cmd *c, int id, int code, int32_t size,
			       int64_t pos)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->data_ok = -1;
	c->free_ret = -1;
	c->cmd.commandCode = code;
	c->cmd.size = size;
	c->cmd.inPosition = pos;
	c->cmd.outPosition = -12345;
	c->cmd.completionCode = -1;
	c->cmd.bytesTransferred = -1;
	c->cmd.completionRoutine = (uint8_t *)(uintptr_t)lt_routine;
	c->cmd.completionContext = lt_ctx_of(c);
}

/* SendCommand, telling the routine whether it runs inside this call. */
static inline int lt_send_cmd(vdi_server_device *dev, struct lt_cmd *c)
{
	int r;

	lt_in_send = 1;
	r = vdi_server_send_command(dev, &c->cmd);
	lt_in_send = 0;
	return r;
}

static inline int lt_calls(void)
{
	int n;

	pthread_mutex_lock(&lt_log_g.mu);
	n = lt_log_g.calls;
	pthread_mutex_unlock(&lt_log_g.mu);
	return n;
}

/* Wait until the routines ran @n times in all: 0 or -ETIMEDOUT. */
static inline int lt_wait_calls(int n, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lt_log_g.mu);
	while (lt_log_g.calls < n && r == 0)
		r = pthread_cond_timedwait(&lt_log_g.cv, &lt_log_g.mu, &ts);
	r = lt_log_g.calls >= n ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&lt_log_g.mu);
	return r;
}

static inline void lt_set_hook(void (*hook)(struct lt_cmd *c))
{
	pthread_mutex_lock(&lt_log_g.mu);
	lt_log_g.hook = hook;
	pthread_mutex_unlock(&lt_log_g.mu);
}

/* ------------------------------------------------------------------ */
/* the completion agent on a thread of its own                        */

struct lt_agent {
	pthread_t th;
	vdi_server_set *set;
	int ret;
	pid_t tid;
	pthread_t self;
	int pipe[2];
	bool started;
	int64_t returned_us;
	int calls_at_return;		/* routines run when it returned */
};

static void *lt_agent_main(void *arg)
{
	struct lt_agent *a = (struct lt_agent *)arg;
	char c = 1;

	__atomic_store_n(&a->tid, lt_gettid(), __ATOMIC_RELEASE);
	a->ret = vdi_server_execute_completion_agent(a->set);
	a->returned_us = lt_now_us();
	a->calls_at_return = lt_calls();
	if (write(a->pipe[1], &c, 1) != 1)
		a->ret = -EPIPE;
	return NULL;
}

/* Has the agent returned within @timeout_ms?  Joins it if so. */
static inline bool lt_agent_done(struct lt_agent *a, int timeout_ms)
{
	struct pollfd p;

	if (!a->started)
		return true;
	p.fd = a->pipe[0];
	p.events = POLLIN;
	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	pthread_join(a->th, NULL);
	close(a->pipe[0]);
	close(a->pipe[1]);
	a->started = false;
	return true;
}

/*
 * Run ExecuteCompletionAgent on a new thread and wait until it blocks in
 * the module (or returned).  0, or -ETIMEDOUT / -errno.
 */
static inline int lt_agent_start(struct lt_agent *a, vdi_server_set *set)
{
	int64_t end;
	pid_t tid;

	memset(a, 0, sizeof(*a));
	a->set = set;
	a->ret = -1;
	if (pipe2(a->pipe, O_CLOEXEC))
		return -errno;
	if (pthread_create(&a->th, NULL, lt_agent_main, a))
		return -EAGAIN;
	a->self = a->th;
	a->started = true;
	end = lt_now_ms() + 3000;
	while (lt_now_ms() < end) {
		struct pollfd p;

		p.fd = a->pipe[0];
		p.events = POLLIN;
		if (poll(&p, 1, 0) == 1)
			return 0;		/* it returned already */
		tid = __atomic_load_n(&a->tid, __ATOMIC_ACQUIRE);
		if (tid) {
			int r = lt_in_ioctl(tid);

			if (r == 1)
				return 0;
			if (r < 0) {		/* /proc cannot tell */
				lt_sleep_ms(100);
				return 0;
			}
		}
		lt_sleep_ms(1);
	}
	return -ETIMEDOUT;
}

/* ------------------------------------------------------------------ */
/* the remote client: one libvdi client call per message              */

enum {
	RC_CREATE = 10,	/* a0 ndev, a1 features, a2 prefix, a3 align,
			 * q0 serverTimeOut, a4: 1 = CreateEx with instance
			 * "" -> ret */
	RC_GETCONFIG,	/* q0 timeout -> ret; a0 features, a1 alignment,
			 * a2 blockSize, a3 maxTransferSize, a4 bufferAreaSize,
			 * a5 maxIODepth, q0 elapsed us, q1 prefixZoneSize,
			 * q2 deviceCount, q3 serverTimeOut */
	RC_OPEN,	/* a0 device index, -1: all -> ret */
	RC_GET,		/* a0 dev, q0 timeout, a1 salt to check a Write
			 * with (-1: none) -> ret; a0 code, a1 size, a2 slot,
			 * a3 pattern ok (1/0, -1 n/a), a4 buffer % 64 KiB,
			 * a5 buffer is NULL, q0 position, q1 elapsed us;
			 * a2 > 0: write 0xab over the a2 bytes before the
			 * buffer (the client's prefix zone) */
	RC_COMPLETE,	/* a0 slot, a1 code, a2 bytes, a3 salt to fill a Read
			 * with (-1: none), a4 device to use (-1: its own),
			 * a5 1: again, though it was completed, q0 position
			 * -> ret */
	RC_SERVE,	/* a0 dev, a1 at most, a2 Write salt (-1: none),
			 * a3 Read salt (-1: none), q0 timeout: get, check,
			 * complete (0, size, position + 7) until CLOSE,
			 * ABORT, TIMEOUT or a1 done -> ret last code;
			 * a0 served, a1 bad patterns */
	RC_ABORT,	/* -> ret */
	RC_CLOSE,	/* -> ret */
	RC_SECONDARY,	/* a0 0: OpenInSecondary, 1: ...Ex("MSSQLSERVER"),
			 * 2: ...Ex(""), 3: ...Ex(NULL) -> ret */
	RC_MAP,		/* a0 handle, a1 size, a2 salt to check (-1: none),
			 * a3 salt to fill with (-1: none), q0 position:
			 * MapBufferHandle -> ret; a0 pattern ok */
	RC_ACCESS,	/* a0 mode, a1 gid: vdi_client_set_access -> ret */
	RC_TURN,	/* vdi_client_complete_and_get on device a0: complete
			 * the first a1 commands it holds (lowest slots first;
			 * code a2; bytes: the size of a Read/Write, else 0;
			 * position + 7), one entry at a4 (-1: none) made bad
			 * the way a5 says (LT_BAD_*), then take up to a3,
			 * q0 timeout -> ret; a0 done, a1 got, a2 slot of the
			 * first taken, a3 its code, a4 commands it still
			 * holds, q0 first taken's position, q1 last's, q2
			 * elapsed us */
	RC_FORBID,	/* a0: an ioctl request's low 32 bits, which fails
			 * with ENOSYS from now on (lt_forbid_ioctl) -> ret */
	RC_SERVE_TURNS,	/* serve device a0 with vdi_client_complete_and_get,
			 * a1 at most per turn, until CLOSE, ABORT, TIMEOUT
			 * (q0 each turn); a2: LT_SERVE_* flags; q1 > 0: count
			 * this process's system calls from command q1 on to
			 * command q2 -> ret last code; a0 served, a1 turns,
			 * a2 order broken (LT_SERVE_ORDER), a3 system calls
			 * counted (-errno: could not count), a4 commands in
			 * that window */
};

/* RC_TURN's bad entries. */
#define LT_BAD_POINTER	1	/* not a command of the device */
#define LT_BAD_BYTES	2	/* bytes over the command's size */
#define LT_BAD_TWICE	3	/* the entry before, again */

/* RC_SERVE_TURNS flags */
#define LT_SERVE_ORDER	1	/* positions of each parity must increase */

struct lt_rc {
	const char *name;
	vdi_client_set *set;
	vdi_client_device *dev[LT_MAXDEV];
	VDC_Command *held[LT_MAXCMD];
	int held_dev[LT_MAXCMD];
	bool gone[LT_MAXCMD];		/* completed (or ended by an abort) */
};

static inline int lt_rc_slot(struct lt_rc *rc, VDC_Command *c, int dev)
{
	int i;

	for (i = 0; i < LT_MAXCMD; i++)
		if (!rc->held[i] || rc->gone[i]) {
			rc->held[i] = c;
			rc->held_dev[i] = dev;
			rc->gone[i] = false;
			return i;
		}
	return -1;
}

/* The completion a client reports for @c: done, its size, position + 7. */
static inline vdi_client_completion lt_rc_completion(VDC_Command *c,
						     uint32_t code)
{
	vdi_client_completion d;

	d.cmd = c;
	d.completionCode = code;
	d.bytesTransferred = c->commandCode == VDC_Read ||
			     c->commandCode == VDC_Write ? (uint32_t)c->size : 0;
	d.position = c->position + 7;
	return d;
}

#define LT_TURN_MAX	256	/* entries of one RC_TURN */

static inline void lt_rc_turn(struct lt_rc *rc, struct lt_msg *m)
{
	vdi_client_completion c[LT_TURN_MAX];
	VDC_Command *got[LT_TURN_MAX], fake;
	int slot[LT_TURN_MAX];
	unsigned int done = 0, ngot = 0;
	int d = m->a[0], want = m->a[1], bad = m->a[4], n = 0, i, held = 0;
	int64_t t0;

	memset(&fake, 0, sizeof(fake));
	for (i = 0; i <= LT_MAXCMD && n < want && n < LT_TURN_MAX; i++) {
		/* An entry that names no command of its own goes at @bad. */
		if (n == bad && m->a[5] != LT_BAD_BYTES) {
			c[n] = lt_rc_completion(&fake, (uint32_t)m->a[2]);
			if (m->a[5] == LT_BAD_TWICE && n)
				c[n] = c[n - 1];
			slot[n++] = -1;
			if (n == want)
				break;
		}
		if (i == LT_MAXCMD)
			break;
		if (!rc->held[i] || rc->gone[i] || rc->held_dev[i] != d)
			continue;
		c[n] = lt_rc_completion(rc->held[i], (uint32_t)m->a[2]);
		if (n == bad)	/* LT_BAD_BYTES */
			c[n].bytesTransferred = (uint32_t)rc->held[i]->size + 1;
		slot[n++] = i;
	}
	t0 = lt_now_us();
	m->ret = vdi_client_complete_and_get(rc->dev[d], c, (unsigned int)n,
					     &done, m->q[0], got,
					     (unsigned int)m->a[3], &ngot);
	m->q[2] = lt_now_us() - t0;
	for (i = 0; i < (int)done; i++)
		if (slot[i] >= 0)
			rc->gone[slot[i]] = true;
	/* The refused one is gone only when the set was aborted. */
	if ((int)done < n && slot[done] >= 0 && m->ret == VD_E_ABORT)
		rc->gone[slot[done]] = true;
	m->a[0] = (int32_t)done;
	m->a[1] = (int32_t)ngot;
	m->a[2] = -1;
	for (i = 0; i < (int)ngot; i++) {
		int s = lt_rc_slot(rc, got[i], d);

		if (!i) {
			m->a[2] = s;
			m->a[3] = got[i]->commandCode;
			m->q[0] = got[i]->position;
		}
		m->q[1] = got[i]->position;
	}
	for (i = 0; i < LT_MAXCMD; i++)
		held += rc->held[i] && !rc->gone[i] && rc->held_dev[i] == d;
	m->a[4] = held;
}

/*
 * Serve a device in turns: each turn completes what the last one took and
 * takes the next ones, as a client that is done with a batch does.
 */
static inline void lt_rc_serve_turns(struct lt_rc *rc, struct lt_msg *m)
{
	vdi_client_completion c[LT_TURN_MAX];
	VDC_Command *got[LT_TURN_MAX];
	unsigned int done, ngot = 0, i, max = (unsigned int)m->a[1];
	int64_t served = 0, last[2] = { INT64_MIN, INT64_MIN };
	int d = m->a[0], turns = 0, broken = 0, fd = -1, r;
	int64_t from = m->q[1], to = m->q[2], counted = 0, window = 0;

	if (max > LT_TURN_MAX)
		max = LT_TURN_MAX;
	m->a[3] = 0;
	if (from > 0) {
		fd = lt_syscall_counter(0, true);
		if (fd < 0)
			m->a[3] = fd;
	}
	for (;;) {
		for (i = 0; i < ngot; i++)
			c[i] = lt_rc_completion(got[i], 0);
		/* The window: the counter runs from the turn that completes
		 * command @from to the one that completes command @to. */
		if (fd >= 0 && served >= from && !window && served < to) {
			window = served;
			lt_counter_enable(fd, true);
		}
		if (fd >= 0 && window > 0 && served >= to && !counted) {
			lt_counter_enable(fd, false);
			counted = lt_counter_read(fd);
			window = served - window;
		}
		r = vdi_client_complete_and_get(rc->dev[d], c, ngot, &done,
						m->q[0], got, max, &ngot);
		turns++;
		if (r != NOERROR)
			break;
		for (i = 0; i < ngot; i++) {
			int64_t pos = got[i]->position;
			int odd = (int)(pos & 1);

			if (m->a[2] & LT_SERVE_ORDER) {
				if (pos <= last[odd])
					broken++;
				last[odd] = pos;
			}
		}
		served += ngot;
	}
	if (fd >= 0) {
		if (!counted)
			m->a[3] = -ERANGE;	/* the window was not reached */
		close(fd);
	}
	m->ret = r;
	m->a[0] = (int32_t)served;
	m->a[1] = turns;
	m->a[2] = broken;
	if (counted)
		m->a[3] = (int32_t)counted;
	m->a[4] = (int32_t)window;
}

static inline void lt_rc_do(struct lt_rc *rc, struct lt_msg *m)
{
	VDConfig cfg;
	VDC_Command *c;
	int64_t t0;
	int i, r, d;

	switch (m->op) {
	case RC_CREATE:
		memset(&cfg, 0, sizeof(cfg));
		cfg.deviceCount = (uint32_t)m->a[0];
		cfg.features = (uint32_t)m->a[1];
		cfg.prefixZoneSize = (uint32_t)m->a[2];
		cfg.alignment = (uint32_t)m->a[3];
		cfg.serverTimeOut = (uint32_t)m->q[0];
		if (m->a[4])
			m->ret = vdi_client_create_ex(rc->set, "", rc->name,
						      &cfg);
		else
			m->ret = vdi_client_create(rc->set, rc->name, &cfg);
		break;
	case RC_GETCONFIG:
		memset(&cfg, 0, sizeof(cfg));
		t0 = lt_now_us();
		m->ret = vdi_client_get_configuration(rc->set, m->q[0], &cfg);
		m->q[0] = lt_now_us() - t0;
		m->a[0] = (int32_t)cfg.features;
		m->a[1] = (int32_t)cfg.alignment;
		m->a[2] = (int32_t)cfg.blockSize;
		m->a[3] = (int32_t)cfg.maxTransferSize;
		m->a[4] = (int32_t)cfg.bufferAreaSize;
		m->a[5] = (int32_t)cfg.maxIODepth;
		m->q[1] = cfg.prefixZoneSize;
		m->q[2] = cfg.deviceCount;
		m->q[3] = cfg.serverTimeOut;
		break;
	case RC_OPEN: {
		char dn[LT_NAME_MAX];
		int from = m->a[0] < 0 ? 0 : m->a[0];
		int to = m->a[0] < 0 ? LT_MAXDEV : m->a[0] + 1;

		r = NOERROR;
		for (i = from; i < to && r == NOERROR; i++) {
			if (rc->dev[i] && m->a[0] < 0)
				continue;
			vdi_client_device *dev = NULL;

			lt_dev_name(dn, rc->name, (unsigned int)i);
			r = vdi_client_open_device(rc->set, dn, &dev);
			if (r == NOERROR)
				rc->dev[i] = dev;
			if (m->a[0] < 0 && r == VD_E_OPEN) {
				r = NOERROR;	/* opened them all */
				break;
			}
		}
		m->ret = r;
		break;
	}
	case RC_GET:
		d = m->a[0];
		t0 = lt_now_us();
		c = NULL;
		m->ret = vdi_client_get_command(rc->dev[d], m->q[0], &c);
		m->q[1] = lt_now_us() - t0;
		m->a[3] = -1;
		if (m->ret == NOERROR && c) {
			if (m->a[2] > 0 && c->buffer)
				memset(c->buffer - m->a[2], 0xab,
				       (size_t)m->a[2]);
			if (c->commandCode == VDC_Write && m->a[1] >= 0)
				m->a[3] = lt_check(c->buffer, (uint32_t)c->size,
						   c->position,
						   (uint8_t)m->a[1]);
			m->a[0] = c->commandCode;
			m->a[1] = c->size;
			m->a[2] = lt_rc_slot(rc, c, d);
			m->a[4] = (int32_t)((uintptr_t)c->buffer % 65536);
			m->a[5] = c->buffer == NULL;
			m->q[0] = c->position;
		} else {
			m->a[5] = c == NULL;
		}
		break;
	case RC_COMPLETE: {
		uint32_t fill;

		i = m->a[0];
		if (i < 0 || i >= LT_MAXCMD || !rc->held[i] ||
		    (rc->gone[i] && m->a[5] != 1)) {
			m->ret = -EINVAL;
			break;
		}
		c = rc->held[i];
		d = m->a[4] >= 0 ? m->a[4] : rc->held_dev[i];
		fill = (uint32_t)m->a[2];
		if (fill > (uint32_t)c->size)
			fill = (uint32_t)c->size;
		if (m->a[3] >= 0 && c->buffer && !rc->gone[i])
			lt_fill(c->buffer, fill, c->position, (uint8_t)m->a[3]);
		m->ret = vdi_client_complete_command(rc->dev[d], c,
						     (uint32_t)m->a[1],
						     (uint32_t)m->a[2],
						     m->q[0]);
		if (d == rc->held_dev[i] &&
		    (m->ret == NOERROR || m->ret == VD_E_ABORT))
			rc->gone[i] = true;
		break;
	}
	case RC_SERVE: {
		int served = 0, bad = 0;

		d = m->a[0];
		for (;;) {
			if (m->a[1] >= 0 && served >= m->a[1]) {
				r = NOERROR;
				break;
			}
			c = NULL;
			r = vdi_client_get_command(rc->dev[d], m->q[0], &c);
			if (r != NOERROR)
				break;
			if (c->commandCode == VDC_Write && m->a[2] >= 0 &&
			    !lt_check(c->buffer, (uint32_t)c->size,
				      c->position, (uint8_t)m->a[2]))
				bad++;
			if (c->commandCode == VDC_Read && m->a[3] >= 0)
				lt_fill(c->buffer, (uint32_t)c->size,
					c->position, (uint8_t)m->a[3]);
			r = vdi_client_complete_command(rc->dev[d], c, 0,
				c->commandCode == VDC_Read ||
				c->commandCode == VDC_Write ?
				(uint32_t)c->size : 0, c->position + 7);
			if (r != NOERROR)
				break;
			served++;
		}
		m->ret = r;
		m->a[0] = served;
		m->a[1] = bad;
		break;
	}
	case RC_ABORT:
		m->ret = vdi_client_signal_abort(rc->set);
		break;
	case RC_CLOSE:
		m->ret = vdi_client_close(rc->set);
		memset(rc->dev, 0, sizeof(rc->dev));
		memset(rc->held, 0, sizeof(rc->held));
		memset(rc->gone, 0, sizeof(rc->gone));
		break;
	case RC_SECONDARY:
		if (m->a[0] == 0)
			m->ret = vdi_client_open_in_secondary(rc->set,
							      rc->name);
		else
			m->ret = vdi_client_open_in_secondary_ex(rc->set,
				m->a[0] == 1 ? "MSSQLSERVER" :
				m->a[0] == 2 ? "" : NULL, rc->name);
		break;
	case RC_MAP: {
		uint8_t *b = NULL;

		m->ret = vdi_client_map_buffer_handle(rc->set,
						      (unsigned int)m->a[0], &b);
		m->a[0] = -1;
		if (m->ret == NOERROR && m->a[2] >= 0)
			m->a[0] = lt_check(b, (uint32_t)m->a[1], m->q[0],
					   (uint8_t)m->a[2]);
		if (m->ret == NOERROR && m->a[3] >= 0)
			lt_fill(b, (uint32_t)m->a[1], m->q[0],
				(uint8_t)m->a[3]);
		break;
	}
	case RC_ACCESS:
		m->ret = vdi_client_set_access(rc->set, (unsigned int)m->a[0],
					       m->a[1]);
		break;
	case RC_TURN:
		lt_rc_turn(rc, m);
		break;
	case RC_SERVE_TURNS:
		lt_rc_serve_turns(rc, m);
		break;
	case RC_FORBID:
		m->ret = lt_forbid_ioctl((uint32_t)m->a[0]);
		break;
	default:
		m->ret = -ENOSYS;
		break;
	}
}

/* Child body: a client driven by messages; arg is the set's name. */
static int lt_rc_main(struct lt_peer *self, void *arg) LT_UNUSED;
static int lt_rc_main(struct lt_peer *self, void *arg)
{
	struct lt_rc *rc = (struct lt_rc *)calloc(1, sizeof(*rc));
	struct lt_msg m;

	if (!rc)
		return 90;
	rc->name = (const char *)arg;
	rc->set = vdi_client_set_new();
	if (!rc->set)
		return 91;
	while (lt_recv(self, &m, -1) == 0) {
		if (m.op == LT_OP_EXIT) {
			lt_send(self, &m);
			break;
		}
		if (m.q[3] > 0)
			lt_sleep_ms((unsigned int)m.q[3]);
		m.q[3] = 0;
		lt_rc_do(rc, &m);
		if (lt_send(self, &m))
			break;
	}
	vdi_client_set_free(rc->set);
	free(rc);
	return 0;
}

/* Parent side helpers for the remote client. */
static inline int lt_rc_call(struct lt_peer *p, int op, int a0, int a1, int a2,
			     int a3, int64_t q0, struct lt_msg *out)
{
	struct lt_msg m;
	int r;

	lt_msg_init(&m, op);
	m.a[0] = a0;
	m.a[1] = a1;
	m.a[2] = a2;
	m.a[3] = a3;
	m.a[4] = -1;
	m.q[0] = q0;
	if (op == RC_CREATE)
		m.a[4] = 0;
	r = lt_call(p, &m, LT_RPC_MS);
	if (out)
		*out = m;
	if (r)
		return r;
	return m.ret;
}

static inline int lt_rc_create(struct lt_peer *p, unsigned int ndev,
			       uint32_t features, uint32_t prefix,
			       uint32_t align, uint32_t timeout)
{
	return lt_rc_call(p, RC_CREATE, (int)ndev, (int)features, (int)prefix,
			  (int)align, timeout, NULL);
}

static inline int lt_rc_get(struct lt_peer *p, int dev, int64_t timeout,
			    int wsalt, struct lt_msg *out)
{
	return lt_rc_call(p, RC_GET, dev, wsalt, 0, 0, timeout, out);
}

static inline int lt_rc_complete(struct lt_peer *p, int slot, uint32_t code,
				 uint32_t bytes, int64_t pos, int fill_salt)
{
	return lt_rc_call(p, RC_COMPLETE, slot, (int)code, (int)bytes,
			  fill_salt, pos, NULL);
}

/* Serve device @dev until it ends (or @max commands): the last code. */
static inline int lt_rc_serve(struct lt_peer *p, int dev, int max, int wsalt,
			      int rsalt, int64_t timeout, struct lt_msg *out)
{
	return lt_rc_call(p, RC_SERVE, dev, max, wsalt, rsalt, timeout, out);
}

/* ------------------------------------------------------------------ */
/* the server in this process: set-up of a complete pair              */

struct lt_pair_opts {
	unsigned int ndev;		/* default 1 */
	uint32_t cfeatures;		/* client VDF_* */
	uint32_t prefix;		/* client prefix zone */
	uint32_t calign;		/* client alignment */
	uint32_t server_timeout;	/* client serverTimeOut, ms */
	uint32_t sfeatures;		/* default WriteMedia | ReadMedia */
	uint32_t align;			/* server alignment (0) */
	uint32_t block;			/* default 512 */
	uint32_t maxxfer;		/* default 64 KiB */
	uint32_t depth;			/* queue depth (0: module default) */
	uint32_t req_size, req_align, req_count;	/* RequestBuffers */
	bool no_client_devices;		/* the client opens none */
	bool no_devices;		/* neither side opens devices */
	bool no_agent;
};

struct lt_pair {
	char name[LT_NAME_MAX];
	struct lt_peer rc;		/* the remote client */
	vdi_server_set *set;
	vdi_server_device *dev[LT_MAXDEV];
	unsigned int ndev;
	struct lt_agent agent;
	VDConfig cfg;			/* the server's, after EndConfiguration */
	struct lt_msg ccfg;		/* the client's GetConfiguration */
};

#define LT_PAIR_FAIL(what, r) do { \
	fprintf(stderr, "# lt_pair_setup(%s): %s failed: %d (%s): %s\n", \
		p->name, what, (int)(r), lt_code((int)(r)), \
		vdi_last_error()); \
	return -1; \
} while (0)

/* Fork the remote client; nothing of libvdi is open in this process yet. */
static inline int lt_pair_spawn(struct lt_pair *p, const char *tag)
{
	memset(p, 0, sizeof(*p));
	lt_peer_init(&p->rc);
	lt_name(p->name, tag);
	return lt_spawn(&p->rc, lt_rc_main, p->name);
}

/* After lt_pair_spawn(): create, configure, open devices, start the agent. */
static inline int lt_pair_configure(struct lt_pair *p,
				    const struct lt_pair_opts *o)
{
	struct lt_pair_opts d = *o;
	unsigned int i;
	int r;

	if (!d.ndev)
		d.ndev = 1;
	if (!d.sfeatures)
		d.sfeatures = VDF_WriteMedia | VDF_ReadMedia;
	if (!d.block)
		d.block = 512;
	if (!d.maxxfer)
		d.maxxfer = 65536;
	p->ndev = d.ndev;
	r = lt_rc_create(&p->rc, d.ndev, d.cfeatures, d.prefix, d.calign,
			 d.server_timeout);
	if (r)
		LT_PAIR_FAIL("client Create", r);
	r = vdi_server_open(&p->set, NULL, p->name);
	if (r)
		LT_PAIR_FAIL("Open", r);
	if (d.depth) {
		r = vdi_server_set_queue_depth(p->set, d.depth);
		if (r)
			LT_PAIR_FAIL("set_queue_depth", r);
	}
	r = vdi_server_begin_configuration(p->set, d.sfeatures, d.align,
					   d.block, d.maxxfer, 1000);
	if (r)
		LT_PAIR_FAIL("BeginConfiguration", r);
	if (d.req_count) {
		r = vdi_server_request_buffers(p->set, d.req_size, d.req_align,
					       d.req_count);
		if (r)
			LT_PAIR_FAIL("RequestBuffers", r);
	}
	r = vdi_server_end_configuration(p->set);
	if (r)
		LT_PAIR_FAIL("EndConfiguration", r);
	r = vdi_server_get_configuration(p->set, &p->cfg);
	if (r)
		LT_PAIR_FAIL("server GetConfiguration", r);
	r = lt_rc_call(&p->rc, RC_GETCONFIG, 0, 0, 0, 0, 5000, &p->ccfg);
	if (r)
		LT_PAIR_FAIL("client GetConfiguration", r);
	if (!d.no_devices) {
		if (!d.no_client_devices) {
			r = lt_rc_call(&p->rc, RC_OPEN, -1, 0, 0, 0, 0, NULL);
			if (r)
				LT_PAIR_FAIL("client OpenDevice", r);
		}
		for (i = 0; i < d.ndev; i++) {
			char dn[LT_NAME_MAX];

			lt_dev_name(dn, p->name, i);
			r = vdi_server_open_device(p->set, dn, &p->dev[i]);
			if (r)
				LT_PAIR_FAIL("server OpenDevice", r);
		}
	}
	if (!d.no_agent) {
		r = lt_agent_start(&p->agent, p->set);
		if (r)
			LT_PAIR_FAIL("starting the agent", r);
	}
	return 0;
}

static inline int lt_pair_setup(struct lt_pair *p, const char *tag,
				 const struct lt_pair_opts *o)
{
	int r = lt_pair_spawn(p, tag);

	if (r) {
		fprintf(stderr, "# lt_pair_setup: fork: %s\n", strerror(-r));
		return -1;
	}
	return lt_pair_configure(p, o);
}

/* Close every device of the server normally. */
static inline int lt_pair_close_devices(struct lt_pair *p)
{
	unsigned int i;
	int r, ret = NOERROR;

	for (i = 0; i < p->ndev; i++) {
		if (!p->dev[i])
			continue;
		r = vdi_server_close_device(p->dev[i]);
		if (r && !ret)
			ret = r;
	}
	return ret;
}

/*
 * Teardown in every case: Close the server set (which aborts and waits
 * for a running agent), join the agent, finish and reap the client.
 * Returns the client's exit status.
 */
static inline int lt_pair_teardown(struct lt_pair *p)
{
	int r;

	if (p->set)
		vdi_server_close(p->set);
	p->set = NULL;
	if (p->agent.started && !lt_agent_done(&p->agent, 5000))
		fprintf(stderr, "# lt_pair_teardown: the agent did not return\n");
	r = lt_peer_finish(&p->rc, 5000);
	return r;
}

/*
 * The normal end of a pair: the server closes its devices, the client sees
 * VD_E_CLOSE on each, the agent returns NOERROR, both sides close.
 */
static inline void lt_pair_end_normally(struct __test_metadata *_metadata,
					struct lt_pair *p)
{
	unsigned int i;

	EXPECT_VD(NOERROR, lt_pair_close_devices(p));
	for (i = 0; i < p->ndev; i++)
		EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p->rc, (int)i, -1, -1, -1,
						  2000, NULL));
	ASSERT_TRUE(lt_agent_done(&p->agent, 3000));
	EXPECT_VD(NOERROR, p->agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(p->set));
	p->set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p->rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(p));
}

/* ------------------------------------------------------------------ */
/* the remote server: one libvdi server call per message              */

enum {
	RS_OPEN = 40,	/* a4: 1 = instance "" -> ret */
	RS_DEPTH,	/* a0 depth -> ret */
	RS_BEGIN,	/* a0 features, a1 alignment, a2 block, a3 maxxfer
			 * -> ret */
	RS_END,		/* -> ret; a4 bufferAreaSize */
	RS_OPEN_DEV,	/* a0 device index, -1: all -> ret */
	RS_AGENT,	/* start the agent -> ret */
	RS_SEND,	/* a0 dev, a1 code, a2 size, a3 salt, q0 position:
			 * Read/Write with a size get a buffer (Write: the
			 * pattern) -> ret; a0 command id */
	RS_WAIT,	/* a0 routine calls, q0 timeout -> 0 / -ETIMEDOUT;
			 * a0 calls so far */
	RS_DONE,	/* a0 id -> ret calls; a0 code, a1 bytes, a2 data ok,
			 * a3 seq, q0 outPosition */
	RS_CLOSE_DEV,	/* a0 dev -> ret */
	RS_ABORT,	/* -> ret */
	RS_CLOSE,	/* -> ret; a0 agent's return, a1 agent returned */
	RS_AGENT_WAIT,	/* q0 timeout -> 0 if the agent returned; a0 ret */
};

struct lt_rs {
	const char *name;
	vdi_server_set *set;
	vdi_server_device *dev[LT_MAXDEV];
	struct lt_agent agent;
	struct lt_cmd *cmds;
	int ncmds;
	int agent_ret;
	bool agent_returned;
};

static inline void lt_rs_do(struct lt_rs *rs, struct lt_msg *m)
{
	char dn[LT_NAME_MAX];
	struct lt_cmd *c;
	VDConfig cfg;
	int i;

	switch (m->op) {
	case RS_OPEN:
		m->ret = vdi_server_open(&rs->set, m->a[4] == 1 ? "" : NULL,
					 rs->name);
		break;
	case RS_DEPTH:
		m->ret = vdi_server_set_queue_depth(rs->set,
						    (uint32_t)m->a[0]);
		break;
	case RS_BEGIN:
		m->ret = vdi_server_begin_configuration(rs->set,
			(uint32_t)m->a[0], (uint32_t)m->a[1],
			(uint32_t)m->a[2], (uint32_t)m->a[3], 1000);
		break;
	case RS_END:
		m->ret = vdi_server_end_configuration(rs->set);
		memset(&cfg, 0, sizeof(cfg));
		vdi_server_get_configuration(rs->set, &cfg);
		m->a[4] = (int32_t)cfg.bufferAreaSize;
		break;
	case RS_OPEN_DEV: {
		int from = m->a[0] < 0 ? 0 : m->a[0];
		int to = m->a[0] < 0 ? LT_MAXDEV : m->a[0] + 1;
		int r = NOERROR;

		for (i = from; i < to && r == NOERROR; i++) {
			if (rs->dev[i] && m->a[0] < 0)
				continue;
			vdi_server_device *dev = NULL;

			lt_dev_name(dn, rs->name, (unsigned int)i);
			r = vdi_server_open_device(rs->set, dn, &dev);
			if (r == NOERROR)
				rs->dev[i] = dev;
			if (m->a[0] < 0 && r == VD_E_OPEN) {
				r = NOERROR;
				break;
			}
		}
		m->ret = r;
		break;
	}
	case RS_AGENT:
		m->ret = lt_agent_start(&rs->agent, rs->set);
		break;
	case RS_SEND:
		if (rs->ncmds == LT_MAXCMD) {
			m->ret = -ENOSPC;
			break;
		}
		c = &rs->cmds[rs->ncmds];
		lt_cmd_init(c, rs->ncmds, m->a[1], m->a[2], m->q[0]);
		c->dev = m->a[0];
		c->salt = (uint8_t)m->a[3];
		c->set = rs->set;
		if ((m->a[1] == VDC_Read || m->a[1] == VDC_Write) && m->a[2] > 0) {
			m->ret = vdi_server_allocate_buffer(rs->set,
				&c->cmd.buffer, (uint32_t)m->a[2], 0);
			if (m->ret)
				break;
			c->bufsize = (uint32_t)m->a[2];
			if (m->a[1] == VDC_Write)
				lt_fill(c->cmd.buffer, (uint32_t)m->a[2],
					m->q[0], c->salt);
			else
				memset(c->cmd.buffer, 0xee, (size_t)m->a[2]);
		}
		m->a[0] = rs->ncmds++;
		m->ret = lt_send_cmd(rs->dev[c->dev], c);
		break;
	case RS_WAIT:
		m->ret = lt_wait_calls(m->a[0], (int)m->q[0]);
		m->a[0] = lt_calls();
		break;
	case RS_DONE:
		if (m->a[0] < 0 || m->a[0] >= rs->ncmds) {
			m->ret = -EINVAL;
			break;
		}
		c = &rs->cmds[m->a[0]];
		pthread_mutex_lock(&lt_log_g.mu);
		m->ret = c->calls;
		m->a[0] = c->code;
		m->a[1] = c->bytes;
		m->a[2] = c->data_ok;
		m->a[3] = c->seq;
		m->q[0] = c->pos;
		pthread_mutex_unlock(&lt_log_g.mu);
		break;
	case RS_CLOSE_DEV:
		m->ret = vdi_server_close_device(rs->dev[m->a[0]]);
		break;
	case RS_ABORT:
		m->ret = vdi_server_signal_abort(rs->set);
		break;
	case RS_AGENT_WAIT:
		m->ret = lt_agent_done(&rs->agent, (int)m->q[0]) ? 0 :
			 -ETIMEDOUT;
		m->a[0] = rs->agent.ret;
		break;
	case RS_CLOSE:
		m->ret = rs->set ? vdi_server_close(rs->set) : -EINVAL;
		rs->set = NULL;
		memset(rs->dev, 0, sizeof(rs->dev));
		m->a[1] = lt_agent_done(&rs->agent, 5000);
		m->a[0] = rs->agent.ret;
		break;
	default:
		m->ret = -ENOSYS;
		break;
	}
}

/* Child body: a server driven by messages; arg is the set's name. */
static int lt_rs_main(struct lt_peer *self, void *arg) LT_UNUSED;
static int lt_rs_main(struct lt_peer *self, void *arg)
{
	struct lt_rs *rs = (struct lt_rs *)calloc(1, sizeof(*rs));
	struct lt_msg m;

	if (!rs)
		return 90;
	rs->cmds = (struct lt_cmd *)calloc(LT_MAXCMD, sizeof(*rs->cmds));
	if (!rs->cmds)
		return 91;
	rs->name = (const char *)arg;
	while (lt_recv(self, &m, -1) == 0) {
		if (m.op == LT_OP_EXIT) {
			lt_send(self, &m);
			break;
		}
		if (m.q[3] > 0)
			lt_sleep_ms((unsigned int)m.q[3]);
		m.q[3] = 0;
		lt_rs_do(rs, &m);
		if (lt_send(self, &m))
			break;
	}
	if (rs->set)
		vdi_server_close(rs->set);
	lt_agent_done(&rs->agent, 5000);
	free(rs->cmds);
	free(rs);
	return 0;
}

static inline int lt_rs_call(struct lt_peer *p, int op, int a0, int a1, int a2,
			     int a3, int64_t q0, struct lt_msg *out)
{
	struct lt_msg m;
	int r;

	lt_msg_init(&m, op);
	m.a[0] = a0;
	m.a[1] = a1;
	m.a[2] = a2;
	m.a[3] = a3;
	m.q[0] = q0;
	r = lt_call(p, &m, LT_RPC_MS);
	if (out)
		*out = m;
	if (r)
		return r;
	return m.ret;
}

/*
 * The remote server, all the way to a running agent: Open, Begin (both
 * directions, 512-byte blocks, 64 KiB transfers), End, all devices open.
 */
static inline int lt_rs_ready(struct lt_peer *p, uint32_t depth)
{
	int r;

	r = lt_rs_call(p, RS_OPEN, 0, 0, 0, 0, 0, NULL);
	if (!r && depth)
		r = lt_rs_call(p, RS_DEPTH, (int)depth, 0, 0, 0, 0, NULL);
	if (!r)
		r = lt_rs_call(p, RS_BEGIN, VDF_WriteMedia | VDF_ReadMedia, 0,
			       512, 65536, 0, NULL);
	if (!r)
		r = lt_rs_call(p, RS_END, 0, 0, 0, 0, 0, NULL);
	return r;
}

#endif /* LIB_TEST_UTIL_H */
