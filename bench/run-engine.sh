#!/usr/bin/env bash
# Engine throughput on the 110M-parameter random-weight Llama (vocab 32000, hidden 768,
# 12 layers, 12 heads, intermediate 2048): batch 1 and 8, f32 and f16 weights, all cores.
# Usage: bench/run-engine.sh [build-dir]   (default build/release; builds nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
OUT=bench/out
mkdir -p "$OUT"
for dtype in f32 f16; do
  model="$OUT/llama-110m-$dtype"
  if [[ ! -f "$model/model.safetensors" ]]; then
    "$BUILD/tools/lmserve-make-random-model" --out "$model" --family llama --vocab 32000 --hidden 768 \
      --layers 12 --heads 12 --kv-heads 12 --intermediate 2048 --max-positions 2048 --dtype "$dtype" --seed 1
  fi
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-6s %-6s %18s %18s\n' dtype batch "prefill tok/s" "decode tok/s"
for dtype in f32 f16; do
  for batch in 1 8; do
    json=$("$BUILD/cli/lmserve" bench --model "$OUT/llama-110m-$dtype" --prompt-tokens 512 --gen-tokens 128 \
      --batch "$batch" --json)
    echo "$json" >> "$OUT/engine.jsonl"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%-6s %-6d %18.1f %18.1f" % (sys.argv[2], d["batch"], d["prefill_tokens_per_s"], d["decode_tokens_per_s"]))' "$json" "$dtype"
  done
done
