// CudaBackend: the Backend interface on one NVIDIA GPU. Owns the stream every op is
// enqueued on, the cuBLAS handle, the paged KV cache and the grow-only scratch buffers;
// validates arguments on the host and hands the work to the launchers in cuda_ops.h.
//
// Memory comes from the device's stream-ordered pool (cudaMallocAsync) with no release
// threshold, so the per-step allocations of a serving loop are recycled, not re-mapped.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/step_graphs.h"

namespace lmserve::kernels {
namespace cuda {

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw std::runtime_error(std::string("cuda: ") + what + " failed at " + (base ? base + 1 : file) +
                           ":" + std::to_string(line) + ": " + cudaGetErrorString(err));
}

void check_launch(const char* kernel_name) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("cuda: launch of ") + kernel_name +
                             " failed: " + cudaGetErrorString(err));
}

namespace {

// The backend's device is made current in whichever thread calls it (the engine may
// drive the backend from a thread other than the one that created it).
thread_local int current_device = -1;

void check_cublas_status(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuda: ") + what + " failed with cuBLAS status " +
                             std::to_string(static_cast<int>(s)));
}

// Which kernel runs linear() for n > 8 (LMSERVE_CUDA_GEMM): lmserve's own batch-invariant
// kernel (default), cuBLAS on hi/lo activation halves ("cublas": ~float32 accuracy, not
// batch invariant), or cuBLAS on activations rounded once ("cublas-fast": 16-bit
// activation accuracy). See docs/cuda.md for the trade-off.
enum class GemmMode { Own, Cublas, CublasFast };

GemmMode gemm_mode_from_env() {
  const char* mode = std::getenv("LMSERVE_CUDA_GEMM");
  if (!mode || !*mode || std::strcmp(mode, "own") == 0) return GemmMode::Own;
  if (std::strcmp(mode, "cublas") == 0) return GemmMode::Cublas;
  if (std::strcmp(mode, "cublas-fast") == 0) return GemmMode::CublasFast;
  throw std::runtime_error(std::string("cuda: LMSERVE_CUDA_GEMM='") + mode +
                           "' is not one of own, cublas, cublas-fast");
}

// LMSERVE_CUDA_GRAPHS=1 replays repeated decode steps as CUDA graphs (step_graphs.h).
bool graphs_from_env() {
  const char* v = std::getenv("LMSERVE_CUDA_GRAPHS");
  return v && std::strcmp(v, "1") == 0;
}

// Tags that keep two ops with equal arguments apart in a StepGraphs key.
enum class Op : uint8_t { Embedding, Linear, AddNorm, Add, Rotary, GeluNew, SiluMul, KvWrite, Attention,
                          CopyKvBlocks, GatherRows };

constexpr size_t kCublasWorkspaceBytes = 32u << 20;  // what cuBLAS recommends for Hopper

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& options)
      : device_(options.device_index), gemm_mode_(gemm_mode_from_env()), graphs_(graphs_from_env()) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
      throw std::runtime_error("cuda: no CUDA device is present");
    if (device_ < 0 || device_ >= count)
      throw std::runtime_error("cuda: device_index " + std::to_string(device_) + " is out of range (" +
                               std::to_string(count) + " devices)");
    bind();
    cudaDeviceProp prop{};
    LMSERVE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = "cuda:" + std::to_string(device_) + " " + prop.name;
    LMSERVE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    cudaMemPool_t pool;
    LMSERVE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
    uint64_t threshold = UINT64_MAX;
    LMSERVE_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    check_cublas_status(cublasCreate(&cublas_), "cublasCreate");
    check_cublas_status(cublasSetStream(cublas_, stream_), "cublasSetStream");
    cublas_workspace_ = allocate(kCublasWorkspaceBytes);
    check_cublas_status(cublasSetWorkspace(cublas_, cublas_workspace_, kCublasWorkspaceBytes),
                        "cublasSetWorkspace");
  }

  ~CudaBackend() override {
    // Errors are ignored here: a destructor cannot report them, and the context may
    // already be unusable after an earlier (reported) failure.
    bind_noexcept();
    try {
      graphs_.flush(stream_);
    } catch (...) {
      graphs_.discard();
    }
    if (cublas_) cublasDestroy(cublas_);
    for (void* p : {cublas_workspace_, kv_.data ? static_cast<void*>(kv_.data) : nullptr,
                    gemm_hi_.ptr, gemm_lo_.ptr, attn_workspace_.ptr, pairs_.ptr})
      if (p) cudaFreeAsync(p, stream_);
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, device_) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
  }

  std::string name() const override { return name_; }
  bool is_cuda() const override { return true; }
  MemoryInfo memory_info() const override {
    MemoryInfo info;
    LMSERVE_CUDA_CHECK(cudaSetDevice(device_));
    LMSERVE_CUDA_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
    return info;
  }

  // ---- memory ----
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    settle();
    void* p = nullptr;
    const cudaError_t err = cudaMallocAsync(&p, bytes, stream_);
    if (err != cudaSuccess)
      throw std::runtime_error("cuda: allocating " + std::to_string(bytes) + " bytes of device memory failed: " +
                               cudaGetErrorString(err));
    return p;
  }
  void release(void* ptr) override {
    if (!ptr) return;
    settle();
    LMSERVE_CUDA_CHECK(cudaFreeAsync(ptr, stream_));
  }
  // From pageable host memory cudaMemcpyAsync returns once the source has been staged, so
  // the caller may reuse host_src immediately, as the interface promises.
  void upload(void* dst, const void* host_src, size_t bytes) override {
    if (bytes == 0) return;
    settle();
    LMSERVE_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  void download(void* host_dst, const void* src, size_t bytes) override {
    settle();
    if (bytes) LMSERVE_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    LMSERVE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    settle();
    LMSERVE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  void synchronize() override {
    settle();
    LMSERVE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  WeightMatrix load_matrix(const HostTensor& t, DType dtype, bool transpose) override;
  void release_weight(const WeightMatrix& w) override { release(const_cast<void*>(w.data)); }
  float* load_vector(const HostTensor& t) override;

  // ---- ops ----
  void embedding(const WeightMatrix& table, const int32_t* ids, int n, float* out,
                 bool accumulate) override {
    launch([=, s = stream_] { cuda::embedding(table, ids, n, out, accumulate, s); }, Op::Embedding,
           table.data, table.dtype, table.rows, table.cols, ids, n, out, accumulate);
  }
  void linear(const float* x, int n, const WeightMatrix& w, const float* bias, float* y) override;
  void add_norm(NormKind kind, float* x, const float* delta, const float* weight, const float* bias,
                float eps, int n, int dim, float* out) override {
    launch([=, s = stream_] { cuda::add_norm(kind, x, delta, weight, bias, eps, n, dim, out, s); },
           Op::AddNorm, kind, x, delta, weight, bias, eps, n, dim, out);
  }
  void add(float* x, const float* y, size_t count) override {
    launch([=, s = stream_] { cuda::add(x, y, count, s); }, Op::Add, x, y, count);
  }
  void rotary(float* x, int n, int num_heads, int head_dim, int rotary_dim, int64_t row_stride,
              const int32_t* positions, const float* inv_freq) override {
    if (rotary_dim < 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim)
      throw std::runtime_error("cuda rotary: rotary_dim " + std::to_string(rotary_dim) +
                               " must be even and at most head_dim " + std::to_string(head_dim));
    launch([=, s = stream_] {
      cuda::rotary(x, n, num_heads, head_dim, rotary_dim, row_stride, positions, inv_freq, s);
    }, Op::Rotary, x, n, num_heads, head_dim, rotary_dim, row_stride, positions, inv_freq);
  }
  void gelu_new(float* x, size_t count) override {
    launch([=, s = stream_] { cuda::gelu_new(x, count, s); }, Op::GeluNew, x, count);
  }
  void silu_mul(const float* gate, const float* up, float* out, size_t count) override {
    launch([=, s = stream_] { cuda::silu_mul(gate, up, out, count, s); }, Op::SiluMul, gate, up, out, count);
  }

  // ---- paged KV cache ----
  void allocate_kv_cache(const KvCacheShape& shape) override;
  void release_kv_cache() override {
    if (kv_.data) release(kv_.data);
    kv_ = {};
  }
  void kv_write(int layer, const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                const AttentionBatch& batch) override {
    check_layer(layer, "kv_write");
    launch([=, kv = kv_, s = stream_] { cuda::kv_write(kv, layer, k, k_stride, v, v_stride, batch, s); },
           Op::KvWrite, kv_.data, kv_.shape.num_blocks, kv_.shape.block_size, kv_.shape.num_kv_heads,
           kv_.shape.head_dim, layer, k, k_stride, v, v_stride, batch.num_tokens, batch.slot_mapping);
  }
  void attention(int layer, const float* q, int64_t q_stride, int num_heads, float scale,
                 const AttentionBatch& batch, float* out) override;
  void copy_kv_blocks(std::span<const std::pair<int32_t, int32_t>> pairs) override;

  void gather_rows(const float* x, int dim, const int32_t* rows, int n, float* out) override {
    launch([=, s = stream_] { cuda::gather_rows(x, dim, rows, n, out, s); }, Op::GatherRows, x, dim, rows, n, out);
  }

 private:
  // A device buffer that only grows; the old one is freed in stream order.
  struct Scratch {
    void* ptr = nullptr;
    size_t bytes = 0;
  };
  void* reserve(Scratch& s, size_t bytes) {
    if (bytes > s.bytes) {
      release(s.ptr);
      s.ptr = nullptr;
      s.bytes = 0;
      s.ptr = allocate(bytes);
      s.bytes = bytes;
    }
    return s.ptr;
  }

  // Issues a kernel launch now, or (graphs on) queues it under a key made of every value
  // that shapes it; `fn` captures its arguments by value.
  template <typename F, typename... K>
  void launch(F&& fn, Op op, const K&... key_values) {
    bind();
    if (!graphs_.enabled()) {
      fn();
      return;
    }
    graphs_.key(op, key_values...);
    graphs_.queue(std::forward<F>(fn));
  }
  // Everything that is not a kernel launch runs after the queued launches.
  void settle() {
    bind();
    graphs_.flush(stream_);
  }

  void bind() {
    if (current_device != device_) {
      LMSERVE_CUDA_CHECK(cudaSetDevice(device_));
      current_device = device_;
    }
  }
  void bind_noexcept() {
    if (current_device != device_ && cudaSetDevice(device_) == cudaSuccess) current_device = device_;
  }
  void check_layer(int layer, const char* op) const {
    if (!kv_.data) throw std::runtime_error(std::string("cuda ") + op + ": the KV cache is not allocated");
    if (layer < 0 || layer >= kv_.shape.num_layers)
      throw std::runtime_error(std::string("cuda ") + op + ": layer " + std::to_string(layer) +
                               " is out of range (" + std::to_string(kv_.shape.num_layers) + " layers)");
  }

  int device_;
  GemmMode gemm_mode_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_workspace_ = nullptr;
  cuda::KvCacheView kv_;
  cuda::StepGraphs graphs_;
  Scratch gemm_hi_, gemm_lo_, attn_workspace_, pairs_;
};

WeightMatrix CudaBackend::load_matrix(const HostTensor& t, DType dtype, bool transpose) {
  if (t.shape.size() != 2)
    throw std::runtime_error("cuda load_matrix: " + t.name + " has " + std::to_string(t.shape.size()) +
                             " dimensions, expected 2");
  if (!t.data) throw std::runtime_error("cuda load_matrix: " + t.name + " has no data");
  const int64_t stored_rows = t.shape[0];
  const int64_t stored_cols = t.shape[1];
  if (stored_rows <= 0 || stored_cols <= 0 || stored_rows > INT_MAX || stored_cols > INT_MAX)
    throw std::runtime_error("cuda load_matrix: " + t.name + " has unsupported shape [" +
                             std::to_string(stored_rows) + ", " + std::to_string(stored_cols) + "]");
  WeightMatrix w;
  w.dtype = dtype;
  w.rows = transpose ? stored_cols : stored_rows;
  w.cols = transpose ? stored_rows : stored_cols;
  if (transpose && (w.cols + 31) / 32 > 65535)
    throw std::runtime_error("cuda load_matrix: " + t.name + " is too wide to transpose");
  const size_t count = static_cast<size_t>(w.rows) * w.cols;
  void* dst = allocate(count * dtype_size(dtype));
  try {
    if (t.dtype == dtype && !transpose) {
      upload(dst, t.data, count * dtype_size(dtype));
    } else {
      // Convert on the device: the raw checkpoint bytes go up once, then one kernel
      // rounds (round-to-nearest-even, as dtype.h does) and transposes.
      void* raw = allocate(count * dtype_size(t.dtype));
      upload(raw, t.data, count * dtype_size(t.dtype));
      cuda::convert_matrix(raw, t.dtype, dst, dtype, w.rows, w.cols, transpose, stream_);
      release(raw);
    }
  } catch (...) {
    release(dst);
    throw;
  }
  w.data = dst;
  return w;
}

float* CudaBackend::load_vector(const HostTensor& t) {
  if (!t.data && t.numel() > 0) throw std::runtime_error("cuda load_vector: " + t.name + " has no data");
  const int64_t count = t.numel();
  if (count <= 0) throw std::runtime_error("cuda load_vector: " + t.name + " is empty");
  std::vector<float> host(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    switch (t.dtype) {
      case DType::F32: host[i] = static_cast<const float*>(t.data)[i]; break;
      case DType::F16: host[i] = f16_to_f32(static_cast<const uint16_t*>(t.data)[i]); break;
      case DType::BF16: host[i] = bf16_to_f32(static_cast<const uint16_t*>(t.data)[i]); break;
    }
  }
  auto* dst = static_cast<float*>(allocate(host.size() * sizeof(float)));
  upload(dst, host.data(), host.size() * sizeof(float));
  return dst;
}

void CudaBackend::linear(const float* x, int n, const WeightMatrix& w, const float* bias, float* y) {
  if (n < 0) throw std::runtime_error("cuda linear: negative row count " + std::to_string(n));
  if (n == 0 || w.rows == 0) return;
  if (!w.data) throw std::runtime_error("cuda linear: weight matrix has no data");
  if (n <= cuda::kGemvMaxRows || gemm_mode_ == GemmMode::Own) {
    launch([=, s = stream_] { cuda::gemv(x, n, w, bias, y, s); }, Op::Linear, x, n, w.data, w.dtype, w.rows,
           w.cols, bias, y);
    return;
  }
  void* hi = nullptr;
  void* lo = nullptr;
  if (w.dtype != DType::F32) {
    const size_t bytes = static_cast<size_t>(n) * w.cols * 2;
    hi = reserve(gemm_hi_, bytes);
    if (gemm_mode_ == GemmMode::Cublas) lo = reserve(gemm_lo_, bytes);
  }
  launch([=, handle = cublas_, s = stream_] {
    cuda::gemm(handle, x, n, w, y, hi, lo, s);
    if (bias) cuda::add_bias(y, bias, n, w.rows, s);
  }, Op::Linear, x, n, w.data, w.dtype, w.rows, w.cols, bias, y, hi, lo);
}

void CudaBackend::allocate_kv_cache(const KvCacheShape& shape) {
  if (shape.num_layers <= 0 || shape.num_blocks <= 0 || shape.block_size <= 0 ||
      shape.num_kv_heads <= 0 || shape.head_dim <= 0)
    throw std::runtime_error("cuda allocate_kv_cache: every dimension of the KV cache shape must be positive");
  if (shape.head_dim > cuda::kMaxHeadDim)
    throw std::runtime_error("cuda allocate_kv_cache: head_dim " + std::to_string(shape.head_dim) +
                             " exceeds the supported " + std::to_string(cuda::kMaxHeadDim));
  release_kv_cache();
  cuda::KvCacheView view;
  view.shape = shape;
  const size_t bytes = view.layer_stride() * shape.num_layers * sizeof(float);
  view.data = static_cast<float*>(allocate(bytes));
  kv_ = view;
}

void CudaBackend::attention(int layer, const float* q, int64_t q_stride, int num_heads, float scale,
                            const AttentionBatch& batch, float* out) {
  check_layer(layer, "attention");
  if (num_heads <= 0 || num_heads % kv_.shape.num_kv_heads != 0)
    throw std::runtime_error("cuda attention: num_heads " + std::to_string(num_heads) +
                             " is not a multiple of num_kv_heads " + std::to_string(kv_.shape.num_kv_heads));
  if (batch.num_tokens < 0 || (batch.num_seqs <= 0 && batch.num_tokens > 0))
    throw std::runtime_error("cuda attention: batch has tokens but no sequences");
  if (batch.num_tokens == 0) return;
  if (batch.num_tokens > INT_MAX / 2 || num_heads > 65535)
    throw std::runtime_error("cuda attention: batch too large for one launch");
  const size_t floats = cuda::attention_workspace_floats(batch, num_heads, kv_.shape.head_dim);
  float* workspace = floats ? static_cast<float*>(reserve(attn_workspace_, floats * sizeof(float))) : nullptr;
  // The launch depends on max_context_len only through the split count, so a decode
  // step's key stays the same for 256 positions.
  AttentionBatch launched = batch;
  const int splits = std::max(1, (batch.max_context_len + cuda::kAttentionSplit - 1) / cuda::kAttentionSplit);
  launched.max_context_len = splits * cuda::kAttentionSplit;
  launched.max_query_len = 0;
  launch([=, kv = kv_, s = stream_] {
    cuda::attention(kv, layer, q, q_stride, num_heads, scale, launched, out, workspace, s);
  }, Op::Attention, kv_.data, kv_.shape.num_blocks, kv_.shape.block_size, kv_.shape.num_kv_heads,
     kv_.shape.head_dim, layer, q, q_stride, num_heads, scale, batch.num_tokens, batch.num_seqs,
     batch.max_blocks_per_seq, splits, batch.positions, batch.query_start, batch.block_tables, out, workspace);
}

void CudaBackend::copy_kv_blocks(std::span<const std::pair<int32_t, int32_t>> pairs) {
  if (pairs.empty()) return;
  if (!kv_.data) throw std::runtime_error("cuda copy_kv_blocks: the KV cache is not allocated");
  std::vector<int32_t> flat;
  flat.reserve(pairs.size() * 2);
  for (const auto& [src, dst] : pairs) {
    if (src < 0 || src >= kv_.shape.num_blocks || dst < 0 || dst >= kv_.shape.num_blocks)
      throw std::runtime_error("cuda copy_kv_blocks: block pair (" + std::to_string(src) + ", " +
                               std::to_string(dst) + ") is outside the " +
                               std::to_string(kv_.shape.num_blocks) + " blocks");
    flat.push_back(src);
    flat.push_back(dst);
  }
  auto* device_pairs = static_cast<int32_t*>(reserve(pairs_, flat.size() * sizeof(int32_t)));
  upload(device_pairs, flat.data(), flat.size() * sizeof(int32_t));
  const int num_pairs = static_cast<int>(pairs.size());
  launch([=, kv = kv_, s = stream_] { cuda::copy_kv_blocks(kv, device_pairs, num_pairs, s); }, Op::CopyKvBlocks,
         kv_.data, kv_.shape.num_layers, kv_.shape.num_blocks, kv_.shape.block_size, kv_.shape.num_kv_heads,
         kv_.shape.head_dim, device_pairs, num_pairs);
}

}  // namespace
}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  return std::make_unique<cuda::CudaBackend>(options);
}

bool cuda_device_present() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error so later calls start clean
    return false;
  }
  return count > 0;
}

}  // namespace lmserve::kernels
