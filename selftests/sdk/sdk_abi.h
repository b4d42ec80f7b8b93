/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The binary interface of SQL Server on Linux's VDI client SDK (vdi.h and
 * vdierror.h), as its published headers define it, written for the
 * drop-in test: the layouts, the values and the member signatures, and no
 * code.  Deliberately not include/sqlvdi/vdi.h: a program built against
 * this header and linked with -lsqlvdi stands for a vendor's binary built
 * against the SDK, so every call goes to libsqlvdi.so's exported members.
 */
#ifndef SDK_ABI_H
#define SDK_ABI_H

#include <stdint.h>
#include <time.h>

extern "C" {

#pragma pack(push, sdk_abi)

#define ERROR_SUCCESS		0L
#define ERROR_ARENA_TRASHED	7L
#define ERROR_HANDLE_EOF	38L
#define ERROR_HANDLE_DISK_FULL	39L
#define ERROR_NOT_SUPPORTED	50L
#define ERROR_DISK_FULL		112L
#define ERROR_OPERATION_ABORTED	995L

#pragma pack(8)
struct VDConfig {
	uint32_t deviceCount, features, prefixZoneSize, alignment;
	uint32_t softFileMarkBlockSize, EOMWarningSize, serverTimeOut;
	uint32_t blockSize, maxIODepth, maxTransferSize, bufferAreaSize;
};

enum VDFeatures {
	VDF_Removable = 0x1, VDF_Rewind = 0x2, VDF_Position = 0x10,
	VDF_SkipBlocks = 0x20, VDF_ReversePosition = 0x40,
	VDF_Discard = 0x80, VDF_FileMarks = 0x100, VDF_RandomAccess = 0x200,
	VDF_SnapshotPrepare = 0x400, VDF_EnumFrozenFiles = 0x800,
	VDF_VSSWriter = 0x1000, VDF_RequestComplete = 0x2000,
	VDF_WriteMedia = 0x10000, VDF_ReadMedia = 0x20000,
	VDF_CompleteEnabled = 0x40000, VDF_LatchStats = 0x80000000,
	VDF_LikePipe = 0, VDF_LikeTape = 0x173, VDF_LikeDisk = 0x200
};

enum VDCommands {
	VDC_Read = 1, VDC_Write = 2, VDC_ClearError = 3, VDC_Rewind = 4,
	VDC_WriteMark = 5, VDC_SkipMarks = 6, VDC_SkipBlocks = 7,
	VDC_Load = 8, VDC_GetPosition = 9, VDC_SetPosition = 10,
	VDC_Discard = 11, VDC_Flush = 12, VDC_Snapshot = 13,
	VDC_MountSnapshot = 14, VDC_PrepareToFreeze = 15,
	VDC_FileInfoBegin = 16, VDC_FileInfoEnd = 17, VDC_GetError = 18,
	VDC_Complete = 19
};

struct VDC_Command {
	int32_t commandCode;
	int32_t size;
	int64_t position;
	uint8_t *buffer;
};

class CVDS;
class CVD;
class ClientVirtualDeviceSet;

class ClientVirtualDevice {
public:
	ClientVirtualDevice();
	~ClientVirtualDevice();
	int GetCommand(time_t timeOut, VDC_Command **ppCmd);
	int CompleteCommand(VDC_Command *pCmd, int completionCode,
			    unsigned long bytesTransferred, int64_t position);
private:
	CVD *cvd;
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
	CVDS *cvds;
};

#pragma pack(pop, sdk_abi)

}

/* vdierror.h */
#define MAKE_HRESULT(sev, fac, code) \
	((int)(((unsigned long)(sev) << 31) | ((unsigned long)(fac) << 16) | \
	       ((unsigned long)(code))))
#define VD_ERROR(code)		MAKE_HRESULT(1, 0x77, code)
#define VD_E_TIMEOUT		VD_ERROR(3)
#define VD_E_ABORT		VD_ERROR(4)
#define VD_E_PROTOCOL		VD_ERROR(12)
#define VD_E_CLOSE		VD_ERROR(14)

#endif /* SDK_ABI_H */
