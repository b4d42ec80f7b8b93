// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the server role (IServerVirtualDeviceSet2, IServerVirtualDevice).
 *
 * The set object and its devices may be used from any thread: @lock guards
 * the set's state, and every call counts itself in @users while it is
 * inside the library.  vdi_server_close() aborts the set (which ends the
 * completion agent and wakes vdi_server_wait_agent()), waits until no call
 * of another thread is inside, and only then frees anything.  A thread that
 * is itself inside a call of the set (a completion routine, run by the agent
 * or by a failing SendCommand) cannot Close it: VD_E_PROTOCOL, nothing done.
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

/*
 * A command goes from the sending thread to the agent's through the
 * module, where ThreadSanitizer cannot see it: tell it (no code otherwise).
 */
#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#define vdi_handoff_release(p)	__tsan_release(p)
#define vdi_handoff_acquire(p)	__tsan_acquire(p)
#else
#define vdi_handoff_release(p)	((void)(p))
#define vdi_handoff_acquire(p)	((void)(p))
#endif

#define VDI_AGENT_BATCH	64

/*
 * The largest buffer alignment: the area starts on a 64 KiB boundary in
 * every process that maps it (node.c), so a buffer aligned by its offset is
 * aligned by its address only up to that.  VDI's own limit (spec 7.3).
 */
#define VDI_BUF_ALIGN_MAX	0x10000U

/* The area's size is VDConfig.bufferAreaSize, a 32-bit field. */
#define VDI_AREA_MAX		UINT32_MAX

/* A wait longer than this (ten years) waits forever: no overflow. */
#define VDI_WAIT_FOREVER_MS	(10LL * 366 * 24 * 3600 * 1000)

enum vdi_server_phase {
	VDI_SRV_CONNECTED,	/* Open done */
	VDI_SRV_CONFIGURABLE,	/* BeginConfiguration done */
	VDI_SRV_READY,		/* EndConfiguration done */
};

struct vdi_server_device {
	vdi_server_set *set;
	int fd;
	uint32_t index;			/* in the set: vdi_send_to.device_index */
	bool closed;			/* CloseDevice succeeded (atomic) */
};

struct vdi_server_set {
	unsigned int generation;	/* vdi_generation() at Open */
	int fd;
	pthread_mutex_t lock;		/* protects everything below */
	pthread_cond_t agent_cv;	/* signalled when the agent starts or
					 * returns, when Close begins, and when
					 * the last call leaves during Close */
	enum vdi_server_phase phase;	/* read without @lock: atomically */
	bool ended;			/* the module took END_CONFIG; the
					 * library's part may be left to do */
	bool agent_running;		/* read without @lock: atomically */
	bool closing;			/* Close has begun (atomic) */
	unsigned int users;		/* calls inside the library (atomic) */
	uint32_t queue_depth;		/* 0: the module's default */
	uint64_t requested;		/* RequestBuffers, summed */
	VDConfig cfg;
	struct vdi_area area;
	struct vdi_buffers bufs;
	unsigned int ndevs;
	vdi_server_device *devs[VDI_MAX_DEVICES];
	/*
	 * With VDI_IOC_ENTER (API 1.3; fixed before the agent first runs):
	 * the library counts each device's commands in the module's slots,
	 * sent or collected and not yet reaped, so that SendCommand still
	 * says VD_E_QUEUE_FULL at once when it only collects (see
	 * vdi_agent_collect()).  The module frees a slot as the agent reaps
	 * it, a little before the count drops: the count errs on the full
	 * side, never the other.
	 */
	bool has_enter;
	uint32_t depth;			/* the module's queue depth */
	unsigned int outstanding[VDI_MAX_DEVICES];	/* by index (atomic) */
};

_Static_assert(sizeof(VDConfig) == sizeof(struct vdi_config),
	       "VDConfig and struct vdi_config share one layout");

/*
 * The calls a thread is inside, innermost first: a completion routine runs
 * inside ExecuteCompletionAgent or SendCommand, and may call again.
 */
struct vdi_srv_call {
	vdi_server_set *set;
	struct vdi_srv_call *outer;
};
static __thread struct vdi_srv_call *vdi_srv_calls;

/*
 * Count a call in; true once Close has begun (the call is counted all the
 * same, and must vdi_srv_leave()).  Close stores @closing and then reads
 * @users; a call adds itself to @users and then reads @closing: one of the
 * two sees the other (sequentially consistent).
 */
static bool vdi_srv_enter_closing(vdi_server_set *set,
				  struct vdi_srv_call *call)
{
	__atomic_add_fetch(&set->users, 1, __ATOMIC_SEQ_CST);
	call->set = set;
	call->outer = vdi_srv_calls;
	vdi_srv_calls = call;
	return __atomic_load_n(&set->closing, __ATOMIC_SEQ_CST);
}

static void vdi_srv_leave(vdi_server_set *set, struct vdi_srv_call *call);

/* Count a call in: NOERROR, or VD_E_ABORT (not counted) once Close began. */
static int vdi_srv_enter(vdi_server_set *set, struct vdi_srv_call *call,
			 const char *what)
{
	if (!vdi_srv_enter_closing(set, call))
		return NOERROR;
	vdi_srv_leave(set, call);
	return vdi_fail(VD_E_ABORT, "%s: the set is being closed", what);
}

/*
 * Count a call out.  Once Close has begun, the set may be freed the moment
 * @users reaches 0, so nothing of it is touched after the decrement: during
 * Close the decrement is made under @lock (Close frees only after taking
 * it), and a decrement that raced Close's start, made without the lock and
 * without a wake-up, is found by Close's timed wait.
 */
static void vdi_srv_leave(vdi_server_set *set, struct vdi_srv_call *call)
{
	vdi_srv_calls = call->outer;
	if (__atomic_load_n(&set->closing, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&set->lock);
		if (__atomic_sub_fetch(&set->users, 1, __ATOMIC_SEQ_CST) == 0)
			pthread_cond_broadcast(&set->agent_cv);
		pthread_mutex_unlock(&set->lock);
		return;
	}
	__atomic_sub_fetch(&set->users, 1, __ATOMIC_SEQ_CST);
}

/* Is this thread inside a call of @set (e.g. in one of its routines)? */
static bool vdi_srv_inside(const vdi_server_set *set)
{
	const struct vdi_srv_call *c;

	for (c = vdi_srv_calls; c; c = c->outer)
		if (c->set == set)
			return true;
	return false;
}

static enum vdi_server_phase vdi_srv_phase(vdi_server_set *set)
{
	return __atomic_load_n(&set->phase, __ATOMIC_ACQUIRE);
}

/* Whether the set is aborted (by either side, a death, the watchdog). */
static bool vdi_srv_aborted(vdi_server_set *set)
{
	return vdi_fd_aborted(set->fd);
}

/* A buffer alignment VDI can give: 0 (the set's) or a power of two up to
 * 64 KiB. */
static bool vdi_align_ok(uint32_t a)
{
	return !(a & (a - 1)) && a <= VDI_BUF_ALIGN_MAX;
}

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
	uint64_t features;
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
	ret = vdi_open_node(&set->fd, &features);
	if (ret)
		goto out_free;
	set->has_enter = vdi_use_enter(features);
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
	set->generation = vdi_generation();
	*out = set;
	return NOERROR;

out_close:
	vdi_fd_close(set->fd);
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
	struct vdi_srv_call call;
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "GetOwner: NULL set");
	ret = vdi_srv_enter(set, &call, "GetOwner");
	if (ret)
		return ret;
	ret = ioctl(set->fd, VDI_IOC_SET_INFO, &info);
	vdi_srv_leave(set, &call);
	if (ret < 0)
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
	struct vdi_srv_call call;
	int ret;

	if (!set || !cfg)
		return vdi_fail(VD_E_INVALID, "GetConfiguration: NULL argument");
	ret = vdi_srv_enter(set, &call, "GetConfiguration");
	if (ret)
		return ret;
	ret = vdi_server_read_config(set, cfg);
	vdi_srv_leave(set, &call);
	return ret;
}

/* Extra: the per-device queue depth, before BeginConfiguration. */
VDI_EXPORT int vdi_server_set_queue_depth(vdi_server_set *set, uint32_t depth)
{
	struct vdi_srv_call call;
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "SetQueueDepth: NULL set");
	ret = vdi_srv_enter(set, &call, "SetQueueDepth");
	if (ret)
		return ret;
	pthread_mutex_lock(&set->lock);
	if (set->phase != VDI_SRV_CONNECTED)
		ret = vdi_fail(VD_E_PROTOCOL,
			       "SetQueueDepth: only before BeginConfiguration");
	else
		set->queue_depth = depth;
	pthread_mutex_unlock(&set->lock);
	vdi_srv_leave(set, &call);
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
	struct vdi_srv_call call;
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "BeginConfiguration: NULL set");
	ret = vdi_srv_enter(set, &call, "BeginConfiguration");
	if (ret)
		return ret;
	pthread_mutex_lock(&set->lock);
	arg.queue_depth = set->queue_depth;
	if (ioctl(set->fd, VDI_IOC_BEGIN_CONFIG, &arg) < 0) {
		ret = vdi_from_errno(errno, "BeginConfiguration");
		goto out_unlock;
	}
	/* Fails only when the set is aborted meanwhile: final then. */
	ret = vdi_server_read_config(set, &set->cfg);
	if (ret)
		goto out_unlock;
	vdi_buffers_init(&set->bufs, set->cfg.prefixZoneSize,
			 set->cfg.alignment);
	__atomic_store_n(&set->phase, VDI_SRV_CONFIGURABLE, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&set->lock);
	vdi_srv_leave(set, &call);
	return ret;
}

VDI_EXPORT int vdi_server_query_available_buffers(vdi_server_set *set,
						  uint32_t size,
						  uint32_t alignment,
						  uint32_t *count)
{
	struct vdi_srv_call call;
	int ret;

	if (!set || !count || !size || !vdi_align_ok(alignment))
		return vdi_fail(VD_E_INVALID, "QueryAvailableBuffers: bad "
				"argument (alignment: a power of two up to "
				"64 KiB)");
	ret = vdi_srv_enter(set, &call, "QueryAvailableBuffers");
	if (ret)
		return ret;
	if (vdi_srv_aborted(set)) {
		ret = vdi_fail(VD_E_ABORT, "QueryAvailableBuffers: the set is "
			       "aborted");
		goto out_leave;
	}
	pthread_mutex_lock(&set->lock);
	if (set->phase == VDI_SRV_CONNECTED)
		ret = vdi_fail(VD_E_PROTOCOL, "QueryAvailableBuffers: before "
			       "BeginConfiguration");
	else if (set->phase == VDI_SRV_CONFIGURABLE)
		*count = UINT32_MAX;	/* the area is not sized yet */
	else
		*count = vdi_buffers_count_fit(&set->bufs, size, alignment);
	pthread_mutex_unlock(&set->lock);
out_leave:
	vdi_srv_leave(set, &call);
	return ret;
}

VDI_EXPORT int vdi_server_request_buffers(vdi_server_set *set, uint32_t size,
					  uint32_t alignment, uint32_t count)
{
	struct vdi_srv_call call;
	uint64_t need;
	uint32_t fit;
	int ret;

	if (!set || !size || !count || !vdi_align_ok(alignment))
		return vdi_fail(VD_E_INVALID, "RequestBuffers: bad argument "
				"(alignment: a power of two up to 64 KiB)");
	ret = vdi_srv_enter(set, &call, "RequestBuffers");
	if (ret)
		return ret;
	if (vdi_srv_aborted(set)) {
		ret = vdi_fail(VD_E_ABORT, "RequestBuffers: the set is aborted");
		goto out_leave;
	}
	pthread_mutex_lock(&set->lock);
	switch (set->phase) {
	case VDI_SRV_CONNECTED:
		ret = vdi_fail(VD_E_PROTOCOL, "RequestBuffers: before "
			       "BeginConfiguration");
		break;
	case VDI_SRV_CONFIGURABLE:
		if (set->ended) {
			ret = vdi_fail(VD_E_PROTOCOL, "RequestBuffers: the area "
				       "is allocated; retry EndConfiguration");
			break;
		}
		/* Saturates; the sum stays within what an area can be. */
		need = vdi_buffers_footprint(set->cfg.prefixZoneSize,
					     set->cfg.alignment, size,
					     alignment, count);
		if (need > VDI_AREA_MAX - set->requested) {
			ret = vdi_fail(VD_E_MEMORY, "RequestBuffers: %u buffers "
				       "of %u bytes would make the area larger "
				       "than 4 GiB; not counted", count, size);
			break;
		}
		set->requested += need;
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
out_leave:
	vdi_srv_leave(set, &call);
	return ret;
}

/*
 * EndConfiguration's part in the module: the area is allocated and the
 * configuration final there.  Once this succeeded it is never asked again:
 * what fails later (mapping the area, ...) is retried alone.
 */
static int vdi_server_end_in_module(vdi_server_set *set)
{
	struct vdi_end_config arg = { 0 };
	int ret;

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
		return ret;
	}
	set->ended = true;
	return NOERROR;
}

VDI_EXPORT int vdi_server_end_configuration(vdi_server_set *set)
{
	struct vdi_srv_call call;
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "EndConfiguration: NULL set");
	ret = vdi_srv_enter(set, &call, "EndConfiguration");
	if (ret)
		return ret;
	pthread_mutex_lock(&set->lock);
	if (set->phase != VDI_SRV_CONFIGURABLE) {
		ret = vdi_fail(VD_E_PROTOCOL, "EndConfiguration: not "
			       "configuring");
		goto out_unlock;
	}
	if (!set->ended) {
		ret = vdi_server_end_in_module(set);
		if (ret)
			goto out_unlock;
	}
	/* From here a failure leaves the set configurable in the library
	 * and ready in the module: a retry does only what is left. */
	ret = vdi_server_read_config(set, &set->cfg);
	if (ret)
		goto out_unlock;
	if (!set->area.base) {
		ret = vdi_area_map(&set->area, set->fd, set->cfg.bufferAreaSize);
		if (ret)
			goto out_unlock;
	}
	ret = vdi_buffers_reset(&set->bufs, set->cfg.bufferAreaSize);
	if (ret)
		goto out_unlock;
	__atomic_store_n(&set->phase, VDI_SRV_READY, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&set->lock);
	vdi_srv_leave(set, &call);
	return ret;
}

VDI_EXPORT int vdi_server_open_device(vdi_server_set *set, const char *name,
				      vdi_server_device **out)
{
	struct vdi_open_device arg = { .flags = O_CLOEXEC };
	struct vdi_srv_call call;
	vdi_server_device *dev;
	int fd, ret;

	if (!set || !out || !name || strlen(name) >= sizeof(arg.name))
		return vdi_fail(VD_E_INVALID, "OpenDevice: bad argument");
	*out = NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return vdi_fail(VD_E_MEMORY, "OpenDevice: no memory");
	ret = vdi_srv_enter(set, &call, "OpenDevice");
	if (ret) {
		free(dev);
		return ret;
	}
	strcpy(arg.name, name);
	pthread_mutex_lock(&set->lock);
	fd = ioctl(set->fd, VDI_IOC_OPEN_DEVICE, &arg);
	if (fd < 0) {
		ret = vdi_from_errno(errno, "OpenDevice");
		pthread_mutex_unlock(&set->lock);
		free(dev);
		goto out_leave;
	}
	vdi_fd_track(fd);
	dev->set = set;
	dev->fd = fd;
	dev->index = arg.index;
	set->devs[set->ndevs++] = dev;
	pthread_mutex_unlock(&set->lock);
	*out = dev;
out_leave:
	vdi_srv_leave(set, &call);
	return ret;
}

/* The set is READY and not aborted: NOERROR, else the code that says why. */
static int vdi_srv_buffers_usable(vdi_server_set *set, const char *what)
{
	if (vdi_srv_aborted(set))
		return vdi_fail(VD_E_ABORT, "%s: the set is aborted", what);
	if (vdi_srv_phase(set) != VDI_SRV_READY)
		return vdi_fail(VD_E_PROTOCOL, "%s: before EndConfiguration",
				what);
	return NOERROR;
}

VDI_EXPORT int vdi_server_allocate_buffer(vdi_server_set *set,
					  uint8_t **buffer, uint32_t size,
					  uint32_t alignment)
{
	struct vdi_srv_call call;
	uint64_t offset;
	int ret;

	if (!set || !buffer || !vdi_align_ok(alignment))
		return vdi_fail(VD_E_INVALID, "AllocateBuffer: bad argument "
				"(alignment: a power of two up to 64 KiB)");
	*buffer = NULL;
	if (!size)
		return vdi_fail(VD_E_INVALID, "AllocateBuffer: size 0");
	ret = vdi_srv_enter(set, &call, "AllocateBuffer");
	if (ret)
		return ret;
	ret = vdi_srv_buffers_usable(set, "AllocateBuffer");
	if (!ret)
		ret = vdi_buffers_alloc(&set->bufs, size, alignment, &offset);
	if (!ret)
		*buffer = set->area.base + offset;
	vdi_srv_leave(set, &call);
	return ret;
}

VDI_EXPORT int vdi_server_free_buffer(vdi_server_set *set, uint8_t *buffer,
				      uint32_t size)
{
	struct vdi_srv_call call;
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "FreeBuffer: NULL set");
	ret = vdi_srv_enter(set, &call, "FreeBuffer");
	if (ret)
		return ret;
	if (vdi_srv_phase(set) != VDI_SRV_READY ||
	    !vdi_area_holds(&set->area, buffer, size))
		ret = vdi_fail(VD_E_INVALID, "FreeBuffer: not a buffer of "
			       "this set");
	else if (vdi_srv_aborted(set))
		/* Close releases it. */
		ret = vdi_fail(VD_E_ABORT, "FreeBuffer: the set is aborted");
	else
		ret = vdi_buffers_free(&set->bufs, buffer - set->area.base,
				       size);
	vdi_srv_leave(set, &call);
	return ret;
}

VDI_EXPORT int vdi_server_is_shared_buffer(vdi_server_set *set,
					   const uint8_t *buffer)
{
	struct vdi_srv_call call;
	int ret = 0;

	if (!set || vdi_srv_enter(set, &call, "IsSharedBuffer"))
		return 0;
	if (vdi_srv_phase(set) == VDI_SRV_READY &&
	    vdi_area_holds(&set->area, buffer, 1))
		ret = vdi_buffers_is_allocated(&set->bufs,
					       buffer - set->area.base);
	vdi_srv_leave(set, &call);
	return ret;
}

/* Call a command's routine, if it has one. */
static void vdi_server_call_routine(VDS_Command *cmd)
{
	VDS_CompletionRoutine routine;

	routine = (VDS_CompletionRoutine)(uintptr_t)cmd->completionRoutine;
	if (routine)
		routine(cmd);
}

static void vdi_server_deliver(const struct vdi_completion *c)
{
	VDS_Command *cmd = (VDS_Command *)(uintptr_t)c->cookie;

	vdi_handoff_acquire(cmd);
	cmd->completionCode = (int32_t)c->completion_code;
	cmd->bytesTransferred = (int32_t)c->bytes_transferred;
	cmd->outPosition = c->position;
	vdi_server_call_routine(cmd);
}

/* A SendCommand failure: tell the routine too, as VDI does. */
static int vdi_send_failed(VDS_Command *cmd, int code, int32_t completion,
			   const char *why)
{
	int ret = vdi_fail(code, "SendCommand: %s", why);

	cmd->completionCode = completion;
	cmd->bytesTransferred = 0;
	cmd->outPosition = 0;
	vdi_server_call_routine(cmd);
	return ret;
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

/*
 * A collected command the module refused when the agent handed it over:
 * its routine gets what a SendCommand refused at once would have given it.
 * The library checked it as the module checks a command (EINVAL cannot
 * come back for one), so any other refusal too is a device that does not
 * take it: ERROR_INVALID_HANDLE, so that no routine is ever left untold.
 */
static void vdi_send_refused_late(VDS_Command *cmd, int err)
{
	if (err == ENOBUFS || err == EIO || err == EPROTO ||
	    err == ECONNABORTED)
		vdi_send_refused(cmd, err);
	else
		vdi_send_failed(cmd, VD_E_PROTOCOL, ERROR_INVALID_HANDLE,
				"the module refused a collected command");
}

/*
 * A slot of device @index for one more command (API 1.3): false when the
 * library's count says its queue is full.
 */
static bool vdi_slot_take(vdi_server_set *set, uint32_t index)
{
	unsigned int *n = &set->outstanding[index];
	unsigned int v = __atomic_load_n(n, __ATOMIC_RELAXED);

	do {
		if (v >= set->depth)
			return false;
	} while (!__atomic_compare_exchange_n(n, &v, v + 1, true,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

static void vdi_slot_give(vdi_server_set *set, uint32_t index, unsigned int n)
{
	if (index < VDI_MAX_DEVICES && n)
		__atomic_sub_fetch(&set->outstanding[index], n,
				   __ATOMIC_RELAXED);
}

/*
 * ---- The completion agent with VDI_IOC_ENTER (API 1.3) ----
 *
 * [I] The spec leaves it to the implementation on which thread a routine
 * runs and when a SendCommand reaches the device; libvdi's choice: a
 * SendCommand made on the agent's own thread (by a routine) is checked,
 * counted and then collected, not sent: the agent's next VDI_IOC_ENTER
 * hands every collected command to the module together with the wait for
 * the next completions, one system call for both.  The agent makes that
 * call before it could sleep, so nothing collected waits for anything; it
 * returns only from an ENTER that took every collected command.  What the
 * module refuses there (the set aborted, the device in IO-ERROR or closed)
 * is told to the command's routine, once, on the agent's thread, before
 * anything else: as SendCommand would have told it, only later.  Sends
 * from any other thread go to the module at once, as before.
 */
struct vdi_refusal {
	VDS_Command *cmd;
	uint32_t index;			/* its device's */
	int err;			/* the module's errno */
};

struct vdi_agent {
	vdi_server_set *set;
	struct vdi_agent *outer;	/* an agent of another set, if this
					 * one runs inside its routine */
	/*
	 * Every entry holds a slot of its device (vdi_slot_take()) until it
	 * is in the module or its routine is told: there are never more than
	 * @cap (devices x queue depth) of them in all.
	 */
	unsigned int cap;		/* 0: nothing is collected */
	struct vdi_send_to *pend;	/* collected, in order */
	unsigned int npend;
	struct vdi_refusal *refused;	/* refused[rhead..nrefused): to tell */
	unsigned int rhead, nrefused;
};

/* The agent this thread runs, if any: the one whose routines it runs. */
static __thread struct vdi_agent *vdi_agent_self;

/*
 * The agent collecting for @set on this thread, or NULL.  Only the
 * innermost one collects: an agent run from a routine of another set's
 * agent blocks that one, whose sends must then go at once.
 */
static struct vdi_agent *vdi_agent_of(const vdi_server_set *set)
{
	struct vdi_agent *a = vdi_agent_self;

	return a && a->set == set && a->cap ? a : NULL;
}

/* Collect a checked command that holds a slot of device @index. */
static void vdi_agent_collect(struct vdi_agent *a, VDS_Command *cmd,
			      uint32_t index, uint64_t offset)
{
	a->pend[a->npend++] = (struct vdi_send_to) {
		.send = {
			.cookie = (uintptr_t)cmd,
			.code = (uint32_t)cmd->commandCode,
			.size = (uint32_t)cmd->size,
			.position = cmd->inPosition,
			.buf_offset = offset,
		},
		.device_index = index,
	};
}

static void vdi_agent_refuse(struct vdi_agent *a, unsigned int i, int err)
{
	unsigned int live = a->nrefused - a->rhead;

	if (a->nrefused == a->cap) {
		memmove(a->refused, a->refused + a->rhead,
			live * sizeof(*a->refused));
		a->rhead = 0;
		a->nrefused = live;
	}
	a->refused[a->nrefused++] = (struct vdi_refusal) {
		.cmd = (VDS_Command *)(uintptr_t)a->pend[i].send.cookie,
		.index = a->pend[i].device_index,
		.err = err,
	};
}

/*
 * The first @done collected commands are in the module; the next one, if
 * @err, was refused: set it aside to be told (an abort refuses them all).
 */
static void vdi_agent_handed(struct vdi_agent *a, unsigned int done, int err)
{
	unsigned int i, gone = done;

	if (err && done < a->npend) {
		if (err == ECONNABORTED) {
			/* Final: the rest would be refused one by one. */
			for (i = done; i < a->npend; i++)
				vdi_agent_refuse(a, i, err);
			gone = a->npend;
		} else {
			vdi_agent_refuse(a, done, err);
			gone = done + 1;
		}
	}
	if (gone < a->npend)
		memmove(a->pend, a->pend + gone,
			(a->npend - gone) * sizeof(*a->pend));
	a->npend -= gone;
}

/* Tell each refused command's routine, in order (they may send again). */
static void vdi_agent_tell(struct vdi_agent *a)
{
	struct vdi_refusal r;

	while (a->rhead < a->nrefused) {
		r = a->refused[a->rhead++];
		if (a->rhead == a->nrefused)
			a->rhead = a->nrefused = 0;
		vdi_slot_give(a->set, r.index, 1);
		vdi_send_refused_late(r.cmd, r.err);
	}
}

/*
 * One VDI_IOC_ENTER on the set: hand over the first VDI_BATCH_MAX collected
 * commands, then reap up to @room completions into @done, waiting as the
 * agent does.  The reaped count, or -errno (0 and *@refused: a collected
 * command was refused, the call reaped nothing).
 */
static int vdi_agent_enter(struct vdi_agent *a, struct vdi_completion *done,
			   unsigned int room, unsigned int spin, bool *refused)
{
	struct vdi_enter e = {
		.submit = (uintptr_t)a->pend,
		.submit_count = a->npend < VDI_BATCH_MAX ? a->npend :
			       VDI_BATCH_MAX,
		.reap = (uintptr_t)done,
		.reap_count = room,
		.timeout_ms = room ? -1 : 0,
		.spin_us = room ? spin : 0,
	};
	int n, err;

	n = ioctl(a->set->fd, VDI_IOC_ENTER, &e);
	err = n < 0 ? errno : 0;
	/* Submitting does not wait: a signal interrupts only the reap. */
	*refused = err && err != EINTR && e.submitted < e.submit_count;
	vdi_agent_handed(a, e.submitted, *refused ? err : 0);
	if (*refused)
		return 0;
	errno = err;
	return n;
}

/*
 * Hand every collected command to the module now, without a wait (before
 * CloseDevice on the agent's thread, which must come after them).
 */
static void vdi_agent_flush(struct vdi_agent *a)
{
	bool refused;

	while (a->npend)
		vdi_agent_enter(a, NULL, 0, 0, &refused);
}

/* Reaped: give back their slots first, then run their routines. */
static void vdi_agent_deliver(vdi_server_set *set,
			      const struct vdi_completion *done, int n)
{
	int i;

	if (set->has_enter)
		for (i = 0; i < n; i++)
			vdi_slot_give(set, done[i].device_index, 1);
	for (i = 0; i < n; i++)
		vdi_server_deliver(&done[i]);
}

static int vdi_agent_loop_enter(struct vdi_agent *a)
{
	struct vdi_completion done[VDI_AGENT_BATCH];
	struct vdi_spin spin = { 0 };
	unsigned int us;
	uint64_t t0 = 0;
	bool refused;
	int n, err;

	for (;;) {
		vdi_agent_tell(a);
		/* More than one call takes: the first ones without a wait. */
		if (a->npend > VDI_BATCH_MAX) {
			vdi_agent_enter(a, NULL, 0, 0, &refused);
			continue;
		}
		us = vdi_spin_plan(&spin, -1);
		if (us)
			t0 = vdi_now_us();
		n = vdi_agent_enter(a, done, VDI_AGENT_BATCH, us, &refused);
		err = n < 0 ? errno : 0;
		if (refused)
			continue;
		if (us && err != EINTR)
			vdi_spin_learn(&spin, us, vdi_now_us() - t0, n > 0);
		if (n < 0) {
			if (err == EINTR)
				continue;
			if (err == ESHUTDOWN)
				return NOERROR;	/* every device closed */
			return vdi_from_errno(err, "ExecuteCompletionAgent");
		}
		vdi_agent_deliver(a->set, done, n);
	}
}

/* The completion agent with the calls of API 1.2 (an older module). */
static int vdi_agent_loop_polling(vdi_server_set *set)
{
	struct vdi_completion done[VDI_AGENT_BATCH];
	struct vdi_batch b = {
		.entries = (uintptr_t)done,
		.count = VDI_AGENT_BATCH,
		.timeout_ms = -1,
	};
	struct vdi_spin spin = { 0 };
	int n;

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
		vdi_agent_deliver(set, done, n);
	}
}

/*
 * The module's queue depth, which the library's counts use (API 1.2's
 * figures, which every module with VDI_IOC_ENTER has).  The caller holds
 * @lock, before the agent first runs; a module that cannot say leaves the
 * set on the calls of API 1.2.
 */
static void vdi_server_learn_depth(vdi_server_set *set)
{
	struct vdi_set_stats ss;
	struct vdi_stats_req req = {
		.set = (uintptr_t)&ss,
		.set_size = sizeof(ss),
		.dev_size = sizeof(struct vdi_dev_stats),
	};

	if (!set->has_enter || set->depth)
		return;
	if (ioctl(set->fd, VDI_IOC_SET_STATS, &req) < 0 || !ss.queue_depth)
		set->has_enter = false;
	else
		set->depth = ss.queue_depth;
}

static int vdi_server_agent_loop(vdi_server_set *set)
{
	struct vdi_agent a = { .set = set };
	size_t cap;
	int ret;

	if (!set->has_enter)
		return vdi_agent_loop_polling(set);
	/* Without the memory, routines' sends go to the module at once. */
	cap = (size_t)set->cfg.deviceCount * set->depth;
	a.pend = malloc(cap * sizeof(*a.pend));
	a.refused = malloc(cap * sizeof(*a.refused));
	if (a.pend && a.refused)
		a.cap = (unsigned int)cap;
	/* An agent run from a routine: what the outer one collected goes now. */
	while (vdi_agent_self && (vdi_agent_self->npend ||
				  vdi_agent_self->nrefused)) {
		vdi_agent_flush(vdi_agent_self);
		vdi_agent_tell(vdi_agent_self);
	}
	a.outer = vdi_agent_self;
	vdi_agent_self = &a;
	ret = vdi_agent_loop_enter(&a);
	vdi_agent_self = a.outer;
	free(a.pend);
	free(a.refused);
	return ret;
}

VDI_EXPORT int vdi_server_execute_completion_agent(vdi_server_set *set)
{
	struct vdi_srv_call call;
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "ExecuteCompletionAgent: NULL set");
	ret = vdi_srv_enter(set, &call, "ExecuteCompletionAgent");
	if (ret)
		return ret;
	pthread_mutex_lock(&set->lock);
	if (set->phase != VDI_SRV_READY || set->agent_running) {
		ret = vdi_fail(VD_E_PROTOCOL, "ExecuteCompletionAgent: %s",
			       set->agent_running ? "already running" :
			       "before EndConfiguration");
		pthread_mutex_unlock(&set->lock);
		goto out_leave;
	}
	vdi_server_learn_depth(set);
	__atomic_store_n(&set->agent_running, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&set->agent_cv);
	pthread_mutex_unlock(&set->lock);

	ret = vdi_server_agent_loop(set);

	pthread_mutex_lock(&set->lock);
	__atomic_store_n(&set->agent_running, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&set->agent_cv);
	pthread_mutex_unlock(&set->lock);
out_leave:
	vdi_srv_leave(set, &call);
	return ret;
}

/* @until: CLOCK_MONOTONIC (agent_cv's clock) @ms milliseconds from now. */
static void vdi_srv_deadline(struct timespec *until, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, until);
	until->tv_sec += ms / 1000;
	until->tv_nsec += ms % 1000 * 1000000;
	if (until->tv_nsec >= 1000000000) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000;
	}
}

/* Extra: wait until ExecuteCompletionAgent runs, so commands may be sent. */
VDI_EXPORT int vdi_server_wait_agent(vdi_server_set *set, int64_t timeout)
{
	struct vdi_srv_call call;
	struct timespec until;
	int ret, err = 0;

	if (!set)
		return vdi_fail(VD_E_INVALID, "WaitAgent: NULL set");
	timeout = vdi_timeout(timeout);
	if (timeout > VDI_WAIT_FOREVER_MS)
		timeout = -1;
	ret = vdi_srv_enter(set, &call, "WaitAgent");
	if (ret)
		return ret;
	if (timeout > 0)
		vdi_srv_deadline(&until, timeout);
	pthread_mutex_lock(&set->lock);
	while (!set->agent_running && !set->closing && err != ETIMEDOUT) {
		if (!timeout)
			err = ETIMEDOUT;
		else if (timeout < 0)
			pthread_cond_wait(&set->agent_cv, &set->lock);
		else
			err = pthread_cond_timedwait(&set->agent_cv, &set->lock,
						     &until);
	}
	if (set->agent_running)
		ret = NOERROR;
	else if (set->closing)
		ret = vdi_fail(VD_E_ABORT, "WaitAgent: the set is being "
			       "closed");
	else
		ret = vdi_fail(VD_E_TIMEOUT, "WaitAgent: the completion agent "
			       "did not start");
	pthread_mutex_unlock(&set->lock);
	vdi_srv_leave(set, &call);
	return ret;
}

/* Why the library refuses a command before the module sees it. */
enum vdi_send_why {
	VDI_SEND_OK,
	VDI_SEND_NULL,		/* VD_E_INVALID, no routine */
	VDI_SEND_OUTSIDE,	/* buffer not in the area: VD_E_INVALID */
	VDI_SEND_BAD,		/* collected: what the module calls EINVAL */
	VDI_SEND_NO_AGENT,	/* VD_E_PROTOCOL, ERROR_INVALID_HANDLE */
	VDI_SEND_ABORTED,	/* VD_E_ABORT, ERROR_OPERATION_ABORTED */
	VDI_SEND_CLOSED,	/* collected: VD_E_PROTOCOL, ERROR_INVALID_HANDLE */
	VDI_SEND_FULL,		/* collected: VD_E_QUEUE_FULL, ..._RESOURCES */
};

/*
 * What the library itself refuses in a command before the module sees it:
 * VDI_SEND_OK (and its buffer offset), or why (told only once every
 * command before it is queued).
 */
static enum vdi_send_why vdi_send_check(vdi_server_set *set, VDS_Command *cmd,
					uint64_t *offset)
{
	*offset = VDI_NO_BUFFER;
	if (!cmd)
		return VDI_SEND_NULL;
	if (!__atomic_load_n(&set->agent_running, __ATOMIC_ACQUIRE))
		/* An abort ends the agent: say abort. */
		return vdi_srv_aborted(set) ? VDI_SEND_ABORTED :
					      VDI_SEND_NO_AGENT;
	if (!cmd->buffer)
		return VDI_SEND_OK;
	if (!vdi_area_holds(&set->area, cmd->buffer, 0))
		return VDI_SEND_OUTSIDE;
	*offset = cmd->buffer - set->area.base;
	return VDI_SEND_OK;
}

/*
 * A command to be collected: what the module would refuse at once, asked
 * here because the module sees it only later.  Its checks of a command
 * (include/uapi/linux/vdi.h: EINVAL), then the device closed by
 * CloseDevice, then the slot the library's count must find free.
 */
static enum vdi_send_why vdi_collect_check(vdi_server_device *dev,
					   const VDS_Command *cmd,
					   uint64_t offset)
{
	vdi_server_set *set = dev->set;
	uint32_t size = (uint32_t)cmd->size;
	uint64_t area = set->area.size;

	if (cmd->commandCode < VDC_Read || cmd->commandCode > VDI_VDC_MAX)
		return VDI_SEND_BAD;
	if (cmd->commandCode == VDC_Read || cmd->commandCode == VDC_Write) {
		if (size > set->cfg.maxTransferSize || offset > area ||
		    size > area - offset)
			return VDI_SEND_BAD;
	} else if (offset != VDI_NO_BUFFER && offset >= area) {
		return VDI_SEND_BAD;
	}
	if (__atomic_load_n(&dev->closed, __ATOMIC_ACQUIRE))
		return VDI_SEND_CLOSED;
	if (!vdi_slot_take(set, dev->index))
		return VDI_SEND_FULL;
	return VDI_SEND_OK;
}

/* Report why @cmd, the first command not sent, was refused. */
static int vdi_send_bad(VDS_Command *cmd, enum vdi_send_why why)
{
	switch (why) {
	case VDI_SEND_NULL:
		return vdi_fail(VD_E_INVALID, "SendCommand: NULL command");
	case VDI_SEND_OUTSIDE:
		return vdi_fail(VD_E_INVALID, "SendCommand: buffer is not in "
				"the set's area");
	case VDI_SEND_BAD:
		return vdi_fail(VD_E_INVALID, "SendCommand: code outside "
				"1..19, or a Read/Write whose size is over "
				"maxTransferSize or whose buffer is missing");
	case VDI_SEND_ABORTED:
		return vdi_send_failed(cmd, VD_E_ABORT, ERROR_OPERATION_ABORTED,
				       "the set is aborted");
	case VDI_SEND_NO_AGENT:
		return vdi_send_failed(cmd, VD_E_PROTOCOL, ERROR_INVALID_HANDLE,
				       "the completion agent is not running");
	case VDI_SEND_CLOSED:
		return vdi_send_failed(cmd, VD_E_PROTOCOL, ERROR_INVALID_HANDLE,
				       "the device is closed");
	case VDI_SEND_FULL:
		return vdi_send_failed(cmd, VD_E_QUEUE_FULL,
				       ERROR_NO_SYSTEM_RESOURCES,
				       "the device's queue is full");
	default:
		return NOERROR;
	}
}

#define VDI_SEND_BATCH 64

/*
 * Send to the module at once.  With VDI_IOC_ENTER the commands are counted
 * first (the module's answer stays the one that counts, so the count may
 * pass the depth for a moment: only collecting is held to it).
 */
static int vdi_send_loop(vdi_server_device *dev, VDS_Command **cmds,
			 unsigned int count, unsigned int *sent)
{
	struct vdi_send s[VDI_SEND_BATCH];
	struct vdi_batch b = { .entries = (uintptr_t)s };
	vdi_server_set *set = dev->set;
	enum vdi_send_why why;
	VDS_Command *cmd;
	unsigned int i;
	uint64_t off;
	bool counted;
	int n, err;

	while (*sent < count) {
		why = VDI_SEND_OK;
		for (i = 0; i < VDI_SEND_BATCH && *sent + i < count; i++) {
			cmd = cmds[*sent + i];
			why = vdi_send_check(set, cmd, &off);
			if (why)
				break;
			s[i].cookie = (uintptr_t)cmd;
			s[i].code = (uint32_t)cmd->commandCode;
			s[i].size = (uint32_t)cmd->size;
			s[i].position = cmd->inPosition;
			s[i].buf_offset = off;
			vdi_handoff_release(cmd);
		}
		if (i) {
			/* The agent runs (checked): has_enter is final. */
			counted = set->has_enter;
			if (counted)
				__atomic_add_fetch(&set->outstanding[dev->index],
						   i, __ATOMIC_RELAXED);
			b.count = i;
			n = ioctl(dev->fd, VDI_IOC_SEND, &b);
			err = errno;
			if (counted)
				vdi_slot_give(set, dev->index,
					      n < 0 ? i : i - (unsigned int)n);
			if (n < 0)
				return vdi_send_refused(cmds[*sent], err);
			*sent += n;
			if ((unsigned int)n < i)
				continue;	/* the next call says why */
		}
		/* Every command before it is queued: now it fails, alone. */
		if (why)
			return vdi_send_bad(cmds[*sent], why);
	}
	return NOERROR;
}

/* On the agent's thread: collect for the agent's next VDI_IOC_ENTER. */
static int vdi_send_collect(struct vdi_agent *a, vdi_server_device *dev,
			    VDS_Command **cmds, unsigned int count,
			    unsigned int *sent)
{
	enum vdi_send_why why;
	VDS_Command *cmd;
	uint64_t off;

	for (; *sent < count; (*sent)++) {
		cmd = cmds[*sent];
		why = vdi_send_check(dev->set, cmd, &off);
		if (!why)
			why = vdi_collect_check(dev, cmd, off);
		if (why)
			return vdi_send_bad(cmd, why);
		vdi_handoff_release(cmd);
		vdi_agent_collect(a, cmd, dev->index, off);
	}
	return NOERROR;
}

VDI_EXPORT int vdi_server_send_commands(vdi_server_device *dev,
					VDS_Command **cmds, unsigned int count,
					unsigned int *sent)
{
	struct vdi_srv_call call;
	struct vdi_agent *a;
	int ret;

	if (!dev || !sent || (!cmds && count))
		return vdi_fail(VD_E_INVALID, "SendCommand: NULL argument");
	*sent = 0;
	if (vdi_srv_enter_closing(dev->set, &call)) {
		/* Close aborts the set: the first command is told so. */
		ret = count ? vdi_send_bad(cmds[0], VDI_SEND_ABORTED) : NOERROR;
	} else if ((a = vdi_agent_of(dev->set))) {
		ret = vdi_send_collect(a, dev, cmds, count, sent);
	} else {
		ret = vdi_send_loop(dev, cmds, count, sent);
	}
	vdi_srv_leave(dev->set, &call);
	return ret;
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
	struct vdi_srv_call call;
	struct vdi_agent *a;
	int ret;

	if (!dev)
		return vdi_fail(VD_E_INVALID, "CloseDevice: NULL device");
	ret = vdi_srv_enter(dev->set, &call, "CloseDevice");
	if (ret)
		return ret;
	/* A routine that sent and then closes: its commands go first. */
	a = vdi_agent_of(dev->set);
	if (a)
		vdi_agent_flush(a);
	if (ioctl(dev->fd, VDI_IOC_CLOSE_DEVICE, &(struct vdi_ctl){ 0 }) < 0)
		ret = vdi_from_errno(errno, "CloseDevice");
	if (ret == NOERROR || ret == VD_E_CLOSE)
		__atomic_store_n(&dev->closed, true, __ATOMIC_RELEASE);
	vdi_srv_leave(dev->set, &call);
	return ret;
}

VDI_EXPORT int vdi_server_signal_abort(vdi_server_set *set)
{
	struct vdi_srv_call call;
	int ret;

	if (!set)
		return vdi_fail(VD_E_INVALID, "SignalAbort: NULL set");
	ret = vdi_srv_enter(set, &call, "SignalAbort");
	if (ret)
		return NOERROR;		/* Close aborts it anyway */
	if (ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 }) < 0)
		ret = vdi_from_errno(errno, "SignalAbort");
	vdi_srv_leave(set, &call);
	return ret;
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

/* Close's look again at the calls inside, when no wake-up came. */
#define VDI_CLOSE_POLL_MS	2

/* Wait on @agent_cv (@lock held) for at most @ms milliseconds. */
static void vdi_srv_wait_ms(vdi_server_set *set, unsigned int ms)
{
	struct timespec until;

	vdi_srv_deadline(&until, ms);
	pthread_cond_timedwait(&set->agent_cv, &set->lock, &until);
}

VDI_EXPORT int vdi_server_close(vdi_server_set *set)
{
	struct vdi_srv_call call;
	unsigned int i;
	int ret = NOERROR;

	if (!set)
		return vdi_fail(VD_E_INVALID, "Close: NULL set");
	/* A fork()ed child's copy: its locks may be held by threads the
	 * child does not have, its area absent; left alone. */
	if (set->generation != vdi_generation())
		return vdi_fail(VD_E_PROTOCOL, "Close: the parent's set, in a "
				"fork()ed child: left alone");
	/* Waiting for the calls inside would wait for this one. */
	if (vdi_srv_inside(set))
		return vdi_fail(VD_E_PROTOCOL, "Close: called inside a call of "
				"this set (a completion routine); nothing done, "
				"Close it from another thread");
	/* Counted while it looks, so that another Close waits for it. */
	if (vdi_srv_enter_closing(set, &call)) {
		vdi_srv_leave(set, &call);
		return vdi_fail(VD_E_PROTOCOL, "Close: already closing");
	}
	pthread_mutex_lock(&set->lock);
	if (set->closing) {
		pthread_mutex_unlock(&set->lock);
		vdi_srv_leave(set, &call);
		return vdi_fail(VD_E_PROTOCOL, "Close: already closing");
	}
	__atomic_store_n(&set->closing, true, __ATOMIC_SEQ_CST);
	/* This call is not one to wait for. */
	vdi_srv_calls = call.outer;
	__atomic_sub_fetch(&set->users, 1, __ATOMIC_SEQ_CST);
	if (vdi_server_devices_open(set))
		ret = vdi_fail(VD_E_PROTOCOL, "Close: devices still open; "
			       "the set was aborted");
	/* Harmless after the normal end; otherwise it ends the agent. */
	ioctl(set->fd, VDI_IOC_SIGNAL_ABORT, &(struct vdi_ctl){ 0 });
	pthread_cond_broadcast(&set->agent_cv);
	/*
	 * The agent, WaitAgent and every other call of another thread.  Timed:
	 * a call that left just as Close began did not wake it (see
	 * vdi_srv_leave()).
	 */
	while (__atomic_load_n(&set->users, __ATOMIC_SEQ_CST))
		vdi_srv_wait_ms(set, VDI_CLOSE_POLL_MS);
	pthread_mutex_unlock(&set->lock);

	for (i = 0; i < set->ndevs; i++) {
		vdi_fd_close(set->devs[i]->fd);
		free(set->devs[i]);
	}
	vdi_area_unmap(&set->area);
	if (set->phase != VDI_SRV_CONNECTED)
		vdi_buffers_destroy(&set->bufs);
	vdi_fd_close(set->fd);
	pthread_cond_destroy(&set->agent_cv);
	pthread_mutex_destroy(&set->lock);
	free(set);
	return ret;
}

/* Extra: the module's figures for this set (vdi_stats(3)). */
VDI_EXPORT int vdi_server_get_stats(vdi_server_set *set, vdi_stats *st)
{
	struct vdi_srv_call call;
	int ret;

	if (!set || !st)
		return vdi_fail(VD_E_INVALID, "GetStats: NULL %s",
				set ? "stats" : "set");
	ret = vdi_srv_enter(set, &call, "GetStats");
	if (ret)
		return ret;
	ret = vdi_stats_read(set->fd, 0, st, "GetStats");
	vdi_srv_leave(set, &call);
	return ret;
}
