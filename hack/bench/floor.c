/*
 * floor: the kernel floor for starting a container, for hack/bench/run.
 *
 *   floor ROOTFS [CGROUP_DIR]
 *
 * One clone3 with the namespaces of the benchmark bundle (mount, uts, ipc,
 * pid, net, cgroup), into CGROUP_DIR with CLONE_INTO_CGROUP when given; the
 * child makes / private, binds ROOTFS onto itself, pivot_roots into it,
 * detaches the old root and execs /bin/true. The parent waits for it. No
 * /proc, /dev or other mounts, no config parsing, no state: the least any
 * runtime has to pay.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what)
{
	perror(what);
	_exit(127);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: floor ROOTFS [CGROUP_DIR]\n");
		return 2;
	}
	const char *rootfs = argv[1];
	struct clone_args args;
	memset(&args, 0, sizeof args);
	args.flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET |
		     CLONE_NEWCGROUP;
	args.exit_signal = SIGCHLD;
	if (argc == 3) {
		int cg = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg < 0)
			fail(argv[2]);
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cg;
	}
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid < 0)
		fail("clone3");
	if (pid == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			fail("make / private");
		if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
			fail("bind rootfs");
		if (chdir(rootfs) < 0)
			fail("chdir rootfs");
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			fail("pivot_root");
		if (umount2(".", MNT_DETACH) < 0)
			fail("detach old root");
		if (chdir("/") < 0)
			fail("chdir /");
		char *child_argv[] = {"/bin/true", NULL};
		char *envp[] = {"PATH=/bin:/sbin", NULL};
		execve("/bin/true", child_argv, envp);
		fail("exec /bin/true");
	}
	int status;
	if (waitpid((pid_t)pid, &status, 0) < 0)
		fail("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
