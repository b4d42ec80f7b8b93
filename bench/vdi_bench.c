// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-bench: VDI against baselines doing the same work, in one boot.
 *
 * Every figure is measured `runs` times (VDI_BENCH_RUNS, default 5) and
 * printed as one line "bench {json}" with the median, min, max and each run;
 * scripts/bench.sh turns them into build/bench.json, ratios and a picture.
 *
 *   eventfd_rt_us      eventfd ping-pong between two processes, per round trip
 *   sem_rt_us          POSIX semaphores in shared memory (SQL Server on Linux's
 *                      own VDI transport), per round trip
 *   vdi_rt_us          SendCommand -> GetCommand -> CompleteCommand -> routine,
 *                      depth 1, per round trip
 *   vdi_batch_cps      commands per second at depth 64, batched send, fetch and
 *                      completion
 *   vdi_stream_<T>_<D>dev_MBps   VDI_BENCH_MIB (1024) MiB of VDC_Write in T-byte
 *                      transfers at depth 8 over D devices, one client thread
 *                      per device checksumming every byte (transfers under
 *                      1 MiB move 128 MiB: the figure is a rate)
 *   pipe_stream_<T>_MBps the same bytes through a pipe to a reader doing the
 *                      same checksum
 *   memcpy_<T>_MBps    memcpy bandwidth at the transfer size
 *   cpu_checksum_<N>_MBps  the checksum alone on 1 and 2 threads: the VM's
 *                      own parallel ceiling, context for scale_4_vs_1
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvdi.h"

#define KIB		1024U
#define MIB		(1024U * 1024U)
#define STREAM_DEPTH	8
#define BATCH_DEPTH	64
#define MAX_DEVICES	4

static int runs = 5;
static uint64_t stream_bytes = 1024ULL * MIB;	/* 1 MiB transfers */
static uint64_t small_bytes = 128ULL * MIB;	/* smaller ones: a rate */
static long rt_count = 5000;
static long batch_count = 100000;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int code)
{
	fprintf(stderr, "vdi-bench: %s: %s (%s)\n", what,
		vdi_code_name(code) ? vdi_code_name(code) : strerror(errno),
		vdi_last_error());
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *name, const char *unit, const double *v)
{
	double s[64];
	int i;

	memcpy(s, v, runs * sizeof(*v));
	qsort(s, runs, sizeof(*s), cmp_double);
	printf("bench {\"name\":\"%s\",\"unit\":\"%s\",\"median\":%.6g,"
	       "\"min\":%.6g,\"max\":%.6g,\"runs\":[", name, unit,
	       runs % 2 ? s[runs / 2] : (s[runs / 2 - 1] + s[runs / 2]) / 2,
	       s[0], s[runs - 1]);
	for (i = 0; i < runs; i++)
		printf("%s%.6g", i ? "," : "", v[i]);
	printf("]}\n");
	fflush(stdout);
}

/* What both stream readers do with every byte: the same cheap checksum. */
static uint64_t checksum(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	size_t i, n = len / 8;

	for (i = 0; i + 4 <= n; i += 4) {
		a += w[i];
		b ^= w[i + 1];
		c += w[i + 2];
		d ^= w[i + 3];
	}
	for (; i < n; i++)
		a += w[i];
	return a ^ b ^ c ^ d;
}

static volatile uint64_t sink;

static void reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "vdi-bench: child failed\n");
		exit(1);
	}
}

/* ---------------------------------------------------------------- baselines */

static double eventfd_rt(void)
{
	int a = eventfd(0, 0), b = eventfd(0, 0);
	uint64_t v = 1;
	double t0, t1;
	pid_t pid;
	long i;

	pid = fork();
	if (!pid) {
		for (i = 0; i < rt_count; i++)
			if (read(a, &v, 8) != 8 || write(b, &v, 8) != 8)
				_exit(1);
		_exit(0);
	}
	t0 = now_s();
	for (i = 0; i < rt_count; i++)
		if (write(a, &v, 8) != 8 || read(b, &v, 8) != 8)
			exit(1);
	t1 = now_s();
	reap(pid);
	close(a);
	close(b);
	return (t1 - t0) / rt_count * 1e6;
}

static double sem_rt(void)
{
	sem_t *s = mmap(NULL, 2 * sizeof(sem_t), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double t0, t1;
	pid_t pid;
	long i;

	sem_init(&s[0], 1, 0);
	sem_init(&s[1], 1, 0);
	pid = fork();
	if (!pid) {
		for (i = 0; i < rt_count; i++) {
			sem_wait(&s[0]);
			sem_post(&s[1]);
		}
		_exit(0);
	}
	t0 = now_s();
	for (i = 0; i < rt_count; i++) {
		sem_post(&s[0]);
		sem_wait(&s[1]);
	}
	t1 = now_s();
	reap(pid);
	munmap(s, 2 * sizeof(sem_t));
	return (t1 - t0) / rt_count * 1e6;
}

static uint64_t bytes_for(uint32_t transfer)
{
	return transfer < MIB ? small_bytes : stream_bytes;
}

static double pipe_stream(uint32_t transfer)
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

static double memcpy_bw(uint32_t transfer)
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

static double cpu_checksum(unsigned int threads)
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

/* ---------------------------------------------------------------- VDI */

enum job_kind { JOB_RT, JOB_STREAM, JOB_BATCH };

struct job {
	enum job_kind kind;
	unsigned int devices;
	uint32_t transfer;	/* JOB_STREAM */
	unsigned int depth;	/* commands in flight per device */
	char name[64];
};

/* The client: one thread per device, fetch, checksum, complete. */
struct client_dev {
	const struct job *job;
	vdi_client_device *dev;
};

static void *client_device_loop(void *arg)
{
	struct client_dev *cd = arg;
	vdi_client_completion done[BATCH_DEPTH];
	VDC_Command *cmds[BATCH_DEPTH];
	unsigned int n, i, applied;
	uint64_t sum = 0;
	int ret;

	for (;;) {
		if (cd->job->kind == JOB_BATCH)
			ret = vdi_client_get_commands(cd->dev, INFINITE, cmds,
						      BATCH_DEPTH, &n);
		else
			ret = vdi_client_get_commands(cd->dev, INFINITE, cmds,
						      1, &n);
		if (ret == VD_E_CLOSE)
			break;
		if (ret)
			die("GetCommand", ret);
		for (i = 0; i < n; i++) {
			if (cmds[i]->commandCode == VDC_Write && cmds[i]->buffer)
				sum += checksum(cmds[i]->buffer, cmds[i]->size);
			done[i] = (vdi_client_completion) {
				.cmd = cmds[i],
				.bytesTransferred = cmds[i]->size,
			};
		}
		ret = vdi_client_complete_commands(cd->dev, done, n, &applied);
		if (ret)
			die("CompleteCommand", ret);
	}
	sink += sum;
	return NULL;
}

static void device_name(char *out, size_t len, const char *set, unsigned int i)
{
	if (i)
		snprintf(out, len, "%s.%u", set, i);
	else
		snprintf(out, len, "%s", set);
}

static void client_main(const struct job *job, int ready)
{
	struct client_dev cd[MAX_DEVICES];
	pthread_t th[MAX_DEVICES];
	vdi_client_set *set = vdi_client_set_new();
	VDConfig cfg = { .deviceCount = job->devices };
	char name[80];
	unsigned int i;
	int ret;

	ret = vdi_client_create(set, job->name, &cfg);
	if (ret)
		die("Create", ret);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	ret = vdi_client_get_configuration(set, INFINITE, &cfg);
	if (ret)
		die("GetConfiguration", ret);
	for (i = 0; i < job->devices; i++) {
		device_name(name, sizeof(name), job->name, i);
		cd[i].job = job;
		ret = vdi_client_open_device(set, name, &cd[i].dev);
		if (ret)
			die("OpenDevice", ret);
		pthread_create(&th[i], NULL, client_device_loop, &cd[i]);
	}
	for (i = 0; i < job->devices; i++)
		pthread_join(th[i], NULL);
	vdi_client_close(set);
	vdi_client_set_free(set);
	_exit(0);
}

/* The server side of one run. */
struct server_dev {
	struct server_run *run;
	vdi_server_device *dev;
	uint64_t to_send;	/* commands still to send on this device */
	VDS_Command cmds[BATCH_DEPTH];
};

struct server_run {
	const struct job *job;
	vdi_server_set *set;
	struct server_dev dev[MAX_DEVICES];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Touched by the agent's routines only, once the run is primed: */
	uint64_t outstanding;	/* sent, routine not yet run */
	VDS_Command *ready[BATCH_DEPTH];	/* JOB_BATCH: to send again */
	unsigned int nready;
	bool finished;		/* under @lock: nothing left in flight */
};

/*
 * Runs on the agent's thread and sends the next commands from here: no
 * hand-off to another thread, no extra wake-up.  Batch mode gathers the
 * completed commands and sends them again BATCH_DEPTH / 2 at a time in one
 * system call (or whatever is left once nothing else is in flight).
 */
static void server_routine(VDS_Command *cmd)
{
	struct server_dev *sd = (struct server_dev *)cmd->completionContext;
	struct server_run *run = sd->run;
	unsigned int n, sent;
	bool wake;
	int ret;

	if (cmd->completionCode)
		die("command completed with an error", cmd->completionCode);
	if (run->job->kind == JOB_BATCH) {
		run->outstanding--;
		if (sd->to_send)
			run->ready[run->nready++] = cmd;
		if (run->nready < BATCH_DEPTH / 2 && run->outstanding)
			goto out_check_done;
		n = run->nready < sd->to_send ? run->nready : sd->to_send;
		if (n) {
			sd->to_send -= n;
			run->outstanding += n;
			run->nready = 0;
			ret = vdi_server_send_commands(sd->dev, run->ready, n,
						       &sent);
			if (ret)
				die("SendCommand", ret);
		}
		goto out_check_done;
	}
	if (sd->to_send) {
		sd->to_send--;
		ret = vdi_server_send_command(sd->dev, cmd);
		if (ret)
			die("SendCommand", ret);
		return;
	}
	run->outstanding--;
out_check_done:
	if (run->outstanding)
		return;
	pthread_mutex_lock(&run->lock);
	wake = !run->outstanding;
	run->finished = wake;
	pthread_mutex_unlock(&run->lock);
	if (wake)
		pthread_cond_signal(&run->cond);
}

static void *agent_thread(void *arg)
{
	struct server_run *run = arg;
	int ret = vdi_server_execute_completion_agent(run->set);

	if (ret)
		die("ExecuteCompletionAgent", ret);
	return NULL;
}

static vdi_server_set *server_open(const struct job *job, uint32_t max_transfer)
{
	vdi_server_set *set;
	VDConfig cfg;
	int ret;

	ret = vdi_server_open(&set, NULL, job->name);
	if (ret)
		die("Open", ret);
	vdi_server_get_configuration(set, &cfg);
	vdi_server_set_queue_depth(set, job->depth);
	ret = vdi_server_begin_configuration(set, VDF_WriteMedia, 0, 65536,
					     max_transfer, 0);
	if (ret)
		die("BeginConfiguration", ret);
	if (job->kind == JOB_STREAM) {
		ret = vdi_server_request_buffers(set, job->transfer, 0,
						 job->depth * job->devices);
		if (ret)
			die("RequestBuffers", ret);
	}
	ret = vdi_server_end_configuration(set);
	if (ret)
		die("EndConfiguration", ret);
	return set;
}

/*
 * Prepare the first commands of every device (buffers allocated and filled:
 * setup, not streaming, so before the clock starts).  Every count is set
 * before the first send: from then on only the agent's routines touch them.
 */
static unsigned int server_prepare(struct server_run *run, uint64_t per_device)
{
	const struct job *job = run->job;
	unsigned int d, i, first = job->depth;
	struct server_dev *sd;
	int ret;

	if (first > per_device)
		first = per_device;
	for (d = 0; d < job->devices; d++) {
		sd = &run->dev[d];
		for (i = 0; i < first; i++) {
			VDS_Command *c = &sd->cmds[i];

			memset(c, 0, sizeof(*c));
			c->commandCode = VDC_Flush;
			if (job->kind == JOB_STREAM) {
				c->commandCode = VDC_Write;
				c->size = job->transfer;
				ret = vdi_server_allocate_buffer(run->set,
								 &c->buffer,
								 job->transfer,
								 0);
				if (ret)
					die("AllocateBuffer", ret);
				memset(c->buffer, 0x5a, job->transfer);
			}
			c->completionRoutine = (uint8_t *)server_routine;
			c->completionContext = (uint8_t *)sd;
		}
		sd->to_send = per_device - first;
	}
	run->outstanding = (uint64_t)first * job->devices;
	return first;
}

/* Send the prepared commands; the routines keep them going. */
static void server_prime(struct server_run *run, unsigned int first)
{
	const struct job *job = run->job;
	VDS_Command *cmds[BATCH_DEPTH];
	struct server_dev *sd;
	unsigned int d, i, sent;
	int ret;

	for (d = 0; d < job->devices; d++) {
		sd = &run->dev[d];
		for (i = 0; i < first; i++)
			cmds[i] = &sd->cmds[i];
		ret = vdi_server_send_commands(sd->dev, cmds, first, &sent);
		if (ret)
			die("SendCommand", ret);
	}
}

/* One run: returns seconds for `commands` commands over all devices. */
static double vdi_run(const struct job *job, uint64_t per_device)
{
	struct server_run run = { .job = job };
	char ready, name[80];
	pthread_t agent;
	double t0, t1;
	unsigned int d, first;
	int p[2], ret;
	pid_t pid;

	if (pipe(p))
		exit(1);
	pid = fork();
	if (!pid) {
		close(p[0]);
		client_main(job, p[1]);
	}
	close(p[1]);
	if (read(p[0], &ready, 1) != 1)
		die("the client did not start", 0);
	close(p[0]);

	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.cond, NULL);
	run.set = server_open(job, job->kind == JOB_STREAM &&
			      job->transfer > 65536 ? job->transfer : 65536);
	for (d = 0; d < job->devices; d++) {
		device_name(name, sizeof(name), job->name, d);
		run.dev[d].run = &run;
		ret = vdi_server_open_device(run.set, name, &run.dev[d].dev);
		if (ret)
			die("OpenDevice", ret);
	}
	pthread_create(&agent, NULL, agent_thread, &run);
	/* SendCommand needs the agent running: wait until it is. */
	ret = vdi_server_wait_agent(run.set, 10000);
	if (ret)
		die("WaitAgent", ret);

	first = server_prepare(&run, per_device);
	t0 = now_s();
	pthread_mutex_lock(&run.lock);
	server_prime(&run, first);
	while (!run.finished)
		pthread_cond_wait(&run.cond, &run.lock);
	pthread_mutex_unlock(&run.lock);
	t1 = now_s();

	for (d = 0; d < job->devices; d++)
		vdi_server_close_device(run.dev[d].dev);
	pthread_join(agent, NULL);
	vdi_server_close(run.set);
	reap(pid);
	return t1 - t0;
}

static unsigned int job_seq;

static void job_init(struct job *job, enum job_kind kind, unsigned int devices,
		     uint32_t transfer, unsigned int depth)
{
	*job = (struct job) {
		.kind = kind, .devices = devices, .transfer = transfer,
		.depth = depth,
	};
	snprintf(job->name, sizeof(job->name), "bench-%d-%u", getpid(),
		 job_seq++);
}

static double vdi_rt(void)
{
	struct job job;

	job_init(&job, JOB_RT, 1, 0, 1);
	return vdi_run(&job, rt_count) / rt_count * 1e6;
}

static double vdi_batch(void)
{
	struct job job;

	job_init(&job, JOB_BATCH, 1, 0, BATCH_DEPTH);
	return batch_count / vdi_run(&job, batch_count);
}

static double vdi_stream(uint32_t transfer, unsigned int devices)
{
	uint64_t per_device = bytes_for(transfer) / transfer / devices;
	struct job job;

	job_init(&job, JOB_STREAM, devices, transfer, STREAM_DEPTH);
	return per_device * devices * (double)transfer /
	       vdi_run(&job, per_device) / 1e6;
}

/* ---------------------------------------------------------------- figures */

#define STATS_PARAM	"/sys/module/vdi/parameters/stats"

/*
 * The module's timed figures (its "stats" parameter, read when a set is
 * created) switched on or off: false when the module has no such parameter.
 */
static bool stats_param(bool on)
{
	FILE *f = fopen(STATS_PARAM, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(on ? "1" : "0", f) >= 0;
	return !fclose(f) && ok;
}

/*
 * The cost of the figures: each run measures with them off, then on, so
 * that both halves of a pair see the same machine.  The on figures are
 * the plain ones (vdi_rt_us ...), measured again here.
 */
static void measure_stats_cost(void)
{
	double rt_on[64], rt_off[64], st_on[64], st_off[64];
	int i;

	if (!stats_param(true)) {
		printf("# vdi-bench: no %s: figures' cost not measured\n",
		       STATS_PARAM);
		return;
	}
	/* Round trips first, then streams: a stream in between would leave
	 * the library's adaptive spin backed off for the next round trip. */
	for (i = 0; i < runs; i++) {
		stats_param(false);
		rt_off[i] = vdi_rt();
		stats_param(true);
		rt_on[i] = vdi_rt();
	}
	for (i = 0; i < runs; i++) {
		stats_param(false);
		st_off[i] = vdi_stream(MIB, 1);
		stats_param(true);
		st_on[i] = vdi_stream(MIB, 1);
	}
	report("vdi_rt_stats_on_us", "us", rt_on);
	report("vdi_rt_stats_off_us", "us", rt_off);
	report("vdi_stream_1024k_stats_on_MBps", "MB/s", st_on);
	report("vdi_stream_1024k_stats_off_MBps", "MB/s", st_off);
}

/* ---------------------------------------------------------------- main */

#define MEASURE(name, unit, expr) do {				\
	double v_[64];						\
	int i_;							\
								\
	for (i_ = 0; i_ < runs; i_++)				\
		v_[i_] = (expr);				\
	report(name, unit, v_);					\
} while (0)

int main(void)
{
	static const uint32_t sizes[] = { 64 * KIB, 256 * KIB, MIB };
	static const unsigned int devs[] = { 1, 2, 4 };
	char name[64];
	unsigned int i;

	if (getenv("VDI_BENCH_RUNS"))
		runs = atoi(getenv("VDI_BENCH_RUNS"));
	if (runs < 1 || runs > 64)
		runs = 5;
	if (getenv("VDI_BENCH_MIB"))
		stream_bytes = strtoull(getenv("VDI_BENCH_MIB"), NULL, 0) * MIB;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bench-start {\"runs\":%d,\"stream_mib\":%llu,\"rt_count\":%ld,"
	       "\"batch_count\":%ld,\"cpus\":%ld}\n", runs,
	       (unsigned long long)(stream_bytes / MIB), rt_count, batch_count,
	       sysconf(_SC_NPROCESSORS_ONLN));

	MEASURE("eventfd_rt_us", "us", eventfd_rt());
	MEASURE("sem_rt_us", "us", sem_rt());
	MEASURE("vdi_rt_us", "us", vdi_rt());
	MEASURE("vdi_batch_cps", "cmd/s", vdi_batch());
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "memcpy_%uk_MBps", sizes[i] / KIB);
		MEASURE(name, "MB/s", memcpy_bw(sizes[i]));
		snprintf(name, sizeof(name), "pipe_stream_%uk_MBps",
			 sizes[i] / KIB);
		MEASURE(name, "MB/s", pipe_stream(sizes[i]));
		snprintf(name, sizeof(name), "vdi_stream_%uk_1dev_MBps",
			 sizes[i] / KIB);
		MEASURE(name, "MB/s", vdi_stream(sizes[i], 1));
	}
	for (i = 1; i < 3; i++) {
		snprintf(name, sizeof(name), "vdi_stream_1024k_%udev_MBps",
			 devs[i]);
		MEASURE(name, "MB/s", vdi_stream(MIB, devs[i]));
	}
	measure_stats_cost();
	MEASURE("cpu_checksum_1thread_MBps", "MB/s", cpu_checksum(1));
	MEASURE("cpu_checksum_2threads_MBps", "MB/s", cpu_checksum(2));
	printf("bench-end\n");
	printf("1..1\nok 1 vdi-bench\n");
	return 0;
}
