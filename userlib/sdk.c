// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the SDK classes' side (include/sqlvdi/vdi.h, libsqlvdi.so).
 *
 * The SDK's objects are one pointer wide and may be copied and assigned by
 * the compiler; a client deletes the device objects OpenDevice gave it, or
 * not.  So what the objects hold is a handle into the table below, never an
 * address: a slot index and the slot's generation.  Every call looks its
 * handle up under one mutex; a handle whose slot was freed (the object was
 * destroyed, or it is a copy of one that was) is stale: calls get
 * VD_E_PROTOCOL and frees do nothing.  Device slots belong to their set's
 * slot: freeing the set makes them stale too, and the libvdi device objects
 * themselves live until vdi_client_set_free, as in the C API.
 *
 * The lookup holds the mutex only for the lookup: the libvdi call (which may
 * wait) runs without it.  Destroying an object while another thread is in
 * one of its calls is the caller's bug, as it is with the SDK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "sqlvdi/vdi.h"

enum vdi_sdk_kind { VDI_SDK_FREE, VDI_SDK_SET, VDI_SDK_DEV };

struct vdi_sdk_slot {
	unsigned int gen;		/* bumped at every free */
	enum vdi_sdk_kind kind;
	union {
		vdi_client_set *set;
		vdi_client_device *dev;
	};
	uintptr_t owner;		/* a device's set handle */
	void *wrapper;			/* a device's ClientVirtualDevice */
	unsigned int next_free;		/* free list, index + 1 */
};

/*
 * A handle: generation above VDI_SDK_INDEX_BITS, index + 1 below (never 0).
 * The table never outgrows the index field: with a 32-bit uintptr_t that
 * is 16 bits, and a larger index would run into the generation.
 */
#define VDI_SDK_INDEX_BITS	(sizeof(uintptr_t) * 4)
#define VDI_SDK_INDEX_MASK	(((uintptr_t)1 << VDI_SDK_INDEX_BITS) - 1)
#define VDI_SDK_GEN_MASK	((uintptr_t)-1 >> VDI_SDK_INDEX_BITS)
#define VDI_SDK_MAX_SLOTS	((unsigned int)(VDI_SDK_INDEX_MASK < (1U << 20) ? \
				 VDI_SDK_INDEX_MASK : (1U << 20)))
_Static_assert(VDI_SDK_MAX_SLOTS <= VDI_SDK_INDEX_MASK,
	       "a slot's index + 1 fits the handle's index field");

static pthread_mutex_t vdi_sdk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vdi_sdk_slot *vdi_sdk_slots;
static unsigned int vdi_sdk_nslots;
static unsigned int vdi_sdk_free_head;	/* index + 1, 0: none */

/*
 * fork(): the lock is held across it, so the child finds it free and the
 * table whole.  Otherwise a child forked while another thread was in a
 * lookup would wait forever in its first SDK call - a set's destructor at
 * its exit, say - for a thread it does not have.  Installed with the first
 * set: no handle, no lookup before.
 */
static void vdi_sdk_fork_lock(void)
{
	pthread_mutex_lock(&vdi_sdk_lock);
}

static void vdi_sdk_fork_unlock(void)
{
	pthread_mutex_unlock(&vdi_sdk_lock);
}

static void vdi_sdk_atfork_install(void)
{
	pthread_atfork(vdi_sdk_fork_lock, vdi_sdk_fork_unlock,
		       vdi_sdk_fork_unlock);
}

static uintptr_t vdi_sdk_handle(unsigned int i)
{
	return ((uintptr_t)vdi_sdk_slots[i].gen & VDI_SDK_GEN_MASK) <<
	       VDI_SDK_INDEX_BITS | (i + 1);
}

/* The slot of a live handle of @kind, or NULL.  Caller holds the lock. */
static struct vdi_sdk_slot *vdi_sdk_find(uintptr_t h, enum vdi_sdk_kind kind)
{
	uintptr_t i = h & VDI_SDK_INDEX_MASK;
	struct vdi_sdk_slot *s;

	if (!i || i > vdi_sdk_nslots)
		return NULL;
	s = &vdi_sdk_slots[i - 1];
	if (s->kind != kind || vdi_sdk_handle(i - 1) != h)
		return NULL;
	return s;
}

/* A free slot, its generation kept; caller holds the lock. */
static int vdi_sdk_alloc(void)
{
	struct vdi_sdk_slot *slots;
	unsigned int i, n;

	if (!vdi_sdk_free_head) {
		n = vdi_sdk_nslots ? 2 * vdi_sdk_nslots : 16;
		if (n > VDI_SDK_MAX_SLOTS)
			return -1;
		slots = realloc(vdi_sdk_slots, n * sizeof(*slots));
		if (!slots)
			return -1;
		memset(slots + vdi_sdk_nslots, 0,
		       (n - vdi_sdk_nslots) * sizeof(*slots));
		for (i = n; i > vdi_sdk_nslots; i--) {
			slots[i - 1].gen = 1;
			slots[i - 1].next_free = vdi_sdk_free_head;
			vdi_sdk_free_head = i;
		}
		vdi_sdk_slots = slots;
		vdi_sdk_nslots = n;
	}
	i = vdi_sdk_free_head - 1;
	vdi_sdk_free_head = vdi_sdk_slots[i].next_free;
	return (int)i;
}

static void vdi_sdk_release(struct vdi_sdk_slot *s)
{
	s->kind = VDI_SDK_FREE;
	s->gen++;
	s->set = NULL;
	s->owner = 0;
	s->wrapper = NULL;
	s->next_free = vdi_sdk_free_head;
	vdi_sdk_free_head = (unsigned int)(s - vdi_sdk_slots) + 1;
}

/* The libvdi set of handle @h, or a code: 0 is a constructor that ran out
 * of memory, anything else not live is stale. */
static int vdi_sdk_set_of(uintptr_t h, vdi_client_set **set, const char *op)
{
	struct vdi_sdk_slot *s;

	if (!h)
		return vdi_fail(VD_E_MEMORY, "%s: the set object has no state "
				"(its constructor ran out of memory)", op);
	pthread_mutex_lock(&vdi_sdk_lock);
	s = vdi_sdk_find(h, VDI_SDK_SET);
	*set = s ? s->set : NULL;
	pthread_mutex_unlock(&vdi_sdk_lock);
	if (!s)
		return vdi_fail(VD_E_PROTOCOL, "%s: the set object was "
				"destroyed (a copy of it, or used after "
				"delete)", op);
	return NOERROR;
}

static int vdi_sdk_dev_of(uintptr_t h, vdi_client_device **dev,
			  const char *op)
{
	struct vdi_sdk_slot *s;

	pthread_mutex_lock(&vdi_sdk_lock);
	s = h ? vdi_sdk_find(h, VDI_SDK_DEV) : NULL;
	*dev = s ? s->dev : NULL;
	pthread_mutex_unlock(&vdi_sdk_lock);
	if (!s)
		return vdi_fail(VD_E_PROTOCOL, "%s: not a device OpenDevice "
				"returned, or its set object was destroyed",
				op);
	return NOERROR;
}

VDI_EXPORT uintptr_t vdi_sdk_set_new(void)
{
	static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
	vdi_client_set *set;
	uintptr_t h = 0;
	int i;

	pthread_once(&atfork_once, vdi_sdk_atfork_install);
	set = vdi_client_set_new();
	if (!set)
		return 0;
	pthread_mutex_lock(&vdi_sdk_lock);
	i = vdi_sdk_alloc();
	if (i >= 0) {
		vdi_sdk_slots[i].kind = VDI_SDK_SET;
		vdi_sdk_slots[i].set = set;
		h = vdi_sdk_handle((unsigned int)i);
	}
	pthread_mutex_unlock(&vdi_sdk_lock);
	if (!h)
		vdi_client_set_free(set);
	return h;
}

/*
 * One device object of set @h that the client did not delete, detached
 * (its handle stale from now on) for the set's destructor to delete; NULL
 * when there is none left.
 */
VDI_EXPORT void *vdi_sdk_set_take_device(uintptr_t h)
{
	void *wrapper = NULL;
	unsigned int i;

	if (!h)
		return NULL;
	pthread_mutex_lock(&vdi_sdk_lock);
	if (vdi_sdk_find(h, VDI_SDK_SET)) {
		for (i = 0; i < vdi_sdk_nslots && !wrapper; i++) {
			struct vdi_sdk_slot *s = &vdi_sdk_slots[i];

			if (s->kind == VDI_SDK_DEV && s->owner == h) {
				wrapper = s->wrapper;
				vdi_sdk_release(s);
			}
		}
	}
	pthread_mutex_unlock(&vdi_sdk_lock);
	return wrapper;
}

/* The set object's end: its devices' handles go stale, libvdi frees all. */
VDI_EXPORT void vdi_sdk_set_free(uintptr_t h)
{
	vdi_client_set *set = NULL;
	struct vdi_sdk_slot *s;
	unsigned int i;

	if (!h)
		return;
	pthread_mutex_lock(&vdi_sdk_lock);
	s = vdi_sdk_find(h, VDI_SDK_SET);
	if (s) {
		set = s->set;
		for (i = 0; i < vdi_sdk_nslots; i++)
			if (vdi_sdk_slots[i].kind == VDI_SDK_DEV &&
			    vdi_sdk_slots[i].owner == h)
				vdi_sdk_release(&vdi_sdk_slots[i]);
		vdi_sdk_release(s);
	}
	pthread_mutex_unlock(&vdi_sdk_lock);
	vdi_client_set_free(set);
}

/*
 * The calling thread's umask (the process's, unless the thread has its own
 * filesystem context: unshare(CLONE_FS)), the one its own files get, without
 * changing it if we can: umask() both reads and sets it, so another thread
 * creating a file meanwhile would get the wrong mode.  The status file says
 * "Umask:" since Linux 4.7; /proc/thread-self is the calling thread's
 * (/proc/self is the main thread's), since Linux 3.17.
 */
static mode_t vdi_sdk_umask(void)
{
	char line[128];
	unsigned int m;
	mode_t old;
	bool found = false;
	FILE *f = fopen("/proc/thread-self/status", "re");

	if (f) {
		while (!found && fgets(line, sizeof(line), f))
			found = sscanf(line, "Umask: %o", &m) == 1;
		fclose(f);
		if (found)
			return (mode_t)(m & 0777);
	}
	old = umask(0077);
	umask(old);
	return old;
}

/*
 * Create, with the access the SDK gives: the set's mode is 0666 less the
 * calling thread's umask, as the SDK's shared-memory files get (a client that sets
 * umask(0) lets SQL Server's user in through group or other).  The engine
 * side still checks whose set it opens (vdi_server_open_ex).  A mode of 0
 * (umask 0666) is the module's default, 0600.
 */
VDI_EXPORT int vdi_sdk_create(uintptr_t h, const char *name, VDConfig *cfg)
{
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "Create");

	if (ret)
		return ret;
	/* Refused once the object has a set: then Create says why. */
	vdi_client_set_access(set, 0666 & ~vdi_sdk_umask(), -1);
	return vdi_client_create(set, name, cfg);
}

VDI_EXPORT int vdi_sdk_get_configuration(uintptr_t h, int64_t timeout,
					 VDConfig *cfg)
{
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "GetConfiguration");

	return ret ? ret : vdi_client_get_configuration(set, timeout, cfg);
}

/*
 * Open device @name for @wrapper (the ClientVirtualDevice the caller made,
 * NULL if new failed); *dev gets its handle.  The wrapper is the set's until
 * the client deletes it (vdi_sdk_device_free) or the set object goes.
 */
VDI_EXPORT int vdi_sdk_open_device(uintptr_t h, const char *name,
				   void *wrapper, uintptr_t *dev)
{
	vdi_client_device *d;
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "OpenDevice");
	int i;

	if (ret)
		return ret;
	if (!dev)
		return vdi_fail(VD_E_INVALID, "OpenDevice: NULL "
				"ppVirtualDevice");
	*dev = 0;
	if (!wrapper)
		return vdi_fail(VD_E_MEMORY, "OpenDevice: no memory");
	ret = vdi_client_open_device(set, name, &d);
	if (ret)
		return ret;
	pthread_mutex_lock(&vdi_sdk_lock);
	i = vdi_sdk_find(h, VDI_SDK_SET) ? vdi_sdk_alloc() : -1;
	if (i >= 0) {
		vdi_sdk_slots[i].kind = VDI_SDK_DEV;
		vdi_sdk_slots[i].dev = d;
		vdi_sdk_slots[i].owner = h;
		vdi_sdk_slots[i].wrapper = wrapper;
		*dev = vdi_sdk_handle((unsigned int)i);
	}
	pthread_mutex_unlock(&vdi_sdk_lock);
	/* The libvdi device stays with its set (freed with it). */
	if (i < 0)
		return vdi_fail(VD_E_MEMORY, "OpenDevice: no memory");
	return NOERROR;
}

VDI_EXPORT int vdi_sdk_close(uintptr_t h)
{
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "Close");

	return ret ? ret : vdi_client_close(set);
}

VDI_EXPORT int vdi_sdk_signal_abort(uintptr_t h)
{
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "SignalAbort");

	return ret ? ret : vdi_client_signal_abort(set);
}

VDI_EXPORT int vdi_sdk_open_in_secondary(uintptr_t h, const char *name)
{
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "OpenInSecondary");

	return ret ? ret : vdi_client_open_in_secondary(set, name);
}

VDI_EXPORT int vdi_sdk_get_buffer_handle(uintptr_t h, const uint8_t *buffer,
					 unsigned int *handle)
{
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "GetBufferHandle");

	return ret ? ret : vdi_client_get_buffer_handle(set, buffer, handle);
}

VDI_EXPORT int vdi_sdk_map_buffer_handle(uintptr_t h, int handle,
					 uint8_t **buffer)
{
	vdi_client_set *set;
	int ret = vdi_sdk_set_of(h, &set, "MapBufferHandle");

	if (ret)
		return ret;
	if (handle < 0)
		return vdi_fail(VD_E_INVALID, "MapBufferHandle: negative "
				"handle %d", handle);
	return vdi_client_map_buffer_handle(set, (unsigned int)handle, buffer);
}

/* The client deleted a device object: it leaves its set's list. */
VDI_EXPORT void vdi_sdk_device_free(uintptr_t h)
{
	struct vdi_sdk_slot *s;

	if (!h)
		return;
	pthread_mutex_lock(&vdi_sdk_lock);
	s = vdi_sdk_find(h, VDI_SDK_DEV);
	if (s)
		vdi_sdk_release(s);
	pthread_mutex_unlock(&vdi_sdk_lock);
}

VDI_EXPORT int vdi_sdk_get_command(uintptr_t h, int64_t timeout,
				   VDC_Command **cmd)
{
	vdi_client_device *dev;
	int ret;

	if (cmd)
		*cmd = NULL;
	ret = vdi_sdk_dev_of(h, &dev, "GetCommand");
	return ret ? ret : vdi_client_get_command(dev, timeout, cmd);
}

/* The SDK's types are wider than VDI's 32-bit fields: refuse, not cut. */
VDI_EXPORT int vdi_sdk_complete_command(uintptr_t h, VDC_Command *cmd,
					int code, unsigned long bytes,
					int64_t position)
{
	vdi_client_device *dev;
	int ret = vdi_sdk_dev_of(h, &dev, "CompleteCommand");

	if (ret)
		return ret;
	if (bytes > UINT32_MAX)
		return vdi_fail(VD_E_INVALID, "CompleteCommand: "
				"bytesTransferred %lu is too large", bytes);
	return vdi_client_complete_command(dev, cmd, (uint32_t)code,
					   (uint32_t)bytes, position);
}
