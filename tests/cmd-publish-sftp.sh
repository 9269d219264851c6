#!/bin/sh
# SFTP destinations against a real OpenSSH server: tests/sshd-start.sh runs Debian's sshd on
# 127.0.0.1 and a free high port with its own keys (never /etc/ssh, never port 22), and every
# check reads the server's directory directly.  Scenarios (one run_case each, each with its own
# fresh HOME, so the user's ~/.ssh is never read): ed25519 key (option, default file, manifest),
# passphrase key, agent, wrong key, RSA key, unknown / changed host key, --accept-new-host-key,
# an ~/.ssh/config alias, the server killed mid-upload, a connection cut or stalled by
# tests/relay.py, a remote path component that is a file, permission denied (mkdir and create),
# two publishers into one directory, re-publish after a failure and of an unchanged job,
# `republish` of a failed job with --identity and --known-hosts.
#
# After every publish the core invariants are checked on the server's side (check_all): the row
# is `finished` or `failed_storage` as expected, a final name holds the complete file or nothing,
# and no .jobpub-* temporary name is left, except after a lost connection (server killed,
# connection cut or stalled): there jobpub cannot reach the server to remove them, so they may
# remain, but only as .jobpub-<16 hex>.<base> of mode 0600, and a later publish adds none.
#
# Needs openssh-server (/usr/sbin/sshd), openssh-client, python3; runs as root or not.
. "$(dirname "$0")/lib.sh"
need ssh-keygen ssh-keyscan ssh-agent ssh-add python3 timeout od ln
[ -x /usr/sbin/sshd ] || hard_error "/usr/sbin/sshd is missing (apt-get install openssh-server)"
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)

# Nothing of the user's SSH set-up may leak in.
unset SSH_AUTH_SOCK SSH_AGENT_PID JOBPUB_SSH_PASSPHRASE_FILE
export HOME="$T/home-main"
mkdir -p "$HOME"

# ---- the server ---------------------------------------------------------------------------------

# Every sshd below $T is stopped on exit, before lib.sh's cleanup removes $T.
stop_all_sshd() {
	local d
	for d in "$T"/sshd*; do
		[ -f "$d/sshd.pid" ] && sh "$TESTS_DIR/sshd-stop.sh" "$d" KILL >/dev/null 2>&1 || true
	done
}
trap 'stop_all_sshd; cleanup' EXIT

start_sshd "$T/sshd"
# SSH_USER logs in as the user running the tests.  Sessions of root ignore file modes, so the
# permission case logs in as SSHD_ALT_USER (nobody) when we are root; nobody must then be able
# to reach the server's files: $T (mode 0700 from mktemp) becomes traversable, not listable.
chmod 0711 "$T"

# A ~200 MiB file of real data (not a sparse hole: a hole would upload nothing slow enough);
# 200/SLOW MiB under valgrind, where time limits are SLOW times longer (lib.sh).
BIG=$T/big.dat
BIGSIZE=$((200 * 1024 * 1024 / SLOW))
head -c "$BIGSIZE" /dev/urandom >"$BIG" || hard_error "cannot write $((BIGSIZE >> 20)) MiB into $T"
[ "$(stat -c %b "$BIG")" -ge $((BIGSIZE / 512)) ] || hard_error "$BIG is sparse"

# ---- per case -----------------------------------------------------------------------------------
# case_begin NAME: a fresh HOME ($T/home-NAME with an empty ~/.ssh), and a trap (the case runs
# in a subshell) that ends what the case started: CASE_PIDS, an agent, CASE_SSHD servers.
case_begin() {
	CASE=$1
	CASE_PIDS=
	CASE_SSHD=
	export HOME="$T/home-$CASE"
	mkdir -p "$HOME/.ssh"
	chmod 0700 "$HOME" "$HOME/.ssh"
	trap case_end EXIT
	log_mark
}
case_end() {
	local p
	for p in $CASE_PIDS; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "${SSH_AGENT_PID:-}" ]; then
		kill "$SSH_AGENT_PID" 2>/dev/null || true
	fi
	for p in $CASE_SSHD; do
		sh "$TESTS_DIR/sshd-stop.sh" "$p" KILL >/dev/null 2>&1 || true
	done
}

# log_mark / log_since: the sshd log lines written since the mark, into $T/log-since.
log_mark() {
	LOGPOS=$(wc -l <"$SSHD_LOG")
}
log_since() {
	tail -n +"$((LOGPOS + 1))" "$SSHD_LOG" >"$T/log-since"
}

# fingerprint KEY: the SHA256 fingerprint of a key, as sshd logs it.
fingerprint() {
	ssh-keygen -l -f "$1.pub" | cut -d' ' -f2
}

# assert_key_used KEY: since log_mark, sshd accepted a login with KEY.
assert_key_used() {
	log_since
	assert_grep_fixed "ssh2: ED25519 $(fingerprint "$1")" "$T/log-since"
}

# assert_no_login: since log_mark, no login was accepted (nothing was sent to an unverified host).
assert_no_login() {
	log_since
	assert_no_grep 'Accepted publickey' "$T/log-since"
}

# url [USER]: the sftp:// URL of $SD on the shared server.
url() {
	printf 'sftp://%s@127.0.0.1:%s%s' "${1:-$SSH_USER}" "$SSHD_PORT" "$SD"
}

# ---- jobs ---------------------------------------------------------------------------------------
# make_job NAME [big] [mid] [many]: a job in $T/jobs/NAME (see use_job), row 1 'running' in
# table runs, published as
#   out/result.txt -> results/NAME/result.txt (column result_url)
#   out/data.bin   -> results/NAME/data.bin (64 KiB, column data_url)
#   big: out/big.dat (a hard link to the 200 MiB $BIG) -> results/NAME/big.dat
#   mid: out/mid.dat (8 MiB) -> results/NAME/mid.dat
#   many: many/f01..f12 (glob) -> shared/a/b/NAME.fNN
# into the manifest's destination $DEST (cases override it with --dest when needed).  $JMAP
# lists "LOCAL REMOTE" (absolute local path, path below the destination) per published file.
make_job() {
	local name="$1" what i
	shift
	use_job "$name"
	rm -rf -- "$J"
	mkdir -p "$JW/out"
	printf 'result of %s\nconverged after 12 iterations\n' "$name" >"$JW/out/result.txt"
	head -c 65536 /dev/urandom >"$JW/out/data.bin"
	sql "$JDB" "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
		status TEXT DEFAULT 'pending', result_url TEXT, data_url TEXT);
		INSERT INTO runs (id, name, status) VALUES (1, '$name', 'running');"
	cat >"$JMAN" <<EOF
destination: $DEST
catalog:
  table: runs
  id-column: id
  status-column: status
  published-status: finished
outputs:
  - name: result
    path: out/result.txt
    to: results/\${row.name}/result.txt
    column: result_url
  - name: data
    path: out/data.bin
    to: results/\${row.name}/data.bin
    column: data_url
EOF
	printf '%s %s\n' "$JW/out/result.txt" "results/$name/result.txt" \
		"$JW/out/data.bin" "results/$name/data.bin" >"$JMAP"
	for what in "$@"; do
		case $what in
		big | mid)
			if [ "$what" = big ]; then
				ln "$BIG" "$JW/out/big.dat"
			else
				head -c $((8 * 1024 * 1024)) /dev/urandom >"$JW/out/mid.dat"
			fi
			cat >>"$JMAN" <<EOF
  - name: $what
    path: out/$what.dat
    to: results/\${row.name}/$what.dat
EOF
			printf '%s %s\n' "$JW/out/$what.dat" "results/$name/$what.dat" >>"$JMAP"
			;;
		many)
			mkdir -p "$JW/many"
			for i in 01 02 03 04 05 06 07 08 09 10 11 12; do
				printf '%s file %s\n' "$name" "$i" >"$JW/many/f$i"
				printf '%s %s\n' "$JW/many/f$i" "shared/a/b/$name.f$i" >>"$JMAP"
			done
			cat >>"$JMAN" <<EOF
  - name: many
    glob: many/*
    to: shared/a/b/\${row.name}.\${basename}
EOF
			;;
		*) fail "make_job: unknown part '$what'" ;;
		esac
	done
}

# use_job NAME: J (its directory), JW (work directory), JDB, JMAN, JMAP.
use_job() {
	J=$T/jobs/$1
	JW=$J/work
	JDB=$J/catalog.db
	JMAN=$J/manifest.yaml
	JMAP=$J/map
}

# pub [OPTION]...: publishes job 1 of the current job; a hang ends as exit 124 after 60 s.
pub() {
	timeout -k 5 $((60 * SLOW)) "$JOBPUB" publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB" "$@"
}

# pub_bg [OPTION]...: the same in the background (jobpub itself, so that signals reach it), its
# pid in PUB, stdout and stderr in $T/pub.out and $T/pub.err.
pub_bg() {
	"$JOBPUB" publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB" "$@" \
		>"$T/pub.out" 2>"$T/pub.err" &
	PUB=$!
	CASE_PIDS="$CASE_PIDS $PUB"
}

# wait_pub SECONDS: waits for $PUB (at most SECONDS, else fails); its exit code in PUB_RC and
# how long the wait took in PUB_SECS.
wait_pub() {
	local i=0 t0
	t0=$(date +%s)
	while kill -0 "$PUB" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt $(($1 * SLOW * 20)) ]; then
			show "$T/pub.err"
			fail "publish still running after $1 s"
		fi
		sleep 0.05
	done
	PUB_RC=0
	wait "$PUB" || PUB_RC=$?
	PUB_SECS=$(($(date +%s) - t0))
}

# ---- the invariants, read on the server's side --------------------------------------------------
# check_all OUTCOME SD [TEMPS]: check_job OUTCOME SD, then check_dir SD TEMPS $JMAP.
check_all() {
	check_job "$1" "$2"
	check_dir "$2" "${3:-none}" "$JMAP"
}

# check_job OUTCOME SD: the current job after a publish into SD.
#   OUTCOME 0: row 'finished', last attempt published (exit 0), every file of $JMAP at its final
#     name with the source's content, one jobpub_files row each with an sftp:// URL ending in
#     its remote name, the mapped columns set to such URLs.
#   OUTCOME N (69, 75, 77...): row 'failed_storage', last attempt not published with exit code
#     N, mapped columns untouched (NULL), no final name of $JMAP exists.
check_job() {
	local want="$1" sd="$2" src remote n
	if [ "$want" -eq 0 ]; then
		assert_eq "$(row_status "$JDB" runs)" finished "status of the row"
		assert_eq "$(sql "$JDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts
			ORDER BY id DESC LIMIT 1")" "published 0" "last attempt (outcome, exit code)"
		n=0
		while read -r src remote; do
			n=$((n + 1))
			[ -f "$sd/$remote" ] || fail "$remote is missing on the server ($sd)"
			cmp -s "$src" "$sd/$remote" || fail "$sd/$remote differs from $src"
			assert_eq "$(sql "$JDB" "SELECT count(*) FROM jobpub_files WHERE job = '1'
				AND remote_url LIKE 'sftp://%/$remote'")" 1 "jobpub_files rows for $remote"
		done <"$JMAP"
		assert_eq "$(sql "$JDB" "SELECT count(*) FROM jobpub_files WHERE job = '1'")" "$n" \
			"jobpub_files rows"
		assert_eq "$(sql "$JDB" "SELECT (result_url LIKE 'sftp://%/results/' || name || '/result.txt')
			|| (data_url LIKE 'sftp://%/results/' || name || '/data.bin') FROM runs")" 11 \
			"mapped columns hold the sftp:// URLs"
	else
		assert_eq "$(row_status "$JDB" runs)" failed_storage "status of the row"
		assert_eq "$(sql "$JDB" "SELECT (outcome <> 'published') || ' ' || exit_code
			FROM jobpub_attempts ORDER BY id DESC LIMIT 1")" "1 $want" \
			"last attempt (not published, exit code)"
		assert_eq "$(sql "$JDB" "SELECT quote(result_url) || ' ' || quote(data_url) FROM runs")" \
			"NULL NULL" "mapped columns after a failure"
		while read -r src remote; do
			[ ! -e "$sd/$remote" ] || fail "$sd/$remote exists after a failed publish"
		done <"$JMAP"
	fi
}

# check_dir SD TEMPS MAP...: every file below SD is a final name of some MAP holding exactly its
# source, or one listed in $KEEP (relative to SD), or (TEMPS = some) a temporary name
# .jobpub-<16 hex>.<base> of mode 0600 whose base is a final name's; TEMPS = none: no temporary
# name at all.
check_dir() {
	local sd="$1" temps="$2" f rel base src remote found
	shift 2
	[ -d "$sd" ] || return 0
	find "$sd" ! -type d -print >"$T/server-files"
	while read -r f; do
		rel=${f#"$sd"/}
		base=${f##*/}
		case $base in
		.jobpub-*)
			[ "$temps" = some ] || fail "temporary file left on the server: $rel"
			printf '%s\n' "$base" | grep -Eq '^\.jobpub-[0-9a-f]{16}\.' ||
				fail "temporary name $rel is not .jobpub-<16 hex>.<base>"
			found=
			for m in "$@"; do
				while read -r src remote; do
					[ "${remote##*/}" = "${base#.jobpub-????????????????.}" ] && found=1
				done <"$m"
			done
			[ -n "$found" ] || fail "temporary $rel does not belong to any published file"
			[ "$(stat -c %a "$f")" = 600 ] || fail "temporary $rel has mode $(stat -c %a "$f"), not 0600"
			continue
			;;
		esac
		found=
		for k in ${KEEP:-}; do
			[ "$k" = "$rel" ] && found=1
		done
		[ -z "$found" ] || continue
		for m in "$@"; do
			while read -r src remote; do
				if [ "$remote" = "$rel" ]; then
					found=1
					cmp -s "$src" "$f" || fail "final name $rel holds other data than $src (partial?)"
				fi
			done <"$m"
		done
		[ -n "$found" ] || fail "unexpected file on the server: $rel"
	done <"$T/server-files"
}

# temps_below SD: the .jobpub-* names below SD, sorted.
temps_below() {
	find "$1" -name '.jobpub-*' -print 2>/dev/null | LC_ALL=C sort
}

# ---- the cases ----------------------------------------------------------------------------------

# An ed25519 key given with --identity, known_hosts with --known-hosts: published, and the
# server saw that key.
ed25519_identity() {
	case_begin ed25519
	SD=$SSHD_ROOT/ed25519
	DEST=$(url)
	make_job ed
	expect_rc 0 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	check_all 0 "$SD"
	assert_key_used "$SSH_KEY"
}

# No options: ~/.ssh/id_ed25519 and ~/.ssh/known_hosts (hashed entries) are found by default.
default_key_hashed_known_hosts() {
	case_begin default
	cp "$SSH_KEY" "$HOME/.ssh/id_ed25519"
	cp "$SSHD_KNOWN_HOSTS_HASHED" "$HOME/.ssh/known_hosts"
	chmod 0600 "$HOME/.ssh/id_ed25519"
	SD=$SSHD_ROOT/default
	DEST=$(url)
	make_job def
	expect_rc 0 pub
	check_all 0 "$SD"
	assert_key_used "$SSH_KEY"
}

# The manifest's sftp: {identity, known-hosts} instead of options.
manifest_sftp_keys() {
	case_begin manifest
	SD=$SSHD_ROOT/manifest
	DEST=$(url)
	make_job man
	cat >>"$JMAN" <<EOF
sftp:
  identity: $SSH_KEY
  known-hosts: $SSHD_KNOWN_HOSTS
EOF
	expect_rc 0 pub
	check_all 0 "$SD"
	assert_key_used "$SSH_KEY"
}

# A key with a passphrase, read from JOBPUB_SSH_PASSPHRASE_FILE: published; the passphrase is
# in no process's argv while the 200 MiB file goes up, nor in the output, the catalogue or the
# server log.  Without the file, or with a wrong passphrase: refused (77, or 78 "missing
# credentials"), nothing written.
passphrase_key() {
	local samples=0 rc
	case_begin passphrase
	SD=$SSHD_ROOT/passphrase
	DEST=$(url)
	make_job pass big

	rc=0
	pub --identity "$SSH_KEY_PASS" --known-hosts "$SSHD_KNOWN_HOSTS" >"$OUT" 2>"$ERR" || rc=$?
	case $rc in 77 | 78) ;; *) show "$ERR"; fail "no passphrase file: exit $rc, expected 77 or 78" ;; esac
	assert_absent "$SD"
	[ "$rc" -ne 77 ] || check_job 77 "$SD"

	printf 'not the passphrase\n' >"$T/wrong-pass"
	chmod 0600 "$T/wrong-pass"
	rc=0
	export JOBPUB_SSH_PASSPHRASE_FILE="$T/wrong-pass"
	pub --identity "$SSH_KEY_PASS" --known-hosts "$SSHD_KNOWN_HOSTS" >"$OUT" 2>"$ERR" || rc=$?
	unset JOBPUB_SSH_PASSPHRASE_FILE
	case $rc in 77 | 78) ;; *) show "$ERR"; fail "wrong passphrase: exit $rc, expected 77 or 78" ;; esac
	assert_absent "$SD"
	assert_no_login

	log_mark
	export JOBPUB_SSH_PASSPHRASE_FILE="$SSH_KEY_PASSPHRASE_FILE"
	pub_bg --identity "$SSH_KEY_PASS" --known-hosts "$SSHD_KNOWN_HOSTS"
	# What ps shows is /proc/PID/cmdline.  grep -f: the passphrase must not be in grep's own
	# argv either.
	while kill -0 "$PUB" 2>/dev/null; do
		if cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -Fq -f "$SSH_KEY_PASSPHRASE_FILE"; then
			fail "the passphrase is visible in a process's argv"
		fi
		samples=$((samples + 1))
		sleep 0.02
	done
	unset JOBPUB_SSH_PASSPHRASE_FILE
	wait_pub 60
	[ "$PUB_RC" -eq 0 ] || { show "$T/pub.err"; fail "publish with the passphrase key: exit $PUB_RC"; }
	[ "$samples" -gt 0 ] || fail "the publish ended before argv could be inspected"
	check_all 0 "$SD"
	assert_key_used "$SSH_KEY_PASS"
	sqlite3 "$JDB" .dump >"$T/dump.sql"
	for f in "$T/dump.sql" "$T/pub.out" "$T/pub.err" "$SSHD_LOG"; do
		if grep -Fq -f "$SSH_KEY_PASSPHRASE_FILE" "$f"; then
			fail "the passphrase appears in ${f##*/}"
		fi
	done
}

# The agent (SSH_AUTH_SOCK), no key file anywhere: an agent holding only a wrong key is refused
# (77); holding the right one, published.  The agent is ended by its PID.
agent() {
	case_begin agent
	SD=$SSHD_ROOT/agent
	DEST=$(url)
	make_job ag
	eval "$(ssh-agent -s -a "$T/agent.sock")" >/dev/null
	[ -n "${SSH_AGENT_PID:-}" ] || hard_error "ssh-agent did not start"
	ssh-add -q "$SSH_KEY_WRONG" 2>/dev/null || hard_error "ssh-add $SSH_KEY_WRONG failed"
	expect_rc 77 pub --known-hosts "$SSHD_KNOWN_HOSTS"
	assert_absent "$SD"
	check_job 77 "$SD"
	assert_no_login

	ssh-add -q -D 2>/dev/null
	ssh-add -q "$SSH_KEY" 2>/dev/null || hard_error "ssh-add $SSH_KEY failed"
	log_mark
	expect_rc 0 pub --known-hosts "$SSHD_KNOWN_HOSTS"
	check_all 0 "$SD"
	assert_key_used "$SSH_KEY"
	kill "$SSH_AGENT_PID"
	unset SSH_AGENT_PID SSH_AUTH_SOCK
}

# A key the server does not know: 77, never retried (one connection, though --retries 3),
# nothing written.
wrong_key() {
	local conns
	case_begin wrongkey
	SD=$SSHD_ROOT/wrongkey
	DEST=$(url)
	make_job wk
	expect_rc 77 pub --identity "$SSH_KEY_WRONG" --known-hosts "$SSHD_KNOWN_HOSTS" \
		--parallel 1 --retries 3
	assert_grep '^jobpub: ' "$ERR"
	assert_absent "$SD"
	check_job 77 "$SD"
	assert_no_login
	log_since
	conns=$(grep -c 'Connection from 127.0.0.1' "$T/log-since" || true)
	[ "$conns" -le 2 ] || { show "$T/log-since"; fail "refused login retried: $conns connections"; }
}

# An authorized RSA key: Debian 12's libssh2 1.10 signs RSA logins with SHA-1, which OpenSSH 9.2
# refuses; then the error says so and suggests ed25519 (77).  A libssh2 that signs with
# rsa-sha2 logs in (0).
rsa_key() {
	local rc=0
	case_begin rsa
	SD=$SSHD_ROOT/rsa
	DEST=$(url)
	make_job rs
	pub --identity "$SSH_KEY_RSA" --known-hosts "$SSHD_KNOWN_HOSTS" >"$OUT" 2>"$ERR" || rc=$?
	case $rc in
	0) check_all 0 "$SD" ;;
	77)
		assert_grep 'RSA' "$ERR"
		assert_grep 'ed25519' "$ERR"
		assert_absent "$SD"
		check_job 77 "$SD"
		;;
	*) show "$ERR"; fail "RSA key: exit $rc, expected 0 or 77" ;;
	esac
}

# An unknown host key (empty known_hosts, or none at all): 77, the message says how to check and
# add the key (ssh-keyscan), no login attempted, nothing written, known_hosts left alone.
unknown_host_key() {
	case_begin unknownhost
	SD=$SSHD_ROOT/unknownhost
	DEST=$(url)
	make_job uh
	: >"$HOME/.ssh/empty_known_hosts"
	expect_rc 77 pub --identity "$SSH_KEY" --known-hosts "$HOME/.ssh/empty_known_hosts"
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'ssh-keyscan' "$ERR"
	assert_grep_fixed "$SSHD_PORT" "$ERR"
	[ ! -s "$HOME/.ssh/empty_known_hosts" ] || fail "--known-hosts file written without --accept-new-host-key"
	assert_absent "$SD"
	check_job 77 "$SD"
	assert_no_login

	# The default ~/.ssh/known_hosts, absent.
	expect_rc 77 pub --identity "$SSH_KEY"
	assert_grep 'ssh-keyscan' "$ERR"
	assert_absent "$HOME/.ssh/known_hosts"
	assert_absent "$SD"
	assert_no_login
}

# Another key recorded for [127.0.0.1]:PORT: 77 with and without --accept-new-host-key, no login,
# nothing written, known_hosts unchanged.
changed_host_key() {
	case_begin changedhost
	SD=$SSHD_ROOT/changedhost
	DEST=$(url)
	make_job ch
	cp "$SSHD_KNOWN_HOSTS_CHANGED" "$HOME/.ssh/known_hosts"
	cp "$HOME/.ssh/known_hosts" "$T/kh-before"
	expect_rc 77 pub --identity "$SSH_KEY"
	assert_grep '^jobpub: ' "$ERR"
	assert_grep '[Hh][Oo][Ss][Tt] [Kk][Ee][Yy]' "$ERR"
	expect_rc 77 pub --identity "$SSH_KEY" --accept-new-host-key
	assert_grep '[Hh][Oo][Ss][Tt] [Kk][Ee][Yy]' "$ERR"
	cmp -s "$T/kh-before" "$HOME/.ssh/known_hosts" || fail "known_hosts changed"
	expect_rc 77 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS_CHANGED" \
		--accept-new-host-key
	assert_absent "$SD"
	check_job 77 "$SD"
	assert_no_login
}

# --accept-new-host-key with no known_hosts: published, and ~/.ssh/known_hosts now holds the
# server's key for [127.0.0.1]:PORT, so a second publish needs no flag; a changed key is still
# refused with the flag.
accept_new_host_key() {
	local kh
	case_begin acceptnew
	kh=$HOME/.ssh/known_hosts
	SD=$SSHD_ROOT/acceptnew
	DEST=$(url)
	make_job an
	expect_rc 0 pub --identity "$SSH_KEY" --accept-new-host-key
	check_all 0 "$SD"
	[ -f "$kh" ] || fail "--accept-new-host-key did not write $kh"
	ssh-keygen -F "[127.0.0.1]:$SSHD_PORT" -f "$kh" >"$T/found" 2>&1 ||
		{ show "$kh"; fail "$kh has no entry for [127.0.0.1]:$SSHD_PORT"; }
	assert_grep_fixed "$(cut -d' ' -f2 "$SSHD_HOSTKEY_PUB")" "$T/found"
	expect_rc 0 pub --identity "$SSH_KEY"
	check_all 0 "$SD"

	cp "$SSHD_KNOWN_HOSTS_CHANGED" "$kh"
	cp "$kh" "$T/kh-before"
	make_job an2
	expect_rc 77 pub --identity "$SSH_KEY" --accept-new-host-key
	cmp -s "$T/kh-before" "$kh" || fail "a changed host key was written to known_hosts"
	check_job 77 "$SD"
	use_job an
	check_dir "$SD" none "$JMAP"
}

# sftp://archive/PATH with a Host alias in ~/.ssh/config giving HostName, Port, User,
# IdentityFile (~ expanded) and UserKnownHostsFile: no default key or known_hosts exists, so
# only the alias can make it work.  Earlier and later blocks must not interfere (first value
# wins, as in OpenSSH).
config_alias() {
	case_begin alias
	cp "$SSH_KEY" "$HOME/.ssh/archive_key"
	chmod 0600 "$HOME/.ssh/archive_key"
	cp "$SSHD_KNOWN_HOSTS" "$HOME/.ssh/archive_known_hosts"
	cat >"$HOME/.ssh/config" <<EOF
Host other
    HostName 192.0.2.1
    Port 1

Host archive
    HostName 127.0.0.1
    Port $SSHD_PORT
    User $SSH_USER
    IdentityFile ~/.ssh/archive_key
    UserKnownHostsFile ~/.ssh/archive_known_hosts

Host *
    User nobody-at-all
    Port 2
    ServerAliveInterval 15
EOF
	SD=$SSHD_ROOT/alias
	DEST=sftp://archive$SD
	make_job al
	expect_rc 0 pub
	check_all 0 "$SD"
	assert_key_used "$SSH_KEY"
	log_since
	assert_grep "Accepted publickey for $SSH_USER " "$T/log-since"
}

# The server killed (listener and sessions, SIGKILL) while the 200 MiB file is being written:
# 75 after the retries, no final name, only .jobpub-* temporaries left (the server was gone, so
# they could not be removed: mode 0600, named for this attempt).  Then, the server back: a
# re-publish succeeds and leaves no new temporary.
kill_mid_upload() {
	local tmpf size i=0
	case_begin kill
	KD=$T/sshd-kill
	CASE_SSHD=$KD
	start_sshd "$KD"
	SD=$SSHD_ROOT/kill
	DEST=$(url)
	make_job kl big
	pub_bg --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS" --retries 2 --timeout 5
	while :; do
		tmpf=$(find "$SD" -name '.jobpub-*big.dat' -size +0c -print 2>/dev/null | head -n 1)
		[ -z "$tmpf" ] || break
		kill -0 "$PUB" 2>/dev/null || { show "$T/pub.err"; fail "publish ended before big.dat was staged"; }
		i=$((i + 1))
		[ "$i" -lt $((1500 * SLOW)) ] || fail "no temporary big.dat on the server after $((30 * SLOW)) s"
		sleep 0.02
	done
	kill -STOP "$PUB"
	size=$(stat -c %s "$tmpf")
	[ "$size" -lt "$BIGSIZE" ] || hard_error "all of big.dat was written before the server could be killed"
	sh "$TESTS_DIR/sshd-stop.sh" "$KD" KILL || fail "sshd-stop.sh $KD KILL failed"
	kill -CONT "$PUB"
	wait_pub 60
	[ "$PUB_RC" -eq 75 ] || { show "$T/pub.err"; fail "server killed: exit $PUB_RC, expected 75"; }
	assert_grep '^jobpub: ' "$T/pub.err"
	check_all 75 "$SD" some
	temps_below "$SD" >"$T/temps-after-kill"
	[ -s "$T/temps-after-kill" ] || fail "the temporary big.dat vanished while the server was down"

	start_sshd "$KD"
	DEST=$(url) # the same unless sshd-start.sh had to take another port
	expect_rc 0 pub --dest "$DEST" --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	check_all 0 "$SD" some
	temps_below "$SD" >"$T/temps-after-republish"
	cmp -s "$T/temps-after-kill" "$T/temps-after-republish" || {
		diff "$T/temps-after-kill" "$T/temps-after-republish" >&2 || true
		fail "the re-publish left temporary files of its own"
	}
	# gc over SFTP: the stranded temporaries are listed, and deleted only with --apply; then
	# verify --deep reads the files back and finds one changed on the server.
	expect_rc 0 "$JOBPUB" gc --db "$JDB" --dest "$DEST" --older-than 0s --identity "$SSH_KEY" \
		--known-hosts "$SSHD_KNOWN_HOSTS"
	assert_grep '^  temporary +sftp://.*\.jobpub-.*would delete' "$OUT"
	temps_below "$SD" >"$T/temps-after-gc"
	cmp -s "$T/temps-after-kill" "$T/temps-after-gc" || fail "gc without --apply deleted something"
	expect_rc 0 "$JOBPUB" gc --db "$JDB" --dest "$DEST" --older-than 0s --apply \
		--identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	assert_grep '^  temporary +sftp://.*\.jobpub-.*deleted' "$OUT"
	temps_below "$SD" >"$T/temps-after-gc"
	[ ! -s "$T/temps-after-gc" ] || { show "$T/temps-after-gc"; fail "gc --apply left temporaries"; }
	expect_rc 0 "$JOBPUB" verify --deep --db "$JDB" --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	printf 'RESULT of kl\nconverged after 12 iterations\n' >"$SD/results/kl/result.txt"
	expect_rc 1 "$JOBPUB" verify --deep --db "$JDB" --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	assert_grep 'result.txt.*content differs' "$OUT"
}

# The server killed (listener and sessions, SIGKILL) as soon as the first connection has logged
# in, while the other lanes connect (--parallel 4): wherever the kill lands (a lane that never
# opens, or a lane that must reconnect to stage), 75, no crash, the row failed_storage, no
# final name.  Then, the server back, a re-publish succeeds.
kill_while_lanes_connect() {
	local i=0 n
	case_begin killconnect
	KD=$T/sshd-killc
	CASE_SSHD=$KD
	start_sshd "$KD"
	SD=$SSHD_ROOT/killc
	DEST=$(url)
	make_job kc many
	log_mark
	pub_bg --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS" --parallel 4 --retries 1 \
		--timeout 5
	until n=$(tail -n +"$((LOGPOS + 1))" "$SSHD_LOG" | grep -c 'Accepted publickey') && [ "$n" -ge 1 ]; do
		kill -0 "$PUB" 2>/dev/null || { show "$T/pub.err"; fail "publish ended before a login"; }
		i=$((i + 1))
		[ "$i" -lt 3000 ] || fail "no login after 30 s"
		sleep 0.01
	done
	kill -STOP "$PUB"
	sh "$TESTS_DIR/sshd-stop.sh" "$KD" KILL || fail "sshd-stop.sh $KD KILL failed"
	kill -CONT "$PUB"
	wait_pub 60
	[ "$PUB_RC" -eq 75 ] || { show "$T/pub.err"; fail "server killed while lanes connect: exit $PUB_RC, expected 75"; }
	assert_grep '^jobpub: ' "$T/pub.err"
	check_all 75 "$SD" some
	start_sshd "$KD"
	DEST=$(url)
	expect_rc 0 pub --dest "$DEST" --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	check_all 0 "$SD" some
}

# start_relay MODE [N]: tests/relay.py to the shared sshd; its port in RPORT, a known_hosts for
# [127.0.0.1]:RPORT in $HOME/.ssh/relay_known_hosts.
start_relay() {
	local i=0
	rm -f "$T/relay.port"
	python3 "$TESTS_DIR/relay.py" "$T/relay.port" "$SSHD_PORT" "$@" 2>"$T/relay.err" &
	CASE_PIDS="$CASE_PIDS $!"
	while [ ! -s "$T/relay.port" ]; do
		i=$((i + 1))
		[ "$i" -lt 200 ] || { show "$T/relay.err"; hard_error "relay.py did not start"; }
		sleep 0.05
	done
	RPORT=$(cat "$T/relay.port")
	printf '[127.0.0.1]:%s %s\n' "$RPORT" "$(cut -d' ' -f1,2 "$SSHD_HOSTKEY_PUB")" \
		>"$HOME/.ssh/relay_known_hosts"
}

# The server gone between two connects: the run's connection opens, the second lane's does not
# (the relay closes every connection after the first).  The rollback meets a lane that never
# opened (it crashed with SIGSEGV in jp_dest_sync(NULL)): 75, the row failed_storage, nothing
# left on the server.
server_gone_between_connects() {
	case_begin gone
	start_relay first 1
	SD=$SSHD_ROOT/gone
	DEST=sftp://$SSH_USER@127.0.0.1:$RPORT$SD
	make_job gn many
	expect_rc 75 pub --identity "$SSH_KEY" --known-hosts "$HOME/.ssh/relay_known_hosts" \
		--parallel 3 --retries 0 --timeout 5
	assert_grep '^jobpub: .*handshake' "$ERR"
	check_all 75 "$SD" none
	assert_eq "$(sql "$JDB" "SELECT outcome || ' ' || error_class FROM jobpub_attempts")" \
		"failed_storage tempfail" "the attempt row"
}

# A connection cut after 2 MiB client->server (every connection, so retries meet it too):
# 75 with --retries 0, and with --retries 2 still 75 in bounded time.
connection_cut() {
	local t0
	case_begin cut
	start_relay cut 2097152
	SD=$SSHD_ROOT/cut
	DEST=sftp://$SSH_USER@127.0.0.1:$RPORT$SD
	make_job ct mid
	expect_rc 75 pub --identity "$SSH_KEY" --known-hosts "$HOME/.ssh/relay_known_hosts" --retries 0
	assert_grep '^jobpub: ' "$ERR"
	check_all 75 "$SD" some
	t0=$(date +%s)
	expect_rc 75 pub --identity "$SSH_KEY" --known-hosts "$HOME/.ssh/relay_known_hosts" --retries 2
	[ $(($(date +%s) - t0)) -le $((30 * SLOW)) ] || fail "--retries 2 through a cutting relay took $(($(date +%s) - t0)) s"
	check_all 75 "$SD" some
}

# A connection that goes silent after 2 MiB (relay stalls, sockets stay open): with --stall 3
# --timeout 5 --retries 1, exit 75 within 15 s.
connection_stall() {
	case_begin stall
	start_relay stall 2097152
	SD=$SSHD_ROOT/stall
	DEST=sftp://$SSH_USER@127.0.0.1:$RPORT$SD
	make_job st mid
	pub_bg --identity "$SSH_KEY" --known-hosts "$HOME/.ssh/relay_known_hosts" \
		--stall 3 --timeout 5 --retries 1
	wait_pub 40
	[ "$PUB_RC" -eq 75 ] || { show "$T/pub.err"; fail "stalled connection: exit $PUB_RC, expected 75"; }
	[ "$PUB_SECS" -le $((15 * SLOW)) ] || fail "stalled connection: gave up after $PUB_SECS s, expected <= 15"
	assert_grep '^jobpub: ' "$T/pub.err"
	check_all 75 "$SD" some
}

# The stall rule does not wait for the (longer) operation timeout: no progress for --stall 3
# seconds fails the transfer even with the default --timeout of 30 s.
connection_stall_default_timeout() {
	case_begin stall30
	start_relay stall 2097152
	SD=$SSHD_ROOT/stall30
	DEST=sftp://$SSH_USER@127.0.0.1:$RPORT$SD
	make_job s3 mid
	pub_bg --identity "$SSH_KEY" --known-hosts "$HOME/.ssh/relay_known_hosts" --stall 3 --retries 0
	wait_pub 20
	[ "$PUB_RC" -eq 75 ] || { show "$T/pub.err"; fail "stalled connection: exit $PUB_RC, expected 75"; }
	[ "$PUB_SECS" -le $((10 * SLOW)) ] || fail "--stall 3: gave up after $PUB_SECS s, expected <= 10"
	check_all 75 "$SD" some
}

# A regular file where a remote directory must go: 69, the file untouched, the message names
# it.  Then, the file removed, a re-publish after that failure succeeds.
path_is_file_then_republish() {
	case_begin pathfile
	SD=$SSHD_ROOT/pathfile
	DEST=$(url)
	make_job pf
	mkdir -p "$SD"
	printf 'a file, not a directory\n' >"$SD/results"
	KEEP=results
	expect_rc 69 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'results' "$ERR"
	assert_grep '^a file, not a directory$' "$SD/results"
	check_all 69 "$SD"
	KEEP=
	rm -f "$SD/results"
	expect_rc 0 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	check_all 0 "$SD"
	assert_eq "$(sql "$JDB" "SELECT group_concat(exit_code, ' ') FROM
		(SELECT exit_code FROM jobpub_attempts ORDER BY id)")" "69 0" "attempts"
}

# Permission denied on a path: 77 and the message names the path.  Root's sessions ignore file
# modes, so as root the login is $SSHD_ALT_USER (nobody), who owns the 0500 directories;
# otherwise the test user's own 0500 directories do it.  perm_user sets WHO.
perm_user() {
	WHO=$SSH_USER
	if [ "$SSHD_AS_ROOT" -eq 1 ]; then
		[ -n "$SSHD_ALT_USER" ] || hard_error "running as root and there is no user 'nobody'"
		WHO=$SSHD_ALT_USER
	fi
}

# (a) the destination directory is not writable: mkdir of results/ is refused.
permission_denied_mkdir() {
	case_begin perma
	perm_user
	SD=$SSHD_ROOT/perm-a
	DEST=$(url "$WHO")
	make_job pa
	mkdir -p "$SD"
	[ "$WHO" = "$SSH_USER" ] || chown "$WHO" "$SD"
	chmod 0500 "$SD"
	expect_rc 77 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	assert_grep '^jobpub: ' "$ERR"
	assert_grep_fixed "$SD/results" "$ERR"
	assert_grep '[Pp]ermission denied' "$ERR"
	log_since
	assert_grep "Accepted publickey for $WHO " "$T/log-since"
	check_all 77 "$SD"
	assert_eq "$(count_files "$SD")" 0 "files in the read-only directory"
}

# (b) the final directory exists and is not writable: creating the temporary file is refused.
permission_denied_create() {
	case_begin permb
	perm_user
	SD=$SSHD_ROOT/perm-b
	DEST=$(url "$WHO")
	make_job pb
	mkdir -p "$SD/results/pb"
	[ "$WHO" = "$SSH_USER" ] || chown -R "$WHO" "$SD"
	chmod 0500 "$SD/results/pb"
	expect_rc 77 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	assert_grep '^jobpub: ' "$ERR"
	assert_grep_fixed "$SD/results/pb" "$ERR"
	assert_grep '[Pp]ermission denied' "$ERR"
	check_all 77 "$SD"
	assert_eq "$(count_files "$SD")" 0 "files in the read-only directory"
}

# Two publishers of different jobs, started together, into one remote directory tree that does
# not exist yet (both create shared/a/b at once): both 0, every file in place.  Three rounds,
# each into a fresh directory, to give the mkdir race its chances.
two_publishers() {
	local r pa pb rca rcb
	case_begin two
	for r in 1 2 3; do
		SD=$SSHD_ROOT/two-$r
		DEST=$(url)
		make_job "x$r" many
		make_job "y$r" many
		use_job "x$r"
		"$JOBPUB" publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB" \
			--identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS" >"$T/x.out" 2>"$T/x.err" &
		pa=$!
		use_job "y$r"
		"$JOBPUB" publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB" \
			--identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS" >"$T/y.out" 2>"$T/y.err" &
		pb=$!
		CASE_PIDS="$CASE_PIDS $pa $pb"
		PUB=$pa
		wait_pub 60
		rca=$PUB_RC
		PUB=$pb
		wait_pub 60
		rcb=$PUB_RC
		[ "$rca" -eq 0 ] || { show "$T/x.err"; fail "round $r: first publisher exit $rca"; }
		[ "$rcb" -eq 0 ] || { show "$T/y.err"; fail "round $r: second publisher exit $rcb"; }
		use_job "x$r"
		check_job 0 "$SD"
		use_job "y$r"
		check_job 0 "$SD"
		check_dir "$SD" none "$T/jobs/x$r/map" "$T/jobs/y$r/map"
		assert_eq "$(find "$SD/shared/a/b" -type f | wc -l)" 24 "files in shared/a/b"
	done
}

# A job that needs --identity and --known-hosts failed: `republish` without them cannot log in
# (the attempt records no credential; the case's HOME has no key and no known_hosts) and the
# job stays failed; with them (and the network options) it is published.
republish_with_identity() {
	case_begin repubid
	SD=$SSHD_ROOT/repubid
	DEST=$(url)
	make_job ri
	mkdir -p "$SD"
	printf 'a file, not a directory\n' >"$SD/results"
	KEEP=results
	expect_rc 69 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	check_all 69 "$SD"
	KEEP=
	rm -f "$SD/results"
	expect_rc 64 "$JOBPUB" republish --db "$JDB" --timeout soon
	expect_rc 64 "$JOBPUB" republish --db "$JDB" --part-size 1k
	log_mark
	expect_rc 77 timeout -k 5 $((60 * SLOW)) "$JOBPUB" republish --db "$JDB"
	assert_grep '^job 1: failed \(exit 77\)' "$OUT"
	assert_no_login
	assert_eq "$(row_status "$JDB" runs)" failed_storage "status after republish without a key"
	log_mark
	expect_rc 0 timeout -k 5 $((60 * SLOW)) "$JOBPUB" republish --db "$JDB" --identity "$SSH_KEY" \
		--known-hosts "$SSHD_KNOWN_HOSTS" --timeout 20 --stall 20 --retries 1
	assert_grep '^job 1: published$' "$OUT"
	assert_key_used "$SSH_KEY"
	check_all 0 "$SD"
}

# Re-publishing an unchanged job: 0, 'already' published, nothing rewritten on the server
# (same inodes and modification times), the attempt sent 0 bytes.
republish_unchanged() {
	case_begin unchanged
	SD=$SSHD_ROOT/unchanged
	DEST=$(url)
	make_job un many
	expect_rc 0 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	check_all 0 "$SD"
	snapshot "$SD" "$T/snap1"
	sleep 1.1 # a rewrite would show in the modification times
	expect_rc 0 pub --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
	assert_grep 'already' "$ERR"
	check_all 0 "$SD"
	snapshot "$SD" "$T/snap2"
	cmp -s "$T/snap1" "$T/snap2" || {
		diff "$T/snap1" "$T/snap2" >&2 || true
		fail "the second publish changed the server's directory"
	}
	assert_eq "$(sql "$JDB" "SELECT outcome || ' ' || exit_code || ' ' || bytes || ' ' || files
		FROM jobpub_attempts ORDER BY id DESC LIMIT 1")" "published 0 0 14" \
		"second attempt (outcome, exit code, bytes sent, files)"
}

run_case ed25519_identity
run_case default_key_hashed_known_hosts
run_case manifest_sftp_keys
run_case passphrase_key
run_case agent
run_case wrong_key
run_case rsa_key
run_case unknown_host_key
run_case changed_host_key
run_case accept_new_host_key
run_case config_alias
run_case kill_mid_upload
run_case kill_while_lanes_connect
run_case server_gone_between_connects
run_case connection_cut
run_case connection_stall
run_case connection_stall_default_timeout
run_case path_is_file_then_republish
run_case permission_denied_mkdir
run_case permission_denied_create
run_case two_publishers
run_case republish_unchanged
run_case republish_with_identity
finish
