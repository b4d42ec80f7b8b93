/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdi-bench's shared pieces: the knobs, the clocks, the report lines
 * (common.c), the baselines (baselines.c) and the system call counter
 * (syscount.c).  vdi_bench.c holds VDI's own jobs and main().
 */
#ifndef VDI_BENCH_H
#define VDI_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KIB		1024U
#define MIB		(1024U * 1024U)
#define MAX_RUNS	64
/* A wait on the other process that lasts this long means it is gone. */
#define PEER_TIMEOUT_S	30

extern int runs;
extern uint64_t stream_bytes;
extern uint64_t small_bytes;
extern long rt_count;
extern long spin_count;
extern volatile uint64_t sink;

/*
 * One run of a figure with its costs: the figure itself (µs per round trip,
 * MB/s ...), the CPU time both processes spent per command (a round trip is
 * one command), and the system calls each side made per command.  A cost
 * below 0 was not measured.
 */
struct sample {
	double value;
	double cpu_us;
	double calls_server;
	double calls_client;
};

/* common.c */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
double now_s(void);
double cpu_self_s(void);
void cpu_send(int fd, double cpu0);
double cpu_receive(int fd);
uint64_t checksum(const void *p, size_t len);
uint64_t bytes_for(uint32_t transfer);
void reap(pid_t pid);
void report(const char *name, const char *unit, const double *v);
void report_samples(const char *name, const char *suffix, const char *unit,
		    const struct sample *timed, const struct sample *counted);

/* baselines.c */
struct sample eventfd_rt(void);
struct sample sem_rt(void);
struct sample futex_rt(void);
struct sample spin_rt(void);
double pipe_stream(uint32_t transfer);
double memcpy_bw(uint32_t transfer);
double cpu_checksum(unsigned int threads);

/* syscount.c */
bool syscount_usable(void);
int syscount_open(pid_t pid);
int64_t syscount_read(int fd);

#endif
