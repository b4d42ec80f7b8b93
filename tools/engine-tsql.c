// SPDX-License-Identifier: GPL-2.0
/*
 * engine-tsql.c - the T-SQL parser of vdi-engine's sql subcommand: the one
 * BACKUP or RESTORE statement a VDI backup application (or its test rig,
 * through sqlcmd -Q) hands SQL Server.  Grammar (keywords in any case):
 *
 *   statement := ( BACKUP  kind name TO   devices
 *                | RESTORE kind name FROM devices ) [ WITH options ] [ ; ]
 *   kind      := DATABASE | LOG
 *   name      := identifier | [bracketed]]name] | "quoted""name"
 *   devices   := VIRTUAL_DEVICE = string { , VIRTUAL_DEVICE = string }
 *   string    := 'text''s' | N'text'
 *   options   := option { , option }
 *   option    := MAXTRANSFERSIZE = n | BUFFERCOUNT = n | BLOCKSIZE = n
 *              | STATS [ = n ] | FORMAT | NOFORMAT | INIT | NOINIT
 *              | CHECKSUM | NO_CHECKSUM | REPLACE
 *
 * plus "--" and "/ * ... * /" comments anywhere whitespace may be.  Anything
 * else is refused, naming what and where: the engine must not pretend to
 * honour an option (COMPRESSION, ENCRYPTION, MOVE, ...) it does not
 * implement, and a rig that relies on one must learn of it at once.
 *
 * The values are checked here against SQL Server's ranges (which are the
 * engine's), so "vdi-engine sql" can report them with their position.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engine-tsql.h"

/* ---- tokens ---- */
enum tok_type {
	T_END,		/* end of the text */
	T_WORD,		/* a plain identifier or keyword */
	T_IDENT,	/* [bracketed] or "quoted" identifier */
	T_STRING,	/* '...' or N'...' */
	T_NUMBER,	/* digits */
	T_PUNCT,	/* = , ; ( ) and any other single character */
};

#define VAL_MAX	1024

struct tok {
	enum tok_type type;
	size_t pos;		/* byte offset in the text */
	size_t len;		/* bytes of the text it spans */
	char val[VAL_MAX];	/* decoded: the name or string, unquoted */
	size_t vlen;		/* its true length (may exceed VAL_MAX - 1) */
	uint64_t num;		/* T_NUMBER, saturated at UINT64_MAX */
};

struct parser {
	const char *s;
	size_t i;		/* the next byte to lex */
	struct tok t;		/* the current token */
	struct tsql_error *err;
	bool failed;
	char shown[80];		/* shown(): the token for a message */
};

/* Record the first error, at byte @pos, with the position in front. */
static void __attribute__((format(printf, 3, 4)))
fail_at(struct parser *p, size_t pos, const char *fmt, ...)
{
	struct tsql_error *e = p->err;
	size_t k, n;
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	e->pos = pos;
	e->line = 1;
	e->column = 1;
	for (k = 0; k < pos && p->s[k]; k++) {
		if (p->s[k] == '\n') {
			e->line++;
			e->column = 1;
		} else {
			e->column++;
		}
	}
	n = (size_t)snprintf(e->msg, sizeof(e->msg), "line %u, column %u: ",
			     e->line, e->column);
	if (n >= sizeof(e->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	va_end(ap);
}

static bool is_word_start(unsigned char c)
{
	/* T-SQL's regular identifiers: a letter (any non-ASCII byte is taken
	 * for part of one), _, @ or #; then also digits and $ */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c == '@' || c == '#' || c >= 0x80;
}

static bool is_word_char(unsigned char c)
{
	return is_word_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static void val_add(struct tok *t, char c)
{
	if (t->vlen < VAL_MAX - 1)
		t->val[t->vlen] = c;
	t->vlen++;
	t->val[t->vlen < VAL_MAX - 1 ? t->vlen : VAL_MAX - 1] = '\0';
}

/* Skip whitespace and comments; false after an unterminated comment. */
static bool skip_space(struct parser *p)
{
	const char *s = p->s;

	for (;;) {
		if (s[p->i] == ' ' || s[p->i] == '\t' || s[p->i] == '\n' ||
		    s[p->i] == '\r' || s[p->i] == '\f' || s[p->i] == '\v') {
			p->i++;
		} else if (s[p->i] == '-' && s[p->i + 1] == '-') {
			while (s[p->i] && s[p->i] != '\n')
				p->i++;
		} else if (s[p->i] == '/' && s[p->i + 1] == '*') {
			/* T-SQL's block comments nest */
			size_t start = p->i;
			unsigned int depth = 0;

			do {
				if (!s[p->i]) {
					fail_at(p, start, "a /* comment is "
						"never closed");
					return false;
				}
				if (s[p->i] == '/' && s[p->i + 1] == '*') {
					depth++;
					p->i += 2;
				} else if (s[p->i] == '*' && s[p->i + 1] == '/') {
					depth--;
					p->i += 2;
				} else {
					p->i++;
				}
			} while (depth);
		} else {
			return true;
		}
	}
}

/* Read a quoted token from p->i (at the opening @open) up to @close, where
 * a doubled @close stands for one. */
static void lex_quoted(struct parser *p, char close, const char *what)
{
	struct tok *t = &p->t;
	const char *s = p->s;
	size_t start = t->pos;

	p->i++;			/* the opening quote */
	for (;;) {
		if (!s[p->i]) {
			fail_at(p, start, "%s is never closed (no %c)", what,
				close);
			return;
		}
		if (s[p->i] == close) {
			if (s[p->i + 1] != close)
				break;
			p->i++;	/* doubled: one of them */
		}
		val_add(t, s[p->i]);
		p->i++;
	}
	p->i++;			/* the closing quote */
}

/* Advance to the next token (p->t).  On a lexical error p->failed is set
 * and the token is T_END. */
static void next(struct parser *p)
{
	struct tok *t = &p->t;
	const char *s = p->s;
	unsigned char c;

	t->type = T_END;
	t->vlen = 0;
	t->val[0] = '\0';
	t->num = 0;
	if (p->failed || !skip_space(p)) {
		t->pos = p->i;
		t->len = 0;
		return;
	}
	t->pos = p->i;
	c = (unsigned char)s[p->i];
	if (!c) {
		t->len = 0;
		return;
	}
	if ((c == 'N' || c == 'n') && s[p->i + 1] == '\'') {
		p->i++;		/* N'...': a Unicode literal, the same to us */
		t->type = T_STRING;
		lex_quoted(p, '\'', "a string");
	} else if (c == '\'') {
		t->type = T_STRING;
		lex_quoted(p, '\'', "a string");
	} else if (c == '[') {
		t->type = T_IDENT;
		lex_quoted(p, ']', "a [name]");
	} else if (c == '"') {
		t->type = T_IDENT;
		lex_quoted(p, '"', "a \"name\"");
	} else if (is_word_start(c)) {
		t->type = T_WORD;
		while (is_word_char((unsigned char)s[p->i]))
			val_add(t, s[p->i++]);
	} else if (c >= '0' && c <= '9') {
		t->type = T_NUMBER;
		while (s[p->i] >= '0' && s[p->i] <= '9') {
			unsigned int d = (unsigned int)(s[p->i] - '0');

			val_add(t, s[p->i++]);
			t->num = t->num > (UINT64_MAX - d) / 10 ? UINT64_MAX :
				 t->num * 10 + d;
		}
		if (is_word_char((unsigned char)s[p->i]) || s[p->i] == '.') {
			while (is_word_char((unsigned char)s[p->i]) ||
			       s[p->i] == '.')
				val_add(t, s[p->i++]);
			fail_at(p, t->pos, "'%s' is not a whole number",
				t->val);
		}
	} else {
		t->type = T_PUNCT;
		val_add(t, s[p->i++]);
	}
	if (p->failed)
		t->type = T_END;
	t->len = p->i - t->pos;
}

/* The current token as the text holds it, for the one error message (at
 * most 60 bytes of it), or "the end of the statement". */
static const char *shown(struct parser *p)
{
	size_t n = p->t.len;

	if (p->t.type == T_END)
		return "the end of the statement";
	if (n > 60)
		n = 60;
	snprintf(p->shown, sizeof(p->shown), "'%.*s%s'", (int)n,
		 p->s + p->t.pos, p->t.len > 60 ? "..." : "");
	return p->shown;
}

static bool is_kw(const struct parser *p, const char *kw)
{
	return p->t.type == T_WORD && !strcasecmp(p->t.val, kw);
}

static bool is_punct(const struct parser *p, char c)
{
	return p->t.type == T_PUNCT && p->t.val[0] == c;
}

/* @word (upper case) is one of the NULL-terminated @list */
static bool kw_in(const struct parser *p, const char *const *list)
{
	for (; *list; list++)
		if (is_kw(p, *list))
			return true;
	return false;
}

/* ---- the statement's parts ---- */
static bool has_ctl(const char *v, size_t len)
{
	size_t k;

	for (k = 0; k < len; k++)
		if ((unsigned char)v[k] < 0x20 || v[k] == 0x7f)
			return true;
	return false;
}

/* characters of a UTF-8 string (bytes that do not continue one) */
static size_t utf8_chars(const char *v, size_t len)
{
	size_t k, n = 0;

	for (k = 0; k < len; k++)
		n += ((unsigned char)v[k] & 0xc0) != 0x80;
	return n;
}

static void parse_database(struct parser *p, struct tsql_stmt *st)
{
	static const char *const reserved[] = { "TO", "FROM", "WITH", NULL };
	const struct tok *t = &p->t;
	const char *what = st->kind == TSQL_LOG ? "LOG" : "DATABASE";

	if (t->type == T_WORD && t->val[0] == '@') {
		fail_at(p, t->pos, "variables (%s) are not supported: give "
			"the database's name", t->val);
		return;
	}
	if ((t->type != T_WORD && t->type != T_IDENT) || kw_in(p, reserved)) {
		fail_at(p, t->pos, "expected the database's name after %s, "
			"found %s", what, shown(p));
		return;
	}
	/*
	 * The name becomes a file name in the data directory (name.mdf,
	 * name.ldf): no '/', no control characters, and no leading '.'
	 * (so neither "." nor ".." nor a hidden file).
	 */
	if (!t->vlen || utf8_chars(t->val, t->vlen) > TSQL_DB_MAX ||
	    t->vlen >= sizeof(st->database)) {
		fail_at(p, t->pos, "a database name is 1 to %d characters",
			TSQL_DB_MAX);
		return;
	}
	if (strchr(t->val, '/') || has_ctl(t->val, t->vlen) ||
	    t->val[0] == '.') {
		fail_at(p, t->pos, "database name %s: it names a file in the "
			"data directory, so it may not contain '/' or control "
			"characters, nor begin with '.'", shown(p));
		return;
	}
	memcpy(st->database, t->val, t->vlen + 1);
	next(p);
}

static void parse_devices(struct parser *p, struct tsql_stmt *st)
{
	static const char *const other[] = { "DISK", "TAPE", "URL", NULL };
	const struct tok *t = &p->t;
	unsigned int k;

	for (;;) {
		if (kw_in(p, other)) {
			fail_at(p, t->pos, "%s devices are not supported: "
				"vdi-engine %s only VIRTUAL_DEVICE = "
				"'<name>'", t->val, st->op == TSQL_BACKUP ?
				"backs up to" : "restores from");
			return;
		}
		if (!is_kw(p, "VIRTUAL_DEVICE")) {
			fail_at(p, t->pos, "expected VIRTUAL_DEVICE = "
				"'<name>', found %s%s", shown(p),
				t->type == T_WORD || t->type == T_IDENT ?
				" (logical backup devices are not supported)" :
				"");
			return;
		}
		next(p);
		if (!is_punct(p, '=')) {
			fail_at(p, t->pos, "expected '=' after VIRTUAL_DEVICE, "
				"found %s", shown(p));
			return;
		}
		next(p);
		if (t->type == T_WORD && t->val[0] == '@') {
			fail_at(p, t->pos, "variables (%s) are not supported: "
				"give the device's name as a string", t->val);
			return;
		}
		if (t->type != T_STRING) {
			fail_at(p, t->pos, "expected the device's name as a "
				"string ('name'), found %s", shown(p));
			return;
		}
		/* VDI's names: 1..127 bytes, no backslash or control chars */
		if (!t->vlen || t->vlen > TSQL_DEVICE_MAX ||
		    strchr(t->val, '\\') || has_ctl(t->val, t->vlen)) {
			fail_at(p, t->pos, "device name %s: a device name is 1 "
				"to %d bytes, without a backslash or control "
				"characters", shown(p), TSQL_DEVICE_MAX);
			return;
		}
		for (k = 0; k < st->ndev; k++)
			if (!strcmp(st->device[k], t->val)) {
				fail_at(p, t->pos, "device '%s' is named twice",
					t->val);
				return;
			}
		if (st->ndev == TSQL_MAX_DEVICES) {
			fail_at(p, t->pos, "at most %d devices",
				TSQL_MAX_DEVICES);
			return;
		}
		memcpy(st->device[st->ndev++], t->val, t->vlen + 1);
		next(p);
		if (is_kw(p, "MIRROR")) {
			fail_at(p, t->pos, "MIRROR TO is not supported");
			return;
		}
		if (!is_punct(p, ','))
			return;
		next(p);
	}
}

/* The WITH options vdi-engine knows: name, bit, has a value (2: optional) */
static const struct {
	const char *name;
	enum tsql_opt bit;
	int valued;
	bool value;		/* for the flags: FORMAT true, NOFORMAT false */
	int only;		/* -1: any, else the only enum tsql_op */
} known[] = {
	{ "MAXTRANSFERSIZE", TSQL_O_MAXTRANSFERSIZE, 1, false, -1 },
	{ "BUFFERCOUNT", TSQL_O_BUFFERCOUNT, 1, false, -1 },
	{ "BLOCKSIZE", TSQL_O_BLOCKSIZE, 1, false, -1 },
	{ "STATS", TSQL_O_STATS, 2, false, -1 },
	{ "FORMAT", TSQL_O_FORMAT, 0, true, TSQL_BACKUP },
	{ "NOFORMAT", TSQL_O_FORMAT, 0, false, TSQL_BACKUP },
	{ "INIT", TSQL_O_INIT, 0, true, TSQL_BACKUP },
	{ "NOINIT", TSQL_O_INIT, 0, false, TSQL_BACKUP },
	{ "CHECKSUM", TSQL_O_CHECKSUM, 0, true, -1 },
	{ "NO_CHECKSUM", TSQL_O_CHECKSUM, 0, false, -1 },
	{ "REPLACE", TSQL_O_REPLACE, 0, true, TSQL_RESTORE },
};

#define SUPPORTED "MAXTRANSFERSIZE, BUFFERCOUNT, BLOCKSIZE, STATS, " \
	"[NO]FORMAT, [NO]INIT, CHECKSUM, NO_CHECKSUM, REPLACE"

/* The value of a valued option (after '='), checked; false on error. */
static bool option_value(struct parser *p, struct tsql_stmt *st,
			 enum tsql_opt bit, const char *name, size_t at)
{
	const struct tok *t = &p->t;
	uint64_t v;

	if (t->type == T_WORD && t->val[0] == '@') {
		fail_at(p, t->pos, "variables (%s) are not supported: give "
			"%s a number", t->val, name);
		return false;
	}
	if (t->type != T_NUMBER) {
		fail_at(p, t->pos, "expected a number for %s, found %s", name,
			shown(p));
		return false;
	}
	v = t->num;
	switch (bit) {
	case TSQL_O_MAXTRANSFERSIZE:
		if (!v || v % 65536 || v > 4194304) {
			fail_at(p, t->pos, "MAXTRANSFERSIZE = %s: it must be a "
				"multiple of 65536 from 65536 to 4194304 "
				"(4 MB)", t->val);
			return false;
		}
		st->max_transfer = (uint32_t)v;
		break;
	case TSQL_O_BLOCKSIZE:
		if (v < 512 || v > 65536 || (v & (v - 1))) {
			fail_at(p, t->pos, "BLOCKSIZE = %s: it must be a power "
				"of 2 from 512 to 65536", t->val);
			return false;
		}
		st->block_size = (uint32_t)v;
		break;
	case TSQL_O_BUFFERCOUNT:
		if (!v || v > TSQL_MAX_BUFFERS) {
			fail_at(p, t->pos, "BUFFERCOUNT = %s: it must be 1 to "
				"%d (the commands one set may have in flight)",
				t->val, TSQL_MAX_BUFFERS);
			return false;
		}
		st->buffer_count = (uint32_t)v;
		break;
	case TSQL_O_STATS:
		if (!v || v > 100) {
			fail_at(p, t->pos, "STATS = %s: it must be a percentage "
				"from 1 to 100", t->val);
			return false;
		}
		st->stats = (unsigned int)v;
		break;
	default:
		fail_at(p, at, "%s takes no value", name);	/* not reached */
		return false;
	}
	next(p);
	return true;
}

static void parse_options(struct parser *p, struct tsql_stmt *st)
{
	const struct tok *t = &p->t;
	const char *stmt = st->op == TSQL_BACKUP ? "BACKUP" : "RESTORE";
	size_t k, at;

	for (;;) {
		if (t->type != T_WORD) {
			fail_at(p, t->pos, "expected a WITH option, found %s "
				"(vdi-engine knows %s)", shown(p), SUPPORTED);
			return;
		}
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (is_kw(p, known[k].name))
				break;
		if (k == sizeof(known) / sizeof(known[0])) {
			fail_at(p, t->pos, "WITH option %s is not supported "
				"by vdi-engine (it knows %s)", t->val,
				SUPPORTED);
			return;
		}
		at = t->pos;
		if (known[k].only >= 0 && known[k].only != (int)st->op) {
			/* as SQL Server: FORMAT and INIT are about writing
			 * media, REPLACE about overwriting a database */
			fail_at(p, at, "%s is not an option of %s (only of %s)",
				known[k].name, stmt, st->op == TSQL_BACKUP ?
				"RESTORE" : "BACKUP");
			return;
		}
		if (st->given & known[k].bit) {
			fail_at(p, at, "%s repeats or contradicts an option "
				"given before it", known[k].name);
			return;
		}
		st->given |= known[k].bit;
		next(p);
		if (known[k].valued) {
			if (is_punct(p, '=')) {
				next(p);
				if (!option_value(p, st, known[k].bit,
						  known[k].name, at))
					return;
			} else if (known[k].valued == 1) {
				fail_at(p, t->pos, "expected '=' and a number "
					"after %s, found %s", known[k].name,
					shown(p));
				return;
			} else {
				st->stats = TSQL_STATS_DEFAULT;
			}
		} else {
			if (is_punct(p, '=')) {
				fail_at(p, t->pos, "%s takes no value",
					known[k].name);
				return;
			}
			switch (known[k].bit) {
			case TSQL_O_FORMAT:
				st->format = known[k].value;
				break;
			case TSQL_O_INIT:
				st->init = known[k].value;
				break;
			case TSQL_O_CHECKSUM:
				st->checksum = known[k].value;
				break;
			default:	/* REPLACE */
				st->replace = true;
			}
		}
		if (!is_punct(p, ','))
			return;
		next(p);
	}
}

int tsql_parse(const char *text, struct tsql_stmt *st, struct tsql_error *err)
{
	static const char *const backup_other[] = { "CERTIFICATE", "MASTER",
		"SERVICE", "SYMMETRIC", NULL };
	static const char *const restore_other[] = { "HEADERONLY",
		"FILELISTONLY", "VERIFYONLY", "LABELONLY", "REWINDONLY",
		"MASTER", "SERVICE", "SYMMETRIC", NULL };
	struct parser P, *p = &P;
	const struct tok *t;
	const char *stmt;
	size_t k;

	memset(p, 0, sizeof(*p));
	memset(st, 0, sizeof(*st));
	memset(err, 0, sizeof(*err));
	p->s = text;
	p->err = err;
	t = &p->t;

	next(p);
	if (t->type == T_END && !p->failed) {
		fail_at(p, t->pos, "no statement: expected BACKUP or RESTORE");
		goto out;
	}
	if (is_kw(p, "BACKUP")) {
		st->op = TSQL_BACKUP;
	} else if (is_kw(p, "RESTORE")) {
		st->op = TSQL_RESTORE;
	} else {
		fail_at(p, t->pos, "%s: vdi-engine runs only BACKUP and RESTORE "
			"statements", shown(p));
		goto out;
	}
	stmt = st->op == TSQL_BACKUP ? "BACKUP" : "RESTORE";
	next(p);
	if (is_kw(p, "DATABASE")) {
		st->kind = TSQL_DATABASE;
	} else if (is_kw(p, "LOG")) {
		st->kind = TSQL_LOG;
	} else if (kw_in(p, st->op == TSQL_BACKUP ? backup_other :
			 restore_other)) {
		fail_at(p, t->pos, "%s %s is not supported: only %s DATABASE "
			"and %s LOG", stmt, t->val, stmt, stmt);
		goto out;
	} else {
		fail_at(p, t->pos, "expected DATABASE or LOG after %s, found %s",
			stmt, shown(p));
		goto out;
	}
	next(p);
	parse_database(p, st);
	if (p->failed)
		goto out;

	if (is_kw(p, st->op == TSQL_BACKUP ? "FROM" : "TO")) {
		fail_at(p, t->pos, "%s %s its devices: say %s", stmt,
			st->op == TSQL_BACKUP ? "writes TO" : "reads FROM",
			st->op == TSQL_BACKUP ? "TO" : "FROM");
		goto out;
	}
	if (!is_kw(p, st->op == TSQL_BACKUP ? "TO" : "FROM")) {
		if (is_kw(p, "FILE") || is_kw(p, "FILEGROUP") ||
		    is_kw(p, "PAGE") || is_kw(p, "READ_WRITE_FILEGROUPS"))
			fail_at(p, t->pos, "file, filegroup and page %ss (%s) "
				"are not supported", stmt, t->val);
		else
			fail_at(p, t->pos, "expected %s after the database's "
				"name, found %s", st->op == TSQL_BACKUP ? "TO" :
				"FROM", shown(p));
		goto out;
	}
	next(p);
	parse_devices(p, st);
	if (p->failed)
		goto out;

	if (is_kw(p, "WITH")) {
		next(p);
		parse_options(p, st);
		if (p->failed)
			goto out;
	}
	if (is_punct(p, ';'))
		next(p);
	if (t->type != T_END && !p->failed) {
		/* a device or an option here: a ',' or WITH is missing */
		bool hint = is_kw(p, "VIRTUAL_DEVICE");

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			hint |= is_kw(p, known[k].name);
		fail_at(p, t->pos, "unexpected %s: vdi-engine runs one "
			"statement, and this one has ended%s", shown(p),
			hint ? " (a missing ',' or WITH?)" : "");
	}
out:
	return p->failed ? -1 : 0;
}

const char *tsql_stmt_name(const struct tsql_stmt *st)
{
	if (st->op == TSQL_BACKUP)
		return st->kind == TSQL_LOG ? "BACKUP LOG" : "BACKUP DATABASE";
	return st->kind == TSQL_LOG ? "RESTORE LOG" : "RESTORE DATABASE";
}
