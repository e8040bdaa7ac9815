// `lmserve bench`: engine throughput on one model, load time excluded.
//
// Prefill: `batch` prompts of `prompt_tokens` random ids, fed in steps of at most
// `max_batched_tokens` tokens. Decode: `gen_tokens` steps, each one new token for
// every sequence, including the logits and a greedy pick (what a real decode step does).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"
#include "engine/model/model.h"
#include "kernels/backend.h"

namespace lmserve::cli {
namespace {

struct BenchOptions {
  std::string model;
  int prompt_tokens = 512;
  int gen_tokens = 128;
  int batch = 1;
  int threads = 0;
  int max_batched_tokens = 2048;
  std::string device;
  std::string dtype;
  bool json = false;
};

using Seconds = std::chrono::duration<double>;

int argmax(const float* row, int n) { return static_cast<int>(std::max_element(row, row + n) - row); }

void run_bench(const BenchOptions& o) {
  if (o.prompt_tokens < 1 || o.gen_tokens < 1 || o.batch < 1) {
    throw std::invalid_argument("--prompt-tokens, --gen-tokens and --batch must be at least 1");
  }
  const std::string device = o.device.empty() ? kernels::default_device() : o.device;
  auto backend = kernels::make_backend(device, {o.threads, 0});
  auto model = engine::Model::load(o.model, *backend, {o.dtype});
  const auto& config = model->config();
  const int context = o.prompt_tokens + o.gen_tokens;
  if (context > config.max_position_embeddings) {
    throw std::invalid_argument("--prompt-tokens + --gen-tokens = " + std::to_string(context) +
                                " exceeds the model's " + std::to_string(config.max_position_embeddings) +
                                " positions");
  }
  const int block_size = 16;
  const int blocks_per_seq = (context + block_size - 1) / block_size;
  engine::BlockPool pool(blocks_per_seq * o.batch, block_size);
  model->allocate_kv_cache(pool.num_blocks(), block_size);

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, config.vocab_size - 1);
  std::vector<std::vector<int32_t>> seqs(o.batch);
  std::vector<engine::BlockTable> tables;
  std::vector<engine::BlockCopy> copies;
  for (auto& s : seqs) {
    for (int i = 0; i < o.prompt_tokens; ++i) s.push_back(pick(rng));
    tables.emplace_back(&pool);
    tables.back().append_slots(context, &copies);
  }

  // Prefill, chunked the way the scheduler would.
  std::vector<float> logits(static_cast<size_t>(o.batch) * config.vocab_size);
  const auto prefill_start = std::chrono::steady_clock::now();
  for (int b = 0; b < o.batch; ++b) {
    for (int start = 0; start < o.prompt_tokens; start += o.max_batched_tokens) {
      const int len = std::min(o.max_batched_tokens, o.prompt_tokens - start);
      const bool last = start + len == o.prompt_tokens;
      engine::SequenceChunk chunk{std::span<const int32_t>(seqs[b]).subspan(start, len), start,
                                  tables[b].blocks(), last ? engine::OutputRows::Last : engine::OutputRows::None};
      if (model->forward(std::span<const engine::SequenceChunk>(&chunk, 1)) == 1) {
        model->logits(0, 1, logits.data() + static_cast<size_t>(b) * config.vocab_size);
      }
    }
  }
  backend->synchronize();
  const double prefill_s = Seconds(std::chrono::steady_clock::now() - prefill_start).count();

  // Decode: every sequence advances one token per step.
  std::vector<int32_t> next(o.batch);
  for (int b = 0; b < o.batch; ++b) next[b] = argmax(logits.data() + static_cast<size_t>(b) * config.vocab_size, config.vocab_size);
  std::vector<engine::SequenceChunk> chunks(o.batch);
  const auto decode_start = std::chrono::steady_clock::now();
  for (int step = 0; step < o.gen_tokens; ++step) {
    for (int b = 0; b < o.batch; ++b) {
      chunks[b] = {std::span<const int32_t>(&next[b], 1), o.prompt_tokens + step, tables[b].blocks(),
                   engine::OutputRows::Last};
    }
    const int rows = model->forward(chunks);
    model->logits(0, rows, logits.data());
    for (int b = 0; b < o.batch; ++b) {
      next[b] = argmax(logits.data() + static_cast<size_t>(b) * config.vocab_size, config.vocab_size);
    }
  }
  const double decode_s = Seconds(std::chrono::steady_clock::now() - decode_start).count();

  const double prefill_tps = static_cast<double>(o.batch) * o.prompt_tokens / prefill_s;
  const double decode_tps = static_cast<double>(o.batch) * o.gen_tokens / decode_s;
  if (o.json) {
    nlohmann::json out = {{"model", o.model},
                          {"device", backend->name()},
                          {"dtype", kernels::dtype_name(model->matrix_dtype())},
                          {"parameters", model->parameter_count()},
                          {"weight_bytes", model->weight_bytes()},
                          {"batch", o.batch},
                          {"prompt_tokens", o.prompt_tokens},
                          {"gen_tokens", o.gen_tokens},
                          {"prefill_seconds", prefill_s},
                          {"decode_seconds", decode_s},
                          {"prefill_tokens_per_s", prefill_tps},
                          {"decode_tokens_per_s", decode_tps}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("model %s on %s (%s weights, %.1fM parameters)\n", o.model.c_str(), backend->name().c_str(),
                kernels::dtype_name(model->matrix_dtype()), model->parameter_count() / 1e6);
    std::printf("batch %d: prefill %d tokens/seq: %.1f tokens/s; decode %d tokens/seq: %.1f tokens/s\n", o.batch,
                o.prompt_tokens, prefill_tps, o.gen_tokens, decode_tps);
  }
}

void register_bench(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prefill and decode throughput (model load excluded)");
  cmd->add_option("--model", options->model, "Hugging Face model folder")->required();
  cmd->add_option("--prompt-tokens", options->prompt_tokens, "Prompt length per sequence")->capture_default_str();
  cmd->add_option("--gen-tokens", options->gen_tokens, "Tokens decoded per sequence")->capture_default_str();
  cmd->add_option("--batch", options->batch, "Sequences decoded together")->capture_default_str();
  cmd->add_option("--threads", options->threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--max-batched-tokens", options->max_batched_tokens, "Prefill chunk size")->capture_default_str();
  cmd->add_option("--device", options->device, "cpu or cuda (default: cuda when present)");
  cmd->add_option("--dtype", options->dtype, "Weight dtype: auto, f32, f16, bf16");
  cmd->add_flag("--json", options->json, "Print one JSON object");
  cmd->callback([options] { run_bench(*options); });
}

LMSERVE_COMMAND(register_bench);

}  // namespace
}  // namespace lmserve::cli
