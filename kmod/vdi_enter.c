// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: VDI_IOC_ENTER, one system call per turn of a side (API 1.3).
 *
 * A client device fd hands in its completions and takes its next
 * commands; the server's set fd (the completion agent) hands in the
 * commands it sends and takes the completions.  Each half is the older
 * ioctl's own code (vdi_dev.c, vdi_set.c), so its checks, errnos, figures
 * and trace events are the same; what ENTER adds is the one call, and a
 * bounded busy-poll before the reap's wait sleeps (docs/ABI.md, "One call
 * per turn").
 */
#include <linux/uaccess.h>

#include "vdi_internal.h"

/* The struct's own checks: EINVAL, and nothing is written back. */
static int vdi_enter_check(const struct vdi_enter *e)
{
	if (e->flags || e->reserved[0] || e->reserved[1])
		return -EINVAL;
	if (e->submit_count > VDI_BATCH_MAX || e->reap_count > VDI_BATCH_MAX)
		return -EINVAL;
	if (e->spin_us > VDI_SPIN_MAX_US)
		return -EINVAL;
	/* Nothing to reap: nothing to wait or spin for. */
	if (!e->reap_count && (e->timeout_ms || e->spin_us))
		return -EINVAL;
	return 0;
}

/*
 * Write back what went in and what came out.  The first write, before
 * anything is done, finds a struct that cannot be written (a read-only
 * page): EFAULT then leaves everything as it was.
 */
static int vdi_enter_put(struct vdi_enter __user *uarg, u32 submitted,
			 u32 reaped)
{
	if (put_user(submitted, &uarg->submitted) ||
	    put_user(reaped, &uarg->reaped))
		return -EFAULT;
	return 0;
}

/**
 * vdi_ioctl_enter() - VDI_IOC_ENTER on a set fd or a device fd.
 * @vf: the fd's private data.
 * @uarg: user pointer to a struct vdi_enter.
 *
 * A client device fd: submit struct vdi_done[] as COMPLETE on the device,
 * reap struct vdi_command[] as GET_COMMANDS.  The server's set fd: submit
 * struct vdi_send_to[] as SEND on each entry's device, reap struct
 * vdi_completion[] as WAIT_COMPLETIONS.  A submit entry refused stops the
 * call with its errno, and nothing is reaped.
 *
 * A signal during the reap's wait restarts the call only when nothing was
 * submitted: a restart would submit the entries a second time, so after a
 * submit the wait ends with EINTR whatever the signal (a stop too).
 *
 * Context: process context; sleeps.
 * Return: entries reaped (0 when reap_count is 0), or -errno: -ENOTTY (not
 * a client device fd or the server's set fd), -EPROTO (no role), -EFAULT
 * and -EINVAL for the struct, else the submit's or the reap's errno.
 */
long vdi_ioctl_enter(struct vdi_file *vf, struct vdi_enter __user *uarg)
{
	struct vdi_set *set = vdi_file_set(vf);
	u32 submitted = 0;
	struct vdi_enter e;
	bool server;
	long ret;

	if (!set)
		return -EPROTO;
	server = vf->role == VDI_ROLE_SERVER;
	/* The client's device fds and the server's set fd, no other. */
	if (server ? vf->dev != NULL : vf->dev == NULL)
		return -ENOTTY;

	if (copy_from_user(&e, uarg, sizeof(e)))
		return -EFAULT;
	ret = vdi_enter_check(&e);
	if (ret)
		return ret;
	if (vdi_enter_put(uarg, 0, 0))
		return -EFAULT;

	if (server)
		ret = vdi_dev_send_to(set, u64_to_user_ptr(e.submit),
				      e.submit_count, &submitted);
	else
		ret = vdi_complete_entries(set, vf->dev,
					   u64_to_user_ptr(e.submit),
					   e.submit_count, &submitted);
	if (!ret && e.reap_count) {
		if (server)
			ret = vdi_set_wait(vf, u64_to_user_ptr(e.reap),
					   e.reap_count, e.timeout_ms,
					   e.spin_us);
		else
			ret = vdi_dev_get(vf, u64_to_user_ptr(e.reap),
					  e.reap_count, e.timeout_ms,
					  e.spin_us);
		if (submitted &&
		    (ret == -ERESTARTSYS || ret == -ERESTARTNOHAND))
			ret = -EINTR;
	}

	/*
	 * The count returned says it all when it is not an errno (submitted
	 * is then submit_count): keep it even if the struct went away.
	 */
	if (vdi_enter_put(uarg, submitted, ret > 0 ? ret : 0) && ret < 0)
		return -EFAULT;
	return ret;
}
