/* failshim - an LD_PRELOAD library for tests: makes the Nth call of a chosen libc function fail.
 *
 *   JP_FAIL=FUNC:N[:ERRNO][,FUNC:N[:ERRNO]]...   the Nth call (1-based, counted from the
 *       start of the process) of FUNC returns its failure value with errno ERRNO (a name such
 *       as EIO, ENOSPC, ENOMEM, EACCES, EINTR, or a number; default EIO, ENOMEM for the
 *       allocators).  Only that one call fails: the later ones work again.
 *   JP_FAIL_SCOPE=exe   only the calls made by the program itself count (and fail), not those
 *       of its libraries: HDF5 1.10 does not survive some failed allocations of its own (an
 *       endless recursion in its error stack when one fails during its initialisation).
 *   JP_FAIL_COUNT=FILE   at exit, appends one line "FUNC CALLS" per function called to FILE,
 *       and "fired FUNC N" for each failure injected: the count mode of a sweep, and the proof
 *       that an injected failure happened.
 *
 * FUNC is one of: malloc calloc realloc strdup strndup open openat read write pwrite fsync
 * fdatasync close rename renameat renameat2 linkat mkdir mkdirat readdir.  The 64-bit names
 * (open64, pwrite64, readdir64, ...) count as their plain name.  Calls made inside libc (fopen's
 * open, printf's write) are not seen: only calls through the dynamic linker are, which is what
 * the program and its libraries (SQLite, HDF5, libcurl, ...) make.
 *
 * Used by tests/cmd-failpoints.sh (see there).  Built with `make tests/failshim.so`.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

enum {
	F_MALLOC, F_CALLOC, F_REALLOC, F_STRDUP, F_STRNDUP, F_OPEN, F_OPENAT, F_READ, F_WRITE,
	F_PWRITE, F_FSYNC, F_FDATASYNC, F_CLOSE, F_RENAME, F_RENAMEAT, F_RENAMEAT2, F_LINKAT,
	F_MKDIR, F_MKDIRAT, F_READDIR, F_N
};
static const char *const names[F_N] = {
	"malloc", "calloc", "realloc", "strdup", "strndup", "open", "openat", "read", "write",
	"pwrite", "fsync", "fdatasync", "close", "rename", "renameat", "renameat2", "linkat",
	"mkdir", "mkdirat", "readdir"
};

static unsigned long calls[F_N];
static unsigned long fail_at[F_N]; /* 0: never */
static int fail_errno[F_N];
static unsigned long fired[F_N];
static int state; /* 0: environment not read yet, 1: reading it, 2: ready, 3: exiting */
static uintptr_t exe_lo, exe_hi; /* the program's loaded segments */
static int exe_only;              /* JP_FAIL_SCOPE=exe: fail only the program's own calls */
static int exit_hooked;           /* exiting() registered from the program's first call */

static int exe_range(struct dl_phdr_info *info, size_t size, void *data)
{
	int i;

	(void)size;
	(void)data;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_LOAD)
			continue;
		if (exe_lo == 0 || a < exe_lo)
			exe_lo = a;
		if (a + ph->p_memsz > exe_hi)
			exe_hi = a + ph->p_memsz;
	}
	return 1; /* the first object is the program */
}

static int errno_of(const char *s, size_t n)
{
	static const struct { const char *name; int e; } tab[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "ENOMEM", ENOMEM }, { "EACCES", EACCES },
		{ "EINTR", EINTR }, { "EDQUOT", EDQUOT }, { "EPERM", EPERM }, { "EROFS", EROFS },
		{ "EMFILE", EMFILE }, { "ENOENT", ENOENT }, { "EEXIST", EEXIST }, { "EXDEV", EXDEV },
		{ "EBADF", EBADF }, { "EAGAIN", EAGAIN }, { "EINVAL", EINVAL },
	};
	size_t i;
	int v = 0;

	for (i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strlen(tab[i].name) == n && memcmp(tab[i].name, s, n) == 0)
			return tab[i].e;
	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (s[i] - '0');
	return v > 0 ? v : EIO;
}

/* Parsed by hand: nothing here may allocate (we are inside malloc). */
static void setup(void)
{
	const char *p = getenv("JP_FAIL"), *scope = getenv("JP_FAIL_SCOPE");

	exe_only = scope && strcmp(scope, "exe") == 0;
	dl_iterate_phdr(exe_range, NULL);

	while (p && *p) {
		const char *e = strchr(p, ','), *c1, *c2;
		size_t len = e ? (size_t)(e - p) : strlen(p);
		int f;

		c1 = memchr(p, ':', len);
		if (c1) {
			for (f = 0; f < F_N; f++)
				if (strlen(names[f]) == (size_t)(c1 - p) && memcmp(names[f], p, c1 - p) == 0)
					break;
			if (f < F_N) {
				unsigned long n = 0;
				const char *q = c1 + 1;

				while (q < p + len && *q >= '0' && *q <= '9')
					n = n * 10 + (unsigned long)(*q++ - '0');
				fail_at[f] = n;
				c2 = q < p + len && *q == ':' ? q + 1 : NULL;
				fail_errno[f] = c2 ? errno_of(c2, (size_t)(p + len - c2)) :
					f <= F_STRNDUP ? ENOMEM : EIO;
			}
		}
		p = e ? e + 1 : NULL;
	}
}

/* Nothing fails once the program exits: a coverage build's libgcov, linked into the program,
 * allocates while it writes its counters (a destructor run by _dl_fini) and does not check.
 * Exit handlers run in the reverse order of their registration, and _dl_fini is registered by
 * __libc_start_main before the program's constructors: registered at the first call made from
 * the program itself, exiting() runs before _dl_fini.  (Registered at the very first call seen,
 * possibly a library constructor's before __libc_start_main, it would run after it.) */
static void exiting(void)
{
	state = 3;
}

/* 1 when this call of F, made from CALLER, must fail (errno is then set). */
#define hit(f) hit_from((f), __builtin_return_address(0))
static int hit_from(int f, void *caller)
{
	unsigned long n;

	if (state == 3) /* exiting: checked first, or the branch below would arm the shim again */
		return 0;
	if (state != 2) {
		if (state == 1)
			return 0;
		state = 1;
		setup();
		state = 2;
	}
	if ((uintptr_t)caller < exe_lo || (uintptr_t)caller >= exe_hi) {
		if (exe_only)
			return 0;
	} else if (!exit_hooked) {
		exit_hooked = 1;
		atexit(exiting);
	}
	n = __atomic_add_fetch(&calls[f], 1, __ATOMIC_RELAXED);
	if (fail_at[f] != 0 && n == fail_at[f]) {
		fired[f] = n;
		errno = fail_errno[f];
		return 1;
	}
	return 0;
}

/* dlsym may itself call calloc/malloc: those early calls get memory from a static arena that
 * free() recognises and ignores. */
static char arena[65536];
static size_t arena_used;
static int resolving;

static void *arena_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (arena_used + n > sizeof arena)
		return NULL;
	p = arena + arena_used;
	arena_used += n;
	return p;
}

static int in_arena(const void *p)
{
	return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

static void *next(const char *name)
{
	void *p;

	resolving++;
	p = dlsym(RTLD_NEXT, name);
	resolving--;
	if (!p) {
		static const char msg[] = "failshim: a libc function is missing\n";
		syscall(SYS_write, 2, msg, sizeof msg - 1);
		abort();
	}
	return p;
}

#define REAL(type, name) \
	static __typeof__(&name) real_##name; \
	if (!real_##name) \
		real_##name = (__typeof__(&name))next(#name)

void *malloc(size_t n)
{
	if (resolving)
		return arena_alloc(n);
	REAL(void *(*)(size_t), malloc);
	if (hit(F_MALLOC))
		return NULL;
	return real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	if (resolving) {
		void *p = arena_alloc(a * b);

		if (p)
			memset(p, 0, a * b);
		return p;
	}
	REAL(void *(*)(size_t, size_t), calloc);
	if (hit(F_CALLOC))
		return NULL;
	return real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	REAL(void *(*)(void *, size_t), realloc);
	if (in_arena(p)) {
		void *q = malloc(n);

		size_t left = (size_t)(arena + sizeof arena - (char *)p);

		if (q)
			memcpy(q, p, n < left ? n : left);
		return q;
	}
	if (hit(F_REALLOC))
		return NULL;
	return real_realloc(p, n);
}

void free(void *p)
{
	if (in_arena(p))
		return;
	REAL(void (*)(void *), free);
	real_free(p);
}

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (hit(F_STRDUP))
		return NULL;
	p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

char *strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *p;

	if (hit(F_STRNDUP))
		return NULL;
	p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

#define OPEN_WRAPPER(name) \
	int name(const char *path, int flags, ...) \
	{ \
		va_list ap; \
		mode_t m; \
		REAL(int (*)(const char *, int, ...), name); \
		va_start(ap, flags); \
		m = mode_arg(flags, ap); \
		va_end(ap); \
		if (hit(F_OPEN)) \
			return -1; \
		return real_##name(path, flags, m); \
	}
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name) \
	int name(int dfd, const char *path, int flags, ...) \
	{ \
		va_list ap; \
		mode_t m; \
		REAL(int (*)(int, const char *, int, ...), name); \
		va_start(ap, flags); \
		m = mode_arg(flags, ap); \
		va_end(ap); \
		if (hit(F_OPENAT)) \
			return -1; \
		return real_##name(dfd, path, flags, m); \
	}
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

ssize_t read(int fd, void *buf, size_t n)
{
	REAL(ssize_t (*)(int, void *, size_t), read);
	if (hit(F_READ))
		return -1;
	return real_read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t (*)(int, const void *, size_t), write);
	if (hit(F_WRITE))
		return -1;
	return real_write(fd, buf, n);
}

#define PWRITE_WRAPPER(name) \
	ssize_t name(int fd, const void *buf, size_t n, off_t off) \
	{ \
		REAL(ssize_t (*)(int, const void *, size_t, off_t), name); \
		if (hit(F_PWRITE)) \
			return -1; \
		return real_##name(fd, buf, n, off); \
	}
PWRITE_WRAPPER(pwrite)
PWRITE_WRAPPER(pwrite64)

int fsync(int fd)
{
	REAL(int (*)(int), fsync);
	if (hit(F_FSYNC))
		return -1;
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(int (*)(int), fdatasync);
	if (hit(F_FDATASYNC))
		return -1;
	return real_fdatasync(fd);
}

/* A failing close still closes the descriptor, as Linux's close does. */
int close(int fd)
{
	int rc;

	REAL(int (*)(int), close);
	rc = real_close(fd);
	if (rc == 0 && hit(F_CLOSE))
		return -1;
	return rc;
}

int rename(const char *a, const char *b)
{
	REAL(int (*)(const char *, const char *), rename);
	if (hit(F_RENAME))
		return -1;
	return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
	REAL(int (*)(int, const char *, int, const char *), renameat);
	if (hit(F_RENAMEAT))
		return -1;
	return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned int flags)
{
	REAL(int (*)(int, const char *, int, const char *, unsigned int), renameat2);
	if (hit(F_RENAMEAT2))
		return -1;
	return real_renameat2(da, a, db, b, flags);
}

int linkat(int da, const char *a, int db, const char *b, int flags)
{
	REAL(int (*)(int, const char *, int, const char *, int), linkat);
	if (hit(F_LINKAT))
		return -1;
	return real_linkat(da, a, db, b, flags);
}

int mkdir(const char *p, mode_t m)
{
	REAL(int (*)(const char *, mode_t), mkdir);
	if (hit(F_MKDIR))
		return -1;
	return real_mkdir(p, m);
}

int mkdirat(int d, const char *p, mode_t m)
{
	REAL(int (*)(int, const char *, mode_t), mkdirat);
	if (hit(F_MKDIRAT))
		return -1;
	return real_mkdirat(d, p, m);
}

#define READDIR_WRAPPER(name, type) \
	type *name(DIR *d) \
	{ \
		REAL(type *(*)(DIR *), name); \
		if (hit(F_READDIR)) \
			return NULL; \
		return real_##name(d); \
	}
READDIR_WRAPPER(readdir, struct dirent)
READDIR_WRAPPER(readdir64, struct dirent64)

/* Written with the raw system call: the wrappers above must not count this. */
__attribute__((destructor)) static void report(void)
{
	const char *path = getenv("JP_FAIL_COUNT");
	char line[96];
	int fd, f, n;

	if (!path || !*path)
		return;
	fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0600);
	if (fd < 0)
		return;
	for (f = 0; f < F_N; f++) {
		if (calls[f] != 0) {
			n = snprintf(line, sizeof line, "%s %lu\n", names[f], calls[f]);
			syscall(SYS_write, fd, line, (size_t)n);
		}
		if (fired[f] != 0) {
			n = snprintf(line, sizeof line, "fired %s %lu\n", names[f], fired[f]);
			syscall(SYS_write, fd, line, (size_t)n);
		}
	}
	syscall(SYS_close, fd);
}
