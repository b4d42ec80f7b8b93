// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-client - the CLIENT role of VDI: it plays the backup application.
 *
 *   vdi-client backup  [options] SET [DEVICE...]
 *   vdi-client restore [options] SET [DEVICE...]
 *
 * It creates the virtual device set SET with 1 + the number of DEVICEs, waits
 * for a database engine (SQL Server, or vdi-engine) to open and configure it,
 * and then does what the engine asks on each device: a backup stores each
 * device's stream in a file of its own (DIR/<device>.vdi), a restore serves
 * the files back.  The VDI client calls, in order:
 *
 *   vdi_client_set_new, vdi_client_set_access (libvdi extra, optional)
 *   vdi_client_create                 the set, with its VDConfig
 *   vdi_client_get_configuration      wait for the engine's configuration
 *   vdi_client_open_device            every device
 *   vdi_client_complete_and_get       GetCommand and CompleteCommand in
 *                                     one call (libvdi extra): one thread
 *                                     per device, until VD_E_CLOSE
 *   vdi_client_signal_abort           on a signal or an unexpected error
 *   vdi_client_get_stats              (libvdi extra) the module's figures:
 *                                     every --stats N s, and at the end
 *   vdi_client_close, vdi_client_set_free
 *
 * Commands: Write appends to the device's file (disk-like sets: pwrite at the
 * command's position), Read reads it back (end of data: ERROR_HANDLE_EOF),
 * Flush fsyncs, ClearError succeeds, Complete (asked for with
 * VDF_RequestComplete) fsyncs and marks the device's backup complete;
 * disk-like sets also answer GetPosition / SetPosition (byte offsets);
 * tape-like sets (--tape, client-tape.c) Rewind, WriteMark, SkipMarks,
 * SkipBlocks, GetPosition / SetPosition (block addresses).  Anything else is
 * ERROR_NOT_SUPPORTED (VDI spec, "Client Supported Commands").
 * The bytes are never interpreted: this program works with any engine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvdi.h>

#include "client-tape.h"
#include "common.h"
#include "stats-report.h"


/* One virtual device and the file that holds its stream. */
struct device {
	const char *name;
	vdi_client_device *dev;
	pthread_t thread;
	int fd;
	bool stdio;		/* stdin / stdout: no file to rename */
	char *path;		/* the device's file */
	struct out_file out;	/* backup: path.partial until the end, or a
				 * device or FIFO written in place */
	struct splicer splicer;	/* backup: how Write stores the buffer */
	struct mapper mapper;	/* restore: how Read fills it */
	struct summer summer;	/* backup: sums a Write's buffer meanwhile */

	uint64_t pos;		/* pipe-like: offset of the next byte */
	uint64_t high;		/* disk-like: the furthest byte written */
	uint64_t cur;		/* disk-like: GetPosition's byte offset */
	struct tape tape;	/* tape-like: marks and position */
	bool completed;		/* VDC_Complete came (VDF_CompleteEnabled) */
	bool committed;		/* backup: its file is complete, in place */
	uint64_t bytes;		/* moved, for progress (atomic) */
	/* what moved, for the summary after an abort */
	uint64_t ncmds;		/* commands completed with success */
	uint64_t moved;		/* bytes of completions the module took
				 * (as its figures count them: not those
				 * of a completion an abort refused) */
	uint64_t last_pos;	/* where the last Read or Write began */
	uint64_t last_seq;	/* when: a tick of cmd_seq, 0: never */
	struct mx64 sum;	/* of the stream, while it is sequential */
	uint64_t sum_pos;
	bool sequential;

	/* the outcome, read by the main thread after the join */
	bool ended;		/* GetCommand said VD_E_CLOSE: normal end */
	bool aborted;		/* VD_E_ABORT */
	bool io_failed;		/* a Read/Write/Flush failed on our side */
	char why[512];		/* its first problem, in words */
};

static struct {
	enum op op;
	const char *set_name;
	const char *dev_name[LIBVDI_MAX_DEVICES];
	unsigned int ndev;
	const char *dir;
	const char *file;	/* -o / -i: one device, FILE or "-" */
	bool disk;
	bool tape;		/* VDF_LikeTape, the medium in client-tape.c */
	bool no_complete;	/* do not ask for VDF_RequestComplete */
	unsigned int command_timeout_s;	/* GetCommand's limit, 0: none */
	int mode;		/* -1: the library's default (0600) */
	int gid;		/* -1: our own group */
	unsigned int timeout_s;
	unsigned int server_timeout_ms;
	bool keep_partial;
	unsigned int stats_s;	/* --stats N: the figures every N s, 0: not */
	bool quiet_stats;	/* --quiet-stats: none at the end */
	unsigned int delay_ms;	/* --delay-ms: a slow client, for tests */
} opt = {
	.dir = ".",
	.mode = -1,
	.gid = -1,
	.timeout_s = 60,
};

static vdi_client_set *set;
static bool set_created;
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static struct device devs[LIBVDI_MAX_DEVICES];
/* the engine granted VDF_CompleteEnabled: each device ends with Complete */
static bool complete_enabled;

/* the device threads tell the main thread when they end */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static unsigned int ndone;

/* ticks once per command completed, over all devices: which was last */
static uint64_t cmd_seq;

/* --delay-ms waits on this, so that a signal ends the waits at once */
static pthread_mutex_t delay_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t delay_cond = PTHREAD_COND_INITIALIZER;
static bool delay_stop;

static struct stats_ticker ticker;	/* --stats N */

/* ================================================================ usage */
static void usage(FILE *f)
{
	fprintf(f,
"Usage: vdi-client backup  [options] SET [DEVICE...]\n"
"       vdi-client restore [options] SET [DEVICE...]\n"
"Play the backup application (VDI's client role): create the virtual device\n"
"set SET with 1 + the number of DEVICEs, wait for an engine (e.g. vdi-engine)\n"
"to open it, and store each device's stream in DIR/<device>.vdi (backup), or\n"
"serve those files back (restore).  SET is also the first device's name.\n"
"\n"
"  -d, --dir DIR          where the .vdi files are (default: .)\n"
"  -o, --output FILE      backup, one device: write FILE ('-': stdout)\n"
"  -i, --input FILE       restore, one device: read FILE ('-': stdin)\n"
"      --disk             a disk-like set (VDF_LikeDisk: positioned I/O)\n"
"                         instead of pipe-like\n"
"      --tape             a tape-like set (VDF_LikeTape: filemarks, rewind,\n"
"                         block addresses), kept in DIR/<device>.vdi with a\n"
"                         mark index at its end\n"
"      --no-complete      do not ask for VDC_Complete (VDF_RequestComplete);\n"
"                         by default a backup is complete only once the\n"
"                         engine sent it on every device, if it offers it\n"
"      --command-timeout SEC  give up when the engine sends no command for\n"
"                         SEC s (GetCommand's timeout; default: wait)\n"
"      --mode MODE        who may open the set: rw bits in octal (0600)\n"
"      --group GROUP      the set's group (name or number), for --mode 0660\n"
"  -t, --timeout SEC      wait up to SEC s for the engine (60)\n"
"      --server-timeout MS  VDConfig.serverTimeOut, a watchdog on this client:\n"
"                         the VDI module aborts the set when the engine has\n"
"                         commands in flight and none completes for 2 x MS\n"
"                         (0: never, default)\n"
"      --keep-partial     on failure keep the incomplete .partial files\n"
"      --stats N          print the module's figures every N s (N >= 1)\n"
"      --quiet-stats      print no figures at the end (by default: each\n"
"                         device's bytes, rate, times, and which side is slow)\n"
"      --delay-ms N       test/demo: wait N ms (0..10000) before completing\n"
"                         each Read or Write: a slow client's storage\n"
"  -v, --verbose          say what is happening\n"
"  -h, --help\n"
"Backup files are written as <file>.partial and renamed when the engine ends\n"
"the backup normally; a device or FIFO (/dev/null, mkfifo) is written in\n"
"place.  At the end each device's mx64 checksum is printed on\n"
"stderr: 'checksum <hex> <bytes> bytes device <name>'.\n");
}

static void parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "input", required_argument, NULL, 'i' },
		{ "disk", no_argument, NULL, 'D' },
		{ "tape", no_argument, NULL, 'P' },
		{ "no-complete", no_argument, NULL, 'N' },
		{ "command-timeout", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'M' },
		{ "group", required_argument, NULL, 'g' },
		{ "timeout", required_argument, NULL, 't' },
		{ "server-timeout", required_argument, NULL, 'T' },
		{ "keep-partial", no_argument, NULL, 'K' },
		{ "stats", required_argument, NULL, 'S' },
		{ "quiet-stats", no_argument, NULL, 'Q' },
		{ "delay-ms", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct group *gr;
	uint64_t v;
	char *end;
	long m;
	int c;

	opt.op = parse_command(&argc, &argv, usage);

	while ((c = getopt_long(argc, argv, "d:o:i:t:vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			opt.dir = optarg;
			break;
		case 'o':
		case 'i':
			if ((c == 'o') != (opt.op == BACKUP))
				usage_error("-%c is for %s", c, c == 'o' ?
					    "backup" : "restore");
			opt.file = optarg;
			break;
		case 'D':
			opt.disk = true;
			break;
		case 'P':
			opt.tape = true;
			break;
		case 'N':
			opt.no_complete = true;
			break;
		case 'c':
			if (!parse_uint(optarg, 86400, &v))
				usage_error("--command-timeout: seconds, "
					    "0..86400");
			opt.command_timeout_s = (unsigned int)v;
			break;
		case 'M':
			m = strtol(optarg, &end, 8);
			if (!*optarg || *end || m < 0 || (m & ~0666L))
				usage_error("--mode: octal rw bits, e.g. 0660");
			opt.mode = (int)m;
			break;
		case 'g':
			if (parse_uint(optarg, INT32_MAX, &v)) {
				opt.gid = (int)v;
				break;
			}
			gr = getgrnam(optarg);
			if (!gr)
				usage_error("--group: no group '%s'", optarg);
			opt.gid = (int)gr->gr_gid;
			break;
		case 't':
			if (!parse_uint(optarg, 86400, &v))
				usage_error("--timeout: seconds, 0..86400");
			opt.timeout_s = (unsigned int)v;
			break;
		case 'T':
			if (!parse_uint(optarg, UINT32_MAX - 1, &v))
				usage_error("--server-timeout: milliseconds");
			opt.server_timeout_ms = (unsigned int)v;
			break;
		case 'K':
			opt.keep_partial = true;
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
	if (opt.file && opt.ndev != 1)
		usage_error("-%c works with one device only (use -d DIR)",
			    opt.op == BACKUP ? 'o' : 'i');
	if (opt.disk && opt.tape)
		usage_error("--disk and --tape exclude each other");
	if (opt.file && !strcmp(opt.file, "-") && (opt.disk || opt.tape))
		usage_error("--%s needs positioned I/O: not with %s",
			    opt.disk ? "disk" : "tape",
			    opt.op == BACKUP ? "stdout" : "stdin");
	if (opt.gid >= 0 && opt.mode < 0)
		opt.mode = 0660;
}

/* ================================================================ signals */
static void on_signal(int sig)
{
	(void)sig;
	/* every GetCommand / GetConfiguration wait ends with VD_E_ABORT */
	pthread_mutex_lock(&set_lock);
	if (set_created)
		vdi_client_signal_abort(set);
	pthread_mutex_unlock(&set_lock);
	pthread_mutex_lock(&delay_lock);
	delay_stop = true;
	pthread_cond_broadcast(&delay_cond);
	pthread_mutex_unlock(&delay_lock);
}

/* ================================================================ files */
/* DIR/<name>.vdi, with '/' in the name made '_' */
static char *device_path(const char *name)
{
	char *p, *s;

	if (asprintf(&p, "%s/%s.vdi", opt.dir, name) < 0)
		return NULL;
	for (s = p + strlen(opt.dir) + 1; *s; s++)
		if (*s == '/')
			*s = '_';
	return p;
}

/* Restore: a tape file's marks, or refuse a tape file for pipe / disk. */
static int open_tape(struct device *d)
{
	char why[256];

	if (!opt.tape) {
		if (!tape_file_is_tape(d->fd))
			return 0;
		msg("device '%s': %s holds a tape-like backup (with filemarks):"
		    " restore it with --tape", d->name, d->path);
		return -1;
	}
	if (tape_load(&d->tape, d->fd, why, sizeof(why)) < 0) {
		msg("device '%s': %s: %s", d->name, d->path, why);
		return -1;
	}
	return 0;
}

static int open_files(void)
{
	struct stat st;
	char who[160];
	unsigned int i;

	for (i = 0; i < opt.ndev; i++) {
		struct device *d = &devs[i];

		d->fd = -1;
		if (opt.file && !strcmp(opt.file, "-")) {
			d->stdio = true;
			d->fd = opt.op == BACKUP ? STDOUT_FILENO : STDIN_FILENO;
			if (opt.op == BACKUP && isatty(d->fd)) {
				msg("refusing to write a backup to a terminal");
				return -1;
			}
			/* --tape takes no stdin: a tape file there is one
			 * restored in the wrong mode, as from -i FILE */
			if (opt.op == RESTORE && tape_file_is_tape(d->fd)) {
				msg("device '%s': standard input holds a "
				    "tape-like backup (with filemarks): restore "
				    "it with --tape -i FILE", d->name);
				return -1;
			}
			continue;
		}
		d->path = opt.file ? strdup(opt.file) : device_path(d->name);
		if (!d->path) {
			msg("no memory");
			return -1;
		}
		if (opt.op == RESTORE) {
			d->fd = open(d->path, O_RDONLY | O_CLOEXEC);
			if (d->fd < 0) {
				msg("device '%s': %s: %s", d->name, d->path,
				    strerror(errno));
				return -1;
			}
			if (open_tape(d) < 0)
				return -1;
			continue;
		}
		/* a tape's mark index and footer go at the file's end (and
		 * the file is cut there): a device or FIFO, written in place,
		 * has no end a restore could find them at */
		if (opt.tape && stat(d->path, &st) == 0 &&
		    !S_ISREG(st.st_mode)) {
			msg("device '%s': %s is not a regular file: --tape "
			    "keeps its mark index at the end of a file",
			    d->name, d->path);
			return -1;
		}
		/* O_RDWR: a stream written out of order is read back for
		 * its checksum */
		snprintf(who, sizeof(who), "device '%s'", d->name);
		if (out_open(&d->out, d->path, O_RDWR, opt.timeout_s, who) < 0)
			return -1;
		d->fd = d->out.fd;
	}
	return 0;
}

/* The first problem of a device, kept for the final report. */
static void note(struct device *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct device *d, const char *fmt, ...)
{
	va_list ap;

	if (d->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
}

static const char *file_of(const struct device *d)
{
	if (d->stdio)
		return opt.op == BACKUP ? "stdout" : "stdin";
	return d->out.path ? out_name(&d->out) : d->path;
}

/* Keep the checksum going while the device's stream is sequential. */
static void sum_add(struct device *d, const uint8_t *p, size_t len,
		    uint64_t at)
{
	if (!d->sequential)
		return;
	if (at != d->sum_pos) {		/* random access: re-read at the end */
		d->sequential = false;
		return;
	}
	mx64_update(&d->sum, p, len);
	d->sum_pos += len;
}

/* ================================================================ commands */
/* VDC_Write: store the buffer.  Returns the completion code. */
static uint32_t do_write(struct device *d, const VDC_Command *cmd,
			 uint32_t *bytes)
{
	uint64_t at = opt.disk ? (uint64_t)cmd->position : d->pos;
	size_t len = (size_t)cmd->size, done = 0;
	bool summed;
	int64_t wpos;
	int err = 0;

	if (opt.op != BACKUP) {
		note(d, "the engine writes, but this is a restore: is the "
		     "engine running a backup?");
		return ERROR_NOT_SUPPORTED;
	}
	if (opt.tape) {
		uint32_t code;

		at = d->tape.off;
		code = tape_write(&d->tape, d->fd, cmd->buffer, len, &done,
				  &err);
		*bytes = (uint32_t)done;
		sum_add(d, cmd->buffer, done, at);
		__atomic_add_fetch(&d->bytes, done, __ATOMIC_RELAXED);
		if (code == ERROR_SUCCESS)
			return code;
		d->io_failed = true;
		note(d, "device '%s': %swriting %s: %s", d->name,
		     code == ERROR_DISK_FULL ? "disk full " : "", file_of(d),
		     strerror(err));
		return code;
	}
	/* the stream's checksum on another thread while the buffer is
	 * written (in order: each Write waits for its own) */
	summed = d->sequential && at == d->sum_pos &&
		 summer_start(&d->summer, &d->sum, cmd->buffer, len);
	/* disk-like: at the command's position; else at the file's offset */
	wpos = (int64_t)at;
	err = splice_write(&d->splicer, d->fd, cmd->buffer, len,
			   opt.disk ? &wpos : NULL, &done);
	*bytes = (uint32_t)done;
	if (summed) {
		summer_wait(&d->summer);
		d->sum_pos += len;
		/* it holds bytes that were not written: a failed Write,
		 * whose run prints no checksums; never a wrong one */
		if (done != len)
			d->sequential = false;
	} else {
		sum_add(d, cmd->buffer, done, at);
	}
	d->pos += done;
	d->cur = at + done;
	if (at + done > d->high)
		d->high = at + done;
	__atomic_add_fetch(&d->bytes, done, __ATOMIC_RELAXED);
	if (!err)
		return ERROR_SUCCESS;

	d->io_failed = true;
	/* Out of space is what the engine must hear as such: it ends the
	 * backup (VDI: ERROR_DISK_FULL aborts a BACKUP). */
	if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
		note(d, "device '%s': disk full writing %s (%s)", d->name,
		     file_of(d), strerror(err));
		return ERROR_DISK_FULL;
	}
	note(d, "device '%s': writing %s: %s", d->name, file_of(d),
	     strerror(err));
	return ERROR_IO_DEVICE;
}

/* VDC_Read: fill the buffer; a short count at the end, then end of data. */
static uint32_t do_read(struct device *d, const VDC_Command *cmd,
			uint32_t *bytes)
{
	uint64_t at = opt.disk ? (uint64_t)cmd->position : d->pos;
	size_t len = (size_t)cmd->size, done = 0;
	int64_t rpos;
	ssize_t n = 0;

	if (opt.op != RESTORE) {
		note(d, "the engine reads, but this is a backup: is the "
		     "engine running a restore?");
		return ERROR_NOT_SUPPORTED;
	}
	if (opt.tape) {
		uint32_t code;
		int err;

		at = d->tape.off;
		code = tape_read(&d->tape, d->fd, cmd->buffer, len, &done,
				 &err);
		*bytes = (uint32_t)done;
		if (err) {
			d->io_failed = true;
			note(d, "device '%s': reading %s: %s", d->name,
			     file_of(d), strerror(err));
			return code;
		}
		sum_add(d, cmd->buffer, done, at);
		__atomic_add_fetch(&d->bytes, done, __ATOMIC_RELAXED);
		return code;
	}
	/* disk-like: at the command's position; else at the file's offset */
	rpos = (int64_t)at;
	while (done < len) {
		n = mapped_read(&d->mapper, d->fd, cmd->buffer + done,
				len - done, opt.disk ? &rpos : NULL);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	*bytes = (uint32_t)done;
	if (n < 0) {
		d->io_failed = true;
		note(d, "device '%s': reading %s: %s", d->name, file_of(d),
		     strerror(errno));
		return ERROR_IO_DEVICE;
	}
	sum_add(d, cmd->buffer, done, at);
	d->pos += done;
	d->cur = at + done;
	__atomic_add_fetch(&d->bytes, done, __ATOMIC_RELAXED);
	/* nothing left: end of data; a short read is success with the count */
	return done == 0 && len ? ERROR_HANDLE_EOF : ERROR_SUCCESS;
}

/* VDC_Flush: everything written so far must be durable. */
static uint32_t do_flush(struct device *d)
{
	struct stat st;

	int err;

	if (opt.op != BACKUP || fstat(d->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ERROR_SUCCESS;	/* nothing to make durable */
	/*
	 * A disk-like medium ends where the data ends (VDI: Flush sets the
	 * end of file, so an older, longer file is cut).  Our files start
	 * empty; cutting at the furthest byte written is the safe reading.
	 */
	if (opt.disk && ftruncate(d->fd, (off_t)d->high) < 0) {
		err = errno;
		d->io_failed = true;
		note(d, "device '%s': truncating %s: %s", d->name, file_of(d),
		     strerror(err));
		return ERROR_IO_DEVICE;
	}
	if (fsync(d->fd) < 0) {
		err = errno;
		d->io_failed = true;
		note(d, "device '%s': fsync %s: %s", d->name, file_of(d),
		     strerror(err));
		return err == ENOSPC || err == EDQUOT ? ERROR_DISK_FULL :
		       ERROR_IO_DEVICE;
	}
	return ERROR_SUCCESS;
}

/*
 * VDC_SetPosition of a disk-like set: a byte offset from where the command's
 * size says (VDWhence); the result is the new current offset.
 */
static uint32_t disk_set_position(struct device *d, const VDC_Command *cmd,
				  uint64_t *now)
{
	struct stat st;
	int64_t base;

	switch (cmd->size) {
	case VDC_Beginning:
		base = 0;
		break;
	case VDC_Current:
		base = (int64_t)d->cur;
		break;
	case VDC_End:
		if (opt.op == BACKUP)
			base = (int64_t)d->high;
		else if (fstat(d->fd, &st) == 0)
			base = st.st_size;
		else
			return ERROR_IO_DEVICE;
		break;
	default:
		note(d, "device '%s': SetPosition with whence %d", d->name,
		     cmd->size);
		return ERROR_NOT_SUPPORTED;
	}
	if (base + cmd->position < 0) {
		note(d, "device '%s': SetPosition before the start (%" PRId64
		     ")", d->name, base + cmd->position);
		return ERROR_NOT_SUPPORTED;
	}
	d->cur = (uint64_t)(base + cmd->position);
	*now = d->cur;
	return ERROR_SUCCESS;
}

/*
 * The commands beyond a pipe's: positions (disk, tape), marks (tape) and
 * VDC_Complete.  Returns the completion code; *pos is what GetPosition and
 * SetPosition report.
 */
static uint32_t do_feature(struct device *d, const VDC_Command *cmd,
			   uint64_t *pos)
{
	struct tape *t = &d->tape;
	uint32_t code;

	switch (cmd->commandCode) {
	case VDC_Complete:
		if (!complete_enabled)
			break;
		/* the engine has sent everything: harden it (the file is
		 * committed when the engine closes the device) */
		code = do_flush(d);
		if (code == ERROR_SUCCESS)
			d->completed = true;
		return code;
	case VDC_GetPosition:
		if (opt.disk) {
			*pos = d->cur;
			return ERROR_SUCCESS;
		}
		if (opt.tape) {
			*pos = tape_position(t);
			return ERROR_SUCCESS;
		}
		break;
	case VDC_SetPosition:
		if (opt.disk)
			return disk_set_position(d, cmd, pos);
		if (opt.tape) {
			code = tape_set_position(t, (uint64_t)cmd->position,
						 pos);
			if (code != ERROR_SUCCESS)
				note(d, "device '%s': SetPosition %" PRId64
				     " is beyond the recorded data", d->name,
				     cmd->position);
			return code;
		}
		break;
	}
	if (!opt.tape)
		return ERROR_NOT_SUPPORTED;
	switch (cmd->commandCode) {
	case VDC_Rewind:
		tape_rewind(t);
		return ERROR_SUCCESS;
	case VDC_WriteMark:
		if (opt.op != BACKUP) {
			note(d, "the engine writes a filemark, but this is a "
			     "restore");
			return ERROR_NOT_SUPPORTED;
		}
		return tape_write_mark(t);
	case VDC_SkipMarks:
		return tape_skip_marks(t, cmd->size);
	case VDC_SkipBlocks:
		return tape_skip_blocks(t, cmd->size);
	}
	return ERROR_NOT_SUPPORTED;
}

/*
 * --delay-ms: slow storage, for tests and demos of the verdict: the command
 * stays with us (held) that much longer.  A timed wait that a signal ends.
 */
static void delay_completion(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += opt.delay_ms / 1000;
	ts.tv_nsec += (long)(opt.delay_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&delay_lock);
	while (!delay_stop &&
	       pthread_cond_timedwait(&delay_cond, &delay_lock, &ts) == 0)
		;
	pthread_mutex_unlock(&delay_lock);
}

/* What a completed command counts for, once the library has applied it. */
struct turn {
	uint32_t code, bytes;
	uint64_t at;
	bool transfer;
};

static void turn_applied(struct device *d, const struct turn *t)
{
	d->moved += t->bytes;		/* for say_moved() */
	if (t->code != ERROR_SUCCESS)
		return;
	d->ncmds++;
	if (t->transfer) {
		d->last_pos = t->at;
		d->last_seq = __atomic_add_fetch(&cmd_seq, 1, __ATOMIC_RELAXED);
	}
}

/*
 * One thread per device, as VDI's process model has it: take a command,
 * do it, complete it, until the engine closes the device (VD_E_CLOSE) or
 * the set is aborted (VD_E_ABORT).  Completing one command and taking the
 * next is one call (vdi_client_complete_and_get: one system call a turn).
 */
static void *device_main(void *arg)
{
	struct device *d = arg;
	int64_t wait_ms = opt.command_timeout_s ?
			  (int64_t)opt.command_timeout_s * 1000 : INFINITE;
	vdi_client_completion done;
	unsigned int nturn = 0, applied, got;
	struct turn t = { 0 };
	uint64_t pos;
	VDC_Command *cmd;
	int rc;

	for (;;) {
		rc = vdi_client_complete_and_get(d->dev, &done, nturn, &applied,
						 wait_ms, &cmd, 1, &got);
		if (applied)
			turn_applied(d, &t);
		if (applied != nturn) {
			if (rc == VD_E_ABORT) {
				d->aborted = true;
				break;
			}
			note(d, "device '%s': CompleteCommand: %s: %s", d->name,
			     vdi_code_name(rc), vdi_last_error());
			break;
		}
		nturn = 0;
		if (rc == VD_E_TIMEOUT) {
			note(d, "device '%s': no command from the engine for "
			     "%u s (GetCommand: VD_E_TIMEOUT): giving up",
			     d->name, opt.command_timeout_s);
			break;
		}
		if (rc == VD_E_CLOSE) {
			d->ended = true;
			break;
		}
		if (rc == VD_E_ABORT) {
			d->aborted = true;
			break;
		}
		if (rc) {
			note(d, "device '%s': GetCommand: %s: %s", d->name,
			     vdi_code_name(rc), vdi_last_error());
			break;
		}

		t.bytes = 0;
		pos = 0;
		/* cmd is the library's again once completed: note these now */
		t.at = opt.disk ? (uint64_t)cmd->position :
		       opt.tape ? d->tape.off : d->pos;
		t.transfer = cmd->commandCode == VDC_Read ||
			     cmd->commandCode == VDC_Write;
		switch (cmd->commandCode) {
		case VDC_Write:
			t.code = do_write(d, cmd, &t.bytes);
			break;
		case VDC_Read:
			t.code = do_read(d, cmd, &t.bytes);
			break;
		case VDC_Flush:
			t.code = do_flush(d);
			break;
		case VDC_ClearError:	/* we keep no error state to clear */
			t.code = ERROR_SUCCESS;
			break;
		default:
			t.code = do_feature(d, cmd, &pos);
			if (t.code == ERROR_NOT_SUPPORTED)
				verbose("device '%s': command %d not supported",
					d->name, cmd->commandCode);
		}

		if (opt.delay_ms && t.transfer)
			delay_completion();
		done = (vdi_client_completion) {
			.cmd = cmd,
			.completionCode = t.code,
			.bytesTransferred = t.bytes,
			.position = pos,
		};
		nturn = 1;
	}
	/* anything but the normal end: stop the other devices too */
	if (!d->ended && !d->aborted)
		vdi_client_signal_abort(set);

	pthread_mutex_lock(&done_lock);
	ndone++;
	pthread_cond_signal(&done_cond);
	pthread_mutex_unlock(&done_lock);
	return NULL;
}

/* ================================================================ setup */
static int create_set(void)
{
	VDConfig cfg;
	int rc;

	set = vdi_client_set_new();
	if (!set) {
		msg("no memory");
		return -1;
	}
	if (opt.mode >= 0 || opt.gid >= 0) {
		/* let an engine running as another user open the set */
		rc = vdi_client_set_access(set, opt.mode >= 0 ?
					   (unsigned int)opt.mode : 0600,
					   opt.gid);
		if (rc) {
			vdi_msg("SetAccess", rc);
			return -1;
		}
	}
	/* the client's part of VDConfig; the engine fills in the rest */
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = opt.ndev;
	cfg.features = opt.disk ? VDF_LikeDisk : opt.tape ? VDF_LikeTape :
		       VDF_LikePipe;
	if (!opt.no_complete && opt.op == BACKUP)
		cfg.features |= VDF_RequestComplete;
	cfg.serverTimeOut = opt.server_timeout_ms;

	pthread_mutex_lock(&set_lock);
	rc = vdi_client_create(set, opt.set_name, &cfg);
	set_created = rc == NOERROR;
	pthread_mutex_unlock(&set_lock);
	switch (rc) {
	case NOERROR:
		return 0;
	case VD_E_PROTOCOL:
		msg("a set named '%s' already exists: another backup or "
		    "restore is using that name", opt.set_name);
		break;
	case VD_E_UNEXPECTED:	/* no /dev/vdi and no module to load */
		msg("cannot reach the VDI module: %s", vdi_last_error());
		break;
	case VD_E_MEMORY:
		msg("cannot create set '%s': %s (too many sets of this user?)",
		    opt.set_name, vdi_last_error());
		break;
	case VD_E_SECURITY:
		msg("cannot create set '%s': %s (--group must be one of "
		    "yours)", opt.set_name, vdi_last_error());
		break;
	default:
		vdi_msg("Create", rc);
	}
	return -1;
}

/* Wait for the engine, in slices so we can say so and give up in time. */
static int wait_engine(VDConfig *cfg)
{
	double deadline = now_s() + opt.timeout_s;
	bool said = false;
	double left;
	int rc;

	for (;;) {
		left = deadline - now_s();
		if (left < 0)
			left = 0;
		rc = vdi_client_get_configuration(set, left > 1 ? 1000 :
						  (int64_t)(left * 1000), cfg);
		if (rc == NOERROR)
			break;
		if (interrupted())	/* main() says so */
			return -1;
		if (rc == VD_E_ABORT) {
			msg("the engine aborted before it configured set '%s'",
			    opt.set_name);
			return -1;
		}
		if (rc != VD_E_TIMEOUT) {
			vdi_msg("GetConfiguration", rc);
			return -1;
		}
		if (now_s() >= deadline) {
			msg("no engine opened set '%s' within %u s", opt.set_name,
			    opt.timeout_s);
			return -1;
		}
		if (!said)
			verbose("waiting for an engine to open set '%s'",
				opt.set_name);
		said = true;
	}
	complete_enabled = cfg->features & VDF_CompleteEnabled;
	verbose("engine connected: block size %u, max transfer %u, buffer "
		"area %u KiB%s", cfg->blockSize, cfg->maxTransferSize,
		cfg->bufferAreaSize >> 10, complete_enabled ?
		", VDC_Complete enabled" : "");
	return 0;
}

static int open_devices(void)
{
	unsigned int i;
	int rc;

	for (i = 0; i < opt.ndev; i++) {
		rc = vdi_client_open_device(set, devs[i].name, &devs[i].dev);
		if (rc == VD_E_ABORT) {
			msg("the engine aborted the %s", opt.op == BACKUP ?
			    "backup" : "restore");
			return -1;
		}
		if (rc == VD_E_INVALID) {
			msg("the engine named the devices otherwise: no device "
			    "'%s' left in the set", devs[i].name);
			return -1;
		}
		if (rc) {
			vdi_msg("OpenDevice", rc);
			return -1;
		}
	}
	return 0;
}

/* ================================================================ the end */
/* The checksum of a stream that was not written in order: read it back. */
static bool sum_file(struct device *d, uint64_t *sum, uint64_t *len)
{
	static uint8_t buf[1 << 16];
	/* a tape file's data ends where its mark index begins */
	uint64_t limit = opt.tape ? d->tape.end : UINT64_MAX;
	struct mx64 m;
	ssize_t n = 0;
	off_t at = 0;

	mx64_init(&m);
	while ((uint64_t)at < limit &&
	       (n = pread(d->fd, buf, limit - (uint64_t)at < sizeof(buf) ?
			  (size_t)(limit - (uint64_t)at) : sizeof(buf),
			  at)) > 0) {
		mx64_update(&m, buf, (size_t)n);
		at += n;
	}
	if (n < 0)
		return false;
	*sum = mx64_final(&m);
	*len = (uint64_t)at;
	return true;
}

static void print_checksums(void)
{
	uint64_t sum, len;
	unsigned int i;

	for (i = 0; i < opt.ndev; i++) {
		struct device *d = &devs[i];

		if (d->sequential) {
			sum = mx64_final(&d->sum);
			len = d->sum_pos;
		} else if (d->stdio || !sum_file(d, &sum, &len)) {
			continue;
		}
		fprintf(stderr, "checksum %016" PRIx64 " %" PRIu64
			" bytes device %s\n", sum, len, d->name);
	}
}

/* Backup done: make every file durable under its final name. */
static int commit_files(void)
{
	unsigned int i;
	int ret = 0, err;

	for (i = 0; i < opt.ndev; i++) {
		struct device *d = &devs[i];

		if (!d->out.path)	/* stdout */
			continue;
		/* a tape's marks go after its data, before it is durable */
		err = opt.tape ? tape_save(&d->tape, d->fd) : 0;
		if (err) {
			msg("%s: writing the tape's mark index: %s",
			    out_name(&d->out), strerror(err));
			ret = -1;
			continue;
		}
		err = out_sync(&d->out);
		if (!err)
			err = out_commit(&d->out);
		if (err) {
			msg("%s: %s", out_name(&d->out), strerror(err));
			ret = -1;
		} else {
			d->committed = true;
		}
	}
	return ret;
}

static void drop_partials(void)
{
	unsigned int i;

	for (i = 0; i < opt.ndev; i++) {
		struct device *d = &devs[i];

		if (opt.op == BACKUP && d->pos && !d->out.partial &&
		    !d->committed)
			msg("the data written to %s is INCOMPLETE",
			    d->stdio ? "stdout" : d->out.path);
		if (!d->out.partial)
			continue;
		if (d->out.complete)	/* only its rename failed */
			msg("kept %s: it is COMPLETE (renaming it to %s failed)",
			    d->out.partial, d->out.path);
		else if (opt.keep_partial)
			msg("kept %s: it is INCOMPLETE", d->out.partial);
		else
			verbose("removed the incomplete %s", d->out.partial);
		out_drop(&d->out, opt.keep_partial);
	}
}

/* "after N commands, B bytes, last position P[ of device 'd']" into @buf:
 * how much had moved when it failed.  After the device threads ended. */
static const char *say_moved(char *buf, size_t len)
{
	uint64_t cmds = 0, bytes = 0;
	const struct device *last = NULL;
	unsigned int i;

	for (i = 0; i < opt.ndev; i++) {
		const struct device *d = &devs[i];

		cmds += d->ncmds;
		bytes += d->moved;
		if (d->last_seq && (!last || d->last_seq > last->last_seq))
			last = d;
	}
	if (!cmds)
		snprintf(buf, len, "before any command completed");
	else if (!last)		/* no Read or Write: flushes, ... */
		snprintf(buf, len, "after %" PRIu64 " command%s, %" PRIu64
			 " bytes", cmds, cmds == 1 ? "" : "s", bytes);
	else
		snprintf(buf, len, "after %" PRIu64 " command%s, %" PRIu64
			 " bytes, last position %" PRIu64 "%s%s%s", cmds,
			 cmds == 1 ? "" : "s", bytes, last->last_pos,
			 opt.ndev > 1 ? " of device '" : "",
			 opt.ndev > 1 ? last->name : "",
			 opt.ndev > 1 ? "'" : "");
	return buf;
}

/* Was it "vdictl abort"?  The module's figures say (abort_reason). */
static bool admin_aborted(void)
{
	vdi_stats *st = malloc(sizeof(*st));
	bool admin = st && vdi_client_get_stats(set, st) == NOERROR &&
		     st->set.abort_reason == VDI_ABORT_ADMIN;

	free(st);
	return admin;
}

/* Why it failed, most telling reason first. */
static void report_failure(void)
{
	bool aborted = false, said = false;
	char moved[256];
	unsigned int i;

	for (i = 0; i < opt.ndev; i++) {
		if (devs[i].why[0]) {
			msg("%s", devs[i].why);
			said = true;
		}
		aborted |= devs[i].aborted;
	}
	say_moved(moved, sizeof(moved));
	if (interrupted())
		msg("interrupted by signal %d: %s aborted %s", interrupted(),
		    opt.op == BACKUP ? "backup" : "restore", moved);
	else if (aborted && admin_aborted())
		msg("the %s was aborted by an administrator (vdictl abort; "
		    "VD_E_ABORT) %s", opt.op == BACKUP ? "backup" : "restore",
		    moved);
	else if (aborted)
		msg(said ? "the engine aborted the %s %s" :
		    "the engine went away or aborted the %s (VD_E_ABORT) %s",
		    opt.op == BACKUP ? "backup" : "restore", moved);
}

/* ================================================================ figures */
static int snap_set(void *ctx, vdi_stats *st)
{
	(void)ctx;
	return vdi_client_get_stats(set, st);
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
			     "vdi-client: ");
	else if (rc != NOERROR && t_data)
		msg("no figures: %s: %s", vdi_code_name(rc), vdi_last_error());
}

int main(int argc, char **argv)
{
	bool failed = true, started = false;
	char b1[32], b2[64];
	unsigned int i, nthreads = 0;
	uint64_t total = 0;
	struct progress bar;
	struct timespec ts;
	vdi_stats *figs = NULL;
	int figs_rc = VD_E_PROTOCOL;
	VDConfig cfg;
	double t0, t_data = 0;

	prog = "vdi-client";
	parse_args(argc, argv);
	signals_setup(on_signal);
	for (i = 0; i < opt.ndev; i++) {
		devs[i].name = opt.dev_name[i];
		devs[i].fd = -1;
		devs[i].sequential = true;
		splicer_init(&devs[i].splicer);
		mapper_init(&devs[i].mapper);
		summer_init(&devs[i].summer);
		mx64_init(&devs[i].sum);
		tape_init(&devs[i].tape, 512);
	}

	/* restore: the files must be there before anyone waits for us */
	if (opt.op == RESTORE && open_files() < 0)
		goto out;
	if (create_set() < 0)
		goto out;
	/* backup: only now, with the name ours, touch DIR/<set>.vdi.partial */
	if (opt.op == BACKUP && open_files() < 0)
		goto out;
	if (wait_engine(&cfg) < 0 || open_devices() < 0)
		goto out;
	for (i = 0; i < opt.ndev; i++)	/* block addresses count blocks */
		devs[i].tape.block = cfg.blockSize ? cfg.blockSize : 512;

	t0 = t_data = now_s();
	if (opt.stats_s && stats_ticker_start(&ticker, opt.stats_s, snap_set,
					      NULL, stderr, "vdi-client: ") < 0)
		msg("--stats: no reports: %s", strerror(errno));
	for (nthreads = 0; nthreads < opt.ndev; nthreads++) {
		if (pthread_create(&devs[nthreads].thread, NULL, device_main,
				   &devs[nthreads])) {
			msg("cannot start a thread");
			vdi_client_signal_abort(set);
			break;
		}
	}
	started = true;

	/* wait for the device threads, showing progress */
	progress_init(&bar, opt.op == BACKUP ? "backup" : "restore", 0);
	pthread_mutex_lock(&done_lock);
	while (ndone < nthreads) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&done_cond, &done_lock, &ts);
		pthread_mutex_unlock(&done_lock);
		for (total = 0, i = 0; i < opt.ndev; i++)
			total += __atomic_load_n(&devs[i].bytes,
						 __ATOMIC_RELAXED);
		progress_update(&bar, total);
		pthread_mutex_lock(&done_lock);
	}
	pthread_mutex_unlock(&done_lock);
	progress_done(&bar);
	for (total = 0, i = 0; i < nthreads; i++) {
		pthread_join(devs[i].thread, NULL);
		total += devs[i].bytes;
	}

	failed = nthreads < opt.ndev;
	for (i = 0; i < opt.ndev; i++) {
		struct device *d = &devs[i];

		if (!d->ended || d->io_failed)
			failed = true;
		/* VDC_Complete is the engine's word that it sent all: a
		 * device closed without it holds an incomplete backup */
		else if (complete_enabled && opt.op == BACKUP &&
			 !d->completed) {
			note(d, "device '%s': the engine closed it without "
			     "VDC_Complete: the backup is incomplete", d->name);
			failed = true;
		}
	}
	if (failed) {
		report_failure();
	} else if (opt.op == BACKUP && commit_files() < 0) {
		failed = true;
	} else {
		msg("%s of %s through %u device%s %s", opt.op == BACKUP ?
		    "backup" : "restore", fmt_bytes(b1, sizeof(b1), total),
		    opt.ndev, opt.ndev == 1 ? "" : "s",
		    fmt_rate(b2, sizeof(b2), total, now_s() - t0));
		print_checksums();
	}
out:
	if (!started && interrupted())
		msg("interrupted by signal %d", interrupted());
	if (failed)
		drop_partials();
	stats_ticker_stop(&ticker);	/* before the set it looks at goes */
	if (!opt.quiet_stats && !(figs = malloc(sizeof(*figs))))
		msg("no memory for the figures");
	pthread_mutex_lock(&set_lock);
	/* the figures are of our own set: the last chance is before Close */
	if (set_created && figs)
		figs_rc = vdi_client_get_stats(set, figs);
	if (set_created)	/* after an abort too: it releases everything */
		vdi_client_close(set);
	set_created = false;
	pthread_mutex_unlock(&set_lock);
	if (figs)
		end_figures(figs_rc, figs, t_data);
	free(figs);
	for (i = 0; i < opt.ndev; i++) {
		splicer_close(&devs[i].splicer);
		mapper_close(&devs[i].mapper);
		summer_stop(&devs[i].summer);
	}
	vdi_client_set_free(set);
	return failed ? EXIT_FAIL : 0;
}
