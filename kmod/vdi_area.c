// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: the buffer area.
 *
 * One area per set, in whole pages, zeroed, charged to the creator's memory
 * cgroup, mapped MAP_SHARED by both sides.  The kernel never reads or writes
 * payload: it only hands pages to the page-fault handler, so the area needs
 * no kernel mapping and no physically contiguous memory.
 */
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "compat.h"
#include "vdi_internal.h"

/**
 * vdi_area_alloc() - allocate a set's buffer area.
 * @set: a set being configured (cfg_mutex held).
 * @size: bytes; rounded up to whole pages; may be 0.
 *
 * Context: process context; sleeps; a fatal signal stops it.
 * Return: 0, -ENOMEM or -EINTR (nothing allocated then).
 */
int vdi_area_alloc(struct vdi_set *set, u64 size)
{
	unsigned long npages = PAGE_ALIGN(size) >> PAGE_SHIFT;
	struct mem_cgroup *old_memcg;
	struct page **pages;
	unsigned long i;
	int ret = 0;

	lockdep_assert_held(&set->cfg_mutex);
	if (!npages)
		return 0;
	pages = kvcalloc(npages, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages)
		return -ENOMEM;

	old_memcg = set_active_memcg(set->memcg);
	for (i = 0; i < npages; i++) {
		pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
				      __GFP_NOWARN);
		if (!pages[i]) {
			ret = -ENOMEM;
			break;
		}
		if (fatal_signal_pending(current)) {
			i++;
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	set_active_memcg(old_memcg);

	if (ret) {
		while (i--)
			if (pages[i])
				__free_page(pages[i]);
		kvfree(pages);
		return ret;
	}
	set->pages = pages;
	set->npages = npages;
	return 0;
}

/**
 * vdi_area_free() - free a set's buffer area.
 * @set: a set no mapping and no fd reaches any more, or whose END_CONFIG
 *       failed.
 *
 * Context: process context.
 */
void vdi_area_free(struct vdi_set *set)
{
	unsigned long i;

	for (i = 0; i < set->npages; i++)
		__free_page(set->pages[i]);
	kvfree(set->pages);
	set->pages = NULL;
	set->npages = 0;
}

static vm_fault_t vdi_area_fault(struct vm_fault *vmf)
{
	struct vdi_file *vf = vmf->vma->vm_file->private_data;
	struct vdi_set *set = vf->set;

	/* vdi_area_mmap() checked the range; mremap cannot grow it. */
	if (vmf->pgoff >= set->npages)
		return VM_FAULT_SIGBUS;
	vmf->page = set->pages[array_index_nospec(vmf->pgoff, set->npages)];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct vdi_area_vm_ops = {
	.fault = vdi_area_fault,
};

/**
 * vdi_area_mmap() - map (part of) a set's buffer area.
 * @set: the set of the fd being mapped.
 * @vma: the new mapping.
 *
 * The mapping keeps the fd's file, hence the set and its pages, alive.
 *
 * Context: process context, mmap lock held.
 * Return: 0, -EPROTO (no area yet), -ECONNABORTED or -EINVAL (not shared,
 * or outside the area).
 */
int vdi_area_mmap(struct vdi_set *set, struct vm_area_struct *vma)
{
	unsigned long npages = vma_pages(vma);
	enum vdi_set_state state;

	spin_lock(&set->lock);
	state = set->state;
	spin_unlock(&set->lock);
	if (state == VDI_SET_ABORTED)
		return -ECONNABORTED;
	if (state != VDI_SET_READY && state != VDI_SET_DONE)
		return -EPROTO;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= set->npages || npages > set->npages - vma->vm_pgoff)
		return -EINVAL;

	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &vdi_area_vm_ops;
	return 0;
}
