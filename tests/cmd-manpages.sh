#!/bin/sh
# The man pages against the program: every command `jobpub help` lists has its page
# doc/jobpub-COMMAND.1, installed (Makefile.am), listed in jobpub(1) with its summary and named
# by its --help; each page's SYNOPSIS is the command's usage string and its OPTIONS are the
# options its --help lists, no more, no fewer; jobpub(1)'s SYNOPSIS is the overview's usage;
# every page renders without a groff warning; --help, jobpub(1) and the README list the same
# exit codes.  A change on either side alone fails here.
. "$(dirname "$0")/lib.sh"

need groff awk sed tr sort
DOC=$TOP_SRCDIR/doc

# The commands, from the overview's "Commands:" list (so a new command needs a page).
"$JOBPUB" help >"$T/overview" || fail "'jobpub help' failed"
COMMANDS=$(awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
	on && /^  jobpub / { print $2 }' "$T/overview")
[ -n "$COMMANDS" ] || fail "no command in the list of 'jobpub help'"

# render PAGE: plain text, one long line per paragraph (no bold, underline or SGR).
render() {
	LC_ALL=C groff -man -Tascii -P-cbou -rLL=400n "$1" 2>"$T/groff.err" ||
		fail "groff cannot render $1"
}

# section NAME: the lines of section NAME of a rendered page on stdin.
section() {
	awk -v s="$1" '$0 == s { on = 1; next } on && /^[A-Z]/ { exit } on'
}

# squeeze: the words of stdin on one line, single-spaced.
squeeze() {
	tr -s ' \t\n' '   ' | sed 's/^ //; s/ $//'
}

# usage_of CMD: the usage string `jobpub CMD --help` prints, squeezed.
usage_of() {
	"$JOBPUB" "$1" --help | awk '/^usage: / { on = 1 } on && /^$/ { exit } on' |
		sed '1s/^usage: //' | squeeze
}

# help_options CMD: the options `jobpub CMD --help` lists, one "-x, --long" or "--long" a line.
help_options() {
	"$JOBPUB" "$1" --help |
		sed -En 's/^  (-[A-Za-z], |    )(--[a-z0-9][a-z0-9-]*).*/\1\2/p' | sed 's/^ *//' | sort
}

# page_options PAGE: the option tags of the page's OPTIONS, in the same form.
page_options() {
	render "$1" | section OPTIONS |
		sed -En 's/^       (-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*).*/\1\2/p' | sort
}

synopsis_is_usage() {
	for c in $COMMANDS; do
		[ "$c" = help ] && continue
		page=$DOC/jobpub-$c.1
		[ -f "$page" ] || fail "command $c has no man page doc/jobpub-$c.1"
		usage_of "$c" >"$T/usage.$c"
		[ -s "$T/usage.$c" ] || fail "'jobpub $c --help' prints no usage"
		render "$page" | section SYNOPSIS | squeeze >"$T/synopsis.$c"
		cmp -s "$T/usage.$c" "$T/synopsis.$c" || {
			printf 'usage:    %s\nsynopsis: %s\n' "$(cat "$T/usage.$c")" \
				"$(cat "$T/synopsis.$c")" >&2
			fail "doc/jobpub-$c.1: SYNOPSIS differs from the usage of 'jobpub $c --help'"
		}
	done
	# jobpub(1): the overview's usage, and `jobpub help` is in it.
	"$JOBPUB" --help | awk '/^usage: / { on = 1 } on && /^$/ { exit } on' |
		sed '1s/^usage: //' | squeeze >"$T/usage.top"
	render "$DOC/jobpub.1" | section SYNOPSIS | squeeze >"$T/synopsis.top"
	cmp -s "$T/usage.top" "$T/synopsis.top" || {
		printf 'usage:    %s\nsynopsis: %s\n' "$(cat "$T/usage.top")" \
			"$(cat "$T/synopsis.top")" >&2
		fail "doc/jobpub.1: SYNOPSIS differs from the usage of 'jobpub --help'"
	}
	assert_grep_fixed "$(usage_of help)" "$T/synopsis.top"
}

options_are_documented() {
	for c in $COMMANDS; do
		[ "$c" = help ] && continue
		help_options "$c" >"$T/hopt.$c"
		[ -s "$T/hopt.$c" ] || fail "'jobpub $c --help' lists no option"
		page_options "$DOC/jobpub-$c.1" >"$T/mopt.$c"
		cmp -s "$T/hopt.$c" "$T/mopt.$c" || {
			diff "$T/hopt.$c" "$T/mopt.$c" | sed -n 's/^</  only in --help:/p; s/^>/  only in the page:/p' >&2
			fail "doc/jobpub-$c.1: OPTIONS differ from the options of 'jobpub $c --help'"
		}
	done
}

# Each command's --help names its page; jobpub(1) lists every page; every page is installed.
pages_are_linked_and_installed() {
	render "$DOC/jobpub.1" >"$T/jobpub.txt"
	tr '\n' ' ' <"$TOP_SRCDIR/Makefile.am" | sed 's/\\ */ /g' >"$T/makefile"
	for c in $COMMANDS; do
		expect_rc 0 "$JOBPUB" "$c" --help
		if [ "$c" = help ]; then
			assert_grep '^See jobpub\(1\)' "$OUT"
			continue
		fi
		assert_grep "^See jobpub-$c\\(1\\)\\.$" "$OUT"
		section COMMANDS <"$T/jobpub.txt" >"$T/commands"
		assert_grep "^       jobpub-$c\\(1\\)$" "$T/commands"
		# ... with the summary `jobpub help` shows (its `quotes` are roff's fonts there).
		awk -v c="$c" '$1 == "jobpub" && $2 == c { on = 1; next }
			on && /^      [^ ]/ { print; exit }' "$T/overview" | tr -d '`' | squeeze >"$T/sum.help"
		awk -v t="       jobpub-$c(1)" '$0 == t { on = 1; next } on { print; exit }' \
			"$T/commands" | squeeze >"$T/sum.man"
		[ -s "$T/sum.help" ] || fail "no summary of $c in 'jobpub help'"
		cmp -s "$T/sum.help" "$T/sum.man" || {
			printf 'jobpub help: %s\njobpub(1):   %s\n' "$(cat "$T/sum.help")" "$(cat "$T/sum.man")" >&2
			fail "jobpub(1) COMMANDS: the summary of $c differs from 'jobpub help'"
		}
		section 'SEE ALSO' <"$T/jobpub.txt" >"$T/seealso"
		assert_grep "jobpub-$c\\(1\\)" "$T/seealso"
	done
	for page in "$DOC"/*.[1-8]; do
		grep -Eq "dist_man_MANS = [^=]*doc/${page##*/} " "$T/makefile" ||
			fail "doc/${page##*/} is not in Makefile.am's dist_man_MANS (not installed)"
	done
}

renders_without_warnings() {
	for page in "$DOC"/*.[1-8]; do
		LC_ALL=C.UTF-8 groff -ww -man -Tutf8 -z "$page" 2>"$T/warn" ||
			fail "groff cannot render ${page##*/}"
		[ ! -s "$T/warn" ] || {
			show "$T/warn"
			fail "${page##*/}: groff warnings"
		}
	done
}

# The exit codes: those `jobpub --help` lists are in jobpub(1)'s EXIT STATUS and in the README's
# table, and those two list the same codes (the README's table is the contract).
exit_codes_agree() {
	"$JOBPUB" --help | awk '/^Exit codes/ { on = 1 } on' | tr '\n' ' ' |
		grep -oE '(: |, )[0-9]+ [a-z]' | grep -oE '[0-9]+' | sort -n >"$T/codes.help"
	render "$DOC/jobpub.1" | section 'EXIT STATUS' |
		sed -En 's/^       ([0-9]+)( .*)?$/\1/p' | sort -n >"$T/codes.man"
	sed -En 's/^\| ([0-9]+) \|.*/\1/p' "$TOP_SRCDIR/README.md" | sort -n >"$T/codes.readme"
	[ "$(wc -l <"$T/codes.help")" -ge 10 ] || fail "too few exit codes found in 'jobpub --help'"
	cmp -s "$T/codes.man" "$T/codes.readme" || {
		diff "$T/codes.man" "$T/codes.readme" >&2 || true
		fail "jobpub(1) EXIT STATUS and the README's exit-code table list different codes"
	}
	comm -23 "$T/codes.help" "$T/codes.man" >"$T/codes.missing"
	[ ! -s "$T/codes.missing" ] ||
		fail "exit codes of 'jobpub --help' missing from jobpub(1): $(tr '\n' ' ' <"$T/codes.missing")"
}

run_case synopsis_is_usage
run_case options_are_documented
run_case pages_are_linked_and_installed
run_case renders_without_warnings
run_case exit_codes_agree
finish
