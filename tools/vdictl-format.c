// SPDX-License-Identifier: GPL-2.0
/*
 * vdictl: what the module's numbers mean, in words (device states, abort
 * reasons for JSON, command and completion codes, features), and one set
 * with its devices as "vdictl show" prints it, as text or JSON.  The set's
 * state and abort cause in words, and its figures' table with the verdicts,
 * are stats-report.c's, as vdi-engine and vdi-client print them.
 */
#include <grp.h>
#include <pwd.h>
#include <string.h>

#include "stats-report.h"
#include "vdictl.h"

/* ------------------------------------------------------------ names */
const char *dev_state_name(uint32_t state)
{
	switch (state) {
	case VDI_DEV_STATE_ACTIVE:	return "active";
	case VDI_DEV_STATE_IO_ERROR:	return "io-error";
	case VDI_DEV_STATE_CLOSED:	return "closed";
	}
	return "unknown";
}

/* short, for JSON and tables */
const char *abort_reason_name(uint32_t reason)
{
	switch (reason) {
	case VDI_ABORT_NONE:		return "none";
	case VDI_ABORT_CLIENT_SIGNAL:	return "client-signal";
	case VDI_ABORT_SERVER_SIGNAL:	return "server-signal";
	case VDI_ABORT_CLIENT_CLOSE:	return "client-close";
	case VDI_ABORT_SERVER_CLOSE:	return "server-close";
	case VDI_ABORT_CLIENT_EXIT:	return "client-exit";
	case VDI_ABORT_SERVER_EXIT:	return "server-exit";
	case VDI_ABORT_WATCHDOG:	return "watchdog";
	case VDI_ABORT_ADMIN:		return "admin";
	}
	return "unknown";
}

/* VDI's command codes, as <sqlvdi/vdi.h> names them (VDCommands) */
const char *vdc_name(uint32_t code)
{
	static const char *const names[] = {
		[VDC_Read] = "VDC_Read",
		[VDC_Write] = "VDC_Write",
		[VDC_ClearError] = "VDC_ClearError",
		[VDC_Rewind] = "VDC_Rewind",
		[VDC_WriteMark] = "VDC_WriteMark",
		[VDC_SkipMarks] = "VDC_SkipMarks",
		[VDC_SkipBlocks] = "VDC_SkipBlocks",
		[VDC_Load] = "VDC_Load",
		[VDC_GetPosition] = "VDC_GetPosition",
		[VDC_SetPosition] = "VDC_SetPosition",
		[VDC_Discard] = "VDC_Discard",
		[VDC_Flush] = "VDC_Flush",
		[VDC_Snapshot] = "VDC_Snapshot",
		[VDC_MountSnapshot] = "VDC_MountSnapshot",
		[VDC_PrepareToFreeze] = "VDC_PrepareToFreeze",
		[VDC_FileInfoBegin] = "VDC_FileInfoBegin",
		[VDC_FileInfoEnd] = "VDC_FileInfoEnd",
		[VDC_GetError] = "VDC_GetError",
		[VDC_Complete] = "VDC_Complete",
	};

	return code < sizeof(names) / sizeof(names[0]) ? names[code] : NULL;
}

const char *side_name(int side)
{
	switch (side) {
	case VDI_SIDE_CLIENT:	return "client";
	case VDI_SIDE_ENGINE:	return "engine";
	case VDI_SIDE_BALANCED:	return "balanced";
	}
	return "-";
}

/* VDConfig.features bits (enum VDFeatures), one by one */
static const struct {
	uint32_t bit;
	const char *name;
} vdf_names[] = {
	{ VDF_Removable, "Removable" }, { VDF_Rewind, "Rewind" },
	{ VDF_Position, "Position" }, { VDF_SkipBlocks, "SkipBlocks" },
	{ VDF_ReversePosition, "ReversePosition" }, { VDF_Discard, "Discard" },
	{ VDF_FileMarks, "FileMarks" }, { VDF_RandomAccess, "RandomAccess" },
	{ VDF_SnapshotPrepare, "SnapshotPrepare" },
	{ VDF_EnumFrozenFiles, "EnumFrozenFiles" },
	{ VDF_VSSWriter, "VSSWriter" }, { VDF_RequestComplete, "RequestComplete" },
	{ VDF_WriteMedia, "WriteMedia" }, { VDF_ReadMedia, "ReadMedia" },
	{ VDF_CompleteEnabled, "CompleteEnabled" },
	{ 0x80000000U, "LatchStats" },
};

/* what the client asked for: the feature set's kind (spec 3.3) */
static const char *media_kind(uint32_t features)
{
	uint32_t mode = features & VDI_VDF_MODE_MASK;

	if (!mode)
		return "pipe-like";
	if (mode & VDI_VDF_RANDOM_ACCESS)
		return "disk-like";
	return "tape-like";
}

/* ------------------------------------------------------------ numbers */
const char *fmt_short(char *buf, size_t len, uint64_t bytes)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int i = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, "%.1f%s", v, unit[i]);
	return buf;
}

const char *fmt_ms(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	return buf;
}

const char *user_name(uint32_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", uid);
	return buf;
}

const char *group_name(uint32_t gid, char *buf, size_t len)
{
	struct group *gr = getgrgid(gid);

	if (gr)
		snprintf(buf, len, "%s", gr->gr_name);
	else
		snprintf(buf, len, "%u", gid);
	return buf;
}

uint64_t set_bytes(const vdi_stats *st)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < st->ndevs; i++)
		sum += st->devs[i].bytes_read + st->devs[i].bytes_written;
	return sum;
}

/* percent of a in a + b, 0 when both are 0 */
static unsigned int share(uint64_t a, uint64_t b)
{
	return a + b ? (unsigned int)((a * 100 + (a + b) / 2) / (a + b)) : 0;
}

static void verdict(const vdi_stats *st, int dev, vdi_verdict *v)
{
	if (vdi_stats_verdict(st, dev, v)) {	/* only for a bad dev */
		memset(v, 0, sizeof(*v));
		snprintf(v->text, sizeof(v->text), "no verdict");
	}
}

/* ------------------------------------------------------------ show (text) */
static void show_config(FILE *f, const struct vdi_set_stats *s)
{
	const struct vdi_config *c = &s->config;
	const char *sep = " (";
	char b1[32];
	unsigned int i;

	fprintf(f, "  config:       %u device%s, %s, features 0x%x", c->device_count,
		c->device_count == 1 ? "" : "s", media_kind(c->features),
		c->features);
	for (i = 0; i < sizeof(vdf_names) / sizeof(vdf_names[0]); i++) {
		if (!(c->features & vdf_names[i].bit))
			continue;
		fprintf(f, "%s%s", sep, vdf_names[i].name);
		sep = "|";
	}
	fprintf(f, "%s\n", sep[0] == '|' ? ")" : "");
	fprintf(f, "                block %u, alignment %u, max transfer %u, "
		"queue depth %u\n", c->block_size, c->alignment,
		c->max_transfer_size, s->queue_depth);
	fprintf(f, "                buffer area %s, server timeout %u ms\n",
		s->area_size ? fmt_bytes(b1, sizeof(b1), s->area_size) : "none yet",
		c->server_timeout);
}

static void show_times(FILE *f, const struct vdi_set_stats *s)
{
	fprintf(f, "  age:          %.3f s", (double)s->age_ns / 1e9);
	if (s->ready_age_ns)
		fprintf(f, ", ready for %.3f s", (double)s->ready_age_ns / 1e9);
	if (s->end_age_ns)
		fprintf(f, ", ended %.3f s ago", (double)s->end_age_ns / 1e9);
	fputc('\n', f);
}

static void show_codes(FILE *f, const struct vdi_dev_stats *d)
{
	bool any = false;
	unsigned int c;

	fprintf(f, "    by code:    ");
	for (c = 0; c <= VDI_VDC_MAX; c++) {
		if (!d->sent_by_code[c])
			continue;
		fprintf(f, "%s%s %llu", any ? ", " : "",
			vdc_name(c) ? vdc_name(c) : "code 0",
			(unsigned long long)d->sent_by_code[c]);
		any = true;
	}
	fprintf(f, "%s\n", any ? "" : "none");
	any = false;
	fprintf(f, "    completed:  ");
	for (c = 0; c < VDI_STATS_CODES; c++) {
		if (!d->completions[c].count)
			continue;
		fprintf(f, "%s%s (%u) %llu", any ? ", " : "",
			win32_name((int32_t)d->completions[c].code),
			d->completions[c].code,
			(unsigned long long)d->completions[c].count);
		any = true;
	}
	if (d->completions_other)
		fprintf(f, "%sother codes %llu", any ? ", " : "",
			(unsigned long long)d->completions_other);
	fprintf(f, "%s\n", any || d->completions_other ? "" : "none");
}

static void show_device(FILE *f, const vdi_stats *st, unsigned int i, bool timed)
{
	const struct vdi_dev_stats *d = &st->devs[i];
	char name[4 * VDI_NAME_MAX], b1[32], b2[32], b3[32];
	vdi_verdict v;

	/* the module's open flags say who has opened it: a close keeps them */
	fprintf(f, "device %u %s: %s, opened by %s\n", d->index,
		d->name[0] ? safe_name(d->name, name, sizeof(name)) : "(not open yet)",
		dev_state_name(d->state),
		(d->flags & VDI_DEV_SERVER_OPEN) && (d->flags & VDI_DEV_CLIENT_OPEN) ?
		"the engine and the client" : d->flags & VDI_DEV_SERVER_OPEN ?
		"the engine" : d->flags & VDI_DEV_CLIENT_OPEN ? "the client" :
		"neither side yet");
	fprintf(f, "    now:        queued %u, held %u, done %u; peaks: queued %u, "
		"in flight %u\n", d->queued, d->held, d->done, d->queued_peak,
		d->inflight_peak);
	fprintf(f, "    commands:   sent %llu, taken %llu, completed %llu, "
		"reaped %llu\n", (unsigned long long)d->sent,
		(unsigned long long)d->taken, (unsigned long long)d->completed,
		(unsigned long long)d->reaped);
	show_codes(f, d);
	fprintf(f, "    bytes:      written %llu (%s), read %llu (%s)\n",
		(unsigned long long)d->bytes_written,
		fmt_bytes(b1, sizeof(b1), d->bytes_written),
		(unsigned long long)d->bytes_read,
		fmt_bytes(b2, sizeof(b2), d->bytes_read));
	fprintf(f, "    io-error:   %u episode%s\n", d->io_error_episodes,
		d->io_error_episodes == 1 ? "" : "s");
	if (!timed) {
		fprintf(f, "    times:      not measured (the set was created "
			"with the stats parameter off)\n");
		return;
	}
	fprintf(f, "    times:      queued %s, held %s, reaping %s\n",
		fmt_ms(b1, sizeof(b1), d->queued_ns),
		fmt_ms(b2, sizeof(b2), d->held_ns),
		fmt_ms(b3, sizeof(b3), d->reaping_ns));
	fprintf(f, "    client:     busy %u%% (%s), idle %u%% (%s)\n",
		share(d->client_busy_ns, d->client_idle_ns),
		fmt_ms(b1, sizeof(b1), d->client_busy_ns),
		share(d->client_idle_ns, d->client_busy_ns),
		fmt_ms(b2, sizeof(b2), d->client_idle_ns));
	verdict(st, (int)i, &v);
	fprintf(f, "    verdict:    %s\n", v.text);
}

/* the time the figures cover: from END_CONFIG to the end, or to now */
static double covered_s(const struct vdi_set_stats *s)
{
	if (!s->ready_age_ns || s->ready_age_ns < s->end_age_ns)
		return 0;
	return (double)(s->ready_age_ns - s->end_age_ns) / 1e9;
}

void show_text(FILE *f, const vdi_stats *st)
{
	const struct vdi_set_stats *s = &st->set;
	char name[4 * VDI_NAME_MAX], u[64], g[64], why[ABORT_TEXT_LEN];
	bool timed = s->flags & VDI_SET_STATS_ON;
	unsigned int i;

	fprintf(f, "set %s (id %llu)\n", safe_name(s->name, name, sizeof(name)),
		(unsigned long long)s->id);
	fprintf(f, "  state:        %s%s\n", stats_state_name(s->state),
		s->flags & VDI_SET_LINKED ? "" :
		" (its name is released: a process still holds the set)");
	fprintf(f, "  owner:        %s (uid %u), group %s (gid %u), mode %04o\n",
		user_name(s->uid, u, sizeof(u)), s->uid,
		group_name(s->gid, g, sizeof(g)), s->gid, s->mode);
	fprintf(f, "  client:       ");
	if (s->client_pid)
		fprintf(f, "pid %u", s->client_pid);
	else
		fprintf(f, "gone (or not in this pid namespace)");
	fprintf(f, ", %u secondary set fd%s\n", s->secondaries,
		s->secondaries == 1 ? "" : "s");
	fprintf(f, "  engine:       ");
	if (s->server_pid)
		fprintf(f, "pid %u\n", s->server_pid);
	else
		fprintf(f, "%s\n", s->flags & VDI_SET_HAS_SERVER ?
			"gone (or not in this pid namespace)" : "not connected yet");
	show_config(f, s);
	show_times(f, s);
	fprintf(f, "  abort:        %s\n", s->abort_reason == VDI_ABORT_NONE ?
		"not aborted" : stats_abort_text(st, why, sizeof(why)));
	if (timed)
		fprintf(f, "  agent waited: %s with nothing completed\n",
			fmt_ms(u, sizeof(u), s->agent_wait_ns));
	/* the table and the verdict, as the tools print them at their end */
	fflush(f);
	stats_report(f, st, covered_s(s), "  ");
	for (i = 0; i < st->ndevs; i++)
		show_device(f, st, i, timed);
}

/* ------------------------------------------------------------ show (JSON) */
static void verdict_json(struct json *j, const vdi_stats *st, int dev)
{
	vdi_verdict v;

	verdict(st, dev, &v);
	json_obj(j, "verdict");
	json_str(j, "side", v.side == VDI_SIDE_NONE ? "none" : side_name(v.side),
		 16);
	if (v.side == VDI_SIDE_NONE)
		json_null(j, "client_busy_pct");
	else
		json_u64(j, "client_busy_pct", v.client_pct);
	json_str(j, "text", v.text, sizeof(v.text));
	json_end_obj(j);
}

void set_summary_json(struct json *j, const vdi_stats *st)
{
	const struct vdi_set_stats *s = &st->set;
	char u[64], g[64], mode[8];

	json_u64(j, "id", s->id);
	json_name(j, "name", s->name);
	json_str(j, "state", stats_state_name(s->state), 16);
	json_bool(j, "linked", s->flags & VDI_SET_LINKED);
	json_u64(j, "uid", s->uid);
	json_str(j, "user", user_name(s->uid, u, sizeof(u)), sizeof(u));
	json_u64(j, "gid", s->gid);
	json_str(j, "group", group_name(s->gid, g, sizeof(g)), sizeof(g));
	snprintf(mode, sizeof(mode), "%04o", s->mode & 07777);
	json_str(j, "mode", mode, sizeof(mode));
	json_pid(j, "client_pid", s->client_pid);
	json_pid(j, "server_pid", s->server_pid);
	json_u64(j, "devices", s->config.device_count);
	json_u64(j, "bytes", set_bytes(st));
	json_str(j, "abort_reason", abort_reason_name(s->abort_reason), 32);
	verdict_json(j, st, -1);
}

static void config_json(struct json *j, const struct vdi_set_stats *s)
{
	const struct vdi_config *c = &s->config;
	unsigned int i;

	json_obj(j, "config");
	json_u64(j, "device_count", c->device_count);
	json_u64(j, "features", c->features);
	json_arr(j, "feature_names");
	for (i = 0; i < sizeof(vdf_names) / sizeof(vdf_names[0]); i++)
		if (c->features & vdf_names[i].bit)
			json_str(j, NULL, vdf_names[i].name, 32);
	json_end_arr(j);
	json_str(j, "kind", media_kind(c->features), 16);
	json_u64(j, "prefix_zone_size", c->prefix_zone_size);
	json_u64(j, "alignment", c->alignment);
	json_u64(j, "soft_file_mark_block_size", c->soft_file_mark_block_size);
	json_u64(j, "eom_warning_size", c->eom_warning_size);
	json_u64(j, "server_timeout", c->server_timeout);
	json_u64(j, "block_size", c->block_size);
	json_u64(j, "max_io_depth", c->max_io_depth);
	json_u64(j, "max_transfer_size", c->max_transfer_size);
	json_u64(j, "buffer_area_size", c->buffer_area_size);
	json_end_obj(j);
}

static void device_json(struct json *j, const vdi_stats *st, unsigned int i)
{
	const struct vdi_dev_stats *d = &st->devs[i];
	unsigned int c;

	json_obj(j, NULL);
	json_u64(j, "index", d->index);
	json_name(j, "name", d->name);
	json_str(j, "state", dev_state_name(d->state), 16);
	json_bool(j, "server_open", d->flags & VDI_DEV_SERVER_OPEN);
	json_bool(j, "client_open", d->flags & VDI_DEV_CLIENT_OPEN);
	json_u64(j, "queued", d->queued);
	json_u64(j, "held", d->held);
	json_u64(j, "done", d->done);
	json_u64(j, "queued_peak", d->queued_peak);
	json_u64(j, "inflight_peak", d->inflight_peak);
	json_u64(j, "io_error_episodes", d->io_error_episodes);
	json_u64(j, "sent", d->sent);
	json_u64(j, "taken", d->taken);
	json_u64(j, "completed", d->completed);
	json_u64(j, "reaped", d->reaped);
	json_u64(j, "bytes_read", d->bytes_read);
	json_u64(j, "bytes_written", d->bytes_written);
	json_u64(j, "queued_ns", d->queued_ns);
	json_u64(j, "held_ns", d->held_ns);
	json_u64(j, "reaping_ns", d->reaping_ns);
	json_u64(j, "client_busy_ns", d->client_busy_ns);
	json_u64(j, "client_idle_ns", d->client_idle_ns);
	/* by name, only the codes sent: {"VDC_Write": 12, ...} */
	json_obj(j, "sent_by_code");
	for (c = 0; c <= VDI_VDC_MAX; c++) {
		char other[16];

		if (!d->sent_by_code[c])
			continue;
		snprintf(other, sizeof(other), "code %u", c);
		json_u64(j, vdc_name(c) ? vdc_name(c) : other, d->sent_by_code[c]);
	}
	json_end_obj(j);
	json_arr(j, "completions");
	for (c = 0; c < VDI_STATS_CODES; c++) {
		if (!d->completions[c].count)
			continue;
		json_obj(j, NULL);
		json_u64(j, "code", d->completions[c].code);
		json_str(j, "name", win32_name((int32_t)d->completions[c].code), 48);
		json_u64(j, "count", d->completions[c].count);
		json_end_obj(j);
	}
	json_end_arr(j);
	json_u64(j, "completions_other", d->completions_other);
	verdict_json(j, st, (int)i);
	json_end_obj(j);
}

void show_json(struct json *j, const vdi_stats *st)
{
	const struct vdi_set_stats *s = &st->set;
	char why[ABORT_TEXT_LEN];
	unsigned int i;

	json_obj(j, NULL);
	json_obj(j, "set");
	set_summary_json(j, st);
	json_bool(j, "has_server", s->flags & VDI_SET_HAS_SERVER);
	json_bool(j, "timed", s->flags & VDI_SET_STATS_ON);
	json_u64(j, "secondaries", s->secondaries);
	json_u64(j, "queue_depth", s->queue_depth);
	config_json(j, s);
	json_obj(j, "abort");
	json_str(j, "reason", abort_reason_name(s->abort_reason), 32);
	if (s->abort_reason == VDI_ABORT_NONE)
		json_null(j, "text");
	else
		json_str(j, "text", stats_abort_text(st, why, sizeof(why)),
			 sizeof(why));
	if (s->abort_reason != VDI_ABORT_NONE &&
	    s->abort_device != VDI_ABORT_NO_DEVICE)
		json_u64(j, "device", s->abort_device);
	else
		json_null(j, "device");
	json_pid(j, "pid", s->abort_reason != VDI_ABORT_NONE ? s->abort_pid : 0);
	json_end_obj(j);
	json_u64(j, "area_size", s->area_size);
	json_u64(j, "age_ns", s->age_ns);
	json_u64(j, "ready_age_ns", s->ready_age_ns);
	json_u64(j, "end_age_ns", s->end_age_ns);
	json_u64(j, "agent_wait_ns", s->agent_wait_ns);
	json_end_obj(j);
	json_arr(j, "devices");
	for (i = 0; i < st->ndevs; i++)
		device_json(j, st, i);
	json_end_arr(j);
	json_end_obj(j);
}
