// SPDX-License-Identifier: GPL-2.0
/*
 * libvdi: thread safety of the set objects.  Eight devices, a client
 * thread per device in one process and a server thread per device plus the
 * agent in another, thousands of commands with their payload checked both
 * ways; concurrent AllocateBuffer / FreeBuffer; concurrent OpenDevice; one
 * abort waking every device thread.
 */
#include "lib_test_util.h"

#include <semaphore.h>

#define NDEV		8
#ifdef __SANITIZE_THREAD__
#define PER_DEV		50		/* TSan (mk/debug.mk): ~10x slower */
#else
#define PER_DEV		400
#endif
#define NBUF		4
#define BUFSZ		32768

/* ------------------------------------------------------------------ */
/* the client process: a thread per device                            */

struct cdev {
	vdi_client_set *set;
	const char *setname;
	int idx;
	int served, bad, ret;
};

static void *cdev_main(void *arg)
{
	struct cdev *d = (struct cdev *)arg;
	char dn[LT_NAME_MAX];
	vdi_client_device *dev = NULL;
	VDC_Command *cmd;
	uint32_t bytes;
	unsigned int h;
	uint8_t *p;
	int r;

	lt_dev_name(dn, d->setname, (unsigned int)d->idx);
	d->ret = vdi_client_open_device(d->set, dn, &dev);
	if (d->ret)
		return NULL;
	for (;;) {
		r = vdi_client_get_command(dev, 5000, &cmd);
		if (r != NOERROR)
			break;
		bytes = 0;
		if (cmd->commandCode == VDC_Write) {
			bytes = (uint32_t)cmd->size;
			if (!lt_check(cmd->buffer, bytes, cmd->position,
				      (uint8_t)d->idx))
				d->bad++;
			/* Set-level calls from every thread meanwhile. */
			p = NULL;
			if (vdi_client_get_buffer_handle(d->set, cmd->buffer,
							 &h) ||
			    vdi_client_map_buffer_handle(d->set, h, &p) ||
			    p != cmd->buffer)
				d->bad++;
		} else if (cmd->commandCode == VDC_Read) {
			bytes = (uint32_t)cmd->size;
			lt_fill(cmd->buffer, bytes, cmd->position,
				(uint8_t)(0x80 + d->idx));
		}
		r = vdi_client_complete_command(dev, cmd, 0, bytes,
						cmd->position + 1);
		if (r != NOERROR)
			break;
		d->served++;
	}
	d->ret = r;
	return NULL;
}

static int stress_client(struct lt_peer *self, void *arg)
{
	const char *name = (const char *)arg;
	struct cdev d[NDEV];
	vdi_client_set *set;
	struct lt_msg m;
	VDConfig cfg;
	int i;

	set = vdi_client_set_new();
	CK(set != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = NDEV;
	CKEQ(NOERROR, vdi_client_create(set, name, &cfg));
	lt_msg_init(&m, 1);
	CK(lt_send(self, &m) == 0);
	CKEQ(NOERROR, vdi_client_get_configuration(set, 10000, &cfg));
	for (i = 0; i < NDEV; i++) {
		d[i].set = set;
		d[i].setname = name;
		d[i].idx = i;
		d[i].served = d[i].bad = 0;
		d[i].ret = -1;
	}
	{
		pthread_t th[NDEV];

		for (i = 0; i < NDEV; i++)
			CK(pthread_create(&th[i], NULL, cdev_main, &d[i]) == 0);
		for (i = 0; i < NDEV; i++)
			pthread_join(th[i], NULL);
	}
	lt_msg_init(&m, 2);
	for (i = 0; i < NDEV; i++) {
		m.a[0] += d[i].served;
		m.a[1] += d[i].bad;
		if (d[i].ret != VD_E_CLOSE) {
			fprintf(stderr, "# client device %d ended with %s\n",
				i, lt_code(d[i].ret));
			m.a[2]++;
		}
	}
	m.ret = vdi_client_close(set);
	vdi_client_set_free(set);
	CK(lt_send(self, &m) == 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the server: a thread per device, the agent on its own              */

struct scmd {
	VDS_Command cmd;
	struct sdev *d;
	int slot;
};

struct sdev {
	int idx;
	vdi_server_set *set;
	const char *setname;
	pthread_t agent;
	vdi_server_device *dev;
	sem_t room;
	pthread_mutex_t mu;
	bool busy[NBUF];
	uint8_t *buf[NBUF];
	struct scmd cmds[NBUF];
	int sent, done, bad, wrong_thread, failed;
	int ret;
};

static void scmd_done(VDS_Command *vc)
{
	struct scmd *c = (struct scmd *)vc;
	struct sdev *d = c->d;
	bool ok;

	ok = vc->completionCode == 0 &&
	     vc->bytesTransferred == vc->size &&
	     vc->outPosition == vc->inPosition + 1 &&
	     vc->completionContext == (uint8_t *)d;
	if (ok && vc->commandCode == VDC_Read)
		ok = lt_check(vc->buffer, (uint32_t)vc->size, vc->inPosition,
			      (uint8_t)(0x80 + d->idx));
	pthread_mutex_lock(&d->mu);
	if (!ok)
		d->bad++;
	if (!pthread_equal(pthread_self(), d->agent))
		d->wrong_thread++;
	d->done++;
	d->busy[c->slot] = false;
	pthread_mutex_unlock(&d->mu);
	sem_post(&d->room);
}

static void *sdev_main(void *arg)
{
	struct sdev *d = (struct sdev *)arg;
	char dn[LT_NAME_MAX];
	struct timespec ts;
	int i, k, slot, r;

	lt_dev_name(dn, d->setname, (unsigned int)d->idx);
	d->ret = vdi_server_open_device(d->set, dn, &d->dev);
	if (d->ret)
		return NULL;
	for (k = 0; k < NBUF; k++) {
		d->ret = vdi_server_allocate_buffer(d->set, &d->buf[k], BUFSZ,
						    0);
		if (d->ret)
			return NULL;
	}
	for (i = 0; i < PER_DEV; i++) {
		int code = i % 5 == 4 ? VDC_Flush :
			   i % 5 >= 2 ? VDC_Read : VDC_Write;
		int32_t size = 512 * (1 + (i * 7 + d->idx) % 64);
		int64_t pos = (int64_t)i * BUFSZ + d->idx;
		struct scmd *c;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		if (sem_timedwait(&d->room, &ts)) {
			d->ret = -ETIMEDOUT;
			return NULL;
		}
		pthread_mutex_lock(&d->mu);
		for (slot = 0; slot < NBUF && d->busy[slot]; slot++)
			;
		if (slot < NBUF)
			d->busy[slot] = true;
		pthread_mutex_unlock(&d->mu);
		if (slot == NBUF) {
			d->ret = -ENOSPC;
			return NULL;
		}
		c = &d->cmds[slot];
		memset(c, 0, sizeof(*c));
		c->d = d;
		c->slot = slot;
		c->cmd.commandCode = code;
		c->cmd.inPosition = pos;
		c->cmd.completionRoutine = (uint8_t *)(uintptr_t)scmd_done;
		c->cmd.completionContext = (uint8_t *)d;
		if (code != VDC_Flush) {
			c->cmd.size = size;
			c->cmd.buffer = d->buf[slot];
			if (code == VDC_Write)
				lt_fill(d->buf[slot], (uint32_t)size, pos,
					(uint8_t)d->idx);
			else
				memset(d->buf[slot], 0, (size_t)size);
		}
		r = vdi_server_send_command(d->dev, &c->cmd);
		if (r != NOERROR)
			d->failed++;
		d->sent++;
	}
	/* Everything back, then the normal end of this device. */
	for (k = 0; k < NBUF; k++) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		if (sem_timedwait(&d->room, &ts)) {
			d->ret = -ETIMEDOUT;
			return NULL;
		}
	}
	for (k = 0; k < NBUF; k++)
		if (vdi_server_free_buffer(d->set, d->buf[k], BUFSZ))
			d->bad++;
	d->ret = vdi_server_close_device(d->dev);
	return NULL;
}

TEST(eight_devices_a_thread_each_on_both_sides)
{
	char name[LT_NAME_MAX];
	struct sdev *d = (struct sdev *)calloc(NDEV, sizeof(*d));
	struct lt_agent agent;
	struct lt_peer cl;
	vdi_server_set *set = NULL;
	struct lt_msg m;
	int64_t t0;
	int i;

	ASSERT_TRUE(d != NULL);
	lt_name(name, "stress");
	ASSERT_EQ(0, lt_spawn(&cl, stress_client, name));
	ASSERT_EQ(0, lt_recv(&cl, &m, 10000));
	ASSERT_EQ(1, m.op);

	t0 = lt_now_ms();
	ASSERT_VD(NOERROR, vdi_server_open(&set, NULL, name));
	ASSERT_VD(NOERROR, vdi_server_begin_configuration(set,
			VDF_WriteMedia | VDF_ReadMedia, 0, 512, 65536, 5000));
	ASSERT_VD(NOERROR, vdi_server_request_buffers(set, BUFSZ, 0,
						      NDEV * NBUF));
	ASSERT_VD(NOERROR, vdi_server_end_configuration(set));
	ASSERT_EQ(0, lt_agent_start(&agent, set));
	for (i = 0; i < NDEV; i++) {
		d[i].idx = i;
		d[i].set = set;
		d[i].setname = name;
		d[i].agent = agent.self;
		d[i].ret = -1;
		sem_init(&d[i].room, 0, NBUF);
		pthread_mutex_init(&d[i].mu, NULL);
	}
	{
		pthread_t th[NDEV];

		for (i = 0; i < NDEV; i++)
			ASSERT_EQ(0, pthread_create(&th[i], NULL, sdev_main,
						    &d[i]));
		for (i = 0; i < NDEV; i++)
			pthread_join(th[i], NULL);
	}
	ASSERT_TRUE(lt_agent_done(&agent, 10000));
	EXPECT_VD(NOERROR, agent.ret);
	for (i = 0; i < NDEV; i++) {
		EXPECT_VD(NOERROR, d[i].ret);
		EXPECT_EQ(PER_DEV, d[i].sent);
		EXPECT_EQ(PER_DEV, d[i].done);
		EXPECT_EQ(0, d[i].failed);
		EXPECT_EQ(0, d[i].bad);
		EXPECT_EQ(0, d[i].wrong_thread);
	}
	EXPECT_VD(NOERROR, vdi_server_close(set));

	/* The client's view: every command served, every payload right. */
	ASSERT_EQ(0, lt_recv(&cl, &m, 10000));
	EXPECT_EQ(2, m.op);
	EXPECT_EQ(NDEV * PER_DEV, m.a[0]);
	EXPECT_EQ(0, m.a[1]);
	EXPECT_EQ(0, m.a[2]);
	EXPECT_VD(NOERROR, m.ret);
	EXPECT_EQ(0, lt_reap(&cl, 5000));
	lt_peer_kill(&cl);
	TH_LOG("%d commands in %lld ms", NDEV * PER_DEV,
	       (long long)(lt_now_ms() - t0));
	for (i = 0; i < NDEV; i++) {
		sem_destroy(&d[i].room);
		pthread_mutex_destroy(&d[i].mu);
	}
	free(d);
}

/* ------------------------------------------------------------------ */
/* AllocateBuffer / FreeBuffer from several threads                   */

#define ATHREADS	8
#define AITER		1500
#define ALIVE		8

struct athread {
	vdi_server_set *set;
	int idx;
	int allocs, frees, full, bad;
};

static void *alloc_main(void *arg)
{
	struct athread *t = (struct athread *)arg;
	unsigned int seed = 1234u + (unsigned int)t->idx;
	uint8_t *live[ALIVE];
	uint32_t size[ALIVE];
	int64_t tag[ALIVE];
	int n = 0, i, k, r;

	for (i = 0; i < AITER; i++) {
		bool alloc = n < ALIVE && (n == 0 || rand_r(&seed) % 2);

		if (alloc) {
			uint32_t sz = 1 + (uint32_t)rand_r(&seed) % 16384;
			uint32_t al = rand_r(&seed) % 5 ?
				      256u << (rand_r(&seed) % 5) : 0;
			uint8_t *b = NULL;

			r = vdi_server_allocate_buffer(t->set, &b, sz, al);
			if (r == VD_E_MEMORY) {
				t->full++;
				continue;
			}
			if (r != NOERROR || !b) {
				t->bad++;
				continue;
			}
			if (al && ((uintptr_t)b & (al - 1)))
				t->bad++;
			if (vdi_server_is_shared_buffer(t->set, b) != 1 ||
			    vdi_server_is_shared_buffer(t->set, b + sz - 1) != 1)
				t->bad++;
			tag[n] = (int64_t)t->idx << 32 | i;
			lt_fill(b, sz, tag[n], (uint8_t)t->idx);
			live[n] = b;
			size[n] = sz;
			n++;
			t->allocs++;
		} else {
			k = rand_r(&seed) % n;
			if (!lt_check(live[k], size[k], tag[k], (uint8_t)t->idx))
				t->bad++;	/* someone else wrote here */
			if (vdi_server_free_buffer(t->set, live[k], size[k]))
				t->bad++;
			live[k] = live[n - 1];
			size[k] = size[n - 1];
			tag[k] = tag[n - 1];
			n--;
			t->frees++;
		}
	}
	while (n--) {
		if (!lt_check(live[n], size[n], tag[n], (uint8_t)t->idx))
			t->bad++;
		if (vdi_server_free_buffer(t->set, live[n], size[n]))
			t->bad++;
		t->frees++;
	}
	return NULL;
}

TEST(concurrent_allocate_and_free)
{
	struct athread t[ATHREADS];
	pthread_t th[ATHREADS];
	uint32_t n0 = 0, n1 = 0, big0 = 0, big1 = 0;
	struct lt_pair_opts o;
	struct lt_pair p;
	int i, allocs = 0;

	memset(&o, 0, sizeof(o));
	o.prefix = 64;
	o.req_size = 16384;
	o.req_count = 40;	/* not quite room for all threads' maximum */
	o.no_devices = true;
	o.no_agent = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "allocmt", &o));
	ASSERT_VD(NOERROR, vdi_server_query_available_buffers(p.set, 4096, 0,
							      &n0));
	ASSERT_VD(NOERROR, vdi_server_query_available_buffers(p.set, 65536, 0,
							      &big0));
	for (i = 0; i < ATHREADS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].set = p.set;
		t[i].idx = i;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, alloc_main, &t[i]));
	}
	for (i = 0; i < ATHREADS; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, t[i].bad);
		EXPECT_EQ(t[i].allocs, t[i].frees);
		allocs += t[i].allocs;
	}
	EXPECT_LT(ATHREADS * AITER / 4, allocs);
	/* Everything merged back into one free area. */
	ASSERT_VD(NOERROR, vdi_server_query_available_buffers(p.set, 4096, 0,
							      &n1));
	ASSERT_VD(NOERROR, vdi_server_query_available_buffers(p.set, 65536, 0,
							      &big1));
	EXPECT_EQ(n0, n1);
	EXPECT_EQ(big0, big1);
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* OpenDevice from several threads                                     */

struct othread {
	vdi_server_set *set;
	const char *setname;
	pthread_barrier_t *all_tried;
	int idx, ret, close_ret;
	vdi_server_device *dev;
};

static void *open_main(void *arg)
{
	struct othread *t = (struct othread *)arg;
	char dn[LT_NAME_MAX];

	lt_dev_name(dn, t->setname, (unsigned int)t->idx);
	t->ret = vdi_server_open_device(t->set, dn, &t->dev);
	pthread_barrier_wait(t->all_tried);
	if (t->ret == NOERROR)
		t->close_ret = vdi_server_close_device(t->dev);
	return NULL;
}

TEST(concurrent_open_device_and_close_device)
{
	struct othread t[NDEV + 2];
	pthread_t th[NDEV + 2];
	pthread_barrier_t all_tried;
	struct lt_pair_opts o;
	struct lt_pair p;
	int i, j, opened = 0, refused = 0;

	memset(&o, 0, sizeof(o));
	o.ndev = NDEV;
	o.no_devices = true;
	ASSERT_EQ(0, lt_pair_setup(&p, "openmt", &o));
	ASSERT_VD(NOERROR, lt_rc_call(&p.rc, RC_OPEN, -1, 0, 0, 0, 0, NULL));
	/* Ten threads for eight devices: two names are one too many. */
	ASSERT_EQ(0, pthread_barrier_init(&all_tried, NULL, NDEV + 2));
	for (i = 0; i < NDEV + 2; i++) {
		t[i].set = p.set;
		t[i].setname = p.name;
		t[i].all_tried = &all_tried;
		t[i].idx = i;
		t[i].ret = t[i].close_ret = -1;
		t[i].dev = NULL;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, open_main, &t[i]));
	}
	for (i = 0; i < NDEV + 2; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NDEV + 2; i++) {
		if (t[i].ret == NOERROR) {
			opened++;
			EXPECT_VD(NOERROR, t[i].close_ret);
			for (j = 0; j < i; j++)
				EXPECT_TRUE(t[j].dev != t[i].dev);
		} else {
			EXPECT_TRUE(t[i].ret == VD_E_INVALID ||
				    t[i].ret == VD_E_OPEN);
			refused++;
		}
	}
	EXPECT_EQ(NDEV, opened);
	EXPECT_EQ(2, refused);
	pthread_barrier_destroy(&all_tried);
	/* Every device closed by its thread: the normal end. */
	for (i = 0; i < NDEV; i++)
		EXPECT_VD(VD_E_CLOSE, lt_rc_serve(&p.rc, i, -1, -1, -1, 1000,
						  NULL));
	ASSERT_TRUE(lt_agent_done(&p.agent, 3000));
	EXPECT_VD(NOERROR, p.agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(p.set));
	p.set = NULL;
	EXPECT_VD(NOERROR, lt_rc_call(&p.rc, RC_CLOSE, 0, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, lt_pair_teardown(&p));
}

/* ------------------------------------------------------------------ */
/* one SignalAbort wakes every device thread                          */

struct wthread {
	vdi_client_device *dev;
	int ret;
	int64_t returned_us;
};

static void *wait_main(void *arg)
{
	struct wthread *t = (struct wthread *)arg;
	VDC_Command *cmd;

	t->ret = vdi_client_get_command(t->dev, INFINITE, &cmd);
	t->returned_us = lt_now_us();
	return NULL;
}

TEST(client_signal_abort_wakes_every_device_thread)
{
	struct wthread t[NDEV];
	pthread_t th[NDEV];
	char name[LT_NAME_MAX], dn[LT_NAME_MAX];
	vdi_client_set *set;
	struct lt_peer rs;
	struct lt_msg m;
	VDConfig cfg;
	int64_t t0;
	int i;

	lt_name(name, "wake");
	ASSERT_EQ(0, lt_spawn(&rs, lt_rs_main, name));
	set = vdi_client_set_new();
	ASSERT_TRUE(set != NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.deviceCount = NDEV;
	ASSERT_VD(NOERROR, vdi_client_create(set, name, &cfg));
	ASSERT_VD(NOERROR, lt_rs_ready(&rs, 0));
	ASSERT_VD(NOERROR, vdi_client_get_configuration(set, 1000, &cfg));
	ASSERT_VD(NOERROR, lt_rs_call(&rs, RS_OPEN_DEV, -1, 0, 0, 0, 0, NULL));
	ASSERT_VD(NOERROR, lt_rs_call(&rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));
	for (i = 0; i < NDEV; i++) {
		lt_dev_name(dn, name, (unsigned int)i);
		ASSERT_VD(NOERROR, vdi_client_open_device(set, dn, &t[i].dev));
		t[i].ret = -1;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, wait_main, &t[i]));
	}
	lt_sleep_ms(100);
	t0 = lt_now_us();
	EXPECT_VD(NOERROR, vdi_client_signal_abort(set));
	for (i = 0; i < NDEV; i++) {
		pthread_join(th[i], NULL);
		EXPECT_VD(VD_E_ABORT, t[i].ret);
		EXPECT_GT(1000000, t[i].returned_us - t0);
	}
	EXPECT_VD(0, lt_rs_call(&rs, RS_AGENT_WAIT, 0, 0, 0, 0, 2000, &m));
	EXPECT_VD(VD_E_ABORT, m.a[0]);
	EXPECT_VD(VD_E_OPEN, vdi_client_close(set));
	vdi_client_set_free(set);
	EXPECT_EQ(0, lt_peer_finish(&rs, 5000));
}

TEST_HARNESS_MAIN
