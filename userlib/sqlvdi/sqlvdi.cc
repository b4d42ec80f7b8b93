// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libsqlvdi.so: SQL Server on Linux's VDI client SDK library, in binary
 * form, over libvdi.so.1.  include/sqlvdi/vdi.h defines the SDK's methods
 * inline; with LIBVDI_SDK_METHOD empty they are ordinary out-of-line
 * definitions here, exported under the SDK's mangled names (sqlvdi.map
 * keeps everything else local).  All the logic is libvdi's (userlib/sdk.c).
 */
#define LIBVDI_SDK_METHOD

#include "sqlvdi/vdi.h"
