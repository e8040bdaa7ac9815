#!/usr/bin/env bash
# The README's run command: installs dependencies, builds, and serves the bundled demo
# model (random weights, real GPT-2 tokenizer) on http://127.0.0.1:8000.
# Arguments are passed to `lmserve serve` (e.g. --model /path/to/hf-model --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
LMSERVE_BUILD_DIR=build/release bash scripts/build.sh
exec build/release/cli/lmserve serve "$@"
