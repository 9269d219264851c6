#!/bin/sh
# Help and usage: `jobpub --help`, `jobpub help CMD` and `jobpub CMD --help` show the same
# usage string that usage errors print; --version prints the version; unknown commands and
# options and a missing --job exit 64 with the usage on stderr.  doc/jobpub-CMD.1 against --help:
# tests/cmd-manpages.sh.
. "$(dirname "$0")/lib.sh"

# Every command `jobpub help` lists (a new command is checked without editing this list).
COMMANDS=$("$JOBPUB" help | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
	on && /^  jobpub / { print $2 }')
[ -n "$COMMANDS" ] || hard_error "no command in the list of 'jobpub help'"

# usage_of CMD: the usage block of `jobpub help CMD` (from "usage:" to the first empty line).
usage_of() {
	"$JOBPUB" help "$1" | awk '/^usage: / { on = 1 } on && /^$/ { exit } on'
}

# usage_in FILE: the usage block at the end of a usage error.
usage_in() {
	awk '/^usage: / { on = 1 } on' "$1"
}

help_equals_dash_help() {
	for c in $COMMANDS; do
		expect_rc 0 "$JOBPUB" help "$c"
		cp "$OUT" "$T/help.$c"
		assert_grep "^usage: jobpub $c( |$)" "$OUT"
		expect_rc 0 "$JOBPUB" "$c" --help
		cmp -s "$OUT" "$T/help.$c" || {
			diff "$T/help.$c" "$OUT" >&2 || true
			fail "'jobpub help $c' and 'jobpub $c --help' differ"
		}
		[ ! -s "$ERR" ] || fail "'jobpub $c --help' wrote to stderr"
	done
	# publish --help documents every option of the synopsis.
	for o in --job --manifest --workdir --db --dest --set --dry-run --overwrite --db-timeout \
		--log-format --quiet --verbose --help; do
		assert_grep "^ +(-[a-z], )?$o\b" "$T/help.publish"
	done
}

usage_errors_print_the_same_usage() {
	usage_of publish >"$T/u.publish"
	[ -s "$T/u.publish" ] || fail "no usage in 'jobpub help publish'"
	for args in "publish --bogus" "publish -x" "publish --manifest m.yaml" \
		"publish --job 1 --manifest m.yaml extra" "publish --log-format xml --job 1 --manifest m" \
		"publish --db-timeout soon --job 1 --manifest m" "publish --job"; do
		# shellcheck disable=SC2086 # word splitting intended
		expect_rc 64 "$JOBPUB" $args
		assert_grep '^jobpub: ' "$ERR"
		usage_in "$ERR" >"$T/u.err"
		cmp -s "$T/u.publish" "$T/u.err" || {
			diff "$T/u.publish" "$T/u.err" >&2 || true
			fail "'jobpub $args': the usage differs from 'jobpub help publish'"
		}
		[ ! -s "$OUT" ] || fail "'jobpub $args' wrote to stdout"
	done
	expect_rc 64 "$JOBPUB" publish --manifest m.yaml
	assert_grep '--job' "$ERR"
	# --job alone is not a usage error: it asks for the job's spool entry.
	JOBPUB_SPOOL="$T/spool" expect_rc 66 "$JOBPUB" publish --job 1
	assert_grep 'no spool entry for job 1' "$ERR"
	usage_of status >"$T/u.status"
	expect_rc 64 "$JOBPUB" status --bogus
	usage_in "$ERR" >"$T/u.err"
	cmp -s "$T/u.status" "$T/u.err" || fail "'jobpub status --bogus': usage differs"
	usage_of manifest >"$T/u.manifest"
	expect_rc 64 "$JOBPUB" manifest check
	usage_in "$ERR" >"$T/u.err"
	cmp -s "$T/u.manifest" "$T/u.err" || fail "'jobpub manifest check': usage differs"
}

# `jobpub --help` (the command list) shows each command's usage string too.
top_help_shows_every_usage() {
	expect_rc 0 "$JOBPUB" --help
	cp "$OUT" "$T/top"
	expect_rc 0 "$JOBPUB" help
	cmp -s "$OUT" "$T/top" || fail "'jobpub --help' and 'jobpub help' differ"
	assert_grep '^usage: ' "$T/top"
	for c in $COMMANDS; do
		assert_grep "\b$c\b" "$T/top"
		first=$(usage_of "$c" | head -n 1 | sed 's/^usage: //')
		assert_grep_fixed "$first" "$T/top"
	done
	# Summaries (indented under each usage) are whole sentences, not the first line of a
	# longer text.
	awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
		on && /^      [^ ]/ && !/\.$/ { print; bad = 1 } END { exit bad }' "$T/top" >"$T/cut" || {
		show "$T/cut"
		fail "'jobpub --help' cuts a command's summary short"
	}
}

version() {
	want=$(sed -n 's/^AC_INIT(\[jobpub\], *\[\([^]]*\)\].*/\1/p' "$TOP_SRCDIR/configure.ac")
	[ -n "$want" ] || hard_error "no version in configure.ac's AC_INIT"
	expect_rc 0 "$JOBPUB" --version
	assert_eq "$(cat "$OUT")" "jobpub $want" "--version"
}

unknown_command() {
	expect_rc 64 "$JOBPUB" frobnicate
	assert_grep "^jobpub: .*frobnicate" "$ERR"
	assert_grep '^usage: ' "$ERR"
	[ ! -s "$OUT" ] || fail "an unknown command wrote to stdout"
	expect_rc 64 "$JOBPUB" help frobnicate
	assert_grep "frobnicate" "$ERR"
	assert_grep '^usage: ' "$ERR"
	expect_rc 64 "$JOBPUB" --bogus
	assert_grep '^usage: ' "$ERR"
}

# No command at all is a usage error: exit 64, usage on stderr (not stdout).
no_command() {
	expect_rc 64 "$JOBPUB"
	assert_grep '^usage: ' "$ERR"
	[ ! -s "$OUT" ] || fail "'jobpub' with no command printed its usage on stdout"
}

# 66 is not only "required output missing": a missing catalogue (an external table's; status,
# gc, verify) and a missing spool entry are 66 too, and --help, README and man page say so.
exit_66_documented() {
	expect_rc 0 "$JOBPUB" --help
	assert_grep '^66 input missing \(required output, manifest, work directory, catalogue, spool$' "$OUT"
	tr '\n' ' ' <"$TOP_SRCDIR/README.md" >"$T/readme"
	assert_grep '\| 66 \| input missing \(a required output, the manifest, the work directory, no spool entry for the job, or the catalogue where it must exist' "$T/readme"
	tr '\n' ' ' <"$TOP_SRCDIR/doc/jobpub.1" >"$T/man"
	assert_grep '^.* \.B 66 Input missing: a required output .*no spool entry for the job; the catalogue where it must exist' "$T/man"
	# What they say is what the code does.
	expect_rc 66 "$JOBPUB" status --db "$T/nope.db"
	expect_rc 66 "$JOBPUB" gc --db "$T/nope.db"
	expect_rc 66 "$JOBPUB" verify --db "$T/nope.db"
	assert_absent "$T/nope.db"
}

run_case help_equals_dash_help
run_case usage_errors_print_the_same_usage
run_case top_help_shows_every_usage
run_case version
run_case unknown_command
run_case no_command
run_case exit_66_documented
finish
