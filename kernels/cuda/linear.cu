// linear(): lmserve's own batch-invariant GEMV/GEMM for every batch size, and cuBLAS as
// an opt-in for prefill throughput.
//
// The kernel streams each weight row with 128-bit loads and keeps float32 activations and
// accumulators, so it computes in full float32 on 16-bit weights. Each output element is
// reduced in an order fixed by the matrix width alone (thread chunks of 8 elements in
// increasing k, an xor butterfly over the warp, the 8 warps in index order), and
// activation rows are processed in independent groups of 8: a row's value is the same
// bits whatever n is, as backend.h requires. For n <= 8 (decode) there is one group and
// the weights are read exactly once, which is what makes batch-1 decode bandwidth-bound.
// Larger n reads each weight once per group (from L2 mostly: groups of the same weight
// rows are scheduled next to each other).
//
// cuBLAS (LMSERVE_CUDA_GEMM=cublas) is faster for long prompts but picks its kernels by
// shape, so a row's bits then depend on the batch; see docs/cuda.md.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace lmserve::kernels::cuda {
namespace {

constexpr int kGemvThreads = 256;
constexpr int kGemvWarps = kGemvThreads / 32;
constexpr int kGemvRowsPerBlock = 4;  // weight rows per block: x chunks are reused 4 times
constexpr int kChunk = 8;             // weight elements per thread per step (16 bytes at 16 bit)

__device__ __forceinline__ void load_chunk(const __half* p, bool vectorized, float out[kChunk]) {
  if (vectorized) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < kChunk / 2; ++i) {
      const float2 f = __half22float2(h[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kChunk; ++i) out[i] = __half2float(p[i]);
  }
}

__device__ __forceinline__ void load_chunk(const __nv_bfloat16* p, bool vectorized,
                                           float out[kChunk]) {
  if (vectorized) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < kChunk / 2; ++i) {
      const float2 f = __bfloat1622float2(h[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kChunk; ++i) out[i] = __bfloat162float(p[i]);
  }
}

__device__ __forceinline__ void load_chunk(const float* p, bool vectorized, float out[kChunk]) {
  if (vectorized) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < kChunk; ++i) out[i] = p[i];
  }
}

// Block b computes output rows [4r, 4r + 4) for activation rows [8g, 8g + 8), where
// g = b % groups and r = b / groups (groups of the same weight rows run side by side).
// MaxRows is 8, or 1 for batch-1 decode: the same arithmetic with a quarter of the
// registers, so more blocks (more loads in flight) fit on an SM.
template <typename W, int MaxRows>
__global__ void __launch_bounds__(kGemvThreads)
gemv_kernel(const float* __restrict__ x, int total_n, int groups, const W* __restrict__ w,
            int64_t rows, int64_t K, const float* __restrict__ bias, float* __restrict__ y,
            bool vector_w, bool vector_x) {
  __shared__ float partial[kGemvWarps][kGemvRowsPerBlock][MaxRows];
  const int group = static_cast<int>(blockIdx.x % groups);
  const int64_t row0 = static_cast<int64_t>(blockIdx.x / groups) * kGemvRowsPerBlock;
  const int n = min(MaxRows, total_n - group * MaxRows);
  x += static_cast<int64_t>(group) * MaxRows * K;
  y += static_cast<int64_t>(group) * MaxRows * rows;

  float acc[kGemvRowsPerBlock][MaxRows];
#pragma unroll
  for (int r = 0; r < kGemvRowsPerBlock; ++r)
#pragma unroll
    for (int b = 0; b < MaxRows; ++b) acc[r][b] = 0.0f;

  const int64_t num_chunks = K / kChunk;
  for (int64_t c = threadIdx.x; c < num_chunks; c += kGemvThreads) {
    const int64_t k0 = c * kChunk;
    // All weight loads first, so a thread has 4 independent 16-byte loads in flight.
    float wv[kGemvRowsPerBlock][kChunk];
#pragma unroll
    for (int r = 0; r < kGemvRowsPerBlock; ++r) {
      if (row0 + r < rows) {
        load_chunk(w + (row0 + r) * K + k0, vector_w, wv[r]);
      } else {
#pragma unroll
        for (int i = 0; i < kChunk; ++i) wv[r][i] = 0.0f;
      }
    }
#pragma unroll
    for (int b = 0; b < MaxRows; ++b) {
      if (b < n) {
        float xv[kChunk];
        load_chunk(x + b * K + k0, vector_x, xv);
#pragma unroll
        for (int r = 0; r < kGemvRowsPerBlock; ++r)
#pragma unroll
          for (int i = 0; i < kChunk; ++i) acc[r][b] = fmaf(wv[r][i], xv[i], acc[r][b]);
      }
    }
  }
  if (threadIdx.x == 0) {  // the K % 8 tail, always by the same thread
    for (int64_t k = num_chunks * kChunk; k < K; ++k) {
#pragma unroll
      for (int r = 0; r < kGemvRowsPerBlock; ++r) {
        const float wk = row0 + r < rows ? widen(w[(row0 + r) * K + k]) : 0.0f;
#pragma unroll
        for (int b = 0; b < MaxRows; ++b)
          if (b < n) acc[r][b] = fmaf(wk, x[b * K + k], acc[r][b]);
      }
    }
  }

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int r = 0; r < kGemvRowsPerBlock; ++r)
#pragma unroll
    for (int b = 0; b < MaxRows; ++b) {
      if (b < n) {
        const float v = warp_sum(acc[r][b]);
        if (lane == 0) partial[warp][r][b] = v;
      }
    }
  __syncthreads();
  if (threadIdx.x < kGemvRowsPerBlock * MaxRows) {
    const int r = threadIdx.x / MaxRows;
    const int b = threadIdx.x % MaxRows;
    const int64_t row = row0 + r;
    if (b < n && row < rows) {
      float sum = 0.0f;
      for (int i = 0; i < kGemvWarps; ++i) sum += partial[i][r][b];
      if (bias) sum += bias[row];
      y[b * rows + row] = sum;
    }
  }
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t count, int64_t cols) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride)
    y[i] += bias[i % cols];
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuda linear: ") + what + " failed: " +
                             cublas_status_name(s) + " (" + std::to_string(static_cast<int>(s)) +
                             ")");
}

template <typename W>
void launch_gemv(const W* data, const float* x, int n, int groups, const WeightMatrix& w, const float* bias,
                 float* y, bool vector_w, bool vector_x, unsigned grid, cudaStream_t stream) {
  if (n == 1) {
    gemv_kernel<W, 1><<<grid, kGemvThreads, 0, stream>>>(x, n, groups, data, w.rows, w.cols, bias, y,
                                                          vector_w, vector_x);
  } else {
    gemv_kernel<W, kGemvMaxRows><<<grid, kGemvThreads, 0, stream>>>(x, n, groups, data, w.rows, w.cols, bias,
                                                                     y, vector_w, vector_x);
  }
}

}  // namespace

void gemv(const float* x, int n, const WeightMatrix& w, const float* bias, float* y,
          cudaStream_t stream) {
  if (w.rows == 0 || n == 0) return;
  const bool vector_w = w.cols % kChunk == 0 && aligned16(w.data);
  const bool vector_x = w.cols % 4 == 0 && aligned16(x);
  const int groups = static_cast<int>(ceil_div(n, kGemvMaxRows));
  const int64_t blocks = static_cast<int64_t>(ceil_div(w.rows, kGemvRowsPerBlock)) * groups;
  if (blocks > INT32_MAX) throw std::runtime_error("cuda linear: batch too large for one launch");
  const unsigned grid = static_cast<unsigned>(blocks);
  switch (w.dtype) {
    case DType::F16:
      launch_gemv(static_cast<const __half*>(w.data), x, n, groups, w, bias, y, vector_w, vector_x, grid, stream);
      break;
    case DType::BF16:
      launch_gemv(static_cast<const __nv_bfloat16*>(w.data), x, n, groups, w, bias, y, vector_w, vector_x, grid,
                  stream);
      break;
    case DType::F32:
      launch_gemv(static_cast<const float*>(w.data), x, n, groups, w, bias, y, vector_w, vector_x, grid, stream);
      break;
  }
  check_launch("gemv_kernel");
}

void add_bias(float* y, const float* bias, int n, int64_t cols, cudaStream_t stream) {
  const int64_t count = static_cast<int64_t>(n) * cols;
  if (count == 0) return;
  const unsigned blocks = std::min<unsigned>(ceil_div(count, 256), 4096);
  add_bias_kernel<<<blocks, 256, 0, stream>>>(y, bias, count, cols);
  check_launch("add_bias_kernel");
}

void gemm(cublasHandle_t handle, const float* x, int n, const WeightMatrix& w, float* y,
          void* scratch_hi, void* scratch_lo, cudaStream_t stream) {
  const int m = static_cast<int>(w.rows);
  const int k = static_cast<int>(w.cols);
  const float one = 1.0f;
  const float zero = 0.0f;
  // Row-major y[n, m] = x[n, k] · w[m, k]ᵀ is column-major y(m×n) = wᵀ(m×k) · x(k×n),
  // with w read as the column-major k×m matrix it already is.
  if (w.dtype == DType::F32) {
    check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w.data,
                              CUDA_R_32F, k, x, CUDA_R_32F, k, &zero, y, CUDA_R_32F, m,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx(f32)");
    return;
  }
  const cudaDataType type = w.dtype == DType::F16 ? CUDA_R_16F : CUDA_R_16BF;
  split_activations(x, w.dtype, scratch_hi, scratch_lo, static_cast<int64_t>(n) * k, stream);
  check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w.data, type, k,
                            scratch_hi, type, k, &zero, y, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx(16-bit hi)");
  if (scratch_lo) {
    check_cublas(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w.data, type, k,
                              scratch_lo, type, k, &one, y, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx(16-bit lo)");
  }
}

}  // namespace lmserve::kernels::cuda
