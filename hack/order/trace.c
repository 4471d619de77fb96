/*
 * trace: run a command under ptrace with a breakpoint on the first byte of
 * every function of one non-PIE binary, and append to OUT the address of
 * each function the first time any process of the command runs it.
 *
 *   trace OUT FUNCS LO HI EXE -- command [args...]
 *
 * FUNCS lists the functions' start addresses (hex, one per line), all inside
 * the text [LO, HI) of EXE. Every process or thread that runs EXE (at the
 * start, after a fork, after an exec) gets the breakpoints, written through
 * /proc/PID/mem; a hit restores the byte in that process and goes on, so each
 * function traps at most once per process. A process that execs anything
 * else is let go. When the command itself exits, the processes it left (a
 * created container's init, waiting for `start`) get their text back and are
 * let go.
 *
 * Used by hack/order/gen to lay out the skiff binary (see there).
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
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXPROCS 4096

static uint64_t lo, hi;
static uint8_t *text;    /* the original text */
static uint8_t *patched; /* the text with 0xcc on every function start */
static uint8_t *isfunc;  /* 1 at every function start, 2 once recorded */
static struct stat exe;
static FILE *out;
static pid_t live[MAXPROCS]; /* processes that hold breakpoints */

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

static void track(pid_t pid, int on)
{
	for (int i = 0; i < MAXPROCS; i++)
		if (on ? live[i] == 0 : live[i] == pid) {
			live[i] = on ? pid : 0;
			return;
		}
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
	track(pid, 1);
}

/* A SIGTRAP: ours if it stopped just after a function start. */
static int hit(pid_t pid)
{
	struct user_regs_struct regs;
	if (ptrace(PTRACE_GETREGS, pid, 0, &regs))
		return 0;
	uint64_t at = regs.rip - 1;
	if (at < lo || at >= hi || !isfunc[at - lo])
		return 0;
	if (isfunc[at - lo] == 1) {
		isfunc[at - lo] = 2;
		fprintf(out, "%lx\n", (unsigned long)at);
	}
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
	pid_t child = fork();
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		execvp(argv[7], argv + 7);
		_exit(127);
	}
	int status, code = 0, first = 1;
	pid_t pid;
	while ((pid = waitpid(-1, &status, __WALL)) > 0) {
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			track(pid, 0);
			if (pid != child)
				continue;
			code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
		int sig = WSTOPSIG(status), event = status >> 16, deliver = 0;
		if ((first && pid == child) || (sig == SIGTRAP && event == PTRACE_EVENT_EXEC)) {
			if (first) {
				first = 0;
				ptrace(PTRACE_SETOPTIONS, pid, 0,
				       PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
					       PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC);
			}
			track(pid, 0);
			if (!is_exe(pid)) {
				ptrace(PTRACE_DETACH, pid, 0, 0);
				continue;
			}
			arm(pid);
		} else if (sig == SIGTRAP && event == 0) {
			if (!hit(pid))
				deliver = sig;
		} else if (sig == SIGSTOP && event == 0) {
			/* A new child's first stop: it holds the breakpoints its parent held. */
			if (is_exe(pid))
				track(pid, 1);
		} else if (event == 0) {
			deliver = sig;
		}
		ptrace(PTRACE_CONT, pid, 0, deliver);
	}
	/* Exiting detaches every remaining tracee: give them their text back first. */
	for (int i = 0; i < MAXPROCS; i++)
		if (live[i] && text)
			memio(live[i], 1, text, hi - lo, lo);
	fclose(out);
	return code;
}
