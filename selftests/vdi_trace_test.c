// SPDX-License-Identifier: GPL-2.0
/*
 * The module's tracepoints (docs/ABI.md, "Tracepoints"), read the way
 * perf, trace-cmd and bpftrace read them: through tracefs.  Each test
 * enables events/vdi/, clears the buffer, runs VDI between two processes
 * (or one, for the IO-ERROR flush), and reads the trace back: every event
 * of the run appears, for each command in the order send, take, complete,
 * reap, with the fields the processes saw; a backup made with ENTER (one
 * call per turn, API 1.3) gives the very same events.  The format files
 * name every field and resolve every symbol to a number, which is what the
 * tools parse.
 */
#include "vdi_test_util.h"

#include <sys/mount.h>

#define TR_TRACEFS	"/sys/kernel/tracing"
#define TR_DEBUGFS	"/sys/kernel/debug/tracing"
#define TR_TEXT_MAX	(1 << 20)	/* the trace of one test is far smaller */
#define TR_MAX_EVENTS	256
#define TR_MISSING	0x5eeded5eeded5eedULL	/* a field that is not there */

#define TR_NDEV		2
#define TR_NCMD		6
#define TR_DEPTH	8
#define TR_AREA		(1U << 20)
#define TR_BLOCK	512U
#define TR_MAXXFER	65536U
#define TR_ABORTED	995U		/* ERROR_OPERATION_ABORTED */

static const char *const tr_event_names[] = {
	"vdi_create", "vdi_open", "vdi_config", "vdi_send",
	"vdi_take", "vdi_complete", "vdi_reap", "vdi_abort",
};

/* ------------------------------------------------------------------ */
/* tracefs                                                            */

struct tr_state {
	char dir[64];			/* where tracefs is */
	char clock[32];			/* trace_clock before the test */
	int was_on;			/* tracing_on before the test, -1 unread */
	bool clock_changed;
	bool enabled;			/* events/vdi/enable is ours to undo */
};

static int tr_path(const struct tr_state *t, const char *file, char *buf,
		   size_t size)
{
	int n = snprintf(buf, size, "%s/%s", t->dir, file);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Write @val to a tracefs file (O_TRUNC and "" clear the trace). */
static int tr_write(const struct tr_state *t, const char *file,
		    const char *val, int flags)
{
	size_t len = strlen(val);
	char path[256];
	ssize_t n = 0;
	int fd, r;

	r = tr_path(t, file, path, sizeof(path));
	if (r)
		return r;
	fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	if (len)
		n = write(fd, val, len);
	r = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
	close(fd);
	return r;
}

/* Read a tracefs file into @buf, NUL-terminated: its length, or -errno. */
static ssize_t tr_read(const struct tr_state *t, const char *file, char *buf,
		       size_t size)
{
	char path[256];
	size_t len = 0;
	ssize_t n;
	int fd, r;

	r = tr_path(t, file, path, sizeof(path));
	if (r)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf + len, size - 1 - len)) > 0) {
		len += n;
		if (len == size - 1) {
			close(fd);
			return -EFBIG;
		}
	}
	r = n < 0 ? -errno : 0;
	close(fd);
	buf[len] = '\0';
	return r ? r : (ssize_t)len;
}

/*
 * Where tracefs is: its own mount point, mounted here if nothing is there
 * yet, else the old place under debugfs.
 */
static int tr_find(struct tr_state *t)
{
	const char *dir;

	if (!access(TR_TRACEFS "/events", F_OK))
		dir = TR_TRACEFS;
	else if (!mount("nodev", TR_TRACEFS, "tracefs", 0, NULL) &&
		 !access(TR_TRACEFS "/events", F_OK))
		dir = TR_TRACEFS;
	else if (!access(TR_DEBUGFS "/events", F_OK))
		dir = TR_DEBUGFS;
	else
		return -ENOENT;
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	return 0;
}

/* The clock in use: trace_clock lists them all, that one in brackets. */
static int tr_current_clock(const struct tr_state *t, char *out, size_t size)
{
	char buf[512], *open_br, *close_br;
	ssize_t n = tr_read(t, "trace_clock", buf, sizeof(buf));

	if (n < 0)
		return n;
	open_br = strchr(buf, '[');
	close_br = open_br ? strchr(open_br, ']') : NULL;
	if (!close_br || (size_t)(close_br - open_br) > size)
		return -EBADMSG;
	snprintf(out, size, "%.*s", (int)(close_br - open_br - 1), open_br + 1);
	return 0;
}

/*
 * Enable the vdi events on an empty buffer.  The clock is "global": the
 * two processes run on different CPUs, and the buffer is merged from
 * per-CPU buffers by timestamp, which only a clock common to every CPU
 * keeps in the order things happened.  False: skipped (not root).
 */
static bool tr_begin(struct __test_metadata *_metadata, struct tr_state *t)
{
	char buf[16];

	t->was_on = -1;
	if (geteuid())
		SKIP(return false, "tracefs needs root");
	ASSERT_EQ(0, tr_find(t)) TH_LOG("no tracefs at " TR_TRACEFS
					 " (kernel without CONFIG_TRACING?)");
	ASSERT_EQ(0, access(t->dir, W_OK));
	ASSERT_EQ(0, tr_current_clock(t, t->clock, sizeof(t->clock)));
	ASSERT_LT(0, tr_read(t, "tracing_on", buf, sizeof(buf)));
	t->was_on = buf[0] == '1';
	ASSERT_EQ(0, tr_write(t, "trace_clock", "global", O_TRUNC));
	t->clock_changed = true;
	ASSERT_EQ(0, tr_write(t, "events/vdi/enable", "1", O_TRUNC))
		TH_LOG("no events/vdi: the module has no tracepoints");
	t->enabled = true;
	ASSERT_EQ(0, tr_write(t, "tracing_on", "1", O_TRUNC));
	ASSERT_EQ(0, tr_write(t, "trace", "", O_TRUNC));
	return true;
}

/* Put tracefs back as tr_begin() found it. */
static void tr_end(struct tr_state *t)
{
	if (t->enabled)
		tr_write(t, "events/vdi/enable", "0", O_TRUNC);
	if (t->clock_changed)
		tr_write(t, "trace_clock", t->clock, O_TRUNC);
	if (t->was_on == 0)
		tr_write(t, "tracing_on", "0", O_TRUNC);
	t->enabled = t->clock_changed = false;
}

/* ------------------------------------------------------------------ */
/* the trace, parsed                                                  */

struct tr_event {
	char name[24];			/* "vdi_send" */
	int pid;
	char args[480];			/* "set=1 device=0 ..." */
};

struct tr_log {
	int n;
	struct tr_event ev[TR_MAX_EVENTS];
};

/*
 * One line of the trace file:
 *   "  comm-PID  [CPU] flags  TIMESTAMP: vdi_EVENT: key=value key=value"
 * Lines of other events, and the header's "#" lines, are skipped.
 */
static int tr_parse_line(const char *line, struct tr_event *e)
{
	const char *p = line, *tok_end, *dash, *ev, *colon;

	while (*p == ' ')
		p++;
	if (*p == '#' || !*p)
		return 0;
	ev = strstr(p, ": vdi_");
	if (!ev)
		return 0;
	tok_end = p + strcspn(p, " ");	/* end of "comm-PID" */
	dash = NULL;
	for (const char *q = p; q < tok_end; q++)
		if (*q == '-')
			dash = q;
	if (!dash)
		return -EBADMSG;
	e->pid = atoi(dash + 1);
	ev += 2;
	colon = strchr(ev, ':');
	if (!colon || colon[1] != ' ' || (size_t)(colon - ev) >= sizeof(e->name))
		return -EBADMSG;
	snprintf(e->name, sizeof(e->name), "%.*s", (int)(colon - ev), ev);
	snprintf(e->args, sizeof(e->args), "%.*s",
		 (int)strcspn(colon + 2, "\n"), colon + 2);
	return 1;
}

static int tr_collect(const struct tr_state *t, struct tr_log *log)
{
	char *text = malloc(TR_TEXT_MAX), *line, *save = NULL;
	ssize_t n;
	int r = 0;

	if (!text)
		return -ENOMEM;
	n = tr_read(t, "trace", text, TR_TEXT_MAX);
	if (n < 0) {
		free(text);
		return n;
	}
	log->n = 0;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (log->n == TR_MAX_EVENTS) {
			r = -E2BIG;
			break;
		}
		r = tr_parse_line(line, &log->ev[log->n]);
		if (r < 0) {
			fprintf(stderr, "# unparsable trace line: %s\n", line);
			break;
		}
		log->n += r;
		r = 0;
	}
	free(text);
	return r;
}

/* The text of an event's key=value; false when the key is not there. */
static bool tr_arg(const struct tr_event *e, const char *key, char *out,
		   size_t size)
{
	size_t klen = strlen(key);
	const char *p = e->args;

	while (*p) {
		size_t vlen;

		while (*p == ' ')
			p++;
		vlen = strcspn(p, " ");
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			snprintf(out, size, "%.*s", (int)(vlen - klen - 1),
				 p + klen + 1);
			return true;
		}
		p += vlen;
	}
	return false;
}

/* A number (decimal or 0x hex); TR_MISSING when the key is not there. */
static uint64_t tr_u(const struct tr_event *e, const char *key)
{
	char v[64], *end;
	uint64_t x;

	if (!tr_arg(e, key, v, sizeof(v)))
		goto missing;
	errno = 0;
	x = v[0] == '-' ? (uint64_t)strtoll(v, &end, 0) : strtoull(v, &end, 0);
	if (errno || end == v || *end)
		goto missing;
	return x;
missing:
	fprintf(stderr, "# %s: no number %s= in \"%s\"\n", e->name, key,
		e->args);
	return TR_MISSING;
}

static int64_t tr_s(const struct tr_event *e, const char *key)
{
	return (int64_t)tr_u(e, key);
}

/* Whether key's text is @want. */
static bool tr_is(const struct tr_event *e, const char *key, const char *want)
{
	char v[VDI_NAME_MAX];

	return tr_arg(e, key, v, sizeof(v)) && !strcmp(v, want);
}

/*
 * The first event from index @from on named @name (NULL: any) of set
 * @set whose @key is @val (@key NULL: any); -1 when there is none.
 */
static int tr_find_ev(const struct tr_log *log, int from, const char *name,
		      uint64_t set, const char *key, uint64_t val)
{
	for (int i = from < 0 ? 0 : from; i < log->n; i++) {
		const struct tr_event *e = &log->ev[i];

		if (name && strcmp(e->name, name))
			continue;
		if (tr_u(e, "set") != set)
			continue;
		if (key && tr_u(e, key) != val)
			continue;
		return i;
	}
	return -1;
}

static int tr_count(const struct tr_log *log, const char *name, uint64_t set)
{
	int n = 0;

	for (int i = 0; i < log->n; i++)
		n += !strcmp(log->ev[i].name, name) &&
		     tr_u(&log->ev[i], "set") == set;
	return n;
}

/* The id of the set a vdi_create event names @name (TR_MISSING: none). */
static uint64_t tr_set_of(const struct tr_log *log, const char *name)
{
	for (int i = 0; i < log->n; i++)
		if (!strcmp(log->ev[i].name, "vdi_create") &&
		    tr_is(&log->ev[i], "name", name))
			return tr_u(&log->ev[i], "set");
	return TR_MISSING;
}

static void tr_dump(const struct tr_log *log)
{
	for (int i = 0; i < log->n; i++)
		fprintf(stderr, "# [%d] pid %d %s: %s\n", i, log->ev[i].pid,
			log->ev[i].name, log->ev[i].args);
}

/* ------------------------------------------------------------------ */
/* a backup: the server child sends, the client parent completes      */

struct tr_cmd {
	uint32_t dev;
	struct vdi_send s;
};

/* Three writes and a flush on device 0, a write and a flush on device 1. */
static const struct tr_cmd tr_plan[TR_NCMD] = {
	{ 0, { 0x100, VDI_VDC_WRITE, 65536, 0, 0 } },
	{ 0, { 0x101, VDI_VDC_WRITE, 65536, 65536, 65536 } },
	{ 0, { 0x102, VDI_VDC_WRITE, 4096, 131072, 131072 } },
	{ 0, { 0x103, T_VDC_FLUSH, 0, 135168, VDI_NO_BUFFER } },
	{ 1, { 0x200, VDI_VDC_WRITE, 8192, 0, 262144 } },
	{ 1, { 0x201, T_VDC_FLUSH, 0, 8192, VDI_NO_BUFFER } },
};

/* What the client answers to a command. */
static struct vdi_done tr_answer(const struct vdi_command *c)
{
	struct vdi_done d = { .tag = c->tag };

	if (c->code == VDI_VDC_WRITE) {
		d.bytes_transferred = c->size;
		d.position = c->position + c->size;
	} else {
		d.position = c->position + 7;
	}
	return d;
}

struct tr_shared {
	char name[VDI_NAME_MAX];
	bool enter;			/* both sides make their turns with ENTER */
	pid_t server_pid;
	int ntaken;
	uint32_t taken_dev[TR_NCMD];
	struct vdi_command taken[TR_NCMD];	/* as the client got them */
	struct vdi_completion reaped[TR_NCMD];	/* as the agent got them */
};

/* Open the set as its server, configure it, open its devices. */
static int tr_server_open(struct tr_shared *x, int *set, int *dev,
			  unsigned int ndev)
{
	unsigned int i;

	*set = vdi_open_server(x->name);
	CK(*set >= 0);
	CKEQ(0, vdi_begin_config(*set, VDI_VDF_WRITE_MEDIA, 0, TR_BLOCK,
				 TR_MAXXFER, TR_DEPTH));
	CKEQ(0, vdi_end_config(*set, TR_AREA));
	for (i = 0; i < ndev; i++) {
		char dn[VDI_NAME_MAX];
		uint32_t idx;

		vdi_dev_name(dn, x->name, i);
		dev[i] = vdi_open_device(*set, dn, 0, &idx);
		CK(dev[i] >= 0);
		CKEQ(i, idx);
	}
	return 0;
}

/* The engine's turns with ENTER: the whole plan in one call, then reaps. */
static int tr_server_enter(struct tr_shared *x, int set)
{
	struct vdi_send_to to[TR_NCMD];
	struct vdi_enter e;
	int n = 0, r;

	for (int i = 0; i < TR_NCMD; i++)
		to[i] = (struct vdi_send_to){ .send = tr_plan[i].s,
					      .device_index = tr_plan[i].dev };
	vdi_enter_init(&e, to, TR_NCMD, x->reaped, TR_NCMD, 10000, 50);
	r = vdi_enter(set, &e);
	CKEQ(TR_NCMD, e.submitted);
	while (r > 0 && (n += r) < TR_NCMD) {
		vdi_enter_init(&e, NULL, 0, x->reaped + n, TR_NCMD - n, 10000,
			       50);
		r = vdi_enter(set, &e);
	}
	CKEQ(TR_NCMD, n);
	return 0;
}

/* The engine: send the plan, reap every completion, end normally. */
static int tr_server(struct vdi_chan *ch, void *arg)
{
	struct tr_shared *x = arg;
	struct vdi_completion extra;
	int set, dev[TR_NDEV], err, r;
	unsigned int i;

	x->server_pid = getpid();
	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	r = tr_server_open(x, &set, dev, TR_NDEV);
	if (r)
		return r;
	if (x->enter) {
		r = tr_server_enter(x, set);
		if (r)
			return r;
	} else {
		for (i = 0; i < TR_NCMD; i++)
			CKEQ(1, vdi_send(dev[tr_plan[i].dev], &tr_plan[i].s, 1));
		CKEQ(TR_NCMD, vdi_wait_n(set, x->reaped, TR_NCMD, 10000, &err));
	}
	for (i = 0; i < TR_NDEV; i++)
		CKEQ(0, vdi_close_device(dev[i]));
	CKEQ(-ESHUTDOWN, vdi_wait(set, &extra, 1, 10000));
	for (i = 0; i < TR_NDEV; i++)
		close(dev[i]);
	close(set);
	return 0;
}

/*
 * The backup application's turns with ENTER: each call on a device hands
 * in the completions of what it took there last time and takes the next.
 */
static void tr_client_enter(struct __test_metadata *_metadata,
			    struct tr_shared *x, const int *dev)
{
	struct vdi_done done[TR_NDEV][TR_NCMD];
	int ndone[TR_NDEV] = { 0 }, r;
	struct vdi_command cmd[TR_NCMD];
	struct vdi_enter e;
	int64_t end;

	end = vdi_now_ms() + 10000;
	while (x->ntaken < TR_NCMD) {
		ASSERT_GT(end, vdi_now_ms()) TH_LOG("took %d", x->ntaken);
		for (unsigned int d = 0; d < TR_NDEV &&
					 x->ntaken < TR_NCMD; d++) {
			vdi_enter_init(&e, done[d], ndone[d], cmd, TR_NCMD, 20,
				       50);
			r = vdi_enter(dev[d], &e);
			ASSERT_EQ((uint32_t)ndone[d], e.submitted);
			ndone[d] = 0;
			if (r == -ETIMEDOUT)
				continue;
			ASSERT_LT(0, r);
			ASSERT_GE(TR_NCMD, x->ntaken + r);
			for (int k = 0; k < r; k++) {
				x->taken_dev[x->ntaken] = d;
				x->taken[x->ntaken++] = cmd[k];
				done[d][k] = tr_answer(&cmd[k]);
			}
			ndone[d] = r;
		}
	}
	/* The last completions, then the end of each device. */
	for (unsigned int d = 0; d < TR_NDEV; d++) {
		vdi_enter_init(&e, done[d], ndone[d], NULL, 0, 0, 0);
		ASSERT_EQ(0, vdi_enter(dev[d], &e));
		ASSERT_EQ((uint32_t)ndone[d], e.submitted);
	}
	for (unsigned int d = 0; d < TR_NDEV; d++) {
		vdi_enter_init(&e, NULL, 0, cmd, 1, 10000, 50);
		EXPECT_EQ(-ESHUTDOWN, vdi_enter(dev[d], &e));
	}
}

/* The backup application: create, take and complete all, end. */
static void tr_client(struct __test_metadata *_metadata,
		      struct tr_shared *x, struct vdi_chan *ch)
{
	struct vdi_command cmd[TR_NCMD];
	struct vdi_done done[TR_NCMD];
	int set, dev[TR_NDEV], r;
	struct vdi_config cfg;
	int64_t end;

	set = vdi_create_set(x->name, TR_NDEV, 0);
	ASSERT_LE(0, set);
	ASSERT_EQ(0, vdi_chan_send(ch, 1));
	ASSERT_EQ(0, vdi_get_config(set, 10000, &cfg));
	for (unsigned int i = 0; i < TR_NDEV; i++) {
		char dn[VDI_NAME_MAX];
		uint32_t idx;

		vdi_dev_name(dn, x->name, i);
		dev[i] = vdi_open_device(set, dn, 0, &idx);
		ASSERT_LE(0, dev[i]);
		ASSERT_EQ(i, idx);
	}
	if (x->enter) {
		tr_client_enter(_metadata, x, dev);
		goto out;
	}
	end = vdi_now_ms() + 10000;
	while (x->ntaken < TR_NCMD) {
		ASSERT_GT(end, vdi_now_ms()) TH_LOG("took %d", x->ntaken);
		/*
		 * Once all are taken (and completed) the server may close
		 * the devices at any moment: no look after that.
		 */
		for (unsigned int d = 0; d < TR_NDEV &&
					 x->ntaken < TR_NCMD; d++) {
			r = vdi_get(dev[d], cmd, TR_NCMD, 20);
			if (r == -ETIMEDOUT)
				continue;
			ASSERT_LT(0, r);
			ASSERT_GE(TR_NCMD, x->ntaken + r);
			for (int k = 0; k < r; k++) {
				x->taken_dev[x->ntaken] = d;
				x->taken[x->ntaken++] = cmd[k];
				done[k] = tr_answer(&cmd[k]);
			}
			ASSERT_EQ(r, vdi_complete(dev[d], done, r));
		}
	}
	/* The server closes the devices once the agent has everything. */
	for (unsigned int d = 0; d < TR_NDEV; d++)
		EXPECT_EQ(-ESHUTDOWN, vdi_get(dev[d], cmd, 1, 10000));
out:
	for (unsigned int d = 0; d < TR_NDEV; d++)
		close(dev[d]);
	close(set);
}

FIXTURE(trace) {
	struct tr_state t;
	struct vdi_proc p;
	struct tr_shared *x;
	struct tr_log *log;
};

FIXTURE_SETUP(trace)
{
	self->p.pid = -1;
	self->x = vdi_shared(sizeof(*self->x));
	ASSERT_NE(NULL, self->x);
	self->log = calloc(1, sizeof(*self->log));
	ASSERT_NE(NULL, self->log);
	vdi_make_name(self->x->name, "tr");
}

FIXTURE_TEARDOWN(trace)
{
	vdi_proc_kill(&self->p);
	tr_end(&self->t);
	if (self->x)
		munmap(self->x, sizeof(*self->x));
	free(self->log);
}

/* Every event of the log belongs to @set: the set id is the same in all. */
static void tr_check_one_set(struct __test_metadata *_metadata,
			     const struct tr_log *log, uint64_t set)
{
	for (int i = 0; i < log->n; i++) {
		EXPECT_EQ(set, tr_u(&log->ev[i], "set"))
			TH_LOG("event %d: %s: %s", i, log->ev[i].name,
			       log->ev[i].args);
	}
}

/* A command's events, matched by tag, carry what both processes saw. */
static void tr_check_command(struct __test_metadata *_metadata,
			     const struct tr_log *log, uint64_t set,
			     const struct tr_shared *x, int k, pid_t client)
{
	const struct vdi_command *c = &x->taken[k];
	const struct vdi_completion *r = NULL;
	const struct tr_cmd *p = NULL;
	struct vdi_done d = tr_answer(c);
	int is, it, ic, ir;

	for (int i = 0; i < TR_NCMD; i++)
		if (tr_plan[i].dev == x->taken_dev[k] &&
		    tr_plan[i].s.position == c->position &&
		    tr_plan[i].s.code == c->code)
			p = &tr_plan[i];
	ASSERT_NE(NULL, p);
	for (int i = 0; i < TR_NCMD; i++)
		if (x->reaped[i].cookie == p->s.cookie)
			r = &x->reaped[i];
	ASSERT_NE(NULL, r);

	is = tr_find_ev(log, 0, "vdi_send", set, "tag", c->tag);
	it = tr_find_ev(log, 0, "vdi_take", set, "tag", c->tag);
	ic = tr_find_ev(log, 0, "vdi_complete", set, "tag", c->tag);
	ir = tr_find_ev(log, 0, "vdi_reap", set, "tag", c->tag);
	ASSERT_LE(0, is) TH_LOG("no send of tag %#llx", (unsigned long long)c->tag);
	ASSERT_LE(0, it) TH_LOG("no take of tag %#llx", (unsigned long long)c->tag);
	ASSERT_LE(0, ic) TH_LOG("no complete of tag %#llx", (unsigned long long)c->tag);
	ASSERT_LE(0, ir) TH_LOG("no reap of tag %#llx", (unsigned long long)c->tag);
	/* One of each, in this order. */
	EXPECT_LT(is, it);
	EXPECT_LT(it, ic);
	EXPECT_LT(ic, ir);
	EXPECT_EQ(-1, tr_find_ev(log, is + 1, "vdi_send", set, "tag", c->tag));
	EXPECT_EQ(-1, tr_find_ev(log, it + 1, "vdi_take", set, "tag", c->tag));
	EXPECT_EQ(-1, tr_find_ev(log, ic + 1, "vdi_complete", set, "tag", c->tag));
	EXPECT_EQ(-1, tr_find_ev(log, ir + 1, "vdi_reap", set, "tag", c->tag));

	/* send and take: the command as sent. */
	for (int i = 0; i < 2; i++) {
		const struct tr_event *e = &log->ev[i ? it : is];

		EXPECT_EQ(p->dev, tr_u(e, "device"));
		EXPECT_EQ(p->s.size, tr_u(e, "size"));
		EXPECT_EQ(p->s.position, tr_s(e, "position"));
		EXPECT_EQ(p->s.buf_offset, tr_u(e, "buf_offset"));
		EXPECT_TRUE(tr_is(e, "code", p->s.code == VDI_VDC_WRITE ?
					     "Write" : "Flush")) TH_LOG("%s", e->args);
	}
	EXPECT_EQ(x->server_pid, log->ev[is].pid);
	EXPECT_EQ(client, log->ev[it].pid);

	/* complete and reap: the client's answer, as the agent got it. */
	for (int i = 0; i < 2; i++) {
		const struct tr_event *e = &log->ev[i ? ir : ic];

		EXPECT_EQ(p->dev, tr_u(e, "device"));
		EXPECT_EQ(0U, tr_u(e, "completion_code"));
		EXPECT_EQ(d.bytes_transferred, tr_u(e, "bytes"));
		EXPECT_EQ(d.position, tr_s(e, "position"));
		EXPECT_EQ(r->bytes_transferred, tr_u(e, "bytes"));
		EXPECT_EQ(r->position, tr_s(e, "position"));
		EXPECT_TRUE(tr_is(e, "code", p->s.code == VDI_VDC_WRITE ?
					     "Write" : "Flush")) TH_LOG("%s", e->args);
	}
	EXPECT_TRUE(tr_is(&log->ev[ic], "by", "client"));
	EXPECT_EQ(client, log->ev[ic].pid);
	EXPECT_EQ(x->server_pid, log->ev[ir].pid);
}

static void tr_backup(struct __test_metadata *_metadata,
		      FIXTURE_DATA(trace) *self, bool enter)
{
	struct tr_shared *x = self->x;
	const struct tr_log *log = self->log;
	const struct tr_event *e;
	pid_t client = getpid();
	int ic, iso, ib, iend, i, last[TR_NDEV] = { -1, -1 };
	uint64_t set;

	if (!tr_begin(_metadata, &self->t))
		return;
	x->enter = enter;
	ASSERT_EQ(0, vdi_spawn(&self->p, tr_server, x));
	tr_client(_metadata, x, &self->p.ch);
	ASSERT_EQ(0, vdi_reap(&self->p, 10000));
	ASSERT_EQ(TR_NCMD, x->ntaken);
	ASSERT_EQ(0, tr_collect(&self->t, self->log));

	set = tr_set_of(log, x->name);
	ASSERT_NE(TR_MISSING, set) TH_LOG("no vdi_create of %s", x->name);
	if (log->n != 1 + 5 + 2 + 4 * TR_NCMD)
		tr_dump(log);
	EXPECT_EQ(1 + 5 + 2 + 4 * TR_NCMD, log->n);
	tr_check_one_set(_metadata, log, set);

	/* create: the set's first event, by the client. */
	ic = tr_find_ev(log, 0, "vdi_create", set, NULL, 0);
	ASSERT_EQ(0, ic);
	e = &log->ev[ic];
	EXPECT_EQ(client, e->pid);
	EXPECT_EQ((uint64_t)TR_NDEV, tr_u(e, "devices"));
	EXPECT_EQ(0U, tr_u(e, "features"));
	EXPECT_EQ(0U, tr_u(e, "server_timeout"));

	/* open: the server's set, then both sides' devices. */
	EXPECT_EQ(5, tr_count(log, "vdi_open", set));
	iso = tr_find_ev(log, 0, "vdi_open", set, "device", (uint64_t)-1);
	ASSERT_LE(0, iso);
	e = &log->ev[iso];
	EXPECT_TRUE(tr_is(e, "role", "server"));
	EXPECT_TRUE(tr_is(e, "name", x->name));
	EXPECT_EQ(x->server_pid, e->pid);
	EXPECT_LT(ic, iso);
	for (unsigned int d = 0; d < TR_NDEV; d++) {
		int found = 0;

		for (i = tr_find_ev(log, 0, "vdi_open", set, "device", d); i >= 0;
		     i = tr_find_ev(log, i + 1, "vdi_open", set, "device", d)) {
			e = &log->ev[i];
			EXPECT_TRUE(tr_is(e, "name", x->name));
			if (tr_is(e, "role", "server")) {
				EXPECT_EQ(x->server_pid, e->pid);
				EXPECT_LT(iso, i);
				found |= 1;
			} else {
				EXPECT_TRUE(tr_is(e, "role", "client"))
					TH_LOG("%s", e->args);
				EXPECT_EQ(client, e->pid);
				found |= 2;
			}
		}
		EXPECT_EQ(3, found) TH_LOG("device %u opened by both", d);
	}

	/* configure: begin, then end with the area, before any command. */
	ib = tr_find_ev(log, 0, "vdi_config", set, NULL, 0);
	ASSERT_LE(0, ib);
	iend = tr_find_ev(log, ib + 1, "vdi_config", set, NULL, 0);
	ASSERT_LT(ib, iend);
	EXPECT_LT(iso, ib);
	EXPECT_TRUE(tr_is(&log->ev[ib], "stage", "begin"));
	EXPECT_TRUE(tr_is(&log->ev[iend], "stage", "end"));
	for (i = 0; i < 2; i++) {
		e = &log->ev[i ? iend : ib];
		EXPECT_EQ(x->server_pid, e->pid);
		EXPECT_EQ(TR_BLOCK, tr_u(e, "block_size"));
		EXPECT_EQ(TR_MAXXFER, tr_u(e, "max_transfer_size"));
		EXPECT_EQ((uint64_t)TR_DEPTH, tr_u(e, "queue_depth"));
		EXPECT_EQ((uint64_t)VDI_VDF_WRITE_MEDIA, tr_u(e, "features"));
	}
	EXPECT_EQ(0U, tr_u(&log->ev[ib], "area_size"));
	EXPECT_EQ((uint64_t)TR_AREA, tr_u(&log->ev[iend], "area_size"));
	EXPECT_LT(iend, tr_find_ev(log, 0, "vdi_send", set, NULL, 0));

	/* Each command: send, take, complete, reap, with the same fields. */
	for (int k = 0; k < TR_NCMD; k++)
		tr_check_command(_metadata, log, set, x, k, client);
	/* Per device, sent in the server's order (its FIFO). */
	for (int k = 0; k < TR_NCMD; k++) {
		uint32_t d = tr_plan[k].dev;

		i = tr_find_ev(log, last[d] + 1, "vdi_send", set, "device", d);
		ASSERT_LE(0, i);
		EXPECT_EQ(tr_plan[k].s.position, tr_s(&log->ev[i], "position"));
		last[d] = i;
	}
	EXPECT_EQ(0, tr_count(log, "vdi_abort", set));
}

TEST_F(trace, backup_events_in_order_with_their_fields)
{
	tr_backup(_metadata, self, false);
}

/* The same backup, each side's turns made with ENTER: the same events. */
TEST_F(trace, backup_through_enter_gives_the_same_events)
{
	tr_backup(_metadata, self, true);
}

/* ------------------------------------------------------------------ */
/* an abort: the engine dies with a command held and one queued       */

/* The engine: send two writes, say so, wait to be killed. */
static int tr_doomed_server(struct vdi_chan *ch, void *arg)
{
	struct tr_shared *x = arg;
	int set, dev, r;

	x->server_pid = getpid();
	CKEQ(0, vdi_chan_expect(ch, 1, 10000));
	r = tr_server_open(x, &set, &dev, 1);
	if (r)
		return r;
	CKEQ(1, vdi_send(dev, &tr_plan[0].s, 1));
	CKEQ(1, vdi_send(dev, &tr_plan[1].s, 1));
	CKEQ(0, vdi_chan_send(ch, 2));
	vdi_chan_recv(ch, NULL, 15000);	/* the parent kills us first */
	return 0;
}

TEST_F(trace, peer_death_abort_event_and_aborted_commands)
{
	struct tr_shared *x = self->x;
	const struct tr_log *log = self->log;
	struct vdi_command cmd;
	struct vdi_config cfg;
	int set, dev, ia, i, held = -1;
	uint64_t id;

	if (!tr_begin(_metadata, &self->t))
		return;
	ASSERT_EQ(0, vdi_spawn(&self->p, tr_doomed_server, x));
	set = vdi_create_set(x->name, 1, 0);
	ASSERT_LE(0, set);
	ASSERT_EQ(0, vdi_chan_send(&self->p.ch, 1));
	ASSERT_EQ(0, vdi_get_config(set, 10000, &cfg));
	dev = vdi_open_device(set, x->name, 0, NULL);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, vdi_chan_expect(&self->p.ch, 2, 10000));
	ASSERT_EQ(1, vdi_get(dev, &cmd, 1, 1000));	/* one held, one queued */
	kill(self->p.pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, vdi_reap(&self->p, 10000));
	EXPECT_EQ(-ECONNABORTED, vdi_get(dev, &cmd, 1, 1000));
	close(dev);
	close(set);
	ASSERT_EQ(0, tr_collect(&self->t, self->log));

	id = tr_set_of(log, x->name);
	ASSERT_NE(TR_MISSING, id);
	tr_check_one_set(_metadata, log, id);
	/* Once, though the server's set fd and device fd both abort it. */
	EXPECT_EQ(1, tr_count(log, "vdi_abort", id));
	ia = tr_find_ev(log, 0, "vdi_abort", id, NULL, 0);
	ASSERT_LE(0, ia) tr_dump(log);
	EXPECT_EQ(x->server_pid, log->ev[ia].pid);
	EXPECT_TRUE(tr_is(&log->ev[ia], "name", x->name));
	EXPECT_TRUE(tr_is(&log->ev[ia], "state", "ready"))
		TH_LOG("%s", log->ev[ia].args);
	/* Why: the server's fds went with its killed process. */
	EXPECT_TRUE(tr_is(&log->ev[ia], "reason", "server-exit"))
		TH_LOG("%s", log->ev[ia].args);
	/* Both commands ended by the abort, after it, with 995. */
	EXPECT_EQ(2, tr_count(log, "vdi_complete", id));
	for (i = tr_find_ev(log, 0, "vdi_complete", id, NULL, 0); i >= 0;
	     i = tr_find_ev(log, i + 1, "vdi_complete", id, NULL, 0)) {
		const struct tr_event *e = &log->ev[i];

		EXPECT_LT(ia, i);
		EXPECT_TRUE(tr_is(e, "by", "abort")) TH_LOG("%s", e->args);
		EXPECT_EQ(TR_ABORTED, tr_u(e, "completion_code"));
		EXPECT_EQ(0U, tr_u(e, "bytes"));
		EXPECT_EQ(0U, tr_u(e, "device"));
		if (tr_u(e, "tag") == cmd.tag)
			held = i;
	}
	EXPECT_LE(0, held) TH_LOG("the held command's tag %#llx",
				  (unsigned long long)cmd.tag);
	EXPECT_LT(tr_find_ev(log, 0, "vdi_take", id, "tag", cmd.tag), ia);
	EXPECT_EQ(0, tr_count(log, "vdi_reap", id));
}

/* ------------------------------------------------------------------ */
/* IO-ERROR: the module completes the queued commands itself          */

TEST_F(trace, io_error_flush_is_completed_by_the_module)
{
	const struct tr_log *log = self->log;
	struct vdi_completion cpl[3];
	struct vdi_command cmd;
	struct vdi_sess s;
	uint64_t id;
	int i, ifail, n = 0;

	if (!tr_begin(_metadata, &self->t))
		return;
	ASSERT_EQ(0, vdi_sess_simple(&s, 1, 0));
	for (int k = 0; k < 3; k++) {
		ASSERT_EQ(1, vdi_send1(s.sdev[0], k, VDI_VDC_WRITE, 4096,
				       k * 4096, k * 4096));
	}
	ASSERT_EQ(1, vdi_get(s.cdev[0], &cmd, 1, 0));
	ASSERT_EQ(1, vdi_complete1(s.cdev[0], cmd.tag, T_ERROR_DISK_FULL, 512,
				   99));
	ASSERT_EQ(3, vdi_wait_n(s.sset, cpl, 3, 2000, NULL));
	vdi_sess_close(&s);
	ASSERT_EQ(0, tr_collect(&self->t, self->log));

	id = tr_set_of(log, s.name);
	ASSERT_NE(TR_MISSING, id);
	tr_check_one_set(_metadata, log, id);
	ifail = tr_find_ev(log, 0, "vdi_complete", id, "tag", cmd.tag);
	ASSERT_LE(0, ifail);
	EXPECT_TRUE(tr_is(&log->ev[ifail], "by", "client"));
	EXPECT_EQ((uint64_t)T_ERROR_DISK_FULL,
		  tr_u(&log->ev[ifail], "completion_code"));
	EXPECT_EQ(512U, tr_u(&log->ev[ifail], "bytes"));
	EXPECT_EQ(99, tr_s(&log->ev[ifail], "position"));
	/* The two queued behind it: by the module, after it, never taken. */
	for (i = tr_find_ev(log, 0, "vdi_complete", id, NULL, 0); i >= 0;
	     i = tr_find_ev(log, i + 1, "vdi_complete", id, NULL, 0)) {
		const struct tr_event *e = &log->ev[i];

		if (i == ifail)
			continue;
		n++;
		EXPECT_LT(ifail, i);
		EXPECT_TRUE(tr_is(e, "by", "io-error")) TH_LOG("%s", e->args);
		EXPECT_EQ((uint64_t)VDI_ERROR_IO_DEVICE,
			  tr_u(e, "completion_code"));
		EXPECT_EQ(-1, tr_find_ev(log, 0, "vdi_take", id, "tag",
					 tr_u(e, "tag")));
	}
	EXPECT_EQ(2, n);
	EXPECT_EQ(3, tr_count(log, "vdi_reap", id));
	EXPECT_EQ(1, tr_count(log, "vdi_take", id));
	/* The session closed before the end: its release aborted it. */
	EXPECT_EQ(1, tr_count(log, "vdi_abort", id));
}

/* ------------------------------------------------------------------ */
/* the format files: what perf, trace-cmd and bpftrace parse          */

static void tr_check_format(struct __test_metadata *_metadata,
			    const struct tr_state *t, const char *event,
			    const char *const *fields, const char *const *texts)
{
	char path[128], *fmt = malloc(16384), want[96];

	ASSERT_NE(NULL, fmt);
	snprintf(path, sizeof(path), "events/vdi/%s/format", event);
	ASSERT_LT(0, tr_read(t, path, fmt, 16384)) TH_LOG("%s", path);
	snprintf(want, sizeof(want), "name: %s\n", event);
	EXPECT_NE(NULL, strstr(fmt, want)) TH_LOG("%s", fmt);
	for (; *fields; fields++) {
		snprintf(want, sizeof(want), "field:%s;", *fields);
		EXPECT_NE(NULL, strstr(fmt, want))
			TH_LOG("%s: no field \"%s\"", event, *fields);
	}
	for (; texts && *texts; texts++) {
		EXPECT_NE(NULL, strstr(fmt, *texts))
			TH_LOG("%s: no \"%s\" in\n%s", event, *texts, fmt);
	}
	/* Every symbol is a number: the enums were resolved at load. */
	EXPECT_EQ(NULL, strstr(fmt, "VDI_")) TH_LOG("%s", fmt);
	free(fmt);
}

TEST_F(trace, format_files_name_every_field)
{
	static const char *const create[] = {
		"u64 set", "__data_loc char[] name", "u32 devices",
		"u32 features", "u32 server_timeout", NULL };
	static const char *const open[] = {
		"u64 set", "__data_loc char[] name", "u32 role", "s32 device",
		NULL };
	static const char *const open_txt[] = {
		"{ 3, \"server\" }", "{ 1, \"client\" }", NULL };
	static const char *const config[] = {
		"u64 set", "u32 stage", "u32 features", "u32 block_size",
		"u32 max_transfer_size", "u32 queue_depth", "u64 area_size",
		NULL };
	static const char *const command[] = {
		"u64 set", "u32 device", "u32 code", "u64 tag",
		"s64 position", "u64 buf_offset", "u32 size", NULL };
	static const char *const command_txt[] = {
		"{ 1, \"Read\" }", "{ 2, \"Write\" }", "{ 3, \"ClearError\" }",
		"{ 12, \"Flush\" }", "{ 19, \"Complete\" }", NULL };
	static const char *const complete[] = {
		"u64 set", "u32 device", "u32 code", "u64 tag",
		"s64 position", "u32 completion_code", "u32 bytes", "u32 by",
		NULL };
	static const char *const complete_txt[] = {
		"\"client\"", "\"io-error\"", "\"abort\"", NULL };
	static const char *const reap[] = {
		"u64 set", "u32 device", "u32 code", "u64 tag",
		"s64 position", "u32 completion_code", "u32 bytes", NULL };
	static const char *const abort_[] = {
		"u64 set", "__data_loc char[] name", "u32 reason", "u32 state",
		NULL };
	static const char *const abort_txt[] = {
		"{ 3, \"ready\" }", "{ 6, \"server-exit\" }", NULL };
	char path[128];

	if (!tr_begin(_metadata, &self->t))
		return;
	for (unsigned int i = 0; i < ARRAY_SIZE(tr_event_names); i++) {
		snprintf(path, sizeof(path), "%s/events/vdi/%s/enable",
			 self->t.dir, tr_event_names[i]);
		EXPECT_EQ(0, access(path, W_OK)) TH_LOG("%s", path);
	}
	tr_check_format(_metadata, &self->t, "vdi_create", create, NULL);
	tr_check_format(_metadata, &self->t, "vdi_open", open, open_txt);
	tr_check_format(_metadata, &self->t, "vdi_config", config, NULL);
	tr_check_format(_metadata, &self->t, "vdi_send", command, command_txt);
	tr_check_format(_metadata, &self->t, "vdi_take", command, command_txt);
	tr_check_format(_metadata, &self->t, "vdi_complete", complete,
			complete_txt);
	tr_check_format(_metadata, &self->t, "vdi_reap", reap, NULL);
	tr_check_format(_metadata, &self->t, "vdi_abort", abort_, abort_txt);
}

TEST_HARNESS_MAIN
