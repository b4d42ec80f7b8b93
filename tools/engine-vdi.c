// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-engine's VDI driving: every VDI server call of the program, in the
 * order VDI prescribes:
 *
 *   vdi_server_open_ex                poll until the client has created SET;
 *                                     refuse it unless --owner (default: our
 *                                     own uid or root) owns it
 *   vdi_server_get_owner              (libvdi extra) whose set it is
 *   vdi_server_get_configuration      deviceCount and features of the client
 *   vdi_server_set_queue_depth        (libvdi extra) room for our window
 *   vdi_server_begin_configuration    WriteMedia or ReadMedia, sizes
 *   vdi_server_request_buffers        BUFFERCOUNT x MAXTRANSFERSIZE (+1 small)
 *   vdi_server_end_configuration      the shared area exists now
 *   vdi_server_open_device            each device, in the T-SQL order
 *   vdi_server_execute_completion_agent   on a thread of its own
 *   vdi_server_allocate_buffer        the buffers
 *   vdi_server_send_command           Read / Write / Flush, many in flight
 *   vdi_server_close_device           each device: the normal end
 *   vdi_server_signal_abort           on any error
 *   vdi_server_get_stats              (libvdi extra) the module's figures:
 *                                     every --stats N s, and at the end
 *   vdi_server_close
 *
 * The commands themselves (what goes where) are engine-stream.c's business:
 * it uses submit(), wait_slot() and run_one() below.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

struct engine_vdi V = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.wake = { -1, -1 },
};

pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;

bool said_interrupted;

const char *say_moved(char *buf, size_t len)
{
	uint64_t cmds, bytes;
	unsigned int dev;
	int64_t pos;

	pthread_mutex_lock(&V.lock);
	cmds = V.moved_cmds;
	bytes = V.moved_bytes;
	pos = V.last_pos;
	dev = V.last_dev;
	pthread_mutex_unlock(&V.lock);
	if (!cmds)
		snprintf(buf, len, "before any command completed");
	else if (!bytes)	/* no data moved yet: no position to give */
		snprintf(buf, len, "after %" PRIu64 " command%s, no data",
			 cmds, cmds == 1 ? "" : "s");
	else
		snprintf(buf, len, "after %" PRIu64 " command%s, %" PRIu64
			 " bytes, last position %" PRId64 "%s%s%s", cmds,
			 cmds == 1 ? "" : "s", bytes, pos,
			 opt.ndev > 1 ? " of device '" : "",
			 opt.ndev > 1 ? opt.dev_name[dev] : "",
			 opt.ndev > 1 ? "'" : "");
	return buf;
}

/* Was it "vdictl abort"?  The module's figures say (abort_reason). */
static bool admin_aborted(void)
{
	vdi_stats *st = malloc(sizeof(*st));
	bool admin = st && set_stats(st) == NOERROR &&
		     st->set.abort_reason == VDI_ABORT_ADMIN;

	free(st);
	return admin;
}

/* Why the other side's commands came back aborted. */
void say_aborted(void)
{
	char moved[256];

	said_interrupted = interrupted();
	say_moved(moved, sizeof(moved));
	if (interrupted())
		msg("interrupted by signal %d: %s aborted %s", interrupted(),
		    opt.op == BACKUP ? "backup" : "restore", moved);
	else if (admin_aborted())
		msg("the %s was aborted by an administrator (vdictl abort; "
		    "VD_E_ABORT) %s", opt.op == BACKUP ? "backup" : "restore",
		    moved);
	else
		msg("the client went away or aborted the %s (VD_E_ABORT) %s",
		    opt.op == BACKUP ? "backup" : "restore", moved);
}

/* ================================================================ commands */
/* Completion routine: runs on the agent's thread (or, when SendCommand
 * fails, on the sender's).  It only records the fact: the main thread does
 * the work, in order. */
static void on_complete(VDS_Command *cmd)
{
	struct slot *s = (struct slot *)cmd->completionContext;

	pthread_mutex_lock(&V.lock);
	/* VDI spec 5.2: an error puts the device in IO-ERROR; only a
	 * ClearError (engine-media.c) brings it back */
	if (cmd->completionCode != ERROR_SUCCESS)
		V.dev_error[s->dev] = true;
	if (cmd->completionCode == ERROR_SUCCESS) {	/* for say_moved() */
		V.moved_cmds++;
		V.moved_bytes += (uint64_t)cmd->bytesTransferred;
		if (cmd->commandCode == VDC_Read ||
		    cmd->commandCode == VDC_Write) {
			V.last_pos = s->pos;
			V.last_dev = s->dev;
		}
	}
	s->done = true;
	pthread_cond_broadcast(&V.cond);
	pthread_mutex_unlock(&V.lock);
}

static void *agent_main(void *arg)
{
	int rc;

	(void)arg;
	/* Blocks until every device is closed (NOERROR) or the set is
	 * aborted (VD_E_ABORT), calling on_complete() for each completion. */
	rc = vdi_server_execute_completion_agent(V.set);
	if (rc && rc != VD_E_ABORT)
		vdi_msg("ExecuteCompletionAgent", rc);
	pthread_mutex_lock(&V.lock);
	V.agent_rc = rc;
	V.agent_done = true;
	pthread_cond_broadcast(&V.cond);
	pthread_mutex_unlock(&V.lock);
	if (rc && write(V.wake[1], "a", 1) < 0) {
		/* full: the main thread is being woken anyway */
	}
	return NULL;
}

/*
 * --delay-ms: a slow engine, for tests and demos of the verdict.  Waits on
 * the wake pipe rather than sleeping, so a signal or the agent's end (the
 * client gone) cuts it short; the byte stays in the pipe for whoever waits
 * next.
 */
static void delay_send(void)
{
	struct pollfd pfd = { .fd = V.wake[0], .events = POLLIN };

	if (poll(&pfd, 1, (int)opt.delay_ms) < 0 && errno != EINTR)
		msg("poll: %s", strerror(errno));
}

/* Queue one command.  0, or -1 after a message. */
int submit(struct slot *s, unsigned int dev, int32_t code,
		  uint32_t size, int64_t position)
{
	int rc;

	if (inject_before_send() < 0)
		return -1;
	if (opt.delay_ms && (code == VDC_Read || code == VDC_Write))
		delay_send();
	s->cmd = (VDS_Command){
		.commandCode = code,
		.size = (int32_t)size,
		/* positions mean something only to a random-access set */
		.inPosition = V.disk ? position : 0,
		.buffer = code == VDC_Read || code == VDC_Write ? s->buf : NULL,
		.completionRoutine = (uint8_t *)on_complete,
		.completionContext = (uint8_t *)s,
	};
	s->dev = dev;
	s->pos = position;
	pthread_mutex_lock(&V.lock);
	s->done = false;
	pthread_mutex_unlock(&V.lock);
	rc = vdi_server_send_command(V.dev[dev], &s->cmd);
	/* Unless queued, the routine has run with the reason (aborted, ...)
	 * and the caller sees it there; but a bad command (VD_E_INVALID) is a
	 * bug of ours, with no routine call. */
	if (rc == VD_E_INVALID) {
		vdi_msg("SendCommand", rc);
		return -1;
	}
	return 0;
}

/* The agent's VDI code once it has returned (VD_E_ABORT...), else 0. */
int agent_ended(void)
{
	int rc;

	pthread_mutex_lock(&V.lock);
	rc = V.agent_done ? (V.agent_rc ? V.agent_rc : VD_E_CLOSE) : 0;
	pthread_mutex_unlock(&V.lock);
	return rc;
}

void wait_slot(struct slot *s)
{
	pthread_mutex_lock(&V.lock);
	while (!s->done)
		pthread_cond_wait(&V.cond, &V.lock);
	pthread_mutex_unlock(&V.lock);
}

/* Explain a command that failed; the caller aborts. */
void say_failed(const struct slot *s, const char *what)
{
	const char *dev = opt.dev_name[s->dev];
	int32_t code = s->cmd.completionCode;

	switch (code) {
	case ERROR_OPERATION_ABORTED:
		say_aborted();
		break;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
	case ERROR_EOM_OVERFLOW:
	case ERROR_END_OF_MEDIA:
		msg("device '%s': the client's storage is full (%s): the "
		    "backup is aborted", dev, win32_name(code));
		break;
	case ERROR_SUCCESS:
		msg("device '%s': %s moved %d of %d bytes", dev, what,
		    s->cmd.bytesTransferred, s->cmd.size);
		break;
	default:
		msg("device '%s': %s failed: %s", dev, what, win32_name(code));
	}
}

/* One command, waited for: headers and flushes. */
int run_one(unsigned int dev, int32_t code, uint32_t size,
		   int64_t position, const char *what)
{
	struct slot *s = &V.ctl[dev];

	s->buf = V.hdr_buf;
	if (submit(s, dev, code, size, position) < 0)
		return -1;
	wait_slot(s);
	if (s->cmd.completionCode != ERROR_SUCCESS ||
	    ((code == VDC_Write) && s->cmd.bytesTransferred != (int32_t)size)) {
		say_failed(s, what);
		return -1;
	}
	return 0;
}

/* Open the set the client created: poll, since we may be first. */
int connect_set(void)
{
	double deadline = now_s() + opt.timeout_s;
	unsigned int pause_ms = 2;
	bool said = false;
	vdi_server_set *set;
	int rc;

	for (;;) {
		/*
		 * Anyone may create a set of any name: the library asks the
		 * module whose set it is before anything else and refuses a
		 * set of a user we do not expect (VD_E_SECURITY), which would
		 * otherwise receive our backup or feed our restore.
		 */
		rc = vdi_server_open_ex(&set, NULL, opt.set_name, opt.owner);
		if (rc == NOERROR)
			break;
		if (rc != VD_E_INVALID) {	/* INVALID: not there yet */
			switch (rc) {
			case VD_E_PROTOCOL:
				msg("set '%s' already has an engine",
				    opt.set_name);
				break;
			case VD_E_SECURITY:
				msg("%s", vdi_last_error());
				msg("a set of another user needs its client's "
				    "leave (vdi-client --mode/--group) and "
				    "ours (--owner USER)");
				break;
			case VD_E_UNEXPECTED:	/* no /dev/vdi, no module */
				msg("cannot reach the VDI module: %s",
				    vdi_last_error());
				break;
			default:
				vdi_msg("Open", rc);
			}
			return -1;
		}
		if (interrupted())
			return -1;
		if (now_s() >= deadline) {
			msg("no set named '%s' appeared within %u s (start the "
			    "client first, e.g. vdi-client %s %s)",
			    opt.set_name, opt.timeout_s,
			    opt.op == BACKUP ? "backup" : "restore",
			    opt.set_name);
			return -1;
		}
		if (!said)
			verbose("waiting for set '%s'", opt.set_name);
		said = true;
		/* a client started with us creates its set within
		 * milliseconds: look again soon, then back off to 100 ms */
		nanosleep(&(struct timespec){ 0, pause_ms * 1000000L }, NULL);
		if (pause_ms < 100)
			pause_ms = pause_ms * 2 > 100 ? 100 : pause_ms * 2;
	}
	pthread_mutex_lock(&set_lock);
	V.set = set;
	pthread_mutex_unlock(&set_lock);
	if (interrupted())	/* a signal while we were opening */
		return -1;
	if (verbose_on) {
		uint32_t uid, gid, mode;

		if (vdi_server_get_owner(set, &uid, &gid, &mode) == NOERROR)
			verbose("set '%s' belongs to uid %u, group %u, mode "
				"%03o", opt.set_name, uid, gid, mode);
	}
	return 0;
}

int configure(void)
{
	uint32_t features = opt.op == BACKUP ? VDF_WriteMedia : VDF_ReadMedia;
	unsigned int i, depth;
	VDConfig cfg;
	int rc;

	rc = vdi_server_get_configuration(V.set, &cfg);
	if (rc) {
		vdi_msg("GetConfiguration", rc);
		return -1;
	}
	if (cfg.deviceCount != opt.ndev) {
		msg("set '%s' has %u device%s but %u device name%s given: "
		    "name all %u, in the client's order", opt.set_name,
		    cfg.deviceCount, cfg.deviceCount == 1 ? "" : "s", opt.ndev,
		    opt.ndev == 1 ? " was" : "s were", cfg.deviceCount);
		return -1;
	}
	V.disk = cfg.features & VDF_RandomAccess;
	V.tape = cfg.features & VDF_FileMarks;
	/* SQL Server 2016+: the client asked to hear the end of the data */
	if (opt.op == BACKUP && (cfg.features & VDF_RequestComplete)) {
		features |= VDF_CompleteEnabled;
		V.complete = true;
	}

	/*
	 * The window (BUFFERCOUNT commands in flight, round-robin over the
	 * devices) puts at most ceil(buffers / devices) commands on one
	 * device at a time (headers and flushes go when no data is in
	 * flight): the queue must hold them, or SendCommand would answer
	 * VD_E_QUEUE_FULL.
	 */
	depth = (opt.buffers + opt.ndev - 1) / opt.ndev;
	rc = vdi_server_set_queue_depth(V.set, depth < 4 ? 4 : depth);
	if (!rc)
		rc = vdi_server_begin_configuration(V.set, features,
						    opt.block_size,
						    opt.block_size,
						    opt.max_transfer, 10000);
	if (rc) {
		vdi_msg("BeginConfiguration", rc);
		return -1;
	}
	rc = vdi_server_request_buffers(V.set, opt.max_transfer, 0,
					opt.buffers);
	if (!rc)
		rc = vdi_server_request_buffers(V.set, HDR_SIZE, 0, 1);
	if (rc) {
		vdi_msg("RequestBuffers", rc);
		return -1;
	}
	rc = vdi_server_end_configuration(V.set);
	if (rc) {
		vdi_msg(rc == VD_E_MEMORY ? "EndConfiguration (is the module's "
			"max_area_mb too small? fewer --buffers)" :
			"EndConfiguration", rc);
		return -1;
	}
	vdi_server_get_configuration(V.set, &cfg);
	verbose("set '%s': %u device%s, %s%s, block size %u, max transfer %u, "
		"%u buffers, buffer area %u KiB", opt.set_name, opt.ndev,
		opt.ndev == 1 ? "" : "s", media_name(), V.complete ?
		" with VDC_Complete" : "", cfg.blockSize, cfg.maxTransferSize,
		opt.buffers, cfg.bufferAreaSize >> 10);

	/* T-SQL order: the set's own device first, then the others */
	for (i = 0; i < opt.ndev; i++) {
		rc = vdi_server_open_device(V.set, opt.dev_name[i], &V.dev[i]);
		if (rc) {
			if (rc == VD_E_INVALID)
				msg("the set has no device '%s' (the client "
				    "named its devices otherwise)",
				    opt.dev_name[i]);
			else
				vdi_msg(opt.dev_name[i], rc);
			return -1;
		}
	}

	/* The completion agent: on its own thread, as VDI's model has it. */
	if (pthread_create(&V.agent, NULL, agent_main, NULL)) {
		msg("cannot start the completion agent's thread");
		return -1;
	}
	V.agent_started = true;
	/* SendCommand needs the agent inside ExecuteCompletionAgent, and
	 * only the library can tell when the new thread got there. */
	do {
		rc = vdi_server_wait_agent(V.set, 100);
		if (rc && agent_ended())	/* came and went: aborted */
			rc = VD_E_ABORT;
	} while (rc == VD_E_TIMEOUT);
	if (rc) {
		say_aborted();
		return -1;
	}

	V.nslots = opt.buffers;
	V.data = calloc(V.nslots, sizeof(*V.data));
	if (!V.data) {
		msg("no memory");
		return -1;
	}
	for (i = 0; i < V.nslots; i++) {
		rc = vdi_server_allocate_buffer(V.set, &V.data[i].buf,
						opt.max_transfer, 0);
		if (rc) {
			vdi_msg("AllocateBuffer", rc);
			return -1;
		}
	}
	rc = vdi_server_allocate_buffer(V.set, &V.hdr_buf, HDR_SIZE, 0);
	if (rc) {
		vdi_msg("AllocateBuffer", rc);
		return -1;
	}
	return 0;
}

/* ================================================================ end */
int close_device(unsigned int d)
{
	int rc;

	if (V.closed[d])
		return 0;
	rc = vdi_server_close_device(V.dev[d]);
	if (rc == VD_E_ABORT) {
		say_aborted();
		return -1;
	}
	if (rc) {
		vdi_msg("CloseDevice", rc);
		return -1;
	}
	V.closed[d] = true;
	return 0;
}

/* The normal end: close every device; the agent then returns NOERROR. */
int close_devices(void)
{
	unsigned int d;

	for (d = 0; d < opt.ndev; d++)
		if (close_device(d) < 0)
			return -1;
	pthread_join(V.agent, NULL);
	V.agent_started = false;
	if (V.agent_rc) {
		say_aborted();
		return -1;
	}
	return 0;
}

int set_stats(vdi_stats *st)
{
	int rc;

	/* under set_lock: close_set() cannot close it meanwhile */
	pthread_mutex_lock(&set_lock);
	rc = V.set ? vdi_server_get_stats(V.set, st) : VD_E_PROTOCOL;
	pthread_mutex_unlock(&set_lock);
	return rc;
}

int close_set(bool failed, vdi_stats *st)
{
	vdi_server_set *set;
	int rc = 0;

	if (failed && V.set)
		vdi_server_signal_abort(V.set);	/* the client learns of it */
	if (V.agent_started)	/* it returns once the abort is through */
		pthread_join(V.agent, NULL);
	/* the figures are of our set: the last chance is before the close */
	if (st)
		rc = set_stats(st);
	pthread_mutex_lock(&set_lock);
	set = V.set;
	V.set = NULL;
	pthread_mutex_unlock(&set_lock);
	if (set)
		vdi_server_close(set);
	return rc;
}
