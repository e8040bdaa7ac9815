// Host-side launchers of the CUDA backend's kernels, one group per .cu file. Each
// enqueues work on `stream` and checks the launch; none synchronizes. Pointers are
// device memory unless a parameter says otherwise. CudaBackend (cuda_backend.cu)
// validates arguments before calling these.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"

namespace lmserve::kernels::cuda {

// ---- convert.cu ----
// dst[r, c] = convert(src[r, c]) (or src[c, r] with transpose, src then [cols, rows]).
void convert_matrix(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t rows,
                    int64_t cols, bool transpose, cudaStream_t stream);
// Splits float32 activations into hi = round(x) and lo = round(x - hi) in `dtype`
// (F16 or BF16), so that W·hi + W·lo carries ~2× the mantissa bits of W·hi alone.
// lo may be null (single rounding).
void split_activations(const float* x, DType dtype, void* hi, void* lo, int64_t count,
                       cudaStream_t stream);

// ---- linear.cu ----
// y[n, rows] = x[n, cols] · wᵀ (+ bias), float32 arithmetic, batch invariant. Activation
// rows go in groups of kGemvMaxRows; each group streams the weights once.
constexpr int kGemvMaxRows = 8;
void gemv(const float* x, int n, const WeightMatrix& w, const float* bias, float* y,
          cudaStream_t stream);
// y[n, cols] += bias[cols] for every row.
void add_bias(float* y, const float* bias, int n, int64_t cols, cudaStream_t stream);
// y[n, rows] = x · wᵀ through cuBLAS with float32 accumulation. 16-bit weights need their
// activations in the same dtype: x is split into hi/lo halves (see split_activations) in
// `scratch_hi` / `scratch_lo` (n·cols elements each; scratch_lo null = hi only).
void gemm(cublasHandle_t handle, const float* x, int n, const WeightMatrix& w, float* y,
          void* scratch_hi, void* scratch_lo, cudaStream_t stream);

// ---- norm.cu ----
void add_norm(NormKind kind, float* x, const float* delta, const float* weight, const float* bias,
              float eps, int n, int dim, float* out, cudaStream_t stream);

// ---- elementwise.cu ----
void add(float* x, const float* y, size_t count, cudaStream_t stream);
void gelu_new(float* x, size_t count, cudaStream_t stream);
void silu_mul(const float* gate, const float* up, float* out, size_t count, cudaStream_t stream);
void rotary(float* x, int n, int num_heads, int head_dim, int rotary_dim, int64_t row_stride,
            const int32_t* positions, const float* inv_freq, cudaStream_t stream);
void embedding(const WeightMatrix& table, const int32_t* ids, int n, float* out, bool accumulate,
               cudaStream_t stream);
void gather_rows(const float* x, int dim, const int32_t* rows, int n, float* out,
                 cudaStream_t stream);

// ---- attention.cu ----
// The paged KV cache: one float32 allocation, laid out
//   [layer][key|value][block][kv_head][position in block][head_dim]
// so that one (block, head) is a contiguous block_size·head_dim run for attention.
struct KvCacheView {
  float* data = nullptr;
  KvCacheShape shape;
  size_t layer_stride() const { return 2 * value_stride(); }
  size_t value_stride() const {
    return static_cast<size_t>(shape.num_blocks) * shape.block_size * shape.num_kv_heads *
           shape.head_dim;
  }
};

void kv_write(const KvCacheView& cache, int layer, const float* k, int64_t k_stride,
              const float* v, int64_t v_stride, const AttentionBatch& batch, cudaStream_t stream);
// pairs: device [num_pairs][2] (src, dst), already validated.
void copy_kv_blocks(const KvCacheView& cache, const int32_t* pairs, int num_pairs,
                    cudaStream_t stream);

// Context positions one attention block handles; a token whose context is longer is split
// into ceil(context / kAttentionSplit) partial softmaxes combined by a second pass.
constexpr int kAttentionSplit = 256;
constexpr int kMaxHeadDim = 256;
// Floats of workspace attention() needs for this batch.
size_t attention_workspace_floats(const AttentionBatch& batch, int num_heads, int head_dim);
void attention(const KvCacheView& cache, int layer, const float* q, int64_t q_stride,
               int num_heads, float scale, const AttentionBatch& batch, float* out,
               float* workspace, cudaStream_t stream);

}  // namespace lmserve::kernels::cuda
