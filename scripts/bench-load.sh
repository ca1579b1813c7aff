#!/usr/bin/env bash
# Load benchmark of the HTTPS admission server against a floor (the same server stack answering
# a constant AdmissionReview without judging: examples/floor_server.rs), in one run.
#
# The headline is the server's CPU per review (utime + stime over the reviews answered) with
# the arguments the Deployment passes (manifests/base/deployment.yaml, less the addresses,
# files and shutdown times the harness sets) and the default log filter (no RUST_LOG), for
# product and floor in the same rounds: their ratio is the first line of the results.
# Requests/s are reported too, marked where the load generator, not the server, bounded them.
#
# For HTTP/1.1 keep-alive and HTTP/2 it drives POST /validate with the typical status-update
# review, compact as the API server sends it (2,980 bytes, the Content-Length of the capture),
# with h2load (Debian's nghttp2-client, installed if missing): saturation rounds that alternate
# product, floor and skim (the floor reading each review once with serde_json, keeping
# nothing), then fixed rates at FRACTIONS of the product's saturation for product and floor.
# In the same saturation rounds: "deny", the product sent a review it denies (one cause: each
# logs a line at INFO while --request-log-limit lasts, 200 a second, and is counted past it),
# "deny-quiet", the same with RUST_LOG=warn (no line: what judging a denial costs by itself), and "unique", the product with --unique-addresses and 100,000
# claims indexed from the stand-in API server of the tests (examples/standin_api.rs).
# It reports requests/s, latency p50/p99/p99.9, idle and peak RSS, start-up time, and writes
# OUT/results.md, OUT/results.jsonl and the plot OUT/latency.svg.
#
# Knobs (environment): DURATION (s per measured run, default 8), WARMUP (s, 2), ROUNDS (3),
# FRACTIONS ("0.1 0.25 0.5 0.75 0.9"; empty for none), DENY (1: the "deny" rounds), UNIQUE (1:
# the "unique" rounds), CLAIMS (100000, for UNIQUE), CONNS (HTTP/1.1 connections at saturation, 32), H2_CONNS
# (4) and H2_STREAMS (8 per connection), RATE_CONNS (connections at a fixed rate, 4: h2load
# paces each connection with its own timer and the timers fire together, so every tick is a
# burst of RATE_CONNS requests), WORKERS (server worker threads, 1), PIN (1: server on the last
# CPU, h2load on the first, when there are two or more), STARTS (extra start-up samples, 5),
# OUT (target/bench-load), PROTOCOLS ("h1 h2"), CARGO (cargo), PRODUCT_BIN (a product binary to
# measure instead of the one built here, e.g. a release build of an earlier commit, to compare),
# BEFORE_BIN (another product binary, e.g. the release build of main, that joins the saturation
# rounds as server "before": old and new alternate in the same minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
FRACTIONS=${FRACTIONS-0.1 0.25 0.5 0.75 0.9}
DENY=${DENY:-1}
UNIQUE=${UNIQUE:-1}
CLAIMS=${CLAIMS:-100000}
CONNS=${CONNS:-32}
H2_CONNS=${H2_CONNS:-4}
H2_STREAMS=${H2_STREAMS:-8}
RATE_CONNS=${RATE_CONNS:-4}
WORKERS=${WORKERS:-1}
PIN=${PIN:-1}
STARTS=${STARTS:-5}
OUT=${OUT:-target/bench-load}
PROTOCOLS=${PROTOCOLS:-h1 h2}
REVIEW=tests/fixtures/validate/captured-04-validate-update-status.request.json
DEPLOYMENT=manifests/base/deployment.yaml
HELPER=scripts/bench_load.py

say() { printf '\n== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v h2load >/dev/null 2>&1; then
  say "installing h2load (nghttp2-client)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nghttp2-client >/dev/null
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 is required" >&2; exit 1; }

say "building the release server, the floor and the stand-in API server"
examples=(--example floor_server)
[[ $UNIQUE == 1 ]] && examples+=(--example standin_api)
"$CARGO" build --release --bin ipamclaim-webhook "${examples[@]}"
TARGET_DIR=$(CARGO="$CARGO" scripts/target-dir.sh)
PRODUCT_BIN=${PRODUCT_BIN:-${TARGET_DIR:-target}/release/ipamclaim-webhook}
BEFORE_BIN=${BEFORE_BIN:-}
FLOOR_BIN=${TARGET_DIR:-target}/release/examples/floor_server
STANDIN_BIN=${TARGET_DIR:-target}/release/examples/standin_api
# The Deployment's arguments of `serve`, as it runs in a cluster, less the harness's own.
read -r -a DEPLOYED <<<"$(python3 "$HELPER" deployed-args "$DEPLOYMENT")"
echo "deployed flags: ${DEPLOYED[*]} (default log filter)" >&2

# --- pinning -----------------------------------------------------------------------------------
SERVER_CPU=() LOADGEN_CPU=()
ncpu=$(nproc)
if [[ $PIN == 1 && $ncpu -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
  SERVER_CPU=(taskset -c "$((ncpu - 1))")
  LOADGEN_CPU=(taskset -c 0)
fi

# --- scratch space, certificates, cleanup ------------------------------------------------------
tmp=$(mktemp -d)
mkdir -p "$OUT/logs"
rm -f "$OUT/logs"/*.log
results="$OUT/results.jsonl"
: >"$results"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
python3 -c 'import json, sys; print(json.dumps({"kind": "meta", "deployed_flags": " ".join(sys.argv[1:])}))' \
  "${DEPLOYED[@]}" >>"$results"
"$PRODUCT_BIN" certs --out "$tmp/certs" 2>/dev/null
# The fixture is pretty-printed for reading; the API server sends compact JSON. The denied
# review has one address out of range: one cause, one line at INFO.
python3 "$HELPER" bodies "$REVIEW" "$tmp"
BODY=$tmp/review.json
DENY_BODY=$tmp/denied.json

free_port() { python3 "$HELPER" free-port; }

proc_field() { # PID FIELD: a kB value from /proc/PID/status
  local key value _
  while read -r key value _; do
    if [[ $key == "$2:" ]]; then echo "$value"; return; fi
  done <"/proc/$1/status"
}

cpu_ticks() { # PID: user + system clock ticks
  local stat
  read -r stat <"/proc/$1/stat"
  stat=${stat##*) }
  awk '{print $12 + $13}' <<<"$stat"
}

stop() { # PID: SIGTERM, then wait until it is gone (it is not this shell's child)
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 200); do
    [[ -e /proc/$1 ]] || return 0
    [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]] && return 0
    sleep 0.05
  done
  kill -KILL "$1" 2>/dev/null || true
}

# start SERVER PROTO: starts it on fresh ports; sets PID, PORT, PROBE; records start-up and
# idle RSS. The product (and "before", "unique") runs with the Deployment's flags and the default
# log filter; the floor logs nothing per request at any filter.
start() {
  local server=$1 proto=$2 h2=() bin
  PORT=$(free_port)
  local probe
  probe=$(free_port)
  PROBE=$probe
  [[ $proto == h2 ]] && h2=(--enable-http2)
  local extra=()
  local serve=(serve "${DEPLOYED[@]}" --shutdown-delay 0 --shutdown-timeout 2)
  case $server in
    product) bin=(env -u RUST_LOG "${SERVER_CPU[@]}" "$PRODUCT_BIN" "${serve[@]}") ;;
    deny-quiet) bin=(env RUST_LOG=warn "${SERVER_CPU[@]}" "$PRODUCT_BIN" "${serve[@]}") ;;
    before) bin=(env -u RUST_LOG "${SERVER_CPU[@]}" "$BEFORE_BIN" "${serve[@]}") ;;
    unique)
      bin=(env -u RUST_LOG "${SERVER_CPU[@]}" "$PRODUCT_BIN" "${serve[@]}")
      extra=(--unique-addresses --kubeconfig "$KUBECONFIG_FILE" --reservation-namespace ipamclaim-webhook)
      ;;
    *)
      bin=(env -u RUST_LOG "${SERVER_CPU[@]}" "$FLOOR_BIN")
      [[ $server == skim ]] && extra=(--skim)
      ;;
  esac
  local out
  out=$(python3 "$HELPER" start "$OUT/logs/$server-$proto.log" "$probe" -- \
    "${bin[@]}" --listen "127.0.0.1:$PORT" --probe-listen "127.0.0.1:$probe" \
    --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" \
    --workers "$WORKERS" "${h2[@]}" "${extra[@]}")
  PID=${out% *}
  local startup=${out#* }
  PIDS+=("$PID")
  # --unique-addresses is ready once the first list is indexed.
  [[ $server == unique ]] && python3 "$HELPER" wait-ready "$probe" 300
  sleep 0.3
  local idle
  idle=$(proc_field "$PID" VmRSS)
  printf '{"kind":"server","server":"%s","proto":"%s","startup_ms":%s,"idle_rss_kib":%s}\n' \
    "$server" "$proto" "$startup" "$idle" >>"$results"
  echo "$server ($proto): pid $PID, ready in $startup ms, idle RSS $idle KiB" >&2
}

# load PROTO PORT SECONDS LOGFILE [h2load options...]: one h2load run against /validate, at
# saturation, or at a fixed rate when the options hold --rps.
load() {
  local proto=$1 port=$2 seconds=$3 log=$4
  shift 4
  local conn=(-c "$CONNS" -m 1 --h1)
  [[ $proto == h2 ]] && conn=(-c "$H2_CONNS" -m "$H2_STREAMS")
  if [[ "$*" == *--rps* ]]; then
    conn=(-c "$RATE_CONNS" -m 1 --h1)
    [[ $proto == h2 ]] && conn=(-c "$RATE_CONNS" -m "$H2_STREAMS")
  fi
  "${LOADGEN_CPU[@]}" h2load -t 1 "${conn[@]}" -D "$seconds" \
    -d "${LOAD_BODY:-$BODY}" -H 'content-type: application/json' --log-file "$log" "$@" \
    "https://127.0.0.1:$port/validate?timeout=10s"
}

# measure SERVER PROTO PID PORT MODE FRACTION OFFERED [h2load options...]
measure() {
  local server=$1 proto=$2 pid=$3 port=$4 mode=$5 fraction=$6 offered=$7
  shift 7
  local stem="$tmp/$server-$proto-$mode-$fraction"
  LOAD_BODY=$BODY
  [[ $server == deny* ]] && LOAD_BODY=$DENY_BODY
  load "$proto" "$port" "$WARMUP" /dev/null "$@" >/dev/null
  local before after
  before=$(cpu_ticks "$pid")
  load "$proto" "$port" "$DURATION" "$stem.log" "$@" >"$stem.out"
  after=$(cpu_ticks "$pid")
  local stats cpu
  stats=$(python3 "$HELPER" h2load "$stem.out" "$stem.log")
  cpu=$(awk -v a="$after" -v b="$before" -v d="$DURATION" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.3f", (a - b) / hz / d}')
  printf '{"kind":"run","server":"%s","proto":"%s","mode":"%s","fraction":%s,"offered":%s,"server_cpu":%s,%s\n' \
    "$server" "$proto" "$mode" "$fraction" "$offered" "$cpu" "${stats#\{}" >>"$results"
  echo "  $server $proto $mode ${offered:+offered $offered }$stats cpu $cpu" >&2
  LAST_RPS=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["rps"])' "$stats")
}

if [[ $UNIQUE == 1 ]]; then
  say "stand-in API server: $CLAIMS claims"
  mkdir -p "$tmp/standin"
  "${LOADGEN_CPU[@]}" "$STANDIN_BIN" --claims "$CLAIMS" --dir "$tmp/standin" >"$OUT/logs/standin.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 600); do
    grep -q '^ready ' "$OUT/logs/standin.log" && break
    sleep 0.1
  done
  grep -q '^ready ' "$OUT/logs/standin.log" || { echo "the stand-in API server did not start" >&2; exit 1; }
  KUBECONFIG_FILE=$tmp/standin/kubeconfig
fi

for proto in $PROTOCOLS; do
  say "$proto: starting product, floor and skim"
  start product "$proto"
  p_pid=$PID p_port=$PORT p_probe=$PROBE
  start floor "$proto"
  f_pid=$PID f_port=$PORT
  start skim "$proto"
  s_pid=$PID s_port=$PORT
  if [[ -n $BEFORE_BIN ]]; then
    start before "$proto"
    b_pid=$PID b_port=$PORT
  fi
  if [[ $DENY == 1 ]]; then
    start deny-quiet "$proto"
    q_pid=$PID q_port=$PORT
  fi
  if [[ $UNIQUE == 1 ]]; then
    start unique "$proto"
    u_pid=$PID u_port=$PORT u_probe=$PROBE
    echo "  unique: $(python3 "$HELPER" metric "$u_probe" ipamclaim_webhook_index_claims) claims indexed" >&2
  fi

  say "$proto: saturation, $ROUNDS rounds alternating product, floor and skim"
  sat=()
  for round in $(seq 1 "$ROUNDS"); do
    measure product "$proto" "$p_pid" "$p_port" saturation 1 null
    sat+=("$LAST_RPS")
    if [[ -n $BEFORE_BIN ]]; then
      measure before "$proto" "$b_pid" "$b_port" saturation 1 null
    fi
    if [[ $UNIQUE == 1 ]]; then
      measure unique "$proto" "$u_pid" "$u_port" saturation 1 null
    fi
    if [[ $DENY == 1 ]]; then
      measure deny "$proto" "$p_pid" "$p_port" saturation 1 null
      measure deny-quiet "$proto" "$q_pid" "$q_port" saturation 1 null
    fi
    measure floor "$proto" "$f_pid" "$f_port" saturation 1 null
    measure skim "$proto" "$s_pid" "$s_port" saturation 1 null
  done
  stop "$s_pid"
  if [[ $UNIQUE == 1 ]]; then
    stop "$u_pid"
  fi
  if [[ $DENY == 1 ]]; then
    stop "$q_pid"
  fi
  # What the product's log could not keep, if anything (the deny rounds log a line a review).
  dropped=$(python3 "$HELPER" metric "$p_probe" ipamclaim_webhook_log_lines_dropped_total)
  printf '{"kind":"log","server":"product","proto":"%s","dropped_lines":%s,"log_lines":%s}\n' \
    "$proto" "${dropped:-null}" "$(wc -l <"$OUT/logs/product-$proto.log")" >>"$results"
  echo "  product: ${dropped:-?} log lines dropped" >&2
  if [[ -n $BEFORE_BIN ]]; then
    peak=$(proc_field "$b_pid" VmHWM)
    printf '{"kind":"peak","server":"before","proto":"%s","peak_rss_kib":%s}\n' "$proto" "$peak" >>"$results"
    stop "$b_pid"
  fi
  product_sat=$(printf '%s\n' "${sat[@]}" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')

  say "$proto: fixed rates, fractions of the product's saturation ($product_sat req/s)"
  for fraction in $FRACTIONS; do
    offered=$(awk -v s="$product_sat" -v f="$fraction" 'BEGIN {printf "%.0f", s * f}')
    per_client=$(awk -v o="$offered" -v c="$RATE_CONNS" 'BEGIN {printf "%.1f", o / c}')
    measure product "$proto" "$p_pid" "$p_port" rate "$fraction" "$offered" --rps="$per_client"
    measure floor "$proto" "$f_pid" "$f_port" rate "$fraction" "$offered" --rps="$per_client"
  done

  for pair in "product $p_pid" "floor $f_pid"; do
    set -- $pair
    peak=$(proc_field "$2" VmHWM)
    printf '{"kind":"peak","server":"%s","proto":"%s","peak_rss_kib":%s}\n' \
      "$1" "$proto" "$peak" >>"$results"
    echo "$1 ($proto): peak RSS (VmHWM) $peak KiB" >&2
    stop "$2"
  done
done

say "start-up: $STARTS more starts of each"
for _ in $(seq 1 "$STARTS"); do
  for server in product floor; do
    start "$server" startup
    stop "$PID"
  done
done

say "results"
python3 "$HELPER" report "$results" "$OUT/results.md" "$OUT/latency.svg"
echo >&2
echo "wrote $OUT/results.md, $OUT/results.jsonl and $OUT/latency.svg" >&2
