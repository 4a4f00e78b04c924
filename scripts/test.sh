#!/usr/bin/env bash
# Runs every test: unit, HTTP integration and headless-Chromium browser tests.
# First installs what the tests need and is missing (Debian's chromium and
# chromium-driver), so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if ((${#need[@]})); then
  echo "test.sh: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The container-style test runs the static release binary the Dockerfile builds.
WEIGHT_CONVERTER_STATIC_BIN="$(./scripts/build-static.sh)"
export WEIGHT_CONVERTER_STATIC_BIN

cargo test --all-targets "$@"
