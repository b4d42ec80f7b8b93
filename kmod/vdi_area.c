// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: the buffer area.
 *
 * One area per set, in whole pages, zeroed, mapped MAP_SHARED by both sides.
 * The kernel never reads or writes payload: it only hands pages to the
 * page-fault handler, so the area needs no kernel mapping and no physically
 * contiguous memory.
 *
 * The pages are pinned kernel memory, charged to the set's creator three
 * ways: its memory cgroup (GFP_KERNEL_ACCOUNT), its user's locked_vm (where
 * io_uring's registered buffers go, checked against max(RLIMIT_MEMLOCK,
 * max_user_area_mb) unless it has CAP_IPC_LOCK) and its process's pinned_vm
 * (VmPin).  An area that does not fit fails with -ENOMEM, never through the
 * OOM killer: the allocator gets __GFP_RETRY_MAYFAIL, and an area the
 * machine cannot spare (MemAvailable less a reserve) is refused up front.
 */
#include <linux/capability.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>

#include "compat.h"
#include "vdi_internal.h"

/*
 * Pages: may fail (reclaim, compaction, then ENOMEM; no OOM killer, in the
 * page allocator or the memcg charge), and quietly, as the caller may retry
 * with less.
 */
#define VDI_AREA_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/* MemAvailable an area must leave: 1/32 of the RAM. */
#define VDI_AREA_RESERVE_SHIFT	5

/**
 * vdi_area_owner_init() - record who a new set's area will be charged to.
 * @set: a set being created, by the current task.
 *
 * Takes a reference on the creator's user and mm, and notes its
 * RLIMIT_MEMLOCK (ULONG_MAX with CAP_IPC_LOCK, as mlock() does).
 *
 * Context: process context, the creator's.
 */
void vdi_area_owner_init(struct vdi_set *set)
{
	unsigned long lim = rlimit(RLIMIT_MEMLOCK);

	set->owner = get_current_user();
	set->owner_mm = current->mm;
	mmgrab(set->owner_mm);
	if (lim == RLIM_INFINITY ||
	    ns_capable_noaudit(&init_user_ns, CAP_IPC_LOCK))
		set->memlock = ULONG_MAX;
	else
		set->memlock = lim >> PAGE_SHIFT;
}

/**
 * vdi_area_owner_put() - drop what vdi_area_owner_init() took.
 * @set: a set being freed, its area already freed.
 *
 * Context: process context.
 */
void vdi_area_owner_put(struct vdi_set *set)
{
	mmdrop(set->owner_mm);
	free_uid(set->owner);
}

/* How many pages the creator's user may have pinned, all together. */
static unsigned long vdi_area_allowance(const struct vdi_set *set)
{
	unsigned long floor = (unsigned long)READ_ONCE(vdi_max_user_area_mb) <<
			      (20 - PAGE_SHIFT);

	return max(set->memlock, floor);
}

/* Charge @npages to the creator, or -ENOMEM past its allowance. */
static int vdi_area_charge(struct vdi_set *set, unsigned long npages)
{
	unsigned long allow = vdi_area_allowance(set);
	long cur = atomic_long_read(&set->owner->locked_vm);
	unsigned long sum;

	do {
		if (check_add_overflow((unsigned long)cur, npages, &sum) ||
		    sum > allow)
			return -ENOMEM;
	} while (!atomic_long_try_cmpxchg(&set->owner->locked_vm, &cur,
					  (long)sum));
	atomic64_add(npages, &set->owner_mm->pinned_vm);
	return 0;
}

static void vdi_area_uncharge(struct vdi_set *set, unsigned long npages)
{
	atomic_long_sub(npages, &set->owner->locked_vm);
	atomic64_sub(npages, &set->owner_mm->pinned_vm);
}

/* Whether the machine can spare @npages and keep its reserve. */
static bool vdi_area_fits(unsigned long npages)
{
	long avail = si_mem_available() -
		     (long)(totalram_pages() >> VDI_AREA_RESERVE_SHIFT);

	return avail > 0 && npages <= (unsigned long)avail;
}

static void vdi_area_put_pages(struct page **pages, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		__free_page(pages[i]);
		cond_resched();
	}
	kvfree(pages);
}

/**
 * vdi_area_alloc() - allocate a set's buffer area.
 * @set: a set being configured (cfg_mutex held).
 * @size: bytes; rounded up to whole pages; may be 0.
 *
 * The area is charged to the set's creator (see the top of this file).
 *
 * Context: process context; sleeps; a fatal signal stops it.
 * Return: 0, -ENOMEM (past the creator's allowance, more than the machine
 * can spare, or the allocation failed) or -EINTR; nothing is allocated or
 * charged then.
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
	ret = vdi_area_charge(set, npages);
	if (ret)
		return ret;
	if (!vdi_area_fits(npages)) {
		ret = -ENOMEM;
		goto out_uncharge;
	}

	old_memcg = set_active_memcg(set->memcg);
	pages = kvcalloc(npages, sizeof(*pages), VDI_AREA_GFP);
	for (i = 0; pages && i < npages; i++) {
		pages[i] = alloc_page(VDI_AREA_GFP | __GFP_ZERO);
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
	if (!pages) {
		ret = -ENOMEM;
		goto out_uncharge;
	}
	if (ret) {
		vdi_area_put_pages(pages, i);	/* pages[0..i) */
		goto out_uncharge;
	}
	set->pages = pages;
	set->npages = npages;
	return 0;

out_uncharge:
	vdi_area_uncharge(set, npages);
	return ret;
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
	if (!set->npages)
		return;
	vdi_area_put_pages(set->pages, set->npages);
	vdi_area_uncharge(set, set->npages);
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

	/*
	 * VM_DONTCOPY: a forked child gets no mapping, so it neither keeps a
	 * dead parent's pages nor writes into a set it has no role in.
	 */
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
	vma->vm_ops = &vdi_area_vm_ops;
	return 0;
}
