#!/usr/bin/env bash
# The README's test command: install, configure, build, run every test.
set -euo pipefail
export PRESET=${PRESET:-ci}
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

echo "==> checking the format"
cd "$root"
if ! git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror 2>/tmp/slotbus-format.txt; then
    head -40 /tmp/slotbus-format.txt
    echo "clang-format: files differ from .clang-format (run: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i)"
    exit 1
fi

echo "==> running the tests"
ctest --preset "$PRESET"
