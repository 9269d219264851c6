#!/bin/sh
# slurm-start.sh DIR - starts a private one-node Slurm cluster for the Slurm tests, as root.
#
# Debian 12's packages (munge, slurmctld, slurmd, slurm-client), nothing of the system's
# configuration: a munged with its own key and socket, slurmctld and slurmd in the foreground
# (-D) in the background of this script, each with a PID file, a slurm.conf in DIR, state, spool
# and logs in DIR, ports on 127.0.0.1 only (two free high ports).  The node is this host's
# short name with NodeAddr=127.0.0.1.  ProctrackType=proctrack/linuxproc and TaskPlugin=task/none,
# and no cgroup.conf: the packaged slurmd 22.05 dies with a cgroup.conf that disables cgroups.
#
# DIR/slurm.conf.extra, when present, is appended to slurm.conf (Epilog=, Prolog=,
# PrologEpilogTimeout= of a test); the defaults are Epilog=DIR/epilog.d/* and Prolog=DIR/prolog.d/*
# (glob patterns: slurmd expands them for every job, so a test changes its Epilog by changing
# the files, without a reconfigure).
#
# DIR/env (sourceable) then describes it:
#   SLURM_CONF           the configuration (export it: sbatch, scontrol, squeue read it)
#   SLURM_DIR SLURM_NODE SLURM_PARTITION
#   MUNGE_SOCKET         munged's socket
#   MUNGED_PID SLURMCTLD_PID SLURMD_PID
#   SLURMCTLD_LOG SLURMD_LOG
# Exit 0 once the node is IDLE, 99 when a program is missing or not root, 1 otherwise.
set -eu

die() {
	printf 'slurm-start: %s\n' "$*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: slurm-start.sh DIR"
[ "$(id -u)" -eq 0 ] || { echo "slurm-start: must run as root (slurmd runs epilogs as root)" >&2; exit 99; }
for p in /usr/sbin/munged /usr/sbin/mungekey /usr/sbin/slurmctld /usr/sbin/slurmd; do
	[ -x "$p" ] || { echo "slurm-start: $p is missing (apt-get install munge slurmctld slurmd slurm-client)" >&2; exit 99; }
done
for t in scontrol sinfo od hostname; do
	command -v "$t" >/dev/null 2>&1 || { echo "slurm-start: $t is missing (apt-get install slurm-client)" >&2; exit 99; }
done

mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
case $DIR in
*[!A-Za-z0-9/._+-]*) die "DIR '$DIR': only letters, digits and /._+- please" ;;
esac
umask 022
# munged refuses a socket directory writable by others; slurmd runs the job's user's programs
# from its spool, which must be traversable.
chmod 0755 "$DIR"
mkdir -p "$DIR/munge" "$DIR/munge-key" "$DIR/ctld" "$DIR/slurmd" "$DIR/log" "$DIR/epilog.d" "$DIR/prolog.d"
# The key is root-only; the socket must be reachable by the job's user (sbatch, srun).
chmod 0700 "$DIR/munge-key" "$DIR/ctld"
chmod 0755 "$DIR/munge" "$DIR/slurmd" "$DIR/log" "$DIR/epilog.d" "$DIR/prolog.d"
# A glob that matches nothing fails the Prolog (and drains the node): one no-op script each.
for d in epilog.d prolog.d; do
	printf '#!/bin/sh\nexit 0\n' >"$DIR/$d/00-noop"
	chmod 0755 "$DIR/$d/00-noop"
done

# alive PID: the process runs and is not a zombie.
alive() {
	local line state
	read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	state=${line##*) }
	state=${state%% *}
	[ "$state" != Z ]
}

# ---- munge: its own key and socket ----
SOCK=$DIR/munge/munge.socket
[ -f "$DIR/munge-key/munge.key" ] || mungekey --create --keyfile="$DIR/munge-key/munge.key" >/dev/null ||
	die "mungekey failed"
chmod 0400 "$DIR/munge-key/munge.key"
/usr/sbin/munged --foreground --force --socket="$SOCK" --key-file="$DIR/munge-key/munge.key" \
	--pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
	--seed-file="$DIR/munge-key/munged.seed" </dev/null >>"$DIR/log/munged.log" 2>&1 &
MUNGED_PID=$!
echo "$MUNGED_PID" >"$DIR/munged.pid"
i=0
until [ -S "$SOCK" ]; do
	alive "$MUNGED_PID" || { cat "$DIR/log/munged.log" >&2; die "munged exited"; }
	i=$((i + 1))
	[ "$i" -lt 100 ] || die "munged made no socket $SOCK"
	sleep 0.1
done

# ---- slurm.conf ----
# free_port: a random port in 20000-59999 that nothing listens on.
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
NODE=$(hostname -s)
# More CPUs than the machine may have (config_overrides): jobs of the tests run side by side.
CPUS=4
: >"$DIR/plugstack.conf"
SLURM_CONF=$DIR/slurm.conf
export SLURM_CONF

# write_conf: slurm.conf with two new free ports.
write_conf() {
	CTLD_PORT=$(free_port)
	SLURMD_PORT=$(free_port)
	[ "$SLURMD_PORT" != "$CTLD_PORT" ] || SLURMD_PORT=$((CTLD_PORT + 1))
cat >"$DIR/slurm.conf" <<EOF
# Written by tests/slurm-start.sh: a private one-node cluster on 127.0.0.1.
ClusterName=jobpubtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
# Short poll intervals: the tests wait for state changes.
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=5
InactiveLimit=0
KillWait=2
MinJobAge=300
SchedulerParameters=sched_interval=1
Epilog=$DIR/epilog.d/*
Prolog=$DIR/prolog.d/*
EOF
[ ! -f "$DIR/slurm.conf.extra" ] || cat "$DIR/slurm.conf.extra" >>"$DIR/slurm.conf"
cat >>"$DIR/slurm.conf" <<EOF
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

# ---- the daemons, in the foreground (-D) as background processes of this script ----
# in_use LOG: the daemon could not bind its port (taken since free_port looked): try others.
in_use() {
	grep -q 'Address already in use' "$1" 2>/dev/null
}
# start: 0 when both daemons run and the node is idle, 2 when a port was taken, else dies.
start() {
	local i
	: >"$DIR/log/slurmctld.log"
	: >"$DIR/log/slurmd.log"
	/usr/sbin/slurmctld -D -c -f "$SLURM_CONF" </dev/null >>"$DIR/log/slurmctld.out" 2>&1 &
	CTLD_PID=$!
	echo "$CTLD_PID" >"$DIR/slurmctld.pid.start"
	i=0
	until scontrol ping 2>/dev/null | grep -q 'is UP'; do
		if ! alive "$CTLD_PID"; then
			in_use "$DIR/log/slurmctld.log" && return 2
			tail -n 30 "$DIR/log/slurmctld.log" "$DIR/log/slurmctld.out" >&2 2>/dev/null
			die "slurmctld exited"
		fi
		i=$((i + 1))
		[ "$i" -lt 150 ] || die "slurmctld does not answer on port $CTLD_PORT"
		sleep 0.2
	done
	/usr/sbin/slurmd -D -f "$SLURM_CONF" -N "$NODE" </dev/null >>"$DIR/log/slurmd.out" 2>&1 &
	SLURMD_PID=$!
	echo "$SLURMD_PID" >"$DIR/slurmd.pid.start"
	i=0
	until sinfo -h -n "$NODE" -o '%T' 2>/dev/null | grep -qx 'idle'; do
		if ! alive "$SLURMD_PID"; then
			if in_use "$DIR/log/slurmd.log"; then
				kill -TERM "$CTLD_PID" 2>/dev/null || true
				wait "$CTLD_PID" 2>/dev/null || true
				return 2
			fi
			tail -n 30 "$DIR/log/slurmd.log" "$DIR/log/slurmd.out" >&2 2>/dev/null
			die "slurmd exited"
		fi
		i=$((i + 1))
		[ "$i" -lt 150 ] || { sinfo -N -l >&2 || true; die "node $NODE is not idle after 30 s"; }
		sleep 0.2
	done
}
tries=0
while :; do
	tries=$((tries + 1))
	write_conf
	rc=0
	start || rc=$?
	[ "$rc" -eq 2 ] || break
	[ "$tries" -lt 10 ] || die "no free ports after $tries tries"
done

cat >"$DIR/env.new" <<EOF
SLURM_CONF='$SLURM_CONF'
SLURM_DIR='$DIR'
SLURM_NODE='$NODE'
SLURM_PARTITION=test
MUNGE_SOCKET='$SOCK'
MUNGED_PID=$MUNGED_PID
SLURMCTLD_PID=$CTLD_PID
SLURMD_PID=$SLURMD_PID
SLURMCTLD_LOG='$DIR/log/slurmctld.log'
SLURMD_LOG='$DIR/log/slurmd.log'
EOF
mv "$DIR/env.new" "$DIR/env"
