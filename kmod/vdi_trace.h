/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdi: tracepoints, system "vdi" (docs/ABI.md, "Tracepoints").
 *
 * One event per step of a set's life and of a command's: create, open,
 * configure, send, take, complete, reap, abort.  Every event names its set
 * by set->id; command events name the command by its tag, which send,
 * take, complete and reap of one command share.  The events are read
 * through tracefs (events/vdi/), perf, trace-cmd or bpftrace; tools decode
 * the codes printed by name from the format file, so every symbol printed
 * is a number there (TRACE_DEFINE_ENUM for the module's enums).
 *
 * This header is read several times by <trace/define_trace.h>: once
 * normally, and again for each stage of the file that defines
 * CREATE_TRACE_POINTS (vdi_trace.c), hence the guard that lets
 * TRACE_HEADER_MULTI_READ through.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vdi

#if !defined(VDI_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define VDI_TRACE_H

#include <linux/tracepoint.h>

#include "compat.h"
#include "vdi_internal.h"

#ifndef VDI_TRACE_CONSTANTS
#define VDI_TRACE_CONSTANTS

/* vdi_config's stage: which of the server's two calls. */
#define VDI_TRACE_CONFIG_BEGIN	0	/* BEGIN_CONFIG */
#define VDI_TRACE_CONFIG_END	1	/* END_CONFIG: the area and slots exist */

/* vdi_complete's "by": who completed the command. */
#define VDI_TRACE_BY_CLIENT	0	/* the client's COMPLETE or ENTER */
#define VDI_TRACE_BY_IO_ERROR	1	/* the module: queued behind an error
					 * (spec 5.2), ERROR_IO_DEVICE
					 */
#define VDI_TRACE_BY_ABORT	2	/* the module: the set aborted,
					 * ERROR_OPERATION_ABORTED
					 */

/* vdi_open's device for an open of the set itself. */
#define VDI_TRACE_SET		(-1)

/* The spec's VDC_* command codes, by the names it gives them. */
#define vdi_show_code(code)						\
	__print_symbolic(code,						\
		{ 1, "Read" }, { 2, "Write" }, { 3, "ClearError" },	\
		{ 4, "Rewind" }, { 5, "WriteMark" }, { 6, "SkipMarks" },	\
		{ 7, "SkipBlocks" }, { 8, "Load" }, { 9, "GetPosition" },	\
		{ 10, "SetPosition" }, { 11, "Discard" }, { 12, "Flush" },	\
		{ 13, "Snapshot" }, { 14, "MountSnapshot" },		\
		{ 15, "PrepareToFreeze" }, { 16, "FileInfoBegin" },	\
		{ 17, "FileInfoEnd" }, { 18, "GetError" },		\
		{ 19, "Complete" })

#define vdi_show_role(role)						\
	__print_symbolic(role,						\
		{ VDI_ROLE_CLIENT, "client" },				\
		{ VDI_ROLE_SECONDARY, "secondary" },			\
		{ VDI_ROLE_SERVER, "server" })

#define vdi_show_state(state)						\
	__print_symbolic(state,						\
		{ VDI_SET_CREATED, "created" },				\
		{ VDI_SET_CONNECTED, "connected" },			\
		{ VDI_SET_CONFIGURING, "configuring" },			\
		{ VDI_SET_READY, "ready" },				\
		{ VDI_SET_DONE, "done" },				\
		{ VDI_SET_ABORTED, "aborted" })

#define vdi_show_reason(reason)						\
	__print_symbolic(reason,					\
		{ VDI_ABORT_NONE, "none" },				\
		{ VDI_ABORT_CLIENT_SIGNAL, "client-signal" },		\
		{ VDI_ABORT_SERVER_SIGNAL, "server-signal" },		\
		{ VDI_ABORT_CLIENT_CLOSE, "client-close" },		\
		{ VDI_ABORT_SERVER_CLOSE, "server-close" },		\
		{ VDI_ABORT_CLIENT_EXIT, "client-exit" },		\
		{ VDI_ABORT_SERVER_EXIT, "server-exit" },		\
		{ VDI_ABORT_WATCHDOG, "watchdog" },			\
		{ VDI_ABORT_ADMIN, "admin" })

#endif /* VDI_TRACE_CONSTANTS */

TRACE_DEFINE_ENUM(VDI_ROLE_CLIENT);
TRACE_DEFINE_ENUM(VDI_ROLE_SECONDARY);
TRACE_DEFINE_ENUM(VDI_ROLE_SERVER);
TRACE_DEFINE_ENUM(VDI_SET_CREATED);
TRACE_DEFINE_ENUM(VDI_SET_CONNECTED);
TRACE_DEFINE_ENUM(VDI_SET_CONFIGURING);
TRACE_DEFINE_ENUM(VDI_SET_READY);
TRACE_DEFINE_ENUM(VDI_SET_DONE);
TRACE_DEFINE_ENUM(VDI_SET_ABORTED);

/* The client created a set: CREATE. */
TRACE_EVENT(vdi_create,
	TP_PROTO(const struct vdi_set *set),
	TP_ARGS(set),
	TP_STRUCT__entry(
		__field(u64, set)
		__string(name, set->name)
		__field(u32, devices)
		__field(u32, features)
		__field(u32, server_timeout)
	),
	TP_fast_assign(
		__entry->set = set->id;
		vdi_assign_str(name, set->name);
		__entry->devices = set->device_count;
		__entry->features = set->config.features;
		__entry->server_timeout = set->config.server_timeout;
	),
	TP_printk("set=%llu name=%s devices=%u features=%#x server_timeout=%u",
		  __entry->set, __get_str(name), __entry->devices,
		  __entry->features, __entry->server_timeout)
);

/*
 * A process opened the set (OPEN_SERVER, OPEN_SECONDARY: device is
 * VDI_TRACE_SET) or one of its devices (OPEN_DEVICE, either side).
 */
TRACE_EVENT(vdi_open,
	TP_PROTO(const struct vdi_set *set, enum vdi_role role, int device),
	TP_ARGS(set, role, device),
	TP_STRUCT__entry(
		__field(u64, set)
		__string(name, set->name)
		__field(u32, role)
		__field(s32, device)
	),
	TP_fast_assign(
		__entry->set = set->id;
		vdi_assign_str(name, set->name);
		__entry->role = role;
		__entry->device = device;
	),
	TP_printk("set=%llu name=%s role=%s device=%d",
		  __entry->set, __get_str(name), vdi_show_role(__entry->role),
		  __entry->device)
);

/*
 * The server configured the set: BEGIN_CONFIG (area 0) and END_CONFIG.
 * Called under set->lock: the configuration is the one just set.
 */
TRACE_EVENT(vdi_config,
	TP_PROTO(const struct vdi_set *set, u32 stage),
	TP_ARGS(set, stage),
	TP_STRUCT__entry(
		__field(u64, set)
		__field(u32, stage)
		__field(u32, features)
		__field(u32, block_size)
		__field(u32, max_transfer_size)
		__field(u32, queue_depth)
		__field(u64, area_size)
	),
	TP_fast_assign(
		__entry->set = set->id;
		__entry->stage = stage;
		__entry->features = set->config.features;
		__entry->block_size = set->config.block_size;
		__entry->max_transfer_size = set->config.max_transfer_size;
		__entry->queue_depth = set->queue_depth;
		__entry->area_size = set->config.buffer_area_size;
	),
	TP_printk("set=%llu stage=%s features=%#x block_size=%u max_transfer_size=%u queue_depth=%u area_size=%llu",
		  __entry->set,
		  __print_symbolic(__entry->stage,
				   { VDI_TRACE_CONFIG_BEGIN, "begin" },
				   { VDI_TRACE_CONFIG_END, "end" }),
		  __entry->features, __entry->block_size,
		  __entry->max_transfer_size, __entry->queue_depth,
		  __entry->area_size)
);

/* A command as the server sent it; under set->lock, the slot is its own. */
DECLARE_EVENT_CLASS(vdi_command_class,
	TP_PROTO(const struct vdi_set *set, const struct vdi_slot *slot),
	TP_ARGS(set, slot),
	TP_STRUCT__entry(
		__field(u64, set)
		__field(u32, device)
		__field(u32, code)
		__field(u64, tag)
		__field(s64, position)
		__field(u64, buf_offset)
		__field(u32, size)
	),
	TP_fast_assign(
		__entry->set = set->id;
		__entry->device = slot->dev_index;
		__entry->code = slot->cmd.code;
		__entry->tag = vdi_slot_tag(slot);
		__entry->position = slot->cmd.position;
		__entry->buf_offset = slot->cmd.buf_offset;
		__entry->size = slot->cmd.size;
	),
	TP_printk("set=%llu device=%u tag=%#llx code=%s size=%u position=%lld buf_offset=%#llx",
		  __entry->set, __entry->device, __entry->tag,
		  vdi_show_code(__entry->code), __entry->size,
		  __entry->position, __entry->buf_offset)
);

/* SEND (or ENTER on the server's set fd) queued a command on its device. */
DEFINE_EVENT(vdi_command_class, vdi_send,
	TP_PROTO(const struct vdi_set *set, const struct vdi_slot *slot),
	TP_ARGS(set, slot)
);

/*
 * GET_COMMANDS (or ENTER on a client device fd) handed a command to the
 * client (one the client could not receive, EFAULT, is queued again and
 * taken again later).
 */
DEFINE_EVENT(vdi_command_class, vdi_take,
	TP_PROTO(const struct vdi_set *set, const struct vdi_slot *slot),
	TP_ARGS(set, slot)
);

/*
 * A command was completed: by the client's COMPLETE or ENTER, or by the
 * module (an IO-ERROR flush, an abort).  Under set->lock, right after
 * vdi_slot_finish() wrote the outcome into the slot.
 */
TRACE_EVENT(vdi_complete,
	TP_PROTO(const struct vdi_set *set, const struct vdi_slot *slot,
		 u32 by),
	TP_ARGS(set, slot, by),
	TP_STRUCT__entry(
		__field(u64, set)
		__field(u32, device)
		__field(u32, code)
		__field(u64, tag)
		__field(s64, position)
		__field(u32, completion_code)
		__field(u32, bytes)
		__field(u32, by)
	),
	TP_fast_assign(
		__entry->set = set->id;
		__entry->device = slot->dev_index;
		__entry->code = slot->cmd.code;
		__entry->tag = vdi_slot_tag(slot);
		__entry->position = slot->position;
		__entry->completion_code = slot->completion_code;
		__entry->bytes = slot->bytes;
		__entry->by = by;
	),
	TP_printk("set=%llu device=%u tag=%#llx code=%s completion_code=%u bytes=%u position=%lld by=%s",
		  __entry->set, __entry->device, __entry->tag,
		  vdi_show_code(__entry->code), __entry->completion_code,
		  __entry->bytes, __entry->position,
		  __print_symbolic(__entry->by,
				   { VDI_TRACE_BY_CLIENT, "client" },
				   { VDI_TRACE_BY_IO_ERROR, "io-error" },
				   { VDI_TRACE_BY_ABORT, "abort" }))
);

/*
 * WAIT_COMPLETIONS (or ENTER on the server's set fd) handed a completion
 * to the agent (one it could not receive, EFAULT, goes back and is reaped
 * again later).
 */
TRACE_EVENT(vdi_reap,
	TP_PROTO(const struct vdi_set *set, const struct vdi_slot *slot),
	TP_ARGS(set, slot),
	TP_STRUCT__entry(
		__field(u64, set)
		__field(u32, device)
		__field(u32, code)
		__field(u64, tag)
		__field(s64, position)
		__field(u32, completion_code)
		__field(u32, bytes)
	),
	TP_fast_assign(
		__entry->set = set->id;
		__entry->device = slot->dev_index;
		__entry->code = slot->cmd.code;
		__entry->tag = vdi_slot_tag(slot);
		__entry->position = slot->position;
		__entry->completion_code = slot->completion_code;
		__entry->bytes = slot->bytes;
	),
	TP_printk("set=%llu device=%u tag=%#llx code=%s completion_code=%u bytes=%u position=%lld",
		  __entry->set, __entry->device, __entry->tag,
		  vdi_show_code(__entry->code), __entry->completion_code,
		  __entry->bytes, __entry->position)
);

/*
 * The set aborts (once: a later abort of an aborted or ended set is no
 * event).  @set->state is still the state it leaves; the commands it ends
 * follow as vdi_complete events "by=abort".
 */
TRACE_EVENT(vdi_abort,
	TP_PROTO(const struct vdi_set *set, u32 reason),
	TP_ARGS(set, reason),
	TP_STRUCT__entry(
		__field(u64, set)
		__string(name, set->name)
		__field(u32, reason)
		__field(u32, state)
	),
	TP_fast_assign(
		__entry->set = set->id;
		vdi_assign_str(name, set->name);
		__entry->reason = reason;
		__entry->state = set->state;
	),
	TP_printk("set=%llu name=%s reason=%s state=%s",
		  __entry->set, __get_str(name),
		  vdi_show_reason(__entry->reason),
		  vdi_show_state(__entry->state))
);

#endif /* VDI_TRACE_H */

/* define_trace.h reads this file again as "./vdi_trace.h": Kbuild's
 * -I$(src)/kmod finds it.
 */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE vdi_trace
#include <trace/define_trace.h>
