// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the client role (IClientVirtualDeviceSet2, IClientVirtualDevice).
 *
 * The set object may be used from any thread (@lock); each device is driven
 * by one thread at a time, as VDI's process model says.  A VDC_Command the
 * client gets is the first member of a record that remembers the module's
 * tag; CompleteCommand accepts only records this device handed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct vdi_cmd_rec {
	VDC_Command cmd;		/* first: the pointer the client sees */
	uint64_t tag;
	struct vdi_cmd_rec *next;	/* on the spare list */
	bool held;			/* handed to the client */
};

/* Records live in chunks, so a VDC_Command* is checked by address. */
#define VDI_REC_CHUNK	64
struct vdi_rec_chunk {
	struct vdi_rec_chunk *next;
	struct vdi_cmd_rec recs[VDI_REC_CHUNK];
};

struct vdi_client_device {
	vdi_client_set *set;
	int fd;
	bool ended;			/* GetCommand said VD_E_CLOSE */
	struct vdi_rec_chunk *chunks;
	struct vdi_cmd_rec *spare;	/* records not held */
	unsigned int nspare;
	unsigned int nheld;		/* commands the client holds */
	struct vdi_spin spin;		/* GetCommand's */
};

struct vdi_client_set {
	pthread_mutex_t lock;		/* protects everything below */
	int fd;				/* -1: no set (DNE) */
	bool secondary;
	bool configured;		/* GetConfiguration succeeded */
	unsigned int mode;		/* vdi_client_set_access() */
	int gid;
	struct vdi_area area;
	unsigned int ndevs;
	vdi_client_device *devs[VDI_MAX_DEVICES];
};

VDI_EXPORT vdi_client_set *vdi_client_set_new(void)
{
	vdi_client_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	pthread_mutex_init(&set->lock, NULL);
	set->fd = -1;
	set->gid = -1;
	return set;
}

VDI_EXPORT int vdi_client_set_access(vdi_client_set *set, unsigned int mode,
				     int gid)
{
	int ret = NOERROR;

	if (!set || mode & ~0666U)
		return vdi_fail(VD_E_INVALID, "SetAccess: mode must be rw bits");
	pthread_mutex_lock(&set->lock);
	if (set->fd >= 0) {
		ret = vdi_fail(VD_E_PROTOCOL, "SetAccess: only before Create");
	} else {
		set->mode = mode;
		set->gid = gid;
	}
	pthread_mutex_unlock(&set->lock);
	return ret;
}

VDI_EXPORT int vdi_client_create_ex(vdi_client_set *set, const char *instance,
				    const char *name, VDConfig *cfg)
{
	struct vdi_create arg = { 0 };
	int fd, ret;

	if (!set || !name || !cfg || strlen(name) >= sizeof(arg.name))
		return vdi_fail(VD_E_INVALID, "Create: bad argument");
	ret = vdi_check_instance(instance);
	if (ret)
		return ret;
	strcpy(arg.name, name);
	memcpy(&arg.config, cfg, sizeof(arg.config));

	pthread_mutex_lock(&set->lock);
	if (set->fd >= 0) {
		ret = vdi_fail(VD_E_PROTOCOL, "Create: this object already "
			       "has a set; Close it first");
		goto out_unlock;
	}
	arg.mode = set->mode;
	if (set->gid >= 0) {
		arg.flags = VDI_CREATE_GID;
		arg.gid = set->gid;
	}
	ret = vdi_open_node(&fd);
	if (ret)
		goto out_unlock;
	if (ioctl(fd, VDI_IOC_CREATE, &arg) < 0) {
		if (errno == EEXIST)
			ret = vdi_fail(VD_E_PROTOCOL, "Create: a set named "
				       "'%s' already exists", name);
		else
			ret = vdi_from_errno(errno, "Create");
		close(fd);
		goto out_unlock;
	}
	set->fd = fd;
	set->secondary = false;
	set->configured = false;
out_unlock:
	pthread_mutex_unlock(&set->lock);
	return ret;
}

VDI_EXPORT int vdi_client_create(vdi_client_set *set, const char *name,
				 VDConfig *cfg)
{
	return vdi_client_create_ex(set, NULL, name, cfg);
}

/*
 * Milliseconds left of a wait of @timeout ms begun at @start (vdi_now_us()),
 * rounded up: however often it is resumed, the wait is never shorter.
 */
static int64_t vdi_left(int64_t timeout, uint64_t start)
{
	int64_t left;

	if (timeout < 0)
		return timeout;
	left = timeout * 1000 - (int64_t)(vdi_now_us() - start);
	return left > 0 ? (left + 999) / 1000 : 0;
}

static int vdi_client_read_config(vdi_client_set *set, int64_t timeout,
				  VDConfig *cfg)
{
	struct vdi_get_config arg = { 0 };
	uint64_t start = vdi_now_us();

	timeout = vdi_timeout(timeout);
	for (;;) {
		arg.timeout_ms = vdi_left(timeout, start);
		if (ioctl(set->fd, VDI_IOC_GET_CONFIG, &arg) == 0)
			break;
		if (errno != EINTR)
			return vdi_from_errno(errno, "GetConfiguration");
	}
	memcpy(cfg, &arg.config, sizeof(*cfg));
	return NOERROR;
}

/* Map the area once the configuration is final; the caller holds @lock. */
static int vdi_client_map(vdi_client_set *set, const VDConfig *cfg)
{
	if (set->area.base || !cfg->bufferAreaSize)
		return NOERROR;
	return vdi_area_map(&set->area, set->fd, cfg->bufferAreaSize);
}

VDI_EXPORT int vdi_client_get_configuration(vdi_client_set *set,
					    int64_t timeout, VDConfig *cfg)
{
	VDConfig got;
	int fd, ret;

	if (!set || !cfg)
		return vdi_fail(VD_E_INVALID, "GetConfiguration: NULL argument");
	pthread_mutex_lock(&set->lock);
	fd = set->fd;
	pthread_mutex_unlock(&set->lock);
	if (fd < 0)
		return vdi_fail(VD_E_PROTOCOL, "GetConfiguration: no set");

	/* Wait without the lock: other threads may SignalAbort meanwhile. */
	ret = vdi_client_read_config(set, timeout, &got);
	if (ret)
		return ret;
	pthread_mutex_lock(&set->lock);
	ret = vdi_client_map(set, &got);
	if (!ret)
		set->configured = true;
	pthread_mutex_unlock(&set->lock);
	if (!ret)
		*cfg = got;
	return ret;
}

VDI_EXPORT int vdi_client_open_device(vdi_client_set *set, const char *name,
				      vdi_client_device **out)
{
	struct vdi_open_device arg = { .flags = O_CLOEXEC };
	vdi_client_device *dev;
	int fd, ret;

	if (!set || !out || !name || strlen(name) >= sizeof(arg.name))
		return vdi_fail(VD_E_INVALID, "OpenDevice: bad argument");
	*out = NULL;
	strcpy(arg.name, name);
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return vdi_fail(VD_E_MEMORY, "OpenDevice: no memory");

	pthread_mutex_lock(&set->lock);
	if (set->fd < 0) {
		ret = vdi_fail(VD_E_PROTOCOL, "OpenDevice: no set");
		goto out_unlock;
	}
	fd = ioctl(set->fd, VDI_IOC_OPEN_DEVICE, &arg);
	if (fd < 0) {
		if (errno == ENOENT)
			ret = vdi_fail(VD_E_INVALID, "OpenDevice: '%s' is not "
				       "a device of this set", name);
		else
			ret = vdi_from_errno(errno, "OpenDevice");
		goto out_unlock;
	}
	dev->set = set;
	dev->fd = fd;
	set->devs[set->ndevs++] = dev;
	pthread_mutex_unlock(&set->lock);
	*out = dev;
	return NOERROR;

out_unlock:
	pthread_mutex_unlock(&set->lock);
	free(dev);
	return ret;
}

/* Make sure @n spare records exist; false when memory ran out. */
static bool vdi_recs_reserve(vdi_client_device *dev, unsigned int n)
{
	struct vdi_rec_chunk *chunk;
	unsigned int i;

	while (dev->nspare < n) {
		chunk = calloc(1, sizeof(*chunk));
		if (!chunk)
			return false;
		chunk->next = dev->chunks;
		dev->chunks = chunk;
		for (i = 0; i < VDI_REC_CHUNK; i++) {
			chunk->recs[i].next = dev->spare;
			dev->spare = &chunk->recs[i];
		}
		dev->nspare += VDI_REC_CHUNK;
	}
	return true;
}

static struct vdi_cmd_rec *vdi_rec_take(vdi_client_device *dev)
{
	struct vdi_cmd_rec *rec = dev->spare;

	dev->spare = rec->next;
	dev->nspare--;
	dev->nheld++;
	rec->held = true;
	return rec;
}

static void vdi_rec_put(vdi_client_device *dev, struct vdi_cmd_rec *rec)
{
	rec->held = false;
	rec->next = dev->spare;
	dev->spare = rec;
	dev->nspare++;
	dev->nheld--;
}

/* The held record behind a command pointer, or NULL for any other pointer. */
static struct vdi_cmd_rec *vdi_rec_lookup(vdi_client_device *dev,
					  const VDC_Command *cmd)
{
	uintptr_t p = (uintptr_t)cmd, base;
	struct vdi_rec_chunk *chunk;
	struct vdi_cmd_rec *rec;

	for (chunk = dev->chunks; chunk; chunk = chunk->next) {
		base = (uintptr_t)chunk->recs;
		if (p < base || p >= (uintptr_t)(chunk->recs + VDI_REC_CHUNK) ||
		    (p - base) % sizeof(*rec))
			continue;
		rec = &chunk->recs[(p - base) / sizeof(*rec)];
		return rec->held ? rec : NULL;
	}
	return NULL;
}

#define VDI_CLIENT_BATCH 64

VDI_EXPORT int vdi_client_get_commands(vdi_client_device *dev, int64_t timeout,
				       VDC_Command **cmds, unsigned int max,
				       unsigned int *count)
{
	struct vdi_command c[VDI_CLIENT_BATCH];
	struct vdi_batch b = { .entries = (uintptr_t)c };
	struct vdi_cmd_rec *rec;
	uint64_t start;
	int i, n;

	if (!dev || !cmds || !count || !max)
		return vdi_fail(VD_E_INVALID, "GetCommand: bad argument");
	*count = 0;
	b.count = max < VDI_CLIENT_BATCH ? max : VDI_CLIENT_BATCH;
	/* Records first: commands the module hands out must have a home. */
	if (!vdi_recs_reserve(dev, b.count))
		return vdi_fail(VD_E_MEMORY, "GetCommand: no memory");
	timeout = vdi_timeout(timeout);
	start = timeout > 0 ? vdi_now_us() : 0;
	b.timeout_ms = timeout;
	n = vdi_spin_ioctl(dev->fd, VDI_IOC_GET_COMMANDS, &b, &dev->spin);
	while (!n) {
		b.timeout_ms = vdi_left(timeout, start);
		n = ioctl(dev->fd, VDI_IOC_GET_COMMANDS, &b);
		if (n < 0 && errno == EINTR)
			n = 0;
	}
	if (n <= 0) {
		if (errno == ESHUTDOWN)
			dev->ended = true;
		return vdi_from_errno(errno, "GetCommand");
	}

	for (i = 0; i < n; i++) {
		rec = vdi_rec_take(dev);
		rec->tag = c[i].tag;
		rec->cmd.commandCode = (int32_t)c[i].code;
		rec->cmd.size = (int32_t)c[i].size;
		rec->cmd.position = c[i].position;
		rec->cmd.buffer = c[i].buf_offset == VDI_NO_BUFFER ? NULL :
				  dev->set->area.base + c[i].buf_offset;
		cmds[i] = &rec->cmd;
	}
	*count = n;
	return NOERROR;
}

VDI_EXPORT int vdi_client_get_command(vdi_client_device *dev, int64_t timeout,
				      VDC_Command **out)
{
	unsigned int n;

	if (out)
		*out = NULL;
	return vdi_client_get_commands(dev, timeout, out, 1, &n);
}

VDI_EXPORT int vdi_client_complete_commands(vdi_client_device *dev,
					    const vdi_client_completion *c,
					    unsigned int count,
					    unsigned int *done)
{
	struct vdi_cmd_rec *recs[VDI_CLIENT_BATCH];
	struct vdi_done d[VDI_CLIENT_BATCH];
	struct vdi_batch b = { .entries = (uintptr_t)d };
	unsigned int chunk, i, j;
	int n, err, ret = NOERROR;

	if (!dev || !done || (!c && count))
		return vdi_fail(VD_E_INVALID, "CompleteCommand: bad argument");
	*done = 0;
	while (*done < count && !ret) {
		chunk = count - *done;
		if (chunk > VDI_CLIENT_BATCH)
			chunk = VDI_CLIENT_BATCH;
		/* Unmark each record as we go: a command named twice fails. */
		for (i = 0; i < chunk; i++) {
			recs[i] = vdi_rec_lookup(dev, c[*done + i].cmd);
			if (!recs[i]) {
				ret = vdi_fail(VD_E_INVALID, "CompleteCommand: "
					       "not a command this device "
					       "handed out, or completed "
					       "already");
				break;
			}
			recs[i]->held = false;
			d[i].tag = recs[i]->tag;
			d[i].completion_code = c[*done + i].completionCode;
			d[i].bytes_transferred = c[*done + i].bytesTransferred;
			d[i].position = c[*done + i].position;
		}
		if (!i)
			break;
		b.count = i;
		n = ioctl(dev->fd, VDI_IOC_COMPLETE, &b);
		if (n < 0) {
			/* A bad byte count leaves the command held; anything
			 * else means it is gone (aborted): drop its record. */
			err = errno;
			if (err == EINVAL)
				recs[0]->held = true;
			else
				vdi_rec_put(dev, recs[0]);
			for (j = 1; j < i; j++)
				recs[j]->held = true;
			ret = vdi_from_errno(err, "CompleteCommand");
			break;
		}
		for (j = 0; j < (unsigned int)n; j++)
			vdi_rec_put(dev, recs[j]);
		/* Stopped early: retry from there to learn why (a lookup
		 * failure further on is found again then). */
		for (j = n; j < i; j++)
			recs[j]->held = true;
		if ((unsigned int)n < i)
			ret = NOERROR;
		*done += n;
	}
	return ret;
}

VDI_EXPORT int vdi_client_complete_command(vdi_client_device *dev,
					   VDC_Command *cmd,
					   uint32_t completion_code,
					   uint32_t bytes_transferred,
					   int64_t position)
{
	vdi_client_completion c = {
		.cmd = cmd,
		.completionCode = completion_code,
		.bytesTransferred = bytes_transferred,
		.position = position,
	};
	unsigned int done;

	if (!cmd)
		return vdi_fail(VD_E_INVALID, "CompleteCommand: NULL argument");
	return vdi_client_complete_commands(dev, &c, 1, &done);
}

VDI_EXPORT int vdi_client_signal_abort(vdi_client_set *set)
{
	int ret = NOERROR;

	if (!set)
		return vdi_fail(VD_E_INVALID, "SignalAbort: NULL set");
	pthread_mutex_lock(&set->lock);
	if (set->fd < 0)
		ret = vdi_fail(VD_E_PROTOCOL, "SignalAbort: no set");
	else if (ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 }))
		ret = vdi_from_errno(errno, "SignalAbort");
	pthread_mutex_unlock(&set->lock);
	return ret;
}

static void vdi_client_device_free(vdi_client_device *dev)
{
	struct vdi_rec_chunk *chunk, *next;

	close(dev->fd);
	for (chunk = dev->chunks; chunk; chunk = next) {
		next = chunk->next;
		free(chunk);
	}
	free(dev);
}

VDI_EXPORT int vdi_client_close(vdi_client_set *set)
{
	bool open = false;
	unsigned int i;

	if (!set)
		return vdi_fail(VD_E_INVALID, "Close: NULL set");
	pthread_mutex_lock(&set->lock);
	if (set->fd < 0) {
		pthread_mutex_unlock(&set->lock);
		return vdi_fail(VD_E_PROTOCOL, "Close: no set");
	}
	/* A device still in use, or with commands not completed, is open. */
	for (i = 0; i < set->ndevs; i++)
		open |= !set->devs[i]->ended || set->devs[i]->nheld;
	if (open)
		ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 });
	for (i = 0; i < set->ndevs; i++)
		vdi_client_device_free(set->devs[i]);
	set->ndevs = 0;
	vdi_area_unmap(&set->area);
	close(set->fd);
	set->fd = -1;
	set->configured = false;
	pthread_mutex_unlock(&set->lock);
	if (open)
		return vdi_fail(VD_E_OPEN, "Close: devices were still open; "
				"the set was aborted");
	return NOERROR;
}

VDI_EXPORT void vdi_client_set_free(vdi_client_set *set)
{
	if (!set)
		return;
	if (set->fd >= 0)
		vdi_client_close(set);
	pthread_mutex_destroy(&set->lock);
	free(set);
}

VDI_EXPORT int vdi_client_open_in_secondary_ex(vdi_client_set *set,
					       const char *instance,
					       const char *name)
{
	struct vdi_open arg = { 0 };
	VDConfig cfg;
	int fd, ret;

	if (!set || !name || strlen(name) >= sizeof(arg.name))
		return vdi_fail(VD_E_INVALID, "OpenInSecondary: bad argument");
	ret = vdi_check_instance(instance);
	if (ret)
		return ret;
	strcpy(arg.name, name);

	pthread_mutex_lock(&set->lock);
	if (set->fd >= 0) {
		ret = vdi_fail(VD_E_PROTOCOL, "OpenInSecondary: this object "
			       "already has a set");
		goto out_unlock;
	}
	ret = vdi_open_node(&fd);
	if (ret)
		goto out_unlock;
	if (ioctl(fd, VDI_IOC_OPEN_SECONDARY, &arg) < 0) {
		if (errno == ENOENT || errno == EPROTO)
			ret = vdi_fail(VD_E_PROTOCOL, "OpenInSecondary: no set "
				       "'%s' ready for secondaries", name);
		else
			ret = vdi_from_errno(errno, "OpenInSecondary");
		close(fd);
		goto out_unlock;
	}
	set->fd = fd;
	set->secondary = true;
	ret = vdi_client_read_config(set, 0, &cfg);
	if (!ret)
		ret = vdi_client_map(set, &cfg);
	if (ret) {
		close(fd);
		set->fd = -1;
		goto out_unlock;
	}
	set->configured = true;
out_unlock:
	pthread_mutex_unlock(&set->lock);
	return ret;
}

VDI_EXPORT int vdi_client_open_in_secondary(vdi_client_set *set,
					    const char *name)
{
	return vdi_client_open_in_secondary_ex(set, NULL, name);
}

VDI_EXPORT int vdi_client_get_buffer_handle(vdi_client_set *set,
					    const uint8_t *buffer,
					    unsigned int *handle)
{
	int ret = NOERROR;

	if (!set || !handle)
		return vdi_fail(VD_E_INVALID, "GetBufferHandle: NULL argument");
	pthread_mutex_lock(&set->lock);
	if (set->fd < 0)
		ret = vdi_fail(VD_E_PROTOCOL, "GetBufferHandle: no set");
	else if (!buffer || !vdi_area_holds(&set->area, buffer, 1))
		ret = vdi_fail(VD_E_INVALID, "GetBufferHandle: not in the "
			       "set's buffer area");
	else
		*handle = (unsigned int)(buffer - set->area.base);
	pthread_mutex_unlock(&set->lock);
	return ret;
}

VDI_EXPORT int vdi_client_map_buffer_handle(vdi_client_set *set,
					    unsigned int handle,
					    uint8_t **buffer)
{
	int ret = NOERROR;

	if (!set || !buffer)
		return vdi_fail(VD_E_INVALID, "MapBufferHandle: NULL argument");
	pthread_mutex_lock(&set->lock);
	if (set->fd < 0)
		ret = vdi_fail(VD_E_PROTOCOL, "MapBufferHandle: no set");
	else if (handle >= set->area.size)
		ret = vdi_fail(VD_E_INVALID, "MapBufferHandle: handle %u is "
			       "outside the buffer area", handle);
	else
		*buffer = set->area.base + handle;
	pthread_mutex_unlock(&set->lock);
	return ret;
}
