/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Compatibility with SQL Server on Linux's VDI client SDK, source and binary.
 *
 * The SDK's classes, structs, enums and constants, with the SDK's shape:
 * ClientVirtualDeviceSet and ClientVirtualDevice hold one pointer each (a
 * CVDS* / CVD*), their methods are plain non-virtual members with the SDK's
 * signatures, copying and assignment are the compiler's.  Two ways to use it:
 *
 *  - rebuild: -I<includedir>/sqlvdi ... -lvdi.  The methods below are inline
 *    (LIBVDI_SDK_METHOD defaults to "inline") and call libvdi's vdi_sdk_*
 *    functions;
 *  - run a binary built against the SDK unchanged: libsqlvdi.so is this
 *    header compiled with LIBVDI_SDK_METHOD empty, so the same bodies are its
 *    exported methods, with the SDK's mangled names.
 *
 * What the pointer members hold are handles, not addresses: a slot and a
 * generation in libvdi's table (userlib/sdk.c).  Every call checks its handle,
 * so a copy of an object that was destroyed, or a device its set already
 * freed, gets VD_E_PROTOCOL instead of touching freed memory, and a second
 * destructor of copies of one object does nothing.  The device objects
 * OpenDevice returns are allocated with new: the client may delete them
 * (before or after Close) or leave them to the set's destructor.
 *
 * Self-contained (standard headers only): a project may copy this file and
 * vdierror.h into its own tree.  Timeouts are milliseconds (negative: wait
 * forever), see libsqlvdi(3).
 */
#ifndef LIBVDI_SQLVDI_VDI_H
#define LIBVDI_SQLVDI_VDI_H

#include <stdint.h>
#include <time.h>
#ifdef __cplusplus
#include <new>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#pragma pack(push, _vdi_h_)

/* Completion codes passed back to the server, as the SDK defines them. */
#define ERROR_SUCCESS			0L
#define ERROR_ARENA_TRASHED		7L
#define ERROR_HANDLE_EOF		38L
#define ERROR_HANDLE_DISK_FULL		39L
#define ERROR_NOT_SUPPORTED		50L
#define ERROR_DISK_FULL			112L
#define ERROR_OPERATION_ABORTED		995L

/* libvdi.h defines the same types under the same guard. */
#ifndef LIBVDI_VDI_TYPES_DEFINED
#define LIBVDI_VDI_TYPES_DEFINED

#pragma pack(8)
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

/* VDF_LatchStats makes the underlying type unsigned int, as in the SDK. */
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
	VDF_LatchStats		= 0x80000000,
#else
	VDF_LatchStats		= (int)0x80000000, /* C: as libvdi.h */
#endif
	VDF_LikePipe		= 0,
	VDF_LikeTape		= 0x173,
	VDF_LikeDisk		= 0x200
};

enum VDCommands {
	VDC_Read = 1, VDC_Write, VDC_ClearError, VDC_Rewind, VDC_WriteMark,
	VDC_SkipMarks, VDC_SkipBlocks, VDC_Load, VDC_GetPosition,
	VDC_SetPosition, VDC_Discard, VDC_Flush, VDC_Snapshot,
	VDC_MountSnapshot, VDC_PrepareToFreeze, VDC_FileInfoBegin,
	VDC_FileInfoEnd, VDC_GetError, VDC_Complete
};

enum VDWhence { VDC_Beginning = 0, VDC_Current = 1, VDC_End = 2 };

struct VDC_Command {
	int32_t commandCode;
	int32_t size;
	int64_t position;
	uint8_t *buffer;
};

struct VDS_Command {
	int32_t commandCode;
	int32_t size;
	int64_t inPosition;
	int64_t outPosition;
	uint8_t *buffer;
	uint8_t *completionRoutine;
	uint8_t *completionContext;
	int32_t completionCode;
	int32_t bytesTransferred;
};

#endif /* LIBVDI_VDI_TYPES_DEFINED */

/*
 * libvdi's side of the classes (userlib/sdk.c, exported by libvdi.so.1).
 * Sets and devices are handles; 0 is a set whose constructor ran out of
 * memory (VD_E_MEMORY), or a device object OpenDevice did not make.
 */
uintptr_t vdi_sdk_set_new(void);
void *vdi_sdk_set_take_device(uintptr_t set);
void vdi_sdk_set_free(uintptr_t set);
int vdi_sdk_create(uintptr_t set, const char *name, struct VDConfig *cfg);
int vdi_sdk_get_configuration(uintptr_t set, int64_t timeout_ms,
			      struct VDConfig *cfg);
int vdi_sdk_open_device(uintptr_t set, const char *name, void *wrapper,
			uintptr_t *dev);
int vdi_sdk_close(uintptr_t set);
int vdi_sdk_signal_abort(uintptr_t set);
int vdi_sdk_open_in_secondary(uintptr_t set, const char *name);
int vdi_sdk_get_buffer_handle(uintptr_t set, const uint8_t *buffer,
			      unsigned int *handle);
int vdi_sdk_map_buffer_handle(uintptr_t set, int handle, uint8_t **buffer);
void vdi_sdk_device_free(uintptr_t dev);
int vdi_sdk_get_command(uintptr_t dev, int64_t timeout_ms,
			struct VDC_Command **cmd);
int vdi_sdk_complete_command(uintptr_t dev, struct VDC_Command *cmd,
			     int completion_code,
			     unsigned long bytes_transferred,
			     int64_t position);

#ifdef __cplusplus

class CVDS;
class CVD;
class ClientVirtualDeviceSet;

class ClientVirtualDevice {
public:
	ClientVirtualDevice();
	~ClientVirtualDevice();

	/* The next command, waiting up to timeOut ms (negative: forever). */
	int GetCommand(time_t timeOut, VDC_Command **ppCmd);

	int CompleteCommand(VDC_Command *pCmd, int completionCode,
			    unsigned long bytesTransferred, int64_t position);

private:
	CVD *cvd;		/* a handle (vdi_sdk_*), not an address */
	friend class ClientVirtualDeviceSet;
};

class ClientVirtualDeviceSet {
public:
	int Create(char *name, VDConfig *cfg);
	int GetConfiguration(time_t timeout, VDConfig *cfg);
	int OpenDevice(char *name, ClientVirtualDevice **ppVirtualDevice);
	int Close();
	int SignalAbort();
	int OpenInSecondary(char *setName);
	int GetBufferHandle(uint8_t *pBuffer, unsigned int *pBufferHandle);
	int MapBufferHandle(int dwBuffer, uint8_t **ppBuffer);
	void RegisterDeviceClosed();

	ClientVirtualDeviceSet();
	~ClientVirtualDeviceSet();

private:
	CVDS *cvds;		/* a handle (vdi_sdk_*), not an address */
};

#endif /* __cplusplus */

#pragma pack(pop, _vdi_h_)

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus

#if __cplusplus >= 201103L
static_assert(sizeof(VDConfig) == 44, "VDConfig is 44 bytes");
static_assert(sizeof(ClientVirtualDevice) == sizeof(void *),
	      "ClientVirtualDevice is one pointer, as in the SDK");
static_assert(sizeof(ClientVirtualDeviceSet) == sizeof(void *),
	      "ClientVirtualDeviceSet is one pointer, as in the SDK");
#if UINTPTR_MAX == 0xffffffffffffffffULL
static_assert(sizeof(VDC_Command) == 24, "VDC_Command is 24 bytes");
static_assert(sizeof(VDS_Command) == 56, "VDS_Command is 56 bytes");
#endif
#endif

/*
 * The methods.  Inline by default (rebuild with -lvdi); libsqlvdi.so defines
 * LIBVDI_SDK_METHOD empty to make them its exported, out-of-line methods.
 */
#ifndef LIBVDI_SDK_METHOD
#define LIBVDI_SDK_METHOD inline
#endif

#define LIBVDI_SDK_SET(p)	(reinterpret_cast<uintptr_t>(p))
#define LIBVDI_SDK_DEV(p)	(reinterpret_cast<uintptr_t>(p))

LIBVDI_SDK_METHOD ClientVirtualDevice::ClientVirtualDevice() : cvd(0)
{
}

/* A device the client deletes leaves its set; a stale handle: nothing. */
LIBVDI_SDK_METHOD ClientVirtualDevice::~ClientVirtualDevice()
{
	vdi_sdk_device_free(LIBVDI_SDK_DEV(cvd));
}

LIBVDI_SDK_METHOD int ClientVirtualDevice::GetCommand(time_t timeOut,
						      VDC_Command **ppCmd)
{
	return vdi_sdk_get_command(LIBVDI_SDK_DEV(cvd), (int64_t)timeOut,
				   ppCmd);
}

LIBVDI_SDK_METHOD int ClientVirtualDevice::CompleteCommand(
	VDC_Command *pCmd, int completionCode, unsigned long bytesTransferred,
	int64_t position)
{
	return vdi_sdk_complete_command(LIBVDI_SDK_DEV(cvd), pCmd,
					completionCode, bytesTransferred,
					position);
}

LIBVDI_SDK_METHOD ClientVirtualDeviceSet::ClientVirtualDeviceSet()
	: cvds(reinterpret_cast<CVDS *>(vdi_sdk_set_new()))
{
}

/*
 * The device objects the client did not delete go with the set (the SDK's
 * sample never deletes them); a copy destroyed before finds a stale handle
 * and does nothing.
 */
LIBVDI_SDK_METHOD ClientVirtualDeviceSet::~ClientVirtualDeviceSet()
{
	void *vd;

	while ((vd = vdi_sdk_set_take_device(LIBVDI_SDK_SET(cvds))))
		delete static_cast<ClientVirtualDevice *>(vd);
	vdi_sdk_set_free(LIBVDI_SDK_SET(cvds));
}

LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::Create(char *name,
						     VDConfig *cfg)
{
	return vdi_sdk_create(LIBVDI_SDK_SET(cvds), name, cfg);
}

LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::GetConfiguration(time_t timeout,
							       VDConfig *cfg)
{
	return vdi_sdk_get_configuration(LIBVDI_SDK_SET(cvds),
					 (int64_t)timeout, cfg);
}

LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::OpenDevice(
	char *name, ClientVirtualDevice **ppVirtualDevice)
{
	ClientVirtualDevice *vd;
	uintptr_t dev = 0;
	int ret;

	if (!ppVirtualDevice)	/* the shim says which code */
		return vdi_sdk_open_device(LIBVDI_SDK_SET(cvds), name, 0, 0);
	*ppVirtualDevice = 0;
	vd = new (std::nothrow) ClientVirtualDevice();
	ret = vdi_sdk_open_device(LIBVDI_SDK_SET(cvds), name, vd, &dev);
	if (ret) {
		delete vd;
		return ret;
	}
	vd->cvd = reinterpret_cast<CVD *>(dev);
	*ppVirtualDevice = vd;
	return ret;
}

/* Device objects stay (the client may still delete them); their calls fail
 * from now on, and Create may be called again. */
LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::Close()
{
	return vdi_sdk_close(LIBVDI_SDK_SET(cvds));
}

LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::SignalAbort()
{
	return vdi_sdk_signal_abort(LIBVDI_SDK_SET(cvds));
}

LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::OpenInSecondary(char *setName)
{
	return vdi_sdk_open_in_secondary(LIBVDI_SDK_SET(cvds), setName);
}

LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::GetBufferHandle(
	uint8_t *pBuffer, unsigned int *pBufferHandle)
{
	return vdi_sdk_get_buffer_handle(LIBVDI_SDK_SET(cvds), pBuffer,
					 pBufferHandle);
}

LIBVDI_SDK_METHOD int ClientVirtualDeviceSet::MapBufferHandle(
	int dwBuffer, uint8_t **ppBuffer)
{
	return vdi_sdk_map_buffer_handle(LIBVDI_SDK_SET(cvds), dwBuffer,
					 ppBuffer);
}

/*
 * Public but undocumented in the SDK.  libvdi tracks each device's normal
 * end itself (GetCommand returning VD_E_CLOSE): nothing to register.
 */
LIBVDI_SDK_METHOD void ClientVirtualDeviceSet::RegisterDeviceClosed()
{
}

#undef LIBVDI_SDK_SET
#undef LIBVDI_SDK_DEV

#endif /* __cplusplus */

#endif /* LIBVDI_SQLVDI_VDI_H */
