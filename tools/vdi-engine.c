// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine - the SERVER role of VDI: it plays the database engine.
 *
 *   vdi-engine backup  [options] SET [DEVICE...]
 *   vdi-engine restore [options] SET [DEVICE...]
 *
 * A backup application (the VDI client, e.g. vdi-client) creates the virtual
 * device set SET with 1 + the number of DEVICEs; this program then plays what
 * SQL Server does for
 *
 *   BACKUP  ... TO   VIRTUAL_DEVICE='SET' [, VIRTUAL_DEVICE='DEVICE' ...]
 *   RESTORE ... FROM VIRTUAL_DEVICE='SET' [, VIRTUAL_DEVICE='DEVICE' ...]
 *       WITH BLOCKSIZE = --block-size, MAXTRANSFERSIZE = --max-transfer,
 *            BUFFERCOUNT = --buffers
 *
 * streaming a file, stdin, generated data or a directory tree (through tar)
 * out to the devices, or reading it back.  The VDI server calls, in order:
 *
 *   vdi_server_open_ex                poll until the client has created SET;
 *                                     refuse it unless --owner (default: our
 *                                     own uid or root) owns it
 *   vdi_server_get_owner              (libvdi extra) whose set it is
 *   vdi_server_get_configuration      deviceCount and features of the client
 *   vdi_server_set_queue_depth        (libvdi extra) room for our window
 *   vdi_server_begin_configuration    WriteMedia or ReadMedia, sizes
 *   vdi_server_request_buffers        BUFFERCOUNT x MAXTRANSFERSIZE (+1 small)
 *   vdi_server_end_configuration      the shared area exists now
 *   vdi_server_open_device            each device, in the T-SQL order
 *   vdi_server_execute_completion_agent   on a thread of its own
 *   vdi_server_allocate_buffer        the buffers
 *   vdi_server_send_command           Read / Write / Flush, many in flight
 *   vdi_server_close_device           each device: the normal end
 *   vdi_server_signal_abort           on any error
 *   vdi_server_close
 *
 * ---- The stream format (what the devices hold) ----
 *
 * VDI moves bytes; what they mean is the engine's business (SQL Server
 * writes MTF).  Ours is as small as a robust format can be:
 *
 * 1. Every device's stream begins with a 64 KiB header block (64 KiB: a
 *    multiple of every legal block size, so a restore can read it before it
 *    knows the backup's block size).  Its first 64 bytes, little-endian:
 *        0  "VDI-STRM"  magic
 *        8  u32 version (1)       12  u32 header size (65536)
 *       16  u32 device index      20  u32 device count
 *       24  u32 block size        28  u32 chunk size (the max transfer)
 *       32  u64 backup id (random: ties the devices of one backup together)
 *       40  24 bytes zero
 *    the rest of the block is zero.
 * 2. The logical stream L (n bytes: the file, stdin, the tar archive) is
 *    followed by zero padding and a 64-byte trailer, so that the whole,
 *    S = L + padding + trailer, is the smallest multiple of the block size
 *    that holds both:
 *        0  "VDI-END!"  magic     8  u64 n (the length of L)
 *       16  u64 mx64 checksum of L (see common.h)
 *       24  u64 backup id         32  32 bytes zero
 * 3. S is cut into chunks of the chunk size; chunk k goes to device
 *    k % devices, after that device's header, at offset
 *    65536 + (k / devices) * chunk size of the device's stream.  Every chunk
 *    is full but the last, which is a multiple of the block size.
 *
 * So every transfer is a multiple of the block size (VDI requires it), the
 * restore learns where S ends from the first chunk that comes back short (or
 * at end of data), finds the true length n in the trailer and checks the
 * checksum; a truncated or mixed-up set of devices is detected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libvdi.h>

#include "common.h"

#define HDR_SIZE	65536U		/* the header block of each device */
#define HDR_MAGIC	"VDI-STRM"
#define END_MAGIC	"VDI-END!"
#define END_SIZE	64U		/* the trailer */
#define FORMAT_VERSION	1
#define MAX_BUFFERS	256		/* the module's max_queue_depth */


/* One command in flight: what SendCommand is given, and its buffer. */
struct slot {
	VDS_Command cmd;	/* completionContext points back at the slot */
	uint8_t *buf;		/* in the shared area, or NULL */
	unsigned int dev;	/* device index it went to */
	bool done;		/* its completion routine has run */
};

/* The command line. */
static struct {
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
} opt = {
	.block_size = 65536,
	.max_transfer = 1 << 20,
	.timeout_s = 60,
	.owner = VDI_OWNER_SELF,
};

/* The VDI side. */
static struct {
	vdi_server_set *set;
	vdi_server_device *dev[LIBVDI_MAX_DEVICES];
	bool disk;		/* VDF_RandomAccess: transfers carry positions */
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
	int wake[2];		/* written when the agent returns or a signal
				 * comes: wakes a main thread waiting for input */
} V = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.wake = { -1, -1 },
};

/* The signal thread may abort the set while the main thread uses it. */
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;

/* Where the data comes from (backup) or goes to (restore). */
static struct {
	int fd;
	pid_t tar;		/* -C: the tar child, else 0 */
	char *partial;		/* -o FILE: FILE.partial until done */
	uint64_t size;		/* backup: the input's size if known, else 0 */
	uint64_t n;		/* bytes of L read or written so far */
	struct mx64 sum;	/* over those bytes */
	bool eof;		/* backup: L is all read */
	uint8_t tail[HDR_SIZE + END_SIZE];	/* backup: padding + trailer */
	size_t tail_len, tail_off;
} io = { .fd = -1 };

static struct progress prog_bar;

/* ================================================================ usage */
static void usage(FILE *f)
{
	fprintf(f,
"Usage: vdi-engine backup  [options] SET [DEVICE...]\n"
"       vdi-engine restore [options] SET [DEVICE...]\n"
"Play the database engine (VDI's server role): stream data to the virtual\n"
"device set SET, created by a VDI client such as vdi-client, or read it back.\n"
"SET is the first device, as in BACKUP ... TO VIRTUAL_DEVICE='SET'; each\n"
"DEVICE names one more (VIRTUAL_DEVICE='DEVICE'), in the same order for the\n"
"restore as for the backup.  The stream is striped over the devices in\n"
"chunks of --max-transfer bytes.\n"
"\n"
"Data (backup):\n"
"  -i, --input FILE       read FILE (default: stdin, also '-')\n"
"  -C, --directory DIR    back up the tree DIR (tar -cf - -C DIR .)\n"
"      --generate SIZE    SIZE bytes of deterministic test data (see vdi-gen)\n"
"Data (restore):\n"
"  -o, --output FILE      write FILE (FILE.partial until complete; default:\n"
"                         stdout, also '-')\n"
"  -C, --directory DIR    extract into DIR (tar -xf - -C DIR)\n"
"VDI:\n"
"  -b, --block-size N     BLOCKSIZE: 512..65536, a power of 2 (65536)\n"
"  -m, --max-transfer N   MAXTRANSFERSIZE: a multiple of 64K up to 4M (1M)\n"
"  -n, --buffers N        BUFFERCOUNT: buffers shared by all devices, the\n"
"                         commands in flight (default 2 per device, at least 4)\n"
"  -t, --timeout SEC      wait up to SEC s for the set to appear (60)\n"
"      --owner USER       accept only a set created by USER (a name or a uid)\n"
"                         or root; 'any': any set we may open (default: our\n"
"                         own user or root: another user may have taken the\n"
"                         set's name to receive the backup)\n"
"Other:\n"
"      --keep-partial     on failure keep FILE.partial (restore -o FILE)\n"
"  -v, --verbose          say what is happening\n"
"  -h, --help\n"
"Sizes take K, M, G suffixes (powers of 1024).  At the end the mx64 checksum\n"
"of the stream is printed on stderr: 'checksum <hex> <bytes> bytes'.\n");
}

/* --owner: a user name, a uid, or "any". */
static int64_t parse_owner(const char *s)
{
	struct passwd *pw;
	uint64_t v;

	if (!strcmp(s, "any"))
		return VDI_OWNER_ANY;
	if (parse_uint(s, UINT32_MAX - 1, &v))
		return (int64_t)v;
	errno = 0;
	pw = getpwnam(s);
	if (!pw)
		usage_error("--owner: no user '%s'%s%s", s, errno ? ": " : "",
			    errno ? strerror(errno) : "");
	return pw->pw_uid;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "directory", required_argument, NULL, 'C' },
		{ "generate", required_argument, NULL, 'G' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "max-transfer", required_argument, NULL, 'm' },
		{ "buffers", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "keep-partial", no_argument, NULL, 'K' },
		{ "owner", required_argument, NULL, 'O' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	uint64_t v;
	int c;

	opt.op = parse_command(&argc, &argv, usage);

	while ((c = getopt_long(argc, argv, "i:o:C:b:m:n:t:vh", lopts,
				NULL)) != -1) {
		switch (c) {
		case 'i':
		case 'o':
			if ((c == 'i') != (opt.op == BACKUP))
				usage_error("-%c is for %s", c, c == 'i' ?
					    "backup" : "restore");
			opt.file = optarg;
			break;
		case 'C':
			opt.dir = optarg;
			break;
		case 'G':
			if (opt.op != BACKUP)
				usage_error("--generate is for backup (check a "
					    "restore with vdi-gen --check)");
			if (!parse_size(optarg, &opt.gen_size))
				usage_error("--generate: bad size '%s'", optarg);
			opt.generate = true;
			break;
		case 'b':
			if (!parse_size(optarg, &v) || v < 512 || v > 65536 ||
			    (v & (v - 1)))
				usage_error("--block-size must be a power of 2 "
					    "from 512 to 65536");
			opt.block_size = (uint32_t)v;
			break;
		case 'm':
			if (!parse_size(optarg, &v) || !v || v % 65536 ||
			    v > 4 << 20)
				usage_error("--max-transfer must be a multiple "
					    "of 64K, at most 4M");
			opt.max_transfer = (uint32_t)v;
			break;
		case 'n':
			if (!parse_uint(optarg, MAX_BUFFERS, &v) || !v)
				usage_error("--buffers must be 1..%d",
					    MAX_BUFFERS);
			opt.buffers = (unsigned int)v;
			break;
		case 't':
			if (!parse_uint(optarg, 86400, &v))
				usage_error("--timeout: seconds, 0..86400");
			opt.timeout_s = (unsigned int)v;
			break;
		case 'K':
			opt.keep_partial = true;
			break;
		case 'O':
			opt.owner = parse_owner(optarg);
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
	if (opt.dir) {		/* tar would say it later, after VDI began */
		struct stat st;

		if (stat(opt.dir, &st) < 0) {
			msg("%s: %s", opt.dir, strerror(errno));
			exit(EXIT_FAIL);
		}
		if (!S_ISDIR(st.st_mode)) {
			msg("%s: not a directory", opt.dir);
			exit(EXIT_FAIL);
		}
	}
	if (opt.dir && (opt.file || opt.generate))
		usage_error("-C takes the place of -%c and --generate",
			    opt.op == BACKUP ? 'i' : 'o');
	if (opt.file && opt.generate)
		usage_error("-i and --generate exclude each other");
	if (!opt.buffers)	/* 2 per device: one being filled, one moving */
		opt.buffers = opt.ndev * 2 < 4 ? 4 : opt.ndev * 2;
	if ((uint64_t)opt.buffers * opt.max_transfer > 1024ULL << 20)
		usage_error("--buffers x --max-transfer is over 1 GiB, the "
			    "module's largest buffer area");
}

/* ================================================================ signals */
static void on_signal(int sig)
{
	(void)sig;
	/* The normal paths notice the abort: every command in flight comes
	 * back with ERROR_OPERATION_ABORTED and every wait ends. */
	pthread_mutex_lock(&set_lock);
	if (V.set)
		vdi_server_signal_abort(V.set);
	pthread_mutex_unlock(&set_lock);
	if (V.wake[1] >= 0 && write(V.wake[1], "s", 1) < 0) {
		/* the pipe is full: someone will wake anyway */
	}
}

static bool said_interrupted;

/* Why the other side's commands came back aborted. */
static void say_aborted(void)
{
	said_interrupted = interrupted();
	if (interrupted())
		msg("interrupted by signal %d: %s aborted", interrupted(),
		    opt.op == BACKUP ? "backup" : "restore");
	else
		msg("the client went away or aborted the %s (VD_E_ABORT)",
		    opt.op == BACKUP ? "backup" : "restore");
}

/* ================================================================ data in */
static int open_input(void)
{
	struct stat st;

	if (opt.generate) {
		io.size = opt.gen_size;
		return 0;
	}
	if (opt.dir) {
		char *argv[] = { "tar", "-cf", "-", "-C", (char *)opt.dir, ".",
				 NULL };

		io.tar = spawn_piped(argv, false, &io.fd);
		if (io.tar < 0)
			return -1;
		grow_pipe(io.fd);
		return 0;
	}
	if (!opt.file || !strcmp(opt.file, "-")) {
		io.fd = STDIN_FILENO;
		grow_pipe(io.fd);
	} else {
		io.fd = open(opt.file, O_RDONLY | O_CLOEXEC);
		if (io.fd < 0) {
			msg("%s: %s", opt.file, strerror(errno));
			return -1;
		}
	}
	if (fstat(io.fd, &st) == 0 && S_ISREG(st.st_mode))
		io.size = (uint64_t)st.st_size;	/* for progress and ETA */
	return 0;
}

/*
 * Read up to @len bytes of L.  Waits for the input and for V.wake at once:
 * if the client dies while we wait for slow input (a pipe, tar), the agent
 * returns and we learn of it at once, not at the next command.
 */
static ssize_t read_input(uint8_t *buf, size_t len)
{
	struct pollfd pfd[2] = {
		{ .fd = io.fd, .events = POLLIN },
		{ .fd = V.wake[0], .events = POLLIN },
	};
	ssize_t n;

	if (opt.generate) {
		if (len > opt.gen_size - io.n)
			len = (size_t)(opt.gen_size - io.n);
		gen_fill(buf, io.n, len);
		return (ssize_t)len;
	}
	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
			msg("poll: %s", strerror(errno));
			return -1;
		}
		if (pfd[1].revents)
			return -2;	/* aborted or interrupted */
		if (!pfd[0].revents)
			continue;
		n = read(io.fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN) {
			msg("reading %s: %s", opt.dir ? "tar's output" :
			    opt.file && strcmp(opt.file, "-") ? opt.file :
			    "stdin", strerror(errno));
			return -1;
		}
	}
}

/* L has ended: the padding and trailer that complete S. */
static void make_tail(void)
{
	uint64_t total = (io.n + END_SIZE + opt.block_size - 1) /
			 opt.block_size * opt.block_size;
	uint8_t *t;

	io.tail_len = (size_t)(total - io.n);
	memset(io.tail, 0, io.tail_len);
	t = io.tail + io.tail_len - END_SIZE;
	memcpy(t, END_MAGIC, 8);
	put_le64(t + 8, io.n);
	put_le64(t + 16, mx64_final(&io.sum));
	put_le64(t + 24, V.backup_id);
}

/*
 * Fill @buf with the next up to @len bytes of S (the data, then padding and
 * trailer).  Returns the count, 0 once S is complete, < 0 on failure.
 */
static ssize_t produce(uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len && !io.eof) {
		n = read_input(buf + got, len - got);
		if (n < 0)
			return n;
		if (n == 0) {
			/* the end of L: a tar that failed means a broken
			 * archive, which must not look like a good backup */
			if (io.tar && !wait_child(io.tar, "tar -c"))
				return -1;
			io.tar = 0;
			io.eof = true;
			make_tail();
			break;
		}
		mx64_update(&io.sum, buf + got, (size_t)n);
		io.n += (uint64_t)n;
		got += (size_t)n;
		progress_update(&prog_bar, io.n);
	}
	if (io.eof && got < len && io.tail_off < io.tail_len) {
		size_t k = io.tail_len - io.tail_off;

		if (k > len - got)
			k = len - got;
		memcpy(buf + got, io.tail + io.tail_off, k);
		io.tail_off += k;
		got += k;
	}
	return (ssize_t)got;
}

/* ================================================================ data out */
static int open_output(void)
{
	if (opt.dir) {
		char *argv[] = { "tar", "-xf", "-", "-C", (char *)opt.dir, NULL };

		io.tar = spawn_piped(argv, true, &io.fd);
		if (io.tar < 0)
			return -1;
		grow_pipe(io.fd);
		return 0;
	}
	if (!opt.file || !strcmp(opt.file, "-")) {
		io.fd = STDOUT_FILENO;
		grow_pipe(io.fd);
		return 0;
	}
	/* FILE.partial until the restore is complete and checked */
	if (asprintf(&io.partial, "%s.partial", opt.file) < 0) {
		io.partial = NULL;
		msg("no memory");
		return -1;
	}
	io.fd = open(io.partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		     0644);
	if (io.fd < 0) {
		msg("%s: %s", io.partial, strerror(errno));
		free(io.partial);
		io.partial = NULL;
		return -1;
	}
	return 0;
}

static int write_output(const uint8_t *p, size_t len)
{
	int err;

	if (!len)
		return 0;
	err = write_all(io.fd, p, len);
	if (err) {
		if (err == EPIPE)
			msg("writing the data: %s has gone away",
			    opt.dir ? "tar -x" : "the reader of stdout");
		else
			msg("writing %s: %s", io.partial ? io.partial :
			    opt.dir ? "to tar -x" : "stdout", strerror(err));
		return -1;
	}
	mx64_update(&io.sum, p, len);
	io.n += len;
	progress_update(&prog_bar, io.n);
	return 0;
}

/* All data written: make it durable (file) or let tar finish. */
static int finish_output(void)
{
	int ret = 0;

	if (io.partial && fsync(io.fd) < 0) {
		msg("%s: fsync: %s", io.partial, strerror(errno));
		ret = -1;
	}
	if (io.fd > STDERR_FILENO || io.tar) {
		if (close(io.fd) < 0 && !ret) {
			msg("closing the output: %s", strerror(errno));
			ret = -1;
		}
		io.fd = -1;
	}
	if (io.tar) {
		if (!wait_child(io.tar, "tar -x"))
			ret = -1;
		io.tar = 0;
	}
	return ret;
}

/*
 * The restore's last bytes: S ends with padding and the trailer, and where
 * L ends is known only once S has ended.  So the last block + 64 bytes
 * received are held back here; everything before them is surely L.
 */
static struct {
	uint8_t buf[HDR_SIZE + END_SIZE];
	size_t cap, len;
	uint64_t received;	/* bytes of S so far */
} keep;

static int take(const uint8_t *p, size_t len)
{
	size_t excess, from_keep, from_p;

	keep.received += len;
	if (keep.len + len <= keep.cap) {
		memcpy(keep.buf + keep.len, p, len);
		keep.len += len;
		return 0;
	}
	excess = keep.len + len - keep.cap;	/* surely data: write it */
	from_keep = excess < keep.len ? excess : keep.len;
	if (write_output(keep.buf, from_keep) < 0)
		return -1;
	memmove(keep.buf, keep.buf + from_keep, keep.len - from_keep);
	keep.len -= from_keep;
	from_p = excess - from_keep;
	if (write_output(p, from_p) < 0)
		return -1;
	memcpy(keep.buf + keep.len, p + from_p, len - from_p);
	keep.len += len - from_p;
	return 0;
}

/* S has ended: find L's end in the trailer, write the rest, check it all. */
static int finish_stream(uint32_t block)
{
	const uint8_t *t = keep.buf + keep.len - END_SIZE;
	uint64_t n, sum, expect, rest;

	if (keep.len < END_SIZE || keep.received % block ||
	    memcmp(t, END_MAGIC, 8)) {
		msg("the backup is incomplete or damaged: no end record after "
		    "%" PRIu64 " bytes (the backup did not finish, or a "
		    "device's data is missing)", keep.received);
		return -1;
	}
	n = get_le64(t + 8);
	sum = get_le64(t + 16);
	expect = (n + END_SIZE + block - 1) / block * block;
	if (get_le64(t + 24) != V.backup_id || expect != keep.received ||
	    n < io.n || n - io.n > keep.len - END_SIZE) {
		msg("the backup is damaged: its end record does not match "
		    "(%" PRIu64 " bytes of data, %" PRIu64 " received)", n,
		    keep.received);
		return -1;
	}
	rest = n - io.n;
	if (write_output(keep.buf, (size_t)rest) < 0)
		return -1;
	if (mx64_final(&io.sum) != sum) {
		msg("the restored data does not match the backup's checksum "
		    "(%016" PRIx64 " recorded, %016" PRIx64 " read): the "
		    "backup is damaged", sum, mx64_final(&io.sum));
		return -1;
	}
	return 0;
}

/* ================================================================ VDI */
/* Completion routine: runs on the agent's thread (or, when SendCommand
 * fails, on the sender's).  It only records the fact: the main thread does
 * the work, in order. */
static void on_complete(VDS_Command *cmd)
{
	struct slot *s = (struct slot *)cmd->completionContext;

	pthread_mutex_lock(&V.lock);
	s->done = true;
	pthread_cond_broadcast(&V.cond);
	pthread_mutex_unlock(&V.lock);
}

static void *agent_main(void *arg)
{
	int rc;

	(void)arg;
	/* Blocks until every device is closed (NOERROR) or the set is
	 * aborted (VD_E_ABORT), calling on_complete() for each completion. */
	rc = vdi_server_execute_completion_agent(V.set);
	if (rc && rc != VD_E_ABORT)
		vdi_msg("ExecuteCompletionAgent", rc);
	pthread_mutex_lock(&V.lock);
	V.agent_rc = rc;
	V.agent_done = true;
	pthread_cond_broadcast(&V.cond);
	pthread_mutex_unlock(&V.lock);
	if (rc && write(V.wake[1], "a", 1) < 0) {
		/* full: the main thread is being woken anyway */
	}
	return NULL;
}

/* Queue one command.  0, or -1 after a message. */
static int submit(struct slot *s, unsigned int dev, int32_t code,
		  uint32_t size, int64_t position)
{
	int rc;

	s->cmd = (VDS_Command){
		.commandCode = code,
		.size = (int32_t)size,
		/* positions mean something only to a random-access set */
		.inPosition = V.disk ? position : 0,
		.buffer = code == VDC_Read || code == VDC_Write ? s->buf : NULL,
		.completionRoutine = (uint8_t *)on_complete,
		.completionContext = (uint8_t *)s,
	};
	s->dev = dev;
	pthread_mutex_lock(&V.lock);
	s->done = false;
	pthread_mutex_unlock(&V.lock);
	rc = vdi_server_send_command(V.dev[dev], &s->cmd);
	/* Unless queued, the routine has run with the reason (aborted, ...)
	 * and the caller sees it there; but a bad command (VD_E_INVALID) is a
	 * bug of ours, with no routine call. */
	if (rc == VD_E_INVALID) {
		vdi_msg("SendCommand", rc);
		return -1;
	}
	return 0;
}

/* The agent's VDI code once it has returned (VD_E_ABORT...), else 0. */
static int agent_ended(void)
{
	int rc;

	pthread_mutex_lock(&V.lock);
	rc = V.agent_done ? (V.agent_rc ? V.agent_rc : VD_E_CLOSE) : 0;
	pthread_mutex_unlock(&V.lock);
	return rc;
}

static void wait_slot(struct slot *s)
{
	pthread_mutex_lock(&V.lock);
	while (!s->done)
		pthread_cond_wait(&V.cond, &V.lock);
	pthread_mutex_unlock(&V.lock);
}

/* Explain a command that failed; the caller aborts. */
static void say_failed(const struct slot *s, const char *what)
{
	const char *dev = opt.dev_name[s->dev];
	int32_t code = s->cmd.completionCode;

	switch (code) {
	case ERROR_OPERATION_ABORTED:
		say_aborted();
		break;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
	case ERROR_EOM_OVERFLOW:
	case ERROR_END_OF_MEDIA:
		msg("device '%s': the client's storage is full (%s): the "
		    "backup is aborted", dev, win32_name(code));
		break;
	case ERROR_SUCCESS:
		msg("device '%s': %s moved %d of %d bytes", dev, what,
		    s->cmd.bytesTransferred, s->cmd.size);
		break;
	default:
		msg("device '%s': %s failed: %s", dev, what, win32_name(code));
	}
}

/* One command, waited for: headers and flushes. */
static int run_one(unsigned int dev, int32_t code, uint32_t size,
		   int64_t position, const char *what)
{
	struct slot *s = &V.ctl[dev];

	s->buf = V.hdr_buf;
	if (submit(s, dev, code, size, position) < 0)
		return -1;
	wait_slot(s);
	if (s->cmd.completionCode != ERROR_SUCCESS ||
	    ((code == VDC_Write) && s->cmd.bytesTransferred != (int32_t)size)) {
		say_failed(s, what);
		return -1;
	}
	return 0;
}

/* Open the set the client created: poll, since we may be first. */
static int connect_set(void)
{
	double deadline = now_s() + opt.timeout_s;
	bool said = false;
	vdi_server_set *set;
	int rc;

	for (;;) {
		/*
		 * Anyone may create a set of any name: the library asks the
		 * module whose set it is before anything else and refuses a
		 * set of a user we do not expect (VD_E_SECURITY), which would
		 * otherwise receive our backup or feed our restore.
		 */
		rc = vdi_server_open_ex(&set, NULL, opt.set_name, opt.owner);
		if (rc == NOERROR)
			break;
		if (rc != VD_E_INVALID) {	/* INVALID: not there yet */
			switch (rc) {
			case VD_E_PROTOCOL:
				msg("set '%s' already has an engine",
				    opt.set_name);
				break;
			case VD_E_SECURITY:
				msg("%s", vdi_last_error());
				msg("a set of another user needs its client's "
				    "leave (vdi-client --mode/--group) and "
				    "ours (--owner USER)");
				break;
			case VD_E_UNEXPECTED:	/* no /dev/vdi, no module */
				msg("cannot reach the VDI module: %s",
				    vdi_last_error());
				break;
			default:
				vdi_msg("Open", rc);
			}
			return -1;
		}
		if (interrupted())
			return -1;
		if (now_s() >= deadline) {
			msg("no set named '%s' appeared within %u s (start the "
			    "client first, e.g. vdi-client %s %s)",
			    opt.set_name, opt.timeout_s,
			    opt.op == BACKUP ? "backup" : "restore",
			    opt.set_name);
			return -1;
		}
		if (!said)
			verbose("waiting for set '%s'", opt.set_name);
		said = true;
		nanosleep(&(struct timespec){ 0, 100 * 1000000 }, NULL);
	}
	pthread_mutex_lock(&set_lock);
	V.set = set;
	pthread_mutex_unlock(&set_lock);
	if (interrupted())	/* a signal while we were opening */
		return -1;
	if (verbose_on) {
		uint32_t uid, gid, mode;

		if (vdi_server_get_owner(set, &uid, &gid, &mode) == NOERROR)
			verbose("set '%s' belongs to uid %u, group %u, mode "
				"%03o", opt.set_name, uid, gid, mode);
	}
	return 0;
}

static int configure(void)
{
	uint32_t features = opt.op == BACKUP ? VDF_WriteMedia : VDF_ReadMedia;
	unsigned int i, depth;
	VDConfig cfg;
	int rc;

	rc = vdi_server_get_configuration(V.set, &cfg);
	if (rc) {
		vdi_msg("GetConfiguration", rc);
		return -1;
	}
	if (cfg.deviceCount != opt.ndev) {
		msg("set '%s' has %u device%s but %u device name%s given: "
		    "name all %u, in the client's order", opt.set_name,
		    cfg.deviceCount, cfg.deviceCount == 1 ? "" : "s", opt.ndev,
		    opt.ndev == 1 ? " was" : "s were", cfg.deviceCount);
		return -1;
	}
	V.disk = cfg.features & VDF_RandomAccess;

	/*
	 * The window (BUFFERCOUNT commands in flight, round-robin over the
	 * devices) puts at most ceil(buffers / devices) commands on one
	 * device at a time (headers and flushes go when no data is in
	 * flight): the queue must hold them, or SendCommand would answer
	 * VD_E_QUEUE_FULL.
	 */
	depth = (opt.buffers + opt.ndev - 1) / opt.ndev;
	rc = vdi_server_set_queue_depth(V.set, depth < 4 ? 4 : depth);
	if (!rc)
		rc = vdi_server_begin_configuration(V.set, features,
						    opt.block_size,
						    opt.block_size,
						    opt.max_transfer, 10000);
	if (rc) {
		vdi_msg("BeginConfiguration", rc);
		return -1;
	}
	rc = vdi_server_request_buffers(V.set, opt.max_transfer, 0,
					opt.buffers);
	if (!rc)
		rc = vdi_server_request_buffers(V.set, HDR_SIZE, 0, 1);
	if (rc) {
		vdi_msg("RequestBuffers", rc);
		return -1;
	}
	rc = vdi_server_end_configuration(V.set);
	if (rc) {
		vdi_msg(rc == VD_E_MEMORY ? "EndConfiguration (is the module's "
			"max_area_mb too small? fewer --buffers)" :
			"EndConfiguration", rc);
		return -1;
	}
	vdi_server_get_configuration(V.set, &cfg);
	verbose("set '%s': %u device%s, %s, block size %u, max transfer %u, "
		"%u buffers, buffer area %u KiB", opt.set_name, opt.ndev,
		opt.ndev == 1 ? "" : "s", V.disk ? "disk-like (positions)" :
		"pipe-like", cfg.blockSize, cfg.maxTransferSize, opt.buffers,
		cfg.bufferAreaSize >> 10);

	/* T-SQL order: the set's own device first, then the others */
	for (i = 0; i < opt.ndev; i++) {
		rc = vdi_server_open_device(V.set, opt.dev_name[i], &V.dev[i]);
		if (rc) {
			if (rc == VD_E_INVALID)
				msg("the set has no device '%s' (the client "
				    "named its devices otherwise)",
				    opt.dev_name[i]);
			else
				vdi_msg(opt.dev_name[i], rc);
			return -1;
		}
	}

	/* The completion agent: on its own thread, as VDI's model has it. */
	if (pthread_create(&V.agent, NULL, agent_main, NULL)) {
		msg("cannot start the completion agent's thread");
		return -1;
	}
	V.agent_started = true;
	/* SendCommand needs the agent inside ExecuteCompletionAgent, and
	 * only the library can tell when the new thread got there. */
	do {
		rc = vdi_server_wait_agent(V.set, 100);
		if (rc && agent_ended())	/* came and went: aborted */
			rc = VD_E_ABORT;
	} while (rc == VD_E_TIMEOUT);
	if (rc) {
		say_aborted();
		return -1;
	}

	V.nslots = opt.buffers;
	V.data = calloc(V.nslots, sizeof(*V.data));
	if (!V.data) {
		msg("no memory");
		return -1;
	}
	for (i = 0; i < V.nslots; i++) {
		rc = vdi_server_allocate_buffer(V.set, &V.data[i].buf,
						opt.max_transfer, 0);
		if (rc) {
			vdi_msg("AllocateBuffer", rc);
			return -1;
		}
	}
	rc = vdi_server_allocate_buffer(V.set, &V.hdr_buf, HDR_SIZE, 0);
	if (rc) {
		vdi_msg("AllocateBuffer", rc);
		return -1;
	}
	return 0;
}

/* Where chunk k lives: its device, and its offset in that device's stream. */
static unsigned int chunk_dev(uint64_t k)
{
	return (unsigned int)(k % opt.ndev);
}

static int64_t chunk_pos(uint64_t k)
{
	return (int64_t)(HDR_SIZE + k / opt.ndev * V.chunk);
}

/* ================================================================ backup */
static int backup(void)
{
	uint64_t next = 0, retired = 0;	/* chunks sent / done with */
	bool all_sent = false;
	unsigned int d;
	struct slot *s;
	ssize_t n;

	V.chunk = opt.max_transfer;
	for (d = 0; d < opt.ndev; d++) {
		memset(V.hdr_buf, 0, HDR_SIZE);
		memcpy(V.hdr_buf, HDR_MAGIC, 8);
		put_le32(V.hdr_buf + 8, FORMAT_VERSION);
		put_le32(V.hdr_buf + 12, HDR_SIZE);
		put_le32(V.hdr_buf + 16, d);
		put_le32(V.hdr_buf + 20, opt.ndev);
		put_le32(V.hdr_buf + 24, opt.block_size);
		put_le32(V.hdr_buf + 28, V.chunk);
		put_le64(V.hdr_buf + 32, V.backup_id);
		if (run_one(d, VDC_Write, HDR_SIZE, 0, "writing the header") < 0)
			return -1;
	}

	/*
	 * The window: chunk k uses slot k % buffers, free again once chunk
	 * k - buffers is retired.  Chunks are retired in order, so the chunks
	 * in flight are always a run of at most 'buffers' consecutive ones.
	 */
	while (!all_sent || retired < next) {
		while (!all_sent && next - retired < V.nslots) {
			s = &V.data[next % V.nslots];
			n = produce(s->buf, V.chunk);
			if (n < 0) {
				if (n == -2)	/* woken: see what happened */
					break;
				return -1;
			}
			if (n == 0) {
				all_sent = true;
				break;
			}
			if (submit(s, chunk_dev(next), VDC_Write, (uint32_t)n,
				   chunk_pos(next)) < 0)
				return -1;
			next++;
			if ((uint32_t)n < V.chunk)	/* the last chunk */
				all_sent = true;
		}
		if (retired == next) {
			if (agent_ended() || interrupted()) {
				say_aborted();
				return -1;
			}
			continue;	/* n == -2 but nothing in flight */
		}
		s = &V.data[retired % V.nslots];
		wait_slot(s);
		if (s->cmd.completionCode != ERROR_SUCCESS ||
		    s->cmd.bytesTransferred != s->cmd.size) {
			say_failed(s, "write");
			return -1;
		}
		retired++;
	}
	progress_done(&prog_bar);

	/* Everything is written: the client makes it durable at Flush. */
	for (d = 0; d < opt.ndev; d++)
		if (submit(&V.ctl[d], d, VDC_Flush, 0, 0) < 0)
			return -1;
	for (d = 0; d < opt.ndev; d++) {
		wait_slot(&V.ctl[d]);
		if (V.ctl[d].cmd.completionCode != ERROR_SUCCESS) {
			say_failed(&V.ctl[d], "flush");
			return -1;
		}
	}
	return 0;
}

/* ================================================================ restore */
/* Read and check every device's header; learn the backup's geometry. */
static int read_headers(uint32_t *block)
{
	const uint8_t *h = V.hdr_buf;
	unsigned int d;

	for (d = 0; d < opt.ndev; d++) {
		const char *name = opt.dev_name[d];
		struct slot *s = &V.ctl[d];

		s->buf = V.hdr_buf;
		if (submit(s, d, VDC_Read, HDR_SIZE, 0) < 0)
			return -1;
		wait_slot(s);
		if (s->cmd.completionCode == ERROR_HANDLE_EOF ||
		    s->cmd.completionCode == ERROR_NO_DATA_DETECTED ||
		    (s->cmd.completionCode == ERROR_SUCCESS &&
		     s->cmd.bytesTransferred == 0)) {
			msg("device '%s' is empty: no backup on it", name);
			return -1;
		}
		if (s->cmd.completionCode != ERROR_SUCCESS) {
			say_failed(s, "reading the header");
			return -1;
		}
		if (s->cmd.bytesTransferred != HDR_SIZE ||
		    memcmp(h, HDR_MAGIC, 8) || get_le32(h + 12) != HDR_SIZE) {
			msg("device '%s' holds no vdi-engine backup", name);
			return -1;
		}
		if (get_le32(h + 8) != FORMAT_VERSION) {
			msg("device '%s': stream format version %u, this "
			    "program reads %u", name, get_le32(h + 8),
			    FORMAT_VERSION);
			return -1;
		}
		if (get_le32(h + 20) != opt.ndev) {
			msg("the backup was written to %u devices, the restore "
			    "uses %u: give as many device names as for the "
			    "backup", get_le32(h + 20), opt.ndev);
			return -1;
		}
		if (get_le32(h + 16) != d) {
			msg("device '%s' holds stripe %u of the backup, not %u: "
			    "give the device names in the backup's order",
			    name, get_le32(h + 16) + 1, d + 1);
			return -1;
		}
		if (d == 0) {
			*block = get_le32(h + 24);
			V.chunk = get_le32(h + 28);
			V.backup_id = get_le64(h + 32);
		} else if (get_le64(h + 32) != V.backup_id) {
			msg("device '%s' belongs to another backup than '%s'",
			    name, opt.dev_name[0]);
			return -1;
		}
	}
	if (*block < 512 || *block > HDR_SIZE || (*block & (*block - 1)) ||
	    !V.chunk || V.chunk % *block) {
		msg("device '%s': the header is damaged", opt.dev_name[0]);
		return -1;
	}
	if (V.chunk > opt.max_transfer) {
		msg("the backup was written in chunks of %u bytes: restore "
		    "with --max-transfer %u (or more)", V.chunk, V.chunk);
		return -1;
	}
	verbose("backup %016" PRIx64 ": %u device%s, block size %u, chunks "
		"of %u bytes", V.backup_id, opt.ndev, opt.ndev == 1 ? "" : "s",
		*block, V.chunk);
	return 0;
}

static int restore(void)
{
	uint64_t next = 0, retired = 0;	/* chunks asked for / consumed */
	bool ended = false;
	uint32_t block = 0;
	struct slot *s;
	int32_t code, got;

	if (read_headers(&block) < 0)
		return -1;
	keep.cap = block + END_SIZE;	/* padding < block, then trailer */

	/*
	 * Ask for chunk after chunk, round-robin, at most 'buffers' ahead of
	 * the one being consumed; consume them in order.  S ends at the first
	 * chunk that comes back short or with end of data; reads already sent
	 * past it just come back with end of data (or ERROR_IO_DEVICE once a
	 * device is in IO-ERROR from its end of data) and are ignored.
	 */
	while (!ended) {
		while (next - retired < V.nslots) {
			s = &V.data[next % V.nslots];
			if (submit(s, chunk_dev(next), VDC_Read, V.chunk,
				   chunk_pos(next)) < 0)
				return -1;
			next++;
		}
		s = &V.data[retired % V.nslots];
		wait_slot(s);
		code = s->cmd.completionCode;
		got = s->cmd.bytesTransferred;
		if (code == ERROR_HANDLE_EOF || code == ERROR_NO_DATA_DETECTED ||
		    (code == ERROR_SUCCESS && got < (int32_t)V.chunk))
			ended = true;
		else if (code != ERROR_SUCCESS) {
			say_failed(s, "read");
			return -1;
		}
		if (take(s->buf, (size_t)got) < 0)
			return -1;
		retired++;
	}
	/* let the reads past the end come back before the buffers go */
	for (; retired < next; retired++)
		wait_slot(&V.data[retired % V.nslots]);
	if (agent_ended()) {	/* aborted meanwhile */
		say_aborted();
		return -1;
	}
	progress_done(&prog_bar);
	if (finish_stream(block) < 0 || finish_output() < 0)
		return -1;
	return 0;
}

/* ================================================================ end */
/* The normal end: close every device; the agent then returns NOERROR. */
static int close_devices(void)
{
	unsigned int d;
	int rc;

	for (d = 0; d < opt.ndev; d++) {
		rc = vdi_server_close_device(V.dev[d]);
		if (rc == VD_E_ABORT) {
			say_aborted();
			return -1;
		}
		if (rc) {
			vdi_msg("CloseDevice", rc);
			return -1;
		}
	}
	pthread_join(V.agent, NULL);
	V.agent_started = false;
	if (V.agent_rc) {
		say_aborted();
		return -1;
	}
	return 0;
}

static void close_set(bool failed)
{
	vdi_server_set *set;

	if (failed && V.set)
		vdi_server_signal_abort(V.set);	/* the client learns of it */
	if (V.agent_started)	/* it returns once the abort is through */
		pthread_join(V.agent, NULL);
	pthread_mutex_lock(&set_lock);
	set = V.set;
	V.set = NULL;
	pthread_mutex_unlock(&set_lock);
	if (set)
		vdi_server_close(set);
}

static void cleanup_io(bool failed)
{
	if (io.tar) {		/* a failure stopped us: stop tar too */
		kill(io.tar, SIGTERM);
		while (waitpid(io.tar, NULL, 0) < 0 && errno == EINTR)
			;
		io.tar = 0;
	}
	if (!io.partial)
		return;
	if (!failed) {
		if (rename(io.partial, opt.file) < 0) {
			msg("renaming %s: %s", io.partial, strerror(errno));
			failed = true;
		} else {
			sync_dir(opt.file);
		}
	}
	if (failed) {
		if (opt.keep_partial)
			msg("%s is INCOMPLETE: the restore failed", io.partial);
		else
			unlink(io.partial);
	}
}

int main(int argc, char **argv)
{
	char b1[32], b2[64];
	bool failed = true;
	double t0;

	prog = "vdi-engine";
	parse_args(argc, argv);
	signals_setup(on_signal);
	if (pipe2(V.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		msg("pipe: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (getrandom(&V.backup_id, sizeof(V.backup_id), 0) !=
	    sizeof(V.backup_id))
		V.backup_id = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	mx64_init(&io.sum);

	/* the data first: a bad path must not disturb the client */
	if ((opt.op == BACKUP ? open_input() : open_output()) < 0)
		goto out;
	if (connect_set() < 0)
		goto out;
	if (configure() < 0)
		goto out;

	progress_init(&prog_bar, opt.op == BACKUP ? "backup" : "restore",
		      opt.op == BACKUP ? io.size : 0);
	t0 = now_s();
	if ((opt.op == BACKUP ? backup() : restore()) < 0)
		goto out;
	if (close_devices() < 0)
		goto out;
	failed = false;
	msg("%s of %s through %u device%s %s", opt.op == BACKUP ? "backup" :
	    "restore", fmt_bytes(b1, sizeof(b1), io.n), opt.ndev,
	    opt.ndev == 1 ? "" : "s", fmt_rate(b2, sizeof(b2), io.n,
						now_s() - t0));
out:
	progress_done(&prog_bar);
	if (failed && interrupted() && !said_interrupted)
		msg("interrupted by signal %d: %s aborted", interrupted(),
		    opt.op == BACKUP ? "backup" : "restore");
	close_set(failed);
	cleanup_io(failed);
	if (failed)
		return EXIT_FAIL;
	/* mx64 of the logical stream: equal for a backup and its restore */
	fprintf(stderr, "checksum %016" PRIx64 " %" PRIu64 " bytes\n",
		mx64_final(&io.sum), io.n);
	return 0;
}
