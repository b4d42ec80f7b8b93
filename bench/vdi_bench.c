// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-bench: VDI against baselines doing the same work, in one boot.
 *
 * Every figure is measured `runs` times (VDI_BENCH_RUNS, default 5) and
 * printed as one line "bench {json}" with the median, min, max and each run;
 * scripts/bench.sh turns them into build/bench.json, ratios and a picture.
 *
 *   spin_rt_us         a shared word polled in turn by two processes, per
 *                      round trip: the floor of a spinning transport
 *   futex_rt_us        FUTEX_WAIT/FUTEX_WAKE between two processes: the
 *                      floor of a sleeping one
 *   eventfd_rt_us      eventfd ping-pong between two processes, per round trip
 *   sem_rt_us          POSIX semaphores in shared memory (SQL Server on Linux's
 *                      own VDI transport), per round trip
 *   vdi_rt_us          SendCommand -> GetCommand -> CompleteCommand -> routine,
 *                      depth 1, per round trip
 *   vdi_rt_nospin_us   the same with VDI_SPIN_US=0 (a vdi-bench of its own:
 *                      the library reads the variable once per process)
 *   <rt>_cpu_us        CPU time of both processes, every thread, per round
 *                      trip, for each round trip above (getrusage)
 *   vdi_batch_cps      commands per second at depth 64, batched send, fetch and
 *                      completion
 *   vdi_stream_<T>_<D>dev_MBps   VDI_BENCH_MIB (1024) MiB of VDC_Write in T-byte
 *                      transfers at depth 8 over D devices, one client thread
 *                      per device checksumming every byte (transfers under
 *                      1 MiB move 128 MiB: the figure is a rate)
 *   <vdi>_syscalls_per_cmd_server, _client  system calls per command on each
 *                      side, counted by the kernel (syscount.c) in runs of
 *                      their own, for the round trips, the batch and the
 *                      1 MiB streams on 1 and 4 devices; with their
 *                      <vdi>_cpu_us
 *   pipe_stream_<T>_MBps the same bytes through a pipe to a reader doing the
 *                      same checksum
 *   memcpy_<T>_MBps    memcpy bandwidth at the transfer size
 *   cpu_checksum_<N>_MBps  the checksum alone on 1 and 2 threads: the VM's
 *                      own parallel ceiling, context for scale_4_vs_1
 *
 * The baselines are in baselines.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "libvdi.h"

#define STREAM_DEPTH	8
#define BATCH_DEPTH	64
#define MAX_DEVICES	4

static long batch_count = 100000;

static void die(const char *what, int code)
{
	fprintf(stderr, "vdi-bench: %s: %s (%s)\n", what,
		vdi_code_name(code) ? vdi_code_name(code) : strerror(errno),
		vdi_last_error());
	exit(1);
}

/* ---------------------------------------------------------------- VDI */

enum job_kind { JOB_RT, JOB_STREAM, JOB_BATCH };

struct job {
	enum job_kind kind;
	unsigned int devices;
	uint32_t transfer;	/* JOB_STREAM */
	unsigned int depth;	/* commands in flight per device */
	bool count_calls;	/* count system calls (syscount.c), not time */
	char name[64];
};

/* The client: one thread per device, fetch, checksum, complete. */
struct client_dev {
	const struct job *job;
	vdi_client_device *dev;
};

/*
 * Complete the last turn's commands and get the next ones in one call
 * (vdi_client_complete_and_get: one system call per turn with ENTER).
 */
static void *client_device_loop(void *arg)
{
	struct client_dev *cd = arg;
	unsigned int max = cd->job->kind == JOB_BATCH ? BATCH_DEPTH : 1;
	vdi_client_completion done[BATCH_DEPTH];
	VDC_Command *cmds[BATCH_DEPTH];
	unsigned int n, i, applied, ndone = 0;
	uint64_t sum = 0;
	int ret;

	for (;;) {
		ret = vdi_client_complete_and_get(cd->dev, done, ndone,
						  &applied, INFINITE, cmds,
						  max, &n);
		if (applied != ndone)
			die("CompleteCommand", ret);
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
		ndone = n;
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

/*
 * The client process.  @parent gets a byte once the set exists, then the
 * CPU time of the device threads' whole life (every thread: RUSAGE_SELF,
 * read once they are joined), the client's half of the run's CPU time.
 */
static void client_main(const struct job *job, int parent)
{
	struct client_dev cd[MAX_DEVICES];
	pthread_t th[MAX_DEVICES];
	vdi_client_set *set = vdi_client_set_new();
	VDConfig cfg = { .deviceCount = job->devices };
	char name[80];
	unsigned int i;
	double cpu0;
	int ret;

	ret = vdi_client_create(set, job->name, &cfg);
	if (ret)
		die("Create", ret);
	if (write(parent, "r", 1) != 1)
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
	}
	cpu0 = cpu_self_s();
	for (i = 0; i < job->devices; i++)
		pthread_create(&th[i], NULL, client_device_loop, &cd[i]);
	for (i = 0; i < job->devices; i++)
		pthread_join(th[i], NULL);
	cpu_send(parent, cpu0);
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

/* Fork the client; returns its pid, with @fd the pipe it reports on. */
static pid_t client_start(const struct job *job, int *fd)
{
	char ready;
	int p[2];
	pid_t pid;

	if (pipe(p))
		fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (!pid) {
		close(p[0]);
		client_main(job, p[1]);
	}
	close(p[1]);
	if (read(p[0], &ready, 1) != 1)
		die("the client did not start", 0);
	*fd = p[0];
	return pid;
}

/* Open the set and its devices, start the agent, prepare the first
 * commands; returns how many each device sends first. */
static unsigned int server_start(struct server_run *run, pthread_t *agent,
				 uint64_t per_device)
{
	const struct job *job = run->job;
	unsigned int d;
	char name[80];
	int ret;

	pthread_mutex_init(&run->lock, NULL);
	pthread_cond_init(&run->cond, NULL);
	run->set = server_open(job, job->kind == JOB_STREAM &&
			       job->transfer > 65536 ? job->transfer : 65536);
	for (d = 0; d < job->devices; d++) {
		device_name(name, sizeof(name), job->name, d);
		run->dev[d].run = run;
		ret = vdi_server_open_device(run->set, name, &run->dev[d].dev);
		if (ret)
			die("OpenDevice", ret);
	}
	pthread_create(agent, NULL, agent_thread, run);
	/* SendCommand needs the agent running: wait until it is. */
	ret = vdi_server_wait_agent(run->set, 10000);
	if (ret)
		die("WaitAgent", ret);
	return server_prepare(run, per_device);
}

/* What one run measured. */
struct run_result {
	double seconds;		/* the timed part */
	double cpu_s;		/* both processes, every thread (see below) */
	int64_t calls_server;	/* system calls in the timed part, or -1 */
	int64_t calls_client;
};

/* The run's system call counters, one per process (syscount.c). */
struct run_calls {
	int server, client;		/* -1: not counted */
	int64_t server0, client0;	/* read at the start */
};

/*
 * Open both counters before the threads they must count exist: the client
 * is waiting for the configuration, which comes after this (its device
 * threads start after that), and this process has no agent yet.
 */
static void calls_open(struct run_calls *c, pid_t client, bool count)
{
	c->server = c->client = -1;
	if (!count)
		return;
	c->client = syscount_open(client);
	c->server = syscount_open(0);
}

static void calls_start(struct run_calls *c)
{
	c->server0 = syscount_read(c->server);
	c->client0 = syscount_read(c->client);
}

static void calls_stop(struct run_calls *c, struct run_result *res)
{
	int64_t server = syscount_read(c->server);
	int64_t client = syscount_read(c->client);

	res->calls_server = server < 0 || c->server0 < 0 ? -1 :
			    server - c->server0;
	res->calls_client = client < 0 || c->client0 < 0 ? -1 :
			    client - c->client0;
	if (c->server >= 0)
		close(c->server);
	if (c->client >= 0)
		close(c->client);
}

/*
 * One run of @job, @per_device commands on each device.  The CPU time is
 * this process's from just before the clock starts until the agent is
 * joined (a thread still running elsewhere may not have its current slice
 * counted yet), plus the client's device threads' whole life.
 */
static void vdi_run(const struct job *job, uint64_t per_device,
		    struct run_result *res)
{
	struct server_run run = { .job = job };
	struct run_calls calls;
	unsigned int d, first;
	double cpu0, t0, t1;
	pthread_t agent;
	int client_fd;
	pid_t pid;

	pid = client_start(job, &client_fd);
	calls_open(&calls, pid, job->count_calls);
	first = server_start(&run, &agent, per_device);

	calls_start(&calls);
	cpu0 = cpu_self_s();
	t0 = now_s();
	pthread_mutex_lock(&run.lock);
	server_prime(&run, first);
	while (!run.finished)
		pthread_cond_wait(&run.cond, &run.lock);
	pthread_mutex_unlock(&run.lock);
	t1 = now_s();
	calls_stop(&calls, res);

	for (d = 0; d < job->devices; d++)
		vdi_server_close_device(run.dev[d].dev);
	pthread_join(agent, NULL);
	res->cpu_s = cpu_self_s() - cpu0;
	vdi_server_close(run.set);
	res->cpu_s += cpu_receive(client_fd);
	close(client_fd);
	reap(pid);
	res->seconds = t1 - t0;
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

/* The job's figure: µs per round trip, commands/s, or MB/s. */
static double job_figure(const struct job *job, uint64_t cmds, double seconds)
{
	switch (job->kind) {
	case JOB_RT:
		return seconds / cmds * 1e6;
	case JOB_BATCH:
		return cmds / seconds;
	case JOB_STREAM:
		break;
	}
	return cmds * (double)job->transfer / seconds / 1e6;
}

/*
 * One run of a VDI job as a sample: a round trip, a batch, or a stream of
 * @transfer-byte commands over @devices; timed, or with its system calls
 * counted (@count_calls).
 */
static struct sample vdi_job(enum job_kind kind, unsigned int devices,
			     uint32_t transfer, bool count_calls)
{
	uint64_t per_device, cmds;
	struct run_result r;
	struct job job;

	if (kind == JOB_RT) {
		job_init(&job, JOB_RT, 1, 0, 1);
		per_device = rt_count;
	} else if (kind == JOB_BATCH) {
		job_init(&job, JOB_BATCH, 1, 0, BATCH_DEPTH);
		per_device = batch_count;
	} else {
		job_init(&job, JOB_STREAM, devices, transfer, STREAM_DEPTH);
		per_device = bytes_for(transfer) / transfer / devices;
	}
	job.count_calls = count_calls;
	vdi_run(&job, per_device, &r);
	cmds = per_device * job.devices;
	return (struct sample) {
		.value = job_figure(&job, cmds, r.seconds),
		.cpu_us = r.cpu_s / cmds * 1e6,
		.calls_server = r.calls_server < 0 ? -1 :
				(double)r.calls_server / cmds,
		.calls_client = r.calls_client < 0 ? -1 :
				(double)r.calls_client / cmds,
	};
}

static double vdi_rt(void)
{
	return vdi_job(JOB_RT, 1, 0, false).value;
}

static double vdi_stream(uint32_t transfer, unsigned int devices)
{
	return vdi_job(JOB_STREAM, devices, transfer, false).value;
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
	double rt_on[MAX_RUNS], rt_off[MAX_RUNS], st_on[MAX_RUNS];
	double st_off[MAX_RUNS];
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

/*
 * A VDI figure with its costs: `runs` timed runs (the figure and its CPU
 * time), then `runs` more with the system calls counted, if they can be.
 */
static void measure_vdi(const char *name, const char *suffix,
			const char *unit, enum job_kind kind,
			unsigned int devices, uint32_t transfer)
{
	struct sample timed[MAX_RUNS], counted[MAX_RUNS];
	bool count = syscount_usable();
	int i;

	for (i = 0; i < runs; i++)
		timed[i] = vdi_job(kind, devices, transfer, false);
	for (i = 0; count && i < runs; i++)
		counted[i] = vdi_job(kind, devices, transfer, true);
	report_samples(name, suffix, unit, timed, count ? counted : NULL);
}

#define NOSPIN_ARG	"--rt-nospin"

/*
 * The round trip without the library's spin, in the same boot.  libvdi
 * reads VDI_SPIN_US once per process, so a vdi-bench of its own, with the
 * variable set, measures it (main() with NOSPIN_ARG); its lines go to the
 * same output.
 */
static void measure_rt_nospin(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (!pid) {
		setenv("VDI_SPIN_US", "0", 1);
		execl("/proc/self/exe", "vdi-bench", NOSPIN_ARG, (char *)NULL);
		fail("exec /proc/self/exe: %s", strerror(errno));
	}
	reap(pid);
}

/* ---------------------------------------------------------------- main */

#define MEASURE(name, unit, expr) do {				\
	double v_[MAX_RUNS];					\
	int i_;							\
								\
	for (i_ = 0; i_ < runs; i_++)				\
		v_[i_] = (expr);				\
	report(name, unit, v_);					\
} while (0)

/* A baseline round trip: NAME_rt_us and NAME_rt_cpu_us. */
#define MEASURE_RT(name, expr) do {				\
	struct sample s_[MAX_RUNS];				\
	int i_;							\
								\
	for (i_ = 0; i_ < runs; i_++)				\
		s_[i_] = (expr);				\
	report_samples(name, "_us", "us", s_, NULL);		\
} while (0)

static void read_knobs(void)
{
	if (getenv("VDI_BENCH_RUNS"))
		runs = atoi(getenv("VDI_BENCH_RUNS"));
	if (runs < 1 || runs > MAX_RUNS)
		runs = 5;
	if (getenv("VDI_BENCH_MIB"))
		stream_bytes = strtoull(getenv("VDI_BENCH_MIB"), NULL, 0) * MIB;
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static void measure_round_trips(void)
{
	MEASURE_RT("spin_rt", spin_rt());
	MEASURE_RT("futex_rt", futex_rt());
	MEASURE_RT("eventfd_rt", eventfd_rt());
	MEASURE_RT("sem_rt", sem_rt());
	measure_vdi("vdi_rt", "_us", "us", JOB_RT, 1, 0);
	measure_rt_nospin();
	measure_vdi("vdi_batch", "_cps", "cmd/s", JOB_BATCH, 1, 0);
}

static void measure_streams(void)
{
	static const uint32_t sizes[] = { 64 * KIB, 256 * KIB };
	char name[64];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "memcpy_%uk_MBps", sizes[i] / KIB);
		MEASURE(name, "MB/s", memcpy_bw(sizes[i]));
		snprintf(name, sizeof(name), "pipe_stream_%uk_MBps",
			 sizes[i] / KIB);
		MEASURE(name, "MB/s", pipe_stream(sizes[i]));
		snprintf(name, sizeof(name), "vdi_stream_%uk_1dev_MBps",
			 sizes[i] / KIB);
		MEASURE(name, "MB/s", vdi_stream(sizes[i], 1));
	}
	MEASURE("memcpy_1024k_MBps", "MB/s", memcpy_bw(MIB));
	MEASURE("pipe_stream_1024k_MBps", "MB/s", pipe_stream(MIB));
	measure_vdi("vdi_stream_1024k_1dev", "_MBps", "MB/s", JOB_STREAM, 1,
		    MIB);
	MEASURE("vdi_stream_1024k_2dev_MBps", "MB/s", vdi_stream(MIB, 2));
	measure_vdi("vdi_stream_1024k_4dev", "_MBps", "MB/s", JOB_STREAM, 4,
		    MIB);
}

int main(int argc, char **argv)
{
	read_knobs();
	if (argc == 2 && !strcmp(argv[1], NOSPIN_ARG)) {
		measure_vdi("vdi_rt_nospin", "_us", "us", JOB_RT, 1, 0);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: vdi-bench (env VDI_BENCH_RUNS, "
			"VDI_BENCH_MIB)\n");
		return 2;
	}
	printf("bench-start {\"runs\":%d,\"stream_mib\":%llu,\"rt_count\":%ld,"
	       "\"spin_count\":%ld,\"batch_count\":%ld,\"cpus\":%ld}\n", runs,
	       (unsigned long long)(stream_bytes / MIB), rt_count, spin_count,
	       batch_count, sysconf(_SC_NPROCESSORS_ONLN));
	measure_round_trips();
	measure_streams();
	measure_stats_cost();
	MEASURE("cpu_checksum_1thread_MBps", "MB/s", cpu_checksum(1));
	MEASURE("cpu_checksum_2threads_MBps", "MB/s", cpu_checksum(2));
	printf("bench-end\n");
	printf("1..1\nok 1 vdi-bench\n");
	return 0;
}
