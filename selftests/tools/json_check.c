// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-json-check - a strict JSON checker for the tools' tests (busybox has
 * no JSON parser): is the input one valid JSON document (RFC 8259: UTF-8,
 * no trailing commas, no leading zeros, no control characters in strings),
 * with no key twice in an object; and what value is at a path.
 *
 *   vdi-json-check [--lines] [--get PATH | --len PATH] < input
 *
 * --lines: every non-empty line is a document of its own (vdictl top
 * --json).  --get PATH prints the value at PATH (keys and array indexes
 * joined by dots: "sets.0.name"): a string decoded, anything else as its
 * JSON text; --len PATH the number of members or elements of the object or
 * array there.  A PATH that is not there fails.  Exit 0 valid (and found),
 * 1 otherwise with "vdi-json-check: line L, column C: why" on stderr, 2
 * bad command line.  make tools-unit-check holds it against python3's json
 * (scripts/json-check-test.sh).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH	64
#define MAX_KEYS	512	/* per object, for the duplicate check */

struct parser {
	const unsigned char *s, *end, *p;
	const char *why;
	const unsigned char *err_at;
	/* the path asked for, split at dots */
	char *want[MAX_DEPTH];
	int nwant;
	bool len_mode;
	/* where the parse is: how many components of want match so far */
	int depth, matched;
	bool found;
	FILE *out;
};

static bool fail(struct parser *ps, const char *why)
{
	if (!ps->why) {
		ps->why = why;
		ps->err_at = ps->p;
	}
	return false;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* bytes of a valid UTF-8 sequence at p, or 0 */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (*p < 0x80)
		return 1;
	if (*p >= 0xc2 && *p <= 0xdf)
		n = 2;
	else if (*p >= 0xe0 && *p <= 0xef)
		n = 3;
	else if (*p >= 0xf0 && *p <= 0xf4)
		n = 4;
	else
		return 0;
	if (*p == 0xe0)
		lo = 0xa0;
	else if (*p == 0xed)
		hi = 0x9f;
	else if (*p == 0xf0)
		lo = 0x90;
	else if (*p == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static void put_utf8(char **o, uint32_t cp)
{
	unsigned char *b = (unsigned char *)*o;

	if (cp < 0x80) {
		*b++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*b++ = (unsigned char)(0xc0 | cp >> 6);
		*b++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*b++ = (unsigned char)(0xe0 | cp >> 12);
		*b++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*b++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*b++ = (unsigned char)(0xf0 | cp >> 18);
		*b++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*b++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*b++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*o = (char *)b;
}

static bool hex4(struct parser *ps, uint32_t *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++, ps->p++) {
		unsigned char c = ps->p < ps->end ? *ps->p : 0;

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			*v |= (c | 0x20) - 'a' + 10;
		else
			return fail(ps, "bad \\u escape");
	}
	return true;
}

/* A string at p (the opening quote); its decoded text into a malloc()ed
 * *text (NUL-terminated; *len without it) if text is not NULL. */
static bool string(struct parser *ps, char **text, size_t *len)
{
	char *buf = NULL, *o = NULL;
	uint32_t cp, lo;
	size_t n;

	ps->p++;
	if (text) {
		buf = malloc((size_t)(ps->end - ps->p) + 1);
		if (!buf)
			return fail(ps, "out of memory");
		o = buf;
	}
	for (;;) {
		if (ps->p >= ps->end) {
			free(buf);
			return fail(ps, "unterminated string");
		}
		if (*ps->p == '"')
			break;
		if (*ps->p < 0x20) {
			free(buf);
			return fail(ps, "control character in a string");
		}
		if (*ps->p != '\\') {
			n = utf8_len(ps->p, ps->end);
			if (!n) {
				free(buf);
				return fail(ps, "invalid UTF-8");
			}
			if (o) {
				memcpy(o, ps->p, n);
				o += n;
			}
			ps->p += n;
			continue;
		}
		ps->p++;
		if (ps->p >= ps->end) {
			free(buf);
			return fail(ps, "unterminated string");
		}
		switch (*ps->p) {
		case '"': case '\\': case '/':
			cp = *ps->p;
			break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			ps->p++;
			if (!hex4(ps, &cp)) {
				free(buf);
				return false;
			}
			/* a surrogate pair: \uD8xx\uDCxx */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (ps->end - ps->p < 2 || ps->p[0] != '\\' ||
				    ps->p[1] != 'u') {
					free(buf);
					return fail(ps, "lone high surrogate");
				}
				ps->p += 2;
				if (!hex4(ps, &lo)) {
					free(buf);
					return false;
				}
				if (lo < 0xdc00 || lo > 0xdfff) {
					free(buf);
					return fail(ps, "bad low surrogate");
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				free(buf);
				return fail(ps, "lone low surrogate");
			}
			if (o)
				put_utf8(&o, cp);
			continue;	/* hex4 moved p past the digits */
		default:
			free(buf);
			return fail(ps, "bad escape");
		}
		if (o)
			*o++ = (char)cp;
		ps->p++;
	}
	ps->p++;
	if (text) {
		*o = '\0';
		*text = buf;
		*len = (size_t)(o - buf);
	}
	return true;
}

static bool digits(struct parser *ps)
{
	const unsigned char *at = ps->p;

	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	return ps->p > at || fail(ps, "digit expected");
}

static bool number(struct parser *ps)
{
	if (*ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0') {
		ps->p++;
		if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			return fail(ps, "leading zero");
	} else if (!digits(ps)) {
		return false;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (!digits(ps))
			return false;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!digits(ps))
			return false;
	}
	return true;
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, "unexpected character");
	ps->p += n;
	return true;
}

static bool value(struct parser *ps);

/* The value just parsed is the child "component" of the current one:
 * descend the wanted path when it matches. */
static bool child(struct parser *ps, const char *component, unsigned int *count)
{
	bool on_path = ps->matched == ps->depth && ps->matched < ps->nwant &&
		       !strcmp(ps->want[ps->matched], component);
	bool ok;

	ps->depth++;
	if (on_path)
		ps->matched++;
	ok = value(ps);
	if (on_path)
		ps->matched--;
	ps->depth--;
	(*count)++;
	return ok;
}

static bool object(struct parser *ps, unsigned int *count)
{
	char *keys[MAX_KEYS];
	unsigned int nkeys = 0, i;
	bool ok = false;
	size_t klen;
	char *key;

	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return true;
	}
	for (;;) {
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"') {
			fail(ps, "a key (string) expected");
			break;
		}
		if (!string(ps, &key, &klen))
			break;
		if (strlen(key) != klen) {
			free(key);
			fail(ps, "a key holds NUL");
			break;
		}
		for (i = 0; i < nkeys; i++)
			if (!strcmp(keys[i], key))
				break;
		if (i < nkeys) {
			free(key);
			fail(ps, "duplicate key");
			break;
		}
		if (nkeys == MAX_KEYS) {
			free(key);
			fail(ps, "too many keys for this checker");
			break;
		}
		keys[nkeys++] = key;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			fail(ps, "':' expected");
			break;
		}
		ps->p++;
		if (!child(ps, key, count))
			break;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			ok = true;
		} else {
			fail(ps, "',' or '}' expected");
		}
		break;
	}
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	return ok;
}

static bool array(struct parser *ps, unsigned int *count)
{
	char idx[16];

	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return true;
	}
	for (;;) {
		snprintf(idx, sizeof(idx), "%u", *count);
		if (!child(ps, idx, count))
			return false;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return true;
		}
		return fail(ps, "',' or ']' expected");
	}
}

static bool value(struct parser *ps)
{
	bool target = ps->nwant && ps->matched == ps->nwant &&
		      ps->depth == ps->nwant;
	unsigned int count = 0;
	const unsigned char *at;
	size_t len;
	char *text;
	bool ok;

	if (ps->depth > MAX_DEPTH)
		return fail(ps, "nested too deep");
	skip_ws(ps);
	at = ps->p;
	if (ps->p >= ps->end)
		return fail(ps, "a value expected");
	switch (*ps->p) {
	case '{':
		ok = object(ps, &count);
		break;
	case '[':
		ok = array(ps, &count);
		break;
	case '"':
		if (target && !ps->len_mode) {
			ok = string(ps, &text, &len);
			if (ok) {
				fwrite(text, 1, len, ps->out);
				fputc('\n', ps->out);
				free(text);
				ps->found = true;
			}
			return ok;
		}
		ok = string(ps, NULL, NULL);
		break;
	case 't':
		ok = literal(ps, "true");
		break;
	case 'f':
		ok = literal(ps, "false");
		break;
	case 'n':
		ok = literal(ps, "null");
		break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			ok = number(ps);
		else
			ok = fail(ps, "unexpected character");
	}
	if (!ok || !target)
		return ok;
	if (ps->len_mode) {
		if (*at != '{' && *at != '[')
			return fail(ps, "--len: not an object or array");
		fprintf(ps->out, "%u\n", count);
	} else {
		fwrite(at, 1, (size_t)(ps->p - at), ps->out);
		fputc('\n', ps->out);
	}
	ps->found = true;
	return true;
}

/* One document in [s, end): 0, or 1 after saying why. */
static int check(struct parser *ps, const unsigned char *s,
		 const unsigned char *end, const unsigned char *input,
		 unsigned int line0)
{
	const unsigned char *q;
	unsigned int line = line0, col = 1;

	ps->s = ps->p = s;
	ps->end = end;
	ps->why = NULL;
	ps->depth = ps->matched = 0;
	ps->found = false;
	if (value(ps)) {
		skip_ws(ps);
		if (ps->p < ps->end)
			fail(ps, "text after the document");
	}
	if (!ps->why && ps->nwant && !ps->found) {
		ps->why = "no such path";
		ps->err_at = s;
	}
	if (!ps->why)
		return 0;
	for (q = input; q < ps->err_at; q++, col++)
		if (*q == '\n') {
			line++;
			col = 0;
		}
	fprintf(stderr, "vdi-json-check: line %u, column %u: %s\n", line, col,
		ps->why);
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: vdi-json-check [--lines] [--get PATH | --len "
		"PATH] < input\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct parser ps = { .out = stdout };
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, r;
	bool lines = false;
	char *path = NULL, *tok;
	unsigned int ln, docs = 0;
	int i, bad = 0;
	size_t off;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lines"))
			lines = true;
		else if ((!strcmp(argv[i], "--get") || !strcmp(argv[i], "--len")) &&
			 i + 1 < argc && !path) {
			ps.len_mode = !strcmp(argv[i], "--len");
			path = argv[++i];
		} else {
			return usage();
		}
	}
	for (tok = path ? strtok(path, ".") : NULL; tok && ps.nwant < MAX_DEPTH;
	     tok = strtok(NULL, "."))
		ps.want[ps.nwant++] = tok;
	if (path && !ps.nwant)
		return usage();
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap + 1);
			if (!buf) {
				fprintf(stderr, "vdi-json-check: out of memory\n");
				return 1;
			}
		}
		r = fread(buf + len, 1, cap - len, stdin);
		if (!r)
			break;
		len += r;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "vdi-json-check: cannot read the input\n");
		return 1;
	}
	if (!buf)
		buf = calloc(1, 1);
	if (!lines)
		return check(&ps, buf, buf + len, buf, 1);
	/* --lines: each non-empty line on its own */
	for (ln = 1, off = 0; off < len; ln++) {
		unsigned char *nl = memchr(buf + off, '\n', len - off);
		unsigned char *e = nl ? nl : buf + len;

		if (e > buf + off) {
			bad |= check(&ps, buf + off, e, buf + off, ln);
			docs++;
		}
		off = (size_t)(e - buf) + 1;
	}
	if (!docs) {
		fprintf(stderr, "vdi-json-check: no document\n");
		return 1;
	}
	return bad;
}
