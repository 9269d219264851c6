/*
 * replay.c - the main of a fuzz target built without libFuzzer: runs LLVMFuzzerTestOneInput
 * on every file of the target's seed corpus (tests/fuzz/corpus/TARGET/) and regression inputs
 * (tests/fuzz/regressions/TARGET/), or on the files and directories given as arguments.
 *
 * `make check` runs it, so an input that crashed, leaked or hung a target once is replayed on
 * every build: each input has JP_FUZZ_REPLAY_TIMEOUT seconds (SIGALRM ends the program, and the
 * test fails, when an input hangs).  Exit 0 when every input ran, 99 when a directory is missing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define JP_FUZZ_REPLAY_TIMEOUT 10

static const char *current;

static void
on_alarm(int sig)
{
	static const char msg[] = "replay: timeout on an input (it hangs)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0 || current == NULL)
		_exit(1);
	if (write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;

	if (fp == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t got;
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		got = fread(buf + len, 1, cap - len, fp);
		if (got == 0)
			break;
		len += got;
	}
	fclose(fp);
	current = path;
	alarm(JP_FUZZ_REPLAY_TIMEOUT);
	LLVMFuzzerTestOneInput(buf, len);
	alarm(0);
	free(buf);
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir (sorted, dot files skipped); *n counts them. */
static int
run_dir(const char *dir, size_t *n, int must_exist)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t cnt = 0, i;
	int r = 0;

	if (d == NULL) {
		if (!must_exist && errno == ENOENT)
			return 0;
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((names = realloc(names, (cnt + 1) * sizeof(*names))) == NULL ||
		    asprintf(&names[cnt], "%s/%s", dir, de->d_name) < 0)
			abort();
		cnt++;
	}
	closedir(d);
	qsort(names, cnt, sizeof(*names), cmp_names);
	for (i = 0; i < cnt; i++) {
		struct stat sb;
		if (r == 0 && stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
			r = run_file(names[i]);
			(*n)++;
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int
main(int argc, char **argv)
{
	size_t n = 0;
	int i, r = 0;

	signal(SIGALRM, on_alarm);
	if (argc > 1) {
		for (i = 1; i < argc && r == 0; i++) {
			struct stat sb;
			if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
				r = run_dir(argv[i], &n, 1);
			else
				r = run_file(argv[i]) == 0 ? (n++, 0) : -1;
		}
	} else {
		const char *top = getenv("TOP_SRCDIR");
		char corpus[4096], regress[4096];

		if (top == NULL || *top == '\0')
			top = JP_TEST_SRCDIR;
		snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", top, JP_FUZZ_TARGET);
		snprintf(regress, sizeof(regress), "%s/tests/fuzz/regressions/%s", top, JP_FUZZ_TARGET);
		if ((r = run_dir(corpus, &n, 1)) == 0)
			r = run_dir(regress, &n, 0);
		if (r != 0)
			return 99;
	}
	if (r != 0)
		return 1;
	printf("replay %s: %zu inputs, no crash\n", JP_FUZZ_TARGET, n);
	return n > 0 ? 0 : 1;
}
