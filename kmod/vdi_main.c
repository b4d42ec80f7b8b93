// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: the SQL Server Virtual Device Interface transport.
 *
 * /dev/vdi endpoints: the handshake, the ioctls that give an endpoint its
 * role on a set, the set-level ioctls, poll and mmap.  The protocol itself
 * lives in vdi_set.c (sets, configuration, the agent) and vdi_dev.c
 * (devices and their command queues).
 */
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vdi_internal.h"

unsigned int vdi_max_sets_per_user = 16;
module_param_named(max_sets_per_user, vdi_max_sets_per_user, uint, 0644);
MODULE_PARM_DESC(max_sets_per_user, "Sets one uid may have at once (16)");

unsigned int vdi_max_queue_depth = 256;
module_param_named(max_queue_depth, vdi_max_queue_depth, uint, 0444);
MODULE_PARM_DESC(max_queue_depth, "Largest per-device command queue (256, max 4096)");

unsigned int vdi_default_queue_depth = 32;
module_param_named(default_queue_depth, vdi_default_queue_depth, uint, 0444);
MODULE_PARM_DESC(default_queue_depth, "Queue depth when the server asks for 0 (32)");

unsigned int vdi_max_area_mb = 1024;
module_param_named(max_area_mb, vdi_max_area_mb, uint, 0444);
MODULE_PARM_DESC(max_area_mb, "Largest buffer area of one set, MiB (1024, max 4095)");

unsigned int vdi_max_user_area_mb = 2048;
module_param_named(max_user_area_mb, vdi_max_user_area_mb, uint, 0644);
MODULE_PARM_DESC(max_user_area_mb, "Buffer areas one user may hold at once, MiB, unless its RLIMIT_MEMLOCK is higher (2048)");

/* The hard ceilings behind the parameters: slot index and tag layout. */
#define VDI_QUEUE_DEPTH_CEILING	4096U
#define VDI_AREA_MB_CEILING	4095U

static bool vdi_zeroed(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

/* A batch descriptor's own checks; timeout_ms only where the call waits. */
static int vdi_batch_check(const struct vdi_batch *b, bool waits)
{
	if (!b->count || b->count > VDI_BATCH_MAX || b->flags ||
	    !vdi_zeroed(b->reserved, sizeof(b->reserved)))
		return -EINVAL;
	if (!waits && b->timeout_ms)
		return -EINVAL;
	return 0;
}

static unsigned int vdi_clamped(unsigned int val, unsigned int ceiling)
{
	return min(val, ceiling);
}

/**
 * vdi_ioctl_version() - VERSION: the API and feature handshake.
 * @uarg: user pointer to a struct vdi_version.
 *
 * A caller may state the major version it speaks (0: just asking); a
 * different major is refused.  The module's version, features and limits
 * are written back.
 *
 * Context: process context; may fault.
 * Return: 0, -EFAULT, -EINVAL (reserved bytes) or -EPROTONOSUPPORT.
 */
long vdi_ioctl_version(void __user *uarg)
{
	struct vdi_version v;

	if (copy_from_user(&v, uarg, sizeof(v)))
		return -EFAULT;
	if (!vdi_zeroed(v.reserved, sizeof(v.reserved)))
		return -EINVAL;
	if (v.api_major && v.api_major != VDI_API_MAJOR)
		return -EPROTONOSUPPORT;

	v.api_major = VDI_API_MAJOR;
	v.api_minor = VDI_API_MINOR;
	v.features = VDI_FEAT_BATCH | VDI_FEAT_POLL | VDI_FEAT_SECONDARY |
		     VDI_FEAT_WATCHDOG | VDI_FEAT_GROUP_ACCESS |
		     VDI_FEAT_SET_INFO | VDI_FEAT_STATS | VDI_FEAT_ENTER;
	v.max_devices = VDI_MAX_DEVICES;
	v.max_queue_depth = vdi_clamped(vdi_max_queue_depth,
					VDI_QUEUE_DEPTH_CEILING);
	v.name_max = VDI_NAME_MAX;
	v.max_sets_per_user = vdi_max_sets_per_user;
	v.max_area_size = (u64)vdi_clamped(vdi_max_area_mb,
					   VDI_AREA_MB_CEILING) << 20;
	return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
}

static long vdi_ioctl_create(struct vdi_file *vf, void __user *uarg)
{
	struct vdi_create arg;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~VDI_CREATE_GID ||
	    !vdi_zeroed(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	return vdi_set_create(vf, &arg);
}

static long vdi_ioctl_open(struct vdi_file *vf, void __user *uarg,
			   enum vdi_role role)
{
	struct vdi_open arg;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved0 ||
	    !vdi_zeroed(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	return vdi_set_open(vf, &arg, role);
}

static long vdi_ioctl_get_config(struct vdi_file *vf, void __user *uarg)
{
	struct vdi_get_config arg;
	long ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || !vdi_zeroed(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	ret = vdi_set_get_config(vf, &arg);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static long vdi_ioctl_set_info(struct vdi_file *vf, void __user *uarg)
{
	struct vdi_set_info arg;
	long ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || !vdi_zeroed(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	ret = vdi_set_get_info(vf, &arg);
	if (ret)
		return ret;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static long vdi_ioctl_begin_config(struct vdi_set *set, void __user *uarg)
{
	struct vdi_begin_config arg;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!vdi_zeroed(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	return vdi_set_begin_config(set, &arg);
}

static long vdi_ioctl_end_config(struct vdi_set *set, void __user *uarg)
{
	struct vdi_end_config arg;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved0 ||
	    !vdi_zeroed(arg.reserved, sizeof(arg.reserved)))
		return -EINVAL;
	return vdi_set_end_config(set, &arg);
}

/**
 * vdi_ioctl_batch() - copy and check the descriptor of a batched ioctl.
 * @uarg: user pointer to a struct vdi_batch.
 * @b: the kernel copy to fill.
 * @waits: whether this ioctl may wait (see vdi_batch_check()).
 *
 * Context: process context; may fault.
 * Return: 0, -EFAULT or -EINVAL.
 */
long vdi_ioctl_batch(void __user *uarg, struct vdi_batch *b, bool waits)
{
	if (copy_from_user(b, uarg, sizeof(*b)))
		return -EFAULT;
	return vdi_batch_check(b, waits);
}

/**
 * vdi_ioctl_ctl() - copy and check the argument of a flag-only ioctl.
 * @uarg: user pointer to a struct vdi_ctl.
 *
 * Context: process context; may fault.
 * Return: 0, -EFAULT or -EINVAL.
 */
long vdi_ioctl_ctl(void __user *uarg)
{
	struct vdi_ctl arg;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved0 || arg.reserved)
		return -EINVAL;
	return 0;
}

static bool vdi_is_client(enum vdi_role role)
{
	return role == VDI_ROLE_CLIENT || role == VDI_ROLE_SECONDARY;
}

static long vdi_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vdi_file *vf = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct vdi_set *set;
	struct vdi_batch b;
	enum vdi_role role;
	long ret;

	switch (cmd) {
	case VDI_IOC_VERSION:
		return vdi_ioctl_version(uarg);
	case VDI_IOC_CREATE:
		return vdi_ioctl_create(vf, uarg);
	case VDI_IOC_OPEN_SERVER:
		return vdi_ioctl_open(vf, uarg, VDI_ROLE_SERVER);
	case VDI_IOC_OPEN_SECONDARY:
		return vdi_ioctl_open(vf, uarg, VDI_ROLE_SECONDARY);
	case VDI_IOC_GET_CONFIG:
		return vdi_ioctl_get_config(vf, uarg);
	case VDI_IOC_SET_INFO:
		return vdi_ioctl_set_info(vf, uarg);
	case VDI_IOC_OPEN_DEVICE:
		return vdi_dev_open(vf, uarg);
	case VDI_IOC_LIST_SETS:
		return vdi_ioctl_list_sets(uarg);
	case VDI_IOC_SET_STATS:
		return vdi_ioctl_set_stats(vdi_file_set(vf), uarg);
	case VDI_IOC_ABORT_SET:
		return vdi_ioctl_abort_set(uarg);
	case VDI_IOC_ENTER:
		return vdi_ioctl_enter(vf, uarg);
	case VDI_IOC_BEGIN_CONFIG:
	case VDI_IOC_END_CONFIG:
	case VDI_IOC_WAIT_COMPLETIONS:
	case VDI_IOC_COMPLETE:
	case VDI_IOC_SIGNAL_ABORT:
		break;
	default:
		/* Device-only ioctls and anything unknown. */
		return -ENOTTY;
	}

	set = vdi_file_set(vf);
	if (!set)
		return -EPROTO;
	role = vf->role;

	switch (cmd) {
	case VDI_IOC_BEGIN_CONFIG:
		if (role != VDI_ROLE_SERVER)
			return -EPROTO;
		return vdi_ioctl_begin_config(set, uarg);
	case VDI_IOC_END_CONFIG:
		if (role != VDI_ROLE_SERVER)
			return -EPROTO;
		return vdi_ioctl_end_config(set, uarg);
	case VDI_IOC_WAIT_COMPLETIONS:
		ret = vdi_ioctl_batch(uarg, &b, true);
		if (ret)
			return ret;
		if (role != VDI_ROLE_SERVER)
			return -EPROTO;
		return vdi_set_wait_completions(vf, &b);
	case VDI_IOC_COMPLETE:
		ret = vdi_ioctl_batch(uarg, &b, false);
		if (ret)
			return ret;
		if (!vdi_is_client(role))
			return -EPROTO;
		return vdi_complete(set, NULL, &b);
	default:	/* VDI_IOC_SIGNAL_ABORT */
		ret = vdi_ioctl_ctl(uarg);
		if (ret)
			return ret;
		vdi_set_abort(set, role == VDI_ROLE_SERVER ?
			      VDI_ABORT_SERVER_SIGNAL : VDI_ABORT_CLIENT_SIGNAL,
			      VDI_ABORT_NO_DEVICE);
		return 0;
	}
}

static __poll_t vdi_poll(struct file *file, poll_table *wait)
{
	struct vdi_file *vf = file->private_data;
	struct vdi_set *set = vdi_file_set(vf);
	__poll_t mask = 0;

	if (!set)
		return EPOLLERR;	/* no role: nothing will ever happen */

	if (vf->role == VDI_ROLE_SERVER)
		poll_wait(file, &set->cmpl_wq, wait);
	else
		poll_wait(file, &set->cfg_wq, wait);

	spin_lock(&set->lock);
	if (set->state == VDI_SET_ABORTED) {
		mask = EPOLLERR | EPOLLHUP;
	} else if (vf->role == VDI_ROLE_SERVER) {
		if (!list_empty(&set->done))
			mask |= EPOLLIN | EPOLLRDNORM;
		if (set->state == VDI_SET_DONE)
			mask |= EPOLLIN | EPOLLRDNORM | EPOLLHUP;
	} else if (set->state >= VDI_SET_READY) {
		mask |= EPOLLIN | EPOLLRDNORM;
	}
	spin_unlock(&set->lock);
	return mask;
}

static int vdi_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vdi_file *vf = file->private_data;
	struct vdi_set *set = vdi_file_set(vf);

	if (!set)
		return -EPROTO;
	return vdi_area_mmap(set, vma);
}

static int vdi_open(struct inode *inode, struct file *file)
{
	struct vdi_file *vf;

	vf = kzalloc(sizeof(*vf), GFP_KERNEL_ACCOUNT);
	if (!vf)
		return -ENOMEM;
	file->private_data = vf;
	return 0;
}

static int vdi_release(struct inode *inode, struct file *file)
{
	struct vdi_file *vf = file->private_data;

	if (vf->set)
		vdi_set_release(vf);
	kfree(vf);
	return 0;
}

static const struct file_operations vdi_fops = {
	.owner		= THIS_MODULE,
	.open		= vdi_open,
	.release	= vdi_release,
	.flush		= vdi_set_flush,
	.unlocked_ioctl	= vdi_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.poll		= vdi_poll,
	.mmap		= vdi_mmap,
	.llseek		= noop_llseek,
	.show_fdinfo	= vdi_show_fdinfo,
};

static struct miscdevice vdi_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= VDI_DEVICE_NAME,
	.fops	= &vdi_fops,
	/* Root only until udev's 60-vdi.rules grants group "vdi" 0660. */
	.mode	= 0600,
};

static int __init vdi_init(void)
{
	if (vdi_max_queue_depth < 1 || vdi_max_queue_depth > VDI_QUEUE_DEPTH_CEILING ||
	    vdi_default_queue_depth < 1 ||
	    vdi_default_queue_depth > vdi_max_queue_depth ||
	    vdi_max_area_mb > VDI_AREA_MB_CEILING) {
		pr_err("vdi: module parameters out of range\n");
		return -EINVAL;
	}
	return misc_register(&vdi_misc);
}

static void __exit vdi_exit(void)
{
	misc_deregister(&vdi_misc);
}

module_init(vdi_init);
module_exit(vdi_exit);

MODULE_DESCRIPTION("SQL Server Virtual Device Interface transport");
MODULE_AUTHOR("The vdi authors");
MODULE_LICENSE("GPL");
/* The package's version: dkms.conf's PACKAGE_VERSION, the Makefile's VERSION. */
MODULE_VERSION("1.0.0");
