// SPDX-License-Identifier: GPL-2.0
/*
 * tsql_parse_test - unit test of vdi-engine's T-SQL parser
 * (tools/engine-tsql.c), which it is linked with: every WITH option with
 * its values and limits, each refusal with its message and position,
 * quoting, case, comments, several devices, DATABASE and LOG.
 * TAP on stdout; exit status 1 if any case failed.  It runs on the host
 * ("make tools-unit-check") and in the VMs with the other tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine-tsql.h"

static int n, failed;

static void result(bool ok, const char *name)
{
	n++;
	if (!ok)
		failed++;
	printf("%sok %d %s\n", ok ? "" : "not ", n, name);
}

/* The statement must parse; returns the statement for further checks. */
static struct tsql_stmt *good(const char *text)
{
	static struct tsql_stmt st;
	struct tsql_error err;

	if (tsql_parse(text, &st, &err) < 0) {
		printf("# refused: %s\n#   %s\n", text, err.msg);
		return NULL;
	}
	return &st;
}

/* The statement must be refused, with @want in the message (any case) and
 * the error at byte @pos (-1: any position). */
static void bad(const char *name, const char *text, const char *want, int pos)
{
	struct tsql_stmt st;
	struct tsql_error err;
	bool ok;

	if (tsql_parse(text, &st, &err) == 0) {
		printf("# accepted: %s\n", text);
		result(false, name);
		return;
	}
	ok = strcasestr(err.msg, want) != NULL;
	if (!ok)
		printf("# message '%s' does not say '%s'\n", err.msg, want);
	if (pos >= 0 && err.pos != (size_t)pos) {
		printf("# error at %zu, expected %d: %s\n", err.pos, pos,
		       err.msg);
		ok = false;
	}
	/* the message starts with where, in lines and columns */
	if (strncmp(err.msg, "line ", 5)) {
		printf("# message without a position: %s\n", err.msg);
		ok = false;
	}
	result(ok, name);
}

#define CHECK(name, text, cond) do {					\
	const struct tsql_stmt *s = good(text);				\
	bool c_ = s && (cond);						\
	if (s && !c_)							\
		printf("# %s: %s\n", #cond, text);			\
	result(c_, name);						\
} while (0)

static void test_basic(void)
{
	CHECK("backup.database",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='set1'",
	      s->op == TSQL_BACKUP && s->kind == TSQL_DATABASE &&
	      !strcmp(s->database, "db") && s->ndev == 1 &&
	      !strcmp(s->device[0], "set1") && s->given == 0);
	CHECK("restore.log",
	      "RESTORE LOG db FROM VIRTUAL_DEVICE='set1'",
	      s->op == TSQL_RESTORE && s->kind == TSQL_LOG &&
	      !strcmp(s->database, "db"));
	CHECK("backup.log", "backup log [my db] to virtual_device = 'x';",
	      s->op == TSQL_BACKUP && s->kind == TSQL_LOG &&
	      !strcmp(s->database, "my db"));
	CHECK("restore.database",
	      "restore database db from virtual_device='x'",
	      s->op == TSQL_RESTORE && s->kind == TSQL_DATABASE);
	CHECK("case.mixed",
	      "BaCkUp DaTaBaSe Db To ViRtUaL_dEvIcE = 'Set' WiTh InIt",
	      s->op == TSQL_BACKUP && !strcmp(s->database, "Db") &&
	      !strcmp(s->device[0], "Set") && s->init);
	CHECK("devices.two",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='a', VIRTUAL_DEVICE='b'",
	      s->ndev == 2 && !strcmp(s->device[0], "a") &&
	      !strcmp(s->device[1], "b"));
	CHECK("devices.unicode_prefix",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE=N'a',VIRTUAL_DEVICE=n'b'",
	      s->ndev == 2 && !strcmp(s->device[1], "b"));
	CHECK("string.quote_doubled",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='it''s'",
	      !strcmp(s->device[0], "it's"));
	CHECK("ident.bracket_escaped",
	      "BACKUP DATABASE [a]]b] TO VIRTUAL_DEVICE='x'",
	      !strcmp(s->database, "a]b"));
	CHECK("ident.quoted",
	      "BACKUP DATABASE \"x \"\"y\"\"\" TO VIRTUAL_DEVICE='x'",
	      !strcmp(s->database, "x \"y\""));
	CHECK("ident.plain_chars",
	      "BACKUP DATABASE _db#1$x TO VIRTUAL_DEVICE='x'",
	      !strcmp(s->database, "_db#1$x"));
	CHECK("comments",
	      "-- a rig's comment\nBACKUP /* a /* nested */ one */ DATABASE db"
	      " -- here too\n TO VIRTUAL_DEVICE='x' ; -- and after\n",
	      s->ndev == 1 && !strcmp(s->database, "db"));
	/* a name with a space, N'', STATS without a value, all at once */
	CHECK("backup.bracketed_unicode_stats",
	      "BACKUP DATABASE [my db] TO VIRTUAL_DEVICE = N'x' WITH STATS",
	      s->op == TSQL_BACKUP && !strcmp(s->database, "my db") &&
	      s->ndev == 1 && !strcmp(s->device[0], "x") &&
	      s->given == TSQL_O_STATS && s->stats == TSQL_STATS_DEFAULT);
	CHECK("whitespace.newlines",
	      "\r\n\tBACKUP\nDATABASE\tdb\r\nTO\nVIRTUAL_DEVICE\n=\n'x'\n",
	      s->ndev == 1);
}

static void test_many_devices(void)
{
	char text[8192];
	size_t len;
	int k;

	len = (size_t)snprintf(text, sizeof(text),
			       "BACKUP DATABASE db TO VIRTUAL_DEVICE='d0'");
	for (k = 1; k < TSQL_MAX_DEVICES; k++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					", VIRTUAL_DEVICE='d%d'", k);
	CHECK("devices.64", text, s->ndev == 64 &&
	      !strcmp(s->device[63], "d63"));
	snprintf(text + len, sizeof(text) - len, ", VIRTUAL_DEVICE='d64'");
	bad("devices.65", text, "at most 64 devices", (int)len + 17);
}

static void test_options(void)
{
	CHECK("opt.all_backup",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='s1', VIRTUAL_DEVICE='s2' "
	      "WITH MAXTRANSFERSIZE=131072, BUFFERCOUNT=4, BLOCKSIZE=4096, "
	      "FORMAT, INIT, CHECKSUM, STATS=25",
	      s->given == (TSQL_O_MAXTRANSFERSIZE | TSQL_O_BUFFERCOUNT |
			   TSQL_O_BLOCKSIZE | TSQL_O_FORMAT | TSQL_O_INIT |
			   TSQL_O_CHECKSUM | TSQL_O_STATS) &&
	      s->max_transfer == 131072 && s->buffer_count == 4 &&
	      s->block_size == 4096 && s->format && s->init && s->checksum &&
	      s->stats == 25 && !s->replace);
	CHECK("opt.all_restore",
	      "RESTORE DATABASE db FROM VIRTUAL_DEVICE='s1' WITH REPLACE, "
	      "MAXTRANSFERSIZE = 4194304 , BUFFERCOUNT = 256, "
	      "BLOCKSIZE = 65536, NO_CHECKSUM, STATS",
	      s->replace && s->max_transfer == 4194304 &&
	      s->buffer_count == 256 && s->block_size == 65536 &&
	      (s->given & TSQL_O_CHECKSUM) && !s->checksum &&
	      s->stats == TSQL_STATS_DEFAULT);
	CHECK("opt.noformat_noinit",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH NOFORMAT, NOINIT",
	      (s->given & TSQL_O_FORMAT) && (s->given & TSQL_O_INIT) &&
	      !s->format && !s->init);
	CHECK("opt.maxtransfersize.min",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH MAXTRANSFERSIZE=65536",
	      s->max_transfer == 65536);
	CHECK("opt.blocksize.min",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH BLOCKSIZE=512",
	      s->block_size == 512);
	CHECK("opt.buffercount.min",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH BUFFERCOUNT=1",
	      s->buffer_count == 1);
	CHECK("opt.stats.bounds",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH STATS=100",
	      s->stats == 100);
	CHECK("opt.stats.one",
	      "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH STATS = 1",
	      s->stats == 1);
	CHECK("opt.checksum.restore",
	      "RESTORE LOG db FROM VIRTUAL_DEVICE='s' WITH CHECKSUM",
	      s->checksum && s->given == TSQL_O_CHECKSUM);
	CHECK("opt.lowercase",
	      "backup database db to virtual_device='s' with maxtransfersize="
	      "1048576, stats=5, checksum, format, init",
	      s->max_transfer == 1048576 && s->stats == 5 && s->checksum);
}

/* "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH " is 45 bytes */
#define BK "BACKUP DATABASE db TO VIRTUAL_DEVICE='s' WITH "
#define RS "RESTORE DATABASE db FROM VIRTUAL_DEVICE='s' WITH "

static void test_option_refusals(void)
{
	int b = (int)strlen(BK), r = (int)strlen(RS);

	bad("refuse.maxtransfersize.not_multiple", BK "MAXTRANSFERSIZE=100000",
	    "multiple of 65536", b + 16);
	bad("refuse.maxtransfersize.zero", BK "MAXTRANSFERSIZE=0",
	    "multiple of 65536", b + 16);
	bad("refuse.maxtransfersize.too_big", BK "MAXTRANSFERSIZE=4259840",
	    "4194304", b + 16);
	bad("refuse.maxtransfersize.huge", BK "MAXTRANSFERSIZE=99999999999999999999999",
	    "MAXTRANSFERSIZE", b + 16);
	bad("refuse.maxtransfersize.no_value", BK "MAXTRANSFERSIZE, INIT",
	    "expected '=' and a number after MAXTRANSFERSIZE", b + 15);
	bad("refuse.maxtransfersize.string", BK "MAXTRANSFERSIZE='65536'",
	    "expected a number for MAXTRANSFERSIZE", b + 16);
	bad("refuse.maxtransfersize.variable", BK "MAXTRANSFERSIZE=@mts",
	    "variables (@mts)", b + 16);
	bad("refuse.blocksize.not_power", BK "BLOCKSIZE=1000",
	    "power of 2", b + 10);
	bad("refuse.blocksize.small", BK "BLOCKSIZE=256", "512 to 65536",
	    b + 10);
	bad("refuse.blocksize.big", BK "BLOCKSIZE=131072", "512 to 65536",
	    b + 10);
	bad("refuse.buffercount.zero", BK "BUFFERCOUNT=0", "1 to 256", b + 12);
	bad("refuse.buffercount.big", BK "BUFFERCOUNT=257", "1 to 256",
	    b + 12);
	bad("refuse.stats.zero", BK "STATS=0", "1 to 100", b + 6);
	bad("refuse.stats.big", BK "STATS=101", "1 to 100", b + 6);
	/* 2^32 + 10: checked before it is narrowed, not taken for 10 */
	bad("refuse.stats.wraps_32", BK "STATS=4294967306", "1 to 100", b + 6);
	bad("refuse.buffercount.wraps_32", BK "BUFFERCOUNT=4294967300",
	    "1 to 256", b + 12);
	bad("refuse.number.decimal", BK "STATS=2.5", "not a whole number",
	    b + 6);
	bad("refuse.number.negative", BK "BUFFERCOUNT=-1",
	    "expected a number", b + 12);
	bad("refuse.flag.with_value", BK "INIT=1", "INIT takes no value",
	    b + 4);
	bad("refuse.twice", BK "INIT, INIT", "repeats or contradicts", b + 6);
	bad("refuse.contradicted", BK "FORMAT, NOFORMAT", "FORMAT", b + 8);
	bad("refuse.checksum_twice", BK "CHECKSUM, NO_CHECKSUM",
	    "NO_CHECKSUM", b + 10);
	bad("refuse.unknown.compression", BK "INIT, COMPRESSION",
	    "WITH option COMPRESSION is not supported", b + 6);
	bad("refuse.unknown.copy_only", BK "COPY_ONLY", "COPY_ONLY", b);
	bad("refuse.unknown.move", RS "MOVE 'a' TO '/b'",
	    "WITH option MOVE is not supported", r);
	bad("refuse.unknown.norecovery", RS "NORECOVERY", "NORECOVERY", r);
	bad("refuse.format_on_restore", RS "FORMAT",
	    "FORMAT is not an option of RESTORE", r);
	bad("refuse.init_on_restore", RS "NOINIT",
	    "NOINIT is not an option of RESTORE", r);
	bad("refuse.replace_on_backup", BK "REPLACE",
	    "REPLACE is not an option of BACKUP", b);
	bad("refuse.with_empty", BK, "expected a WITH option", b);
	bad("refuse.with_trailing_comma", BK "INIT,",
	    "expected a WITH option", b + 5);
	bad("refuse.option_quoted", BK "[INIT]", "expected a WITH option", b);
}

static void test_statement_refusals(void)
{
	bad("refuse.empty", "", "no statement", 0);
	bad("refuse.only_comment", "-- nothing\n", "no statement", 11);
	bad("refuse.select", "SELECT 1", "only BACKUP and RESTORE", 0);
	bad("refuse.headeronly", "RESTORE HEADERONLY FROM VIRTUAL_DEVICE='x'",
	    "RESTORE HEADERONLY is not supported", 8);
	bad("refuse.backup_certificate", "BACKUP CERTIFICATE c TO FILE='x'",
	    "BACKUP CERTIFICATE is not supported", 7);
	bad("refuse.no_kind", "BACKUP db TO VIRTUAL_DEVICE='x'",
	    "expected DATABASE or LOG", 7);
	bad("refuse.no_name", "BACKUP DATABASE TO VIRTUAL_DEVICE='x'",
	    "expected the database's name", 16);
	bad("refuse.name_variable", "BACKUP DATABASE @db TO VIRTUAL_DEVICE='x'",
	    "variables (@db)", 16);
	bad("refuse.name_slash", "BACKUP DATABASE [a/b] TO VIRTUAL_DEVICE='x'",
	    "may not contain '/'", 16);
	bad("refuse.name_dotdot", "BACKUP DATABASE [..] TO VIRTUAL_DEVICE='x'",
	    "nor begin with '.'", 16);
	bad("refuse.name_dot", "RESTORE DATABASE \".\" FROM VIRTUAL_DEVICE='x'",
	    "nor begin with '.'", 17);
	bad("refuse.name_empty", "BACKUP DATABASE [] TO VIRTUAL_DEVICE='x'",
	    "1 to 128 characters", 16);
	bad("refuse.name_control", "BACKUP DATABASE [a\tb] TO VIRTUAL_DEVICE='x'",
	    "control characters", 16);
	bad("refuse.name_unclosed", "BACKUP DATABASE [db TO VIRTUAL_DEVICE='x'",
	    "never closed", 16);
	bad("refuse.backup_from", "BACKUP DATABASE db FROM VIRTUAL_DEVICE='x'",
	    "BACKUP writes TO its devices", 19);
	bad("refuse.restore_to", "RESTORE DATABASE db TO VIRTUAL_DEVICE='x'",
	    "RESTORE reads FROM its devices", 20);
	bad("refuse.file_backup",
	    "BACKUP DATABASE db FILE='f' TO VIRTUAL_DEVICE='x'",
	    "file, filegroup and page", 19);
	bad("refuse.disk", "BACKUP DATABASE db TO DISK='/tmp/x.bak'",
	    "DISK devices are not supported", 22);
	bad("refuse.disk_second",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a', DISK='/tmp/x.bak'",
	    "DISK devices are not supported", 42);
	bad("refuse.url", "RESTORE DATABASE db FROM URL='https://x/y'",
	    "URL devices are not supported", 25);
	bad("refuse.tape", "BACKUP LOG db TO TAPE='\\\\.\\tape0'",
	    "TAPE devices are not supported", 17);
	bad("refuse.logical_device", "BACKUP DATABASE db TO mydevice",
	    "logical backup devices", 22);
	bad("refuse.device_no_equals", "BACKUP DATABASE db TO VIRTUAL_DEVICE 'x'",
	    "expected '=' after VIRTUAL_DEVICE", 37);
	bad("refuse.device_not_string", "BACKUP DATABASE db TO VIRTUAL_DEVICE=x",
	    "as a string", 37);
	bad("refuse.device_variable", "BACKUP DATABASE db TO VIRTUAL_DEVICE=@d",
	    "variables (@d)", 37);
	bad("refuse.device_empty", "BACKUP DATABASE db TO VIRTUAL_DEVICE=''",
	    "1 to 127 bytes", 37);
	bad("refuse.device_backslash",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a\\b'", "backslash", 37);
	bad("refuse.device_twice",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a', VIRTUAL_DEVICE='a'",
	    "named twice", 57);
	bad("refuse.device_unclosed", "BACKUP DATABASE db TO VIRTUAL_DEVICE='a",
	    "a string is never closed", 37);
	bad("refuse.missing_comma",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a' VIRTUAL_DEVICE='b'",
	    "missing ','", 41);
	bad("refuse.missing_with",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a' INIT",
	    "missing ',' or WITH", 41);
	bad("refuse.mirror",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a' MIRROR TO VIRTUAL_DEVICE='b'",
	    "MIRROR TO", 41);
	bad("refuse.second_statement",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a'; SELECT 1",
	    "one statement", 42);
	bad("refuse.two_semicolons",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a';;", "one statement", 41);
	bad("refuse.comment_unclosed",
	    "BACKUP DATABASE db TO VIRTUAL_DEVICE='a' /* open", "never closed",
	    41);
	bad("refuse.position_line",
	    "BACKUP DATABASE db\nTO VIRTUAL_DEVICE='a'\nWITH COMPRESSION",
	    "line 3, column 6", 46);
}

int main(void)
{
	test_basic();
	test_many_devices();
	test_options();
	test_option_refusals();
	test_statement_refusals();
	CHECK("stmt_name", "RESTORE LOG x FROM VIRTUAL_DEVICE='s'",
	      !strcmp(tsql_stmt_name(s), "RESTORE LOG"));
	printf("1..%d\n", n);
	if (failed)
		printf("# %d of %d failed\n", failed, n);
	return failed ? 1 : 0;
}
