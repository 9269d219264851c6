/*
 * test_log.c - src/core/log.c: text lines ("jobpub: ..."), quiet and verbose levels, JSON lines (one
 * valid object per line with the event's fields), and the progress line, which is drawn only
 * on a terminal (a pseudo-terminal here) and never into a file.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "testlib.h"

/* s starts with the string literal lit. */
#define STARTS(s, lit) (strncmp((s), (lit), sizeof(lit) - 1) == 0)

static struct t_mem mem;

static void
setup(void)
{
	t_mem_open(&mem);
}

static void
teardown(void)
{
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	t_mem_close(&mem);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Number of '\n' in s. */
static int
lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Checks every line of s is one valid JSON object. */
static void
assert_json_lines(const char *s)
{
	const char *nl;

	for (; *s; s = nl + 1) {
		nl = strchr(s, '\n');
		ck_assert_msg(nl != NULL, "unterminated line: %s", s);
		ck_assert_msg(*s == '{' && nl[-1] == '}', "not an object: %.*s", (int)(nl - s), s);
		ck_assert_msg(t_json_valid(s, (size_t)(nl - s)), "invalid JSON: %.*s", (int)(nl - s), s);
	}
}

/* The JSON line after its "time" member: `{"time":"YYYY-MM-DDTHH:MM:SSZ",` is checked and
 * skipped, and the rest returned. */
static const char *
after_time(const char *line)
{
	const char *pre = "{\"time\":\"";
	size_t i;

	ck_assert_msg(strncmp(line, pre, strlen(pre)) == 0, "no time first: %s", line);
	line += strlen(pre);
	for (i = 0; i < 20; i++)
		ck_assert_msg(("dddd-dd-ddTdd:dd:ddZ"[i] == 'd' && line[i] >= '0' && line[i] <= '9') ||
		                  "dddd-dd-ddTdd:dd:ddZ"[i] == line[i],
		              "bad time in %s", line);
	ck_assert_msg(strncmp(line + 20, "\",", 2) == 0, "bad time end: %s", line);
	return line + 22;
}

/* The line at `line`, after its time, starts with want (which ends with its '\n'). */
static void
assert_rest(const char *line, const char *want)
{
	const char *rest = after_time(line);

	ck_assert_msg(strncmp(rest, want, strlen(want)) == 0, "got:  %.*s\nwant: %s",
	              (int)strcspn(rest, "\n"), rest, want);
}

/* ---- text ---- */

START_TEST(test_text_lines)
{
	jp_log_setup(JP_LOG_TEXT, 0, mem.fp);
	ck_assert_int_eq(jp_log_format(), JP_LOG_TEXT);
	jp_log_info("published %d files (%s)", 3, "1.5 MiB");
	jp_log_warn("output %s skipped", "chemchk");
	jp_log_error("posix: open %s: %s", "/x", "Permission denied");
	jp_log_verbose("not shown at normal verbosity");
	ck_assert_str_eq(t_mem_text(&mem), "jobpub: published 3 files (1.5 MiB)\n"
	                                   "jobpub: warning: output chemchk skipped\n"
	                                   "jobpub: posix: open /x: Permission denied\n");
}
END_TEST

START_TEST(test_text_verbose)
{
	jp_log_setup(JP_LOG_TEXT, 1, mem.fp);
	jp_log_verbose("staging %s", "a");
	jp_log_info("i");
	ck_assert_str_eq(t_mem_text(&mem), "jobpub: staging a\njobpub: i\n");
}
END_TEST

START_TEST(test_text_quiet)
{
	jp_log_setup(JP_LOG_TEXT, -1, mem.fp);
	jp_log_info("info");
	jp_log_warn("warn");
	jp_log_verbose("debug");
	ck_assert_str_eq(t_mem_text(&mem), "");
	jp_log_error("required output %s is missing", "textout");
	ck_assert_str_eq(t_mem_text(&mem), "jobpub: required output textout is missing\n");
}
END_TEST

/* A message longer than the line buffer is cut, still one line. */
START_TEST(test_text_long_message)
{
	char *big = malloc(5000);
	const char *out;

	memset(big, 'x', 4999);
	big[4999] = '\0';
	jp_log_setup(JP_LOG_TEXT, 0, mem.fp);
	jp_log_info("%s", big);
	out = t_mem_text(&mem);
	ck_assert(STARTS(out, "jobpub: xxxx"));
	ck_assert_int_eq(lines(out), 1);
	ck_assert_int_eq(out[strlen(out) - 1], '\n');
	free(big);
}
END_TEST

START_TEST(test_text_event)
{
	struct jp_event ev = {"committed", "42", "textout", "pdroutput/TEXTOUT",
	                      "file:///archive/pdrgrid/TEXTOUT42", 1234, "ab12", 7, 0, NULL};
	struct jp_event bare = {"published", "42", NULL, NULL, NULL, -1, NULL, -1, 0, "done"};

	/* Normal verbosity: the command prints its own summary, events stay silent. */
	jp_log_setup(JP_LOG_TEXT, 0, mem.fp);
	jp_log_event(&ev);
	ck_assert_str_eq(t_mem_text(&mem), "");
	/* Verbose: per-file events only, one readable line. */
	jp_log_setup(JP_LOG_TEXT, 1, mem.fp);
	jp_log_event(&bare);
	ck_assert_str_eq(t_mem_text(&mem), "");
	jp_log_event(&ev);
	ev.event = "failed";
	ev.error_class = JP_E_NOPERM;
	ev.message = "posix: denied";
	ev.sha256 = NULL;
	ev.bytes = -1;
	ev.job = NULL;
	jp_log_event(&ev);
	ck_assert_str_eq(t_mem_text(&mem),
	                 "jobpub: job 42: committed textout pdroutput/TEXTOUT -> "
	                 "file:///archive/pdrgrid/TEXTOUT42 (1.2 KiB) sha256 ab12\n"
	                 "jobpub: job ?: failed textout pdroutput/TEXTOUT -> "
	                 "file:///archive/pdrgrid/TEXTOUT42: posix: denied\n");
}
END_TEST

/* ---- JSON ---- */

START_TEST(test_json_messages)
{
	const char *out, *l2, *l3;

	jp_log_setup(JP_LOG_JSON, 0, mem.fp);
	ck_assert_int_eq(jp_log_format(), JP_LOG_JSON);
	jp_log_info("published %d files", 2);
	jp_log_warn("file \"%s\"\nhas\ttabs", "a\\b");
	jp_log_error("boom");
	jp_log_verbose("hidden");
	out = t_mem_text(&mem);
	ck_assert_int_eq(lines(out), 3);
	assert_json_lines(out);
	assert_rest(out, "\"level\":\"info\",\"message\":\"published 2 files\"}\n");
	l2 = strchr(out, '\n') + 1;
	assert_rest(l2, "\"level\":\"warning\",\"message\":\"file \\\"a\\\\b\\\"\\nhas\\ttabs\"}\n");
	l3 = strchr(l2, '\n') + 1;
	assert_rest(l3, "\"level\":\"error\",\"message\":\"boom\"}\n");
	ck_assert_int_eq(l3[strlen(l3) - 1], '\n');
}
END_TEST

START_TEST(test_json_quiet)
{
	struct jp_event ok = {"committed", "42", "a", NULL, NULL, 5, NULL, -1, 0, NULL};
	struct jp_event bad = {"failed", "42", "a", NULL, NULL, -1, NULL, -1, JP_E_TEMPFAIL, "busy"};
	const char *out, *l2;

	jp_log_setup(JP_LOG_JSON, -1, mem.fp);
	jp_log_info("info");
	jp_log_warn("warn");
	jp_log_event(&ok);
	ck_assert_str_eq(t_mem_text(&mem), "");
	jp_log_error("err");
	jp_log_event(&bad);
	out = t_mem_text(&mem);
	ck_assert_int_eq(lines(out), 2);
	assert_json_lines(out);
	l2 = strchr(out, '\n') + 1;
	assert_rest(out, "\"level\":\"error\",\"message\":\"err\"}\n");
	ck_assert_str_eq(after_time(l2), "\"event\":\"failed\",\"job\":\"42\",\"output\":\"a\","
	                                 "\"error_class\":\"tempfail\",\"exit_code\":75,"
	                                 "\"message\":\"busy\"}\n");
}
END_TEST

START_TEST(test_json_event_all_fields)
{
	struct jp_event ev = {"committed", "42", "textout", "pdroutput/TEXT\"OUT",
	                      "file:///archive/pdrgrid/TEXTOUT42",
	                      1234,
	                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	                      17,
	                      JP_E_NOPERM,
	                      "line1\nline2"};
	const char *out;

	jp_log_setup(JP_LOG_JSON, 0, mem.fp);
	jp_log_event(&ev);
	out = t_mem_text(&mem);
	ck_assert_int_eq(lines(out), 1);
	assert_json_lines(out);
	ck_assert_str_eq(after_time(out),
	                 "\"event\":\"committed\",\"job\":\"42\",\"output\":\"textout\","
	                 "\"local\":\"pdroutput/TEXT\\\"OUT\","
	                 "\"remote\":\"file:///archive/pdrgrid/TEXTOUT42\",\"bytes\":1234,"
	                 "\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
	                 "\"duration_ms\":17,\"error_class\":\"noperm\",\"exit_code\":77,"
	                 "\"message\":\"line1\\nline2\"}\n");
}
END_TEST

/* Absent fields (NULL, -1, class 0) are left out; bytes 0 is a real size and kept. */
START_TEST(test_json_event_minimal)
{
	struct jp_event ev = {"skipped", NULL, NULL, NULL, NULL, -1, NULL, -1, 0, NULL};
	struct jp_event zero = {"staged", "7", NULL, NULL, NULL, 0, NULL, 0, 0, NULL};
	const char *out;

	jp_log_setup(JP_LOG_JSON, 0, mem.fp);
	jp_log_event(&ev);
	jp_log_event(&zero);
	out = t_mem_text(&mem);
	assert_json_lines(out);
	ck_assert_int_eq(lines(out), 2);
	assert_rest(out, "\"event\":\"skipped\"}\n");
	ck_assert_str_eq(after_time(strchr(out, '\n') + 1),
	                 "\"event\":\"staged\",\"job\":\"7\",\"bytes\":0,\"duration_ms\":0}\n");
}
END_TEST

/* ---- progress ---- */

/* A memstream is not a terminal: nothing is drawn, even after the first second. */
START_TEST(test_progress_silent_without_tty)
{
	jp_log_setup(JP_LOG_TEXT, 1, mem.fp);
	jp_progress_begin(1000);
	jp_progress_add(100);
	sleep_ms(1100);
	jp_progress_add(100);
	sleep_ms(300);
	jp_progress_add(100);
	jp_log_info("between");
	jp_progress_end();
	ck_assert_str_eq(t_mem_text(&mem), "jobpub: between\n");
}
END_TEST

/* Opens a pseudo-terminal: *master for reading (non-blocking), a FILE on the slave. */
static FILE *
open_pty(int *master)
{
	FILE *fp;
	int s;

	*master = posix_openpt(O_RDWR | O_NOCTTY);
	if (*master < 0 || grantpt(*master) != 0 || unlockpt(*master) != 0)
		ck_abort_msg("no pseudo-terminal: %s", strerror(errno));
	if ((s = open(ptsname(*master), O_RDWR | O_NOCTTY)) < 0)
		ck_abort_msg("open %s: %s", ptsname(*master), strerror(errno));
	fcntl(*master, F_SETFL, O_NONBLOCK);
	if ((fp = fdopen(s, "w")) == NULL)
		ck_abort_msg("fdopen: %s", strerror(errno));
	return fp;
}

/* Everything the slave side wrote so far, NUL-terminated, in buf. */
static const char *
read_pty(int master, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	sleep_ms(50);
	while (n + 1 < len && (r = read(master, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return buf;
}

/* Progress on a terminal (fmt, verbosity); returns what was drawn, in buf.  The FILE is
 * unbuffered, as stderr is. */
static const char *
progress_on_tty(enum jp_log_format fmt, int verbosity, char *buf, size_t len)
{
	int master;
	FILE *fp = open_pty(&master);

	setvbuf(fp, NULL, _IONBF, 0);
	jp_log_setup(fmt, verbosity, fp);
	jp_progress_begin(4096);
	jp_progress_add(1024);
	sleep_ms(1100);
	jp_progress_add(1024);
	jp_progress_end();
	read_pty(master, buf, len);
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	fclose(fp);
	close(master);
	return buf;
}

/* The control case for the test above: on a terminal the line is drawn and cleared. */
START_TEST(test_progress_drawn_on_tty)
{
	char buf[4096];
	const char *out = progress_on_tty(JP_LOG_TEXT, 0, buf, sizeof(buf));

	ck_assert_msg(STARTS(out, "\r\033[Kjobpub: 2.0 KiB / 4.0 KiB  "), "drawn: %s", out);
	ck_assert_msg(strstr(out, "/s  ETA ") != NULL, "no ETA: %s", out);
	ck_assert_msg(strlen(out) > 4 && strcmp(out + strlen(out) - 4, "\r\033[K") == 0,
	              "not cleared at the end: %s", out);
}
END_TEST

/* Like every other writer in log.c, the end of the progress line reaches the terminal at once,
 * whatever buffering the FILE given to jp_log_setup has. */
START_TEST(test_progress_end_flushes)
{
	char buf[4096];
	const char *out;
	int master;
	FILE *fp = open_pty(&master);

	setvbuf(fp, NULL, _IOFBF, 1024);
	jp_log_setup(JP_LOG_TEXT, 0, fp);
	jp_progress_begin(100);
	sleep_ms(1100);
	jp_progress_add(10);
	jp_progress_end();
	out = read_pty(master, buf, sizeof(buf));
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	fclose(fp);
	close(master);
	ck_assert_msg(STARTS(out, "\r\033[Kjobpub: 10 B / 100 B  "), "not drawn: %s", out);
	ck_assert_msg(strlen(out) > 4 && strcmp(out + strlen(out) - 4, "\r\033[K") == 0,
	              "progress line left on the terminal after jp_progress_end: %s", out);
}
END_TEST

START_TEST(test_progress_quiet_or_json_on_tty)
{
	char buf[4096];

	ck_assert_str_eq(progress_on_tty(JP_LOG_TEXT, -1, buf, sizeof(buf)), "");
	ck_assert_str_eq(progress_on_tty(JP_LOG_JSON, 0, buf, sizeof(buf)), "");
}
END_TEST

/* A message while the line is drawn clears it first, so text does not run into it. */
START_TEST(test_progress_cleared_by_message)
{
	char buf[4096];
	const char *out, *msg;
	int master;
	FILE *fp = open_pty(&master);

	jp_log_setup(JP_LOG_TEXT, 0, fp);
	jp_progress_begin(100);
	sleep_ms(1100);
	jp_progress_add(10);
	jp_log_warn("slow");
	jp_progress_end();
	out = read_pty(master, buf, sizeof(buf));
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	fclose(fp);
	close(master);
	msg = strstr(out, "jobpub: warning: slow");
	ck_assert_msg(msg != NULL && msg - out > 4 && strncmp(msg - 4, "\r\033[K", 4) == 0,
	              "message not after a clear: %s", out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("log");
	TCase *tc;

	tc = tcase_create("text");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_text_lines);
	tcase_add_test(tc, test_text_verbose);
	tcase_add_test(tc, test_text_quiet);
	tcase_add_test(tc, test_text_long_message);
	tcase_add_test(tc, test_text_event);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_messages);
	tcase_add_test(tc, test_json_quiet);
	tcase_add_test(tc, test_json_event_all_fields);
	tcase_add_test(tc, test_json_event_minimal);
	suite_add_tcase(s, tc);

	tc = tcase_create("progress");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_progress_silent_without_tty);
	tcase_add_test(tc, test_progress_drawn_on_tty);
	tcase_add_test(tc, test_progress_end_flushes);
	tcase_add_test(tc, test_progress_quiet_or_json_on_tty);
	tcase_add_test(tc, test_progress_cleared_by_message);
	suite_add_tcase(s, tc);

	return t_run(s);
}
