// SPDX-License-Identifier: GPL-2.0
/*
 * Soak: many sets x devices x queue depth, for a bounded time, with random
 * ends - normal end, SIGNAL_ABORT by either side, SIGKILL of either
 * process - and every byte verified.
 *
 * Up to VDI_SOAK_SETS sessions run at once, each a client process (one
 * thread per device) and a server process (a sender thread and the
 * completion agent), one set of VDI_SOAK_DEVICES devices of depth
 * VDI_SOAK_DEPTH.  The server keeps one buffer per queue slot and device;
 * it sends Writes (backup: it fills the buffer with a pattern keyed by the
 * command, the client checks every byte), Reads (restore: the client fills
 * it, the agent checks every byte of bytes_transferred) and Flushes.  When
 * a session ends, the next one starts in its place, until VDI_SOAK_SECONDS.
 *
 * Checked: no byte differs from its pattern (corrupted), every command the
 * server sent reaches its agent exactly once, with ERROR_SUCCESS, 995 or
 * 1117 (lost, duplicated) - unless the server itself was killed -, every
 * survivor of a kill or an abort ends cleanly, and at the end the module's
 * reference count is 0 and the kernel log clean.  The counts are printed.
 *
 * Knobs: VDI_STRESS=long, VDI_SOAK_SECONDS, VDI_SOAK_SETS, VDI_SOAK_DEVICES,
 * VDI_SOAK_DEPTH, VDI_FUZZ_SEED (the schedule of ends).
 */
#include "fuzz/vdi_stress.h"

#define MAXS	8
#define MAXD	8
#define MAXQ	64
#define BUFSZ	65536

enum end { E_NORMAL, E_ABORT_SERVER, E_ABORT_CLIENT, E_KILL_SERVER,
	   E_KILL_CLIENT, E_COUNT };
static const char *const end_names[] = { "normal end", "server abort",
	"client abort", "server killed", "client killed" };

struct sess {
	char name[VDI_NAME_MAX];
	unsigned int id, ndev, depth;
	enum end end;
	volatile int configured;	/* client: GET_CONFIG done */
	volatile int sready, cready;	/* devices open, threads running */
	volatile int stop;		/* parent: end now (normal / abort) */
	volatile int server_done, client_done;
	/* counters (shared, so a killed process's work still counts) */
	volatile uint64_t sent, ok, aborted, ioerr, other_code;
	volatile uint64_t w_bytes, r_bytes;	/* verified: client / agent */
	volatile uint64_t corrupt, lost, dup;
	volatile int server_rc, client_rc;
	volatile int normal_seen;	/* the agent saw ESHUTDOWN */
};

struct board {
	struct sess s[MAXS];
};

static struct board *BD;

/* ------------------------------------------------------------------ */
/* server                                                             */

struct srv {
	struct sess *ss;
	int sset, sdev[MAXD];
	uint8_t *area;
	pthread_mutex_t lk;
	/* per device and buffer: 0 free, else the command's sequence */
	uint32_t busy[MAXD][MAXQ];
	uint32_t op[MAXD][MAXQ], size[MAXD][MAXQ];
	uint32_t seq;
	volatile int agent_end;		/* -errno that ended the agent */
};

static inline uint8_t *bufp(struct srv *v, unsigned int d, unsigned int b)
{
	return v->area + ((size_t)d * v->ss->depth + b) * BUFSZ;
}

static inline int64_t pos_of(uint32_t seq, unsigned int d)
{
	return (int64_t)seq * 64 + d;
}

static void *agent_main(void *arg)
{
	struct srv *v = arg;
	struct sess *ss = v->ss;
	struct vdi_completion c[32];
	int n, i;

	for (;;) {
		n = vdi_wait(v->sset, c, 32, 200);
		if (n == -ETIMEDOUT || n == -EINTR)
			continue;
		if (n < 0) {
			v->agent_end = n;
			if (n == -ESHUTDOWN)
				ss->normal_seen = 1;
			return NULL;
		}
		for (i = 0; i < n; i++) {
			uint64_t ck = c[i].cookie;
			unsigned int d = (ck >> 8) & 0xff, b = ck & 0xff;
			uint32_t seq = (uint32_t)(ck >> 16);

			pthread_mutex_lock(&v->lk);
			if (d >= ss->ndev || b >= ss->depth || v->busy[d][b] != seq ||
			    c[i].device_index != d) {
				ss->dup++;
				pthread_mutex_unlock(&v->lk);
				continue;
			}
			if (c[i].completion_code == 0) {
				ss->ok++;
				if (v->op[d][b] == VDI_VDC_READ) {
					if (c[i].bytes_transferred != v->size[d][b] ||
					    !vdi_check(bufp(v, d, b), v->size[d][b],
						       pos_of(seq, d), 0xa0 ^ ss->id))
						ss->corrupt += v->size[d][b];
					else
						ss->r_bytes += v->size[d][b];
				} else if (v->op[d][b] == VDI_VDC_WRITE &&
					   c[i].bytes_transferred != v->size[d][b]) {
					ss->corrupt += v->size[d][b];
				}
			} else if (c[i].completion_code == VDI_ERROR_OPERATION_ABORTED) {
				ss->aborted++;
			} else if (c[i].completion_code == VDI_ERROR_IO_DEVICE) {
				ss->ioerr++;
			} else {
				ss->other_code++;
			}
			v->busy[d][b] = 0;
			pthread_mutex_unlock(&v->lk);
		}
	}
}

static int server_main(struct vdi_chan *ch, void *arg)
{
	struct sess *ss = arg;
	struct srv *v = calloc(1, sizeof(*v));
	struct vdi_rng r;
	char dn[VDI_NAME_MAX];
	pthread_t agent;
	size_t area;
	unsigned int d, b, busy;
	int ret;

	(void)ch;
	CK(v != NULL);
	v->ss = ss;
	pthread_mutex_init(&v->lk, NULL);
	vdi_rng_seed(&r, ss->id * 7919 + 1);
	while (!ss->configured && !ss->stop) {
		/* the client creates; then we configure; it waits in GET_CONFIG */
		v->sset = vdi_open_server(ss->name);
		if (v->sset >= 0)
			break;
		vdi_sleep_ms(1);
	}
	CK(v->sset >= 0);
	area = (size_t)ss->ndev * ss->depth * BUFSZ;
	CKEQ(0, vdi_begin_config(v->sset, VDI_VDF_WRITE_MEDIA | VDI_VDF_READ_MEDIA,
				 0, 512, BUFSZ, ss->depth));
	CKEQ(0, vdi_end_config(v->sset, area));
	v->area = vdi_map(v->sset, area, 0);
	CK(v->area != NULL);
	for (d = 0; d < ss->ndev; d++) {
		vdi_dev_name(dn, ss->name, d);
		v->sdev[d] = vdi_open_device(v->sset, dn, O_CLOEXEC, NULL);
		CK(v->sdev[d] >= 0);
	}
	CKEQ(0, pthread_create(&agent, NULL, agent_main, v));
	ss->sready = 1;

	/* the sender */
	ret = 0;
	while (!ss->stop && !ret) {
		bool any = false;

		for (d = 0; d < ss->ndev && !ret; d++) {
			for (b = 0; b < ss->depth; b++) {
				uint32_t op, size, seq;
				struct vdi_send s;
				int x;

				pthread_mutex_lock(&v->lk);
				if (v->busy[d][b]) {
					pthread_mutex_unlock(&v->lk);
					continue;
				}
				seq = ++v->seq;
				if (!seq)
					seq = ++v->seq;
				x = (int)vdi_rng_below(&r, 100);
				op = x < 50 ? VDI_VDC_WRITE : x < 95 ? VDI_VDC_READ : T_VDC_FLUSH;
				size = op == T_VDC_FLUSH ? 0 : 512 * (1 + vdi_rng_below(&r, BUFSZ / 512));
				v->busy[d][b] = seq;
				v->op[d][b] = op;
				v->size[d][b] = size;
				pthread_mutex_unlock(&v->lk);
				if (op == VDI_VDC_WRITE)
					vdi_fill(bufp(v, d, b), size, pos_of(seq, d), 0x50 ^ ss->id);
				s = (struct vdi_send){ .cookie = (uint64_t)seq << 16 | d << 8 | b,
					.code = op, .size = size, .position = pos_of(seq, d),
					.buf_offset = op == T_VDC_FLUSH ? VDI_NO_BUFFER :
						(uint64_t)(bufp(v, d, b) - v->area) };
				x = vdi_send(v->sdev[d], &s, 1);
				if (x == 1) {
					ss->sent++;
					any = true;
					continue;
				}
				pthread_mutex_lock(&v->lk);
				v->busy[d][b] = 0;
				pthread_mutex_unlock(&v->lk);
				if (x != -ENOBUFS) {
					ret = x;	/* aborted */
					break;
				}
			}
		}
		if (!any)
			vdi_sleep_ms(1);
	}
	if (ss->stop && ss->end == E_ABORT_SERVER)
		vdi_abort(v->sset);
	else if (ss->stop && ss->end == E_NORMAL)
		for (d = 0; d < ss->ndev; d++)
			vdi_close_device(v->sdev[d]);
	/* the agent ends with ESHUTDOWN or ECONNABORTED: then nothing is left */
	CK(({ struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); ts.tv_sec += 10;
	      pthread_timedjoin_np(agent, NULL, &ts) == 0; }));
	busy = 0;
	for (d = 0; d < ss->ndev; d++)
		for (b = 0; b < ss->depth; b++)
			busy += v->busy[d][b] != 0;
	ss->lost += busy;
	if (v->agent_end != -ESHUTDOWN && v->agent_end != -ECONNABORTED)
		ss->server_rc = v->agent_end;
	for (d = 0; d < ss->ndev; d++)
		close(v->sdev[d]);
	munmap(v->area, area);
	close(v->sset);
	ss->server_done = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* client                                                             */

struct cli {
	struct sess *ss;
	int cset, cdev[MAXD];
	uint8_t *area;
	volatile int end[MAXD];
};

struct cdev_arg {
	struct cli *c;
	unsigned int d;
};

static void *cdev_main(void *arg)
{
	struct cdev_arg *a = arg;
	struct cli *c = a->c;
	struct sess *ss = c->ss;
	struct vdi_command cmd[MAXQ];
	struct vdi_done dn[MAXQ];
	int n, i, r;

	for (;;) {
		n = vdi_get(c->cdev[a->d], cmd, MAXQ, 100);
		if (n == -ETIMEDOUT || n == -EINTR)
			continue;
		if (n < 0) {
			c->end[a->d] = n;
			return NULL;
		}
		for (i = 0; i < n; i++) {
			uint8_t *p = c->area + cmd[i].buf_offset;
			uint64_t seq = (uint64_t)(cmd[i].position / 64);

			if (cmd[i].code == VDI_VDC_WRITE) {
				if (vdi_check(p, cmd[i].size, cmd[i].position, 0x50 ^ ss->id))
					ss->w_bytes += cmd[i].size;
				else
					ss->corrupt += cmd[i].size;
			} else if (cmd[i].code == VDI_VDC_READ) {
				vdi_fill(p, cmd[i].size, cmd[i].position, 0xa0 ^ ss->id);
			}
			(void)seq;
			dn[i] = (struct vdi_done){ .tag = cmd[i].tag,
				.bytes_transferred = cmd[i].code == T_VDC_FLUSH ? 0 : cmd[i].size,
				.position = cmd[i].position };
		}
		r = vdi_complete(c->cdev[a->d], dn, n);
		if (r != n && r != -ECONNABORTED) {
			c->end[a->d] = r < 0 ? r : -EBADMSG;
			return NULL;
		}
	}
}

static int client_main(struct vdi_chan *ch, void *arg)
{
	struct sess *ss = arg;
	struct cli c = { .ss = ss };
	struct cdev_arg a[MAXD];
	pthread_t th[MAXD];
	struct vdi_config cfg;
	char dn[VDI_NAME_MAX];
	unsigned int d;
	int r;

	(void)ch;
	c.cset = vdi_create_set(ss->name, ss->ndev, 0);
	CK(c.cset >= 0);
	r = vdi_get_config(c.cset, 10000, &cfg);
	CKEQ(0, r);
	ss->configured = 1;
	c.area = vdi_map(c.cset, cfg.buffer_area_size, 0);
	CK(c.area != NULL);
	for (d = 0; d < ss->ndev; d++) {
		vdi_dev_name(dn, ss->name, d);
		c.cdev[d] = vdi_open_device(c.cset, dn, O_CLOEXEC, NULL);
		CK(c.cdev[d] >= 0);
		a[d] = (struct cdev_arg){ .c = &c, .d = d };
		CKEQ(0, pthread_create(&th[d], NULL, cdev_main, &a[d]));
	}
	ss->cready = 1;
	while (!ss->stop)
		vdi_sleep_ms(2);
	if (ss->end == E_ABORT_CLIENT)
		vdi_abort(c.cset);
	for (d = 0; d < ss->ndev; d++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		CKEQ(0, pthread_timedjoin_np(th[d], NULL, &ts));
		if (c.end[d] != -ESHUTDOWN && c.end[d] != -ECONNABORTED)
			ss->client_rc = c.end[d];
	}
	for (d = 0; d < ss->ndev; d++)
		close(c.cdev[d]);
	munmap(c.area, cfg.buffer_area_size);
	close(c.cset);
	ss->client_done = 1;
	return 0;
}

/* ------------------------------------------------------------------ */

struct slot {
	bool busy;
	struct vdi_proc srv, cli;
	int64_t end_at, up_by, life;
	bool acted;
};

/* a fixture only for TEST_F_TIMEOUT */
FIXTURE(soak) {
	int unused;
};
FIXTURE_SETUP(soak) {}
FIXTURE_TEARDOWN(soak) {}

TEST_F_TIMEOUT(soak, sets_devices_depth_with_random_ends, 1200)
{
	long secs = vdi_knob("VDI_SOAK_SECONDS", 4, 45);
	long nsets = vdi_knob("VDI_SOAK_SETS", 2, 6);
	long ndev = vdi_knob("VDI_SOAK_DEVICES", 2, 4);
	long depth = vdi_knob("VDI_SOAK_DEPTH", 8, 32);
	uint64_t seed = vdi_seed();
	uint64_t tot[16] = { 0 }, ends[E_COUNT] = { 0 };
	struct slot sl[MAXS];
	struct vdi_kmsg k;
	struct vdi_rng r;
	unsigned int id = 0, i, bad = 0;
	int64_t t0 = vdi_now_ms(), stop_at = t0 + secs * 1000;

	if (nsets > MAXS)
		nsets = MAXS;
	if (ndev > MAXD)
		ndev = MAXD;
	if (depth > MAXQ)
		depth = MAXQ;
	BD = vdi_shared(sizeof(*BD));
	ASSERT_NE(NULL, BD);
	vdi_kmsg_open(&k);
	vdi_rng_seed(&r, seed);
	printf("# soak: %ld s, %ld sets x %ld devices x depth %ld, seed %llu\n",
	       secs, nsets, ndev, depth, (unsigned long long)seed);
	memset(sl, 0, sizeof(sl));
	for (;;) {
		bool any = false;

		for (i = 0; i < nsets; i++) {
			struct slot *x = &sl[i];
			struct sess *ss = &BD->s[i];

			if (!x->busy) {
				if (vdi_now_ms() >= stop_at)
					continue;
				memset(ss, 0, sizeof(*ss));
				ss->id = id++;
				ss->ndev = (unsigned int)ndev;
				ss->depth = (unsigned int)depth;
				ss->end = (enum end)vdi_rng_below(&r, 100) < 40 ? E_NORMAL :
					  (enum end)(1 + vdi_rng_below(&r, E_COUNT - 1));
				vdi_make_name(ss->name, "soak");
				/* the end comes after both sides are up */
				x->life = 100 + vdi_rng_below(&r, 1500);
				x->end_at = 0;
				x->up_by = vdi_now_ms() + 20000;
				x->acted = false;
				ASSERT_EQ(0, vdi_spawn(&x->cli, client_main, ss));
				ASSERT_EQ(0, vdi_spawn(&x->srv, server_main, ss));
				x->busy = true;
			}
			any = true;
			if (!x->end_at && ss->sready && ss->cready) {
				x->end_at = vdi_now_ms() + x->life;
				if (x->end_at > stop_at)
					x->end_at = stop_at;
			}
			if (!x->end_at && vdi_now_ms() > x->up_by) {
				printf("# soak %u: the set never came up\n", ss->id);
				bad++;
				x->end_at = vdi_now_ms();
			}
			if (!x->acted && x->end_at && vdi_now_ms() >= x->end_at) {
				x->acted = true;
				if (ss->end == E_KILL_SERVER)
					kill(x->srv.pid, SIGKILL);
				else if (ss->end == E_KILL_CLIENT)
					kill(x->cli.pid, SIGKILL);
				ss->stop = 1;
			}
			if (x->acted) {
				int rs, rc;

				rs = vdi_reap(&x->srv, 15000);
				rc = vdi_reap(&x->cli, 15000);
				ends[ss->end]++;
				if (ss->end != E_KILL_SERVER && (rs || ss->server_rc)) {
					printf("# soak %u (%s): server exit %d, agent %d\n",
					       ss->id, end_names[ss->end], rs, ss->server_rc);
					bad++;
				}
				if (ss->end != E_KILL_CLIENT && (rc || ss->client_rc)) {
					printf("# soak %u (%s): client exit %d, device %d\n",
					       ss->id, end_names[ss->end], rc, ss->client_rc);
					bad++;
				}
				if (ss->end == E_NORMAL && !ss->normal_seen) {
					printf("# soak %u: normal end not seen by the agent\n", ss->id);
					bad++;
				}
				if (ss->end == E_KILL_SERVER)
					ss->lost = 0;	/* its bookkeeping died with it */
				if (ss->corrupt || ss->lost || ss->dup || ss->other_code) {
					printf("# soak %u (%s): %llu bytes corrupted, %llu commands "
					       "lost, %llu duplicated, %llu odd codes\n", ss->id,
					       end_names[ss->end], (unsigned long long)ss->corrupt,
					       (unsigned long long)ss->lost,
					       (unsigned long long)ss->dup,
					       (unsigned long long)ss->other_code);
					bad++;
				}
				tot[0] += ss->sent;
				tot[1] += ss->ok;
				tot[2] += ss->aborted;
				tot[3] += ss->ioerr;
				tot[4] += ss->w_bytes;
				tot[5] += ss->r_bytes;
				tot[6] += ss->corrupt;
				tot[7] += ss->lost;
				tot[8] += ss->dup;
				vdi_proc_kill(&x->srv);
				vdi_proc_kill(&x->cli);
				x->busy = false;
			}
		}
		if (!any && vdi_now_ms() >= stop_at)
			break;
		vdi_sleep_ms(5);
		if (bad > 20)
			break;
	}
	printf("# soak: %u sessions (", id);
	for (i = 0; i < E_COUNT; i++)
		printf("%s%llu %s", i ? ", " : "", (unsigned long long)ends[i], end_names[i]);
	printf(") in %.1f s\n", (vdi_now_ms() - t0) / 1000.0);
	printf("# soak: %llu commands sent, %llu completed, %llu aborted (995), "
	       "%llu flushed (1117)\n", (unsigned long long)tot[0],
	       (unsigned long long)tot[1], (unsigned long long)tot[2],
	       (unsigned long long)tot[3]);
	printf("# soak: %llu bytes verified (%llu backup, %llu restore), %llu bytes "
	       "corrupted, %llu commands lost, %llu duplicated\n",
	       (unsigned long long)(tot[4] + tot[5]), (unsigned long long)tot[4],
	       (unsigned long long)tot[5], (unsigned long long)tot[6],
	       (unsigned long long)tot[7], (unsigned long long)tot[8]);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, tot[6]);
	EXPECT_EQ(0, tot[7]);
	EXPECT_LT(0, tot[4] + tot[5]);
	EXPECT_EQ(0, vdi_refcnt_settle(0, 5000));
	EXPECT_EQ(0, vdi_kmsg_scan(&k, NULL, NULL));
	vdi_kmsg_close(&k);
	munmap(BD, sizeof(*BD));
}

TEST_HARNESS_MAIN
