// SPDX-License-Identifier: GPL-2.0
/*
 * The /dev/vdi ioctl fuzzer: seeded, reproducible, ours.
 *
 * random_calls: several worker processes (each its own uid but the first,
 * so per-set access and per-user limits come into play) share a pool of set
 * names and hammer /dev/vdi: random ioctl numbers (ours, ours with wrong
 * sizes or directions, foreign, random), argument pointers (NULL, unmapped,
 * PROT_NONE, kernel and non-canonical addresses, structs straddling into a
 * PROT_NONE page), struct contents built from interesting values (offsets
 * and lengths at the edges of the area and of 2^32 / 2^64, counts around
 * the batch limits, forged and stale tags, bad names), on every kind of fd
 * (endpoint, client / secondary / server set, client / server device,
 * dup()ed, closed) in every state, mixed with protocol-correct steps that
 * drive sets into their deeper states, mmap / munmap / mprotect / madvise /
 * mremap of the areas, poll, fork (a child with copies of every fd, not of
 * the areas, killed or exiting), and a periodic SIGALRM that interrupts every
 * wait.  The figures' calls (LIST_SETS, SET_STATS, ABORT_SET) get random
 * ids (real ones the worker learnt, 0, others), sizes, counts, flags and
 * pointers too, and must fail only with the errnos the ABI gives them, or
 * succeed with outputs that hold together; so must ENTER (API 1.3), whose
 * submit is completions or sends to any device index, whose reap may
 * spin, and whose written-back counts must say what the call did.  The run's seed is printed;
 * VDI_FUZZ_SEED=<seed> replays the same call sequences (the interleaving
 * of the workers is the scheduler's).
 *
 * races: threads racing SEND, GET_COMMANDS + COMPLETE or the client's
 * ENTER, the agent's WAIT_COMPLETIONS or ENTER (which sends too; sometimes
 * into a faulting buffer, sometimes spinning), mmap / munmap /
 * touch, poll, SET_STATS and LIST_SETS, against SIGNAL_ABORT, ABORT_SET,
 * CLOSE_DEVICE and fds replaced under them; every thread must return,
 * every command sent must reach the agent exactly once (success, error,
 * 995 or 1117), and every snapshot of the figures must hold together
 * (sent = the sum by code, completed = reaped + done, no more in flight
 * than the queue depth, peaks at least the current values).
 *
 * After each: the kernel log has no report, the module's reference count
 * is 0 again (rmmod would succeed), and an unexpected SIGBUS / SIGSEGV on
 * an area mapping the kernel accepted is a failure.
 *
 * Knobs: VDI_STRESS=long (>= 1M calls, more rounds), VDI_FUZZ_CALLS,
 * VDI_FUZZ_WORKERS, VDI_FUZZ_SECONDS (time cap), VDI_FUZZ_ROUNDS (races),
 * VDI_FUZZ_SEED.
 */
#include "fuzz/vdi_stress.h"

#include <setjmp.h>
#include <sys/time.h>

#define NAMES		8	/* shared set names */
#define POOL		24	/* fds per worker */
#define MAPS		8	/* mappings per worker */
#define TAGS		64	/* tags a worker remembers */
#define IDS		32	/* set ids a worker remembers */
#define ARENA_PAGES	16	/* argument buffers, then 2 PROT_NONE, then a hole */

enum kind { K_FREE, K_EP, K_CSET, K_SSET, K_SEC, K_CDEV, K_SDEV, K_DUP };

struct slot_fd {
	int fd;
	enum kind kind;
};

struct shared {
	uint64_t seed;
	volatile uint64_t calls[16];
	volatile uint64_t sigbus[16];
	volatile uint64_t deep[16];	/* commands that made it to a client */
	volatile uint64_t done[16];	/* worker finished */
	volatile uint64_t bad_errno[16];	/* figures' calls, ENTER: undocumented
						 * errno or outputs
						 */
	volatile uint64_t figures_ok[16];	/* figures' calls that succeeded */
	volatile uint64_t enter_ok[16];	/* ENTERs that succeeded */
};

struct worker {
	int id;
	struct vdi_rng r;
	struct shared *sh;
	struct slot_fd pool[POOL];
	struct { uint8_t *p; size_t len; int prot; char how[64]; } maps[MAPS];
	struct { uint64_t tag; int fd; } tags[TAGS];
	unsigned int ntags;
	uint8_t *arena;			/* ARENA_PAGES usable pages */
	uint8_t *none;			/* PROT_NONE page right after them */
	uint8_t *hole;			/* unmapped */
	uint64_t calls;
	uint64_t end_calls;
	int64_t end_ms;
	char names[NAMES][VDI_NAME_MAX];
	int devnull;
	uint64_t ids[IDS];		/* set ids seen in LIST_SETS / SET_STATS */
	unsigned int nids;
	unsigned int bad_printed;
};

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_armed;
static volatile int fault_code;
static void *volatile fault_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (fault_armed) {
		fault_code = si->si_code;
		fault_addr = si->si_addr;
		siglongjmp(fault_jmp, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* the /proc/self/maps line holding @p */
static void print_map_of(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[256];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx", &a, &b) == 2 &&
		    (uintptr_t)p >= a && (uintptr_t)p < b)
			printf("#   mapping: %s", line);
	}
	fclose(f);
}

static void on_alarm(int sig)
{
	(void)sig;	/* only interrupts the current wait */
}

/* ------------------------------------------------------------------ */
/* interesting values                                                 */

static const uint64_t interesting64[] = {
	0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128,
	255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097,
	8191, 8192, 65535, 65536, 65537, 0x7ffff, 0x80000, 0xfffff, 0x100000,
	0x3fffff, 0x400000, 0x400001, 0x7fffffff, 0x80000000, 0xfffff000,
	0xfffffffe, 0xffffffff, 0x100000000ULL, 0x100001000ULL,
	0x7fffffffffffffffULL, 0x8000000000000000ULL, 0xfffffffffffff000ULL,
	0xfffffffffffffffeULL, 0xffffffffffffffffULL,
};

static uint64_t r64(struct worker *w)
{
	switch (vdi_rng_below(&w->r, 4)) {
	case 0:
		return vdi_rng_next(&w->r);
	case 1:
		return vdi_rng_below(&w->r, 70);
	default:
		return interesting64[vdi_rng_below(&w->r,
			sizeof(interesting64) / sizeof(interesting64[0]))];
	}
}

static uint32_t r32(struct worker *w)
{
	return (uint32_t)r64(w);
}

/* mostly 0: reserved fields and flags */
static uint64_t rz(struct worker *w)
{
	return vdi_rng_pct(&w->r, 92) ? 0 : r64(w);
}

/*
 * Mostly 0 (poll); now and then 1 ms; rarely "forever", which the worker's
 * SIGALRM (every 8 ms) turns into EINTR: a blocked wait costs time, not CPU,
 * and would otherwise dominate the run.
 */
static int64_t rtimeout(struct worker *w)
{
	switch (vdi_rng_below(&w->r, 100)) {
	case 0:
	case 1:
		return -1;
	case 2:
		return INT64_MIN;
	case 3:
		return INT64_MAX;
	case 4:
	case 5:
	case 6:
	case 7:
	case 8:
		return 1;
	case 9:
		return 2 + vdi_rng_below(&w->r, 2);
	default:
		return 0;
	}
}

static void rname(struct worker *w, char *dst)
{
	unsigned int i, n;

	switch (vdi_rng_below(&w->r, 12)) {
	case 0:		/* no NUL at all */
		memset(dst, 'a' + vdi_rng_below(&w->r, 26), VDI_NAME_MAX);
		return;
	case 1:		/* empty */
		memset(dst, 0, VDI_NAME_MAX);
		return;
	case 2:		/* random bytes, maybe control chars or a backslash */
		n = 1 + vdi_rng_below(&w->r, VDI_NAME_MAX - 1);
		for (i = 0; i < n; i++)
			dst[i] = (char)(1 + vdi_rng_below(&w->r, 255));
		memset(dst + n, vdi_rng_pct(&w->r, 50) ? 0 : 'x', VDI_NAME_MAX - n);
		dst[VDI_NAME_MAX - 1] = vdi_rng_pct(&w->r, 80) ? 0 : 'y';
		return;
	case 3:		/* the longest legal name, garbage after the NUL */
		memset(dst, 'L', VDI_NAME_MAX);
		dst[VDI_NAME_MAX - 1] = 0;
		return;
	case 4:
	case 5:		/* a device name of a shared set */
		memset(dst, 0, VDI_NAME_MAX);
		snprintf(dst, VDI_NAME_MAX, "%s.d%u",
			 w->names[vdi_rng_below(&w->r, NAMES)],
			 vdi_rng_below(&w->r, 5));
		return;
	default:	/* a shared set name (= its device 0) */
		memset(dst, 0, VDI_NAME_MAX);
		snprintf(dst, VDI_NAME_MAX, "%s", w->names[vdi_rng_below(&w->r, NAMES)]);
		if (vdi_rng_pct(&w->r, 10))	/* bytes after the NUL are ignored */
			memset(dst + strlen(dst) + 1, 'z', 8);
		return;
	}
}

static void rconfig(struct worker *w, struct vdi_config *c)
{
	static const uint32_t feats[] = { 0, 0, 0, VDI_VDF_LIKE_TAPE,
		VDI_VDF_RANDOM_ACCESS, VDI_VDF_REMOVABLE,
		VDI_VDF_RANDOM_ACCESS | VDI_VDF_REMOVABLE,
		VDI_VDF_REQUEST_COMPLETE, 0x80, 0x3c80, VDI_VDF_WRITE_MEDIA,
		0x80000000U };

	memset(c, 0, sizeof(*c));
	c->device_count = vdi_rng_pct(&w->r, 85) ? 1 + vdi_rng_below(&w->r, 4) : r32(w);
	c->features = vdi_rng_pct(&w->r, 90) ?
		feats[vdi_rng_below(&w->r, sizeof(feats) / sizeof(feats[0]))] : r32(w);
	c->alignment = vdi_rng_pct(&w->r, 80) ? 0 : r32(w);
	c->prefix_zone_size = vdi_rng_pct(&w->r, 80) ? 0 : r32(w);
	c->server_timeout = vdi_rng_pct(&w->r, 90) ? 0 : vdi_rng_below(&w->r, 50);
	if (vdi_rng_pct(&w->r, 10)) {		/* server fields: ignored */
		c->block_size = r32(w);
		c->max_io_depth = r32(w);
		c->max_transfer_size = r32(w);
		c->buffer_area_size = r32(w);
	}
}

/* ------------------------------------------------------------------ */
/* the fd pool                                                        */

static int pool_add(struct worker *w, int fd, enum kind kind)
{
	unsigned int i;

	if (fd < 0)
		return fd;
	for (i = 0; i < POOL; i++)
		if (w->pool[i].kind == K_FREE) {
			w->pool[i].fd = fd;
			w->pool[i].kind = kind;
			return fd;
		}
	close(fd);
	w->calls++;
	return -1;
}

static int pool_pick(struct worker *w, enum kind want, enum kind *kind)
{
	unsigned int i, start = vdi_rng_below(&w->r, POOL);

	for (i = 0; i < POOL; i++) {
		struct slot_fd *s = &w->pool[(start + i) % POOL];

		if (s->kind != K_FREE && (want == K_FREE || s->kind == want)) {
			if (kind)
				*kind = s->kind;
			return s->fd;
		}
	}
	return -1;
}

static void pool_close_fd(struct worker *w, int fd)
{
	unsigned int i;

	for (i = 0; i < POOL; i++)
		if (w->pool[i].kind != K_FREE && w->pool[i].fd == fd) {
			w->pool[i].kind = K_FREE;
			close(fd);
			w->calls++;
			return;
		}
}

static void pool_close_random(struct worker *w)
{
	int fd = pool_pick(w, K_FREE, NULL);

	if (fd >= 0)
		pool_close_fd(w, fd);
}

static unsigned int pool_count(struct worker *w)
{
	unsigned int i, n = 0;

	for (i = 0; i < POOL; i++)
		n += w->pool[i].kind != K_FREE;
	return n;
}

/* any fd: mostly from the pool, sometimes a bad number */
static int rfd(struct worker *w)
{
	int fd;

	switch (vdi_rng_below(&w->r, 40)) {
	case 0:
		return -1;
	case 1:
		return 1000 + vdi_rng_below(&w->r, 20);	/* closed */
	case 2:
		return w->devnull;
	default:
		fd = pool_pick(w, K_FREE, NULL);
		return fd >= 0 ? fd : w->devnull;
	}
}

/* ------------------------------------------------------------------ */
/* argument buffers                                                   */

/*
 * Where the argument of size @size goes: mostly whole in the arena,
 * sometimes straddling into the PROT_NONE page, or a bad pointer.
 */
static uint8_t *rplace(struct worker *w, size_t size, bool *bad)
{
	static const uintptr_t kernel[] = {
		0xffffffff81000000UL, 0xffff888000000000UL, 0xffffffffff600000UL,
		0xfffffffffffff000UL, 0x8000000000000000UL, 0x00007ffffffff000UL,
		0xffffffffffffffffUL, 0x0000000000001000UL,
	};

	*bad = true;
	switch (vdi_rng_below(&w->r, 50)) {
	case 0:
	case 1:
		return NULL;
	case 2:
		return w->hole + vdi_rng_below(&w->r, 4096);
	case 3:
		return w->none + vdi_rng_below(&w->r, 4096);
	case 4:
	case 5:
		return (uint8_t *)kernel[vdi_rng_below(&w->r, 8)];
	case 6:
	case 7:
	case 8:	/* straddling: the tail is in the PROT_NONE page */
		if (size > 1)
			return w->none - 1 - vdi_rng_below(&w->r, size - 1);
		return w->none;
	default:
		*bad = false;
		/* anywhere in the arena, odd alignments too */
		return w->arena + vdi_rng_below(&w->r,
			ARENA_PAGES * 4096 - (unsigned int)size - 64) +
			(vdi_rng_pct(&w->r, 80) ? 0 : vdi_rng_below(&w->r, 8));
	}
}

/* Fill @n batch entries of @esz bytes for @cmd at @p (if writable). */
static void fill_entries(struct worker *w, unsigned long cmd, uint8_t *p,
			 uint32_t n, size_t esz)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint8_t *e = p + i * esz;

		if (cmd == VDI_IOC_SEND || (cmd == VDI_IOC_ENTER &&
					    esz == sizeof(struct vdi_send_to))) {
			struct vdi_send s = {
				.cookie = vdi_rng_next(&w->r),
				.code = vdi_rng_pct(&w->r, 85) ?
					1 + vdi_rng_below(&w->r, 19) : r32(w),
				.size = vdi_rng_pct(&w->r, 60) ?
					vdi_rng_below(&w->r, 8193) : r32(w),
				.position = (int64_t)r64(w),
				.buf_offset = vdi_rng_pct(&w->r, 50) ?
					4096 * vdi_rng_below(&w->r, 16) +
					(vdi_rng_pct(&w->r, 80) ? 0 : vdi_rng_below(&w->r, 4096)) :
					vdi_rng_pct(&w->r, 50) ? VDI_NO_BUFFER : r64(w),
			};
			memcpy(e, &s, sizeof(s));
			if (cmd == VDI_IOC_ENTER) {	/* struct vdi_send_to */
				uint32_t to[2] = {
					vdi_rng_pct(&w->r, 90) ?
						vdi_rng_below(&w->r, 4) : r32(w),
					(uint32_t)rz(w),
				};

				memcpy(e + sizeof(s), to, sizeof(to));
			}
		} else if (cmd == VDI_IOC_COMPLETE || cmd == VDI_IOC_ENTER) {
			struct vdi_done d = { 0 };

			if (w->ntags && vdi_rng_pct(&w->r, 70)) {
				d.tag = w->tags[vdi_rng_below(&w->r, w->ntags)].tag;
				if (vdi_rng_pct(&w->r, 10))	/* a near miss */
					d.tag ^= 1ULL << vdi_rng_below(&w->r, 64);
			} else {
				d.tag = vdi_rng_pct(&w->r, 50) ?
					((uint64_t)vdi_rng_below(&w->r, 4) << 32 |
					 vdi_rng_below(&w->r, 5) << 16 |
					 vdi_rng_below(&w->r, 40)) : r64(w);
			}
			d.completion_code = vdi_rng_pct(&w->r, 80) ? 0 :
				vdi_rng_pct(&w->r, 50) ? 112 : r32(w);
			d.bytes_transferred = vdi_rng_pct(&w->r, 70) ?
				vdi_rng_below(&w->r, 8193) : r32(w);
			d.position = (int64_t)r64(w);
			memcpy(e, &d, sizeof(d));
		} else {
			memset(e, 0xa5, esz);	/* output buffers */
		}
	}
}

/* ------------------------------------------------------------------ */
/* one random ioctl                                                   */

static const unsigned long vdi_cmds[] = {
	VDI_IOC_VERSION, VDI_IOC_CREATE, VDI_IOC_OPEN_SERVER,
	VDI_IOC_OPEN_SECONDARY, VDI_IOC_GET_CONFIG, VDI_IOC_BEGIN_CONFIG,
	VDI_IOC_END_CONFIG, VDI_IOC_OPEN_DEVICE, VDI_IOC_SEND,
	VDI_IOC_GET_COMMANDS, VDI_IOC_COMPLETE, VDI_IOC_WAIT_COMPLETIONS,
	VDI_IOC_CLOSE_DEVICE, VDI_IOC_SIGNAL_ABORT, VDI_IOC_SET_INFO,
	VDI_IOC_LIST_SETS, VDI_IOC_SET_STATS, VDI_IOC_ABORT_SET,
	VDI_IOC_ENTER,
};
#define NCMDS (sizeof(vdi_cmds) / sizeof(vdi_cmds[0]))

static size_t cmd_size(unsigned long cmd)
{
	return _IOC_SIZE(cmd);
}

static void remember_tags(struct worker *w, int fd, const struct vdi_command *c,
			  int n)
{
	int i;

	for (i = 0; i < n; i++) {
		unsigned int k = w->ntags < TAGS ? w->ntags++ :
				 vdi_rng_below(&w->r, TAGS);

		w->tags[k].tag = c[i].tag;
		w->tags[k].fd = fd;
	}
}

/* ------------------------------------------------------------------ */
/* the figures: LIST_SETS, SET_STATS, ABORT_SET                       */

static void remember_id(struct worker *w, uint64_t id)
{
	unsigned int i;

	if (!id)
		return;
	for (i = 0; i < w->nids; i++)
		if (w->ids[i] == id)
			return;
	w->ids[w->nids < IDS ? w->nids++ : vdi_rng_below(&w->r, IDS)] = id;
}

/* a set id: one seen (maybe gone by now), 0 (the fd's own), or any */
static uint64_t rid(struct worker *w)
{
	unsigned int p = vdi_rng_below(&w->r, 100);

	if (p < 55 && w->nids)
		return w->ids[vdi_rng_below(&w->r, w->nids)];
	if (p < 75)
		return 0;
	if (p < 85 && w->nids)	/* near a real one */
		return w->ids[vdi_rng_below(&w->r, w->nids)] + 1 + vdi_rng_below(&w->r, 3);
	return r64(w);
}

/* a struct size: the module's, around it, or anything */
static uint32_t rsize(struct worker *w, uint32_t ver0)
{
	switch (vdi_rng_below(&w->r, 10)) {
	case 0:
		return ver0 - 1 - vdi_rng_below(&w->r, 16);
	case 1:
		return ver0 + 1 + vdi_rng_below(&w->r, 256);
	case 2:
		return vdi_rng_pct(&w->r, 50) ? 0 : r32(w);
	default:
		return ver0;
	}
}

/*
 * Where the module writes n entries of @size bytes, @stride apart (n > 0):
 * in the arena past its first 512 bytes (they hold the argument struct),
 * whole or running into the PROT_NONE pages, or a bad pointer.  A stride
 * wider than the two guard pages could step over them into the worker's
 * other memory: such a run always fits in the arena (NULL if it cannot).
 */
#define OUT_BASE(w)	((w)->arena + 512)
#define OUT_ROOM	(ARENA_PAGES * 4096U - 512)

static uint8_t *rout(struct worker *w, uint32_t n, uint32_t size,
		     uint32_t stride)
{
	uint64_t ext = (uint64_t)(n - 1) * stride + size;
	bool fits = ext <= OUT_ROOM - 64;
	uint8_t *p;
	bool bad;

	if (stride > 4096 && n > 1 && !fits)
		return NULL;
	if (fits && (stride > 4096 || vdi_rng_pct(&w->r, 85))) {
		p = OUT_BASE(w) + vdi_rng_below(&w->r, OUT_ROOM - (uint32_t)ext);
		memset(p, 0xa5, ext);
		return p;
	}
	p = rplace(w, size, &bad);
	if (!bad)	/* runs on into the guard pages */
		p = w->none - 1 - vdi_rng_below(&w->r,
			ext < OUT_ROOM ? (uint32_t)ext : OUT_ROOM);
	return p;
}

/* Structured arguments of the figures' calls at @arg. */
static void figures_args(struct worker *w, unsigned long cmd, uint8_t *arg)
{
	if (cmd == VDI_IOC_LIST_SETS) {
		struct vdi_list_sets l;

		memset(&l, 0, sizeof(l));
		switch (vdi_rng_below(&w->r, 6)) {
		case 0:
			l.count = 0;
			break;
		case 1:
			l.count = r32(w);
			break;
		default:
			l.count = 1 + vdi_rng_below(&w->r, 64);
		}
		/*
		 * At most the visible sets are written: every set of the run
		 * (16 per uid) fits in the arena, a larger room is not used.
		 */
		l.ids = vdi_rng_pct(&w->r, 5) ? 0 : (uintptr_t)rout(w,
			l.count && l.count < 512 ? l.count : 512, 8, 8);
		l.flags = (uint32_t)rz(w);
		l.total = r32(w);
		l.written = r32(w);
		l.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
		memcpy(arg, &l, sizeof(l));
	} else if (cmd == VDI_IOC_SET_STATS) {
		struct vdi_stats_req q;
		uint8_t *devs;
		uint32_t n;

		memset(&q, 0, sizeof(q));
		q.id = rid(w);
		q.set_size = rsize(w, VDI_SET_STATS_SIZE_VER0);
		q.dev_size = rsize(w, VDI_DEV_STATS_SIZE_VER0);
		q.dev_count = vdi_rng_pct(&w->r, 80) ? vdi_rng_below(&w->r, 6) :
			vdi_rng_pct(&w->r, 50) ? 64 + vdi_rng_below(&w->r, 3) : r32(w);
		q.set = vdi_rng_pct(&w->r, 3) ? 0 :
			(uintptr_t)rout(w, 1, VDI_SET_STATS_SIZE_VER0,
					VDI_SET_STATS_SIZE_VER0);
		/* at most VDI_MAX_DEVICES devices are written */
		n = q.dev_count < VDI_MAX_DEVICES ? q.dev_count : VDI_MAX_DEVICES;
		devs = n ? rout(w, n, VDI_DEV_STATS_SIZE_VER0, q.dev_size) : NULL;
		if (n && !devs) {	/* too wide a stride: room for one */
			q.dev_count = 1;
			devs = rout(w, 1, VDI_DEV_STATS_SIZE_VER0, q.dev_size);
		}
		q.devs = vdi_rng_pct(&w->r, 5) ? (uintptr_t)rout(w, 1, 64, 64) :
			(uintptr_t)devs;
		q.flags = (uint32_t)rz(w);
		q.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
		memcpy(arg, &q, sizeof(q));
	} else {	/* VDI_IOC_ABORT_SET */
		struct vdi_abort_set a = {
			.id = rid(w), .flags = (uint32_t)rz(w),
			.reserved0 = (uint32_t)rz(w),
		};

		a.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
		memcpy(arg, &a, sizeof(a));
	}
}

static bool is_figures(unsigned long cmd)
{
	return cmd == VDI_IOC_LIST_SETS || cmd == VDI_IOC_SET_STATS ||
	       cmd == VDI_IOC_ABORT_SET;
}

/* Is @fd one of the worker's vdi fds (set, device or endpoint)? */
static bool pool_has(struct worker *w, int fd)
{
	unsigned int i;

	for (i = 0; i < POOL; i++)
		if (w->pool[i].kind != K_FREE && w->pool[i].fd == fd)
			return true;
	return false;
}

/* A device fd is an anonymous inode; the others are /dev/vdi itself. */
static bool is_device_fd(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && !S_ISCHR(st.st_mode);
}

/* Is [p, p + len) whole inside the arena's output pages? */
static bool in_out_room(struct worker *w, uint64_t p, uint64_t len)
{
	return p >= (uintptr_t)OUT_BASE(w) && p + len <= (uintptr_t)w->none;
}

/*
 * What a figures call returned: an errno the ABI gives it, and when it
 * succeeded, outputs that hold together; remember the ids it told.
 * @in is the argument as given (NULL when its pointer was bad), @out the
 * argument after the call.
 */
static void figures_check(struct worker *w, unsigned long cmd, int fd,
			  const void *in, const void *out, int r, int err)
{
	const char *what = cmd == VDI_IOC_LIST_SETS ? "LIST_SETS" :
			   cmd == VDI_IOC_SET_STATS ? "SET_STATS" : "ABORT_SET";
	bool vdi = pool_has(w, fd), ok;

	if (r < 0) {
		if (!vdi)
			ok = err == EBADF || err == ENOTTY;
		else if (err == ENOTTY)	/* a device fd: only SET_STATS */
			ok = cmd != VDI_IOC_SET_STATS && is_device_fd(fd);
		else if (!in)		/* the argument itself cannot be read */
			ok = err == EFAULT;
		else if (err == EFAULT || err == EINVAL || err == EINTR)
			ok = true;
		else if (cmd == VDI_IOC_LIST_SETS)
			ok = err == ENOMEM;
		else if (cmd == VDI_IOC_SET_STATS)
			ok = err == ENOENT || err == EPERM || err == EPROTO ||
			     err == ENOMEM;
		else
			ok = err == ENOENT || err == EPERM;
	} else {
		ok = r == 0 && vdi && in;
		w->sh->figures_ok[w->id]++;
		if (ok && cmd == VDI_IOC_LIST_SETS) {
			const struct vdi_list_sets *li = in, *l = out;
			const uint64_t *ids = (const void *)(uintptr_t)l->ids;

			ok = l->written <= li->count && l->written <= l->total;
			if (ok && in_out_room(w, l->ids, (uint64_t)l->written * 8))
				for (uint32_t i = 0; ok && i < l->written; i++) {
					ok = ids[i] != 0;
					remember_id(w, ids[i]);
				}
		} else if (ok && cmd == VDI_IOC_SET_STATS) {
			const struct vdi_stats_req *qi = in, *q = out;
			const struct vdi_set_stats *st = (const void *)(uintptr_t)q->set;

			ok = q->set_size == VDI_SET_STATS_SIZE_VER0 &&
			     q->dev_count <= qi->dev_count &&
			     q->dev_count <= VDI_MAX_DEVICES &&
			     (!q->dev_count || q->dev_size == VDI_DEV_STATS_SIZE_VER0);
			/* the snapshot, unless the devices overwrote it */
			if (ok && in_out_room(w, q->set, sizeof(*st)) &&
			    (q->set + sizeof(*st) <= q->devs ||
			     q->set >= q->devs + (uint64_t)q->dev_count * qi->dev_size)) {
				ok = st->id != 0 && (!qi->id || st->id == qi->id) &&
				     st->device_count >= 1 &&
				     st->device_count <= VDI_MAX_DEVICES &&
				     q->dev_count <= st->device_count &&
				     st->state <= VDI_STATE_ABORTED &&
				     st->abort_reason <= VDI_ABORT_ADMIN;
				if (ok)
					remember_id(w, st->id);
			}
		}
	}
	if (ok)
		return;
	w->sh->bad_errno[w->id]++;
	if (w->bad_printed++ < 10)
		printf("# worker %d: %s on fd %d (%s): returned %d, errno %d (%s)%s\n",
		       w->id, what, fd, vdi ? "vdi" : "not vdi", r,
		       r < 0 ? err : 0, r < 0 ? strerror(err) : "-",
		       r >= 0 ? ": outputs do not hold together" : "");
}

/* The kind of a pool fd (K_FREE: not one of ours). */
static enum kind pool_kind(struct worker *w, int fd)
{
	unsigned int i;

	for (i = 0; i < POOL; i++)
		if (w->pool[i].kind != K_FREE && w->pool[i].fd == fd)
			return w->pool[i].kind;
	return K_FREE;
}

/*
 * ENTER's argument at @arg: submit entries of the fd's kind mostly (the
 * other kind sometimes), counts around the limits, a reap into the
 * output room or a bad place, timeouts, spins and flags at their edges.
 */
static void enter_args(struct worker *w, int fd, uint8_t *arg)
{
	enum kind k = pool_kind(w, fd);
	bool sends = vdi_rng_pct(&w->r, 85) ? k == K_SSET : vdi_rng_pct(&w->r, 50);
	size_t esz = sends ? sizeof(struct vdi_send_to) : sizeof(struct vdi_done);
	struct vdi_enter e;
	bool ebad = false;
	uint8_t *p;

	memset(&e, 0, sizeof(e));
	switch (vdi_rng_below(&w->r, 10)) {
	case 0:
		e.submit_count = r32(w);
		break;
	case 1:
		e.submit_count = VDI_BATCH_MAX - 1 + vdi_rng_below(&w->r, 3);
		break;
	case 2:
	case 3:
		e.submit_count = 0;
		break;
	default:
		e.submit_count = 1 + vdi_rng_below(&w->r, 8);
	}
	if (e.submit_count && e.submit_count <= 64) {
		p = rplace(w, e.submit_count * esz, &ebad);
		if (!ebad && p + e.submit_count * esz <= w->none)
			fill_entries(w, VDI_IOC_ENTER, p, e.submit_count, esz);
	} else {
		p = vdi_rng_pct(&w->r, 50) ? w->arena : w->none - 8 * esz;
	}
	e.submit = (uintptr_t)p;
	e.reap_count = vdi_rng_pct(&w->r, 20) ? 0 : vdi_rng_pct(&w->r, 5) ?
		VDI_BATCH_MAX - 1 + vdi_rng_below(&w->r, 3) : vdi_rng_pct(&w->r, 3) ?
		r32(w) : 1 + vdi_rng_below(&w->r, 16);
	/* where the module writes what it reaps: past the argument */
	if (e.reap_count)
		e.reap = (uintptr_t)rout(w, e.reap_count > 64 ? 64 : e.reap_count,
					 32, 32);
	else
		e.reap = vdi_rng_pct(&w->r, 50) ? 0 : (uintptr_t)OUT_BASE(w);
	e.timeout_ms = e.reap_count && vdi_rng_pct(&w->r, 90) ? rtimeout(w) :
		(int64_t)rz(w);
	/* mostly none with nothing to reap: that is EINVAL */
	e.spin_us = (!e.reap_count && vdi_rng_pct(&w->r, 90)) ||
		    vdi_rng_pct(&w->r, 60) ? 0 : vdi_rng_pct(&w->r, 70) ?
		vdi_rng_below(&w->r, 200) : vdi_rng_pct(&w->r, 50) ?
		VDI_SPIN_MAX_US - 1 + vdi_rng_below(&w->r, 3) : r32(w);
	e.flags = (uint32_t)rz(w);
	e.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
	e.submitted = e.reaped = 0xa5a5a5a5;
	memcpy(arg, &e, sizeof(e));
}

/*
 * What ENTER returned: an errno the ABI gives it, and counts written back
 * that say what it did.  @in is the argument as given (NULL when its
 * pointer was bad), @out the argument after the call.  The pool's kinds
 * are a worker's belief (a dup, a device opened through one), so the fd's
 * kind decides nothing but "not ours".
 */
static void enter_check(struct worker *w, int fd, const struct vdi_enter *in,
			const struct vdi_enter *out, int r, int err)
{
	bool vdi = pool_kind(w, fd) != K_FREE, ok, written;

	if (r < 0) {
		/* past the struct's checks: what went in is written back */
		written = err == ESTALE || err == ENOBUFS || err == EIO ||
			  err == ETIMEDOUT || err == ESHUTDOWN ||
			  err == ECONNABORTED || err == EINTR || err == EBADF;
		if (!vdi)
			ok = err == EBADF || err == ENOTTY;
		else
			ok = written || err == ENOTTY || err == EPROTO ||
			     err == EFAULT || err == EINVAL;
		if (ok && written && vdi && in)
			ok = out->reaped == 0 &&
			     out->submitted <= in->submit_count;
	} else {
		ok = vdi && in && (uint32_t)r <= in->reap_count &&
		     out->reaped == (uint32_t)r &&
		     out->submitted == in->submit_count;
		w->sh->enter_ok[w->id]++;
	}
	if (ok)
		return;
	w->sh->bad_errno[w->id]++;
	if (w->bad_printed++ < 10)
		printf("# worker %d: ENTER on fd %d: returned %d, errno %d (%s)%s\n",
		       w->id, fd, r, r < 0 ? err : 0, r < 0 ? strerror(err) : "-",
		       ": undocumented, or the counts do not say what it did");
}

static void fuzz_ioctl(struct worker *w)
{
	unsigned long cmd;
	uint8_t *arg;
	size_t size;
	bool bad;
	int fd = rfd(w), r;
	uint32_t count = 0;
	uint8_t *entries = NULL;
	uint64_t fig_in[8];		/* a figures call's argument as given */
	struct vdi_enter enter_in;	/* ENTER's */

	switch (vdi_rng_below(&w->r, 20)) {
	case 0:		/* our magic, any number, any size and direction */
		cmd = _IOC(vdi_rng_below(&w->r, 4), VDI_IOC_MAGIC,
			   vdi_rng_below(&w->r, 32), vdi_rng_below(&w->r, 320));
		break;
	case 1:		/* one of ours with a wrong size */
		cmd = vdi_cmds[vdi_rng_below(&w->r, NCMDS)];
		cmd = _IOC(_IOC_DIR(cmd), VDI_IOC_MAGIC, _IOC_NR(cmd),
			   (_IOC_SIZE(cmd) + 1 + vdi_rng_below(&w->r, 64)) & _IOC_SIZEMASK);
		break;
	case 2:		/* one of ours with the wrong direction */
		cmd = vdi_cmds[vdi_rng_below(&w->r, NCMDS)];
		cmd = _IOC((_IOC_DIR(cmd) + 1 + vdi_rng_below(&w->r, 3)) & 3,
			   VDI_IOC_MAGIC, _IOC_NR(cmd), _IOC_SIZE(cmd));
		break;
	case 3:		/* anything */
		cmd = (uint32_t)vdi_rng_next(&w->r);
		break;
	case 4:		/* what the VFS or other drivers know */
		{
			static const unsigned long other[] = {
				FIONREAD, FIONBIO, FIOASYNC, FIOCLEX, FIONCLEX,
				0x5401 /* TCGETS */, 0x80086601 /* FS_IOC_GETFLAGS */,
				0xc020660b /* FS_IOC_FIEMAP */, 0x40086602,
			};
			cmd = other[vdi_rng_below(&w->r, 9)];
		}
		break;
	default:
		cmd = vdi_cmds[vdi_rng_below(&w->r, NCMDS)];
		break;
	}

	size = cmd_size(cmd);
	if (size < 8)
		size = 8;
	arg = rplace(w, size > 4096 ? 4096 : size, &bad);
	if (!bad) {
		/* structured contents for our ioctls */
		switch (cmd) {
		case VDI_IOC_VERSION: {
			struct vdi_version v = { .api_major = vdi_rng_pct(&w->r, 80) ? 1 : r32(w),
				.api_minor = r32(w) };
			v.reserved[vdi_rng_below(&w->r, 4)] = rz(w);
			memcpy(arg, &v, sizeof(v));
			break;
		}
		case VDI_IOC_CREATE: {
			struct vdi_create c;

			memset(&c, 0, sizeof(c));
			rname(w, c.name);
			rconfig(w, &c.config);
			c.mode = vdi_rng_pct(&w->r, 60) ? 0666 : vdi_rng_pct(&w->r, 50) ? 0 : r32(w);
			c.flags = vdi_rng_pct(&w->r, 85) ? 0 : vdi_rng_pct(&w->r, 50) ?
				VDI_CREATE_GID : r32(w);
			c.gid = c.flags ? (vdi_rng_pct(&w->r, 50) ? 0 : r32(w)) : (uint32_t)rz(w);
			c.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
			memcpy(arg, &c, sizeof(c));
			break;
		}
		case VDI_IOC_OPEN_SERVER:
		case VDI_IOC_OPEN_SECONDARY: {
			struct vdi_open o;

			memset(&o, 0, sizeof(o));
			rname(w, o.name);
			o.flags = (uint32_t)rz(w);
			o.reserved0 = (uint32_t)rz(w);
			o.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
			memcpy(arg, &o, sizeof(o));
			break;
		}
		case VDI_IOC_GET_CONFIG: {
			struct vdi_get_config g;

			memset(&g, 0xcc, sizeof(g));
			g.timeout_ms = rtimeout(w);
			g.flags = (uint32_t)rz(w);
			g.reserved[0] = rz(w);
			g.reserved[1] = rz(w);
			memcpy(arg, &g, sizeof(g));
			break;
		}
		case VDI_IOC_BEGIN_CONFIG: {
			struct vdi_begin_config b = {
				.features = vdi_rng_pct(&w->r, 80) ?
					(VDI_VDF_WRITE_MEDIA << vdi_rng_below(&w->r, 2)) |
					(vdi_rng_pct(&w->r, 20) ? VDI_VDF_COMPLETE_ENABLED : 0) : r32(w),
				.alignment = vdi_rng_pct(&w->r, 60) ? 0 : r32(w),
				.block_size = vdi_rng_pct(&w->r, 70) ?
					512U << vdi_rng_below(&w->r, 8) : r32(w),
				.max_transfer_size = vdi_rng_pct(&w->r, 70) ?
					65536U * (1 + vdi_rng_below(&w->r, 64)) : r32(w),
				.timeout_ms = r32(w),
				.queue_depth = vdi_rng_pct(&w->r, 70) ?
					vdi_rng_below(&w->r, 40) : r32(w),
			};
			b.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
			memcpy(arg, &b, sizeof(b));
			break;
		}
		case VDI_IOC_END_CONFIG: {
			/* never really large: the VM must not run out of memory */
			static const uint64_t big[] = { 0x40000001ULL, 0xfffff001ULL,
				0x100000000ULL, 0x7fffffffffffffffULL, ~0ULL,
				0xffffffffffffff00ULL };
			struct vdi_end_config e = {
				.area_size = vdi_rng_pct(&w->r, 85) ?
					vdi_rng_below(&w->r, 17 * 4096) :
					big[vdi_rng_below(&w->r, 6)],
				.flags = (uint32_t)rz(w),
				.reserved0 = (uint32_t)rz(w),
			};
			e.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
			memcpy(arg, &e, sizeof(e));
			break;
		}
		case VDI_IOC_OPEN_DEVICE: {
			struct vdi_open_device d;

			memset(&d, 0, sizeof(d));
			rname(w, d.name);
			d.flags = vdi_rng_pct(&w->r, 80) ? O_CLOEXEC : (uint32_t)rz(w);
			d.index = (uint32_t)rz(w);
			d.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
			memcpy(arg, &d, sizeof(d));
			break;
		}
		case VDI_IOC_SEND:
		case VDI_IOC_GET_COMMANDS:
		case VDI_IOC_COMPLETE:
		case VDI_IOC_WAIT_COMPLETIONS: {
			struct vdi_batch b;
			size_t esz = 32;
			bool ebad = false;

			switch (vdi_rng_below(&w->r, 10)) {
			case 0:
				count = r32(w);
				break;
			case 1:
				count = VDI_BATCH_MAX - 1 + vdi_rng_below(&w->r, 3);
				break;
			default:
				count = 1 + vdi_rng_below(&w->r, 20);
			}
			entries = NULL;
			if (count && count <= VDI_BATCH_MAX) {
				size_t len = (size_t)count * esz;

				if (len <= ARENA_PAGES * 4096 - 4096 || vdi_rng_pct(&w->r, 50)) {
					entries = rplace(w, len > 8192 ? 8192 : len, &ebad);
					if (len > 8192 && !ebad)
						entries = w->none - len + 8 * vdi_rng_below(&w->r, 4);
				} else {
					entries = w->none - len + esz * vdi_rng_below(&w->r, 4);
				}
				if (!ebad && entries + len <= w->none)
					fill_entries(w, cmd, entries, count, esz);
				else if (!ebad && entries >= w->arena && entries < w->none)
					fill_entries(w, cmd, entries,
						     (uint32_t)((w->none - entries) / esz), esz);
			} else {
				entries = w->arena;
			}
			memset(&b, 0, sizeof(b));
			b.entries = (uintptr_t)entries;
			b.count = count;
			b.flags = (uint32_t)rz(w);
			b.timeout_ms = cmd == VDI_IOC_GET_COMMANDS ||
				       cmd == VDI_IOC_WAIT_COMPLETIONS ?
				       rtimeout(w) : (int64_t)rz(w);
			b.reserved[vdi_rng_below(&w->r, 2)] = rz(w);
			/* the batch struct itself mostly well placed */
			arg = w->arena + 16 * 4096 - 4096 + 8 * vdi_rng_below(&w->r, 200);
			if (vdi_rng_pct(&w->r, 5))
				arg = w->none - 1 - vdi_rng_below(&w->r, sizeof(b) - 1);
			else
				memcpy(arg, &b, sizeof(b));
			break;
		}
		case VDI_IOC_CLOSE_DEVICE:
		case VDI_IOC_SIGNAL_ABORT: {
			struct vdi_ctl c = { .flags = (uint32_t)rz(w),
				.reserved0 = (uint32_t)rz(w), .reserved = rz(w) };
			memcpy(arg, &c, sizeof(c));
			break;
		}
		case VDI_IOC_SET_INFO: {
			struct vdi_set_info i;

			memset(&i, 0xcc, sizeof(i));
			i.flags = (uint32_t)rz(w);
			i.reserved[0] = rz(w);
			i.reserved[1] = rz(w);
			memcpy(arg, &i, sizeof(i));
			break;
		}
		case VDI_IOC_ENTER:
			/* the argument first in the arena, mostly away from the
			 * outputs
			 */
			arg = w->arena + 8 * vdi_rng_below(&w->r, 56);
			enter_args(w, fd, arg);
			memcpy(&enter_in, arg, sizeof(enter_in));
			break;
		case VDI_IOC_LIST_SETS:
		case VDI_IOC_SET_STATS:
		case VDI_IOC_ABORT_SET:
			/* the argument first in the arena, away from the outputs */
			arg = w->arena + 8 * vdi_rng_below(&w->r, 56);
			figures_args(w, cmd, arg);
			memcpy(fig_in, arg, _IOC_SIZE(cmd));
			break;
		default:
			if (arg + size <= w->none)
				for (size_t i = 0; i < size; i++)
					arg[i] = (uint8_t)r64(w);
		}
	}

	/* a SIGNAL_ABORT now and then, not all the time: sets must live */
	if ((cmd == VDI_IOC_SIGNAL_ABORT || cmd == VDI_IOC_ABORT_SET) &&
	    vdi_rng_pct(&w->r, 70))
		cmd = VDI_IOC_VERSION;
	/* FIOASYNC: no SIGIO on our fds */
	if (cmd == FIOASYNC)
		cmd = FIONBIO;

	r = ioctl(fd, cmd, arg);
	w->calls++;
	if (is_figures(cmd))
		figures_check(w, cmd, fd, bad ? NULL : fig_in, arg, r,
			      r < 0 ? errno : 0);
	if (cmd == VDI_IOC_ENTER) {
		enter_check(w, fd, bad ? NULL : &enter_in,
			    (const struct vdi_enter *)arg, r, r < 0 ? errno : 0);
		if (r > 0 && !bad && pool_kind(w, fd) == K_CDEV &&
		    in_out_room(w, enter_in.reap, (uint64_t)r * 32)) {
			remember_tags(w, fd, (const struct vdi_command *)
				      (uintptr_t)enter_in.reap, r);
			w->sh->deep[w->id] += r;
		}
	}
	if (r > 0 && cmd == VDI_IOC_OPEN_DEVICE) {
		enum kind k = K_CDEV;
		unsigned int i;

		for (i = 0; i < POOL; i++)
			if (w->pool[i].kind != K_FREE && w->pool[i].fd == fd)
				k = w->pool[i].kind == K_SSET ? K_SDEV : K_CDEV;
		pool_add(w, r, k);
	} else if (r == 0 && (cmd == VDI_IOC_CREATE || cmd == VDI_IOC_OPEN_SERVER ||
			      cmd == VDI_IOC_OPEN_SECONDARY)) {
		unsigned int i;

		for (i = 0; i < POOL; i++)
			if (w->pool[i].kind == K_EP && w->pool[i].fd == fd)
				w->pool[i].kind = cmd == VDI_IOC_CREATE ? K_CSET :
					cmd == VDI_IOC_OPEN_SERVER ? K_SSET : K_SEC;
	} else if (r > 0 && cmd == VDI_IOC_GET_COMMANDS && entries) {
		remember_tags(w, fd, (const struct vdi_command *)entries, r);
		w->sh->deep[w->id] += r;
	}
}

/* ------------------------------------------------------------------ */
/* protocol-correct steps: get sets into their deeper states          */

static void drive(struct worker *w)
{
	const char *name = w->names[vdi_rng_below(&w->r, NAMES)];
	struct vdi_create c;
	int cset, sset, cdev, sdev, r;
	char dn[VDI_NAME_MAX];

	switch (vdi_rng_below(&w->r, 8)) {
	case 0: {	/* a whole ready set, one device each side, in the pool */
		while (pool_count(w) > POOL - 6)	/* room for it */
			pool_close_random(w);
		if (vdi_rng_pct(&w->r, 50))	/* a name of our own: no EEXIST */
			name = w->names[NAMES - 1 - vdi_rng_below(&w->r, 2)];
		vdi_create_init(&c, name, 1 + vdi_rng_below(&w->r, 3), 0);
		c.mode = 0666;
		cset = pool_add(w, vdi_open(), K_EP);
		w->calls++;
		if (cset < 0)
			return;
		w->calls++;
		if (vdi_ioctl(cset, VDI_IOC_CREATE, &c)) {
			pool_close_fd(w, cset);
			return;
		}
		for (unsigned int i = 0; i < POOL; i++)
			if (w->pool[i].fd == cset && w->pool[i].kind == K_EP)
				w->pool[i].kind = K_CSET;
		sset = pool_add(w, vdi_open(), K_EP);
		w->calls += 2;
		if (sset < 0 || vdi_open_on(sset, VDI_IOC_OPEN_SERVER, name))
			return;
		for (unsigned int i = 0; i < POOL; i++)
			if (w->pool[i].fd == sset && w->pool[i].kind == K_EP)
				w->pool[i].kind = K_SSET;
		w->calls += 4;
		if (vdi_begin_config(sset, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
				     0, 512, 65536, 1 + vdi_rng_below(&w->r, 8)) ||
		    vdi_end_config(sset, 4096 * (1 + vdi_rng_below(&w->r, 16))) ||
		    vdi_get_config(cset, 0, NULL))
			return;
		w->calls += 2;
		cdev = pool_add(w, vdi_open_device(cset, name, O_CLOEXEC, NULL), K_CDEV);
		sdev = pool_add(w, vdi_open_device(sset, name, O_CLOEXEC, NULL), K_SDEV);
		if (cdev >= 0 && sdev >= 0) {
			struct vdi_command cmd[4];

			w->calls += 2;
			vdi_send1(sdev, 1, VDI_VDC_WRITE, 512, 0, 0);
			r = vdi_get(cdev, cmd, 4, 0);
			if (r > 0) {
				remember_tags(w, cdev, cmd, r);
				w->sh->deep[w->id] += r;
			}
		}
		return;
	}
	case 1: {	/* send on a server device we have */
		struct vdi_send s[4];
		unsigned int i;

		sdev = pool_pick(w, K_SDEV, NULL);
		if (sdev < 0)
			return;
		for (i = 0; i < 4; i++)
			s[i] = (struct vdi_send){ .cookie = i, .code = 1 + vdi_rng_below(&w->r, 3),
				.size = 512 * vdi_rng_below(&w->r, 3),
				.buf_offset = 4096 * vdi_rng_below(&w->r, 2) };
		vdi_send(sdev, s, 1 + vdi_rng_below(&w->r, 4));
		w->calls++;
		return;
	}
	case 2: {	/* take and complete on a client device we have */
		struct vdi_command cmd[8];
		struct vdi_done d[8];

		cdev = pool_pick(w, K_CDEV, NULL);
		if (cdev < 0)
			return;
		r = vdi_get(cdev, cmd, 8, 0);
		w->calls++;
		if (r <= 0)
			return;
		w->sh->deep[w->id] += r;
		for (int i = 0; i < r; i++)
			d[i] = (struct vdi_done){ .tag = cmd[i].tag,
				.completion_code = vdi_rng_pct(&w->r, 90) ? 0 : 112,
				.bytes_transferred = cmd[i].code <= 2 ? cmd[i].size : 0 };
		if (vdi_rng_pct(&w->r, 80)) {
			vdi_complete(cdev, d, r);
			w->calls++;
		} else {
			remember_tags(w, cdev, cmd, r);
		}
		return;
	}
	case 3: {	/* the agent */
		struct vdi_completion cpl[16];

		sset = pool_pick(w, K_SSET, NULL);
		if (sset >= 0) {
			vdi_wait(sset, cpl, 16, vdi_rng_pct(&w->r, 80) ? 0 : 2);
			w->calls++;
		}
		return;
	}
	case 4:		/* a secondary client */
		cset = pool_add(w, vdi_open(), K_EP);
		w->calls += 2;
		if (cset >= 0 && !vdi_open_on(cset, VDI_IOC_OPEN_SECONDARY, name)) {
			for (unsigned int i = 0; i < POOL; i++)
				if (w->pool[i].fd == cset && w->pool[i].kind == K_EP)
					w->pool[i].kind = K_SEC;
			vdi_dev_name(dn, name, 1 + vdi_rng_below(&w->r, 2));
			pool_add(w, vdi_open_device(cset, dn, 0, NULL), K_CDEV);
			w->calls++;
		}
		return;
	case 6: {	/* the client's turn in one call: ENTER */
		struct vdi_command cmd[8];
		struct vdi_done d[8];
		struct vdi_enter e;
		unsigned int n = 0, i;

		cdev = pool_pick(w, K_CDEV, NULL);
		if (cdev < 0)
			return;
		/* complete what this fd took before (forgotten afterwards) */
		for (i = 0; i < w->ntags && n < 8; i++)
			if (w->tags[i].fd == cdev && vdi_rng_pct(&w->r, 80))
				d[n++] = (struct vdi_done){ .tag = w->tags[i].tag };
		for (i = 0; i < w->ntags;)
			if (w->tags[i].fd == cdev)
				w->tags[i] = w->tags[--w->ntags];
			else
				i++;
		memset(&e, 0, sizeof(e));
		e.submit = (uintptr_t)d;
		e.submit_count = n;
		e.reap = (uintptr_t)cmd;
		e.reap_count = 8;
		e.timeout_ms = vdi_rng_pct(&w->r, 80) ? 0 : 2;
		e.spin_us = vdi_rng_pct(&w->r, 50) ? 0 : vdi_rng_below(&w->r, 100);
		r = vdi_enter(cdev, &e);
		w->calls++;
		if (r > 0) {
			remember_tags(w, cdev, cmd, r);
			w->sh->deep[w->id] += r;
		}
		return;
	}
	case 7: {	/* the agent's turn in one call: send to devices, reap */
		struct vdi_completion cpl[16];
		struct vdi_send_to to[4];
		struct vdi_enter e;
		unsigned int i, n = vdi_rng_below(&w->r, 5);

		sset = pool_pick(w, K_SSET, NULL);
		if (sset < 0)
			return;
		for (i = 0; i < n; i++)
			to[i] = (struct vdi_send_to){
				.send = { .cookie = i,
					  .code = 1 + vdi_rng_below(&w->r, 3),
					  .size = 512 * vdi_rng_below(&w->r, 3),
					  .buf_offset = 4096 * vdi_rng_below(&w->r, 2) },
				.device_index = vdi_rng_below(&w->r, 3),
			};
		memset(&e, 0, sizeof(e));
		e.submit = (uintptr_t)to;
		e.submit_count = n;
		e.reap = (uintptr_t)cpl;
		e.reap_count = 16;
		e.timeout_ms = vdi_rng_pct(&w->r, 80) ? 0 : 2;
		e.spin_us = vdi_rng_pct(&w->r, 50) ? 0 : vdi_rng_below(&w->r, 100);
		vdi_enter(sset, &e);
		w->calls++;
		return;
	}
	default:	/* normal end of a server device */
		sdev = pool_pick(w, K_SDEV, NULL);
		if (sdev >= 0) {
			vdi_close_device(sdev);
			w->calls++;
		}
		return;
	}
}

/* ------------------------------------------------------------------ */
/* mappings                                                           */

static void touch(struct worker *w, uint8_t *p, size_t len, bool write,
		  const char *what)
{
	volatile uint8_t *v = p;
	volatile size_t off = 0;
	int sig;

	fault_armed = 1;
	sig = sigsetjmp(fault_jmp, 1);
	if (sig) {
		fault_armed = 0;
		w->sh->sigbus[w->id]++;
		printf("# worker %d (pid %d): signal %d (code %d, addr %p) touching %s at "
		       "%p+%zu (of %zu)\n", w->id, (int)getpid(), sig, fault_code,
		       fault_addr, what, (void *)p, (size_t)off, len);
		print_map_of(p);
		return;
	}
	for (off = 0; off < len; off += 4096) {
		if (write)
			v[off] = (uint8_t)off;
		else
			(void)v[off];
	}
	fault_armed = 0;
}

static void fuzz_map(struct worker *w)
{
	static const size_t lens[] = { 4096, 8192, 12288, 65536, 0, 1,
		4097, 1 << 20, (size_t)1 << 40 };
	static const off_t offs[] = { 0, 0, 0, 4096, 8192, 65536, 1,
		(off_t)1 << 40, -4096 };
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
		PROT_READ, PROT_WRITE, PROT_NONE, PROT_READ | PROT_EXEC };
	unsigned int i = vdi_rng_below(&w->r, MAPS);
	int fd, prot, flags;
	size_t len;
	off_t off;
	void *p;

	if (w->maps[i].p) {
		uint8_t *m = w->maps[i].p;
		size_t l = w->maps[i].len;

		w->calls++;
		switch (vdi_rng_below(&w->r, 8)) {
		case 0: {
			int prot = prots[vdi_rng_below(&w->r, 6)];

			if (!mprotect(m, l, prot)) {
				w->maps[i].prot = prot;
				snprintf(w->maps[i].how + strlen(w->maps[i].how),
					 sizeof(w->maps[i].how) - strlen(w->maps[i].how),
					 " mprot%d", prot);
			}
			return;
		}
		case 1:
			madvise(m, l, vdi_rng_pct(&w->r, 50) ? MADV_DONTNEED :
				vdi_rng_pct(&w->r, 50) ? MADV_WILLNEED : MADV_REMOVE);
			return;
		case 2:
			msync(m, l, MS_SYNC);
			return;
		case 3:
			if (l > 4096) {		/* split it */
				munmap(m + 4096, 4096);
				w->maps[i].len = 4096;
				return;
			}
			break;
		case 4:
			p = mremap(m, l, l + 4096, MREMAP_MAYMOVE);	/* must fail: DONTEXPAND */
			if (p != MAP_FAILED) {
				printf("# worker %d: mremap grew an area mapping\n", w->id);
				w->sh->sigbus[w->id]++;
				w->maps[i].p = p;
				w->maps[i].len = l + 4096;
			}
			return;
		case 5:		/* shrink it in place */
			if (l <= 4096)
				break;
			p = mremap(m, l, 4096, 0);
			if (p != MAP_FAILED)
				w->maps[i].len = 4096;
			return;
		default:
			break;
		}
		munmap(m, l);
		w->maps[i].p = NULL;
		return;
	}

	fd = vdi_rng_pct(&w->r, 90) ? pool_pick(w, vdi_rng_pct(&w->r, 70) ?
		(vdi_rng_pct(&w->r, 50) ? K_SSET : K_CSET) : K_FREE, NULL) : rfd(w);
	len = lens[vdi_rng_below(&w->r, 9)];
	off = offs[vdi_rng_below(&w->r, 9)];
	prot = prots[vdi_rng_below(&w->r, 6)];
	flags = vdi_rng_pct(&w->r, 85) ? MAP_SHARED : vdi_rng_pct(&w->r, 50) ?
		MAP_PRIVATE : MAP_SHARED_VALIDATE | 0x80000 /* MAP_SYNC */;
	if (vdi_rng_pct(&w->r, 10))
		flags |= MAP_POPULATE;
	if (len > (1 << 20))	/* no commit accounting noise in the log */
		flags = MAP_SHARED;
	p = mmap(NULL, len, prot, flags, fd, off);
	w->calls++;
	if (p == MAP_FAILED)
		return;
	w->maps[i].p = p;
	w->maps[i].len = len;
	w->maps[i].prot = prot;
	snprintf(w->maps[i].how, sizeof(w->maps[i].how), "fd %d len %zu prot %d",
		 fd, len, prot);
	if (prot & PROT_READ) {
		char what[96];

		snprintf(what, sizeof(what), "a new mapping (fd %d, off %lld, prot %d, flags %#x)",
			 fd, (long long)off, prot, flags);
		touch(w, p, len, prot & PROT_WRITE, what);
	}
}

/* ------------------------------------------------------------------ */
/* a worker                                                           */

static void fuzz_fork(struct worker *w)
{
	pid_t pid;
	int n, status;

	fflush(stdout);
	pid = fork();
	w->calls++;
	if (pid < 0)
		return;
	if (pid == 0) {
		/*
		 * The child: copies of every fd, but none of the areas'
		 * mappings (VM_DONTCOPY: their addresses are free here, and
		 * may go to the child's own); a few ops, then out.
		 */
		struct itimerval it = { { 0, 8000 }, { 0, 8000 } };

		for (unsigned int i = 0; i < MAPS; i++)
			w->maps[i].p = NULL;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setitimer(ITIMER_REAL, &it, NULL);	/* not inherited */
		vdi_rng_seed(&w->r, vdi_rng_next(&w->r) ^ 0xc0ffee);
		n = vdi_rng_below(&w->r, 30);
		for (int i = 0; i < n; i++) {
			if (vdi_rng_pct(&w->r, 70))
				fuzz_ioctl(w);
			else if (vdi_rng_pct(&w->r, 50))
				drive(w);
			else
				fuzz_map(w);
		}
		for (unsigned int i = 0; i < MAPS; i++)
			if (w->maps[i].p && (w->maps[i].prot & PROT_READ))
				touch(w, w->maps[i].p, 4096, false, w->maps[i].how);
		_exit(0);
	}
	if (vdi_rng_pct(&w->r, 50)) {
		vdi_sleep_ms(vdi_rng_below(&w->r, 3));
		kill(pid, SIGKILL);
	}
	for (n = 0; n < 2000; n++) {	/* 2 s at most, then it is killed */
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return;
		vdi_sleep_ms(1);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

static void worker_cleanup(struct worker *w)
{
	unsigned int i;

	for (i = 0; i < MAPS; i++)
		if (w->maps[i].p) {
			munmap(w->maps[i].p, w->maps[i].len);
			w->maps[i].p = NULL;
		}
	for (i = 0; i < POOL; i++)
		if (w->pool[i].kind != K_FREE) {
			close(w->pool[i].fd);
			w->pool[i].kind = K_FREE;
		}
}

static int worker_main(struct worker *w)
{
	struct itimerval it = { { 0, 8000 }, { 0, 8000 } };
	struct sigaction sa;
	uint8_t *m;
	uint64_t last_pub = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;		/* no SA_RESTART: waits end with EINTR */
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = NULL;
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* the arena, two PROT_NONE pages, a hole */
	m = mmap(NULL, (ARENA_PAGES + 3) * 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 2;
	w->arena = m;
	w->none = m + ARENA_PAGES * 4096;
	mprotect(w->none, 2 * 4096, PROT_NONE);
	munmap(m + (ARENA_PAGES + 2) * 4096, 4096);
	w->hole = (uint8_t *)0x2000;	/* below mmap_min_addr: never mapped */
	memset(w->arena, 0, ARENA_PAGES * 4096);
	w->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	setitimer(ITIMER_REAL, &it, NULL);
	while (w->calls < w->end_calls) {
		unsigned int op = vdi_rng_below(&w->r, 1000);

		if ((w->calls & 255) < 8 && vdi_now_ms() > w->end_ms)
			break;
		if (op < 700) {
			fuzz_ioctl(w);
		} else if (op < 860) {
			drive(w);
		} else if (op < 920) {
			fuzz_map(w);
		} else if (op < 950) {
			if (pool_count(w) < POOL)
				pool_add(w, vdi_open(), K_EP), w->calls++;
			else
				pool_close_random(w);
		} else if (op < 970) {
			pool_close_random(w);
		} else if (op < 975) {
			int fd = pool_pick(w, K_FREE, NULL);

			if (fd >= 0 && pool_count(w) < POOL) {
				pool_add(w, dup(fd), K_DUP);
				w->calls++;
			}
		} else if (op < 999) {
			struct pollfd p[POOL];
			unsigned int i, n = 0;

			for (i = 0; i < POOL; i++)
				if (w->pool[i].kind != K_FREE) {
					p[n].fd = w->pool[i].fd;
					p[n++].events = POLLIN | POLLOUT | POLLPRI;
				}
			poll(p, n, vdi_rng_pct(&w->r, 90) ? 0 : 1);
			w->calls++;
		} else {
			fuzz_fork(w);
		}
		if (w->calls - last_pub > 512) {
			w->sh->calls[w->id] = w->calls;
			last_pub = w->calls;
		}
	}
	it.it_value.tv_usec = it.it_interval.tv_usec = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	worker_cleanup(w);
	w->sh->calls[w->id] = w->calls;
	w->sh->done[w->id] = 1;
	return 0;
}

FIXTURE(fz) {
	struct vdi_kmsg k;
};

FIXTURE_SETUP(fz)
{
	vdi_kmsg_open(&self->k);
	ASSERT_EQ(0, vdi_refcnt_settle(0, 3000) > 0);
}

FIXTURE_TEARDOWN(fz)
{
	vdi_kmsg_close(&self->k);
}

TEST_F_TIMEOUT(fz, random_calls, 1800)
{
	long total = vdi_knob("VDI_FUZZ_CALLS", 60000, 1000000);
	long nworkers = vdi_knob("VDI_FUZZ_WORKERS", 3, 6);
	long secs = vdi_knob("VDI_FUZZ_SECONDS", 20, 480);
	struct shared *sh = vdi_shared(sizeof(*sh));
	uint64_t seed = vdi_seed(), calls = 0, deep = 0, faults = 0;
	uint64_t bad_errno = 0, figures_ok = 0, enter_ok = 0;
	pid_t pids[16];
	int64_t t0 = vdi_now_ms();
	long i, r;

	ASSERT_NE(NULL, sh);
	if (nworkers < 1 || nworkers > 16)
		nworkers = 3;
	sh->seed = seed;
	printf("# vdi_fuzz: seed %llu (replay: VDI_FUZZ_SEED=%llu), %ld workers, "
	       "%ld calls, at most %ld s\n", (unsigned long long)seed,
	       (unsigned long long)seed, nworkers, total, secs);
	vdi_kmsg_mark("vdi_fuzz_test: random_calls seed %llu\n",
		      (unsigned long long)seed);
	fflush(stdout);
	for (i = 0; i < nworkers; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			struct worker *w = calloc(1, sizeof(*w));

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (!w)
				_exit(3);
			w->id = (int)i;
			w->sh = sh;
			vdi_rng_seed(&w->r, seed + (uint64_t)i * 0x1000193);
			for (int n = 0; n < NAMES; n++)	/* the last two: this worker's */
				snprintf(w->names[n], VDI_NAME_MAX, "fz-%llu-%d%s%ld",
					 (unsigned long long)(seed % 100000), n,
					 n >= NAMES - 2 ? "-w" : "", n >= NAMES - 2 ? i : 0L);
			w->end_calls = (uint64_t)((total + nworkers - 1) / nworkers);
			w->end_ms = t0 + secs * 1000;
			/* workers 1.. are other users: access checks, own quotas */
			if (i > 0 && vdi_become(3000 + i, 3000 + i, NULL, 0))
				_exit(4);
			_exit(worker_main(w));
		}
	}
	for (i = 0; i < nworkers; i++) {
		struct vdi_proc p = { .pid = pids[i] };

		r = vdi_reap(&p, (int)(secs + 120) * 1000);
		EXPECT_EQ(0, r) TH_LOG("worker %ld ended with %ld", i, r);
		calls += sh->calls[i];
		deep += sh->deep[i];
		faults += sh->sigbus[i];
		bad_errno += sh->bad_errno[i];
		figures_ok += sh->figures_ok[i];
		enter_ok += sh->enter_ok[i];
	}
	printf("# vdi_fuzz: %llu calls in %.1f s (%.0f/s), %llu commands reached "
	       "a client, seed %llu\n", (unsigned long long)calls,
	       (vdi_now_ms() - t0) / 1000.0,
	       calls * 1000.0 / (double)(vdi_now_ms() - t0 + 1),
	       (unsigned long long)deep, (unsigned long long)seed);
	{
		FILE *f = fopen("/tmp/vdi_fuzz_calls", "w");	/* for races' total */

		if (f) {
			fprintf(f, "%llu\n", (unsigned long long)calls);
			fclose(f);
		}
	}
	printf("# vdi_fuzz: figures' calls: %llu succeeded, ENTER: %llu "
	       "succeeded; %llu of them with an undocumented errno or outputs\n",
	       (unsigned long long)figures_ok, (unsigned long long)enter_ok,
	       (unsigned long long)bad_errno);
	EXPECT_EQ(0, faults);
	EXPECT_LT(0, deep);
	EXPECT_EQ(0, bad_errno);
	EXPECT_LT(0, figures_ok);
	EXPECT_LT(0, enter_ok);
	if (calls < (uint64_t)total)
		printf("# vdi_fuzz: only %llu of %ld calls within %ld s\n",
		       (unsigned long long)calls, total, secs);
	EXPECT_GE(calls, (uint64_t)total * 9 / 10);
	EXPECT_EQ(0, vdi_refcnt_settle(0, 5000));
	EXPECT_EQ(0, vdi_kmsg_scan(&self->k, NULL, NULL));
	munmap(sh, sizeof(*sh));
}

/* ------------------------------------------------------------------ */
/* races                                                              */

#define RACE_DEV	2
#define RACE_MAXCMD	4096

struct race {
	struct vdi_sess s;
	struct vdi_rng r;
	volatile int stop;
	int devnull;
	uint64_t next_cookie;		/* sender only */
	pthread_mutex_t lk;
	uint8_t *seen;			/* per cookie: completions delivered */
	uint64_t sent, delivered, dup, taken, completed, efault;
	uint64_t calls;			/* syscalls of every thread */
	uint8_t *none;			/* PROT_NONE page for the agent */
	uint64_t id;			/* the set's id (figures) */
	uint64_t snapshots, bad_figures;	/* the reader's */
};

#define RCALL(x, n) __atomic_add_fetch(&(x)->calls, (n), __ATOMIC_RELAXED)

static void *race_sender(void *p)
{
	struct race *x = p;
	struct vdi_rng r = { .s = x->r.s ^ 1 };

	while (!x->stop) {
		struct vdi_send s[8];
		unsigned int d = vdi_rng_below(&r, RACE_DEV), n = 1 + vdi_rng_below(&r, 8), i;
		uint64_t first;
		int ret;

		pthread_mutex_lock(&x->lk);
		first = x->next_cookie;
		if (first + n > RACE_MAXCMD) {
			pthread_mutex_unlock(&x->lk);
			break;
		}
		for (i = 0; i < n; i++)
			s[i] = (struct vdi_send){ .cookie = first + i,
				.code = vdi_rng_pct(&r, 90) ? 1 + vdi_rng_below(&r, 2) :
					VDI_VDC_CLEAR_ERROR,
				.size = 512 * vdi_rng_below(&r, 9),
				.buf_offset = 4096 * vdi_rng_below(&r, 12) };
		ret = vdi_send(x->s.sdev[d], s, n);
		RCALL(x, 1);
		if (ret > 0) {
			x->next_cookie += ret;
			x->sent += ret;
		}
		pthread_mutex_unlock(&x->lk);
		if (ret == -ECONNABORTED || ret == -ENOTTY || ret == -EBADF ||
		    ret == -EPROTO)
			break;
		if (ret == -ENOBUFS || ret == -EIO)
			sched_yield();
	}
	return NULL;
}

/* The client's completions for one device, ready to hand in. */
struct race_pending {
	struct vdi_done d[8];
	int n;
	unsigned int dev;
};

static void race_answer(struct vdi_rng *r, const struct vdi_command *c, int n,
			struct vdi_done *d)
{
	int i;

	for (i = 0; i < n; i++)
		d[i] = (struct vdi_done){ .tag = c[i].tag,
			.completion_code = vdi_rng_pct(r, 95) ? 0 : 112,
			.bytes_transferred = c[i].code <= 2 ?
				vdi_rng_below(r, c[i].size + 1) : 0 };
	/* in any order */
	if (n > 1 && vdi_rng_pct(r, 30)) {
		struct vdi_done t = d[0];

		d[0] = d[n - 1];
		d[n - 1] = t;
	}
}

/* COMPLETE what is pending, through the device fd or the set fd. */
static void race_complete(struct race *x, struct vdi_rng *r,
			  struct race_pending *pd)
{
	int ret;

	if (!pd->n)
		return;
	ret = vdi_complete(vdi_rng_pct(r, 70) ? x->s.cdev[pd->dev] : x->s.cset,
			   pd->d, pd->n);
	RCALL(x, 1);
	if (ret > 0)
		__atomic_add_fetch(&x->completed, ret, __ATOMIC_RELAXED);
	pd->n = 0;
}

/*
 * The client: GET_COMMANDS then COMPLETE, or ENTER handing in the last
 * completions of the device while it takes the next (spinning at times).
 */
static void *race_client(void *p)
{
	struct race *x = p;
	struct vdi_rng r = { .s = x->r.s ^ 2 };
	struct race_pending pd = { .n = 0 };

	while (!x->stop) {
		struct vdi_command c[8];
		unsigned int dv = vdi_rng_below(&r, RACE_DEV);
		int n;

		if (vdi_rng_pct(&r, 50)) {
			struct vdi_enter e;

			if (pd.n && pd.dev != dv)
				race_complete(x, &r, &pd);
			vdi_enter_init(&e, pd.d, pd.n, c, 8,
				       vdi_rng_pct(&r, 50) ? 0 : 2,
				       vdi_rng_pct(&r, 50) ? 0 : 20);
			n = vdi_enter(x->s.cdev[dv], &e);
			RCALL(x, 1);
			if (e.submitted != VDI_ENTER_UNWRITTEN && e.submitted)
				__atomic_add_fetch(&x->completed, e.submitted,
						   __ATOMIC_RELAXED);
			pd.n = 0;
		} else {
			race_complete(x, &r, &pd);
			n = vdi_get(x->s.cdev[dv], c, 8, vdi_rng_pct(&r, 50) ? 0 : 2);
			RCALL(x, 1);
		}
		if (n == -ECONNABORTED || n == -ENOTTY || n == -EBADF)
			break;
		if (n <= 0)
			continue;
		__atomic_add_fetch(&x->taken, n, __ATOMIC_RELAXED);
		race_answer(&r, c, n, pd.d);
		pd.n = n;
		pd.dev = dv;
		if (vdi_rng_pct(&r, 50))
			race_complete(x, &r, &pd);
	}
	/* Nothing stays held: the normal end needs every command back. */
	race_complete(x, &r, &pd);
	return NULL;
}

/*
 * The agent: WAIT_COMPLETIONS, or ENTER sending a few more commands (as
 * the sender does, its cookies under the same lock) while it reaps.
 */
static void *race_agent(void *p)
{
	struct race *x = p;
	struct vdi_rng r = { .s = x->r.s ^ 3 };
	struct vdi_completion cpl[32];

	for (;;) {
		int n, i;
		struct vdi_completion *out = cpl;
		uint32_t cnt = 32;

		if (vdi_rng_pct(&r, 5)) {	/* into a buffer that faults half way */
			out = (struct vdi_completion *)(x->none - 2 * sizeof(*out));
			cnt = 8;
		}
		if (vdi_rng_pct(&r, 50)) {
			n = vdi_wait(x->s.sset, out, cnt, 2);
		} else {
			struct vdi_send_to to[3];
			struct vdi_enter e;
			uint32_t k, ns = x->stop ? 0 : vdi_rng_below(&r, 4);

			pthread_mutex_lock(&x->lk);
			if (x->next_cookie + ns > RACE_MAXCMD)
				ns = 0;
			for (k = 0; k < ns; k++)
				to[k] = (struct vdi_send_to){
					.send = { .cookie = x->next_cookie + k,
						  .code = 1 + vdi_rng_below(&r, 2),
						  .size = 512 * vdi_rng_below(&r, 9),
						  .buf_offset = 4096 * vdi_rng_below(&r, 12) },
					.device_index = vdi_rng_below(&r, RACE_DEV),
				};
			vdi_enter_init(&e, to, ns, out, cnt, 2,
				       vdi_rng_pct(&r, 50) ? 0 : 20);
			n = vdi_enter(x->s.sset, &e);
			if (e.submitted != VDI_ENTER_UNWRITTEN) {
				x->next_cookie += e.submitted;
				x->sent += e.submitted;
			}
			pthread_mutex_unlock(&x->lk);
		}
		RCALL(x, 1);
		if (n == -EFAULT) {
			x->efault++;
			continue;
		}
		if (n == -ECONNABORTED || n == -ESHUTDOWN || n == -ENOTTY ||
		    n == -EBADF)
			break;
		if (n <= 0) {
			if (x->stop > 1)
				break;
			continue;
		}
		for (i = 0; i < n; i++) {
			uint64_t ck = out[i].cookie;

			if (ck >= RACE_MAXCMD) {
				x->dup++;
				continue;
			}
			if (x->seen[ck]++)
				x->dup++;
			x->delivered++;
		}
	}
	return NULL;
}

static void *race_mapper(void *p)
{
	struct race *x = p;
	struct vdi_rng r = { .s = x->r.s ^ 4 };

	while (!x->stop) {
		int fd = vdi_rng_pct(&r, 50) ? x->s.cset : x->s.sset;
		size_t len = 4096 * (1 + vdi_rng_below(&r, 16));
		volatile uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
					   MAP_SHARED, fd, 0);

		RCALL(x, 1);
		if (m == MAP_FAILED)
			continue;
		RCALL(x, 1 + (vdi_rng_below(&r, 100) < 30));	/* munmap, madvise */
		for (size_t o = 0; o < len; o += 4096)
			m[o] = m[o] + 1;
		if (vdi_rng_pct(&r, 30))
			madvise((void *)m, len, MADV_DONTNEED);
		munmap((void *)m, len);
	}
	return NULL;
}

static void *race_poller(void *p)
{
	struct race *x = p;

	while (!x->stop) {
		struct pollfd pf[2 + 2 * RACE_DEV];
		int n = 0, i;

		pf[n++].fd = x->s.cset;
		pf[n++].fd = x->s.sset;
		for (i = 0; i < RACE_DEV; i++) {
			pf[n++].fd = x->s.cdev[i];
			pf[n++].fd = x->s.sdev[i];
		}
		for (i = 0; i < n; i++)
			pf[i].events = POLLIN | POLLOUT;
		poll(pf, n, 1);
		RCALL(x, 1);
	}
	return NULL;
}

/* One snapshot's figures hold together (they are taken under the set's lock). */
static bool race_figures_ok(const struct race *x, const struct vdi_set_stats *st,
			    const struct vdi_dev_stats *ds, uint32_t n)
{
	uint32_t i, k;

	if (st->id != x->id || st->device_count != RACE_DEV || n != RACE_DEV)
		return false;
	for (i = 0; i < n; i++) {
		const struct vdi_dev_stats *d = &ds[i];
		uint64_t by_code = 0, by_completion = d->completions_other;

		for (k = 0; k <= VDI_VDC_MAX; k++)
			by_code += d->sent_by_code[k];
		for (k = 0; k < VDI_STATS_CODES; k++)
			by_completion += d->completions[k].count;
		if (d->index != i || by_code != d->sent ||
		    by_completion != d->completed ||
		    d->completed != d->reaped + d->done ||
		    d->taken > d->sent || d->completed > d->sent ||
		    d->queued + d->held + d->done > st->queue_depth ||
		    d->queued > d->queued_peak ||
		    d->queued + d->held + d->done > d->inflight_peak)
			return false;
	}
	return true;
}

static bool race_listed(const uint64_t *ids, uint32_t n, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* The id of @fd's set (SET_STATS, id 0), or 0. */
static uint64_t race_set_id(int fd)
{
	struct vdi_set_stats st;
	struct vdi_stats_req q = {
		.set = (uintptr_t)&st, .set_size = sizeof(st),
		.dev_size = sizeof(struct vdi_dev_stats),
	};

	return vdi_ioctl(fd, VDI_IOC_SET_STATS, &q) ? 0 : st.id;
}

/*
 * SET_STATS through every fd of the set (id 0) and by id through an
 * endpoint of its own, LIST_SETS, while everything else races: every call
 * works (ENOTTY once an fd was replaced by /dev/null), every snapshot holds
 * together.
 */
static void *race_reader(void *p)
{
	struct race *x = p;
	struct vdi_rng r = { .s = x->r.s ^ 5 };
	struct vdi_dev_stats ds[RACE_DEV];
	struct vdi_set_stats st;
	uint64_t ids[64];
	int ep = vdi_open();

	if (ep < 0) {
		x->bad_figures++;
		return NULL;
	}
	while (x->stop < 2) {
		int fds[6] = { x->s.cset, x->s.sset, x->s.cdev[0], x->s.cdev[1],
			       x->s.sdev[0], x->s.sdev[1] };
		unsigned int k = vdi_rng_below(&r, 10);
		struct vdi_list_sets l;
		struct vdi_stats_req q;
		int ret;

		if (k == 9) {
			memset(&l, 0, sizeof(l));
			l.ids = (uintptr_t)ids;
			l.count = 64;
			ret = vdi_ioctl(ep, VDI_IOC_LIST_SETS, &l);
			RCALL(x, 1);
			/* root: every set of its scope, this one too */
			if (ret || (l.written == l.total &&
				    !race_listed(ids, l.written, x->id)))
				x->bad_figures++;
			continue;
		}
		memset(&q, 0, sizeof(q));
		q.id = k < 6 ? 0 : x->id;
		q.set = (uintptr_t)&st;
		q.devs = (uintptr_t)ds;
		q.set_size = sizeof(st);
		q.dev_size = sizeof(ds[0]);
		q.dev_count = RACE_DEV;
		ret = vdi_ioctl(k < 6 ? fds[k] : ep, VDI_IOC_SET_STATS, &q);
		RCALL(x, 1);
		if (ret == -ENOTTY && k < 6)	/* the fd is /dev/null now */
			continue;
		x->snapshots++;
		if (ret || !race_figures_ok(x, &st, ds, q.dev_count)) {
			if (x->bad_figures++ < 3)
				printf("# races: SET_STATS (%s) returned %d; set %llu "
				       "state %u depth %u; dev 0: sent %llu taken %llu "
				       "completed %llu reaped %llu queued %u held %u "
				       "done %u\n", k < 6 ? "id 0" : "by id", ret,
				       (unsigned long long)st.id, st.state,
				       st.queue_depth, (unsigned long long)ds[0].sent,
				       (unsigned long long)ds[0].taken,
				       (unsigned long long)ds[0].completed,
				       (unsigned long long)ds[0].reaped,
				       ds[0].queued, ds[0].held, ds[0].done);
		}
	}
	close(ep);
	return NULL;
}

/* replace an fd under the other threads: they see /dev/null from now on */
static void race_kill_fd(struct race *x, int fd)
{
	if (fd >= 0)
		dup2(x->devnull, fd);
}

TEST_F_TIMEOUT(fz, races, 1800)
{
	long rounds = vdi_knob("VDI_FUZZ_ROUNDS", 30, 250);
	int64_t t0 = vdi_now_ms();
	uint64_t seed = vdi_seed() ^ 0x5eed;
	uint64_t sent = 0, delivered = 0, taken = 0, completed = 0, efault = 0;
	uint64_t snapshots = 0, bad_figures = 0;
	uint64_t calls = 0, before = (uint64_t)vdi_read_long("/tmp/vdi_fuzz_calls", 0);
	struct vdi_rng r;
	long round;
	uint8_t *guard;

	printf("# races: seed %llu, %ld rounds\n", (unsigned long long)seed, rounds);
	vdi_rng_seed(&r, seed);
	guard = vdi_pages(2, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, guard);
	mprotect(guard + 4096, 4096, PROT_NONE);

	for (round = 0; round < rounds; round++) {
		struct vdi_sess_opts o = { .ndev = RACE_DEV, .depth = 1 + vdi_rng_below(&r, 16),
			.area = 65536 };
		struct race *x = calloc(1, sizeof(*x));
		pthread_t th[7];
		unsigned int chaos = vdi_rng_below(&r, 9), i;
		bool agent_alive, normal_end = false;
		int nth = 0;

		ASSERT_NE(NULL, x);
		x->seen = calloc(RACE_MAXCMD, 1);
		ASSERT_NE(NULL, x->seen);
		x->r.s = vdi_rng_next(&r) | 1;
		x->none = guard + 4096;
		x->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		pthread_mutex_init(&x->lk, NULL);
		ASSERT_EQ(0, vdi_sess_setup(&x->s, &o));
		x->id = race_set_id(x->s.cset);
		ASSERT_NE(0, x->id);
		if (x->s.smap) {
			munmap(x->s.smap, x->s.area);
			munmap(x->s.cmap, x->s.area);
			x->s.smap = x->s.cmap = NULL;
		}
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL, race_agent, x));
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL, race_sender, x));
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL, race_client, x));
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL, race_mapper, x));
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL, race_poller, x));
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL, race_reader, x));

		vdi_sleep_ms(vdi_rng_below(&r, 40));
		agent_alive = true;
		switch (chaos) {
		case 0:
			vdi_abort(x->s.sset);
			break;
		case 1:
			vdi_abort(x->s.cset);
			break;
		case 2:		/* a client device fd goes away: abort */
			race_kill_fd(x, x->s.cdev[vdi_rng_below(&r, RACE_DEV)]);
			break;
		case 3:		/* a server device fd goes away: abort */
			race_kill_fd(x, x->s.sdev[vdi_rng_below(&r, RACE_DEV)]);
			break;
		case 4:		/* the primary's set fd goes away: abort */
			race_kill_fd(x, x->s.cset);
			break;
		case 5:		/* the server set fd: abort, and the agent's fd is gone */
			race_kill_fd(x, x->s.sset);
			agent_alive = false;
			break;
		case 6: {	/* an administrator: ABORT_SET by id */
			struct vdi_abort_set a = { .id = x->id };
			int ep = vdi_open();

			EXPECT_EQ(0, vdi_ioctl(ep, VDI_IOC_ABORT_SET, &a));
			close(ep);
			break;
		}
		default:	/* the normal end: the server closes every device */
			x->stop = 1;	/* sender, client loop, mapper stop first */
			for (i = 0; i < 4; i++)
				pthread_join(th[1 + i], NULL);
			for (i = 0; i < RACE_DEV; i++)
				vdi_close_device(x->s.sdev[i]);
			/* the client drains what is left */
			for (i = 0; i < RACE_DEV; i++) {
				struct vdi_command c[64];
				struct vdi_done d[64];
				int n, k;

				while ((n = vdi_get(x->s.cdev[i], c, 64, 0)) > 0) {
					for (k = 0; k < n; k++)
						d[k] = (struct vdi_done){ .tag = c[k].tag };
					vdi_complete(x->s.cdev[i], d, n);
					taken += n;
					completed += n;
				}
			}
			normal_end = true;
			break;
		}
		x->stop = 2;
		/* every thread returns within a second */
		for (i = normal_end ? 0 : 0; i < (unsigned int)nth; i++) {
			struct timespec ts;

			if (normal_end && i >= 1 && i <= 4)
				continue;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 3;
			EXPECT_EQ(0, pthread_timedjoin_np(th[i], NULL, &ts))
				TH_LOG("round %ld chaos %u: thread %u did not return", round, chaos, i);
		}
		if (agent_alive) {
			/* every command sent reached the agent exactly once */
			int left = 0;
			struct vdi_completion cpl[64];
			int n;

			while ((n = vdi_wait(x->s.sset, cpl, 64, 0)) > 0)
				for (int k = 0; k < n; k++)
					if (cpl[k].cookie < RACE_MAXCMD && !x->seen[cpl[k].cookie]++)
						x->delivered++;
					else
						x->dup++;
			for (uint64_t c = 0; c < x->next_cookie; c++)
				left += !x->seen[c];
			EXPECT_EQ(0, left) TH_LOG("round %ld chaos %u: %d of %llu commands "
				"never reached the agent", round, chaos, left,
				(unsigned long long)x->next_cookie);
			EXPECT_TRUE(n == -ECONNABORTED || n == -ESHUTDOWN)
				TH_LOG("round %ld chaos %u: agent's last wait %d", round, chaos, n);
		}
		EXPECT_EQ(0, x->dup) TH_LOG("round %ld: %llu duplicate completions",
					     round, (unsigned long long)x->dup);
		sent += x->sent;
		delivered += x->delivered;
		taken += x->taken;
		completed += x->completed;
		efault += x->efault;
		snapshots += x->snapshots;
		bad_figures += x->bad_figures;
		calls += x->calls + 12;		/* + the session's setup and teardown */
		vdi_sess_close(&x->s);
		close(x->devnull);
		free(x->seen);
		free(x);
		EXPECT_EQ(0, vdi_refcnt_settle(0, 3000)) TH_LOG("round %ld", round);
		if (vdi_kmsg_scan(&self->k, NULL, NULL)) {
			EXPECT_EQ(0, 1) TH_LOG("round %ld chaos %u: kernel reported problems", round, chaos);
			break;
		}
		if (_metadata->passed == 0)
			break;
	}
	printf("# races: %.1f s, %ld rounds, %llu calls: %llu commands sent, %llu taken, %llu "
	       "completed by the client, %llu delivered to the agent, %llu agent EFAULTs\n",
	       (vdi_now_ms() - t0) / 1000.0, round, (unsigned long long)calls,
	       (unsigned long long)sent,
	       (unsigned long long)taken, (unsigned long long)completed,
	       (unsigned long long)delivered, (unsigned long long)efault);
	printf("# races: %llu snapshots taken while racing, %llu failed or did "
	       "not hold together\n", (unsigned long long)snapshots,
	       (unsigned long long)bad_figures);
	EXPECT_EQ(0, bad_figures);
	EXPECT_LT(0, snapshots);
	printf("# vdi_fuzz: %llu calls fuzzed in this boot (random_calls + races)\n",
	       (unsigned long long)(before + calls));
	munmap(guard, 2 * 4096);
}

TEST_HARNESS_MAIN
