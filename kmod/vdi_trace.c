// SPDX-License-Identifier: GPL-2.0
/*
 * vdi: the one file that defines the tracepoints declared in vdi_trace.h
 * (the others only include it to call them).
 */
#define CREATE_TRACE_POINTS
#include "vdi_trace.h"
