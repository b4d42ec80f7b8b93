// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: reaching /dev/vdi.  If the node is missing, load the module
 * through libkmod (as modprobe would), then check the API handshake.
 * Also the buffer area's mapping, and what a fork()ed child keeps of both.
 */
#define _GNU_SOURCE		/* dup3 */
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define VDI_NODE	"/dev/" VDI_DEVICE_NAME
#define VDI_NODE_WAIT_MS 2000	/* for udev to create the node after a load */

static int vdi_load_module(void)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int ret;

	ctx = kmod_new(NULL, NULL);
	if (!ctx)
		return vdi_fail(VD_E_UNEXPECTED,
				"%s is missing and libkmod could not start",
				VDI_NODE);
	/* Our caller reports through vdi_last_error(): libkmod's own messages
	 * on stderr would only repeat it. */
	kmod_set_log_priority(ctx, 0);
	ret = kmod_module_new_from_name(ctx, "vdi", &mod);
	/* A module without a path is unknown to modules.dep: not installed
	 * (probing it would only say ENOENT). */
	if (ret == 0 && !kmod_module_get_path(mod))
		ret = 1;
	else if (ret == 0)
		ret = kmod_module_probe_insert_module(mod, 0, NULL, NULL, NULL,
						      NULL);
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	if (ret < 0)
		return vdi_fail(VD_E_UNEXPECTED,
				"%s is missing and loading module vdi failed: %s",
				VDI_NODE, strerror(-ret));
	if (ret > 0)
		return vdi_fail(VD_E_UNEXPECTED,
				"%s is missing and module vdi is not installed "
				"for this kernel (see README: DKMS)", VDI_NODE);
	return NOERROR;
}

static int vdi_open_retry(void)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	int waited, fd = -1;

	for (waited = 0; waited <= VDI_NODE_WAIT_MS; waited += 10) {
		fd = open(VDI_NODE, O_RDWR | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			break;
		nanosleep(&pause, NULL);
	}
	return fd;
}

/*
 * fork(): a child that does not exec inherits every fd (O_CLOEXEC acts only
 * at exec) and would keep the parent's sets alive after the parent died:
 * the module sees a set's end when the last reference to its files goes,
 * so the peer would never learn of the death.  The buffer area is not
 * inherited (MADV_DONTFORK here, VM_DONTCOPY in the module); the fds libvdi
 * opened are replaced in the child, right after fork(), by /dev/null (so
 * their numbers stay taken: a parent's object the child wrongly uses can
 * hit nothing else), and the child's copies of libvdi's objects are dead
 * (docs/LIBRARY.md, fork()).
 *
 * The fds are known by number, a bit each: the child handler runs in the
 * child of a process that may have had other threads, where only
 * async-signal-safe calls are allowed (open, dup3, close), so it cannot
 * look anything up.  An fd is marked once open and unmarked before it is
 * closed (vdi_fd_close()), so a number reused by someone else is never
 * marked.  Fds from VDI_FD_TRACKED up are not tracked (then inherited).
 */
#define VDI_FD_TRACKED	65536
#define VDI_FD_WORD	(8 * sizeof(unsigned long))
static unsigned long vdi_fd_bits[VDI_FD_TRACKED / VDI_FD_WORD];

/* Bumped in every child: objects made in another generation are dead. */
static unsigned int vdi_fork_generation;

unsigned int vdi_generation(void)
{
	return __atomic_load_n(&vdi_fork_generation, __ATOMIC_RELAXED);
}

static void vdi_atfork_child(void)
{
	int null = -1, saved = errno;
	unsigned long bits;
	unsigned int w, b;

	__atomic_add_fetch(&vdi_fork_generation, 1, __ATOMIC_RELAXED);
	for (w = 0; w < VDI_FD_TRACKED / VDI_FD_WORD; w++) {
		bits = __atomic_exchange_n(&vdi_fd_bits[w], 0, __ATOMIC_RELAXED);
		for (b = 0; bits; b++, bits >>= 1) {
			int fd = (int)(w * VDI_FD_WORD + b);

			if (!(bits & 1))
				continue;
			if (null < 0)
				null = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (null < 0 || dup3(null, fd, O_CLOEXEC) < 0)
				close(fd);
		}
	}
	if (null >= 0)
		close(null);
	errno = saved;
}

static void vdi_atfork_install(void)
{
	pthread_atfork(NULL, NULL, vdi_atfork_child);
}

void vdi_fd_track(int fd)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, vdi_atfork_install);
	if (fd >= 0 && fd < VDI_FD_TRACKED)
		__atomic_or_fetch(&vdi_fd_bits[fd / VDI_FD_WORD],
				  1UL << (fd % VDI_FD_WORD), __ATOMIC_RELAXED);
}

bool vdi_fd_aborted(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

void vdi_fd_close(int fd)
{
	if (fd >= 0 && fd < VDI_FD_TRACKED)
		__atomic_and_fetch(&vdi_fd_bits[fd / VDI_FD_WORD],
				   ~(1UL << (fd % VDI_FD_WORD)),
				   __ATOMIC_RELAXED);
	close(fd);
}

int vdi_open_node(int *out, uint64_t *features)
{
	struct vdi_version v = { .api_major = VDI_API_MAJOR };
	int fd, ret;

	fd = open(VDI_NODE, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO)) {
		ret = vdi_load_module();
		if (ret)
			return ret;
		fd = vdi_open_retry();
	}
	if (fd < 0)
		return vdi_fail(errno == EACCES ? VD_E_SECURITY :
				errno == ENOMEM || errno == ENFILE ||
				errno == EMFILE ? VD_E_MEMORY : VD_E_UNEXPECTED,
				"cannot open %s: %s", VDI_NODE, strerror(errno));
	if (ioctl(fd, VDI_IOC_VERSION, &v) < 0) {
		ret = vdi_fail(VD_E_UNEXPECTED,
			       "%s speaks another API (library %u.%u): %s",
			       VDI_NODE, VDI_API_MAJOR, VDI_API_MINOR,
			       strerror(errno));
		close(fd);
		return ret;
	}
	vdi_fd_track(fd);
	*out = fd;
	if (features)
		*features = v.features;
	return NOERROR;
}

/*
 * VDI_ENTER=0 makes the library use the calls of API 1.2 although the
 * module has VDI_IOC_ENTER: what it does with an older module, for tests
 * and diagnosis (docs/LIBRARY.md, Environment).  Asked once per set
 * object, when it is created or opened.
 */
bool vdi_use_enter(uint64_t features)
{
	const char *env;

	if (!(features & VDI_FEAT_ENTER))
		return false;
	env = getenv("VDI_ENTER");
	return !env || strcmp(env, "0") != 0;
}

/*
 * Buffers are aligned by their offset in the area (up to 64 KiB, VDI's
 * largest alignment), so the area must start on a 64 KiB boundary in every
 * process: reserve room, map the area at the boundary inside, trim.
 */
#define VDI_AREA_ALIGN	0x10000UL

int vdi_area_map(struct vdi_area *area, int fd, uint32_t size)
{
	size_t span = (size_t)size + VDI_AREA_ALIGN;
	uint8_t *res, *at;
	void *p;
	int err;

	area->base = NULL;
	area->size = 0;
	if (!size)
		return NOERROR;
	res = mmap(NULL, span, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return vdi_from_errno(errno, "reserving the buffer area");
	at = (uint8_t *)(((uintptr_t)res + VDI_AREA_ALIGN - 1) &
			 ~(VDI_AREA_ALIGN - 1));
	/* Populated now: no page fault on a buffer's first use mid-stream. */
	p = mmap(at, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		munmap(res, span);
		return vdi_from_errno(err, "mapping the buffer area");
	}
	if (at > res)
		munmap(res, (size_t)(at - res));
	if (at + size < res + span)
		munmap(at + size, (size_t)(res + span - (at + size)));
	/*
	 * A fork()ed child must not keep the set alive through it.  The
	 * module marks the mapping so itself (VM_DONTCOPY); this says it again
	 * for the reader, and may fail harmlessly (ENOSYS on a kernel built
	 * without the advice system calls).
	 */
	(void)madvise(p, size, MADV_DONTFORK);
	area->base = p;
	area->size = size;
	return NOERROR;
}

void vdi_area_unmap(struct vdi_area *area)
{
	struct timespec pause = { 0, 1000 * 1000 };
	int tries = 0;

	/*
	 * munmap() can fail with ENOMEM (the kernel allocates to split or
	 * remove a mapping): a mapping left behind would keep the set, its
	 * area and a module reference alive as long as the process lives.
	 */
	while (area->base && munmap(area->base, area->size) &&
	       errno == ENOMEM && ++tries < 1000)
		nanosleep(&pause, NULL);
	area->base = NULL;
	area->size = 0;
}

void vdi_area_retire(struct vdi_area *area, struct vdi_area *retired)
{
	void *p;

	retired->base = NULL;
	retired->size = 0;
	if (!area->base)
		return;
	p = mmap(area->base, area->size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		vdi_area_unmap(area);
		return;
	}
	madvise(p, area->size, MADV_DONTFORK);
	*retired = *area;
	area->base = NULL;
	area->size = 0;
}

bool vdi_area_holds(const struct vdi_area *area, const uint8_t *p, size_t len)
{
	uintptr_t base = (uintptr_t)area->base, at = (uintptr_t)p;

	return area->base && at >= base && at - base <= area->size &&
	       len <= area->size - (at - base);
}
