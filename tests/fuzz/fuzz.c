/*
 * fuzz.c - the helpers of fuzz.h, linked into every fuzz target and replay driver.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

char *
fz_strndup(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

char *
fz_cut(const uint8_t **data, size_t *size, const char *sep, size_t *len)
{
	size_t n = strlen(sep), i;
	char *s;

	for (i = 0; i + n <= *size; i++)
		if (memcmp(*data + i, sep, n) == 0) {
			s = fz_strndup(*data, i);
			*len = i;
			*data += i + n;
			*size -= i + n;
			return s;
		}
	s = fz_strndup(*data, *size);
	*len = *size;
	*data += *size;
	*size = 0;
	return s;
}

static char *dir;

static int
rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void
rm_dir(void)
{
	if (dir != NULL)
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

const char *
fz_dir(void)
{
	const char *base = getenv("TMPDIR");

	if (dir != NULL)
		return dir;
	if (asprintf(&dir, "%s/jobpub-fuzz.XXXXXX", base && *base ? base : "/tmp") < 0 ||
	    mkdtemp(dir) == NULL) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(rm_dir);
	return dir;
}

const char *
fz_write(const char *name, const void *p, size_t len)
{
	static char path[4096];
	const char *c = p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fz_dir(), name);
	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		perror(path);
		abort();
	}
	while (len > 0) {
		ssize_t w = write(fd, c, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror(path);
			abort();
		}
		c += w;
		len -= (size_t)w;
	}
	close(fd);
	return path;
}
