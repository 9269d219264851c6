/*
 * test_sshconfig.c - src/backends/sshconfig.c: Host matching and first-value-wins, as ssh(1) reads it
 * (spellings, quotes, negations, Include and Match not followed, %-expansions, unreadable
 * files); the algorithm lists offered to libssh2.
 */
#include "config.h"

#include <pwd.h>

#include "sshconfig.h"
#include "failalloc.h"
#include "testlib.h"

static char *dir, *cfg;

static void
setup(void)
{
	dir = t_tempdir();
	cfg = t_path(dir, "config");
	setenv("HOME", dir, 1);
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
	free(cfg);
}

static const char config[] =
	"# global defaults come first only when written first\n"
	"  ServerAliveInterval 30\n"
	"Host archive archive.example.org\n"
	"    HostName 10.0.0.7\n"
	"    Port=2222\n"
	"    User pdr\n"
	"    IdentityFile ~/.ssh/id_archive\n"
	"    IdentityFile ~/.ssh/second\n"
	"    UserKnownHostsFile \"%d/.ssh/kh_%h\" /etc/ssh/other\n"
	"Host *.cluster !login.cluster\n"
	"    user node\n"
	"Match host nothing\n"
	"    User ignored\n"
	"Host *\n"
	"    User fallback\n"
	"    Port 22\n";

START_TEST(test_alias)
{
	struct jp_sshconf c;
	char *want;

	t_write_str(dir, "config", config);
	ck_assert_int_eq(jp_sshconf_read(cfg, "archive", &c), 0);
	ck_assert_str_eq(c.hostname, "10.0.0.7");
	ck_assert_int_eq(c.port, 2222);
	ck_assert_str_eq(c.user, "pdr");
	want = t_path(dir, ".ssh/id_archive");
	ck_assert_str_eq(c.identity, want);
	free(want);
	want = t_path(dir, ".ssh/kh_archive");
	ck_assert_str_eq(c.known_hosts, want);
	free(want);
	jp_sshconf_free(&c);
}
END_TEST

START_TEST(test_patterns)
{
	struct jp_sshconf c;

	t_write_str(dir, "config", config);
	/* *.cluster matches, and Match blocks are skipped. */
	ck_assert_int_eq(jp_sshconf_read(cfg, "n17.cluster", &c), 0);
	ck_assert_ptr_null(c.hostname);
	ck_assert_str_eq(c.user, "node");
	ck_assert_int_eq(c.port, 22);
	jp_sshconf_free(&c);
	/* the negated pattern excludes login.cluster from that block */
	ck_assert_int_eq(jp_sshconf_read(cfg, "login.cluster", &c), 0);
	ck_assert_str_eq(c.user, "fallback");
	jp_sshconf_free(&c);
}
END_TEST

START_TEST(test_missing_file)
{
	struct jp_sshconf c;

	ck_assert_int_eq(jp_sshconf_read(cfg, "archive", &c), 0);
	ck_assert_ptr_null(c.hostname);
	ck_assert_ptr_null(c.user);
	ck_assert_int_eq(c.port, 0);
	/* NULL path: $HOME/.ssh/config */
	t_write_str(dir, ".ssh/config", "Host a\n  HostName b\n");
	ck_assert_int_eq(jp_sshconf_read(NULL, "a", &c), 0);
	ck_assert_str_eq(c.hostname, "b");
	jp_sshconf_free(&c);
}
END_TEST

START_TEST(test_expand)
{
	char *s = jp_ssh_expand("~/x/%h/%%/%d", "h1"), *want;

	if (asprintf(&want, "%s/x/h1/%%/%s", dir, dir) < 0)
		ck_abort();
	ck_assert_str_eq(s, want);
	free(s);
	free(want);
}
END_TEST

/* A line longer than any buffer is one line: the tail of a long comment is not a directive. */
START_TEST(test_long_line)
{
	struct jp_sshconf c;
	size_t n = 4095; /* the old 4096-byte buffer ended the first piece here */
	char *text = malloc(n + 64);

	ck_assert_ptr_nonnull(text);
	memcpy(text, "# ", 2);
	memset(text + 2, 'x', n - 2);
	strcpy(text + n, " HostName evil.example.org\nHost a\n  User u\n");
	t_write_str(dir, "config", text);
	free(text);
	ck_assert_int_eq(jp_sshconf_read(cfg, "a", &c), 0);
	ck_assert_ptr_null(c.hostname);
	ck_assert_str_eq(c.user, "u");
	jp_sshconf_free(&c);
}
END_TEST

/* A Port that is not 1-65535 is refused (EINVAL), as ssh refuses it: 70000 was cut to 4464. */
START_TEST(test_bad_port)
{
	static const char *const bad[] = {"70000", "-1", "0", "22x", "", "99999999999999999999"};
	struct jp_sshconf c;
	char text[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "Host a\n  User u\n  Port %s\n", bad[i]);
		t_write_str(dir, "config", text);
		errno = 0;
		ck_assert_msg(jp_sshconf_read(cfg, "a", &c) == -1, "Port '%s' accepted", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_ptr_null(c.user);
		/* The message names the file, the line and the field (was: "Invalid argument"). */
		snprintf(text, sizeof(text), "%s:3: Port %s: not 1-65535", cfg, bad[i]);
		ck_assert_str_eq(c.error, text);
	}
	/* A config that cannot be read: the file and the reason. */
	ck_assert_int_eq(jp_sshconf_read(dir, "a", &c), -1);
	snprintf(text, sizeof(text), "%s: %s", dir, strerror(EISDIR));
	ck_assert_str_eq(c.error, text);
	/* Another host's bad Port is not this host's business; 65535 is a port. */
	t_write_str(dir, "config", "Host b\n  Port 70000\nHost a\n  Port 65535\n");
	ck_assert_int_eq(jp_sshconf_read(cfg, "a", &c), 0);
	ck_assert_int_eq(c.port, 65535);
	jp_sshconf_free(&c);
}
END_TEST

/* Include and Match are not followed: what an included file or a Match block says is not
 * read, and a later Host line applies again. */
START_TEST(test_include_match)
{
	struct jp_sshconf c;

	t_write_str(dir, "other", "Host *\n  HostName included.example.org\n  User inc\n");
	t_write_str(dir, "config",
	            "Include other\n"
	            "Include ~/other\n"
	            "Host a\n"
	            "  Include other\n"
	            "Match all\n"
	            "  User from-match\n"
	            "  Port 2200\n"
	            "Host a\n"
	            "  User after-match\n");
	ck_assert_int_eq(jp_sshconf_read(cfg, "a", &c), 0);
	ck_assert_ptr_null(c.hostname);
	ck_assert_str_eq(c.user, "after-match");
	ck_assert_int_eq(c.port, 0);
	jp_sshconf_free(&c);
	/* a host no Host line names gets nothing at all */
	ck_assert_int_eq(jp_sshconf_read(cfg, "b", &c), 0);
	ck_assert_ptr_null(c.user);
	ck_assert_ptr_null(c.hostname);
	jp_sshconf_free(&c);
}
END_TEST

/* The spellings ssh accepts: any case, "Key=value", "Key = value", tabs, quotes (closed or
 * not), negation-only patterns, the first value winning, HostName with %h. */
START_TEST(test_syntax)
{
	struct jp_sshconf c;
	char *want;

	t_write_str(dir, "config",
	            "Host\n"
	            "  User no-pattern\n"
	            "Host !a\n"
	            "  User negated-only\n"
	            "HOST\ta \t b\n"
	            "  HOSTNAME = %h.example.org\n"
	            "  port\t= 2022\n"
	            "  Port 2023\n"
	            "  user=\"u\"\n"
	            "  IdentityFile \"~/my keys/id\" ignored\n"
	            "  UserKnownHostsFile \"~/kh with space\n"
	            "  HostName second.example.org\n"
	            "Host=c\n"
	            "  User c-user\n");
	ck_assert_int_eq(jp_sshconf_read(cfg, "a", &c), 0);
	ck_assert_str_eq(c.hostname, "a.example.org");
	ck_assert_int_eq(c.port, 2022);
	ck_assert_str_eq(c.user, "u");
	want = t_path(dir, "my keys/id");
	ck_assert_str_eq(c.identity, want);
	free(want);
	want = t_path(dir, "kh with space");
	ck_assert_str_eq(c.known_hosts, want);
	free(want);
	jp_sshconf_free(&c);
	/* "Host=c" is a Host line too; "Host !a" alone, or "Host" alone, matches nothing */
	ck_assert_int_eq(jp_sshconf_read(cfg, "c", &c), 0);
	ck_assert_str_eq(c.user, "c-user");
	ck_assert_ptr_null(c.hostname);
	jp_sshconf_free(&c);
}
END_TEST

/* The expansions: %u is the local user, an unknown %x and a trailing % stay as written, "~"
 * alone is the home, "~user" is not expanded; without HOME the password database's home. */
START_TEST(test_expand_more)
{
	struct passwd *pw = getpwuid(getuid());
	char *s, *want;

	ck_assert_ptr_nonnull(pw);
	s = jp_ssh_expand("%u-%x-%", "h");
	if (asprintf(&want, "%s-%%x-%%", pw->pw_name) < 0)
		ck_abort();
	ck_assert_str_eq(s, want);
	free(s);
	free(want);
	s = jp_ssh_expand("~", "h");
	ck_assert_str_eq(s, dir);
	free(s);
	s = jp_ssh_expand("~root/x", "h");
	ck_assert_str_eq(s, "~root/x");
	free(s);
	unsetenv("HOME");
	s = jp_ssh_expand("~/k", "h");
	if (asprintf(&want, "%s/k", pw->pw_dir) < 0)
		ck_abort();
	ck_assert_str_eq(s, want);
	free(s);
	free(want);
	setenv("HOME", "", 1);
	s = jp_ssh_expand("%d", "h");
	ck_assert_str_eq(s, pw->pw_dir);
	free(s);
	setenv("HOME", dir, 1);
}
END_TEST

/* A config that cannot be opened (not ENOENT) is an error naming it; a missing one is not. */
START_TEST(test_open_errors)
{
	struct jp_sshconf c;
	char *p, text[1024];

	t_write_str(dir, "file", "x");
	p = t_path(dir, "file/config");
	errno = 0;
	ck_assert_int_eq(jp_sshconf_read(p, "a", &c), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	snprintf(text, sizeof(text), "%s: %s", p, strerror(ENOTDIR));
	ck_assert_str_eq(c.error, text);
	ck_assert_ptr_null(c.hostname);
	free(p);
	p = t_path(dir, "nothere/config");
	ck_assert_int_eq(jp_sshconf_read(p, "a", &c), 0);
	ck_assert_str_eq(c.error, "");
	free(p);
}
END_TEST

/* Only what libssh2 supports, in our order: libssh2 1.10 lacks rsa-sha2-* and the AEAD
 * ciphers, and corrupts its own list (overlapping memcpy) when offered them. */
START_TEST(test_methods)
{
	static const char *const algs[] = {"ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa",
	                                   "aes128-ctr", "aes256-ctr"};
	static const struct {
		const char *pref, *want;
		int n;
	} cases[] = {
		{"ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
		 "ssh-ed25519,ecdsa-sha2-nistp256,ssh-rsa", 5},
		{"aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr",
		 "aes128-ctr,aes256-ctr", 5},
		{"rsa-sha2-512", "", 5},                    /* nothing in common */
		{"ssh-rsa,,ssh-rsa,aes128-ctr", "ssh-rsa,aes128-ctr", 5}, /* empty, duplicate */
		{"aes128-ctr-x,aes128-ct,aes128-ctr", "aes128-ctr", 5},   /* whole names only */
		{"ssh-ed25519", "", 0},                      /* libssh2 reported nothing */
		{"", "", 5},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = jp_ssh_methods(cases[i].pref, algs, cases[i].n);

		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strcmp(s, cases[i].want) == 0, "'%s': got '%s', want '%s'",
		              cases[i].pref, s, cases[i].want);
		free(s);
	}
}
END_TEST

/* Out of memory: an error (ENOMEM, naming the file), never a result missing a value (a lost
 * HostName sent the connection to the alias itself).  tests/failalloc.h fails jobpub's own
 * allocations; open_memstream (jp_ssh_expand's) counts as one, through the counted malloc. */
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

START_TEST(test_out_of_memory)
{
	struct jp_sshconf c;
	char *kh = t_path(dir, ".ssh/kh_archive"), *id = t_path(dir, ".ssh/id_archive"), *s;
	unsigned long n;
	int r, failures = 0;

	t_write_str(dir, ".ssh/config", config);
	t_write_str(dir, "config", config);
	for (n = 1; n < 200; n++) {
		/* odd n: $HOME/.ssh/config (one allocation more), even n: the named file */
		t_fail_alloc((n + 1) / 2);
		errno = 0;
		r = jp_sshconf_read(n % 2 ? NULL : cfg, "archive", &c);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired()) {
			ck_assert_int_eq(r, 0);
			jp_sshconf_free(&c);
			if (n % 2 == 0)
				break;
			continue;
		}
		if (r != 0) {
			failures++;
			ck_assert_int_eq(errno, ENOMEM);
			ck_assert_msg(strstr(c.error, strerror(ENOMEM)) != NULL, "%s", c.error);
			ck_assert_ptr_null(c.hostname);
			continue;
		}
		ck_assert_str_eq(c.hostname, "10.0.0.7");
		ck_assert_str_eq(c.user, "pdr");
		ck_assert_str_eq(c.identity, id);
		ck_assert_str_eq(c.known_hosts, kh);
		ck_assert_int_eq(c.port, 2222);
		jp_sshconf_free(&c);
	}
	ck_assert_int_gt(failures, 8);
	jp_sshconf_free(&c);
	/* the other allocators */
	t_fail_alloc(1);
	s = jp_ssh_expand("~/x", "h");
	t_fail_alloc(0);
	ck_assert_ptr_null(s);
	t_fail_alloc(1);
	s = jp_ssh_methods("ssh-ed25519", (const char *const[]){"ssh-ed25519"}, 1);
	t_fail_alloc(0);
	ck_assert_ptr_null(s);
	free(kh);
	free(id);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sshconfig");
	TCase *tc = tcase_create("read");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_alias);
	tcase_add_test(tc, test_patterns);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_expand);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_bad_port);
	tcase_add_test(tc, test_methods);
	tcase_add_test(tc, test_include_match);
	tcase_add_test(tc, test_syntax);
	tcase_add_test(tc, test_expand_more);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_out_of_memory);
	suite_add_tcase(s, tc);
	return t_run(s);
}
