// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine sql - run one T-SQL statement, as SQL Server would for
 *
 *   vdi-engine sql [-D DIR] "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH ..."
 *
 * engine-tsql.c parses the statement; this file maps it onto the engine's
 * knobs (the same as the backup and restore subcommands' options) and onto
 * a data directory, which plays SQL Server's database files:
 *
 *   BACKUP  DATABASE db  reads   DIR/db.mdf        RESTORE DATABASE db writes it
 *   BACKUP  LOG db       reads   DIR/db_log.ldf    RESTORE LOG db      writes it
 *
 * (SQL Server's own default file names).  DIR is --data-dir, else
 * $VDI_DATA_DIR, else the current directory.  A restore writes
 * FILE.partial and renames it into place when complete and checked, as the
 * restore subcommand's -o does; it refuses to overwrite an existing
 * database file unless WITH REPLACE, as SQL Server refuses to overwrite an
 * existing database.
 *
 * The WITH options (tools/README.md has the table):
 *   MAXTRANSFERSIZE  --max-transfer (default: 1 MiB for a backup; 4 MiB,
 *                    the largest, for a restore, which then reads a backup
 *                    made with any MAXTRANSFERSIZE, as SQL Server's does)
 *   BUFFERCOUNT      --buffers      BLOCKSIZE  --block-size
 *   STATS [= n]      "n percent processed." lines on stdout, as SQL Server
 *                    sends them (default n = 10)
 *   CHECKSUM         accepted: the stream's mx64 checksum is always written
 *                    and always verified; NO_CHECKSUM does not turn it off
 *   FORMAT, INIT     accepted (BACKUP only): every backup starts fresh media
 *                    (a new header on every device); NOFORMAT, NOINIT too
 *   REPLACE          (RESTORE only) overwrite an existing database file
 * and like SQL Server it ends with "Processed N pages ..." and
 * "BACKUP DATABASE successfully processed N pages in T seconds (R MB/sec)."
 * on stdout (pages of 8 KiB), or "... is terminating abnormally." on
 * stderr after the reason (for a statement the parser refused: only the
 * reason, with its position).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "engine-tsql.h"

#define SQL_PAGE	8192		/* SQL Server's page, for its messages */
#define STMT_MAX	(1 << 20)	/* a statement read from stdin */

static struct {
	bool on;
	struct tsql_stmt st;	/* opt.dev_name points into it */
	char *path;		/* the database file */
	unsigned int next_pct;	/* STATS: the next percentage to report */
} sql;

/* A statement that cannot run here: SQL Server's last words, and out. */
static void __attribute__((noreturn)) give_up(const struct tsql_stmt *st)
{
	msg("%s is terminating abnormally.", tsql_stmt_name(st));
	exit(EXIT_FAIL);
}

static void sql_usage(FILE *f)
{
	fprintf(f,
"Usage: vdi-engine sql [options] STATEMENT\n"
"Run one T-SQL BACKUP or RESTORE statement to or from virtual devices, as\n"
"SQL Server would (STATEMENT '-': read it from stdin):\n"
"  BACKUP  {DATABASE|LOG} db TO   VIRTUAL_DEVICE='set' [, VIRTUAL_DEVICE='dev']...\n"
"  RESTORE {DATABASE|LOG} db FROM VIRTUAL_DEVICE='set' [, VIRTUAL_DEVICE='dev']...\n"
"     [WITH MAXTRANSFERSIZE=n, BUFFERCOUNT=n, BLOCKSIZE=n, STATS[=n],\n"
"           [NO]FORMAT, [NO]INIT, CHECKSUM | NO_CHECKSUM, REPLACE]\n"
"The database is the file DIR/db.mdf (LOG: DIR/db_log.ldf).\n"
"\n"
"  -D, --data-dir DIR     the data directory (default: $VDI_DATA_DIR, else\n"
"                         the current directory)\n"
"  -t, --timeout SEC      wait up to SEC s for the set to appear (60)\n"
"      --owner USER       accept only a set created by USER (see backup)\n"
"      --keep-partial     on failure keep DIR/db.mdf.partial (RESTORE)\n"
"      --stats N          the module's figures on stderr every N s and at the\n"
"                         end (SQL Server prints its own only under trace\n"
"                         flag 3213: by default, none)\n"
"  -v, --verbose          say what is happening\n"
"  -h, --help\n"
"Exit status: 0 done, 1 failed, 2 bad command line or statement refused.\n");
}

/* The statement from stdin ('-'): up to STMT_MAX bytes. */
static char *read_statement(void)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	for (;;) {
		if (!buf) {
			msg("no memory");
			exit(EXIT_FAIL);
		}
		n = read(STDIN_FILENO, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			msg("reading the statement from stdin: %s",
			    strerror(errno));
			exit(EXIT_FAIL);
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap - 1) {
			if (cap >= STMT_MAX)
				usage_error("the statement on stdin is over "
					    "%d bytes", STMT_MAX);
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	buf[len] = '\0';
	if (strlen(buf) != len)
		usage_error("the statement on stdin holds a NUL byte");
	return buf;
}

/*
 * The statement's knobs onto the engine's options (what the backup and
 * restore subcommands' options set), and the database onto its file.
 * Exits after a message if the statement cannot run here.
 */
static void map_statement(const struct tsql_stmt *st, const char *dir)
{
	const char *name = tsql_stmt_name(st);
	struct stat sb;
	unsigned int d;

	opt.op = st->op == TSQL_BACKUP ? BACKUP : RESTORE;
	for (d = 0; d < st->ndev; d++)	/* checked as VDI names by the parser */
		opt.dev_name[d] = st->device[d];
	opt.ndev = st->ndev;
	opt.set_name = opt.dev_name[0];
	if (st->given & TSQL_O_BLOCKSIZE)
		opt.block_size = st->block_size;
	if (st->given & TSQL_O_MAXTRANSFERSIZE)
		opt.max_transfer = st->max_transfer;
	else if (opt.op == RESTORE)
		opt.max_transfer = 4 << 20;	/* reads any backup */
	if (st->given & TSQL_O_BUFFERCOUNT)
		opt.buffers = st->buffer_count;
	else			/* as the subcommands: 2 per device, >= 4 */
		opt.buffers = opt.ndev * 2 < 4 ? 4 : opt.ndev * 2;
	if ((uint64_t)opt.buffers * opt.max_transfer > 1024ULL << 20)
		usage_error("%s: BUFFERCOUNT x MAXTRANSFERSIZE (%u x %u) is over "
			    "1 GiB, the module's largest buffer area", name,
			    opt.buffers, opt.max_transfer);
	sql.next_pct = st->stats;

	if (stat(dir, &sb) < 0) {
		msg("data directory %s: %s", dir, strerror(errno));
		give_up(st);
	}
	if (!S_ISDIR(sb.st_mode)) {
		msg("data directory %s: not a directory", dir);
		give_up(st);
	}
	if (asprintf(&sql.path, "%s/%s%s", dir, st->database,
		     st->kind == TSQL_LOG ? "_log.ldf" : ".mdf") < 0) {
		msg("no memory");
		give_up(st);
	}
	opt.file = sql.path;
	if (opt.op == BACKUP) {
		const char *what = st->kind == TSQL_LOG ? "log" : "data";

		if (stat(sql.path, &sb) < 0) {
			msg("%s: database '%s' has no %s file %s: %s", name,
			    st->database, what, sql.path, strerror(errno));
			give_up(st);
		}
		if (!S_ISREG(sb.st_mode)) {
			msg("%s: %s, the %s file of database '%s', is not a "
			    "file", name, sql.path, what, st->database);
			give_up(st);
		}
		return;
	}
	errno = 0;
	if (lstat(sql.path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode)) {
			msg("%s: %s exists and is not a file", name, sql.path);
			give_up(st);
		}
		if (!st->replace) {
			msg("%s: database '%s' exists (%s): a restore "
			    "overwrites it only WITH REPLACE", name,
			    st->database, sql.path);
			give_up(st);
		}
	} else if (errno != ENOENT) {
		msg("%s: %s", sql.path, strerror(errno));
		give_up(st);
	}
}

void sql_parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "data-dir", required_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 't' },
		{ "owner", required_argument, NULL, 'O' },
		{ "keep-partial", no_argument, NULL, 'K' },
		{ "stats", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *dir = getenv("VDI_DATA_DIR"), *text;
	struct tsql_error err;
	uint64_t v;
	int c;

	sql.on = true;
	/* SQL Server's messages only, unless asked: a client's test rig may
	 * compare what sqlcmd shows */
	opt.quiet_stats = true;
	argv[1] = argv[0];	/* drop "sql"; getopt names us by argv[0] */
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "+D:t:vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 't':
			if (!parse_uint(optarg, 86400, &v))
				usage_error("--timeout: seconds, 0..86400");
			opt.timeout_s = (unsigned int)v;
			break;
		case 'O':
			opt.owner = parse_owner(optarg);
			break;
		case 'K':
			opt.keep_partial = true;
			break;
		case 'S':
			opt.stats_s = parse_stats_interval(optarg);
			opt.quiet_stats = false;
			break;
		case 'v':
			verbose_on = true;
			break;
		case 'h':
			sql_usage(stdout);
			exit(0);
		default:
			usage_error("bad option (vdi-engine sql --help)");
		}
	}
	if (argc - optind != 1)
		usage_error("give the statement as one argument (quoted), or "
			    "'-' to read it from stdin");
	text = strcmp(argv[optind], "-") ? argv[optind] : read_statement();
	if (!dir || !*dir)
		dir = ".";
	if (tsql_parse(text, &sql.st, &err) < 0) {
		msg("statement refused: %s", err.msg);
		exit(EXIT_USAGE);
	}
	map_statement(&sql.st, dir);
	verbose("%s %s: %s, %u device%s, BLOCKSIZE %u, MAXTRANSFERSIZE %u, "
		"BUFFERCOUNT %u", tsql_stmt_name(&sql.st), sql.st.database,
		sql.path, opt.ndev, opt.ndev == 1 ? "" : "s", opt.block_size,
		opt.max_transfer, opt.buffers);
}

/* STATS: "n percent processed." for each step up to @pct not yet said */
static void stats_upto(uint64_t pct)
{
	if (sql.next_pct > pct)
		return;
	for (; sql.next_pct <= pct && sql.next_pct <= 100;
	     sql.next_pct += sql.st.stats)
		printf("%u percent processed.\n", sql.next_pct);
	fflush(stdout);
}

/* The data has moved @done bytes of io.size (known for a database file;
 * a restore learns it from the backup's header). */
void sql_stats(uint64_t done)
{
	if (!sql.on || !(sql.st.given & TSQL_O_STATS) || !io.size)
		return;
	stats_upto(done >= io.size ? 100 : done * 100 / io.size);
}

void sql_end(bool failed, double seconds)
{
	const char *name = tsql_stmt_name(&sql.st);
	uint64_t pages = (io.n + SQL_PAGE - 1) / SQL_PAGE;

	if (!sql.on)
		return;
	if (failed) {
		msg("%s is terminating abnormally.", name);
		return;
	}
	/* SQL Server always ends with 100; said already unless the size was
	 * unknown (a backup of an old vdi-engine) or the data ended early */
	if ((sql.st.given & TSQL_O_STATS) && sql.next_pct - sql.st.stats < 100)
		printf("100 percent processed.\n");
	printf("Processed %" PRIu64 " pages for database '%s', file '%s%s' on "
	       "file 1.\n", pages, sql.st.database, sql.st.database,
	       sql.st.kind == TSQL_LOG ? "_log" : "");
	printf("%s successfully processed %" PRIu64 " pages in %.3f seconds "
	       "(%.3f MB/sec).\n", name, pages, seconds, seconds > 0 ?
	       (double)io.n / 1048576.0 / seconds : 0.0);
	fflush(stdout);
}
