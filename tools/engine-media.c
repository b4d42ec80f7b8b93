// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine's feature sets: the commands each kind of client gets around
 * the data, for what it declared in VDConfig.features (VDI spec 3.3, 8, 9),
 * modelled on what SQL Server sends.  tools/README.md has the table.
 *
 *   pipe-like (0)        header, data: sequential Write / Read
 *                        backup end: Flush, then VDC_Complete if granted
 *   disk-like            the same, each transfer carrying its byte position
 *   (VDF_RandomAccess)   (the client truncates at the last write at Flush)
 *   tape-like            backup: Rewind; header; WriteMark; GetPosition;
 *   (VDF_FileMarks, as   data; WriteMark; GetPosition; Flush; Rewind;
 *   in VDF_LikeTape)     VDC_Complete if granted
 *                        restore: Rewind; Read the header; SkipMarks 1;
 *                        GetPosition; Read until ERROR_FILEMARK_DETECTED;
 *                        ClearError; GetPosition; Rewind
 *
 * So a tape holds two files, each ended by a filemark: the header block,
 * then the device's share of the stream.  The block addresses are the
 * device's own (VDI: only values it returned are meaningful); we check that
 * they grow across the data and report them with -v.  SQL Server writes MTF
 * instead, which needs the addresses for its catalog; ours needs only the
 * marks.  VDC_Complete (granted when the client asked for
 * VDF_RequestComplete, backups only) is the last command of each device:
 * the client hardens the backup, or fails it.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>

#include "engine.h"

static int64_t data_pos[LIBVDI_MAX_DEVICES];	/* where the data began */

const char *media_name(void)
{
	return V.tape ? "tape-like (marks)" : V.disk ?
	       "disk-like (positions)" : "pipe-like";
}

/* One control command on every open device, waited for. */
static int each(int32_t code, uint32_t size, const char *what)
{
	unsigned int d;

	for (d = 0; d < opt.ndev; d++)
		if (!V.closed[d] && run_one(d, code, size, 0, what) < 0)
			return -1;
	return 0;
}

/* GetPosition on every open device: into @pos (the device's address). */
static int positions(int64_t *pos)
{
	unsigned int d;

	for (d = 0; d < opt.ndev; d++) {
		if (V.closed[d])
			continue;
		if (run_one(d, VDC_GetPosition, 0, 0, "GetPosition") < 0)
			return -1;
		pos[d] = V.ctl[d].cmd.outPosition;
	}
	return 0;
}

/*
 * The data ran from data_pos to @end on each device: a backup's must have
 * moved on (at least its mark was written); a restore's may not have gone
 * back (a device may hold no chunk of a short stream, or not be read past
 * the end of it).
 */
static int check_moved(const int64_t *end, bool backup)
{
	unsigned int d;

	for (d = 0; d < opt.ndev; d++) {
		if (V.closed[d])
			continue;
		verbose("device '%s': data from block address %" PRId64
			" to %" PRId64, opt.dev_name[d], data_pos[d], end[d]);
		if (end[d] < data_pos[d] || (backup && end[d] == data_pos[d])) {
			msg("device '%s': GetPosition says %" PRId64 " after "
			    "the data, %" PRId64 " before it: the client's "
			    "positions do not move with the data",
			    opt.dev_name[d], end[d], data_pos[d]);
			return -1;
		}
	}
	return 0;
}

/* ClearError on every device a command failed on (spec 5.2). */
static int clear_errors(void)
{
	unsigned int d;
	bool err;

	for (d = 0; d < opt.ndev; d++) {
		pthread_mutex_lock(&V.lock);
		err = V.dev_error[d];
		pthread_mutex_unlock(&V.lock);
		if (!err || V.closed[d])
			continue;
		if (run_one(d, VDC_ClearError, 0, 0, "ClearError") < 0)
			return -1;
		pthread_mutex_lock(&V.lock);
		V.dev_error[d] = false;
		pthread_mutex_unlock(&V.lock);
	}
	return 0;
}

/* ================================================================ backup */
int media_backup_begin(void)
{
	/* T-SQL's FORMAT / INIT on a tape: start from its beginning */
	return V.tape ? each(VDC_Rewind, 0, "Rewind") : 0;
}

int media_backup_data(void)
{
	if (!V.tape)
		return 0;
	/* the header is a file of its own; the data begins after its mark */
	if (each(VDC_WriteMark, 0, "WriteMark") < 0)
		return -1;
	return positions(data_pos);
}

int media_backup_end(void)
{
	int64_t end[LIBVDI_MAX_DEVICES];

	if (V.tape) {		/* the data's own mark ends the backup set */
		if (each(VDC_WriteMark, 0, "WriteMark") < 0 ||
		    positions(end) < 0 || check_moved(end, true) < 0)
			return -1;
	}
	/* everything is written: the client makes it durable at Flush */
	if (each(VDC_Flush, 0, "Flush") < 0)
		return -1;
	/* T-SQL's default REWIND: leave a tape at its beginning */
	if (V.tape && each(VDC_Rewind, 0, "Rewind") < 0)
		return -1;
	/* the last word: the client may still fail the backup here */
	if (V.complete && each(VDC_Complete, 0, "completing the backup") < 0)
		return -1;
	return 0;
}

/* ================================================================ restore */
int media_restore_begin(void)
{
	return V.tape ? each(VDC_Rewind, 0, "Rewind") : 0;
}

int media_restore_data(void)
{
	if (!V.tape)
		return 0;
	/* past the header's mark, to the data's first block */
	if (each(VDC_SkipMarks, 1, "SkipMarks") < 0)
		return -1;
	return positions(data_pos);
}

int media_restore_end(void)
{
	int64_t end[LIBVDI_MAX_DEVICES];

	if (!V.tape)
		return 0;
	/* the reads that met the data's mark left their devices in
	 * IO-ERROR: clear it, see where we are, rewind */
	if (clear_errors() < 0 || positions(end) < 0 ||
	    check_moved(end, false) < 0)
		return -1;
	return each(VDC_Rewind, 0, "Rewind");
}
