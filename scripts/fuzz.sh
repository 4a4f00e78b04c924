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

targets=(number commit)
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
# Built once, then run side by side: one core each.
cargo fuzz build --sanitizer none
pids=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz.sh: $target for ${seconds}s" >&2
  cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$logs/$target" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!targets[@]}"; do
  target="${targets[$i]}"
  if wait "${pids[$i]}"; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$logs/$target" >&2
  else
    tail -n 60 "$logs/$target" >&2
    echo "fuzz.sh: $target failed; the input is in fuzz/artifacts/$target" >&2
    failed=1
  fi
done
exit "$failed"
