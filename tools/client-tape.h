/* SPDX-License-Identifier: GPL-2.0 */
/*
 * client-tape - the tape that vdi-client --tape emulates in a file.
 *
 * A tape-like VDI client (VDF_LikeTape) must keep filemarks, rewind, skip
 * marks and blocks, and name positions as block addresses.  Its medium here
 * is one file per device:
 *
 *     the data bytes, as written, without the marks
 *     the mark index: one u64 per filemark, the data offset it sits at
 *     a 32-byte footer:  0 "VDITAPE1"   8 u64 data length
 *                       16 u64 marks   24 u64 mx64 of bytes 8..23 and the
 *                                         index (it catches a damaged tail)
 *
 * all little-endian.  The data stays a plain copy of what the engine wrote,
 * the index costs 8 bytes a mark, and the file is one file, renamed into
 * place in one step like the pipe and disk files.  It is written when the
 * backup is committed; a restore reads it first and refuses a file without
 * a valid footer.
 *
 * Positions follow a tape: (data offset, marks passed).  Writing data or a
 * mark drops everything after the position, as on a real tape.  Moving
 * forward onto a mark (Read, SkipBlocks) passes it and reports
 * ERROR_FILEMARK_DETECTED; the end of the recorded data is
 * ERROR_NO_DATA_DETECTED.  A block address counts every block of data and
 * every mark as one (as LTO drives do): offset / block size + marks passed.
 */
#ifndef VDI_TOOLS_CLIENT_TAPE_H
#define VDI_TOOLS_CLIENT_TAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAPE_MAGIC	"VDITAPE1"
#define TAPE_FOOTER	32U

/* winerror.h's value: SkipMarks / SkipBlocks backwards past the start. */
#ifndef ERROR_BEGINNING_OF_MEDIA
#define ERROR_BEGINNING_OF_MEDIA	1102
#endif

struct tape {
	uint64_t *mark;		/* data offset of each filemark, in order */
	size_t nmarks, cap;
	uint64_t end;		/* bytes of data recorded */
	uint64_t off;		/* the position: data offset ... */
	size_t mk;		/* ... and marks passed */
	uint32_t block;		/* the set's block size: the address unit */
};

void tape_init(struct tape *t, uint32_t block);
void tape_free(struct tape *t);

/*
 * The medium in @fd (a restore): read and check the footer and index.
 * 0, or -1 with the reason in @why.
 */
int tape_load(struct tape *t, int fd, char *why, size_t whylen);
/* Does @fd end in a tape footer?  (A pipe/disk restore of a tape file.) */
bool tape_file_is_tape(int fd);
/* The backup's end: cut @fd at the data's end and append index + footer.
 * 0 or an errno. */
int tape_save(const struct tape *t, int fd);

/*
 * The commands.  Each returns the Win32 completion code; an I/O error of
 * the file is ERROR_IO_DEVICE (ERROR_DISK_FULL when out of space) with
 * its errno in *err (else 0).
 */
uint32_t tape_read(struct tape *t, int fd, uint8_t *buf, size_t len,
		   size_t *done, int *err);
uint32_t tape_write(struct tape *t, int fd, const uint8_t *buf, size_t len,
		    size_t *done, int *err);
uint32_t tape_write_mark(struct tape *t);
void tape_rewind(struct tape *t);
uint32_t tape_skip_marks(struct tape *t, int32_t count);
uint32_t tape_skip_blocks(struct tape *t, int32_t count);
uint64_t tape_position(const struct tape *t);
/* Move to a block address GetPosition gave; *now is where it ended. */
uint32_t tape_set_position(struct tape *t, uint64_t addr, uint64_t *now);

#endif /* VDI_TOOLS_CLIENT_TAPE_H */
