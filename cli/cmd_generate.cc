// `lmserve generate`: greedy decoding, sampling (n samples) or beam search for one
// prompt, through the Engine; stop strings are matched on the detokenized text.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_cli.h"

#ifdef LMSERVE_HAVE_TOKENIZER
#include "engine/text/text_stream.h"
#endif

namespace lmserve::cli {
namespace {

struct GenerateCliOptions {
  std::string model;
  std::string prompt;
  std::string ids;
  int max_tokens = 16;
  engine::SamplingParams params;  // sampling fields are bound directly
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::string stop_token_ids;
  std::optional<int32_t> eos_token_id;
  std::optional<int> beams;
  std::optional<int> num_return;
  std::optional<int> n;
  std::optional<int> logprobs;
  int threads = 0;
  std::string device;
  bool json = false;
};

struct SequenceState {
  std::vector<engine::GeneratedToken> tokens;
  engine::FinishReason reason = engine::FinishReason::None;
  bool stopped_by_string = false;
  float cumulative_logprob = 0.0f;
  std::optional<float> score;
#ifdef LMSERVE_HAVE_TOKENIZER
  std::unique_ptr<text::TextStream> text;
#endif
};

nlohmann::json token_json(const engine::GeneratedToken& t) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& a : t.top) top.push_back({{"id", a.id}, {"logprob", a.logprob}});
  return {{"id", t.id}, {"logprob", t.logprob}, {"top", std::move(top)}};
}

void run_generate(GenerateCliOptions o) {
  if (o.ids.empty() == o.prompt.empty()) throw std::invalid_argument("--prompt, --ids: give exactly one");
  engine::SamplingParams p = o.params;
  p.max_tokens = o.max_tokens;
  p.seed = o.seed;
  if (!o.stop_token_ids.empty()) p.stop_token_ids = parse_ids_csv(o.stop_token_ids, "--stop-token-ids");
  if (o.eos_token_id) p.eos_token_ids = std::vector<int32_t>{*o.eos_token_id};
  if (o.logprobs) p.logprobs = *o.logprobs;
  if (o.beams) {
    if (*o.beams < 1) throw std::invalid_argument("--beams must be >= 1, got " + std::to_string(*o.beams));
    p.use_beam_search = true;
    p.num_beams = *o.beams;
    if (o.n) throw std::invalid_argument("--n: use --num-return with --beams");
    p.n = o.num_return.value_or(1);
  } else {
    if (o.num_return) throw std::invalid_argument("--num-return needs --beams");
    p.n = o.n.value_or(1);
  }

  std::vector<int32_t> prompt;
  std::string prompt_option = "--ids";
#ifdef LMSERVE_HAVE_TOKENIZER
  TokenizerPtr tok = load_tokenizer_if_present(o.model);
#endif
  if (!o.ids.empty()) {
    prompt = parse_ids_csv(o.ids, "--ids");
  } else {
    prompt_option = "--prompt";
#ifdef LMSERVE_HAVE_TOKENIZER
    if (!tok) throw std::invalid_argument("--prompt needs " + o.model + "/tokenizer.json (or use --ids)");
    prompt = tok->encode_ids(o.prompt, /*add_special_tokens=*/true);
#else
    throw std::invalid_argument("--prompt needs the tokenizer, which this build of lmserve lacks (use --ids)");
#endif
  }
  bool have_text = false;
#ifdef LMSERVE_HAVE_TOKENIZER
  have_text = tok != nullptr;
#endif
  if (!o.stop.empty() && !have_text)
    throw std::invalid_argument("--stop needs " + o.model + "/tokenizer.json (use --stop-token-ids with ids)");

  const int seats = p.use_beam_search ? std::max(p.num_beams, 1) : std::max(p.n, 1);
  EngineRun run = make_engine(o.model, o.device, o.threads, seats, static_cast<int>(prompt.size()),
                              std::max(p.max_tokens, 0));
  engine::Engine& eng = *run.engine;
  engine::Request r;
  r.id = "generate";
  r.kind = engine::RequestKind::Generate;
  r.prompt = prompt;
  r.params = p;
  r.stream = true;  // stop strings are checked as tokens arrive
  std::map<int, SequenceState> seqs;
  run_request(eng, std::move(r), prompt_option, [&](engine::RequestOutput&& out) {
    for (engine::SequenceOutput& so : out.sequences) {
      SequenceState& s = seqs[so.index];
#ifdef LMSERVE_HAVE_TOKENIZER
      if (tok && !s.text) s.text = std::make_unique<text::TextStream>(tok, prompt, text::StopOptions{.stop = o.stop});
#endif
      for (engine::GeneratedToken& t : so.new_tokens) {
        if (s.stopped_by_string) break;
        s.tokens.push_back(t);
#ifdef LMSERVE_HAVE_TOKENIZER
        if (s.text && s.text->push(t.id).stopped()) {
          s.stopped_by_string = true;
          s.reason = engine::FinishReason::Stop;
          eng.stop_sequence("generate", so.index);
        }
#endif
      }
      if (s.stopped_by_string) {
        if (!so.beam_score) {  // sampled tokens carry their log-probs: sum the kept ones
          s.cumulative_logprob = 0.0f;
          for (const auto& t : s.tokens) s.cumulative_logprob += t.logprob;
        }
        continue;
      }
      s.cumulative_logprob = so.cumulative_logprob;
      if (so.beam_score) s.score = so.beam_score;
      if (so.finish_reason != engine::FinishReason::None) {
        s.reason = so.finish_reason;
#ifdef LMSERVE_HAVE_TOKENIZER
        if (s.text) s.text->finish();
#endif
      }
    }
  }, p.use_beam_search ? std::map<std::string, std::string>{{"n", "--num-return"}}
                       : std::map<std::string, std::string>{});

  nlohmann::json sequences = nlohmann::json::array();
  for (auto& [index, s] : seqs) {
    nlohmann::json seq;
    std::vector<int32_t> ids;
    for (const auto& t : s.tokens) ids.push_back(t.id);
    seq["ids"] = ids;
#ifdef LMSERVE_HAVE_TOKENIZER
    if (s.text) seq["text"] = s.text->text();
#endif
    seq["finish_reason"] = engine::finish_reason_name(s.reason);
    seq["cumulative_logprob"] = s.cumulative_logprob;
    seq["score"] = s.score ? nlohmann::json(*s.score) : nlohmann::json();
    if (p.logprobs >= 0 && !p.use_beam_search) {
      nlohmann::json lps = nlohmann::json::array();
      for (const auto& t : s.tokens) lps.push_back(token_json(t));
      seq["logprobs"] = std::move(lps);
    }
    sequences.push_back(std::move(seq));
  }
  if (o.json) {
    std::printf("%s\n", nlohmann::json{{"sequences", std::move(sequences)}}.dump().c_str());
    return;
  }
  for (const auto& seq : sequences) {
    std::printf("[%zu] finish_reason=%s cumulative_logprob=%.4f\n", &seq - &sequences[0],
                seq["finish_reason"].get<std::string>().c_str(), seq["cumulative_logprob"].get<float>());
    if (seq.contains("text")) std::printf("%s\n", seq["text"].get<std::string>().c_str());
    else std::printf("%s\n", seq["ids"].dump().c_str());
  }
}

void register_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateCliOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate a continuation (greedy, sampling or beam search)");
  cmd->add_option("--model", o->model, "Model folder (config.json + safetensors)")->required();
  cmd->add_option("--prompt", o->prompt, "Prompt text (needs tokenizer.json in the model folder)");
  cmd->add_option("--ids", o->ids, "Prompt token ids, comma-separated (no tokenizer needed)");
  cmd->add_option("--max-tokens", o->max_tokens, "New tokens at most (default 16)");
  cmd->add_option("--temperature", o->params.temperature, "0 = greedy (default)");
  cmd->add_option("--top-k", o->params.top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", o->params.top_p, "Nucleus sampling mass, (0, 1]");
  cmd->add_option("--min-p", o->params.min_p, "Drop tokens below min_p x the top probability");
  cmd->add_option("--typical-p", o->params.typical_p, "Locally typical sampling mass, (0, 1]");
  cmd->add_option("--seed", o->seed, "Seed: the same output whatever the batch or thread count");
  cmd->add_option("--n", o->n, "Samples to return (sharing the prompt's KV blocks)");
  cmd->add_option("--repetition-penalty", o->params.repetition_penalty, "HF repetition penalty (1 = off)");
  cmd->add_option("--presence-penalty", o->params.presence_penalty, "OpenAI presence penalty, [-2, 2]");
  cmd->add_option("--frequency-penalty", o->params.frequency_penalty, "OpenAI frequency penalty, [-2, 2]");
  cmd->add_option("--stop", o->stop, "Stop string (repeatable; needs the tokenizer)");
  cmd->add_option("--stop-token-ids", o->stop_token_ids, "Token ids that end a sequence, comma-separated");
  cmd->add_option("--eos-token-id", o->eos_token_id, "EOS id (default: the model's)");
  cmd->add_flag("--ignore-eos", o->params.ignore_eos, "Do not stop at EOS");
  cmd->add_option("--min-tokens", o->params.min_tokens, "New tokens before EOS / stop ids may end it");
  cmd->add_option("--beams", o->beams, "Beam search with this many beams");
  cmd->add_option("--length-penalty", o->params.length_penalty, "Beam score = sum logprob / len ** this");
  cmd->add_option("--num-return", o->num_return, "Beam hypotheses to return (<= --beams)");
  cmd->add_flag("--early-stopping", o->params.early_stopping, "Stop when --beams hypotheses are finished");
  cmd->add_option("--no-repeat-ngram-size", o->params.no_repeat_ngram_size, "Beam search: forbid repeated n-grams");
  cmd->add_option("--logprobs", o->logprobs, "Log-prob of each token plus the top K alternatives, 0..20");
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--device", o->device, "cpu or cuda (default: cuda when available)");
  cmd->add_flag("--json", o->json, "Print one JSON document");
  cmd->callback([o] { run_generate(*o); });
}

LMSERVE_COMMAND(register_generate);

}  // namespace
}  // namespace lmserve::cli
