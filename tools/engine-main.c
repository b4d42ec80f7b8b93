// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine - the SERVER role of VDI: it plays the database engine.
 *
 *   vdi-engine backup  [options] SET [DEVICE...]
 *   vdi-engine restore [options] SET [DEVICE...]
 *
 * A backup application (the VDI client, e.g. vdi-client) creates the virtual
 * device set SET with 1 + the number of DEVICEs; this program then plays what
 * SQL Server does for
 *
 *   BACKUP  ... TO   VIRTUAL_DEVICE='SET' [, VIRTUAL_DEVICE='DEVICE' ...]
 *   RESTORE ... FROM VIRTUAL_DEVICE='SET' [, VIRTUAL_DEVICE='DEVICE' ...]
 *       WITH BLOCKSIZE = --block-size, MAXTRANSFERSIZE = --max-transfer,
 *            BUFFERCOUNT = --buffers
 *
 * streaming a file, stdin, generated data or a directory tree (through tar)
 * out to the devices, or reading it back.
 *
 * The program is cut by concern (engine.h lists the files): this one reads
 * the command line and runs the steps in order; every VDI call is in
 * engine-vdi.c, in the order VDI prescribes; the stream format, and the
 * backup and restore loops that write and read it, are in engine-stream.c;
 * the data's source and destination in engine-io.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "stats-report.h"

struct engine_opt opt = {
	.block_size = 65536,
	.max_transfer = 1 << 20,
	.timeout_s = 60,
	.owner = VDI_OWNER_SELF,
};

/* ================================================================ usage */
static void usage(FILE *f)
{
	fprintf(f,
"Usage: vdi-engine backup  [options] SET [DEVICE...]\n"
"       vdi-engine restore [options] SET [DEVICE...]\n"
"       vdi-engine sql [options] \"BACKUP|RESTORE ... VIRTUAL_DEVICE='SET' ...\"\n"
"                                (vdi-engine sql --help)\n"
"Play the database engine (VDI's server role): stream data to the virtual\n"
"device set SET, created by a VDI client such as vdi-client, or read it back.\n"
"SET is the first device, as in BACKUP ... TO VIRTUAL_DEVICE='SET'; each\n"
"DEVICE names one more (VIRTUAL_DEVICE='DEVICE'), in the same order for the\n"
"restore as for the backup.  The stream is striped over the devices in\n"
"chunks of --max-transfer bytes.\n"
"\n"
"Data (backup):\n"
"  -i, --input FILE       read FILE (default: stdin, also '-')\n"
"  -C, --directory DIR    back up the tree DIR (tar -cf - -C DIR .)\n"
"      --generate SIZE    SIZE bytes of deterministic test data (see vdi-gen)\n"
"Data (restore):\n"
"  -o, --output FILE      write FILE (FILE.partial until complete; a device\n"
"                         or FIFO in place; default: stdout, also '-')\n"
"  -C, --directory DIR    extract into DIR (tar -xf - -C DIR)\n"
"VDI:\n"
"  -b, --block-size N     BLOCKSIZE: 512..65536, a power of 2 (65536)\n"
"  -m, --max-transfer N   MAXTRANSFERSIZE: a multiple of 64K up to 4M (1M)\n"
"  -n, --buffers N        BUFFERCOUNT: buffers shared by all devices, the\n"
"                         commands in flight (default 2 per device, at least 4)\n"
"  -t, --timeout SEC      wait up to SEC s for the set to appear (60)\n"
"      --owner USER       accept only a set created by USER (a name or a uid)\n"
"                         or root; 'any': any set we may open (default: our\n"
"                         own user or root: another user may have taken the\n"
"                         set's name to receive the backup)\n"
"Other:\n"
"      --keep-partial     on failure keep FILE.partial (restore -o FILE)\n"
"      --stats N          print the module's figures every N s (N >= 1)\n"
"      --quiet-stats      print no figures at the end (by default: each\n"
"                         device's bytes, rate, times, and which side is slow)\n"
"      --delay-ms N       test/demo: wait N ms (0..10000) before each Read or\n"
"                         Write sent: a slow engine\n"
"      --inject SCENARIO[=ARG]  a fault for testing a VDI client:\n"
"                         abort-mid-stream[=SIZE], silent[=N],\n"
"                         close-device-early[=DEV], max-transfer-tiny,\n"
"                         max-transfer-huge, name-taken[=SECS] (see\n"
"                         vdi-engine(1)); the faults end with status 1\n"
"  -v, --verbose          say what is happening\n"
"  -h, --help\n"
"Sizes take K, M, G suffixes (powers of 1024).  At the end the mx64 checksum\n"
"of the stream is printed on stderr: 'checksum <hex> <bytes> bytes'.\n");
}

/* --owner: a user name, a uid, or "any". */
int64_t parse_owner(const char *s)
{
	struct passwd *pw;
	uint64_t v;

	if (!strcmp(s, "any"))
		return VDI_OWNER_ANY;
	if (parse_uint(s, UINT32_MAX - 1, &v))
		return (int64_t)v;
	errno = 0;
	pw = getpwnam(s);
	if (!pw)
		usage_error("--owner: no user '%s'%s%s", s, errno ? ": " : "",
			    errno ? strerror(errno) : "");
	return pw->pw_uid;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "directory", required_argument, NULL, 'C' },
		{ "generate", required_argument, NULL, 'G' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "max-transfer", required_argument, NULL, 'm' },
		{ "buffers", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "keep-partial", no_argument, NULL, 'K' },
		{ "owner", required_argument, NULL, 'O' },
		{ "inject", required_argument, NULL, 'I' },
		{ "stats", required_argument, NULL, 'S' },
		{ "quiet-stats", no_argument, NULL, 'Q' },
		{ "delay-ms", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	uint64_t v;
	int c;

	opt.op = parse_command(&argc, &argv, usage);

	while ((c = getopt_long(argc, argv, "i:o:C:b:m:n:t:vh", lopts,
				NULL)) != -1) {
		switch (c) {
		case 'i':
		case 'o':
			if ((c == 'i') != (opt.op == BACKUP))
				usage_error("-%c is for %s", c, c == 'i' ?
					    "backup" : "restore");
			opt.file = optarg;
			break;
		case 'C':
			opt.dir = optarg;
			break;
		case 'G':
			if (opt.op != BACKUP)
				usage_error("--generate is for backup (check a "
					    "restore with vdi-gen --check)");
			if (!parse_size(optarg, &opt.gen_size))
				usage_error("--generate: bad size '%s'", optarg);
			opt.generate = true;
			break;
		case 'b':
			if (!parse_size(optarg, &v) || v < 512 || v > 65536 ||
			    (v & (v - 1)))
				usage_error("--block-size must be a power of 2 "
					    "from 512 to 65536");
			opt.block_size = (uint32_t)v;
			break;
		case 'm':
			if (!parse_size(optarg, &v) || !v || v % 65536 ||
			    v > 4 << 20)
				usage_error("--max-transfer must be a multiple "
					    "of 64K, at most 4M");
			opt.max_transfer = (uint32_t)v;
			break;
		case 'n':
			if (!parse_uint(optarg, MAX_BUFFERS, &v) || !v)
				usage_error("--buffers must be 1..%d",
					    MAX_BUFFERS);
			opt.buffers = (unsigned int)v;
			break;
		case 't':
			if (!parse_uint(optarg, 86400, &v))
				usage_error("--timeout: seconds, 0..86400");
			opt.timeout_s = (unsigned int)v;
			break;
		case 'K':
			opt.keep_partial = true;
			break;
		case 'O':
			opt.owner = parse_owner(optarg);
			break;
		case 'I':
			inject_parse(optarg);
			opt.inject = optarg;
			break;
		case 'S':
			opt.stats_s = parse_stats_interval(optarg);
			break;
		case 'Q':
			opt.quiet_stats = true;
			break;
		case 'L':
			opt.delay_ms = parse_delay_ms(optarg);
			break;
		case 'v':
			verbose_on = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage_error("bad option");
		}
	}
	opt.ndev = parse_device_names(argc - optind, argv + optind,
				      opt.dev_name);
	opt.set_name = opt.dev_name[0];
	if (opt.dir) {		/* tar would say it later, after VDI began */
		struct stat st;

		if (stat(opt.dir, &st) < 0) {
			msg("%s: %s", opt.dir, strerror(errno));
			exit(EXIT_FAIL);
		}
		if (!S_ISDIR(st.st_mode)) {
			msg("%s: not a directory", opt.dir);
			exit(EXIT_FAIL);
		}
	}
	if (opt.dir && (opt.file || opt.generate))
		usage_error("-C takes the place of -%c and --generate",
			    opt.op == BACKUP ? 'i' : 'o');
	if (opt.file && opt.generate)
		usage_error("-i and --generate exclude each other");
	if (!opt.buffers)	/* 2 per device: one being filled, one moving */
		opt.buffers = opt.ndev * 2 < 4 ? 4 : opt.ndev * 2;
	inject_options();	/* it may set the sizes */
	if ((uint64_t)opt.buffers * opt.max_transfer > 1024ULL << 20)
		usage_error("--buffers x --max-transfer is over 1 GiB, the "
			    "module's largest buffer area");
}

/* ================================================================ signals */
static void on_signal(int sig)
{
	(void)sig;
	/* The normal paths notice the abort: every command in flight comes
	 * back with ERROR_OPERATION_ABORTED and every wait ends. */
	pthread_mutex_lock(&set_lock);
	if (V.set)
		vdi_server_signal_abort(V.set);
	pthread_mutex_unlock(&set_lock);
	if (V.wake[1] >= 0 && write(V.wake[1], "s", 1) < 0) {
		/* the pipe is full: someone will wake anyway */
	}
}

/* ================================================================ figures */
static struct stats_ticker ticker;	/* --stats N */

static int snap_set(void *ctx, vdi_stats *st)
{
	(void)ctx;
	return set_stats(st);
}

/*
 * The end of the run: the set's figures (taken right before its close,
 * @rc the snapshot's VDI code), like SQL Server's trace flag 3213 output.
 * Only for a set that was configured: before that nothing moved.
 */
static void end_figures(int rc, const vdi_stats *st, double t_data)
{
	if (rc == NOERROR && st->set.ready_age_ns)
		stats_report(stderr, st, t_data ? now_s() - t_data : 0,
			     "vdi-engine: ");
	else if (rc != NOERROR && rc != VD_E_PROTOCOL && t_data)
		msg("no figures: %s: %s", vdi_code_name(rc), vdi_last_error());
}

/* ================================================================ main */
int main(int argc, char **argv)
{
	char b1[32], b2[64], moved[256];
	bool failed = true, ended = false;
	double t0 = now_s(), t_data = 0;
	vdi_stats *figs = NULL;
	int figs_rc;

	prog = "vdi-engine";
	if (argc >= 2 && !strcmp(argv[1], "sql"))
		sql_parse_args(argc, argv);	/* engine-sql.c */
	else
		parse_args(argc, argv);
	signals_setup(on_signal);
	if (pipe2(V.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		msg("pipe: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (getrandom(&V.backup_id, sizeof(V.backup_id), 0) !=
	    sizeof(V.backup_id))
		V.backup_id = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	mx64_init(&io.sum);

	/* --inject name-taken: squat on the name instead of a backup */
	if (inject_squat())
		return EXIT_FAIL;

	/* the data first: a bad path must not disturb the client */
	if ((opt.op == BACKUP ? open_input() : open_output()) < 0)
		goto out;
	if (connect_set() < 0)
		goto out;
	if (configure() < 0)
		goto out;

	progress_init(&prog_bar, opt.op == BACKUP ? "backup" : "restore",
		      opt.op == BACKUP ? io.size : 0);
	t0 = t_data = now_s();
	if (opt.stats_s && stats_ticker_start(&ticker, opt.stats_s, snap_set,
					      NULL, stderr, "vdi-engine: ") < 0)
		msg("--stats: no reports: %s", strerror(errno));
	if ((opt.op == BACKUP ? backup() : restore()) < 0)
		goto out;
	if (close_devices() < 0)
		goto out;
	ended = true;		/* the set ended normally... */
	if (inject_fired())	/* ...but short, on purpose */
		goto out;
	failed = false;
	msg("%s of %s through %u device%s %s", opt.op == BACKUP ? "backup" :
	    "restore", fmt_bytes(b1, sizeof(b1), io.n), opt.ndev,
	    opt.ndev == 1 ? "" : "s", fmt_rate(b2, sizeof(b2), io.n,
						now_s() - t0));
out:
	progress_done(&prog_bar);
	if (failed && interrupted() && !said_interrupted)
		msg("interrupted by signal %d: %s aborted %s", interrupted(),
		    opt.op == BACKUP ? "backup" : "restore",
		    say_moved(moved, sizeof(moved)));
	stats_ticker_stop(&ticker);	/* before the set it looks at goes */
	if (!opt.quiet_stats && !(figs = malloc(sizeof(*figs))))
		msg("no memory for the figures");
	figs_rc = close_set(failed && !ended, figs);
	if (figs)
		end_figures(figs_rc, figs, t_data);
	free(figs);
	failed = cleanup_io(failed);
	sql_end(failed, now_s() - t0);
	if (failed)
		return EXIT_FAIL;
	/* mx64 of the logical stream: equal for a backup and its restore */
	fprintf(stderr, "checksum %016" PRIx64 " %" PRIu64 " bytes\n",
		mx64_final(&io.sum), io.n);
	return 0;
}
