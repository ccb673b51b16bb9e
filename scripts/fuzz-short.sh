#!/usr/bin/env bash
# Short fuzzing run for CI: every cargo-fuzz target in fuzz/, one after the other, for a
# fixed number of inputs from a fixed seed (about a minute each here), so that the run is
# repeatable: a run that passed on a commit passes again on it, and a crash reproduces.
# Longer, open-ended runs are in docs/ROBUSTNESS.md. Exits non-zero if any target finds a
# crash; the crashing input is left in fuzz/artifacts/<target>/ and cargo-fuzz prints how to
# reproduce it.
#
# Needs only the stable toolchain: cargo-fuzz is installed if missing, and the nightly
# flags it passes (-Z sanitizer, -Cpasses=sancov) are accepted by stable under
# RUSTC_BOOTSTRAP=1. Environment:
#   FUZZ_SECONDS      upper bound in seconds per target (default 120)
#   FUZZ_SEED         libFuzzer seed (default 1)
#   FUZZ_RUNS         inputs per target (default: per target, about a minute here)
#   FUZZ_SANITIZER    address (default) or none, passed to `cargo fuzz run -s`
#   FUZZ_TARGET_DIR   build directory (default $CARGO_TARGET_DIR/fuzz, else fuzz/target)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-120}"
seed="${FUZZ_SEED:-1}"
sanitizer="${FUZZ_SANITIZER:-address}"
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    target_dir="${FUZZ_TARGET_DIR:-$CARGO_TARGET_DIR/fuzz}"
else
    target_dir="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
fi

# Pin the stable toolchain where rustup has one installed, so that a machine whose
# default is nightly still checks that the stable path works; never ask rustup to fetch
# one, since a machine may have no way to download it.
toolchain=()
if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^stable'; then
    toolchain=(+stable)
fi

if ! cargo "${toolchain[@]}" fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo "${toolchain[@]}" install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
fuzz=(cargo "${toolchain[@]}" fuzz)
opts=(-O -s "$sanitizer" --target-dir "$target_dir")

targets=$("${fuzz[@]}" list)
echo "== building fuzz targets: $(echo "$targets" | tr '\n' ' ')"
"${fuzz[@]}" build "${opts[@]}"

failed=()
for target in $targets; do
    # Inputs per target, set so the three together take about as long as decode and
    # sessions alone did before batch was added (about two minutes in all here).
    case "$target" in
    decode) runs="${FUZZ_RUNS:-3000000}" ;; # ~90,000 inputs/s
    batch) runs="${FUZZ_RUNS:-800000}" ;;   # ~25,000 inputs/s (it also runs the packer)
    *) runs="${FUZZ_RUNS:-70000}" ;;        # the session target runs ~1,200 inputs/s
    esac
    echo "== fuzzing $target: $runs inputs from seed $seed (at most ${seconds}s)"
    # Progress lines and the suggested dictionary are dropped to keep the log short;
    # the final stats line and any crash report stay.
    set +e
    "${fuzz[@]}" run "${opts[@]}" "$target" -- \
        -seed="$seed" -runs="$runs" -max_total_time="$seconds" 2>&1 |
        grep --line-buffered -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|NEW_FUNC|^".*" # Uses: '
    status="${PIPESTATUS[0]}"
    set -e
    if [[ "$status" -ne 0 ]]; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "== fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "== fuzzing: no crashes"
