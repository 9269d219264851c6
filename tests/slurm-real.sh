#!/bin/sh
# jobpub under a real Slurm (tests/slurm-start.sh: munged, slurmctld, slurmd on 127.0.0.1, as
# root), with jobs submitted by an ordinary user through sbatch and scripts/slurm-epilog as the
# Epilog: the happy path (a job that enqueues itself and writes KOSMA-tau outputs is published by
# the epilog: row finished, spool entry removed, node IDLE).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slurm-lib.sh"

setup_work

# The epilog as doc/slurm.md installs it, with the test's jobpub and log directory.
install_epilog "#!/bin/sh
JOBPUB=$T/bin/jobpub JOBPUB_EPILOG_LOGDIR=$T/eplog
export JOBPUB JOBPUB_EPILOG_LOGDIR
$T/libexec/slurm-epilog
exit 0"

happy() {
	add_row 11
	job_script 11 "$(enqueue_line 11)
$(run_line 11)"
	submit 11
	wait_gone
	assert_node_ok
	assert_eq "$(row_of 11)" finished "status of row 11"
	assert_absent "$SHOME/.local/state/jobpub/spool/$SJOB.json"
	cmp -s "$WORK/run-11/pdroutput/TEXTOUT" "$WORK/archive/job-11/pdrgrid/TEXTOUT$EXNAME" ||
		fail "TEXTOUT not published"
	assert_eq "$(stat -c %u "$WORK/archive/job-11/pdrgrid/TEXTOUT$EXNAME")" "$SUID" "owner of TEXTOUT"
}

run_case happy
finish
