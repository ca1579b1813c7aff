#!/usr/bin/env bash
# Offline checks of manifests/: kustomize rendering, Kubernetes schemas (kubernetes-validate),
# the samples against the generated CRD schema, CRD drift, and the deployment policy.
# Called by `make test-manifests`; runs from any directory. Needs kubectl (for
# `kubectl kustomize`), Python 3 with venv, and the package index once to fill the venv.
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
