// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: virtual devices.
 *
 * Each device has a FIFO of queued command slots, a state (active,
 * IO-ERROR, closed) and a wait queue.  The server sends on its device fd,
 * the client takes and completes on its own; completed slots go to the set's
 * completion list for the agent.  Tags name a slot and its generation, so a
 * stale or forged completion is refused rather than applied.
 */
#include <linux/anon_inodes.h>
#include <linux/bits.h>
#include <linux/file.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vdi_internal.h"
#include "vdi_trace.h"

#define VDI_CHUNK	32	/* entries copied at once, on the stack */
#define VDI_TAG_DEV(t)	((u32)((t) >> 16) & 0xffff)
#define VDI_TAG_SLOT(t)	((u32)(t) & 0xffff)
#define VDI_TAG_GEN(t)	((u32)((t) >> 32))

static bool vdi_is_data(u32 code)
{
	return code == VDI_VDC_READ || code == VDI_VDC_WRITE;
}

/**
 * vdi_dev_alloc_slots() - allocate the command slots of every device.
 * @set: a set being configured (cfg_mutex held, no device open yet).
 * @slots: out: set->device_count arrays of set->queue_depth slots.
 *
 * Nothing is published: the set's abort and COMPLETE look at the devices'
 * slots under set->lock while the set is still configuring, so the caller
 * installs them with vdi_dev_install_slots() under that lock, or frees
 * them with vdi_dev_drop_slots().
 *
 * Context: process context; sleeps.
 * Return: 0 or -ENOMEM (then nothing is left allocated).
 */
int vdi_dev_alloc_slots(struct vdi_set *set, struct vdi_slot **slots)
{
	u32 i, j;

	lockdep_assert_held(&set->cfg_mutex);
	for (i = 0; i < set->device_count; i++) {
		slots[i] = kvcalloc(set->queue_depth, sizeof(*slots[i]),
				    GFP_KERNEL_ACCOUNT);
		if (!slots[i]) {
			vdi_dev_drop_slots(slots, i);
			return -ENOMEM;
		}
		for (j = 0; j < set->queue_depth; j++) {
			slots[i][j].index = j;
			slots[i][j].dev_index = i;
		}
	}
	return 0;
}

/**
 * vdi_dev_drop_slots() - free slots vdi_dev_alloc_slots() made.
 * @slots: the arrays.
 * @count: how many.
 *
 * Context: process context.
 */
void vdi_dev_drop_slots(struct vdi_slot **slots, u32 count)
{
	while (count--)
		kvfree(slots[count]);
}

/**
 * vdi_dev_install_slots() - give every device its slots, all free.
 * @set: the set, locked, still configuring.
 * @slots: from vdi_dev_alloc_slots().
 *
 * Context: under set->lock.
 */
void vdi_dev_install_slots(struct vdi_set *set, struct vdi_slot **slots)
{
	u32 i, j;

	lockdep_assert_held(&set->lock);
	for (i = 0; i < set->device_count; i++) {
		set->devs[i].slots = slots[i];
		for (j = 0; j < set->queue_depth; j++)
			list_add_tail(&slots[i][j].node, &set->devs[i].free);
	}
}

/**
 * vdi_dev_free_slots() - free the devices' command slots.
 * @set: a set no fd can reach any more.
 *
 * Context: process context.
 */
void vdi_dev_free_slots(struct vdi_set *set)
{
	u32 i;

	for (i = 0; i < set->device_count; i++) {
		kvfree(set->devs[i].slots);
		set->devs[i].slots = NULL;
		INIT_LIST_HEAD(&set->devs[i].free);
	}
}

/**
 * vdi_dev_client_finished() - whether the client side of a device has ended.
 * @dev: the device, its set locked.
 *
 * Context: under the set's lock.
 * Return: true once the server closed it, its queue is empty and the client
 * holds nothing: the client has seen, or would see, the normal end.
 */
bool vdi_dev_client_finished(const struct vdi_device *dev)
{
	return dev->state == VDI_DEV_CLOSED && list_empty(&dev->queue) &&
	       !dev->nheld;
}

/* Complete every queued command but ClearError with ERROR_IO_DEVICE. */
static void vdi_dev_flush_queue(struct vdi_set *set, struct vdi_device *dev,
				ktime_t now)
{
	struct vdi_slot *slot, *tmp;

	lockdep_assert_held(&set->lock);
	list_for_each_entry_safe(slot, tmp, &dev->queue, node) {
		if (slot->cmd.code == VDI_VDC_CLEAR_ERROR)
			continue;
		vdi_slot_finish(set, slot, VDI_ERROR_IO_DEVICE, 0, 0, now);
		trace_vdi_complete(set, slot, VDI_TRACE_BY_IO_ERROR);
	}
}

static const struct file_operations vdi_device_fops;

/* Open @name for @role; *named tells whether this bound the name. */
static int vdi_dev_bind(struct vdi_set *set, enum vdi_role role,
			const char *name, struct vdi_device **out, bool *named)
{
	bool server = role == VDI_ROLE_SERVER;
	struct vdi_device *dev = NULL;
	unsigned int *nopen;
	u32 i;

	lockdep_assert_held(&set->lock);
	if (set->state == VDI_SET_ABORTED)
		return -ECONNABORTED;
	if (set->state != VDI_SET_READY)
		return -EPROTO;
	if (!server && !set->client_configured)
		return -EPROTO;
	nopen = server ? &set->server_devs_open : &set->client_devs_open;
	if (*nopen == set->device_count)
		return -EALREADY;

	for (i = 0; i < set->device_count && !dev; i++)
		if (!strcmp(set->devs[i].name, name))
			dev = &set->devs[i];
	*named = false;
	for (i = 1; i < set->device_count && !dev; i++)
		if (!set->devs[i].name[0]) {
			dev = &set->devs[i];
			strscpy(dev->name, name, sizeof(dev->name));
			*named = true;
		}
	if (!dev)
		return -ENOENT;
	if (server ? dev->server_open : dev->client_open)
		return -EBUSY;

	if (server)
		dev->server_open = true;
	else
		dev->client_open = true;
	(*nopen)++;
	vdi_stats_dev_opened(set, dev);
	*out = dev;
	return 0;
}

/*
 * Undo vdi_dev_bind() for an open that failed later.  A name it bound goes
 * too, unless the other side opened the device meanwhile: a name is only
 * kept by an open that succeeds (open flags are never cleared otherwise).
 */
static void vdi_dev_unbind(struct vdi_set *set, struct vdi_device *dev,
			   enum vdi_role role, bool named)
{
	spin_lock(&set->lock);
	if (role == VDI_ROLE_SERVER) {
		dev->server_open = false;
		set->server_devs_open--;
	} else {
		dev->client_open = false;
		set->client_devs_open--;
	}
	if (named && !dev->server_open && !dev->client_open)
		dev->name[0] = '\0';
	vdi_stats_dev_unbound(set, dev);
	spin_unlock(&set->lock);
}

/**
 * vdi_dev_open() - OPEN_DEVICE: open a device of the fd's set by name.
 * @vf: a set fd.
 * @uarg: user copy of struct vdi_open_device; ->index is written back.
 *
 * Context: process context.
 * Return: the new device fd, or -EFAULT, -EINVAL, -EPROTO, -EALREADY,
 * -ENOENT, -EBUSY, -ECONNABORTED, -ENOMEM, -EMFILE.
 */
long vdi_dev_open(struct vdi_file *vf, struct vdi_open_device __user *uarg)
{
	struct vdi_set *set = vdi_file_set(vf);
	struct vdi_open_device arg;
	struct vdi_device *dev;
	struct vdi_file *dvf;
	struct file *file;
	bool named = false;
	int fd, ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~O_CLOEXEC || arg.index ||
	    memchr_inv(arg.reserved, 0, sizeof(arg.reserved)))
		return -EINVAL;
	ret = vdi_check_name(arg.name);
	if (ret)
		return ret;
	if (!set)
		return -EPROTO;

	dvf = kzalloc(sizeof(*dvf), GFP_KERNEL_ACCOUNT);
	if (!dvf)
		return -ENOMEM;

	spin_lock(&set->lock);
	ret = vdi_dev_bind(set, vf->role, arg.name, &dev, &named);
	spin_unlock(&set->lock);
	if (ret)
		goto out_free;

	dvf->role = vf->role;
	dvf->set = set;
	dvf->dev = dev;
	if (put_user((u32)(dev - set->devs), &uarg->index)) {
		ret = -EFAULT;
		goto out_unbind;
	}

	fd = get_unused_fd_flags(O_RDWR | (arg.flags & O_CLOEXEC));
	if (fd < 0) {
		ret = fd;
		goto out_unbind;
	}
	file = anon_inode_getfile("[vdi-device]", &vdi_device_fops, dvf,
				  O_RDWR | (arg.flags & O_CLOEXEC));
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto out_put_fd;
	}
	kref_get(&set->ref);
	trace_vdi_open(set, vf->role, dev - set->devs);
	fd_install(fd, file);
	return fd;

out_put_fd:
	put_unused_fd(fd);
out_unbind:
	vdi_dev_unbind(set, dev, vf->role, named);
out_free:
	kfree(dvf);
	return ret;
}

static int vdi_check_send(const struct vdi_set *set, const struct vdi_send *s)
{
	u64 area = (u64)set->npages << PAGE_SHIFT;

	lockdep_assert_held(&set->lock);
	if (s->code < 1 || s->code > VDI_VDC_MAX)
		return -EINVAL;
	if (vdi_is_data(s->code)) {
		if (s->size > set->config.max_transfer_size)
			return -EINVAL;
		if (s->buf_offset > area || s->size > area - s->buf_offset)
			return -EINVAL;
		return 0;
	}
	if (s->buf_offset != VDI_NO_BUFFER && s->buf_offset >= area)
		return -EINVAL;
	return 0;
}

/* Queue one checked command; the caller wakes the client. */
static int vdi_dev_send_one(struct vdi_set *set, struct vdi_device *dev,
			    const struct vdi_send *s, ktime_t now)
{
	struct vdi_slot *slot;

	lockdep_assert_held(&set->lock);
	if (set->state == VDI_SET_ABORTED)
		return -ECONNABORTED;
	/* Only ENTER can name a device the server has not opened. */
	if (!dev->server_open || dev->state == VDI_DEV_CLOSED)
		return -EPROTO;
	if (dev->state == VDI_DEV_IO_ERROR && s->code != VDI_VDC_CLEAR_ERROR)
		return -EIO;
	if (list_empty(&dev->free))
		return -ENOBUFS;

	slot = list_first_entry(&dev->free, struct vdi_slot, node);
	slot->cmd = *s;
	slot->state = VDI_SLOT_QUEUED;
	list_move_tail(&slot->node, &dev->queue);
	vdi_stats_sent(dev, slot, now);
	trace_vdi_send(set, slot);
	if (!set->inflight++) {
		if (set->config.server_timeout)
			set->last_progress = now ?: ktime_get();
		set->watch_gen++;	/* a waiting agent re-arms its watchdog */
	}
	return 0;
}

/* ENTER's entry: its device, by index; the rest is SEND's. */
static int vdi_send_to_dev(struct vdi_set *set, const struct vdi_send_to *to,
			   struct vdi_device **dev)
{
	u32 devi = to->device_index;

	if (to->reserved || devi >= set->device_count)
		return -EINVAL;
	/* The index comes from user space: no speculation past the check. */
	*dev = &set->devs[array_index_nospec(devi, set->device_count)];
	return 0;
}

/*
 * Queue up to @n commands in order under one hold of the lock, stopping at
 * the first one refused (its errno in *@err): SEND's @cmds on @dev, or
 * ENTER's @to, each on its own device.  The devices that got one, and the
 * agent when the watchdog re-armed, are woken.  Return: commands queued.
 */
static unsigned int vdi_send_chunk(struct vdi_set *set, struct vdi_device *dev,
				   const struct vdi_send *cmds,
				   const struct vdi_send_to *to,
				   unsigned int n, int *err)
{
	const struct vdi_send *s;
	u64 queued = 0;		/* devices whose client is to wake */
	unsigned int i;
	ktime_t now;
	bool rearm;
	int ret = 0;
	u32 gen;

	spin_lock(&set->lock);
	gen = set->watch_gen;
	now = vdi_stats_now(set);
	for (i = 0; i < n; i++) {
		s = to ? &to[i].send : &cmds[i];
		if (to)
			ret = vdi_send_to_dev(set, &to[i], &dev);
		if (!ret)
			ret = vdi_check_send(set, s);
		if (!ret)
			ret = vdi_dev_send_one(set, dev, s, now);
		if (ret)
			break;
		queued |= BIT_ULL(dev - set->devs);
	}
	rearm = set->config.server_timeout && gen != set->watch_gen;
	spin_unlock(&set->lock);
	while (queued) {
		wake_up_interruptible(&set->devs[__ffs64(queued)].cmd_wq);
		queued &= queued - 1;
	}
	/* A waiting agent must learn of the watchdog's new deadline. */
	if (rearm)
		wake_up_interruptible(&set->cmpl_wq);
	*err = ret;
	return i;
}

static long vdi_dev_send(struct vdi_file *vf, const struct vdi_batch *b)
{
	struct vdi_send __user *uin = u64_to_user_ptr(b->entries);
	struct vdi_send in[VDI_CHUNK];
	unsigned int total = 0, n;
	int ret = 0;

	while (total < b->count && !ret) {
		n = min_t(unsigned int, VDI_CHUNK, b->count - total);
		if (copy_from_user(in, uin + total, n * sizeof(*in))) {
			ret = -EFAULT;
			break;
		}
		total += vdi_send_chunk(vf->set, vf->dev, in, NULL, n, &ret);
	}
	/* (long): an unsigned count would turn the errno into a count */
	return total ? (long)total : ret;
}

/**
 * vdi_dev_send_to() - ENTER's submit on the server set fd: SEND, by index.
 * @set: the set; the caller is its server.
 * @uin: user array of @count struct vdi_send_to.
 * @count: 0..VDI_BATCH_MAX.
 * @sent: out: entries queued, in order.
 *
 * Each entry is checked and queued exactly as SEND on the device's fd
 * would, and the device must be one the server has open (else EPROTO, as
 * SEND after CLOSE_DEVICE).  The first entry refused stops the call.
 *
 * Context: process context.
 * Return: 0 when every entry was queued, else the errno of the first that
 * was not: -EFAULT, -EINVAL (also a device_index out of range, or a
 * reserved field not zero), -ECONNABORTED, -EPROTO, -EIO, -ENOBUFS.
 */
int vdi_dev_send_to(struct vdi_set *set, const struct vdi_send_to __user *uin,
		    u32 count, u32 *sent)
{
	struct vdi_send_to in[VDI_CHUNK];
	unsigned int n;
	int ret = 0;

	*sent = 0;
	while (*sent < count && !ret) {
		n = min_t(unsigned int, VDI_CHUNK, count - *sent);
		if (copy_from_user(in, uin + *sent, n * sizeof(*in)))
			return -EFAULT;
		*sent += vdi_send_chunk(set, NULL, NULL, in, n, &ret);
	}
	return ret;
}

/* Take up to @max commands for the client; the caller holds the lock. */
static int vdi_dev_take(struct vdi_set *set, struct vdi_device *dev,
			struct vdi_command *out, unsigned int max)
{
	struct vdi_slot *slot, *tmp;
	unsigned int n = 0;
	ktime_t now = 0;

	lockdep_assert_held(&set->lock);
	if (set->state == VDI_SET_ABORTED)
		return -ECONNABORTED;
	/* Spec 5.2: ClearError waits until the client holds nothing. */
	if (dev->state == VDI_DEV_IO_ERROR && dev->nheld)
		return 0;
	list_for_each_entry_safe(slot, tmp, &dev->queue, node) {
		/* In IO-ERROR the queue holds ClearErrors: one at a time. */
		if (n == max || (n && dev->state == VDI_DEV_IO_ERROR))
			break;
		slot->state = VDI_SLOT_HELD;
		list_del_init(&slot->node);
		dev->nheld++;
		/* Read the clock only when there is something to take: a
		 * spinning client polls an empty queue many times over.
		 */
		if (!n)
			now = vdi_stats_now(set);
		vdi_stats_taken(dev, slot, now);
		trace_vdi_take(set, slot);
		out[n] = (struct vdi_command) {
			.tag = vdi_slot_tag(slot),
			.code = slot->cmd.code,
			.size = slot->cmd.size,
			.position = slot->cmd.position,
			.buf_offset = slot->cmd.buf_offset,
		};
		n++;
	}
	if (n)
		return n;
	return dev->state == VDI_DEV_CLOSED ? -ESHUTDOWN : 0;
}

/* The client could not receive @n taken commands: queue them again. */
static void vdi_dev_untake(struct vdi_set *set, struct vdi_device *dev,
			   const struct vdi_command *cmds, unsigned int n)
{
	struct vdi_slot *slot;
	ktime_t now;

	spin_lock(&set->lock);
	now = vdi_stats_now(set);
	while (n--) {
		slot = &dev->slots[VDI_TAG_SLOT(cmds[n].tag)];
		if (slot->state != VDI_SLOT_HELD ||
		    slot->gen != VDI_TAG_GEN(cmds[n].tag))
			continue;	/* an abort ended it meanwhile */
		dev->nheld--;
		vdi_stats_untaken(dev);
		slot->state = VDI_SLOT_QUEUED;
		if (dev->state == VDI_DEV_IO_ERROR &&
		    slot->cmd.code != VDI_VDC_CLEAR_ERROR) {
			vdi_slot_finish(set, slot, VDI_ERROR_IO_DEVICE, 0, 0,
					now);
			trace_vdi_complete(set, slot, VDI_TRACE_BY_IO_ERROR);
			continue;
		}
		list_add(&slot->node, &dev->queue);
	}
	spin_unlock(&set->lock);
	wake_up_interruptible(&set->cmpl_wq);
	/* Pollers and other takers slept while these were being copied. */
	wake_up_interruptible(&dev->cmd_wq);
}

/* GET_COMMANDS would return: a command to take, or an end to report. */
static bool vdi_dev_cmd_avail(struct vdi_set *set, struct vdi_device *dev)
{
	return set->state == VDI_SET_ABORTED || dev->state == VDI_DEV_CLOSED ||
	       (!list_empty(&dev->queue) &&
		!(dev->state == VDI_DEV_IO_ERROR && dev->nheld));
}

/* The same without the lock: ENTER's spin, which checks again under it. */
static bool vdi_dev_cmd_peek(struct vdi_set *set, struct vdi_device *dev)
{
	/* A hint: a stale answer costs one more look, or one less spin. */
	return data_race(vdi_dev_cmd_avail(set, dev));
}

static bool vdi_dev_cmd_ready(struct vdi_set *set, struct vdi_device *dev)
{
	bool ready;

	spin_lock(&set->lock);
	ready = vdi_dev_cmd_avail(set, dev);
	spin_unlock(&set->lock);
	return ready;
}

/**
 * vdi_dev_get() - take commands for the client: GET_COMMANDS, ENTER's reap.
 * @vf: a client device fd's private data.
 * @uout: user array with room for @count struct vdi_command.
 * @count: 1..VDI_BATCH_MAX.
 * @timeout_ms: how long to wait for the first: 0 polls, < 0 for ever.
 * @spin_us: busy-poll this long before sleeping (ENTER; 0 for GET_COMMANDS).
 *
 * Context: process context; sleeps.
 * Return: commands written (>= 1), or -ETIMEDOUT, -ESHUTDOWN,
 * -ECONNABORTED, -EFAULT (the commands are queued again), -EBADF (the
 * caller closed the fd), -ERESTARTSYS or -ERESTARTNOHAND (a signal).
 */
long vdi_dev_get(struct vdi_file *vf, struct vdi_command __user *uout,
		 u32 count, s64 timeout_ms, u32 spin_us)
{
	ktime_t deadline = vdi_deadline(timeout_ms);
	struct vdi_set *set = vf->set;
	struct vdi_device *dev = vf->dev;
	struct vdi_command out[VDI_CHUNK];
	bool last_look = !timeout_ms, watching = false;
	unsigned int total = 0;
	struct vdi_spin spin;
	int n, ret, flushes = 0;

	vdi_spin_init(&spin, spin_us);
	for (;;) {
		spin_lock(&set->lock);
		n = vdi_dev_take(set, dev, out,
				 min_t(unsigned int, VDI_CHUNK, count - total));
		spin_unlock(&set->lock);
		if (n > 0) {
			if (copy_to_user(uout + total, out, n * sizeof(*out))) {
				vdi_dev_untake(set, dev, out, n);
				return total ? (long)total : -EFAULT;
			}
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
		if (vdi_spin_until(&spin, deadline,
				   vdi_dev_cmd_peek(set, dev)))
			continue;
		if (!watching) {
			ret = vdi_file_watch(vf, &flushes);
			if (ret)
				return ret;
			watching = true;
		}
		ret = vdi_wait_event(dev->cmd_wq, vdi_dev_cmd_ready(set, dev) ||
				     vdi_file_closed(vf, &flushes), deadline);
		if (vdi_file_closed(vf, &flushes))
			return -EBADF;	/* the commands stay queued */
		if (ret == -ETIMEDOUT)
			last_look = true;
		else if (ret)
			return ret;
	}
}

static long vdi_dev_get_commands(struct vdi_file *vf, const struct vdi_batch *b)
{
	return vdi_dev_get(vf, u64_to_user_ptr(b->entries), b->count,
			   b->timeout_ms, 0);
}

/*
 * Apply one completion; the caller holds the lock and wakes the agent, and
 * the devices set in @wake: those in IO-ERROR before or after, where the
 * client may now take a ClearError, or see the device active again.
 */
static int vdi_complete_one(struct vdi_set *set, struct vdi_device *only,
			    const struct vdi_done *d, u64 *wake, ktime_t now)
{
	u32 devi = VDI_TAG_DEV(d->tag), sloti = VDI_TAG_SLOT(d->tag);
	struct vdi_device *dev;
	struct vdi_slot *slot;

	lockdep_assert_held(&set->lock);
	if (set->state == VDI_SET_ABORTED)
		return -ECONNABORTED;
	if (devi >= set->device_count)
		return -ESTALE;
	/* The indices come from user space: no speculation past the checks. */
	devi = array_index_nospec(devi, set->device_count);
	dev = &set->devs[devi];
	if ((only && dev != only) || !dev->slots || sloti >= set->queue_depth)
		return -ESTALE;
	sloti = array_index_nospec(sloti, set->queue_depth);
	slot = &dev->slots[sloti];
	if (slot->state != VDI_SLOT_HELD || slot->gen != VDI_TAG_GEN(d->tag))
		return -ESTALE;
	if (vdi_is_data(slot->cmd.code) && d->bytes_transferred > slot->cmd.size)
		return -EINVAL;

	dev->nheld--;
	if (dev->state == VDI_DEV_IO_ERROR || d->completion_code)
		*wake |= BIT_ULL(devi);
	vdi_slot_finish(set, slot, d->completion_code, d->bytes_transferred,
			d->position, now);
	trace_vdi_complete(set, slot, VDI_TRACE_BY_CLIENT);
	if (d->completion_code) {
		/* Spec 5.2: the device enters IO-ERROR; queued work fails. */
		vdi_dev_flush_queue(set, dev, now);
		if (dev->state == VDI_DEV_ACTIVE) {
			dev->state = VDI_DEV_IO_ERROR;
			dev->fig.io_error_episodes++;
		}
	} else if (slot->cmd.code == VDI_VDC_CLEAR_ERROR &&
		   dev->state == VDI_DEV_IO_ERROR) {
		dev->state = VDI_DEV_ACTIVE;
	}
	return 0;
}

/**
 * vdi_complete_entries() - apply the client's completions: COMPLETE, ENTER.
 * @set: the set.
 * @only: the device whose fd was used, or NULL for a client set fd.
 * @uin: user array of @count struct vdi_done.
 * @count: 0..VDI_BATCH_MAX.
 * @applied: out: entries applied, in order.
 *
 * Context: process context.
 * Return: 0 when every entry was applied, else the errno of the first that
 * was not: -EFAULT, -EINVAL, -ESTALE, -ECONNABORTED.
 */
int vdi_complete_entries(struct vdi_set *set, struct vdi_device *only,
			 const struct vdi_done __user *uin, u32 count,
			 u32 *applied)
{
	struct vdi_done in[VDI_CHUNK];
	unsigned int n, i;
	ktime_t now;
	u64 wake;
	int ret = 0;

	*applied = 0;
	while (*applied < count && !ret) {
		n = min_t(unsigned int, VDI_CHUNK, count - *applied);
		if (copy_from_user(in, uin + *applied, n * sizeof(*in)))
			return -EFAULT;
		wake = 0;
		spin_lock(&set->lock);
		now = vdi_stats_now(set);
		for (i = 0; i < n; i++) {
			ret = vdi_complete_one(set, only, &in[i], &wake, now);
			if (ret)
				break;
		}
		/* Progress for the watchdog: once per call is precise enough. */
		if (i && set->config.server_timeout)
			set->last_progress = now ?: ktime_get();
		spin_unlock(&set->lock);
		if (i)
			wake_up_interruptible(&set->cmpl_wq);
		/* A ClearError may have become available, or the device active. */
		while (wake) {
			wake_up_interruptible(&set->devs[__ffs64(wake)].cmd_wq);
			wake &= wake - 1;
		}
		*applied += i;
	}
	return ret;
}

/**
 * vdi_complete() - COMPLETE: apply the client's completions.
 * @set: the set.
 * @only: the device whose fd was used, or NULL for a client set fd.
 * @b: checked batch: entries of struct vdi_done.
 *
 * Context: process context.
 * Return: entries applied (>= 1), or -EFAULT, -EINVAL, -ESTALE,
 * -ECONNABORTED for the first entry.
 */
long vdi_complete(struct vdi_set *set, struct vdi_device *only,
		  const struct vdi_batch *b)
{
	u32 applied;
	int ret;

	ret = vdi_complete_entries(set, only, u64_to_user_ptr(b->entries),
				   b->count, &applied);
	return applied ? (long)applied : ret;
}

static long vdi_dev_close(struct vdi_file *vf)
{
	struct vdi_set *set = vf->set;
	struct vdi_device *dev = vf->dev;
	long ret = 0;

	spin_lock(&set->lock);
	if (set->state == VDI_SET_ABORTED) {
		ret = -ECONNABORTED;
	} else if (dev->state == VDI_DEV_CLOSED) {
		ret = -ESHUTDOWN;
	} else {
		dev->state = VDI_DEV_CLOSED;
		set->devs_closed++;
		vdi_stats_dev_closed(set, dev);
		vdi_set_check_done(set);
	}
	spin_unlock(&set->lock);
	if (!ret)
		vdi_set_wake_all(set);
	return ret;
}

static long vdi_dev_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct vdi_file *vf = file->private_data;
	void __user *uarg = (void __user *)arg;
	bool server = vf->role == VDI_ROLE_SERVER;
	struct vdi_batch b;
	long ret;

	switch (cmd) {
	case VDI_IOC_VERSION:
		return vdi_ioctl_version(uarg);
	case VDI_IOC_SET_STATS:
		return vdi_ioctl_set_stats(vf->set, uarg);
	case VDI_IOC_ENTER:
		return vdi_ioctl_enter(vf, uarg);
	case VDI_IOC_SEND:
	case VDI_IOC_GET_COMMANDS:
	case VDI_IOC_COMPLETE:
		ret = vdi_ioctl_batch(uarg, &b, cmd == VDI_IOC_GET_COMMANDS);
		if (ret)
			return ret;
		if (server != (cmd == VDI_IOC_SEND))
			return -EPROTO;
		if (cmd == VDI_IOC_SEND)
			return vdi_dev_send(vf, &b);
		if (cmd == VDI_IOC_GET_COMMANDS)
			return vdi_dev_get_commands(vf, &b);
		return vdi_complete(vf->set, vf->dev, &b);
	case VDI_IOC_CLOSE_DEVICE:
		ret = vdi_ioctl_ctl(uarg);
		if (ret)
			return ret;
		if (!server)
			return -EPROTO;
		return vdi_dev_close(vf);
	default:
		return -ENOTTY;
	}
}

static __poll_t vdi_dev_poll(struct file *file, poll_table *wait)
{
	struct vdi_file *vf = file->private_data;
	struct vdi_set *set = vf->set;
	struct vdi_device *dev = vf->dev;
	__poll_t mask = 0;

	if (vf->role == VDI_ROLE_SERVER)
		poll_wait(file, &dev->space_wq, wait);
	else
		poll_wait(file, &dev->cmd_wq, wait);

	spin_lock(&set->lock);
	if (set->state == VDI_SET_ABORTED) {
		mask = EPOLLERR | EPOLLHUP;
	} else if (vf->role == VDI_ROLE_SERVER) {
		if (dev->state == VDI_DEV_CLOSED)
			mask |= EPOLLHUP;
		else if (!list_empty(&dev->free))
			mask |= EPOLLOUT | EPOLLWRNORM;
	} else {
		if (!list_empty(&dev->queue) &&
		    !(dev->state == VDI_DEV_IO_ERROR && dev->nheld))
			mask |= EPOLLIN | EPOLLRDNORM;
		if (dev->state == VDI_DEV_CLOSED && list_empty(&dev->queue))
			mask |= EPOLLIN | EPOLLRDNORM | EPOLLHUP;
	}
	spin_unlock(&set->lock);
	return mask;
}

static int vdi_dev_release(struct inode *inode, struct file *file)
{
	struct vdi_file *vf = file->private_data;
	struct vdi_set *set;
	bool abort;

	set = vf->set;
	spin_lock(&set->lock);
	if (vf->role == VDI_ROLE_SERVER)
		abort = vf->dev->state != VDI_DEV_CLOSED;
	else
		abort = !vdi_dev_client_finished(vf->dev);
	spin_unlock(&set->lock);

	if (abort)
		vdi_set_abort(set, vdi_stats_close_reason(vf->role),
			      vf->dev - set->devs);
	vdi_set_put(set);
	kfree(vf);
	return 0;
}

/* close() of a device fd: wake its waiters (see vdi_file_watch()). */
static int vdi_dev_flush(struct file *file, fl_owner_t id)
{
	struct vdi_file *vf = file->private_data;

	atomic_inc(&vf->flushes);
	wake_up_interruptible_all(&vf->dev->cmd_wq);
	wake_up_interruptible_all(&vf->dev->space_wq);
	return 0;
}

static const struct file_operations vdi_device_fops = {
	.owner		= THIS_MODULE,
	.release	= vdi_dev_release,
	.flush		= vdi_dev_flush,
	.unlocked_ioctl	= vdi_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.poll		= vdi_dev_poll,
	.llseek		= noop_llseek,
	.show_fdinfo	= vdi_show_fdinfo,
};
