/*
 * sshconfig.h - the part of ~/.ssh/config that decides where `sftp HOST` connects.
 *
 * Users expect sftp://archive/... to work when `sftp archive` does, so a host that matches a
 * `Host` block takes its HostName, Port, User, IdentityFile and UserKnownHostsFile, with
 * OpenSSH's rules: patterns with * ? and !negation, the first value found for a keyword wins,
 * keywords are case-insensitive, "Keyword value" or "Keyword=value", ~ and %d (home), %h
 * (host), %u (local user), %% expanded in file names.  `Match` blocks and `Include` are not
 * followed (their lines are skipped).
 *
 * Also the algorithm lists jobpub offers (jp_ssh_methods), which are SSH configuration too.
 */
#ifndef JP_SSHCONFIG_H
#define JP_SSHCONFIG_H

/* What the config says for one host; every string malloc'd or NULL when not set, port 0 when
 * not set. */
struct jp_sshconf {
	char *hostname;
	char *user;
	int port;
	char *identity;
	char *known_hosts;
	/* Set when jp_sshconf_read fails: "FILE:LINE: Port 70000: not 1-65535" or "FILE: why",
	 * one line for the user. */
	char error[1024];
};

/* Reads config file `path` (NULL: $HOME/.ssh/config) for `host`.  A missing file is not an
 * error.  Returns 0, or -1 with errno and out->error set (every other field cleared) when the
 * file exists but cannot be read, EINVAL when the host's Port is not a number from 1 to 65535
 * (ssh refuses it too), ENOMEM when out of memory (never a result with a value missing). */
int jp_sshconf_read(const char *path, const char *host, struct jp_sshconf *out);
void jp_sshconf_free(struct jp_sshconf *c);

/* ~ and %d, %h, %u, %% expanded; malloc'd, NULL when out of memory. */
char *jp_ssh_expand(const char *s, const char *host);

/* The names of the comma-separated list `preferred` (most wanted first) that are among the n
 * names of `supported` (what libssh2_session_supported_algs() reports), in the order of
 * `preferred`, comma-separated, without duplicates; "" when none is supported.  malloc'd, NULL
 * when out of memory.  libssh2_session_method_pref() must only be given such a list: 1.10
 * strips a name it lacks with an overlapping memcpy (undefined; ASan aborts on it). */
char *jp_ssh_methods(const char *preferred, const char *const *supported, int n);

#endif
