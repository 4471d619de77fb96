/* For the seccomp parity tests: call each syscall number given on the
 * command line with zero arguments and print "NR RET ERRNO". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		long nr = strtol(argv[i], NULL, 10);
		errno = 0;
		long r = syscall(nr, 0, 0, 0, 0, 0, 0);
		printf("%ld %ld %d\n", nr, r, r < 0 ? errno : 0);
	}
	return 0;
}
