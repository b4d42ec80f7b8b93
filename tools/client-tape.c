// SPDX-License-Identifier: GPL-2.0
/*
 * client-tape - the tape that vdi-client --tape emulates in a file: marks,
 * positions, and the file's mark index.  The format and the rules are in
 * client-tape.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvdi.h>

#include "client-tape.h"
#include "common.h"

void tape_init(struct tape *t, uint32_t block)
{
	memset(t, 0, sizeof(*t));
	t->block = block ? block : 512;
}

void tape_free(struct tape *t)
{
	free(t->mark);
	t->mark = NULL;
	t->nmarks = t->cap = 0;
}

/* The start and end of the data between mark j - 1 and mark j. */
static uint64_t seg_start(const struct tape *t, size_t j)
{
	return j ? t->mark[j - 1] : 0;
}

static uint64_t seg_end(const struct tape *t, size_t j)
{
	return j < t->nmarks ? t->mark[j] : t->end;
}

static uint64_t blocks(const struct tape *t, uint64_t bytes)
{
	return (bytes + t->block - 1) / t->block;
}

/* The block address where segment j begins (just past mark j - 1). */
static uint64_t seg_addr(const struct tape *t, size_t j)
{
	uint64_t a = 0;
	size_t i;

	for (i = 0; i < j; i++)
		a += blocks(t, seg_end(t, i) - seg_start(t, i)) + 1;
	return a;
}

uint64_t tape_position(const struct tape *t)
{
	return seg_addr(t, t->mk) + blocks(t, t->off - seg_start(t, t->mk));
}

/* Writing at the position ends the tape there: what followed is gone. */
static void cut_here(struct tape *t)
{
	t->end = t->off;
	t->nmarks = t->mk;
}

static uint64_t index_sum(const uint8_t *head16, const uint8_t *idx,
			  size_t idxlen)
{
	struct mx64 m;

	mx64_init(&m);
	mx64_update(&m, head16, 16);
	mx64_update(&m, idx, idxlen);
	return mx64_final(&m);
}

/*
 * All @len bytes at @at, or an errno: EIO when the file ends first (it
 * shrank), ENOSPC when nothing more fits.  *@moved (may be NULL) gets how
 * many did move.
 */
static int pread_all(int fd, void *buf, size_t len, uint64_t at,
		     size_t *moved)
{
	size_t got = 0;
	ssize_t n;
	int err = 0;

	while (got < len) {
		n = pread(fd, (uint8_t *)buf + got, len - got,
			  (off_t)(at + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		got += (size_t)n;
	}
	if (moved)
		*moved = got;
	return err;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t at,
		      size_t *moved)
{
	size_t done = 0;
	ssize_t n;
	int err = 0;

	while (done < len) {
		n = pwrite(fd, (const uint8_t *)buf + done, len - done,
			   (off_t)(at + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : ENOSPC;
			break;
		}
		done += (size_t)n;
	}
	if (moved)
		*moved = done;
	return err;
}

bool tape_file_is_tape(int fd)
{
	uint8_t f[TAPE_FOOTER];
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < (off_t)TAPE_FOOTER)
		return false;
	if (pread_all(fd, f, sizeof(f), (uint64_t)st.st_size - TAPE_FOOTER,
		      NULL))
		return false;
	return !memcmp(f, TAPE_MAGIC, 8);
}

int tape_load(struct tape *t, int fd, char *why, size_t whylen)
{
	uint8_t f[TAPE_FOOTER], *idx = NULL;
	uint64_t size, len, n, i;
	struct stat st;
	int err;

	if (fstat(fd, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	size = (uint64_t)st.st_size;
	if (!S_ISREG(st.st_mode) || size < TAPE_FOOTER) {
		snprintf(why, whylen, "no tape footer: not written by "
			 "vdi-client --tape");
		return -1;
	}
	err = pread_all(fd, f, sizeof(f), size - TAPE_FOOTER, NULL);
	if (err) {
		snprintf(why, whylen, "%s", strerror(err));
		return -1;
	}
	if (memcmp(f, TAPE_MAGIC, 8)) {
		snprintf(why, whylen, "no tape footer: not written by "
			 "vdi-client --tape (restore it without --tape)");
		return -1;
	}
	len = get_le64(f + 8);
	n = get_le64(f + 16);
	if (n > (size - TAPE_FOOTER) / 8 ||
	    len != size - TAPE_FOOTER - n * 8) {
		snprintf(why, whylen, "the tape footer is damaged (%llu bytes "
			 "of data and %llu marks do not fit the file)",
			 (unsigned long long)len, (unsigned long long)n);
		return -1;
	}
	if (n) {
		idx = malloc(n * 8);
		t->mark = malloc(n * sizeof(*t->mark));
		if (!idx || !t->mark) {
			free(idx);
			snprintf(why, whylen, "no memory");
			return -1;
		}
		err = pread_all(fd, idx, n * 8, len, NULL);
		if (err) {
			free(idx);
			snprintf(why, whylen, "%s", strerror(err));
			return -1;
		}
	}
	if (index_sum(f + 8, idx, n * 8) != get_le64(f + 24)) {
		free(idx);
		snprintf(why, whylen, "the tape's mark index is damaged "
			 "(checksum mismatch)");
		return -1;
	}
	for (i = 0; i < n; i++) {
		t->mark[i] = get_le64(idx + i * 8);
		if (t->mark[i] > len || (i && t->mark[i] < t->mark[i - 1])) {
			free(idx);
			snprintf(why, whylen, "the tape's mark index is "
				 "damaged (mark %llu out of order)",
				 (unsigned long long)i);
			return -1;
		}
	}
	free(idx);
	t->nmarks = t->cap = (size_t)n;
	t->end = len;
	t->off = 0;
	t->mk = 0;
	return 0;
}

int tape_save(const struct tape *t, int fd)
{
	size_t idxlen = t->nmarks * 8;
	uint8_t f[TAPE_FOOTER], *idx;
	size_t i;
	int err;

	idx = malloc(idxlen ? idxlen : 1);
	if (!idx)
		return ENOMEM;
	for (i = 0; i < t->nmarks; i++)
		put_le64(idx + i * 8, t->mark[i]);
	memcpy(f, TAPE_MAGIC, 8);
	put_le64(f + 8, t->end);
	put_le64(f + 16, t->nmarks);
	put_le64(f + 24, index_sum(f + 8, idx, idxlen));
	if (ftruncate(fd, (off_t)t->end) < 0)
		err = errno;
	else
		err = pwrite_all(fd, idx, idxlen, t->end, NULL);
	if (!err)
		err = pwrite_all(fd, f, sizeof(f), t->end + idxlen, NULL);
	free(idx);
	return err;
}

uint32_t tape_read(struct tape *t, int fd, uint8_t *buf, size_t len,
		   size_t *done, int *err)
{
	uint64_t bound = seg_end(t, t->mk);

	*done = 0;
	*err = 0;
	if (t->off >= bound) {
		if (t->mk < t->nmarks) {	/* at a mark: pass it */
			t->mk++;
			return ERROR_FILEMARK_DETECTED;
		}
		return len ? ERROR_NO_DATA_DETECTED : ERROR_SUCCESS;
	}
	if (len > bound - t->off)	/* stop at the mark: a short read */
		len = (size_t)(bound - t->off);
	*err = pread_all(fd, buf, len, t->off, done);
	t->off += *done;
	return *err ? ERROR_IO_DEVICE : ERROR_SUCCESS;
}

uint32_t tape_write(struct tape *t, int fd, const uint8_t *buf, size_t len,
		    size_t *done, int *err)
{
	cut_here(t);
	*err = pwrite_all(fd, buf, len, t->off, done);
	t->off += *done;
	t->end = t->off;
	if (!*err)
		return ERROR_SUCCESS;
	if (*err == ENOSPC || *err == EDQUOT || *err == EFBIG)
		return ERROR_DISK_FULL;
	return ERROR_IO_DEVICE;
}

uint32_t tape_write_mark(struct tape *t)
{
	uint64_t *m;

	cut_here(t);
	if (t->nmarks == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;

		m = realloc(t->mark, cap * sizeof(*m));
		if (!m)
			return ERROR_IO_DEVICE;
		t->mark = m;
		t->cap = cap;
	}
	t->mark[t->nmarks++] = t->off;
	t->mk = t->nmarks;
	return ERROR_SUCCESS;
}

void tape_rewind(struct tape *t)
{
	t->off = 0;
	t->mk = 0;
}

/*
 * Forward: just past the count-th mark ahead (past the end: at the end of
 * data, ERROR_NO_DATA_DETECTED).  Backward (VDF_ReversePosition): just
 * before the count-th mark behind, on its beginning-of-tape side (past the
 * start: at the start, ERROR_BEGINNING_OF_MEDIA).
 */
uint32_t tape_skip_marks(struct tape *t, int32_t count)
{
	uint64_t c;

	if (count > 0) {
		c = (uint64_t)count;
		if (t->mk + c > t->nmarks) {
			t->mk = t->nmarks;
			t->off = t->end;
			return ERROR_NO_DATA_DETECTED;
		}
		t->mk += (size_t)c;
		t->off = t->mark[t->mk - 1];
	} else if (count < 0) {
		c = (uint64_t)-(int64_t)count;
		if (c > t->mk) {
			tape_rewind(t);
			return ERROR_BEGINNING_OF_MEDIA;
		}
		t->mk -= (size_t)c;
		t->off = t->mark[t->mk];
	}
	return ERROR_SUCCESS;
}

/* Blocks within the current file; meeting a mark passes it and stops. */
uint32_t tape_skip_blocks(struct tape *t, int32_t count)
{
	uint64_t c, bound, want;

	if (count > 0) {
		c = (uint64_t)count * t->block;
		bound = seg_end(t, t->mk);
		if (t->off + c <= bound) {
			t->off += c;
			return ERROR_SUCCESS;
		}
		t->off = bound;
		if (t->mk < t->nmarks) {
			t->mk++;
			return ERROR_FILEMARK_DETECTED;
		}
		return ERROR_NO_DATA_DETECTED;
	}
	if (count < 0) {
		c = (uint64_t)-(int64_t)count * t->block;
		bound = seg_start(t, t->mk);
		want = t->off >= c ? t->off - c : 0;
		if (want >= bound && t->off >= c) {
			t->off = want;
			return ERROR_SUCCESS;
		}
		t->off = bound;
		if (t->mk) {		/* onto the mark's near side */
			t->mk--;
			return ERROR_FILEMARK_DETECTED;
		}
		return ERROR_BEGINNING_OF_MEDIA;
	}
	return ERROR_SUCCESS;
}

uint32_t tape_set_position(struct tape *t, uint64_t addr, uint64_t *now)
{
	uint64_t a = 0, len, nb;
	size_t j;

	for (j = 0; j <= t->nmarks; j++) {
		len = seg_end(t, j) - seg_start(t, j);
		nb = blocks(t, len);
		if (addr <= a + nb) {
			t->mk = j;
			t->off = seg_start(t, j) +
				 ((addr - a) * t->block < len ?
				  (addr - a) * t->block : len);
			*now = tape_position(t);
			return ERROR_SUCCESS;
		}
		a += nb + 1;
	}
	/* beyond the recorded data: at its end */
	t->mk = t->nmarks;
	t->off = t->end;
	*now = tape_position(t);
	return ERROR_NO_DATA_DETECTED;
}
