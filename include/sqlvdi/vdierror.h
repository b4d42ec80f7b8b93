/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Source compatibility with SQL Server on Linux's VDI client SDK: the
 * VD_E_* codes of its vdierror.h, as defined by libvdi.
 */
#ifndef LIBVDI_SQLVDI_VDIERROR_H
#define LIBVDI_SQLVDI_VDIERROR_H

#include "../libvdi.h"

#endif /* LIBVDI_SQLVDI_VDIERROR_H */
