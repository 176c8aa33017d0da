/*
 * The seccomp filter bwrap installs right before it execs the sandboxed
 * program (--seccomp FD). Built once with libseccomp and kept as raw BPF;
 * exec writes it to a pipe.
 *
 * Default allow, with EPERM for what code run for a chat user never needs
 * and what widens the kernel attack surface: tracing other processes,
 * mounts, new namespaces, kernel keyrings, BPF, perf, io_uring, module
 * loading, clock and host settings. Syscalls of a foreign ABI (i386, x32)
 * kill the process (libseccomp's bad-arch action).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bwrap.h"
#include "ci/backend_util.h"

static const char *const denied[] = {
	/* other processes' memory and state */
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"kcmp",
	"pidfd_getfd",
	/* filesystems and namespaces */
	"mount",
	"umount",
	"umount2",
	"pivot_root",
	"chroot",
	"move_mount",
	"open_tree",
	"fsopen",
	"fsconfig",
	"fsmount",
	"fspick",
	"mount_setattr",
	"unshare",
	"setns",
	"open_by_handle_at",
	"name_to_handle_at",
	"quotactl",
	"quotactl_fd",
	"swapon",
	"swapoff",
	/* kernel extension and introspection */
	"bpf",
	"perf_event_open",
	"userfaultfd",
	"kexec_load",
	"kexec_file_load",
	"init_module",
	"finit_module",
	"delete_module",
	"create_module",
	"query_module",
	"get_kernel_syms",
	"lookup_dcookie",
	"syslog",
	"uselib",
	"nfsservctl",
	"fanotify_init",
	"io_uring_setup",
	"io_uring_enter",
	"io_uring_register",
	/* keyrings */
	"keyctl",
	"add_key",
	"request_key",
	/* host-wide settings */
	"reboot",
	"acct",
	"settimeofday",
	"stime",
	"clock_settime",
	"clock_adjtime",
	"adjtimex",
	"sethostname",
	"setdomainname",
	"iopl",
	"ioperm",
	"vhangup",
};

static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
					 CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

static int add_rules(scmp_filter_ctx ctx)
{
	size_t i;
	int nr, rc;

	for (i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a syscall on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (rc < 0)
			return rc;
	}
	/* clone() may make threads and processes, never namespaces. */
	for (i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
		if (rc < 0)
			return rc;
	}
	/*
	 * clone3 passes its flags in memory a filter cannot read: ENOSYS
	 * makes libc fall back to clone(), which is checked above.
	 */
	nr = seccomp_syscall_resolve_name("clone3");
	if (nr != __NR_SCMP_ERROR) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
		if (rc < 0)
			return rc;
	}
	/* Pushing input into the controlling terminal. */
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
}

int bwrap_seccomp_build(ci_be *be, ci_call *call)
{
	scmp_filter_ctx ctx;
	struct stat st;
	ssize_t r;
	size_t got = 0;
	int fd = -1, rc;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return ci_fail(call, CI_E_INTERNAL, "seccomp_init failed");
	rc = add_rules(ctx);
	if (rc < 0) {
		rc = ci_fail(call, CI_E_INTERNAL, "seccomp rule: %s", strerror(-rc));
		goto out;
	}
	fd = memfd_create("ci-bwrap-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = ci_fail(call, CI_E_INTERNAL, "memfd_create: %s", strerror(errno));
		goto out;
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > 65536) {
		rc = ci_fail(call, CI_E_INTERNAL, "seccomp_export_bpf failed");
		goto out;
	}
	be->bpf = bwrap_alloc(be, (size_t)st.st_size);
	if (!be->bpf) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		r = pread(fd, be->bpf + got, (size_t)st.st_size - got, (off_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != (size_t)st.st_size) {
		rc = ci_fail(call, CI_E_INTERNAL, "reading seccomp program failed");
		goto out;
	}
	be->bpf_len = got;
	rc = CI_OK;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return rc;
}
