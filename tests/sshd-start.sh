#!/bin/sh
# sshd-start.sh DIR - starts a private OpenSSH sshd for the SFTP tests, as root or not.
#
# Everything lives in DIR (created if needed): its own host key (ed25519 unless told),
# authorized_keys, config, pid file and log.  It listens on 127.0.0.1 and a free high port only,
# never reads /etc/ssh and never uses port 22.  The sftp subsystem is internal-sftp with DIR/root
# as start directory and no chroot, so that the absolute path DIR/root/x is what
# sftp://user@127.0.0.1:PORT/DIR/root/x names.
#
# DIR/env (sourceable) then describes it:
#   SSHD_DIR SSHD_PORT SSHD_PID SSHD_LOG SSHD_ROOT  the server, its log and its start directory
#   SSH_USER            the user to log in as (the one running this script)
#   SSHD_ALT_USER       when run as root: 'nobody', who may also log in with the same keys (a
#                       session that does not bypass file modes); empty otherwise
#   SSHD_HOSTKEY_PUB    the server's public host key
#   SSHD_KNOWN_HOSTS    a known_hosts file with the [127.0.0.1]:PORT entry
#   SSHD_KNOWN_HOSTS_HASHED   the same entry, hashed (ssh-keygen -H)
#   SSHD_KNOWN_HOSTS_CHANGED  another key for [127.0.0.1]:PORT (a "changed host key")
#   SSH_KEY             an ed25519 client key without passphrase, authorized
#   SSH_KEY_PASS SSH_KEY_PASSPHRASE_FILE  an authorized ed25519 key with a passphrase, and a file
#                       (mode 0600) holding the passphrase on one line
#   SSH_KEY_WRONG       an ed25519 key that is not authorized
#   SSH_KEY_RSA         an authorized RSA key (libssh2 1.10 signs with SHA-1, which sshd refuses)
#   SSHD_HOSTKEY_TYPE   the type of the one host key the server offers (see below)
# Run again on the same DIR (after sshd-stop.sh), it reuses the keys and tries the same port
# first.  Exit 0 once the port answers, 99 when sshd or ssh-keygen is missing, 1 otherwise.
#
# SSHD_HOSTKEY_TYPE (environment) chooses that host key: ed25519 (the default), rsa (2048
# bits), ecdsa (nistp256), ecdsa384, ecdsa521 or dsa; the server offers no other, so a client
# meets exactly that type.  For rsa and dsa the server also offers the SHA-1 signatures ssh-rsa / ssh-dss
# (HostKeyAlgorithms +...), all that libssh2 1.10 can verify: an old server's set-up.  Each type
# has its own key file in DIR, so DIR can be restarted with another type and back.
set -eu

die() {
	printf 'sshd-start: %s\n' "$*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: sshd-start.sh DIR"
SSHD=${SSHD:-/usr/sbin/sshd}
if [ ! -x "$SSHD" ]; then
	printf 'sshd-start: %s is missing (apt-get install openssh-server)\n' "$SSHD" >&2
	exit 99
fi
for t in ssh-keygen ssh-keyscan od; do
	command -v "$t" >/dev/null 2>&1 || {
		printf 'sshd-start: %s is missing (apt-get install openssh-client)\n' "$t" >&2
		exit 99
	}
done

mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
case $DIR in
*[!A-Za-z0-9/._+-]*) die "DIR '$DIR': only letters, digits and /._+- please (it goes into env and sshd_config)" ;;
esac

if [ -f "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; then
	die "an sshd is already running for $DIR (pid $(cat "$DIR/sshd.pid")); sshd-stop.sh it first"
fi

umask 077
if [ "$(id -u)" -eq 0 ]; then
	AS_ROOT=1
	# Privilege separation needs its empty directory when sshd runs as root.
	mkdir -p /run/sshd
	chmod 0755 /run/sshd
	# Another user's session (SSHD_ALT_USER) must reach DIR/root and read authorized_keys.
	ALT_USER=
	if id nobody >/dev/null 2>&1; then ALT_USER=nobody; fi
else
	AS_ROOT=0
	ALT_USER=
fi
chmod 0711 "$DIR"
mkdir -p "$DIR/root"
chmod 0755 "$DIR/root"

# newkey FILE [PASSPHRASE]: a key pair of type KEYTYPE (ssh-keygen -t words; default ed25519),
# unless it already exists.
newkey() {
	[ -f "$1" ] && [ -f "$1.pub" ] && return 0
	rm -f "$1" "$1.pub"
	ssh-keygen -q -t ${KEYTYPE:-ed25519} -N "${2:-}" -C "jobpub-test-${1##*/}" -f "$1" >/dev/null ||
		die "ssh-keygen failed for $1"
}
HOSTKEY_TYPE=${SSHD_HOSTKEY_TYPE:-ed25519}
HOSTKEY_ALGS=
case $HOSTKEY_TYPE in
ed25519) KEYTYPE=ed25519 ;;
rsa) KEYTYPE='rsa -b 2048' HOSTKEY_ALGS='HostKeyAlgorithms +ssh-rsa' ;;
dsa) KEYTYPE=dsa HOSTKEY_ALGS='HostKeyAlgorithms +ssh-dss' ;;
ecdsa) KEYTYPE=ecdsa ;;
ecdsa384 | ecdsa521) KEYTYPE="ecdsa -b ${HOSTKEY_TYPE#ecdsa}" ;;
*) die "SSHD_HOSTKEY_TYPE '$HOSTKEY_TYPE': ed25519, rsa, ecdsa, ecdsa384, ecdsa521 or dsa" ;;
esac
SCANTYPE=${KEYTYPE%% *}
HOSTKEY=$DIR/ssh_host_${HOSTKEY_TYPE}_key
newkey "$HOSTKEY"
KEYTYPE=ed25519
newkey "$DIR/other_host_key"
newkey "$DIR/id_ed25519"
newkey "$DIR/id_wrong"
KEYTYPE=rsa
newkey "$DIR/id_rsa"
KEYTYPE=ed25519
if [ ! -f "$DIR/id_pass.passphrase" ] || [ ! -f "$DIR/id_pass" ]; then
	rm -f "$DIR/id_pass" "$DIR/id_pass.pub"
	# Spaces inside, random enough never to appear by chance in argv, logs or the catalogue.
	pass="jobpub test $(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
	printf '%s\n' "$pass" >"$DIR/id_pass.passphrase"
	newkey "$DIR/id_pass" "$pass"
fi
chmod 0600 "$DIR/id_pass.passphrase"
cat "$DIR/id_ed25519.pub" "$DIR/id_pass.pub" "$DIR/id_rsa.pub" >"$DIR/authorized_keys"
chmod 0644 "$DIR/authorized_keys" "$DIR"/*.pub

USER_NAME=$(id -un)

# free_port: a random port in 20000-59999 that nothing listens on (as far as ss can tell; the
# bind by sshd is the real test).
free_port() {
	local p n
	while :; do
		n=$(od -An -tu2 -N2 /dev/urandom | tr -d ' ')
		p=$((20000 + n % 40000))
		if command -v ss >/dev/null 2>&1 && ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			continue
		fi
		echo "$p"
		return 0
	done
}

write_config() {
	cat >"$DIR/sshd_config" <<EOF
# Written by tests/sshd-start.sh; nothing from /etc/ssh is read.
ListenAddress 127.0.0.1:$1
HostKey $HOSTKEY
$HOSTKEY_ALGS
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
UseDNS no
LogLevel VERBOSE
# Several publishers with several connections each, and their retries, must not be dropped.
MaxStartups 100:30:200
MaxSessions 32
Subsystem sftp internal-sftp -d $DIR/root
EOF
}

# The port of the previous run first, so that known_hosts files written by a test stay valid.
port=
if [ -f "$DIR/env" ]; then
	port=$(sed -n 's/^SSHD_PORT=\([0-9][0-9]*\)$/\1/p' "$DIR/env")
fi
started=
tries=0
touch "$DIR/sshd.log"
while [ "$tries" -lt 20 ]; do
	tries=$((tries + 1))
	[ -n "$port" ] || port=$(free_port)
	write_config "$port"
	rm -f "$DIR/sshd.pid"
	off=$(wc -c <"$DIR/sshd.log")
	# Without -D sshd binds, then detaches; a port in use makes it fail before detaching.
	# -E appends, so one log covers every start of this DIR.
	if "$SSHD" -f "$DIR/sshd_config" -E "$DIR/sshd.log" 2>>"$DIR/sshd.log"; then
		started=1
		break
	fi
	if ! tail -c +"$((off + 1))" "$DIR/sshd.log" | grep -q 'Address already in use\|Cannot bind'; then
		tail -c +"$((off + 1))" "$DIR/sshd.log" >&2
		die "sshd failed to start (config $DIR/sshd_config)"
	fi
	port=
done
[ -n "$started" ] || die "no free port found after $tries tries"

# Wait for the pid file and for the port to answer with our host key.
i=0
while [ ! -s "$DIR/sshd.pid" ]; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || die "sshd wrote no pid file $DIR/sshd.pid"
	sleep 0.1
done
pid=$(cat "$DIR/sshd.pid")
hostkey=$(cut -d' ' -f1,2 "$HOSTKEY.pub")
i=0
while :; do
	if ssh-keyscan -T 2 -t "$SCANTYPE" -p "$port" 127.0.0.1 2>/dev/null | grep -qF "$hostkey"; then
		break
	fi
	kill -0 "$pid" 2>/dev/null || die "sshd (pid $pid) exited; see $DIR/sshd.log"
	i=$((i + 1))
	[ "$i" -lt 100 ] || die "sshd on 127.0.0.1:$port does not answer with its host key"
	sleep 0.1
done

umask 022
printf '[127.0.0.1]:%s %s\n' "$port" "$hostkey" >"$DIR/known_hosts"
cp "$DIR/known_hosts" "$DIR/known_hosts_hashed"
ssh-keygen -q -H -f "$DIR/known_hosts_hashed" >/dev/null 2>&1 || die "ssh-keygen -H failed"
rm -f "$DIR/known_hosts_hashed.old"
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$DIR/other_host_key.pub")" \
	>"$DIR/known_hosts_changed"

cat >"$DIR/env.new" <<EOF
SSHD_DIR='$DIR'
SSHD_PORT=$port
SSHD_PID=$pid
SSHD_LOG='$DIR/sshd.log'
SSHD_ROOT='$DIR/root'
SSHD_AS_ROOT=$AS_ROOT
SSH_USER='$USER_NAME'
SSHD_ALT_USER='$ALT_USER'
SSHD_HOSTKEY_PUB='$HOSTKEY.pub'
SSHD_HOSTKEY_TYPE=$HOSTKEY_TYPE
SSHD_KNOWN_HOSTS='$DIR/known_hosts'
SSHD_KNOWN_HOSTS_HASHED='$DIR/known_hosts_hashed'
SSHD_KNOWN_HOSTS_CHANGED='$DIR/known_hosts_changed'
SSH_KEY='$DIR/id_ed25519'
SSH_KEY_PASS='$DIR/id_pass'
SSH_KEY_PASSPHRASE_FILE='$DIR/id_pass.passphrase'
SSH_KEY_WRONG='$DIR/id_wrong'
SSH_KEY_RSA='$DIR/id_rsa'
EOF
mv "$DIR/env.new" "$DIR/env"
