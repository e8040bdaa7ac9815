// The CPU ops as free functions over host memory; CpuBackend forwards to them.
// Each validates what it can check cheaply (ids, shapes) and throws std::runtime_error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cpu/simd_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace lmserve::kernels::cpu {

// y[n, w.rows] = x[n, w.cols] · wᵀ (+ bias). `simd` must match w.dtype.
void linear(ThreadPool& pool, const SimdKernels& simd, const float* x, int n,
            const WeightMatrix& w, const float* bias, float* y);

void embedding(ThreadPool& pool, const SimdKernels& simd, const WeightMatrix& table,
               const int32_t* ids, int n, float* out, bool accumulate);

void add_norm(ThreadPool& pool, NormKind kind, float* x, const float* delta, const float* weight,
              const float* bias, float eps, int n, int dim, float* out);

void add(ThreadPool& pool, float* x, const float* y, size_t count);
void gelu_new(ThreadPool& pool, float* x, size_t count);
void silu_mul(ThreadPool& pool, const float* gate, const float* up, float* out, size_t count);

void rotary(ThreadPool& pool, float* x, int n, int num_heads, int head_dim, int rotary_dim,
            int64_t row_stride, const int32_t* positions, const float* inv_freq);

void gather_rows(ThreadPool& pool, const float* x, int dim, const int32_t* rows, int n,
                 float* out);

}  // namespace lmserve::kernels::cpu
