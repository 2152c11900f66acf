#!/usr/bin/env bash
# bench.sh (`make bench`) runs every benchmark and, when an earlier run is
# saved, compares the two with benchstat.
#
#   scripts/bench.sh                 run, save to .cache/bench/new.txt
#   BENCH=Ingest scripts/bench.sh    only benchmarks matching Ingest
#   COUNT=10 scripts/bench.sh        more runs per benchmark (benchstat wants >= 6)
#
# The previous result is kept as .cache/bench/old.txt; benchstat shows the
# difference. Quote benchstat's output, not a single run, for a speed claim.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export PATH="$ROOT/.cache/bin:$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

scripts/install-deps.sh --bench

out=$ROOT/.cache/bench
mkdir -p "$out"
[ -f "$out/new.txt" ] && mv "$out/new.txt" "$out/old.txt"

go test -run='^$' -bench="${BENCH:-.}" -benchmem -count="${COUNT:-6}" -timeout 30m ./... | tee "$out/new.txt"

if [ -f "$out/old.txt" ]; then
	echo
	echo "benchstat (previous run vs this run):"
	benchstat "$out/old.txt" "$out/new.txt"
else
	echo
	benchstat "$out/new.txt"
fi
