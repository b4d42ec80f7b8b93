// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the server role (IServerVirtualDeviceSet2, IServerVirtualDevice).
 *
 * The set object may be used from any thread: @lock guards its state.  The
 * completion agent runs on the thread that calls
 * vdi_server_execute_completion_agent(); vdi_server_close() makes it return
 * and waits for it before freeing anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define VDI_AGENT_BATCH	64

enum vdi_server_phase {
	VDI_SRV_CONNECTED,	/* Open done */
	VDI_SRV_CONFIGURABLE,	/* BeginConfiguration done */
	VDI_SRV_READY,		/* EndConfiguration done */
};

struct vdi_server_device {
	vdi_server_set *set;
	int fd;
};

struct vdi_server_set {
	int fd;
	pthread_mutex_t lock;		/* protects everything below */
	pthread_cond_t agent_cv;	/* signalled when the agent starts or
					 * returns */
	enum vdi_server_phase phase;
	bool agent_running;
	uint32_t queue_depth;		/* 0: the module's default */
	uint64_t requested;		/* RequestBuffers, summed */
	VDConfig cfg;
	struct vdi_area area;
	struct vdi_buffers bufs;
	unsigned int ndevs;
	vdi_server_device *devs[VDI_MAX_DEVICES];
};

_Static_assert(sizeof(VDConfig) == sizeof(struct vdi_config),
	       "VDConfig and struct vdi_config share one layout");

/*
 * Refuse a set whose owner is neither @owner (a uid, or VDI_OWNER_SELF: the
 * caller's effective uid) nor root: any user may create a set under the
 * name an engine expects, and the engine would stream its backup into it,
 * or restore from it.  Asked right after OPEN_SERVER, before anything is
 * sent; the set's owner never changes.
 */
static int vdi_server_check_owner(int fd, const char *name, int64_t owner)
{
	struct vdi_set_info info = { 0 };
	uint32_t want;

	if (owner == VDI_OWNER_ANY)
		return NOERROR;
	want = owner == VDI_OWNER_SELF ? (uint32_t)geteuid() : (uint32_t)owner;
	if (ioctl(fd, VDI_IOC_SET_INFO, &info) < 0) {
		if (errno == ENOTTY)
			return vdi_fail(VD_E_SECURITY, "Open: refused set "
					"'%.64s': the module cannot tell whose "
					"it is (older than API 1.1)", name);
		return vdi_from_errno(errno, "Open: the set's owner");
	}
	if (info.uid == want || info.uid == 0)
		return NOERROR;
	if (want == 0)
		return vdi_fail(VD_E_SECURITY, "Open: refused set '%.64s': "
				"owned by uid %u (mode %03o), not by root",
				name, info.uid, info.mode);
	return vdi_fail(VD_E_SECURITY, "Open: refused set '%.64s': owned by "
			"uid %u (mode %03o), not by uid %u or root", name,
			info.uid, info.mode, want);
}

VDI_EXPORT int vdi_server_open_ex(vdi_server_set **out, const char *instance,
				  const char *name, int64_t owner)
{
	struct vdi_open arg = { 0 };
	pthread_condattr_t attr;
	vdi_server_set *set;
	int ret;

	if (!out || !name || strlen(name) >= sizeof(arg.name))
		return vdi_fail(VD_E_INVALID, "Open: no set name, or too long");
	*out = NULL;
	if (owner != VDI_OWNER_SELF && owner != VDI_OWNER_ANY &&
	    (owner < 0 || owner >= UINT32_MAX))
		return vdi_fail(VD_E_INVALID, "Open: owner %lld is no uid",
				(long long)owner);
	ret = vdi_check_instance(instance);
	if (ret)
		return ret;
	set = calloc(1, sizeof(*set));
	if (!set)
		return vdi_fail(VD_E_MEMORY, "Open: no memory");
	ret = vdi_open_node(&set->fd);
	if (ret)
		goto out_free;
	strcpy(arg.name, name);
	if (ioctl(set->fd, VDI_IOC_OPEN_SERVER, &arg) < 0) {
		if (errno == ENOENT)
			ret = vdi_fail(VD_E_INVALID, "Open: no set named '%s' "
				       "is visible here", name);
		else if (errno == EACCES)
			ret = vdi_fail(VD_E_SECURITY, "Open: access denied: "
				       "the set's owner, group and mode do "
				       "not grant it");
		else
			ret = vdi_from_errno(errno, "Open");
		goto out_close;
	}
	/* Refused: closing our fd ends that set (its client sees an abort). */
	ret = vdi_server_check_owner(set->fd, name, owner);
	if (ret)
		goto out_close;
	pthread_mutex_init(&set->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&set->agent_cv, &attr);
	pthread_condattr_destroy(&attr);
	set->phase = VDI_SRV_CONNECTED;
	*out = set;
	return NOERROR;

out_close:
	close(set->fd);
out_free:
	free(set);
	return ret;
}

VDI_EXPORT int vdi_server_open(vdi_server_set **out, const char *instance,
			       const char *name)
{
	return vdi_server_open_ex(out, instance, name, VDI_OWNER_SELF);
}

/* Extra: whose set it is (the module's VDI_IOC_SET_INFO). */
VDI_EXPORT int vdi_server_get_owner(vdi_server_set *set, uint32_t *uid,
				    uint32_t *gid, uint32_t *mode)
{
	struct vdi_set_info info = { 0 };

	if (!set)
		return vdi_fail(VD_E_INVALID, "GetOwner: NULL set");
	if (ioctl(set->fd, VDI_IOC_SET_INFO, &info) < 0)
		return vdi_from_errno(errno, "GetOwner");
	if (uid)
		*uid = info.uid;
	if (gid)
		*gid = info.gid;
	if (mode)
		*mode = info.mode;
	return NOERROR;
}

static int vdi_server_read_config(vdi_server_set *set, VDConfig *cfg)
{
	struct vdi_get_config arg = { 0 };

	if (ioctl(set->fd, VDI_IOC_GET_CONFIG, &arg) < 0)
		return vdi_from_errno(errno, "GetConfiguration");
	memcpy(cfg, &arg.config, sizeof(*cfg));
	return NOERROR;
}

VDI_EXPORT int vdi_server_get_configuration(vdi_server_set *set, VDConfig *cfg)
{
	if (!set || !cfg)
		return vdi_fail(VD_E_INVALID, "GetConfiguration: NULL argument");
	return vdi_server_read_config(set, cfg);
}

/* Extra: the per-device queue depth, before BeginConfiguration. */
VDI_EXPORT int vdi_server_set_queue_depth(vdi_server_set *set, uint32_t depth)
{
	int ret = NOERROR;

	if (!set)
		return vdi_fail(VD_E_INVALID, "SetQueueDepth: NULL set");
	pthread_mutex_lock(&set->lock);
	if (set->phase != VDI_SRV_CONNECTED)
		ret = vdi_fail(VD_E_PROTOCOL,
			       "SetQueueDepth: only before BeginConfiguration");
	else
		set->queue_depth = depth;
	pthread_mutex_unlock(&set->lock);
	return ret;
}

VDI_EXPORT int vdi_server_begin_configuration(vdi_server_set *set,
					      uint32_t features,
					      uint32_t alignment,
					      uint32_t block_size,
					      uint32_t max_transfer_size,
					      uint32_t timeout_ms)
{
	struct vdi_begin_config arg = {
		.features = features,
		.alignment = alignment,
		.block_size = block_size,
		.max_transfer_size = max_transfer_size,
		.timeout_ms = timeout_ms,
	};
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "BeginConfiguration: NULL set");
	pthread_mutex_lock(&set->lock);
	arg.queue_depth = set->queue_depth;
	if (ioctl(set->fd, VDI_IOC_BEGIN_CONFIG, &arg) < 0) {
		ret = vdi_from_errno(errno, "BeginConfiguration");
		goto out_unlock;
	}
	ret = vdi_server_read_config(set, &set->cfg);
	if (ret)
		goto out_unlock;
	vdi_buffers_init(&set->bufs, set->cfg.prefixZoneSize,
			 set->cfg.alignment);
	set->phase = VDI_SRV_CONFIGURABLE;
out_unlock:
	pthread_mutex_unlock(&set->lock);
	return ret;
}

static bool vdi_align_ok(uint32_t a)
{
	return !(a & (a - 1));
}

VDI_EXPORT int vdi_server_query_available_buffers(vdi_server_set *set,
						  uint32_t size,
						  uint32_t alignment,
						  uint32_t *count)
{
	if (!set || !count || !size || !vdi_align_ok(alignment))
		return vdi_fail(VD_E_INVALID, "QueryAvailableBuffers: bad "
				"argument");
	pthread_mutex_lock(&set->lock);
	if (set->phase == VDI_SRV_CONNECTED) {
		pthread_mutex_unlock(&set->lock);
		return vdi_fail(VD_E_PROTOCOL, "QueryAvailableBuffers: before "
				"BeginConfiguration");
	}
	if (set->phase == VDI_SRV_CONFIGURABLE)
		*count = UINT32_MAX;	/* the area is not sized yet */
	else
		*count = vdi_buffers_count_fit(&set->bufs, size, alignment);
	pthread_mutex_unlock(&set->lock);
	return NOERROR;
}

VDI_EXPORT int vdi_server_request_buffers(vdi_server_set *set, uint32_t size,
					  uint32_t alignment, uint32_t count)
{
	uint32_t fit;
	int ret = NOERROR;

	if (!set || !size || !count || !vdi_align_ok(alignment))
		return vdi_fail(VD_E_INVALID, "RequestBuffers: bad argument");
	pthread_mutex_lock(&set->lock);
	switch (set->phase) {
	case VDI_SRV_CONNECTED:
		ret = vdi_fail(VD_E_PROTOCOL, "RequestBuffers: before "
			       "BeginConfiguration");
		break;
	case VDI_SRV_CONFIGURABLE:
		set->requested += vdi_buffers_footprint(set->cfg.prefixZoneSize,
							set->cfg.alignment,
							size, alignment, count);
		break;
	case VDI_SRV_READY:
		/* The area is fixed once configured: say whether they fit. */
		fit = vdi_buffers_count_fit(&set->bufs, size, alignment);
		if (fit < count)
			ret = vdi_fail(VD_E_MEMORY, "RequestBuffers: only %u "
				       "more such buffers fit", fit);
		break;
	}
	pthread_mutex_unlock(&set->lock);
	return ret;
}

VDI_EXPORT int vdi_server_end_configuration(vdi_server_set *set)
{
	struct vdi_end_config arg = { 0 };
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "EndConfiguration: NULL set");
	pthread_mutex_lock(&set->lock);
	if (set->phase != VDI_SRV_CONFIGURABLE) {
		ret = vdi_fail(VD_E_PROTOCOL, "EndConfiguration: not "
			       "configuring");
		goto out_unlock;
	}
	arg.area_size = set->requested;
	if (!arg.area_size)	/* nothing requested: room for depth 4 */
		arg.area_size = vdi_buffers_footprint(set->cfg.prefixZoneSize,
						      set->cfg.alignment,
						      set->cfg.maxTransferSize,
						      0, set->cfg.deviceCount *
						      set->cfg.maxIODepth);
	if (ioctl(set->fd, VDI_IOC_END_CONFIG, &arg) < 0) {
		if (errno == E2BIG)
			ret = vdi_fail(VD_E_MEMORY, "EndConfiguration: a buffer "
				       "area of %llu bytes is over the module's "
				       "max_area_mb", (unsigned long long)
				       arg.area_size);
		else
			ret = vdi_from_errno(errno, "EndConfiguration");
		/* Still configurable: the server declares its needs anew. */
		if (ret == VD_E_MEMORY)
			set->requested = 0;
		goto out_unlock;
	}
	ret = vdi_server_read_config(set, &set->cfg);
	if (ret)
		goto out_unlock;
	ret = vdi_area_map(&set->area, set->fd, set->cfg.bufferAreaSize);
	if (ret)
		goto out_unlock;
	ret = vdi_buffers_reset(&set->bufs, set->cfg.bufferAreaSize);
	if (ret)
		goto out_unlock;
	set->phase = VDI_SRV_READY;
out_unlock:
	pthread_mutex_unlock(&set->lock);
	return ret;
}

VDI_EXPORT int vdi_server_open_device(vdi_server_set *set, const char *name,
				      vdi_server_device **out)
{
	struct vdi_open_device arg = { .flags = O_CLOEXEC };
	vdi_server_device *dev;
	int fd, ret;

	if (!set || !out || !name || strlen(name) >= sizeof(arg.name))
		return vdi_fail(VD_E_INVALID, "OpenDevice: bad argument");
	*out = NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return vdi_fail(VD_E_MEMORY, "OpenDevice: no memory");
	strcpy(arg.name, name);
	pthread_mutex_lock(&set->lock);
	fd = ioctl(set->fd, VDI_IOC_OPEN_DEVICE, &arg);
	if (fd < 0) {
		ret = vdi_from_errno(errno, "OpenDevice");
		pthread_mutex_unlock(&set->lock);
		free(dev);
		return ret;
	}
	dev->set = set;
	dev->fd = fd;
	set->devs[set->ndevs++] = dev;
	pthread_mutex_unlock(&set->lock);
	*out = dev;
	return NOERROR;
}

VDI_EXPORT int vdi_server_allocate_buffer(vdi_server_set *set,
					  uint8_t **buffer, uint32_t size,
					  uint32_t alignment)
{
	uint64_t offset;
	int ret;

	if (!set || !buffer || !vdi_align_ok(alignment))
		return vdi_fail(VD_E_INVALID, "AllocateBuffer: bad argument");
	*buffer = NULL;
	pthread_mutex_lock(&set->lock);
	if (set->phase != VDI_SRV_READY) {
		pthread_mutex_unlock(&set->lock);
		return vdi_fail(VD_E_PROTOCOL, "AllocateBuffer: before "
				"EndConfiguration");
	}
	pthread_mutex_unlock(&set->lock);
	ret = vdi_buffers_alloc(&set->bufs, size, alignment, &offset);
	if (!ret)
		*buffer = set->area.base + offset;
	return ret;
}

VDI_EXPORT int vdi_server_free_buffer(vdi_server_set *set, uint8_t *buffer,
				      uint32_t size)
{
	if (!set || !vdi_area_holds(&set->area, buffer, size))
		return vdi_fail(VD_E_INVALID, "FreeBuffer: not a buffer of "
				"this set");
	return vdi_buffers_free(&set->bufs, buffer - set->area.base, size);
}

VDI_EXPORT int vdi_server_is_shared_buffer(vdi_server_set *set,
					   const uint8_t *buffer)
{
	if (!set || !vdi_area_holds(&set->area, buffer, 1))
		return 0;
	return vdi_buffers_is_allocated(&set->bufs, buffer - set->area.base);
}

static void vdi_server_deliver(const struct vdi_completion *c)
{
	VDS_Command *cmd = (VDS_Command *)(uintptr_t)c->cookie;
	VDS_CompletionRoutine routine;

	cmd->completionCode = (int32_t)c->completion_code;
	cmd->bytesTransferred = (int32_t)c->bytes_transferred;
	cmd->outPosition = c->position;
	routine = (VDS_CompletionRoutine)(uintptr_t)cmd->completionRoutine;
	if (routine)
		routine(cmd);
}

static int vdi_server_agent_loop(vdi_server_set *set)
{
	struct vdi_completion done[VDI_AGENT_BATCH];
	struct vdi_batch b = {
		.entries = (uintptr_t)done,
		.count = VDI_AGENT_BATCH,
		.timeout_ms = -1,
	};
	struct vdi_spin spin = { 0 };
	int i, n;

	for (;;) {
		n = vdi_spin_ioctl(set->fd, VDI_IOC_WAIT_COMPLETIONS, &b,
				   &spin);
		if (!n)
			n = ioctl(set->fd, VDI_IOC_WAIT_COMPLETIONS, &b);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ESHUTDOWN)
				return NOERROR;	/* every device closed */
			return vdi_from_errno(errno, "ExecuteCompletionAgent");
		}
		for (i = 0; i < n; i++)
			vdi_server_deliver(&done[i]);
	}
}

VDI_EXPORT int vdi_server_execute_completion_agent(vdi_server_set *set)
{
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "ExecuteCompletionAgent: NULL set");
	pthread_mutex_lock(&set->lock);
	if (set->phase != VDI_SRV_READY || set->agent_running) {
		pthread_mutex_unlock(&set->lock);
		return vdi_fail(VD_E_PROTOCOL, "ExecuteCompletionAgent: %s",
				set->agent_running ? "already running" :
				"before EndConfiguration");
	}
	__atomic_store_n(&set->agent_running, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&set->agent_cv);
	pthread_mutex_unlock(&set->lock);

	ret = vdi_server_agent_loop(set);

	pthread_mutex_lock(&set->lock);
	__atomic_store_n(&set->agent_running, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&set->agent_cv);
	pthread_mutex_unlock(&set->lock);
	return ret;
}

/* Extra: wait until ExecuteCompletionAgent runs, so commands may be sent. */
VDI_EXPORT int vdi_server_wait_agent(vdi_server_set *set, int64_t timeout)
{
	struct timespec until;
	int ret = NOERROR, err = 0;

	if (!set)
		return vdi_fail(VD_E_INVALID, "WaitAgent: NULL set");
	timeout = vdi_timeout(timeout);
	clock_gettime(CLOCK_MONOTONIC, &until);
	if (timeout > 0) {
		until.tv_sec += timeout / 1000;
		until.tv_nsec += timeout % 1000 * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&set->lock);
	while (!set->agent_running && err != ETIMEDOUT) {
		if (!timeout)
			err = ETIMEDOUT;
		else if (timeout < 0)
			pthread_cond_wait(&set->agent_cv, &set->lock);
		else
			err = pthread_cond_timedwait(&set->agent_cv, &set->lock,
						     &until);
	}
	if (!set->agent_running)
		ret = vdi_fail(VD_E_TIMEOUT, "WaitAgent: the completion agent "
			       "did not start");
	pthread_mutex_unlock(&set->lock);
	return ret;
}

/* A SendCommand failure: tell the routine too, as VDI does. */
static int vdi_send_failed(VDS_Command *cmd, int code, int32_t completion,
			   const char *why)
{
	VDS_CompletionRoutine routine;

	cmd->completionCode = completion;
	cmd->bytesTransferred = 0;
	cmd->outPosition = 0;
	routine = (VDS_CompletionRoutine)(uintptr_t)cmd->completionRoutine;
	if (routine)
		routine(cmd);
	return vdi_fail(code, "SendCommand: %s", why);
}

/* The module's answer to a refused SEND, in VDI's terms. */
static int vdi_send_refused(VDS_Command *cmd, int err)
{
	switch (err) {
	case ENOBUFS:
		return vdi_send_failed(cmd, VD_E_QUEUE_FULL,
				       ERROR_NO_SYSTEM_RESOURCES,
				       "the device's queue is full");
	case EIO:
		return vdi_send_failed(cmd, VD_E_IO_ERROR, ERROR_IO_DEVICE,
				       "the device is in IO-ERROR");
	case EPROTO:
		return vdi_send_failed(cmd, VD_E_PROTOCOL, ERROR_INVALID_HANDLE,
				       "the device is not active");
	case ECONNABORTED:
		return vdi_send_failed(cmd, VD_E_ABORT, ERROR_OPERATION_ABORTED,
				       "the set is aborted");
	default:	/* EINVAL: a bad code or size; the routine is not told */
		return vdi_from_errno(err, "SendCommand");
	}
}

#define VDI_SEND_BATCH 64

VDI_EXPORT int vdi_server_send_commands(vdi_server_device *dev,
					VDS_Command **cmds, unsigned int count,
					unsigned int *sent)
{
	struct vdi_send s[VDI_SEND_BATCH];
	struct vdi_batch b = { .entries = (uintptr_t)s };
	vdi_server_set *set;
	VDS_Command *cmd;
	unsigned int i;
	int n, bad = NOERROR;

	if (!dev || !sent || (!cmds && count))
		return vdi_fail(VD_E_INVALID, "SendCommand: NULL argument");
	*sent = 0;
	set = dev->set;
	while (*sent < count) {
		for (i = 0; i < VDI_SEND_BATCH && *sent + i < count; i++) {
			cmd = cmds[*sent + i];
			if (!cmd) {
				bad = vdi_fail(VD_E_INVALID,
					       "SendCommand: NULL command");
				break;
			}
			if (!__atomic_load_n(&set->agent_running,
					     __ATOMIC_ACQUIRE)) {
				struct pollfd pfd = { .fd = set->fd,
						      .events = POLLIN };

				/* An abort ends the agent: say abort. */
				if (poll(&pfd, 1, 0) == 1 &&
				    (pfd.revents & POLLERR))
					bad = vdi_send_failed(cmd, VD_E_ABORT,
						ERROR_OPERATION_ABORTED,
						"the set is aborted");
				else
					bad = vdi_send_failed(cmd,
						VD_E_PROTOCOL,
						ERROR_INVALID_HANDLE,
						"the completion agent is "
						"not running");
				break;
			}
			s[i].cookie = (uintptr_t)cmd;
			s[i].code = (uint32_t)cmd->commandCode;
			s[i].size = (uint32_t)cmd->size;
			s[i].position = cmd->inPosition;
			s[i].buf_offset = VDI_NO_BUFFER;
			if (!cmd->buffer)
				continue;
			if (!vdi_area_holds(&set->area, cmd->buffer, 0)) {
				bad = vdi_fail(VD_E_INVALID, "SendCommand: "
					       "buffer is not in the set's "
					       "area");
				break;
			}
			s[i].buf_offset = cmd->buffer - set->area.base;
		}
		if (i) {
			b.count = i;
			n = ioctl(dev->fd, VDI_IOC_SEND, &b);
			if (n < 0)
				return vdi_send_refused(cmds[*sent], errno);
			*sent += n;
			if ((unsigned int)n < i)
				continue;	/* the next call says why */
		}
		if (bad)
			return bad;
	}
	return NOERROR;
}

VDI_EXPORT int vdi_server_send_command(vdi_server_device *dev,
				       VDS_Command *cmd)
{
	unsigned int sent;

	if (!cmd)
		return vdi_fail(VD_E_INVALID, "SendCommand: NULL argument");
	return vdi_server_send_commands(dev, &cmd, 1, &sent);
}

VDI_EXPORT int vdi_server_close_device(vdi_server_device *dev)
{
	if (!dev)
		return vdi_fail(VD_E_INVALID, "CloseDevice: NULL device");
	if (ioctl(dev->fd, VDI_IOC_CLOSE_DEVICE, &(struct vdi_ctl){ 0 }) < 0)
		return vdi_from_errno(errno, "CloseDevice");
	return NOERROR;
}

VDI_EXPORT int vdi_server_signal_abort(vdi_server_set *set)
{
	if (!set)
		return vdi_fail(VD_E_INVALID, "SignalAbort: NULL set");
	if (ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 }) < 0)
		return vdi_from_errno(errno, "SignalAbort");
	return NOERROR;
}

/* Whether a device is neither closed nor ended by an abort (no EPOLLHUP). */
static bool vdi_server_devices_open(vdi_server_set *set)
{
	struct pollfd pfd = { .events = POLLOUT };
	unsigned int i;

	for (i = 0; i < set->ndevs; i++) {
		pfd.fd = set->devs[i]->fd;
		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLHUP))
			return true;
	}
	return false;
}

VDI_EXPORT int vdi_server_close(vdi_server_set *set)
{
	unsigned int i;
	int ret = NOERROR;

	if (!set)
		return vdi_fail(VD_E_INVALID, "Close: NULL set");
	pthread_mutex_lock(&set->lock);
	if (vdi_server_devices_open(set))
		ret = vdi_fail(VD_E_PROTOCOL, "Close: devices still open; "
			       "the set was aborted");
	/* Harmless after the normal end; otherwise it ends the agent. */
	ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 });
	while (set->agent_running)
		pthread_cond_wait(&set->agent_cv, &set->lock);
	pthread_mutex_unlock(&set->lock);

	for (i = 0; i < set->ndevs; i++) {
		close(set->devs[i]->fd);
		free(set->devs[i]);
	}
	vdi_area_unmap(&set->area);
	if (set->phase != VDI_SRV_CONNECTED)
		vdi_buffers_destroy(&set->bufs);
	close(set->fd);
	pthread_cond_destroy(&set->agent_cv);
	pthread_mutex_destroy(&set->lock);
	free(set);
	return ret;
}
