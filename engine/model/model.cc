// The forward pass of a pre-norm decoder-only transformer, one step over a batch of
// sequence chunks sharing the paged KV cache. Reads like the reference formulas:
//
//   x = embed(tokens) (+ embed_positions(positions))            GPT-2 adds learned positions
//   for each layer:
//     h = norm(x)                                               LayerNorm or RMSNorm
//     q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ (+ biases); rope(q, k)       RoPE only without learned positions
//     cache[k, v]; a = softmax(q·Kᵀ/√d)·V over the cached prefix
//     x += a·Woᵀ (+ bo)
//     h = norm(x)
//     x += down(act(h))                                         gelu_new(h·W1ᵀ+b) or silu(gate)·up
//   out = final_norm(x)[rows that want outputs];  logits = out·Eᵀ
//
// Residual adds are fused into the following norm (Backend::add_norm), so each layer
// reads the residual stream twice. Nothing here knows which device runs it.
#include "engine/model/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/model/families/family.h"
#include "engine/model/safetensors.h"

namespace lmserve::engine {

using kernels::DeviceBuffer;
using kernels::DType;

struct Model::Checkpoint {
  SafetensorsCheckpoint files;
};

// Per-step buffers, grown on demand and reused across steps (stable pointers also let a
// backend replay captured work).
struct Model::Scratch {
  DeviceBuffer x, h, q, k, v, attn, delta, gate, up, out_hidden, logits;
  DeviceBuffer ids, positions, slots, query_start, context_lens, block_tables, output_rows;
  int token_capacity = 0;
};

namespace {

// The dtype weight matrices are held in: an explicit choice, else the stored dtype on
// CPU (no copy: the kernels widen 16-bit weights) and 16-bit on CUDA.
DType choose_matrix_dtype(const std::string& requested, DType stored, bool is_cuda) {
  if (!requested.empty() && requested != "auto") {
    DType t;
    if (!kernels::parse_dtype(requested, &t)) {
      throw std::runtime_error("--dtype: unknown dtype '" + requested + "' (expected auto, f32, f16 or bf16)");
    }
    return t;
  }
  if (is_cuda && stored == DType::F32) return DType::F16;
  return stored;
}

template <typename T>
void upload_vector(kernels::Backend& backend, DeviceBuffer& buffer, const std::vector<T>& values) {
  buffer.reserve(backend, std::max<size_t>(values.size(), 1) * sizeof(T));
  if (!values.empty()) backend.upload(buffer.get(), values.data(), values.size() * sizeof(T));
}

}  // namespace

Model::Model(ModelConfig config, kernels::Backend& backend)
    : config_(std::move(config)), backend_(backend), scratch_(std::make_unique<Scratch>()) {}

Model::~Model() {
  if (kv_allocated_) backend_.release_kv_cache();
  release_model_weights(weights_, backend_);
}

std::unique_ptr<Model> Model::load(const std::string& dir, kernels::Backend& backend,
                                   const LoadOptions& options) {
  ModelConfig config = load_model_config(dir);
  std::unique_ptr<Model> model(new Model(std::move(config), backend));
  model->checkpoint_ = std::make_unique<Checkpoint>(Checkpoint{SafetensorsCheckpoint::open(dir)});
  const SafetensorsCheckpoint& files = model->checkpoint_->files;
  model->matrix_dtype_ =
      choose_matrix_dtype(options.dtype, files.dominant_dtype(), backend.is_cuda());
  model->weights_ = load_model_weights(files, model->config_, backend, model->matrix_dtype_);
  for (const std::string& name : files.names()) model->parameter_count_ += files.get(name).numel();
  model->weight_bytes_ = files.total_bytes();

  if (!model->config_.learned_positions) {
    const auto& inv_freq = model->config_.rope_inv_freq;
    if (inv_freq.empty()) throw std::runtime_error(dir + "/config.json: RoPE model without inverse frequencies");
    upload_vector(backend, model->inv_freq_buffer_, inv_freq);
    model->inv_freq_ = model->inv_freq_buffer_.as<float>();
  }
  // The CPU backend aliases the mapped file; other backends hold their own copy, so the
  // mapping can go once the weights are uploaded.
  if (backend.is_cuda()) model->checkpoint_.reset();
  return model;
}

size_t Model::kv_bytes_per_token() const {
  return static_cast<size_t>(config_.num_layers) * 2 * config_.kv_dim() * sizeof(float);
}

void Model::allocate_kv_cache(int num_blocks, int block_size) {
  if (kv_allocated_) backend_.release_kv_cache();
  kernels::KvCacheShape shape;
  shape.num_layers = config_.num_layers;
  shape.num_blocks = num_blocks;
  shape.block_size = block_size;
  shape.num_kv_heads = config_.num_kv_heads;
  shape.head_dim = config_.head_dim;
  backend_.allocate_kv_cache(shape);
  kv_block_size_ = block_size;
  kv_allocated_ = true;
}

void Model::copy_kv_blocks(std::span<const BlockCopy> copies) {
  if (!copies.empty()) backend_.copy_kv_blocks(copies);
}

void Model::reserve_scratch(int n, int num_seqs, int max_blocks) {
  Scratch& s = *scratch_;
  const size_t f = sizeof(float);
  const size_t i32 = sizeof(int32_t);
  if (n > s.token_capacity) {
    const size_t rows = static_cast<size_t>(n);
    s.x.reserve(backend_, rows * config_.hidden_size * f);
    s.h.reserve(backend_, rows * config_.hidden_size * f);
    s.delta.reserve(backend_, rows * config_.hidden_size * f);
    s.q.reserve(backend_, rows * config_.q_dim() * f);
    s.k.reserve(backend_, rows * config_.kv_dim() * f);
    s.v.reserve(backend_, rows * config_.kv_dim() * f);
    s.attn.reserve(backend_, rows * config_.q_dim() * f);
    s.gate.reserve(backend_, rows * config_.intermediate_size * f);
    s.up.reserve(backend_, rows * config_.intermediate_size * f);
    s.out_hidden.reserve(backend_, rows * config_.hidden_size * f);
    s.ids.reserve(backend_, rows * i32);
    s.positions.reserve(backend_, rows * i32);
    s.slots.reserve(backend_, rows * i32);
    s.output_rows.reserve(backend_, rows * i32);
    s.token_capacity = n;
  }
  s.query_start.reserve(backend_, static_cast<size_t>(num_seqs + 1) * i32);
  s.context_lens.reserve(backend_, static_cast<size_t>(num_seqs) * i32);
  s.block_tables.reserve(backend_, static_cast<size_t>(num_seqs) * std::max(max_blocks, 1) * i32);
}

// Flattens the chunks into the step's token arrays and attention metadata, checks them
// (a bad id or position must fail here, not as an out-of-bounds read in a kernel), and
// uploads them.
void Model::upload_batch(std::span<const SequenceChunk> chunks) {
  const int bs = kv_block_size_;
  std::vector<int32_t> ids, positions, slots, query_start{0}, context_lens, output_rows;
  int max_blocks = 0, max_context = 0, max_query = 0;
  for (const SequenceChunk& c : chunks) {
    max_blocks = std::max(max_blocks, static_cast<int>(c.block_table.size()));
  }
  std::vector<int32_t> tables(chunks.size() * std::max(max_blocks, 1), 0);
  for (size_t s = 0; s < chunks.size(); ++s) {
    const SequenceChunk& c = chunks[s];
    const int len = static_cast<int>(c.tokens.size());
    const int context = c.start_pos + len;
    if (len == 0) throw std::invalid_argument("forward: a sequence chunk has no tokens");
    if (c.start_pos < 0) throw std::invalid_argument("forward: negative start position");
    if (static_cast<int64_t>(c.block_table.size()) * bs < context) {
      throw std::invalid_argument("forward: block table covers " + std::to_string(c.block_table.size() * bs) +
                                  " positions, the chunk needs " + std::to_string(context));
    }
    if (config_.learned_positions && context > config_.max_position_embeddings) {
      throw std::invalid_argument("forward: position " + std::to_string(context - 1) +
                                  " is past the model's " + std::to_string(config_.max_position_embeddings) +
                                  " learned positions");
    }
    for (int i = 0; i < len; ++i) {
      const int32_t id = c.tokens[i];
      if (id < 0 || id >= config_.vocab_size) {
        throw std::invalid_argument("forward: token id " + std::to_string(id) + " is outside the vocabulary (" +
                                    std::to_string(config_.vocab_size) + ")");
      }
      const int pos = c.start_pos + i;
      const int32_t block = c.block_table[pos / bs];
      if (block < 0) throw std::invalid_argument("forward: negative KV block id");
      ids.push_back(id);
      positions.push_back(pos);
      slots.push_back(block * bs + pos % bs);
    }
    const int first = query_start.back();
    if (c.outputs == OutputRows::All) {
      for (int i = 0; i < len; ++i) output_rows.push_back(first + i);
    } else if (c.outputs == OutputRows::Last) {
      output_rows.push_back(first + len - 1);
    }
    query_start.push_back(first + len);
    context_lens.push_back(context);
    std::copy(c.block_table.begin(), c.block_table.end(), tables.begin() + s * std::max(max_blocks, 1));
    max_context = std::max(max_context, context);
    max_query = std::max(max_query, len);
  }

  const int n = static_cast<int>(ids.size());
  reserve_scratch(n, static_cast<int>(chunks.size()), max_blocks);
  Scratch& s = *scratch_;
  backend_.upload(s.ids.get(), ids.data(), ids.size() * sizeof(int32_t));
  backend_.upload(s.positions.get(), positions.data(), positions.size() * sizeof(int32_t));
  backend_.upload(s.slots.get(), slots.data(), slots.size() * sizeof(int32_t));
  backend_.upload(s.query_start.get(), query_start.data(), query_start.size() * sizeof(int32_t));
  backend_.upload(s.context_lens.get(), context_lens.data(), context_lens.size() * sizeof(int32_t));
  backend_.upload(s.block_tables.get(), tables.data(), tables.size() * sizeof(int32_t));
  if (!output_rows.empty()) {
    backend_.upload(s.output_rows.get(), output_rows.data(), output_rows.size() * sizeof(int32_t));
  }

  batch_ = kernels::AttentionBatch{};
  batch_.num_tokens = n;
  batch_.num_seqs = static_cast<int>(chunks.size());
  batch_.max_blocks_per_seq = std::max(max_blocks, 1);
  batch_.max_context_len = max_context;
  batch_.max_query_len = max_query;
  batch_.positions = s.positions.as<int32_t>();
  batch_.slot_mapping = s.slots.as<int32_t>();
  batch_.query_start = s.query_start.as<int32_t>();
  batch_.context_lens = s.context_lens.as<int32_t>();
  batch_.block_tables = s.block_tables.as<int32_t>();
  num_output_rows_ = static_cast<int>(output_rows.size());
}

// h (normed input) → q, k, v → rope → cache → attention → delta = a·Woᵀ.
void Model::attention_block(int layer, int n) {
  const LayerWeights& w = weights_.layers[layer];
  Scratch& s = *scratch_;
  float* q = s.q.as<float>();
  float* k = s.k.as<float>();
  float* v = s.v.as<float>();
  backend_.linear(s.h.as<float>(), n, w.q, w.q_bias, q);
  backend_.linear(s.h.as<float>(), n, w.k, w.k_bias, k);
  backend_.linear(s.h.as<float>(), n, w.v, w.v_bias, v);
  if (!config_.learned_positions) {
    const int rotary_dim = static_cast<int>(config_.rope_inv_freq.size()) * 2;
    backend_.rotary(q, n, config_.num_heads, config_.head_dim, rotary_dim, config_.q_dim(),
                    batch_.positions, inv_freq_);
    backend_.rotary(k, n, config_.num_kv_heads, config_.head_dim, rotary_dim, config_.kv_dim(),
                    batch_.positions, inv_freq_);
  }
  backend_.kv_write(layer, k, config_.kv_dim(), v, config_.kv_dim(), batch_);
  const float scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim));
  backend_.attention(layer, q, config_.q_dim(), config_.num_heads, scale, batch_, s.attn.as<float>());
  backend_.linear(s.attn.as<float>(), n, w.o, w.o_bias, s.delta.as<float>());
}

// h (normed input) → delta = down(act(h)).
void Model::mlp_block(int layer, int n) {
  const LayerWeights& w = weights_.layers[layer];
  Scratch& s = *scratch_;
  const size_t count = static_cast<size_t>(n) * config_.intermediate_size;
  float* up = s.up.as<float>();
  backend_.linear(s.h.as<float>(), n, w.up, w.up_bias, up);
  if (config_.activation == Activation::GeluNew) {
    backend_.gelu_new(up, count);
  } else {
    float* gate = s.gate.as<float>();
    backend_.linear(s.h.as<float>(), n, w.gate, nullptr, gate);
    backend_.silu_mul(gate, up, up, count);
  }
  backend_.linear(up, n, w.down, w.down_bias, s.delta.as<float>());
}

int Model::forward(std::span<const SequenceChunk> chunks) {
  if (!kv_allocated_) throw std::logic_error("Model::forward before allocate_kv_cache");
  if (chunks.empty()) return 0;
  upload_batch(chunks);
  const int n = batch_.num_tokens;
  const int hidden = config_.hidden_size;
  const float eps = config_.norm_eps;
  const kernels::NormKind norm = config_.norm;
  Scratch& s = *scratch_;
  float* x = s.x.as<float>();
  float* h = s.h.as<float>();
  float* delta = s.delta.as<float>();

  backend_.embedding(weights_.embed_tokens, s.ids.as<int32_t>(), n, x, false);
  if (config_.learned_positions) {
    backend_.embedding(weights_.embed_positions, batch_.positions, n, x, true);
  }
  for (int layer = 0; layer < config_.num_layers; ++layer) {
    const LayerWeights& w = weights_.layers[layer];
    // The previous layer's MLP output joins the residual stream here.
    backend_.add_norm(norm, x, layer == 0 ? nullptr : delta, w.attn_norm_weight, w.attn_norm_bias, eps, n,
                      hidden, h);
    attention_block(layer, n);
    backend_.add_norm(norm, x, delta, w.mlp_norm_weight, w.mlp_norm_bias, eps, n, hidden, h);
    mlp_block(layer, n);
  }
  backend_.add_norm(norm, x, config_.num_layers > 0 ? delta : nullptr, weights_.final_norm_weight,
                    weights_.final_norm_bias, eps, n, hidden, h);
  if (num_output_rows_ > 0) {
    backend_.gather_rows(h, hidden, s.output_rows.as<int32_t>(), num_output_rows_, s.out_hidden.as<float>());
  }
  return num_output_rows_;
}

void Model::logits(int begin, int end, float* host_out) {
  if (begin < 0 || end > num_output_rows_ || begin > end) {
    throw std::out_of_range("Model::logits: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of " + std::to_string(num_output_rows_));
  }
  const int rows = end - begin;
  if (rows == 0) return;
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  scratch_->logits.reserve(backend_, static_cast<size_t>(rows) * vocab * sizeof(float));
  const float* hidden = scratch_->out_hidden.as<float>() + static_cast<size_t>(begin) * config_.hidden_size;
  backend_.linear(hidden, rows, weights_.lm_head, nullptr, scratch_->logits.as<float>());
  backend_.download(host_out, scratch_->logits.get(), static_cast<size_t>(rows) * vocab * sizeof(float));
}

void Model::hidden_states(int begin, int end, float* host_out) {
  if (begin < 0 || end > num_output_rows_ || begin > end) {
    throw std::out_of_range("Model::hidden_states: rows out of range");
  }
  const size_t width = static_cast<size_t>(config_.hidden_size);
  backend_.download(host_out, scratch_->out_hidden.as<float>() + begin * width,
                    static_cast<size_t>(end - begin) * width * sizeof(float));
}

}  // namespace lmserve::engine
