// Shared plumbing of the engine-backed subcommands (generate, score, embed): parsing
// id lists, loading the tokenizer when the model folder has one, running one request
// through an Engine sized for it, and turning engine errors into one-line messages
// that name the command-line option at fault.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/token_ids.h"
#include "engine/engine.h"
#include "kernels/backend.h"

#ifdef LMSERVE_HAVE_TOKENIZER
#include "tokenizer/tokenizer.h"
#endif

namespace lmserve::cli {


// The command-line option for an engine parameter name ("max_tokens" → "--max-tokens").
inline std::string option_for(const std::string& param, const std::string& prompt_option) {
  if (param == "prompt") return prompt_option;
  if (param == "num_beams") return "--beams";
  if (param == "eos_token_ids") return "--eos-token-id";
  std::string flag = "--" + param;
  for (char& c : flag) if (c == '_') c = '-';
  return flag;
}

#ifdef LMSERVE_HAVE_TOKENIZER
using TokenizerPtr = std::shared_ptr<const tokenizer::Tokenizer>;
// The model folder's tokenizer, or null when it has no tokenizer.json.
inline TokenizerPtr load_tokenizer_if_present(const std::string& model_dir) {
  if (!std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json")) return nullptr;
  return tokenizer::Tokenizer::from_dir(model_dir);
}
#endif

inline std::string read_text_file(const std::string& path, const std::string& option) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(option + ": cannot open " + path);
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  return text;
}

struct EngineRun {
  std::unique_ptr<kernels::Backend> backend;  // declared first: outlives the engine
  std::unique_ptr<engine::Engine> engine;
};

// An engine for one request of `seats` sequences needing about `tokens_per_seat` new
// KV slots each on top of a shared `prompt_tokens`.
inline EngineRun make_engine(const std::string& model_dir, const std::string& device, int threads,
                             int seats, int prompt_tokens, int tokens_per_seat) {
  if (threads < 0) throw std::invalid_argument("--threads must be >= 0");
  EngineRun run;
  const std::string dev = device.empty() ? kernels::default_device() : device;
  if (dev != "cpu" && dev != "cuda") throw std::invalid_argument("--device must be cpu or cuda, got '" + dev + "'");
  run.backend = kernels::make_backend(dev, {.threads = threads});
  auto model = engine::Model::load(model_dir, *run.backend);
  prompt_tokens = std::min(prompt_tokens, model->config().max_position_embeddings);
  engine::EngineOptions o;
  o.max_num_seqs = std::max(seats, 1);
  o.max_num_batched_tokens = std::max(2048, o.max_num_seqs);
  o.max_queue = 1;
  const int bs = o.block_size;
  // Forked sequences share the prompt; each copies the last partial block and adds its own.
  const int64_t per_seat_blocks = tokens_per_seat > 0 ? (tokens_per_seat + bs - 1) / bs + 1 : 0;
  const int64_t prompt_blocks = (prompt_tokens + bs - 1) / bs + 1;
  o.kv_cache_tokens = static_cast<int>(
      std::min<int64_t>((prompt_blocks + o.max_num_seqs * per_seat_blocks) * bs, INT32_MAX / 2));
  run.engine = std::make_unique<engine::Engine>(std::move(model), o);
  return run;
}

// Submits one request and waits for its final output; `on_output` runs on the engine
// thread for every output. Throws (naming the option) when the engine refuses it or
// reports an error.
inline void run_request(engine::Engine& eng, engine::Request request, const std::string& prompt_option,
                        std::function<void(engine::RequestOutput&&)> on_output,
                        const std::map<std::string, std::string>& option_overrides = {}) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::optional<std::string> error;
  request.on_output = [&](engine::RequestOutput&& o) {
    const bool finished = o.finished;
    std::optional<std::string> err = o.error;
    on_output(std::move(o));
    if (finished) {
      std::lock_guard lock(m);
      done = true;
      error = err;
      cv.notify_all();
    }
  };
  engine::SubmitResult s = eng.submit(std::move(request));
  if (s.status == engine::SubmitStatus::Invalid) {
    auto it = option_overrides.find(s.param);
    const std::string option = it != option_overrides.end() ? it->second : option_for(s.param, prompt_option);
    throw std::invalid_argument(option + ": " + s.message);
  }
  if (s.status != engine::SubmitStatus::Accepted) throw std::runtime_error(s.message);
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return done; });
  if (error) throw std::runtime_error(*error);
}

}  // namespace lmserve::cli
