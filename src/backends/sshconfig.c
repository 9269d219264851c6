/*
 * sshconfig.c - reading ~/.ssh/config for one host, the way ssh(1) does, and the algorithm
 * lists jobpub offers.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sshconfig.h"

static const char *
home(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && h[0] != '\0')
		return h;
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_dir : "/";
}

char *
jp_ssh_expand(const char *s, const char *host)
{
	const char *h = home();
	struct passwd *pw = getpwuid(getuid());
	const char *user = pw != NULL ? pw->pw_name : "";
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	if (fp == NULL)
		return NULL;
	if (s[0] == '~' && (s[1] == '/' || s[1] == '\0')) {
		fputs(h, fp);
		s++;
	}
	for (; *s != '\0'; s++) {
		if (*s != '%' || s[1] == '\0') {
			fputc(*s, fp);
			continue;
		}
		s++;
		switch (*s) {
		case 'd': fputs(h, fp); break;
		case 'h': fputs(host, fp); break;
		case 'u': fputs(user, fp); break;
		case '%': fputc('%', fp); break;
		default: fputc('%', fp); fputc(*s, fp);
		}
	}
	fclose(fp);
	return out;
}

/* A Host line's patterns match when one positive pattern matches and no negated one does. */
static int
host_matches(char *patterns, const char *host)
{
	char *save = NULL, *p;
	int yes = 0;

	for (p = strtok_r(patterns, " \t", &save); p != NULL; p = strtok_r(NULL, " \t", &save)) {
		if (p[0] == '!') {
			if (fnmatch(p + 1, host, 0) == 0)
				return 0;
		} else if (fnmatch(p, host, 0) == 0) {
			yes = 1;
		}
	}
	return yes;
}

/* The first argument of a value: "in double quotes" (spaces allowed) or up to a blank. */
static char *
first_arg(char *val)
{
	if (val[0] == '"') {
		char *q = strchr(val + 1, '"');
		if (q != NULL)
			*q = '\0';
		return val + 1;
	}
	val[strcspn(val, " \t")] = '\0';
	return val;
}

/* Returns -1 when out of memory: a HostName lost that way would send the connection to the
 * alias itself, an IdentityFile lost would log in with other keys. */
static int
set_once(char **dst, const char *val, const char *host)
{
	if (*dst == NULL && (*dst = jp_ssh_expand(val, host)) == NULL)
		return -1;
	return 0;
}

int
jp_sshconf_read(const char *path, const char *host, struct jp_sshconf *out)
{
	char *deflt = NULL, *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int active = 1, r = 0, err = 0; /* lines before the first Host apply to every host */
	FILE *fp;

	memset(out, 0, sizeof(*out));
	if (path == NULL) {
		if (asprintf(&deflt, "%s/.ssh/config", home()) < 0) {
			snprintf(out->error, sizeof(out->error), "~/.ssh/config: %s", strerror(errno));
			return -1;
		}
		path = deflt;
	}
	fp = fopen(path, "r");
	if (fp == NULL) {
		err = errno;
		if (err != ENOENT)
			snprintf(out->error, sizeof(out->error), "%s: %s", path, strerror(err));
		free(deflt);
		errno = err;
		return err == ENOENT ? 0 : -1;
	}
	/* getline, not a fixed buffer: the tail of a long line (a comment) read as a line of its
	 * own could set a HostName. */
	while (getline(&line, &cap, fp) != -1) {
		char *p = line, *key, *val, *end;

		lineno++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		key = p;
		p += strcspn(p, " \t=");
		if (*p != '\0')
			*p++ = '\0';
		while (*p == ' ' || *p == '\t' || *p == '=')
			p++;
		val = p;
		if (strcasecmp(key, "Host") == 0) {
			active = host_matches(val, host);
			continue;
		}
		if (strcasecmp(key, "Match") == 0) {
			active = 0;
			continue;
		}
		if (!active)
			continue;
		val = first_arg(val);
		if ((strcasecmp(key, "HostName") == 0 && set_once(&out->hostname, val, host) != 0) ||
		    (strcasecmp(key, "User") == 0 && set_once(&out->user, val, host) != 0) ||
		    (strcasecmp(key, "IdentityFile") == 0 &&
		     set_once(&out->identity, val, host) != 0) ||
		    /* the first of several files */
		    (strcasecmp(key, "UserKnownHostsFile") == 0 &&
		     set_once(&out->known_hosts, val, host) != 0)) {
			snprintf(out->error, sizeof(out->error), "%s:%u: %s", path, lineno,
			         strerror(ENOMEM));
			err = ENOMEM;
			r = -1;
			break;
		}
		if (strcasecmp(key, "Port") == 0 && out->port == 0) {
			/* Not atoi: "Port 70000" became port 4464 once cut to 16 bits, "Port -1" was
			 * dropped silently.  ssh refuses such a file; so do we. */
			char *e;
			long v;

			errno = 0;
			v = strtol(val, &e, 10);
			if (errno != 0 || e == val || *e != '\0' || v < 1 || v > 65535) {
				snprintf(out->error, sizeof(out->error), "%s:%u: Port %s: not 1-65535",
				         path, lineno, val);
				err = EINVAL;
				r = -1;
				break;
			}
			out->port = (int)v;
		}
	}
	free(line);
	if (ferror(fp) && r == 0) {
		err = errno;
		snprintf(out->error, sizeof(out->error), "%s: %s", path, strerror(err));
		r = -1;
	}
	fclose(fp);
	free(deflt);
	if (r != 0) {
		char why[sizeof(out->error)];

		memcpy(why, out->error, sizeof(why));
		jp_sshconf_free(out);
		memcpy(out->error, why, sizeof(why));
		errno = err;
	}
	return r;
}

void
jp_sshconf_free(struct jp_sshconf *c)
{
	free(c->hostname);
	free(c->user);
	free(c->identity);
	free(c->known_hosts);
	memset(c, 0, sizeof(*c));
}

/* A name of a comma-separated list is [s, s + len). */
static int
in_list(const char *list, const char *s, size_t len)
{
	for (const char *p = list; *p != '\0'; p += *p == ',') {
		size_t l = strcspn(p, ",");
		if (l == len && memcmp(p, s, len) == 0)
			return 1;
		p += l;
	}
	return 0;
}

char *
jp_ssh_methods(const char *preferred, const char *const *supported, int n)
{
	char *out = malloc(strlen(preferred) + 1), *end = out;

	if (out == NULL)
		return NULL;
	*out = '\0';
	for (const char *p = preferred; *p != '\0'; p += *p == ',') {
		size_t len = strcspn(p, ",");
		int i;

		for (i = 0; i < n; i++)
			if (strlen(supported[i]) == len && memcmp(supported[i], p, len) == 0)
				break;
		if (len > 0 && i < n && !in_list(out, p, len)) {
			if (end != out)
				*end++ = ',';
			memcpy(end, p, len);
			end += len;
			*end = '\0';
		}
		p += len;
	}
	return out;
}
