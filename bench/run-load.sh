#!/usr/bin/env bash
# HTTP load on the 110M-parameter random-weight Llama (vocab 32000, hidden 768, 12 layers,
# 12 heads, intermediate 2048) with the GPT-2 tokenizer: starts `lmserve serve` and runs
# lmserve-bench-load at concurrency 1, 8 and 32. Prompts are token ids below 32000 (the
# model's vocabulary), so the tokenizer only detokenizes the output.
# Usage: bench/run-load.sh [build-dir] [extra serve flags...]   (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
shift || true
OUT=bench/out
MODEL="$OUT/llama-110m-load"
PORT=${PORT:-18080}
MIN_REQUESTS=${MIN_REQUESTS:-16}
mkdir -p "$OUT"
if [[ ! -f "$MODEL/model.safetensors" ]]; then
  "$BUILD/tools/lmserve-make-random-model" --out "$MODEL" --family llama --vocab 32000 --hidden 768 \
    --layers 12 --heads 12 --kv-heads 12 --intermediate 2048 --max-positions 2048 --dtype f32 --seed 1
fi
cp tests/data/tokenizers/gpt2/tokenizer.json tests/data/tokenizers/gpt2/tokenizer_config.json "$MODEL/"

"$BUILD/cli/lmserve" serve --model "$MODEL" --port "$PORT" --served-model-name llama-110m \
  --max-num-seqs 64 --max-model-len 2048 "$@" > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; then break; fi
  sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/health" > /dev/null || { cat "$OUT/serve.log"; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(grep -m1 'ready in' "$OUT/serve.log" || true)"
for c in 1 8 32; do
  n=$(( 2 * c > MIN_REQUESTS ? 2 * c : MIN_REQUESTS ))  # every client sends at least two requests
  "$BUILD/bench/load/lmserve-bench-load" --port "$PORT" --concurrency "$c" --requests "$n" --model llama-110m \
    --min-prompt 16 --max-prompt 256 --min-tokens 32 --max-tokens 128 | tee -a "$OUT/load.txt" || true
done
