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
 *   ENOENT        no set of that name in this scope / no such device name
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
 *   EINTR         a wait was interrupted by a signal
 */
#ifndef _UAPI_LINUX_VDI_H
#define _UAPI_LINUX_VDI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VDI_DEVICE_NAME		"vdi"

#define VDI_API_MAJOR		1	/* incompatible changes bump this */
#define VDI_API_MINOR		1	/* compatible additions bump this */

/* Feature bits reported by VDI_IOC_VERSION. */
#define VDI_FEAT_BATCH		(1ULL << 0)	/* batched send/get/complete/wait */
#define VDI_FEAT_POLL		(1ULL << 1)	/* poll() on every fd */
#define VDI_FEAT_SECONDARY	(1ULL << 2)	/* VDI_IOC_OPEN_SECONDARY */
#define VDI_FEAT_WATCHDOG	(1ULL << 3)	/* VDConfig.serverTimeOut honoured */
#define VDI_FEAT_GROUP_ACCESS	(1ULL << 4)	/* vdi_create.mode / .gid */
#define VDI_FEAT_SET_INFO	(1ULL << 5)	/* VDI_IOC_SET_INFO (API 1.1) */

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

#endif /* _UAPI_LINUX_VDI_H */
