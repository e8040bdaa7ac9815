#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, and runs every test.
#   scripts/test.sh                      Release build, all tests (what CI runs)
#   scripts/test.sh -L unit              only tests with a ctest label (unit, conformance, e2e, cuda)
#   LMSERVE_SANITIZE=address,undefined scripts/test.sh    the same under ASan/UBSan (build/asan)
#   LMSERVE_SANITIZE=thread scripts/test.sh -L unit       under TSan (build/tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=${LMSERVE_SANITIZE:-}
if [[ -n "$sanitize" ]]; then
  case "$sanitize" in
    thread) dir=build/tsan ;;
    *) dir=build/asan ;;
  esac
  # Sanitized CUDA host code is not useful here (no device), so it is left out.
  LMSERVE_BUILD_DIR=$dir CMAKE_BUILD_TYPE=RelWithDebInfo bash scripts/build.sh \
    -DLMSERVE_SANITIZE="$sanitize" -DLMSERVE_CUDA=OFF -DLMSERVE_BUILD_BENCH=OFF
else
  dir=build/release
  LMSERVE_BUILD_DIR=$dir bash scripts/build.sh
fi
export TSAN_OPTIONS=${TSAN_OPTIONS:-"halt_on_error=1 second_deadlock_stack=1"}
export ASAN_OPTIONS=${ASAN_OPTIONS:-"detect_leaks=1"}
cd "$dir"
ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@"
