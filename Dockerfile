# The `compliance` binary in a minimal image: non-root (UID 65532), no shell,
# no package manager. The same image runs the monitor and the webhook
# (deploy/kubernetes), and `compliance scan` in CI.
#
#   docker build -t compliance:dev .
#   docker run --rm -v "$PWD/examples/manifests:/m:ro" compliance:dev scan --k8s-manifests /m --out /tmp
#
# Build stage: the toolchain this workspace pins (rust-version 1.95).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions of Cargo.lock.
RUN cargo build --release --locked -p compliance-cli \
 && install -D -m 0755 target/release/compliance /out/compliance

# Runtime stage: glibc and libgcc only. TLS is rustls with aws-lc-rs and
# SQLite is compiled in, so no OpenSSL or libsqlite3 is needed.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/compliance /usr/local/bin/compliance
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/compliance"]
CMD ["--help"]
