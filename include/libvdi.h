/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvdi: SQL Server's Virtual Device Interface, both roles, in C.
 *
 * The server role is what a database engine calls (IServerVirtualDeviceSet2,
 * IServerVirtualDevice); the client role is what a backup application calls
 * (IClientVirtualDeviceSet2, IClientVirtualDevice).  Every function returns a
 * VDI code: NOERROR or VD_E_*.  Timeouts are milliseconds: 0 polls, INFINITE
 * or any negative value waits forever.  See vdi_*(3) for each function.
 */
#ifndef LIBVDI_H
#define LIBVDI_H

#include <stdint.h>
#include <time.h>

#include <linux/vdi.h>		/* the figures' structs (vdi_stats) */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ---- Codes (vdierror.h) ----
 * MAKE_HRESULT, VD_ERROR and the VD_E_* codes are defined token for token
 * as in <sqlvdi/vdierror.h>, so a file may include both headers.
 */
#ifndef NOERROR
#define NOERROR			0
#endif
#define MAKE_HRESULT(sev, fac, code) \
	((int) (((unsigned long)(sev) << 31) | ((unsigned long)(fac) << 16) | ((unsigned long)(code))) )
#define VD_ERROR(code)		MAKE_HRESULT(1, 0x77, code)
#define VD_E_FACILITY(code)	VD_ERROR(code)
#define VD_E_NOTOPEN		VD_ERROR(2)	/* object not open */
#define VD_E_TIMEOUT		VD_ERROR(3)	/* wait timed out */
#define VD_E_ABORT		VD_ERROR(4)	/* abort in force */
#define VD_E_SECURITY		VD_ERROR(5)	/* access denied */
#define VD_E_INVALID		VD_ERROR(6)	/* bad parameter */
#define VD_E_INSTANCE_NAME	VD_ERROR(7)	/* instance not recognised */
#define VD_E_NOTSUPPORTED	VD_ERROR(9)	/* configuration unsupported */
#define VD_E_MEMORY		VD_ERROR(10)	/* out of memory */
#define VD_E_UNEXPECTED		VD_ERROR(11)	/* unexpected internal error */
#define VD_E_PROTOCOL		VD_ERROR(12)	/* not legal in this state */
#define VD_E_OPEN		VD_ERROR(13)	/* all devices are open */
#define VD_E_CLOSE		VD_ERROR(14)	/* closed: normal end */
#define VD_E_BUSY		VD_ERROR(15)	/* resource busy */
/* Documented by VDI but absent from every public header: local values. */
#define VD_E_QUEUE_FULL		VD_ERROR(0x10)	/* SendCommand: queue full */
#define VD_E_IO_ERROR		VD_ERROR(0x11)	/* SendCommand: IO-ERROR */

#define LIBVDI_MAX_DEVICES	64	/* VDConfig.deviceCount is 1..64 */

#ifndef INFINITE
#define INFINITE		(-1)
#endif

/*
 * ---- Win32 completion codes used by VDI ----
 * The seven <sqlvdi/vdi.h> defines are long there (0L ...): the same tokens
 * here.
 */
#define ERROR_SUCCESS			0L
#define ERROR_INVALID_HANDLE		6
#define ERROR_ARENA_TRASHED		7L
#define ERROR_HANDLE_EOF		38L
#define ERROR_HANDLE_DISK_FULL		39L
#define ERROR_NOT_SUPPORTED		50L
#define ERROR_DISK_FULL			112L
#define ERROR_OPERATION_ABORTED		995L
#define ERROR_END_OF_MEDIA		1100
#define ERROR_FILEMARK_DETECTED		1101
#define ERROR_NO_DATA_DETECTED		1104
#define ERROR_IO_DEVICE			1117
#define ERROR_EOM_OVERFLOW		1129
#define ERROR_NO_SYSTEM_RESOURCES	1450

/*
 * ---- Feature bits, commands, structures ----
 * <sqlvdi/vdi.h> defines the same types under the same guard: whichever
 * header comes first defines them.  It has no typedefs (the SDK's header
 * is C++), so C's typedef names follow the guard.
 */
#ifndef LIBVDI_VDI_TYPES_DEFINED
#define LIBVDI_VDI_TYPES_DEFINED

enum VDFeatures {
	VDF_Removable		= 0x1,
	VDF_Rewind		= 0x2,
	VDF_Position		= 0x10,
	VDF_SkipBlocks		= 0x20,
	VDF_ReversePosition	= 0x40,
	VDF_Discard		= 0x80,
	VDF_FileMarks		= 0x100,
	VDF_RandomAccess	= 0x200,
	VDF_SnapshotPrepare	= 0x400,
	VDF_EnumFrozenFiles	= 0x800,
	VDF_VSSWriter		= 0x1000,
	VDF_RequestComplete	= 0x2000,
	VDF_WriteMedia		= 0x10000,
	VDF_ReadMedia		= 0x20000,
	VDF_CompleteEnabled	= 0x40000,
#ifdef __cplusplus
	VDF_LatchStats		= 0x80000000,	/* unsigned, as in the SDK */
#else
	VDF_LatchStats		= (int)0x80000000, /* C: enumerators are int */
#endif
	VDF_LikePipe		= 0,
	VDF_LikeTape		= 0x173,
	VDF_LikeDisk		= 0x200
};

/* ---- Commands ---- */
enum VDCommands {
	VDC_Read = 1, VDC_Write, VDC_ClearError, VDC_Rewind, VDC_WriteMark,
	VDC_SkipMarks, VDC_SkipBlocks, VDC_Load, VDC_GetPosition,
	VDC_SetPosition, VDC_Discard, VDC_Flush, VDC_Snapshot,
	VDC_MountSnapshot, VDC_PrepareToFreeze, VDC_FileInfoBegin,
	VDC_FileInfoEnd, VDC_GetError, VDC_Complete
};

enum VDWhence { VDC_Beginning = 0, VDC_Current = 1, VDC_End = 2 };

/* ---- Structures, with VDI's layouts (pack 8) ---- */
struct VDConfig {
	uint32_t deviceCount;
	uint32_t features;
	uint32_t prefixZoneSize;
	uint32_t alignment;
	uint32_t softFileMarkBlockSize;
	uint32_t EOMWarningSize;
	uint32_t serverTimeOut;
	uint32_t blockSize;
	uint32_t maxIODepth;
	uint32_t maxTransferSize;
	uint32_t bufferAreaSize;
};

/* What the client gets from GetCommand: read-only, hand it back. */
struct VDC_Command {
	int32_t commandCode;
	int32_t size;
	int64_t position;
	uint8_t *buffer;
};

/* What the server sends; the completion agent fills the outputs. */
struct VDS_Command {
	int32_t commandCode;
	int32_t size;
	int64_t inPosition;
	int64_t outPosition;		/* out */
	uint8_t *buffer;
	uint8_t *completionRoutine;	/* VDS_CompletionRoutine */
	uint8_t *completionContext;	/* the server's, untouched */
	int32_t completionCode;		/* out */
	int32_t bytesTransferred;	/* out */
};

#endif /* LIBVDI_VDI_TYPES_DEFINED */

typedef struct VDConfig VDConfig;
typedef struct VDC_Command VDC_Command;
typedef struct VDS_Command VDS_Command;
typedef void (*VDS_CompletionRoutine)(VDS_Command *cmd);

#if defined(__cplusplus) && __cplusplus >= 201103L
#define LIBVDI_STATIC_ASSERT static_assert
#elif !defined(__cplusplus)
#define LIBVDI_STATIC_ASSERT _Static_assert
#endif
#ifdef LIBVDI_STATIC_ASSERT
LIBVDI_STATIC_ASSERT(sizeof(VDConfig) == 44, "VDConfig is 44 bytes");
#if UINTPTR_MAX == 0xffffffffffffffffULL
LIBVDI_STATIC_ASSERT(sizeof(VDC_Command) == 24, "VDC_Command is 24 bytes");
LIBVDI_STATIC_ASSERT(sizeof(VDS_Command) == 56, "VDS_Command is 56 bytes");
#endif
#endif

/* ---- Objects ---- */
typedef struct vdi_server_set vdi_server_set;
typedef struct vdi_server_device vdi_server_device;
typedef struct vdi_client_set vdi_client_set;
typedef struct vdi_client_device vdi_client_device;

/* ---- Server role (the engine) ---- */
int vdi_server_open(vdi_server_set **set, const char *instance_name,
		    const char *set_name);
/* Open refuses a set whose owner is not an expected user: a set name is
 * anyone's to take (VD_E_SECURITY).  vdi_server_open expects the caller's
 * effective uid or root; vdi_server_open_ex names the uid (or root), or
 * VDI_OWNER_SELF, or VDI_OWNER_ANY (no check). */
#define VDI_OWNER_SELF		(-1)
#define VDI_OWNER_ANY		(-2)
int vdi_server_open_ex(vdi_server_set **set, const char *instance_name,
		       const char *set_name, int64_t owner);
/* Whose set it is: its owner's uid, its group, its mode (0600 ...). */
int vdi_server_get_owner(vdi_server_set *set, uint32_t *uid, uint32_t *gid,
			 uint32_t *mode);
int vdi_server_get_configuration(vdi_server_set *set, VDConfig *cfg);
int vdi_server_begin_configuration(vdi_server_set *set, uint32_t features,
				   uint32_t alignment, uint32_t block_size,
				   uint32_t max_transfer_size,
				   uint32_t timeout_ms);
int vdi_server_request_buffers(vdi_server_set *set, uint32_t size,
			       uint32_t alignment, uint32_t count);
int vdi_server_query_available_buffers(vdi_server_set *set, uint32_t size,
				       uint32_t alignment, uint32_t *count);
int vdi_server_end_configuration(vdi_server_set *set);
int vdi_server_open_device(vdi_server_set *set, const char *name,
			   vdi_server_device **dev);
int vdi_server_allocate_buffer(vdi_server_set *set, uint8_t **buffer,
			       uint32_t size, uint32_t alignment);
int vdi_server_free_buffer(vdi_server_set *set, uint8_t *buffer,
			   uint32_t size);
int vdi_server_is_shared_buffer(vdi_server_set *set, const uint8_t *buffer);
int vdi_server_execute_completion_agent(vdi_server_set *set);
int vdi_server_signal_abort(vdi_server_set *set);
int vdi_server_close(vdi_server_set *set);
int vdi_server_send_command(vdi_server_device *dev, VDS_Command *cmd);
int vdi_server_close_device(vdi_server_device *dev);

/* ---- Client role (the backup application) ---- */
vdi_client_set *vdi_client_set_new(void);
void vdi_client_set_free(vdi_client_set *set);
int vdi_client_create(vdi_client_set *set, const char *name, VDConfig *cfg);
int vdi_client_create_ex(vdi_client_set *set, const char *instance_name,
			 const char *name, VDConfig *cfg);
int vdi_client_get_configuration(vdi_client_set *set, int64_t timeout_ms,
				 VDConfig *cfg);
int vdi_client_open_device(vdi_client_set *set, const char *name,
			   vdi_client_device **dev);
int vdi_client_close(vdi_client_set *set);
int vdi_client_signal_abort(vdi_client_set *set);
int vdi_client_open_in_secondary(vdi_client_set *set, const char *set_name);
int vdi_client_open_in_secondary_ex(vdi_client_set *set,
				    const char *instance_name,
				    const char *set_name);
int vdi_client_get_buffer_handle(vdi_client_set *set, const uint8_t *buffer,
				 unsigned int *handle);
int vdi_client_map_buffer_handle(vdi_client_set *set, unsigned int handle,
				 uint8_t **buffer);
int vdi_client_get_command(vdi_client_device *dev, int64_t timeout_ms,
			   VDC_Command **cmd);
int vdi_client_complete_command(vdi_client_device *dev, VDC_Command *cmd,
				uint32_t completion_code,
				uint32_t bytes_transferred, int64_t position);

/* ---- Extras: batches (one system call for many commands) ---- */
/* A completion for vdi_client_complete_commands(). */
typedef struct vdi_client_completion {
	VDC_Command *cmd;
	uint32_t completionCode;
	uint32_t bytesTransferred;
	int64_t position;
} vdi_client_completion;

/* Send cmds[0..count-1] in order; *sent says how many were queued.  On a
 * failure, cmds[*sent] gets its routine called as SendCommand would, the
 * return value is SendCommand's, and the commands after it are not sent. */
int vdi_server_send_commands(vdi_server_device *dev, VDS_Command **cmds,
			     unsigned int count, unsigned int *sent);
/* Up to max commands, waiting up to timeout for the first; *count >= 1 on
 * NOERROR. */
int vdi_client_get_commands(vdi_client_device *dev, int64_t timeout_ms,
			    VDC_Command **cmds, unsigned int max,
			    unsigned int *count);
/* Complete c[0..count-1] in order; *done says how many were applied; the
 * return value is CompleteCommand's for c[*done] when not all were. */
int vdi_client_complete_commands(vdi_client_device *dev,
				 const vdi_client_completion *c,
				 unsigned int count, unsigned int *done);
/* Both in one: complete c[0..count-1] as vdi_client_complete_commands
 * would (*done), then, once every one was applied, get up to max commands
 * as vdi_client_get_commands would (*got >= 1 on NOERROR).  One system call
 * for up to 64 of each with a module of API 1.3; an older module gets the
 * two calls.  (LIBVDI_1.4) */
int vdi_client_complete_and_get(vdi_client_device *dev,
				const vdi_client_completion *c,
				unsigned int count, unsigned int *done,
				int64_t timeout_ms, VDC_Command **cmds,
				unsigned int max, unsigned int *got);

/* ---- Extras ---- */
/* Wait until ExecuteCompletionAgent runs on some thread (SendCommand needs
 * it): NOERROR, or VD_E_TIMEOUT. */
int vdi_server_wait_agent(vdi_server_set *set, int64_t timeout_ms);
/* Commands per device (0: the module's default); before BeginConfiguration. */
int vdi_server_set_queue_depth(vdi_server_set *set, uint32_t depth);
/* Access for other users: mode (0600 default, 0660 ...) and group (-1: own). */
int vdi_client_set_access(vdi_client_set *set, unsigned int mode, int gid);
/* The name of a VDI code ("VD_E_ABORT"), or NULL. */
const char *vdi_code_name(int code);
/* Why the calling thread's last failed call failed, in words. */
const char *vdi_last_error(void);

/*
 * ---- Figures (API 1.2, VDI_FEAT_STATS): vdi_stats(3) ----
 * What the module counted for a set and each of its devices (the structs
 * of <linux/vdi.h>, docs/ABI.md "Figures").  None of these loads the
 * module: VD_E_NOTOPEN when it is not loaded.
 */

typedef struct vdi_stats {
	struct vdi_set_stats set;
	uint32_t ndevs;			/* devs[0..ndevs-1] are filled */
	struct vdi_dev_stats devs[LIBVDI_MAX_DEVICES];
} vdi_stats;

/* The ids of the sets the caller may see (its own; all of its namespace
 * for root): up to room of them, oldest first; *total: how many there are. */
int vdi_stats_list(uint64_t *ids, unsigned int room, unsigned int *total);
/* A snapshot of set id: VD_E_INVALID when there is no such set here,
 * VD_E_SECURITY when it is another user's. */
int vdi_stats_get(uint64_t id, vdi_stats *st);
/* Abort set id as SignalAbort would: its owner, or root. */
int vdi_stats_abort(uint64_t id);
/* A snapshot of the caller's own set. */
int vdi_server_get_stats(vdi_server_set *set, vdi_stats *st);
int vdi_client_get_stats(vdi_client_set *set, vdi_stats *st);

/* Which side is the slow one, from the share of the time the client had a
 * command queued or held (busy) against none (idle). */
#define VDI_SIDE_NONE		0	/* too little has moved to say */
#define VDI_SIDE_CLIENT		1	/* busy >= 60%: the client's storage */
#define VDI_SIDE_ENGINE		2	/* busy <= 40%: the engine */
#define VDI_SIDE_BALANCED	3
typedef struct vdi_verdict {
	int side;			/* VDI_SIDE_* */
	unsigned int client_pct;	/* busy share, percent */
	char text[160];			/* "client storage: 83% of the time
					 * the engine waited on the client" */
} vdi_verdict;
/* The verdict on device dev, or on the whole set for dev -1. */
int vdi_stats_verdict(const vdi_stats *st, int dev, vdi_verdict *v);

#ifdef __cplusplus
}
#endif

#endif /* LIBVDI_H */
