#!/bin/sh
# tests/invariants must be able to fail: each case builds a consistent state with a real
# publish (file:// and, through the test sshd, sftp://), checks that the checker accepts it,
# then corrupts it in one way and checks that the checker reports exactly that kind of
# violation (exit 1, a "VIOLATION <kind>:" line): a published file deleted, a byte flipped, the
# size changed, a temporary left (allowed while gc reports it; not with --strict), a temporary
# that gc does not report, a final name no job records, a row left `publishing` by a dead
# publisher (allowed for a PID given with --killed, and while the holder lives), a `publishing`
# row without a lease, a failed row still describing published files, a mapped column that
# does not hold its file's URL, an attempt left `running` by a dead process.
. "$(dirname "$0")/lib.sh"
need python3 ssh-keygen ssh-keyscan
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
INV=$TESTS_DIR/invariants

# inv [OPTION]...: runs the checker on the mini job (stdout $OUT, stderr $ERR), its exit in INV_RC.
inv() {
	INV_RC=0
	python3 "$INV" --db "$MDB" --jobpub "$JOBPUB" "$@" >"$OUT" 2>"$ERR" || INV_RC=$?
}
# clean [OPTION]...: the checker accepts the state.
clean() {
	inv "$@"
	[ "$INV_RC" -eq 0 ] || { show "$OUT"; show "$ERR"; fail "checker rejects a consistent state (exit $INV_RC)"; }
}
# caught KIND [OPTION]...: the checker exits 1 and reports a violation of KIND.
caught() {
	local kind=$1
	shift
	inv "$@"
	[ "$INV_RC" -eq 1 ] || { show "$OUT"; show "$ERR"; fail "checker exit $INV_RC, expected 1 (a $kind violation)"; }
	assert_grep "^VIOLATION $kind: " "$OUT"
}

# fresh: the mini job published to $MARCHIVE ($URL, default its file:// URL), checked clean.
fresh() {
	[ -z "${DESTROOT:-}" ] || rm -rf -- "$DESTROOT"
	make_mini
	if [ -n "${DESTURL:-}" ]; then
		expect_rc 0 publish_mini --dest "$DESTURL" $PUBOPTS
		MARCHIVE=$DESTROOT
	else
		expect_rc 0 publish_mini
	fi
	clean $INVOPTS
	F=$MARCHIVE/results/run-a/data.bin
	R=$MARCHIVE/results/run-a/result.txt
	[ -f "$F" ] || fail "published file $F is not there"
}

# dead_pid: a PID that was ours and has ended.
dead_pid() {
	sh -c 'echo $$'
}

# suite NAME: every corruption, on the destination set up by the caller.
suite() {
	fresh
	rm -f "$F"
	caught missing $INVOPTS

	fresh
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(1000); b = f.read(1); f.seek(1000); f.write(bytes([b[0] ^ 0xff]))' "$F"
	caught sha256 $INVOPTS

	fresh
	printf 'more\n' >>"$R"
	caught size $INVOPTS

	fresh
	cp "$F" "${F%/*}/.jobpub-0123456789abcdef.data.bin"
	chmod 0600 "${F%/*}/.jobpub-0123456789abcdef.data.bin"
	clean $INVOPTS                       # gc reports it: a killed publisher's leftover
	caught temporary --strict $INVOPTS   # after recovery nothing may be left
	# A gc that does not report it (a jobpub whose gc misses a temporary).
	cat >"$T/gc-misses" <<EOF
#!/bin/sh
if [ "\$1" = gc ]; then
	"$JOBPUB" "\$@" | python3 -c 'import json, sys
d = json.load(sys.stdin); d["objects"] = [o for o in d["objects"] if o["kind"] != "temporary"]
print(json.dumps(d))'
	exit 0
fi
exec "$JOBPUB" "\$@"
EOF
	chmod +x "$T/gc-misses"
	INV_RC=0
	python3 "$INV" --db "$MDB" --jobpub "$T/gc-misses" $INVOPTS >"$OUT" 2>"$ERR" || INV_RC=$?
	assert_eq "$INV_RC" 1 "checker exit with a temporary gc does not report"
	assert_grep '^VIOLATION temporary: .*jobpub gc does not report' "$OUT"

	fresh
	printf 'bytes of a failed attempt\n' >"${F%/*}/stray.txt"
	caught unreferenced $INVOPTS
	caught unreferenced --leftovers-ok --strict $INVOPTS
	inv --leftovers-ok $INVOPTS          # reported by gc: a leftover of a cut-off publisher
	assert_eq "$INV_RC" 0 "checker exit with --leftovers-ok and an unreferenced file gc reports"

	fresh
	pid=$(dead_pid)
	sql "$MDB" "UPDATE runs SET status = 'publishing';
		INSERT INTO jobpub_leases (job, host, pid, token, since, expires)
		VALUES ('1', '$(hostname)', $pid, 'feedfeedfeedfeed', '2026-01-01T00:00:00Z', strftime('%s','now') + 3600)"
	caught publishing $INVOPTS
	clean --killed "$pid" $INVOPTS
	# A live holder: a publish in progress, not a violation.
	sleep 30 &
	live=$!
	bg_started "$live"
	sql "$MDB" "UPDATE jobpub_leases SET pid = $live"
	clean $INVOPTS
	kill "$live"
	wait "$live" 2>/dev/null || true
	caught publishing $INVOPTS
	sql "$MDB" "DELETE FROM jobpub_leases"
	caught publishing $INVOPTS

	fresh
	sql "$MDB" "UPDATE runs SET status = 'failed_storage'"
	caught status $INVOPTS

	fresh
	sql "$MDB" "UPDATE runs SET result_url = 'file:///elsewhere/result.txt'"
	caught column $INVOPTS

	fresh
	pid=$(dead_pid)
	sql "$MDB" "INSERT INTO jobpub_attempts (job, token, started_at, host, pid, job_table,
		id_column, status_column) SELECT job, 'abababababababab', started_at, host, $pid,
		job_table, id_column, status_column FROM jobpub_attempts LIMIT 1;
		UPDATE runs SET status = 'finished'"
	caught attempt $INVOPTS
}

# ---- file:// ----
DESTURL= INVOPTS= PUBOPTS=
suite
echo "ok: file://"

# ---- sftp:// through the test sshd (the checker reads the served directory) ----
[ -x /usr/sbin/sshd ] || hard_error "/usr/sbin/sshd is missing (apt-get install openssh-server)"
export HOME=$T/home
mkdir -p "$HOME"
unset SSH_AUTH_SOCK
trap 'sh "$TESTS_DIR/sshd-stop.sh" "$T/sshd" KILL >/dev/null 2>&1 || true; cleanup' EXIT
chmod 0711 "$T"
start_sshd "$T/sshd"
DESTROOT=$SSHD_ROOT/archive
DESTURL="sftp://$SSH_USER@127.0.0.1:$SSHD_PORT$DESTROOT"
PUBOPTS="--identity $SSH_KEY --known-hosts $SSHD_KNOWN_HOSTS"
INVOPTS="--identity $SSH_KEY --known-hosts $SSHD_KNOWN_HOSTS"
suite
echo "ok: sftp://"
exit 0
