/* Stand-in for the pause image's binary (the pod sandbox's process): its
 * name is "pause" (critest looks for "sleep" processes in the pod's shared
 * pid namespace, where this is pid 1), it reaps the children that pid
 * namespace hands it, and it exits at SIGINT or SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction q = { .sa_handler = quit };
	struct sigaction r = { .sa_handler = reap, .sa_flags = SA_RESTART | SA_NOCLDSTOP };

	sigaction(SIGINT, &q, NULL);
	sigaction(SIGTERM, &q, NULL);
	sigaction(SIGCHLD, &r, NULL);
	for (;;)
		pause();
}
