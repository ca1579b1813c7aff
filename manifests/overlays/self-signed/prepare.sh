#!/usr/bin/env bash
# Prepare the self-signed overlay from the output of `ipamclaim-webhook certs --out CERTS_DIR`:
# copy ca.crt, tls.crt and tls.key into certs/ (the secretGenerator reads them there) and write
# cabundle-patch.yaml, which sets caBundle = base64(ca.crt) on both webhook configurations.
# Both outputs are git-ignored. The caBundle is the CA, never the serving certificate.
set -euo pipefail

usage() { echo "usage: $0 CERTS_DIR   (a directory with ca.crt, tls.crt and tls.key)" >&2; exit 2; }
[ $# -eq 1 ] || usage
src=$1
here=$(cd "$(dirname "$0")" && pwd)

for f in ca.crt tls.crt tls.key; do
  [ -s "$src/$f" ] || { echo "$0: missing or empty $src/$f (run: ipamclaim-webhook certs --out $src)" >&2; exit 1; }
done
grep -q -- '-----BEGIN CERTIFICATE-----' "$src/ca.crt" || { echo "$0: $src/ca.crt is not a PEM certificate" >&2; exit 1; }

# A serving certificate that the caBundle does not vouch for is the classic webhook outage
# ("x509: certificate signed by unknown authority"): refuse it here rather than in the cluster.
if command -v openssl >/dev/null 2>&1; then
  if ! openssl verify -CAfile "$src/ca.crt" "$src/tls.crt" >/dev/null 2>&1; then
    echo "$0: $src/tls.crt is not signed by $src/ca.crt" >&2
    exit 1
  fi
fi

mkdir -p "$here/certs"
(umask 077 && cp "$src/tls.key" "$here/certs/tls.key")
cp "$src/ca.crt" "$src/tls.crt" "$here/certs/"

ca_bundle=$(base64 < "$src/ca.crt" | tr -d '\n')
patch="$here/cabundle-patch.yaml"
tmp=$(mktemp "$here/.cabundle-patch.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp" <<YAML
# Written by prepare.sh from $(basename "$src")/ca.crt; do not edit, do not commit.
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: ipamclaim-webhook
webhooks:
  - name: validate.ipamclaim-webhook.k8s.cni.cncf.io
    clientConfig:
      caBundle: $ca_bundle
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: ipamclaim-webhook
webhooks:
  - name: mutate.ipamclaim-webhook.k8s.cni.cncf.io
    clientConfig:
      caBundle: $ca_bundle
YAML
mv "$tmp" "$patch"
trap - EXIT
echo "prepared $here from $src (caBundle = $src/ca.crt)"
