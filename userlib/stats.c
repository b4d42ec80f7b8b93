// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the module's figures (API 1.2, VDI_FEAT_STATS).  The sets a caller
 * may see, a snapshot of one, an administrator's abort, and the verdict on
 * which side is the slow one.  None of this loads the module: a tool that
 * only looks must not change what it looks at.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

#define VDI_NODE	"/dev/" VDI_DEVICE_NAME

/*
 * vdi_stats embeds the module's structs, and LIBVDI_1.3's functions write
 * them as API 1.2 laid them out, into programs built then.  Should the
 * structs grow, these fail the build: the larger figures need entry points
 * of a new symbol version, and these must keep writing the 1.2 sizes.
 */
_Static_assert(sizeof(struct vdi_set_stats) == VDI_SET_STATS_SIZE_VER0,
	       "struct vdi_set_stats grew: new versioned libvdi functions");
_Static_assert(sizeof(struct vdi_dev_stats) == VDI_DEV_STATS_SIZE_VER0,
	       "struct vdi_dev_stats grew: new versioned libvdi functions");

/* Under this much shared time, or before a completion, there is no verdict. */
#define VDI_VERDICT_MIN_NS	10000000ULL	/* 10 ms */
/* Busy shares at or past these blame one side; between them, balanced. */
#define VDI_VERDICT_CLIENT_PCT	60
#define VDI_VERDICT_ENGINE_PCT	40

/* /dev/vdi without loading anything: VD_E_NOTOPEN when the module is not
 * there, VD_E_SECURITY when the node is not the caller's to open. */
static int vdi_stats_open(int *fd, const char *what)
{
	*fd = open(VDI_NODE, O_RDWR | O_CLOEXEC);
	if (*fd >= 0)
		return NOERROR;
	if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
		return vdi_fail(VD_E_NOTOPEN, "%s: %s: the vdi module is not "
				"loaded", what, VDI_NODE);
	if (errno == EACCES || errno == EPERM)
		return vdi_fail(VD_E_SECURITY, "%s: %s: %s", what, VDI_NODE,
				strerror(errno));
	return vdi_from_errno(errno, what);
}

/* What SET_STATS's errnos mean when the caller named a set by id. */
static int vdi_stats_errno(int err, uint64_t id, const char *what)
{
	switch (err) {
	case ENOENT:
		return vdi_fail(VD_E_INVALID, "%s: no set with id %llu here",
				what, (unsigned long long)id);
	case EPERM:
		return vdi_fail(VD_E_SECURITY, "%s: set %llu is another "
				"user's", what, (unsigned long long)id);
	case ENOTTY:
		return vdi_fail(VD_E_NOTSUPPORTED, "%s: the loaded vdi module "
				"has no figures (API 1.2 needed)", what);
	default:
		return vdi_from_errno(err, what);
	}
}

int vdi_stats_read(int fd, uint64_t id, vdi_stats *st, const char *what)
{
	struct vdi_stats_req req = {
		.id = id,
		.set = (uintptr_t)&st->set,
		.devs = (uintptr_t)st->devs,
		.set_size = sizeof(st->set),
		.dev_size = sizeof(st->devs[0]),
		.dev_count = LIBVDI_MAX_DEVICES,
	};

	memset(st, 0, sizeof(*st));
	if (ioctl(fd, VDI_IOC_SET_STATS, &req) < 0)
		return vdi_stats_errno(errno, id, what);
	st->ndevs = req.dev_count;
	return NOERROR;
}

VDI_EXPORT int vdi_stats_list(uint64_t *ids, unsigned int room,
			      unsigned int *total)
{
	struct vdi_list_sets arg = {
		.ids = (uintptr_t)ids,
		.count = room,
	};
	int fd, ret;

	if (room && !ids)
		return vdi_fail(VD_E_INVALID, "ListSets: NULL ids");
	ret = vdi_stats_open(&fd, "ListSets");
	if (ret)
		return ret;
	if (ioctl(fd, VDI_IOC_LIST_SETS, &arg) < 0)
		ret = vdi_stats_errno(errno, 0, "ListSets");
	close(fd);
	if (ret)
		return ret;
	if (total)
		*total = arg.total;
	return NOERROR;
}

VDI_EXPORT int vdi_stats_get(uint64_t id, vdi_stats *st)
{
	int fd, ret;

	if (!st || !id)
		return vdi_fail(VD_E_INVALID, "GetStats: %s",
				st ? "set id 0" : "NULL stats");
	ret = vdi_stats_open(&fd, "GetStats");
	if (ret)
		return ret;
	ret = vdi_stats_read(fd, id, st, "GetStats");
	close(fd);
	return ret;
}

VDI_EXPORT int vdi_stats_abort(uint64_t id)
{
	struct vdi_abort_set arg = { .id = id };
	int fd, ret;

	if (!id)
		return vdi_fail(VD_E_INVALID, "AbortSet: set id 0");
	ret = vdi_stats_open(&fd, "AbortSet");
	if (ret)
		return ret;
	if (ioctl(fd, VDI_IOC_ABORT_SET, &arg) < 0)
		ret = vdi_stats_errno(errno, id, "AbortSet");
	close(fd);
	return ret;
}

VDI_EXPORT int vdi_stats_verdict(const vdi_stats *st, int dev,
				 vdi_verdict *v)
{
	uint64_t busy = 0, idle = 0, done = 0;
	unsigned int i;

	if (!st || !v || dev >= (int)st->ndevs || dev < -1)
		return vdi_fail(VD_E_INVALID, "Verdict: %s",
				!st || !v ? "NULL argument" : "no such device");
	for (i = 0; i < st->ndevs; i++) {
		if (dev >= 0 && i != (unsigned int)dev)
			continue;
		busy += st->devs[i].client_busy_ns;
		idle += st->devs[i].client_idle_ns;
		done += st->devs[i].completed;
	}
	memset(v, 0, sizeof(*v));
	if (!done || busy + idle < VDI_VERDICT_MIN_NS) {
		v->side = VDI_SIDE_NONE;
		snprintf(v->text, sizeof(v->text),
			 "no verdict yet: too little has moved");
		return NOERROR;
	}
	v->client_pct = (unsigned int)(busy * 100 / (busy + idle));
	if (v->client_pct >= VDI_VERDICT_CLIENT_PCT) {
		v->side = VDI_SIDE_CLIENT;
		snprintf(v->text, sizeof(v->text),
			 "client storage: %u%% of the time the engine waited "
			 "on the client", v->client_pct);
	} else if (v->client_pct <= VDI_VERDICT_ENGINE_PCT) {
		v->side = VDI_SIDE_ENGINE;
		snprintf(v->text, sizeof(v->text),
			 "engine: %u%% of the time the client waited with "
			 "nothing queued", 100 - v->client_pct);
	} else {
		v->side = VDI_SIDE_BALANCED;
		snprintf(v->text, sizeof(v->text),
			 "balanced: the client had work %u%% of the time",
			 v->client_pct);
	}
	return NOERROR;
}
