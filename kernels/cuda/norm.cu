// add_norm(): the residual add fused with LayerNorm / RMSNorm, one block per row, float32.
// The block size depends only on the row width, so a row's reduction order (and value)
// never depends on how many rows are normalized together.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace lmserve::kernels::cuda {
namespace {

__global__ void add_norm_kernel(NormKind kind, float* __restrict__ x,
                                const float* __restrict__ delta, const float* __restrict__ weight,
                                const float* __restrict__ bias, float eps, int dim,
                                float* __restrict__ out) {
  __shared__ float scratch[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * dim;
  float* xr = x + base;
  float* outr = out + base;
  const bool layer_norm = kind == NormKind::LayerNorm;

  float sum = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (delta) {
      v += delta[base + i];
      xr[i] = v;  // the residual stream is updated in place; only this thread reads it back
    }
    sum += layer_norm ? v : v * v;
  }
  const float total = block_sum(sum, scratch);

  float mean = 0.0f;
  float inv_std;
  if (layer_norm) {
    mean = total / static_cast<float>(dim);
    float sq = 0.0f;  // second pass: the biased variance around the mean, as torch computes it
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
      const float d = xr[i] - mean;
      sq += d * d;
    }
    const float var = block_sum(sq, scratch) / static_cast<float>(dim);
    inv_std = 1.0f / sqrtf(var + eps);
  } else {
    inv_std = 1.0f / sqrtf(total / static_cast<float>(dim) + eps);
  }

  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    const float normed = (xr[i] - mean) * inv_std;
    float v = normed * weight[i];
    if (bias) v += bias[i];
    outr[i] = v;
  }
}

int norm_threads(int dim) { return dim <= 512 ? 128 : dim <= 2048 ? 256 : 512; }

}  // namespace

void add_norm(NormKind kind, float* x, const float* delta, const float* weight, const float* bias,
              float eps, int n, int dim, float* out, cudaStream_t stream) {
  if (n == 0 || dim == 0) return;
  add_norm_kernel<<<n, norm_threads(dim), 0, stream>>>(kind, x, delta, weight,
                                                       kind == NormKind::LayerNorm ? bias : nullptr,
                                                       eps, dim, out);
  check_launch("add_norm_kernel");
}

}  // namespace lmserve::kernels::cuda
