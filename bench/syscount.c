// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-bench: system calls counted by the kernel, not by the library.  One
 * perf counter per process on the raw_syscalls:sys_enter tracepoint, with
 * inherit set so that it also counts the threads the process starts after
 * the counter is opened (the server's agent, the client's device threads);
 * reading it sums them all, the exited ones included.
 *
 * While such a counter exists every system call of every task takes the
 * kernel's slower traced path, so the timed runs never have one: the counts
 * come from runs of their own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

#define TRACEPOINT	"raw_syscalls/sys_enter"

/* tracefs where the VM mounts it, then under debugfs */
static const char *const id_paths[] = {
	"/sys/kernel/tracing/events/" TRACEPOINT "/id",
	"/sys/kernel/debug/tracing/events/" TRACEPOINT "/id",
};

static long tracepoint_id(void)
{
	unsigned int i;
	long id;
	FILE *f;

	for (i = 0; i < sizeof(id_paths) / sizeof(id_paths[0]); i++) {
		f = fopen(id_paths[i], "r");
		if (!f)
			continue;
		if (fscanf(f, "%ld", &id) != 1)
			id = -1;
		fclose(f);
		return id;
	}
	return -1;
}

static long sys_enter_id = -1;

static int open_counter(pid_t pid)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.size = sizeof(attr);
	attr.config = sys_enter_id;
	attr.inherit = 1;
	return syscall(SYS_perf_event_open, &attr, pid, -1, -1,
		       PERF_FLAG_FD_CLOEXEC);
}

/* Whether counting works here; the first call says why not. */
bool syscount_usable(void)
{
	static int usable = -1;
	int fd;

	if (usable >= 0)
		return usable;
	usable = 0;
	sys_enter_id = tracepoint_id();
	if (sys_enter_id < 0) {
		printf("# vdi-bench: system calls not counted: no %s id in "
		       "tracefs (%s)\n", TRACEPOINT, id_paths[0]);
		return false;
	}
	fd = open_counter(0);
	if (fd < 0) {
		printf("# vdi-bench: system calls not counted: "
		       "perf_event_open(%s): %s\n", TRACEPOINT,
		       strerror(errno));
		return false;
	}
	close(fd);
	usable = 1;
	return true;
}

/*
 * A counter on process @pid (0: the caller), or -1 (said why).  Open it
 * before the process starts the threads it should count.
 */
int syscount_open(pid_t pid)
{
	int fd;

	if (!syscount_usable())
		return -1;
	fd = open_counter(pid);
	if (fd < 0)
		printf("# vdi-bench: perf_event_open(%s) on pid %d: %s\n",
		       TRACEPOINT, (int)pid, strerror(errno));
	return fd;
}

/* The calls counted so far, or -1. */
int64_t syscount_read(int fd)
{
	uint64_t n;

	if (fd < 0 || read(fd, &n, sizeof(n)) != sizeof(n))
		return -1;
	return (int64_t)n;
}
