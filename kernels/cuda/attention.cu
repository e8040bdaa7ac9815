// Paged attention over the float32 KV cache, kv_write and copy_kv_blocks.
//
// attention(): one block of 8 warps per (token, query head, context split). A token's
// context 0..positions[t] is cut into splits of kAttentionSplit positions (flash-decoding);
// inside a split each warp runs an online softmax over groups of 4 keys (4 independent
// key loads in flight), the warps are merged in index order, and tokens with more than
// one split are merged by a second pass. The split count depends only on the token's own
// context length, so its output never depends on what else is in the batch, and decode
// and prefill tokens take the same path. Prefill therefore reads each key once per query
// (no tensor-core tiling yet); see docs/cuda.md.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace lmserve::kernels::cuda {
namespace {

constexpr int kAttnWarps = 8;
constexpr int kAttnThreads = kAttnWarps * 32;
constexpr int kKeysPerStep = 4;
constexpr int kDimsPerLane = kMaxHeadDim / 32;

struct AttnArgs {
  const float* k_cache;  // this layer's keys
  const float* v_cache;  // this layer's values
  int num_blocks;
  int block_size;
  int num_kv_heads;
  int head_dim;
  const float* q;
  int64_t q_stride;
  int num_heads;
  float scale;
  int num_seqs;
  int max_blocks_per_seq;
  const int32_t* positions;
  const int32_t* query_start;
  const int32_t* block_tables;
  float* out;
  float* part_acc;  // [tokens][heads][splits][head_dim]
  float* part_ml;   // [tokens][heads][splits][2]: running max, sum of exponentials
};

__device__ __forceinline__ int sequence_of(int t, const int32_t* query_start, int num_seqs) {
  int lo = 0;
  int hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

__global__ void __launch_bounds__(kAttnThreads) attention_kernel(AttnArgs a) {
  __shared__ float warp_m[kAttnWarps];
  __shared__ float warp_l[kAttnWarps];
  __shared__ float warp_acc[kAttnWarps][kMaxHeadDim];

  const int t = blockIdx.x;
  const int h = blockIdx.y;
  const int split = blockIdx.z;
  const int max_splits = gridDim.z;
  const int D = a.head_dim;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  float* out = a.out + (static_cast<int64_t>(t) * a.num_heads + h) * D;

  const int ctx = a.positions[t] + 1;
  const int num_splits = ctx > 0 ? (ctx + kAttentionSplit - 1) / kAttentionSplit : 0;
  if (num_splits == 0 || num_splits > max_splits) {
    // Bad metadata (negative position, or max_context_len below a token's context):
    // NaN output instead of a silently truncated softmax.
    if (split == 0)
      for (int d = threadIdx.x; d < D; d += blockDim.x) out[d] = quiet_nan();
    return;
  }
  if (split >= num_splits) return;

  const int s = sequence_of(t, a.query_start, a.num_seqs);
  const int kvh = h / (a.num_heads / a.num_kv_heads);
  const int32_t* table = a.block_tables + static_cast<int64_t>(s) * a.max_blocks_per_seq;
  const int begin = split * kAttentionSplit;
  const int end = min(ctx, begin + kAttentionSplit);
  const int64_t head_block_floats = static_cast<int64_t>(a.block_size) * D;

  float q[kDimsPerLane];
  const float* qp = a.q + static_cast<int64_t>(t) * a.q_stride + static_cast<int64_t>(h) * D;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    q[i] = d < D ? qp[d] : 0.0f;
  }

  float m = -INFINITY;
  float l = 0.0f;
  bool bad = false;
  float acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.0f;

  for (int first = begin + warp * kKeysPerStep; first < end; first += kAttnWarps * kKeysPerStep) {
    const float* kp[kKeysPerStep];
    const float* vp[kKeysPerStep];
#pragma unroll
    for (int u = 0; u < kKeysPerStep; ++u) {
      kp[u] = nullptr;
      vp[u] = nullptr;
      const int p = first + u;
      if (p < end) {
        const int logical = p / a.block_size;
        const int block = logical < a.max_blocks_per_seq ? table[logical] : -1;
        if (block < 0 || block >= a.num_blocks) {
          bad = true;  // never read outside the cache
        } else {
          const int64_t offset = (static_cast<int64_t>(block) * a.num_kv_heads + kvh) * head_block_floats +
                                 static_cast<int64_t>(p % a.block_size) * D;
          kp[u] = a.k_cache + offset;
          vp[u] = a.v_cache + offset;
        }
      }
    }
    float score[kKeysPerStep];
#pragma unroll
    for (int u = 0; u < kKeysPerStep; ++u) {
      float dot = 0.0f;
      if (kp[u]) {
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
          const int d = lane + 32 * i;
          if (d < D) dot = fmaf(q[i], kp[u][d], dot);
        }
      }
      score[u] = dot;
    }
#pragma unroll
    for (int u = 0; u < kKeysPerStep; ++u) {
      // kp[u] is the same in every lane, so the whole warp takes the same branch.
      score[u] = kp[u] ? warp_sum(score[u]) * a.scale : -INFINITY;
    }
    float m_new = m;
#pragma unroll
    for (int u = 0; u < kKeysPerStep; ++u) m_new = fmaxf(m_new, score[u]);
    if (m_new == -INFINITY) continue;  // nothing valid in this group yet
    const float correction = expf(m - m_new);
    float p[kKeysPerStep];
    float p_sum = 0.0f;
#pragma unroll
    for (int u = 0; u < kKeysPerStep; ++u) {
      p[u] = kp[u] ? expf(score[u] - m_new) : 0.0f;
      p_sum += p[u];
    }
    l = l * correction + p_sum;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      float v = acc[i] * correction;
#pragma unroll
      for (int u = 0; u < kKeysPerStep; ++u)
        if (vp[u] && d < D) v = fmaf(p[u], vp[u][d], v);
      acc[i] = v;
    }
    m = m_new;
  }

  if (lane == 0) {
    warp_m[warp] = m;
    warp_l[warp] = bad ? quiet_nan() : l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < D) warp_acc[warp][d] = acc[i];
  }
  __syncthreads();

  float block_m = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) block_m = fmaxf(block_m, warp_m[w]);
  float block_l = 0.0f;
  for (int w = 0; w < kAttnWarps; ++w)
    if (warp_m[w] != -INFINITY || warp_l[w] != warp_l[w]) block_l += warp_l[w] * expf(warp_m[w] - block_m);

  const int64_t part = (static_cast<int64_t>(t) * a.num_heads + h) * max_splits + split;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float v = 0.0f;
    for (int w = 0; w < kAttnWarps; ++w)
      if (warp_m[w] != -INFINITY) v += warp_acc[w][d] * expf(warp_m[w] - block_m);
    if (num_splits == 1) {
      out[d] = v / block_l;
    } else {
      a.part_acc[part * D + d] = v;
    }
  }
  if (num_splits > 1 && threadIdx.x == 0) {
    a.part_ml[part * 2] = block_m;
    a.part_ml[part * 2 + 1] = block_l;
  }
}

// Merges the splits of tokens whose context needed more than one, in split order.
__global__ void attention_combine_kernel(AttnArgs a, int max_splits) {
  const int t = blockIdx.x;
  const int h = blockIdx.y;
  const int D = a.head_dim;
  const int ctx = a.positions[t] + 1;
  const int num_splits = ctx > 0 ? (ctx + kAttentionSplit - 1) / kAttentionSplit : 0;
  if (num_splits <= 1 || num_splits > max_splits) return;
  const int64_t first = (static_cast<int64_t>(t) * a.num_heads + h) * max_splits;
  float m = -INFINITY;
  for (int i = 0; i < num_splits; ++i) m = fmaxf(m, a.part_ml[(first + i) * 2]);
  float l = 0.0f;
  for (int i = 0; i < num_splits; ++i)
    l += a.part_ml[(first + i) * 2 + 1] * expf(a.part_ml[(first + i) * 2] - m);
  float* out = a.out + (static_cast<int64_t>(t) * a.num_heads + h) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float v = 0.0f;
    for (int i = 0; i < num_splits; ++i)
      v += a.part_acc[(first + i) * D + d] * expf(a.part_ml[(first + i) * 2] - m);
    out[d] = v / l;
  }
}

__global__ void kv_write_kernel(float* k_cache, float* v_cache, int num_blocks, int block_size,
                                int num_kv_heads, int head_dim, const float* k, int64_t k_stride,
                                const float* v, int64_t v_stride, const int32_t* slot_mapping) {
  const int t = blockIdx.x;
  const int64_t slot = slot_mapping[t];
  if (slot < 0 || slot >= static_cast<int64_t>(num_blocks) * block_size) return;  // padding / bad slot
  const int64_t block = slot / block_size;
  const int64_t offset_in_block = slot % block_size;
  const int kv_dim = num_kv_heads * head_dim;
  for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    const int h = i / head_dim;
    const int d = i - h * head_dim;
    const int64_t dst = ((block * num_kv_heads + h) * block_size + offset_in_block) * head_dim + d;
    k_cache[dst] = k[t * k_stride + i];
    v_cache[dst] = v[t * v_stride + i];
  }
}

// blockIdx.x: the pair; blockIdx.y: the (layer, key|value) plane.
__global__ void copy_kv_blocks_kernel(float* cache, size_t plane_stride, int64_t block_floats,
                                      const int32_t* pairs) {
  float* plane = cache + blockIdx.y * plane_stride;
  const float* src = plane + pairs[2 * blockIdx.x] * block_floats;
  float* dst = plane + pairs[2 * blockIdx.x + 1] * block_floats;
  for (int64_t i = threadIdx.x; i < block_floats; i += blockDim.x) dst[i] = src[i];
}

int attention_splits(const AttentionBatch& batch) {
  return std::max(1, (batch.max_context_len + kAttentionSplit - 1) / kAttentionSplit);
}

}  // namespace

size_t attention_workspace_floats(const AttentionBatch& batch, int num_heads, int head_dim) {
  const int splits = attention_splits(batch);
  if (splits == 1) return 0;
  return static_cast<size_t>(batch.num_tokens) * num_heads * splits * (head_dim + 2);
}

void attention(const KvCacheView& cache, int layer, const float* q, int64_t q_stride,
               int num_heads, float scale, const AttentionBatch& batch, float* out,
               float* workspace, cudaStream_t stream) {
  if (batch.num_tokens == 0) return;
  const KvCacheShape& shape = cache.shape;
  const int splits = attention_splits(batch);
  AttnArgs a;
  a.k_cache = cache.data + layer * cache.layer_stride();
  a.v_cache = a.k_cache + cache.value_stride();
  a.num_blocks = shape.num_blocks;
  a.block_size = shape.block_size;
  a.num_kv_heads = shape.num_kv_heads;
  a.head_dim = shape.head_dim;
  a.q = q;
  a.q_stride = q_stride;
  a.num_heads = num_heads;
  a.scale = scale;
  a.num_seqs = batch.num_seqs;
  a.max_blocks_per_seq = batch.max_blocks_per_seq;
  a.positions = batch.positions;
  a.query_start = batch.query_start;
  a.block_tables = batch.block_tables;
  a.out = out;
  const size_t parts = static_cast<size_t>(batch.num_tokens) * num_heads * splits;
  a.part_acc = splits > 1 ? workspace : nullptr;
  a.part_ml = splits > 1 ? workspace + parts * shape.head_dim : nullptr;

  const dim3 grid(batch.num_tokens, num_heads, splits);
  attention_kernel<<<grid, kAttnThreads, 0, stream>>>(a);
  check_launch("attention_kernel");
  if (splits > 1) {
    attention_combine_kernel<<<dim3(batch.num_tokens, num_heads), 128, 0, stream>>>(a, splits);
    check_launch("attention_combine_kernel");
  }
}

void kv_write(const KvCacheView& cache, int layer, const float* k, int64_t k_stride,
              const float* v, int64_t v_stride, const AttentionBatch& batch, cudaStream_t stream) {
  if (batch.num_tokens == 0) return;
  const KvCacheShape& shape = cache.shape;
  float* k_cache = cache.data + layer * cache.layer_stride();
  float* v_cache = k_cache + cache.value_stride();
  kv_write_kernel<<<batch.num_tokens, 128, 0, stream>>>(
      k_cache, v_cache, shape.num_blocks, shape.block_size, shape.num_kv_heads, shape.head_dim, k,
      k_stride, v, v_stride, batch.slot_mapping);
  check_launch("kv_write_kernel");
}

void copy_kv_blocks(const KvCacheView& cache, const int32_t* pairs, int num_pairs,
                    cudaStream_t stream) {
  if (num_pairs == 0) return;
  const KvCacheShape& shape = cache.shape;
  const int64_t block_floats =
      static_cast<int64_t>(shape.block_size) * shape.num_kv_heads * shape.head_dim;
  const dim3 grid(num_pairs, shape.num_layers * 2);
  copy_kv_blocks_kernel<<<grid, 256, 0, stream>>>(cache.data, cache.value_stride(), block_floats,
                                                  pairs);
  check_launch("copy_kv_blocks_kernel");
}

}  // namespace lmserve::kernels::cuda
