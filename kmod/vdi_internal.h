/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdi: internal structures shared by the module's files.
 *
 * Lock order: vdi_sets_lock (mutex) -> set->cfg_mutex -> set->lock (spinlock).
 * Nothing sleeps under set->lock; nothing touches user memory under it.
 */
#ifndef VDI_INTERNAL_H
#define VDI_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/ipc_namespace.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/minmax.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/nsproxy.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/spinlock.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/vdi.h>

struct seq_file;

extern unsigned int vdi_max_sets_per_user;
extern unsigned int vdi_max_queue_depth;
extern unsigned int vdi_default_queue_depth;
extern unsigned int vdi_max_area_mb;
extern unsigned int vdi_max_user_area_mb;
extern bool vdi_stats_param;

/* vdi_set.c: the sets, named or not, and their lock (see vdi_set.c). */
extern struct mutex vdi_sets_lock;
extern struct list_head vdi_live_sets;

enum vdi_set_state {
	VDI_SET_CREATED,	/* the client created it; no server yet */
	VDI_SET_CONNECTED,	/* the server opened it */
	VDI_SET_CONFIGURING,	/* the server's BEGIN_CONFIG is done */
	VDI_SET_READY,		/* END_CONFIG done: devices and commands */
	VDI_SET_DONE,		/* normal end: all devices closed, none in flight */
	VDI_SET_ABORTED,	/* abnormal end: only close() is useful */
};

enum vdi_role {
	VDI_ROLE_NONE,		/* endpoint without a set yet */
	VDI_ROLE_CLIENT,	/* primary client: created the set */
	VDI_ROLE_SECONDARY,	/* secondary client process */
	VDI_ROLE_SERVER,	/* the engine */
};

enum vdi_slot_state {
	VDI_SLOT_FREE,		/* on dev->free */
	VDI_SLOT_QUEUED,	/* on dev->queue, not yet taken by the client */
	VDI_SLOT_HELD,		/* taken by the client, on no list */
	VDI_SLOT_DONE,		/* on set->done, waiting for the agent */
	VDI_SLOT_REAPING,	/* being copied out to the agent, on a local list */
};

enum vdi_dev_state {
	VDI_DEV_ACTIVE,
	VDI_DEV_IO_ERROR,	/* spec 5.2: only ClearError may be sent */
	VDI_DEV_CLOSED,		/* the server closed it */
};

/* One command slot of a device; its index and generation make the tag. */
struct vdi_slot {
	struct list_head node;
	struct vdi_send cmd;		/* as sent by the server */
	u32 gen;			/* bumped each time the slot is freed */
	u16 index;
	u16 dev_index;
	enum vdi_slot_state state;
	u32 completion_code;
	u32 bytes;
	s64 position;
	ktime_t since;			/* entered its state: the figures */
};

/* The busy/idle clock of a device (struct vdi_dev_figures). */
enum vdi_clock {
	VDI_CLOCK_OFF,		/* not both sides open yet */
	VDI_CLOCK_RUNNING,
	VDI_CLOCK_FROZEN,	/* closed by the server, or the set ended */
};

/*
 * What went through a device, and when (docs/ABI.md, "Figures").  Times
 * are sums of ktime differences; for a set that is not timed every stamp is
 * 0, so they stay 0 while the counts still run.
 */
struct vdi_dev_figures {
	u32 queued;			/* slots sent, not yet taken */
	u32 done;			/* slots completed, not yet reaped */
	u32 queued_peak;
	u32 inflight_peak;		/* queued + held + done */
	u32 io_error_episodes;
	u32 ncodes;			/* completions[] in use */
	u64 sent, taken, completed, reaped;
	u64 bytes_read, bytes_written;
	u64 queued_ns, held_ns, reaping_ns;
	u64 busy_ns, idle_ns;		/* client busy / idle, frozen parts */
	enum vdi_clock clock;
	bool clock_busy;		/* what the running interval is */
	ktime_t clock_since;		/* its start */
	u64 sent_by_code[VDI_VDC_MAX + 1];
	struct vdi_code_count completions[VDI_STATS_CODES];
	u64 completions_other;
};

/* Everything in a device is protected by its set's lock. */
struct vdi_device {
	char name[VDI_NAME_MAX];	/* empty until bound by a first open */
	enum vdi_dev_state state;
	bool server_open;
	bool client_open;
	unsigned int nheld;		/* slots held by the client */
	struct list_head queue;		/* FIFO of queued slots */
	struct list_head free;		/* free slots */
	struct vdi_slot *slots;		/* queue_depth of them, from END_CONFIG */
	wait_queue_head_t cmd_wq;	/* client waiting for a command */
	wait_queue_head_t space_wq;	/* server polling for queue room */
	struct vdi_dev_figures fig;
};

struct vdi_set {
	struct kref ref;		/* one per fd on the set */
	struct list_head node;		/* on vdi_sets while linked */
	bool linked;			/* protected by vdi_sets_lock */
	struct list_head live;		/* on vdi_live_sets until freed */

	/* Fixed at creation. */
	char name[VDI_NAME_MAX];
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	struct user_namespace *user_ns;	/* referenced: scope and capability */
	unsigned int ipc_ns_inum;	/* scope token; see docs/ABI.md */
	struct mem_cgroup *memcg;	/* the creator's, charged for the area */
	struct user_struct *owner;	/* the creator's user: its locked_vm
					 * is charged for the area
					 */
	struct mm_struct *owner_mm;	/* the creator's mm (mmgrab): its
					 * pinned_vm, VmPin
					 */
	unsigned long memlock;		/* the creator's RLIMIT_MEMLOCK in
					 * pages; ULONG_MAX: CAP_IPC_LOCK
					 */
	u32 device_count;
	u64 id;				/* unique while the module is loaded:
					 * the figures' and trace events' name
					 */
	bool timed;			/* the stats parameter at CREATE */
	struct pid *client_pid;		/* the creator's thread group */
	ktime_t created_at;

	/* Serialises the sleeping part of END_CONFIG. */
	struct mutex cfg_mutex;

	/* Fixed once the set is ready (published under @lock). */
	struct page **pages;
	unsigned long npages;
	u32 queue_depth;

	/* Protects everything below, and every device's fields. */
	spinlock_t lock;
	enum vdi_set_state state;
	bool has_server;
	bool client_configured;		/* the primary's GET_CONFIG succeeded */
	struct vdi_config config;
	u32 begin_timeout_ms;
	unsigned int server_devs_open;
	unsigned int client_devs_open;
	unsigned int devs_closed;
	unsigned int inflight;		/* slots not free, all devices */
	u32 watch_gen;			/* bumped when inflight leaves 0 */
	ktime_t last_progress;		/* last send into an idle set, or
					 * completion: the watchdog
					 */
	struct list_head done;		/* completed slots, in order */
	struct pid *server_pid;		/* set once, at OPEN_SERVER */
	unsigned int secondaries;	/* secondary set fds open */
	ktime_t ready_at, ended_at;	/* END_CONFIG; normal end or abort */
	u32 abort_reason;		/* VDI_ABORT_*: the first cause */
	u32 abort_device;
	struct pid *abort_pid;
	unsigned int agents_waiting;	/* in WAIT_COMPLETIONS, asleep */
	ktime_t agent_wait_since;	/* since when one is */
	u64 agent_wait_ns;		/* when none is any more */
	wait_queue_head_t cfg_wq;	/* client waiting for END_CONFIG */
	wait_queue_head_t cmpl_wq;	/* the completion agent */

	struct vdi_device devs[];
};

/* Private data of every vdi fd: /dev/vdi endpoints and device fds. */
struct vdi_file {
	enum vdi_role role;		/* written once, under vdi_sets_lock */
	struct vdi_set *set;		/* published with smp_store_release() */
	struct vdi_device *dev;		/* device fds only */
	atomic_t flushes;		/* close()s of an fd of this file */
};

/**
 * vdi_slot_tag() - the tag that names a slot's current command.
 * @slot: the slot.
 *
 * Its generation, device and index: a tag of a slot since reused is stale.
 *
 * Context: under the slot's set's lock (or before it is published).
 * Return: the tag the client completes the command with.
 */
static inline u64 vdi_slot_tag(const struct vdi_slot *slot)
{
	return (u64)slot->gen << 32 | (u32)slot->dev_index << 16 | slot->index;
}

/**
 * vdi_file_set() - the set an fd belongs to.
 * @vf: the fd's private data.
 *
 * Context: any.
 * Return: the set, or NULL for an endpoint without a role yet.
 */
static inline struct vdi_set *vdi_file_set(struct vdi_file *vf)
{
	/* Pairs with the smp_store_release() in vdi_file_bind(). */
	return smp_load_acquire(&vf->set);
}

/**
 * vdi_deadline() - the absolute end of a VDI wait.
 * @ms: milliseconds; negative waits forever.
 *
 * Context: any.
 * Return: the deadline on CLOCK_MONOTONIC, KTIME_MAX for ever.
 */
static inline ktime_t vdi_deadline(s64 ms)
{
	if (ms < 0 || ms > KTIME_SEC_MAX / 2 * MSEC_PER_SEC)
		return KTIME_MAX;
	return ktime_add_ms(ktime_get(), ms);
}

/*
 * Wait interruptibly on @wq until @cond holds or @deadline passes; an
 * hrtimer, so a VDI timeout never ends early.  0, -ETIMEDOUT, or for a
 * signal: -ERESTARTSYS when the wait is infinite (a stop, a ptrace attach
 * or an SA_RESTART handler restarts it), -ERESTARTNOHAND when it is timed
 * (restarted, with its whole timeout, only when no handler runs; a handled
 * signal ends it with EINTR, so a periodic one cannot stretch it for ever).
 * The caller has taken nothing it would have to give back.
 */
#define vdi_wait_event(wq, cond, deadline)				\
({									\
	ktime_t __left = ktime_sub((deadline), ktime_get());		\
	bool __forever = (deadline) == KTIME_MAX;			\
	int __ret;							\
									\
	if (__forever)							\
		__ret = wait_event_interruptible(wq, cond);		\
	else if (__left <= 0)						\
		__ret = (cond) ? 0 : -ETIME;				\
	else								\
		__ret = wait_event_interruptible_hrtimeout(wq, cond,	\
							   __left);	\
	__ret == -ETIME ? -ETIMEDOUT : !__ret ? 0 :			\
	__forever ? -ERESTARTSYS : -ERESTARTNOHAND;			\
})

/*
 * The bounded busy-poll of VDI_IOC_ENTER (spin_us): before a wait sleeps,
 * look at its condition without the set's lock until it holds or the
 * budget is spent.  A system call and a lock hold per look is what a
 * caller polling from user space pays; here a look is a few loads.
 */
struct vdi_spin {
	u32 us;		/* the budget asked for; 0: none, or none left */
	u64 end;	/* local_clock() at which it ends, once started */
};

/**
 * vdi_spin_init() - a spin budget for one call.
 * @sp: the budget.
 * @us: microseconds, at most VDI_SPIN_MAX_US (checked by the caller).
 *
 * Context: any.
 */
static inline void vdi_spin_init(struct vdi_spin *sp, u32 us)
{
	sp->us = us;
	sp->end = 0;
}

/**
 * vdi_spin_start() - start a spin, unless it has started or is spent.
 * @sp: the budget.
 * @until: the wait's deadline (KTIME_MAX: none); the spin ends by then.
 *
 * Context: process context.
 * Return: whether there is spinning left to do.
 */
static inline bool vdi_spin_start(struct vdi_spin *sp, ktime_t until)
{
	s64 left;

	if (!sp->us)
		return false;
	if (!sp->end) {
		left = (s64)sp->us * NSEC_PER_USEC;
		if (until != KTIME_MAX)
			left = min(left, ktime_to_ns(ktime_sub(until,
								ktime_get())));
		sp->end = local_clock() + max(left, 0LL);
	}
	return true;
}

/*
 * Spin on @peek, a lockless look at a wait's condition (a hint: the caller
 * checks again under the lock), for what is left of @sp's budget, which
 * ends by @until.  It stops at once when the CPU is wanted elsewhere
 * (need_resched()) or a signal is pending, and then spends the budget: the
 * wait sleeps next.  true when @peek held, false when the spin is over.
 */
#define vdi_spin_until(sp, until, peek)					\
({									\
	bool __hit = false;						\
									\
	if (vdi_spin_start(sp, until)) {				\
		for (;;) {						\
			if (peek) {					\
				__hit = true;				\
				break;					\
			}						\
			if (need_resched() || signal_pending(current) ||\
			    local_clock() >= (sp)->end) {		\
				(sp)->us = 0;				\
				break;					\
			}						\
			cpu_relax();					\
		}							\
	}								\
	__hit;								\
})

/**
 * vdi_current_ipc_inum() - the scope token of the current IPC namespace.
 *
 * Context: process context.
 * Return: the inode number of the caller's IPC namespace (docs/ABI.md).
 */
static inline unsigned int vdi_current_ipc_inum(void)
{
	return current->nsproxy->ipc_ns->ns.inum;
}

/*
 * Figures (docs/ABI.md): the hot-path half, inline; vdi_stats.c has the
 * rest.  All under the set's lock, with one vdi_stats_now() per lock hold.
 */

/**
 * vdi_stats_now() - the time stamp of the figures for one lock hold.
 * @set: the set.
 *
 * Context: any; under set->lock, so that stamps never go backwards.
 * Return: ktime_get(), or 0 for a set created with the stats parameter off.
 */
static inline ktime_t vdi_stats_now(const struct vdi_set *set)
{
	return set->timed ? ktime_get() : 0;
}

/**
 * vdi_stats_clock_update() - move the busy/idle clock past a change.
 * @dev: the device, its set locked, after its queued or held count changed.
 * @now: vdi_stats_now() of this lock hold.
 *
 * Context: under the set's lock.
 */
static inline void vdi_stats_clock_update(struct vdi_device *dev, ktime_t now)
{
	struct vdi_dev_figures *f = &dev->fig;
	bool busy = f->queued || dev->nheld;

	if (f->clock != VDI_CLOCK_RUNNING || busy == f->clock_busy)
		return;
	if (f->clock_busy)
		f->busy_ns += now - f->clock_since;
	else
		f->idle_ns += now - f->clock_since;
	f->clock_since = now;
	f->clock_busy = busy;
}

/**
 * vdi_stats_sent() - count a command the server queued.
 * @dev: its device, the set locked.
 * @slot: the slot, just queued (its code checked: 1..VDI_VDC_MAX).
 * @now: vdi_stats_now() of this lock hold.
 *
 * Context: under the set's lock.
 */
static inline void vdi_stats_sent(struct vdi_device *dev, struct vdi_slot *slot,
				  ktime_t now)
{
	struct vdi_dev_figures *f = &dev->fig;

	f->sent++;
	/* The code comes from user space: no speculation past its check. */
	f->sent_by_code[array_index_nospec(slot->cmd.code,
					   VDI_VDC_MAX + 1)]++;
	f->queued++;
	f->queued_peak = max(f->queued_peak, f->queued);
	f->inflight_peak = max(f->inflight_peak,
			       f->queued + dev->nheld + f->done);
	slot->since = now;
	vdi_stats_clock_update(dev, now);
}

/**
 * vdi_stats_taken() - count a command the client took.
 * @dev: its device, the set locked (held count already raised).
 * @slot: the slot, queued until now.
 * @now: vdi_stats_now() of this lock hold.
 *
 * Context: under the set's lock.
 */
static inline void vdi_stats_taken(struct vdi_device *dev,
				   struct vdi_slot *slot, ktime_t now)
{
	dev->fig.taken++;
	dev->fig.queued--;
	dev->fig.queued_ns += now - slot->since;
	slot->since = now;
}

/**
 * vdi_stats_untaken() - a taken command goes back: it was never received.
 * @dev: its device, the set locked (held count already lowered).
 *
 * The time it spent taken counts as queued, and so does the command in the
 * queue's peak: the engine may have queued more while it was away.
 *
 * Context: under the set's lock.
 */
static inline void vdi_stats_untaken(struct vdi_device *dev)
{
	struct vdi_dev_figures *f = &dev->fig;

	f->taken--;
	f->queued++;
	f->queued_peak = max(f->queued_peak, f->queued);
}

/* vdi_stats.c */
void vdi_stats_finished(struct vdi_device *dev, struct vdi_slot *slot,
			u32 code, u32 bytes, ktime_t now);
void vdi_stats_reaped(struct vdi_device *dev, struct vdi_slot *slot,
		      ktime_t now);
void vdi_stats_dev_opened(struct vdi_set *set, struct vdi_device *dev);
void vdi_stats_dev_unbound(struct vdi_set *set, struct vdi_device *dev);
void vdi_stats_dev_closed(struct vdi_set *set, struct vdi_device *dev);
void vdi_stats_set_init(struct vdi_set *set);
void vdi_stats_set_free(struct vdi_set *set);
void vdi_stats_ended(struct vdi_set *set);
void vdi_stats_aborted(struct vdi_set *set, u32 reason, u32 device);
u32 vdi_stats_close_reason(enum vdi_role role);
void vdi_stats_agent_sleeps(struct vdi_set *set);
void vdi_stats_agent_wakes(struct vdi_set *set);
long vdi_ioctl_list_sets(void __user *uarg);
long vdi_ioctl_set_stats(struct vdi_set *own, void __user *uarg);
long vdi_ioctl_abort_set(void __user *uarg);
void vdi_show_fdinfo(struct seq_file *m, struct file *file);

/* vdi_set.c */
int vdi_set_create(struct vdi_file *vf, const struct vdi_create *arg);
int vdi_set_open(struct vdi_file *vf, const struct vdi_open *arg,
		 enum vdi_role role);
void vdi_set_put(struct vdi_set *set);
void vdi_set_release(struct vdi_file *vf);
long vdi_set_get_info(struct vdi_file *vf, struct vdi_set_info *arg);
long vdi_set_get_config(struct vdi_file *vf, struct vdi_get_config *arg);
long vdi_set_begin_config(struct vdi_set *set,
			  const struct vdi_begin_config *arg);
long vdi_set_end_config(struct vdi_set *set, const struct vdi_end_config *arg);
long vdi_set_wait(struct vdi_file *vf, struct vdi_completion __user *uout,
		  u32 count, s64 timeout_ms, u32 spin_us);
long vdi_set_wait_completions(struct vdi_file *vf, const struct vdi_batch *b);
int vdi_set_flush(struct file *file, fl_owner_t id);
int vdi_file_watch(struct vdi_file *vf, int *flushes);
bool vdi_file_closed(struct vdi_file *vf, int *flushes);
void vdi_set_abort(struct vdi_set *set, u32 reason, u32 device);
void vdi_set_check_done(struct vdi_set *set);
void vdi_set_wake_all(struct vdi_set *set);
void vdi_slot_finish(struct vdi_set *set, struct vdi_slot *slot, u32 code,
		     u32 bytes, s64 position, ktime_t now);
int vdi_check_name(const char *name);
bool vdi_dev_client_finished(const struct vdi_device *dev);

/* vdi_dev.c */
long vdi_dev_open(struct vdi_file *vf, struct vdi_open_device __user *uarg);
long vdi_complete(struct vdi_set *set, struct vdi_device *only,
		  const struct vdi_batch *b);
int vdi_complete_entries(struct vdi_set *set, struct vdi_device *only,
			 const struct vdi_done __user *uin, u32 count,
			 u32 *applied);
int vdi_dev_send_to(struct vdi_set *set, const struct vdi_send_to __user *uin,
		    u32 count, u32 *sent);
long vdi_dev_get(struct vdi_file *vf, struct vdi_command __user *uout,
		 u32 count, s64 timeout_ms, u32 spin_us);
int vdi_dev_alloc_slots(struct vdi_set *set, struct vdi_slot **slots);
void vdi_dev_drop_slots(struct vdi_slot **slots, u32 count);
void vdi_dev_install_slots(struct vdi_set *set, struct vdi_slot **slots);
void vdi_dev_free_slots(struct vdi_set *set);

/* vdi_area.c */
int vdi_area_alloc(struct vdi_set *set, u64 size);
void vdi_area_free(struct vdi_set *set);
int vdi_area_mmap(struct vdi_set *set, struct vm_area_struct *vma);
void vdi_area_owner_init(struct vdi_set *set);
void vdi_area_owner_put(struct vdi_set *set);

/* vdi_enter.c */
long vdi_ioctl_enter(struct vdi_file *vf, struct vdi_enter __user *uarg);

/* vdi_main.c */
long vdi_ioctl_version(void __user *uarg);
long vdi_ioctl_ctl(void __user *uarg);
long vdi_ioctl_batch(void __user *uarg, struct vdi_batch *b, bool waits);

#endif /* VDI_INTERNAL_H */
