/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Compatibility with SQL Server on Linux's VDI client SDK: the error codes
 * of its vdierror.h, defined the same way (an int built by MAKE_HRESULT;
 * every VDI error has 0x8077 as prefix).  libvdi.h defines these macros with
 * the same tokens, so a file may include both.  Self-contained.
 */
#ifndef LIBVDI_SQLVDI_VDIERROR_H
#define LIBVDI_SQLVDI_VDIERROR_H

#define MAKE_HRESULT(sev, fac, code) \
	((int) (((unsigned long)(sev) << 31) | ((unsigned long)(fac) << 16) | ((unsigned long)(code))) )

#define VD_ERROR(code)		MAKE_HRESULT(1, 0x77, code)

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

#endif /* LIBVDI_SQLVDI_VDIERROR_H */
