// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine's data: where the logical stream L comes from at a backup (a
 * file, stdin, generated test data, or tar -c of a directory) and where it
 * goes at a restore (FILE.partial renamed to FILE once complete and checked,
 * a device or FIFO written in place, stdout, or tar -x into a directory).
 * Its length and checksum are counted here, on the way in or out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"

struct engine_io io = {
	.fd = -1,
	.splicer = { .pipe = { -1, -1 } },
	.summer = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	},
};

struct progress prog_bar;

/* ================================================================ data in */
int open_input(void)
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
 * Read up to @len bytes of the input.  Waits for the input and for V.wake at
 * once: if the client dies while we wait for slow input (a pipe, tar), the
 * agent returns and we learn of it at once, not at the next command.
 */
static ssize_t read_some(uint8_t *buf, size_t len)
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
		n = mapped_read(&io.mapper, io.fd, buf, len, NULL);
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

ssize_t read_input(uint8_t *buf, size_t len)
{
	ssize_t n = read_some(buf, len);

	if (n == 0 && io.tar) {
		/* the end of L: a tar that failed means a broken archive,
		 * which must not look like a good backup */
		if (!wait_child(io.tar, "tar -c"))
			return -1;
		io.tar = 0;
	}
	if (n > 0) {
		mx64_update(&io.sum, buf, (size_t)n);
		io.n += (uint64_t)n;
		progress_update(&prog_bar, io.n);
		sql_stats(io.n);
	}
	return n;
}

/* ================================================================ data out */
int open_output(void)
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
	/* FILE.partial until the restore is complete and checked; a device
	 * or FIFO in place */
	if (out_open(&io.out, opt.file, O_WRONLY, opt.timeout_s, NULL) < 0)
		return -1;
	io.fd = io.out.fd;
	return 0;
}

int write_output(const uint8_t *p, size_t len)
{
	bool summed;
	size_t done;
	int err;

	if (!len)
		return 0;
	/* the checksum on another thread while the bytes are written */
	summed = summer_start(&io.summer, &io.sum, p, len);
	err = splice_write(&io.splicer, io.fd, p, len, NULL, &done);
	if (summed)
		summer_wait(&io.summer);
	else if (!err)
		mx64_update(&io.sum, p, len);
	if (err) {
		if (err == EPIPE)
			msg("writing the data: the reader of %s has gone away",
			    opt.dir ? "tar -x" : io.out.path ? io.out.path :
			    "stdout");
		else
			msg("writing %s: %s", io.out.path ? out_name(&io.out) :
			    opt.dir ? "to tar -x" : "stdout", strerror(err));
		return -1;
	}
	io.n += len;
	progress_update(&prog_bar, io.n);
	sql_stats(io.n);
	return 0;
}

/* All data written: make it durable (file) or let tar finish. */
int finish_output(void)
{
	int ret = 0, err;

	if (io.out.path && (err = out_sync(&io.out))) {
		msg("%s: fsync: %s", out_name(&io.out), strerror(err));
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

bool cleanup_io(bool failed)
{
	int err;

	splicer_close(&io.splicer);
	mapper_close(&io.mapper);
	summer_stop(&io.summer);
	if (io.tar) {		/* a failure stopped us: stop tar too */
		kill(io.tar, SIGTERM);
		while (waitpid(io.tar, NULL, 0) < 0 && errno == EINTR)
			;
		io.tar = 0;
	}
	if (!io.out.partial) {	/* stdout, tar, or a device / FIFO in place */
		if (failed && io.out.path && io.n)
			msg("the data written to %s is INCOMPLETE", io.out.path);
		return failed;
	}
	if (!failed && (err = out_commit(&io.out))) {
		/* the data is all there and checked: keep it, say where */
		msg("renaming %s to %s: %s: %s is COMPLETE, kept under that name",
		    io.out.partial, io.out.path, strerror(err),
		    io.out.partial);
		return true;
	}
	if (failed) {
		if (opt.keep_partial)
			msg("%s is INCOMPLETE: the restore failed",
			    io.out.partial);
		out_drop(&io.out, opt.keep_partial);
	}
	return failed;
}
