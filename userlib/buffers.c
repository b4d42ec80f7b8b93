// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the server's buffers inside the set's area.
 *
 * First fit over a sorted, merged free list.  Each buffer is [prefix zone]
 * [data]: the data start is aligned, the client's prefix zone sits right
 * before it, invisible to the server.  Offsets, not pointers, so the same
 * bookkeeping is valid in every process mapping the area.
 */
#include <stdlib.h>

#include "internal.h"

struct vdi_range {
	struct vdi_range *next;
	uint64_t start, end;		/* [start, end) of the area */
	uint64_t data;			/* used ranges: the data start */
	uint32_t size;			/* used ranges: the data size */
};

static uint64_t vdi_align_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

static bool vdi_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* Offsets align addresses only up to the area's own alignment (64 KiB). */
#define VDI_ALIGN_MAX	0x10000U

static uint32_t vdi_pick_align(const struct vdi_buffers *b, uint32_t align)
{
	uint32_t a = align ? align : b->alignment;

	if (!vdi_pow2(a) || a > VDI_ALIGN_MAX)
		return 0;
	return a > b->alignment ? a : b->alignment;
}

static void vdi_ranges_free(struct vdi_range *r)
{
	struct vdi_range *next;

	for (; r; r = next) {
		next = r->next;
		free(r);
	}
}

void vdi_buffers_init(struct vdi_buffers *b, uint32_t prefix, uint32_t align)
{
	pthread_mutex_init(&b->lock, NULL);
	b->free = NULL;
	b->used = NULL;
	b->prefix = prefix;
	b->alignment = vdi_pow2(align) ? align : 1;
}

int vdi_buffers_reset(struct vdi_buffers *b, uint64_t size)
{
	struct vdi_range *r = NULL;

	if (size) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return vdi_fail(VD_E_MEMORY, "no memory for buffers");
		r->end = size;
	}
	pthread_mutex_lock(&b->lock);
	vdi_ranges_free(b->free);
	vdi_ranges_free(b->used);
	b->free = r;
	b->used = NULL;
	pthread_mutex_unlock(&b->lock);
	return NOERROR;
}

void vdi_buffers_destroy(struct vdi_buffers *b)
{
	vdi_ranges_free(b->free);
	vdi_ranges_free(b->used);
	b->free = b->used = NULL;
	pthread_mutex_destroy(&b->lock);
}

/*
 * Area bytes that @count buffers need in the worst case of padding;
 * UINT64_MAX when that does not fit in 64 bits.
 */
uint64_t vdi_buffers_footprint(uint32_t prefix, uint32_t set_align,
			       uint32_t size, uint32_t alignment,
			       uint32_t count)
{
	uint64_t a = alignment > set_align ? alignment : set_align, n;

	if (!a)
		a = 1;
	if (__builtin_mul_overflow((uint64_t)count,
				   (uint64_t)prefix + size + a - 1, &n))
		return UINT64_MAX;
	return n;
}

int vdi_buffers_alloc(struct vdi_buffers *b, uint32_t size, uint32_t align,
		      uint64_t *offset)
{
	uint32_t a = vdi_pick_align(b, align);
	struct vdi_range **pp, *r, *used;
	uint64_t data;

	if (!size || !a)
		return vdi_fail(VD_E_INVALID,
				"AllocateBuffer: size %u, alignment %u", size,
				align);
	used = calloc(1, sizeof(*used));
	if (!used)
		return vdi_fail(VD_E_MEMORY, "AllocateBuffer: no memory");

	pthread_mutex_lock(&b->lock);
	for (pp = &b->free; (r = *pp); pp = &r->next) {
		data = vdi_align_up(r->start + b->prefix, a);
		if (data + size > r->end)
			continue;
		used->start = r->start;
		used->end = data + size;
		used->data = data;
		used->size = size;
		used->next = b->used;
		b->used = used;
		r->start = used->end;
		if (r->start == r->end) {
			*pp = r->next;
			free(r);
		}
		pthread_mutex_unlock(&b->lock);
		*offset = data;
		return NOERROR;
	}
	pthread_mutex_unlock(&b->lock);
	free(used);
	return vdi_fail(VD_E_MEMORY,
			"AllocateBuffer: no room for %u bytes aligned to %u "
			"(RequestBuffers declares what you need)", size, a);
}

/* Put [start, end) back into the sorted free list, merging neighbours. */
static void vdi_free_insert(struct vdi_buffers *b, struct vdi_range *n)
{
	struct vdi_range **pp = &b->free, *prev = NULL, *r;

	while ((r = *pp) && r->start < n->start) {
		prev = r;
		pp = &r->next;
	}
	n->next = r;
	*pp = n;
	if (r && n->end == r->start) {
		n->end = r->end;
		n->next = r->next;
		free(r);
	}
	if (prev && prev->end == n->start) {
		prev->end = n->end;
		prev->next = n->next;
		free(n);
	}
}

int vdi_buffers_free(struct vdi_buffers *b, uint64_t offset, uint32_t size)
{
	struct vdi_range **pp, *r;

	pthread_mutex_lock(&b->lock);
	for (pp = &b->used; (r = *pp); pp = &r->next) {
		if (r->data != offset)
			continue;
		if (r->size != size)
			break;
		*pp = r->next;
		vdi_free_insert(b, r);
		pthread_mutex_unlock(&b->lock);
		return NOERROR;
	}
	pthread_mutex_unlock(&b->lock);
	return vdi_fail(VD_E_INVALID,
			"FreeBuffer: no buffer of %u bytes at that address",
			size);
}

uint32_t vdi_buffers_count_fit(struct vdi_buffers *b, uint32_t size,
			       uint32_t align)
{
	uint32_t a = vdi_pick_align(b, align), n = 0;
	struct vdi_range *r;
	uint64_t pos, data;

	if (!size || !a)
		return 0;
	pthread_mutex_lock(&b->lock);
	for (r = b->free; r; r = r->next) {
		for (pos = r->start;; pos = data + size) {
			data = vdi_align_up(pos + b->prefix, a);
			if (data + size > r->end || n == UINT32_MAX)
				break;
			n++;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

bool vdi_buffers_is_allocated(struct vdi_buffers *b, uint64_t offset)
{
	struct vdi_range *r;
	bool found = false;

	pthread_mutex_lock(&b->lock);
	for (r = b->used; r && !found; r = r->next)
		found = offset >= r->data && offset < r->data + r->size;
	pthread_mutex_unlock(&b->lock);
	return found;
}
