// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: reaching /dev/vdi.  If the node is missing, load the module
 * through libkmod (as modprobe would), then check the API handshake.
 * Also the buffer area's mapping, and what a fork()ed child keeps of both.
 */
#define _GNU_SOURCE		/* dup3 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
 * so the peer would never learn of the death.  The buffer area is
 * MADV_DONTFORK (vdi_area_map()); the fds are replaced in the child, right
 * after fork(), by /dev/null (so their numbers stay taken: a parent's
 * object the child wrongly uses can hit nothing else), and the child's
 * copies of libvdi's objects are dead (docs/LIBRARY.md, fork()).
 */
static dev_t vdi_node_rdev;		/* /dev/vdi's, set once, before fork */

static bool vdi_fd_is_vdi(int fd)
{
	char path[40], link[32];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st))
		return false;
	if (S_ISCHR(st.st_mode))
		return st.st_rdev == vdi_node_rdev;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[vdi-device]");
}

static void vdi_atfork_child(void)
{
	int fd, null = -1, saved = errno;
	struct dirent *e;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(dir) || !vdi_fd_is_vdi(fd))
			continue;
		if (null < 0)
			null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup3(null, fd, O_CLOEXEC) < 0)
			close(fd);
	}
	if (null >= 0)
		close(null);
	closedir(dir);
	errno = saved;
}

static void vdi_atfork_install(void)
{
	pthread_atfork(NULL, NULL, vdi_atfork_child);
}

int vdi_open_node(int *out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct stat st;
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
	if (!fstat(fd, &st))
		__atomic_store_n(&vdi_node_rdev, st.st_rdev, __ATOMIC_RELAXED);
	pthread_once(&once, vdi_atfork_install);
	*out = fd;
	return NOERROR;
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
	/* A fork()ed child must not keep the set alive through it. */
	if (madvise(p, size, MADV_DONTFORK)) {
		err = errno;
		munmap(p, size);
		return vdi_from_errno(err, "marking the buffer area");
	}
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
