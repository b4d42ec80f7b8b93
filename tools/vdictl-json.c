// SPDX-License-Identifier: GPL-2.0
/*
 * vdictl: the JSON writer (RFC 8259).  Streaming, on one line: vdictl top
 * --json writes one document per refresh, one per line.  Set and device
 * names are any bytes but control characters and backslash (the module's
 * rule), so they may hold quotes and need not be UTF-8: see json_str().
 */
#include <math.h>
#include <string.h>

#include "vdictl.h"

void json_init(struct json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
}

static bool json_write_str(FILE *f, const char *str, size_t max);

/* The comma before a value (not before the first at its depth), and its key. */
static void json_key(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (key) {
		json_write_str(j->f, key, strlen(key));
		fputc(':', j->f);
	}
}

static void json_open(struct json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_DEPTH)	/* vdictl nests at most 4 deep */
		j->depth++;
	j->first[j->depth] = true;
}

void json_obj(struct json *j, const char *key)
{
	json_open(j, key, '{');
}

void json_arr(struct json *j, const char *key)
{
	json_open(j, key, '[');
}

void json_end_obj(struct json *j)
{
	fputc('}', j->f);
	if (j->depth)
		j->depth--;
}

void json_end_arr(struct json *j)
{
	fputc(']', j->f);
	if (j->depth)
		j->depth--;
}

void json_done(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
	json_init(j, j->f);
}

/* A string's quoted and escaped text; true if it was valid UTF-8. */
static bool json_write_str(FILE *f, const char *str, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strnlen(str, max), i = 0, len;
	bool valid = true;

	fputc('"', f);
	while (i < n) {
		len = utf8_seq(s + i, n - i);
		if (!len) {
			fputs("\\ufffd", f);
			valid = false;
			i++;
			continue;
		}
		if (s[i] == '"' || s[i] == '\\')
			fprintf(f, "\\%c", s[i]);
		else if (s[i] == '\n')
			fputs("\\n", f);
		else if (s[i] == '\t')
			fputs("\\t", f);
		else if (s[i] < 0x20)
			fprintf(f, "\\u%04x", s[i]);
		else
			fwrite(s + i, 1, len, f);
		i += len;
	}
	fputc('"', f);
	return valid;
}

bool json_str(struct json *j, const char *key, const char *str, size_t max)
{
	json_key(j, key);
	return json_write_str(j->f, str, max);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%lld", (long long)v);
}

void json_num(struct json *j, const char *key, double v, int prec)
{
	json_key(j, key);
	if (isfinite(v))
		fprintf(j->f, "%.*f", prec, v);
	else
		fputs("null", j->f);
}

void json_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
	json_key(j, key);
	fputs("null", j->f);
}

void json_pid(struct json *j, const char *key, uint32_t pid)
{
	if (pid)
		json_u64(j, key, pid);
	else
		json_null(j, key);
}

void json_name(struct json *j, const char *key, const char *name)
{
	char hkey[64], hex[2 * VDI_NAME_MAX + 1];
	size_t n = strnlen(name, VDI_NAME_MAX), i;

	if (json_str(j, key, name, VDI_NAME_MAX))
		return;
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)name[i]);
	hex[2 * n] = '\0';
	snprintf(hkey, sizeof(hkey), "%s_hex", key);
	json_str(j, hkey, hex, sizeof(hex));
}
