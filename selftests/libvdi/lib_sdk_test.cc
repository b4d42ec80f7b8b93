// SPDX-License-Identifier: GPL-2.0
/*
 * A backup client written against SQL Server on Linux's VDI client SDK
 * (vdi.h / vdierror.h, here libvdi's compatible pair), in the SDK sample's
 * style: new ClientVirtualDeviceSet, Create(char *, VDConfig *),
 * GetConfiguration(time_t, ...), OpenDevice, a GetCommand / CompleteCommand
 * loop, Close.  It runs in a child process and exchanges data with a server
 * written against libvdi's C API in this process: a backup (Write commands
 * with a known byte stream, checked by the client) and a restore (Read
 * commands the client fills from its "file", checked by the server).
 * Then each method's codes, copies and assignment of the objects (stale
 * handles, no double free), and who deletes the device objects: before
 * Close, after it, or the set's destructor, through three Creates of one
 * set object, and a child forked while other threads are in calls.  The
 * client code uses only what the SDK defines (NOERROR and
 * INFINITE are poisoned there).  This is the rebuild path (-lvdi, inline
 * methods); selftests/tools/sdk_binary_test.sh runs the binary path.
 */
#include "lib_test_util.h"

#include <vector>

#include "vdi.h"
#include "vdierror.h"

struct sdk_job {
	const char *name;
	bool restore;			/* else backup */
	uint32_t file_size;		/* restore: bytes in the "file" */
};
static int sdk_client(struct lt_peer *self, void *arg);

/* The byte stream: byte k of the backup. */
static inline uint8_t stream_byte(uint64_t k)
{
	return lt_pat(0, (uint32_t)k, 0x5b);
}

/* ------------------------------------------------------------------ */
/* the server, in C                                                    */

#define WINDOW	4
#define XFER	65536

struct srv_cmd {
	VDS_Command cmd;
	volatile int done;
};

static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t srv_cv = PTHREAD_COND_INITIALIZER;

static void srv_done(VDS_Command *c)
{
	pthread_mutex_lock(&srv_mu);
	((struct srv_cmd *)c)->done = 1;
	pthread_cond_broadcast(&srv_cv);
	pthread_mutex_unlock(&srv_mu);
}

static bool srv_wait(struct srv_cmd *c, int timeout_ms)
{
	int64_t end = lt_now_ms() + timeout_ms;
	bool done;

	pthread_mutex_lock(&srv_mu);
	while (!c->done && lt_now_ms() < end) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&srv_cv, &srv_mu, &ts);
	}
	done = c->done;
	pthread_mutex_unlock(&srv_mu);
	return done;
}

static int srv_send(vdi_server_device *dev, struct srv_cmd *c, int code,
		    int32_t size, int64_t pos, uint8_t *buf)
{
	memset(c, 0, sizeof(*c));
	c->cmd.commandCode = code;
	c->cmd.size = size;
	c->cmd.inPosition = pos;
	c->cmd.buffer = buf;
	c->cmd.completionRoutine = (uint8_t *)(uintptr_t)srv_done;
	c->cmd.completionContext = (uint8_t *)c;
	return vdi_server_send_command(dev, &c->cmd);
}

struct srv {
	vdi_server_set *set;
	vdi_server_device *dev;
	struct lt_agent agent;
	uint8_t *buf[WINDOW];
};

/* Open, configure for one direction, the device, the agent. */
static int srv_start(struct srv *s, const char *name, bool restore)
{
	int r, i;

	memset(s, 0, sizeof(*s));
	r = vdi_server_open(&s->set, NULL, name);
	if (!r)
		r = vdi_server_begin_configuration(s->set,
			(restore ? VDF_ReadMedia : VDF_WriteMedia) |
			VDF_CompleteEnabled, 0, 512, XFER, 5000);
	if (!r)
		r = vdi_server_request_buffers(s->set, XFER, 0, WINDOW);
	if (!r)
		r = vdi_server_end_configuration(s->set);
	if (!r)
		r = vdi_server_open_device(s->set, name, &s->dev);
	for (i = 0; !r && i < WINDOW; i++)
		r = vdi_server_allocate_buffer(s->set, &s->buf[i], XFER, 0);
	if (!r)
		r = lt_agent_start(&s->agent, s->set);
	return r;
}

/* A command without data, and its completion. */
static int srv_simple(struct srv *s, int code)
{
	struct srv_cmd c;
	int r = srv_send(s->dev, &c, code, 0, 0, NULL);

	if (r)
		return r;
	if (!srv_wait(&c, 5000))
		return -ETIMEDOUT;
	return c.cmd.completionCode;
}

TEST(sdk_client_backup)
{
	struct srv_cmd cmds[WINDOW];
	char name[LT_NAME_MAX];
	struct lt_peer cl;
	struct lt_msg m;
	sdk_job job;
	struct srv s;
	uint64_t off = 0, total = 3 * 1024 * 1024 + 777;
	int i, sent = 0, bad = 0;

	lt_name(name, "sdkb");
	job.name = name;
	job.restore = false;
	job.file_size = 0;
	ASSERT_EQ(0, lt_spawn(&cl, sdk_client, &job));
	ASSERT_EQ(0, lt_recv(&cl, &m, 10000));
	ASSERT_VD(NOERROR, srv_start(&s, name, false));

	/* The stream in writes of varying sizes, WINDOW in flight. */
	for (i = 0; off < total; i++) {
		struct srv_cmd *c = &cmds[i % WINDOW];
		uint32_t size = 512 * (1 + (uint32_t)(i * 37) % 128);
		uint32_t k;

		if (size > total - off)
			size = (uint32_t)(total - off);
		if (i >= WINDOW) {
			ASSERT_TRUE(srv_wait(c, 5000));
			if (c->cmd.completionCode != 0 ||
			    c->cmd.bytesTransferred != c->cmd.size)
				bad++;
		}
		for (k = 0; k < size; k++)
			s.buf[i % WINDOW][k] = stream_byte(off + k);
		ASSERT_VD(NOERROR, srv_send(s.dev, c, VDC_Write, (int32_t)size,
					    (int64_t)off, s.buf[i % WINDOW]));
		off += size;
		sent++;
	}
	for (i = 0; i < WINDOW && i < sent; i++) {
		ASSERT_TRUE(srv_wait(&cmds[i], 5000));
		if (cmds[i].cmd.completionCode != 0)
			bad++;
	}
	EXPECT_EQ(0, bad);
	/* The end of a backup: Flush, then Complete (asked for). */
	EXPECT_EQ(0, srv_simple(&s, VDC_Flush));
	EXPECT_EQ(0, srv_simple(&s, VDC_Complete));
	EXPECT_VD(NOERROR, vdi_server_close_device(s.dev));
	ASSERT_TRUE(lt_agent_done(&s.agent, 5000));
	EXPECT_VD(NOERROR, s.agent.ret);
	for (i = 0; i < WINDOW; i++)
		EXPECT_VD(NOERROR, vdi_server_free_buffer(s.set, s.buf[i],
							  XFER));
	EXPECT_VD(NOERROR, vdi_server_close(s.set));

	/* The client stored exactly the stream. */
	ASSERT_EQ(0, lt_recv(&cl, &m, 10000));
	EXPECT_EQ(2, m.op);
	EXPECT_EQ(sent + 2, m.a[0]);
	EXPECT_EQ(1, m.a[1]);
	EXPECT_EQ(1, m.a[2]);
	EXPECT_EQ((int64_t)total, m.q[0]);
	EXPECT_EQ(-1, m.q[1]);
	EXPECT_EQ(0, lt_reap(&cl, 5000));
	lt_peer_kill(&cl);
}

TEST(sdk_client_restore)
{
	struct srv_cmd cmds[WINDOW];
	char name[LT_NAME_MAX];
	struct lt_peer cl;
	struct lt_msg m;
	sdk_job job;
	struct srv s;
	const uint32_t total = 2 * 1024 * 1024 + 12345;
	uint64_t off = 0, got = 0;
	int64_t pos[WINDOW];
	bool eof = false;
	int i, r, sent = 0, bad = 0, io_dev = 0;

	lt_name(name, "sdkr");
	job.name = name;
	job.restore = true;
	job.file_size = total;
	ASSERT_EQ(0, lt_spawn(&cl, sdk_client, &job));
	ASSERT_EQ(0, lt_recv(&cl, &m, 10000));
	ASSERT_VD(NOERROR, srv_start(&s, name, true));

	/* Read until the client reports the end of its data. */
	for (i = 0; ; i++) {
		struct srv_cmd *c = &cmds[i % WINDOW];
		uint8_t *b = s.buf[i % WINDOW];

		if (i >= WINDOW) {
			ASSERT_TRUE(srv_wait(c, 5000));
			if (c->cmd.completionCode == ERROR_IO_DEVICE) {
				io_dev++;	/* queued behind the EOF */
			} else {
				uint32_t k, n = (uint32_t)c->cmd.bytesTransferred;

				for (k = 0; k < n; k++)
					if (b[k] != stream_byte(pos[i % WINDOW]
								+ k)) {
						bad++;
						break;
					}
				got += n;
				if (c->cmd.completionCode == ERROR_HANDLE_EOF)
					eof = true;
				else if (c->cmd.completionCode)
					bad++;
			}
		}
		if (eof || i > 1000)
			break;
		pos[i % WINDOW] = (int64_t)off;
		memset(b, 0, XFER);
		/* Once the client reported the EOF, the device is in
		 * IO-ERROR: SendCommand says so and the routine has run. */
		r = srv_send(s.dev, c, VDC_Read, XFER, (int64_t)off, b);
		ASSERT_TRUE(r == NOERROR || (r == VD_E_IO_ERROR && c->done &&
			    c->cmd.completionCode == ERROR_IO_DEVICE));
		off += XFER;
		sent++;
	}
	/* The ones still in flight. */
	for (int k = 1; k < WINDOW; k++) {
		struct srv_cmd *c = &cmds[(i + k) % WINDOW];

		if (i + k - WINDOW >= sent)
			continue;
		ASSERT_TRUE(srv_wait(c, 5000));
		if (c->cmd.completionCode == ERROR_IO_DEVICE)
			io_dev++;
		else
			got += (uint32_t)c->cmd.bytesTransferred;
	}
	EXPECT_TRUE(eof);
	EXPECT_EQ(0, bad);
	EXPECT_EQ((uint64_t)total, got);
	/* The EOF left the device in IO-ERROR: clear it, then end. */
	EXPECT_VD(VD_E_IO_ERROR, srv_simple(&s, VDC_Flush));
	EXPECT_EQ(0, srv_simple(&s, VDC_ClearError));
	EXPECT_EQ(0, srv_simple(&s, VDC_Complete));
	EXPECT_VD(NOERROR, vdi_server_close_device(s.dev));
	ASSERT_TRUE(lt_agent_done(&s.agent, 5000));
	EXPECT_VD(NOERROR, s.agent.ret);
	EXPECT_VD(NOERROR, vdi_server_close(s.set));

	ASSERT_EQ(0, lt_recv(&cl, &m, 10000));
	EXPECT_EQ(2, m.op);
	EXPECT_EQ(1, m.a[3]);			/* one ClearError */
	EXPECT_EQ((int64_t)total, m.q[2]);	/* it read all of its file */
	EXPECT_EQ(sent - io_dev + 2, m.a[0]);
	EXPECT_EQ(0, lt_reap(&cl, 5000));
	lt_peer_kill(&cl);
}

/* ------------------------------------------------------------------ */
/*
 * From here on, only what an SDK client has: the SDK defines neither
 * NOERROR nor INFINITE (libvdi.h, for the C server above, does), so the
 * client defines what it needs itself.
 */
#undef NOERROR
#undef INFINITE
#pragma GCC poison NOERROR INFINITE

static const int sdk_ok = 0;
static const time_t sdk_forever = -1;	/* any negative timeout */

/* ------------------------------------------------------------------ */
/* the client, as an SDK user writes it                               */


static int sdk_client(struct lt_peer *self, void *arg)
{
	const sdk_job *job = (const sdk_job *)arg;
	ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();
	ClientVirtualDevice *vd = NULL;
	std::vector<uint8_t> file;
	VDConfig config;
	VDC_Command *cmd;
	char setName[LT_NAME_MAX];
	size_t rpos = 0;
	int hr, n = 0, flushes = 0, completes = 0, clears = 0;
	struct lt_msg m;

	snprintf(setName, sizeof(setName), "%s", job->name);
	if (job->restore) {
		file.resize(job->file_size);
		for (size_t k = 0; k < file.size(); k++)
			file[k] = stream_byte(k);
	}
	memset(&config, 0, sizeof(config));
	config.deviceCount = 1;
	config.features = VDF_RequestComplete;
	hr = vds->Create(setName, &config);
	CKEQ(sdk_ok, hr);
	lt_msg_init(&m, 1);
	CK(lt_send(self, &m) == 0);

	hr = vds->GetConfiguration(10000, &config);
	CKEQ(sdk_ok, hr);
	CK(config.features & (job->restore ? VDF_ReadMedia : VDF_WriteMedia));
	CK(config.features & VDF_CompleteEnabled);
	hr = vds->OpenDevice(setName, &vd);
	CKEQ(sdk_ok, hr);
	CK(vd != NULL);

	while ((hr = vd->GetCommand(sdk_forever, &cmd)) == sdk_ok) {
		int completionCode = ERROR_SUCCESS;
		unsigned long bytesTransferred = 0;

		switch (cmd->commandCode) {
		case VDC_Write:
			file.insert(file.end(), cmd->buffer,
				    cmd->buffer + cmd->size);
			bytesTransferred = (unsigned long)cmd->size;
			break;
		case VDC_Read:
			bytesTransferred = (unsigned long)cmd->size;
			if (bytesTransferred > file.size() - rpos) {
				bytesTransferred = file.size() - rpos;
				completionCode = ERROR_HANDLE_EOF;
			}
			memcpy(cmd->buffer, file.data() + rpos,
			       bytesTransferred);
			rpos += bytesTransferred;
			break;
		case VDC_Flush:
			flushes++;
			break;
		case VDC_ClearError:
			clears++;
			break;
		case VDC_Complete:
			completes++;
			break;
		default:
			completionCode = ERROR_NOT_SUPPORTED;
			break;
		}
		hr = vd->CompleteCommand(cmd, completionCode, bytesTransferred,
					 0);
		CKEQ(sdk_ok, hr);
		n++;
	}
	CKEQ(VD_E_CLOSE, hr);
	vds->RegisterDeviceClosed();
	hr = vds->Close();
	CKEQ(sdk_ok, hr);
	delete vds;

	/* What the client saw. */
	lt_msg_init(&m, 2);
	m.a[0] = n;
	m.a[1] = flushes;
	m.a[2] = completes;
	m.a[3] = clears;
	m.q[0] = (int64_t)file.size();
	m.q[1] = -1;
	for (size_t k = 0; k < file.size(); k++)
		if (file[k] != stream_byte(k)) {
			m.q[1] = (int64_t)k;	/* first wrong byte */
			break;
		}
	m.q[2] = (int64_t)rpos;
	CK(lt_send(self, &m) == 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the SDK classes' own codes                                         */

TEST(sdk_method_codes)
{
	char name[LT_NAME_MAX], bogus[] = "lv-bogus";
	ClientVirtualDeviceSet *vds, *sec;
	ClientVirtualDevice *vd = NULL, *vx = NULL;
	unsigned int h = 0;
	VDC_Command *cmd = NULL;
	struct lt_peer rs;
	VDConfig config;
	uint8_t *p = NULL;

	lt_name(name, "sdkc");
	ASSERT_EQ(0, lt_spawn(&rs, lt_rs_main, name));
	vds = new ClientVirtualDeviceSet();
	sec = new ClientVirtualDeviceSet();
	/* No set yet. */
	EXPECT_VD(VD_E_PROTOCOL, vds->Close());
	EXPECT_VD(VD_E_PROTOCOL, vds->SignalAbort());
	EXPECT_VD(VD_E_PROTOCOL, vds->GetConfiguration(0, &config));
	EXPECT_VD(VD_E_PROTOCOL, vds->GetBufferHandle(p, &h));
	EXPECT_VD(VD_E_PROTOCOL, vds->MapBufferHandle(0, &p));
	EXPECT_VD(VD_E_INVALID, vds->OpenDevice(name, NULL));

	memset(&config, 0, sizeof(config));
	config.deviceCount = 1;
	ASSERT_VD(sdk_ok, vds->Create(name, &config));
	EXPECT_VD(VD_E_PROTOCOL, vds->Create(name, &config));
	EXPECT_VD(VD_E_TIMEOUT, vds->GetConfiguration(0, &config));
	EXPECT_VD(VD_E_PROTOCOL, sec->OpenInSecondary(name));
	ASSERT_VD(sdk_ok, lt_rs_ready(&rs, 0));
	ASSERT_VD(sdk_ok, vds->GetConfiguration(1000, &config));
	EXPECT_EQ(65536U, config.maxTransferSize);
	ASSERT_VD(sdk_ok, vds->OpenDevice(name, &vd));
	ASSERT_TRUE(vd != NULL);
	EXPECT_VD(VD_E_OPEN, vds->OpenDevice(bogus, &vx));
	EXPECT_TRUE(vx == NULL);
	EXPECT_VD(sdk_ok, sec->OpenInSecondary(name));
	ASSERT_VD(sdk_ok, lt_rs_call(&rs, RS_OPEN_DEV, -1, 0, 0, 0, 0, NULL));
	ASSERT_VD(sdk_ok, lt_rs_call(&rs, RS_AGENT, 0, 0, 0, 0, 0, NULL));

	EXPECT_VD(VD_E_TIMEOUT, vd->GetCommand(0, &cmd));
	ASSERT_VD(sdk_ok, lt_rs_call(&rs, RS_SEND, 0, VDC_Write, 1000, 9, 0,
				      NULL));
	ASSERT_VD(sdk_ok, vd->GetCommand(1000, &cmd));
	ASSERT_TRUE(cmd != NULL);
	/* Handles, in the primary and through the secondary object. */
	ASSERT_VD(sdk_ok, vds->GetBufferHandle(cmd->buffer, &h));
	ASSERT_VD(sdk_ok, sec->MapBufferHandle((int)h, &p));
	EXPECT_TRUE(lt_check(p, 1000, 0, 9));
	EXPECT_VD(VD_E_INVALID, vds->MapBufferHandle(-1, &p));
	EXPECT_VD(VD_E_INVALID, sec->MapBufferHandle((int)config.bufferAreaSize,
						     &p));
	EXPECT_VD(VD_E_INVALID, vds->GetBufferHandle((uint8_t *)bogus, &h));
	EXPECT_VD(VD_E_INVALID, vd->CompleteCommand(cmd, 0, 1001, 0));
	EXPECT_VD(sdk_ok, vd->CompleteCommand(cmd, 0, 1000, 0));
	EXPECT_VD(VD_E_INVALID, vd->CompleteCommand(cmd, 0, 1000, 0));
	EXPECT_VD(sdk_ok, sec->Close());
	/* Close with the device open: VD_E_OPEN, the set aborted. */
	vds->RegisterDeviceClosed();	/* accepted, changes nothing */
	EXPECT_VD(VD_E_OPEN, vds->Close());
	EXPECT_VD(VD_E_PROTOCOL, vds->Close());
	delete sec;
	delete vds;
	EXPECT_EQ(0, lt_peer_finish(&rs, 5000));
}

/* ------------------------------------------------------------------ */
/* copies, assignment, and who deletes the device objects              */

/*
 * The objects may be copied as in the SDK: all copies are the same set, and
 * the first destructor ends it; the other copies then get VD_E_PROTOCOL and
 * their destructors do nothing (no double free).
 */
TEST(sdk_copies_are_safe)
{
	char name[LT_NAME_MAX];
	ClientVirtualDeviceSet *a = new ClientVirtualDeviceSet();
	ClientVirtualDeviceSet b(*a);
	ClientVirtualDeviceSet c, d;
	VDConfig config;

	lt_name(name, "sdkcp");
	memset(&config, 0, sizeof(config));
	config.deviceCount = 1;
	ASSERT_VD(sdk_ok, b.Create(name, &config));
	/* The same set through the original. */
	EXPECT_VD(VD_E_PROTOCOL, a->Create(name, &config));
	EXPECT_VD(VD_E_TIMEOUT, a->GetConfiguration(0, &config));
	c = *a;		/* c's own (empty) set is lost, as with the SDK */
	EXPECT_VD(VD_E_TIMEOUT, c.GetConfiguration(0, &config));
	delete a;
	EXPECT_VD(VD_E_PROTOCOL, b.GetConfiguration(0, &config));
	EXPECT_VD(VD_E_PROTOCOL, b.Close());
	EXPECT_VD(VD_E_PROTOCOL, c.SignalAbort());
	EXPECT_VD(VD_E_PROTOCOL, c.Create(name, &config));
	/* a's destructor closed the set: the name is free again. */
	ASSERT_VD(sdk_ok, d.Create(name, &config));
	EXPECT_VD(sdk_ok, d.Close());
	/* A device object nobody opened: its calls fail cleanly. */
	ClientVirtualDevice own;
	VDC_Command *cmd = (VDC_Command *)&config;
	EXPECT_VD(VD_E_PROTOCOL, own.GetCommand(0, &cmd));
	EXPECT_TRUE(cmd == NULL);
	EXPECT_VD(VD_E_PROTOCOL, own.CompleteCommand(NULL, 0, 0, 0));
}

/* Create @name on @vds, a remote server configures it, open the device. */
static int sdk_round(struct lt_peer *rs, ClientVirtualDeviceSet *vds,
		     char *name, ClientVirtualDevice **vd)
{
	VDConfig config;
	int r;

	memset(&config, 0, sizeof(config));
	config.deviceCount = 1;
	*vd = NULL;
	if (lt_spawn(rs, lt_rs_main, name))
		return -1;
	r = vds->Create(name, &config);
	if (!r)
		r = lt_rs_ready(rs, 0);
	if (!r)
		r = vds->GetConfiguration(5000, &config);
	if (!r)
		r = vds->OpenDevice(name, vd);
	return r;
}

/*
 * One set object through three Creates: the device deleted before Close,
 * after Close, and never (the set's destructor deletes it, as the SDK's
 * sample expects); copies of device objects go stale with their device.
 */
TEST(sdk_device_ownership)
{
	char n1[LT_NAME_MAX], n2[LT_NAME_MAX], n3[LT_NAME_MAX];
	ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();
	ClientVirtualDevice *vd = NULL;
	VDC_Command *cmd;
	struct lt_peer rs;

	lt_name(n1, "sdko");
	lt_name(n2, "sdko");
	lt_name(n3, "sdko");

	/* 1: delete the device, then Close. */
	ASSERT_VD(sdk_ok, sdk_round(&rs, vds, n1, &vd));
	ASSERT_TRUE(vd != NULL);
	{
		ClientVirtualDevice copy(*vd);

		EXPECT_VD(VD_E_TIMEOUT, copy.GetCommand(0, &cmd));
		delete vd;
		EXPECT_VD(VD_E_PROTOCOL, copy.GetCommand(0, &cmd));
	}
	/* Its device was not finished: Close aborts the set. */
	EXPECT_VD(VD_E_OPEN, vds->Close());
	EXPECT_EQ(0, lt_peer_finish(&rs, 5000));

	/* 2: Create again on the same object; Close, then delete. */
	ASSERT_VD(sdk_ok, sdk_round(&rs, vds, n2, &vd));
	EXPECT_VD(VD_E_TIMEOUT, vd->GetCommand(0, &cmd));
	EXPECT_VD(VD_E_OPEN, vds->Close());
	EXPECT_VD(VD_E_ABORT, vd->GetCommand(0, &cmd));
	delete vd;
	EXPECT_EQ(0, lt_peer_finish(&rs, 5000));

	/* 3: never delete the device; the set's destructor does. */
	ASSERT_VD(sdk_ok, sdk_round(&rs, vds, n3, &vd));
	ClientVirtualDevice copy3(*vd);
	EXPECT_VD(VD_E_TIMEOUT, copy3.GetCommand(0, &cmd));
	delete vds;
	EXPECT_VD(VD_E_PROTOCOL, copy3.GetCommand(0, &cmd));
	EXPECT_EQ(0, lt_peer_finish(&rs, 5000));
}

/* ------------------------------------------------------------------ */
/* fork() while other threads are in calls                            */

static int fork_stop;

/* Calls that look their handle up, as fast as they come (VD_E_PROTOCOL:
 * the set was never created). */
static void *sdk_call_loop(void *arg)
{
	ClientVirtualDeviceSet *vds = (ClientVirtualDeviceSet *)arg;

	while (!__atomic_load_n(&fork_stop, __ATOMIC_RELAXED))
		vds->SignalAbort();
	return NULL;
}

/*
 * A child forked while other threads are in SDK calls destroys a set object
 * (as a static one is at its exit): it must not wait for the table's lock,
 * held at the fork by a thread the child does not have.  Each child gets
 * 5 s; a race, so many forks: 300, or as many as 12 s allow (the debug
 * kernel under TCG, with both CPUs taken by the calling threads, forks
 * slowly; the harness gives a test 30 s).
 */
TEST(sdk_fork_child_not_locked_out)
{
	ClientVirtualDeviceSet *busy = new ClientVirtualDeviceSet();
	int64_t budget_end = lt_now_ms() + 12000;
	pthread_t th[2];
	int i, forks, hung = 0, failed = 0;

	__atomic_store_n(&fork_stop, 0, __ATOMIC_RELAXED);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, sdk_call_loop, busy));
	for (i = 0; i < 300 && lt_now_ms() < budget_end; i++) {
		ClientVirtualDeviceSet *mine = new ClientVirtualDeviceSet();
		int64_t end;
		int st = 0;
		pid_t pid, w;

		pid = fork();
		if (pid == 0) {
			delete mine;
			_exit(0);
		}
		if (pid < 0) {
			failed++;
			break;
		}
		end = lt_now_ms() + 5000;
		while ((w = waitpid(pid, &st, WNOHANG)) == 0 &&
		       lt_now_ms() < end)
			usleep(1000);
		if (w == 0) {
			hung++;
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		} else if (w != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			failed++;
		}
		delete mine;
	}
	forks = i;
	__atomic_store_n(&fork_stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	delete busy;
	TH_LOG("%d forks", forks);
	EXPECT_EQ(0, hung);
	EXPECT_EQ(0, failed);
	EXPECT_LE(20, forks);	/* enough of them to mean something */
}

TEST_HARNESS_MAIN
