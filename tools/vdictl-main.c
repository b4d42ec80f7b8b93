// SPDX-License-Identifier: GPL-2.0
/*
 * vdictl - what the vdi module and its sets are doing.
 *
 *   vdictl status | list | show SET | top | abort SET | load
 *
 * The figures come from the module (VDI_IOC_LIST_SETS, VDI_IOC_SET_STATS,
 * VDI_IOC_ABORT_SET) through libvdi's vdi_stats_* calls; a user sees the
 * sets they created, root every set of its namespaces.  Nothing here loads
 * the module but "vdictl load".  Exit status: 0 done, 1 failed, 2 bad
 * command line, 3 "vdictl status" with the module not loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vdictl.h"

#define MIB	(1024.0 * 1024.0)

static void usage(FILE *f)
{
	fprintf(f,
"Usage: vdictl [--json] COMMAND [options]\n"
"Look at the vdi module and its virtual device sets.\n"
"\n"
"  status            the module: loaded or not, version, API, features,\n"
"                    limits, parameters, /dev/vdi (exit 3: not loaded)\n"
"  list              one line per set you may see: id, state, owner, pids,\n"
"                    devices, bytes moved, the verdict\n"
"  show SET          everything about one set and each of its devices\n"
"  top [-n N] [-d SEC]  refresh a table of every device every SEC s\n"
"                    (1), with its throughput; N refreshes (default: until\n"
"                    interrupted)\n"
"  abort SET         abort a set, as SignalAbort would (its owner, or root)\n"
"  load              load the module (libkmod) and wait for /dev/vdi\n"
"\n"
"SET is a set's name, or #ID (its id, as list shows it); --id ID and\n"
"--name NAME say which.  Of sets sharing a name, the one whose name is\n"
"still taken is meant, else the newest.\n"
"\n"
"      --json        status, list, show, top: JSON on stdout, one document\n"
"                    per line (top: one per refresh)\n"
"  -h, --help\n"
"A user sees the sets they created; root sees every set of its namespaces.\n"
"The verdict says which side is slow: the client's storage (the engine\n"
"waited on it) or the engine (the client waited with nothing queued).\n");
}

/* ------------------------------------------------------------ options */
enum cmd { STATUS, LIST, SHOW, TOP, ABORT, LOAD };

static const struct {
	const char *word;
	enum cmd cmd;
} cmds[] = {
	{ "status", STATUS }, { "list", LIST }, { "show", SHOW },
	{ "top", TOP }, { "abort", ABORT }, { "load", LOAD },
};

static struct {
	enum cmd cmd;
	const char *word;
	bool json;
	/* show, abort: the set */
	bool by_id;
	uint64_t id;
	const char *name;
	/* top */
	uint64_t iterations;		/* 0: until interrupted */
	double delay;			/* seconds */
} opt = { .delay = 1.0 };

static void set_target_id(const char *s, const char *what)
{
	if (!parse_uint(s, UINT64_MAX, &opt.id) || !opt.id)
		usage_error("%s: a set id is a number from 1 up ('%s')", what, s);
	opt.by_id = true;
}

static void parse_target(const char *arg)
{
	if (opt.by_id || opt.name)
		usage_error("%s: one set only", opt.word);
	if (arg[0] == '#')
		set_target_id(arg + 1, "#ID");
	else if (!arg[0])
		usage_error("%s: an empty set name", opt.word);
	else
		opt.name = arg;
}

static void parse_delay(const char *s)
{
	char *end;

	errno = 0;
	opt.delay = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(opt.delay) ||
	    opt.delay < 0.1 || opt.delay > 3600)
		usage_error("-d: seconds, 0.1 to 3600 ('%s')", s);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "id", required_argument, NULL, 'I' },
		{ "name", required_argument, NULL, 'N' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "delay", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned int i;
	int c, cmd_at;

	/* options before the command word: --json, --help */
	for (cmd_at = 1; cmd_at < argc && argv[cmd_at][0] == '-'; cmd_at++) {
		if (!strcmp(argv[cmd_at], "--json")) {
			opt.json = true;
		} else if (!strcmp(argv[cmd_at], "-h") ||
			   !strcmp(argv[cmd_at], "--help")) {
			usage(stdout);
			exit(0);
		} else {
			usage_error("unknown option '%s' before the command",
				    argv[cmd_at]);
		}
	}
	if (cmd_at >= argc)
		usage_error("say what to do: status, list, show, top, abort "
			    "or load");
	opt.word = argv[cmd_at];
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(opt.word, cmds[i].word))
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0]))
		usage_error("unknown command '%s': say status, list, show, top, "
			    "abort or load", opt.word);
	opt.cmd = cmds[i].cmd;
	/* getopt names the program by argv[0]: keep it */
	argv[cmd_at] = argv[0];
	argc -= cmd_at;
	argv += cmd_at;

	while ((c = getopt_long(argc, argv, "n:d:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opt.json = true;
			break;
		case 'I':
			if (opt.by_id || opt.name)
				usage_error("%s: one set only", opt.word);
			set_target_id(optarg, "--id");
			break;
		case 'N':
			if (opt.by_id || opt.name)
				usage_error("%s: one set only", opt.word);
			if (!optarg[0])
				usage_error("--name: an empty set name");
			opt.name = optarg;
			break;
		case 'n':
			if (opt.cmd != TOP)
				usage_error("-n is for top");
			if (!parse_uint(optarg, UINT32_MAX, &opt.iterations) ||
			    !opt.iterations)
				usage_error("-n: refreshes, 1 or more ('%s')",
					    optarg);
			break;
		case 'd':
			if (opt.cmd != TOP)
				usage_error("-d is for top");
			parse_delay(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage_error("bad option");
		}
	}
	for (; optind < argc; optind++) {
		if (opt.cmd != SHOW && opt.cmd != ABORT)
			usage_error("%s takes no argument ('%s')", opt.word,
				    argv[optind]);
		parse_target(argv[optind]);
	}
	if ((opt.cmd == SHOW || opt.cmd == ABORT) && !opt.by_id && !opt.name)
		usage_error("%s: which set? (a name, or #ID from vdictl list)",
			    opt.word);
	if ((opt.by_id || opt.name) && opt.cmd != SHOW && opt.cmd != ABORT)
		usage_error("%s names no set", opt.word);
	if (opt.json && (opt.cmd == ABORT || opt.cmd == LOAD))
		usage_error("--json is for status, list, show and top");
}

/* ------------------------------------------------------------ the sets */
#define NOT_LOADED	"the vdi module is not loaded (vdictl load)"

/* Before a command that needs the module: say if it is not there. */
static int need_module(void)
{
	if (module_loaded() != 0)
		return 0;
	msg(NOT_LOADED);
	return EXIT_FAIL;
}

/* A libvdi call failed: say why, the module's absence in our words. */
static int vdi_failed(const char *what, int code)
{
	if (code == VD_E_NOTOPEN && module_loaded() == 0)
		msg(NOT_LOADED);
	else
		vdi_msg(what, code);
	return EXIT_FAIL;
}

struct snap {
	vdi_stats *sets;	/* oldest first */
	unsigned int n;
};

static void snap_free(struct snap *s)
{
	free(s->sets);
	s->sets = NULL;
	s->n = 0;
}

/* Every set the caller may see, each read once: 0, or an exit status
 * after a message.  A set that ends between the two calls is left out. */
static int snapshot(struct snap *s)
{
	unsigned int total = 0, room, i;
	uint64_t *ids = NULL, *more;
	int ret;

	s->sets = NULL;
	s->n = 0;
	ret = vdi_stats_list(NULL, 0, &total);
	for (;;) {
		if (ret)
			break;
		room = total + 8;	/* sets created meanwhile */
		more = realloc(ids, room * sizeof(*ids));
		if (!more) {
			free(ids);
			msg("out of memory");
			return EXIT_FAIL;
		}
		ids = more;
		ret = vdi_stats_list(ids, room, &total);
		if (ret || total <= room)
			break;
	}
	if (ret) {
		free(ids);
		return vdi_failed("listing the sets", ret);
	}
	s->sets = calloc(total ? total : 1, sizeof(*s->sets));
	if (!s->sets) {
		free(ids);
		msg("out of memory");
		return EXIT_FAIL;
	}
	for (i = 0; i < total; i++) {
		ret = vdi_stats_get(ids[i], &s->sets[s->n]);
		if (ret == VD_E_INVALID)	/* gone meanwhile */
			continue;
		if (ret) {
			free(ids);
			snap_free(s);
			return vdi_failed("reading a set", ret);
		}
		s->n++;
	}
	free(ids);
	return 0;
}

static bool name_is(const char *set_name, const char *name)
{
	return !strncmp(set_name, name, VDI_NAME_MAX);
}

/* Of several sets of one name: the linked one, else the newest. */
static bool better(const vdi_stats *a, const vdi_stats *b)
{
	bool la = a->set.flags & VDI_SET_LINKED;
	bool lb = b->set.flags & VDI_SET_LINKED;

	if (la != lb)
		return la;
	return a->set.age_ns < b->set.age_ns ||
	       (a->set.age_ns == b->set.age_ns && a->set.id > b->set.id);
}

/* No set has the name: perhaps a device of one has. */
static void not_found(const struct snap *s, const char *name)
{
	char b1[4 * VDI_NAME_MAX], b2[4 * VDI_NAME_MAX];
	unsigned int i, d;

	for (i = 0; i < s->n; i++)
		for (d = 0; d < s->sets[i].ndevs; d++)
			if (d && name_is(s->sets[i].devs[d].name, name)) {
				msg("no set named '%s': it is device %u of set "
				    "'%s' (#%llu)", safe_name(name, b1, sizeof(b1)),
				    d, safe_name(s->sets[i].set.name, b2,
						 sizeof(b2)),
				    (unsigned long long)s->sets[i].set.id);
				return;
			}
	msg("no set named '%s' among the sets you may see (%s)",
	    safe_name(name, b1, sizeof(b1)), geteuid() ?
	    "yours: another user's set is only root's to see" :
	    "every set of this namespace");
}

/* The set the command line names into *out: 0, or an exit status. */
static int find_set(vdi_stats *out)
{
	const vdi_stats *best = NULL;
	unsigned int i, same = 0;
	struct snap s;
	char b1[4 * VDI_NAME_MAX];
	int ret;

	if (opt.by_id) {
		ret = vdi_stats_get(opt.id, out);
		if (ret == VD_E_INVALID)
			msg("no set #%llu among the sets you may see",
			    (unsigned long long)opt.id);
		else if (ret == VD_E_SECURITY)
			msg("set #%llu is another user's: only its owner or "
			    "root may look at it", (unsigned long long)opt.id);
		else if (ret)
			return vdi_failed("reading the set", ret);
		return ret ? EXIT_FAIL : 0;
	}
	ret = snapshot(&s);
	if (ret)
		return ret;
	for (i = 0; i < s.n; i++) {
		if (!name_is(s.sets[i].set.name, opt.name))
			continue;
		same++;
		if (!best || better(&s.sets[i], best))
			best = &s.sets[i];
	}
	if (!best) {
		not_found(&s, opt.name);
		snap_free(&s);
		return EXIT_FAIL;
	}
	if (same > 1)
		msg("%u sets are named '%s': this is #%llu, the %s", same,
		    safe_name(opt.name, b1, sizeof(b1)),
		    (unsigned long long)best->set.id,
		    best->set.flags & VDI_SET_LINKED ?
		    "one whose name is taken" : "newest");
	memcpy(out, best, sizeof(*out));
	snap_free(&s);
	return 0;
}

/* ------------------------------------------------------------ list */
static void verdict_cells(const vdi_stats *st, char *busy, char *side,
			  size_t len)
{
	vdi_verdict v;

	if (vdi_stats_verdict(st, -1, &v) || v.side == VDI_SIDE_NONE) {
		snprintf(busy, len, "-");
		snprintf(side, len, "-");
		return;
	}
	snprintf(busy, len, "%u%%", v.client_pct);
	snprintf(side, len, "%s", side_name(v.side));
}

static void pid_cell(char *buf, size_t len, uint32_t pid)
{
	if (pid)
		snprintf(buf, len, "%u", pid);
	else
		snprintf(buf, len, "-");
}

#define LIST_COLS	10
static const char *const list_head[LIST_COLS] = {
	"ID", "STATE", "OWNER", "CLIENT", "SERVER", "DEVS", "BYTES", "BUSY",
	"VERDICT", "NAME"
};

static void list_row(const vdi_stats *st, char cells[LIST_COLS][4 * VDI_NAME_MAX + 16])
{
	const struct vdi_set_stats *s = &st->set;
	const size_t len = 4 * VDI_NAME_MAX + 16;
	char name[4 * VDI_NAME_MAX];

	snprintf(cells[0], len, "%llu", (unsigned long long)s->id);
	snprintf(cells[1], len, "%s", stats_state_name(s->state));
	user_name(s->uid, cells[2], len);
	pid_cell(cells[3], len, s->client_pid);
	pid_cell(cells[4], len, s->server_pid);
	snprintf(cells[5], len, "%u", s->config.device_count);
	fmt_short(cells[6], len, set_bytes(st));
	verdict_cells(st, cells[7], cells[8], len);
	snprintf(cells[9], len, "%s%s", safe_name(s->name, name, sizeof(name)),
		 s->flags & VDI_SET_LINKED ? "" : " (released)");
}

static int cmd_list(void)
{
	char (*cells)[LIST_COLS][4 * VDI_NAME_MAX + 16];
	size_t width[LIST_COLS];
	unsigned int i, c;
	struct snap s;
	struct json j;
	int ret;

	ret = need_module() ? EXIT_FAIL : snapshot(&s);
	if (ret)
		return ret;
	if (opt.json) {
		json_init(&j, stdout);
		json_obj(&j, NULL);
		json_arr(&j, "sets");
		for (i = 0; i < s.n; i++) {
			json_obj(&j, NULL);
			set_summary_json(&j, &s.sets[i]);
			json_end_obj(&j);
		}
		json_end_arr(&j);
		json_end_obj(&j);
		json_done(&j);
		snap_free(&s);
		return 0;
	}
	if (!s.n) {
		printf("no sets\n");
		snap_free(&s);
		return 0;
	}
	cells = calloc(s.n, sizeof(*cells));
	if (!cells) {
		snap_free(&s);
		msg("out of memory");
		return EXIT_FAIL;
	}
	for (c = 0; c < LIST_COLS; c++)
		width[c] = strlen(list_head[c]);
	for (i = 0; i < s.n; i++) {
		list_row(&s.sets[i], cells[i]);
		for (c = 0; c < LIST_COLS; c++)
			if (strlen(cells[i][c]) > width[c])
				width[c] = strlen(cells[i][c]);
	}
	for (c = 0; c < LIST_COLS; c++)
		printf("%-*s%s", c + 1 < LIST_COLS ? (int)width[c] : 0,
		       list_head[c], c + 1 < LIST_COLS ? "  " : "\n");
	for (i = 0; i < s.n; i++)
		for (c = 0; c < LIST_COLS; c++)
			printf("%-*s%s", c + 1 < LIST_COLS ? (int)width[c] : 0,
			       cells[i][c], c + 1 < LIST_COLS ? "  " : "\n");
	free(cells);
	snap_free(&s);
	return 0;
}

/* ------------------------------------------------------------ show */
static int cmd_show(void)
{
	vdi_stats *st = malloc(sizeof(*st));
	struct json j;
	int ret;

	if (!st) {
		msg("out of memory");
		return EXIT_FAIL;
	}
	ret = need_module() ? EXIT_FAIL : find_set(st);
	if (!ret && opt.json) {
		json_init(&j, stdout);
		show_json(&j, st);
		json_done(&j);
	} else if (!ret) {
		show_text(stdout, st);
	}
	free(st);
	return ret;
}

/* ------------------------------------------------------------ top */
/* A device's bytes at the previous refresh, for its throughput. */
struct sample {
	uint64_t id;
	uint32_t index;
	uint64_t bytes;
};

struct samples {
	struct sample *s;
	unsigned int n;
	double t;
};

/* MiB/s of a device since the previous refresh, or NAN if it is new. */
static double rate(const struct samples *prev, double t, uint64_t id,
		   uint32_t index, uint64_t bytes)
{
	unsigned int i;

	for (i = 0; i < prev->n; i++)
		if (prev->s[i].id == id && prev->s[i].index == index)
			return bytes >= prev->s[i].bytes && t > prev->t ?
			       (double)(bytes - prev->s[i].bytes) / MIB /
			       (t - prev->t) : NAN;
	return NAN;
}

static int keep_samples(struct samples *prev, const struct snap *s, double t)
{
	unsigned int i, d, n = 0;

	for (i = 0; i < s->n; i++)
		n += s->sets[i].ndevs;
	free(prev->s);
	prev->s = calloc(n ? n : 1, sizeof(*prev->s));
	prev->n = 0;
	prev->t = t;
	if (!prev->s) {
		msg("out of memory");
		return EXIT_FAIL;
	}
	for (i = 0; i < s->n; i++)
		for (d = 0; d < s->sets[i].ndevs; d++) {
			const struct vdi_dev_stats *dv = &s->sets[i].devs[d];

			prev->s[prev->n++] = (struct sample){
				.id = s->sets[i].set.id, .index = dv->index,
				.bytes = dv->bytes_read + dv->bytes_written,
			};
		}
	return 0;
}

static void top_text(const struct snap *s, const struct samples *prev,
		     double t, bool tty)
{
	char clock[16], name[4 * VDI_NAME_MAX], b1[32], busy[8], side[16];
	unsigned int i, d, ndev = 0;
	time_t now = time(NULL);
	struct tm tm;
	vdi_verdict v;
	double r;

	for (i = 0; i < s->n; i++)
		ndev += s->sets[i].ndevs;
	if (!localtime_r(&now, &tm) || !strftime(clock, sizeof(clock),
						 "%H:%M:%S", &tm))
		snprintf(clock, sizeof(clock), "?");
	if (tty)
		fputs("\033[H\033[2J", stdout);	/* home, clear the screen */
	printf("vdictl top - %s, %u set%s, %u device%s, every %.1f s\n",
	       clock, s->n, s->n == 1 ? "" : "s", ndev, ndev == 1 ? "" : "s",
	       opt.delay);
	printf("%6s %3s %-11s %6s %6s %8s %9s %4s %-8s %s\n", "ID", "DEV",
	       "STATE", "QUEUED", "HELD", "MiB/s", "BYTES", "BUSY", "VERDICT",
	       "DEVICE");
	for (i = 0; i < s->n; i++) {
		const vdi_stats *st = &s->sets[i];

		for (d = 0; d < st->ndevs; d++) {
			const struct vdi_dev_stats *dv = &st->devs[d];
			uint64_t bytes = dv->bytes_read + dv->bytes_written;

			r = rate(prev, t, st->set.id, dv->index, bytes);
			if (vdi_stats_verdict(st, (int)d, &v) ||
			    v.side == VDI_SIDE_NONE) {
				snprintf(busy, sizeof(busy), "-");
				snprintf(side, sizeof(side), "-");
			} else {
				snprintf(busy, sizeof(busy), "%u%%", v.client_pct);
				snprintf(side, sizeof(side), "%s",
					 side_name(v.side));
			}
			snprintf(b1, sizeof(b1), isnan(r) ? "-" : "%.1f", r);
			printf("%6llu %3u %-11s %6u %6u %8s ",
			       (unsigned long long)st->set.id, dv->index,
			       dv->state == VDI_DEV_STATE_ACTIVE ?
			       stats_state_name(st->set.state) :
			       dev_state_name(dv->state), dv->queued, dv->held,
			       b1);
			printf("%9s %4s %-8s %s\n", fmt_short(b1, sizeof(b1), bytes),
			       busy, side, dv->name[0] ?
			       safe_name(dv->name, name, sizeof(name)) : "-");
		}
	}
	if (!tty)
		putchar('\n');	/* frames apart */
}

static void top_json(const struct snap *s, const struct samples *prev,
		     double t)
{
	struct timespec wall;
	unsigned int i, d;
	struct json j;
	vdi_verdict v;

	clock_gettime(CLOCK_REALTIME, &wall);
	json_init(&j, stdout);
	json_obj(&j, NULL);
	json_num(&j, "time", (double)wall.tv_sec + wall.tv_nsec / 1e9, 3);
	json_num(&j, "interval", opt.delay, 3);
	json_arr(&j, "sets");
	for (i = 0; i < s->n; i++) {
		const vdi_stats *st = &s->sets[i];

		json_obj(&j, NULL);
		json_u64(&j, "id", st->set.id);
		json_name(&j, "name", st->set.name);
		json_str(&j, "state", stats_state_name(st->set.state), 16);
		json_arr(&j, "devices");
		for (d = 0; d < st->ndevs; d++) {
			const struct vdi_dev_stats *dv = &st->devs[d];
			uint64_t bytes = dv->bytes_read + dv->bytes_written;
			double r = rate(prev, t, st->set.id, dv->index, bytes);

			json_obj(&j, NULL);
			json_u64(&j, "index", dv->index);
			json_name(&j, "name", dv->name);
			json_str(&j, "state", dev_state_name(dv->state), 16);
			json_u64(&j, "queued", dv->queued);
			json_u64(&j, "held", dv->held);
			json_u64(&j, "done", dv->done);
			json_u64(&j, "bytes", bytes);
			json_num(&j, "mib_per_s", r, 3);	/* NaN: null */
			vdi_stats_verdict(st, (int)d, &v);
			json_str(&j, "verdict", v.side == VDI_SIDE_NONE ?
				 "none" : side_name(v.side), 16);
			if (v.side == VDI_SIDE_NONE)
				json_null(&j, "client_busy_pct");
			else
				json_u64(&j, "client_busy_pct", v.client_pct);
			json_end_obj(&j);
		}
		json_end_arr(&j);
		json_end_obj(&j);
	}
	json_end_arr(&j);
	json_end_obj(&j);
	json_done(&j);
}

static void pause_s(double s)
{
	struct timespec ts = {
		.tv_sec = (time_t)s,
		.tv_nsec = (long)((s - (double)(time_t)s) * 1e9),
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int cmd_top(void)
{
	bool tty = isatty(STDOUT_FILENO);
	struct samples prev = { 0 };
	uint64_t iter;
	struct snap s;
	int ret = need_module();
	double t;

	for (iter = 0; !ret && (!opt.iterations || iter < opt.iterations);
	     iter++) {
		if (iter)
			pause_s(opt.delay);
		ret = snapshot(&s);
		if (ret)
			break;
		t = now_s();
		if (opt.json)
			top_json(&s, &prev, t);
		else
			top_text(&s, &prev, t, tty);
		fflush(stdout);
		ret = keep_samples(&prev, &s, t);
		snap_free(&s);
		if (ferror(stdout)) {
			msg("writing: %s", strerror(errno));
			ret = EXIT_FAIL;
		}
	}
	free(prev.s);
	return ret;
}

/* ------------------------------------------------------------ abort */
static int cmd_abort(void)
{
	char name[4 * VDI_NAME_MAX], what[4 * VDI_NAME_MAX + 32];
	char why[ABORT_TEXT_LEN];
	vdi_stats *st = calloc(1, sizeof(*st));
	bool known = false;
	uint32_t before = 0;
	uint64_t id;
	int ret;

	if (!st) {
		msg("out of memory");
		return EXIT_FAIL;
	}
	ret = need_module();
	/* by name: the set must be ours to see; by id the module judges */
	if (!ret && opt.name) {
		ret = find_set(st);
		known = !ret;
	}
	if (ret)
		goto out;
	id = opt.by_id ? opt.id : st->set.id;
	if (known)
		snprintf(what, sizeof(what), "set '%s' (#%llu)",
			 safe_name(st->set.name, name, sizeof(name)),
			 (unsigned long long)id);
	else
		snprintf(what, sizeof(what), "set #%llu", (unsigned long long)id);
	before = known ? st->set.state : VDI_STATE_CREATED;
	ret = vdi_stats_abort(id);
	if (ret == VD_E_SECURITY) {
		msg("%s is another user's: only its owner or root may abort it",
		    what);
		ret = EXIT_FAIL;
		goto out;
	}
	if (ret == VD_E_INVALID) {
		msg("no %s among the sets you may see (it may have ended)", what);
		ret = EXIT_FAIL;
		goto out;
	}
	if (ret) {
		ret = vdi_failed(what, ret);
		goto out;
	}
	/* what it did: the set as it is now (the module leaves an ended
	 * set as it ended) */
	if (vdi_stats_get(id, st)) {
		printf("aborted %s\n", what);
		goto out;
	}
	if (!known)
		snprintf(what, sizeof(what), "set '%s' (#%llu)",
			 safe_name(st->set.name, name, sizeof(name)),
			 (unsigned long long)id);
	if (st->set.state == VDI_STATE_DONE)
		printf("%s had already ended normally: nothing to abort\n",
		       what);
	else if (before == VDI_STATE_ABORTED ||
		 (!known && st->set.abort_reason != VDI_ABORT_ADMIN))
		printf("%s was already aborted: %s\n", what,
		       stats_abort_text(st, why, sizeof(why)));
	else if (known)
		printf("aborted %s, which was %s: its client and engine get "
		       "VD_E_ABORT\n", what, stats_state_name(before));
	else
		printf("aborted %s: its client and engine get VD_E_ABORT\n",
		       what);
out:
	free(st);
	return ret;
}

int main(int argc, char **argv)
{
	int ret = EXIT_FAIL;

	prog = "vdictl";
	parse_args(argc, argv);
	switch (opt.cmd) {
	case STATUS:
		ret = cmd_status(opt.json);
		break;
	case LIST:
		ret = cmd_list();
		break;
	case SHOW:
		ret = cmd_show();
		break;
	case TOP:
		ret = cmd_top();
		break;
	case ABORT:
		ret = cmd_abort();
		break;
	case LOAD:
		ret = cmd_load();
		break;
	}
	if (fflush(stdout) && !ret) {
		msg("writing: %s", strerror(errno));
		ret = EXIT_FAIL;
	}
	return ret;
}
