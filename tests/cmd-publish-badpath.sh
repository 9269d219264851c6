#!/bin/sh
# Manifests and paths that must be refused with exit 65 before anything happens: a YAML syntax
# error and an unknown key (both FILE:LINE:COLUMN), an unknown ${variable}, a remote name that
# climbs out of the destination, a path that climbs out of the work directory: none of them may
# create the destination, touch the job's row or record an attempt.  A symlink the job left
# pointing out of its work directory is refused too, and recorded as a failed publish.
. "$(dirname "$0")/lib.sh"

# nothing_changed [no-attempt]: after a refused publish of the minimal job.
nothing_changed() {
	assert_absent "$MARCHIVE"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" running "status of the job's row"
	assert_eq "$(sql "$MDB" "SELECT quote(result_url) || ' ' || quote(data_url) FROM runs")" \
		"NULL NULL" "mapped columns"
	if [ "${1:-}" = no-attempt ]; then
		assert_eq "$(n_attempts "$MDB")" 0 "attempt rows after a manifest error"
	fi
}

yaml_syntax() {
	make_mini
	write_manifest "$MMAN" <<EOF
destination: $MURL
outputs:
  - name: result
    path: out/result.txt
   to: result.txt
EOF
	expect_rc 65 publish_mini
	# Line 5, column 4: the badly indented key.
	assert_grep_fixed "jobpub: $MMAN:5:4: " "$ERR"
	nothing_changed no-attempt
}

yaml_duplicate_key() {
	make_mini
	write_manifest "$MMAN" <<EOF
destination: $MURL
outputs:
  - name: result
    name: other
    path: out/result.txt
    to: result.txt
EOF
	expect_rc 65 publish_mini
	assert_grep_fixed "jobpub: $MMAN:4:5: " "$ERR"
	assert_grep 'duplicate' "$ERR"
	nothing_changed no-attempt
}

unknown_key() {
	make_mini
	# The default manifest with `column: data_url` turned into a typo of `required`.
	sed 's/^    column: data_url$/    requird: false/' "$MMAN" >"$T/m.yaml"
	line=$(grep -n 'requird' "$T/m.yaml" | cut -d: -f1)
	[ "$line" -eq 14 ] || fail "test set-up: requird is on line $line"
	expect_rc 65 publish_mini --manifest "$T/m.yaml"
	assert_grep_fixed "jobpub: $T/m.yaml:14:5: " "$ERR"
	assert_grep "requird" "$ERR"
	nothing_changed no-attempt
}

unknown_variable() {
	make_mini
	sed 's|to: results/\${row.name}/result.txt|to: results/${modle}/result.txt|' "$MMAN" >"$T/m.yaml"
	grep -q 'modle' "$T/m.yaml" || fail "test set-up: sed did not apply"
	expect_rc 65 publish_mini --manifest "$T/m.yaml"
	# Line 9; column 17 is where ${modle} starts in "    to: results/${modle}/...".
	assert_grep_fixed "jobpub: $T/m.yaml:9:17: " "$ERR"
	assert_grep_fixed '${modle}' "$ERR"
	nothing_changed no-attempt
}

remote_dotdot() {
	make_mini
	sed 's|to: results/\${row.name}/data.bin|to: ../x|' "$MMAN" >"$T/m.yaml"
	grep -q 'to: \.\./x' "$T/m.yaml" || fail "test set-up: sed did not apply"
	expect_rc 65 publish_mini --manifest "$T/m.yaml"
	assert_grep_fixed "jobpub: $T/m.yaml:13:9: " "$ERR"
	assert_grep_fixed "../x" "$ERR"
	assert_absent "$MINI/x"
	nothing_changed no-attempt
}

remote_absolute() {
	make_mini
	sed "s|to: results/\${row.name}/data.bin|to: $T/abs.bin|" "$MMAN" >"$T/m.yaml"
	expect_rc 65 publish_mini --manifest "$T/m.yaml"
	assert_grep_fixed "jobpub: $T/m.yaml:13:9: " "$ERR"
	assert_absent "$T/abs.bin"
	nothing_changed no-attempt
}

path_symlink_escape() {
	make_mini
	mkdir "$T/elsewhere"
	printf 'not yours\n' >"$T/elsewhere/secret"
	rm "$MJOB/out/data.bin"
	ln -s ../../../elsewhere/secret "$MJOB/out/data.bin"
	[ -f "$MJOB/out/data.bin" ] || fail "test set-up: the symlink does not resolve"
	expect_rc 65 publish_mini
	assert_grep 'out/data.bin' "$ERR"
	assert_grep 'outside' "$ERR"
	# What the job left in its directory is the job's data, not the manifest: the attempt is a
	# failed publish of this job, recorded so nobody takes the job for published.
	assert_absent "$MARCHIVE"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status of the job's row"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts")" \
		"failed_storage 65" "the attempt row"
	assert_grep outside "$(sql "$MDB" "SELECT message FROM jobpub_attempts" >"$T/msg"; echo "$T/msg")"
}

path_dotdot() {
	make_mini
	printf 'not yours\n' >"$MINI/secret"
	sed 's|path: out/data.bin|path: ../secret|' "$MMAN" >"$T/m.yaml"
	expect_rc 65 publish_mini --manifest "$T/m.yaml"
	assert_grep_fixed '../secret' "$ERR"
	nothing_changed
}

run_case yaml_syntax
run_case yaml_duplicate_key
run_case unknown_key
run_case unknown_variable
run_case remote_dotdot
run_case remote_absolute
run_case path_symlink_escape
run_case path_dotdot
finish
