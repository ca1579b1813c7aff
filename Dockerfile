# syntax=docker/dockerfile:1
# ipamclaim-webhook container image: `make image` (needs a Docker engine with BuildKit).
#
# Stage 1 builds the release binary with the toolchain pinned to the crate's rust-version
# (1.89, Debian bookworm, the same glibc as the runtime image) and the exact Cargo.lock.
# Stage 2 is distroless: no shell, no package manager, only the binary.
#
# The image runs under any UID, including OpenShift's convention of an arbitrary UID with group 0
# (restricted-v2 assigns one from the namespace's range in place of USER): nothing it reads or
# writes depends on UID 65532. The binary is root-owned and 0755, so any user may run it; `serve`
# reads only the files the pod mounts (the TLS Secret; with --unique-addresses the service-account
# token), logs to stderr, and writes nothing but `--record-denied DIR`, which must be a mounted
# volume (the manifests keep the root filesystem read-only). tests/manifests/test_openshift.py
# runs the binary as 65532:65532 and as such an arbitrary user, and checks that it writes nothing.

ARG RUST_VERSION=1.89

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target directory between builds; the binary is
# copied out of the cached target directory within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ipamclaim-webhook \
 && install -D -m 0755 target/release/ipamclaim-webhook /out/ipamclaim-webhook

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="ipamclaim-webhook" \
      org.opencontainers.image.description="Admission webhook (validating and mutating) for IPAMClaim (k8s.cni.cncf.io/v1alpha1)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ipamclaim-webhook /ipamclaim-webhook
# distroless "nonroot", numeric so that the kubelet can check runAsNonRoot when the pod sets no
# runAsUser (the manifests set none: the pod runs as this user, or as OpenShift assigns).
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/ipamclaim-webhook"]
CMD ["serve"]
