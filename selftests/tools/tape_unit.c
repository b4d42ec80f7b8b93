// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-client's tape (tools/client-tape.c) on its own: the moves the engine
 * never makes (SkipMarks backwards, SkipBlocks, SetPosition, writing over
 * the middle of a tape), the block addresses, and the file's mark index.
 * TAP on stdout.  No module needed: it is the medium, not VDI.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvdi.h>

#include "client-tape.h"
#include "common.h"

static int n, failed;

static void check(int ok, const char *what, long long got, long long want)
{
	n++;
	if (ok) {
		printf("ok %d tape: %s\n", n, what);
		return;
	}
	printf("not ok %d tape: %s (got %lld, want %lld)\n", n, what, got,
	       want);
	failed++;
}

#define EQ(got, want, what) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	check(g_ == w_, what, g_, w_); \
} while (0)

static uint8_t buf[8192];

static uint32_t wr(struct tape *t, int fd, int c, size_t len)
{
	size_t done;
	int err;

	memset(buf, c, len);
	return tape_write(t, fd, buf, len, &done, &err);
}

/* Read up to @len: the code, the count in *got, the first byte in *c. */
static uint32_t rd(struct tape *t, int fd, size_t len, size_t *got, int *c)
{
	uint32_t code;
	int err;

	buf[0] = 0;
	code = tape_read(t, fd, buf, len, got, &err);
	*c = buf[0];
	return code;
}

/*
 * A hostile tape file in @fd: @len bytes of data, the @nidx index entries
 * @idx, and a footer that claims @marks marks, with a checksum that is
 * right for what it claims (so only the bounds checks can refuse it).
 */
static void forge(int fd, uint64_t len, const uint64_t *idx, size_t nidx,
		  uint64_t marks)
{
	uint8_t f[TAPE_FOOTER], e[8];
	struct mx64 m;
	size_t i;

	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)len) < 0)
		perror("ftruncate");
	memcpy(f, TAPE_MAGIC, 8);
	put_le64(f + 8, len);
	put_le64(f + 16, marks);
	mx64_init(&m);
	mx64_update(&m, f + 8, 16);
	for (i = 0; i < nidx; i++) {
		put_le64(e, idx[i]);
		mx64_update(&m, e, 8);
		if (pwrite(fd, e, 8, (off_t)(len + i * 8)) != 8)
			perror("pwrite");
	}
	put_le64(f + 24, mx64_final(&m));
	if (pwrite(fd, f, sizeof(f), (off_t)(len + nidx * 8)) !=
	    (ssize_t)sizeof(f))
		perror("pwrite");
}

/* tape_load of what forge() wrote: its result, and @want in the reason */
static void refuse(int fd, const char *want, const char *what)
{
	struct tape u;
	char why[256] = "";
	int rc;

	tape_init(&u, 512);
	rc = tape_load(&u, fd, why, sizeof(why));
	EQ(rc, -1, what);
	EQ(strstr(why, want) != NULL, 1, "... said so");
	tape_free(&u);
}

static void hostile(int fd)
{
	uint64_t m[3] = { 100, 50, 200 };
	struct tape u;
	char why[256];

	forge(fd, 300, m, 1, 1);
	tape_init(&u, 512);
	EQ(tape_load(&u, fd, why, sizeof(why)), 0, "forged: a sound file loads");
	tape_free(&u);
	/* a count whose n * 8 wraps to the one entry's 8 bytes (else an
	 * 8-byte index would be walked 2^61 times), or just does not fit */
	forge(fd, 300, m, 1, (1ULL << 61) + 1);
	refuse(fd, "footer is damaged", "a huge mark count");
	forge(fd, 300, m, 1, 2);
	refuse(fd, "footer is damaged", "one mark more than the index holds");
	/* a data length past the file */
	forge(fd, 300, m, 0, 0);
	if (pwrite(fd, "\xff\xff\xff\xff\xff\xff\xff\x7f", 8,
		   300 + 8) != 8)
		perror("pwrite");
	refuse(fd, "footer is damaged", "a data length past the file");
	/* checksums right, marks wrong */
	forge(fd, 300, m, 2, 2);
	refuse(fd, "out of order", "marks out of order");
	m[0] = 301;
	forge(fd, 300, m, 1, 1);
	refuse(fd, "out of order", "a mark past the data");
	/* too short for a footer */
	if (ftruncate(fd, TAPE_FOOTER - 1) < 0)
		perror("ftruncate");
	refuse(fd, "no tape footer", "a file shorter than a footer");
}

int main(void)
{
	char path[] = "/tmp/tape-unit.XXXXXX", why[256];
	struct tape t, u;
	uint64_t now;
	size_t got;
	int fd, c;

	fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	unlink(path);
	tape_init(&t, 512);

	/* A: 2 blocks | mark | B: 1 block | mark | mark | C: 3 blocks */
	EQ(wr(&t, fd, 'A', 1024), ERROR_SUCCESS, "write A");
	EQ(tape_write_mark(&t), ERROR_SUCCESS, "mark 1");
	EQ(wr(&t, fd, 'B', 512), ERROR_SUCCESS, "write B");
	tape_write_mark(&t);
	tape_write_mark(&t);
	wr(&t, fd, 'C', 1536);
	EQ(t.nmarks, 3, "three marks");
	/* addresses: A 0-1, mark 2, B 3, mark 4, mark 5, C 6-8: end 9 */
	EQ(tape_position(&t), 9, "address at the end");

	tape_rewind(&t);
	EQ(tape_position(&t), 0, "rewound");
	EQ(rd(&t, fd, 4096, &got, &c), ERROR_SUCCESS, "read stops at a mark");
	EQ(got, 1024, "... with the data before it");
	EQ(c, 'A', "... A");
	EQ(rd(&t, fd, 4096, &got, &c), ERROR_FILEMARK_DETECTED,
	   "read at a mark: ERROR_FILEMARK_DETECTED");
	EQ(got, 0, "... no data");
	EQ(tape_position(&t), 3, "... and past it");
	rd(&t, fd, 4096, &got, &c);
	EQ(got * 1000 + c, 512 * 1000 + 'B', "read B");
	EQ(rd(&t, fd, 4096, &got, &c), ERROR_FILEMARK_DETECTED, "mark 2");
	EQ(rd(&t, fd, 4096, &got, &c), ERROR_FILEMARK_DETECTED, "mark 3");
	rd(&t, fd, 4096, &got, &c);
	EQ(got * 1000 + c, 1536 * 1000 + 'C', "read C");
	EQ(rd(&t, fd, 4096, &got, &c), ERROR_NO_DATA_DETECTED,
	   "end of data: ERROR_NO_DATA_DETECTED");

	/* SkipMarks backwards: before the mark, on its start side */
	EQ(tape_skip_marks(&t, -1), ERROR_SUCCESS, "SkipMarks -1");
	EQ(tape_position(&t), 5, "... before mark 3");
	EQ(tape_skip_marks(&t, -2), ERROR_SUCCESS, "SkipMarks -2");
	EQ(tape_position(&t), 2, "... before mark 1");
	EQ(rd(&t, fd, 4096, &got, &c), ERROR_FILEMARK_DETECTED,
	   "... where a read meets it");
	EQ(tape_skip_marks(&t, -4), ERROR_BEGINNING_OF_MEDIA,
	   "SkipMarks past the start");
	EQ(tape_position(&t), 0, "... at the start");
	EQ(tape_skip_marks(&t, 2), ERROR_SUCCESS, "SkipMarks 2");
	EQ(tape_position(&t), 5, "... just past mark 2");
	EQ(tape_skip_marks(&t, 5), ERROR_NO_DATA_DETECTED,
	   "SkipMarks past the last");
	EQ(tape_position(&t), 9, "... at the end");

	/* SkipBlocks */
	tape_rewind(&t);
	EQ(tape_skip_blocks(&t, 1), ERROR_SUCCESS, "SkipBlocks 1");
	EQ(tape_position(&t), 1, "... address 1");
	EQ(tape_skip_blocks(&t, 5), ERROR_FILEMARK_DETECTED,
	   "SkipBlocks over a mark");
	EQ(tape_position(&t), 3, "... stops past it");
	EQ(tape_skip_blocks(&t, -1), ERROR_FILEMARK_DETECTED,
	   "SkipBlocks -1 back over it");
	EQ(tape_position(&t), 2, "... stops before it");
	EQ(tape_skip_blocks(&t, -10), ERROR_BEGINNING_OF_MEDIA,
	   "SkipBlocks past the start");
	EQ(tape_position(&t), 0, "... at the start");

	/* SetPosition to addresses GetPosition gives */
	EQ(tape_set_position(&t, 7, &now), ERROR_SUCCESS, "SetPosition 7");
	EQ(now, 7, "... reports 7");
	rd(&t, fd, 512, &got, &c);
	EQ(got * 1000 + c, 512 * 1000 + 'C', "... the second block of C");
	EQ(tape_set_position(&t, 4, &now), ERROR_SUCCESS, "SetPosition 4");
	EQ(rd(&t, fd, 512, &got, &c), ERROR_FILEMARK_DETECTED,
	   "... before mark 2");
	EQ(tape_set_position(&t, 100, &now), ERROR_NO_DATA_DETECTED,
	   "SetPosition past the data");
	EQ(now, 9, "... at the end");

	/* writing in the middle ends the tape there */
	tape_set_position(&t, 3, &now);
	wr(&t, fd, 'D', 512);
	EQ(t.nmarks, 1, "a write drops the marks after it");
	EQ(t.end, 1536, "... and the data");

	/* the file: data, index, footer; and back */
	EQ(tape_save(&t, fd), 0, "save");
	EQ(lseek(fd, 0, SEEK_END), 1536 + 8 + TAPE_FOOTER, "file size");
	EQ(tape_file_is_tape(fd), 1, "a tape file");
	tape_init(&u, 512);
	EQ(tape_load(&u, fd, why, sizeof(why)), 0, "load");
	EQ(u.end * 10 + u.nmarks, 1536 * 10 + 1, "... data and marks");
	EQ(u.nmarks ? u.mark[0] : 0, 1024, "... the mark's offset");
	tape_free(&u);
	if (pwrite(fd, "X", 1, 1536 + 2) != 1)
		perror("pwrite");
	tape_init(&u, 512);
	EQ(tape_load(&u, fd, why, sizeof(why)), -1, "a damaged index");
	EQ(strstr(why, "damaged") != NULL, 1, "... said so");
	tape_free(&u);
	if (ftruncate(fd, 1000) < 0)
		perror("ftruncate");
	EQ(tape_file_is_tape(fd), 0, "a file without a footer");
	hostile(fd);

	tape_free(&t);
	close(fd);
	printf("1..%d\n", n);
	return failed != 0;
}
