#!/bin/bash
# run.sh - the main job end to end: make a realistic KOSMA-tau job, publish it into a local
# file:// destination with a SQLite catalogue, then show `jobpub status` for it.
#
#   examples/kosma-tau/run.sh [OUTDIR]      (default OUTDIR: ./example-run)
#
# Uses the jobpub built in this tree (or $JOBPUB).  Running it again re-creates the job and
# publishes it again into the same archive: the second publish finds every file identical.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-example-run}
mkdir -p "$out"
out=$(cd "$out" && pwd)
jobpub=${JOBPUB:-$top/src/jobpub}
[ -x "$jobpub" ] || { echo "run.sh: $jobpub not built; run ./configure && make first" >&2; exit 1; }
export MKHDF5=${MKHDF5:-$top/examples/kosma-tau/mkhdf5}

"$here/make-job.sh" "$out"
echo "+ jobpub publish --job 1 --manifest $here/manifest.yaml --workdir $out/job --db $out/catalog.db --dest file://$out/archive/kosma_tau_demo --set model=kosma_tau_demo"
"$jobpub" publish --job 1 --manifest "$here/manifest.yaml" --workdir "$out/job" \
	--db "$out/catalog.db" --dest "file://$out/archive/kosma_tau_demo" --set model=kosma_tau_demo
echo "+ jobpub status --db $out/catalog.db 1"
"$jobpub" status --db "$out/catalog.db" 1
