// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the client role (IClientVirtualDeviceSet2, IClientVirtualDevice).
 *
 * Every call may be made from any thread (docs/LIBRARY.md, Threads): the
 * set's fields are under the set's @lock, a device's records under the
 * device's @lock, and no lock is held across a wait in the module.  A
 * VDC_Command the client gets is the first member of a record that
 * remembers the module's tag; CompleteCommand accepts only records this
 * device handed out.
 *
 * Close must not pull an fd from under a thread that is about to use it
 * (the number could be reused by another open meanwhile): each object
 * counts the threads inside a call that use its fd (@calls), Close marks it
 * closed (new calls get a code, no fd), wakes the waiters (an abort) and
 * waits until @calls is 0 before close().  Device objects are kept, closed,
 * until the set object is freed, so a late call on one gets a code too.
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
	vdi_client_device *next;	/* on the set's list, until set free */
	uint8_t *area;			/* the set's area, as mapped at open */
	pthread_cond_t idle;		/* @calls dropped to 0 while @closed */
	pthread_mutex_t lock;		/* protects everything below */
	int fd;				/* -1 once the set's Close ran */
	unsigned int calls;		/* threads in a call that uses @fd */
	bool closed;			/* the set's Close ran: no new call */
	bool ended;			/* GetCommand said VD_E_CLOSE */
	struct vdi_rec_chunk *chunks;
	struct vdi_cmd_rec *spare;	/* records not held */
	unsigned int nspare;
	unsigned int nreserved;		/* spares promised to GetCommands */
	unsigned int nheld;		/* commands the client holds */
	struct vdi_spin spin;		/* GetCommand's */
	bool has_enter;		/* VDI_IOC_ENTER (API 1.3) */
};

struct vdi_client_set {
	unsigned int generation;	/* vdi_generation() when made */
	pthread_cond_t idle;		/* @calls dropped to 0 while @closing */
	pthread_mutex_t lock;		/* protects everything below */
	int fd;				/* -1: no set (DNE) */
	bool closing;			/* Close is under way: no new call */
	unsigned int calls;		/* threads waiting in GetConfiguration */
	bool secondary;
	bool configured;		/* GetConfiguration succeeded */
	bool has_enter;		/* the module has VDI_IOC_ENTER */
	unsigned int mode;		/* vdi_client_set_access() */
	int gid;
	char name[VDI_NAME_MAX];	/* the set's, for Close's probe */
	struct vdi_area area;
	struct vdi_area retired;	/* the last Close's area, inert now */
	vdi_client_device *devs;	/* every device object, newest first */
};

VDI_EXPORT vdi_client_set *vdi_client_set_new(void)
{
	vdi_client_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	pthread_mutex_init(&set->lock, NULL);
	pthread_cond_init(&set->idle, NULL);
	set->fd = -1;
	set->gid = -1;
	set->generation = vdi_generation();
	return set;
}

/*
 * A fork()ed child's copy of its parent's object: its fds are /dev/null,
 * its area absent (the addresses may be the child's own now), its locks
 * possibly held by threads the child does not have.  Close and free leave
 * it alone (a C++ destructor at the child's exit comes here).
 */
static bool vdi_client_set_foreign(const vdi_client_set *set)
{
	return set->generation != vdi_generation();
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
	uint64_t features;
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
	ret = vdi_open_node(&fd, &features);
	if (ret)
		goto out_unlock;
	if (ioctl(fd, VDI_IOC_CREATE, &arg) < 0) {
		if (errno == EEXIST)
			ret = vdi_fail(VD_E_PROTOCOL, "Create: a set named "
				       "'%s' already exists", name);
		else
			ret = vdi_from_errno(errno, "Create");
		vdi_fd_close(fd);
		goto out_unlock;
	}
	set->fd = fd;
	set->secondary = false;
	set->configured = false;
	set->has_enter = vdi_use_enter(features);
	strcpy(set->name, name);
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
 *
 * @timeout has been through vdi_timeout(): negative (forever) or at most
 * VDI_TIMEOUT_MAX_MS, so the microseconds cannot overflow.
 */
static int64_t vdi_left(int64_t timeout, uint64_t start)
{
	int64_t left;

	if (timeout < 0)
		return timeout;
	left = timeout * 1000 - (int64_t)(vdi_now_us() - start);
	return left > 0 ? (left + 999) / 1000 : 0;
}

static int vdi_client_read_config(int fd, int64_t timeout, VDConfig *cfg)
{
	struct vdi_get_config arg = { 0 };
	uint64_t start = vdi_now_us();

	timeout = vdi_timeout(timeout);
	for (;;) {
		arg.timeout_ms = vdi_left(timeout, start);
		if (ioctl(fd, VDI_IOC_GET_CONFIG, &arg) == 0)
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
	fd = set->closing ? -1 : set->fd;
	if (fd >= 0)
		set->calls++;
	pthread_mutex_unlock(&set->lock);
	if (fd < 0)
		return vdi_fail(VD_E_PROTOCOL, "GetConfiguration: no set");

	/* Wait without the lock: other threads may SignalAbort meanwhile;
	 * @calls keeps Close from closing @fd under us. */
	ret = vdi_client_read_config(fd, timeout, &got);
	pthread_mutex_lock(&set->lock);
	if (!--set->calls && set->closing)
		pthread_cond_broadcast(&set->idle);
	if (!ret && set->closing)
		ret = vdi_fail(VD_E_ABORT, "GetConfiguration: the set was "
			       "closed meanwhile");
	if (!ret)
		ret = vdi_client_map(set, &got);
	if (!ret)
		set->configured = true;
	pthread_mutex_unlock(&set->lock);
	if (!ret)
		*cfg = got;
	return ret;
}

/* No set, or Close is under way; the caller holds @lock. */
static bool vdi_no_set(const vdi_client_set *set)
{
	return set->fd < 0 || set->closing;
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
	if (vdi_no_set(set)) {
		ret = vdi_fail(VD_E_PROTOCOL, "OpenDevice: no set");
		goto out_unlock;
	}
	/* Not before the area is mapped: commands point into it. */
	if (!set->configured) {
		ret = vdi_fail(VD_E_PROTOCOL, "OpenDevice: before "
			       "GetConfiguration succeeded");
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
	vdi_fd_track(fd);
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->idle, NULL);
	dev->fd = fd;
	dev->has_enter = set->has_enter;
	dev->area = set->area.base;
	dev->next = set->devs;
	set->devs = dev;
	pthread_mutex_unlock(&set->lock);
	*out = dev;
	return NOERROR;

out_unlock:
	pthread_mutex_unlock(&set->lock);
	free(dev);
	return ret;
}

/* Make sure @n more spare records exist; false when memory ran out. */
static bool vdi_recs_reserve(vdi_client_device *dev, unsigned int n)
{
	struct vdi_rec_chunk *chunk;
	unsigned int i;

	while (dev->nspare < dev->nreserved + n) {
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
	dev->nreserved += n;
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

/*
 * Enter a call that uses the device's fd: its fd, or -1 when the set's
 * Close ran (the caller answers with a code, touching nothing else).  The
 * caller holds @lock; vdi_dev_leave() ends the call.
 */
static int vdi_dev_enter(vdi_client_device *dev)
{
	if (dev->closed)
		return -1;
	dev->calls++;
	return dev->fd;
}

static void vdi_dev_leave(vdi_client_device *dev)
{
	if (!--dev->calls && dev->closed)
		pthread_cond_broadcast(&dev->idle);
}

#define VDI_CLIENT_BATCH 64

/*
 * After the set's Close: a command the device handed out and the client
 * still held was ended by Close's abort (VD_E_ABORT); any other pointer is
 * VD_E_INVALID.  The caller holds @lock.
 */
static int vdi_complete_closed(vdi_client_device *dev,
			       const vdi_client_completion *c)
{
	struct vdi_cmd_rec *rec = vdi_rec_lookup(dev, c->cmd);

	if (!rec)
		return vdi_fail(VD_E_INVALID, "CompleteCommand: not a command "
				"this device handed out, or completed already");
	vdi_rec_put(dev, rec);
	return vdi_fail(VD_E_ABORT, "CompleteCommand: the set was closed; "
			"the command was aborted");
}

/* GetCommand on a device whose set was closed; the caller holds @lock. */
static int vdi_get_closed(const vdi_client_device *dev)
{
	if (dev->ended)
		return vdi_fail(VD_E_CLOSE, "GetCommand: the device ended, and "
				"its set is closed");
	return vdi_fail(VD_E_ABORT, "GetCommand: the set was closed");
}

/*
 * Hand out @n commands the module gave, each in a record reserved for it;
 * the caller holds @lock.
 */
static void vdi_hand_out(vdi_client_device *dev, const struct vdi_command *c,
			 int n, VDC_Command **cmds)
{
	struct vdi_cmd_rec *rec;
	int i;

	for (i = 0; i < n; i++) {
		rec = vdi_rec_take(dev);
		rec->tag = c[i].tag;
		rec->cmd.commandCode = (int32_t)c[i].code;
		rec->cmd.size = (int32_t)c[i].size;
		rec->cmd.position = c[i].position;
		rec->cmd.buffer = c[i].buf_offset == VDI_NO_BUFFER ? NULL :
				  dev->area + c[i].buf_offset;
		cmds[i] = &rec->cmd;
	}
}

/*
 * GetCommand with the calls of API 1.2: a spin of polls (timeout 0), then
 * a blocking GET_COMMANDS.
 */
static int vdi_client_get_polling(vdi_client_device *dev, int64_t timeout,
				  VDC_Command **cmds, unsigned int max,
				  unsigned int *count)
{
	struct vdi_command c[VDI_CLIENT_BATCH];
	struct vdi_batch b = { .entries = (uintptr_t)c };
	struct vdi_spin spin;
	uint64_t start;
	int n, fd, err = 0;

	b.count = max < VDI_CLIENT_BATCH ? max : VDI_CLIENT_BATCH;

	pthread_mutex_lock(&dev->lock);
	fd = vdi_dev_enter(dev);
	if (fd < 0) {
		n = vdi_get_closed(dev);
		pthread_mutex_unlock(&dev->lock);
		return n;
	}
	/* Records first: commands the module hands out must have a home. */
	if (!vdi_recs_reserve(dev, b.count)) {
		vdi_dev_leave(dev);
		pthread_mutex_unlock(&dev->lock);
		return vdi_fail(VD_E_MEMORY, "GetCommand: no memory");
	}
	spin = dev->spin;
	pthread_mutex_unlock(&dev->lock);

	/* The wait, without the lock: CompleteCommand goes on meanwhile. */
	timeout = vdi_timeout(timeout);
	start = timeout > 0 ? vdi_now_us() : 0;
	b.timeout_ms = timeout;
	n = vdi_spin_ioctl(fd, VDI_IOC_GET_COMMANDS, &b, &spin);
	while (!n) {
		b.timeout_ms = vdi_left(timeout, start);
		n = ioctl(fd, VDI_IOC_GET_COMMANDS, &b);
		if (n < 0 && errno == EINTR)
			n = 0;
	}
	if (n < 0)
		err = errno;

	pthread_mutex_lock(&dev->lock);
	dev->nreserved -= b.count;
	dev->spin = spin;
	if (n > 0 && dev->closed) {
		/* Close aborted the set meanwhile: the buffers are going. */
		n = -1;
		err = ECONNABORTED;
	}
	if (n < 0 && err == ESHUTDOWN)
		dev->ended = true;
	if (n > 0)
		vdi_hand_out(dev, c, n, cmds);
	vdi_dev_leave(dev);
	pthread_mutex_unlock(&dev->lock);
	if (n < 0)
		return vdi_from_errno(err, "GetCommand");
	*count = n;
	return NOERROR;
}

/* Mark the records of completions not applied as held again. */
static void vdi_recs_hold(struct vdi_cmd_rec **recs, unsigned int from,
			  unsigned int to)
{
	for (; from < to; from++)
		recs[from]->held = true;
}

/*
 * One VDI_IOC_ENTER on the device (API 1.3): complete c[0..count-1]
 * (count <= VDI_CLIENT_BATCH), then, with @max not 0, take up to @max
 * commands, waiting up to @timeout for the first after the module's spin.
 * Adds the completions applied to *@done; *@got: the commands handed out.
 * NOERROR; the code of the first completion refused (no command taken);
 * or GetCommand's code.
 */
static int vdi_client_enter(vdi_client_device *dev,
			    const vdi_client_completion *c, unsigned int count,
			    unsigned int *done, int64_t timeout,
			    VDC_Command **cmds, unsigned int max,
			    unsigned int *got)
{
	struct vdi_cmd_rec *recs[VDI_CLIENT_BATCH];
	struct vdi_command out[VDI_CLIENT_BATCH];
	struct vdi_done d[VDI_CLIENT_BATCH];
	struct vdi_enter e = {
		.submit = (uintptr_t)d,
		.reap = (uintptr_t)out,
	};
	unsigned int i, nsub, reap, applied = 0;
	uint64_t start = 0, t0 = 0;
	struct vdi_spin spin;
	int n, fd, err = 0, ret = NOERROR;
	bool known = true, nomem = false;

	*got = 0;
	reap = max < VDI_CLIENT_BATCH ? max : VDI_CLIENT_BATCH;
	pthread_mutex_lock(&dev->lock);
	fd = vdi_dev_enter(dev);
	if (fd < 0) {
		ret = count ? vdi_complete_closed(dev, &c[0]) :
			      vdi_get_closed(dev);
		pthread_mutex_unlock(&dev->lock);
		return ret;
	}
	/* Unmark each record as we go: a command named twice fails. */
	for (nsub = 0; nsub < count; nsub++) {
		recs[nsub] = vdi_rec_lookup(dev, c[nsub].cmd);
		if (!recs[nsub]) {
			known = false;
			break;
		}
		recs[nsub]->held = false;
		d[nsub].tag = recs[nsub]->tag;
		d[nsub].completion_code = c[nsub].completionCode;
		d[nsub].bytes_transferred = c[nsub].bytesTransferred;
		d[nsub].position = c[nsub].position;
	}
	/* An unknown command: apply the ones before it, take nothing. */
	if (!known)
		reap = 0;
	/* Records first: commands the module hands out must have a home;
	 * without them, only complete (as the two calls would). */
	if (reap && !vdi_recs_reserve(dev, reap)) {
		reap = 0;
		nomem = true;
	}
	if (!nsub && !reap)
		goto out_result;
	spin = dev->spin;
	pthread_mutex_unlock(&dev->lock);

	/* Unmarked records are ours alone; the wait is without the lock:
	 * CompleteCommand goes on meanwhile. */
	timeout = vdi_timeout(timeout);
	if (reap && timeout > 0)
		start = vdi_now_us();
	e.submit_count = nsub;
	e.reap_count = reap;
	e.spin_us = reap ? vdi_spin_plan(&spin, timeout) : 0;
	for (;;) {
		e.timeout_ms = reap ? vdi_left(timeout, start) : 0;
		e.submitted = 0;
		e.reaped = 0;
		if (e.spin_us)
			t0 = vdi_now_us();
		n = ioctl(fd, VDI_IOC_ENTER, &e);
		err = n < 0 ? errno : 0;
		if (e.spin_us && err != EINTR)
			vdi_spin_learn(&spin, e.spin_us, vdi_now_us() - t0,
				       n > 0 || err != ETIMEDOUT);
		/* A retry neither spins nor submits again what went in. */
		e.spin_us = 0;
		applied += e.submitted;
		e.submit += (uint64_t)e.submitted * sizeof(d[0]);
		e.submit_count -= e.submitted;
		if (n >= 0 || err != EINTR)
			break;
	}

	pthread_mutex_lock(&dev->lock);
	if (reap)
		dev->nreserved -= reap;
	dev->spin = spin;
	for (i = 0; i < applied; i++)
		vdi_rec_put(dev, recs[i]);
	if (applied < nsub) {
		/* A bad byte count leaves the command held; anything else
		 * means it is gone (aborted): drop its record. */
		if (err == EINVAL)
			recs[applied]->held = true;
		else
			vdi_rec_put(dev, recs[applied]);
		vdi_recs_hold(recs, applied + 1, nsub);
		ret = vdi_from_errno(err, "CompleteCommand");
		goto out_leave;
	}
	if (!reap)
		goto out_result;
	if (n > 0 && dev->closed) {
		/* Close aborted the set meanwhile: the buffers are going. */
		n = -1;
		err = ECONNABORTED;
	}
	if (n < 0 && err == ESHUTDOWN)
		dev->ended = true;
	if (n > 0) {
		vdi_hand_out(dev, out, n, cmds);
		*got = n;
	} else {
		ret = vdi_from_errno(n < 0 ? err : ETIMEDOUT, "GetCommand");
	}
	goto out_leave;

out_result:
	if (!known)
		ret = vdi_fail(VD_E_INVALID, "CompleteCommand: not a command "
			       "this device handed out, or completed already");
	else if (nomem)
		ret = vdi_fail(VD_E_MEMORY, "GetCommand: no memory");
out_leave:
	*done += applied;
	vdi_dev_leave(dev);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

VDI_EXPORT int vdi_client_get_commands(vdi_client_device *dev, int64_t timeout,
				       VDC_Command **cmds, unsigned int max,
				       unsigned int *count)
{
	unsigned int done = 0;

	if (!dev || !cmds || !count || !max)
		return vdi_fail(VD_E_INVALID, "GetCommand: bad argument");
	*count = 0;
	if (dev->has_enter)
		return vdi_client_enter(dev, NULL, 0, &done, timeout, cmds,
					max, count);
	return vdi_client_get_polling(dev, timeout, cmds, max, count);
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
	int n, err, fd, ret = NOERROR;

	if (!dev || !done || (!c && count))
		return vdi_fail(VD_E_INVALID, "CompleteCommand: bad argument");
	*done = 0;
	pthread_mutex_lock(&dev->lock);
	while (*done < count && !ret) {
		fd = vdi_dev_enter(dev);
		if (fd < 0) {
			ret = vdi_complete_closed(dev, &c[*done]);
			break;
		}
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
		if (!i) {
			vdi_dev_leave(dev);
			break;
		}
		b.count = i;
		/* Unmarked records are ours alone: no lock for the call. */
		pthread_mutex_unlock(&dev->lock);
		n = ioctl(fd, VDI_IOC_COMPLETE, &b);
		err = errno;
		pthread_mutex_lock(&dev->lock);
		vdi_dev_leave(dev);
		if (n < 0) {
			/* A bad byte count leaves the command held; anything
			 * else means it is gone (aborted): drop its record. */
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
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

/* Extra (LIBVDI_1.4): CompleteCommand for many, then GetCommand for many. */
VDI_EXPORT int vdi_client_complete_and_get(vdi_client_device *dev,
					   const vdi_client_completion *c,
					   unsigned int count,
					   unsigned int *done, int64_t timeout,
					   VDC_Command **cmds, unsigned int max,
					   unsigned int *got)
{
	unsigned int head;
	int ret;

	if (!dev || !done || !got || (!c && count) || !cmds || !max)
		return vdi_fail(VD_E_INVALID, "CompleteAndGet: bad argument");
	*done = 0;
	*got = 0;
	if (!dev->has_enter) {
		/* An older module: the two calls. */
		ret = vdi_client_complete_commands(dev, c, count, done);
		if (ret)
			return ret;
		return vdi_client_get_polling(dev, timeout, cmds, max, got);
	}
	/* All but the last VDI_CLIENT_BATCH completions go first. */
	head = count > VDI_CLIENT_BATCH ? count - VDI_CLIENT_BATCH : 0;
	if (head) {
		ret = vdi_client_complete_commands(dev, c, head, done);
		if (ret)
			return ret;
	}
	return vdi_client_enter(dev, c + head, count - head, done, timeout,
				cmds, max, got);
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
	if (vdi_no_set(set))
		ret = vdi_fail(VD_E_PROTOCOL, "SignalAbort: no set");
	else if (ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 }))
		ret = vdi_from_errno(errno, "SignalAbort");
	pthread_mutex_unlock(&set->lock);
	return ret;
}

/*
 * Close's view of the devices other processes hold: a secondary endpoint
 * on the set, opened before the primary's fds go, stays to tell whether
 * closing them aborted the set (the module aborts it when a device is not
 * finished, see docs/ABI.md, Endings).  -1 when there is nothing to learn
 * (the set ended normally, or is aborted already) or it cannot be opened.
 */
static int vdi_client_probe_open(vdi_client_set *set)
{
	struct vdi_open arg = { 0 };
	int fd;

	if (set->secondary || !set->configured || vdi_open_node(&fd, NULL))
		return -1;
	strcpy(arg.name, set->name);
	if (ioctl(fd, VDI_IOC_OPEN_SECONDARY, &arg) < 0) {
		vdi_fd_close(fd);
		return -1;
	}
	return fd;
}

/* Whether the set the probe watches is aborted; closes the probe. */
static bool vdi_client_probe_aborted(int fd)
{
	bool aborted;

	if (fd < 0)
		return false;
	aborted = vdi_fd_aborted(fd);
	vdi_fd_close(fd);
	return aborted;
}

/*
 * Close one device of the set: no new call (they get a code), wait for the
 * calls inside to leave, close the fd.  Its records stay (a late
 * CompleteCommand is answered) until the set object is freed.
 */
static void vdi_client_device_close(vdi_client_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	while (dev->calls)
		pthread_cond_wait(&dev->idle, &dev->lock);
	if (dev->fd >= 0)
		vdi_fd_close(dev->fd);
	dev->fd = -1;
	pthread_mutex_unlock(&dev->lock);
}

static void vdi_client_device_free(vdi_client_device *dev)
{
	struct vdi_rec_chunk *chunk, *next;

	for (chunk = dev->chunks; chunk; chunk = next) {
		next = chunk->next;
		free(chunk);
	}
	pthread_cond_destroy(&dev->idle);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

VDI_EXPORT int vdi_client_close(vdi_client_set *set)
{
	vdi_client_device *dev;
	bool open = false;
	int probe = -1;

	if (!set)
		return vdi_fail(VD_E_INVALID, "Close: NULL set");
	if (vdi_client_set_foreign(set))
		return vdi_fail(VD_E_PROTOCOL, "Close: the parent's set, in a "
				"fork()ed child: left alone");
	pthread_mutex_lock(&set->lock);
	if (vdi_no_set(set)) {
		pthread_mutex_unlock(&set->lock);
		return vdi_fail(VD_E_PROTOCOL, "Close: no set");
	}
	set->closing = true;
	/* No new device call; a device still in use, or with commands not
	 * completed, is open. */
	for (dev = set->devs; dev; dev = dev->next) {
		pthread_mutex_lock(&dev->lock);
		if (!dev->closed)
			open |= !dev->ended || dev->nheld;
		dev->closed = true;
		pthread_mutex_unlock(&dev->lock);
	}
	/* Waiters must wake: a GetConfiguration not answered yet means the
	 * set cannot end normally either. */
	if (open || (set->calls && !set->configured))
		ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 });
	else
		probe = vdi_client_probe_open(set);
	while (set->calls)
		pthread_cond_wait(&set->idle, &set->lock);
	for (dev = set->devs; dev; dev = dev->next)
		vdi_client_device_close(dev);
	/* Buffer pointers a late thread may still use stay harmless. */
	vdi_area_unmap(&set->retired);
	vdi_area_retire(&set->area, &set->retired);
	vdi_fd_close(set->fd);
	set->fd = -1;
	set->configured = false;
	set->closing = false;
	pthread_mutex_unlock(&set->lock);
	/* A device another process holds that was not finished: the module
	 * aborted the set as our fd went. */
	if (vdi_client_probe_aborted(probe))
		open = true;
	if (open)
		return vdi_fail(VD_E_OPEN, "Close: devices were still open; "
				"the set was aborted");
	return NOERROR;
}

VDI_EXPORT void vdi_client_set_free(vdi_client_set *set)
{
	vdi_client_device *dev, *next;

	if (!set || vdi_client_set_foreign(set))
		return;
	if (set->fd >= 0)
		vdi_client_close(set);
	for (dev = set->devs; dev; dev = next) {
		next = dev->next;
		vdi_client_device_free(dev);
	}
	vdi_area_unmap(&set->retired);
	pthread_cond_destroy(&set->idle);
	pthread_mutex_destroy(&set->lock);
	free(set);
}

VDI_EXPORT int vdi_client_open_in_secondary_ex(vdi_client_set *set,
					       const char *instance,
					       const char *name)
{
	struct vdi_open arg = { 0 };
	uint64_t features;
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
	ret = vdi_open_node(&fd, &features);
	if (ret)
		goto out_unlock;
	if (ioctl(fd, VDI_IOC_OPEN_SECONDARY, &arg) < 0) {
		if (errno == ENOENT || errno == EPROTO)
			ret = vdi_fail(VD_E_PROTOCOL, "OpenInSecondary: no set "
				       "'%s' ready for secondaries", name);
		else
			ret = vdi_from_errno(errno, "OpenInSecondary");
		vdi_fd_close(fd);
		goto out_unlock;
	}
	set->fd = fd;
	set->secondary = true;
	set->has_enter = vdi_use_enter(features);
	strcpy(set->name, name);
	ret = vdi_client_read_config(fd, 0, &cfg);
	if (!ret)
		ret = vdi_client_map(set, &cfg);
	if (ret) {
		vdi_fd_close(fd);
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
	if (vdi_no_set(set))
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
	if (vdi_no_set(set))
		ret = vdi_fail(VD_E_PROTOCOL, "MapBufferHandle: no set");
	else if (handle >= set->area.size)
		ret = vdi_fail(VD_E_INVALID, "MapBufferHandle: handle %u is "
			       "outside the buffer area", handle);
	else
		*buffer = set->area.base + handle;
	pthread_mutex_unlock(&set->lock);
	return ret;
}

/* Extra: the module's figures for this set (vdi_stats(3)). */
VDI_EXPORT int vdi_client_get_stats(vdi_client_set *set, vdi_stats *st)
{
	int ret;

	if (!set || !st)
		return vdi_fail(VD_E_INVALID, "GetStats: NULL %s",
				set ? "stats" : "set");
	pthread_mutex_lock(&set->lock);
	if (vdi_no_set(set))
		ret = vdi_fail(VD_E_PROTOCOL, "GetStats: no set");
	else
		ret = vdi_stats_read(set->fd, 0, st, "GetStats");
	pthread_mutex_unlock(&set->lock);
	return ret;
}
