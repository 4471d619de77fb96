/*
 * trace: run a command with a ptrace breakpoint on the first byte of every
 * function of one non-PIE binary, and append to OUT "ADDR TID TGID" each
 * time a process of the command first runs a function.
 *
 *   trace OUT FUNCS LO HI EXE -- command [args...]
 *
 * FUNCS lists the functions' start addresses (hex, one per line), all inside
 * the text [LO, HI) of EXE. Every process or thread that runs EXE (after an
 * exec, or forked from one that does) gets the breakpoints, written through
 * /proc/PID/mem; a hit restores the byte in that process and goes on, so each
 * function traps at most once per process. A process that execs anything
 * else is let go.
 *
 * The command keeps this process's pid (so containerd can start a shim
 * through it), and the tracing goes on in the background, holding a shared
 * flock on OUT, until the last process that runs EXE has exited (a created
 * container's init, say, after `start`).
 *
 * Used by hack/order/gen to lay out the skiff binaries (see there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t lo, hi;
static uint8_t *text;    /* the original text */
static uint8_t *patched; /* the text with 0xcc on every function start */
static uint8_t *isfunc;  /* 1 at every function start */
static struct stat exe;
static FILE *out;

static int memio(pid_t pid, int write, void *buf, size_t len, uint64_t addr)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	int fd = open(path, write ? O_WRONLY : O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write ? pwrite(fd, buf, len, addr) : pread(fd, buf, len, addr);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int is_exe(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	return stat(path, &st) == 0 && st.st_dev == exe.st_dev && st.st_ino == exe.st_ino;
}

/* A fresh image of EXE in pid: remember the text once, then patch it. */
static void arm(pid_t pid)
{
	size_t len = hi - lo;
	if (!text) {
		text = malloc(len);
		patched = malloc(len);
		if (!text || !patched || memio(pid, 0, text, len, lo)) {
			perror("trace: read text");
			exit(2);
		}
		for (size_t i = 0; i < len; i++)
			patched[i] = isfunc[i] ? 0xcc : text[i];
	}
	if (memio(pid, 1, patched, len, lo)) {
		perror("trace: write breakpoints");
		exit(2);
	}
}

/* The thread group (process) of thread TID. */
static long tgid_of(pid_t tid)
{
	char path[64], line[128];
	long tgid = tid;
	snprintf(path, sizeof path, "/proc/%d/status", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return tgid;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Tgid: %ld", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/* A SIGTRAP: ours if it stopped just after a function start. Each process
 * traps once per function (the hit restores the byte in its memory only), and
 * each trap is recorded with the thread and process that ran it. */
static int hit(pid_t pid)
{
	struct user_regs_struct regs;
	if (ptrace(PTRACE_GETREGS, pid, 0, &regs))
		return 0;
	uint64_t at = regs.rip - 1;
	if (at < lo || at >= hi || !isfunc[at - lo])
		return 0;
	fprintf(out, "%lx %d %ld\n", (unsigned long)at, pid, tgid_of(pid));
	memio(pid, 1, &text[at - lo], 1, at);
	regs.rip = at;
	ptrace(PTRACE_SETREGS, pid, 0, &regs);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 9 || strcmp(argv[6], "--") != 0) {
		fprintf(stderr, "usage: trace OUT FUNCS LO HI EXE -- command [args...]\n");
		return 2;
	}
	lo = strtoull(argv[3], NULL, 0);
	hi = strtoull(argv[4], NULL, 0);
	FILE *funcs = fopen(argv[2], "re");
	out = fopen(argv[1], "ae");
	if (hi <= lo || stat(argv[5], &exe) || !funcs || !out || !(isfunc = calloc(hi - lo, 1))) {
		perror("trace");
		return 2;
	}
	unsigned long addr;
	while (fscanf(funcs, "%lx", &addr) == 1)
		if (addr >= lo && addr < hi)
			isfunc[addr - lo] = 1;
	fclose(funcs);
	setvbuf(out, NULL, _IOLBF, 0);

	/* This process becomes the command; a grandchild, orphaned at once so the
	 * command never sees it as a child, traces it. */
	int ready[2];
	pid_t cmd = getpid();
	if (pipe2(ready, O_CLOEXEC)) {
		perror("trace: pipe");
		return 2;
	}
	pid_t mid = fork();
	if (mid < 0) {
		perror("trace: fork");
		return 2;
	}
	if (mid > 0) {
		char c;
		close(ready[1]);
		waitpid(mid, NULL, 0);
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "trace: could not attach\n");
			return 2;
		}
		execvp(argv[7], argv + 7);
		perror("trace: exec");
		return 127;
	}
	if (fork() != 0)
		_exit(0);
	close(ready[0]);
	/* A shared lock on OUT while tracing: hack/order/gen waits on it. */
	if (flock(fileno(out), LOCK_SH) ||
	    ptrace(PTRACE_SEIZE, cmd, 0,
		   PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
			   PTRACE_O_TRACEEXEC)) {
		perror("trace: seize");
		_exit(2);
	}
	if (write(ready[1], "x", 1) != 1)
		_exit(2);
	close(ready[1]);
	setsid();
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);

	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, __WALL)) > 0) {
		if (WIFEXITED(status) || WIFSIGNALED(status))
			continue;
		int sig = WSTOPSIG(status), event = status >> 16, deliver = 0;
		if (sig == SIGTRAP && event == PTRACE_EVENT_EXEC) {
			if (!is_exe(pid)) {
				ptrace(PTRACE_DETACH, pid, 0, 0);
				continue;
			}
			arm(pid);
		} else if (event == PTRACE_EVENT_STOP) {
			/* A new child's first stop (it holds the breakpoints its parent
			 * held), or a group stop: go on either way. */
		} else if (sig == SIGTRAP && event == 0) {
			if (!hit(pid))
				deliver = sig;
		} else if (event == 0) {
			deliver = sig;
		}
		ptrace(PTRACE_CONT, pid, 0, deliver);
	}
	return 0;
}
