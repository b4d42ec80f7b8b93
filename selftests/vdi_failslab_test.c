// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures along a set's whole life.
 *
 * On a kernel with fault injection (check-debug's debug kernel: FAILSLAB,
 * FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS), every step of a set's life -
 * open, CREATE, OPEN_SERVER, BEGIN/END_CONFIG, GET_CONFIG, OPEN_SECONDARY,
 * OPEN_DEVICE, mmap, SEND, GET_COMMANDS, COMPLETE, WAIT_COMPLETIONS,
 * CLOSE_DEVICE, close - is run again and again with its N-th fallible
 * allocation failed, N = 1, 2, ... until the step no longer reaches N
 * (/proc/thread-self/fail-nth: only this thread, only that call; slab
 * allocations through failslab, page allocations - kmallocs over 8 KiB,
 * vmalloc's pages, the area's alloc_page - through fail_page_alloc, both
 * with ignore-gfp-wait=N and min-order=0).  Every failure must be ENOMEM
 * (or the step's documented code); the set must then work: half of the
 * time the step is retried and the set run to its normal end with a data
 * round trip, the other half it is aborted and closed.  Afterwards the
 * module's reference count is 0 again and the kernel log is clean; at the
 * end kmemleak is asked (debug kernel).
 *
 * The site of each injected failure is read from its report in the kernel
 * log (verbose=2: "FAULT_INJECTION: forcing a failure" + stack): the first
 * frame in vdi.ko names the module's allocation site.  The test prints, per
 * configuration, how many failures it injected, into how many distinct
 * sites of vdi.ko, and the sites themselves.
 *
 * Without fault injection (Debian's stock kernels) those tests skip; the
 * error paths reachable without it (E2BIG, EMFILE, EFAULT on the way out)
 * run everywhere.
 *
 * Knobs: VDI_STRESS=long (the 64-device configuration too),
 * VDI_FAILSLAB_MAX (injections per step, 0 = until the step runs out).
 */
#include "fuzz/vdi_stress.h"

#include <sys/resource.h>

#define FS_DIR	"/sys/kernel/debug/failslab/"
#define FPA_DIR	"/sys/kernel/debug/fail_page_alloc/"
#define MAXD	64

/* ------------------------------------------------------------------ */
/* fault injection                                                    */

static int fi_nth_fd = -1, fi_mif_fd = -1;

/* Configure failslab and fail_page_alloc for fail-nth; 0 or -errno. */
static int fi_setup(void)
{
	static const char *const cfg[][2] = {
		/* fail-nth: the N-th fallible allocation of this thread */
		{ FS_DIR "ignore-gfp-wait", "N" },
		{ FS_DIR "verbose", "2" },
		{ FPA_DIR "ignore-gfp-wait", "N" },
		{ FPA_DIR "ignore-gfp-highmem", "Y" },	/* user pages: never */
		{ FPA_DIR "min-order", "0" },
		{ FPA_DIR "verbose", "2" },
		/*
		 * "tail" mode: and every one after it, for the task that set
		 * make-it-fail (task-filter), nobody else; probability 0 keeps
		 * it off otherwise
		 */
		{ FS_DIR "task-filter", "Y" },
		{ FS_DIR "interval", "1" },
		{ FS_DIR "space", "0" },
		{ FS_DIR "times", "-1" },
		{ FS_DIR "probability", "100" },
		{ FPA_DIR "task-filter", "Y" },
		{ FPA_DIR "interval", "1" },
		{ FPA_DIR "space", "0" },
		{ FPA_DIR "times", "-1" },
		{ FPA_DIR "probability", "100" },
	};
	unsigned int i;
	int r;

	if (fi_nth_fd < 0)
		fi_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (fi_nth_fd < 0)
		return -errno;
	if (fi_mif_fd < 0)
		fi_mif_fd = open("/proc/thread-self/make-it-fail", O_RDWR | O_CLOEXEC);
	if (fi_mif_fd < 0)
		return -errno;
	if (pwrite(fi_mif_fd, "0", 1, 0) != 1)
		return -errno;
	for (i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++) {
		r = vdi_write_file(cfg[i][0], "%s", cfg[i][1]);
		if (r)
			return r;
	}
	return 0;
}

/*
 * Fail this thread's @n-th fallible allocation from now on; with @tail,
 * every one after it as well (memory is gone, not one allocation).
 */
static void fi_arm(unsigned int n, bool tail)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	if (tail && pwrite(fi_mif_fd, "1", 1, 0) != 1)
		abort();
	if (pwrite(fi_nth_fd, buf, len, 0) != len)
		abort();
}

/* Disarm; true if the armed failure was injected. */
static bool fi_fired(void)
{
	char buf[16] = "";
	ssize_t n = pread(fi_nth_fd, buf, sizeof(buf) - 1, 0);
	bool fired = n > 0 && strtoul(buf, NULL, 10) == 0;

	if (pwrite(fi_mif_fd, "0", 1, 0) != 1)
		abort();
	if (pwrite(fi_nth_fd, "0", 1, 0) != 1)
		abort();
	return fired;
}

/* ------------------------------------------------------------------ */
/* where the injected failure hit: parsed from its kernel log report  */

struct site_parse {
	bool in_report;
	bool have_frame;
	char site[96];		/* first frame in vdi.ko, func+off */
	char first[96];		/* first frame outside the allocators */
	char kind[24];		/* failslab / fail_page_alloc */
};

static bool is_allocator_frame(const char *f)
{
	static const char *const alloc[] = {
		"dump_stack", "should_fail", "fail_dump", "should_failslab",
		"__should_failslab", "should_fail_alloc_page", "kmem_cache_alloc",
		"__kmem_cache_alloc", "kmalloc", "__kmalloc", "kvmalloc",
		"__alloc_pages", "alloc_pages", "prepare_alloc_pages",
		"slab_pre_alloc_hook", "__vmalloc", "vmalloc", "alloc_page",
		"kmalloc_large", "kmalloc_order", "kzalloc", "kvcalloc",
		"__get_free_pages", "allocate_slab", "new_slab", "___slab_alloc",
		"__slab_alloc", "slab_alloc",
	};
	unsigned int i;

	for (i = 0; i < sizeof(alloc) / sizeof(alloc[0]); i++)
		if (!strncmp(f, alloc[i], strlen(alloc[i])))
			return true;
	return false;
}

static void site_line(void *ctx, const char *msg)
{
	struct site_parse *p = ctx;
	const char *f = msg;
	char frame[64];
	size_t n;

	if (strstr(msg, "FAULT_INJECTION: forcing a failure")) {
		const char *k = strstr(msg, "name ");	/* same record, after a \n */

		memset(p, 0, sizeof(*p));
		p->in_report = true;
		if (k)
			snprintf(p->kind, sizeof(p->kind), "%.*s",
				 (int)strcspn(k + 5, ","), k + 5);
		return;
	}
	if (!p->in_report)
		return;
	if (!strncmp(msg, "name ", 5)) {
		snprintf(p->kind, sizeof(p->kind), "%.*s",
			 (int)strcspn(msg + 5, ","), msg + 5);
		return;
	}
	if (strstr(msg, "</TASK>")) {
		p->in_report = false;
		return;
	}
	while (*f == ' ')
		f++;
	if (!strncmp(f, "? ", 2))		/* unreliable frame */
		return;
	if (!strstr(f, "+0x"))
		return;
	n = strcspn(f, "/ ");
	snprintf(frame, sizeof(frame), "%.*s", (int)n, f);
	if (!p->first[0] && !is_allocator_frame(frame))
		snprintf(p->first, sizeof(p->first), "%s", frame);
	if (!p->site[0] && strstr(f, "[vdi]"))
		snprintf(p->site, sizeof(p->site), "%s (%s)", frame,
			 p->kind[0] ? p->kind : "?");
	p->have_frame = true;
}

/* ------------------------------------------------------------------ */
/* the life of a set, step by step                                    */

struct cfg {
	const char *label;
	unsigned int ndev;	/* the last one is the secondary client's */
	uint32_t depth;
	uint64_t area;
	uint32_t maxxfer;
	uint64_t steps;		/* steps failed into (bit per enum step), 0: all */
	uint64_t tail_steps;	/* ... in "tail" mode too */
};

struct scene {
	const struct cfg *c;
	char name[VDI_NAME_MAX];
	char dn[MAXD][VDI_NAME_MAX];
	int cset, sset, sec;
	int cdev[MAXD], sdev[MAXD];
	uint8_t *smap, *cmap, *secmap;
	size_t area;
	struct vdi_command cmds[MAXD][4];
	int ncmds[MAXD];
	struct vdi_completion cpl[4 * MAXD];
	unsigned int ncpl;
	unsigned int nsent;
};

enum step {
	ST_OPEN_C, ST_CREATE, ST_OPEN_S, ST_OPEN_SERVER, ST_GETCFG_S,
	ST_BEGIN, ST_END, ST_GETCFG_C, ST_OPEN_SEC, ST_OPEN_SECONDARY,
	ST_DEV_C, ST_DEV_SEC, ST_DEV_S, ST_MMAP_S, ST_MMAP_C, ST_MMAP_SEC,
	ST_SEND, ST_GET, ST_COMPLETE, ST_WAIT, ST_CLOSE_DEV, ST_DRAINED,
	ST_DONE, ST_CLOSE, ST_COUNT
};

static const char *const step_names[ST_COUNT] = {
	"open(client)", "CREATE", "open(server)", "OPEN_SERVER",
	"GET_CONFIG(server)", "BEGIN_CONFIG", "END_CONFIG",
	"GET_CONFIG(client)", "open(secondary)", "OPEN_SECONDARY",
	"OPEN_DEVICE(client)", "OPEN_DEVICE(secondary)",
	"OPEN_DEVICE(server)", "mmap(server)", "mmap(client)",
	"mmap(secondary)", "SEND", "GET_COMMANDS", "COMPLETE",
	"WAIT_COMPLETIONS", "CLOSE_DEVICE", "GET_COMMANDS(drained)",
	"WAIT_COMPLETIONS(end)", "close",
};

/* counters of one configuration */
struct tally {
	unsigned int injected;		/* failures injected */
	unsigned int failed_calls;	/* ... that made the call fail */
	unsigned int absorbed;		/* ... the kernel worked around */
	unsigned int silent;		/* ... with no report (__GFP_NOWARN) */
	unsigned int tail_injected;	/* runs in "tail" mode */
	unsigned int silent_fail[ST_COUNT];	/* ... that failed the call */
	unsigned int reached[ST_COUNT];	/* fallible allocations per step */
	unsigned int nsites;
	char sites[64][96];
	unsigned int site_hits[64];
	unsigned int nkernel;		/* distinct kernel sites on our paths */
	char ksites[64][96];
	unsigned int bad;		/* check failures */
};

static struct scene S;			/* static: pre-faulted, never moves */
static struct vdi_kmsg K;

#define STEP_FAIL(fmt, ...) do { \
	printf("# step %s: " fmt "\n", step_names[step], ##__VA_ARGS__); \
	return -EBADMSG; \
} while (0)

static void scene_init(const struct cfg *c)
{
	unsigned int i;

	memset(&S, 0, sizeof(S));
	S.c = c;
	S.cset = S.sset = S.sec = -1;
	for (i = 0; i < MAXD; i++)
		S.cdev[i] = S.sdev[i] = -1;
	vdi_make_name(S.name, "fs");
	for (i = 0; i < c->ndev; i++)
		vdi_dev_name(S.dn[i], S.name, i);
}

/* munmap (which may fail: ENOMEM splitting the maple tree), then close */
static int scene_close(void)
{
	uint8_t **maps[] = { &S.smap, &S.cmap, &S.secmap };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		if (*maps[i] && munmap(*maps[i], S.area))
			return -errno;
		*maps[i] = NULL;
	}
	for (i = 0; i < MAXD; i++) {
		vdi_close(&S.cdev[i]);
		vdi_close(&S.sdev[i]);
	}
	vdi_close(&S.sec);
	vdi_close(&S.sset);
	vdi_close(&S.cset);
	return 0;
}

/* cleanup, no failure injected: munmap may still fail once, not thrice */
static void scene_close_all(void)
{
	int i;

	for (i = 0; i < 3 && scene_close(); i++)
		;
}

/* the fd a client device index is driven through */
static int client_dev(unsigned int i)
{
	return S.cdev[i];
}

static uint8_t *client_map(unsigned int i)
{
	return i == S.c->ndev - 1 ? S.secmap : S.cmap;
}

/* One step: its syscalls, stopping at the first that fails (-errno). */
static int run_step(enum step step)
{
	const struct cfg *c = S.c;
	struct vdi_create cr;
	struct vdi_send snd[2];
	unsigned int i, n;
	uint32_t idx;
	int r, fd;
	void *p;

	switch (step) {
	case ST_OPEN_C:
		fd = open(VDI_PATH, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		S.cset = fd;
		return 0;
	case ST_CREATE:
		vdi_create_init(&cr, S.name, c->ndev, 0);
		return vdi_ioctl(S.cset, VDI_IOC_CREATE, &cr);
	case ST_OPEN_S:
		fd = open(VDI_PATH, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		S.sset = fd;
		return 0;
	case ST_OPEN_SERVER:
		return vdi_open_on(S.sset, VDI_IOC_OPEN_SERVER, S.name);
	case ST_GETCFG_S:
		return vdi_get_config(S.sset, 0, NULL);
	case ST_BEGIN:
		return vdi_begin_config(S.sset, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
					0, 512, c->maxxfer, c->depth);
	case ST_END:
		return vdi_end_config(S.sset, c->area);
	case ST_GETCFG_C:
		return vdi_get_config(S.cset, 0, NULL);
	case ST_OPEN_SEC:
		fd = open(VDI_PATH, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		S.sec = fd;
		return 0;
	case ST_OPEN_SECONDARY:
		return vdi_open_on(S.sec, VDI_IOC_OPEN_SECONDARY, S.name);
	case ST_DEV_C:
		for (i = 0; i + 1 < c->ndev; i++) {
			if (S.cdev[i] >= 0)
				continue;
			r = vdi_open_device(S.cset, S.dn[i], O_CLOEXEC, &idx);
			if (r < 0)
				return r;
			S.cdev[i] = r;
			if (idx != i)
				STEP_FAIL("device %u got index %u", i, idx);
		}
		return 0;
	case ST_DEV_SEC:
		i = c->ndev - 1;
		if (S.cdev[i] >= 0)
			return 0;
		r = vdi_open_device(S.sec, S.dn[i], O_CLOEXEC, &idx);
		if (r < 0)
			return r;
		S.cdev[i] = r;
		return 0;
	case ST_DEV_S:
		for (i = 0; i < c->ndev; i++) {
			if (S.sdev[i] >= 0)
				continue;
			r = vdi_open_device(S.sset, S.dn[i], O_CLOEXEC, &idx);
			if (r < 0)
				return r;
			S.sdev[i] = r;
		}
		return 0;
	case ST_MMAP_S:
	case ST_MMAP_C:
	case ST_MMAP_SEC:
		S.area = c->area;
		fd = step == ST_MMAP_S ? S.sset : step == ST_MMAP_C ? S.cset : S.sec;
		p = mmap(NULL, S.area, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return -errno;
		if (step == ST_MMAP_S)
			S.smap = p;
		else if (step == ST_MMAP_C)
			S.cmap = p;
		else
			S.secmap = p;
		return 0;
	case ST_SEND:
		/* per device: a Write of 512 bytes of pattern, then a Flush */
		for (i = S.nsent; i < c->ndev; i++, S.nsent++) {
			/* 512 bytes per device: 64 devices fit in 32 KiB */
			uint64_t off = (uint64_t)i * 512;

			vdi_fill(S.smap + off, 512, i, 0x5a);
			snd[0] = (struct vdi_send){ .cookie = 1000 + i,
				.code = VDI_VDC_WRITE, .size = 512, .position = i,
				.buf_offset = off };
			snd[1] = (struct vdi_send){ .cookie = 2000 + i,
				.code = T_VDC_FLUSH, .buf_offset = VDI_NO_BUFFER };
			r = vdi_send(S.sdev[i], snd, 2);
			if (r < 0)
				return r;
			if (r != 2)
				STEP_FAIL("SEND dev %u: %d of 2", i, r);
		}
		return 0;
	case ST_GET:
		for (i = 0; i < c->ndev; i++) {
			if (S.ncmds[i] == 2)
				continue;
			r = vdi_get(client_dev(i), S.cmds[i], 4, 0);
			if (r < 0)
				return r;
			S.ncmds[i] = r;
			if (r != 2)
				STEP_FAIL("GET_COMMANDS dev %u: %d of 2", i, r);
			if (S.cmds[i][0].code != VDI_VDC_WRITE ||
			    !vdi_check(client_map(i) + S.cmds[i][0].buf_offset, 512, i, 0x5a))
				STEP_FAIL("dev %u: wrong command or payload", i);
		}
		return 0;
	case ST_COMPLETE:
		for (i = 0; i < c->ndev; i++) {
			struct vdi_done d[2];

			if (!S.ncmds[i])
				continue;
			d[0] = (struct vdi_done){ .tag = S.cmds[i][0].tag,
				.bytes_transferred = 512, .position = i };
			d[1] = (struct vdi_done){ .tag = S.cmds[i][1].tag };
			/* the primary's devices through the set fd, one by its device fd */
			fd = (i % 2 || i == c->ndev - 1) ? client_dev(i) : S.cset;
			r = vdi_complete(fd, d, 2);
			if (r < 0)
				return r;
			if (r != 2)
				STEP_FAIL("COMPLETE dev %u: %d of 2", i, r);
			S.ncmds[i] = 0;
		}
		return 0;
	case ST_WAIT:
		n = 2 * c->ndev;
		while (S.ncpl < n) {
			r = vdi_wait(S.sset, S.cpl + S.ncpl, n - S.ncpl, 0);
			if (r < 0)
				return r;
			S.ncpl += r;
		}
		for (i = 0; i < n; i++) {
			const struct vdi_completion *x = &S.cpl[i];

			if (x->completion_code ||
			    (x->code == VDI_VDC_WRITE && x->bytes_transferred != 512))
				STEP_FAIL("completion %u: code %u bytes %u", i,
					  x->completion_code, x->bytes_transferred);
		}
		return 0;
	case ST_CLOSE_DEV:
		for (i = 0; i < c->ndev; i++) {
			r = vdi_close_device(S.sdev[i]);
			if (r < 0 && r != -ESHUTDOWN)
				return r;
		}
		return 0;
	case ST_DRAINED:
		for (i = 0; i < c->ndev; i++) {
			r = vdi_get(client_dev(i), S.cmds[i], 1, 0);
			if (r != -ESHUTDOWN)
				STEP_FAIL("dev %u: GET_COMMANDS %d, want ESHUTDOWN", i, r);
		}
		return 0;
	case ST_DONE:
		r = vdi_wait(S.sset, S.cpl, 1, 0);
		if (r != -ESHUTDOWN)
			STEP_FAIL("WAIT_COMPLETIONS %d, want ESHUTDOWN", r);
		return 0;
	case ST_CLOSE:
		return scene_close();
	default:
		return -EINVAL;
	}
}

/* The errnos a step may fail with when an allocation fails. */
static bool allowed_errno(enum step step, int err)
{
	switch (step) {
	case ST_OPEN_C:
	case ST_OPEN_S:
	case ST_OPEN_SEC:
		return err == -ENOMEM || err == -ENFILE;
	case ST_DEV_C:
	case ST_DEV_SEC:
	case ST_DEV_S:
		return err == -ENOMEM || err == -EMFILE;
	default:
		return err == -ENOMEM;
	}
}

static void tally_site(struct tally *t, const struct site_parse *p)
{
	unsigned int i;

	if (!p->have_frame) {
		t->silent++;
		return;
	}
	if (p->site[0]) {
		for (i = 0; i < t->nsites; i++)
			if (!strcmp(t->sites[i], p->site))
				break;
		if (i == t->nsites && t->nsites < 64)
			snprintf(t->sites[t->nsites++], 96, "%s", p->site);
		if (i < 64)
			t->site_hits[i]++;
	}
	if (p->first[0]) {
		for (i = 0; i < t->nkernel; i++)
			if (!strcmp(t->ksites[i], p->first))
				break;
		if (i == t->nkernel && t->nkernel < 64)
			snprintf(t->ksites[t->nkernel++], 96, "%s", p->first);
	}
}

/*
 * One run: steps before @target normally, @target with its @nth allocation
 * failed, then (retry) the rest of the life to the normal end, or (!retry)
 * abort and close.  Returns 1 if the failure was injected, 0 if @target ran
 * out of allocations before @nth, -1 on a check failure.  *site gets the
 * failure's site.
 */
static int one_run(enum step target, unsigned int nth, bool retry, bool tail,
		   struct site_parse *site, struct tally *t)
{
	enum step st;
	bool fired;
	int r = 0, ret = 1;

	for (st = 0; st < target; st++) {
		r = run_step(st);
		if (r) {
			printf("# %s: step %s failed before the injection: %d (%s)\n",
			       S.c->label, step_names[st], r, strerror(-r));
			return -1;
		}
	}
	vdi_kmsg_scan(&K, NULL, NULL);
	memset(site, 0, sizeof(*site));
	fi_arm(nth, tail);
	r = run_step(target);
	fired = fi_fired();
	if (vdi_kmsg_scan(&K, site_line, site)) {
		printf("# %s: kernel reported problems after failing allocation %u of %s\n",
		       S.c->label, nth, step_names[target]);
		ret = -1;
	}
	if (!fired) {
		if (r) {
			printf("# %s: %s failed (%d %s) with no failure injected\n",
			       S.c->label, step_names[target], r, strerror(-r));
			ret = -1;
		}
		ret = ret < 0 ? -1 : 0;
	} else {
		t->injected++;
		tally_site(t, site);
		if (r) {
			t->failed_calls++;
			if (!site->have_frame)
				t->silent_fail[target]++;
			if (!allowed_errno(target, r)) {
				printf("# %s: allocation %u of %s (%s %s): %d (%s), want ENOMEM\n",
				       S.c->label, nth, step_names[target],
				       site->kind, site->site[0] ? site->site : site->first,
				       r, strerror(-r));
				ret = -1;
			}
		} else {
			t->absorbed++;
		}
	}

	if (r && !retry && target != ST_CLOSE) {
		/* abort: any set fd will do; then everything must go */
		int fd = S.sset >= 0 ? S.sset : S.cset;

		if (fd >= 0 && (r = vdi_abort(fd)) && r != -EPROTO) {
			printf("# %s: SIGNAL_ABORT after the failure: %d\n", S.c->label, r);
			ret = -1;
		}
		scene_close_all();
	} else {
		/* (the failed step again, then) the rest of the life */
		for (st = r ? target : target + 1; st < ST_COUNT; st++) {
			int r2 = run_step(st);

			if (r2) {
				printf("# %s: after failing allocation %u of %s: step %s: %d (%s)\n",
				       S.c->label, nth, step_names[target],
				       step_names[st], r2, strerror(-r2));
				ret = -1;
				break;
			}
		}
		scene_close_all();
	}
	if (vdi_refcnt_settle(0, 2000) > 0) {
		printf("# %s: module reference count %ld after failing allocation %u of %s\n",
		       S.c->label, vdi_module_refcnt(), nth, step_names[target]);
		ret = -1;
	}
	if (vdi_kmsg_scan(&K, NULL, NULL))
		ret = -1;
	return ret;
}

/*
 * Every allocation of every step, failed in turn.  Long runs of failures at
 * one site (the area's pages, per-device allocations) are sampled with a
 * growing stride, backing up whenever a stride lands on another site.
 */
static int sweep(const struct cfg *c, struct tally *t)
{
	long max = vdi_knob("VDI_FAILSLAB_MAX", 0, 0);
	int bad = 0, pass;
	enum step st;

	for (pass = 0; pass < 2; pass++) {
		bool tail = pass == 1;

		for (st = 0; st < ST_COUNT; st++) {
			unsigned int n = 1, step = 1, same = 0, last_ok = 0, count = 0;
			char prev[128] = "";
			struct site_parse site;

			if (c->steps && !(c->steps & (1ULL << st)))
				continue;
			if (tail && !(c->tail_steps & (1ULL << st)))
				continue;
			for (;;) {
				const char *s;
				int r;

				scene_init(c);
				r = one_run(st, n, (n + st) % 2 == 0, tail, &site, t);
				if (r < 0 && ++bad > 10)
					return bad;
				if (r > 0 && tail)
					t->tail_injected++;
				if (max && ++count >= max)
					break;
				if (r == 0) {		/* ran out of allocations */
					if (step == 1)
						break;
					n = last_ok + 1;
					step = 1;
					same = 0;
					continue;
				}
				s = site.site[0] ? site.site : site.first;
				if (n > 1 && strcmp(s, prev) && step > 1) {
					n = last_ok + 1;	/* jumped over a boundary */
					step = 1;
					same = 0;
					prev[0] = 0;
					continue;
				}
				same = strcmp(s, prev) ? 0 : same + 1;
				snprintf(prev, sizeof(prev), "%s", s);
				last_ok = n;
				if (same >= 3 && step < 64)
					step *= 2;
				n += step;
			}
			if (!tail)
				t->reached[st] = last_ok;
		}
	}
	return bad;
}

static void report(const struct cfg *c, const struct tally *t)
{
	unsigned int i;

	printf("# %s: %u failures injected (%u of them \"tail\": that allocation and "
	       "every later one), %u failed the call, %u absorbed by the kernel, "
	       "%u without report; %u distinct allocation sites in vdi.ko, %u "
	       "distinct first callers\n",
	       c->label, t->injected, t->tail_injected, t->failed_calls,
	       t->absorbed, t->silent, t->nsites, t->nkernel);
	for (i = 0; i < ST_COUNT; i++)
		if (t->reached[i] || t->silent_fail[i])
			printf("#   %-24s %4u fallible allocations reached, %u call "
			       "failures without report (__GFP_NOWARN: kvmalloc's "
			       "kmalloc, the area's alloc_page)\n", step_names[i],
			       t->reached[i], t->silent_fail[i]);
	for (i = 0; i < t->nsites; i++)
		printf("#   vdi.ko site %-40s failed %u times\n", t->sites[i],
		       t->site_hits[i]);
	for (i = 0; i < t->nkernel; i++)
		printf("#   caller %s\n", t->ksites[i]);
}

static const struct cfg cfg_small = {
	.label = "small", .ndev = 3, .depth = 4, .area = 64 << 10,
	.maxxfer = 65536, .tail_steps = 1ULL << ST_CREATE | 1ULL << ST_END |
	1ULL << ST_DEV_C | 1ULL << ST_MMAP_C,
};
/*
 * 64 devices: the set (~15 KiB) is a kmalloc over 8 KiB (page allocator);
 * depth 256: each device's slots (20 KiB) are a kvcalloc (kmalloc, then
 * vmalloc).  Only CREATE and END_CONFIG: the other steps do 64 times what
 * "small" does.
 */
static const struct cfg cfg_wide = {
	.label = "wide", .ndev = 64, .depth = 256, .area = 64 << 10,
	.maxxfer = 65536, .steps = 1ULL << ST_CREATE | 1ULL << ST_END,
	.tail_steps = 1ULL << ST_CREATE | 1ULL << ST_END,
};
/* 8 MiB: 2048 area pages, their array (16 KiB) a kvcalloc */
static const struct cfg cfg_area = {
	.label = "area", .ndev = 1, .depth = 8, .area = 8 << 20,
	.maxxfer = 65536, .steps = 1ULL << ST_END, .tail_steps = 1ULL << ST_END,
};

static void run_sweep(struct __test_metadata *_metadata, const struct cfg *c)
{
	struct tally *t;
	int r, bad;

	r = fi_setup();
	if (r)
		SKIP(return, "no fault injection here (%s): needs FAILSLAB, "
		     "FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS", strerror(-r));
	ASSERT_EQ(0, vdi_kmsg_open(&K));
	t = calloc(1, sizeof(*t));
	ASSERT_NE(NULL, t);
	ASSERT_EQ(0, vdi_refcnt_settle(0, 2000) > 0);
	vdi_kmsg_mark("vdi_failslab_test: %s: begin\n", c->label);
	bad = sweep(c, t);
	vdi_kmsg_mark("vdi_failslab_test: %s: end\n", c->label);
	report(c, t);
	EXPECT_EQ(0, bad);
	EXPECT_LT(0, t->failed_calls);
	EXPECT_LT(0, t->nsites);
	vdi_kmsg_close(&K);
	free(t);
}

/* a fixture only for TEST_F_TIMEOUT: the long sweeps outlast 30 s */
FIXTURE(fs) {
	int unused;
};
FIXTURE_SETUP(fs) {}
FIXTURE_TEARDOWN(fs)
{
	/* off for everyone (the task filter kept it to us anyway) */
	vdi_write_file(FS_DIR "probability", "0");
	vdi_write_file(FPA_DIR "probability", "0");
}

TEST_F_TIMEOUT(fs, small_set_every_allocation_fails_in_turn, 1200)
{
	run_sweep(_metadata, &cfg_small);
}

TEST_F_TIMEOUT(fs, wide_set_every_allocation_fails_in_turn, 1200)
{
	if (!vdi_stress_long())
		SKIP(return, "long version only (VDI_STRESS=long)");
	run_sweep(_metadata, &cfg_wide);
}

TEST_F_TIMEOUT(fs, large_area_every_allocation_fails_in_turn, 1200)
{
	if (!vdi_stress_long())
		SKIP(return, "long version only (VDI_STRESS=long)");
	run_sweep(_metadata, &cfg_area);
}

/* ------------------------------------------------------------------ */
/* a failed END_CONFIG against the set's other users                  */

/* Arm @n and run END_CONFIG; how many fallible allocations it consumed. */
static unsigned int fi_count_end_config(int sset, uint64_t area, int *ret)
{
	char buf[16] = "";
	unsigned int left;

	fi_arm(1000000, false);
	*ret = vdi_end_config(sset, area);
	if (pread(fi_nth_fd, buf, sizeof(buf) - 1, 0) <= 0)
		abort();
	left = strtoul(buf, NULL, 10);
	fi_fired();
	return left ? 1000000 - left : 0;
}

/* 32 slots (2.5 KiB): a plain kmalloc, no vmalloc fallback to absorb it */
#define ECR_DEPTH 32

struct ecr {
	int cset;
	volatile int go, stop;
	unsigned int delay_us;
	int mode;			/* 0: SIGNAL_ABORT, 1: COMPLETE, 2: close */
	unsigned int seed;
};

static void *ecr_other(void *arg)
{
	struct ecr *e = arg;
	int64_t t;

	while (!e->go)
		;
	t = vdi_now_us() + e->delay_us;
	while (vdi_now_us() < t)
		;
	if (e->mode == 0) {
		vdi_abort(e->cset);
		return NULL;
	}
	if (e->mode == 2) {
		close(e->cset);		/* the primary goes: abort */
		e->cset = -1;
		return NULL;
	}
	while (!e->stop) {
		/* tags naming slots END_CONFIG is allocating (or freeing) */
		struct vdi_done d[16];
		unsigned int i;

		for (i = 0; i < 16; i++) {
			e->seed = e->seed * 1103515245 + 12345;
			d[i] = (struct vdi_done){ .tag = ((e->seed >> 8) % 64) << 16 |
						  ((e->seed >> 16) % ECR_DEPTH) };
		}
		vdi_complete(e->cset, d, 16);
	}
	return NULL;
}

/*
 * END_CONFIG fails (ENOMEM) in the slots of its last devices, with the
 * slots of the first ones already allocated, while another thread aborts
 * the set, closes the primary's fd, or completes tags naming those slots:
 * the slots freed on the failure path must never be seen by the abort or
 * the completion (KASAN: use-after-free).
 */
TEST_F_TIMEOUT(fs, end_config_enomem_races_abort_and_complete, 1200)
{
	long attempts = vdi_knob("VDI_FAILSLAB_RACES", 40, 400);
	unsigned int total = 0, dur_us = 0, nfail = 0, nabort = 0;
	char name[VDI_NAME_MAX];
	struct vdi_create cr;
	int64_t t0;
	long a;
	int r, c, sv;

	r = fi_setup();
	if (r)
		SKIP(return, "no fault injection here (%s)", strerror(-r));
	ASSERT_EQ(0, vdi_kmsg_open(&K));

	/* calibration: how many fallible allocations a full END_CONFIG has */
	vdi_make_name(name, "ecr");
	vdi_create_init(&cr, name, 64, 0);
	c = vdi_create_cfg(&cr);
	ASSERT_LE(0, c);
	sv = vdi_open_server(name);
	ASSERT_LE(0, sv);
	ASSERT_EQ(0, vdi_begin_config(sv, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, ECR_DEPTH));
	t0 = vdi_now_us();
	total = fi_count_end_config(sv, 0, &r);
	dur_us = (unsigned int)(vdi_now_us() - t0);
	ASSERT_EQ(0, r);
	ASSERT_LT(64, total);
	close(sv);
	close(c);
	printf("# END_CONFIG of 64 devices x %d slots: %u fallible allocations, %u us\n", ECR_DEPTH,
	       total, dur_us);

	for (a = 0; a < attempts; a++) {
		struct ecr e = { .mode = (int)(a % 3), .seed = (unsigned int)a };
		pthread_t th;
		unsigned int n;

		vdi_make_name(name, "ecr");
		vdi_create_init(&cr, name, 64, 0);
		e.cset = vdi_create_cfg(&cr);
		ASSERT_LE(0, e.cset);
		sv = vdi_open_server(name);
		ASSERT_LE(0, sv);
		ASSERT_EQ(0, vdi_begin_config(sv, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, ECR_DEPTH));
		/* fail late: most devices' slots exist when it fails */
		n = total - (unsigned int)(a * 7 % 24);
		e.delay_us = (unsigned int)((a * 7919) % (dur_us + 1));
		ASSERT_EQ(0, pthread_create(&th, NULL, ecr_other, &e));
		e.go = 1;
		fi_arm(n, a % 2);
		r = vdi_end_config(sv, 0);
		if (fi_fired() && r == -ENOMEM)
			nfail++;
		if (r == -ECONNABORTED)
			nabort++;
		e.stop = 1;
		pthread_join(th, NULL);
		EXPECT_TRUE(r == 0 || r == -ENOMEM || r == -ECONNABORTED)
			TH_LOG("attempt %ld: END_CONFIG %d", a, r);
		close(sv);
		if (e.cset >= 0)
			close(e.cset);
		if (vdi_kmsg_scan(&K, NULL, NULL)) {
			EXPECT_EQ(0, 1) TH_LOG("attempt %ld (mode %d, fail at %u, delay %u us): "
					       "kernel reported problems", a, e.mode, n, e.delay_us);
			break;
		}
	}
	printf("# %ld attempts: END_CONFIG failed with ENOMEM %u times, found the set "
	       "aborted %u times\n", a, nfail, nabort);
	EXPECT_EQ(0, vdi_refcnt_settle(0, 3000));
	vdi_kmsg_close(&K);
}

/* ------------------------------------------------------------------ */
/* error paths reachable without fault injection                      */

/* END_CONFIG over max_area_mb: E2BIG, still configuring, retry works. */
TEST(end_config_e2big_then_retry)
{
	struct vdi_version v;
	char name[VDI_NAME_MAX];
	int c, sv;

	vdi_make_name(name, "e2big");
	c = vdi_create_set(name, 1, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, vdi_version(c, &v));
	sv = vdi_open_server(name);
	ASSERT_LE(0, sv);
	ASSERT_EQ(0, vdi_begin_config(sv, VDI_VDF_WRITE_MEDIA, 0, 512, 65536, 0));
	EXPECT_EQ(-E2BIG, vdi_end_config(sv, v.max_area_size + 1));
	EXPECT_EQ(-E2BIG, vdi_end_config(sv, ~0ULL));
	EXPECT_EQ(-ETIMEDOUT, vdi_get_config(c, 0, NULL));
	EXPECT_EQ(0, vdi_end_config(sv, 8192));
	EXPECT_EQ(0, vdi_get_config(c, 0, NULL));
	close(sv);
	close(c);
	EXPECT_EQ(0, vdi_refcnt_settle(0, 2000) > 0);
}

/* OPEN_DEVICE out of fds (RLIMIT_NOFILE): EMFILE, and the device is free. */
TEST(open_device_emfile_unbinds)
{
	struct vdi_sess_opts o = { .ndev = 2, .no_devices = true };
	struct rlimit old, lim;
	struct vdi_sess s;
	char dn[VDI_NAME_MAX];
	int fill[64], nfill = 0, r, i;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
	/* use up every fd below a small limit */
	lim = old;
	lim.rlim_cur = 40;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &lim));
	while (nfill < 64) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			break;
		fill[nfill++] = fd;
	}
	vdi_dev_name(dn, s.name, 1);
	EXPECT_EQ(-EMFILE, vdi_open_device(s.cset, dn, 0, NULL));
	EXPECT_EQ(-EMFILE, vdi_open_device(s.sset, s.name, 0, NULL));
	for (i = 0; i < nfill; i++)
		close(fill[i]);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
	/* nothing stayed half-open: both succeed now, and only once */
	r = vdi_open_device(s.cset, dn, 0, NULL);
	EXPECT_LE(0, r);
	s.cdev[1] = r;
	r = vdi_open_device(s.sset, s.name, 0, NULL);
	EXPECT_LE(0, r);
	s.sdev[0] = r;
	EXPECT_EQ(-EBUSY, vdi_open_device(s.cset, dn, 0, NULL));
	vdi_sess_close(&s);
	EXPECT_EQ(0, vdi_refcnt_settle(0, 2000) > 0);
}

/*
 * OPEN_DEVICE whose index cannot be written back (the struct in a read-only
 * page): EFAULT, no fd, the device free again.
 */
TEST(open_device_efault_on_the_way_out_unbinds)
{
	struct vdi_sess_opts o = { .ndev = 1, .no_devices = true };
	struct vdi_open_device *ro;
	struct vdi_sess s;
	int r, fds_before, fds_after;

	ASSERT_EQ(0, vdi_sess_setup(&s, &o));
	ro = vdi_pages(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, ro);
	memset(ro, 0, sizeof(*ro));
	snprintf(ro->name, sizeof(ro->name), "%s", s.name);
	ASSERT_EQ(0, mprotect(ro, VDI_PAGE, PROT_READ));
	fds_before = dup(0);
	close(fds_before);
	EXPECT_EQ(-EFAULT, vdi_ioctl(s.cset, VDI_IOC_OPEN_DEVICE, ro));
	EXPECT_EQ(-EFAULT, vdi_ioctl(s.sset, VDI_IOC_OPEN_DEVICE, ro));
	fds_after = dup(0);
	close(fds_after);
	EXPECT_EQ(fds_before, fds_after);	/* no fd was left installed */
	r = vdi_open_device(s.cset, s.name, 0, NULL);
	EXPECT_LE(0, r);
	s.cdev[0] = r;
	r = vdi_open_device(s.sset, s.name, 0, NULL);
	EXPECT_LE(0, r);
	s.sdev[0] = r;
	/* and the set works */
	EXPECT_EQ(1, vdi_send1(s.sdev[0], 7, T_VDC_FLUSH, 0, 0, VDI_NO_BUFFER));
	munmap(ro, VDI_PAGE);
	vdi_sess_close(&s);
	EXPECT_EQ(0, vdi_refcnt_settle(0, 2000) > 0);
}

TEST_HARNESS_MAIN
