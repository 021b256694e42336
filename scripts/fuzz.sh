#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (extract, jwks, verify, differential,
# payload, jwe), each for a bounded time, starting from the checked-in corpus
# fuzz/corpus/<target>. CI runs it for 40 s per target; run it longer on
# demand:
#
#   scripts/fuzz.sh                  # 10 minutes per target, every target
#   scripts/fuzz.sh 3600 differential  # one hour, one target
#
# Knobs (environment):
#   FUZZ_SANITIZER  address (default) or none
#   FUZZ_JOBS       parallel fuzzing processes per target (default 1)
#   FUZZ_MERGE=1    afterwards, merge the inputs that found new coverage into
#                   fuzz/corpus/<target> (libFuzzer -merge=1; review and
#                   commit them: keep the corpus small)
#
# New inputs go to fuzz/work/<target> (git-ignored), never into the checked-in
# corpus unless FUZZ_MERGE=1. A crash stops the run with a non-zero status and
# leaves its input in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`); it uses nightly-only
# compiler flags, which RUSTC_BOOTSTRAP=1 allows on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-600}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(extract jwks verify differential payload jwe)
fi
SANITIZER=${FUZZ_SANITIZER:-address}
JOBS=${FUZZ_JOBS:-1}
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2
  exit 1
}

# One build for all targets (the fuzz workspace has its own Cargo.lock).
cargo fuzz build --sanitizer "$SANITIZER"

for target in "${TARGETS[@]}"; do
  corpus=fuzz/corpus/$target
  work=fuzz/work/$target
  mkdir -p "$work" "$corpus" "fuzz/artifacts/$target"
  echo "== fuzz $target: ${SECONDS_PER_TARGET}s, sanitizer $SANITIZER, $JOBS job(s), corpus $(ls "$corpus" | wc -l) inputs" >&2
  # The first directory receives new inputs; the checked-in corpus is read only.
  # -timeout: an input taking 10 s is a hang, and fails the run.
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1)
  if [ "$JOBS" -gt 1 ]; then
    args+=(-fork="$JOBS")
  fi
  cargo fuzz run --sanitizer "$SANITIZER" "$target" "$work" "$corpus" -- "${args[@]}"
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cargo fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" "$work" -- -merge=1
  fi
done
