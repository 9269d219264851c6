#!/bin/bash
# job.sh - a KOSMA-tau model job under Slurm whose outputs jobpub publishes when it ends.
#
#   sbatch --export=ALL,PDR_JOB_ID=1234,PDR_MODEL=kosma_tau_n3_chi100 examples/slurm/job.sh
#
# pdr_run prepares one work directory per model job (PDRNEW.INP, pdr_config.json) and a row in
# its pdr_model_jobs table; this script runs the PDR code and the onion line transfer in it, and
# its last lines hand the outputs to jobpub in one of the two ways of doc/slurm.md:
#
#   A. `jobpub enqueue` (below, active): the Slurm Epilog (scripts/slurm-epilog, installed by the
#      admin) publishes after the job, even when the job hits its time limit and this script is
#      killed before its end.  The epilog knows nothing but the Slurm job ID: enqueue, run in
#      a Slurm job, files the entry under $SLURM_JOB_ID and records the catalogue's job ID
#      (pdr_run's pdr_model_jobs.id) in it (see doc/slurm.md, "Job IDs").
#   B. `jobpub publish` at the end of this script (commented out): simpler, no admin involved;
#      but it is skipped when the job reaches its wall time.
#
#SBATCH --job-name=kosma-tau
#SBATCH --partition=compute
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=12:00:00
#SBATCH --output=%x-%j.log
#SBATCH --comment=jobpub       # tells the Epilog this job uses jobpub (doc/slurm.md)
set -euo pipefail

: "${PDR_JOB_ID:?set PDR_JOB_ID, the pdr_model_jobs row of this model job}"
: "${PDR_MODEL:?set PDR_MODEL, the model grid (directory under the archive)}"

PDR_HOME=${PDR_HOME:-/opt/kosma-tau}                          # PDR code and onion
GRID=${GRID:-/project/pdr/grids/$PDR_MODEL}                    # where pdr_run prepared jobs
CATALOG=${CATALOG:-/project/pdr/pdr_run.db}                    # pdr_run's SQLite catalogue
MANIFEST=${MANIFEST:-/project/pdr/jobpub/kosma-tau-epilog.yaml}
# The work directory pdr_run prepared for this model job, copied to scratch.  With the epilog
# (A) it must outlive the job: a shared or node-local scratch directory, not a per-job private
# /tmp that Slurm removes when the job ends.
SRC=$GRID/jobs/$PDR_JOB_ID
WORKDIR=/scratch/$USER/kosma-tau-$SLURM_JOB_ID

# A. Register the publish FIRST, before anything can fail or the time limit strike (the work
#    directory need not exist yet).  See below.
jobpub enqueue --job "$PDR_JOB_ID" --manifest "$MANIFEST" --workdir "$WORKDIR" \
	--db "$CATALOG" --set "model=$PDR_MODEL"

mkdir -p "$WORKDIR"
cp -a "$SRC/." "$WORKDIR/"
cd "$WORKDIR"

# A. (enqueued above) If the job is killed at its time limit, the epilog still publishes what
#    is there (missing required outputs then mark the job failed_storage, which
#    `jobpub republish` and the pdr_run status show).  The manifest was checked by enqueue: a
#    typo fails the job at once, not silently in the epilog.

# ---- the model (program names as installed at your site) ----
export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
mkdir -p pdroutput onionoutput Out
srun --cpu-bind=cores "$PDR_HOME/bin/pdr" <PDRNEW.INP >pdroutput/TEXTOUT 2>pdroutput/chemchk.out
for species in CO 13CO; do
	"$PDR_HOME/bin/onion" -s "$species" -i pdroutput -o onionoutput
done
"$PDR_HOME/bin/mcdrt" -i pdroutput -o Out

# A. Nothing more to do: the epilog publishes after the job.

# B. Instead of A, publish right here (remove the enqueue above).  The job's exit status then
#    says whether its outputs were published (0) or why not (sysexits, see `man jobpub`).
#
# jobpub publish --job "$PDR_JOB_ID" \
# 	--manifest /project/pdr/jobpub/kosma-tau.yaml --workdir "$WORKDIR" \
# 	--db "$CATALOG" --set "model=$PDR_MODEL"
