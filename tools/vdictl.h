/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdictl - look at the vdi module and its sets, abort a stuck one, load the
 * module.  What its files share:
 *
 *   vdictl-main.c    command line, set lookup (NAME / #ID), list, show,
 *                    top, abort
 *   vdictl-module.c  status (sysfs, /dev/vdi, VDI_IOC_VERSION) and load
 *                    (libkmod)
 *   vdictl-format.c  names and numbers: device states, abort reasons, VDC
 *                    codes, features, sizes, times; a set and its devices
 *                    as text or JSON (show), the verdict
 *   stats-report.c   (shared with vdi-engine and vdi-client) names made safe
 *                    for a terminal, the set's state and abort cause in
 *                    words, its figures' table and the verdicts
 *   vdictl-json.c    the JSON writer
 *
 * It reads the module's figures through libvdi (vdi_stats_list, _get,
 * _abort, _verdict) and never loads the module, except "vdictl load".
 */
#ifndef VDI_TOOLS_VDICTL_H
#define VDI_TOOLS_VDICTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libvdi.h>

#include "common.h"
#include "stats-report.h"

/* "vdictl status": the module is not loaded (as systemctl status's 3). */
#define EXIT_NOT_LOADED	3

/* ---- vdictl-json.c: a streaming JSON writer ----
 * Values go out as they come, on one line; the writer adds the commas and
 * escapes every string.  key is NULL inside an array.  Strings are bytes:
 * valid UTF-8 passes as it is, an invalid byte becomes U+FFFD (a JSON
 * document must be Unicode), and json_str() says whether that happened.
 */
#define JSON_DEPTH	16
struct json {
	FILE *f;
	int depth;
	bool first[JSON_DEPTH];	/* no value yet at this depth */
};
void json_init(struct json *j, FILE *f);
void json_obj(struct json *j, const char *key);	/* { */
void json_arr(struct json *j, const char *key);	/* [ */
void json_end_obj(struct json *j);		/* } */
void json_end_arr(struct json *j);		/* ] */
/* Ends the document: a newline after the last bracket. */
void json_done(struct json *j);
/* True if s (up to max bytes or its NUL) was valid UTF-8. */
bool json_str(struct json *j, const char *key, const char *s, size_t max);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
/* v with prec decimals (a finite number; NaN or infinity give null) */
void json_num(struct json *j, const char *key, double v, int prec);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
/* A pid, 0 meaning none: null. */
void json_pid(struct json *j, const char *key, uint32_t pid);
/* A set or device name, and "<key>_hex" with its bytes when it is not
 * valid UTF-8 (the JSON string then holds U+FFFD in their place). */
void json_name(struct json *j, const char *key, const char *name);

/* ---- vdictl-format.c ---- */
const char *dev_state_name(uint32_t state);	/* "io-error" */
const char *abort_reason_name(uint32_t reason);	/* "watchdog", for JSON */
const char *vdc_name(uint32_t code);		/* "VDC_Write", or NULL */
const char *side_name(int side);		/* "client", or "-" */
/* "12.3MiB", "512B": short, no space (for tables) */
const char *fmt_short(char *buf, size_t len, uint64_t bytes);
/* "1234.5 ms" */
const char *fmt_ms(char *buf, size_t len, uint64_t ns);
/* a user or group by name, else its number */
const char *user_name(uint32_t uid, char *buf, size_t len);
const char *group_name(uint32_t gid, char *buf, size_t len);
/* bytes moved by a set (read + written, all devices) */
uint64_t set_bytes(const vdi_stats *st);

/* vdictl show: everything about one set. */
void show_text(FILE *f, const vdi_stats *st);
void show_json(struct json *j, const vdi_stats *st);
/* The set's fields of "vdictl list --json" (and inside show's). */
void set_summary_json(struct json *j, const vdi_stats *st);

/* ---- vdictl-module.c ---- */
/* 1: /sys/module/vdi is there; 0: it is not; -1: no sysfs to tell. */
int module_loaded(void);
int cmd_status(bool json);
int cmd_load(void);

#endif /* VDI_TOOLS_VDICTL_H */
