// The one interface between the model and the math.
//
// Owns: the op set a decoder-only transformer step needs, and device memory.
// Does not own: which ops run in which order (engine/model), KV block bookkeeping
// (engine/kv), or sampling decisions (engine/sampling).
//
// Conventions every implementation follows:
//  - Activations are float32, row-major, contiguous unless a row stride is given.
//  - Weight matrices stay in their stored dtype (F32/F16/BF16) and are widened to
//    float32 inside the kernels. Vectors (norm weights, biases) are float32.
//  - Every pointer passed to an op is memory of this backend (device memory on CUDA,
//    host memory on CPU). Host-side metadata is passed as spans and says so.
//  - Ops are ordered: each op sees the results of the ops issued before it.
//    download() waits for all prior work.
//  - Batch invariance: an output element's value depends only on its own inputs,
//    never on the batch size, on other rows, or on the thread count. Reductions are
//    never split across threads in a way that changes their order. This is what makes
//    a seeded request reproducible whatever else shares its batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace lmserve::kernels {

// A weight matrix as the backend holds it: row-major [rows, cols] in `dtype`.
// For a linear layer rows = out_features and cols = in_features (y = x · Wᵀ).
struct WeightMatrix {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
};

// A weight as it sits in the checkpoint (host memory, usually memory-mapped).
struct HostTensor {
  const void* data = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string name;  // for error messages
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

enum class NormKind : uint8_t { LayerNorm, RmsNorm };

// Per-step attention metadata. Device arrays are filled by the model from the host
// batch description before the step's first op.
//
// Token t of the step (0 <= t < num_tokens) belongs to sequence s where
// query_start[s] <= t < query_start[s + 1]; its absolute position is positions[t];
// it attends to the cached positions 0..positions[t] of sequence s (causal).
// Position p of sequence s lives in KV slot
//   block_tables[s * max_blocks_per_seq + p / block_size] * block_size + p % block_size.
struct AttentionBatch {
  int num_tokens = 0;
  int num_seqs = 0;
  int max_blocks_per_seq = 0;
  int max_context_len = 0;           // host: max over s of context_lens[s]
  int max_query_len = 0;             // host: max over s of query lengths
  const int32_t* positions = nullptr;     // device [num_tokens]
  const int32_t* slot_mapping = nullptr;  // device [num_tokens]: KV slot to write token t to; < 0: skip (padding)
  const int32_t* query_start = nullptr;   // device [num_seqs + 1]
  const int32_t* context_lens = nullptr;  // device [num_seqs]: cached tokens after this step
  const int32_t* block_tables = nullptr;  // device [num_seqs, max_blocks_per_seq]
};

// Geometry of the paged KV cache; the storage layout and dtype are the backend's choice.
struct KvCacheShape {
  int num_layers = 0;
  int num_blocks = 0;
  int block_size = 16;
  int num_kv_heads = 0;
  int head_dim = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu (16 threads, avx512)" or "cuda:0 NVIDIA H100 80GB HBM3"
  virtual std::string name() const = 0;
  virtual bool is_cuda() const { return false; }
  // Free and total bytes of device memory; zeros where memory is the host's (CPU), whose
  // KV cache is sized in tokens instead.
  struct MemoryInfo {
    size_t free_bytes = 0;
    size_t total_bytes = 0;
  };
  virtual MemoryInfo memory_info() const { return {}; }

  // ---- memory ----
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* ptr) = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void synchronize() {}

  // Makes a checkpoint matrix usable by linear()/embedding(). `dtype` is the dtype to
  // hold it in (the CPU backend keeps the stored dtype and may alias the host memory,
  // which must then outlive the backend's use of it). With `transpose`, the stored
  // [in, out] layout (GPT-2 Conv1D) is turned into [out, in].
  // Returned memory, when owned, is released with release_weight().
  virtual WeightMatrix load_matrix(const HostTensor& t, DType dtype, bool transpose) = 0;
  virtual void release_weight(const WeightMatrix& w) = 0;
  // Uploads a vector (norm weight, bias) as float32; freed with release().
  virtual float* load_vector(const HostTensor& t) = 0;

  // ---- ops ----
  // out[i, :] (+)= table[ids[i], :] widened to float32. ids: device [n].
  virtual void embedding(const WeightMatrix& table, const int32_t* ids, int n, float* out,
                         bool accumulate) = 0;

  // y[n, w.rows] = x[n, w.cols] · wᵀ (+ bias[w.rows] when bias != nullptr).
  virtual void linear(const float* x, int n, const WeightMatrix& w, const float* bias,
                      float* y) = 0;

  // Fused residual + norm: if delta != nullptr, x += delta first (x is the residual
  // stream, updated in place); then out = norm(x) · weight (+ bias for LayerNorm).
  // LayerNorm uses the biased variance; RMSNorm is x · rsqrt(mean(x²) + eps).
  virtual void add_norm(NormKind kind, float* x, const float* delta, const float* weight,
                        const float* bias, float eps, int n, int dim, float* out) = 0;

  // x += y, count elements.
  virtual void add(float* x, const float* y, size_t count) = 0;

  // In-place rotary embedding, Hugging Face rotate_half layout: for each of the n rows
  // (row stride `row_stride` floats), each of `num_heads` heads of `head_dim` floats,
  // element j < rotary_dim/2 is rotated with element j + rotary_dim/2 by the angle
  // a = float(positions[row]) · inv_freq[j] (float32 product, as HF computes it):
  //   x[j] ← x[j]·cos a − x[j+r/2]·sin a;  x[j+r/2] ← x[j+r/2]·cos a + x[j]·sin a.
  // inv_freq: device [rotary_dim/2], computed by the model (it carries any RoPE scaling).
  // positions: device [n].
  virtual void rotary(float* x, int n, int num_heads, int head_dim, int rotary_dim,
                      int64_t row_stride, const int32_t* positions, const float* inv_freq) = 0;

  // x = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in float32.
  virtual void gelu_new(float* x, size_t count) = 0;
  // out = silu(gate) · up, where silu(g) = g / (1 + e^-g).
  virtual void silu_mul(const float* gate, const float* up, float* out, size_t count) = 0;

  // ---- paged KV cache ----
  virtual void allocate_kv_cache(const KvCacheShape& shape) = 0;
  virtual void release_kv_cache() = 0;
  // Writes the step's keys and values (rows of num_kv_heads·head_dim floats, row strides
  // given) into their slots of `layer`.
  virtual void kv_write(int layer, const float* k, int64_t k_stride, const float* v,
                        int64_t v_stride, const AttentionBatch& batch) = 0;
  // out[t, h·head_dim ...] = softmax(q_t,h · Kᵀ · scale) · V over sequence s's cached
  // positions 0..positions[t], with query head h reading KV head h / (num_heads/num_kv_heads).
  // q rows have stride q_stride; out is contiguous [num_tokens, num_heads·head_dim].
  virtual void attention(int layer, const float* q, int64_t q_stride, int num_heads,
                         float scale, const AttentionBatch& batch, float* out) = 0;
  // Copies whole blocks (copy-on-write when sequences sharing a block diverge).
  // pairs: host [(src, dst), ...], every layer.
  virtual void copy_kv_blocks(std::span<const std::pair<int32_t, int32_t>> pairs) = 0;

  // out[i, :] = x[rows[i], :]; rows: device [n].
  virtual void gather_rows(const float* x, int dim, const int32_t* rows, int n,
                           float* out) = 0;
};

// Owns one allocation of a backend.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& backend, size_t bytes)
      : backend_(&backend), ptr_(bytes ? backend.allocate(bytes) : nullptr), bytes_(bytes) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      backend_ = o.backend_;
      ptr_ = o.ptr_;
      bytes_ = o.bytes_;
      o.ptr_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void reset() {
    if (ptr_) backend_->release(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  // Grows (never shrinks) to at least `bytes`; contents are not kept.
  void reserve(Backend& backend, size_t bytes) {
    if (bytes <= bytes_ && backend_ == &backend) return;
    reset();
    backend_ = &backend;
    ptr_ = backend.allocate(bytes);
    bytes_ = bytes;
  }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  void* get() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  Backend* backend_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

struct BackendOptions {
  int threads = 0;  // CPU: 0 = all cores
  int device_index = 0;
};

// "cpu" or "cuda". Throws std::runtime_error with a one-line message when the
// device is not available (or lmserve was built without CUDA).
std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options);
// "cuda" when lmserve was built with CUDA and a device is present, else "cpu".
std::string default_device();
bool cuda_available();

}  // namespace lmserve::kernels
