// Shared fixture for the backend op tests: builds the backend named by
// LMSERVE_TEST_DEVICE, moves data to and from it, and draws random inputs from a seed
// that is fresh each run (LMSERVE_TEST_SEED=N repeats one) and printed on failure.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/dtype.h"

#ifndef LMSERVE_TEST_DEVICE
#define LMSERVE_TEST_DEVICE "cpu"
#endif

namespace lmserve::kernels::test {

// A weight matrix held on the host in its stored dtype, with its exact float32 values.
struct HostMatrix {
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
  std::vector<uint16_t> half;  // F16 / BF16 bits
  std::vector<float> full;     // F32 storage
  std::vector<float> values;   // widened, what the kernels must compute with

  const void* data() const {
    return dtype == DType::F32 ? static_cast<const void*>(full.data()) : half.data();
  }
  HostTensor tensor(std::vector<int64_t> shape) const {
    return HostTensor{data(), dtype, std::move(shape), "test.weight"};
  }
};

class BackendTest : public ::testing::Test {
 protected:
  static std::string device() { return LMSERVE_TEST_DEVICE; }

  void SetUp() override {
    if (device() == "cuda" && !cuda_available())
      GTEST_SKIP() << "no CUDA device present: the cuda backend tests are skipped";
    backend_ = make_backend(device(), BackendOptions{});
    if (const char* s = std::getenv("LMSERVE_TEST_SEED"))
      seed_ = static_cast<uint32_t>(std::strtoul(s, nullptr, 10));
    else
      seed_ = std::random_device{}();
    rng_.seed(seed_);
  }

  void TearDown() override {
    if (HasFailure())
      std::cerr << "[ backend " << (backend_ ? backend_->name() : device())
                << " ] reproduce with LMSERVE_TEST_SEED=" << seed_ << "\n";
  }

  std::vector<float> random_floats(size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng_);
    return v;
  }
  int random_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  HostMatrix random_matrix(DType dtype, int64_t rows, int64_t cols, float scale = 1.0f) {
    HostMatrix m;
    m.dtype = dtype;
    m.rows = rows;
    m.cols = cols;
    m.values = random_floats(static_cast<size_t>(rows * cols), -scale, scale);
    if (dtype == DType::F32) {
      m.full = m.values;
      return m;
    }
    m.half.resize(m.values.size());
    for (size_t i = 0; i < m.values.size(); ++i) {
      m.half[i] = dtype == DType::F16 ? f32_to_f16(m.values[i]) : f32_to_bf16(m.values[i]);
      m.values[i] = dtype == DType::F16 ? f16_to_f32(m.half[i]) : bf16_to_f32(m.half[i]);
    }
    return m;
  }

  template <typename T>
  DeviceBuffer to_device(const std::vector<T>& host) {
    DeviceBuffer buf(*backend_, std::max<size_t>(1, host.size()) * sizeof(T));
    if (!host.empty()) backend_->upload(buf.get(), host.data(), host.size() * sizeof(T));
    return buf;
  }
  // A float buffer filled with NaN, so an element the op forgets to write fails.
  DeviceBuffer poisoned(size_t floats) {
    return to_device(std::vector<float>(std::max<size_t>(floats, 1),
                                        std::numeric_limits<float>::quiet_NaN()));
  }
  std::vector<float> to_host(const DeviceBuffer& buf, size_t floats) {
    std::vector<float> out(floats);
    if (floats) backend_->download(out.data(), buf.get(), floats * sizeof(float));
    return out;
  }

  std::unique_ptr<Backend> backend_;
  uint32_t seed_ = 0;
  std::mt19937 rng_;
};

// |got - want| <= atol + rtol·|want|, reporting the first bad element.
inline ::testing::AssertionResult all_near(const std::vector<float>& got,
                                           const std::vector<double>& want, double atol,
                                           double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= atol + rtol * std::fabs(want[i])))
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got[i] << ", want " << want[i] << " (err " << err
             << ", tolerance " << atol + rtol * std::fabs(want[i]) << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace lmserve::kernels::test
