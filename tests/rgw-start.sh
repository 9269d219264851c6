#!/bin/sh
# rgw-start.sh DIR - starts a private Ceph RADOS Gateway (an S3 server) for the S3 tests, as root
# or not.
#
# A one-node Ceph cluster, all of it in DIR (created if needed) and listening on 127.0.0.1 only:
# one ceph-mon (msgr2 on a free high port), one ceph-osd whose object store is in RAM (memstore,
# RGW_MEMSTORE_BYTES, 3 GiB by default; its ports are a free range of 10 high ports, so that
# several clusters can run side by side), and radosgw with the beast frontend on a free high
# port, plain HTTP and HTTPS (a private CA made here signs its certificate for IP 127.0.0.1).
# No authentication inside the cluster (auth ... required = none), no /etc/ceph, no
# /var/lib/ceph, no /var/log/ceph, no systemd: every command gets -c DIR/ceph.conf.  The daemons
# detach and write their PID to DIR/run/NAME.pid; tests/rgw-stop.sh DIR stops them by PID.
# Every start begins with an empty cluster (the previous logs are moved to DIR/log.prev).
# Signed requests may name any region (radosgw does not check it); RGW_REGION is us-east-1.
#
# One S3 user, one bucket (jobpub-test); path-style addressing only (no rgw dns name).
#
# DIR/env (sourceable) then describes it:
#   RGW_DIR RGW_PORT RGW_PID RGW_LOG  the gateway, its PID and its log (one line per request)
#   RGW_ENDPOINT        http://127.0.0.1:RGW_PORT
#   RGW_TLS_PORT RGW_TLS_ENDPOINT  the same gateway over HTTPS: https://127.0.0.1:RGW_TLS_PORT
#   RGW_CA              DIR/tls/ca.pem, the CA that signed its certificate (AWS_CA_BUNDLE)
#   RGW_REGION          us-east-1
#   RGW_ACCESS_KEY RGW_SECRET_KEY  the S3 user's keys (user id RGW_USER)
#   RGW_BUCKET          jobpub-test, created and empty
#   RGW_ADMIN           DIR/radosgw-admin, radosgw-admin on this cluster (e.g.
#                       "$RGW_ADMIN bucket list --bucket=$RGW_BUCKET"); DIR/ceph likewise
#   CEPH_CONF           DIR/ceph.conf
#   CEPH_MON_PID CEPH_OSD_PID CEPH_MON_LOG CEPH_OSD_LOG  the other two daemons
#
# A test may kill radosgw alone and start it again with `radosgw -c "$CEPH_CONF" -n
# client.rgw.jobpub`: same port, same data (DIR/run/client.rgw.jobpub.pid then holds the new PID,
# which rgw-stop.sh uses; RGW_PID stays the first one).
#
# The data lives in ceph-osd's RAM, and takes about twice its size there (ceph-osd's RSS is
# ~3.1 GB after one 1.5 GiB object); the RSS does not shrink after deletions (the memory is
# reused).  Once RGW_MEMSTORE_BYTES * .97 bytes are stored, writes fail (HTTP 408 after up to
# ~40 s) instead of hanging.
#
# Run again on the same DIR (after rgw-stop.sh), it reuses the keys and tries the same S3 port
# first; the cluster itself is always a new, empty one.  Exit 0 once the gateway answered a
# signed request (the bucket was created), 99 when a Ceph program or curl is missing, 1 otherwise
# (after printing the end of the log concerned and stopping what it had started).  Every wait is
# bounded: RGW_START_TIMEOUT seconds in all (60).
set -eu

die() {
	printf 'rgw-start: %s\n' "$*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: rgw-start.sh DIR"
for t in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph; do
	command -v "$t" >/dev/null 2>&1 || {
		printf 'rgw-start: %s is missing (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common)\n' "$t" >&2
		exit 99
	}
done
for t in curl od timeout openssl; do
	command -v "$t" >/dev/null 2>&1 || {
		printf 'rgw-start: %s is missing (apt-get install curl coreutils openssl)\n' "$t" >&2
		exit 99
	}
done
HERE=$(cd "$(dirname "$0")" && pwd -P)

mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
case $DIR in
*[!A-Za-z0-9/._+-]*) die "DIR '$DIR': only letters, digits and /._+- please (it goes into env and ceph.conf)" ;;
esac
CONF=$DIR/ceph.conf
export CEPH_CONF="$CONF"

for n in client.rgw.jobpub osd.0 mon.a; do
	f=$DIR/run/$n.pid
	if [ -s "$f" ] && tr '\0' ' ' 2>/dev/null <"/proc/$(cat "$f")/cmdline" | grep -qF -- "-c $CONF "; then
		die "$n of $DIR is already running (pid $(cat "$f")); rgw-stop.sh it first"
	fi
done

TIMEOUT=${RGW_START_TIMEOUT:-60}
MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-3221225472}
case $TIMEOUT$MEMSTORE_BYTES in *[!0-9]*) die "RGW_START_TIMEOUT and RGW_MEMSTORE_BYTES must be numbers" ;; esac
DEADLINE=$(($(date +%s) + TIMEOUT))
# left: seconds until the deadline (at least 1), for timeout(1).
left() {
	local n
	n=$((DEADLINE - $(date +%s)))
	[ "$n" -ge 1 ] || n=1
	echo "$n"
}

# On any failure: the end of the log concerned, then stop what was started.
FAILLOG=
started_ok=
on_exit() {
	rc=$?
	[ -z "$started_ok" ] || exit 0
	if [ -n "$FAILLOG" ] && [ -s "$FAILLOG" ]; then
		printf 'rgw-start: the end of %s:\n' "$FAILLOG" >&2
		tail -n 30 "$FAILLOG" | sed 's/^/    | /' >&2
	fi
	sh "$HERE/rgw-stop.sh" "$DIR" KILL >/dev/null 2>&1 || true
	[ "$rc" -ne 0 ] || rc=1
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 1' HUP INT TERM

umask 077
rm -rf "$DIR/mon" "$DIR/osd" "$DIR/run" "$DIR/crash" "$DIR/log.prev" "$DIR/tmp"
[ ! -d "$DIR/log" ] || mv "$DIR/log" "$DIR/log.prev"
mkdir -p "$DIR/mon" "$DIR/osd/ceph-0" "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/tmp"

# S3 keys and port of the previous run, if any; new ones otherwise.
ACCESS_KEY='' SECRET_KEY='' RGW_PORT='' TLS_PORT=''
if [ -f "$DIR/env" ]; then
	ACCESS_KEY=$(sed -n "s/^RGW_ACCESS_KEY='\([A-Z0-9]*\)'$/\1/p" "$DIR/env")
	SECRET_KEY=$(sed -n "s/^RGW_SECRET_KEY='\([A-Za-z0-9]*\)'$/\1/p" "$DIR/env")
	RGW_PORT=$(sed -n 's/^RGW_PORT=\([0-9][0-9]*\)$/\1/p' "$DIR/env")
	TLS_PORT=$(sed -n 's/^RGW_TLS_PORT=\([0-9][0-9]*\)$/\1/p' "$DIR/env")
fi
[ -n "$ACCESS_KEY" ] || ACCESS_KEY=JOBPUB$(od -An -tx1 -N7 /dev/urandom | tr -d ' \n' | tr a-f A-F)
[ -n "$SECRET_KEY" ] || SECRET_KEY=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
rm -f "$DIR/env"

# A private CA and the gateway's certificate (kept for the next start on DIR).
TLS=$DIR/tls
if [ ! -s "$TLS/rgw.pem" ] || [ ! -s "$TLS/ca.pem" ]; then
	rm -rf "$TLS"
	mkdir -p "$TLS"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj '/CN=jobpub test CA' -keyout "$TLS/ca.key" -out "$TLS/ca.pem" >>"$DIR/tls.log" 2>&1 &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=127.0.0.1' \
			-keyout "$TLS/rgw.key" -out "$TLS/rgw.csr" >>"$DIR/tls.log" 2>&1 &&
		printf 'subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n' >"$TLS/rgw.ext" &&
		openssl x509 -req -in "$TLS/rgw.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
			-CAcreateserial -days 30 -extfile "$TLS/rgw.ext" -out "$TLS/rgw.pem" >>"$DIR/tls.log" 2>&1 ||
		{ FAILLOG=$DIR/tls.log; die "openssl could not make the test certificate"; }
	chmod 0644 "$TLS/ca.pem"
fi

# free_port [N]: a random port in 20000-59990 such that no TCP socket uses it nor any of the N-1
# following ones (as far as ss can tell; the bind by the daemon is the real test).
free_port() {
	local used p n i tries
	used='' tries=0
	if command -v ss >/dev/null 2>&1; then
		used=" $(ss -Htan 2>/dev/null | awk '{ sub(/.*:/, "", $4); print $4 }' | tr '\n' ' ')"
	fi
	while :; do
		tries=$((tries + 1))
		[ "$tries" -le 1000 ] || die "no $1 free consecutive ports found"
		n=$(od -An -tu2 -N2 /dev/urandom | tr -d ' ')
		p=$((20000 + n % 39990))
		i=0
		while [ "$i" -lt "${1:-1}" ]; do
			case $used in *" $((p + i)) "*) break ;; esac
			i=$((i + 1))
		done
		[ "$i" -lt "${1:-1}" ] || { echo "$p"; return 0; }
	done
}

FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
# Unix sockets are limited to 107 bytes: no admin sockets when DIR is too long for them.
ASOK='$name.asok'
[ ${#DIR} -le 70 ] || ASOK=

# write_config MON_PORT OSD_PORT_MIN RGW_PORT TLS_PORT
write_config() {
	local asok=
	[ -z "$ASOK" ] || asok=$DIR/run/$ASOK
	cat >"$CONF.new" <<EOF
# Written by tests/rgw-start.sh; nothing from /etc/ceph is read.
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$1
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
ms bind port min = $2
ms bind port max = $(($2 + 9))
# No cephx; without "crc secure" radosgw loops on "get_initial_auth_request returned -13".
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
keyring = $DIR/keyring
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
log to syslog = false
mon cluster log file = $DIR/log/\$cluster.\$channel.log
crash dir = $DIR/crash
tmp dir = $DIR/tmp
debug ms = 0
# One OSD: pools of size 1, few PGs, no autoscaler (there is no mgr either).
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false

[mon]
mon data = $DIR/mon/\$cluster-\$id
# Without it the first elections and pool creations take ~15 s instead of ~1 s.
paxos propose interval = 0.01
# Never refuse to start or to write because the disk holding DIR is rather full.
mon data avail crit = 0
mon data avail warn = 0
# Not above osd failsafe full ratio (.97), or health says "full ratio(s) out of order".
mon osd full ratio = .97
mon osd backfillfull ratio = .96
mon osd nearfull ratio = .95

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd memory target = 268435456
osd op num shards = 2
osd op num threads per shard = 2
osd crush update on start = true

[client]
# Not a daemon (ceph, radosgw-admin): no admin socket, which two at a time would fight over.
admin socket =

[client.rgw.jobpub]
admin socket = $asok
# tcp_nodelay: without it, every answer with a body (the XML of CreateMultipartUpload and
# CompleteMultipartUpload) waits ~40 ms for the client's delayed ACK (Nagle); Ceph recommends it.
rgw frontends = beast endpoint=127.0.0.1:$3 ssl_endpoint=127.0.0.1:$4 ssl_certificate=$DIR/tls/rgw.pem ssl_private_key=$DIR/tls/rgw.key tcp_nodelay=1
rgw thread pool size = 64
# Without it, stopping radosgw waits ~10 s for the lifecycle thread.
rgw enable lc threads = false
rgw enable usage log = false
# With the metadata cache, a radosgw that died (SIGKILL, or a port already in use) stays a
# watcher of the control objects for osd client watch timeout (30 s), and every metadata write
# of the next one (creating a bucket) waits for it.  Everything is local: no cache needed.
rgw cache enabled = false
# Once the memstore is full, writes wait for space forever: fail them after a while instead.
rados osd op timeout = 20
# The data of deleted or overwritten objects and of aborted uploads is freed after 30 s, not 2 h.
rgw gc obj min wait = 30
rgw gc processor period = 10
EOF
	mv "$CONF.new" "$CONF"
}

# ---- mon (a new port if the first one turns out to be taken)
MON_PORT='' OSD_PORT='' tries=0
FAILLOG=$DIR/log/mon.a.log
while :; do
	tries=$((tries + 1))
	[ "$tries" -le 10 ] || die "no free port for ceph-mon after 10 tries"
	MON_PORT=$(free_port 1)
	OSD_PORT=$(free_port 10)
	[ -n "$RGW_PORT" ] || RGW_PORT=$(free_port 1)
	[ -n "$TLS_PORT" ] && [ "$TLS_PORT" != "$RGW_PORT" ] || TLS_PORT=$(free_port 1)
	write_config "$MON_PORT" "$OSD_PORT" "$RGW_PORT" "$TLS_PORT"
	rm -rf "$DIR/mon/ceph-a" "$DIR/monmap" "$DIR/keyring"
	ceph-authtool -C "$DIR/keyring" -g -n mon. --cap mon 'allow *' >/dev/null ||
		die "ceph-authtool failed"
	ceph-authtool "$DIR/keyring" -g -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
		--cap mgr 'allow *' >/dev/null || die "ceph-authtool failed"
	rm -f "$DIR/log/mon..log"
	monmaptool -c "$CONF" --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" \
		"$DIR/monmap" >/dev/null || die "monmaptool failed"
	ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
		>>"$DIR/log/start.log" 2>&1 || { FAILLOG=$DIR/log/start.log; die "ceph-mon --mkfs failed"; }
	off=0
	[ ! -f "$FAILLOG" ] || off=$(wc -c <"$FAILLOG")
	# Without -f it binds, then detaches; failing to bind makes it exit non-zero.
	if timeout "$(left)" ceph-mon -c "$CONF" -i a >>"$DIR/log/start.log" 2>&1; then
		break
	fi
	tail -c +"$((off + 1))" "$FAILLOG" 2>/dev/null | grep -q 'Address already in use\|unable to bind' ||
		die "ceph-mon failed to start"
done

# alive PID: true while a thread of PID runs (a zombie, which init may be slow to reap, does not).
alive() {
	local f line state
	for f in "/proc/$1/task/"*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		state=${line##*) }
		state=${state%% *}
		[ "$state" = Z ] || return 0
	done
	return 1
}

# wait_pidfile NAME: the PID the daemon NAME wrote, once it is there.
wait_pidfile() {
	while [ ! -s "$DIR/run/$1.pid" ]; do
		[ "$(date +%s)" -lt "$DEADLINE" ] || die "$1 wrote no pid file $DIR/run/$1.pid"
		sleep 0.05
	done
	cat "$DIR/run/$1.pid"
}
MON_PID=$(wait_pidfile mon.a)

# ---- osd
FAILLOG=$DIR/log/client.admin.log
osd_id=$(timeout "$(left)" ceph -c "$CONF" --connect-timeout "$(left)" osd new "$OSD_UUID" \
	2>>"$DIR/log/start.log") || { FAILLOG=$DIR/log/mon.a.log; die "ceph osd new failed"; }
[ "$osd_id" = 0 ] || die "ceph osd new gave id '$osd_id', not 0"
FAILLOG=$DIR/log/osd.0.log
timeout "$(left)" ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$DIR/log/start.log" 2>&1 ||
	die "ceph-osd --mkfs failed"
timeout "$(left)" ceph-osd -c "$CONF" -i 0 >>"$DIR/log/start.log" 2>&1 || die "ceph-osd failed to start"
OSD_PID=$(wait_pidfile osd.0)

# ---- the S3 user (radosgw-admin creates the rgw pools, once the OSD is up)
cat >"$DIR/radosgw-admin" <<EOF
#!/bin/sh
# radosgw-admin on the cluster of tests/rgw-start.sh $DIR
exec radosgw-admin -c '$CONF' "\$@"
EOF
cat >"$DIR/ceph" <<EOF
#!/bin/sh
# ceph on the cluster of tests/rgw-start.sh $DIR
exec ceph -c '$CONF' "\$@"
EOF
chmod 0755 "$DIR/radosgw-admin" "$DIR/ceph"
FAILLOG=$DIR/log/start.log
timeout "$(left)" radosgw-admin -c "$CONF" user create --uid=jobpub-test --display-name=jobpub-test \
	--access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/user.json" 2>>"$DIR/log/start.log" || {
	alive "$OSD_PID" || FAILLOG=$DIR/log/osd.0.log
	die "radosgw-admin user create failed"
}

# ---- radosgw (a new port if the first one turns out to be taken)
RGW_LOG=$DIR/log/client.rgw.jobpub.log
FAILLOG=$RGW_LOG
tries=0
RGW_PID=
while [ -z "$RGW_PID" ]; do
	tries=$((tries + 1))
	[ "$tries" -le 10 ] || die "no free port for radosgw after 10 tries"
	write_config "$MON_PORT" "$OSD_PORT" "$RGW_PORT" "$TLS_PORT"
	rm -f "$DIR/run/client.rgw.jobpub.pid"
	off=0
	[ ! -f "$RGW_LOG" ] || off=$(wc -c <"$RGW_LOG")
	timeout "$(left)" radosgw -c "$CONF" -n client.rgw.jobpub >>"$DIR/log/start.log" 2>&1 ||
		die "radosgw failed to start"
	pid=$(wait_pidfile client.rgw.jobpub)
	# Ready when a signed request gets an answer: the creation of the bucket (again after a
	# time-out: creating a bucket one owns already succeeds).
	while :; do
		code=$(curl -sS -o "$DIR/tmp/bucket.out" -w '%{http_code}' --max-time 2 -X PUT \
			--aws-sigv4 'aws:amz:us-east-1:s3' --user "$ACCESS_KEY:$SECRET_KEY" \
			-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
			"http://127.0.0.1:$RGW_PORT/jobpub-test" 2>/dev/null) || code=000
		if [ "$code" = 200 ]; then
			RGW_PID=$pid
			break
		fi
		if [ "$code" != 000 ]; then
			cat "$DIR/tmp/bucket.out" >&2
			die "creating the bucket jobpub-test: HTTP $code"
		fi
		if ! alive "$pid"; then
			tail -c +"$((off + 1))" "$RGW_LOG" 2>/dev/null | grep -q 'Address already in use\|failed to bind' ||
				die "radosgw (pid $pid) exited"
			RGW_PORT=$(free_port 1)
			TLS_PORT=$(free_port 1)
			break
		fi
		[ "$(date +%s)" -lt "$DEADLINE" ] ||
			die "radosgw on 127.0.0.1:$RGW_PORT did not answer within $TIMEOUT s"
		sleep 0.05
	done
done
rm -f "$DIR/tmp/bucket.out"
# The HTTPS endpoint answers too (any HTTP status), with the certificate made above.
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS/ca.pem" \
	"https://127.0.0.1:$TLS_PORT/" 2>"$DIR/tmp/tls.err") || code=000
[ "$code" != 000 ] || { FAILLOG=$DIR/tmp/tls.err; die "radosgw does not answer on https://127.0.0.1:$TLS_PORT"; }

umask 022
cat >"$DIR/env.new" <<EOF
RGW_DIR='$DIR'
RGW_PORT=$RGW_PORT
RGW_PID=$RGW_PID
RGW_LOG='$RGW_LOG'
RGW_ENDPOINT='http://127.0.0.1:$RGW_PORT'
RGW_TLS_PORT=$TLS_PORT
RGW_TLS_ENDPOINT='https://127.0.0.1:$TLS_PORT'
RGW_CA='$TLS/ca.pem'
RGW_REGION='us-east-1'
RGW_USER='jobpub-test'
RGW_ACCESS_KEY='$ACCESS_KEY'
RGW_SECRET_KEY='$SECRET_KEY'
RGW_BUCKET='jobpub-test'
RGW_ADMIN='$DIR/radosgw-admin'
CEPH_CONF='$CONF'
CEPH_MON_PID=$MON_PID
CEPH_MON_PORT=$MON_PORT
CEPH_MON_LOG='$DIR/log/mon.a.log'
CEPH_OSD_PID=$OSD_PID
CEPH_OSD_LOG='$DIR/log/osd.0.log'
export RGW_DIR RGW_PORT RGW_PID RGW_LOG RGW_ENDPOINT RGW_TLS_PORT RGW_TLS_ENDPOINT RGW_CA RGW_REGION RGW_USER RGW_ACCESS_KEY RGW_SECRET_KEY
export RGW_BUCKET RGW_ADMIN CEPH_CONF CEPH_MON_PID CEPH_MON_PORT CEPH_MON_LOG CEPH_OSD_PID CEPH_OSD_LOG
EOF
mv "$DIR/env.new" "$DIR/env"
started_ok=1
exit 0
