/*
 * timer: the interleaved timing loop of hack/bench/run.
 *
 *   timer ROUNDS BUNDLE EXEC_BUNDLE_DIR FLOOR_CMD -- NAME=CMD... 
 *
 * Each NAME=CMD is one runtime: CMD is its command line prefix, words
 * separated by single spaces (e.g. "crun=crun --cgroup-manager=disabled
 * --root /run/bench/crun"). FLOOR_CMD is the kernel-floor command line
 * ("-" for none). EXEC_BUNDLE_DIR/NAME is a bundle whose process sleeps,
 * one per runtime, for the exec measurement.
 *
 * Every round runs, for each runtime in turn (in a new random order each
 * round, so that no runtime always follows the same one and inherits its
 * after-effects, e.g. runc's cgroup v1 teardown):
 *   run     CMD run --bundle BUNDLE ID                 (foreground /bin/true)
 *   create  CMD create --bundle BUNDLE ID
 *   start   CMD start ID        (then the container's /bin/true is reaped:
 *                                we are a child subreaper)
 *   delete  CMD delete ID
 *   exec    CMD exec ID-exec /bin/true               (into a sleeping one)
 * and the floor command once (in the same shuffled order). Each command is spawned with posix_spawn
 * (vfork), stdin /dev/null, stdout/stderr into a scratch file that is shown
 * when the command fails, and timed with CLOCK_MONOTONIC around spawn and
 * wait4. Output, one line per sample on stdout:
 *   OP RUNTIME ROUND NANOSECONDS MAXRSS_KIB
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_RT 8
#define MAX_ARGS 64

struct runtime {
	const char *name;
	char *argv[MAX_ARGS];
	int argc;
};

static int scratch = -1;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void split(char *line, char **argv, int *argc)
{
	*argc = 0;
	for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " ")) {
		if (*argc >= MAX_ARGS - 8) {
			fprintf(stderr, "timer: command line too long\n");
			exit(2);
		}
		argv[(*argc)++] = tok;
	}
	argv[*argc] = NULL;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void show_scratch(void)
{
	char buf[4096];
	ssize_t n;
	lseek(scratch, 0, SEEK_SET);
	while ((n = read(scratch, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
}

/* Spawn argv, wait for it; returns elapsed ns, sets *rss_kib. Exits on failure. */
static long long timed(char **argv, long *rss_kib)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;
	struct rusage ru;

	if (ftruncate(scratch, 0) < 0)
		die("ftruncate");
	lseek(scratch, 0, SEEK_SET);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, scratch, 1);
	posix_spawn_file_actions_adddup2(&fa, scratch, 2);
	long long t0 = now_ns();
	int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	if (err) {
		errno = err;
		fprintf(stderr, "timer: spawn %s: %s\n", argv[0], strerror(err));
		exit(2);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			die("wait4");
	long long dt = now_ns() - t0;
	posix_spawn_file_actions_destroy(&fa);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "timer: command failed (status %#x):", status);
		for (char **a = argv; *a; a++)
			fprintf(stderr, " %s", *a);
		fprintf(stderr, "\n");
		show_scratch();
		exit(1);
	}
	*rss_kib = ru.ru_maxrss;
	return dt;
}

/* Reap one orphaned container process (we are its subreaper). */
static void reap_one(void)
{
	int status;
	alarm(60);
	while (waitpid(-1, &status, 0) < 0) {
		if (errno == EINTR)
			continue;
		die("waitpid (container exit)");
	}
	alarm(0);
}

static void sample(const char *op, const struct runtime *rt, int round, char **argv)
{
	long rss = 0;
	long long ns = timed(argv, &rss);
	printf("%s %s %d %lld %ld\n", op, rt->name, round, ns, rss);
}

/* argv = runtime prefix + the given words. */
static char **cmd(const struct runtime *rt, char **buf, const char *a, const char *b,
		  const char *c, const char *d)
{
	int n = 0;
	for (int i = 0; i < rt->argc; i++)
		buf[n++] = rt->argv[i];
	const char *extra[] = {a, b, c, d};
	for (int i = 0; i < 4 && extra[i]; i++)
		buf[n++] = (char *)extra[i];
	buf[n] = NULL;
	return buf;
}

static void quiet(char **argv)
{
	long rss;
	timed(argv, &rss);
}

int main(int argc, char **argv)
{
	struct runtime rts[MAX_RT];
	struct runtime floor_cmd = {.name = "floor"};
	int nrt = 0;
	char *buf[MAX_ARGS];
	char id[128], exec_id[128], exec_bundle[4096];

	if (argc < 6 || strcmp(argv[5], "--") != 0) {
		fprintf(stderr, "usage: timer ROUNDS BUNDLE EXEC_BUNDLE_DIR FLOOR_CMD -- NAME=CMD...\n");
		return 2;
	}
	int rounds = atoi(argv[1]);
	const char *bundle = argv[2];
	const char *exec_dir = argv[3];
	int have_floor = strcmp(argv[4], "-") != 0;
	if (have_floor)
		split(argv[4], floor_cmd.argv, &floor_cmd.argc);
	for (int i = 6; i < argc && nrt < MAX_RT; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) {
			fprintf(stderr, "timer: want NAME=CMD, got %s\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		rts[nrt].name = argv[i];
		split(eq + 1, rts[nrt].argv, &rts[nrt].argc);
		nrt++;
	}
	char tmpl[] = "/tmp/bench-timer.XXXXXX";
	scratch = mkstemp(tmpl);
	if (scratch < 0)
		die("mkstemp");
	unlink(tmpl);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("PR_SET_CHILD_SUBREAPER");
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* One sleeping container per runtime for exec. */
	for (int i = 0; i < nrt; i++) {
		snprintf(exec_id, sizeof exec_id, "bench-%s-exec-%d", rts[i].name, getpid());
		snprintf(exec_bundle, sizeof exec_bundle, "%s/%s", exec_dir, rts[i].name);
		quiet(cmd(&rts[i], buf, "create", "--bundle", exec_bundle, exec_id));
		quiet(cmd(&rts[i], buf, "start", exec_id, NULL, NULL));
	}

	/* order[] holds runtime indexes; nrt stands for the floor. */
	int order[MAX_RT + 1], n = nrt + (have_floor ? 1 : 0);
	for (int i = 0; i < n; i++)
		order[i] = i;
	srandom(1); /* the same sequence of orders in every run */
	for (int r = 0; r < rounds; r++) {
		for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
			int j = (int)(random() % (i + 1)), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int k = 0; k < n; k++) {
			if (order[k] == nrt) {
				sample("run", &floor_cmd, r, floor_cmd.argv);
				continue;
			}
			const struct runtime *rt = &rts[order[k]];
			snprintf(id, sizeof id, "bench-%s-%d-%d", rt->name, getpid(), r);
			snprintf(exec_id, sizeof exec_id, "bench-%s-exec-%d", rt->name, getpid());
			sample("run", rt, r, cmd(rt, buf, "run", "--bundle", bundle, id));
			sample("create", rt, r, cmd(rt, buf, "create", "--bundle", bundle, id));
			sample("start", rt, r, cmd(rt, buf, "start", id, NULL, NULL));
			reap_one();
			sample("delete", rt, r, cmd(rt, buf, "delete", id, NULL, NULL));
			sample("exec", rt, r, cmd(rt, buf, "exec", exec_id, "/bin/true", NULL));
		}
	}

	for (int i = 0; i < nrt; i++) {
		snprintf(exec_id, sizeof exec_id, "bench-%s-exec-%d", rts[i].name, getpid());
		quiet(cmd(&rts[i], buf, "kill", exec_id, "KILL", NULL));
		reap_one();
		quiet(cmd(&rts[i], buf, "delete", exec_id, NULL, NULL));
	}
	return 0;
}
