/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the vdi tools (vdi-engine, vdi-client, vdi-gen):
 * messages, option values, the checksum, the test-data generator, progress
 * output, signal handling and the tar child.  Nothing here talks to VDI:
 * the VDI calls are all in engine-vdi.c (vdi-engine's) and vdi-client.c,
 * where a reader looking for example code will find them in order.
 */
#ifndef VDI_TOOLS_COMMON_H
#define VDI_TOOLS_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "libvdi.h"

/* Exit statuses: 0 done, 1 failed, 2 bad command line. */
#define EXIT_FAIL	1
#define EXIT_USAGE	2

/* ---- messages: "<prog>: ..." on stderr ---- */
extern const char *prog;
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool verbose_on;
/* A VDI call failed: "<what>: VD_E_X: <the library's reason>". */
void vdi_msg(const char *what, int code);
/* The name of a Win32 completion code ("ERROR_DISK_FULL"), or "code N". */
const char *win32_name(int32_t code);
/* Say that the command line is wrong and exit with EXIT_USAGE. */
void usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* ---- option values ---- */
enum op { BACKUP, RESTORE };
/*
 * The command word: "backup" or "restore" (or -h/--help: @usage, exit 0).
 * Drops it from argc and argv, keeping argv[0] the program's name for getopt.
 */
enum op parse_command(int *argc, char ***argv, void (*usage)(FILE *));
/*
 * The device names of a command line, as VDI's T-SQL gives them: the first
 * is the set's (device 0), the others name further devices.  Checks each
 * (1..127 bytes, no backslash or control characters), no name twice, at
 * most LIBVDI_MAX_DEVICES; a usage error otherwise.  Returns how many.
 */
unsigned int parse_device_names(int argc, char **argv,
				const char *names[LIBVDI_MAX_DEVICES]);
/* "256M", "64K", "1G", "1000": bytes (K/M/G are powers of 1024). */
bool parse_size(const char *s, uint64_t *out);
bool parse_uint(const char *s, uint64_t max, uint64_t *out);
/* --stats N: seconds, 1..86400; --delay-ms N: 0..10000 (usage errors). */
unsigned int parse_stats_interval(const char *s);
unsigned int parse_delay_ms(const char *s);
double now_s(void);			/* CLOCK_MONOTONIC, seconds */
/* "12.3 MiB" into buf */
const char *fmt_bytes(char *buf, size_t len, uint64_t bytes);

/* ---- little-endian fields of the stream format ---- */
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);
uint32_t get_le32(const uint8_t *p);
uint64_t get_le64(const uint8_t *p);

/*
 * ---- mx64: the tools' stream checksum ----
 * A fast non-cryptographic 64-bit hash (not for security: it detects
 * accidents, not attacks).  Over the stream taken as little-endian 64-bit
 * words w (the last one zero-padded):
 *     h = 0x243F6A8885A308D3;  for each w:  h = rotl64((h ^ w) * K, 31)
 * with K = 0x9E3779B97F4A7C15; then h ^= length in bytes and h goes through
 * MurmurHash3's 64-bit finalizer (fmix64).  Feeding the stream in pieces
 * of any size gives the same result as feeding it at once.
 */
struct mx64 {
	uint64_t h;
	uint64_t len;
	uint8_t part[8];		/* bytes of an unfinished word */
	unsigned int npart;
};
void mx64_init(struct mx64 *m);
void mx64_update(struct mx64 *m, const void *data, size_t len);
uint64_t mx64_final(const struct mx64 *m);

/*
 * The checksum of a buffer on a thread of its own while the caller writes
 * the buffer out: a writer's checksum then costs no time of its own on a
 * machine with a CPU to spare (the bench's profile had it at about 5% of
 * the client's Write).  summer_start() hands the work over and returns
 * true, or returns false (no thread could be started) and the caller does
 * it itself; summer_wait() returns once @m holds the buffer's bytes.  One
 * piece of work at a time, in order; the buffer stays the caller's.
 */
struct summer {
	pthread_t thread;
	pthread_mutex_t lock;	/* for what follows */
	pthread_cond_t cond;	/* work posted, or done */
	struct mx64 *m;		/* the work: m += p[0..len) */
	const void *p;
	size_t len;
	bool posted;		/* work waits for the thread or is under way */
	bool started;		/* the thread exists */
	bool broken;		/* it could not be started: do it inline */
	bool quit;
};
void summer_init(struct summer *s);
bool summer_start(struct summer *s, struct mx64 *m, const void *p,
		  size_t len);
void summer_wait(struct summer *s);
void summer_stop(struct summer *s);

/*
 * ---- the test-data generator ----
 * Byte i of the generated stream is byte (i % 8) of splitmix64(i / 8)
 * (little-endian): deterministic, incompressible, and any piece can be
 * produced on its own, so a backup can be checked without storing it.
 */
void gen_fill(uint8_t *buf, uint64_t offset, size_t len);

/* ---- progress on stderr, only when stderr is a terminal ---- */
struct progress {
	bool on;
	const char *what;
	uint64_t total;			/* 0: unknown, no ETA */
	double t0, last;
};
void progress_init(struct progress *p, const char *what, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_done(struct progress *p);

/* "in 2.1 s, 123.4 MB/s" (MB = 10^6 bytes) */
const char *fmt_rate(char *buf, size_t len, uint64_t bytes, double seconds);

/*
 * ---- signals ----
 * SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken by one
 * thread with sigwait(), which then calls @handler in a normal context
 * (where it may take locks and call VDI).  SIGPIPE is ignored: a closed
 * pipe shows up as EPIPE where it happened.  Call before creating threads.
 */
void signals_setup(void (*handler)(int sig));
/* The signal that interrupted us, or 0. */
int interrupted(void);

/*
 * ---- child process ----
 * Start argv[0] with a pipe on its stdin (to_child) or stdout; returns the
 * pid and stores our end of the pipe in *fd, or -1 with a message.
 */
pid_t spawn_piped(char *const argv[], bool to_child, int *fd);
/* Wait for it; true if it exited 0 (else a message naming it). */
bool wait_child(pid_t pid, const char *name);

/* ---- I/O ---- */
/* write() all of it, retrying after EINTR; 0 or an errno. */
int write_all(int fd, const void *buf, size_t len);
/*
 * Write a buffer into a regular file through a pipe of our own: vmsplice()
 * lends the buffer's pages to the pipe, splice() has the kernel copy them
 * into the file with its memcpy, as cp's copy_file_range() does, where
 * write() copies from user memory with the CPU's string-copy instruction.
 * In make bench's VM (qemu's TCG emulates that instruction byte by byte)
 * the profile showed that copy as the largest cost of a backup's writes, at
 * eight times the cost of the same bytes through splice; see tools/README.md.
 * Both calls are done before splice_write() returns, so the buffer is the
 * caller's again (no page of it stays in the pipe).  Anything but a regular
 * file, or a file system that cannot splice, gets plain write()s, as does
 * everything after a failure to set the pipe up.
 */
struct splicer {
	int pipe[2];		/* {-1, -1}: not yet set up */
	size_t cap;		/* the pipe's size */
	bool off;		/* write() only, from now on */
};
void splicer_init(struct splicer *s);
/*
 * Write @len bytes of @buf into @fd: at *@pos (advanced) if @pos, else at
 * its file offset.  Returns 0 or an errno (ENOSPC also when the file takes
 * no more); *@done is how many bytes were written either way.
 */
int splice_write(struct splicer *s, int fd, const void *buf, size_t len,
		 int64_t *pos, size_t *done);
void splicer_close(struct splicer *s);

/*
 * Read a regular file by copying from a mapping of it (memcpy) instead of
 * read(), which copies to user memory with the CPU's string-copy
 * instruction: the other half of what splice_write() avoids, at a backup's
 * input and a restore's.  A window of the file is mapped at a time, and
 * populated a read at a time (MADV_POPULATE_READ: no fault per page).
 * The file's size is looked at before each read: reads at or past it go
 * to read(), so a file that grows or shrinks is read as read() would, and
 * the end of the file is read()'s 0.  One that shrinks in the middle of a
 * copy raises SIGBUS there: caught, it is an EIO with a message, not the
 * end of the program.
 * Anything but a regular file, or a failed mmap, gets plain read()s.
 */
struct mapper {
	uint8_t *map;		/* a window of the file, or NULL */
	uint64_t at, len;	/* where the window is in the file */
	bool off;		/* read() only, from now on */
};
void mapper_init(struct mapper *m);
/*
 * Up to @len bytes of @fd into @buf: at *@pos (advanced) if @pos, else at
 * the file offset (advanced).  Returns the count, 0 at the end, or -1 with
 * errno (EINTR is retried).
 */
ssize_t mapped_read(struct mapper *m, int fd, void *buf, size_t len,
		    int64_t *pos);
void mapper_close(struct mapper *m);

/* If @fd is a pipe, make its buffer 1 MiB (fewer context switches). */
void grow_pipe(int fd);
/* fsync() the directory holding @path (after renaming a file into it). */
void sync_dir(const char *path);

/*
 * ---- output files ----
 * Where a stream is written.  A regular file, or a name not yet taken, is
 * written as PATH.partial and renamed to PATH by out_commit() once the
 * stream is complete, so that PATH never holds half a stream.  Anything
 * else that exists - a character or block device such as /dev/null, a
 * FIFO, a socket - is written in place: renaming over it would replace the
 * node with a regular file (as root, /dev/null itself).
 */
struct out_file {
	const char *path;
	char *partial;		/* PATH.partial while written, or NULL */
	int fd;
	bool unsyncable;	/* in place on what fsync() cannot sync */
	bool complete;		/* PATH.partial holds all, synced; only the
				 * rename failed: out_drop() keeps it */
};
/*
 * Open @path for writing.  @flags: O_WRONLY, or O_RDWR to read a .partial
 * back (in place is always O_WRONLY).  A FIFO is waited for until it has a
 * reader, up to @timeout_s seconds or a signal; a socket is connected to.
 * 0, or -1 after a message beginning with @who (e.g. "device 'x'"; NULL:
 * none).
 */
int out_open(struct out_file *o, const char *path, int flags,
	     unsigned int timeout_s, const char *who);
/* The name being written, for messages: PATH.partial, or PATH in place. */
const char *out_name(const struct out_file *o);
/* Make what was written durable (fsync; nothing for a FIFO or /dev/null).
 * 0 or an errno. */
int out_sync(struct out_file *o);
/* The stream is complete and synced: rename PATH.partial to PATH and sync
 * the directory; nothing in place.  0 or an errno (then PATH.partial is
 * marked complete: out_drop() will not remove it). */
int out_commit(struct out_file *o);
/* It failed: remove PATH.partial, unless @keep or it is complete (only its
 * rename failed).  True if there was one. */
bool out_drop(struct out_file *o, bool keep);

#endif /* VDI_TOOLS_COMMON_H */
