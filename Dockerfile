# syntax=docker/dockerfile:1
# docker build -t weight-converter .
# docker run --rm -p 8080:8080 -v weights:/data weight-converter

FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The dependencies alone, as a recipe: it changes only when a manifest or
# the lock file does, so the layer that builds them stays cached while the
# app's own code changes.
FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
# With the flags and target of scripts/build-static.sh, so its build
# finds them built.
RUN RUSTFLAGS="-C target-feature=+crt-static" cargo chef cook --release --locked \
        --target "$(rustc -vV | sed -n 's/^host: //p')" -p weight-converter --recipe-path recipe.json
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY assets assets
COPY benches benches
# A workspace member: cargo reads its manifest, though the image never builds it.
COPY bench bench
COPY scripts/build-static.sh scripts/build-static.sh
# The same build the container test runs: a static binary for scratch.
RUN cp "$(./scripts/build-static.sh)" /weight-converter
# The sessions' folder, owned by the image's user: a new volume mounted
# there starts as a copy of it, owner included.
RUN mkdir /data

FROM scratch
COPY --from=build /weight-converter /weight-converter
COPY --from=build --chown=65532:65532 /data /data
# Sessions are kept on disk under /data: mount a volume there, and they
# survive restarts, crashes and redeploys. REDIS_URL instead (and
# DATA_DIR= empty) shares them between replicas.
ENV HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data \
    RUST_LOG=info
VOLUME /data
EXPOSE 8080
# A numeric user: scratch has no /etc/passwd.
USER 65532:65532
# No shell or curl in the image: the binary checks itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 \
    CMD ["/weight-converter", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/weight-converter"]
