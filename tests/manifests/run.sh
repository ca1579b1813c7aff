#!/usr/bin/env bash
# Offline checks of manifests/: kustomize rendering, Kubernetes schemas (kubernetes-validate),
# the samples against the generated CRD schema, CRD drift, the deployment policy, and the
# monitoring component (promtool). Called by `make test-manifests`; runs from any directory.
# Needs kubectl (for `kubectl kustomize`), Python 3 with venv, the package index once to fill
# the venv, and promtool (installed here from Debian when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

die() { echo "tests/manifests: $*" >&2; exit 1; }

# kubectl kustomize renders the overlays: without it nothing here means anything, so never skip.
command -v kubectl >/dev/null 2>&1 \
  || die "kubectl is required (its built-in 'kubectl kustomize' renders the manifests); install kubectl and rerun"
kubectl kustomize --help >/dev/null 2>&1 \
  || die "this kubectl has no 'kubectl kustomize' (kubectl 1.14 or later is needed)"
command -v python3 >/dev/null 2>&1 || die "python3 is required"

# promtool checks and unit-tests the monitoring component's alerts and dashboard queries
# (test_monitoring.py). It comes from Debian's prometheus package: install it when missing and
# this runs as root (CI, the development machines); otherwise say how. Never skipped.
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tests/manifests: installing promtool (Debian package prometheus)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
      || die "apt-get install prometheus (for promtool) failed"
  fi
  command -v promtool >/dev/null 2>&1 \
    || die "promtool is required (Debian: apt-get install prometheus; or any Prometheus 2.x release's promtool on PATH)"
fi

target_dir=$(scripts/target-dir.sh)
export BIN=${BIN:-${target_dir:-target}/debug/ipamclaim-webhook}
if [ ! -x "$BIN" ]; then
  echo "tests/manifests: $BIN is missing; building it" >&2
  ${CARGO:-cargo} build --quiet --bin ipamclaim-webhook
fi

venv=${target_dir:-target}/manifests-venv
req=tests/manifests/requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "tests/manifests: installing $req into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" \
    || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" \
    || die "pip install -r $req failed"
  echo "$want" > "$stamp"
fi

exec "$venv/bin/python" tests/manifests/test_manifests.py "$@"
