// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine's stream format, and the backup and restore loops that write it
 * to the devices and read it back (through engine-vdi.c's commands).
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
 *       40  u64 the size of L if known when the backup began (a file,
 *           --generate), else 0: only for a restore's progress (STATS)
 *       48  16 bytes zero
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
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"

/*
 * The backup's last bytes: once L has ended, the padding and trailer that
 * complete S, handed out after it.
 */
static struct {
	bool eof;		/* L is all read */
	uint8_t buf[HDR_SIZE + END_SIZE];
	size_t len, off;
} tail;

/* L has ended: the padding and trailer that complete S. */
static void make_tail(void)
{
	uint64_t total = (io.n + END_SIZE + opt.block_size - 1) /
			 opt.block_size * opt.block_size;
	uint8_t *t;

	tail.len = (size_t)(total - io.n);
	memset(tail.buf, 0, tail.len);
	t = tail.buf + tail.len - END_SIZE;
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

	while (got < len && !tail.eof) {
		n = read_input(buf + got, len - got);
		if (n < 0)
			return n;
		if (n == 0) {	/* the end of L */
			tail.eof = true;
			make_tail();
			break;
		}
		got += (size_t)n;
	}
	if (tail.eof && got < len && tail.off < tail.len) {
		size_t k = tail.len - tail.off;

		if (k > len - got)
			k = len - got;
		memcpy(buf + got, tail.buf + tail.off, k);
		tail.off += k;
		got += k;
	}
	return (ssize_t)got;
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
int backup(void)
{
	uint64_t next = 0, retired = 0;	/* chunks sent / done with */
	uint64_t moved = 0;		/* bytes of S written */
	bool all_sent = false;
	unsigned int d;
	struct slot *s;
	ssize_t n;
	int r;

	V.chunk = opt.max_transfer;
	if (media_backup_begin() < 0)
		return -1;
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
		put_le64(V.hdr_buf + 40, io.size);
		if (run_one(d, VDC_Write, HDR_SIZE, 0, "writing the header") < 0)
			return -1;
	}
	if (media_backup_data() < 0)
		return -1;

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
		moved += (uint64_t)s->cmd.bytesTransferred;
		r = inject_after_data(moved, retired, false);
		if (r < 0)
			return -1;
		if (r > 0)		/* no more data: drain the window */
			all_sent = true;
	}
	progress_done(&prog_bar);
	if (inject_after_data(moved, retired, true) < 0)
		return -1;
	/* Flush, marks, VDC_Complete: what the feature set calls for */
	return media_backup_end();
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
			io.size = get_le64(h + 40);	/* 0: unknown */
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
		    "with --max-transfer %u (WITH MAXTRANSFERSIZE = %u) or "
		    "more", V.chunk, V.chunk, V.chunk);
		return -1;
	}
	verbose("backup %016" PRIx64 ": %u device%s, block size %u, chunks "
		"of %u bytes", V.backup_id, opt.ndev, opt.ndev == 1 ? "" : "s",
		*block, V.chunk);
	return 0;
}

int restore(void)
{
	uint64_t next = 0, retired = 0;	/* chunks asked for / consumed */
	uint64_t moved = 0;		/* bytes of S read */
	bool ended = false, stopped = false;
	uint32_t block = 0;
	struct slot *s;
	int32_t code, got;
	int r;

	if (media_restore_begin() < 0 || read_headers(&block) < 0 ||
	    media_restore_data() < 0)
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
		/* a tape's data ends at its filemark */
		if (code == ERROR_HANDLE_EOF || code == ERROR_NO_DATA_DETECTED ||
		    code == ERROR_FILEMARK_DETECTED ||
		    (code == ERROR_SUCCESS && got < (int32_t)V.chunk))
			ended = true;
		else if (code != ERROR_SUCCESS) {
			say_failed(s, "read");
			return -1;
		}
		if (take(s->buf, (size_t)got) < 0)
			return -1;
		retired++;
		moved += (uint64_t)got;
		r = inject_after_data(moved, retired, false);
		if (r < 0)
			return -1;
		if (r > 0) {		/* stop reading here */
			stopped = true;
			break;
		}
	}
	/* let the reads past the end come back before the buffers go */
	for (; retired < next; retired++)
		wait_slot(&V.data[retired % V.nslots]);
	if (agent_ended()) {	/* aborted meanwhile */
		say_aborted();
		return -1;
	}
	progress_done(&prog_bar);
	if (inject_after_data(moved, retired, true) < 0)
		return -1;
	if (stopped)		/* the data is incomplete: no checks */
		return media_restore_end();
	if (media_restore_end() < 0 || finish_stream(block) < 0 ||
	    finish_output() < 0)
		return -1;
	return 0;
}
