/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvdi internals: shared by the library's files, never installed. */
#ifndef LIBVDI_INTERNAL_H
#define LIBVDI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/vdi.h>
#include "libvdi.h"

#define VDI_EXPORT __attribute__((visibility("default")))

/* errors.c: map an errno from the module onto a VDI code, and remember why. */
int vdi_fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int vdi_from_errno(int err, const char *what);
int vdi_check_instance(const char *instance);

/* stats.c: SET_STATS on @fd (id 0: the fd's own set) into @st. */
int vdi_stats_read(int fd, uint64_t id, vdi_stats *st, const char *what);

/*
 * node.c: an fd on /dev/vdi, loading the module first if need be; the
 * module's VDI_FEAT_* in *@features (may be NULL).
 */
int vdi_open_node(int *fd, uint64_t *features);
/* Whether a set opened with @features uses VDI_IOC_ENTER (VDI_ENTER=0: no). */
bool vdi_use_enter(uint64_t features);
/*
 * Every fd libvdi holds is tracked (vdi_open_node() does it for its own;
 * device fds after OPEN_DEVICE), and closed with vdi_fd_close(): a fork()ed
 * child gets /dev/null in their place.  vdi_generation() changes in every
 * such child: an object made in another generation is the parent's, dead.
 */
void vdi_fd_track(int fd);
void vdi_fd_close(int fd);
unsigned int vdi_generation(void);
/* Whether the set behind a set fd is aborted (poll() says POLLERR). */
bool vdi_fd_aborted(int fd);

/* The buffer area as this process maps it. */
struct vdi_area {
	uint8_t *base;
	size_t size;
};
int vdi_area_map(struct vdi_area *area, int fd, uint32_t size);
void vdi_area_unmap(struct vdi_area *area);
/*
 * Drop the set's pages from @area but keep its addresses mapped (private,
 * anonymous) in @retired, so a thread still using a buffer pointer after
 * Close touches harmless memory; vdi_area_unmap(@retired) frees them.
 */
void vdi_area_retire(struct vdi_area *area, struct vdi_area *retired);
bool vdi_area_holds(const struct vdi_area *area, const uint8_t *p, size_t len);

/* buffers.c: the server's allocator over the area. */
struct vdi_range;
struct vdi_buffers {
	pthread_mutex_t lock;		/* protects the lists */
	struct vdi_range *free;		/* sorted by offset, merged */
	struct vdi_range *used;		/* allocated buffers */
	uint32_t prefix;		/* client's prefix zone */
	uint32_t alignment;		/* the set's final alignment */
};
void vdi_buffers_init(struct vdi_buffers *b, uint32_t prefix, uint32_t align);
int vdi_buffers_reset(struct vdi_buffers *b, uint64_t size);
void vdi_buffers_destroy(struct vdi_buffers *b);
uint64_t vdi_buffers_footprint(uint32_t prefix, uint32_t align, uint32_t size,
			       uint32_t alignment, uint32_t count);
int vdi_buffers_alloc(struct vdi_buffers *b, uint32_t size, uint32_t align,
		      uint64_t *offset);
int vdi_buffers_free(struct vdi_buffers *b, uint64_t offset, uint32_t size);
uint32_t vdi_buffers_count_fit(struct vdi_buffers *b, uint32_t size,
			       uint32_t align);
bool vdi_buffers_is_allocated(struct vdi_buffers *b, uint64_t offset);

/*
 * spin.c: a bounded spin before sleeping.  When the peer answers within a few
 * tens of microseconds, polling the module (timeout 0) costs less than a
 * sleep and a wake-up.  VDI_SPIN_US (default 50, 0: off) bounds it.
 */
uint64_t vdi_now_us(void);
unsigned int vdi_spin_us(void);
/*
 * Adaptive: a wait site (a device's GetCommand, a set's agent) stops
 * spinning for a while once its spins stop paying, i.e. run out or catch
 * the peer only late: then the peer is slow, or the CPUs are busy with
 * other threads, and spinning only takes CPU from them.
 */
struct vdi_spin {
	unsigned int misses;		/* spins in a row that did not pay */
	unsigned int skip;		/* waits left to block without spinning */
};
/* Poll ioctl(fd, req, b) with timeout 0 until it returns > 0, fails other
 * than ETIMEDOUT, or the spin runs out: its result, or 0 after the spin.
 * For a module without VDI_IOC_ENTER. */
int vdi_spin_ioctl(int fd, unsigned long req, struct vdi_batch *b,
		   struct vdi_spin *st);
/*
 * With VDI_IOC_ENTER the module spins (vdi_enter.spin_us) and the library
 * keeps the policy: vdi_spin_plan() gives the spin for a wait of @timeout
 * ms (0: none), vdi_spin_learn() judges it from the call's time in user
 * space, @waited_us, and whether it brought an answer (not a timeout).
 */
unsigned int vdi_spin_plan(struct vdi_spin *st, int64_t timeout);
void vdi_spin_learn(struct vdi_spin *st, unsigned int spin,
		    uint64_t waited_us, bool answered);

/*
 * Timeouts: VDI milliseconds to the module's (negative = forever).  Beyond
 * VDI_TIMEOUT_MAX_MS (some 146,000 years; INT64_MAX, LONG_MAX) is forever
 * too, so that deadline arithmetic in microseconds cannot overflow.
 */
#define VDI_TIMEOUT_MAX_MS	(INT64_MAX / 2000)

static inline int64_t vdi_timeout(int64_t ms)
{
	return ms < 0 || ms == (int64_t)0xffffffffU ||
	       ms > VDI_TIMEOUT_MAX_MS ? -1 : ms;
}

#endif /* LIBVDI_INTERNAL_H */
