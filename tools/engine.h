/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdi-engine's shared declarations.  The program is cut by concern:
 *
 *   engine-main.c    the command line, signals, main(): the order of it all
 *   engine-vdi.c     the VDI server calls: connect, configure, the completion
 *                    agent, sending and waiting for commands, the end
 *   engine-stream.c  the stream format (header, trailer, striping) and the
 *                    backup and restore loops that write and read it
 *   engine-media.c   what each feature set gets around the data: marks,
 *                    rewind and positions (tape), Flush, VDC_Complete
 *   engine-inject.c  --inject: the faults a client is tested with
 *   engine-io.c      the data: file, stdin/stdout, generated data, the tar
 *                    child, FILE.partial
 *   engine-tsql.c    the T-SQL parser (engine-tsql.h): BACKUP/RESTORE ...
 *                    VIRTUAL_DEVICE statements, a pure function
 *   engine-sql.c     the sql subcommand: a statement onto the options above
 *                    and a data directory; STATS and SQL Server's messages
 *
 * and shares tools/common.c with the other tools.
 */
#ifndef VDI_TOOLS_ENGINE_H
#define VDI_TOOLS_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libvdi.h>

#include "common.h"

/* The stream format (described in engine-stream.c) */
#define HDR_SIZE	65536U		/* the header block of each device */
#define HDR_MAGIC	"VDI-STRM"
#define END_MAGIC	"VDI-END!"
#define END_SIZE	64U		/* the trailer */
#define FORMAT_VERSION	1

#define MAX_BUFFERS	256		/* the module's max_queue_depth */

/* ---- the command line (engine-main.c) ---- */
struct engine_opt {
	enum op op;
	const char *set_name;
	const char *dev_name[LIBVDI_MAX_DEVICES];
	unsigned int ndev;
	const char *file;	/* -i / -o; NULL or "-": stdin / stdout */
	const char *dir;	/* -C */
	bool generate;
	uint64_t gen_size;
	uint32_t block_size;
	uint32_t max_transfer;
	unsigned int buffers;	/* 0: default */
	unsigned int timeout_s;
	bool keep_partial;
	int64_t owner;		/* a uid, VDI_OWNER_SELF or VDI_OWNER_ANY */
	const char *inject;	/* --inject SCENARIO[=ARG], or NULL */
	unsigned int stats_s;	/* --stats N: the figures every N s, 0: not */
	bool quiet_stats;	/* --quiet-stats: none at the end */
	unsigned int delay_ms;	/* --delay-ms: a slow engine, for tests */
};
extern struct engine_opt opt;
/* --owner: a user name, a uid, or "any" (a usage error otherwise). */
int64_t parse_owner(const char *s);

/* ---- the VDI side (engine-vdi.c) ---- */
/* One command in flight: what SendCommand is given, and its buffer. */
struct slot {
	VDS_Command cmd;	/* completionContext points back at the slot */
	uint8_t *buf;		/* in the shared area, or NULL */
	unsigned int dev;	/* device index it went to */
	int64_t pos;		/* where in the device's stream (also when the
				 * set is pipe-like and the command has none) */
	bool done;		/* its completion routine has run */
};

struct engine_vdi {
	vdi_server_set *set;
	vdi_server_device *dev[LIBVDI_MAX_DEVICES];
	bool disk;		/* VDF_RandomAccess: transfers carry positions */
	bool tape;		/* VDF_FileMarks: a tape-like set (marks) */
	bool complete;		/* we granted VDF_CompleteEnabled (backup) */
	/* a command on the device completed with an error: it is in IO-ERROR
	 * until a ClearError succeeds (under lock) */
	bool dev_error[LIBVDI_MAX_DEVICES];
	bool closed[LIBVDI_MAX_DEVICES];	/* CloseDevice done */
	uint32_t chunk;		/* the chunk size (= max transfer at backup) */
	struct slot *data;	/* the window: one slot per data buffer */
	unsigned int nslots;
	struct slot ctl[LIBVDI_MAX_DEVICES];	/* headers and flushes */
	uint8_t *hdr_buf;	/* the header block's buffer */
	uint64_t backup_id;

	pthread_t agent;
	bool agent_started;	/* the thread exists */
	pthread_mutex_t lock;	/* for slot.done and what follows */
	pthread_cond_t cond;	/* a routine ran, or the agent returned */
	bool agent_done;
	int agent_rc;
	/* what moved, for the summary after an abort (under lock) */
	uint64_t moved_cmds;	/* commands completed with success */
	uint64_t moved_bytes;	/* bytes they transferred */
	int64_t last_pos;	/* where the last Read or Write began */
	unsigned int last_dev;	/* and on which device */
	int wake[2];		/* written when the agent returns or a signal
				 * comes: wakes a main thread waiting for input */
};
extern struct engine_vdi V;
/* The signal thread may abort the set while the main thread uses it. */
extern pthread_mutex_t set_lock;
/* say_aborted() has already said that a signal interrupted us */
extern bool said_interrupted;

/* Open the set the client created (polling until --timeout); 0 or -1. */
int connect_set(void);
/* Configure the set, open its devices, start the agent, get the buffers. */
int configure(void);
/* Queue one command on device @dev; 0, or -1 after a message. */
int submit(struct slot *s, unsigned int dev, int32_t code, uint32_t size,
	   int64_t position);
/* Wait for @s's completion routine. */
void wait_slot(struct slot *s);
/* One command with the header buffer, waited for: 0 or -1 after a message. */
int run_one(unsigned int dev, int32_t code, uint32_t size, int64_t position,
	    const char *what);
/* The agent's VDI code once it has returned (VD_E_ABORT...), else 0. */
int agent_ended(void);
/* Explain a command that failed; the caller aborts. */
void say_failed(const struct slot *s, const char *what);
/* Why the other side's commands came back aborted, and how much had moved. */
void say_aborted(void);
/* "after N commands, B bytes, last position P[ of device 'd']" into @buf */
const char *say_moved(char *buf, size_t len);
/* The normal end: close every device, wait for the agent; 0 or -1. */
int close_devices(void);
/* Close one device now (--inject close-device-early); 0 or -1. */
int close_device(unsigned int dev);
/* The module's figures of our set now: a VDI code (VD_E_PROTOCOL: no set). */
int set_stats(vdi_stats *st);
/*
 * Close the set, first aborting it if @failed.  With @st, the set's figures
 * are taken into it right before the close (after the abort and the agent's
 * end: final): returns that snapshot's VDI code, VD_E_PROTOCOL if there was
 * no set; 0 without @st.
 */
int close_set(bool failed, vdi_stats *st);

/* ---- the stream (engine-stream.c) ---- */
int backup(void);
int restore(void);

/* ---- around the data, per feature set (engine-media.c) ---- */
int media_backup_begin(void);		/* before the headers */
int media_backup_data(void);		/* after the headers */
int media_backup_end(void);		/* after the data */
int media_restore_begin(void);
int media_restore_data(void);
int media_restore_end(void);
/* "pipe-like", "disk-like", "tape-like" */
const char *media_name(void);

/* ---- --inject (engine-inject.c) ---- */
/* Check --inject's argument (a usage error if bad); after parse_args, let
 * it change the options it is about (sizes). */
void inject_parse(const char *spec);
void inject_options(void);
/* name-taken: squat on the set's name instead of a backup.  Returns 1 if
 * this was the scenario (it ran; the engine then exits 1), else 0. */
int inject_squat(void);
/* Before every SendCommand: -1 (after a message) ends the run (silent). */
int inject_before_send(void);
/* After each data chunk completed (@bytes of data moved so far, @chunks
 * chunks), and with @last at the end of the data: -1 ends the run (after
 * a message: the set is aborted or a device was closed). */
int inject_after_data(uint64_t bytes, uint64_t chunks, bool last);
/* The run was cut short by an injected fault (the engine exits 1). */
bool inject_fired(void);

/* ---- the data (engine-io.c) ---- */
/* Where the data comes from (backup) or goes to (restore). */
struct engine_io {
	int fd;
	pid_t tar;		/* -C: the tar child, else 0 */
	struct out_file out;	/* restore -o FILE: FILE.partial until done,
				 * or a device or FIFO in place */
	struct splicer splicer;	/* how the restore writes a regular file */
	struct mapper mapper;	/* how the backup reads a regular file */
	struct summer summer;	/* the restore's sum while it writes */
	uint64_t size;		/* backup: the input's size if known, else 0 */
	uint64_t n;		/* bytes of L read or written so far */
	struct mx64 sum;	/* over those bytes */
};
extern struct engine_io io;
extern struct progress prog_bar;

int open_input(void);
/* Up to @len bytes of L, counted in io.n and io.sum: the count, 0 at its
 * end, -1 on failure (after a message), -2 when woken by V.wake. */
ssize_t read_input(uint8_t *buf, size_t len);
int open_output(void);
/* Write @len bytes of L, counted in io.n and io.sum; 0 or -1. */
int write_output(const uint8_t *p, size_t len);
/* All data written: make it durable (file) or let tar finish; 0 or -1. */
int finish_output(void);
/* Stop tar; rename FILE.partial into place or (@failed) remove it. */
bool cleanup_io(bool failed);	/* true: failed (now) */

/* ---- the sql subcommand (engine-sql.c) ---- */
/* "vdi-engine sql ... STATEMENT": parse it into opt (argv[1] is "sql"). */
void sql_parse_args(int argc, char **argv);
/* The data has moved @done bytes: STATS lines (nothing unless sql). */
void sql_stats(uint64_t done);
/* SQL Server's closing messages (nothing unless sql). */
void sql_end(bool failed, double seconds);

#endif /* VDI_TOOLS_ENGINE_H */
