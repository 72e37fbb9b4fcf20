# syntax=docker/dockerfile:1
# Multi-stage: build with cargo (--locked), ship only the binary on distroless nonroot.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependency layer: built from the manifests alone, reused until Cargo.toml/lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/fingerprint.rs \
    && cargo build --release --locked --bin tfdrift \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
# Make sure cargo sees the real sources as newer than the dummy build.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin tfdrift

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/tfdrift /tfdrift
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/tfdrift", "run"]
