/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shims for the kernels vdi builds against (Debian's 6.1 and 6.12).
 * One shim each, with why; feature tests first, version checks only
 * where the difference is a plain function with no macro to test.
 */
#ifndef VDI_COMPAT_H
#define VDI_COMPAT_H

#include <linux/mm.h>
#include <linux/version.h>

/* 6.3 made vma->vm_flags read-only and added vm_flags_set() to change it. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma, unsigned long flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * The buffer area is charged to its creator's user_struct.locked_vm, which
 * the kernel has only when one of its users is built in (the list of
 * <linux/sched/user.h>); every distribution kernel has CONFIG_NET.
 */
#if !(defined(CONFIG_PERF_EVENTS) || defined(CONFIG_BPF_SYSCALL) || \
	defined(CONFIG_NET) || defined(CONFIG_IO_URING) || \
	IS_ENABLED(CONFIG_VFIO))
#error "vdi needs user_struct.locked_vm: a kernel with CONFIG_NET or CONFIG_IO_URING"
#endif

/*
 * 6.10 dropped __assign_str()'s source argument (__string() names the
 * source once).  For TP_fast_assign() in vdi_trace.h only.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 10, 0)
#define vdi_assign_str(dst, src)	__assign_str(dst, src)
#else
#define vdi_assign_str(dst, src)	__assign_str(dst)
#endif

#endif /* VDI_COMPAT_H */
