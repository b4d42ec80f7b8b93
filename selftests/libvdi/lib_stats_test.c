// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvdi: the figures API (vdi_stats(3)).  The verdict's thresholds on
 * made-up snapshots; then real sets: a client process and this process as
 * the engine move a known stream, and both sides' snapshots, the list and
 * a snapshot by id agree with it; an administrator's abort; another user
 * is refused; the bad arguments.
 */
#include "lib_test_util.h"

#include <semaphore.h>


#define NCMD		8
#define XFER		65536U
#define STRANGER	65534

/* ---------------------------------------------------------------- verdict */

static void fake(vdi_stats *st, unsigned int ndevs, uint64_t busy_ms,
		 uint64_t idle_ms)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	st->ndevs = ndevs;
	for (i = 0; i < ndevs; i++) {
		st->devs[i].completed = 10;
		st->devs[i].client_busy_ns = busy_ms * 1000000;
		st->devs[i].client_idle_ns = idle_ms * 1000000;
	}
}

TEST(verdict_blames_the_side_that_was_waited_on)
{
	vdi_stats st;
	vdi_verdict v;

	fake(&st, 1, 830, 170);
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, -1, &v));
	EXPECT_EQ(VDI_SIDE_CLIENT, v.side);
	EXPECT_EQ(83U, v.client_pct);
	EXPECT_STREQ("client storage: 83% of the time the engine waited on "
		     "the client", v.text);

	fake(&st, 1, 100, 900);
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, 0, &v));
	EXPECT_EQ(VDI_SIDE_ENGINE, v.side);
	EXPECT_EQ(10U, v.client_pct);
	EXPECT_NE(NULL, strstr(v.text, "engine: 90%"));

	fake(&st, 1, 500, 500);
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, -1, &v));
	EXPECT_EQ(VDI_SIDE_BALANCED, v.side);

	/* The edges: 60% is the client's, 40% the engine's. */
	fake(&st, 1, 600, 400);
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, -1, &v));
	EXPECT_EQ(VDI_SIDE_CLIENT, v.side);
	fake(&st, 1, 400, 600);
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, -1, &v));
	EXPECT_EQ(VDI_SIDE_ENGINE, v.side);
}

TEST(verdict_sums_devices_or_judges_one)
{
	vdi_stats st;
	vdi_verdict v;

	fake(&st, 2, 900, 100);
	st.devs[1].client_busy_ns = 100 * 1000000ULL;
	st.devs[1].client_idle_ns = 900 * 1000000ULL;
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, -1, &v));
	EXPECT_EQ(VDI_SIDE_BALANCED, v.side);
	EXPECT_EQ(50U, v.client_pct);
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, 0, &v));
	EXPECT_EQ(VDI_SIDE_CLIENT, v.side);
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, 1, &v));
	EXPECT_EQ(VDI_SIDE_ENGINE, v.side);
}

TEST(verdict_needs_something_to_judge)
{
	vdi_stats st;
	vdi_verdict v;

	fake(&st, 1, 800, 200);
	st.devs[0].completed = 0;
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, -1, &v));
	EXPECT_EQ(VDI_SIDE_NONE, v.side);
	fake(&st, 1, 4, 5);	/* 9 ms of shared time */
	ASSERT_VD(NOERROR, vdi_stats_verdict(&st, -1, &v));
	EXPECT_EQ(VDI_SIDE_NONE, v.side);

	fake(&st, 2, 800, 200);
	EXPECT_VD(VD_E_INVALID, vdi_stats_verdict(&st, 2, &v));
	EXPECT_VD(VD_E_INVALID, vdi_stats_verdict(&st, -2, &v));
	EXPECT_VD(VD_E_INVALID, vdi_stats_verdict(NULL, -1, &v));
	EXPECT_VD(VD_E_INVALID, vdi_stats_verdict(&st, -1, NULL));
}

/* ---------------------------------------------------------------- real sets */

/*
 * The client process: create @name, then take and complete every command
 * with all its bytes until the normal end.  Its exit status: 0, or the
 * step that failed; before the end it checks its own snapshot.
 */
static int client_proc(const char *name, int ready)
{
	vdi_client_set *set = vdi_client_set_new();
	VDConfig cfg = { .deviceCount = 1 };
	vdi_client_device *dev;
	VDC_Command *cmd;
	vdi_stats st;
	int ret;

	if (!set || vdi_client_create(set, name, &cfg))
		return 10;
	if (write(ready, "r", 1) != 1)
		return 11;
	ret = vdi_client_get_configuration(set, 10000, &cfg);
	if (ret == VD_E_ABORT)
		return 0;	/* the abort case ends here */
	if (ret || vdi_client_open_device(set, name, &dev))
		return 12;
	while (!(ret = vdi_client_get_command(dev, 10000, &cmd)))
		if (vdi_client_complete_command(dev, cmd, 0, cmd->size, 0))
			return 13;
	if (ret != VD_E_CLOSE)
		return 14;
	if (vdi_client_get_stats(set, &st) || st.ndevs != 1 ||
	    st.devs[0].completed != NCMD ||
	    st.devs[0].bytes_written != (uint64_t)NCMD * XFER)
		return 15;
	vdi_client_close(set);
	vdi_client_set_free(set);
	return 0;
}

static pid_t spawn_client(struct __test_metadata *_metadata, const char *name)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (!pid) {
		alarm(LT_CHILD_ALARM);
		close(p[0]);
		_exit(client_proc(name, p[1]));
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		TH_LOG("the client did not create its set");
		pid = -1;
	}
	close(p[0]);
	return pid;
}

static int reap_client(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

struct engine {
	vdi_server_set *set;
	vdi_server_device *dev;
	pthread_t agent;
	sem_t done;
};

static void routine(VDS_Command *cmd)
{
	sem_post((sem_t *)cmd->completionContext);
}

static void *agent(void *arg)
{
	vdi_server_execute_completion_agent(((struct engine *)arg)->set);
	return NULL;
}

/* Open and configure @name as its engine, with one device open. */
static int engine_open(struct engine *e, const char *name)
{
	int ret;

	memset(e, 0, sizeof(*e));
	sem_init(&e->done, 0, 0);
	ret = vdi_server_open(&e->set, NULL, name);
	if (!ret)
		ret = vdi_server_begin_configuration(e->set, VDF_WriteMedia, 0,
						     512, XFER, 0);
	if (!ret)
		ret = vdi_server_request_buffers(e->set, XFER, 0, 1);
	if (!ret)
		ret = vdi_server_end_configuration(e->set);
	if (!ret)
		ret = vdi_server_open_device(e->set, name, &e->dev);
	if (!ret && pthread_create(&e->agent, NULL, agent, e))
		ret = VD_E_UNEXPECTED;
	if (!ret)	/* SendCommand needs the agent running */
		ret = vdi_server_wait_agent(e->set, 10000);
	return ret;
}

/* NCMD writes of XFER bytes, one at a time. */
static int engine_stream(struct engine *e)
{
	VDS_Command cmd;
	unsigned int i;
	uint8_t *buf;
	int ret;

	ret = vdi_server_allocate_buffer(e->set, &buf, XFER, 0);
	if (ret)
		return ret;
	memset(buf, 0x5a, XFER);
	for (i = 0; i < NCMD; i++) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.commandCode = VDC_Write;
		cmd.size = XFER;
		cmd.buffer = buf;
		cmd.completionRoutine = (uint8_t *)routine;
		cmd.completionContext = (uint8_t *)&e->done;
		ret = vdi_server_send_command(e->dev, &cmd);
		if (ret)
			return ret;
		sem_wait(&e->done);
		if (cmd.completionCode)
			return VD_E_UNEXPECTED;
	}
	return NOERROR;
}

static void engine_finish(struct engine *e)
{
	if (e->dev)
		vdi_server_close_device(e->dev);
	if (e->agent)
		pthread_join(e->agent, NULL);
	vdi_server_close(e->set);
	sem_destroy(&e->done);
}

static bool listed(uint64_t id)
{
	uint64_t ids[256];
	unsigned int total = 0, i;

	if (vdi_stats_list(ids, 256, &total))
		return false;
	for (i = 0; i < total && i < 256; i++)
		if (ids[i] == id)
			return true;
	return false;
}

TEST(both_sides_see_the_stream_they_moved)
{
	char name[LT_NAME_MAX];
	struct engine e;
	vdi_stats st, by_id;
	pid_t client;

	lt_name(name, "stats");
	client = spawn_client(_metadata, name);
	ASSERT_GT(client, 0);
	ASSERT_VD(NOERROR, engine_open(&e, name));
	ASSERT_VD(NOERROR, engine_stream(&e));

	ASSERT_VD(NOERROR, vdi_server_get_stats(e.set, &st));
	EXPECT_STREQ(name, st.set.name);
	EXPECT_EQ(VDI_STATE_READY, st.set.state);
	EXPECT_EQ((uint32_t)getpid(), st.set.server_pid);
	EXPECT_EQ((uint32_t)client, st.set.client_pid);
	ASSERT_EQ(1U, st.ndevs);
	EXPECT_EQ((uint64_t)NCMD, st.devs[0].sent);
	EXPECT_EQ((uint64_t)NCMD, st.devs[0].sent_by_code[VDC_Write]);
	EXPECT_EQ((uint64_t)NCMD, st.devs[0].completed);
	EXPECT_EQ((uint64_t)NCMD * XFER, st.devs[0].bytes_written);
	EXPECT_EQ(0U, st.devs[0].bytes_read);

	/* The same set, by id, as the list gives it. */
	EXPECT_TRUE(listed(st.set.id));
	ASSERT_VD(NOERROR, vdi_stats_get(st.set.id, &by_id));
	EXPECT_STREQ(name, by_id.set.name);
	EXPECT_EQ(st.devs[0].bytes_written, by_id.devs[0].bytes_written);

	engine_finish(&e);
	EXPECT_EQ(0, reap_client(client));
	/* Gone with its last fd. */
	EXPECT_FALSE(listed(st.set.id));
	EXPECT_VD(VD_E_INVALID, vdi_stats_get(st.set.id, &by_id));
}

TEST(an_administrator_aborts_a_set_from_outside)
{
	char name[LT_NAME_MAX];
	struct engine e;
	vdi_stats st;
	pid_t client;

	lt_name(name, "abort");
	client = spawn_client(_metadata, name);
	ASSERT_GT(client, 0);
	ASSERT_VD(NOERROR, vdi_server_open(&e.set, NULL, name));
	ASSERT_VD(NOERROR, vdi_server_get_stats(e.set, &st));
	EXPECT_EQ(VDI_ABORT_NONE, st.set.abort_reason);

	ASSERT_VD(NOERROR, vdi_stats_abort(st.set.id));
	ASSERT_VD(NOERROR, vdi_server_get_stats(e.set, &st));
	EXPECT_EQ(VDI_STATE_ABORTED, st.set.state);
	EXPECT_EQ(VDI_ABORT_ADMIN, st.set.abort_reason);
	EXPECT_EQ((uint32_t)getpid(), st.set.abort_pid);
	EXPECT_EQ(VDI_ABORT_NO_DEVICE, st.set.abort_device);
	EXPECT_VD(VD_E_ABORT, vdi_server_begin_configuration(e.set,
				VDF_WriteMedia, 0, 512, XFER, 0));
	/* Again: nothing more to do, and no error. */
	EXPECT_VD(NOERROR, vdi_stats_abort(st.set.id));
	vdi_server_close(e.set);
	EXPECT_EQ(0, reap_client(client));
}

TEST(another_user_can_neither_see_nor_abort_a_set)
{
	char name[LT_NAME_MAX];
	vdi_server_set *s;
	vdi_stats st;
	pid_t client, stranger;
	int status;

	lt_name(name, "stranger");
	client = spawn_client(_metadata, name);
	ASSERT_GT(client, 0);
	ASSERT_VD(NOERROR, vdi_server_open(&s, NULL, name));
	ASSERT_VD(NOERROR, vdi_server_get_stats(s, &st));

	lt_node_open_to_all();
	stranger = fork();
	if (!stranger) {
		vdi_stats mine;

		alarm(LT_CHILD_ALARM);
		if (lt_become(STRANGER, 0))
			_exit(20);
		if (listed(st.set.id))
			_exit(21);
		if (vdi_stats_get(st.set.id, &mine) != VD_E_SECURITY)
			_exit(22);
		if (vdi_stats_abort(st.set.id) != VD_E_SECURITY)
			_exit(23);
		_exit(0);
	}
	ASSERT_EQ(stranger, waitpid(stranger, &status, 0));
	lt_node_restore();
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		TH_LOG("stranger: status %#x", status);
	}
	/* Unharmed. */
	ASSERT_VD(NOERROR, vdi_server_get_stats(s, &st));
	EXPECT_EQ(VDI_ABORT_NONE, st.set.abort_reason);
	EXPECT_NE(VDI_STATE_ABORTED, st.set.state);
	vdi_server_signal_abort(s);
	vdi_server_close(s);
	EXPECT_EQ(0, reap_client(client));
}

TEST(bad_arguments_are_refused)
{
	unsigned int total = 12345;
	vdi_stats st;

	EXPECT_VD(VD_E_INVALID, vdi_stats_get(0, &st));
	EXPECT_VD(VD_E_INVALID, vdi_stats_get(1, NULL));
	EXPECT_VD(VD_E_INVALID, vdi_stats_get(UINT64_MAX, &st));
	EXPECT_VD(VD_E_INVALID, vdi_stats_abort(0));
	EXPECT_VD(VD_E_INVALID, vdi_stats_abort(UINT64_MAX));
	EXPECT_VD(VD_E_INVALID, vdi_stats_list(NULL, 1, &total));
	EXPECT_VD(NOERROR, vdi_stats_list(NULL, 0, &total));
	EXPECT_NE(12345U, total);
	EXPECT_VD(VD_E_INVALID, vdi_server_get_stats(NULL, &st));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_stats(NULL, &st));
}

TEST(a_client_without_a_set_has_no_figures)
{
	vdi_client_set *c = vdi_client_set_new();
	vdi_stats st;

	ASSERT_NE(NULL, c);
	EXPECT_VD(VD_E_PROTOCOL, vdi_client_get_stats(c, &st));
	EXPECT_VD(VD_E_INVALID, vdi_client_get_stats(c, NULL));
	vdi_client_set_free(c);
}

TEST_HARNESS_MAIN
