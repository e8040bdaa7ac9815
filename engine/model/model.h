// Model: a loaded decoder-only transformer and its forward pass over a batch of
// sequences that share one paged KV cache.
//
// Owns: the weights on the backend, the KV storage (through the backend), and the
// per-step scratch buffers. Does not own: which block belongs to which sequence
// (engine/kv), or what to do with the outputs (sampling, scoring, pooling).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/kv/block_table.h"
#include "engine/model/config.h"
#include "engine/model/weights.h"
#include "kernels/backend.h"

namespace lmserve::engine {

struct LoadOptions {
  // Dtype to hold weight matrices in; empty = as stored (CPU), or the stored 16-bit
  // dtype / f16 for f32 checkpoints (CUDA).
  std::string dtype;
};

// Which of a chunk's positions produce outputs (final hidden states, then logits).
enum class OutputRows : uint8_t { None, Last, All };

// One sequence's share of a step: `tokens` are new, at positions start_pos.. ;
// positions before start_pos are already in the cache. block_table covers every
// position up to start_pos + tokens.size() (slots reserved by BlockTable::append_slots).
struct SequenceChunk {
  std::span<const int32_t> tokens;
  int start_pos = 0;
  std::span<const int32_t> block_table;
  OutputRows outputs = OutputRows::Last;
};

class Model {
 public:
  // Loads <dir>/config.json and the safetensors weights onto `backend`.
  static std::unique_ptr<Model> load(const std::string& dir, kernels::Backend& backend,
                                     const LoadOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  kernels::Backend& backend() const { return backend_; }
  kernels::DType matrix_dtype() const { return matrix_dtype_; }
  int64_t parameter_count() const { return parameter_count_; }
  size_t weight_bytes() const { return weight_bytes_; }
  // Bytes of KV cache one token takes (all layers, keys and values, float32).
  size_t kv_bytes_per_token() const;

  // Allocates the backend's KV storage; must be called before forward().
  void allocate_kv_cache(int num_blocks, int block_size);
  int kv_block_size() const { return kv_block_size_; }
  // Copy-on-write copies requested by BlockTable::append_slots; call before forward().
  void copy_kv_blocks(std::span<const BlockCopy> copies);

  // Runs one step over the chunks and returns the number of output rows: the final
  // (normed) hidden states of the requested positions, chunk by chunk, in position
  // order. They stay on the backend until the next forward().
  int forward(std::span<const SequenceChunk> chunks);

  // Logits of output rows [begin, end) of the last forward(), into host memory
  // [end - begin, vocab_size]. Callers take few rows at a time so that scoring a long
  // prompt never holds a [tokens × vocab] matrix.
  void logits(int begin, int end, float* host_out);
  // Final hidden states of output rows [begin, end) into host memory [end - begin, hidden].
  void hidden_states(int begin, int end, float* host_out);

 private:
  Model(ModelConfig config, kernels::Backend& backend);
  void reserve_scratch(int num_tokens, int num_seqs, int max_blocks);
  void upload_batch(std::span<const SequenceChunk> chunks);
  void attention_block(int layer, int n);
  void mlp_block(int layer, int n);

  struct Scratch;
  struct Checkpoint;

  ModelConfig config_;
  kernels::Backend& backend_;
  kernels::DType matrix_dtype_ = kernels::DType::F32;
  std::unique_ptr<Checkpoint> checkpoint_;  // keeps the mmapped weights alive (CPU aliases them)
  ModelWeights weights_;
  int64_t parameter_count_ = 0;
  size_t weight_bytes_ = 0;
  int kv_block_size_ = 0;
  bool kv_allocated_ = false;
  std::unique_ptr<Scratch> scratch_;
  const float* inv_freq_ = nullptr;  // [head_dim/2] on the backend (RoPE models)
  kernels::DeviceBuffer inv_freq_buffer_;
  kernels::AttentionBatch batch_;
  int num_output_rows_ = 0;
};

}  // namespace lmserve::engine
