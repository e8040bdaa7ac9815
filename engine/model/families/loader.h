// Internal to the family loaders: fetches tensors by name with shape checks, hands them
// to the backend, and records what the backend allocated.
#pragma once

#include <string>
#include <vector>

#include "engine/model/families/family.h"

namespace lmserve::engine::families {

class WeightLoader {
 public:
  WeightLoader(const SafetensorsCheckpoint& checkpoint, kernels::Backend& backend,
               kernels::DType matrix_dtype, ModelWeights& out)
      : checkpoint_(checkpoint), backend_(backend), matrix_dtype_(matrix_dtype), out_(out) {}

  // Names are looked up as prefix + name.
  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }
  const std::string& prefix() const { return prefix_; }

  // `shape` is the stored shape; with `transpose` the result is [shape[1], shape[0]].
  kernels::WeightMatrix matrix(const std::string& name, std::vector<int64_t> shape,
                               bool transpose = false) {
    const kernels::HostTensor t = checkpoint_.get(prefix_ + name, shape);
    kernels::WeightMatrix w = backend_.load_matrix(t, matrix_dtype_, transpose);
    out_.owned_matrices.push_back(w);
    return w;
  }
  const float* vector(const std::string& name, int64_t size) {
    const kernels::HostTensor t = checkpoint_.get(prefix_ + name, {size});
    const float* v = backend_.load_vector(t);
    out_.owned_vectors.push_back(v);
    return v;
  }

 private:
  const SafetensorsCheckpoint& checkpoint_;
  kernels::Backend& backend_;
  kernels::DType matrix_dtype_;
  ModelWeights& out_;
  std::string prefix_;
};

// Rows [first, first + count) of `w`, sharing its memory (not owned).
inline kernels::WeightMatrix row_range(const kernels::WeightMatrix& w, int64_t first, int64_t count) {
  kernels::WeightMatrix v = w;
  v.data = static_cast<const uint8_t*>(w.data) +
           first * w.cols * static_cast<int64_t>(kernels::dtype_size(w.dtype));
  v.rows = count;
  return v;
}

// The per-family mappings (gpt2.cc, llama.cc). They fill `out` through the loader.
void load_gpt2(const SafetensorsCheckpoint& checkpoint, const ModelConfig& config,
               WeightLoader& loader, ModelWeights& out);
void load_llama(const SafetensorsCheckpoint& checkpoint, const ModelConfig& config,
                WeightLoader& loader, ModelWeights& out);

}  // namespace lmserve::engine::families
