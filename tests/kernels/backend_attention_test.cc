// The paged KV cache ops (kv_write, attention, copy_kv_blocks) against a double-precision
// reference, with scattered block tables and prefill, chunked-prefill and decode
// sequences mixed in one batch.
#include <algorithm>
#include <numeric>

#include "tests/kernels/backend_test_util.h"

namespace lmserve::kernels::test {
namespace {

struct Geometry {
  int num_heads, num_kv_heads, head_dim, block_size;
};

// One sequence of the step: `cached` tokens already in the cache, `fresh` new ones.
struct SeqSpec {
  int cached, fresh;
};

// Host description of a step, and its device copy.
struct StepBatch {
  std::vector<int32_t> positions, slots, query_start, context_lens, block_tables;
  int num_seqs = 0, max_blocks = 0, max_context = 0, max_query = 0;
  DeviceBuffer d_pos, d_slots, d_qs, d_ctx, d_bt;

  AttentionBatch view() const {
    AttentionBatch b;
    b.num_tokens = static_cast<int>(positions.size());
    b.num_seqs = num_seqs;
    b.max_blocks_per_seq = max_blocks;
    b.max_context_len = max_context;
    b.max_query_len = max_query;
    b.positions = d_pos.as<int32_t>();
    b.slot_mapping = d_slots.as<int32_t>();
    b.query_start = d_qs.as<int32_t>();
    b.context_lens = d_ctx.as<int32_t>();
    b.block_tables = d_bt.as<int32_t>();
    return b;
  }
};

class BackendAttention : public BackendTest {
 protected:
  // Positions [first, first + count) of every sequence, with its block table.
  StepBatch make_step(const std::vector<std::vector<int32_t>>& tables,
                      const std::vector<std::pair<int, int>>& ranges, int block_size,
                      int max_blocks) {
    StepBatch s;
    s.num_seqs = static_cast<int>(ranges.size());
    s.max_blocks = max_blocks;
    s.query_start.push_back(0);
    for (size_t i = 0; i < ranges.size(); ++i) {
      const auto [first, count] = ranges[i];
      for (int p = first; p < first + count; ++p) {
        s.positions.push_back(p);
        s.slots.push_back(tables[i][p / block_size] * block_size + p % block_size);
      }
      s.query_start.push_back(static_cast<int32_t>(s.positions.size()));
      s.context_lens.push_back(first + count);
      s.max_context = std::max(s.max_context, first + count);
      s.max_query = std::max(s.max_query, count);
      std::vector<int32_t> row = tables[i];
      row.resize(static_cast<size_t>(max_blocks), 0);
      s.block_tables.insert(s.block_tables.end(), row.begin(), row.end());
    }
    s.d_pos = to_device(s.positions);
    s.d_slots = to_device(s.slots);
    s.d_qs = to_device(s.query_start);
    s.d_ctx = to_device(s.context_lens);
    s.d_bt = to_device(s.block_tables);
    return s;
  }

  // softmax(q·Kᵀ·scale)·V over positions 0..pos of one sequence's host K/V rows.
  static void attend_ref(const float* q, const std::vector<float>& k, const std::vector<float>& v,
                         int pos, const Geometry& g, int h, double scale, double* out) {
    const int row = g.num_kv_heads * g.head_dim;
    const int kvh = h / (g.num_heads / g.num_kv_heads);
    std::vector<double> s(static_cast<size_t>(pos + 1));
    double mx = -1e300;
    for (int p = 0; p <= pos; ++p) {
      double d = 0;
      for (int j = 0; j < g.head_dim; ++j) d += static_cast<double>(q[j]) * k[p * row + kvh * g.head_dim + j];
      s[p] = d * scale;
      mx = std::max(mx, s[p]);
    }
    double sum = 0;
    for (auto& x : s) sum += (x = std::exp(x - mx));
    for (int j = 0; j < g.head_dim; ++j) {
      double acc = 0;
      for (int p = 0; p <= pos; ++p) acc += s[p] * v[p * row + kvh * g.head_dim + j];
      out[j] = acc / sum;
    }
  }

  // Fills the cache with each sequence's history, then runs one mixed step on layer 0
  // and checks every (token, head) against the reference.
  void run_mixed_batch(const Geometry& g, const std::vector<SeqSpec>& seqs) {
    const int row = g.num_kv_heads * g.head_dim;
    int max_blocks = 0, total_blocks = 0;
    for (const auto& s : seqs) {
      const int blocks = (s.cached + s.fresh + g.block_size - 1) / g.block_size;
      max_blocks = std::max(max_blocks, blocks);
      total_blocks += blocks;
    }
    const int num_blocks = total_blocks + 5;  // spare blocks stay unused
    backend_->allocate_kv_cache(KvCacheShape{2, num_blocks, g.block_size, g.num_kv_heads, g.head_dim});

    // Scattered block tables: a random permutation of the cache's blocks.
    std::vector<int32_t> perm(static_cast<size_t>(num_blocks));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng_);
    std::vector<std::vector<int32_t>> tables;
    size_t next = 0;
    for (const auto& s : seqs) {
      const int blocks = (s.cached + s.fresh + g.block_size - 1) / g.block_size;
      tables.emplace_back(perm.begin() + next, perm.begin() + next + blocks);
      next += static_cast<size_t>(blocks);
    }

    std::vector<std::vector<float>> keys, values;
    for (const auto& s : seqs) {
      keys.push_back(random_floats(static_cast<size_t>((s.cached + s.fresh) * row)));
      values.push_back(random_floats(static_cast<size_t>((s.cached + s.fresh) * row)));
    }
    // Writes positions [first, first + count) of every sequence into `layer`; layer 1
    // gets negated data so a kernel reading the wrong layer fails.
    auto write = [&](const StepBatch& step, const std::vector<std::pair<int, int>>& ranges, int layer) {
      std::vector<float> k, v;
      for (size_t i = 0; i < seqs.size(); ++i)
        for (int p = ranges[i].first; p < ranges[i].first + ranges[i].second; ++p)
          for (int j = 0; j < row; ++j) {
            const float sign = layer == 0 ? 1.0f : -1.0f;
            k.push_back(sign * keys[i][p * row + j]);
            v.push_back(sign * values[i][p * row + j]);
          }
      DeviceBuffer dk = to_device(k), dv = to_device(v);
      backend_->kv_write(layer, dk.as<float>(), row, dv.as<float>(), row, step.view());
    };

    std::vector<std::pair<int, int>> history, fresh;
    for (const auto& s : seqs) {
      history.emplace_back(0, s.cached);
      fresh.emplace_back(s.cached, s.fresh);
    }
    const StepBatch past = make_step(tables, history, g.block_size, max_blocks);
    if (!past.positions.empty()) {
      write(past, history, 0);
      write(past, history, 1);
    }
    const StepBatch step = make_step(tables, fresh, g.block_size, max_blocks);
    write(step, fresh, 1);
    write(step, fresh, 0);

    // q rows padded to a larger stride, as when q is a slice of a fused qkv row.
    const int tokens = static_cast<int>(step.positions.size());
    const int64_t q_stride = static_cast<int64_t>(g.num_heads) * g.head_dim + 2 * row;
    const auto q = random_floats(static_cast<size_t>(tokens * q_stride), -2, 2);
    DeviceBuffer dq = to_device(q);
    const size_t out_count = static_cast<size_t>(tokens) * g.num_heads * g.head_dim;
    DeviceBuffer out = poisoned(out_count);
    const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
    backend_->attention(0, dq.as<float>(), q_stride, g.num_heads, scale, step.view(), out.as<float>());

    std::vector<double> want(out_count);
    for (size_t i = 0; i < seqs.size(); ++i)
      for (int t = step.query_start[i]; t < step.query_start[i + 1]; ++t)
        for (int h = 0; h < g.num_heads; ++h)
          attend_ref(q.data() + t * q_stride + h * g.head_dim, keys[i], values[i], step.positions[t], g, h,
                     scale, &want[(static_cast<size_t>(t) * g.num_heads + h) * g.head_dim]);
    EXPECT_TRUE(all_near(to_host(out, out_count), want, 2e-5, 1e-4));
    backend_->release_kv_cache();
  }
};

TEST_F(BackendAttention, MixedPrefillAndDecodeWithScatteredBlocks) {
  // Prefill from scratch, decode at several context lengths, and a chunked prefill.
  const std::vector<SeqSpec> seqs = {{0, 17}, {40, 1}, {20, 5}, {6, 1}, {0, 1}};
  const Geometry geometries[] = {
      {8, 2, 64, 16},   // GQA 4:1
      {4, 1, 80, 7},    // MQA, odd block size
      {3, 3, 128, 16},  // multi-head
      {8, 2, 64, 7},
  };
  for (const Geometry& g : geometries) {
    SCOPED_TRACE("heads=" + std::to_string(g.num_heads) + " kv_heads=" + std::to_string(g.num_kv_heads) +
                 " head_dim=" + std::to_string(g.head_dim) + " block_size=" + std::to_string(g.block_size));
    run_mixed_batch(g, seqs);
  }
}

TEST_F(BackendAttention, LongDecodeContext) {
  run_mixed_batch(Geometry{4, 2, 64, 16}, {{700, 1}, {300, 2}});
}

TEST_F(BackendAttention, CopyKvBlocksCopiesEveryLayer) {
  const Geometry g{2, 1, 64, 7};
  const int row = g.num_kv_heads * g.head_dim, num_blocks = 6, layers = 3, len = 12;  // 2 blocks
  backend_->allocate_kv_cache(KvCacheShape{layers, num_blocks, g.block_size, g.num_kv_heads, g.head_dim});
  const std::vector<std::vector<int32_t>> src_table = {{4, 1}};
  const StepBatch fill = make_step(src_table, {{0, len}}, g.block_size, 2);
  std::vector<std::vector<float>> keys, values;
  for (int layer = 0; layer < layers; ++layer) {
    keys.push_back(random_floats(static_cast<size_t>(len * row)));
    values.push_back(random_floats(static_cast<size_t>(len * row)));
    DeviceBuffer dk = to_device(keys.back()), dv = to_device(values.back());
    backend_->kv_write(layer, dk.as<float>(), row, dv.as<float>(), row, fill.view());
  }
  const std::vector<std::pair<int32_t, int32_t>> pairs = {{4, 0}, {1, 5}};
  backend_->copy_kv_blocks(pairs);

  // The copies alone must now hold the sequence: read it through a table of dst blocks.
  const StepBatch read = make_step({{0, 5}}, {{len - 1, 1}}, g.block_size, 2);
  const auto q = random_floats(static_cast<size_t>(g.num_heads * g.head_dim));
  DeviceBuffer dq = to_device(q);
  for (int layer = 0; layer < layers; ++layer) {
    SCOPED_TRACE("layer " + std::to_string(layer));
    DeviceBuffer out = poisoned(q.size());
    backend_->attention(layer, dq.as<float>(), g.num_heads * g.head_dim, g.num_heads, 0.125f, read.view(),
                        out.as<float>());
    std::vector<double> want(q.size());
    for (int h = 0; h < g.num_heads; ++h)
      attend_ref(q.data() + h * g.head_dim, keys[layer], values[layer], len - 1, g, h, 0.125,
                 &want[static_cast<size_t>(h * g.head_dim)]);
    EXPECT_TRUE(all_near(to_host(out, q.size()), want, 2e-5, 1e-4));
  }
  backend_->release_kv_cache();
}

// A token's attention output must not depend on the other sequences in its batch.
TEST_F(BackendAttention, OutputIsBatchInvariant) {
  const Geometry g{4, 1, 64, 16};
  const int row = g.head_dim, num_blocks = 8;
  backend_->allocate_kv_cache(KvCacheShape{1, num_blocks, g.block_size, g.num_kv_heads, g.head_dim});
  const std::vector<std::vector<int32_t>> tables = {{3, 6, 0}, {5, 1}};
  const StepBatch both = make_step(tables, {{0, 40}, {0, 30}}, g.block_size, 3);
  const auto k = random_floats(70 * row), v = random_floats(70 * row);
  DeviceBuffer dk = to_device(k), dv = to_device(v);
  backend_->kv_write(0, dk.as<float>(), row, dv.as<float>(), row, both.view());
  const int64_t q_stride = g.num_heads * g.head_dim;
  const auto q = random_floats(static_cast<size_t>(70 * q_stride));
  DeviceBuffer dq = to_device(q), out_both = poisoned(q.size());
  backend_->attention(0, dq.as<float>(), q_stride, g.num_heads, 0.125f, both.view(), out_both.as<float>());
  const StepBatch alone = make_step({tables[1]}, {{0, 30}}, g.block_size, 3);
  DeviceBuffer out_alone = poisoned(30 * q_stride);
  backend_->attention(0, dq.as<float>() + 40 * q_stride, q_stride, g.num_heads, 0.125f, alone.view(),
                      out_alone.as<float>());
  const auto a = to_host(out_both, q.size()), b = to_host(out_alone, 30 * q_stride);
  EXPECT_EQ(0, std::memcmp(a.data() + 40 * q_stride, b.data(), b.size() * sizeof(float)));
  backend_->release_kv_cache();
}

}  // namespace
}  // namespace lmserve::kernels::test
