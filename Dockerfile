# syntax=docker/dockerfile:1
# ipamclaim-webhook container image: `make image` (needs a Docker engine with BuildKit).
#
# Stage 1 builds the release binary with the toolchain pinned to the crate's rust-version
# (1.89, Debian bookworm, the same glibc as the runtime image) and the exact Cargo.lock.
# Stage 2 is distroless: no shell, no package manager, only the binary, running as 65532.

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
# The same numeric user and group as the Deployment's runAsUser/runAsGroup (distroless "nonroot").
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/ipamclaim-webhook"]
CMD ["serve"]
