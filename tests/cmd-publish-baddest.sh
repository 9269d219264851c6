#!/bin/sh
# A destination that cannot be created (a regular file where a directory must go) is refused
# permanently: exit 69, the job is failed_storage, nothing temporary is left.  A malformed
# destination (unknown scheme, no host, no bucket, a relative path) is a configuration error:
# exit 78, and like a manifest error it changes nothing: the catalogue stays byte for byte what
# it was, no attempt is recorded, nothing is created.
. "$(dirname "$0")/lib.sh"

# A regular file where the directory results/ must be.
file_in_the_way() {
	make_mini
	mkdir -p "$MARCHIVE"
	printf 'a file, not a directory\n' >"$MARCHIVE/results"
	expect_rc 69 publish_mini
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'results' "$ERR"
	assert_grep '^a file, not a directory$' "$MARCHIVE/results"
	assert_eq "$(count_files "$MARCHIVE")" 1 "files at the destination"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
	assert_eq "$(sql "$MDB" "SELECT quote(result_url) || ' ' || quote(data_url) FROM runs")" \
		"NULL NULL" "mapped columns"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts")" \
		"failed_storage 69" "the attempt row"
}

# The destination itself is a regular file.
dest_is_a_file() {
	make_mini
	printf 'x\n' >"$T/plain"
	expect_rc 69 publish_mini --dest "file://$T/plain"
	assert_grep_fixed "$T/plain" "$ERR"
	assert_grep '^x$' "$T/plain"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
}

# The second output's directory is blocked: the first output, already staged or committed,
# must not stay behind.
second_dir_blocked() {
	make_mini
	sed 's|to: results/\${row.name}/data.bin|to: data/run-a/data.bin|' "$MMAN" >"$T/m.yaml"
	mkdir -p "$MARCHIVE"
	printf 'blocker\n' >"$MARCHIVE/data"
	expect_rc 69 publish_mini --manifest "$T/m.yaml"
	assert_absent "$MARCHIVE/results/run-a/result.txt"
	assert_eq "$(count_files "$MARCHIVE")" 1 "files at the destination"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
}

unknown_scheme() {
	make_mini
	cp "$MDB" "$T/before.db"
	expect_rc 78 publish_mini --dest 's4://x'
	assert_grep 's4' "$ERR"
	assert_absent "$MARCHIVE"
	assert_absent "$MJOB/s4:"
	assert_no_temps "$T"
	cmp -s "$T/before.db" "$MDB" || fail "the catalogue changed"
}

# bad_dest URL PATTERN [OPTION]...: --dest URL (with the options, in the environment changed
# by $BAD_ENV: env(1) words; default: S3 credentials that exist; HOME=$BAD_HOME, default an
# empty directory) exits 78 with one line matching
# PATTERN, and changes nothing: the catalogue byte for byte, no directory created (here or in
# the job's directory).
bad_dest() {
	local url=$1 pattern=$2
	shift 2
	make_mini
	cp "$MDB" "$T/before.db"
	(cd "$MINI" && find . | LC_ALL=C sort) >"$T/before.files"
	# shellcheck disable=SC2086
	expect_rc 78 env ${BAD_ENV:-AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s} HOME="${BAD_HOME:-$T/nohome}" \
		"$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" \
		--dest "$url" "$@"
	assert_grep "^jobpub: .*$pattern" "$ERR"
	assert_eq "$(wc -l <"$ERR")" 1 "lines on stderr"
	cmp -s "$T/before.db" "$MDB" || fail "--dest $url: the catalogue changed"
	(cd "$MINI" && find . | LC_ALL=C sort) >"$T/after.files"
	cmp -s "$T/before.files" "$T/after.files" || {
		diff "$T/before.files" "$T/after.files" >&2 || true
		fail "--dest $1: files were created"
	}
	assert_no_temps "$T"
}
dest_ftp() { bad_dest 'ftp://x' "unknown scheme 'ftp'"; }
dest_sftp_no_host() { bad_dest 'sftp://' 'sftp://.*host'; }
dest_sftp_relative() { bad_dest 'sftp://localhost/~/x' 'absolute remote path'; }
dest_s3_no_bucket() { bad_dest 's3://' 'not a valid bucket name'; }
dest_file_relative() { bad_dest 'file:/relative' 'expected a URL'; }
dest_file_host() { bad_dest 'file://relative/x' 'file://relative/x'; }
dest_relative_path() { bad_dest 'archive/x' 'expected a URL'; }
dest_password() { bad_dest 'sftp://u:secret@localhost/x' 'password'; }
# The local settings the destination would be opened with: refused before anything too.
dest_sftp_identity() {
	bad_dest 'sftp://localhost/x' "identity file $T/no-key: No such file" --identity "$T/no-key"
}
# ~/.ssh/config is read at login: a malformed one, or the key it names missing, is found before
# the attempt begins (was: the row became failed_storage, attempt #1 recorded, and the message
# "~/.ssh/config: Invalid argument" named neither line nor field).
dest_sftp_ssh_config_port() {
	BAD_HOME=$T/h
	mkdir -p "$T/h/.ssh"
	printf 'Host other\n  Port 22\n\nHost localhost\n  User u\n  Port 70000\n' \
		>"$T/h/.ssh/config"
	bad_dest 'sftp://localhost/x' "$T/h/.ssh/config:6: Port 70000: not 1-65535"
}
dest_sftp_ssh_config_identity() {
	BAD_HOME=$T/h
	mkdir -p "$T/h/.ssh"
	printf 'Host *\n  IdentityFile ~/.ssh/no-key\n' >"$T/h/.ssh/config"
	bad_dest 'sftp://localhost/x' "identity file $T/h/.ssh/no-key: No such file"
}
dest_s3_no_credentials() {
	BAD_ENV="-u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY"
	bad_dest 's3://bucket/x' 'no credentials'
}
dest_s3_bad_endpoint() { bad_dest 's3://bucket/x' "endpoint 'ftp://e'" --s3-endpoint ftp://e; }
dest_s3_ca_bundle() {
	BAD_ENV="AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s AWS_CA_BUNDLE=$T/no-ca.pem"
	bad_dest 's3://bucket/x' "AWS_CA_BUNDLE=$T/no-ca.pem" --s3-endpoint http://127.0.0.1:9
}

# The manifest's destination, malformed once ${row.name} is known: found with the row, before
# the attempt begins: the row and its columns unchanged, no attempt recorded.
manifest_dest_from_row() {
	local n
	make_mini
	sed "s|^destination:.*|destination: file:archive/\${row.name}|" "$MMAN" >"$T/m.yaml"
	expect_rc 78 publish_mini --manifest "$T/m.yaml"
	assert_grep "^jobpub: $T/m.yaml:1:[0-9]+: dest: destination 'file:archive/run-a'" "$ERR"
	assert_eq "$(sql "$MDB" "SELECT status || ' ' || quote(result_url) FROM runs")" \
		"running NULL" "the row"
	n=$(sql "$MDB" "SELECT count(*) FROM jobpub_attempts" 2>/dev/null) || n=0
	assert_eq "$n" 0 "attempts recorded"
	assert_absent "$MJOB/file:archive"
	assert_no_temps "$T"
}

run_case file_in_the_way
run_case dest_is_a_file
run_case second_dir_blocked
run_case unknown_scheme
run_case dest_ftp
run_case dest_sftp_no_host
run_case dest_sftp_relative
run_case dest_s3_no_bucket
run_case dest_file_relative
run_case dest_file_host
run_case dest_relative_path
run_case dest_password
run_case dest_sftp_identity
run_case dest_sftp_ssh_config_port
run_case dest_sftp_ssh_config_identity
run_case dest_s3_no_credentials
run_case dest_s3_bad_endpoint
run_case dest_s3_ca_bundle
run_case manifest_dest_from_row
finish
