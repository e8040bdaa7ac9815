// CPU-backend specifics: every ISA this machine supports gives the reference result,
// zero-copy weight loading, the thread pool, and bad-input errors.
#include <atomic>
#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"
#include "tests/kernels/backend_test_util.h"

namespace lmserve::kernels::test {
namespace {

using cpu::CpuBackend;
using cpu::Isa;

class CpuBackendTest : public BackendTest {};

std::vector<Isa> supported_isas() {
  std::vector<Isa> out = {Isa::Portable};
  if (cpu::detect_isa() >= Isa::Avx2) out.push_back(Isa::Avx2);
  if (cpu::detect_isa() >= Isa::Avx512) out.push_back(Isa::Avx512);
  return out;
}

TEST_F(CpuBackendTest, EveryIsaComputesLinearAndAttention) {
  const int K = 203, N = 37, n = 6;
  const auto x = random_floats(static_cast<size_t>(n * K));
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    const HostMatrix w = random_matrix(dtype, N, K);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(std::string(cpu::isa_name(isa)) + " " + dtype_name(dtype));
      CpuBackend b(BackendOptions{2, 0}, isa);
      EXPECT_NE(b.name().find(cpu::isa_name(isa)), std::string::npos);
      const WeightMatrix dw = b.load_matrix(w.tensor({N, K}), dtype, false);
      std::vector<float> y(static_cast<size_t>(n * N), NAN);
      b.linear(x.data(), n, dw, nullptr, y.data());
      for (int i = 0; i < n; ++i)
        for (int o = 0; o < N; ++o) {
          double s = 0, mag = 0;
          for (int k = 0; k < K; ++k) {
            s += static_cast<double>(x[i * K + k]) * w.values[o * K + k];
            mag += std::fabs(x[i * K + k] * w.values[o * K + k]);
          }
          ASSERT_NEAR(y[i * N + o], s, 1e-5 * mag + 1e-6);
        }
      // The softmax's vector exp: a few ulp of exp() over the range scores take.
      std::vector<float> e(203);
      for (size_t i = 0; i < e.size(); ++i) e[i] = -90.0f + 0.45f * static_cast<float>(i) + x[i] * 0.1f;
      std::vector<float> shifted = e;
      const float sum = cpu::simd_kernels(isa, DType::F32).exp_shifted(shifted.data(), 203, 1.5f);
      double want_sum = 0;
      for (size_t i = 0; i < e.size(); ++i) {
        const double want = std::exp(static_cast<double>(e[i] - 1.5f));  // the kernel exponentiates the float difference
        want_sum += want;
        ASSERT_NEAR(shifted[i], want, 4e-7 * want + 1e-37) << "exp(" << e[i] - 1.5f << ")";
      }
      EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum);
      std::vector<float> a(70), bb(70);
      for (int i = 0; i < 70; ++i) a[i] = bb[i] = x[i];
      EXPECT_NEAR(cpu::simd_kernels(isa, DType::F32).dot(a.data(), bb.data(), 70),
                  [&] { double s = 0; for (float v : a) s += double(v) * v; return s; }(), 1e-4);
    }
  }
}

TEST_F(CpuBackendTest, LoadMatrixAliasesMatchingDtype) {
  const HostMatrix w = random_matrix(DType::BF16, 4, 8);
  const WeightMatrix dw = backend_->load_matrix(w.tensor({4, 8}), DType::BF16, false);
  EXPECT_EQ(dw.data, w.data());  // zero-copy: the mmap is used in place
  backend_->release_weight(dw);  // must not free host memory it does not own
  const WeightMatrix conv = backend_->load_matrix(w.tensor({4, 8}), DType::F32, false);
  EXPECT_NE(conv.data, w.data());
  backend_->release_weight(conv);
}

TEST_F(CpuBackendTest, RejectsBadInput) {
  const HostMatrix w = random_matrix(DType::F32, 4, 8);
  EXPECT_THROW(backend_->load_matrix(w.tensor({32}), DType::F32, false), std::runtime_error);
  const WeightMatrix dw = backend_->load_matrix(w.tensor({4, 8}), DType::F32, false);
  const int32_t ids[] = {1, 4};
  float out[16];
  EXPECT_THROW(backend_->embedding(dw, ids, 2, out, false), std::runtime_error);
  EXPECT_THROW(make_backend("cuda:7", BackendOptions{}), std::runtime_error);

  backend_->allocate_kv_cache(KvCacheShape{1, 2, 4, 1, 8});
  const int32_t pos[] = {9}, slot[] = {1}, qs[] = {0, 1}, ctx[] = {10}, table[] = {0, 1, 0};
  AttentionBatch b{1, 1, 3, 10, 1, pos, slot, qs, ctx, table};
  float q[8] = {}, o[8];
  EXPECT_NO_THROW(backend_->attention(0, q, 8, 1, 1.0f, b, o));
  const int32_t far_pos[] = {12};  // past the 3-block table
  b.positions = far_pos;
  EXPECT_THROW(backend_->attention(0, q, 8, 1, 1.0f, b, o), std::runtime_error);
  b.positions = pos;
  const int32_t bad_table[] = {0, 1, 5};
  b.block_tables = bad_table;
  EXPECT_THROW(backend_->attention(0, q, 8, 1, 1.0f, b, o), std::runtime_error);
  EXPECT_THROW(backend_->attention(1, q, 8, 1, 1.0f, b, o), std::runtime_error);
  const int32_t far_slot[] = {8};
  b.slot_mapping = far_slot;
  EXPECT_THROW(backend_->kv_write(0, q, 8, q, 8, b), std::runtime_error);
  const std::pair<int32_t, int32_t> bad_pair[] = {{0, 2}};
  EXPECT_THROW(backend_->copy_kv_blocks(bad_pair), std::runtime_error);
}

TEST(ThreadPool, CoversRangeOnceAndRethrows) {
  cpu::ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(1000, 7, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_THROW(pool.parallel_for(100, 1, [](int64_t b, int64_t) {
    if (b == 50) throw std::runtime_error("boom");
  }), std::runtime_error);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(10, 1, [&](int64_t b, int64_t e) { sum += e - b; });  // still usable
  EXPECT_EQ(sum.load(), 10);
}

}  // namespace
}  // namespace lmserve::kernels::test
