// PagedKvCache: storage, kv_write, copy_kv_blocks. Attention lives in attention.cc.
#include "kernels/cpu/kv_cache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace lmserve::kernels::cpu {

void PagedKvCache::allocate(const KvCacheShape& shape) {
  if (shape.num_layers <= 0 || shape.num_blocks <= 0 || shape.block_size <= 0 ||
      shape.num_kv_heads <= 0 || shape.head_dim <= 0)
    throw std::runtime_error("allocate_kv_cache: every KvCacheShape field must be positive");
  release();
  row_ = static_cast<int64_t>(shape.num_kv_heads) * shape.head_dim;
  kv_stride_ = static_cast<int64_t>(shape.num_blocks) * shape.block_size * row_;
  layer_stride_ = 2 * kv_stride_;
  const size_t bytes = static_cast<size_t>(layer_stride_) * shape.num_layers * sizeof(float);
  data_ = static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!data_)
    throw std::runtime_error("allocate_kv_cache: cannot allocate " + std::to_string(bytes) + " bytes");
  std::memset(data_, 0, bytes);
  shape_ = shape;
}

void PagedKvCache::release() {
  std::free(data_);
  data_ = nullptr;
  shape_ = KvCacheShape{};
}

void PagedKvCache::check_layer(int layer, const char* op) const {
  if (!data_) throw std::runtime_error(std::string(op) + ": the KV cache is not allocated");
  if (layer < 0 || layer >= shape_.num_layers)
    throw std::runtime_error(std::string(op) + ": layer " + std::to_string(layer) +
                             " out of range [0, " + std::to_string(shape_.num_layers) + ")");
}

void PagedKvCache::write(ThreadPool& pool, int layer, const float* k, int64_t k_stride,
                         const float* v, int64_t v_stride, const AttentionBatch& batch) {
  check_layer(layer, "kv_write");
  const int64_t num_slots = static_cast<int64_t>(shape_.num_blocks) * shape_.block_size;
  for (int t = 0; t < batch.num_tokens; ++t)
    if (batch.slot_mapping[t] >= num_slots)
      throw std::runtime_error("kv_write: slot " + std::to_string(batch.slot_mapping[t]) +
                               " of token " + std::to_string(t) + " outside the cache");
  float* kc = keys(layer);
  float* vc = values(layer);
  const int64_t bs = shape_.block_size, hd = shape_.head_dim, heads = shape_.num_kv_heads;
  const size_t head_bytes = static_cast<size_t>(hd) * sizeof(float);
  pool.parallel_for(batch.num_tokens, std::max<int64_t>(1, 32 * 1024 / row_), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t slot = batch.slot_mapping[t];
      if (slot < 0) continue;
      const int64_t block = slot / bs, offset = slot % bs;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t dst = ((block * heads + h) * bs + offset) * hd;
        std::memcpy(kc + dst, k + t * k_stride + h * hd, head_bytes);
        std::memcpy(vc + dst, v + t * v_stride + h * hd, head_bytes);
      }
    }
  });
}

void PagedKvCache::copy_blocks(ThreadPool& pool,
                               std::span<const std::pair<int32_t, int32_t>> pairs) {
  if (pairs.empty()) return;
  if (!data_) throw std::runtime_error("copy_kv_blocks: the KV cache is not allocated");
  for (const auto& [src, dst] : pairs)
    if (src < 0 || src >= shape_.num_blocks || dst < 0 || dst >= shape_.num_blocks)
      throw std::runtime_error("copy_kv_blocks: block pair (" + std::to_string(src) + ", " +
                               std::to_string(dst) + ") outside [0, " +
                               std::to_string(shape_.num_blocks) + ")");
  const int64_t block_floats = static_cast<int64_t>(shape_.block_size) * row_;
  const int64_t per_layer = 2 * static_cast<int64_t>(pairs.size());
  pool.parallel_for(per_layer * shape_.num_layers, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t layer = i / per_layer;
      const int64_t which = i % per_layer;
      const auto& [src, dst] = pairs[static_cast<size_t>(which / 2)];
      if (src == dst) continue;
      float* base = data_ + layer * layer_stride_ + (which % 2) * kv_stride_;
      std::memcpy(base + dst * block_floats, base + src * block_floats,
                  static_cast<size_t>(block_floats) * sizeof(float));
    }
  });
}

}  // namespace lmserve::kernels::cpu
