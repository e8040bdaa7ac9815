// check_model_weights: runs the family loader against a backend that only looks at the
// tensors (shapes are checked by the loader before the backend sees them), so a folder
// can be validated without reading or copying weight bytes.
#include <stdexcept>

#include "engine/model/families/family.h"

namespace lmserve::engine {
namespace {

class ShapeOnlyBackend final : public kernels::Backend {
 public:
  std::string name() const override { return "shape-check"; }
  kernels::WeightMatrix load_matrix(const kernels::HostTensor& t, kernels::DType dtype, bool transpose) override {
    if (t.shape.size() != 2) throw std::logic_error(t.name + ": loader passed a non-matrix");
    return {t.data, dtype, transpose ? t.shape[1] : t.shape[0], transpose ? t.shape[0] : t.shape[1]};
  }
  void release_weight(const kernels::WeightMatrix&) override {}
  // Never dereferenced: the pointer only has to be distinct from null.
  float* load_vector(const kernels::HostTensor& t) override {
    return static_cast<float*>(const_cast<void*>(t.data));
  }
  void release(void*) override {}

  [[noreturn]] static void unused() { throw std::logic_error("shape-check backend runs no ops"); }
  void* allocate(size_t) override { unused(); }
  void upload(void*, const void*, size_t) override { unused(); }
  void download(void*, const void*, size_t) override { unused(); }
  void copy(void*, const void*, size_t) override { unused(); }
  void embedding(const kernels::WeightMatrix&, const int32_t*, int, float*, bool) override { unused(); }
  void linear(const float*, int, const kernels::WeightMatrix&, const float*, float*) override { unused(); }
  void add_norm(kernels::NormKind, float*, const float*, const float*, const float*, float, int, int,
                float*) override { unused(); }
  void add(float*, const float*, size_t) override { unused(); }
  void rotary(float*, int, int, int, int, int64_t, const int32_t*, const float*) override { unused(); }
  void gelu_new(float*, size_t) override { unused(); }
  void silu_mul(const float*, const float*, float*, size_t) override { unused(); }
  void allocate_kv_cache(const kernels::KvCacheShape&) override { unused(); }
  void release_kv_cache() override { unused(); }
  void kv_write(int, const float*, int64_t, const float*, int64_t, const kernels::AttentionBatch&) override {
    unused();
  }
  void attention(int, const float*, int64_t, int, float, const kernels::AttentionBatch&, float*) override {
    unused();
  }
  void copy_kv_blocks(std::span<const std::pair<int32_t, int32_t>>) override { unused(); }
  void gather_rows(const float*, int, const int32_t*, int, float*) override { unused(); }
};

}  // namespace

void check_model_weights(const SafetensorsCheckpoint& checkpoint, const ModelConfig& config) {
  ShapeOnlyBackend backend;
  ModelWeights weights = load_model_weights(checkpoint, config, backend, checkpoint.dominant_dtype());
  release_model_weights(weights, backend);
}

}  // namespace lmserve::engine
