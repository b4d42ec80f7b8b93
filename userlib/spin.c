// SPDX-License-Identifier: LGPL-2.1-or-later
/* libvdi: a bounded spin before a blocking wait (see internal.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>

#include "internal.h"

#define VDI_SPIN_US_DEFAULT	50
#define VDI_SPIN_US_MAX		10000

uint64_t vdi_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

unsigned int vdi_spin_us(void)
{
	static int spin = -1;
	const char *env;
	long v;

	if (__atomic_load_n(&spin, __ATOMIC_RELAXED) < 0) {
		env = getenv("VDI_SPIN_US");
		v = env ? strtol(env, NULL, 10) : VDI_SPIN_US_DEFAULT;
		if (v < 0 || v > VDI_SPIN_US_MAX)
			v = VDI_SPIN_US_DEFAULT;
		__atomic_store_n(&spin, (int)v, __ATOMIC_RELAXED);
	}
	return (unsigned int)spin;
}

#define VDI_SPIN_MISSES	2	/* misses in a row that stop the spin... */
#define VDI_SPIN_SKIP	16	/* ...for this many waits */

unsigned int vdi_spin_plan(struct vdi_spin *st, int64_t timeout)
{
	unsigned int spin = vdi_spin_us();

	if (!spin || !timeout)
		return 0;
	if (st->skip) {
		st->skip--;
		return 0;
	}
	/* Never longer than the wait itself. */
	if (timeout > 0 && (uint64_t)timeout * 1000 < spin)
		spin = (unsigned int)timeout * 1000;
	return spin;
}

void vdi_spin_learn(struct vdi_spin *st, unsigned int spin,
		    uint64_t waited_us, bool answered)
{
	/*
	 * An answer within the spin paid.  (The first half only, as it was,
	 * made ENTER's in-kernel spin give up on a depth-1 round trip in the
	 * emulated test VM, where each side's turn takes about half the
	 * default spin: 300 us a round trip instead of 45.)
	 */
	if (answered && waited_us <= spin) {
		st->misses = 0;
	} else if (++st->misses >= VDI_SPIN_MISSES) {
		st->misses = 0;
		st->skip = VDI_SPIN_SKIP;
	}
}

int vdi_spin_ioctl(int fd, unsigned long req, struct vdi_batch *b,
		   struct vdi_spin *st)
{
	int64_t timeout = b->timeout_ms;
	unsigned int spin = vdi_spin_plan(st, timeout);
	bool answered = false;
	uint64_t start, now;
	int n = 0;

	if (!spin)
		return 0;
	b->timeout_ms = 0;
	start = vdi_now_us();
	for (;;) {
		n = ioctl(fd, req, b);
		now = vdi_now_us();
		if (n > 0 || errno != ETIMEDOUT) {
			answered = true;
			break;
		}
		n = 0;
		if (now - start >= spin)
			break;
	}
	b->timeout_ms = timeout;
	vdi_spin_learn(st, spin, now - start, answered);
	return n;
}
