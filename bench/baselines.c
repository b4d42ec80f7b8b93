// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-bench's baselines: the same work as VDI's figures done without VDI,
 * in the same boot.  Round trips are between two processes, as VDI's are:
 *
 *   spin     one shared word written in turn, each side polling it: no
 *            system call, no sleep - the floor of a spinning transport
 *   futex    FUTEX_WAIT / FUTEX_WAKE on shared words: the floor of one
 *            that sleeps
 *   eventfd  a read and a write of an eventfd each way
 *   sem      POSIX semaphores in shared memory (SQL Server on Linux's
 *            own VDI transport)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* ---------------------------------------------------------------- peers */

/*
 * The two processes of a ping-pong.  Each measures its own CPU time around
 * its own loop; the child sends its figure back through @fd.
 */
struct peer {
	pid_t pid;
	int fd;		/* child -> parent: a ready byte, then its CPU time */
	double cpu0;	/* this process's CPU time at the start */
	double cpu;	/* the parent's CPU time in its timed part */
	double t0, t1;	/* the parent's timed part */
};

/*
 * Fork the other process; true in the child, which is ready to loop: its
 * CPU clock started and the parent told (so that neither clock counts the
 * other's fork and start-up).
 */
static bool peer_fork(struct peer *p)
{
	int fds[2];

	if (pipe(fds))
		fail("pipe: %s", strerror(errno));
	p->pid = fork();
	if (p->pid < 0)
		fail("fork: %s", strerror(errno));
	if (!p->pid) {
		close(fds[0]);
		p->fd = fds[1];
		p->cpu0 = cpu_self_s();
		if (write(p->fd, "r", 1) != 1)
			_exit(1);
		return true;
	}
	close(fds[1]);
	p->fd = fds[0];
	return false;
}

/* The child is done: its CPU time to the parent, and exit. */
static void __attribute__((noreturn)) peer_exit(struct peer *p)
{
	cpu_send(p->fd, p->cpu0);
	_exit(0);
}

/* The parent: the child is ready, start the clocks. */
static void peer_start(struct peer *p)
{
	char ready;

	if (read(p->fd, &ready, 1) != 1)
		fail("the child did not start");
	p->cpu0 = cpu_self_s();
	p->t0 = now_s();
}

static void peer_stop(struct peer *p)
{
	p->t1 = now_s();
	p->cpu = cpu_self_s() - p->cpu0;
}

/* The parent: reap the child; per round trip, the time and both CPUs. */
static struct sample peer_finish(struct peer *p, long count)
{
	double cpu = p->cpu + cpu_receive(p->fd);

	close(p->fd);
	reap(p->pid);
	return (struct sample) {
		.value = (p->t1 - p->t0) / count * 1e6,
		.cpu_us = cpu / count * 1e6,
		.calls_server = -1,
		.calls_client = -1,
	};
}

static void *shared_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	return p;
}

/* ---------------------------------------------------------------- round trips */

struct sample eventfd_rt(void)
{
	int a = eventfd(0, 0), b = eventfd(0, 0);
	struct peer peer;
	uint64_t v = 1;
	long i;

	if (peer_fork(&peer)) {
		for (i = 0; i < rt_count; i++)
			if (read(a, &v, 8) != 8 || write(b, &v, 8) != 8)
				_exit(1);
		peer_exit(&peer);
	}
	peer_start(&peer);
	for (i = 0; i < rt_count; i++)
		if (write(a, &v, 8) != 8 || read(b, &v, 8) != 8)
			exit(1);
	peer_stop(&peer);
	close(a);
	close(b);
	return peer_finish(&peer, rt_count);
}

struct sample sem_rt(void)
{
	sem_t *s = shared_page();
	struct peer peer;
	long i;

	sem_init(&s[0], 1, 0);
	sem_init(&s[1], 1, 0);
	if (peer_fork(&peer)) {
		for (i = 0; i < rt_count; i++) {
			sem_wait(&s[0]);
			sem_post(&s[1]);
		}
		peer_exit(&peer);
	}
	peer_start(&peer);
	for (i = 0; i < rt_count; i++) {
		sem_post(&s[0]);
		sem_wait(&s[1]);
	}
	peer_stop(&peer);
	munmap(s, 4096);
	return peer_finish(&peer, rt_count);
}

static long futex(uint32_t *word, int op, uint32_t val,
		  const struct timespec *timeout)
{
	return syscall(SYS_futex, word, op, val, timeout, NULL, 0);
}

/*
 * Wait until @word is set, then clear it.  Shared (not private) futexes:
 * the words are in memory shared by two processes.
 */
static void futex_take(uint32_t *word)
{
	const struct timespec limit = { .tv_sec = PEER_TIMEOUT_S };

	while (!__atomic_load_n(word, __ATOMIC_ACQUIRE))
		if (futex(word, FUTEX_WAIT, 0, &limit) && errno != EAGAIN &&
		    errno != EINTR)
			fail("FUTEX_WAIT: %s", errno == ETIMEDOUT ?
			     "the other process stopped" : strerror(errno));
	__atomic_store_n(word, 0, __ATOMIC_RELAXED);
}

/* Set @word and wake its waiter: a wake every time, as a sleeping
 * transport that does not track its waiters would. */
static void futex_give(uint32_t *word)
{
	__atomic_store_n(word, 1, __ATOMIC_RELEASE);
	if (futex(word, FUTEX_WAKE, 1, NULL) < 0)
		fail("FUTEX_WAKE: %s", strerror(errno));
}

struct sample futex_rt(void)
{
	uint32_t *w = shared_page();	/* w[0] the ping, w[1] the pong */
	struct peer peer;
	long i;

	if (peer_fork(&peer)) {
		for (i = 0; i < rt_count; i++) {
			futex_take(&w[0]);
			futex_give(&w[1]);
		}
		peer_exit(&peer);
	}
	peer_start(&peer);
	for (i = 0; i < rt_count; i++) {
		futex_give(&w[0]);
		futex_take(&w[1]);
	}
	peer_stop(&peer);
	munmap(w, 4096);
	return peer_finish(&peer, rt_count);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ volatile("" : : : "memory");
#endif
}

/*
 * Poll @word until it holds @want.  The clock is read only every 64 K
 * polls, to give up on a process that is gone without slowing the floor.
 */
static void spin_until(const uint32_t *word, uint32_t want)
{
	unsigned long polls = 0;
	double limit = 0;

	while (__atomic_load_n(word, __ATOMIC_ACQUIRE) != want) {
		cpu_relax();
		if (++polls % 65536)
			continue;
		if (!limit)
			limit = now_s() + PEER_TIMEOUT_S;
		else if (now_s() > limit)
			fail("spin: the other process stopped");
	}
}

/* One word in one cache line: the parent writes the odd values, the child
 * the even ones, each waiting for the other's. */
struct sample spin_rt(void)
{
	uint32_t *seq = shared_page();
	struct peer peer;
	uint32_t i;

	if (peer_fork(&peer)) {
		for (i = 0; i < spin_count; i++) {
			spin_until(seq, 2 * i + 1);
			__atomic_store_n(seq, 2 * i + 2, __ATOMIC_RELEASE);
		}
		peer_exit(&peer);
	}
	peer_start(&peer);
	for (i = 0; i < spin_count; i++) {
		__atomic_store_n(seq, 2 * i + 1, __ATOMIC_RELEASE);
		spin_until(seq, 2 * i + 2);
	}
	peer_stop(&peer);
	munmap(seq, 4096);
	return peer_finish(&peer, spin_count);
}

/* ---------------------------------------------------------------- streams */

double pipe_stream(uint32_t transfer)
{
	uint8_t *buf = malloc(transfer);
	uint64_t chunks = bytes_for(transfer) / transfer, i;
	double t0, t1;
	size_t got;
	ssize_t r;
	int p[2];
	pid_t pid;

	if (!buf || pipe(p))
		exit(1);
	fcntl(p[1], F_SETPIPE_SZ, transfer > MIB ? MIB : transfer);
	memset(buf, 0x5a, transfer);
	pid = fork();
	if (!pid) {
		close(p[1]);
		for (i = 0; i < chunks; i++) {
			for (got = 0; got < transfer; got += r) {
				r = read(p[0], buf + got, transfer - got);
				if (r <= 0)
					_exit(1);
			}
			sink += checksum(buf, transfer);
		}
		_exit(0);
	}
	close(p[0]);
	t0 = now_s();
	for (i = 0; i < chunks; i++)
		for (got = 0; got < transfer; got += r) {
			r = write(p[1], buf + got, transfer - got);
			if (r <= 0)
				exit(1);
		}
	close(p[1]);
	reap(pid);
	t1 = now_s();
	free(buf);
	return chunks * (double)transfer / (t1 - t0) / 1e6;
}

double memcpy_bw(uint32_t transfer)
{
	uint8_t *src = malloc(transfer), *dst = malloc(transfer);
	uint64_t chunks = bytes_for(transfer) / transfer, i;
	double t0, t1;

	memset(src, 1, transfer);
	memset(dst, 2, transfer);
	t0 = now_s();
	for (i = 0; i < chunks; i++) {
		memcpy(dst, src, transfer);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	t1 = now_s();
	free(src);
	free(dst);
	return chunks * (double)transfer / (t1 - t0) / 1e6;
}

/* The machine's own ceiling for scale_4_vs_1: the same checksum work on
 * 1 thread and on 2 (one per vCPU), no VDI at all. */
struct cpu_arg {
	uint64_t rounds;
	uint8_t *buf;
};

static void *cpu_worker(void *p)
{
	struct cpu_arg *a = p;
	uint64_t i, sum = 0;

	for (i = 0; i < a->rounds; i++)
		sum += checksum(a->buf, MIB);
	sink += sum;
	return NULL;
}

double cpu_checksum(unsigned int threads)
{
	struct cpu_arg args[2];
	pthread_t th[2];
	unsigned int i;
	double t0, t1;

	for (i = 0; i < threads; i++) {
		args[i].rounds = stream_bytes / MIB / threads;
		args[i].buf = malloc(MIB);
		memset(args[i].buf, 0x5a, MIB);
	}
	t0 = now_s();
	for (i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, cpu_worker, &args[i]);
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();
	for (i = 0; i < threads; i++)
		free(args[i].buf);
	return stream_bytes / (t1 - t0) / 1e6;
}
