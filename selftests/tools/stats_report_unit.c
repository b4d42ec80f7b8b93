// SPDX-License-Identifier: GPL-2.0
/*
 * tools/stats-report.c on its own: the table, the sums of "(all)", the
 * columns without times, the abort's reason, when each device's verdict is
 * shown, and the ticker (reports while it runs, an immediate stop, a failed
 * snapshot).  The snapshots are made up here, so every figure is known.
 * TAP on stdout.  No module needed; libvdi only for vdi_stats_verdict().
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvdi.h>

#include "stats-report.h"

static int n, failed;

static void check(int ok, const char *what, const char *text)
{
	n++;
	if (ok) {
		printf("ok %d stats-report: %s\n", n, what);
		return;
	}
	printf("not ok %d stats-report: %s\n", n, what);
	if (text) {
		printf("# the report was:\n");
		for (const char *p = text; *p; ) {
			const char *e = strchr(p, '\n');
			int len = e ? (int)(e - p) : (int)strlen(p);

			printf("#   %.*s\n", len, p);
			p += len + (e ? 1 : 0);
		}
	}
	failed++;
}

/* The report of @st as a string (the caller frees it). */
static char *render(const vdi_stats *st, double elapsed, const char *prefix)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m) {
		perror("open_memstream");
		exit(1);
	}
	stats_report(m, st, elapsed, prefix);
	fclose(m);
	return text;
}

/* Does @text hold the line @line, whole? */
static int has_line(const char *text, const char *line)
{
	size_t l = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && (p[l] == '\n' || !p[l]))
			return 1;
	return 0;
}

/* The whitespace-separated words of the row of @dev, into @w (up to 16). */
static int row_words(const char *text, const char *prefix, const char *dev,
		     char w[16][64])
{
	char want[160], line[512];
	const char *p = text;
	int k = 0;

	snprintf(want, sizeof(want), "%s  %s ", prefix, dev);
	while ((p = strstr(p, want))) {
		if (p == text || p[-1] == '\n')
			break;
		p++;
	}
	if (!p)
		return 0;
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(p, "\n"), p);
	for (char *s = strtok(line, " "); s && k < 16; s = strtok(NULL, " "))
		snprintf(w[k++], 64, "%s", s);
	return k;
}

static void dev(vdi_stats *st, unsigned int i, const char *name,
		uint64_t bytes, uint64_t cmds, uint64_t busy_ms, uint64_t idle_ms)
{
	struct vdi_dev_stats *d = &st->devs[i];

	snprintf(d->name, sizeof(d->name), "%s", name);
	d->index = i;
	d->bytes_written = bytes;
	d->sent = d->taken = d->completed = d->reaped = cmds;
	d->queued = d->held = 0;
	d->queued_ns = cmds * 500000ULL;	/* 0.5 ms each */
	d->held_ns = cmds * 20000000ULL;	/* 20 ms */
	d->reaping_ns = cmds * 10000ULL;	/* 0.01 ms */
	d->client_busy_ns = busy_ms * 1000000ULL;
	d->client_idle_ns = idle_ms * 1000000ULL;
	d->queued_peak = i + 2;
	d->io_error_episodes = i;
	if (i >= st->ndevs)
		st->ndevs = i + 1;
}

static void table(vdi_stats *st)
{
	char w[16][64], *t;
	int k;

	memset(st, 0, sizeof(*st));
	snprintf(st->set.name, sizeof(st->set.name), "nightly");
	st->set.state = VDI_STATE_DONE;
	st->set.flags = VDI_SET_STATS_ON;
	dev(st, 0, "nightly", 2097152, 10, 900, 100);
	dev(st, 1, "nightly.2", 1048576, 6, 950, 50);
	t = render(st, 2.0, "vdi-engine: ");
	check(has_line(t, "vdi-engine: figures of set 'nightly' after 2.00 s: "
		       "done"), "the heading: set, time, state", t);
	k = row_words(t, "vdi-engine: ", "device", w);
	check(k == 12 && !strcmp(w[2], "bytes") && !strcmp(w[3], "MiB/s") &&
	      !strcmp(w[11], "peak-queued"), "the column heads", t);
	k = row_words(t, "vdi-engine: ", "nightly", w);
	check(k == 12 && !strcmp(w[2], "2097152") && !strcmp(w[3], "1.0") &&
	      !strcmp(w[4], "10") && !strcmp(w[5], "10") &&
	      !strcmp(w[6], "0.500") && !strcmp(w[7], "20.000") &&
	      !strcmp(w[8], "0.010") && !strcmp(w[9], "90%") &&
	      !strcmp(w[10], "0") && !strcmp(w[11], "2"),
	      "a device's row: bytes, MiB/s, commands, ms, busy, errors, peak",
	      t);
	k = row_words(t, "vdi-engine: ", "(all)", w);
	check(k == 12 && !strcmp(w[2], "3145728") && !strcmp(w[3], "1.5") &&
	      !strcmp(w[4], "16") && !strcmp(w[9], "92%") &&
	      !strcmp(w[10], "1") && !strcmp(w[11], "3"),
	      "(all): sums, busy over all the time, the highest peak", t);
	check(has_line(t, "vdi-engine: verdict: client storage: 92% of the "
		       "time the engine waited on the client"),
	      "the set's verdict", t);
	check(!strstr(t, "verdict 'nightly"),
	      "no device verdicts when they agree", t);
	free(t);

	/* commands in flight: the averages are over those that left the
	 * stage (4 of 6 left the queue, 3 of 4 taken were completed) */
	st->devs[1].sent = 6;
	st->devs[1].queued = 2;
	st->devs[1].taken = 4;
	st->devs[1].held = 1;
	st->devs[1].completed = st->devs[1].reaped = 3;
	st->devs[1].queued_ns = 4 * 500000ULL;
	st->devs[1].held_ns = 3 * 20000000ULL;
	st->devs[1].reaping_ns = 3 * 10000ULL;
	t = render(st, 2.0, "vdi-engine: ");
	k = row_words(t, "vdi-engine: ", "nightly.2", w);
	check(k == 12 && !strcmp(w[4], "6") && !strcmp(w[5], "3") &&
	      !strcmp(w[6], "0.500") && !strcmp(w[7], "20.000") &&
	      !strcmp(w[8], "0.010"),
	      "in flight: averages over the commands past each stage", t);
	free(t);

	/* one device the other way: each device's verdict follows */
	dev(st, 1, "nightly.2", 1048576, 6, 100, 900);
	t = render(st, 2.0, "");
	check(has_line(t, "verdict 'nightly': client storage: 90% of the time "
		       "the engine waited on the client") &&
	      has_line(t, "verdict 'nightly.2': engine: 90% of the time the "
		       "client waited with nothing queued"),
	      "devices that differ: each one's verdict", t);
	check(has_line(t, "verdict: balanced: the client had work 50% of the "
		       "time"), "... and the set's, balanced", t);
	free(t);
}

static void no_times(vdi_stats *st)
{
	char w[16][64], *t;
	int k;

	memset(st, 0, sizeof(*st));
	snprintf(st->set.name, sizeof(st->set.name), "plain");
	st->set.state = VDI_STATE_READY;
	dev(st, 0, "plain", 65536, 1, 0, 0);
	st->devs[0].queued_ns = st->devs[0].held_ns = 0;
	st->devs[0].reaping_ns = 0;
	st->ndevs = 2;		/* the second not opened yet: no name */
	st->devs[1].index = 1;
	t = render(st, 0, "");
	check(has_line(t, "figures of set 'plain': ready"),
	      "no time: no 'after', the state", t);
	k = row_words(t, "", "plain", w);
	check(k == 11 && !strcmp(w[1], "65536") && !strcmp(w[2], "-") &&
	      !strcmp(w[5], "-") && !strcmp(w[6], "-") && !strcmp(w[7], "-") &&
	      !strcmp(w[8], "-"), "stats off: '-' for the rate and times", t);
	check(row_words(t, "", "#1", w) == 11, "an unbound device is #index",
	      t);
	check(strstr(t, "times: not kept") && !strstr(t, "verdict:"),
	      "stats off: said so, no verdict", t);
	free(t);
}

static void aborts(vdi_stats *st)
{
	static const struct {
		uint32_t reason, dev, pid;
		const char *want;
	} c[] = {
		{ VDI_ABORT_SERVER_SIGNAL, VDI_ABORT_NO_DEVICE, 77,
		  "aborted: SignalAbort by the engine (pid 77)" },
		{ VDI_ABORT_CLIENT_SIGNAL, VDI_ABORT_NO_DEVICE, 0,
		  "aborted: SignalAbort by the client" },
		{ VDI_ABORT_CLIENT_CLOSE, 1, 5,
		  "aborted: the client closed device 'ab.1' before its end "
		  "(pid 5)" },
		{ VDI_ABORT_SERVER_EXIT, VDI_ABORT_NO_DEVICE, 9,
		  "aborted: the engine's process ended with the set open "
		  "(pid 9)" },
		{ VDI_ABORT_SERVER_CLOSE, 7, 0,
		  "aborted: the engine closed device #7 before its end" },
		{ VDI_ABORT_WATCHDOG, VDI_ABORT_NO_DEVICE, 0,
		  "aborted: the watchdog: no command completed in two server "
		  "timeouts (VDConfig.serverTimeOut)" },
		{ VDI_ABORT_ADMIN, VDI_ABORT_NO_DEVICE, 3,
		  "aborted: an administrator (vdictl abort) (pid 3)" },
		{ 99, VDI_ABORT_NO_DEVICE, 0, "aborted: abort reason 99" },
	};
	char what[160], *t;

	memset(st, 0, sizeof(*st));
	snprintf(st->set.name, sizeof(st->set.name), "ab");
	st->set.state = VDI_STATE_ABORTED;
	st->set.flags = VDI_SET_STATS_ON;
	dev(st, 0, "ab", 0, 0, 0, 0);
	dev(st, 1, "ab.1", 0, 0, 0, 0);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		st->set.abort_reason = c[i].reason;
		st->set.abort_device = c[i].dev;
		st->set.abort_pid = c[i].pid;
		t = render(st, 1.0, "");
		snprintf(what, sizeof(what), "abort reason %u in words",
			 c[i].reason);
		check(has_line(t, c[i].want), what, t);
		free(t);
	}
	st->set.abort_reason = VDI_ABORT_NONE;
	t = render(st, 1.0, "");
	check(!strstr(t, "aborted:") &&
	      has_line(t, "verdict: no verdict yet: too little has moved"),
	      "not aborted, nothing moved: no reason, no verdict yet", t);
	free(t);
}

/*
 * Names are another user's bytes (vdictl shows root every set): no
 * invalid UTF-8 nor C1 control (U+0080..U+009F, which some terminals obey)
 * reaches the terminal as it is; each such byte shows as \xNN, as vdictl's
 * other lines show it.  Valid UTF-8 passes.
 */
static void odd_names(vdi_stats *st)
{
	char *t;

	memset(st, 0, sizeof(*st));
	snprintf(st->set.name, sizeof(st->set.name), "n\xc3\xa9\xff");
	st->set.state = VDI_STATE_ABORTED;
	st->set.flags = VDI_SET_STATS_ON;
	st->set.abort_reason = VDI_ABORT_CLIENT_CLOSE;
	st->set.abort_device = 1;
	dev(st, 0, "n\xc3\xa9\xff", 0, 0, 0, 0);
	dev(st, 1, "d\xc2\x9b", 0, 0, 0, 0);
	t = render(st, 1.0, "");
	check(has_line(t, "figures of set 'n\xc3\xa9\\xff' after 1.00 s: "
		       "aborted") &&
	      strstr(t, "\n  n\xc3\xa9\\xff ") &&
	      strstr(t, "  d\\xc2\\x9b ") &&
	      has_line(t, "aborted: the client closed device 'd\\xc2\\x9b' "
		       "before its end") &&
	      !strchr(t, '\xff') && !strstr(t, "\xc2\x9b"),
	      "names: invalid UTF-8 and C1 controls as \\xNN", t);
	free(t);
}

/* ---- the ticker ---- */
static int snaps;

static int fake_snap(void *ctx, vdi_stats *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->set.name, sizeof(st->set.name), "%s", (char *)ctx);
	st->set.state = VDI_STATE_READY;
	st->set.flags = VDI_SET_STATS_ON;
	st->ndevs = 1;
	snaps++;
	return NOERROR;
}

static int failing_snap(void *ctx, vdi_stats *st)
{
	(void)ctx;
	(void)st;
	snaps++;
	return VD_E_NOTSUPPORTED;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void ticker(void)
{
	struct stats_ticker t;
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	double t0;

	snaps = 0;
	if (stats_ticker_start(&t, 1, fake_snap, "tick", m, "p: ") < 0) {
		check(0, "the ticker starts", NULL);
		return;
	}
	nanosleep(&(struct timespec){ 2, 500000000 }, NULL);
	t0 = now();
	stats_ticker_stop(&t);
	fflush(m);
	check(snaps == 2 && t.reports == 2, "1 s: two reports in 2.5 s", text);
	check(now() - t0 < 0.5, "stopped at once", NULL);
	/* due at 1.00 s; a loaded VM (TCG) may wake the thread late */
	check(strstr(text, "p: figures of set 'tick' after 1.") &&
	      !strstr(text, "after 0."),
	      "a report 1 s in (not before), with the prefix", text);
	fclose(m);
	free(text);

	/* a report due in 60 s does not hold up the stop */
	if (stats_ticker_start(&t, 60, fake_snap, "x", stdout, "") < 0) {
		check(0, "the ticker starts", NULL);
		return;
	}
	t0 = now();
	stats_ticker_stop(&t);
	check(now() - t0 < 0.5, "60 s: the stop does not wait for it", NULL);
	stats_ticker_stop(&t);	/* twice: nothing */

	/* a failed snapshot: said once, no more tries */
	text = NULL;
	m = open_memstream(&text, &len);
	snaps = 0;
	if (stats_ticker_start(&t, 1, failing_snap, NULL, m, "p: ") < 0) {
		check(0, "the ticker starts", NULL);
		return;
	}
	nanosleep(&(struct timespec){ 2, 300000000 }, NULL);
	stats_ticker_stop(&t);
	fflush(m);
	check(snaps == 1 && t.reports == 0 &&
	      strstr(text, "p: figures: VD_E_NOTSUPPORTED") &&
	      strstr(text, "(no more reports)"),
	      "a failed snapshot: said once, the ticking ends", text);
	fclose(m);
	free(text);
	check(stats_ticker_start(&t, 0, fake_snap, NULL, stdout, "") < 0,
	      "an interval of 0 is refused", NULL);
}

int main(void)
{
	vdi_stats *st = malloc(sizeof(*st));

	if (!st)
		return 1;
	table(st);
	no_times(st);
	aborts(st);
	odd_names(st);
	ticker();
	free(st);
	printf("1..%d\n", n);
	return failed != 0;
}
