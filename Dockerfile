# syntax=docker/dockerfile:1
# Multi-stage: build with cargo (--locked), ship only the binary on distroless nonroot.
# The build stage copies the whole context (.dockerignore says what stays out), so a new
# source file, bench or build script needs no edit here; BuildKit cache mounts for the
# registry and target directories keep rebuilds incremental without a dependency stage.
# hack/check-dockerfile.sh replays this build stage without a Docker engine (.ci/run).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The commit `tfdrift --version` and tfdrift_build_info report (the context has no .git);
# RUN sees build args as environment variables, and build.rs reads it from there.
ARG TFDRIFT_GIT_COMMIT=unknown
# One target cache per architecture: a multi-platform build runs both at once.
ARG TARGETARCH
# The target directory is a cache mount, gone after this RUN: copy the binary out here.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,id=tfdrift-target-${TARGETARCH},target=/src/target,sharing=locked \
    cargo build --release --locked --bin tfdrift \
    && cp target/release/tfdrift /usr/local/bin/tfdrift

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/tfdrift /tfdrift
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/tfdrift", "run"]
