#!/bin/sh
# S3 destinations against a real Ceph RADOS Gateway: tests/rgw-start.sh runs Debian's ceph-mon,
# ceph-osd (memstore) and radosgw on 127.0.0.1 with their own keys and data in $T, stopped by
# PID.  Every check of the bucket is made with curl's own SigV4 (never with jobpub): objects by
# ListObjectsV2 and GET, staged data by ListMultipartUploads.
#
# Scenarios: the KOSMA-tau example, re-published (nothing uploaded) and verified; wrong secret,
# unknown access key, missing credentials, unknown bucket; HTTPS with an untrusted certificate,
# a host name the certificate does not name, a missing AWS_CA_BUNDLE file, then the right CA; a
# 1.5 GiB file over many parts; an empty file; keys with spaces, UTF-8, '+', '%', '='; 1000 small
# files; a conflict without and with --overwrite; a bucket quota that refuses a part; a
# connection cut mid-part (the part is sent again); a stalled connection; the server killed
# mid-part; a Complete whose answer is lost while a bucket policy refuses the abort; SIGTERM and
# SIGKILL mid-upload, SIGTERM during the commit (with another writer's object put over one of
# ours), and gc after them.
#
# After every failed publish: the row is failed_storage, no final key holds anything of the
# attempt, and no incomplete multipart upload is left, except where the server was unreachable
# or the publisher was SIGKILLed: there `jobpub gc` must find the upload and abort it.
#
# Needs the Ceph packages (ceph-mon ceph-osd radosgw ceph-common), curl, python3.
. "$(dirname "$0")/lib.sh"
need curl python3 timeout head
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)

RGWD=$T/rgw
stop_rgw() { [ -d "$RGWD" ] && sh "$TESTS_DIR/rgw-stop.sh" "$RGWD" >/dev/null 2>&1 || true; }
trap 'stop_rgw; cleanup' EXIT
rc=0
sh "$TESTS_DIR/rgw-start.sh" "$RGWD" >"$T/rgw-start.log" 2>&1 || rc=$?
[ "$rc" -ne 99 ] || { show "$T/rgw-start.log"; hard_error "rgw-start.sh: a program is missing"; }
[ "$rc" -eq 0 ] || { show "$T/rgw-start.log"; hard_error "rgw-start.sh failed"; }
. "$RGWD/env"

# jobpub finds its credentials the way AWS tools do; the user's ~/.aws is never read.
export HOME=$T/home
mkdir -p "$HOME"
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_REGION AWS_DEFAULT_REGION AWS_CA_BUNDLE
export AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
B=$RGW_BUCKET

# ---- the bucket as curl sees it -----------------------------------------------------------------
# s3curl METHOD PATH_AND_QUERY [CURL OPTION]...: a request signed by curl (curl 7.88 needs the
# payload hash header, or it signs an empty body).
s3curl() {
	local m=$1 p=$2
	shift 2
	curl -sS --aws-sigv4 "aws:amz:$RGW_REGION:s3" --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X "$m" "$@" "$RGW_ENDPOINT/$B$p"
}
# enc S: S percent-encoded as SigV4 wants it in a query (curl 7.88 signs the query as given).
enc() {
	python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="-_.~"))' "$1"
}
# keys PREFIX: the object keys below PREFIX, one a line (XML-decoded), sorted.
keys() {
	s3curl GET "?list-type=2&max-keys=1000&prefix=$(enc "$1")" |
		python3 -c 'import sys, re, html; d = sys.stdin.read()
for k in sorted(html.unescape(k) for k in re.findall(r"<Key>(.*?)</Key>", d)): print(k)'
}
# uploads PREFIX: incomplete multipart uploads below PREFIX, "KEY UPLOADID" a line.
uploads() {
	s3curl GET "?prefix=$(enc "$1")&uploads=" |
		python3 -c 'import sys, re, html; d = sys.stdin.read()
for u in re.findall(r"<Upload>(.*?)</Upload>", d, re.S):
    print(html.unescape(re.search(r"<Key>(.*?)</Key>", u).group(1)), re.search(r"<UploadId>(.*?)</UploadId>", u).group(1))'
}
# get KEY FILE: the object's bytes into FILE (KEY percent-encoded by the caller where needed).
get() {
	s3curl GET "/$1" -o "$2" -f || fail "GET $1 failed"
}
assert_no_uploads() {
	uploads "$1" >"$T/uploads"
	[ ! -s "$T/uploads" ] || { show "$T/uploads"; fail "incomplete multipart uploads left below $1"; }
}
assert_no_keys() {
	keys "$1" >"$T/keys"
	[ ! -s "$T/keys" ] || { show "$T/keys"; fail "objects below $1 should not exist"; }
}

# ---- a small job --------------------------------------------------------------------------------
# make_job NAME: $T/jobs/NAME with out/ files added by the caller, a catalogue with row 1
# 'running' in table runs, and a manifest publishing every file of out/ (glob) to
# s3://$B/NAME/<basename>.  Sets J JW JDB JMAN.
make_job() {
	J=$T/jobs/$1
	JW=$J/work
	JDB=$J/catalog.db
	JMAN=$J/manifest.yaml
	rm -rf -- "$J"
	mkdir -p "$JW/out"
	sql "$JDB" "CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT, url TEXT);
		INSERT INTO runs (id, status) VALUES (1, 'running');"
	cat >"$JMAN" <<EOF
destination: s3://$B/$1
s3:
  endpoint: $RGW_ENDPOINT
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
	timeout -k 5 300 "$JOBPUB" publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB" "$@"
}
# pub_bg [OPTION]...: the same in the background, signals going to jobpub itself; P is its PID.
pub_bg() {
	"$JOBPUB" publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB" "$@" >"$OUT" 2>"$ERR" &
	P=$!
	bg_started "$P"
}
status_of() {
	sql "$JDB" "SELECT status FROM runs WHERE id = 1"
}
# same_as_local NAME: every file of out/ is in the bucket under NAME/ with the same bytes.
same_as_local() {
	local f n
	for f in "$JW"/out/*; do
		n=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1/${f##*/}")
		get "$n" "$T/got"
		cmp -s "$f" "$T/got" || fail "$1/${f##*/} differs from $f"
	done
}

# ---- 1. the KOSMA-tau example, published, re-published, verified ---------------------------------
make_example
expect_rc 0 "$JOBPUB" publish --job 1 --manifest "$EXMAN" --workdir "$EXJOB" --db "$EXDB" \
	--dest "s3://$B/\${model}" --set "model=$EXMODEL" --s3-endpoint "$RGW_ENDPOINT"
assert_eq "$(sql "$EXDB" "SELECT status FROM pdr_model_jobs WHERE id = 1")" finished "example status"
example_files >"$T/exfiles"
while read -r local remote; do
	get "$EXMODEL/$remote" "$T/got"
	cmp -s "$EXJOB/$local" "$T/got" || fail "$remote differs from $local"
done <"$T/exfiles"
assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_files WHERE etag LIKE '\"%-1\"'")" \
	"$(sql "$EXDB" "SELECT count(*) FROM jobpub_files")" "every file recorded with its ETag"
assert_eq "$(sql "$EXDB" "SELECT remote_url FROM jobpub_files WHERE output = 'textout'")" \
	"s3://$B/$EXMODEL/pdrgrid/TEXTOUT$EXNAME" "recorded URL"
assert_no_uploads "$EXMODEL/"
# Re-published unchanged: nothing is sent (recorded ETag and SHA-256, or our metadata).
expect_rc 0 "$JOBPUB" publish --job 1 --manifest "$EXMAN" --workdir "$EXJOB" --db "$EXDB" \
	--dest "s3://$B/\${model}" --set "model=$EXMODEL" --s3-endpoint "$RGW_ENDPOINT"
assert_grep 'all already there' "$ERR"
assert_eq "$(sql "$EXDB" "SELECT bytes FROM jobpub_attempts ORDER BY id DESC LIMIT 1")" 0 "bytes of the re-publish"
AWS_ENDPOINT_URL=$RGW_ENDPOINT expect_rc 0 "$JOBPUB" verify --deep --db "$EXDB" 1
assert_grep 'ok' "$OUT"

# ---- 2. credentials and bucket ------------------------------------------------------------------
make_job auth
printf 'data\n' >"$JW/out/a.txt"
AWS_SECRET_ACCESS_KEY=wrong-secret-value expect_rc 77 pub
assert_grep 'SignatureDoesNotMatch' "$ERR"
assert_grep 'request id' "$ERR"
assert_no_grep 'wrong-secret-value' "$ERR"
assert_eq "$(status_of)" failed_storage "wrong secret"
sql "$JDB" "SELECT message FROM jobpub_attempts" >"$T/msgs"
assert_no_grep 'wrong-secret-value' "$T/msgs"
AWS_ACCESS_KEY_ID=NOSUCHKEY0000000000 expect_rc 77 pub
assert_grep 'InvalidAccessKeyId' "$ERR"
expect_rc 78 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$JOBPUB" publish --job 1 \
	--manifest "$JMAN" --workdir "$JW" --db "$JDB"
assert_grep "no credentials: looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, $HOME/.aws/credentials \[default\]" "$ERR"
# The same keys from ~/.aws/credentials, for a named profile.
mkdir -p "$HOME/.aws"
printf '[archive]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$RGW_ACCESS_KEY" \
	"$RGW_SECRET_KEY" >"$HOME/.aws/credentials"
expect_rc 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=archive "$JOBPUB" \
	publish --job 1 --manifest "$JMAN" --workdir "$JW" --db "$JDB"
assert_eq "$(status_of)" finished "profile credentials"
rm -rf "$HOME/.aws"
make_job nobucket
printf 'data\n' >"$JW/out/a.txt"
expect_rc 69 pub --dest "s3://no-such-bucket-here/x"
assert_grep 'NoSuchBucket' "$ERR"
assert_eq "$(status_of)" failed_storage "unknown bucket"

# TLS is always verified: the gateway's HTTPS endpoint has a certificate from a private CA.
make_job tls
printf 'over TLS\n' >"$JW/out/t.txt"
expect_rc 77 pub --s3-endpoint "$RGW_TLS_ENDPOINT"
assert_grep 'certificate' "$ERR"
assert_grep 'AWS_CA_BUNDLE may name a CA file' "$ERR"
assert_eq "$(status_of)" failed_storage "untrusted certificate"
# The right CA, but a name the certificate does not carry (it is for IP 127.0.0.1).
AWS_CA_BUNDLE=$RGW_CA expect_rc 77 pub --s3-endpoint "https://localhost:$RGW_TLS_PORT"
assert_grep 'localhost' "$ERR"
AWS_CA_BUNDLE=$T/no-such-ca.pem expect_rc 78 pub --s3-endpoint "$RGW_TLS_ENDPOINT"
assert_grep "^jobpub: s3: AWS_CA_BUNDLE=$T/no-such-ca.pem: No such file or directory" "$ERR"
assert_no_keys tls/
assert_no_uploads tls/
AWS_CA_BUNDLE=$RGW_CA expect_rc 0 pub --s3-endpoint "$RGW_TLS_ENDPOINT"
assert_eq "$(status_of)" finished "publish over TLS"
same_as_local tls
assert_no_uploads tls/

# ---- 3. odd keys, an empty file, 1000 small files -----------------------------------------------
make_job odd
printf 'space\n' >"$JW/out/with space.txt"
printf 'utf8\n' >"$JW/out/$(printf 'caf\303\251.txt')"
printf 'plus\n' >"$JW/out/a+b.txt"
printf 'pct\n' >"$JW/out/100%.txt"
printf 'eq\n' >"$JW/out/k=v.txt"
: >"$JW/out/empty"
expect_rc 0 pub --parallel 3
same_as_local odd
keys odd/ >"$T/k"
assert_eq "$(wc -l <"$T/k" | tr -d ' ')" 6 "objects of odd/"
assert_grep_fixed 'odd/100%.txt' "$T/k"
assert_grep_fixed 'odd/with space.txt' "$T/k"
AWS_ENDPOINT_URL=$RGW_ENDPOINT expect_rc 0 "$JOBPUB" verify --deep --db "$JDB" 1
assert_no_uploads odd/
# An object of one part carries its SHA-256 (x-amz-meta-sha256), the empty one too.
for f in "with space.txt" empty; do
	n=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "odd/$f")
	s3curl HEAD "/$n" -I -f >"$T/head" || fail "HEAD odd/$f"
	want=$(sha256sum <"$JW/out/$f" | cut -d' ' -f1)
	grep -qi "^x-amz-meta-sha256: $want" "$T/head" || { show "$T/head"; fail "odd/$f: no x-amz-meta-sha256 $want"; }
done

make_job many
python3 - "$JW/out" <<'EOF'
import os, sys
for i in range(1000):
    with open(os.path.join(sys.argv[1], "f%04d" % i), "wb") as f:
        f.write(("file %d\n" % i).encode() * 50)
EOF
expect_rc 0 pub
assert_eq "$(keys many/ | wc -l | tr -d ' ')" 1000 "objects of many/"
get many/f0999 "$T/got"
cmp -s "$JW/out/f0999" "$T/got" || fail "many/f0999 differs"
assert_no_uploads many/
expect_rc 0 pub
assert_grep 'all already there' "$ERR"

# ---- 4. conflict, with and without --overwrite --------------------------------------------------
make_job conflict
printf 'ours\n' >"$JW/out/c.txt"
printf 'theirs\n' >"$T/theirs"
s3curl PUT /conflict/c.txt -T "$T/theirs" -f >/dev/null || fail "PUT theirs"
expect_rc 69 pub
assert_grep 'conflict: s3://.*/conflict/c.txt already holds different content' "$ERR"
get conflict/c.txt "$T/got"
cmp -s "$T/theirs" "$T/got" || fail "conflict: the other object was changed"
assert_no_uploads conflict/
expect_rc 0 pub --overwrite
get conflict/c.txt "$T/got"
cmp -s "$JW/out/c.txt" "$T/got" || fail "--overwrite did not replace the object"

# ---- 4a. verify and gc after the fact: a changed object, a stray temporary, a foreign object ----
# verify --deep reads the object back: same size, other bytes is "content differs"; a deleted
# object is "missing".  gc lists a temporary name nobody leases and deletes it only with
# --apply; an object no job records is reported, never deleted.
printf 'OURS\n' >"$T/same-size"
s3curl PUT /conflict/c.txt -T "$T/same-size" -f >/dev/null || fail "PUT same-size"
expect_rc 0 "$JOBPUB" verify --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" 1
expect_rc 1 "$JOBPUB" verify --deep --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" 1
assert_grep 'c.txt.*content differs' "$OUT"
s3curl DELETE /conflict/c.txt -f >/dev/null || fail "DELETE c.txt"
expect_rc 1 "$JOBPUB" verify --deep --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" 1
assert_grep 'c.txt.*missing' "$OUT"
printf 'stray\n' >"$T/stray"
s3curl PUT /conflict/.jobpub-0123456789abcdef.c.txt -T "$T/stray" -f >/dev/null || fail "PUT temporary"
s3curl PUT /conflict/foreign.txt -T "$T/stray" -f >/dev/null || fail "PUT foreign"
expect_rc 0 "$JOBPUB" gc --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" --older-than 0s
assert_grep 'temporary.*\.jobpub-0123456789abcdef\.c\.txt.*would delete' "$OUT"
assert_grep 'unreferenced.*foreign\.txt' "$OUT"
assert_grep 'missing.*conflict/c\.txt' "$OUT"
expect_rc 0 "$JOBPUB" gc --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" --older-than 0s --apply
assert_grep 'temporary.*deleted' "$OUT"
keys conflict/ >"$T/keys"
assert_no_grep '\.jobpub-' "$T/keys"
assert_grep '^conflict/foreign\.txt$' "$T/keys"

# ---- 4b. a full store: the bucket's quota refuses a part (69, like ENOSPC) -----------------------
make_job full
head -c $((3 * 1024 * 1024)) /dev/urandom >"$JW/out/big.bin"
printf 'small\n' >"$JW/out/small.txt"
B0=$B
B=jobpub-full
s3curl PUT "" -f -o /dev/null || fail "creating the bucket $B"
"$RGW_ADMIN" quota set --quota-scope=bucket --bucket="$B" --max-size=1048576 >"$T/quota.log" 2>&1 &&
	"$RGW_ADMIN" quota enable --quota-scope=bucket --bucket="$B" >>"$T/quota.log" 2>&1 ||
	{ show "$T/quota.log"; fail "radosgw-admin quota"; }
expect_rc 69 pub --dest "s3://$B/full"
assert_grep 'QuotaExceeded' "$ERR"
assert_grep "s3://$B/full/big.bin" "$ERR"
assert_eq "$(status_of)" failed_storage "quota exceeded"
assert_no_keys full/
assert_no_uploads full/
B=$B0

# ---- 5. a 1.5 GiB file over many parts ----------------------------------------------------------
make_job huge
head -c $((1536 * 1024 * 1024)) /dev/urandom >"$JW/out/huge.bin" || hard_error "cannot write 1.5 GiB into $T"
expect_rc 0 pub --part-size 64MiB
sha_local=$(sha256sum <"$JW/out/huge.bin" | cut -d' ' -f1)
assert_eq "$(sql "$JDB" "SELECT sha256 FROM jobpub_files")" "$sha_local" "recorded SHA-256"
assert_eq "$(sql "$JDB" "SELECT etag FROM jobpub_files")" "$(sql "$JDB" "SELECT etag FROM jobpub_files" | grep -E '^"[0-9a-f]{32}-24"$')" "ETag of 24 parts"
assert_eq "$(s3curl GET /huge/huge.bin | sha256sum | cut -d' ' -f1)" "$sha_local" "content of huge.bin"
assert_no_uploads huge/
# Unchanged: known by its recorded ETag, without reading 1.5 GiB back (the gateway logs every
# request it serves).
gets_before=$(grep -c "\"GET /$B/huge/huge.bin " "$RGW_LOG" || true)
expect_rc 0 pub
assert_grep 'all already there' "$ERR"
assert_eq "$(grep -c "\"GET /$B/huge/huge.bin " "$RGW_LOG" || true)" "$gets_before" "GETs of huge.bin by the re-publish"
s3curl DELETE /huge/huge.bin -f >/dev/null
rm -f "$JW/out/huge.bin"

# ---- 6. failures mid-upload ---------------------------------------------------------------------
head -c $((96 * 1024 * 1024)) /dev/urandom >"$T/mid.bin"
RELAY_PID=
start_relay() { # MODE [N]: a relay to the gateway; RELAY_URL
	rm -f "$T/relay.port"
	python3 "$TESTS_DIR/relay.py" "$T/relay.port" "$RGW_PORT" "$@" &
	RELAY_PID=$!
	bg_started "$RELAY_PID"
	for _ in $(seq 100); do [ -s "$T/relay.port" ] && break; sleep 0.05; done
	[ -s "$T/relay.port" ] || fail "relay did not start"
	RELAY_URL=http://127.0.0.1:$(cat "$T/relay.port")
}
stop_relay() { kill "$RELAY_PID" 2>/dev/null || true; wait "$RELAY_PID" 2>/dev/null || true; }

# A connection cut after 20 MiB: the parts on it are sent again on a new one.
make_job cut
ln "$T/mid.bin" "$JW/out/mid.bin"
start_relay cut $((20 * 1024 * 1024))
expect_rc 0 pub --dest "s3://$B/cut" --s3-endpoint "$RELAY_URL"
stop_relay
assert_grep 'sending it again' "$ERR"
same_as_local cut
assert_no_uploads cut/

# A stalled connection: the stall rule ends every try; the upload is aborted (small requests
# still pass the relay), the row is failed_storage.
make_job stall
ln "$T/mid.bin" "$JW/out/mid.bin"
start_relay stall $((4 * 1024 * 1024))
expect_rc 75 pub --s3-endpoint "$RELAY_URL" --stall 2 --retries 1
stop_relay
assert_eq "$(status_of)" failed_storage "stalled"
assert_no_keys stall/
assert_no_uploads stall/

# SIGTERM mid-upload: every staged upload aborted, nothing visible.
make_job term
ln "$T/mid.bin" "$JW/out/mid.bin"
printf 'small\n' >"$JW/out/small.txt"
start_relay stall $((8 * 1024 * 1024))
pub_bg --s3-endpoint "$RELAY_URL" --stall 30
for _ in $(seq 200); do [ -n "$(uploads term/)" ] && break; sleep 0.05; done
sleep 1
kill -TERM "$P"
rc=0
wait "$P" || rc=$?
stop_relay
assert_eq "$rc" 75 "exit code after SIGTERM"
assert_no_keys term/
assert_no_uploads term/
[ "$(status_of)" = failed_storage ] || fail "status after SIGTERM: $(status_of)"

# SIGTERM while the files are being committed: a Complete already sent runs to its end, and the
# rollback removes every object this attempt made visible, but not another writer's object put
# over one of ours after our commit (a plain DELETE would remove it).
make_job termc
python3 - "$JW/out" <<'PYEOF'
import os, sys
for i in range(600):
    with open(os.path.join(sys.argv[1], "c%04d" % i), "wb") as f:
        f.write(b"%d\n" % i)
PYEOF
pub_bg -v
for _ in $(seq 1200); do grep -q ': committed ' "$ERR" && break; sleep 0.05; done
grep -q ': committed ' "$ERR" || fail "SIGTERM in the commit: no file committed within 60 s"
ck=$(sed -n 's|.*: committed out [^ ]* -> s3://[^/]*/\(termc/c[0-9]*\) .*|\1|p' "$ERR" | head -n 1)
[ -n "$ck" ] || { show "$ERR"; fail "SIGTERM in the commit: no committed key in the log"; }
printf 'theirs\n' >"$T/theirs-termc"
s3curl PUT "/$ck" -T "$T/theirs-termc" -f >/dev/null || fail "PUT over $ck"
kill -TERM "$P"
rc=0
wait "$P" || rc=$?
assert_eq "$rc" 75 "exit code after SIGTERM in the commit"
keys termc/ >"$T/keys"
[ "$(cat "$T/keys")" = "$ck" ] || { show "$T/keys"; fail "after SIGTERM in the commit: only $ck (another writer's) should be left"; }
get "$ck" "$T/got"
cmp -s "$T/got" "$T/theirs-termc" || fail "the rollback touched another writer's $ck"
grep -q "kept: another writer's object replaced ours" "$ERR" || { show "$ERR"; fail "no warning for $ck"; }
s3curl DELETE "/$ck" -f >/dev/null || fail "DELETE $ck"
assert_no_uploads termc/
[ "$(status_of)" = failed_storage ] || fail "status after SIGTERM in the commit: $(status_of)"

# SIGKILL mid-upload: the upload stays; gc finds it and aborts it.
make_job kill
ln "$T/mid.bin" "$JW/out/mid.bin"
start_relay stall $((8 * 1024 * 1024))
pub_bg --s3-endpoint "$RELAY_URL" --stall 30
for _ in $(seq 200); do [ -n "$(uploads kill/)" ] && break; sleep 0.05; done
kill -KILL "$P"
wait "$P" 2>/dev/null || true
stop_relay
[ -n "$(uploads kill/)" ] || fail "SIGKILL: expected an incomplete upload"
assert_no_keys kill/
# The job's lease died with its process (same host, dead PID): gc may touch the upload.
expect_rc 0 "$JOBPUB" gc --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" --older-than 0s
assert_grep 'upload +s3://.*/kill/mid.bin .*would abort' "$OUT"
[ -n "$(uploads kill/)" ] || fail "gc without --apply aborted an upload"
expect_rc 0 "$JOBPUB" gc --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" --older-than 0s --apply
assert_grep 'aborted' "$OUT"
assert_no_uploads kill/
# and the job publishes afterwards.
expect_rc 0 pub
same_as_local kill

# The server killed mid-part: no answer, exit 75; the upload stays on the server (the abort
# cannot reach it) until gc, once the gateway is back.
make_job down
ln "$T/mid.bin" "$JW/out/mid.bin"
start_relay stall $((8 * 1024 * 1024))
pub_bg --s3-endpoint "$RELAY_URL" --retries 0 --timeout 3
for _ in $(seq 200); do [ -n "$(uploads down/)" ] && break; sleep 0.05; done
stop_relay # the only way to the "server" is gone: connections refused from now on
rc=0
wait "$P" || rc=$?
assert_eq "$rc" 75 "exit code with the server gone"
assert_eq "$(status_of)" failed_storage "server gone"
assert_no_keys down/
expect_rc 0 "$JOBPUB" gc --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" --older-than 0s --apply
assert_no_uploads down/

# A Complete that the gateway carried out but whose answer never came (the relay drops it), and
# a bucket policy that refuses AbortMultipartUpload: the rollback still finds our object by its
# token and deletes it (gc could not: it is no longer an upload).
make_job mute
printf 'muted\n' >"$JW/out/m.txt"
cat >"$T/deny-abort.json" <<EOF
{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": ["*"]},
 "Action": ["s3:AbortMultipartUpload"], "Resource": ["arn:aws:s3:::$B/*"]}]}
EOF
s3curl PUT "?policy=" -T "$T/deny-abort.json" -f >/dev/null || fail "PUT of the bucket policy"
start_relay mute 'POST [^ ]*[?]uploadId='
expect_rc 75 pub --s3-endpoint "$RELAY_URL" --retries 0 --timeout 2
stop_relay
s3curl DELETE "?policy=" -f >/dev/null || fail "DELETE of the bucket policy"
assert_grep 'complete upload .*mute/m.txt: Operation timed out' "$ERR"
assert_grep 'abort upload .*403 AccessDenied.*bucket.s policy' "$ERR"
assert_no_keys mute/
assert_no_uploads mute/
assert_eq "$(status_of)" failed_storage "Complete unanswered, abort refused"

# The gateway itself killed (SIGKILL, by its PID) mid-part: exit 75, nothing visible; once it
# runs again, gc finds what was staged and aborts it.
make_job crash
head -c $((768 * 1024 * 1024)) /dev/urandom >"$JW/out/big.bin" || hard_error "cannot write 768 MiB into $T"
pub_bg --retries 0 --timeout 3
for _ in $(seq 400); do [ -n "$(uploads crash/)" ] && break; sleep 0.02; done
[ -n "$(uploads crash/)" ] || fail "crash: the upload did not start"
kill -KILL "$RGW_PID"
rc=0
wait "$P" || rc=$?
assert_eq "$rc" 75 "exit code with the gateway killed"
assert_eq "$(status_of)" failed_storage "gateway killed"
radosgw -c "$CEPH_CONF" -n client.rgw.jobpub >"$T/radosgw-restart.log" 2>&1 || { show "$T/radosgw-restart.log"; fail "radosgw did not start again"; }
for _ in $(seq 300); do s3curl GET "?list-type=2&max-keys=1" -f >/dev/null 2>&1 && break; sleep 0.1; done
assert_no_keys crash/
[ -n "$(uploads crash/)" ] || fail "crash: the staged upload should still be there for gc"
expect_rc 0 "$JOBPUB" gc --db "$JDB" --s3-endpoint "$RGW_ENDPOINT" --older-than 0s --apply
assert_no_uploads crash/
expect_rc 0 pub
same_as_local crash

exit 0
