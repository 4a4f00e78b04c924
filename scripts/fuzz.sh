#!/usr/bin/env bash
# Runs each cargo-fuzz target for SECONDS (default 30), starting from the
# committed seeds in fuzz/seeds/<target> and the corpus grown by earlier
# runs in fuzz/corpus/<target>. Installs cargo-fuzz if it is missing.
#
# No sanitizer: the targets are safe Rust, and what they look for are panics
# and broken invariants, at several times the speed of an ASan build.
# cargo-fuzz builds in release mode with debug assertions on, so integer
# overflow panics too.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in number commit; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz.sh: $target for ${seconds}s" >&2
  if ! cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz.sh: $target failed; the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" >&2
done
