/* SPDX-License-Identifier: GPL-2.0 */
/*
 * engine-tsql.h - the T-SQL front end of vdi-engine: the parser of the one
 * statement a VDI backup application sends SQL Server,
 *
 *   BACKUP  { DATABASE | LOG } name TO   VIRTUAL_DEVICE = 'set' [, ...]
 *   RESTORE { DATABASE | LOG } name FROM VIRTUAL_DEVICE = 'set' [, ...]
 *       [ WITH option [, ...] ] [;]
 *
 * A pure function of the text: no I/O, no VDI, no global state, so it is
 * tested on its own (selftests/tools/tsql_parse_test.c).  What the engine
 * does with the result is in engine-tsql-run / the sql subcommand.
 */
#ifndef VDI_TOOLS_ENGINE_TSQL_H
#define VDI_TOOLS_ENGINE_TSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TSQL_MAX_DEVICES	64	/* SQL Server's limit, and VDI's */
#define TSQL_DEVICE_MAX		127	/* bytes of a device name (VDI's) */
#define TSQL_DB_MAX		128	/* characters of a sysname */
#define TSQL_MAX_BUFFERS	256	/* BUFFERCOUNT: the module's queue */
#define TSQL_STATS_DEFAULT	10	/* STATS without a value */

enum tsql_op { TSQL_BACKUP, TSQL_RESTORE };
enum tsql_kind { TSQL_DATABASE, TSQL_LOG };

/* Which WITH options the statement gave (struct tsql_stmt.given). */
enum tsql_opt {
	TSQL_O_MAXTRANSFERSIZE	= 1 << 0,
	TSQL_O_BUFFERCOUNT	= 1 << 1,
	TSQL_O_BLOCKSIZE	= 1 << 2,
	TSQL_O_FORMAT		= 1 << 3,	/* FORMAT or NOFORMAT */
	TSQL_O_INIT		= 1 << 4,	/* INIT or NOINIT */
	TSQL_O_REPLACE		= 1 << 5,
	TSQL_O_CHECKSUM		= 1 << 6,	/* CHECKSUM or NO_CHECKSUM */
	TSQL_O_STATS		= 1 << 7,
};

struct tsql_stmt {
	enum tsql_op op;
	enum tsql_kind kind;
	char database[TSQL_DB_MAX * 4 + 1];	/* UTF-8, unquoted */
	unsigned int ndev;			/* 1..TSQL_MAX_DEVICES */
	char device[TSQL_MAX_DEVICES][TSQL_DEVICE_MAX + 1];	/* [0]: set */
	unsigned int given;			/* enum tsql_opt bits */
	uint32_t max_transfer;		/* MAXTRANSFERSIZE (bytes) */
	uint32_t buffer_count;		/* BUFFERCOUNT */
	uint32_t block_size;		/* BLOCKSIZE (bytes) */
	bool format;			/* FORMAT (false: NOFORMAT) */
	bool init;			/* INIT (false: NOINIT) */
	bool replace;			/* REPLACE */
	bool checksum;			/* CHECKSUM (false: NO_CHECKSUM) */
	unsigned int stats;		/* STATS percent step, 1..100 */
};

/*
 * Where the statement was refused and why.  pos is the byte offset of what
 * was refused in the text; line and column (1-based, columns in bytes) say
 * the same for a person; msg holds the whole sentence, position included:
 *   "line 1, column 61: WITH option COMPRESSION is not supported ..."
 */
struct tsql_error {
	size_t pos;
	unsigned int line, column;
	char msg[512];
};

/*
 * Parse one BACKUP or RESTORE statement.  Returns 0 and fills *st, or -1
 * and fills *err (st is then undefined).  Keywords are case-insensitive;
 * names are plain identifiers, [bracketed] or "quoted"; strings are
 * '...' or N'...' with '' for a quote; -- and / * * / comments; one
 * optional ';' at the end and nothing else after it.
 */
int tsql_parse(const char *text, struct tsql_stmt *st, struct tsql_error *err);

/* "BACKUP DATABASE", "RESTORE LOG", ... (as SQL Server's messages name it) */
const char *tsql_stmt_name(const struct tsql_stmt *st);

#endif /* VDI_TOOLS_ENGINE_TSQL_H */
