# syntax=docker/dockerfile:1
# docker build -t weight-converter .
# docker run --rm -p 8080:8080 weight-converter

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY assets assets
COPY benches benches
COPY scripts/build-static.sh scripts/build-static.sh
# The same build the container test runs: a static binary for scratch.
RUN cp "$(./scripts/build-static.sh)" /weight-converter

FROM scratch
COPY --from=build /weight-converter /weight-converter
ENV HOST=0.0.0.0 \
    PORT=8080 \
    RUST_LOG=info
EXPOSE 8080
# A numeric user: scratch has no /etc/passwd.
USER 65532:65532
# No shell or curl in the image: the binary checks itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 \
    CMD ["/weight-converter", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/weight-converter"]
