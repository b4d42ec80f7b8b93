// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: figures (docs/ABI.md, "Figures").
 *
 * What went through each device and how long commands spent on each side,
 * the life of each set and the first cause of its abort; LIST_SETS,
 * SET_STATS and ABORT_SET, and the fdinfo of every vdi fd.  The counting
 * itself happens in the protocol's paths, under the set's lock, through the
 * helpers here and in vdi_internal.h; this file also reads it all back.
 */
#include <linux/atomic.h>
#include <linux/build_bug.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/module.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>

#include "vdi_internal.h"

/* Read once per set, at CREATE (VDI_SET_STATS_ON). */
bool vdi_stats_param = true;
module_param_named(stats, vdi_stats_param, bool, 0644);
MODULE_PARM_DESC(stats, "Time the commands of sets created from now on (1); counts run regardless");

/* Set ids: never reused while the module is loaded (0 names none). */
static atomic64_t vdi_last_set_id = ATOMIC64_INIT(0);

/* The internal states are the ABI's, in the same order. */
static_assert(VDI_SET_CREATED == VDI_STATE_CREATED);
static_assert(VDI_SET_CONNECTED == VDI_STATE_CONNECTED);
static_assert(VDI_SET_CONFIGURING == VDI_STATE_CONFIGURING);
static_assert(VDI_SET_READY == VDI_STATE_READY);
static_assert(VDI_SET_DONE == VDI_STATE_DONE);
static_assert(VDI_SET_ABORTED == VDI_STATE_ABORTED);
static_assert(VDI_DEV_ACTIVE == VDI_DEV_STATE_ACTIVE);
static_assert(VDI_DEV_IO_ERROR == VDI_DEV_STATE_IO_ERROR);
static_assert(VDI_DEV_CLOSED == VDI_DEV_STATE_CLOSED);

static const char *const vdi_set_state_names[] = {
	[VDI_SET_CREATED]	= "created",
	[VDI_SET_CONNECTED]	= "connected",
	[VDI_SET_CONFIGURING]	= "configuring",
	[VDI_SET_READY]		= "ready",
	[VDI_SET_DONE]		= "done",
	[VDI_SET_ABORTED]	= "aborted",
};

static const char *const vdi_dev_state_names[] = {
	[VDI_DEV_ACTIVE]	= "active",
	[VDI_DEV_IO_ERROR]	= "io-error",
	[VDI_DEV_CLOSED]	= "closed",
};

static const char *const vdi_abort_names[] = {
	[VDI_ABORT_NONE]		= "none",
	[VDI_ABORT_CLIENT_SIGNAL]	= "client-signal",
	[VDI_ABORT_SERVER_SIGNAL]	= "server-signal",
	[VDI_ABORT_CLIENT_CLOSE]	= "client-close",
	[VDI_ABORT_SERVER_CLOSE]	= "server-close",
	[VDI_ABORT_CLIENT_EXIT]		= "client-exit",
	[VDI_ABORT_SERVER_EXIT]		= "server-exit",
	[VDI_ABORT_WATCHDOG]		= "watchdog",
	[VDI_ABORT_ADMIN]		= "admin",
};

static const char *const vdi_role_names[] = {
	[VDI_ROLE_NONE]		= "none",
	[VDI_ROLE_CLIENT]	= "client",
	[VDI_ROLE_SECONDARY]	= "secondary",
	[VDI_ROLE_SERVER]	= "server",
};

/* Count @code in the device's table: the first VDI_STATS_CODES codes seen. */
static void vdi_stats_count_code(struct vdi_dev_figures *f, u32 code)
{
	u32 i;

	for (i = 0; i < f->ncodes; i++) {
		if (f->completions[i].code == code) {
			f->completions[i].count++;
			return;
		}
	}
	if (f->ncodes == VDI_STATS_CODES) {
		f->completions_other++;
		return;
	}
	f->completions[f->ncodes].code = code;
	f->completions[f->ncodes].count = 1;
	f->ncodes++;
}

/**
 * vdi_stats_finished() - count a completion, by the client, a flush or an abort.
 * @dev: the slot's device, the set locked; a held slot's held count was
 *       already lowered (an abort lowers it after, its clock is frozen).
 * @slot: a queued or held slot, not yet marked done.
 * @code: the completion code.
 * @bytes: bytes transferred.
 * @now: vdi_stats_now() of this lock hold.
 *
 * Context: under the set's lock.
 */
void vdi_stats_finished(struct vdi_device *dev, struct vdi_slot *slot,
			u32 code, u32 bytes, ktime_t now)
{
	struct vdi_dev_figures *f = &dev->fig;

	if (slot->state == VDI_SLOT_QUEUED) {
		f->queued--;
		f->queued_ns += now - slot->since;
	} else {
		f->held_ns += now - slot->since;
	}
	slot->since = now;
	f->completed++;
	f->done++;
	vdi_stats_count_code(f, code);
	if (slot->cmd.code == VDI_VDC_READ)
		f->bytes_read += bytes;
	else if (slot->cmd.code == VDI_VDC_WRITE)
		f->bytes_written += bytes;
	vdi_stats_clock_update(dev, now);
}

/**
 * vdi_stats_reaped() - count a completion handed to the completion agent.
 * @dev: the slot's device, the set locked.
 * @slot: the slot, just copied out.
 * @now: vdi_stats_now() of this lock hold.
 *
 * Context: under the set's lock.
 */
void vdi_stats_reaped(struct vdi_device *dev, struct vdi_slot *slot,
		      ktime_t now)
{
	dev->fig.reaped++;
	dev->fig.done--;
	dev->fig.reaping_ns += now - slot->since;
}

/* Add the running interval of the busy/idle clock and leave it @to. */
static void vdi_stats_clock_stop(struct vdi_device *dev, ktime_t now,
				 enum vdi_clock to)
{
	struct vdi_dev_figures *f = &dev->fig;

	if (f->clock == VDI_CLOCK_RUNNING) {
		if (f->clock_busy)
			f->busy_ns += now - f->clock_since;
		else
			f->idle_ns += now - f->clock_since;
	}
	f->clock = to;
}

/**
 * vdi_stats_dev_opened() - a side opened the device: start its clock once
 * both have, while it is not closed and the set has not ended.
 * @set: the set, locked.
 * @dev: the device.
 *
 * Context: under the set's lock.
 */
void vdi_stats_dev_opened(struct vdi_set *set, struct vdi_device *dev)
{
	struct vdi_dev_figures *f = &dev->fig;

	lockdep_assert_held(&set->lock);
	if (f->clock != VDI_CLOCK_OFF || !dev->server_open ||
	    !dev->client_open || dev->state == VDI_DEV_CLOSED ||
	    set->state != VDI_SET_READY)
		return;
	f->clock = VDI_CLOCK_RUNNING;
	f->clock_since = vdi_stats_now(set);
	f->clock_busy = f->queued || dev->nheld;
}

/**
 * vdi_stats_dev_unbound() - an open of the device failed after all: its
 * clock stops until both sides have it open again.
 * @set: the set, locked.
 * @dev: the device.
 *
 * Context: under the set's lock.
 */
void vdi_stats_dev_unbound(struct vdi_set *set, struct vdi_device *dev)
{
	lockdep_assert_held(&set->lock);
	if (dev->fig.clock == VDI_CLOCK_RUNNING)
		vdi_stats_clock_stop(dev, vdi_stats_now(set), VDI_CLOCK_OFF);
}

/**
 * vdi_stats_dev_closed() - the server closed the device: its clock stops.
 * @set: the set, locked.
 * @dev: the device.
 *
 * Context: under the set's lock.
 */
void vdi_stats_dev_closed(struct vdi_set *set, struct vdi_device *dev)
{
	lockdep_assert_held(&set->lock);
	vdi_stats_clock_stop(dev, vdi_stats_now(set), VDI_CLOCK_FROZEN);
}

/**
 * vdi_stats_set_init() - the figures of a new set: id, creator, time.
 * @set: the set being created, not yet visible.
 *
 * Context: process context (CREATE).
 */
void vdi_stats_set_init(struct vdi_set *set)
{
	set->id = atomic64_inc_return(&vdi_last_set_id);
	set->timed = READ_ONCE(vdi_stats_param);
	set->client_pid = get_pid(task_tgid(current));
	set->created_at = ktime_get();
	set->abort_device = VDI_ABORT_NO_DEVICE;
}

/**
 * vdi_stats_set_free() - drop what the figures of a set hold.
 * @set: a set no fd can reach any more.
 *
 * Context: process context.
 */
void vdi_stats_set_free(struct vdi_set *set)
{
	put_pid(set->client_pid);
	put_pid(set->server_pid);
	put_pid(set->abort_pid);
}

/* The set ended (normal end or abort) at @at: stop every device's clock. */
static void vdi_stats_stop_clocks(struct vdi_set *set, ktime_t at)
{
	ktime_t now = set->timed ? at : 0;
	u32 i;

	set->ended_at = at;
	for (i = 0; i < set->device_count; i++)
		vdi_stats_clock_stop(&set->devs[i], now, VDI_CLOCK_FROZEN);
}

/**
 * vdi_stats_ended() - the set reached its normal end.
 * @set: the set, locked, just done.
 *
 * Context: under the set's lock.
 */
void vdi_stats_ended(struct vdi_set *set)
{
	lockdep_assert_held(&set->lock);
	vdi_stats_stop_clocks(set, ktime_get());
}

/**
 * vdi_stats_aborted() - record the cause of an abort, the first only.
 * @set: the set, locked, just aborted.
 * @reason: VDI_ABORT_*.
 * @device: the device whose fd caused it, or VDI_ABORT_NO_DEVICE.
 *
 * The process behind it is the current one, unless the watchdog fired (the
 * agent only noticed) or a kernel thread released the last reference.
 *
 * Context: under the set's lock.
 */
void vdi_stats_aborted(struct vdi_set *set, u32 reason, u32 device)
{
	lockdep_assert_held(&set->lock);
	if (set->abort_reason)
		return;
	set->abort_reason = reason;
	set->abort_device = device;
	if (reason != VDI_ABORT_WATCHDOG && !(current->flags & PF_KTHREAD))
		set->abort_pid = get_pid(task_tgid(current));
	vdi_stats_stop_clocks(set, ktime_get());
}

/**
 * vdi_stats_close_reason() - why a release of a set or device fd aborts.
 * @role: the fd's role.
 *
 * Context: the release of a vdi fd.
 * Return: VDI_ABORT_*_EXIT when the releasing process is exiting (killed,
 * or exit() with the fd open), else VDI_ABORT_*_CLOSE.
 */
u32 vdi_stats_close_reason(enum vdi_role role)
{
	bool exiting = current->flags & PF_EXITING;

	if (role == VDI_ROLE_SERVER)
		return exiting ? VDI_ABORT_SERVER_EXIT : VDI_ABORT_SERVER_CLOSE;
	return exiting ? VDI_ABORT_CLIENT_EXIT : VDI_ABORT_CLIENT_CLOSE;
}

/**
 * vdi_stats_agent_sleeps() - the completion agent goes to sleep, nothing done.
 * @set: the set.
 *
 * agent_wait_ns counts the time at least one agent thread slept.
 *
 * Context: process context; takes the set's lock.
 */
void vdi_stats_agent_sleeps(struct vdi_set *set)
{
	if (!set->timed)
		return;
	spin_lock(&set->lock);
	if (!set->agents_waiting++)
		set->agent_wait_since = ktime_get();
	spin_unlock(&set->lock);
}

/**
 * vdi_stats_agent_wakes() - the completion agent woke up.
 * @set: the set.
 *
 * Context: process context; takes the set's lock.
 */
void vdi_stats_agent_wakes(struct vdi_set *set)
{
	if (!set->timed)
		return;
	spin_lock(&set->lock);
	if (!--set->agents_waiting)
		set->agent_wait_ns += ktime_get() - set->agent_wait_since;
	spin_unlock(&set->lock);
}

/* ---- reading them back ---- */

/* Nanoseconds from @then to @now, 0 for what has not happened. */
static u64 vdi_age_ns(ktime_t now, ktime_t then)
{
	return then ? ktime_to_ns(ktime_sub(now, then)) : 0;
}

/* A pid as the caller sees it: 0 when gone, or not in its namespace. */
static u32 vdi_pid_seen(struct pid *pid)
{
	if (!pid || !pid_has_task(pid, PIDTYPE_TGID))
		return 0;
	return pid_nr_ns(pid, task_active_pid_ns(current));
}

/* Add the counters of @dev, with its clock's running interval, to @acc. */
static void vdi_stats_dev_add(struct vdi_dev_stats *acc,
			      const struct vdi_device *dev, ktime_t now)
{
	const struct vdi_dev_figures *f = &dev->fig;
	u64 busy = f->busy_ns, idle = f->idle_ns;

	if (f->clock == VDI_CLOCK_RUNNING) {
		if (f->clock_busy)
			busy += now - f->clock_since;
		else
			idle += now - f->clock_since;
	}
	acc->queued += f->queued;
	acc->held += dev->nheld;
	acc->done += f->done;
	acc->queued_peak += f->queued_peak;
	acc->inflight_peak += f->inflight_peak;
	acc->io_error_episodes += f->io_error_episodes;
	acc->sent += f->sent;
	acc->taken += f->taken;
	acc->completed += f->completed;
	acc->reaped += f->reaped;
	acc->bytes_read += f->bytes_read;
	acc->bytes_written += f->bytes_written;
	acc->queued_ns += f->queued_ns;
	acc->held_ns += f->held_ns;
	acc->reaping_ns += f->reaping_ns;
	acc->client_busy_ns += busy;
	acc->client_idle_ns += idle;
}

static void vdi_stats_dev_fill(const struct vdi_set *set, u32 i, ktime_t now,
			       struct vdi_dev_stats *out)
{
	const struct vdi_device *dev = &set->devs[i];
	const struct vdi_dev_figures *f = &dev->fig;

	memset(out, 0, sizeof(*out));
	strscpy(out->name, dev->name, sizeof(out->name));
	out->index = i;
	out->state = dev->state;
	out->flags = (dev->server_open ? VDI_DEV_SERVER_OPEN : 0) |
		     (dev->client_open ? VDI_DEV_CLIENT_OPEN : 0);
	vdi_stats_dev_add(out, dev, now);
	memcpy(out->sent_by_code, f->sent_by_code, sizeof(out->sent_by_code));
	memcpy(out->completions, f->completions, sizeof(out->completions));
	out->completions_other = f->completions_other;
}

/* Everything of @set at one moment, and its first @ndev devices. */
static void vdi_stats_snapshot(struct vdi_set *set, bool linked,
			       struct vdi_set_stats *ss,
			       struct vdi_dev_stats *ds, u32 ndev)
{
	struct user_namespace *ns = current_user_ns();
	ktime_t at, now;
	u32 i;

	memset(ss, 0, sizeof(*ss));
	ss->id = set->id;
	strscpy(ss->name, set->name, sizeof(ss->name));
	ss->uid = from_kuid_munged(ns, set->uid);
	ss->gid = from_kgid_munged(ns, set->gid);
	ss->mode = set->mode;
	ss->device_count = set->device_count;
	ss->flags = (linked ? VDI_SET_LINKED : 0) |
		    (set->timed ? VDI_SET_STATS_ON : 0);

	spin_lock(&set->lock);
	at = ktime_get();
	now = set->timed ? at : 0;
	ss->state = set->state;
	ss->flags |= set->has_server ? VDI_SET_HAS_SERVER : 0;
	ss->client_pid = vdi_pid_seen(set->client_pid);
	ss->server_pid = vdi_pid_seen(set->server_pid);
	ss->secondaries = set->secondaries;
	ss->queue_depth = set->queue_depth;
	ss->config = set->config;
	ss->abort_reason = set->abort_reason;
	ss->abort_device = set->abort_device;
	ss->abort_pid = vdi_pid_seen(set->abort_pid);
	ss->area_size = set->config.buffer_area_size;
	ss->age_ns = vdi_age_ns(at, set->created_at);
	ss->ready_age_ns = vdi_age_ns(at, set->ready_at);
	ss->end_age_ns = vdi_age_ns(at, set->ended_at);
	ss->agent_wait_ns = set->agent_wait_ns;
	if (set->agents_waiting)
		ss->agent_wait_ns += now - set->agent_wait_since;
	for (i = 0; i < ndev; i++)
		vdi_stats_dev_fill(set, i, now, &ds[i]);
	spin_unlock(&set->lock);
}

/* In the caller's scope: its user and IPC namespaces, as names are. */
static bool vdi_set_in_scope(const struct vdi_set *set)
{
	return set->user_ns == current_user_ns() &&
	       set->ipc_ns_inum == vdi_current_ipc_inum();
}

/*
 * Find the set @id for SET_STATS or ABORT_SET and take a reference; *linked
 * tells whether its name is still taken.  -ENOENT when it is not in the
 * caller's scope, -EPERM when it is another user's and the caller lacks
 * CAP_SYS_ADMIN over it.  Only an abort (@acts) is worth an audit record
 * when that capability is missing: a look, as LIST_SETS's, is not.
 */
static struct vdi_set *vdi_set_find_id(u64 id, bool acts, bool *linked)
{
	struct vdi_set *set, *found = NULL;
	int ret = 0;

	mutex_lock(&vdi_sets_lock);
	list_for_each_entry(set, &vdi_live_sets, live) {
		if (set->id == id) {
			found = set;
			break;
		}
	}
	if (!found || !vdi_set_in_scope(found))
		ret = -ENOENT;
	else if (!uid_eq(found->uid, current_fsuid()) &&
		 !(acts ? ns_capable(found->user_ns, CAP_SYS_ADMIN) :
			  ns_capable_noaudit(found->user_ns, CAP_SYS_ADMIN)))
		ret = -EPERM;
	else if (!kref_get_unless_zero(&found->ref))
		ret = -ENOENT;	/* being freed */
	else
		*linked = found->linked;
	mutex_unlock(&vdi_sets_lock);
	return ret ? ERR_PTR(ret) : found;
}

/**
 * vdi_ioctl_list_sets() - LIST_SETS: the ids of the sets the caller may see.
 * @uarg: user pointer to a struct vdi_list_sets.
 *
 * Sets of the caller's scope that it created (by fsuid), or all of them
 * with CAP_SYS_ADMIN in its user namespace; oldest first, also those whose
 * name is gone while an fd still holds them.
 *
 * Context: process context; takes vdi_sets_lock.
 * Return: 0, -EFAULT, -EINVAL (flags, reserved) or -ENOMEM.
 */
long vdi_ioctl_list_sets(void __user *uarg)
{
	struct vdi_list_sets arg;
	struct vdi_set *set;
	u32 total = 0, room, n = 0;
	kuid_t uid = current_fsuid();
	u64 *ids = NULL;
	bool admin;
	long ret = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || memchr_inv(arg.reserved, 0, sizeof(arg.reserved)))
		return -EINVAL;
	/* Every set in scope has the caller's user namespace. */
	admin = ns_capable_noaudit(current_user_ns(), CAP_SYS_ADMIN);

	mutex_lock(&vdi_sets_lock);
	list_for_each_entry(set, &vdi_live_sets, live)
		total += vdi_set_in_scope(set) &&
			 (admin || uid_eq(set->uid, uid));
	room = min(arg.count, total);
	if (room) {
		ids = kvmalloc_array(room, sizeof(*ids), GFP_KERNEL);
		if (!ids) {
			mutex_unlock(&vdi_sets_lock);
			return -ENOMEM;
		}
		list_for_each_entry(set, &vdi_live_sets, live) {
			if (n == room)
				break;
			if (vdi_set_in_scope(set) &&
			    (admin || uid_eq(set->uid, uid)))
				ids[n++] = set->id;
		}
	}
	mutex_unlock(&vdi_sets_lock);

	if (n && copy_to_user(u64_to_user_ptr(arg.ids), ids, n * sizeof(*ids)))
		ret = -EFAULT;
	kvfree(ids);
	if (ret)
		return ret;
	arg.total = total;
	arg.written = n;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

/* Copy a snapshot out: sizes and count as the request allows. */
static int vdi_stats_copy_out(struct vdi_stats_req *req,
			      const struct vdi_set_stats *ss,
			      const struct vdi_dev_stats *ds, u32 ndev)
{
	u32 ssz = min_t(u32, req->set_size, sizeof(*ss));
	u32 dsz = min_t(u32, req->dev_size, sizeof(*ds));
	u32 i;

	if (copy_to_user(u64_to_user_ptr(req->set), ss, ssz))
		return -EFAULT;
	for (i = 0; i < ndev; i++)
		if (copy_to_user(u64_to_user_ptr(req->devs +
						 (u64)i * req->dev_size),
				 &ds[i], dsz))
			return -EFAULT;
	req->set_size = ssz;
	req->dev_size = dsz;
	req->dev_count = ndev;
	return 0;
}

/**
 * vdi_ioctl_set_stats() - SET_STATS: a snapshot of one set.
 * @own: the set of the fd used, or NULL (an endpoint without a role).
 * @uarg: user pointer to a struct vdi_stats_req.
 *
 * Id 0 names @own, without a scope check; another id a set of the caller's
 * scope that it owns, or any with CAP_SYS_ADMIN over it.  The snapshot is
 * taken under the set's lock into kernel memory, then copied out.
 *
 * Context: process context; takes vdi_sets_lock and the set's lock.
 * Return: 0, -EFAULT, -EINVAL (flags, reserved, sizes below version 0),
 * -EPROTO (id 0 on an endpoint without a set), -ENOENT, -EPERM or -ENOMEM.
 */
long vdi_ioctl_set_stats(struct vdi_set *own, void __user *uarg)
{
	struct vdi_stats_req req;
	struct vdi_set_stats ss;
	struct vdi_dev_stats *ds = NULL;
	struct vdi_set *set;
	bool linked;
	u32 ndev;
	long ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || memchr_inv(req.reserved, 0, sizeof(req.reserved)))
		return -EINVAL;
	if (req.set_size < VDI_SET_STATS_SIZE_VER0 ||
	    req.dev_size < VDI_DEV_STATS_SIZE_VER0)
		return -EINVAL;

	if (!req.id) {
		if (!own)
			return -EPROTO;
		kref_get(&own->ref);	/* the fd holds one: cannot be 0 */
		mutex_lock(&vdi_sets_lock);
		linked = own->linked;
		mutex_unlock(&vdi_sets_lock);
		set = own;
	} else {
		set = vdi_set_find_id(req.id, false, &linked);
		if (IS_ERR(set))
			return PTR_ERR(set);
	}

	ndev = min(req.dev_count, set->device_count);
	if (ndev) {
		ds = kvcalloc(ndev, sizeof(*ds), GFP_KERNEL);
		if (!ds) {
			ret = -ENOMEM;
			goto out_put;
		}
	}
	vdi_stats_snapshot(set, linked, &ss, ds, ndev);
	ret = vdi_stats_copy_out(&req, &ss, ds, ndev);
	if (!ret && copy_to_user(uarg, &req, sizeof(req)))
		ret = -EFAULT;
	kvfree(ds);
out_put:
	vdi_set_put(set);
	return ret;
}

/**
 * vdi_ioctl_abort_set() - ABORT_SET: abort a set by id, as SIGNAL_ABORT.
 * @uarg: user pointer to a struct vdi_abort_set.
 *
 * The set's owner may, or a caller with CAP_SYS_ADMIN over it; an ended
 * set stays as it ended.
 *
 * Context: process context; takes vdi_sets_lock and the set's lock.
 * Return: 0, -EFAULT, -EINVAL (flags, reserved), -ENOENT or -EPERM.
 */
long vdi_ioctl_abort_set(void __user *uarg)
{
	struct vdi_abort_set arg;
	struct vdi_set *set;
	bool linked;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved0 ||
	    memchr_inv(arg.reserved, 0, sizeof(arg.reserved)))
		return -EINVAL;
	if (!arg.id)
		return -ENOENT;
	set = vdi_set_find_id(arg.id, true, &linked);
	if (IS_ERR(set))
		return PTR_ERR(set);
	vdi_set_abort(set, VDI_ABORT_ADMIN, VDI_ABORT_NO_DEVICE);
	vdi_set_put(set);
	return 0;
}

/**
 * vdi_show_fdinfo() - /proc/PID/fdinfo of a vdi fd: role, set, state,
 * abort cause, device, and the counters (a set fd sums its devices').
 * @m: the fdinfo file.
 * @file: a /dev/vdi fd or a device fd.
 *
 * Context: process context (a read of the fdinfo file); takes the set's lock.
 */
void vdi_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct vdi_file *vf = file->private_data;
	struct vdi_set *set = vdi_file_set(vf);
	struct vdi_device *dev = vf->dev;
	enum vdi_dev_state dev_state = VDI_DEV_ACTIVE;
	enum vdi_set_state state;
	struct vdi_dev_stats acc;
	u32 reason, device, i;
	u64 abort_age;
	ktime_t at, now;

	if (!set) {
		seq_puts(m, "vdi-role:\tnone\n");
		return;
	}
	memset(&acc, 0, sizeof(acc));
	spin_lock(&set->lock);
	at = ktime_get();
	now = set->timed ? at : 0;
	state = set->state;
	reason = set->abort_reason;
	device = set->abort_device;
	abort_age = reason ? vdi_age_ns(at, set->ended_at) : 0;
	if (dev) {
		dev_state = dev->state;
		vdi_stats_dev_add(&acc, dev, now);
	} else {
		for (i = 0; i < set->device_count; i++)
			vdi_stats_dev_add(&acc, &set->devs[i], now);
	}
	spin_unlock(&set->lock);

	seq_printf(m, "vdi-role:\t%s\n", vdi_role_names[vf->role]);
	seq_printf(m, "vdi-set:\t%s\n", set->name);
	seq_printf(m, "vdi-set-id:\t%llu\n", set->id);
	seq_printf(m, "vdi-state:\t%s\n", vdi_set_state_names[state]);
	if (!reason)
		seq_puts(m, "vdi-abort:\tnone\n");
	else if (device == VDI_ABORT_NO_DEVICE)
		seq_printf(m, "vdi-abort:\t%s device=none age-ns=%llu\n",
			   vdi_abort_names[reason], abort_age);
	else
		seq_printf(m, "vdi-abort:\t%s device=%u age-ns=%llu\n",
			   vdi_abort_names[reason], device, abort_age);
	if (dev) {
		/* A device's name is bound before its fd exists: stable. */
		seq_printf(m, "vdi-device:\t%u %s\n", (u32)(dev - set->devs),
			   dev->name);
		seq_printf(m, "vdi-dev-state:\t%s\n",
			   vdi_dev_state_names[dev_state]);
	}
	seq_printf(m, "vdi-queued:\t%u\n", acc.queued);
	seq_printf(m, "vdi-held:\t%u\n", acc.held);
	seq_printf(m, "vdi-done:\t%u\n", acc.done);
	seq_printf(m, "vdi-queued-peak:\t%u\n", acc.queued_peak);
	seq_printf(m, "vdi-sent:\t%llu\n", acc.sent);
	seq_printf(m, "vdi-taken:\t%llu\n", acc.taken);
	seq_printf(m, "vdi-completed:\t%llu\n", acc.completed);
	seq_printf(m, "vdi-io-errors:\t%u\n", acc.io_error_episodes);
	seq_printf(m, "vdi-bytes-read:\t%llu\n", acc.bytes_read);
	seq_printf(m, "vdi-bytes-written:\t%llu\n", acc.bytes_written);
	seq_printf(m, "vdi-queued-ns:\t%llu\n", acc.queued_ns);
	seq_printf(m, "vdi-held-ns:\t%llu\n", acc.held_ns);
	seq_printf(m, "vdi-reaping-ns:\t%llu\n", acc.reaping_ns);
	seq_printf(m, "vdi-client-busy-ns:\t%llu\n", acc.client_busy_ns);
	seq_printf(m, "vdi-client-idle-ns:\t%llu\n", acc.client_idle_ns);
}
