/*
 * test_sshconfig.c - src/sshconfig.c: Host matching and first-value-wins, as ssh(1) reads it.
 */
#include "config.h"

#include "sshconfig.h"
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
	suite_add_tcase(s, tc);
	return t_run(s);
}
