/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libvdi's tests: which system calls a side makes.
 *
 *  - lt_syscall_counter(): a perf counter on the raw_syscalls:sys_enter
 *    tracepoint (root in the VM; tracefs is mounted by scripts/vm-init.sh):
 *    how many system calls a thread, or a process from the counter's
 *    opening on (inherit), made while it was enabled;
 *  - lt_forbid_ioctl(): a seccomp filter that fails one ioctl request with
 *    ENOSYS in the calling thread and the threads it creates afterwards:
 *    a library path that uses it then fails, which a test sees.
 *
 * Compiles as C and as C++11 (included by lib_test_util.h).
 */
#ifndef LT_SYSCALLS_H
#define LT_SYSCALLS_H

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The id of tracepoint raw_syscalls:sys_enter, or -errno. */
static inline long lt_sys_enter_id(void)
{
	static const char *const paths[] = {
		"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
		"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
	};
	unsigned int i;
	long id = -ENOENT;
	FILE *f;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]) && id < 0; i++) {
		f = fopen(paths[i], "r");
		if (!f)
			continue;
		if (fscanf(f, "%ld", &id) != 1)
			id = -EINVAL;
		fclose(f);
	}
	return id;
}

/*
 * A disabled counter of the system calls thread @tid makes (0: the calling
 * thread), and with @inherit those of the threads and children it creates
 * once the counter exists: an fd, or -errno.
 */
static inline int lt_syscall_counter(pid_t tid, bool inherit)
{
	struct perf_event_attr a;
	long id = lt_sys_enter_id();
	int fd;

	if (id < 0)
		return (int)id;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (uint64_t)id;
	a.disabled = 1;
	a.inherit = inherit;
	fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1,
			  PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Enable or disable a counter (and its inherited copies). */
static inline int lt_counter_enable(int fd, bool on)
{
	return ioctl(fd, on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE,
		     0) ? -errno : 0;
}

/* Its count so far, inherited copies included: >= 0, or -errno. */
static inline int64_t lt_counter_read(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return -EIO;
	return (int64_t)v;
}

/*
 * From now on ioctl(any fd, @req, ...) fails with ENOSYS in the calling
 * thread and in the threads and children it creates.  0 or -errno.
 */
static inline int lt_forbid_ioctl(unsigned long req)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		/* the request's low 32 bits (little-endian) */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)req, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog;

	prog.len = (unsigned short)(sizeof(f) / sizeof(f[0]));
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return -errno;
	return 0;
}

/*
 * Can this kernel install a seccomp filter at all (CONFIG_SECCOMP_FILTER;
 * the debug kernel has none)?  Tried in a child, which then exits.
 */
static inline bool lt_seccomp_filters(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (!pid)
		_exit(lt_forbid_ioctl(0) == 0 ? 0 : 1);
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#endif /* LT_SYSCALLS_H */
