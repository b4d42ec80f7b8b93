// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: virtual device sets.
 *
 * Naming, access and scope, the configuration handshake between the client
 * and the server, the completion agent's wait, the watchdog and the one
 * abort routine every abnormal end goes through.
 */
#include <linux/bits.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fdtable.h>
#include <linux/ipc_namespace.h>
#include <linux/log2.h>
#include <linux/memcontrol.h>
#include <linux/nsproxy.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>

#include "vdi_internal.h"
#include "vdi_trace.h"

/* Protects vdi_sets, vdi_live_sets, each set's ->node, ->linked, ->live. */
DEFINE_MUTEX(vdi_sets_lock);
static LIST_HEAD(vdi_sets);
/*
 * Every set from its creation until it is freed, named or not, oldest
 * first: a set whose primary closed lives on (with its area) while a server
 * fd or a mapping holds it, and still counts against its creator's
 * max_sets_per_user.  LIST_SETS walks it too.
 */
LIST_HEAD(vdi_live_sets);

#define VDI_SZ_64K		0x10000U
#define VDI_MAX_TRANSFER	0x400000U	/* 4 MiB, BACKUP's ceiling */
#define VDI_MAX_IO_DEPTH	4		/* VDConfig.maxIODepth, fixed */
#define VDI_CLIENT_EXTRAS	0x3c80U		/* Discard, SnapshotPrepare,
						 * EnumFrozenFiles, VSSWriter,
						 * RequestComplete
						 */

/**
 * vdi_check_name() - check a set or device name copied from user space.
 * @name: VDI_NAME_MAX bytes.
 *
 * Names are 1..VDI_NAME_MAX-1 bytes, NUL-terminated inside the buffer, with
 * no backslash (VDI forbids it) and no control character.
 *
 * Context: any.
 * Return: 0 or -EINVAL.
 */
int vdi_check_name(const char *name)
{
	size_t len = strnlen(name, VDI_NAME_MAX);
	size_t i;

	if (!len || len == VDI_NAME_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (name[i] == '\\' || (unsigned char)name[i] < 0x20 ||
		    name[i] == 0x7f)
			return -EINVAL;
	return 0;
}

/* Find a linked set visible from the current task's namespaces. */
static struct vdi_set *vdi_set_lookup(const char *name)
{
	struct user_namespace *user_ns = current_user_ns();
	unsigned int inum = vdi_current_ipc_inum();
	struct vdi_set *set;

	lockdep_assert_held(&vdi_sets_lock);
	list_for_each_entry(set, &vdi_sets, node)
		if (set->user_ns == user_ns && set->ipc_ns_inum == inum &&
		    !strcmp(set->name, name))
			return set;
	return NULL;
}

static unsigned int vdi_sets_of(kuid_t uid)
{
	struct vdi_set *set;
	unsigned int n = 0;

	lockdep_assert_held(&vdi_sets_lock);
	list_for_each_entry(set, &vdi_live_sets, live)
		n += uid_eq(set->uid, uid);
	return n;
}

static int vdi_check_client_config(const struct vdi_config *c)
{
	u32 mode = c->features & VDI_VDF_MODE_MASK;

	if (c->device_count < 1 || c->device_count > VDI_MAX_DEVICES)
		return -EOPNOTSUPP;
	if (c->features & ~VDI_VDF_CLIENT_MASK)
		return -EOPNOTSUPP;
	/* Pipe-like or disk-like, each optionally removable, or tape-like. */
	if (mode & ~VDI_VDF_REMOVABLE && mode != VDI_VDF_LIKE_TAPE &&
	    (mode & ~VDI_VDF_REMOVABLE) != VDI_VDF_RANDOM_ACCESS)
		return -EOPNOTSUPP;
	if (c->features & ~(VDI_VDF_MODE_MASK | VDI_CLIENT_EXTRAS))
		return -EOPNOTSUPP;
	if (c->alignment && (!is_power_of_2(c->alignment) ||
			     c->alignment > VDI_SZ_64K))
		return -EOPNOTSUPP;
	if (c->prefix_zone_size > VDI_SZ_64K)
		return -EOPNOTSUPP;
	return 0;
}

static int vdi_creator_gid(const struct vdi_create *arg, kgid_t *gid)
{
	if (!(arg->flags & VDI_CREATE_GID)) {
		*gid = current_fsgid();
		return 0;
	}
	*gid = make_kgid(current_user_ns(), arg->gid);
	if (!gid_valid(*gid))
		return -EINVAL;
	if (!in_group_p(*gid) && !ns_capable(current_user_ns(), CAP_CHOWN))
		return -EPERM;
	return 0;
}

static struct vdi_set *vdi_set_alloc(const struct vdi_create *arg)
{
	u32 count = arg->config.device_count;
	struct vdi_set *set;
	u32 i;

	set = kzalloc(struct_size(set, devs, count), GFP_KERNEL_ACCOUNT);
	if (!set)
		return NULL;
	kref_init(&set->ref);
	INIT_LIST_HEAD(&set->node);
	INIT_LIST_HEAD(&set->live);
	mutex_init(&set->cfg_mutex);
	spin_lock_init(&set->lock);
	INIT_LIST_HEAD(&set->done);
	init_waitqueue_head(&set->cfg_wq);
	init_waitqueue_head(&set->cmpl_wq);
	for (i = 0; i < count; i++) {
		INIT_LIST_HEAD(&set->devs[i].queue);
		INIT_LIST_HEAD(&set->devs[i].free);
		init_waitqueue_head(&set->devs[i].cmd_wq);
		init_waitqueue_head(&set->devs[i].space_wq);
	}
	set->device_count = count;
	strscpy(set->name, arg->name, sizeof(set->name));
	strscpy(set->devs[0].name, arg->name, sizeof(set->devs[0].name));

	set->config = arg->config;
	set->config.block_size = 0;
	set->config.max_io_depth = 0;
	set->config.max_transfer_size = 0;
	set->config.buffer_area_size = 0;

	set->uid = current_fsuid();
	set->mode = arg->mode ? arg->mode : 0600;
	set->user_ns = get_user_ns(current_user_ns());
	set->ipc_ns_inum = vdi_current_ipc_inum();
	set->memcg = get_mem_cgroup_from_mm(current->mm);
	vdi_area_owner_init(set);
	vdi_stats_set_init(set);
	set->state = VDI_SET_CREATED;
	return set;
}

static void vdi_set_free(struct kref *ref)
{
	struct vdi_set *set = container_of(ref, struct vdi_set, ref);

	mutex_lock(&vdi_sets_lock);
	list_del_init(&set->live);
	mutex_unlock(&vdi_sets_lock);
	vdi_area_free(set);
	vdi_dev_free_slots(set);
	mem_cgroup_put(set->memcg);
	vdi_area_owner_put(set);
	vdi_stats_set_free(set);
	put_user_ns(set->user_ns);
	kfree(set);
}

/**
 * vdi_set_put() - drop a reference to a set, freeing it with the last one.
 * @set: the set.
 *
 * Context: process context (may free pages).
 */
void vdi_set_put(struct vdi_set *set)
{
	kref_put(&set->ref, vdi_set_free);
}

/* Give an endpoint its role; the caller holds vdi_sets_lock. */
static int vdi_file_bind(struct vdi_file *vf, struct vdi_set *set,
			 enum vdi_role role)
{
	lockdep_assert_held(&vdi_sets_lock);
	if (vf->set)
		return -EISCONN;
	vf->role = role;
	/* Pairs with smp_load_acquire() in the ioctl, poll and mmap paths. */
	smp_store_release(&vf->set, set);
	return 0;
}

/**
 * vdi_set_create() - create a named set for the primary client.
 * @vf: the endpoint; it becomes the set's primary client fd.
 * @arg: the checked-for-flags kernel copy of the request.
 *
 * Context: process context; takes vdi_sets_lock.
 * Return: 0, or -EINVAL, -EPERM, -EOPNOTSUPP, -EISCONN, -EEXIST, -EMFILE,
 * -ENOMEM.
 */
int vdi_set_create(struct vdi_file *vf, const struct vdi_create *arg)
{
	struct vdi_set *set;
	kgid_t gid;
	int ret;

	ret = vdi_check_name(arg->name);
	if (ret)
		return ret;
	if (arg->mode & ~0666U)
		return -EINVAL;
	if (!(arg->flags & VDI_CREATE_GID) && arg->gid)
		return -EINVAL;
	ret = vdi_check_client_config(&arg->config);
	if (ret)
		return ret;
	ret = vdi_creator_gid(arg, &gid);
	if (ret)
		return ret;

	set = vdi_set_alloc(arg);
	if (!set)
		return -ENOMEM;
	set->gid = gid;

	mutex_lock(&vdi_sets_lock);
	if (vf->set) {
		ret = -EISCONN;
		goto out_unlock;
	}
	if (vdi_set_lookup(set->name)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	if (vdi_sets_of(set->uid) >= vdi_max_sets_per_user) {
		ret = -EMFILE;
		goto out_unlock;
	}
	list_add_tail(&set->node, &vdi_sets);
	list_add_tail(&set->live, &vdi_live_sets);
	set->linked = true;
	trace_vdi_create(set);
	ret = vdi_file_bind(vf, set, VDI_ROLE_CLIENT);
	mutex_unlock(&vdi_sets_lock);
	return ret;

out_unlock:
	mutex_unlock(&vdi_sets_lock);
	vdi_set_put(set);
	return ret;
}

static int vdi_set_permission(const struct vdi_set *set)
{
	umode_t mode = set->mode;

	if (uid_eq(current_fsuid(), set->uid))
		mode >>= 6;
	else if (in_group_p(set->gid))
		mode >>= 3;
	if ((mode & 06) == 06)
		return 0;
	if (ns_capable(set->user_ns, CAP_SYS_ADMIN))
		return 0;
	return -EACCES;
}

/* Admit a server or a secondary client; the caller holds set->lock. */
static int vdi_set_admit(struct vdi_set *set, enum vdi_role role)
{
	lockdep_assert_held(&set->lock);
	if (set->state == VDI_SET_ABORTED)
		return -ECONNABORTED;
	if (role == VDI_ROLE_SERVER) {
		if (set->has_server)
			return -EBUSY;
		set->has_server = true;
		set->server_pid = get_pid(task_tgid(current));
		set->state = VDI_SET_CONNECTED;
		return 0;
	}
	if (!set->client_configured || set->state == VDI_SET_DONE)
		return -EPROTO;
	set->secondaries++;
	return 0;
}

/**
 * vdi_set_open() - open an existing set as its server or a secondary client.
 * @vf: the endpoint.
 * @arg: the checked kernel copy of the request.
 * @role: VDI_ROLE_SERVER or VDI_ROLE_SECONDARY.
 *
 * Context: process context; takes vdi_sets_lock and the set's lock.
 * Return: 0, or -EINVAL, -EISCONN, -ENOENT, -EACCES, -EBUSY, -EPROTO,
 * -ECONNABORTED.
 */
int vdi_set_open(struct vdi_file *vf, const struct vdi_open *arg,
		 enum vdi_role role)
{
	struct vdi_set *set;
	int ret;

	ret = vdi_check_name(arg->name);
	if (ret)
		return ret;

	mutex_lock(&vdi_sets_lock);
	if (vf->set) {
		ret = -EISCONN;
		goto out_unlock;
	}
	set = vdi_set_lookup(arg->name);
	if (!set) {
		ret = -ENOENT;
		goto out_unlock;
	}
	ret = vdi_set_permission(set);
	if (ret)
		goto out_unlock;

	spin_lock(&set->lock);
	ret = vdi_set_admit(set, role);
	spin_unlock(&set->lock);
	if (ret)
		goto out_unlock;

	kref_get(&set->ref);
	trace_vdi_open(set, role, VDI_TRACE_SET);
	ret = vdi_file_bind(vf, set, role);
out_unlock:
	mutex_unlock(&vdi_sets_lock);
	return ret;
}

/**
 * vdi_set_get_info() - who owns the set of a set fd.
 * @vf: the endpoint, with any role.
 * @arg: kernel copy of the request, checked; the owner is filled in.
 *
 * What a server checks right after VDI_IOC_OPEN_SERVER, before it sends
 * anything: any user may create a set under the name it expects.  The
 * owner's uid and gid are given in the caller's user namespace (the
 * overflow ids where they have no mapping there).  Owner, group and mode
 * are fixed when the set is created: no lock is needed to read them.
 *
 * Context: process context.
 * Return: 0, or -EPROTO (the endpoint has no set).
 */
long vdi_set_get_info(struct vdi_file *vf, struct vdi_set_info *arg)
{
	struct user_namespace *ns = current_user_ns();
	struct vdi_set *set = vdi_file_set(vf);

	if (!set)
		return -EPROTO;
	arg->uid = from_kuid_munged(ns, set->uid);
	arg->gid = from_kgid_munged(ns, set->gid);
	arg->mode = set->mode;
	return 0;
}

static bool vdi_config_final(struct vdi_set *set)
{
	enum vdi_set_state state = READ_ONCE(set->state);

	return state == VDI_SET_READY || state == VDI_SET_DONE ||
	       state == VDI_SET_ABORTED;
}

/**
 * vdi_set_get_config() - read the set's configuration.
 * @vf: a set fd.
 * @arg: kernel copy of the request; ->config is filled in.
 *
 * The server gets the current configuration at once.  A client waits, up to
 * ->timeout_ms, for the server's END_CONFIG.
 *
 * Context: process context; may sleep (client).
 * Return: 0, -EPROTO (no set), -ETIMEDOUT, -ERESTARTSYS or -ERESTARTNOHAND
 * (a signal), -EBADF (the caller closed the fd) or -ECONNABORTED.
 */
long vdi_set_get_config(struct vdi_file *vf, struct vdi_get_config *arg)
{
	struct vdi_set *set = vdi_file_set(vf);
	int flushes, ret;

	if (!set)
		return -EPROTO;

	if (vf->role != VDI_ROLE_SERVER && !vdi_config_final(set)) {
		if (!arg->timeout_ms)
			return -ETIMEDOUT;
		ret = vdi_file_watch(vf, &flushes);
		if (ret)
			return ret;
		ret = vdi_wait_event(set->cfg_wq, vdi_config_final(set) ||
				     vdi_file_closed(vf, &flushes),
				     vdi_deadline(arg->timeout_ms));
		if (!ret && vdi_file_closed(vf, &flushes))
			ret = -EBADF;
		if (ret)
			return ret;
	}

	spin_lock(&set->lock);
	if (set->state == VDI_SET_ABORTED) {
		spin_unlock(&set->lock);
		return -ECONNABORTED;
	}
	arg->config = set->config;
	if (vf->role == VDI_ROLE_CLIENT)
		set->client_configured = true;
	spin_unlock(&set->lock);
	return 0;
}

static int vdi_check_begin_config(const struct vdi_set *set,
				  const struct vdi_begin_config *arg)
{
	u32 dir = VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA;
	u32 allowed = dir;

	if (set->config.features & VDI_VDF_REQUEST_COMPLETE)
		allowed |= VDI_VDF_COMPLETE_ENABLED;
	if (!(arg->features & dir) || arg->features & ~allowed)
		return -EINVAL;
	if (!is_power_of_2(arg->block_size) || arg->block_size < 512 ||
	    arg->block_size > VDI_SZ_64K)
		return -EINVAL;
	if (arg->alignment && (!is_power_of_2(arg->alignment) ||
			       arg->alignment < arg->block_size ||
			       arg->alignment > VDI_SZ_64K))
		return -EINVAL;
	if (!arg->max_transfer_size || arg->max_transfer_size % VDI_SZ_64K ||
	    arg->max_transfer_size > VDI_MAX_TRANSFER)
		return -EINVAL;
	if (arg->queue_depth > vdi_max_queue_depth)
		return -EINVAL;
	return 0;
}

/**
 * vdi_set_begin_config() - the server's BeginConfiguration.
 * @set: the set, opened by the caller as its server.
 * @arg: kernel copy of the request, reserved fields checked.
 *
 * Context: process context; takes the set's lock.
 * Return: 0, -EINVAL, -EPROTO (not connected) or -ECONNABORTED.
 */
long vdi_set_begin_config(struct vdi_set *set,
			  const struct vdi_begin_config *arg)
{
	struct vdi_config *c = &set->config;
	long ret;

	spin_lock(&set->lock);
	if (set->state == VDI_SET_ABORTED) {
		ret = -ECONNABORTED;
		goto out_unlock;
	}
	if (set->state != VDI_SET_CONNECTED) {
		ret = -EPROTO;
		goto out_unlock;
	}
	ret = vdi_check_begin_config(set, arg);
	if (ret)
		goto out_unlock;

	c->features |= arg->features;
	c->block_size = arg->block_size;
	c->alignment = max3(c->alignment, arg->alignment, arg->block_size);
	c->max_transfer_size = arg->max_transfer_size;
	c->max_io_depth = VDI_MAX_IO_DEPTH;
	set->begin_timeout_ms = arg->timeout_ms;
	set->queue_depth = arg->queue_depth ? arg->queue_depth :
					      vdi_default_queue_depth;
	set->state = VDI_SET_CONFIGURING;
	trace_vdi_config(set, VDI_TRACE_CONFIG_BEGIN);
out_unlock:
	spin_unlock(&set->lock);
	return ret;
}

static int vdi_set_state_is(struct vdi_set *set, enum vdi_set_state want)
{
	enum vdi_set_state state;

	spin_lock(&set->lock);
	state = set->state;
	spin_unlock(&set->lock);
	if (state == want)
		return 0;
	return state == VDI_SET_ABORTED ? -ECONNABORTED : -EPROTO;
}

/**
 * vdi_set_end_config() - the server's EndConfiguration.
 * @set: the set, opened by the caller as its server.
 * @arg: kernel copy of the request, reserved fields checked.
 *
 * Allocates the buffer area and the devices' command slots, then releases
 * the client's GET_CONFIG.  On failure the set stays configuring.
 *
 * Context: process context; sleeps; takes cfg_mutex and the set's lock.
 * Return: 0, -E2BIG, -ENOMEM, -EPROTO (not configuring) or -ECONNABORTED.
 */
long vdi_set_end_config(struct vdi_set *set, const struct vdi_end_config *arg)
{
	struct vdi_slot *slots[VDI_MAX_DEVICES];
	u64 limit = (u64)vdi_max_area_mb << 20;
	long ret;

	if (arg->area_size > limit || arg->area_size > U32_MAX - PAGE_SIZE + 1)
		return -E2BIG;

	mutex_lock(&set->cfg_mutex);
	ret = vdi_set_state_is(set, VDI_SET_CONFIGURING);
	if (ret)
		goto out_unlock;
	ret = vdi_area_alloc(set, arg->area_size);
	if (ret)
		goto out_unlock;
	ret = vdi_dev_alloc_slots(set, slots);
	if (ret)
		goto out_free_area;

	spin_lock(&set->lock);
	if (set->state != VDI_SET_CONFIGURING) {
		/* Aborted while we allocated. */
		spin_unlock(&set->lock);
		ret = -ECONNABORTED;
		goto out_free_slots;
	}
	/* The abort and COMPLETE look at slots while configuring: publish
	 * them, all at once, under the lock they take.
	 */
	vdi_dev_install_slots(set, slots);
	set->config.buffer_area_size = set->npages << PAGE_SHIFT;
	set->state = VDI_SET_READY;
	set->ready_at = ktime_get();
	trace_vdi_config(set, VDI_TRACE_CONFIG_END);
	spin_unlock(&set->lock);
	mutex_unlock(&set->cfg_mutex);
	wake_up_interruptible_all(&set->cfg_wq);
	return 0;

out_free_slots:
	vdi_dev_drop_slots(slots, set->device_count);
out_free_area:
	vdi_area_free(set);
out_unlock:
	mutex_unlock(&set->cfg_mutex);
	return ret;
}

/**
 * vdi_slot_finish() - complete a slot towards the completion agent.
 * @set: its set, locked.
 * @slot: a queued or held slot (the caller fixed the held count).
 * @code: Win32 completion code.
 * @bytes: bytes transferred.
 * @position: the client's position.
 * @now: vdi_stats_now() of this lock hold.
 *
 * Context: under set->lock; the caller wakes set->cmpl_wq.
 */
void vdi_slot_finish(struct vdi_set *set, struct vdi_slot *slot, u32 code,
		     u32 bytes, s64 position, ktime_t now)
{
	lockdep_assert_held(&set->lock);
	vdi_stats_finished(&set->devs[slot->dev_index], slot, code, bytes, now);
	slot->state = VDI_SLOT_DONE;
	slot->completion_code = code;
	slot->bytes = bytes;
	slot->position = position;
	list_move_tail(&slot->node, &set->done);
}

/**
 * vdi_set_wake_all() - wake every waiter of a set.
 * @set: the set.
 *
 * Context: any; not under set->lock.
 */
void vdi_set_wake_all(struct vdi_set *set)
{
	u32 i;

	wake_up_interruptible_all(&set->cfg_wq);
	wake_up_interruptible_all(&set->cmpl_wq);
	for (i = 0; i < set->device_count; i++) {
		wake_up_interruptible_all(&set->devs[i].cmd_wq);
		wake_up_interruptible_all(&set->devs[i].space_wq);
	}
}

/**
 * vdi_set_abort() - abort a set: the one routine of every abnormal end.
 * @set: the set.
 * @reason: VDI_ABORT_*, the cause recorded if this is the first.
 * @device: the device whose fd caused it, or VDI_ABORT_NO_DEVICE.
 *
 * Idempotent, and a no-op after the normal end.  Every command queued or
 * held is completed with ERROR_OPERATION_ABORTED towards the agent, and every
 * waiter wakes.
 *
 * Context: any process context; takes the set's lock.
 */
void vdi_set_abort(struct vdi_set *set, u32 reason, u32 device)
{
	struct vdi_device *dev;
	struct vdi_slot *slot;
	ktime_t now;
	u32 i, j;

	spin_lock(&set->lock);
	if (set->state == VDI_SET_ABORTED || set->state == VDI_SET_DONE) {
		spin_unlock(&set->lock);
		return;
	}
	trace_vdi_abort(set, reason);
	set->state = VDI_SET_ABORTED;
	vdi_stats_aborted(set, reason, device);
	now = vdi_stats_now(set);
	for (i = 0; i < set->device_count; i++) {
		dev = &set->devs[i];
		for (j = 0; dev->slots && j < set->queue_depth; j++) {
			slot = &dev->slots[j];
			if (slot->state != VDI_SLOT_QUEUED &&
			    slot->state != VDI_SLOT_HELD)
				continue;
			vdi_slot_finish(set, slot, VDI_ERROR_OPERATION_ABORTED,
					0, 0, now);
			trace_vdi_complete(set, slot, VDI_TRACE_BY_ABORT);
		}
		dev->nheld = 0;
	}
	spin_unlock(&set->lock);
	vdi_set_wake_all(set);
}

/**
 * vdi_set_check_done() - enter the normal end if the set has reached it.
 * @set: the set, locked.
 *
 * The normal end: every device closed by the server, nothing in flight.
 *
 * Context: under set->lock; the caller wakes the waiters when it returns
 * with set->state == VDI_SET_DONE.
 */
void vdi_set_check_done(struct vdi_set *set)
{
	lockdep_assert_held(&set->lock);
	if (set->state == VDI_SET_READY && !set->inflight &&
	    set->devs_closed == set->device_count) {
		set->state = VDI_SET_DONE;
		vdi_stats_ended(set);
	}
}

/* Watchdog: whether two serverTimeOuts passed without progress; if not,
 * bring @until forward to when they will have.
 */
static bool vdi_set_watchdog_expired(struct vdi_set *set, ktime_t *until)
{
	ktime_t due;

	lockdep_assert_held(&set->lock);
	if (!set->config.server_timeout || !set->inflight ||
	    set->state != VDI_SET_READY)
		return false;
	due = ktime_add_ms(set->last_progress,
			   2 * (u64)set->config.server_timeout);
	if (ktime_compare(ktime_get(), due) >= 0)
		return true;
	if (ktime_before(due, *until))
		*until = due;
	return false;
}

/* Move up to @max completions to @local and describe them in @out. */
static int vdi_set_reap(struct vdi_set *set, struct vdi_completion *out,
			unsigned int max, struct list_head *local,
			ktime_t *until)
{
	struct vdi_slot *slot, *tmp;
	unsigned int n = 0;

	lockdep_assert_held(&set->lock);
	list_for_each_entry_safe(slot, tmp, &set->done, node) {
		if (n == max)
			break;
		slot->state = VDI_SLOT_REAPING;
		list_move_tail(&slot->node, local);
		out[n] = (struct vdi_completion) {
			.cookie = slot->cmd.cookie,
			.completion_code = slot->completion_code,
			.bytes_transferred = slot->bytes,
			.position = slot->position,
			.device_index = slot->dev_index,
			.code = slot->cmd.code,
		};
		trace_vdi_reap(set, slot);
		n++;
	}
	if (n)
		return n;
	if (set->state == VDI_SET_ABORTED)
		return -ECONNABORTED;
	if (set->state == VDI_SET_DONE)
		return -ESHUTDOWN;
	if (vdi_set_watchdog_expired(set, until))
		return -ETIME;
	return 0;
}

/* Return reaped slots to their devices' free lists, or back to set->done. */
static void vdi_set_unreap(struct vdi_set *set, struct list_head *local,
			   bool delivered)
{
	struct vdi_slot *slot, *tmp;
	u64 freed = 0;		/* devices that got room back */
	ktime_t now;
	bool done;
	u32 i;

	spin_lock(&set->lock);
	if (!delivered) {
		list_for_each_entry(slot, local, node)
			slot->state = VDI_SLOT_DONE;
		list_splice_init(local, &set->done);
		spin_unlock(&set->lock);
		/* Pollers of the agent slept while these were being copied. */
		wake_up_interruptible(&set->cmpl_wq);
		return;
	}
	now = vdi_stats_now(set);
	list_for_each_entry_safe(slot, tmp, local, node) {
		vdi_stats_reaped(&set->devs[slot->dev_index], slot, now);
		slot->state = VDI_SLOT_FREE;
		slot->gen++;
		list_move_tail(&slot->node, &set->devs[slot->dev_index].free);
		set->inflight--;
		freed |= BIT_ULL(slot->dev_index);
	}
	vdi_set_check_done(set);
	done = set->state == VDI_SET_DONE;
	spin_unlock(&set->lock);

	if (done) {
		vdi_set_wake_all(set);
		return;
	}
	for (i = 0; i < set->device_count; i++)
		if (freed & BIT_ULL(i))
			wake_up_interruptible(&set->devs[i].space_wq);
}

#define VDI_CHUNK 32	/* entries copied at once, on the stack */

static bool vdi_set_agent_ready(struct vdi_set *set)
{
	enum vdi_set_state state = READ_ONCE(set->state);

	return !list_empty_careful(&set->done) || state == VDI_SET_ABORTED ||
	       state == VDI_SET_DONE;
}

/**
 * vdi_set_wait() - the completion agent's wait: WAIT_COMPLETIONS, ENTER's reap.
 * @vf: the server set fd's private data.
 * @uout: user array with room for @count struct vdi_completion.
 * @count: 1..VDI_BATCH_MAX.
 * @timeout_ms: how long to wait for the first: 0 polls, < 0 for ever.
 * @spin_us: busy-poll this long before sleeping (ENTER; 0 for
 *           WAIT_COMPLETIONS), never past the watchdog's next look.
 *
 * Context: process context; sleeps.
 * Return: the number of completions written (>= 1), or -ETIMEDOUT,
 * -ERESTARTSYS or -ERESTARTNOHAND (a signal), -EBADF (the caller closed the
 * fd), -ESHUTDOWN (normal end), -ECONNABORTED, -EFAULT.
 */
long vdi_set_wait(struct vdi_file *vf, struct vdi_completion __user *uout,
		  u32 count, s64 timeout_ms, u32 spin_us)
{
	ktime_t deadline = vdi_deadline(timeout_ms), until;
	struct vdi_set *set = vdi_file_set(vf);
	struct vdi_completion out[VDI_CHUNK];
	bool last_look = !timeout_ms, watching = false;
	unsigned int total = 0;
	struct vdi_spin spin;
	LIST_HEAD(local);
	int n, ret, flushes = 0;
	u32 gen;

	vdi_spin_init(&spin, spin_us);
	for (;;) {
		until = deadline;
		spin_lock(&set->lock);
		n = vdi_set_reap(set, out, min_t(unsigned int, VDI_CHUNK,
						 count - total),
				 &local, &until);
		gen = set->watch_gen;
		spin_unlock(&set->lock);
		if (n == -ETIME) {
			vdi_set_abort(set, VDI_ABORT_WATCHDOG,
				      VDI_ABORT_NO_DEVICE);
			continue;
		}
		if (n > 0) {
			if (copy_to_user(uout + total, out, n * sizeof(*out))) {
				vdi_set_unreap(set, &local, false);
				return total ? (long)total : -EFAULT;
			}
			vdi_set_unreap(set, &local, true);
			total += n;
			if (total == count)
				return total;
			last_look = true;	/* take what else is there */
			continue;
		}
		if (total)
			return total;
		if (n < 0)
			return n;
		if (last_look)
			return -ETIMEDOUT;
		/* A peek without the lock, until the watchdog's next look. */
		if (vdi_spin_until(&spin, until, vdi_set_agent_ready(set)))
			continue;
		if (!watching) {
			ret = vdi_file_watch(vf, &flushes);
			if (ret)
				return ret;
			watching = true;
		}
		/* @until is @deadline, or earlier when the watchdog is due. */
		vdi_stats_agent_sleeps(set);
		ret = vdi_wait_event(set->cmpl_wq, vdi_set_agent_ready(set) ||
				     READ_ONCE(set->watch_gen) != gen ||
				     vdi_file_closed(vf, &flushes), until);
		vdi_stats_agent_wakes(set);
		if (vdi_file_closed(vf, &flushes))
			return -EBADF;
		/* Infinite, though it slept only until the watchdog is due. */
		if (ret == -ERESTARTNOHAND && deadline == KTIME_MAX)
			ret = -ERESTARTSYS;
		if (ret == -ETIMEDOUT && until == deadline)
			last_look = true;
		else if (ret && ret != -ETIMEDOUT)
			return ret;
	}
}

/**
 * vdi_set_wait_completions() - WAIT_COMPLETIONS.
 * @vf: the server set fd's private data.
 * @b: checked batch: entries of struct vdi_completion.
 *
 * Context: process context; sleeps.
 * Return: as vdi_set_wait().
 */
long vdi_set_wait_completions(struct vdi_file *vf, const struct vdi_batch *b)
{
	return vdi_set_wait(vf, u64_to_user_ptr(b->entries), b->count,
			    b->timeout_ms, 0);
}

/* iterate_fd() callback: whether @file is the one whose private data is @vf. */
static int vdi_file_is(const void *vf, struct file *file, unsigned int fd)
{
	return file->private_data == vf;
}

/**
 * vdi_file_watch() - start watching for the caller closing its fd.
 * @vf: the private data of the fd a wait is on.
 * @flushes: out: what vdi_file_closed() compares with.
 *
 * close() of an fd on which another thread waits cannot release the file:
 * the waiting ioctl holds it.  It calls ->flush, though, which counts the
 * close and wakes the fd's waiters; each then asks whether its own process
 * still has an fd for the file (a dup, or the same fd in another process,
 * keeps the wait going).  Call this before the first sleep of a wait.
 *
 * Context: process context; may take the file table's lock.
 * Return: 0, or -EBADF when the caller's process no longer has the fd.
 */
int vdi_file_watch(struct vdi_file *vf, int *flushes)
{
	/*
	 * A close() that the look below misses removes the fd after it, and
	 * so counts after this read; with no close counted yet, none can
	 * have come between the ioctl's fd lookup and here.
	 */
	*flushes = atomic_read(&vf->flushes);
	if (!*flushes)
		return 0;
	return iterate_fd(current->files, 0, vdi_file_is, vf) ? 0 : -EBADF;
}

/**
 * vdi_file_closed() - whether a waiter's process closed the fd it waits on.
 * @vf: the fd's private data.
 * @flushes: from vdi_file_watch(); moved on past closes that left the
 *           caller an fd, so that they cost one look each.
 *
 * Context: process context, also inside a wait condition; takes the file
 * table's lock when an fd of the file was closed since @flushes.
 * Return: true once no fd of the current process refers to the file; it
 * stays true.
 */
bool vdi_file_closed(struct vdi_file *vf, int *flushes)
{
	int now = atomic_read(&vf->flushes);

	if (now == *flushes)
		return false;
	if (!iterate_fd(current->files, 0, vdi_file_is, vf))
		return true;
	*flushes = now;
	return false;
}

/**
 * vdi_set_flush() - ->flush of a /dev/vdi fd: close() of one of its fds.
 * @file: the file.
 * @id: the file table it was closed in.
 *
 * Wakes the threads waiting on the set fd so that those whose process no
 * longer has it return -EBADF (see vdi_file_watch()).
 *
 * Context: process context (close(), exit, dup2).
 * Return: 0.
 */
int vdi_set_flush(struct file *file, fl_owner_t id)
{
	struct vdi_file *vf = file->private_data;
	struct vdi_set *set = vdi_file_set(vf);

	if (!set)
		return 0;	/* an endpoint without a role has no waiter */
	atomic_inc(&vf->flushes);
	wake_up_interruptible_all(&set->cfg_wq);
	wake_up_interruptible_all(&set->cmpl_wq);
	return 0;
}

/**
 * vdi_set_release() - a set fd is being closed.
 * @vf: the fd's private data.
 *
 * The primary client's fd unlinks the name.  A fd still needed (see
 * docs/ABI.md, Endings) closing before the normal end aborts the set.
 *
 * Context: process context (file release).
 */
void vdi_set_release(struct vdi_file *vf)
{
	struct vdi_set *set = vf->set;
	bool abort = false;
	u32 i;

	if (vf->role == VDI_ROLE_CLIENT) {
		mutex_lock(&vdi_sets_lock);
		if (set->linked) {
			list_del_init(&set->node);
			set->linked = false;
		}
		mutex_unlock(&vdi_sets_lock);
	}

	spin_lock(&set->lock);
	switch (vf->role) {
	case VDI_ROLE_SERVER:
		abort = set->state != VDI_SET_DONE;
		break;
	case VDI_ROLE_CLIENT:
		for (i = 0; i < set->device_count; i++)
			abort |= !vdi_dev_client_finished(&set->devs[i]);
		break;
	case VDI_ROLE_SECONDARY:
		set->secondaries--;
		break;
	default:
		break;
	}
	spin_unlock(&set->lock);

	if (abort)
		vdi_set_abort(set, vdi_stats_close_reason(vf->role),
			      VDI_ABORT_NO_DEVICE);
	vdi_set_put(set);
}
