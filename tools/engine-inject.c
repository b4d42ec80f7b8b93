// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine --inject SCENARIO[=ARG]: the faults a VDI client must survive,
 * played on purpose so that a backup vendor can test its client against
 * them (and we test ours).  Each scenario, and what the client sees:
 *
 *   abort-mid-stream[=SIZE]   SignalAbort once SIZE bytes of data (default
 *                             1M; at the end of the data if it is shorter)
 *                             have moved.  The client's GetCommand returns
 *                             VD_E_ABORT; it must drop the partial backup.
 *   silent[=N]                send N commands (default 0: none after the
 *                             configuration), then nothing, keeping the set
 *                             open: the client's GetCommand timeout is all
 *                             that ends it.  We wait up to --timeout for the
 *                             client to give up (abort or close the set),
 *                             then abort it ourselves.
 *   close-device-early[=DEV]  CloseDevice on DEV (default: the last device)
 *                             once every device has had a chunk of data (or
 *                             at the end of a shorter stream), stop the data
 *                             there, and end the other devices as usual
 *                             (Flush, VDC_Complete).  DEV's GetCommand says
 *                             VD_E_CLOSE, the normal end, with data missing:
 *                             a client that asked for VDC_Complete sees that
 *                             DEV never got it; one that did not cannot tell
 *                             (a restore of it finds the damage).
 *   max-transfer-tiny         MAXTRANSFERSIZE 64K (the smallest legal) and
 *                             BLOCKSIZE 512: many small transfers, the last
 *                             ones as small as a block.  Not a fault: the
 *                             backup or restore must succeed.
 *   max-transfer-huge         MAXTRANSFERSIZE 4M, the largest legal.  Not a
 *                             fault either.
 *   name-taken[=SECS]         instead of a backup, take the set's name first,
 *                             as another backup application would: create a
 *                             client set of that name, hold it SECS s
 *                             (default: --timeout) or until a signal, and
 *                             release it.  The client's Create fails with
 *                             VD_E_PROTOCOL: in VDI the client names the set,
 *                             so "name taken" is its Create's failure.
 *
 * The engine exits 1 after any of the faults (they end the run on purpose;
 * no backup was made), 0 after a tiny or huge run that succeeded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

enum scenario {
	NONE,
	ABORT_MID_STREAM,
	SILENT,
	CLOSE_DEVICE_EARLY,
	MAX_TRANSFER_TINY,
	MAX_TRANSFER_HUGE,
	NAME_TAKEN,
};

static const char *const names[] = {
	[ABORT_MID_STREAM] = "abort-mid-stream",
	[SILENT] = "silent",
	[CLOSE_DEVICE_EARLY] = "close-device-early",
	[MAX_TRANSFER_TINY] = "max-transfer-tiny",
	[MAX_TRANSFER_HUGE] = "max-transfer-huge",
	[NAME_TAKEN] = "name-taken",
};

static struct {
	enum scenario what;
	const char *arg;	/* after '=', or NULL */
	uint64_t n;		/* SIZE, N or SECS */
	unsigned int dev;	/* close-device-early */
	uint64_t sent;		/* silent: commands sent so far */
	bool stopping;		/* close-device-early: no more data */
	bool fired;
} inj;

/* "--inject SCENARIO[=ARG]" */
void inject_parse(const char *spec)
{
	const char *eq = strchr(spec, '=');
	size_t len = eq ? (size_t)(eq - spec) : strlen(spec);
	unsigned int i;

	for (i = 1; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && !strncmp(spec, names[i], len))
			break;
	if (i == sizeof(names) / sizeof(names[0]))
		usage_error("--inject: no scenario '%.*s' (abort-mid-stream, "
			    "silent, close-device-early, max-transfer-tiny, "
			    "max-transfer-huge, name-taken)", (int)len, spec);
	inj.what = (enum scenario)i;
	inj.arg = eq ? eq + 1 : NULL;
	switch (inj.what) {
	case ABORT_MID_STREAM:
		inj.n = 1 << 20;
		if (inj.arg && (!parse_size(inj.arg, &inj.n) || !inj.n))
			usage_error("--inject abort-mid-stream=SIZE: a size "
				    "above 0, e.g. 4M");
		break;
	case SILENT:
		if (inj.arg && !parse_uint(inj.arg, UINT32_MAX, &inj.n))
			usage_error("--inject silent=N: a number of commands");
		break;
	case NAME_TAKEN:
		if (inj.arg && (!parse_uint(inj.arg, 86400, &inj.n) ||
				!inj.n))
			usage_error("--inject name-taken=SECS: 1..86400");
		break;
	case CLOSE_DEVICE_EARLY:
		break;		/* DEV is checked against the names later */
	default:
		if (inj.arg)
			usage_error("--inject %s takes no value",
				    names[inj.what]);
	}
}

void inject_options(void)
{
	unsigned int i;

	switch (inj.what) {
	case MAX_TRANSFER_TINY:
		opt.max_transfer = 64 << 10;
		opt.block_size = 512;
		break;
	case MAX_TRANSFER_HUGE:
		opt.max_transfer = 4 << 20;	/* MAX_BUFFERS of it: 1 GiB */
		break;
	case CLOSE_DEVICE_EARLY:
		inj.dev = opt.ndev - 1;
		if (!inj.arg)
			break;
		for (i = 0; i < opt.ndev; i++)
			if (!strcmp(inj.arg, opt.dev_name[i]))
				break;
		if (i == opt.ndev)
			usage_error("--inject close-device-early=%s: not one "
				    "of the devices named", inj.arg);
		inj.dev = i;
		break;
	case NAME_TAKEN:
		if (!inj.arg)
			inj.n = opt.timeout_s ? opt.timeout_s : 1;
		break;
	default:
		break;
	}
	if (inj.what)
		verbose("inject %s%s%s", names[inj.what], inj.arg ? "=" : "",
			inj.arg ? inj.arg : "");
}

bool inject_fired(void)
{
	return inj.fired;
}

/* ================================================================ name-taken */
int inject_squat(void)
{
	vdi_client_set *squat;
	double t0, held;
	VDConfig cfg;
	int rc;

	if (inj.what != NAME_TAKEN)
		return 0;
	inj.fired = true;
	/* the client API, as any backup application: the name is the set's */
	squat = vdi_client_set_new();
	if (!squat) {
		msg("no memory");
		return 1;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = opt.ndev;
	rc = vdi_client_create(squat, opt.set_name, &cfg);
	if (rc) {
		vdi_msg("inject name-taken: taking the name first (Create)", rc);
		vdi_client_set_free(squat);
		return 1;
	}
	/* tests wait for this line before they start the client */
	msg("inject name-taken: set name '%s' taken (a client set of ours); "
	    "holding it for %" PRIu64 " s", opt.set_name, inj.n);
	t0 = now_s();
	while (now_s() - t0 < (double)inj.n && !interrupted())
		nanosleep(&(struct timespec){ 0, 50 * 1000000 }, NULL);
	held = now_s() - t0;
	vdi_client_close(squat);
	vdi_client_set_free(squat);
	msg("inject name-taken: released set name '%s' after %.1f s%s; no "
	    "backup was made", opt.set_name, held, interrupted() ?
	    " (signal)" : "");
	return 1;
}

/* ================================================================ silent */
/* Say nothing more; wait for the client to give up, up to --timeout. */
static int fall_silent(void)
{
	unsigned int limit = opt.timeout_s ? opt.timeout_s : 60;
	double t0 = now_s();
	struct timespec ts;
	bool gone;

	inj.fired = true;
	msg("inject silent: %" PRIu64 " command%s sent, now silent (waiting "
	    "up to %u s for the client to give up)", inj.sent,
	    inj.sent == 1 ? "" : "s", limit);
	pthread_mutex_lock(&V.lock);
	while (!V.agent_done && !interrupted() && now_s() - t0 < limit) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&V.cond, &V.lock, &ts);
	}
	gone = V.agent_done;
	pthread_mutex_unlock(&V.lock);
	if (gone)
		msg("inject silent: the client gave up after %.1f s (it "
		    "aborted or closed the set)", now_s() - t0);
	else if (!interrupted())
		msg("inject silent: the client did not give up within %u s: "
		    "aborting the set", limit);
	if (!interrupted())	/* a signal is main()'s to report */
		said_interrupted = true;
	return -1;
}

int inject_before_send(void)
{
	if (inj.what != SILENT)
		return 0;
	if (inj.fired || inj.sent >= inj.n)
		return fall_silent();
	inj.sent++;
	return 0;
}

/* ================================================================ data */
int inject_after_data(uint64_t bytes, uint64_t chunks, bool last)
{
	const char *what = opt.op == BACKUP ? "backup" : "restore";
	char b[32];

	switch (inj.what) {
	case ABORT_MID_STREAM:
		if (!last && bytes < inj.n)
			return 0;
		inj.fired = true;
		pthread_mutex_lock(&set_lock);
		vdi_server_signal_abort(V.set);
		pthread_mutex_unlock(&set_lock);
		msg("inject abort-mid-stream: SignalAbort after %s of data%s",
		    fmt_bytes(b, sizeof(b), bytes), bytes < inj.n ?
		    " (all of it: the stream was shorter)" : "");
		said_interrupted = true;
		return -1;
	case CLOSE_DEVICE_EARLY:
		if (!last) {
			if (chunks >= opt.ndev)
				inj.stopping = true;
			return inj.stopping;
		}
		inj.fired = true;
		if (close_device(inj.dev) < 0)
			return -1;
		if (inj.stopping)
			msg("inject close-device-early: closed device '%s' "
			    "after %s of data, the rest not moved: the %s is "
			    "incomplete", opt.dev_name[inj.dev],
			    fmt_bytes(b, sizeof(b), bytes), what);
		else
			msg("inject close-device-early: closed device '%s' "
			    "after all %s of data (a stream shorter than a "
			    "chunk per device), before the %s's end commands",
			    opt.dev_name[inj.dev],
			    fmt_bytes(b, sizeof(b), bytes), what);
		return 1;
	default:
		return 0;
	}
}
