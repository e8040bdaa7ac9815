// Shared by every .cu of the CUDA backend: error checking that turns CUDA/cuBLAS
// failures into std::runtime_error, and the device helpers the kernels have in common
// (widening 16-bit weights, fixed-order warp and block reductions).
//
// Reductions here always combine partial sums in the same order (xor butterfly inside a
// warp, then warps in index order), so a value never depends on how many rows share a
// launch: that is the backend contract's batch invariance.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace lmserve::kernels::cuda {

// Throws std::runtime_error("cuda: <what> failed at <file>:<line>: <error string>").
void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);
void check_launch(const char* kernel_name);

#define LMSERVE_CUDA_CHECK(expr)                                                   \
  do {                                                                             \
    cudaError_t lmserve_err_ = (expr);                                             \
    if (lmserve_err_ != cudaSuccess)                                               \
      ::lmserve::kernels::cuda::throw_cuda_error(lmserve_err_, #expr, __FILE__, __LINE__); \
  } while (0)

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ float widen(__half v) { return __half2float(v); }
__device__ __forceinline__ float widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// Element i of a matrix whose dtype is only known at run time (uniform per launch, so
// the branch costs nothing on the cold paths that use it).
__device__ __forceinline__ float load_as_float(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::F16: return __half2float(static_cast<const __half*>(data)[i]);
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]);
    default: return static_cast<const float*>(data)[i];
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds 32 floats of shared memory and may be reused after return.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < num_warps; ++w) total += scratch[w];  // same order in every thread
  return total;
}

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace lmserve::kernels::cuda
