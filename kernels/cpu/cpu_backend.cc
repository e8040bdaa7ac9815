// CpuBackend: memory, weight loading (alias or convert), and forwarding to the ops.
#include "kernels/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/ops.h"

namespace lmserve::kernels::cpu {

namespace {

float read_as_f32(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
  }
  return 0.0f;
}

void write_from_f32(void* data, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::F32: static_cast<float*>(data)[i] = v; break;
    case DType::F16: static_cast<uint16_t*>(data)[i] = f32_to_f16(v); break;
    case DType::BF16: static_cast<uint16_t*>(data)[i] = f32_to_bf16(v); break;
  }
}

void* aligned_bytes(size_t bytes, const char* what) {
  void* p = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64));
  if (!p) throw std::runtime_error(std::string(what) + ": cannot allocate " + std::to_string(bytes) + " bytes");
  return p;
}

}  // namespace

CpuBackend::CpuBackend(const BackendOptions& options, Isa isa)
    : isa_(isa), pool_(options.threads) {
  for (DType d : {DType::F32, DType::F16, DType::BF16})
    kernels_[static_cast<int>(d)] = simd_kernels(isa_, d);
}

CpuBackend::~CpuBackend() {
  for (const void* p : owned_weights_) std::free(const_cast<void*>(p));
}

std::string CpuBackend::name() const {
  return "cpu (" + std::to_string(pool_.size()) + (pool_.size() == 1 ? " thread, " : " threads, ") +
         isa_name(isa_) + ")";
}

const SimdKernels& CpuBackend::kernels_for(DType dtype) const {
  return kernels_[static_cast<int>(dtype)];
}

void* CpuBackend::allocate(size_t bytes) { return aligned_bytes(bytes, "CpuBackend::allocate"); }
void CpuBackend::release(void* ptr) { std::free(ptr); }
void CpuBackend::upload(void* dst, const void* src, size_t bytes) { if (bytes) std::memcpy(dst, src, bytes); }
void CpuBackend::download(void* dst, const void* src, size_t bytes) { if (bytes) std::memcpy(dst, src, bytes); }
void CpuBackend::copy(void* dst, const void* src, size_t bytes) { if (bytes) std::memmove(dst, src, bytes); }

WeightMatrix CpuBackend::load_matrix(const HostTensor& t, DType dtype, bool transpose) {
  if (t.shape.size() != 2 || t.shape[0] <= 0 || t.shape[1] <= 0)
    throw std::runtime_error("load_matrix: tensor '" + t.name + "' is not a non-empty 2-D matrix");
  if (!t.data) throw std::runtime_error("load_matrix: tensor '" + t.name + "' has no data");
  WeightMatrix w;
  w.dtype = dtype;
  w.rows = transpose ? t.shape[1] : t.shape[0];
  w.cols = transpose ? t.shape[0] : t.shape[1];
  if (dtype == t.dtype && !transpose) {
    w.data = t.data;  // zero-copy: the mapping outlives the backend's use of it
    return w;
  }
  const int64_t rows = w.rows, cols = w.cols;
  void* dst = aligned_bytes(static_cast<size_t>(rows * cols) * dtype_size(dtype), "load_matrix");
  // Tiles of 32 result rows × 32 columns, so a transposed read touches 32 stored rows
  // at a time instead of walking a whole stored column per result row.
  constexpr int64_t kTile = 32;
  pool_.parallel_for((rows + kTile - 1) / kTile, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t r0 = b0 * kTile; r0 < std::min(rows, b1 * kTile); r0 += kTile)
      for (int64_t c0 = 0; c0 < cols; c0 += kTile)
        for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
          for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) {
            const int64_t src_index = transpose ? c * rows + r : r * cols + c;
            write_from_f32(dst, dtype, r * cols + c, read_as_f32(t.data, t.dtype, src_index));
          }
  });
  {
    std::lock_guard<std::mutex> lock(owned_mutex_);
    owned_weights_.insert(dst);
  }
  w.data = dst;
  return w;
}

void CpuBackend::release_weight(const WeightMatrix& w) {
  std::lock_guard<std::mutex> lock(owned_mutex_);
  auto it = owned_weights_.find(w.data);
  if (it == owned_weights_.end()) return;  // an alias of host memory, or already released
  std::free(const_cast<void*>(*it));
  owned_weights_.erase(it);
}

float* CpuBackend::load_vector(const HostTensor& t) {
  if (!t.data && t.numel() > 0) throw std::runtime_error("load_vector: tensor '" + t.name + "' has no data");
  const int64_t n = t.numel();
  if (n < 0) throw std::runtime_error("load_vector: tensor '" + t.name + "' has a negative dimension");
  auto* out = static_cast<float*>(aligned_bytes(static_cast<size_t>(n) * sizeof(float), "load_vector"));
  for (int64_t i = 0; i < n; ++i) out[i] = read_as_f32(t.data, t.dtype, i);
  return out;
}

void CpuBackend::embedding(const WeightMatrix& table, const int32_t* ids, int n, float* out,
                           bool accumulate) {
  cpu::embedding(pool_, kernels_for(table.dtype), table, ids, n, out, accumulate);
}

void CpuBackend::linear(const float* x, int n, const WeightMatrix& w, const float* bias, float* y) {
  cpu::linear(pool_, kernels_for(w.dtype), x, n, w, bias, y);
}

void CpuBackend::add_norm(NormKind kind, float* x, const float* delta, const float* weight,
                          const float* bias, float eps, int n, int dim, float* out) {
  cpu::add_norm(pool_, kind, x, delta, weight, bias, eps, n, dim, out);
}

void CpuBackend::add(float* x, const float* y, size_t count) { cpu::add(pool_, x, y, count); }

void CpuBackend::rotary(float* x, int n, int num_heads, int head_dim, int rotary_dim,
                        int64_t row_stride, const int32_t* positions, const float* inv_freq) {
  cpu::rotary(pool_, x, n, num_heads, head_dim, rotary_dim, row_stride, positions, inv_freq);
}

void CpuBackend::gelu_new(float* x, size_t count) { cpu::gelu_new(pool_, x, count); }

void CpuBackend::silu_mul(const float* gate, const float* up, float* out, size_t count) {
  cpu::silu_mul(pool_, gate, up, out, count);
}

void CpuBackend::allocate_kv_cache(const KvCacheShape& shape) { kv_.allocate(shape); }
void CpuBackend::release_kv_cache() { kv_.release(); }

void CpuBackend::kv_write(int layer, const float* k, int64_t k_stride, const float* v,
                          int64_t v_stride, const AttentionBatch& batch) {
  kv_.write(pool_, layer, k, k_stride, v, v_stride, batch);
}

void CpuBackend::attention(int layer, const float* q, int64_t q_stride, int num_heads, float scale,
                           const AttentionBatch& batch, float* out) {
  kv_.attention(pool_, kernels_for(DType::F32), layer, q, q_stride, num_heads, scale, batch, out);
}

void CpuBackend::copy_kv_blocks(std::span<const std::pair<int32_t, int32_t>> pairs) {
  kv_.copy_blocks(pool_, pairs);
}

void CpuBackend::gather_rows(const float* x, int dim, const int32_t* rows, int n, float* out) {
  cpu::gather_rows(pool_, x, dim, rows, n, out);
}

}  // namespace lmserve::kernels::cpu
