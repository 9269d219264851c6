/*
 * failalloc.c - the allocation wrappers of tests/failalloc.h (see there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failalloc.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_asprintf(char **out, const char *fmt, ...);

/* Publishes run lanes on threads: the counter is shared, atomically. */
static unsigned long left; /* allocations until the failure; 0: disarmed */
static int fired;

void
t_fail_alloc(unsigned long n)
{
	if (n != 0)
		__atomic_store_n(&fired, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&left, n, __ATOMIC_SEQ_CST);
}

int
t_fail_alloc_fired(void)
{
	return __atomic_load_n(&fired, __ATOMIC_SEQ_CST);
}

/* 1 (errno ENOMEM) when this allocation is the one to fail. */
static int
fails(void)
{
	unsigned long n = __atomic_load_n(&left, __ATOMIC_SEQ_CST);

	while (n != 0) {
		if (__atomic_compare_exchange_n(&left, &n, n - 1, 0, __ATOMIC_SEQ_CST,
		                                __ATOMIC_SEQ_CST)) {
			if (n != 1)
				return 0;
			__atomic_store_n(&fired, 1, __ATOMIC_SEQ_CST);
			errno = ENOMEM;
			return 1;
		}
	}
	return 0;
}

int
t_fail_alloc_count(void)
{
	return fails();
}

void *
__wrap_malloc(size_t n)
{
	return fails() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t a, size_t b)
{
	return fails() ? NULL : __real_calloc(a, b);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return fails() ? NULL : __real_realloc(p, n);
}

char *
__wrap_strdup(const char *s)
{
	return fails() ? NULL : __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
	return fails() ? NULL : __real_strndup(s, n);
}

int
__wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (fails())
		return -1;
	return __real_vasprintf(out, fmt, ap);
}

int
__wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = __wrap_vasprintf(out, fmt, ap);
	va_end(ap);
	return r;
}
