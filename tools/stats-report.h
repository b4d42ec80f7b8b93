/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The module's figures of a set (vdi_stats, libvdi's "Figures" API) in
 * words, for people: one table row per device (bytes, throughput, commands,
 * the time a command spent on each side, how busy the client was, IO-ERROR
 * episodes, the queue's peak), the set's state and abort reason, and the
 * verdict on which side is the slow one.  vdi-engine and vdi-client print it
 * at the end of a run and every --stats N seconds (the ticker below);
 * anything else that has a snapshot can print it the same way.
 *
 * Nothing here holds state of its own or knows which tool it is in: the
 * caller passes the stream, the time the figures cover and a line prefix.
 */
#ifndef VDI_TOOLS_STATS_REPORT_H
#define VDI_TOOLS_STATS_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <libvdi.h>

/* Bytes of a valid UTF-8 sequence at s (n bytes there), or 0. */
size_t utf8_seq(const unsigned char *s, size_t n);
/*
 * A set or device name from the module, for a terminal: bytes that are not
 * valid UTF-8, and C1 control characters, as \xNN (a name holds no
 * backslash).  A name is another user's bytes (root's vdictl shows every
 * set): nothing in it may act on the terminal.  Room for any name:
 * SAFE_NAME_LEN.
 */
#define SAFE_NAME_LEN	(4 * VDI_NAME_MAX)
const char *safe_name(const char *name, char *buf, size_t len);

/* "created", "connected", "configuring", "ready", "done", "aborted" */
const char *stats_state_name(uint32_t state);
/*
 * Why the set was aborted, in words, into @buf ("SignalAbort by the engine
 * (pid 123)", "the client closed device 'x' before its end", ...); "" when
 * it was not.  A device name in it is safe_name()'s; ABORT_TEXT_LEN holds
 * any.
 */
#define ABORT_TEXT_LEN	(SAFE_NAME_LEN + 128)
const char *stats_abort_text(const vdi_stats *st, char *buf, size_t len);

/*
 * Print @st to @f, every line beginning with @prefix (e.g. "vdi-engine: ",
 * or ""):
 *
 *   figures of set 'NAME' after 2.10 s: STATE   (no "after" for 0 s)
 *     device  bytes  MiB/s  sent  completed  queued-ms  held-ms  reaping-ms
 *             busy  io-errors  peak-queued
 *     (one row per device, and "(all)" when there are several)
 *   aborted: REASON                      (an aborted set)
 *   verdict: TEXT                        (vdi_stats_verdict on the set)
 *   verdict 'DEV': TEXT                  (each device, when they differ)
 *
 * bytes are those the client's Read and Write completions said they moved;
 * MiB/s is bytes over @elapsed_s (the time the figures cover: "-" when 0
 * or less); the -ms columns are the average time per command from send to
 * take (queued: the engine waited on the client; or to the flush or abort
 * that ended it there), take to completion (held: the client's I/O) and
 * completion to the engine's completion routine (reaping), over the
 * commands that have left that stage; busy is the share of the time the
 * client had a command queued or held.  The whole report is written with
 * one fputs(), so that lines of other threads do not come between its
 * lines; on a terminal it first erases the line the cursor is on (a
 * progress line).
 */
void stats_report(FILE *f, const vdi_stats *st, double elapsed_s,
		  const char *prefix);

/*
 * ---- the ticker: the report every N seconds while a run lasts ----
 * A thread of its own takes a snapshot through @snap (the caller's: e.g.
 * vdi_server_get_stats on its set) and prints it, every @interval_s
 * seconds, until stats_ticker_stop().  It waits on a condition variable
 * (CLOCK_MONOTONIC), so stopping it is immediate; it takes no lock of the
 * caller's, so the data path never waits for it.  A failed snapshot is said
 * once (with @prefix) and ends the ticking.
 */
typedef int (*stats_snap_fn)(void *ctx, vdi_stats *st);

struct stats_ticker {
	pthread_t thread;
	pthread_mutex_t lock;	/* for stop */
	pthread_cond_t cond;	/* stop was set */
	bool started;		/* the thread exists (until stop joined it) */
	bool stop;
	unsigned int interval_s;
	stats_snap_fn snap;
	void *ctx;
	struct timespec t0;	/* CLOCK_MONOTONIC: the start of the run */
	FILE *f;
	const char *prefix;
	vdi_stats *st;		/* the snapshot's room (40 KiB: not on a stack) */
	unsigned int reports;	/* printed so far */
};

/*
 * Start ticking every @interval_s (>= 1) seconds; the elapsed time of each
 * report counts from now.  0, or -1 (with errno) if the thread or its
 * memory could not be had.
 */
int stats_ticker_start(struct stats_ticker *t, unsigned int interval_s,
		       stats_snap_fn snap, void *ctx, FILE *f,
		       const char *prefix);
/* Stop it and wait for the thread (at most one report being printed);
 * nothing if it never started.  Call before what @snap uses goes away. */
void stats_ticker_stop(struct stats_ticker *t);

#endif /* VDI_TOOLS_STATS_REPORT_H */
