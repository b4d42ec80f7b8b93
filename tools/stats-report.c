// SPDX-License-Identifier: GPL-2.0
/* The module's figures of a set in words, and a ticker; see stats-report.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stats-report.h"

/* ================================================================ names */
size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;	/* a continuation byte, C0/C1 (overlong), F5.. */
	/* the second byte's range rules out overlong forms, surrogates
	 * (ED A0..BF) and code points past U+10FFFF */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

const char *safe_name(const char *name, char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = strnlen(name, VDI_NAME_MAX), i = 0, o = 0, k;

	while (i < n && o + 5 < len) {
		k = utf8_seq(s + i, n - i);
		/* C1 controls are U+0080..U+009F: C2 80..C2 9F */
		if (!k || (k == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0)) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", s[i]);
			i++;
			continue;
		}
		memcpy(buf + o, s + i, k);
		o += k;
		i += k;
	}
	buf[o] = '\0';
	return buf;
}

const char *stats_state_name(uint32_t state)
{
	switch (state) {
	case VDI_STATE_CREATED:		return "created";
	case VDI_STATE_CONNECTED:	return "connected";
	case VDI_STATE_CONFIGURING:	return "configuring";
	case VDI_STATE_READY:		return "ready";
	case VDI_STATE_DONE:		return "done";
	case VDI_STATE_ABORTED:		return "aborted";
	}
	return "unknown state";
}

/* "device 'x'" or "the set", for the abort's cause */
static const char *abort_what(const vdi_stats *st, char *buf, size_t len)
{
	uint32_t i = st->set.abort_device;
	char name[SAFE_NAME_LEN];

	if (i == VDI_ABORT_NO_DEVICE)
		snprintf(buf, len, "the set");
	else if (i < st->ndevs && st->devs[i].name[0])
		snprintf(buf, len, "device '%s'",
			 safe_name(st->devs[i].name, name, sizeof(name)));
	else
		snprintf(buf, len, "device #%" PRIu32, i);
	return buf;
}

const char *stats_abort_text(const vdi_stats *st, char *buf, size_t len)
{
	const struct vdi_set_stats *s = &st->set;
	char what[SAFE_NAME_LEN + 16], pid[32] = "";

	if (s->abort_pid)
		snprintf(pid, sizeof(pid), " (pid %" PRIu32 ")", s->abort_pid);
	switch (s->abort_reason) {
	case VDI_ABORT_NONE:
		snprintf(buf, len, "%s", "");
		break;
	case VDI_ABORT_CLIENT_SIGNAL:
		snprintf(buf, len, "SignalAbort by the client%s", pid);
		break;
	case VDI_ABORT_SERVER_SIGNAL:
		snprintf(buf, len, "SignalAbort by the engine%s", pid);
		break;
	case VDI_ABORT_CLIENT_CLOSE:
	case VDI_ABORT_SERVER_CLOSE:
		snprintf(buf, len, "the %s closed %s before its end%s",
			 s->abort_reason == VDI_ABORT_CLIENT_CLOSE ?
			 "client" : "engine",
			 abort_what(st, what, sizeof(what)), pid);
		break;
	case VDI_ABORT_CLIENT_EXIT:
	case VDI_ABORT_SERVER_EXIT:
		snprintf(buf, len, "the %s's process ended with %s open%s",
			 s->abort_reason == VDI_ABORT_CLIENT_EXIT ?
			 "client" : "engine",
			 abort_what(st, what, sizeof(what)), pid);
		break;
	case VDI_ABORT_WATCHDOG:
		snprintf(buf, len, "the watchdog: no command completed in "
			 "two server timeouts (VDConfig.serverTimeOut)");
		break;
	case VDI_ABORT_ADMIN:
		snprintf(buf, len, "an administrator (vdictl abort)%s", pid);
		break;
	default:
		snprintf(buf, len, "abort reason %" PRIu32 "%s",
			 s->abort_reason, pid);
	}
	return buf;
}

/* A device's name, or "#index" before a first open bound one. */
static const char *dev_label(const struct vdi_dev_stats *d, char *buf,
			     size_t len)
{
	if (d->name[0])
		safe_name(d->name, buf, len);
	else
		snprintf(buf, len, "#%" PRIu32, d->index);
	return buf;
}

/* ================================================================ table */
enum col {
	C_NAME, C_BYTES, C_RATE, C_SENT, C_DONE, C_QUEUED, C_HELD, C_REAP,
	C_BUSY, C_IOERR, C_PEAK, NCOLS
};

static const char *const col_head[NCOLS] = {
	"device", "bytes", "MiB/s", "sent", "completed", "queued-ms",
	"held-ms", "reaping-ms", "busy", "io-errors", "peak-queued",
};

/* One row: the device's name can be 127 bytes, the numbers are short. */
struct row {
	char name[SAFE_NAME_LEN];
	char cell[NCOLS][24];	/* [C_NAME] unused */
};

/* What a row is made of: one device's figures, or the sum of them all. */
struct sums {
	uint64_t bytes, sent, taken, completed, reaped;
	uint64_t queued_now, held_now;
	uint64_t queued_ns, held_ns, reaping_ns, busy_ns, idle_ns;
	uint32_t io_errors, peak;
};

static void add_dev(struct sums *s, const struct vdi_dev_stats *d)
{
	s->bytes += d->bytes_read + d->bytes_written;
	s->sent += d->sent;
	s->taken += d->taken;
	s->completed += d->completed;
	s->reaped += d->reaped;
	s->queued_now += d->queued;
	s->held_now += d->held;
	s->queued_ns += d->queued_ns;
	s->held_ns += d->held_ns;
	s->reaping_ns += d->reaping_ns;
	s->busy_ns += d->client_busy_ns;
	s->idle_ns += d->client_idle_ns;
	s->io_errors += d->io_error_episodes;
	if (d->queued_peak > s->peak)
		s->peak = d->queued_peak;
}

/* ns over n commands as milliseconds, or "-" with nothing to average */
static void avg_ms(char *buf, size_t len, uint64_t ns, uint64_t n, bool timed)
{
	if (!timed || !n)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.3f", (double)ns / (double)n / 1e6);
}

static void fill_row(struct row *r, const struct sums *s, double elapsed_s,
		     bool timed)
{
	uint64_t shared = s->busy_ns + s->idle_ns;
	/*
	 * Each time total is summed over the commands that have left that
	 * stage (docs/ABI.md, "Figures"): queued_ns over those no longer
	 * queued (taken, or ended there by an IO-ERROR flush or an abort),
	 * held_ns over those taken and no longer held, reaping_ns over those
	 * reaped.
	 */
	uint64_t queued_n = s->sent - s->queued_now;
	uint64_t held_n = s->taken - s->held_now;

	snprintf(r->cell[C_BYTES], sizeof(r->cell[0]), "%" PRIu64, s->bytes);
	if (elapsed_s > 0)
		snprintf(r->cell[C_RATE], sizeof(r->cell[0]), "%.1f",
			 (double)s->bytes / elapsed_s / 1048576.0);
	else
		snprintf(r->cell[C_RATE], sizeof(r->cell[0]), "-");
	snprintf(r->cell[C_SENT], sizeof(r->cell[0]), "%" PRIu64, s->sent);
	snprintf(r->cell[C_DONE], sizeof(r->cell[0]), "%" PRIu64,
		 s->completed);
	avg_ms(r->cell[C_QUEUED], sizeof(r->cell[0]), s->queued_ns, queued_n,
	       timed);
	avg_ms(r->cell[C_HELD], sizeof(r->cell[0]), s->held_ns, held_n,
	       timed);
	avg_ms(r->cell[C_REAP], sizeof(r->cell[0]), s->reaping_ns, s->reaped,
	       timed);
	if (timed && shared)
		snprintf(r->cell[C_BUSY], sizeof(r->cell[0]), "%u%%",
			 (unsigned int)(s->busy_ns * 100 / shared));
	else
		snprintf(r->cell[C_BUSY], sizeof(r->cell[0]), "-");
	snprintf(r->cell[C_IOERR], sizeof(r->cell[0]), "%" PRIu32,
		 s->io_errors);
	snprintf(r->cell[C_PEAK], sizeof(r->cell[0]), "%" PRIu32, s->peak);
}

/* The table: header, devices, and "(all)" when there are several. */
static void print_table(FILE *f, const vdi_stats *st, double elapsed_s,
			bool timed, const char *prefix)
{
	unsigned int nrows = st->ndevs + 1 + (st->ndevs > 1), i, c;
	size_t w[NCOLS];
	struct sums all = { 0 };
	struct row *rows;

	rows = calloc(nrows, sizeof(*rows));
	if (!rows) {
		fprintf(f, "%s  (no memory for the table)\n", prefix);
		return;
	}
	snprintf(rows[0].name, sizeof(rows[0].name), "%s", col_head[C_NAME]);
	for (c = 1; c < NCOLS; c++)
		snprintf(rows[0].cell[c], sizeof(rows[0].cell[c]), "%s",
			 col_head[c]);
	for (i = 0; i < st->ndevs; i++) {
		const struct vdi_dev_stats *d = &st->devs[i];
		struct sums one = { 0 };

		add_dev(&one, d);
		add_dev(&all, d);
		dev_label(d, rows[i + 1].name, sizeof(rows[0].name));
		fill_row(&rows[i + 1], &one, elapsed_s, timed);
	}
	if (st->ndevs > 1) {
		snprintf(rows[nrows - 1].name, sizeof(rows[0].name), "(all)");
		fill_row(&rows[nrows - 1], &all, elapsed_s, timed);
	}
	for (c = 0; c < NCOLS; c++) {
		w[c] = 0;
		for (i = 0; i < nrows; i++) {
			size_t l = strlen(c == C_NAME ? rows[i].name :
					  rows[i].cell[c]);

			if (l > w[c])
				w[c] = l;
		}
	}
	for (i = 0; i < nrows; i++) {
		fprintf(f, "%s  %-*s", prefix, (int)w[C_NAME], rows[i].name);
		for (c = 1; c < NCOLS; c++)
			fprintf(f, "  %*s", (int)w[c], rows[i].cell[c]);
		fputc('\n', f);
	}
	free(rows);
}

/* The set's verdict, and each device's when they do not all agree. */
static void print_verdicts(FILE *f, const vdi_stats *st, const char *prefix)
{
	char name[SAFE_NAME_LEN];
	vdi_verdict set, dev;
	bool differ = false;
	unsigned int i;

	if (vdi_stats_verdict(st, -1, &set) != NOERROR) {
		fprintf(f, "%sverdict: none (%s)\n", prefix, vdi_last_error());
		return;
	}
	fprintf(f, "%sverdict: %s\n", prefix, set.text);
	if (st->ndevs < 2)
		return;
	for (i = 0; i < st->ndevs; i++)
		if (vdi_stats_verdict(st, (int)i, &dev) == NOERROR &&
		    dev.side != VDI_SIDE_NONE && dev.side != set.side)
			differ = true;
	if (!differ)
		return;
	for (i = 0; i < st->ndevs; i++)
		if (vdi_stats_verdict(st, (int)i, &dev) == NOERROR)
			fprintf(f, "%sverdict '%s': %s\n", prefix,
				dev_label(&st->devs[i], name, sizeof(name)),
				dev.text);
}

static void write_report(FILE *f, const vdi_stats *st, double elapsed_s,
			 const char *prefix)
{
	bool timed = st->set.flags & VDI_SET_STATS_ON;
	char why[ABORT_TEXT_LEN], name[SAFE_NAME_LEN];

	safe_name(st->set.name, name, sizeof(name));
	if (elapsed_s > 0)
		fprintf(f, "%sfigures of set '%s' after %.2f s: %s\n", prefix,
			name, elapsed_s, stats_state_name(st->set.state));
	else
		fprintf(f, "%sfigures of set '%s': %s\n", prefix, name,
			stats_state_name(st->set.state));
	print_table(f, st, elapsed_s, timed, prefix);
	if (st->set.abort_reason != VDI_ABORT_NONE)
		fprintf(f, "%saborted: %s\n", prefix,
			stats_abort_text(st, why, sizeof(why)));
	if (!timed)
		fprintf(f, "%stimes: not kept (the vdi module's stats "
			"parameter was off when the set was created): no "
			"verdict\n", prefix);
	else
		print_verdicts(f, st, prefix);
}

void stats_report(FILE *f, const vdi_stats *st, double elapsed_s,
		  const char *prefix)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m;

	if (!prefix)
		prefix = "";
	/* composed first, written at once: other threads' lines (messages,
	 * another report) do not come between its lines */
	m = open_memstream(&text, &len);
	if (!m) {
		write_report(f, st, elapsed_s, prefix);
		return;
	}
	/* on a terminal, a progress line (common.c's, "\r" and no newline)
	 * may be on it: erase it first, the next update draws it again */
	if (isatty(fileno(f)))
		fputs("\r\033[K", m);
	write_report(m, st, elapsed_s, prefix);
	if (fclose(m) == 0 && text)
		fputs(text, f);
	free(text);
	fflush(f);
}

/* ================================================================ ticker */
static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void *ticker_main(void *arg)
{
	struct stats_ticker *t = arg;
	struct timespec due = t->t0, now;
	int rc;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		due.tv_sec += t->interval_s;
		/* a timed wait, not sleep(): stats_ticker_stop() ends it */
		while (!t->stop &&
		       pthread_cond_timedwait(&t->cond, &t->lock, &due) !=
		       ETIMEDOUT)
			;
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->lock);
		rc = t->snap(t->ctx, t->st);
		if (rc == NOERROR) {
			stats_report(t->f, t->st, since(&t->t0), t->prefix);
			t->reports++;
		} else {
			fprintf(t->f, "%sfigures: %s: %s (no more reports)\n",
				t->prefix, vdi_code_name(rc),
				vdi_last_error());
		}
		pthread_mutex_lock(&t->lock);
		if (rc != NOERROR)
			break;
		/* reports keep to the interval from the start; but one that
		 * took longer than an interval (a slow stderr) is followed an
		 * interval after it ends, not by a burst of overdue ones */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (due.tv_sec + t->interval_s < now.tv_sec ||
		    (due.tv_sec + t->interval_s == now.tv_sec &&
		     due.tv_nsec < now.tv_nsec))
			due = now;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int stats_ticker_start(struct stats_ticker *t, unsigned int interval_s,
		       stats_snap_fn snap, void *ctx, FILE *f,
		       const char *prefix)
{
	pthread_condattr_t ca;
	int err;

	memset(t, 0, sizeof(*t));
	if (!interval_s || !snap) {
		errno = EINVAL;
		return -1;
	}
	t->interval_s = interval_s;
	t->snap = snap;
	t->ctx = ctx;
	t->f = f;
	t->prefix = prefix ? prefix : "";
	t->st = malloc(sizeof(*t->st));
	if (!t->st)
		return -1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	clock_gettime(CLOCK_MONOTONIC, &t->t0);
	err = pthread_create(&t->thread, NULL, ticker_main, t);
	if (err) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t->st);
		t->st = NULL;
		errno = err;
		return -1;
	}
	t->started = true;
	return 0;
}

void stats_ticker_stop(struct stats_ticker *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	t->started = false;
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t->st);
	t->st = NULL;
}
