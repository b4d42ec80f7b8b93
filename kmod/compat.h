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

#endif /* VDI_COMPAT_H */
