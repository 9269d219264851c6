#!/bin/sh
# Secrets stay secret, on every backend: publishes to file://, sftp:// (a key with a passphrase,
# read from JOBPUB_SSH_PASSPHRASE_FILE) and s3:// (a real RADOS Gateway: the secret key and a
# session token, from the environment and from ~/.aws/credentials) run with known, unique secret
# values, and none of them may appear
#   - in stdout or stderr (text and --log-format json, with -v), on success and on failure
#     (a wrong passphrase, a wrong secret key, a token the server refuses);
#   - in the catalogue (its SQL dump and its files on disk), in the spool (enqueue);
#   - in any process's argv: /proc/*/cmdline of every process is sampled while each publish
#     runs (a sampler in python3, so the secrets are not in the sampler's own argv, and the
#     checks use grep -f, never a secret on a command line; secrets reach jobpub through the
#     environment and files only).
# The values: the passphrase of sshd-start.sh's SSH_KEY_PASS, rgw-start.sh's secret key, a
# random session token and a random wrong secret key, listed one a line in $SECRETS.
#
# Needs openssh-server and openssh-client (tests/sshd-start.sh), the Ceph packages
# (tests/rgw-start.sh), python3, curl.
. "$(dirname "$0")/lib.sh"
need python3 timeout head od tr ssh-keygen
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)

unset SSH_AUTH_SOCK SSH_AGENT_PID JOBPUB_SSH_PASSPHRASE_FILE JOBPUB_SPOOL
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_REGION AWS_DEFAULT_REGION AWS_CA_BUNDLE
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export HOME=$T/home
mkdir -p "$HOME"
chmod 0700 "$HOME"

# ---- the servers --------------------------------------------------------------------------------
SSHD=$T/sshd
RGWD=$T/rgw
stop_servers() {
	[ -f "$SSHD/sshd.pid" ] && sh "$TESTS_DIR/sshd-stop.sh" "$SSHD" KILL >/dev/null 2>&1 || true
	[ -d "$RGWD" ] && sh "$TESTS_DIR/rgw-stop.sh" "$RGWD" >/dev/null 2>&1 || true
	stop_sampler
}
trap 'stop_servers; cleanup' EXIT

# ---- the secrets --------------------------------------------------------------------------------
SECRETS=$T/secrets
rand() {
	od -An -tx1 -N12 /dev/urandom | tr -d ' \n'
}
TOKEN="JobpubSessionToken$(rand)"
WRONG_SECRET="JobpubWrongSecret$(rand)"

# check_clean FILE...: no secret in any FILE (binary files included; absent files are skipped).
check_clean() {
	local f
	for f in "$@"; do
		[ -e "$f" ] || continue
		if grep -aqF -f "$SECRETS" -- "$f"; then
			printf 'a secret appears in %s:\n' "$f" >&2
			grep -anF -f "$SECRETS" -- "$f" | sed 's/^/    | /' >&2 || true
			fail "a secret appears in ${f#"$T"/}"
		fi
	done
}

# check_catalogue DB: the SQL dump and the database's files hold no secret.
check_catalogue() {
	sqlite3 -batch "$1" .dump >"$T/dump.sql" 2>&1 || { show "$T/dump.sql"; fail "sqlite3 .dump $1 failed"; }
	check_clean "$T/dump.sql" "$1" "$1-wal" "$1-journal"
}

# ---- argv sampling ------------------------------------------------------------------------------
# start_sampler: reads /proc/*/cmdline of every process, again and again, until stop_sampler;
# writes each process whose argv holds a secret to $T/argv.hits, and the number of complete
# passes to $T/argv.samples.
SAMPLER=
start_sampler() {
	rm -f "$T/argv.hits" "$T/argv.samples" "$T/argv.stop"
	python3 - "$SECRETS" "$T/argv.hits" "$T/argv.samples" "$T/argv.stop" <<'EOF' &
import os, sys
secrets = [s.encode() for s in open(sys.argv[1]).read().split('\n') if s]
hits, count, stop = sys.argv[2:5]
n = 0
while not os.path.exists(stop):
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                argv = f.read()
        except OSError:
            continue
        if any(s in argv for s in secrets):
            with open(hits, 'a') as f:
                f.write('%s: %s\n' % (pid, argv.replace(b'\0', b' ').decode(errors='replace')))
    n += 1
    with open(count + '.new', 'w') as f:
        f.write('%d\n' % n)
    os.replace(count + '.new', count)  # never seen half written
EOF
	SAMPLER=$!
	bg_started "$SAMPLER"
	# the first pass is done before the command to watch starts
	wait_for_file "$T/argv.samples"
}
stop_sampler() {
	[ -n "$SAMPLER" ] || return 0
	: >"$T/argv.stop"
	wait "$SAMPLER" 2>/dev/null || true
	SAMPLER=
}
wait_for_file() {
	local i=0
	until [ -s "$1" ]; do
		i=$((i + 1))
		[ "$i" -lt 1000 ] || fail "$1 did not appear in 10 s"
		sleep 0.01
	done
}

# watched WHAT CMD...: runs CMD (stdout in $OUT, stderr in $ERR, exit code in $RC) while argv
# is sampled; fails if a secret was in a process's argv, or if CMD ended before one whole pass
# over /proc; then stdout and stderr must hold no secret.
watched() {
	local what=$1 before after
	shift
	start_sampler
	before=$(cat "$T/argv.samples")
	RC=0
	"$@" >"$OUT" 2>"$ERR" || RC=$?
	after=$(cat "$T/argv.samples")
	stop_sampler
	if [ -s "$T/argv.hits" ]; then
		show "$T/argv.hits"
		fail "$what: a secret is in a process's argv"
	fi
	[ "$after" -gt "$before" ] ||
		fail "$what: no argv sample while the command ran (its files are too small)"
	check_clean "$OUT" "$ERR"
}

# expect_watched N WHAT CMD...: watched, and CMD must exit with N.
expect_watched() {
	local want=$1
	shift
	watched "$@"
	if [ "$RC" -ne "$want" ]; then
		show "$ERR"
		fail "$1: exit code $RC, expected $want"
	fi
}

# header_listener: an HTTP server on 127.0.0.1 (its port in $T/listener.port, its PID in
# LISTENER) that writes the headers of one request, lower-cased, to $T/listener.headers,
# answers 403 AccessDenied and ends.
header_listener() {
	rm -f "$T/listener.port" "$T/listener.headers"
	python3 - "$T/listener.port" "$T/listener.headers" <<'EOF' &
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        with open(sys.argv[2], 'w') as f:
            for k, v in self.headers.items():
                f.write('%s: %s\n' % (k.lower(), v))
        body = b'<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>'
        self.send_response(403)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = answer
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
with open(sys.argv[1] + '.new', 'w') as f:
    f.write('%d\n' % s.server_address[1])
os.replace(sys.argv[1] + '.new', sys.argv[1])
s.handle_request()
EOF
	LISTENER=$!
	bg_started "$LISTENER"
	wait_for_file "$T/listener.port"
}

# ---- jobs ---------------------------------------------------------------------------------------
# make_job NAME DEST: $T/jobs/NAME, row 1 'running' in table runs, out/small.txt and out/big.dat
# (48 MiB of random data, so that a publish lasts long enough to be watched; 48/SLOW MiB under
# valgrind, lib.sh), published to DEST/NAME/. Sets J JW JDB JMAN.
BIG=$T/big.dat
head -c $((48 * 1024 * 1024 / SLOW)) /dev/urandom >"$BIG" || hard_error "cannot write 48 MiB into $T"
make_job() {
	J=$T/jobs/$1
	JW=$J/work
	JDB=$J/catalog.db
	JMAN=$J/manifest.yaml
	rm -rf -- "$J"
	mkdir -p "$JW/out"
	printf 'result of %s\n' "$1" >"$JW/out/small.txt"
	ln "$BIG" "$JW/out/big.dat"
	sql "$JDB" "CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT, url TEXT);
		INSERT INTO runs (id, status) VALUES (1, 'running');"
	cat >"$JMAN" <<EOF
destination: $2/$1
catalog:
  table: runs
  id-column: id
  status-column: status
  published-status: finished
outputs:
  - name: out
    glob: out/*
    to: \${basename}
EOF
}
pub() {
	timeout -k 5 $((300 * SLOW)) "$JOBPUB" publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB" "$@"
}

start_server sshd-start.sh "$SSHD"
start_server rgw-start.sh "$RGWD"
{
	cat "$SSH_KEY_PASSPHRASE_FILE"
	printf '%s\n' "$RGW_SECRET_KEY" "$TOKEN" "$WRONG_SECRET"
} >"$SECRETS"
[ "$(grep -c . "$SECRETS")" -eq 4 ] || hard_error "a secret is empty"
# Every secret is in the environment of every publish below, whatever its backend.
export AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
export JOBPUB_SSH_PASSPHRASE_FILE=$SSH_KEY_PASSPHRASE_FILE
export JOBPUB_SPOOL=$T/spool
mkdir -p "$JOBPUB_SPOOL"
SFTP=sftp://$SSH_USER@127.0.0.1:$SSHD_PORT$SSHD_ROOT
S3="s3://$RGW_BUCKET"
SSHOPTS="--identity $SSH_KEY_PASS --known-hosts $SSHD_KNOWN_HOSTS"

# ---- file:// ------------------------------------------------------------------------------------
file_backend() {
	make_job f "file://$T/archive"
	expect_watched 0 "file publish --dry-run" pub -v --dry-run
	expect_watched 0 "file publish" pub -v
	cmp -s "$BIG" "$T/archive/f/big.dat" || fail "file://: big.dat differs"
	make_job fj "file://$T/archive"
	expect_watched 0 "file publish (json)" pub -v --log-format json
	check_catalogue "$JDB"
	# enqueue, then the spool entry published
	make_job fs "file://$T/archive"
	expect_rc 0 "$JOBPUB" enqueue --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB"
	check_clean "$OUT" "$ERR"
	find "$JOBPUB_SPOOL" -type f >"$T/spool.files"
	[ -s "$T/spool.files" ] || fail "enqueue wrote no spool entry"
	while read -r f; do check_clean "$f"; done <"$T/spool.files"
	expect_watched 0 "publish --spool" "$JOBPUB" publish --spool --job 1 -v
	check_catalogue "$JDB"
}

# ---- sftp:// ------------------------------------------------------------------------------------
sftp_backend() {
	make_job s "$SFTP"
	# shellcheck disable=SC2086
	expect_watched 0 "sftp publish" pub -v $SSHOPTS
	cmp -s "$BIG" "$SSHD_ROOT/s/big.dat" || fail "sftp://: big.dat differs"
	check_catalogue "$JDB"
	make_job sj "$SFTP"
	# shellcheck disable=SC2086
	expect_watched 0 "sftp publish (json)" pub -v --log-format json $SSHOPTS
	check_catalogue "$JDB"
	check_clean "$SSHD_LOG"
	# A wrong passphrase (in a file of mode 0600, as cp keeps it): refused, and neither
	# passphrase is in the messages.
	cp "$SSH_KEY_PASSPHRASE_FILE" "$T/wrong-pass"
	printf '%s\n' "$WRONG_SECRET" >"$T/wrong-pass"
	make_job sw "$SFTP"
	JOBPUB_SSH_PASSPHRASE_FILE=$T/wrong-pass
	# shellcheck disable=SC2086
	expect_watched 77 "sftp wrong passphrase" pub -v --log-format json $SSHOPTS
	JOBPUB_SSH_PASSPHRASE_FILE=$SSH_KEY_PASSPHRASE_FILE
	check_catalogue "$JDB"
	# and republished (by hand) with the right one
	# shellcheck disable=SC2086
	expect_watched 0 "sftp republish" "$JOBPUB" republish --db "$JDB" $SSHOPTS
	check_catalogue "$JDB"
}

# ---- s3:// --------------------------------------------------------------------------------------
s3_backend() {
	make_job k "$S3"
	expect_watched 0 "s3 publish" pub -v --s3-endpoint "$RGW_ENDPOINT"
	check_catalogue "$JDB"
	make_job kj "$S3"
	expect_watched 0 "s3 publish (json)" pub -v --log-format json --s3-endpoint "$RGW_ENDPOINT"
	check_catalogue "$JDB"
	# A wrong secret key: refused (77), the secret in no message.
	make_job kw "$S3"
	AWS_SECRET_ACCESS_KEY=$WRONG_SECRET
	expect_watched 77 "s3 wrong secret" pub -v --log-format json --s3-endpoint "$RGW_ENDPOINT"
	AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
	check_catalogue "$JDB"
	# A session token (this gateway, without STS, ignores it): published, the token in no
	# message.  That jobpub sends it at all, as x-amz-security-token, is seen by a listener
	# that records the headers of the first request and answers 403.
	make_job kt "$S3"
	export AWS_SESSION_TOKEN="$TOKEN"
	expect_watched 0 "s3 session token" pub -v --log-format json --s3-endpoint "$RGW_ENDPOINT"
	check_catalogue "$JDB"
	header_listener
	make_job kh "$S3"
	expect_rc 77 pub --s3-endpoint "http://127.0.0.1:$(cat "$T/listener.port")" --retries 0
	check_clean "$OUT" "$ERR"
	wait "$LISTENER" || fail "the header listener failed"
	assert_eq "$(sed -n 's/^x-amz-security-token: //p' "$T/listener.headers")" "$TOKEN" \
		"x-amz-security-token sent"
	unset AWS_SESSION_TOKEN
	# The same from ~/.aws/credentials (a profile), nothing in the environment.
	mkdir -p "$HOME/.aws"
	cat >"$HOME/.aws/credentials" <<EOF
[archive]
aws_access_key_id = $RGW_ACCESS_KEY
aws_secret_access_key = $RGW_SECRET_KEY

[withtoken]
aws_access_key_id = $RGW_ACCESS_KEY
aws_secret_access_key = $RGW_SECRET_KEY
aws_session_token = $TOKEN
EOF
	chmod 0600 "$HOME/.aws/credentials"
	make_job kp "$S3"
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	export AWS_PROFILE=archive
	expect_watched 0 "s3 publish (profile)" pub -v --log-format json --s3-endpoint "$RGW_ENDPOINT"
	check_catalogue "$JDB"
	make_job kpt "$S3"
	export AWS_PROFILE=withtoken
	expect_watched 0 "s3 publish (profile with a token)" pub -v --log-format json \
		--s3-endpoint "$RGW_ENDPOINT"
	check_catalogue "$JDB"
	unset AWS_PROFILE
	# enqueue with an s3 destination: the spool entry holds no credential
	make_job ks "$S3"
	expect_rc 0 "$JOBPUB" enqueue --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB"
	find "$JOBPUB_SPOOL" -type f >"$T/spool.files"
	while read -r f; do check_clean "$f"; done <"$T/spool.files"
}

run_case file_backend
run_case sftp_backend
run_case s3_backend
finish
