#!/usr/bin/env bash
# Soak run (not part of CI): the release server on loopback under a fixed request rate for N
# minutes. Reports requests, errors (non-2xx and transport) and the server's resident memory at
# start, after warm-up, at the end and at its peak; exits 1 on any error.
#
# Usage: scripts/soak.sh [MINUTES] [RATE]
#   MINUTES  how long to drive load (default 10; or SOAK_MINUTES)
#   RATE     total requests per second (default 500; or SOAK_RATE)
# Other knobs: SOAK_CLIENTS (connections per stream, default 4), SOAK_SAMPLE_SECONDS (RSS sampling
# interval, default 5), SOAK_KEEP=1 (keep the work directory with logs and samples).
#
# The load is three streams at a third of RATE each, from the repository's own fixtures: an
# allowed /validate review, a denied /validate review (spec change on UPDATE) and a /mutate review
# that gets a patch. The load generator is h2load (Debian package nghttp2-client), installed when
# missing. Everything stays on 127.0.0.1 and the run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${1:-${SOAK_MINUTES:-10}}
RATE=${2:-${SOAK_RATE:-500}}
CLIENTS=${SOAK_CLIENTS:-4}
SAMPLE=${SOAK_SAMPLE_SECONDS:-5}
for n in "$MINUTES" "$RATE" "$CLIENTS" "$SAMPLE"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "soak: expected positive integers, got '$n'" >&2; exit 2; }
done
SECONDS_TOTAL=$((MINUTES * 60))

STREAMS=(
  "/validate tests/fixtures/validate/captured-02-validate-create.request.json"
  "/validate tests/fixtures/validate/captured-08-validate-update.request.json"
  "/mutate tests/fixtures/mutate/status-ips-non-canonical-ipv6.request.json"
)

if ! command -v h2load >/dev/null 2>&1; then
  echo "soak: installing h2load (nghttp2-client)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nghttp2-client >/dev/null
fi

echo "soak: building the release binary" >&2
cargo build --release --locked --quiet
TARGET_DIR=$(scripts/target-dir.sh)
BIN=${TARGET_DIR:-target}/release/ipamclaim-webhook

WORK=$(mktemp -d -t ipamclaim-soak.XXXXXX)
SERVER_PID=
SAMPLER_PID=
cleanup() {
  [[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null || true
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${SOAK_KEEP:-0} == 1 ]]; then
    echo "soak: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

"$BIN" certs --out "$WORK/certs" >"$WORK/certs.log" 2>&1 || { cat "$WORK/certs.log" >&2; exit 1; }
PORT=$(free_port)
PROBE_PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --probe-listen "127.0.0.1:$PROBE_PORT" \
  --tls-cert "$WORK/certs/tls.crt" --tls-key "$WORK/certs/tls.key" --log-format json \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PROBE_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak: server exited; log:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PROBE_PORT/readyz" >/dev/null || { echo "soak: server not ready" >&2; exit 1; }

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }

# RSS samples: seconds since start, KiB.
START=$(date +%s)
(
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "$(($(date +%s) - START)) $(rss_kib)"
    sleep "$SAMPLE"
  done
) >"$WORK/rss.tsv" 2>/dev/null &
SAMPLER_PID=$!

echo "soak: $RATE req/s for $MINUTES min against 127.0.0.1:$PORT (server pid $SERVER_PID)" >&2
# Per-connection rate of each stream; h2load takes a fractional --rps.
RPS=$(python3 -c "print(round($RATE / ${#STREAMS[@]} / $CLIENTS, 3))")
LOADERS=()
i=0
for stream in "${STREAMS[@]}"; do
  read -r path body <<<"$stream"
  timeout $((SECONDS_TOTAL + 120)) h2load --h1 -c "$CLIENTS" --rps "$RPS" -D "$SECONDS_TOTAL" \
    -d "$body" -H 'Content-Type: application/json' \
    "https://127.0.0.1:$PORT$path?timeout=10s" >"$WORK/h2load.$i.txt" 2>&1 &
  LOADERS+=($!)
  i=$((i + 1))
done
LOAD_OK=1
for pid in "${LOADERS[@]}"; do
  wait "$pid" || LOAD_OK=0
done
ELAPSED=$(($(date +%s) - START))
END_RSS=$(rss_kib || echo 0)
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=

# Still serving after the run: readiness, then a graceful stop that must exit 0.
READY_AFTER=$(curl -fsS "http://127.0.0.1:$PROBE_PORT/readyz" 2>/dev/null || echo "not ready")
kill -TERM "$SERVER_PID"
STOP_STATUS=0
wait "$SERVER_PID" || STOP_STATUS=$?
SERVER_PID=

python3 - "$WORK" "$ELAPSED" "$END_RSS" "$LOAD_OK" "$READY_AFTER" "$STOP_STATUS" \
  "$RATE" "$MINUTES" <<'PY'
import glob, re, sys

work, elapsed, end_rss, load_ok, ready, stop, rate, minutes = sys.argv[1:]
totals = dict.fromkeys(
    ["total", "done", "succeeded", "failed", "errored", "timeout", "2xx", "3xx", "4xx", "5xx"], 0)
for path in sorted(glob.glob(f"{work}/h2load.*.txt")):
    text = open(path).read()
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (m and s):
        print(f"soak: cannot read {path}:\n{text}", file=sys.stderr)
        sys.exit(1)
    for key, value in zip(["total", "done", "succeeded", "failed", "errored", "timeout"], m.groups()):
        totals[key] += int(value)
    for key, value in zip(["2xx", "3xx", "4xx", "5xx"], s.groups()):
        totals[key] += int(value)

samples = [tuple(map(int, line.split())) for line in open(f"{work}/rss.tsv") if len(line.split()) == 2]
if not samples:
    print("soak: no RSS samples", file=sys.stderr)
    sys.exit(1)
start_rss = samples[0][1]
# After a minute (or a tenth of the run) the allocator and connection pools have settled.
warm_at = min(60, int(elapsed) // 10)
warm_rss = next((kib for t, kib in samples if t >= warm_at), samples[-1][1])
end_rss = int(end_rss) or samples[-1][1]
max_rss = max(kib for _, kib in samples)

non_2xx = totals["done"] - totals["2xx"]
transport = totals["errored"] + totals["timeout"] + (totals["total"] - totals["done"])
errors = non_2xx + transport
mib = lambda kib: f"{kib / 1024:.1f} MiB ({kib} KiB)"
print(f"rate asked     {rate} req/s for {minutes} min; measured {totals['done'] / int(elapsed):.0f} req/s over {elapsed} s")
print(f"requests       {totals['total']} sent, {totals['done']} answered, {totals['2xx']} 2xx")
print(f"errors         {errors} (non-2xx {non_2xx}, transport {transport})")
print(f"RSS            start {mib(start_rss)}, after warm-up ({warm_at} s) {mib(warm_rss)}, "
      f"end {mib(end_rss)}, max {mib(max_rss)} ({len(samples)} samples)")
print(f"after the run  readyz: {ready.strip()}; SIGTERM exit status {stop}")
ok = errors == 0 and load_ok == "1" and stop == "0" and ready.strip() == "ok"
sys.exit(0 if ok else 1)
PY
