#!/usr/bin/env bash
# Runs every test: unit, HTTP integration, Redis, nginx and headless-Chromium
# browser tests. First installs what the tests need and is missing (Debian's
# chromium, chromium-driver, redis-server, nginx and fonts-noto-core), so it works on a fresh
# machine. Every test starts its own redis-server and nginx, in a temporary
# directory; none uses a server that happens to be running here.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
# A Devanagari face, so the Hindi page renders glyphs, not boxes.
dpkg -s fonts-noto-core >/dev/null 2>&1 || need+=(fonts-noto-core)
if ((${#need[@]})); then
  echo "test.sh: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The container-style test runs the static release binary the Dockerfile
# builds. It is built beside the tests, in a target folder of its own so the
# two builds do not wait on each other's lock: its long single-threaded end
# (one codegen unit, LTO) overlaps the tests' build.
static_path="$(mktemp)"
CARGO_TARGET_DIR=target/static ./scripts/build-static.sh >"$static_path" &
static_build=$!
# If the tests' build fails, the static build does not run on alone.
trap 'pkill -P "$static_build" 2>/dev/null || true; kill "$static_build" 2>/dev/null || true; rm -f "$static_path"' EXIT
# The whole workspace in one build (the benchmark harness too), so CI's smoke
# run of the harness finds its binaries built with the same features.
cargo build --workspace --all-targets
wait "$static_build"
WEIGHT_CONVERTER_STATIC_BIN="$(cat "$static_path")"
export WEIGHT_CONVERTER_STATIC_BIN

cargo test --workspace --all-targets "$@"
