#!/bin/sh
# `jobpub manifest check`: ok on the example; with --workdir it prints the plan (every local
# file and its remote URL); errors exit 65 with FILE:LINE:COLUMN; a bad --set is a usage error
# (64).  It changes nothing: no destination, no catalogue write.
. "$(dirname "$0")/lib.sh"

make_example
n_outputs=$(grep -c '^  - name: ' "$EXMAN")

example_ok() {
	expect_rc 0 "$JOBPUB" manifest check "$EXMAN" --set model=x
	assert_grep_fixed "$EXMAN: ok ($n_outputs outputs)" "$OUT"
}

# Without --set model, ${model} in the destination is unknown: 65 at its line and column.
example_without_set() {
	line=$(grep -n '^destination:' "$EXMAN" | cut -d: -f1)
	col=$(grep '^destination:' "$EXMAN" | awk '{ print index($0, "${model}") }')
	[ -n "$line" ] && [ "$col" -gt 0 ] || fail "test set-up: no \${model} in the destination"
	expect_rc 65 "$JOBPUB" manifest check "$EXMAN"
	assert_grep_fixed "jobpub: $EXMAN:$line:$col: " "$ERR"
	assert_grep_fixed '${model}' "$ERR"
}

# With --workdir, --db and --job: the plan is exactly the 21 files and the Out/ archive under
# their pdr_run names.
plan_with_row() {
	sum=$(sha256sum "$EXDB")
	expect_rc 0 "$JOBPUB" manifest check "$EXMAN" --set "model=$EXMODEL" --workdir "$EXJOB" \
		--db "$EXDB" --job 1 --dest "file://$T/archive/\${model}"
	{ example_files; echo "Out/ pdrgrid/MCDRT$EXNAME.tar.gz"; } | while read -r local remote; do
		printf '%s -> %s\n' "$local" "$EXURL/$remote"
	done | LC_ALL=C sort >"$T/want"
	grep -- ' -> ' "$OUT" | LC_ALL=C sort >"$T/got"
	cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got" >&2 || true; fail "the plan differs"; }
	assert_grep_fixed "ok ($n_outputs outputs)" "$OUT"
	assert_absent "$T/archive"
	assert_eq "$(sha256sum "$EXDB")" "$sum" "the catalogue after manifest check"
}

# With --workdir only: every local file is listed, under the manifest's destination.
plan_without_row() {
	expect_rc 0 "$JOBPUB" manifest check "$EXMAN" --set model=x --workdir "$EXJOB"
	{ example_files; echo "Out/ x"; } | awk '{ print $1 }' | LC_ALL=C sort >"$T/want"
	grep -- ' -> ' "$OUT" | sed 's/ -> .*//' | LC_ALL=C sort >"$T/got"
	cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got" >&2 || true; fail "the plan's files differ"; }
	[ "$(grep -c -- ' -> file:///archive/pdr/x/' "$OUT")" -eq 22 ] ||
		fail "the plan does not use the manifest's destination"
}

optional_absent() {
	mv "$EXJOB/pdroutput/chemchk.out" "$T/chemchk.out"
	rc=0
	"$JOBPUB" manifest check "$EXMAN" --set model=x --workdir "$EXJOB" >"$OUT" 2>"$ERR" || rc=$?
	mv "$T/chemchk.out" "$EXJOB/pdroutput/chemchk.out"
	assert_eq "$rc" 0 "exit code with an optional output missing"
	cat "$OUT" "$ERR" >"$T/both"
	assert_grep 'chemchk.*(absent|skipped)' "$T/both"
	[ "$(grep -c -- ' -> ' "$OUT")" -eq 21 ] || fail "the plan should list 21 files"
}

required_absent() {
	mv "$EXJOB/pdroutput/TEXTOUT" "$T/TEXTOUT"
	rc=0
	"$JOBPUB" manifest check "$EXMAN" --set model=x --workdir "$EXJOB" >"$OUT" 2>"$ERR" || rc=$?
	mv "$T/TEXTOUT" "$EXJOB/pdroutput/TEXTOUT"
	assert_eq "$rc" 66 "exit code with a required output missing"
	assert_grep 'textout' "$ERR"
	assert_grep 'pdroutput/TEXTOUT' "$ERR"
}

yaml_error() {
	cat >"$T/bad.yaml" <<EOF
destination: file://$T/archive
outputs:
  - name: result
    path: out/result.txt
   to: result.txt
EOF
	expect_rc 65 "$JOBPUB" manifest check "$T/bad.yaml"
	assert_grep_fixed "jobpub: $T/bad.yaml:5:4: " "$ERR"
}

unknown_key() {
	cat >"$T/typo.yaml" <<EOF
destination: file://$T/archive
outputs:
  - name: result
    path: out/result.txt
    to: result.txt
    requird: false
EOF
	expect_rc 65 "$JOBPUB" manifest check "$T/typo.yaml"
	assert_grep_fixed "jobpub: $T/typo.yaml:6:5: " "$ERR"
	assert_grep 'requird' "$ERR"
}

unknown_variable() {
	cat >"$T/var.yaml" <<EOF
destination: file://$T/archive
outputs:
  - name: result
    path: out/result.txt
    to: runs/\${job}/\${modle}.txt
EOF
	expect_rc 65 "$JOBPUB" manifest check "$T/var.yaml" --set model=x
	assert_grep_fixed "jobpub: $T/var.yaml:5:21: " "$ERR"
	assert_grep_fixed '${modle}' "$ERR"
}

missing_file() {
	expect_rc 66 "$JOBPUB" manifest check "$T/no-such.yaml"
	assert_grep_fixed "$T/no-such.yaml" "$ERR"
}

# Issue 13, defect 7: "%a\x89" (a YAML directive, then a byte that is not UTF-8) made libfyaml
# loop forever.  Every command that reads a manifest refuses it at once: 65, one line naming the
# file, line, column and byte offset, nothing created.  A hang is killed by timeout (137).
invalid_utf8() {
	need timeout
	printf '%%a\211' >"$T/hang.yaml"
	mkdir "$T/work"
	expect_rc 65 timeout -s KILL 20 "$JOBPUB" manifest check "$T/hang.yaml"
	assert_eq "$(cat "$ERR")" \
		"jobpub: $T/hang.yaml:1:3: invalid UTF-8 byte 0x89 at byte offset 2: a manifest is UTF-8 text" \
		"stderr of manifest check"
	expect_rc 65 timeout -s KILL 20 "$JOBPUB" publish --job 1 --manifest "$T/hang.yaml" \
		--workdir "$T/work" --db "$T/cat.db" --dest "file://$T/archive"
	assert_grep_fixed "$T/hang.yaml:1:3: invalid UTF-8" "$ERR"
	[ "$(wc -l <"$ERR")" -eq 1 ] || fail "publish: more than one line on stderr"
	expect_rc 65 timeout -s KILL 20 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" enqueue --job 1 \
		--manifest "$T/hang.yaml" --workdir "$T/work" --db "$T/cat.db" --dest "file://$T/archive"
	assert_grep_fixed "$T/hang.yaml:1:3: invalid UTF-8" "$ERR"
	assert_absent "$T/cat.db"
	assert_absent "$T/archive"
	assert_absent "$T/spool"
	# A NUL byte is refused the same way.
	printf 'outputs:\n  \000\n' >"$T/nul.yaml"
	expect_rc 65 timeout -s KILL 20 "$JOBPUB" manifest check "$T/nul.yaml"
	assert_grep_fixed "jobpub: $T/nul.yaml:2:3: NUL byte at byte offset 11" "$ERR"
}

bad_set() {
	expect_rc 64 "$JOBPUB" manifest check "$EXMAN" --set model
	assert_grep '^jobpub: .*--set' "$ERR"
	assert_grep '^usage: jobpub manifest' "$ERR"
	expect_rc 64 "$JOBPUB" manifest check "$EXMAN" --set '1x=2'
	assert_grep '^usage: ' "$ERR"
	expect_rc 64 "$JOBPUB" manifest check "$EXMAN" --set 'job=2'
	assert_grep '^usage: ' "$ERR"
}

run_case example_ok
run_case example_without_set
run_case plan_with_row
run_case plan_without_row
run_case optional_absent
run_case required_absent
run_case yaml_error
run_case unknown_key
run_case unknown_variable
run_case missing_file
run_case invalid_utf8
run_case bad_set
finish
