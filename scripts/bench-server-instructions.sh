#!/usr/bin/env bash
# Instructions per review of the whole server, counted by callgrind while h2load sends it
# reviews over HTTPS: TLS, HTTP, the handler, the pipeline, the log, the metrics and, with
# --unique-addresses, the index, the in-memory reservations and the Leases' fast path. Unlike
# CPU time (make bench-load), a count that a busy or throttled machine does not change, so two
# servers compare within a fraction of a percent from one sitting. The kernel's share (the
# sockets, about a third of the CPU time under load) is not counted: it is the same for every
# server sent the same bytes, so ratios of these counts overstate the CPU ratios a little.
#
# Servers, each with the Deployment's arguments and the default log filter:
#   product  the typical status update (admitted; nothing logged at INFO)
#   deny     the same review with an address out of range (denied), every denial's line at
#            INFO written (--request-log-limit 0: under callgrind a server answers a few hundred
#            reviews a second, which the default limit of 200 lines a second would mostly let
#            through anyway)
#   deny-quiet  the same with RUST_LOG=warn: no line (what judging and answering a denial costs
#            by itself). A flood at saturation writes at most 200 lines a second, so its cost
#            per review lies between the two, near deny-quiet.
#   unique   the status update with --unique-addresses and CLAIMS claims indexed from the
#            stand-in API server (Leases; the claim's Leases remembered after the warm-up)
#   floor    the same actix + rustls stack answering a constant (examples/floor_server.rs)
#   before   BEFORE_BIN, when given, with the product's review
#
# Each server answers WARM reviews, its counters are zeroed, it answers REVIEWS more, and the
# instructions of those are divided by REVIEWS (start-up and the index's first list excluded).
#
# Knobs (environment): REVIEWS (5000), WARM (500), CONNS (8), CLAIMS (100000), SERVERS
# ("floor product deny deny-quiet unique" and "before" with BEFORE_BIN), PRODUCT_BIN, BEFORE_BIN, OUT
# (target/bench-server-instructions), CARGO.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
REVIEWS=${REVIEWS:-5000}
WARM=${WARM:-500}
CONNS=${CONNS:-8}
CLAIMS=${CLAIMS:-100000}
OUT=${OUT:-target/bench-server-instructions}
BEFORE_BIN=${BEFORE_BIN:-}
SERVERS=${SERVERS:-floor product deny deny-quiet unique${BEFORE_BIN:+ before}}
REVIEW=tests/fixtures/validate/captured-04-validate-update-status.request.json
HELPER=scripts/bench_load.py

say() { printf '\n== %s\n' "$*" >&2; }

export DEBIAN_FRONTEND=noninteractive
for tool in valgrind:valgrind h2load:nghttp2-client; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    say "installing ${tool#*:}"
    apt-get update -qq
    apt-get install -y -qq "${tool#*:}" >/dev/null
  fi
done

say "building the release server, the floor and the stand-in API server"
"$CARGO" build --release --bin ipamclaim-webhook --example floor_server --example standin_api
TARGET_DIR=$(CARGO="$CARGO" scripts/target-dir.sh)
PRODUCT_BIN=${PRODUCT_BIN:-${TARGET_DIR:-target}/release/ipamclaim-webhook}
FLOOR_BIN=${TARGET_DIR:-target}/release/examples/floor_server
STANDIN_BIN=${TARGET_DIR:-target}/release/examples/standin_api
read -r -a DEPLOYED <<<"$(python3 "$HELPER" deployed-args manifests/base/deployment.yaml)"

tmp=$(mktemp -d)
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
"$PRODUCT_BIN" certs --out "$tmp/certs" 2>/dev/null
# The fixture is pretty-printed for reading; the API server sends compact JSON. The denied
# review has one address out of range: one cause, one line at INFO.
python3 "$HELPER" bodies "$REVIEW" "$tmp"
BODY=$tmp/review.json
DENY_BODY=$tmp/denied.json

free_port() { python3 "$HELPER" free-port; }

if [[ " $SERVERS " == *" unique "* ]]; then
  say "stand-in API server: $CLAIMS claims"
  mkdir -p "$tmp/standin"
  "$STANDIN_BIN" --claims "$CLAIMS" --dir "$tmp/standin" >"$tmp/standin.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 600); do
    grep -q '^ready ' "$tmp/standin.log" && break
    sleep 0.1
  done
  grep -q '^ready ' "$tmp/standin.log" || { echo "the stand-in API server did not start" >&2; exit 1; }
fi

# send PORT BODY N: N reviews over HTTP/1.1 keep-alive; fails unless every one succeeded.
send() {
  local out
  out=$(h2load -t 1 -c "$CONNS" -m 1 --h1 -n "$3" -d "$2" -H 'content-type: application/json' \
    "https://127.0.0.1:$1/validate?timeout=10s")
  grep -q "^requests: $3 total, $3 started, $3 done, $3 succeeded" <<<"$out" || {
    echo "not every review succeeded:" >&2
    grep '^requests:' <<<"$out" >&2
    return 1
  }
}

# count SERVER: instructions per review of one server.
count() {
  local server=$1 port probe bin=() body=$BODY ready=/readyz filter=(env -u RUST_LOG)
  port=$(free_port)
  probe=$(free_port)
  local serve=(serve "${DEPLOYED[@]}" --shutdown-delay 0 --shutdown-timeout 2 --workers 1
    --listen "127.0.0.1:$port" --probe-listen "127.0.0.1:$probe"
    --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key")
  case $server in
    product) bin=("$PRODUCT_BIN" "${serve[@]}") ;;
    before) bin=("$BEFORE_BIN" "${serve[@]}") ;;
    deny) bin=("$PRODUCT_BIN" "${serve[@]}" --request-log-limit 0) body=$DENY_BODY ;;
    deny-quiet) bin=("$PRODUCT_BIN" "${serve[@]}") body=$DENY_BODY filter=(env RUST_LOG=warn) ;;
    unique)
      bin=("$PRODUCT_BIN" "${serve[@]}" --unique-addresses --kubeconfig "$tmp/standin/kubeconfig"
        --reservation-namespace ipamclaim-webhook)
      ;;
    floor)
      bin=("$FLOOR_BIN" --listen "127.0.0.1:$port" --probe-listen "127.0.0.1:$probe"
        --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" --workers 1)
      ready=/healthz
      ;;
    *) echo "unknown server $server" >&2; return 1 ;;
  esac
  local profile="$OUT/$server.callgrind"
  rm -f "$profile" "$profile".*
  "${filter[@]}" valgrind --tool=callgrind --callgrind-out-file="$profile" "${bin[@]}" \
    2>"$OUT/$server.log" &
  local pid=$!
  PIDS+=("$pid")
  # The first list of 100,000 claims takes a minute under callgrind.
  python3 "$HELPER" wait-ready "$probe" 900 "$ready" >/dev/null
  send "$port" "$body" "$WARM"
  callgrind_control --zero "$pid" >/dev/null 2>&1
  send "$port" "$body" "$REVIEWS"
  callgrind_control --dump "$pid" >/dev/null 2>&1
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # The dump after the zeroing is the profile's first part; its totals are the reviews'.
  local total
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$profile.1")
  python3 -c 'import sys; t, n = int(sys.argv[1]), int(sys.argv[2]); print(round(t / n))' \
    "$total" "$REVIEWS"
}

results=$OUT/results.md
declare -A per
for server in $SERVERS; do
  say "$server: $WARM reviews to warm up, then $REVIEWS counted"
  per[$server]=$(count "$server")
  echo "  $server: ${per[$server]} instructions per review" >&2
done

{
  echo "| server | instructions per review | / product |"
  echo "|---|---|---|"
  for server in $SERVERS; do
    ratio=""
    [[ -n ${per[product]:-} ]] &&
      ratio=$(python3 -c 'import sys; print(f"{int(sys.argv[1]) / int(sys.argv[2]):.3f}")' "${per[$server]}" "${per[product]}")
    echo "| $server | ${per[$server]} | $ratio |"
  done
  echo
  if [[ -n ${per[product]:-} && -n ${per[floor]:-} ]]; then
    python3 -c 'import sys; f, p = int(sys.argv[1]), int(sys.argv[2]); print(f"floor / product, instructions per review: {f} / {p} = {f / p:.2f}")' \
      "${per[floor]}" "${per[product]}"
  fi
  if [[ -n ${per[product]:-} && -n ${per[unique]:-} ]]; then
    python3 -c 'import sys; u, p = int(sys.argv[1]), int(sys.argv[2]); print(f"--unique-addresses ({sys.argv[3]} claims), unique / product: {u} / {p} = {u / p:.3f} ({(u / p - 1) * 100:+.1f} %)")' \
      "${per[unique]}" "${per[product]}" "$CLAIMS"
  fi
  for deny in deny deny-quiet; do
    [[ -n ${per[product]:-} && -n ${per[$deny]:-} ]] || continue
    python3 -c 'import sys; d, p = int(sys.argv[1]), int(sys.argv[2]); print(f"every review denied, {sys.argv[3]} / product: {d} / {p} = {d / p:.3f} ({(d / p - 1) * 100:+.1f} %)")' \
      "${per[$deny]}" "${per[product]}" "$deny"
  done
} | tee "$results"
echo "wrote $results (profiles: $OUT/*.callgrind.1, for callgrind_annotate)" >&2
