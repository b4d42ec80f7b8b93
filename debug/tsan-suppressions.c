// SPDX-License-Identifier: GPL-2.0
/*
 * ThreadSanitizer's suppressions, built into libvdi's TSan test programs
 * (mk/debug.mk, tsan-tests).  One class only, which TSan cannot see right:
 *
 * A server's VDS_Command goes from the thread that calls SendCommand to the
 * completion agent's thread through the module: the command's address is
 * its cookie, handed back by VDI_IOC_WAIT_COMPLETIONS after the client
 * completed it.  That order (the sender's writes before SEND, the agent's
 * reads after WAIT_COMPLETIONS returned the cookie) is made by the kernel,
 * invisible to TSan, so every first read of a command on the agent's
 * thread (vdi_server_deliver() and the routine it calls) looks racy.
 * Nothing else is suppressed: a race in libvdi's own bookkeeping, on
 * either role, still fails the test.  (userlib/server.c could annotate the
 * hand-off, __tsan_release() before SEND and __tsan_acquire() on the
 * cookie; then this file can go.)
 */
const char *__tsan_default_suppressions(void);

const char *__tsan_default_suppressions(void)
{
	return "race:vdi_server_deliver\n";
}
