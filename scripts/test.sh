#!/usr/bin/env bash
# The README's test command: install, configure, build, run every test.
set -euo pipefail
export PRESET=${PRESET:-ci}
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

echo "==> checking the format"
cd "$root"
if ! git ls-files '*.cpp' '*.hpp' '*.c' '*.h' | xargs clang-format --dry-run --Werror 2>/tmp/slotbus-format.txt; then
    head -40 /tmp/slotbus-format.txt
    echo "clang-format: files differ from .clang-format (run: git ls-files '*.cpp' '*.hpp' '*.c' '*.h' | xargs clang-format -i)"
    exit 1
fi

echo "==> running the tests"
ctest --preset "$PRESET"

# The whole suite again under ASan+UBSan (clang), then each fuzz target for a
# bounded time over a copy of its seed corpus (docs/fuzzing.md runs them long).
if [ "${SLOTBUS_SANITIZE:-1}" = 1 ]; then
    echo "==> building and running the tests under ASan+UBSan"
    cmake --preset asan -S "$root" >/dev/null
    cmake --build --preset asan
    ctest --preset asan
    seconds=${FUZZ_SECONDS:-60}
    for target in fuzz_frames fuzz_core fuzz_link fuzz_broadcast fuzz_envelope; do
        corpus=$(mktemp -d)
        cp "$root/tests/fuzz/corpus/${target#fuzz_}/"* "$corpus/"
        echo "==> fuzzing $target for $seconds s"
        "$root/build/asan/tests/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 \
            -artifact_prefix="$corpus/" "$corpus" 2>&1 | tail -n 12
        rm -rf "$corpus"
    done
fi
