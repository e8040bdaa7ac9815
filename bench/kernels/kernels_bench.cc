// Micro-benchmarks of linear() (decode and prefill shapes, every weight dtype) and paged
// decode attention, on the backend named by LMSERVE_BENCH_DEVICE (default: the best one
// present). Counters: GB/s of weights (or KV) streamed, GFLOP/s.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/dtype.h"

namespace lmserve::kernels {
namespace {

Backend& bench_backend() {
  static std::unique_ptr<Backend> backend = [] {
    const char* dev = std::getenv("LMSERVE_BENCH_DEVICE");
    BackendOptions options;
    if (const char* t = std::getenv("LMSERVE_BENCH_THREADS")) options.threads = std::atoi(t);
    return make_backend(dev ? dev : default_device(), options);
  }();
  return *backend;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

DeviceBuffer upload(Backend& b, const void* data, size_t bytes) {
  DeviceBuffer buf(b, bytes);
  b.upload(buf.get(), data, bytes);
  return buf;
}

// Args: dtype (0 F32, 1 F16, 2 BF16), out_features, in_features, rows of x.
void BM_Linear(benchmark::State& state) {
  Backend& b = bench_backend();
  const auto dtype = static_cast<DType>(state.range(0));
  const int64_t N = state.range(1), K = state.range(2);
  const int n = static_cast<int>(state.range(3));
  const auto values = random_floats(static_cast<size_t>(N * K), 1);
  std::vector<uint16_t> half(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    half[i] = dtype == DType::F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
  const void* host = dtype == DType::F32 ? static_cast<const void*>(values.data()) : half.data();
  // load_matrix may alias `host` (CPU), so it stays alive for the whole benchmark.
  const WeightMatrix w = b.load_matrix(HostTensor{host, dtype, {N, K}, "bench.weight"}, dtype, false);
  const auto x = random_floats(static_cast<size_t>(n * K), 2);
  DeviceBuffer dx = upload(b, x.data(), x.size() * sizeof(float));
  DeviceBuffer dy(b, static_cast<size_t>(n * N) * sizeof(float));
  for (auto _ : state) {
    b.linear(dx.as<float>(), n, w, nullptr, dy.as<float>());
    b.synchronize();
  }
  const double bytes = static_cast<double>(N * K) * dtype_size(dtype);
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(dtype_name(dtype)) + " " + std::to_string(N) + "x" + std::to_string(K) +
                 " n=" + std::to_string(n));
  b.release_weight(w);
}

void LinearArgs(benchmark::internal::Benchmark* bm) {
  for (int dtype : {0, 1, 2})
    for (auto [N, K] : {std::pair{768, 768}, {2048, 768}, {32000, 768}})
      for (int n : {1, 8, 512}) {
        if (N == 32000 && n == 512) continue;  // a full-vocab LM head is run on last rows only
        bm->Args({dtype, N, K, n});
      }
}
BENCHMARK(BM_Linear)->Apply(LinearArgs)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Args: context length, sequences, query tokens per sequence (1 = decode; = context for
// a prefill). 12 heads × 64, as GPT-2 small.
void BM_Attention(benchmark::State& state) {
  Backend& b = bench_backend();
  const int ctx = static_cast<int>(state.range(0));
  const int seqs = static_cast<int>(state.range(1));
  const int qlen = static_cast<int>(state.range(2));
  const int heads = 12, head_dim = 64, block_size = 16;
  const int blocks_per_seq = (ctx + block_size - 1) / block_size;
  b.allocate_kv_cache(KvCacheShape{1, blocks_per_seq * seqs, block_size, heads, head_dim});

  // Fill the cache with every sequence's context in one kv_write.
  std::vector<int32_t> positions, slots, qs = {0}, ctx_lens, tables;
  for (int s = 0; s < seqs; ++s) {
    for (int p = 0; p < ctx; ++p) {
      positions.push_back(p);
      slots.push_back((s * blocks_per_seq + p / block_size) * block_size + p % block_size);
    }
    qs.push_back(static_cast<int32_t>(positions.size()));
    ctx_lens.push_back(ctx);
    for (int i = 0; i < blocks_per_seq; ++i) tables.push_back(s * blocks_per_seq + i);
  }
  const int row = heads * head_dim;
  const auto kv = random_floats(positions.size() * row, 3);
  auto dev = [&](const std::vector<int32_t>& v) { return upload(b, v.data(), v.size() * sizeof(int32_t)); };
  DeviceBuffer dpos = dev(positions), dslots = dev(slots), dqs = dev(qs), dctx = dev(ctx_lens), dtab = dev(tables);
  DeviceBuffer dkv = upload(b, kv.data(), kv.size() * sizeof(float));
  AttentionBatch fill{static_cast<int>(positions.size()), seqs, blocks_per_seq, ctx, ctx,
                      dpos.as<int32_t>(), dslots.as<int32_t>(), dqs.as<int32_t>(), dctx.as<int32_t>(),
                      dtab.as<int32_t>()};
  b.kv_write(0, dkv.as<float>(), row, dkv.as<float>(), row, fill);

  // The step: the last `qlen` positions of each sequence.
  std::vector<int32_t> step_pos, step_qs = {0};
  for (int s = 0; s < seqs; ++s) {
    for (int p = ctx - qlen; p < ctx; ++p) step_pos.push_back(p);
    step_qs.push_back(static_cast<int32_t>(step_pos.size()));
  }
  DeviceBuffer dspos = dev(step_pos), dsqs = dev(step_qs);
  AttentionBatch step{seqs * qlen, seqs, blocks_per_seq, ctx, qlen, dspos.as<int32_t>(), dslots.as<int32_t>(),
                      dsqs.as<int32_t>(), dctx.as<int32_t>(), dtab.as<int32_t>()};
  const auto q = random_floats(static_cast<size_t>(seqs * qlen * row), 4);
  DeviceBuffer dq = upload(b, q.data(), q.size() * sizeof(float));
  DeviceBuffer out(b, q.size() * sizeof(float));
  for (auto _ : state) {
    b.attention(0, dq.as<float>(), row, heads, 0.125f, step, out.as<float>());
    b.synchronize();
  }
  const double bytes = 2.0 * ctx * row * sizeof(float) * seqs;  // K and V, read at least once
  // q·k and p·v over every attended position: 4 flops per head dimension.
  double attended = 0;
  for (int p = ctx - qlen; p < ctx; ++p) attended += p + 1;
  const double flops = 4.0 * attended * heads * head_dim * seqs;
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel("ctx=" + std::to_string(ctx) + " seqs=" + std::to_string(seqs) + " q=" + std::to_string(qlen));
  b.release_kv_cache();
}
BENCHMARK(BM_Attention)
    ->Args({512, 1, 1})->Args({2048, 1, 1})->Args({512, 8, 1})->Args({2048, 8, 1})  // decode
    ->Args({512, 1, 512})                                                          // prefill
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace lmserve::kernels

BENCHMARK_MAIN();
