// SPDX-License-Identifier: LGPL-2.1-or-later
/* libvdi: VDI codes, their names, and each thread's last reason. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static __thread char vdi_reason[256];

/* Remember why the calling thread's call failed; return @code. */
int vdi_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vdi_reason, sizeof(vdi_reason), fmt, ap);
	va_end(ap);
	return code;
}

/*
 * The module's errnos each have one meaning (include/uapi/linux/vdi.h);
 * this is their VDI code.  Callers with a more specific reading of one
 * errno (Create's EEXIST, say) decide before calling this.
 */
int vdi_from_errno(int err, const char *what)
{
	static const struct {
		int err;
		int code;
	} map[] = {
		{ ECONNABORTED,	VD_E_ABORT },
		{ ETIMEDOUT,	VD_E_TIMEOUT },
		{ EPROTO,	VD_E_PROTOCOL },
		{ EISCONN,	VD_E_PROTOCOL },
		{ EBUSY,	VD_E_PROTOCOL },
		{ EEXIST,	VD_E_PROTOCOL },
		{ EINVAL,	VD_E_INVALID },
		{ ENOENT,	VD_E_INVALID },
		{ ESTALE,	VD_E_INVALID },
		{ EFAULT,	VD_E_INVALID },
		{ EOPNOTSUPP,	VD_E_NOTSUPPORTED },
		{ ENOMEM,	VD_E_MEMORY },
		{ E2BIG,	VD_E_MEMORY },
		{ EMFILE,	VD_E_MEMORY },
		{ ENFILE,	VD_E_MEMORY },
		{ EACCES,	VD_E_SECURITY },
		{ EPERM,	VD_E_SECURITY },
		{ ENOBUFS,	VD_E_QUEUE_FULL },
		{ EIO,		VD_E_IO_ERROR },
		{ ESHUTDOWN,	VD_E_CLOSE },
		{ EALREADY,	VD_E_OPEN },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].err == err)
			return vdi_fail(map[i].code, "%s: %s", what,
					strerror(err));
	return vdi_fail(VD_E_UNEXPECTED, "%s: unexpected error: %s", what,
			strerror(err));
}

/* Open/CreateEx/OpenInSecondaryEx: only the default instance exists here. */
int vdi_check_instance(const char *instance)
{
	if (instance && instance[0])
		return vdi_fail(VD_E_INSTANCE_NAME,
				"instance '%s': SQL Server on Linux has no "
				"named instances", instance);
	return NOERROR;
}

VDI_EXPORT const char *vdi_last_error(void)
{
	return vdi_reason;
}

VDI_EXPORT const char *vdi_code_name(int code)
{
	switch (code) {
	case NOERROR:		return "NOERROR";
	case VD_E_NOTOPEN:	return "VD_E_NOTOPEN";
	case VD_E_TIMEOUT:	return "VD_E_TIMEOUT";
	case VD_E_ABORT:	return "VD_E_ABORT";
	case VD_E_SECURITY:	return "VD_E_SECURITY";
	case VD_E_INVALID:	return "VD_E_INVALID";
	case VD_E_INSTANCE_NAME: return "VD_E_INSTANCE_NAME";
	case VD_E_NOTSUPPORTED:	return "VD_E_NOTSUPPORTED";
	case VD_E_MEMORY:	return "VD_E_MEMORY";
	case VD_E_UNEXPECTED:	return "VD_E_UNEXPECTED";
	case VD_E_PROTOCOL:	return "VD_E_PROTOCOL";
	case VD_E_OPEN:		return "VD_E_OPEN";
	case VD_E_CLOSE:	return "VD_E_CLOSE";
	case VD_E_BUSY:		return "VD_E_BUSY";
	case VD_E_QUEUE_FULL:	return "VD_E_QUEUE_FULL";
	case VD_E_IO_ERROR:	return "VD_E_IO_ERROR";
	default:		return NULL;
	}
}
