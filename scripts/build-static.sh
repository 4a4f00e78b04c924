#!/usr/bin/env bash
# Builds the release binary as the container image ships it: statically
# linked, so it runs on an empty (scratch) image. The Dockerfile runs this
# same script, and the container test runs its output.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2
echo "${CARGO_TARGET_DIR:-target}/$target/release/weight-converter"
