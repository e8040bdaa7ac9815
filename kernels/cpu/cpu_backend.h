// CpuBackend: the Backend interface on host memory, multi-threaded, with SIMD kernels
// picked once at construction (AVX-512, AVX2+FMA or portable).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "kernels/backend.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/kv_cache.h"
#include "kernels/cpu/simd_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace lmserve::kernels::cpu {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& options, Isa isa = detect_isa());
  ~CpuBackend() override;

  std::string name() const override;
  Isa isa() const { return isa_; }
  int threads() const { return pool_.size(); }

  void* allocate(size_t bytes) override;
  void release(void* ptr) override;
  void upload(void* dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;

  WeightMatrix load_matrix(const HostTensor& t, DType dtype, bool transpose) override;
  void release_weight(const WeightMatrix& w) override;
  float* load_vector(const HostTensor& t) override;

  void embedding(const WeightMatrix& table, const int32_t* ids, int n, float* out,
                 bool accumulate) override;
  void linear(const float* x, int n, const WeightMatrix& w, const float* bias, float* y) override;
  void add_norm(NormKind kind, float* x, const float* delta, const float* weight,
                const float* bias, float eps, int n, int dim, float* out) override;
  void add(float* x, const float* y, size_t count) override;
  void rotary(float* x, int n, int num_heads, int head_dim, int rotary_dim, int64_t row_stride,
              const int32_t* positions, const float* inv_freq) override;
  void gelu_new(float* x, size_t count) override;
  void silu_mul(const float* gate, const float* up, float* out, size_t count) override;

  void allocate_kv_cache(const KvCacheShape& shape) override;
  void release_kv_cache() override;
  void kv_write(int layer, const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const AttentionBatch& batch) override;
  void attention(int layer, const float* q, int64_t q_stride, int num_heads, float scale,
                 const AttentionBatch& batch, float* out) override;
  void copy_kv_blocks(std::span<const std::pair<int32_t, int32_t>> pairs) override;
  void gather_rows(const float* x, int dim, const int32_t* rows, int n, float* out) override;

 private:
  const SimdKernels& kernels_for(DType dtype) const;

  Isa isa_;
  ThreadPool pool_;
  SimdKernels kernels_[3];  // indexed by DType
  PagedKvCache kv_;
  std::mutex owned_mutex_;
  std::unordered_set<const void*> owned_weights_;  // converted copies, not aliases
};

}  // namespace lmserve::kernels::cpu
