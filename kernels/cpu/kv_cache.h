// The CPU paged KV cache and the ops that read and write it (kv_write, attention,
// copy_kv_blocks).
//
// Layout (float32): [layer][K or V][block][kv_head][offset in block][head_dim], so one
// block of one layer's keys is contiguous (copy_kv_blocks is one memcpy) and attention
// streams each head's keys within a block without striding over the other heads.
#pragma once

#include <cstdint>
#include <span>
#include <utility>

#include "kernels/backend.h"
#include "kernels/cpu/simd_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace lmserve::kernels::cpu {

class PagedKvCache {
 public:
  PagedKvCache() = default;
  ~PagedKvCache() { release(); }
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;

  void allocate(const KvCacheShape& shape);
  void release();

  // Slots with a negative slot_mapping entry (padding tokens) are skipped.
  void write(ThreadPool& pool, int layer, const float* k, int64_t k_stride, const float* v,
             int64_t v_stride, const AttentionBatch& batch);
  void attention(ThreadPool& pool, const SimdKernels& simd, int layer, const float* q,
                 int64_t q_stride, int num_heads, float scale, const AttentionBatch& batch,
                 float* out) const;
  void copy_blocks(ThreadPool& pool, std::span<const std::pair<int32_t, int32_t>> pairs);

 private:
  void check_layer(int layer, const char* op) const;
  const float* keys(int layer) const { return data_ + layer * layer_stride_; }
  const float* values(int layer) const { return data_ + layer * layer_stride_ + kv_stride_; }
  float* keys(int layer) { return data_ + layer * layer_stride_; }
  float* values(int layer) { return data_ + layer * layer_stride_ + kv_stride_; }

  KvCacheShape shape_;
  float* data_ = nullptr;
  int64_t row_ = 0;           // floats per token: num_kv_heads · head_dim
  int64_t kv_stride_ = 0;     // floats of one layer's keys (= its values)
  int64_t layer_stride_ = 0;  // floats per layer (keys + values)
};

}  // namespace lmserve::kernels::cpu
