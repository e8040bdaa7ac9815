// Dtype conversion kernels: checkpoint matrices into the dtype the backend holds them in
// (with GPT-2's Conv1D transpose folded in), and float32 activations into 16-bit inputs
// for cuBLAS.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace lmserve::kernels::cuda {
namespace {

// Round to nearest even in every direction, as the host conversions in dtype.h do.
__device__ __forceinline__ void store_as(void* data, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::F16: static_cast<__half*>(data)[i] = __float2half_rn(v); break;
    case DType::BF16: static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(data)[i] = v; break;
  }
}

__global__ void convert_kernel(const void* src, DType src_dtype, void* dst, DType dst_dtype,
                               int64_t count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride)
    store_as(dst, dst_dtype, i, load_as_float(src, src_dtype, i));
}

constexpr int kTile = 32;
constexpr int kTileRowsPerPass = 8;

// dst[r, c] = src[c, r]; src is [cols, rows]. A shared-memory tile keeps both the read
// and the write coalesced (the padding column avoids bank conflicts on the transposed read).
__global__ void transpose_convert_kernel(const void* src, DType src_dtype, void* dst,
                                         DType dst_dtype, int64_t rows, int64_t cols) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kTile;
  for (int i = threadIdx.y; i < kTile; i += kTileRowsPerPass) {
    const int64_t src_row = c0 + i;
    const int64_t src_col = r0 + threadIdx.x;
    if (src_row < cols && src_col < rows)
      tile[i][threadIdx.x] = load_as_float(src, src_dtype, src_row * rows + src_col);
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kTileRowsPerPass) {
    const int64_t dst_row = r0 + i;
    const int64_t dst_col = c0 + threadIdx.x;
    if (dst_row < rows && dst_col < cols)
      store_as(dst, dst_dtype, dst_row * cols + dst_col, tile[threadIdx.x][i]);
  }
}

__global__ void split_kernel(const float* x, DType dtype, void* hi, void* lo, int64_t count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    const float v = x[i];
    float rounded;
    if (dtype == DType::BF16) {
      const __nv_bfloat16 h = __float2bfloat16_rn(v);
      static_cast<__nv_bfloat16*>(hi)[i] = h;
      rounded = __bfloat162float(h);
      if (lo) static_cast<__nv_bfloat16*>(lo)[i] = __float2bfloat16_rn(v - rounded);
    } else {
      const __half h = __float2half_rn(v);
      static_cast<__half*>(hi)[i] = h;
      rounded = __half2float(h);
      if (lo) static_cast<__half*>(lo)[i] = __float2half_rn(v - rounded);
    }
  }
}

unsigned grid_for(int64_t count, int threads) {
  // Grid-stride loops: enough blocks to fill the device, never more than needed.
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

}  // namespace

void convert_matrix(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t rows,
                    int64_t cols, bool transpose, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  if (transpose) {
    const dim3 block(kTile, kTileRowsPerPass);
    const dim3 grid(ceil_div(rows, kTile), ceil_div(cols, kTile));
    transpose_convert_kernel<<<grid, block, 0, stream>>>(src, src_dtype, dst, dst_dtype, rows,
                                                         cols);
    check_launch("transpose_convert_kernel");
  } else {
    const int64_t count = rows * cols;
    convert_kernel<<<grid_for(count, 256), 256, 0, stream>>>(src, src_dtype, dst, dst_dtype,
                                                             count);
    check_launch("convert_kernel");
  }
}

void split_activations(const float* x, DType dtype, void* hi, void* lo, int64_t count,
                       cudaStream_t stream) {
  if (count == 0) return;
  split_kernel<<<grid_for(count, 256), 256, 0, stream>>>(x, dtype, hi, lo, count);
  check_launch("split_kernel");
}

}  // namespace lmserve::kernels::cuda
