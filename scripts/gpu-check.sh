#!/usr/bin/env bash
# The CUDA backend's whole check on a GPU machine that holds only the CUDA toolkit, cmake
# and ninja (no Debian packages, no network): configure and build with all cores, run the
# `cuda` tests, generate a random-weight ~1B Llama in f16, measure copy bandwidth and
# `lmserve bench` at batch 1/8/64, and print a short table last. Under 8 minutes.
#   local:  bash scripts/gpu-carry.sh      (copies json/CLI11/GoogleTest into .gpu-carry)
#   device: bash scripts/gpu-check.sh      (with .gpu-carry carried along)
# Logs and JSON results go to $OUT when it is set (the device tool's result folder), else
# to <build>/gpu-check. Exit status: non-zero when the build or any cuda test failed.
# LMSERVE_GPU_CMAKE_ARGS adds configure arguments (a dry run on a machine with the Debian
# packages can hide them: -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON and the like).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${LMSERVE_GPU_BUILD_DIR:-$ROOT/build/gpu}
RESULTS=${OUT:-$BUILD/gpu-check}
ARCH=${LMSERVE_CUDA_ARCHITECTURES:-90}
JOBS=$(nproc)
MODEL=$BUILD/llama-1b-f16
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p "$BUILD" "$RESULTS"
start=$SECONDS
log() { echo "[gpu-check $((SECONDS - start))s] $*"; }
fail() { echo "gpu-check: $*" >&2; exit 1; }
json_num() { sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p" <<<"$2" | head -1; }

for tool in nvcc cmake ninja; do command -v "$tool" >/dev/null || fail "$tool not found"; done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$RESULTS/gpu.txt"

# GoogleTest: installed from the carried sources, so find_package(GTest) finds it (the
# add_subdirectory fallback in cmake/LmserveDeps.cmake collides with the GTest:: aliases
# that GoogleTest >= 1.11 defines itself).
GTEST_PREFIX=$BUILD/_carry-gtest
if [[ -f .gpu-carry/googletest/CMakeLists.txt && ! -f $GTEST_PREFIX/.installed ]]; then
  log "googletest from .gpu-carry"
  { cmake -S .gpu-carry/googletest -B "$BUILD/_carry-gtest-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$GTEST_PREFIX" -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_POSITION_INDEPENDENT_CODE=ON &&
    cmake --build "$BUILD/_carry-gtest-build" -j "$JOBS" --target install; } >"$RESULTS/googletest.log" 2>&1 ||
    { tail -20 "$RESULTS/googletest.log"; fail "building the carried GoogleTest failed"; }
  touch "$GTEST_PREFIX/.installed"
fi
log "configure ($BUILD)"
if ! cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DLMSERVE_SERVER=OFF -DLMSERVE_TOKENIZER=OFF -DLMSERVE_CUDA=ON -DLMSERVE_BUILD_BENCH=OFF \
    -DLMSERVE_CARRY_DIR="$ROOT/.gpu-carry" -DLMSERVE_CUDA_ARCHITECTURES="$ARCH" \
    -DCMAKE_PREFIX_PATH="$GTEST_PREFIX" ${LMSERVE_GPU_CMAKE_ARGS:-} >"$RESULTS/configure.log" 2>&1; then
  tail -40 "$RESULTS/configure.log"
  fail "configure failed (did scripts/gpu-carry.sh run, and was .gpu-carry carried?)"
fi

# Only what this check runs: every cuda-labelled test, the CLI and the model generator.
cuda_tests=$(ctest --test-dir "$BUILD" -N -L cuda | sed -n 's/^ *Test *#[0-9]*: *\([A-Za-z0-9_.-]*\).*/\1/p')
[[ -n "$cuda_tests" ]] || fail "no test carries the cuda label"
log "build -j$JOBS: $(echo $cuda_tests) lmserve lmserve-make-random-model"
# shellcheck disable=SC2086
if ! cmake --build "$BUILD" -j "$JOBS" --target $cuda_tests lmserve lmserve-make-random-model \
    >"$RESULTS/build.log" 2>&1; then
  grep -E "error|Error" "$RESULTS/build.log" | head -40
  fail "build failed: see $RESULTS/build.log"
fi

log "ctest -L cuda"
ctest --test-dir "$BUILD" -L cuda --output-on-failure --timeout 300 >"$RESULTS/ctest.log" 2>&1
tests_rc=$?
tail -25 "$RESULTS/ctest.log"
log "cuda tests again with LMSERVE_CUDA_GRAPHS=1 (decode steps replayed as CUDA graphs)"
for t in kernels/kernels_cuda_test kernels/cuda_model_test; do
  LMSERVE_CUDA_GRAPHS=1 timeout 300 "$BUILD/tests/$t" >"$RESULTS/graphs-$(basename "$t").log" 2>&1 || tests_rc=1
  tail -3 "$RESULTS/graphs-$(basename "$t").log"
done
tests_status=$([[ $tests_rc -eq 0 ]] && echo passed || echo FAILED)

log "bandwidth"
nvcc -O2 -std=c++17 -arch="sm_$ARCH" -o "$BUILD/copy_bandwidth" bench/gpu/copy_bandwidth.cu || fail "nvcc copy_bandwidth failed"
bw_json=$("$BUILD/copy_bandwidth" 1024)
echo "$bw_json" | tee "$RESULTS/bandwidth.json"
card=$(sed -n 's/.*"device": "\([^"]*\)".*/\1/p' <<<"$bw_json")
copy_gbps=$(json_num copy_gbps "$bw_json")
read_gbps=$(json_num read_gbps "$bw_json")

if [[ ! -f "$MODEL/config.json" ]]; then
  log "generate the 1B Llama (f16)"
  "$BUILD/tools/lmserve-make-random-model" --out "$MODEL" --family llama --vocab 32000 --hidden 2048 \
    --layers 16 --heads 32 --kv-heads 8 --intermediate 5632 --max-positions 4096 --dtype f16 --seed 1 \
    >"$RESULTS/make-model.log" 2>&1 || { tail -20 "$RESULTS/make-model.log"; fail "model generation failed"; }
fi

bench() {  # bench <label> <batch> [env...]: one lmserve bench run, its JSON on stdout
  local label=$1 batch=$2
  shift 2
  env "$@" timeout 150 "$BUILD/cli/lmserve" bench --model "$MODEL" --device cuda --batch "$batch" \
    --prompt-tokens 512 --gen-tokens 128 --json 2>"$RESULTS/bench-$label.err" | tail -1 | tee "$RESULTS/bench-$label.json"
}
declare -A decode decode_graphs
for b in 1 8 64; do
  log "bench batch $b"
  out=$(bench "b$b" "$b")
  echo "$out"
  decode[$b]=$(json_num decode_tokens_per_s "$out")
  [[ $b == 1 ]] && { prefill=$(json_num prefill_tokens_per_s "$out"); weight_bytes=$(json_num weight_bytes "$out"); }
  log "bench batch $b, LMSERVE_CUDA_GRAPHS=1"
  out=$(bench "b$b-graphs" "$b" LMSERVE_CUDA_GRAPHS=1)
  echo "$out"
  decode_graphs[$b]=$(json_num decode_tokens_per_s "$out")
done
log "bench batch 1, cuBLAS prefill (LMSERVE_CUDA_GEMM=cublas)"
out=$(bench b1-cublas 1 LMSERVE_CUDA_GEMM=cublas)
echo "$out"
prefill_cublas=$(json_num prefill_tokens_per_s "$out")

# The bandwidth bound of batch-1 decode: every weight byte is read once per token.
summary=$(awk -v card="$card" -v copy="${copy_gbps:-0}" -v readbw="${read_gbps:-0}" -v wb="${weight_bytes:-0}" \
  -v d1="${decode[1]:-0}" -v d8="${decode[8]:-0}" -v d64="${decode[64]:-0}" -v pf="${prefill:-0}" \
  -v g1="${decode_graphs[1]:-0}" -v g8="${decode_graphs[8]:-0}" -v g64="${decode_graphs[64]:-0}" \
  -v pfc="${prefill_cublas:-0}" -v tests="$tests_status" -v secs="$((SECONDS - start))" 'BEGIN {
  bound = wb > 0 ? copy * 1e9 / wb : 0
  printf "%-44s %s\n", "card", card
  printf "%-44s %.0f (read-only kernel: %.0f)\n", "copy bandwidth GB/s", copy, readbw
  printf "%-44s %.3f\n", "weights GB (1B Llama, f16)", wb / 1e9
  printf "%-44s %.0f\n", "batch-1 bound tok/s (bandwidth / weights)", bound
  printf "%-44s %.1f (graphs: %.1f)\n", "decode tok/s, batch 1", d1, g1
  printf "%-44s %.1f (graphs: %.1f)\n", "decode tok/s, batch 8", d8, g8
  printf "%-44s %.1f (graphs: %.1f)\n", "decode tok/s, batch 64", d64, g64
  printf "%-44s %.1f\n", "prefill tok/s (512-token prompt, own GEMM)", pf
  printf "%-44s %.1f\n", "prefill tok/s (LMSERVE_CUDA_GEMM=cublas)", pfc
  pct = bound > 0 ? 100 * d1 / bound : 0
  pct_graphs = bound > 0 ? 100 * g1 / bound : 0
  printf "%-44s %.1f%% (graphs: %.1f%%)\n", "batch-1 decode, % of bound", pct, pct_graphs
  printf "%-44s %s\n", "cuda tests", tests
  printf "%-44s %d\n", "gpu-check seconds", secs
}')
echo
echo "$summary" | tee "$RESULTS/summary.txt"
exit $tests_rc
