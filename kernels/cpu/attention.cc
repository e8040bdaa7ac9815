// Paged causal attention over the CPU KV cache, one (token, KV head) per work item.
//
// Two passes per item: scores q·k for every cached position, then a max-subtracted
// softmax and the weighted sum of values. Each item's arithmetic depends only on its
// own token, so results do not change with the batch around it.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/kv_cache.h"

namespace lmserve::kernels::cpu {

namespace {

// Checks the host-visible metadata so a bad batch throws instead of reading outside
// the cache; returns the sequence of every token.
std::vector<int32_t> validate_batch(const AttentionBatch& b, const KvCacheShape& shape) {
  if (b.num_tokens < 0 || b.num_seqs < 0 || b.max_blocks_per_seq < 0)
    throw std::runtime_error("attention: negative counts in AttentionBatch");
  std::vector<int32_t> seq_of(static_cast<size_t>(b.num_tokens), -1);
  if (b.num_tokens == 0) return seq_of;
  if (b.query_start[0] != 0 || b.query_start[b.num_seqs] != b.num_tokens)
    throw std::runtime_error("attention: query_start must run from 0 to num_tokens");
  const int64_t max_pos = static_cast<int64_t>(b.max_blocks_per_seq) * shape.block_size;
  for (int s = 0; s < b.num_seqs; ++s) {
    const int32_t q0 = b.query_start[s], q1 = b.query_start[s + 1];
    if (q1 < q0 || q1 > b.num_tokens)
      throw std::runtime_error("attention: query_start is not non-decreasing at sequence " +
                               std::to_string(s));
    int32_t max_p = -1;
    for (int32_t t = q0; t < q1; ++t) {
      const int32_t p = b.positions[t];
      if (p < 0 || p >= max_pos)
        throw std::runtime_error("attention: position " + std::to_string(p) + " of token " +
                                 std::to_string(t) + " beyond the sequence's block table");
      max_p = std::max(max_p, p);
      seq_of[static_cast<size_t>(t)] = s;
    }
    const int32_t* table = b.block_tables + static_cast<int64_t>(s) * b.max_blocks_per_seq;
    for (int32_t blk = 0; max_p >= 0 && blk <= max_p / shape.block_size; ++blk)
      if (table[blk] < 0 || table[blk] >= shape.num_blocks)
        throw std::runtime_error("attention: block " + std::to_string(table[blk]) +
                                 " in the table of sequence " + std::to_string(s) +
                                 " outside the cache");
  }
  return seq_of;
}

}  // namespace

void PagedKvCache::attention(ThreadPool& pool, const SimdKernels& simd, int layer, const float* q,
                             int64_t q_stride, int num_heads, float scale,
                             const AttentionBatch& batch, float* out) const {
  check_layer(layer, "attention");
  if (num_heads <= 0 || num_heads % shape_.num_kv_heads != 0)
    throw std::runtime_error("attention: num_heads " + std::to_string(num_heads) +
                             " is not a multiple of num_kv_heads " +
                             std::to_string(shape_.num_kv_heads));
  const std::vector<int32_t> seq_of = validate_batch(batch, shape_);
  const int head_dim = shape_.head_dim;
  const int block_size = shape_.block_size;
  const int group = num_heads / shape_.num_kv_heads;
  const float* kc = keys(layer);
  const float* vc = values(layer);

  const int kv_heads = shape_.num_kv_heads;
  // One item = one token and one KV head with all the query heads that read it, so each
  // key/value block is fetched once for the group (GQA) and then hit in L1.
  const int64_t items = static_cast<int64_t>(batch.num_tokens) * kv_heads;
  // Items are uneven (context lengths differ), so tasks stay small; only tiny ones
  // (short contexts) are grouped so waking a thread pays off.
  const int64_t item_macs = 2 * static_cast<int64_t>(std::max(batch.max_context_len, 1)) * head_dim * group;
  pool.parallel_for(items, std::max<int64_t>(1, 32 * 1024 / item_macs), [&](int64_t i0, int64_t i1) {
    std::vector<float> scores;
    std::vector<float> inv_sum(static_cast<size_t>(group));
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t t = item / kv_heads;
      const int kvh = static_cast<int>(item % kv_heads);
      const int s = seq_of[static_cast<size_t>(t)];
      const int32_t* table = batch.block_tables + static_cast<int64_t>(s) * batch.max_blocks_per_seq;
      const int ctx = batch.positions[t] + 1;
      const int num_blocks = (ctx + block_size - 1) / block_size;
      const int64_t block_stride = static_cast<int64_t>(block_size) * head_dim;
      auto block_of = [&](const float* cache, int b) {
        return cache + (static_cast<int64_t>(table[b]) * kv_heads + kvh) * block_stride;
      };
      scores.resize(static_cast<size_t>(group) * ctx);

      for (int b = 0; b < num_blocks; ++b) {
        const int count = std::min(block_size, ctx - b * block_size);
        const float* kb = block_of(kc, b);
        for (int g = 0; g < group; ++g) {
          const float* qv = q + t * q_stride + static_cast<int64_t>(kvh * group + g) * head_dim;
          simd.dot_rows(qv, kb, count, head_dim, scale, scores.data() + static_cast<size_t>(g) * ctx + b * block_size);
        }
      }
      for (int g = 0; g < group; ++g) {
        float* sc = scores.data() + static_cast<size_t>(g) * ctx;
        const float max_score = *std::max_element(sc, sc + ctx);
        inv_sum[static_cast<size_t>(g)] = 1.0f / simd.exp_shifted(sc, ctx, max_score);
        float* o = out + (t * num_heads + kvh * group + g) * static_cast<int64_t>(head_dim);
        std::fill(o, o + head_dim, 0.0f);
      }
      for (int b = 0; b < num_blocks; ++b) {
        const int count = std::min(block_size, ctx - b * block_size);
        const float* vb = block_of(vc, b);
        for (int g = 0; g < group; ++g) {
          float* o = out + (t * num_heads + kvh * group + g) * static_cast<int64_t>(head_dim);
          simd.axpy_rows(o, scores.data() + static_cast<size_t>(g) * ctx + b * block_size, vb, count, head_dim);
        }
      }
      for (int g = 0; g < group; ++g) {
        float* o = out + (t * num_heads + kvh * group + g) * static_cast<int64_t>(head_dim);
        for (int d = 0; d < head_dim; ++d) o[d] *= inv_sum[static_cast<size_t>(g)];
      }
    }
  });
}

}  // namespace lmserve::kernels::cpu
