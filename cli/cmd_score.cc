// `lmserve score`: log-probabilities of a text's tokens under the model (perplexity),
// with a sliding window for texts longer than the context.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_cli.h"
#include "engine/scoring/scoring.h"

namespace lmserve::cli {
namespace {

struct ScoreCliOptions {
  std::string model;
  std::string ids;
  std::string text;
  std::string file;
  int top_logprobs = 0;
  int window = 0;
  int stride = 0;
  int threads = 0;
  std::string device;
  bool json = false;
};

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

void run_score(const ScoreCliOptions& o) {
  const int inputs = !o.ids.empty() + !o.text.empty() + !o.file.empty();
  if (inputs != 1) throw std::invalid_argument("--ids, --text, --file: give exactly one");
  std::vector<int32_t> tokens;
  std::string prompt_option = "--ids";
  if (!o.ids.empty()) {
    tokens = parse_ids_csv(o.ids, "--ids");
  } else {
    prompt_option = o.text.empty() ? "--file" : "--text";
#ifdef LMSERVE_HAVE_TOKENIZER
    TokenizerPtr tok = load_tokenizer_if_present(o.model);
    if (!tok) throw std::invalid_argument(prompt_option + " needs " + o.model + "/tokenizer.json (or use --ids)");
    const std::string text = o.text.empty() ? read_text_file(o.file, "--file") : o.text;
    tokens = tok->encode_ids(text, /*add_special_tokens=*/true);
#else
    throw std::invalid_argument(prompt_option + " needs the tokenizer, which this build of lmserve lacks (use --ids)");
#endif
  }
  if (tokens.empty()) throw std::invalid_argument(prompt_option + ": no tokens to score");
  if (o.window < 0) throw std::invalid_argument("--window must be >= 2, got " + std::to_string(o.window));
  if (o.stride < 0) throw std::invalid_argument("--stride must be >= 1, got " + std::to_string(o.stride));

  const int window_tokens = o.window > 0 ? o.window : static_cast<int>(tokens.size());
  EngineRun run = make_engine(o.model, o.device, o.threads, 1, std::min<int>(window_tokens, tokens.size()), 0);
  engine::Request r;
  r.id = "score";
  r.kind = engine::RequestKind::Score;
  r.prompt = tokens;
  r.score = {o.top_logprobs, o.window, o.stride};
  r.stream = false;
  engine::PromptLogprobs lp;
  run_request(*run.engine, std::move(r), prompt_option, [&](engine::RequestOutput&& out) {
    if (out.prompt_logprobs) lp = std::move(*out.prompt_logprobs);
  });
  if (lp.token_logprobs.size() != tokens.size()) throw std::runtime_error("score: the engine returned no log-probabilities");

  engine::ScoreSummary summary;
  nlohmann::json token_logprobs = nlohmann::json::array();
  nlohmann::json top_logprobs = nlohmann::json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!lp.token_logprobs[i]) {
      token_logprobs.push_back(nullptr);
      top_logprobs.push_back(nullptr);
      continue;
    }
    token_logprobs.push_back(*lp.token_logprobs[i]);
    summary.sum_logprob += *lp.token_logprobs[i];
    ++summary.num_scored;
    nlohmann::json top = nlohmann::json::array();
    for (const auto& t : lp.top[i]) top.push_back({{"id", t.id}, {"logprob", t.logprob}});
    top_logprobs.push_back(std::move(top));
  }
  if (o.json) {
    nlohmann::json doc = {{"tokens", tokens},
                          {"token_logprobs", std::move(token_logprobs)},
                          {"top_logprobs", std::move(top_logprobs)},
                          {"sum_logprob", summary.sum_logprob},
                          {"mean_nll", summary.mean_nll()},
                          {"perplexity", number_or_null(summary.perplexity())},
                          {"num_scored", summary.num_scored}};
    std::printf("%s\n", doc.dump().c_str());
  } else {
    std::printf("tokens: %zu  scored: %d\nsum_logprob: %.6f\nmean_nll: %.6f\nperplexity: %.6f\n",
                tokens.size(), summary.num_scored, summary.sum_logprob, summary.mean_nll(),
                summary.perplexity());
  }
}

void register_score(CLI::App& app) {
  auto opts = std::make_shared<ScoreCliOptions>();
  CLI::App* cmd = app.add_subcommand("score", "Log-probabilities and perplexity of a text under the model");
  cmd->add_option("--model", opts->model, "Model folder (config.json + safetensors)")->required();
  cmd->add_option("--ids", opts->ids, "Token ids, comma-separated (no tokenizer needed)");
  cmd->add_option("--text", opts->text, "Text to score (needs tokenizer.json in the model folder)");
  cmd->add_option("--file", opts->file, "File whose text to score");
  cmd->add_option("--top-logprobs", opts->top_logprobs, "Alternatives per position, 0..20");
  cmd->add_option("--window", opts->window, "Sliding window in tokens (default: the model's context)");
  cmd->add_option("--stride", opts->stride, "Window stride (default: window / 2)");
  cmd->add_option("--threads", opts->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--device", opts->device, "cpu or cuda (default: cuda when available)");
  cmd->add_flag("--json", opts->json, "Print one JSON document");
  cmd->callback([opts] { run_score(*opts); });
}

LMSERVE_COMMAND(register_score);

}  // namespace
}  // namespace lmserve::cli
