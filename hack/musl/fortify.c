/*
 * Debian's libseccomp.a is built against glibc with _FORTIFY_SOURCE, so its
 * PFC text export (gen_pfc.c) calls glibc's checked __fprintf_chk. musl has
 * no such function; this is it, without the check (the format strings are
 * libseccomp's own constants). Compiled with musl-gcc into the copy of
 * libseccomp.a that the musl build of skiff links (see the Makefile).
 */
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
	va_list ap;
	int n;

	(void)flag;
	va_start(ap, format);
	n = vfprintf(stream, format, ap);
	va_end(ap);
	return n;
}
