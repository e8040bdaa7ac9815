// Every dense op of the Backend interface against double-precision references, on the
// device named by LMSERVE_TEST_DEVICE (the same source builds the cpu and cuda tests).
#include <cstring>

#include "tests/kernels/backend_test_util.h"

namespace lmserve::kernels::test {
namespace {

constexpr DType kDtypes[] = {DType::F32, DType::F16, DType::BF16};

class BackendOps : public BackendTest {
 protected:
  // y = x·Wᵀ + b in double, with W's exact widened values.
  static std::vector<double> linear_ref(const std::vector<float>& x, int n, const HostMatrix& w,
                                        const std::vector<float>* bias, std::vector<double>* scale) {
    std::vector<double> y(static_cast<size_t>(n * w.rows));
    scale->assign(y.size(), 0.0);
    for (int i = 0; i < n; ++i)
      for (int64_t o = 0; o < w.rows; ++o) {
        double s = bias ? (*bias)[o] : 0.0, mag = bias ? std::fabs((*bias)[o]) : 0.0;
        for (int64_t k = 0; k < w.cols; ++k) {
          const double p = static_cast<double>(x[i * w.cols + k]) * w.values[o * w.cols + k];
          s += p;
          mag += std::fabs(p);
        }
        y[i * w.rows + o] = s;
        (*scale)[i * w.rows + o] = mag;
      }
    return y;
  }

  std::vector<float> run_linear(const std::vector<float>& x, int n, const WeightMatrix& w,
                                const float* bias, Backend& b) {
    DeviceBuffer dx(b, x.size() * sizeof(float));
    b.upload(dx.get(), x.data(), x.size() * sizeof(float));
    std::vector<float> nan(static_cast<size_t>(n * w.rows), std::numeric_limits<float>::quiet_NaN());
    DeviceBuffer dy(b, nan.size() * sizeof(float));
    b.upload(dy.get(), nan.data(), nan.size() * sizeof(float));
    b.linear(dx.as<float>(), n, w, bias, dy.as<float>());
    std::vector<float> y(nan.size());
    b.download(y.data(), dy.get(), y.size() * sizeof(float));
    return y;
  }
};

TEST_F(BackendOps, LinearMatchesReferenceForAllDtypesAndShapes) {
  const std::pair<int, int> shapes[] = {{13, 7}, {64, 33}, {301, 130}, {768, 40}};
  for (DType dtype : kDtypes) {
    for (auto [K, N] : shapes) {
      const HostMatrix w = random_matrix(dtype, N, K);
      const WeightMatrix dw = backend_->load_matrix(w.tensor({N, K}), dtype, false);
      EXPECT_EQ(dw.rows, N);
      EXPECT_EQ(dw.cols, K);
      const std::vector<float> bias = random_floats(static_cast<size_t>(N));
      DeviceBuffer dbias = to_device(bias);
      for (int n : {1, 3, 17, 70}) {
        for (bool with_bias : {false, true}) {
          SCOPED_TRACE(std::string(dtype_name(dtype)) + " K=" + std::to_string(K) + " N=" +
                       std::to_string(N) + " n=" + std::to_string(n) + " bias=" + std::to_string(with_bias));
          const std::vector<float> x = random_floats(static_cast<size_t>(n * K));
          std::vector<double> mag;
          const auto want = linear_ref(x, n, w, with_bias ? &bias : nullptr, &mag);
          const auto got = run_linear(x, n, dw, with_bias ? dbias.as<float>() : nullptr, *backend_);
          ASSERT_EQ(got.size(), want.size());
          for (size_t i = 0; i < got.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-5 * mag[i] + 1e-6) << "element " << i;
        }
      }
      backend_->release_weight(dw);
    }
  }
}

// A row's output must be bit-identical whatever else is in the batch and however many
// threads run it: this is what makes a seeded request reproducible.
TEST_F(BackendOps, LinearIsBatchAndThreadCountInvariant) {
  auto one_thread = make_backend(device(), BackendOptions{1, 0});
  auto three_threads = make_backend(device(), BackendOptions{3, 0});
  for (DType dtype : kDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const int K = 301, N = 203, n = 37;
    const HostMatrix w = random_matrix(dtype, N, K);
    const std::vector<float> x = random_floats(static_cast<size_t>(n * K));
    const std::vector<float> bias = random_floats(N);
    DeviceBuffer dbias = to_device(bias);
    const WeightMatrix dw = backend_->load_matrix(w.tensor({N, K}), dtype, false);
    const std::vector<float> full = run_linear(x, n, dw, dbias.as<float>(), *backend_);

    for (int start : {0, 5, 36}) {
      for (int len : {1, 2, 3, 4, 5, 6, 7, 8, 9, 17}) {
        if (start + len > n) continue;
        std::vector<float> sub(x.begin() + start * K, x.begin() + (start + len) * K);
        const auto part = run_linear(sub, len, dw, dbias.as<float>(), *backend_);
        ASSERT_EQ(0, std::memcmp(part.data(), full.data() + start * N, part.size() * sizeof(float)))
            << "rows " << start << ".." << start + len << " differ from the full batch";
      }
    }
    for (Backend* other : {one_thread.get(), three_threads.get()}) {
      const WeightMatrix ow = other->load_matrix(w.tensor({N, K}), dtype, false);
      DeviceBuffer obias(*other, bias.size() * sizeof(float));
      other->upload(obias.get(), bias.data(), bias.size() * sizeof(float));
      const auto got = run_linear(x, n, ow, obias.as<float>(), *other);
      ASSERT_EQ(0, std::memcmp(got.data(), full.data(), got.size() * sizeof(float)))
          << other->name() << " differs from " << backend_->name();
      other->release_weight(ow);
    }
    backend_->release_weight(dw);
  }
}

TEST_F(BackendOps, LoadMatrixTransposesAndConverts) {
  const int in = 19, out = 11;
  for (DType stored : kDtypes) {
    for (DType held : kDtypes) {
      SCOPED_TRACE(std::string(dtype_name(stored)) + " -> " + dtype_name(held));
      const HostMatrix w = random_matrix(stored, in, out);  // GPT-2 Conv1D: [in, out]
      const WeightMatrix dw = backend_->load_matrix(w.tensor({in, out}), held, true);
      ASSERT_EQ(dw.rows, out);
      ASSERT_EQ(dw.cols, in);
      ASSERT_EQ(dw.dtype, held);
      std::vector<uint16_t> half(static_cast<size_t>(in * out));
      std::vector<float> full(half.size());
      void* dst = held == DType::F32 ? static_cast<void*>(full.data()) : half.data();
      backend_->download(dst, dw.data, half.size() * dtype_size(held));
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < in; ++c) {
          const float v = w.values[c * out + r];
          const size_t i = static_cast<size_t>(r * in + c);
          if (held == DType::F32) {
            ASSERT_EQ(full[i], v);
          } else {
            ASSERT_EQ(half[i], held == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v));
          }
        }
      backend_->release_weight(dw);
    }
  }
}

TEST_F(BackendOps, LoadVectorWidensToFloat32) {
  for (DType dtype : kDtypes) {
    const HostMatrix v = random_matrix(dtype, 1, 37);
    float* dv = backend_->load_vector(v.tensor({37}));
    std::vector<float> got(37);
    backend_->download(got.data(), dv, 37 * sizeof(float));
    backend_->release(dv);
    for (int i = 0; i < 37; ++i) ASSERT_EQ(got[i], v.values[i]) << dtype_name(dtype) << " element " << i;
  }
}

TEST_F(BackendOps, EmbeddingLooksUpAndAccumulates) {
  for (DType dtype : kDtypes) {
    for (int dim : {7, 64, 129}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " dim=" + std::to_string(dim));
      const int vocab = 50, n = 17;
      const HostMatrix table = random_matrix(dtype, vocab, dim);
      const WeightMatrix dt = backend_->load_matrix(table.tensor({vocab, dim}), dtype, false);
      std::vector<int32_t> ids(n);
      for (int i = 0; i < n; ++i) ids[i] = i == 0 ? 0 : i == 1 ? vocab - 1 : random_int(0, vocab - 1);
      DeviceBuffer dids = to_device(ids);
      DeviceBuffer out = poisoned(static_cast<size_t>(n * dim));
      backend_->embedding(dt, dids.as<int32_t>(), n, out.as<float>(), false);
      std::vector<double> want(static_cast<size_t>(n * dim));
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < dim; ++j) want[i * dim + j] = table.values[ids[i] * dim + j];
      EXPECT_TRUE(all_near(to_host(out, want.size()), want, 0, 0));

      const std::vector<float> base = random_floats(want.size());
      DeviceBuffer acc = to_device(base);
      backend_->embedding(dt, dids.as<int32_t>(), n, acc.as<float>(), true);
      for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<double>(base[i]) + want[i];
      EXPECT_TRUE(all_near(to_host(acc, want.size()), want, 1e-6, 1e-6));
      backend_->release_weight(dt);
    }
  }
}

TEST_F(BackendOps, AddNormLayerNormAndRmsNorm) {
  for (NormKind kind : {NormKind::LayerNorm, NormKind::RmsNorm}) {
    for (int dim : {7, 64, 769}) {
      for (int n : {1, 3, 17}) {
        for (bool with_delta : {false, true}) {
          const bool with_bias = kind == NormKind::LayerNorm && n != 3;
          SCOPED_TRACE("kind=" + std::to_string(static_cast<int>(kind)) + " dim=" + std::to_string(dim) +
                       " n=" + std::to_string(n) + " delta=" + std::to_string(with_delta));
          const size_t count = static_cast<size_t>(n * dim);
          auto x = random_floats(count, -3, 5);
          const auto delta = random_floats(count);
          const auto weight = random_floats(static_cast<size_t>(dim), 0.5f, 1.5f);
          const auto bias = random_floats(static_cast<size_t>(dim));
          const float eps = 1e-5f;
          DeviceBuffer dx = to_device(x), dd = to_device(delta), dw = to_device(weight),
                       db = to_device(bias), out = poisoned(count);
          backend_->add_norm(kind, dx.as<float>(), with_delta ? dd.as<float>() : nullptr,
                             dw.as<float>(), with_bias ? db.as<float>() : nullptr, eps, n, dim,
                             out.as<float>());
          std::vector<double> want_x(count), want(count);
          for (int i = 0; i < n; ++i) {
            double sum = 0, sq = 0;
            for (int j = 0; j < dim; ++j) {
              const size_t e = static_cast<size_t>(i * dim + j);
              want_x[e] = with_delta ? static_cast<double>(x[e] + delta[e]) : x[e];
              sum += want_x[e];
              sq += want_x[e] * want_x[e];
            }
            const double mean = kind == NormKind::LayerNorm ? sum / dim : 0.0;
            double var = 0;
            for (int j = 0; j < dim; ++j) var += std::pow(want_x[i * dim + j] - mean, 2);
            const double denom = kind == NormKind::LayerNorm ? var / dim : sq / dim;
            for (int j = 0; j < dim; ++j) {
              const size_t e = static_cast<size_t>(i * dim + j);
              want[e] = (want_x[e] - mean) / std::sqrt(denom + eps) * weight[j] +
                        (with_bias ? bias[j] : 0.0);
            }
          }
          EXPECT_TRUE(all_near(to_host(dx, count), want_x, 0, 0)) << "residual stream";
          EXPECT_TRUE(all_near(to_host(out, count), want, 1e-5, 1e-5)) << "normalized output";
        }
      }
    }
  }
}

TEST_F(BackendOps, AddGeluSiluMul) {
  for (size_t count : {size_t{1}, size_t{17}, size_t{100003}}) {
    SCOPED_TRACE("count=" + std::to_string(count));
    const auto a = random_floats(count, -6, 6), b = random_floats(count, -6, 6);
    DeviceBuffer da = to_device(a), db = to_device(b);
    backend_->add(da.as<float>(), db.as<float>(), count);
    std::vector<double> want(count);
    for (size_t i = 0; i < count; ++i) want[i] = static_cast<double>(a[i] + b[i]);
    EXPECT_TRUE(all_near(to_host(da, count), want, 0, 0)) << "add";

    DeviceBuffer dg = to_device(a);
    backend_->gelu_new(dg.as<float>(), count);
    for (size_t i = 0; i < count; ++i) {
      const double x = a[i];
      want[i] = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    }
    EXPECT_TRUE(all_near(to_host(dg, count), want, 1e-6, 1e-5)) << "gelu_new";

    DeviceBuffer out = poisoned(count);
    backend_->silu_mul(da.as<float>(), db.as<float>(), out.as<float>(), count);
    for (size_t i = 0; i < count; ++i) {
      const double g = static_cast<double>(a[i] + b[i]);
      want[i] = g / (1 + std::exp(-g)) * b[i];
    }
    EXPECT_TRUE(all_near(to_host(out, count), want, 1e-6, 1e-5)) << "silu_mul";
  }
}

TEST_F(BackendOps, RotaryRotatesHalvesByFloat32Angle) {
  for (int head_dim : {64, 80, 128}) {
    for (int rotary_dim : {head_dim, head_dim / 2}) {
      for (int n : {1, 3, 17}) {
        SCOPED_TRACE("head_dim=" + std::to_string(head_dim) + " rotary_dim=" + std::to_string(rotary_dim) +
                     " n=" + std::to_string(n));
        const int heads = 3;
        const int64_t stride = heads * head_dim + 5;  // e.g. q inside a fused qkv row
        auto x = random_floats(static_cast<size_t>(n * stride));
        std::vector<int32_t> pos(static_cast<size_t>(n));
        for (auto& p : pos) p = random_int(0, 4095);
        pos[0] = 0;
        std::vector<float> inv_freq(static_cast<size_t>(rotary_dim / 2));
        for (int j = 0; j < rotary_dim / 2; ++j)
          inv_freq[j] = static_cast<float>(1.0 / std::pow(10000.0, 2.0 * j / rotary_dim));
        DeviceBuffer dx = to_device(x), dp = to_device(pos), df = to_device(inv_freq);
        backend_->rotary(dx.as<float>(), n, heads, head_dim, rotary_dim, stride, dp.as<int32_t>(),
                         df.as<float>());
        std::vector<double> want(x.begin(), x.end());
        const int half = rotary_dim / 2;
        for (int r = 0; r < n; ++r)
          for (int h = 0; h < heads; ++h)
            for (int j = 0; j < half; ++j) {
              const double a = static_cast<float>(pos[r]) * inv_freq[j];  // float32 product
              const size_t e = static_cast<size_t>(r * stride + h * head_dim + j);
              want[e] = x[e] * std::cos(a) - x[e + half] * std::sin(a);
              want[e + half] = x[e + half] * std::cos(a) + x[e] * std::sin(a);
            }
        EXPECT_TRUE(all_near(to_host(dx, x.size()), want, 2e-6, 1e-5));
      }
    }
  }
}

TEST_F(BackendOps, GatherRows) {
  const int dim = 13, rows_in = 20, n = 6;
  const auto x = random_floats(static_cast<size_t>(rows_in * dim));
  const std::vector<int32_t> rows = {19, 0, 7, 7, 3, 12};
  DeviceBuffer dx = to_device(x), dr = to_device(rows), out = poisoned(n * dim);
  backend_->gather_rows(dx.as<float>(), dim, dr.as<int32_t>(), n, out.as<float>());
  std::vector<double> want(static_cast<size_t>(n * dim));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < dim; ++j) want[i * dim + j] = x[rows[i] * dim + j];
  EXPECT_TRUE(all_near(to_host(out, want.size()), want, 0, 0));
}

TEST_F(BackendOps, MemoryRoundTripsAndNames) {
  const auto a = random_floats(1000);
  DeviceBuffer da = to_device(a), db(*backend_, a.size() * sizeof(float));
  backend_->copy(db.get(), da.get(), a.size() * sizeof(float));
  std::vector<double> want(a.begin(), a.end());
  EXPECT_TRUE(all_near(to_host(db, a.size()), want, 0, 0));
  EXPECT_NE(backend_->name().find(device()), std::string::npos) << backend_->name();
  EXPECT_EQ(backend_->is_cuda(), device() == "cuda");
  EXPECT_THROW(make_backend("tpu", BackendOptions{}), std::runtime_error);
}

}  // namespace
}  // namespace lmserve::kernels::test
