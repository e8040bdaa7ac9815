// The element-wise and row-copy ops: add, gelu_new, silu_mul, rotary embeddings,
// embedding gather and gather_rows. All float32, with the accurate (not fast-math)
// libdevice functions, so they agree with the CPU backend to a few ulp.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace lmserve::kernels::cuda {
namespace {

constexpr int kThreads = 256;

unsigned elementwise_grid(size_t count) {
  return std::max<unsigned>(1, std::min<unsigned>(ceil_div(static_cast<int64_t>(count), kThreads), 8192));
}

__global__ void add_kernel(float* x, const float* y, size_t count) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    x[i] += y[i];
}

__global__ void gelu_new_kernel(float* x, size_t count) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float v = x[i];
    const float inner = kSqrt2OverPi * (v + 0.044715f * (v * v * v));
    x[i] = 0.5f * v * (1.0f + tanhf(inner));
  }
}

__global__ void silu_mul_kernel(const float* gate, const float* up, float* out, size_t count) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// One block per row: the row's cos/sin table is computed once into shared memory, then
// applied to every head. The angle is the float32 product float(pos)·inv_freq[j] and
// sincosf is the accurate one (the build has no --use_fast_math), so large positions
// rotate exactly as the CPU backend and Hugging Face do.
__global__ void rotary_kernel(float* x, int num_heads, int head_dim, int half,
                              int64_t row_stride, const int32_t* positions,
                              const float* inv_freq) {
  extern __shared__ float table[];  // [half] cos, then [half] sin
  const int64_t row = blockIdx.x;
  const float pos = static_cast<float>(positions[row]);
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    const float angle = __fmul_rn(pos, inv_freq[j]);
    float s, c;
    sincosf(angle, &s, &c);
    table[j] = c;
    table[half + j] = s;
  }
  __syncthreads();
  float* xr = x + row * row_stride;
  const int pairs = num_heads * half;
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int h = p / half;
    const int j = p - h * half;
    float* head = xr + static_cast<int64_t>(h) * head_dim;
    const float a = head[j];
    const float b = head[j + half];
    const float c = table[j];
    const float s = table[half + j];
    // Products rounded separately (no fma contraction), as q·cos + rotate_half(q)·sin is.
    head[j] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    head[j + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

// An id outside the table writes NaN rather than reading out of bounds: loud, not a crash.
__global__ void embedding_kernel(const void* table, DType dtype, int64_t rows, int64_t cols,
                                 const int32_t* ids, float* out, bool accumulate) {
  const int64_t i = blockIdx.x;
  const int64_t id = ids[i];
  const bool valid = id >= 0 && id < rows;
  float* o = out + i * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = valid ? load_as_float(table, dtype, id * cols + c) : __int_as_float(0x7fc00000);
    o[c] = accumulate ? o[c] + v : v;
  }
}

__global__ void gather_rows_kernel(const float* x, int dim, const int32_t* rows, float* out) {
  const int64_t i = blockIdx.x;
  const float* src = x + static_cast<int64_t>(rows[i]) * dim;
  float* dst = out + i * dim;
  for (int c = threadIdx.x; c < dim; c += blockDim.x) dst[c] = src[c];
}

}  // namespace

void add(float* x, const float* y, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  add_kernel<<<elementwise_grid(count), kThreads, 0, stream>>>(x, y, count);
  check_launch("add_kernel");
}

void gelu_new(float* x, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  gelu_new_kernel<<<elementwise_grid(count), kThreads, 0, stream>>>(x, count);
  check_launch("gelu_new_kernel");
}

void silu_mul(const float* gate, const float* up, float* out, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  silu_mul_kernel<<<elementwise_grid(count), kThreads, 0, stream>>>(gate, up, out, count);
  check_launch("silu_mul_kernel");
}

void rotary(float* x, int n, int num_heads, int head_dim, int rotary_dim, int64_t row_stride,
            const int32_t* positions, const float* inv_freq, cudaStream_t stream) {
  const int half = rotary_dim / 2;
  if (n == 0 || num_heads == 0 || half == 0) return;
  const size_t smem = 2 * static_cast<size_t>(half) * sizeof(float);
  rotary_kernel<<<n, 128, smem, stream>>>(x, num_heads, head_dim, half, row_stride, positions,
                                          inv_freq);
  check_launch("rotary_kernel");
}

void embedding(const WeightMatrix& table, const int32_t* ids, int n, float* out, bool accumulate,
               cudaStream_t stream) {
  if (n == 0 || table.cols == 0) return;
  embedding_kernel<<<n, kThreads, 0, stream>>>(table.data, table.dtype, table.rows, table.cols,
                                               ids, out, accumulate);
  check_launch("embedding_kernel");
}

void gather_rows(const float* x, int dim, const int32_t* rows, int n, float* out,
                 cudaStream_t stream) {
  if (n == 0 || dim == 0) return;
  gather_rows_kernel<<<n, kThreads, 0, stream>>>(x, dim, rows, out);
  check_launch("gather_rows_kernel");
}

}  // namespace lmserve::kernels::cuda
