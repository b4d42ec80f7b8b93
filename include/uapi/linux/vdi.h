/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vdi: SQL Server Virtual Device Interface transport, kernel <-> user ABI.
 *
 * /dev/vdi is a misc device.  A freshly opened fd is an empty endpoint; its
 * first successful VDI_IOC_CREATE, VDI_IOC_OPEN_SERVER or VDI_IOC_OPEN_SECONDARY
 * gives it a role on a named virtual device set.  Devices of a set are further
 * fds returned by VDI_IOC_OPEN_DEVICE.  The set's buffer area is mmap()ed from
 * any set fd at offset 0; commands carry offsets into it, never pointers.
 *
 * Every ioctl takes one fixed-size struct.  Reserved fields and unknown flags
 * must be zero (else -EINVAL).  A wrong magic, number or size gives -ENOTTY.
 * Timeouts are milliseconds: 0 polls, a negative value waits forever.
 */
/*
 * Errors (the library maps them onto VD_E_* codes):
 *   EINVAL        bad argument: flags, reserved, sizes, offsets, names, codes,
 *                 BEGIN_CONFIG values
 *   EOPNOTSUPP    CREATE: a VDConfig value VDI does not support
 *   ENOTTY        unknown ioctl, or one that does not apply to this kind of fd
 *   EISCONN       the /dev/vdi fd already has a role
 *   EEXIST        CREATE: a set of that name exists in this scope
 *   ENOENT        no set of that name in this scope / no such device name /
 *                 SET_STATS, ABORT_SET: no set of that id in this scope
 *   EACCES        the set's owner and mode do not grant access
 *   EBUSY         the set already has a server / the device is already open
 *                 on this side
 *   EPROTO        call not legal in the current state or for this role, or
 *                 on an endpoint without a set (SEND to a device the
 *                 server closed: "not active")
 *   ENOBUFS       SEND: the device's command queue is full
 *   EIO           SEND: the device is in IO-ERROR and this is not ClearError
 *   ECONNABORTED  the set is aborted: only close() is useful now
 *   ETIMEDOUT     a wait ran out its timeout (timeout 0: nothing ready)
 *   ESHUTDOWN     normal end: device closed and drained (GET_COMMANDS),
 *                 already closed (CLOSE_DEVICE), every device closed and
 *                 nothing in flight (WAIT_COMPLETIONS)
 *   EALREADY      OPEN_DEVICE: every device is already open on this side
 *   ESTALE        COMPLETE: the tag names no command held by the client
 *   EMFILE        CREATE: the user has max_sets_per_user sets
 *   E2BIG         END_CONFIG: area_size over the module's max_area_mb
 *   ENOMEM        out of memory
 *   EPERM         CREATE: VDI_CREATE_GID names a group the creator is not in
 *   EPROTONOSUPPORT  VERSION: the caller's api_major is not the module's
 *   EFAULT        a user pointer could not be read or written; nothing is lost
 *   EPERM         SET_STATS, ABORT_SET: the set is another user's and the
 *                 caller lacks CAP_SYS_ADMIN in its user namespace
 *   EINTR         a wait was interrupted by a signal
 */
#ifndef _UAPI_LINUX_VDI_H
#define _UAPI_LINUX_VDI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VDI_DEVICE_NAME		"vdi"

#define VDI_API_MAJOR		1	/* incompatible changes bump this */
#define VDI_API_MINOR		3	/* compatible additions bump this */

/* Feature bits reported by VDI_IOC_VERSION. */
#define VDI_FEAT_BATCH		(1ULL << 0)	/* batched send/get/complete/wait */
#define VDI_FEAT_POLL		(1ULL << 1)	/* poll() on every fd */
#define VDI_FEAT_SECONDARY	(1ULL << 2)	/* VDI_IOC_OPEN_SECONDARY */
#define VDI_FEAT_WATCHDOG	(1ULL << 3)	/* VDConfig.serverTimeOut honoured */
#define VDI_FEAT_GROUP_ACCESS	(1ULL << 4)	/* vdi_create.mode / .gid */
#define VDI_FEAT_SET_INFO	(1ULL << 5)	/* VDI_IOC_SET_INFO (API 1.1) */
#define VDI_FEAT_STATS		(1ULL << 6)	/* LIST_SETS, SET_STATS, ABORT_SET,
						 * fdinfo, tracepoints (API 1.2)
						 */
#define VDI_FEAT_ENTER		(1ULL << 7)	/* VDI_IOC_ENTER (API 1.3) */

#define VDI_NAME_MAX		128	/* bytes, including the terminating NUL */
#define VDI_MAX_DEVICES		64	/* VDConfig.deviceCount is 1..64 */
#define VDI_BATCH_MAX		1024	/* entries per batched call */
#define VDI_NO_BUFFER		(~0ULL)	/* vdi_send.buf_offset: no data buffer */

/*
 * Configuration, with exactly the layout of VDI's VDConfig (eleven 32-bit
 * fields, 44 bytes).  The client fills device_count..server_timeout; the
 * server's VDI_IOC_BEGIN_CONFIG and VDI_IOC_END_CONFIG fill the rest.
 */
struct vdi_config {
	__u32 device_count;
	__u32 features;			/* VDF_* */
	__u32 prefix_zone_size;
	__u32 alignment;
	__u32 soft_file_mark_block_size;
	__u32 eom_warning_size;
	__u32 server_timeout;		/* ms, 0 = no watchdog */
	__u32 block_size;
	__u32 max_io_depth;		/* always 4, as in VDI */
	__u32 max_transfer_size;
	__u32 buffer_area_size;
};

/* VDI_IOC_VERSION: the handshake.  Any fd, any state. */
struct vdi_version {
	__u32 api_major;		/* in: caller's; out: module's */
	__u32 api_minor;		/* in: caller's; out: module's */
	__u64 features;			/* out: VDI_FEAT_* */
	__u32 max_devices;		/* out */
	__u32 max_queue_depth;		/* out: module parameter */
	__u32 name_max;			/* out: VDI_NAME_MAX */
	__u32 max_sets_per_user;	/* out: module parameter */
	__u64 max_area_size;		/* out: bytes, module parameter */
	__u64 reserved[4];
};

/* vdi_create.flags */
#define VDI_CREATE_GID		(1U << 0)	/* grant vdi_create.gid, not fsgid */

/* VDI_IOC_CREATE: primary client creates a set (VDI Create/CreateEx). */
struct vdi_create {
	char name[VDI_NAME_MAX];	/* set name = name of device 0 */
	struct vdi_config config;	/* client part; server part ignored */
	__u32 mode;			/* 0600 (default if 0), 0660, 0666 ... */
	__u32 gid;			/* with VDI_CREATE_GID */
	__u32 flags;			/* VDI_CREATE_* */
	__u64 reserved[2];
};

/* VDI_IOC_OPEN_SERVER, VDI_IOC_OPEN_SECONDARY: open an existing set. */
struct vdi_open {
	char name[VDI_NAME_MAX];
	__u32 flags;			/* none defined */
	__u32 reserved0;
	__u64 reserved[2];
};

/*
 * VDI_IOC_GET_CONFIG: the server gets the client's config at once; a client
 * waits up to timeout_ms for the server's VDI_IOC_END_CONFIG.
 */
struct vdi_get_config {
	__s64 timeout_ms;		/* client only; ignored for the server */
	struct vdi_config config;	/* out */
	__u32 flags;			/* none defined */
	__u64 reserved[2];
};

/* VDI_IOC_BEGIN_CONFIG: server, once, right after VDI_IOC_OPEN_SERVER. */
struct vdi_begin_config {
	__u32 features;			/* VDF_WriteMedia|VDF_ReadMedia [|CompleteEnabled] */
	__u32 alignment;		/* 0 = block_size; power of 2, <= 64 KiB */
	__u32 block_size;		/* power of 2, 512..64 KiB */
	__u32 max_transfer_size;	/* multiple of 64 KiB, <= 4 MiB */
	__u32 timeout_ms;		/* recorded; see README */
	__u32 queue_depth;		/* per device; 0 = module default */
	__u64 reserved[2];
};

/* VDI_IOC_END_CONFIG: server allocates the buffer area; config is final. */
struct vdi_end_config {
	__u64 area_size;		/* bytes, rounded up to pages */
	__u32 flags;			/* none defined */
	__u32 reserved0;
	__u64 reserved[2];
};

/* VDI_IOC_OPEN_DEVICE: on a set fd; returns a new device fd. */
struct vdi_open_device {
	char name[VDI_NAME_MAX];	/* device 0 carries the set's name */
	__u32 flags;			/* O_CLOEXEC only */
	__u32 index;			/* in: 0; out: 0..device_count-1 */
	__u64 reserved[2];
};

/* One command as the server sends it (VDI_IOC_SEND). */
struct vdi_send {
	__u64 cookie;			/* opaque, handed back in vdi_completion */
	__u32 code;			/* VDC_* */
	__u32 size;			/* VDS_Command.size */
	__s64 position;			/* VDS_Command.inPosition */
	__u64 buf_offset;		/* into the area, or VDI_NO_BUFFER */
};

/* One command as the client receives it (VDI_IOC_GET_COMMANDS). */
struct vdi_command {
	__u64 tag;			/* names this command in vdi_done */
	__u32 code;
	__u32 size;
	__s64 position;
	__u64 buf_offset;
};

/* One completion as the client reports it (VDI_IOC_COMPLETE). */
struct vdi_done {
	__u64 tag;			/* from vdi_command */
	__u32 completion_code;		/* Win32 code, 0 = ERROR_SUCCESS */
	__u32 bytes_transferred;
	__s64 position;
};

/* One completion as the agent receives it (VDI_IOC_WAIT_COMPLETIONS). */
struct vdi_completion {
	__u64 cookie;			/* from vdi_send */
	__u32 completion_code;
	__u32 bytes_transferred;
	__s64 position;			/* VDS_Command.outPosition */
	__u32 device_index;
	__u32 code;			/* VDC_* of the command */
};

/*
 * Batched calls.  entries points to count structs of the ioctl's entry
 * type.  The return value is how many entries were processed (>= 1) or a
 * negative errno when none was: processing stops at the first entry that
 * fails, and entries not processed are left untouched.
 */
struct vdi_batch {
	__u64 entries;			/* user pointer */
	__u32 count;			/* 1..VDI_BATCH_MAX */
	__u32 flags;			/* none defined */
	__s64 timeout_ms;		/* waits only; must be 0 otherwise */
	__u64 reserved[2];
};

/*
 * VDI_IOC_SET_INFO: on a set fd of any role, who owns the set: what a server
 * checks before it sends a byte (a set name is anyone's to take).  uid is
 * the creator's fsuid, gid the group vdi_create granted; both are in the
 * caller's user namespace (the overflow ids where they have no mapping).
 */
struct vdi_set_info {
	__u32 flags;			/* in: none defined */
	__u32 uid;			/* out: the owner */
	__u32 gid;			/* out: the group */
	__u32 mode;			/* out: access bits, 0600 ... 0666 */
	__u64 reserved[2];
};

/* VDI_IOC_CLOSE_DEVICE, VDI_IOC_SIGNAL_ABORT */
struct vdi_ctl {
	__u32 flags;			/* none defined */
	__u32 reserved0;
	__u64 reserved;
};

#define VDI_IOC_MAGIC	0xDA

#define VDI_IOC_VERSION		_IOWR(VDI_IOC_MAGIC, 0x00, struct vdi_version)
#define VDI_IOC_CREATE		_IOW(VDI_IOC_MAGIC, 0x01, struct vdi_create)
#define VDI_IOC_OPEN_SERVER	_IOW(VDI_IOC_MAGIC, 0x02, struct vdi_open)
#define VDI_IOC_OPEN_SECONDARY	_IOW(VDI_IOC_MAGIC, 0x03, struct vdi_open)
#define VDI_IOC_GET_CONFIG	_IOWR(VDI_IOC_MAGIC, 0x04, struct vdi_get_config)
#define VDI_IOC_BEGIN_CONFIG	_IOW(VDI_IOC_MAGIC, 0x05, struct vdi_begin_config)
#define VDI_IOC_END_CONFIG	_IOW(VDI_IOC_MAGIC, 0x06, struct vdi_end_config)
#define VDI_IOC_OPEN_DEVICE	_IOWR(VDI_IOC_MAGIC, 0x07, struct vdi_open_device)
/* server device fd: queue commands (entries: struct vdi_send) */
#define VDI_IOC_SEND		_IOW(VDI_IOC_MAGIC, 0x08, struct vdi_batch)
/* client device fd: take commands (entries: struct vdi_command) */
#define VDI_IOC_GET_COMMANDS	_IOW(VDI_IOC_MAGIC, 0x09, struct vdi_batch)
/* client device or set fd: complete commands (entries: struct vdi_done) */
#define VDI_IOC_COMPLETE	_IOW(VDI_IOC_MAGIC, 0x0a, struct vdi_batch)
/* server set fd: the completion agent (entries: struct vdi_completion) */
#define VDI_IOC_WAIT_COMPLETIONS _IOW(VDI_IOC_MAGIC, 0x0b, struct vdi_batch)
#define VDI_IOC_CLOSE_DEVICE	_IOW(VDI_IOC_MAGIC, 0x0c, struct vdi_ctl)
#define VDI_IOC_SIGNAL_ABORT	_IOW(VDI_IOC_MAGIC, 0x0d, struct vdi_ctl)
/* any set fd: the set's owner (struct vdi_set_info) */
#define VDI_IOC_SET_INFO	_IOWR(VDI_IOC_MAGIC, 0x0e, struct vdi_set_info)
/* figures (API 1.2): see above */
#define VDI_IOC_LIST_SETS	_IOWR(VDI_IOC_MAGIC, 0x0f, struct vdi_list_sets)
#define VDI_IOC_SET_STATS	_IOWR(VDI_IOC_MAGIC, 0x10, struct vdi_stats_req)
#define VDI_IOC_ABORT_SET	_IOW(VDI_IOC_MAGIC, 0x11, struct vdi_abort_set)

/* VDI constants the module itself acts on (values from VDI's headers). */
#define VDI_VDC_READ			1
#define VDI_VDC_WRITE			2
#define VDI_VDC_CLEAR_ERROR		3
#define VDI_VDC_MAX			19	/* VDC_Complete */

#define VDI_VDF_CLIENT_MASK		0x3ff3U	/* Removable..RequestComplete */
#define VDI_VDF_REMOVABLE		0x1U
#define VDI_VDF_LIKE_TAPE		0x173U
#define VDI_VDF_RANDOM_ACCESS		0x200U
#define VDI_VDF_MODE_MASK		0x373U	/* bits that pick pipe/tape/disk */
#define VDI_VDF_REQUEST_COMPLETE	0x2000U
#define VDI_VDF_WRITE_MEDIA		0x10000U
#define VDI_VDF_READ_MEDIA		0x20000U
#define VDI_VDF_COMPLETE_ENABLED	0x40000U

#define VDI_ERROR_IO_DEVICE		1117	/* queued commands flushed by IO-ERROR */
#define VDI_ERROR_OPERATION_ABORTED	995	/* commands ended by an abort */

/*
 * ---- Figures (API 1.2, VDI_FEAT_STATS) ----
 *
 * The module counts, per device, what went through it and how long commands
 * spent on each side (docs/ABI.md, "Figures").  Tools read them with
 * LIST_SETS and SET_STATS; every fd also shows them in /proc/PID/fdinfo.
 * The structs below only grow at their end: a caller passes the size it was
 * built with, the module writes min(that, its own) bytes and says how many.
 */

/* vdi_set_stats.state: the set's life cycle (docs/ABI.md). */
#define VDI_STATE_CREATED	0
#define VDI_STATE_CONNECTED	1
#define VDI_STATE_CONFIGURING	2
#define VDI_STATE_READY		3
#define VDI_STATE_DONE		4
#define VDI_STATE_ABORTED	5

/* vdi_dev_stats.state */
#define VDI_DEV_STATE_ACTIVE	0
#define VDI_DEV_STATE_IO_ERROR	1	/* spec 5.2: only ClearError */
#define VDI_DEV_STATE_CLOSED	2	/* the server closed it */

/*
 * vdi_dev_stats.flags: which sides have opened the device (closing it does
 * not clear them; the state says whether the server closed it)
 */
#define VDI_DEV_SERVER_OPEN	(1U << 0)
#define VDI_DEV_CLIENT_OPEN	(1U << 1)

/* vdi_set_stats.flags */
#define VDI_SET_LINKED		(1U << 0)	/* its name is still taken */
#define VDI_SET_HAS_SERVER	(1U << 1)
#define VDI_SET_STATS_ON	(1U << 2)	/* timed: the "stats" parameter
						 * was on when it was created
						 */

/* vdi_set_stats.abort_reason: the first cause of an abort. */
#define VDI_ABORT_NONE		0	/* not aborted */
#define VDI_ABORT_CLIENT_SIGNAL	1	/* SIGNAL_ABORT on a client fd */
#define VDI_ABORT_SERVER_SIGNAL	2	/* SIGNAL_ABORT on the server's fd */
#define VDI_ABORT_CLIENT_CLOSE	3	/* a client fd closed before its end */
#define VDI_ABORT_SERVER_CLOSE	4	/* a server fd closed before the end */
#define VDI_ABORT_CLIENT_EXIT	5	/* ... by a process that was exiting */
#define VDI_ABORT_SERVER_EXIT	6	/*     (killed, or exit() without close) */
#define VDI_ABORT_WATCHDOG	7	/* two serverTimeOuts without progress */
#define VDI_ABORT_ADMIN		8	/* ABORT_SET (vdictl abort) */

/* vdi_set_stats.abort_device for an abort not caused by a device fd */
#define VDI_ABORT_NO_DEVICE	0xffffffffU

#define VDI_STATS_CODES		8	/* completion codes counted one by one */

struct vdi_code_count {
	__u32 code;			/* Win32 completion code */
	__u32 reserved0;
	__u64 count;
};

/*
 * One device.  Times are nanoseconds (CLOCK_MONOTONIC), summed over
 * commands: queued (sent -> taken: the engine waits on the client), held
 * (taken -> completed: the client's I/O), reaping (completed -> handed to
 * the completion agent: the engine's side).  client_busy_ns and
 * client_idle_ns split the time both sides had the device open, until the
 * server closed it or the set ended: busy while the client had a command
 * queued or held, idle while it had none (the engine is the slow side).
 * Times stay 0 for a set created with the "stats" parameter off.
 */
struct vdi_dev_stats {
	char name[VDI_NAME_MAX];	/* empty until bound by a first open */
	__u32 index;
	__u32 state;			/* VDI_DEV_STATE_* */
	__u32 flags;			/* VDI_DEV_* */
	__u32 queued;			/* now: sent, not yet taken */
	__u32 held;			/* now: taken, not yet completed */
	__u32 done;			/* now: completed, not yet reaped */
	__u32 queued_peak;		/* most queued at once */
	__u32 inflight_peak;		/* most queued + held + done at once */
	__u32 io_error_episodes;	/* times the device entered IO-ERROR */
	__u32 reserved0;
	__u64 sent;			/* commands */
	__u64 taken;
	__u64 completed;		/* by the client, a flush or an abort */
	__u64 reaped;			/* handed to the completion agent */
	__u64 bytes_read;		/* VDC_Read bytes_transferred: restore */
	__u64 bytes_written;		/* VDC_Write bytes_transferred: backup */
	__u64 queued_ns;
	__u64 held_ns;
	__u64 reaping_ns;
	__u64 client_busy_ns;
	__u64 client_idle_ns;
	__u64 sent_by_code[VDI_VDC_MAX + 1];	/* index: VDC_* code */
	struct vdi_code_count completions[VDI_STATS_CODES];	/* first seen */
	__u64 completions_other;	/* codes past the VDI_STATS_CODES first */
	__u64 reserved[8];
};

/*
 * One set.  Pids are in the caller's pid namespace (0: gone, or not
 * visible there); uid and gid in its user namespace.  Ages are nanoseconds
 * before the snapshot, 0 for what has not happened.
 */
struct vdi_set_stats {
	__u64 id;			/* unique while the module is loaded */
	char name[VDI_NAME_MAX];
	__u32 state;			/* VDI_STATE_* */
	__u32 flags;			/* VDI_SET_* */
	__u32 uid;			/* the owner (creator) */
	__u32 gid;
	__u32 mode;
	__u32 device_count;
	__u32 client_pid;		/* the primary client (creator) */
	__u32 server_pid;		/* the engine, once it opened the set */
	__u32 secondaries;		/* secondary client set fds open now */
	__u32 queue_depth;		/* per device, 0 before BEGIN_CONFIG */
	struct vdi_config config;
	__u32 abort_reason;		/* VDI_ABORT_* */
	__u32 abort_device;		/* index, or VDI_ABORT_NO_DEVICE */
	__u32 abort_pid;		/* the process behind it, if any */
	__u64 area_size;		/* bytes, 0 before END_CONFIG */
	__u64 age_ns;			/* since CREATE */
	__u64 ready_age_ns;		/* since END_CONFIG */
	__u64 end_age_ns;		/* since the normal end or the abort */
	__u64 agent_wait_ns;		/* WAIT_COMPLETIONS asleep, nothing done */
	__u64 reserved[8];
};

/* The first published sizes: smaller sizes are refused with EINVAL. */
#define VDI_SET_STATS_SIZE_VER0	336	/* API 1.2 */
#define VDI_DEV_STATS_SIZE_VER0	616	/* API 1.2 */

/*
 * VDI_IOC_LIST_SETS: a /dev/vdi fd of any role (ENOTTY on a device fd).
 * The ids of the sets the caller may see: those of its user and IPC
 * namespaces that it created, or all of them with CAP_SYS_ADMIN in that
 * user namespace.  Sets whose name was released
 * but that a fd still holds are listed too (VDI_SET_LINKED clear).
 */
struct vdi_list_sets {
	__u64 ids;			/* user pointer: count __u64 */
	__u32 count;			/* in: room (0: only count them) */
	__u32 flags;			/* none defined */
	__u32 total;			/* out: visible sets */
	__u32 written;			/* out: ids written, oldest first */
	__u64 reserved[2];
};

/*
 * VDI_IOC_SET_STATS: a snapshot of one set, taken under its lock.  On a set
 * or device fd, id 0 names the fd's own set (any role, no scope check).
 */
struct vdi_stats_req {
	__u64 id;			/* a set id, or 0: this fd's set */
	__u64 set;			/* user pointer: struct vdi_set_stats */
	__u64 devs;			/* user pointer: dev_count vdi_dev_stats */
	__u32 set_size;			/* in: the caller's sizeof; out: written */
	__u32 dev_size;			/* in: the caller's sizeof; out: written */
	__u32 dev_count;		/* in: room (may be 0); out: written */
	__u32 flags;			/* none defined */
	__u64 reserved[2];
};

/*
 * VDI_IOC_ABORT_SET: a /dev/vdi fd of any role (ENOTTY on a device fd).
 * Abort a set of the caller's scope, as SIGNAL_ABORT would: its owner, or
 * CAP_SYS_ADMIN in its user namespace.
 */
struct vdi_abort_set {
	__u64 id;
	__u32 flags;			/* none defined */
	__u32 reserved0;
	__u64 reserved[2];
};

/*
 * ---- One call per turn (API 1.3, VDI_FEAT_ENTER) ----
 *
 * VDI_IOC_ENTER hands the module what a side has done and takes what it is
 * to do next, in one system call, as io_uring_enter submits and waits:
 *
 *   on a client device fd: submit is struct vdi_done[] (COMPLETE on this
 *     device), reap is struct vdi_command[] (GET_COMMANDS);
 *   on the server's set fd (the completion agent): submit is struct
 *     vdi_send_to[] (SEND, each to its device_index, a device the server
 *     has open), reap is struct vdi_completion[] (WAIT_COMPLETIONS).
 *
 * Any other fd gives ENOTTY (a set fd of the client, a server device fd)
 * or EPROTO (an endpoint without a role).  The submit entries are applied
 * in order, exactly as the older ioctl would; the first one refused stops
 * the call with that entry's errno and nothing is reaped.  Then, when
 * reap_count is not 0, the call takes up to reap_count entries, waiting as
 * the older ioctl would for timeout_ms, after polling for up to spin_us
 * microseconds without sleeping (0: no polling; at most VDI_SPIN_MAX_US;
 * the poll also stops when the CPU is wanted elsewhere or a signal is
 * pending; it never outlasts timeout_ms, so a timeout of 0 does not spin).
 * A wait that follows a submit is never restarted: any signal, a stop
 * included, ends it with EINTR (restarting would submit twice); a call that
 * submitted nothing restarts as the older ioctls do.  Return: entries reaped (0 when reap_count is 0), or -errno:
 * the submit's, or the reap's (ETIMEDOUT, ESHUTDOWN, ECONNABORTED, EINTR,
 * EBADF ...).  submitted and reaped are written back on every return after
 * the struct itself was read and checked (EINVAL/EFAULT for the struct
 * leave them unwritten), so a caller always knows what went in.
 */
#define VDI_SPIN_MAX_US		10000

struct vdi_send_to {
	struct vdi_send send;
	__u32 device_index;		/* 0..device_count-1 */
	__u32 reserved;
};

struct vdi_enter {
	__u64 submit;			/* user pointer: submit_count entries */
	__u64 reap;			/* user pointer: room for reap_count */
	__u32 submit_count;		/* 0..VDI_BATCH_MAX */
	__u32 reap_count;		/* 0..VDI_BATCH_MAX */
	__u32 submitted;		/* out: submit entries applied */
	__u32 reaped;			/* out: reap entries written */
	__s64 timeout_ms;		/* the reap's wait; 0 when reap_count is 0 */
	__u32 flags;			/* none defined */
	__u32 spin_us;			/* 0..VDI_SPIN_MAX_US; 0 when reap_count is 0 */
	__u64 reserved[2];
};

#define VDI_IOC_ENTER		_IOWR(VDI_IOC_MAGIC, 0x12, struct vdi_enter)

#endif /* _UAPI_LINUX_VDI_H */
