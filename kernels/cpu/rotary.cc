// rotary(): Hugging Face rotate_half RoPE, with the angle computed exactly as HF does
// (float32 position × float32 inverse frequency), so logits match the reference.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/ops.h"

namespace lmserve::kernels::cpu {

void rotary(ThreadPool& pool, float* x, int n, int num_heads, int head_dim, int rotary_dim,
            int64_t row_stride, const int32_t* positions, const float* inv_freq) {
  if (n <= 0 || num_heads <= 0) return;
  if (rotary_dim <= 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim)
    throw std::runtime_error("rotary: rotary_dim " + std::to_string(rotary_dim) +
                             " must be even and at most head_dim " + std::to_string(head_dim));
  const int half = rotary_dim / 2;
  const int64_t row_work = static_cast<int64_t>(num_heads) * rotary_dim + 8 * half;  // + sin/cos
  pool.parallel_for(n, std::max<int64_t>(1, 16 * 1024 / row_work), [&](int64_t b, int64_t e) {
    std::vector<float> cos_a(half), sin_a(half);
    for (int64_t r = b; r < e; ++r) {
      const float pos = static_cast<float>(positions[r]);
      for (int j = 0; j < half; ++j) {
        const float a = pos * inv_freq[j];
        cos_a[j] = std::cos(a);
        sin_a[j] = std::sin(a);
      }
      float* row = x + r * row_stride;
      for (int h = 0; h < num_heads; ++h) {
        float* v = row + static_cast<int64_t>(h) * head_dim;
        for (int j = 0; j < half; ++j) {
          const float x0 = v[j];
          const float x1 = v[j + half];
          v[j] = x0 * cos_a[j] - x1 * sin_a[j];
          v[j + half] = x1 * cos_a[j] + x0 * sin_a[j];
        }
      }
    }
  });
}

}  // namespace lmserve::kernels::cpu
