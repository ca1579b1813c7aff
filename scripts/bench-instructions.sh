#!/usr/bin/env bash
# Instructions per review of each criterion pipeline case, counted by callgrind: a measure that
# a busy machine does not disturb, for comparing two versions of the pipeline.
#
#   scripts/bench-instructions.sh [CASE...]   (default: every case of the `pipeline` group)
#   BENCH=unique_addresses GROUP=unique scripts/bench-instructions.sh   (--unique-addresses)
#
# It runs the bench binary under `valgrind --tool=callgrind` with criterion's --profile-time
# (no analysis), then divides the instructions spent in `admission::review` by its calls.
# Profiles are kept in OUT (target/bench-instructions) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
OUT=${OUT:-target/bench-instructions}
BENCH=${BENCH:-pipeline}
GROUP=${GROUP:-pipeline}
if ! command -v valgrind >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq valgrind >/dev/null
fi

bench=$("$CARGO" bench --bench "$BENCH" --no-run --message-format=json 2>/dev/null |
  BENCH="$BENCH" python3 -c 'import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == os.environ["BENCH"] and m.get("executable"):
        print(m["executable"])')
mkdir -p "$OUT"

cases=("$@")
if [[ ${#cases[@]} -eq 0 ]]; then
  mapfile -t cases < <("$bench" --bench --list 2>/dev/null | sed -n "s|^$GROUP/\(.*\): benchmark\$|\1|p")
fi

printf '%-40s %12s\n' case instructions/review
for case in "${cases[@]}"; do
  profile="$OUT/${case//\//_}.callgrind"
  valgrind --tool=callgrind --callgrind-out-file="$profile" \
    "$bench" --bench --profile-time 2 "^$GROUP/$case\$" >/dev/null 2>&1
  # The caller view lists, under `admission::review` (or `review_with`, when the compiler has
  # inlined `review` into the bench), what `Bencher::iter` spent in it and how many calls that
  # was.
  callgrind_annotate --tree=caller --inclusive=yes "$profile" 2>/dev/null |
    awk -v name="$case" '
      /< .*criterion::bencher::Bencher<M>::iter \(/ { cost = $1; calls = $0 }
      /\*  .*ipamclaim_webhook::admission::(pipeline::)?review(_with)? \[/ && cost != "" && !done {
        gsub(",", "", cost)
        sub(/.*iter \(/, "", calls); sub(/x\).*/, "", calls); gsub(",", "", calls)
        printf "%-40s %12.0f\n", name, cost / calls
        done = 1
      }
      /^$/ { cost = "" }'
done
