/*
 * test_backend_sftp.c - unit tests of src/backends/backend-sftp.c, driven through the dest.h API (and
 * the backend table where dest.c would refuse first) against the private OpenSSH sshd the
 * shell tests use (tests/sshd-start.sh, stopped by PID with tests/sshd-stop.sh at the end).
 *
 * The server runs without chroot, so a remote path is the local path: every check reads the
 * server's files directly.  As root, sessions log in as SSHD_ALT_USER (nobody), whose file
 * modes count, so permission refusals are real; each test gets a fresh remote directory owned
 * by the session's user.
 *
 * Covered: the whole upload cycle (stage, write, finish, commit, abort, stat, remove, read,
 * digest, list), commits onto existing names with and without overwrite, a staged file
 * displaced before its commit, a retry that finds its own temporary, missing and blocked
 * remote directories, symbolic links below the root, permission refusals of every call, host
 * keys (unknown, changed, hashed, accept-new, a known key of another type, and servers whose
 * only host key is rsa, ecdsa 256/384/521 or dsa), every way of logging in (identity, default
 * key files, agent, passphrase file, ~/.ssh/config alias) and refusals, connections refused,
 * silent or unresolvable, the server killed mid-upload, and a connection cut or stalled: the
 * test runs tests/relay.py in `pass` mode and stops it (SIGSTOP: the peers see silence) or
 * kills it (SIGKILL: the connection is cut) at the moment it chooses; jp_dest_cancel from
 * another thread; the stall rule of writes.
 */
#include "config.h"

#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <openssl/evp.h>

#include "failalloc.h"
#include "testlib.h"

#include "backend.h"
#include "dest.h"
#include "log.h"
#include "options.h"
#include "util.h"

extern const struct jp_backend jp_backend_sftp; /* in the registry (dest.c) */

#define TOKEN "0123456789abcdef"

/* ---- the server, set up once by main() ---- */

static char *top;       /* our temporary directory (0711: the session user must pass) */
static char *sshd_dir;  /* top/sshd */
static char *kt_dir;    /* top/sshd-kt: the server of the host key type test */
static char env_text[8192];
static uid_t sess_uid;
static gid_t sess_gid;
static int modes_count; /* the session's user is not root: file modes refuse */

/* A value of DIR/env (KEY='value' or KEY=value lines); "" when absent.  Static storage, one
 * value per key name buffer slot. */
static const char *
env_of(const char *text, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = text;

	buf[0] = '\0';
	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			const char *v = p + kl + 1, *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);

			if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'') {
				v++;
				n -= 2;
			}
			if (n >= len)
				n = len - 1;
			memcpy(buf, v, n);
			buf[n] = '\0';
			break;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return buf;
}

#define ENV(key) env_of(env_text, key, (char[1024]){0}, 1024)

static const char *
sess_user(void)
{
	static char u[256];
	char b[256];

	env_of(env_text, "SSHD_ALT_USER", b, sizeof(b));
	if (b[0] == '\0')
		env_of(env_text, "SSH_USER", b, sizeof(b));
	snprintf(u, sizeof(u), "%s", b);
	return u;
}

/* Runs a shell command line; returns its exit status (-1 when it did not exit). */
static int
run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
sshd_start(const char *dir, const char *keytype)
{
	return run("SSHD_HOSTKEY_TYPE=%s sh '%s/tests/sshd-start.sh' '%s' >'%s.start.log' 2>&1",
	           keytype, JP_TEST_SRCDIR, dir, dir);
}

static void
sshd_stop(const char *dir, const char *sig)
{
	run("sh '%s/tests/sshd-stop.sh' '%s' %s >/dev/null 2>&1", JP_TEST_SRCDIR, dir, sig);
}

static void
load_env(const char *dir, char *text, size_t len)
{
	char *p = t_path(dir, "env");
	FILE *fp = fopen(p, "r");
	size_t n;

	if (fp == NULL) {
		fprintf(stderr, "test_backend_sftp: %s: %s\n", p, strerror(errno));
		exit(99);
	}
	n = fread(text, 1, len - 1, fp);
	text[n] = '\0';
	fclose(fp);
	free(p);
}

/* ---- per test ---- */

static char *w;    /* this test's remote (= local) directory, owned by the session user */
static char *home; /* this test's HOME, with an empty ~/.ssh */
static struct t_mem logbuf;
static struct jp_options sopts; /* the backend options (options.h) of the test's opts */

/* Sets backend option key ("sftp.identity") in o; value NULL removes it. */
static void
set_opt(struct jp_dest_opts *o, const char *key, const char *value)
{
	struct jp_options n = {NULL, 0};
	struct jp_error e;
	size_t i;

	jp_error_clear(&e);
	for (i = 0; i < sopts.n; i++)
		if (strcmp(sopts.v[i].key, key) != 0)
			ck_assert_int_eq(jp_options_put(&n, sopts.v[i].key, sopts.v[i].value,
			                                JP_OPTION_FROM_CLI, "-o", &e), JP_OK);
	if (value != NULL)
		ck_assert_int_eq(jp_options_put(&n, key, value, JP_OPTION_FROM_CLI, "-o", &e), JP_OK);
	jp_options_free(&sopts);
	sopts = n;
	o->options = &sopts;
}

static void
setup(void)
{
	char name[64];

	umask(022);
	snprintf(name, sizeof(name), "root/w%d", (int)getpid());
	w = t_path(sshd_dir, name);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	ck_assert_int_eq(chown(w, sess_uid, sess_gid), 0);
	snprintf(name, sizeof(name), "home%d", (int)getpid());
	home = t_path(top, name);
	ck_assert_int_eq(mkdir(home, 0700), 0);
	t_write_str(home, ".ssh/.keep", "");
	setenv("HOME", home, 1);
	unsetenv("SSH_AUTH_SOCK");
	unsetenv("JOBPUB_SSH_PASSPHRASE_FILE");
	t_mem_open(&logbuf);
	jp_log_setup(JP_LOG_TEXT, 0, logbuf.fp);
}

static void
teardown(void)
{
	t_rmtree(w);
	t_rmtree(home);
	free(w);
	free(home);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	t_mem_close(&logbuf);
	jp_options_free(&sopts);
}

/* Options that log in: the authorized key, the server's known_hosts. */
static struct jp_dest_opts
opts_ok(void)
{
	static char kh[1024], key[1024];
	struct jp_dest_opts o = {0};

	snprintf(kh, sizeof(kh), "%s", ENV("SSHD_KNOWN_HOSTS"));
	snprintf(key, sizeof(key), "%s", ENV("SSH_KEY"));
	jp_options_free(&sopts);
	set_opt(&o, "sftp.known-hosts", kh);
	set_opt(&o, "sftp.identity", key);
	o.timeout_ms = 10000;
	o.stall_ms = 10000;
	return o;
}

/* sftp://USER@127.0.0.1:PORT<path>; malloc'd. */
static char *
url_port(int port, const char *path)
{
	return jp_asprintf("sftp://%s@127.0.0.1:%d%s", sess_user(), port, path);
}

static char *
url_of(const char *path)
{
	return url_port(atoi(ENV("SSHD_PORT")), path);
}

static struct jp_dest *
open_ok(const char *url, const struct jp_dest_opts *o)
{
	struct jp_dest *d = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_dest_open(url, o, &d, &err);
	ck_assert_msg(r == JP_OK, "open %s: %d %s", url, err.code, err.msg);
	ck_assert_ptr_nonnull(d);
	return d;
}

/* Opens url expecting a refusal of class code whose message holds want; returns nothing open. */
static void
open_fails(const char *url, const struct jp_dest_opts *o, int code, const char *want)
{
	struct jp_dest *d = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_dest_open(url, o, &d, &err);
	ck_assert_msg(r != JP_OK && d == NULL, "open %s succeeded", url);
	ck_assert_msg(err.code == code, "open %s: class %d, want %d (%s)", url, err.code, code,
	              err.msg);
	ck_assert_msg(strstr(err.msg, want) != NULL, "open %s: '%s' lacks '%s'", url, err.msg, want);
}

static struct jp_dest *
open_w(const struct jp_dest_opts *o)
{
	char *u = url_of(w);
	struct jp_dest *d = open_ok(u, o);

	free(u);
	return d;
}

/* Stages key with TOKEN and writes data; the upload, staged. */
static struct jp_upload *
stage_write(struct jp_dest *d, const char *key, const char *data)
{
	struct jp_upload *u = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_dest_stage(d, key, TOKEN, strlen(data), &u, &err);
	ck_assert_msg(r == JP_OK, "stage %s: %d %s", key, err.code, err.msg);
	r = jp_upload_write(u, data, strlen(data), &err);
	ck_assert_msg(r == JP_OK, "write %s: %d %s", key, err.code, err.msg);
	return u;
}

static void
finish_ok(struct jp_upload *u, size_t size)
{
	unsigned char sha[32] = {0};
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_upload_finish(u, size, sha, &err);
	ck_assert_msg(r == JP_OK, "finish: %d %s", err.code, err.msg);
}

/* Stages, writes, finishes and commits data under key; returns the commit's result. */
static int
put(struct jp_dest *d, const char *key, const char *data, int overwrite, int *exists,
    int *replaced, struct jp_error *err)
{
	struct jp_upload *u = stage_write(d, key, data);
	int r;

	finish_ok(u, strlen(data));
	*exists = *replaced = 0;
	jp_error_clear(err);
	r = jp_upload_commit(u, overwrite, exists, replaced, err);
	jp_upload_free(u);
	return r;
}

static void
put_ok(struct jp_dest *d, const char *key, const char *data)
{
	struct jp_error err;
	int exists, replaced, r = put(d, key, data, 0, &exists, &replaced, &err);

	ck_assert_msg(r == JP_OK && !exists, "put %s: %d %s (exists %d)", key, err.code, err.msg,
	              exists);
}

/* The content of w/rel, or NULL; the caller frees. */
static char *
content(const char *rel)
{
	return t_read(w, rel, NULL);
}

static void
assert_content(const char *rel, const char *want)
{
	char *s = content(rel);

	ck_assert_msg(s != NULL, "%s/%s is missing", w, rel);
	ck_assert_msg(strcmp(s, want) == 0, "%s holds '%s', want '%s'", rel, s, want);
	free(s);
}

/* Local file ops as the session user would see them (as root: chown to it). */
static void
own(const char *rel)
{
	char *p = t_path(w, rel);

	ck_assert_int_eq(lchown(p, sess_uid, sess_gid), 0);
	free(p);
}

static void
mode(const char *rel, mode_t m)
{
	char *p = t_path(w, rel);

	ck_assert_int_eq(chmod(p, m), 0);
	free(p);
}

static void
mkdir_w(const char *rel, mode_t m)
{
	char *p = t_path(w, rel);

	ck_assert_int_eq(mkdir(p, m), 0);
	ck_assert_int_eq(chown(p, sess_uid, sess_gid), 0);
	ck_assert_int_eq(chmod(p, m), 0);
	free(p);
}

static size_t
temporaries(void)
{
	return t_count_prefixed(w, JP_TMP_PREFIX);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SHA256:base64 of the key blob in an OpenSSH public key line ("type base64 comment"). */
static void
fingerprint_of(const char *pubfile, char *out, size_t len)
{
	char *line = t_read("/", pubfile + 1, NULL), *b64, *sp;
	unsigned char blob[4096], h[32], enc[64];
	int n, m;

	ck_assert_ptr_nonnull(line);
	b64 = strchr(line, ' ') + 1;
	sp = strchr(b64, ' ');
	if (sp != NULL)
		*sp = '\0';
	b64[strcspn(b64, "\n")] = '\0';
	n = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)strlen(b64));
	ck_assert_int_gt(n, 0);
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	for (sp = b64 + strlen(b64); sp > b64 && sp[-1] == '='; sp--)
		n--;
	ck_assert(EVP_Digest(blob, (size_t)n, h, NULL, EVP_sha256(), NULL) == 1);
	m = EVP_EncodeBlock(enc, h, 32);
	while (m > 0 && enc[m - 1] == '=')
		m--;
	snprintf(out, len, "SHA256:%.*s", m, enc);
	free(line);
}

/* ---- the relay (tests/relay.py in pass mode), stopped or killed by PID ---- */

static pid_t relay_pid;

static int
relay_start(void)
{
	char *pf = t_path(home, "relay.port"), *s = NULL, target[16];
	int i, port;

	unlink(pf);
	snprintf(target, sizeof(target), "%s", ENV("SSHD_PORT"));
	relay_pid = fork();
	ck_assert_int_ge(relay_pid, 0);
	if (relay_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test (exit) takes it along */
		execlp("python3", "python3", JP_TEST_SRCDIR "/tests/relay.py", pf, target, "pass",
		       (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && (s = t_read("/", pf + 1, NULL)) == NULL; i++)
		usleep(50000);
	ck_assert_msg(s != NULL, "relay.py wrote no port file");
	port = atoi(s);
	free(s);
	free(pf);
	return port;
}

/* A known_hosts file for the relay's port (the server's key); its path, static. */
static const char *
relay_known_hosts(int port)
{
	static char path[1024];
	char *key = t_read("/", ENV("SSHD_KNOWN_HOSTS") + 1, NULL), *line;

	ck_assert_ptr_nonnull(key);
	line = jp_asprintf("[127.0.0.1]:%d %s", port, strchr(key, ' ') + 1);
	snprintf(path, sizeof(path), "%s/relay_known_hosts", home);
	t_write_str(home, "relay_known_hosts", line);
	free(line);
	free(key);
	return path;
}

static void
relay_end(void)
{
	if (relay_pid > 0) {
		kill(relay_pid, SIGKILL);
		waitpid(relay_pid, NULL, 0);
		relay_pid = 0;
	}
}

/* ---- tests ---- */

static unsigned char collected_sha[32];

START_TEST(test_cycle)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	struct jp_stat st;
	struct jp_error err;
	unsigned char sha[32], want[32];
	char *u, *p;
	struct stat sb;

	/* Trailing slashes of the URL are not part of the root. */
	p = jp_asprintf("%s//", w);
	u = url_of(p);
	d = open_ok(u, &o);
	free(p);
	free(u);
	ck_assert_str_eq(jp_dest_backend(d), "sftp");
	ck_assert_int_eq(jp_dest_can_cancel(d), 1);

	put_ok(d, "a/b/f.txt", "hello");
	assert_content("a/b/f.txt", "hello");
	ck_assert_uint_eq(temporaries(), 0);
	p = t_path(w, "a/b/f.txt");
	ck_assert_int_eq(stat(p, &sb), 0);
	ck_assert_uint_eq(sb.st_uid, sess_uid);
	free(p);
	/* a second file in a directory already made (the directory cache) */
	put_ok(d, "a/b/g.txt", "world!");
	assert_content("a/b/g.txt", "world!");

	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stat(d, "a/b/f.txt", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.is_dir, 0);
	ck_assert_uint_eq(st.size, 5);
	ck_assert_int_eq(jp_dest_stat(d, "a", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.is_dir, 1);
	ck_assert_int_eq(jp_dest_stat(d, "a/b/none", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	/* In a directory that does not exist nothing does, asked twice (the second from memory). */
	ck_assert_int_eq(jp_dest_stat(d, "x/y/z", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	ck_assert_int_eq(jp_dest_stat(d, "x/y/z2", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	/* ... until this destination creates it */
	put_ok(d, "x/y/z", "zz");
	ck_assert_int_eq(jp_dest_stat(d, "x/y/z", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);

	/* read back and hashed */
	ck_assert(EVP_Digest("hello", 5, want, NULL, EVP_sha256(), NULL) == 1);
	ck_assert_msg(jp_dest_digest(d, "a/b/f.txt", sha, &err) == JP_OK, "%s", err.msg);
	ck_assert_mem_eq(sha, want, 32);
	ck_assert_msg(jp_dest_hash(d, "a/b/f.txt", sha, &err) == JP_OK, "%s", err.msg);
	ck_assert_mem_eq(sha, want, 32);
	/* a missing object cannot be read: the open fails with the SFTP status */
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_hash(d, "a/b/none", sha, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "no such file") != NULL, "%s", err.msg);

	ck_assert_int_eq(jp_dest_remove(d, "a/b/f.txt", &err), JP_OK);
	ck_assert(!t_exists(w, "a/b/f.txt"));
	ck_assert_int_eq(jp_dest_remove(d, "a/b/f.txt", &err), JP_OK); /* missing: fine */
	jp_dest_close(d);
	(void)collected_sha;
}
END_TEST

/* list: every regular file below a prefix, temporaries included, links and FIFOs not. */
struct seen {
	char keys[16][128];
	int n, stop_after;
};

static int
collect(void *arg, const char *key, const struct jp_stat *st)
{
	struct seen *s = arg;

	ck_assert_int_eq(st->exists, 1);
	if (s->n < 16)
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s:%llu", key,
		         (unsigned long long)st->size);
	s->n++;
	return s->stop_after > 0 && s->n >= s->stop_after;
}

static int
seen_has(const struct seen *s, const char *want)
{
	for (int i = 0; i < s->n && i < 16; i++)
		if (strcmp(s->keys[i], want) == 0)
			return 1;
	return 0;
}

START_TEST(test_list)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d = open_w(&o);
	struct seen s = {0};
	struct jp_error err;
	char *p, *u;

	put_ok(d, "l/one", "1");
	put_ok(d, "l/sub/two", "22");
	t_write_str(w, "l/sub/.jobpub-0000000000000000.three", "333");
	own("l/sub/.jobpub-0000000000000000.three");
	p = t_path(w, "l/link");
	ck_assert_int_eq(symlink("one", p), 0);
	free(p);
	p = t_path(w, "l/fifo");
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	free(p);

	jp_error_clear(&err);
	ck_assert_msg(jp_dest_list(d, "l", collect, &s, &err) == JP_OK, "%s", err.msg);
	ck_assert_int_eq(s.n, 3);
	ck_assert(seen_has(&s, "l/one:1"));
	ck_assert(seen_has(&s, "l/sub/two:2"));
	ck_assert(seen_has(&s, "l/sub/.jobpub-0000000000000000.three:3"));
	/* the callback stops the listing */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	ck_assert_int_eq(jp_dest_list(d, "l", collect, &s, &err), JP_OK);
	ck_assert_int_eq(s.n, 1);
	/* a prefix that does not exist below an existing root is an error */
	memset(&s, 0, sizeof(s));
	ck_assert_int_ne(jp_dest_list(d, "nothere", collect, &s, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	jp_dest_close(d);

	/* a destination nothing was ever published to holds nothing */
	p = jp_asprintf("%s/never", w);
	u = url_of(p);
	o.readonly = 1;
	d = open_ok(u, &o);
	memset(&s, 0, sizeof(s));
	jp_error_clear(&err);
	ck_assert_msg(jp_dest_list(d, "", collect, &s, &err) == JP_OK, "%s", err.msg);
	ck_assert_int_eq(s.n, 0);
	ck_assert(!t_exists(w, "never"));
	jp_dest_close(d);
	free(p);
	free(u);

	/* the server's root as the destination: keys are absolute paths without the '/' */
	u = url_of("/");
	d = open_ok(u, &o);
	{
		struct jp_stat st;

		ck_assert_int_eq(jp_dest_stat(d, w + 1, &st, &err), JP_OK);
		ck_assert_int_eq(st.exists, 1);
		ck_assert_int_eq(st.is_dir, 1);
		ck_assert_int_eq(jp_dest_stat(d, "no-such-top-level-name", &st, &err), JP_OK);
		ck_assert_int_eq(st.exists, 0);
		p = jp_asprintf("%s/l/one", w + 1);
		ck_assert_int_eq(jp_dest_stat(d, p, &st, &err), JP_OK);
		ck_assert_int_eq(st.exists, 1);
		ck_assert_uint_eq(st.size, 1);
		free(p);
	}
	jp_dest_close(d);
	free(u);
}
END_TEST

START_TEST(test_conflict_overwrite)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d = open_w(&o);
	struct jp_upload *u;
	struct jp_error err;
	int exists = 0, replaced = 0, r;

	t_write_str(w, "c.txt", "old");
	own("c.txt");
	/* without overwrite: the existing name is reported and left alone */
	u = stage_write(d, "c.txt", "new!");
	finish_ok(u, 4);
	jp_error_clear(&err);
	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_int_eq(exists, 1);
	ck_assert_int_eq(replaced, 0);
	ck_assert_int_eq(jp_upload_committed(u), 0);
	assert_content("c.txt", "old");
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	ck_assert_uint_eq(temporaries(), 0);
	jp_upload_free(u);

	/* with overwrite: replaced, and the old file moved aside is gone too */
	r = put(d, "c.txt", "new!", 1, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(replaced, 1);
	assert_content("c.txt", "new!");
	ck_assert_uint_eq(temporaries(), 0);
	/* overwrite of a name that does not exist replaces nothing */
	r = put(d, "fresh.txt", "f", 1, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_int_eq(replaced, 0);
	assert_content("fresh.txt", "f");

	/* a directory under the final name is never replaced */
	mkdir_w("dir", 0755);
	u = stage_write(d, "dir", "x");
	finish_ok(u, 1);
	jp_error_clear(&err);
	r = jp_upload_commit(u, 1, &exists, &replaced, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "is a directory") != NULL, "%s", err.msg);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	ck_assert_uint_eq(temporaries(), 0);
	jp_dest_close(d);
}
END_TEST

/* The staged temporary is displaced (removed by someone) before the commit. */
static void
remove_temporaries(const char *rel)
{
	char *p = t_path(w, rel), cmd[4096];

	snprintf(cmd, sizeof(cmd), "rm -f '%s'/" JP_TMP_PREFIX "*", p);
	ck_assert_int_eq(system(cmd), 0);
	free(p);
}

START_TEST(test_displaced)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d = open_w(&o);
	struct jp_upload *u;
	struct jp_error err;
	int exists = 0, replaced = 0, r;

	/* no final name: the rename fails, and that is not a conflict */
	u = stage_write(d, "p/gone.txt", "data");
	finish_ok(u, 4);
	remove_temporaries("p");
	jp_error_clear(&err);
	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "rename to") != NULL, "%s", err.msg);
	ck_assert(!t_exists(w, "p/gone.txt"));
	/* aborting what is already gone is fine */
	jp_error_clear(&err);
	ck_assert_msg(jp_upload_abort(u, &err) == JP_OK, "%s", err.msg);
	jp_upload_free(u);

	/* with overwrite: the old file was moved aside, the rename fails, the old one comes back */
	t_write_str(w, "p/keep.txt", "precious");
	own("p/keep.txt");
	u = stage_write(d, "p/keep.txt", "newer");
	finish_ok(u, 5);
	remove_temporaries("p");
	jp_error_clear(&err);
	r = jp_upload_commit(u, 1, &exists, &replaced, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(replaced, 0);
	ck_assert_msg(strstr(err.msg, "rename to") != NULL, "%s", err.msg);
	assert_content("p/keep.txt", "precious");
	ck_assert_uint_eq(temporaries(), 0);
	jp_upload_free(u);
	jp_dest_close(d);
}
END_TEST

/* A retry of a file reuses its token: what the broken try left under the temporary name is
 * replaced; a directory in its way is not. */
START_TEST(test_retry_leftover)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d = open_w(&o);
	struct jp_upload *u = NULL;
	struct jp_error err;
	int r;

	t_write_str(w, "r/" JP_TMP_PREFIX TOKEN ".f", "junk from the try before, longer");
	own("r");
	own("r/" JP_TMP_PREFIX TOKEN ".f");
	put_ok(d, "r/f", "good");
	assert_content("r/f", "good");
	ck_assert_uint_eq(temporaries(), 0);

	mkdir_w("r/" JP_TMP_PREFIX TOKEN ".g", 0755);
	jp_error_clear(&err);
	r = jp_dest_stage(d, "r/g", TOKEN, 1, &u, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(u);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "create") != NULL, "%s", err.msg);

	/* finish checks the size on the server: a temporary truncated meanwhile is caught */
	u = stage_write(d, "r/h", "12345");
	{
		char *p = t_path(w, "r/" JP_TMP_PREFIX TOKEN ".h");
		ck_assert_int_eq(truncate(p, 3), 0);
		free(p);
	}
	jp_error_clear(&err);
	r = jp_upload_finish(u, 5, (const unsigned char[32]){0}, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_msg(strstr(err.msg, "holds 3 bytes, expected 5") != NULL, "%s", err.msg);
	jp_upload_free(u); /* aborts: the temporary goes */
	ck_assert_uint_eq(t_count_prefixed(w, JP_TMP_PREFIX TOKEN ".h"), 0);
	jp_dest_close(d);
}
END_TEST

START_TEST(test_paths)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d = open_w(&o);
	struct jp_upload *u = NULL;
	struct jp_stat st;
	struct jp_error err;
	char *p, *out;

	/* a symbolic link below the root does not carry uploads elsewhere */
	{
		char name[64];
		snprintf(name, sizeof(name), "outside%d", (int)getpid());
		out = t_path(top, name);
	}
	ck_assert_int_eq(mkdir(out, 0777), 0);
	ck_assert_int_eq(chmod(out, 0777), 0);
	p = t_path(w, "ln");
	ck_assert_int_eq(symlink(out, p), 0);
	free(p);
	own("ln");
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stage(d, "ln/f", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strstr(err.msg, "is a symbolic link") != NULL, "%s", err.msg);
	ck_assert_uint_eq(t_count_entries(out), 0);
	/* a link under a final name is reported as the link (a conflict), never followed */
	ck_assert_int_eq(jp_dest_stat(d, "ln", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.is_dir, 0);
	t_rmtree(out);
	free(out);

	/* a final name that is a link loop is not replaced (nor followed) */
	p = t_path(w, "loop");
	ck_assert_int_eq(symlink("loop", p), 0);
	free(p);
	own("loop");
	u = stage_write(d, "loop", "x");
	finish_ok(u, 1);
	{
		int exists = 0, replaced = 0;

		jp_error_clear(&err);
		ck_assert_int_ne(jp_upload_commit(u, 1, &exists, &replaced, &err), JP_OK);
		ck_assert_msg(err.code == JP_E_UNAVAILABLE, "%d %s", err.code, err.msg);
		ck_assert_int_eq(replaced, 0);
	}
	jp_upload_free(u);
	u = NULL;
	{
		char l[64];
		p = t_path(w, "loop");
		ck_assert_int_eq(readlink(p, l, sizeof(l)), 4);
		free(p);
	}

	/* a file where a directory is wanted */
	t_write_str(w, "file", "I am a file");
	own("file");
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stage(d, "file/x", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "is not a directory") != NULL, "%s", err.msg);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stage(d, "file/sub/x", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "a file is in the way") != NULL, "%s", err.msg);
	/* stat below a file: absent */
	ck_assert_int_eq(jp_dest_stat(d, "file/sub/x", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	jp_dest_close(d);
}
END_TEST

/* What a session whose user the file modes apply to is refused: 77 each time. */
START_TEST(test_permissions)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	struct jp_upload *u = NULL;
	struct jp_stat st;
	struct seen s = {0};
	struct jp_error err;
	int exists = 0, replaced = 0;

	if (!modes_count) {
		fprintf(stderr, "test_permissions: the session user is root: skipped\n");
		return;
	}
	d = open_w(&o);
	mkdir_w("ro", 0555);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stage(d, "ro/sub/f", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "mkdir") != NULL, "%d %s",
	              err.code, err.msg);
	ck_assert(!t_exists(w, "ro/sub"));
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stage(d, "ro/f", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "create") != NULL, "%d %s",
	              err.code, err.msg);
	ck_assert_msg(strstr(err.msg, "permission denied") != NULL, "%s", err.msg);

	/* remove, abort and the overwrite's move-aside in a directory made read-only meanwhile */
	mkdir_w("rw", 0755);
	t_write_str(w, "rw/old", "old");
	own("rw/old");
	u = stage_write(d, "rw/old", "new");
	finish_ok(u, 3);
	mode("rw", 0555);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_remove(d, "rw/old", &err), JP_OK);
	ck_assert_msg(err.code == JP_E_NOPERM, "%d %s", err.code, err.msg);
	ck_assert(t_exists(w, "rw/old"));
	jp_error_clear(&err);
	ck_assert_int_ne(jp_upload_commit(u, 1, &exists, &replaced, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "move aside") != NULL, "%d %s",
	              err.code, err.msg);
	ck_assert_int_eq(replaced, 0);
	assert_content("rw/old", "old");
	jp_error_clear(&err);
	ck_assert_int_ne(jp_upload_abort(u, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "remove") != NULL, "%d %s",
	              err.code, err.msg);
	ck_assert_uint_eq(temporaries(), 1); /* left, and said so */
	jp_upload_free(u);

	/* stat and list in a directory the user may not enter */
	mkdir_w("closed", 0755);
	t_write_str(w, "closed/f", "x");
	mode("closed", 0);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stat(d, "closed/f", &st, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "stat") != NULL, "%d %s",
	              err.code, err.msg);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_list(d, "closed", collect, &s, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "list") != NULL, "%d %s",
	              err.code, err.msg);
	ck_assert_int_eq(s.n, 0);
	{
		/* a destination whose root the user may not read: listing it is refused */
		char *p = jp_asprintf("%s/closed", w), *url = url_of(p);
		struct jp_dest *dc = open_ok(url, &o);

		jp_error_clear(&err);
		ck_assert_int_ne(jp_dest_list(dc, "", collect, &s, &err), JP_OK);
		ck_assert_msg(err.code == JP_E_NOPERM, "%d %s", err.code, err.msg);
		jp_dest_close(dc);
		free(url);
		free(p);
	}
	mode("closed", 0755);
	mode("rw", 0755);
	jp_dest_close(d);
}
END_TEST

/* ---- host keys ---- */

static void
write_file(const char *path, const char *text, mode_t m)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, m);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

START_TEST(test_host_keys)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	char *u = url_of(w), *kh = t_path(home, "kh"), *newkh = t_path(home, "new/known_hosts");
	char fp[128], want[512], *text, pub[1024];
	int port = atoi(ENV("SSHD_PORT"));
	struct stat sb;

	fingerprint_of(ENV("SSHD_HOSTKEY_PUB"), fp, sizeof(fp));
	/* unknown: refused, with the fingerprint and the command that adds it */
	write_file(kh, "# nothing yet\n\n", 0644);
	set_opt(&o, "sftp.known-hosts", kh);
	snprintf(want, sizeof(want),
	         "host key of 127.0.0.1 port %d is not known (ed25519 %s); check the fingerprint "
	         "with the server's administrator, then add it: ssh-keyscan -p %d -t ed25519 "
	         "127.0.0.1 >> %s",
	         port, fp, port, kh);
	open_fails(u, &o, JP_E_NOPERM, want);
	/* changed */
	set_opt(&o, "sftp.known-hosts", ENV("SSHD_KNOWN_HOSTS_CHANGED"));
	open_fails(u, &o, JP_E_NOPERM, "HOST KEY CHANGED for 127.0.0.1 port");
	set_opt(&o, "sftp.accept-new-host-key", "true"); /* never for a changed key */
	open_fails(u, &o, JP_E_NOPERM, "HOST KEY CHANGED");
	/* hashed entries, among lines libssh2 cannot read */
	text = t_read("/", ENV("SSHD_KNOWN_HOSTS_HASHED") + 1, NULL);
	ck_assert_ptr_nonnull(text);
	{
		char *all = jp_asprintf("# comment\n@cert-authority * ssh-ed25519 AAAA\n"
		                        "garbage line\n%s", text);
		write_file(kh, all, 0644);
		free(all);
	}
	free(text);
	set_opt(&o, "sftp.accept-new-host-key", "false");
	set_opt(&o, "sftp.known-hosts", kh);
	d = open_ok(u, &o);
	jp_dest_close(d);

	/* accept-new: the key is added (directories 0700, file 0600), then simply known */
	set_opt(&o, "sftp.known-hosts", newkh);
	set_opt(&o, "sftp.accept-new-host-key", "true");
	d = open_ok(u, &o);
	jp_dest_close(d);
	ck_assert_int_eq(stat(newkh, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	text = t_read("/", newkh + 1, NULL);
	{
		char *line = t_read("/", ENV("SSHD_HOSTKEY_PUB") + 1, NULL);
		*strchr(strchr(line, ' ') + 1, ' ') = '\0';
		snprintf(pub, sizeof(pub), "[127.0.0.1]:%d %s\n", port, line);
		free(line);
	}
	ck_assert_str_eq(text, pub);
	free(text);
	ck_assert(strstr(t_mem_text(&logbuf), "added the new host key of [127.0.0.1]:") != NULL);
	set_opt(&o, "sftp.accept-new-host-key", "false");
	d = open_ok(u, &o);
	jp_dest_close(d);

	/* known with a key of another type: accept-new does not add to it */
	{
		char *p = jp_asprintf("%s.pub", ENV("SSH_KEY_RSA")), *rsa, *line;

		rsa = t_read("/", p + 1, NULL);
		free(p);
		*strchr(strchr(rsa, ' ') + 1, ' ') = '\0';
		line = jp_asprintf("[127.0.0.1]:%d %s\n", port, rsa);
		write_file(kh, line, 0644);
		free(rsa);
		set_opt(&o, "sftp.known-hosts", kh);
		set_opt(&o, "sftp.accept-new-host-key", "true");
		open_fails(u, &o, JP_E_NOPERM, "is known with a key of another type, not ed25519");
		text = t_read("/", kh + 1, NULL);
		ck_assert_str_eq(text, line);
		free(text);
		free(line);
	}
	/* accept-new into a file that cannot be written */
	set_opt(&o, "sftp.known-hosts", home); /* a directory */
	open_fails(u, &o, JP_E_NOPERM, "cannot add the host key to");
	{
		/* ... or opened, but the write fails (a file size limit of 0: EFBIG) */
		struct rlimit old, zero = {0, 0};

		ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
		zero.rlim_max = old.rlim_max;
		signal(SIGXFSZ, SIG_IGN);
		set_opt(&o, "sftp.known-hosts", newkh);
		unlink(newkh);
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &zero), 0);
		open_fails(u, &o, JP_E_NOPERM, "cannot add the host key to");
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
		ck_assert_int_eq(stat(newkh, &sb), 0);
		ck_assert_int_eq(sb.st_size, 0);
	}
	free(kh);
	free(newkh);
	free(u);
}
END_TEST

/* A server whose only host key is of another type: the type is named, fingerprinted, added
 * with accept-new and then matched. */
START_TEST(test_host_key_types)
{
	static const struct {
		const char *type, *name;
	} types[] = {
		{"rsa", "rsa"}, {"ecdsa", "ecdsa"}, {"ecdsa384", "ecdsa"}, {"ecdsa521", "ecdsa"},
	};
	char kt_env[8192], b[1024], fp[128], want[4096], *u, *kh, *text, *line, key[1024];
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;

	/* the client keys of the main server, so that only the host keys are generated */
	ck_assert_int_eq(run("mkdir -p '%s' && cp -p '%s'/id_* '%s'/other_host_key* '%s'/", kt_dir,
	                     sshd_dir, sshd_dir, kt_dir),
	                 0);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int port;

		ck_assert_msg(sshd_start(kt_dir, types[i].type) == 0, "sshd-start %s failed",
		              types[i].type);
		load_env(kt_dir, kt_env, sizeof(kt_env));
		port = atoi(env_of(kt_env, "SSHD_PORT", b, sizeof(b)));
		env_of(kt_env, "SSH_KEY", key, sizeof(key)); /* its own client keys */
		set_opt(&o, "sftp.identity", key);
		fingerprint_of(env_of(kt_env, "SSHD_HOSTKEY_PUB", b, sizeof(b)), fp, sizeof(fp));
		u = url_port(port, w);
		kh = jp_asprintf("%s/kh-%s", home, types[i].type);
		set_opt(&o, "sftp.known-hosts", kh);
		set_opt(&o, "sftp.accept-new-host-key", "false");
		snprintf(want, sizeof(want), "is not known (%s %s); check", types[i].name, fp);
		open_fails(u, &o, JP_E_NOPERM, want);
		snprintf(want, sizeof(want), "ssh-keyscan -p %d -t %s 127.0.0.1", port, types[i].name);
		open_fails(u, &o, JP_E_NOPERM, want);
		/* a host known with a key of another type is not new: accept-new adds nothing */
		{
			char *other = t_read("/", ENV("SSHD_KNOWN_HOSTS_CHANGED") + 1, NULL);
			char *known = jp_asprintf("[127.0.0.1]:%d %s", port, strchr(other, ' ') + 1);

			write_file(kh, known, 0644);
			set_opt(&o, "sftp.accept-new-host-key", "true");
			snprintf(want, sizeof(want), "is known with a key of another type, not %s %s",
			         types[i].name, fp);
			open_fails(u, &o, JP_E_NOPERM, want);
			text = t_read("/", kh + 1, NULL);
			ck_assert_str_eq(text, known);
			free(text);
			free(known);
			free(other);
			unlink(kh);
		}
		set_opt(&o, "sftp.accept-new-host-key", "true");
		d = open_ok(u, &o);
		jp_dest_close(d);
		/* the line added is the server's key, of its type */
		text = t_read("/", kh + 1, NULL);
		line = t_read("/", env_of(kt_env, "SSHD_HOSTKEY_PUB", b, sizeof(b)) + 1, NULL);
		*strchr(strchr(line, ' ') + 1, ' ') = '\0';
		snprintf(want, sizeof(want), "[127.0.0.1]:%d %s\n", port, line);
		ck_assert_str_eq(text, want);
		free(text);
		free(line);
		set_opt(&o, "sftp.accept-new-host-key", "false");
		d = open_ok(u, &o);
		put_ok(d, types[i].type, types[i].name);
		jp_dest_close(d);
		assert_content(types[i].type, types[i].name);
		sshd_stop(kt_dir, "TERM");
		free(kh);
		free(u);
	}
	/* DSA host keys are not accepted: the handshake fails the same way every time (69, not
	 * 75 as before: retrying cannot help) */
	ck_assert_msg(sshd_start(kt_dir, "dsa") == 0, "sshd-start dsa failed");
	load_env(kt_dir, kt_env, sizeof(kt_env));
	u = url_port(atoi(env_of(kt_env, "SSHD_PORT", b, sizeof(b))), w);
	set_opt(&o, "sftp.accept-new-host-key", "true");
	open_fails(u, &o, JP_E_UNAVAILABLE, "no key exchange, host key, cipher or MAC algorithm");
	sshd_stop(kt_dir, "TERM");
	free(u);
}
END_TEST

/* ---- logging in ---- */

static char *
copy_key(const char *from, const char *to_rel, int with_pub)
{
	char *to = t_path(home, to_rel);

	ck_assert_int_eq(run("cp '%s' '%s' && chmod 600 '%s'", from, to, to), 0);
	if (with_pub)
		ck_assert_int_eq(run("cp '%s.pub' '%s.pub'", from, to), 0);
	return to;
}

static pid_t agent_pid;

static void
agent_start(const char *key)
{
	char *sock = t_path(home, "agent.sock");
	int i;

	agent_pid = fork();
	ck_assert_int_ge(agent_pid, 0);
	if (agent_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execlp("ssh-agent", "ssh-agent", "-D", "-a", sock, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && access(sock, F_OK) != 0; i++)
		usleep(50000);
	setenv("SSH_AUTH_SOCK", sock, 1);
	ck_assert_int_eq(run("ssh-add -q '%s' 2>/dev/null", key), 0);
	free(sock);
}

static void
agent_end(void)
{
	if (agent_pid > 0) {
		kill(agent_pid, SIGTERM);
		waitpid(agent_pid, NULL, 0);
		agent_pid = 0;
	}
	unsetenv("SSH_AUTH_SOCK");
}

START_TEST(test_login)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	char *u = url_of(w), *k, want[1024], *pf;

	/* a key that is not authorized */
	set_opt(&o, "sftp.identity", ENV("SSH_KEY_WRONG"));
	snprintf(want, sizeof(want), "refused the login (tried: %s)", ENV("SSH_KEY_WRONG"));
	open_fails(u, &o, JP_E_NOPERM, want);
	open_fails(u, &o, JP_E_NOPERM, "a key with a passphrase needs JOBPUB_SSH_PASSPHRASE_FILE");
	/* a key file that is not there: a setting to fix */
	set_opt(&o, "sftp.identity", "/nonexistent/id");
	open_fails(u, &o, JP_E_CONFIG, "identity file /nonexistent/id: No such file or directory");
	/* nothing at all to log in with */
	set_opt(&o, "sftp.identity", NULL);
	open_fails(u, &o, JP_E_NOPERM, "(tried: no key: give --identity, start an agent");
	/* an agent socket that does not answer is passed over */
	setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock", 1);
	open_fails(u, &o, JP_E_NOPERM, "(tried: no key: give --identity");
	/* the default key files, in OpenSSH's order: an id_rsa (no .pub) is named in the refusal */
	k = copy_key(ENV("SSH_KEY_RSA"), ".ssh/id_rsa", 0);
	snprintf(want, sizeof(want), "(tried: %s); an RSA key was among them", k);
	open_fails(u, &o, JP_E_NOPERM, want);
	free(k);
	k = copy_key(ENV("SSH_KEY"), ".ssh/id_ed25519", 1);
	/* ... and tried even when SSH_AUTH_SOCK names a dead agent (was: 75, "failed closing
	 * the agent socket", the default keys never tried) */
	d = open_w(&o);
	put_ok(d, "by-default-key", "1");
	jp_dest_close(d);
	unsetenv("SSH_AUTH_SOCK");
	d = open_w(&o);
	jp_dest_close(d);
	unlink(k);
	free(k);
	k = t_path(home, ".ssh/id_ed25519.pub");
	unlink(k);
	free(k);

	/* the agent: its key logs in; with only refused keys in it, it is named */
	agent_start(ENV("SSH_KEY"));
	d = open_w(&o);
	put_ok(d, "by-agent", "2");
	jp_dest_close(d);
	agent_end();
	agent_start(ENV("SSH_KEY_WRONG"));
	ck_assert_int_eq(run("ssh-add -q '%s' 2>/dev/null", ENV("SSH_KEY_RSA")), 0);
	set_opt(&o, "sftp.identity", ENV("SSH_KEY_WRONG"));
	snprintf(want, sizeof(want), "(tried: %s, the agent (2 keys)); an RSA key", ENV("SSH_KEY_WRONG"));
	open_fails(u, &o, JP_E_NOPERM, want);
	agent_end();
	assert_content("by-default-key", "1");
	assert_content("by-agent", "2");

	/* no passphrase file (empty name, missing file): the passphrase key is refused quietly */
	set_opt(&o, "sftp.identity", ENV("SSH_KEY_PASS"));
	setenv("JOBPUB_SSH_PASSPHRASE_FILE", "", 1);
	open_fails(u, &o, JP_E_NOPERM, "refused the login");
	setenv("JOBPUB_SSH_PASSPHRASE_FILE", "/nonexistent/passphrase", 1);
	open_fails(u, &o, JP_E_NOPERM, "refused the login");
	ck_assert(strstr(t_mem_text(&logbuf), "passphrase") == NULL);
	unsetenv("JOBPUB_SSH_PASSPHRASE_FILE");
	/* an empty SSH_AUTH_SOCK is no agent; the agent comes before the default files, and an
	 * RSA key file with its .pub is recognised as RSA */
	set_opt(&o, "sftp.identity", NULL);
	k = copy_key(ENV("SSH_KEY_RSA"), ".ssh/id_rsa", 1);
	setenv("SSH_AUTH_SOCK", "", 1);
	snprintf(want, sizeof(want), "(tried: %s); an RSA key was among them", k);
	open_fails(u, &o, JP_E_NOPERM, want);
	agent_start(ENV("SSH_KEY_WRONG"));
	snprintf(want, sizeof(want), "(tried: the agent (1 key), %s); an RSA key", k);
	open_fails(u, &o, JP_E_NOPERM, want);
	agent_end();
	free(k);

	/* a passphrase file others can read is not used */
	set_opt(&o, "sftp.identity", ENV("SSH_KEY_PASS"));
	pf = t_path(home, "pass");
	ck_assert_int_eq(run("cp '%s' '%s' && chmod 644 '%s'", ENV("SSH_KEY_PASSPHRASE_FILE"), pf, pf),
	                 0);
	setenv("JOBPUB_SSH_PASSPHRASE_FILE", pf, 1);
	open_fails(u, &o, JP_E_NOPERM, "refused the login");
	ck_assert(strstr(t_mem_text(&logbuf), "is readable by others: not used as a passphrase") !=
	          NULL);
	ck_assert_int_eq(chmod(pf, 0600), 0);
	d = open_w(&o);
	jp_dest_close(d);
	unsetenv("JOBPUB_SSH_PASSPHRASE_FILE");
	free(pf);
	free(u);
}
END_TEST

/* sftp://ALIAS/... goes where `sftp ALIAS` would: HostName, Port, User, IdentityFile and
 * UserKnownHostsFile from ~/.ssh/config; the URL's user and port win over the config's. */
START_TEST(test_ssh_config)
{
	struct jp_dest_opts o = {.timeout_ms = 10000, .stall_ms = 10000};
	struct jp_dest *d;
	char *cfg, *u;
	struct stat sb;
	struct jp_error err;

	cfg = jp_asprintf("Host other\n  User nobody-else\nHost jp-alias\n"
	                  "  HostName 127.0.0.1\n  Port %s\n  User %s\n  IdentityFile %s\n"
	                  "  UserKnownHostsFile %s\n",
	                  ENV("SSHD_PORT"), sess_user(), ENV("SSH_KEY"), ENV("SSHD_KNOWN_HOSTS"));
	t_write_str(home, ".ssh/config", cfg);
	free(cfg);
	u = jp_asprintf("sftp://jp-alias%s", w);
	d = open_ok(u, &o);
	put_ok(d, "via-alias", "a");
	jp_dest_close(d);
	free(u);
	{
		char *p = t_path(w, "via-alias");
		ck_assert_int_eq(stat(p, &sb), 0);
		ck_assert_uint_eq(sb.st_uid, sess_uid); /* the config's User logged in */
		free(p);
	}
	/* the URL's port wins: a port nothing listens on fails to connect */
	u = jp_asprintf("sftp://jp-alias:1%s", w);
	open_fails(u, &o, JP_E_TEMPFAIL, "cannot connect to 127.0.0.1 port 1");
	free(u);
	/* a config ssh would refuse is refused, named */
	t_write_str(home, ".ssh/config", "Host jp-alias\n  Port 99999\n");
	u = jp_asprintf("sftp://jp-alias%s", w);
	open_fails(u, &o, JP_E_CONFIG, "config:2: Port 99999: not 1-65535");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_check_settings(u, &o, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	/* the config's identity must exist (found before connecting) */
	t_write_str(home, ".ssh/config", "Host jp-alias\n  IdentityFile ~/.ssh/none\n");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_check_settings(u, &o, &err), JP_FAILED);
	ck_assert_msg(err.code == JP_E_CONFIG && strstr(err.msg, "/.ssh/none") != NULL, "%s",
	              err.msg);
	set_opt(&o, "sftp.identity", ENV("SSH_KEY")); /* an explicit one wins */
	jp_error_clear(&err);
	ck_assert_msg(jp_dest_check_settings(u, &o, &err) == JP_OK, "%s", err.msg);
	free(u);
	/* no user anywhere: the local user's name */
	unlink(cfg = t_path(home, ".ssh/config"));
	free(cfg);
	set_opt(&o, "sftp.known-hosts", ENV("SSHD_KNOWN_HOSTS"));
	u = jp_asprintf("sftp://127.0.0.1:%s%s", ENV("SSHD_PORT"), w);
	d = open_ok(u, &o); /* (root: PermitRootLogin prohibit-password) */
	jp_dest_close(d);
	free(u);
}
END_TEST

/* Things the backend refuses before connecting, asked directly (dest.c refuses a password
 * itself, first). */
START_TEST(test_url)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d = NULL;
	struct jp_error err;

	jp_error_clear(&err);
	ck_assert_int_ne(jp_backend_sftp.open("sftp://u:secret@127.0.0.1/x", &o, &d, &err), JP_OK);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	ck_assert_msg(strstr(err.msg, "a password in the URL is refused") != NULL, "%s", err.msg);
	ck_assert(strstr(err.msg, "secret") == NULL);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_backend_sftp.open("sftp://u@127.0.0.1/~/x", &o, &d, &err), JP_OK);
	ck_assert_msg(strstr(err.msg, "give an absolute remote path") != NULL, "%s", err.msg);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_backend_sftp.check("sftp://u@127.0.0.1/~/x", &o, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	/* an ~/.ssh/config that cannot be read (a directory) stops the check and the open */
	{
		char *cfg = t_path(home, ".ssh/config");
		ck_assert_int_eq(mkdir(cfg, 0700), 0);
		free(cfg);
	}
	jp_error_clear(&err);
	ck_assert_int_ne(jp_backend_sftp.check("sftp://u@127.0.0.1/x", &o, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_CONFIG && strstr(err.msg, ".ssh/config") != NULL, "%s",
	              err.msg);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_backend_sftp.open("sftp://u@127.0.0.1/x", &o, &d, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_CONFIG && strstr(err.msg, ".ssh/config") != NULL, "%s",
	              err.msg);
}
END_TEST

/* ---- the network failing ---- */

/* A port on 127.0.0.1 that accepts connections (the kernel does) and never says a word. */
static int
silent_listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

START_TEST(test_connect_failures)
{
	struct jp_dest_opts o = opts_ok();
	char *u;
	int fd, port;
	int64_t t0;

	/* nothing listens: a failure worth retrying */
	fd = silent_listener(&port);
	close(fd);
	u = url_port(port, w);
	open_fails(u, &o, JP_E_TEMPFAIL, "cannot connect to 127.0.0.1 port");
	free(u);
	/* something listens and says nothing: the handshake gives up after the timeout */
	fd = silent_listener(&port);
	u = url_port(port, w);
	o.timeout_ms = 1000;
	t0 = now_ms();
	open_fails(u, &o, JP_E_TEMPFAIL, "SSH handshake with 127.0.0.1 port");
	ck_assert_int_lt(now_ms() - t0, 8000);
	close(fd);
	free(u);
	/* a name that does not resolve */
	u = jp_asprintf("sftp://%s@no-such-host.invalid/x", sess_user());
	{
		struct jp_dest *d = NULL;
		struct jp_error err;

		jp_error_clear(&err);
		ck_assert_int_ne(jp_dest_open(u, &o, &d, &err), JP_OK);
		ck_assert_msg(err.code == JP_E_CONFIG || err.code == JP_E_TEMPFAIL, "%d", err.code);
		ck_assert_msg(strstr(err.msg, "cannot resolve no-such-host.invalid") != NULL, "%s",
		              err.msg);
	}
	free(u);
}
END_TEST

/* The server killed mid-upload: the write fails (75), the temporary is left and said so, the
 * next call reconnects; once the server is back the same file goes through. */
START_TEST(test_server_killed)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d = open_w(&o);
	struct jp_upload *u;
	struct jp_stat st;
	struct jp_error err;
	static char buf[1 << 20];
	int r = JP_OK, i;

	memset(buf, 'k', sizeof(buf));
	u = stage_write(d, "k/big", "start");
	sshd_stop(sshd_dir, "KILL");
	jp_error_clear(&err);
	for (i = 0; i < 64 && r == JP_OK; i++)
		r = jp_upload_write(u, buf, sizeof(buf), &err);
	ck_assert_int_eq(r, JP_FATAL); /* the session is dead: unusable until reconnected */
	ck_assert_msg(err.code == JP_E_TEMPFAIL && strstr(err.msg, "write") != NULL, "%d %s",
	              err.code, err.msg);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_upload_abort(u, &err), JP_OK);
	ck_assert_msg(strstr(err.msg, "is left behind: the connection is gone") != NULL, "%s",
	              err.msg);
	jp_upload_free(u);
	ck_assert_uint_eq(temporaries(), 1);
	/* down: every call tries to reconnect, and says why it cannot */
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stat(d, "k/big", &st, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_TEMPFAIL && strstr(err.msg, "cannot connect") != NULL, "%s",
	              err.msg);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_remove(d, "k/big", &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_list(d, "", collect, &(struct seen){0}, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_digest(d, "k/big", (unsigned char[32]){0}, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	jp_error_clear(&err);
	u = NULL;
	ck_assert_int_ne(jp_dest_stage(d, "k/big", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	jp_dest_cancel(d); /* nothing to cut: no connection */
	/* back: the same destination reconnects; the retry replaces its own leftover */
	ck_assert_int_eq(sshd_start(sshd_dir, "ed25519"), 0);
	put_ok(d, "k/big", "the retry");
	assert_content("k/big", "the retry");
	ck_assert_uint_eq(temporaries(), 0);
	jp_dest_close(d);
}
END_TEST

/* The connection stalls (relay stopped) or is cut (relay killed) at chosen moments. */
static int stop_relay_in_read;

static int
read_fn(void *arg, const void *buf, size_t len)
{
	(void)buf;
	*(size_t *)arg += len;
	if (stop_relay_in_read == 1)
		kill(relay_pid, SIGSTOP);
	return stop_relay_in_read == 2; /* 2: the reader gives up */
}

START_TEST(test_relay_faults)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	struct jp_upload *u;
	struct jp_error err;
	static char buf[1 << 20];
	size_t got = 0;
	char *url;
	int port, r = JP_OK, i;
	int64_t t0;

	memset(buf, 's', sizeof(buf));
	t_write_pattern(w, "big.dat", 48 << 20, 3);
	own("big.dat");
	o.stall_ms = 1500;
	o.timeout_ms = 3000;

	/* stalled mid-upload: the write fails after the stall limit, not later */
	port = relay_start();
	url = url_port(port, w);
	set_opt(&o, "sftp.known-hosts", relay_known_hosts(port));
	d = open_ok(url, &o);
	put_ok(d, "s/first", "through the relay");
	u = stage_write(d, "s/second", "x");
	kill(relay_pid, SIGSTOP);
	t0 = now_ms();
	jp_error_clear(&err);
	for (i = 0; i < 64 && r == JP_OK; i++)
		r = jp_upload_write(u, buf, sizeof(buf), &err);
	ck_assert_int_eq(r, JP_FATAL); /* the session is dead: unusable until reconnected */
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	ck_assert_int_lt(now_ms() - t0, 10000);
	jp_upload_free(u);
	/* the stalled relay accepts no new connection's handshake either */
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stat(d, "s/first", &(struct jp_stat){0}, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	relay_end();
	jp_dest_close(d);
	free(url);

	/* stalled before a read: the open of the file times out */
	port = relay_start();
	url = url_port(port, w);
	set_opt(&o, "sftp.known-hosts", relay_known_hosts(port));
	d = open_ok(url, &o);
	kill(relay_pid, SIGSTOP);
	jp_error_clear(&err);
	r = jp_backend_sftp.read(d, "big.dat", read_fn, &got, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_msg(err.code == JP_E_TEMPFAIL && strstr(err.msg, "open") != NULL, "%s", err.msg);
	relay_end();
	jp_dest_close(d);
	free(url);

	/* stalled during a read: the read times out */
	port = relay_start();
	url = url_port(port, w);
	set_opt(&o, "sftp.known-hosts", relay_known_hosts(port));
	d = open_ok(url, &o);
	stop_relay_in_read = 1;
	got = 0;
	jp_error_clear(&err);
	r = jp_backend_sftp.read(d, "big.dat", read_fn, &got, &err);
	stop_relay_in_read = 0;
	ck_assert_int_ne(r, JP_OK);
	ck_assert_msg(err.code == JP_E_TEMPFAIL && strstr(err.msg, "read") != NULL, "%s", err.msg);
	ck_assert_uint_gt(got, 0);
	ck_assert_uint_lt(got, 48 << 20);
	relay_end();
	jp_dest_close(d);
	free(url);

	/* cut mid-upload: the write fails at once; a reader that gives up is a failure too */
	port = relay_start();
	url = url_port(port, w);
	set_opt(&o, "sftp.known-hosts", relay_known_hosts(port));
	d = open_ok(url, &o);
	stop_relay_in_read = 2;
	jp_error_clear(&err);
	ck_assert_int_ne(jp_backend_sftp.read(d, "big.dat", read_fn, &got, &err), JP_OK);
	ck_assert_msg(strstr(err.msg, "read of") != NULL && strstr(err.msg, "stopped") != NULL,
	              "%s", err.msg);
	stop_relay_in_read = 0;
	u = stage_write(d, "s/third", "x");
	relay_end();
	r = JP_OK;
	t0 = now_ms();
	jp_error_clear(&err);
	for (i = 0; i < 64 && r == JP_OK; i++)
		r = jp_upload_write(u, buf, sizeof(buf), &err);
	ck_assert_int_eq(r, JP_FATAL); /* the session is dead: unusable until reconnected */
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	ck_assert_int_lt(now_ms() - t0, 5000);
	jp_upload_free(u);
	jp_dest_close(d);
	free(url);
	assert_content("s/first", "through the relay");
	ck_assert(!t_exists(w, "s/second"));
	ck_assert(!t_exists(w, "s/third"));
}
END_TEST

/* jp_dest_cancel from another thread ends a write blocked on a silent connection at once. */
struct canceller {
	struct jp_dest *d;
	int delay_ms;
};

static void *
cancel_later(void *arg)
{
	struct canceller *c = arg;

	usleep((useconds_t)c->delay_ms * 1000);
	jp_dest_cancel(c->d);
	return NULL;
}

START_TEST(test_cancel)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	struct jp_upload *u;
	struct jp_error err;
	struct canceller c;
	static char buf[1 << 20];
	pthread_t th;
	char *url;
	int r = JP_OK, i;
	int64_t t0;

	memset(buf, 'c', sizeof(buf));
	o.stall_ms = 30000;
	o.timeout_ms = 30000;
	{
		int port = relay_start();
		url = url_port(port, w);
		set_opt(&o, "sftp.known-hosts", relay_known_hosts(port));
	}
	d = open_ok(url, &o);
	u = stage_write(d, "cancelled", "x");
	kill(relay_pid, SIGSTOP);
	c.d = d;
	c.delay_ms = 500;
	t0 = now_ms();
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_later, &c), 0);
	jp_error_clear(&err);
	for (i = 0; i < 256 && r == JP_OK; i++)
		r = jp_upload_write(u, buf, sizeof(buf), &err);
	pthread_join(th, NULL);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	ck_assert_int_lt(now_ms() - t0, 10000); /* not the 30 s limit */
	jp_upload_free(u);
	relay_end();
	jp_dest_close(d);
	free(url);
}
END_TEST

/* The stall rule: less than 1 KiB/s over a window of stall_ms fails the write. */
START_TEST(test_stall_rule)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	struct jp_upload *u;
	struct jp_error err;
	int exists = 0, replaced = 0;
	char big[4096];

	o.stall_ms = 1000;
	d = open_w(&o);
	/* enough bytes in the window: it starts over */
	memset(big, 'b', sizeof(big));
	u = stage_write(d, "fast", "0123456789");
	usleep(1100000);
	jp_error_clear(&err);
	ck_assert_msg(jp_upload_write(u, big, sizeof(big), &err) == JP_OK, "%s", err.msg);
	finish_ok(u, 10 + sizeof(big));
	ck_assert_msg(jp_upload_commit(u, 0, &exists, &replaced, &err) == JP_OK, "%s", err.msg);
	jp_upload_free(u);
	/* a trickle: 20 bytes in more than a second */
	u = stage_write(d, "slow", "0123456789");
	usleep(1100000);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_upload_write(u, "0123456789", 10, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	ck_assert_msg(strstr(err.msg, "stalled (20 bytes in 1 s)") != NULL, "%s", err.msg);
	jp_upload_free(u);
	ck_assert(t_exists(w, "fast"));
	ck_assert(!t_exists(w, "slow"));
	jp_dest_close(d);
}
END_TEST

/* A reconnect checks the host key again: a server that comes back with another key is
 * refused (77), every time, until the known key is back. */
START_TEST(test_reconnect_host_key)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_dest *d;
	struct jp_stat st;
	struct jp_error err;
	char *kh = t_path(home, "kh"), *good = t_read("/", ENV("SSHD_KNOWN_HOSTS") + 1, NULL);
	char *changed = t_read("/", ENV("SSHD_KNOWN_HOSTS_CHANGED") + 1, NULL);

	write_file(kh, good, 0644);
	set_opt(&o, "sftp.known-hosts", kh);
	d = open_w(&o);
	put_ok(d, "before", "1");
	jp_dest_cancel(d); /* the connection is cut: the next call fails (75) and marks it broken */
	jp_error_clear(&err);
	ck_assert_int_ne(jp_dest_stat(d, "before", &st, &err), JP_OK);
	ck_assert_msg(err.code == JP_E_TEMPFAIL, "%d %s", err.code, err.msg);
	write_file(kh, changed, 0644);
	for (int i = 0; i < 2; i++) { /* then each call reconnects and checks the key */
		jp_error_clear(&err);
		ck_assert_int_ne(jp_dest_stat(d, "before", &st, &err), JP_OK);
		ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "HOST KEY CHANGED") != NULL,
		              "%d %s", err.code, err.msg);
	}
	write_file(kh, good, 0644);
	jp_error_clear(&err);
	ck_assert_msg(jp_dest_stat(d, "before", &st, &err) == JP_OK, "%s", err.msg);
	ck_assert_int_eq(st.exists, 1);
	jp_dest_close(d);
	free(kh);
	free(good);
	free(changed);
}
END_TEST

/* ---- allocation failures ----
 * tests/failalloc.h fails one of jobpub's own allocations (those of libssh2, libcurl and libc
 * never fail); open_memstream, which allocates inside libc, is wrapped here to count as one
 * allocation, through the counted malloc. */
FILE *__real_open_memstream(char **buf, size_t *len);
FILE *__wrap_open_memstream(char **buf, size_t *len);

FILE *
__wrap_open_memstream(char **buf, size_t *len)
{
	void *probe = malloc(1);

	if (probe == NULL)
		return NULL;
	free(probe);
	return __real_open_memstream(buf, len);
}

/* A list callback without check's asserts: they allocate (and check exits when that fails). */
static int
count_keys(void *arg, const char *key, const struct jp_stat *st)
{
	(void)key;
	((struct seen *)arg)->n += st->exists;
	return 0;
}

/* One run of everything a publish, gc and verify ask of the backend; stops at the first
 * failure and says whether one happened (with the error on err). */
static int
oom_cycle(const char *url, const struct jp_dest_opts *o, struct jp_error *err)
{
	struct jp_dest *d = NULL;
	struct jp_upload *u = NULL;
	struct jp_stat st;
	struct seen s = {0};
	unsigned char sha[32] = {0};
	int exists = 0, replaced = 0, r;

	jp_error_clear(err);
	if ((r = jp_dest_check_settings(url, o, err)) != JP_OK ||
	    (r = jp_dest_open(url, o, &d, err)) != JP_OK)
		return r;
	if ((r = jp_dest_stat(d, "o/missing/x", &st, err)) != JP_OK ||
	    (r = jp_dest_stage(d, "o/k", TOKEN, 4, &u, err)) != JP_OK ||
	    (r = jp_upload_write(u, "data", 4, err)) != JP_OK ||
	    (r = jp_upload_finish(u, 4, sha, err)) != JP_OK ||
	    (r = jp_upload_commit(u, 1, &exists, &replaced, err)) != JP_OK ||
	    (r = jp_dest_stat(d, "o/k", &st, err)) != JP_OK ||
	    (r = jp_dest_list(d, "o", count_keys, &s, err)) != JP_OK ||
	    (r = jp_dest_hash(d, "o/k", sha, err)) != JP_OK ||
	    (r = jp_dest_remove(d, "o/gone", err)) != JP_OK)
		goto out;
	r = JP_OK;
out:
	jp_upload_free(u);
	jp_dest_close(d);
	return r;
}

START_TEST(test_out_of_memory)
{
	struct jp_dest_opts o = opts_ok();
	struct jp_error err;
	char *url = url_of(w), *kh;
	long n;
	int r, failures = 0;

	t_write_str(w, "o/k", "old");
	own("o");
	own("o/k");
	/* accept-new into a known_hosts file removed before each run: adding the key too */
	kh = t_path(home, "kh-oom");
	set_opt(&o, "sftp.known-hosts", kh);
	set_opt(&o, "sftp.accept-new-host-key", "true");
	for (n = 1; n < 1000; n++) {
		unlink(kh);
		t_fail_alloc((unsigned long)n);
		r = oom_cycle(url, &o, &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired()) {
			ck_assert_msg(r == JP_OK, "run without a failure: %d %s", err.code, err.msg);
			break;
		}
		if (r != JP_OK) {
			failures++;
			ck_assert_msg(strstr(err.msg, "out of memory") != NULL ||
			                  strstr(err.msg, "Cannot allocate memory") != NULL,
			              "allocation %ld failed: %d %s", n, err.code, err.msg);
		}
		ck_assert_uint_eq(temporaries(), 0);
	}
	ck_assert_msg(n > 20 && n < 1000, "%ld allocations", n);
	fprintf(stderr, "test_out_of_memory: %ld allocations, %d failures\n", n, failures);
	ck_assert_int_gt(failures, 10);
	assert_content("o/k", "data");
	ck_assert(t_exists(home, "kh-oom"));
	free(kh);
	free(url);
}
END_TEST

/* ---- main: the server for every test ---- */

static void
stop_all(void)
{
	relay_end();
	agent_end();
	if (kt_dir != NULL)
		sshd_stop(kt_dir, "KILL");
	if (sshd_dir != NULL)
		sshd_stop(sshd_dir, "KILL");
	if (top != NULL)
		t_rmtree(top);
}

int
main(void)
{
	Suite *s = suite_create("backend-sftp");
	TCase *tc = tcase_create("sftp");
	struct passwd *pw;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	top = t_tempdir();
	chmod(top, 0711);
	sshd_dir = t_path(top, "sshd");
	kt_dir = t_path(top, "sshd-kt");
	rc = sshd_start(sshd_dir, "ed25519");
	if (rc != 0) {
		fprintf(stderr, "test_backend_sftp: sshd-start.sh exited %d (see %s.start.log)\n", rc,
		        sshd_dir);
		stop_all();
		return rc == 99 ? 77 : 99;
	}
	load_env(sshd_dir, env_text, sizeof(env_text));
	if ((pw = getpwnam(sess_user())) == NULL) {
		fprintf(stderr, "test_backend_sftp: no user %s\n", sess_user());
		stop_all();
		return 99;
	}
	sess_uid = pw->pw_uid;
	sess_gid = pw->pw_gid;
	modes_count = sess_uid != 0;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cycle);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_conflict_overwrite);
	tcase_add_test(tc, test_displaced);
	tcase_add_test(tc, test_retry_leftover);
	tcase_add_test(tc, test_paths);
	tcase_add_test(tc, test_permissions);
	tcase_add_test(tc, test_host_keys);
	tcase_add_test(tc, test_host_key_types);
	tcase_add_test(tc, test_login);
	tcase_add_test(tc, test_ssh_config);
	tcase_add_test(tc, test_url);
	tcase_add_test(tc, test_connect_failures);
	tcase_add_test(tc, test_server_killed);
	tcase_add_test(tc, test_relay_faults);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_stall_rule);
	tcase_add_test(tc, test_reconnect_host_key);
	tcase_add_test(tc, test_out_of_memory);
	suite_add_tcase(s, tc);
	rc = t_run(s);
	stop_all();
	return rc;
}
