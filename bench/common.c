// SPDX-License-Identifier: GPL-2.0
/* vdi-bench: the knobs, the clocks and the report lines (see bench.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int runs = 5;
uint64_t stream_bytes = 1024ULL * MIB;	/* 1 MiB transfers */
uint64_t small_bytes = 128ULL * MIB;	/* smaller ones: a rate */
long rt_count = 5000;
/* The spin floor is some 500 times faster than a sleeping round trip:
 * more of them, so that its runs last long enough to time. */
long spin_count = 200000;
volatile uint64_t sink;

void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vdi-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * CPU time of the calling process, user and system: RUSAGE_SELF sums every
 * thread, the ones already joined included, so the server's agent and the
 * client's device threads count.  A thread running on another CPU right now
 * may not have its current slice in yet: take the readings while the other
 * threads sleep or after they are joined.
 */
double cpu_self_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		fail("getrusage: %s", strerror(errno));
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * A forked child sends its own CPU time since @cpu0 to the parent.  The
 * parent's RUSAGE_CHILDREN would also charge it the fork's copy-on-write
 * faults, its setup and its exit, which are no part of a round trip.
 */
void cpu_send(int fd, double cpu0)
{
	double cpu = cpu_self_s() - cpu0;

	if (write(fd, &cpu, sizeof(cpu)) != sizeof(cpu))
		fail("sending the child's CPU time: %s", strerror(errno));
}

double cpu_receive(int fd)
{
	double cpu;

	if (read(fd, &cpu, sizeof(cpu)) != sizeof(cpu))
		fail("the child did not send its CPU time");
	return cpu;
}

/* What both stream readers do with every byte: the same cheap checksum. */
uint64_t checksum(const void *p, size_t len)
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

uint64_t bytes_for(uint32_t transfer)
{
	return transfer < MIB ? small_bytes : stream_bytes;
}

void reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		fail("child failed");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void report(const char *name, const char *unit, const double *v)
{
	double s[MAX_RUNS];
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

/* One cost of every sample, or false if some run did not measure it. */
static bool pick(const struct sample *s, size_t offset, double *v)
{
	int i;

	for (i = 0; i < runs; i++) {
		v[i] = *(const double *)((const char *)&s[i] + offset);
		if (v[i] < 0)
			return false;
	}
	return true;
}

/*
 * A figure and its costs: NAME SUFFIX the figure, NAME_cpu_us the CPU time
 * of both processes per command, and from the @counted runs (NULL: none)
 * NAME_syscalls_per_cmd_server and _client.  A cost that was not measured
 * is left out, never made up.
 */
void report_samples(const char *name, const char *suffix, const char *unit,
		    const struct sample *timed, const struct sample *counted)
{
	double v[MAX_RUNS];
	char full[128];

	snprintf(full, sizeof(full), "%s%s", name, suffix);
	pick(timed, offsetof(struct sample, value), v);
	report(full, unit, v);
	snprintf(full, sizeof(full), "%s_cpu_us", name);
	if (pick(timed, offsetof(struct sample, cpu_us), v))
		report(full, "us", v);
	if (!counted)
		return;
	snprintf(full, sizeof(full), "%s_syscalls_per_cmd_server", name);
	if (pick(counted, offsetof(struct sample, calls_server), v))
		report(full, "calls/cmd", v);
	else
		printf("# vdi-bench: %s: not counted\n", full);
	snprintf(full, sizeof(full), "%s_syscalls_per_cmd_client", name);
	if (pick(counted, offsetof(struct sample, calls_client), v))
		report(full, "calls/cmd", v);
	else
		printf("# vdi-bench: %s: not counted\n", full);
}
