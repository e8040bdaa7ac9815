// Parsing and validating /v1/completions bodies.
#include "server/schemas/completion.h"

#include "server/schemas/errors.h"
#include "server/schemas/fields.h"

namespace lmserve::server {

using nlohmann::json;
namespace f = fields;

namespace {

constexpr int kMaxLogprobs = 20;
constexpr int kMaxChoices = 128;
constexpr int kMaxStopStrings = 16;

std::vector<std::string> parse_stop(const json& body) {
  if (!f::present(body, "stop")) return {};
  const json& v = body["stop"];
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const json& s : v) {
      if (!s.is_string()) throw bad_request("'stop' must be a string or a list of strings", "stop");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw bad_request("'stop' must be a string or a list of strings", "stop");
  }
  if (out.size() > kMaxStopStrings)
    throw bad_request("'stop' has " + std::to_string(out.size()) + " strings; at most " +
                          std::to_string(kMaxStopStrings) + " are allowed",
                      "stop");
  for (const auto& s : out)
    if (s.empty()) throw bad_request("'stop' strings must not be empty", "stop");
  return out;
}

std::vector<std::pair<int32_t, float>> parse_logit_bias(const json& body, int vocab_size) {
  std::vector<std::pair<int32_t, float>> out;
  if (!f::present(body, "logit_bias")) return out;
  const json& v = body["logit_bias"];
  if (!v.is_object()) throw bad_request("'logit_bias' must be an object of token id → bias", "logit_bias");
  for (auto it = v.begin(); it != v.end(); ++it) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(it.key(), &used);
      if (used != it.key().size()) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    if (id < 0 || id >= vocab_size)
      throw bad_request("'logit_bias' key '" + it.key() + "' is not a token id in [0, " +
                            std::to_string(vocab_size) + ")",
                        "logit_bias");
    if (!it.value().is_number()) throw bad_request("'logit_bias' values must be numbers", "logit_bias");
    double bias = it.value().get<double>();
    if (bias < -100 || bias > 100)
      throw bad_request("'logit_bias' values must be in [-100, 100], got " + it.value().dump(), "logit_bias");
    out.emplace_back(static_cast<int32_t>(id), static_cast<float>(bias));
  }
  return out;
}

std::vector<int32_t> parse_stop_token_ids(const json& body, int vocab_size) {
  std::vector<int32_t> out;
  if (!f::present(body, "stop_token_ids")) return out;
  const json& v = body["stop_token_ids"];
  if (!v.is_array()) throw bad_request("'stop_token_ids' must be a list of token ids", "stop_token_ids");
  for (const json& t : v) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab_size)
      throw bad_request("'stop_token_ids' entry " + t.dump() + " is not a token id in [0, " +
                            std::to_string(vocab_size) + ")",
                        "stop_token_ids");
    out.push_back(t.get<int32_t>());
  }
  return out;
}

}  // namespace

CompletionRequest parse_completion_request(const json& body, const TextCodec& text, const CompletionLimits& limits) {
  f::require_object(body);
  // `suffix` (insertion) and the like are refused by name rather than ignored: a client
  // relying on them would otherwise get silently different output.
  f::reject_unknown(body, {"model", "prompt", "max_tokens", "temperature", "top_p", "n", "best_of", "stream",
                           "stream_options", "logprobs", "echo", "stop", "presence_penalty",
                           "frequency_penalty", "logit_bias", "seed", "user", "top_k", "min_p", "typical_p",
                           "repetition_penalty", "min_tokens", "stop_token_ids", "include_stop_str_in_output",
                           "ignore_eos", "skip_special_tokens", "add_special_tokens", "prompt_logprobs",
                           "use_beam_search", "length_penalty", "early_stopping"});
  f::get_string(body, "user");  // accepted (OpenAI's abuse tracking); type-checked only

  CompletionRequest req;
  auto& p = req.params;
  const engine::GenerationDefaults* defaults = limits.model ? &limits.model->generation : nullptr;

  req.stream = f::get_bool(body, "stream").value_or(false);
  if (f::present(body, "stream_options")) {
    const json& so = body["stream_options"];
    if (!so.is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
    f::reject_unknown(so, {"include_usage"});
    if (!req.stream) throw bad_request("'stream_options' is only allowed with 'stream': true", "stream_options");
    req.include_usage = f::get_bool(so, "include_usage").value_or(false);
  }
  req.echo = f::get_bool(body, "echo").value_or(false);
  if (auto lp = f::get_int(body, "logprobs")) req.logprobs = f::int_in_range(*lp, "logprobs", 0, kMaxLogprobs);
  if (auto plp = f::get_int(body, "prompt_logprobs"))
    p.prompt_logprobs = f::int_in_range(*plp, "prompt_logprobs", 0, kMaxLogprobs);

  int64_t max_tokens = f::get_int(body, "max_tokens").value_or(16);
  if (max_tokens < 0) throw bad_request("'max_tokens' must be >= 0, got " + std::to_string(max_tokens), "max_tokens");
  if (max_tokens == 0 && !req.echo)
    throw bad_request("'max_tokens' 0 generates nothing; it is only allowed with 'echo' (prompt scoring)",
                      "max_tokens");
  req.score_only = max_tokens == 0;

  req.n = f::int_in_range(f::get_int(body, "n").value_or(1), "n", 1, kMaxChoices);
  req.best_of = f::int_in_range(f::get_int(body, "best_of").value_or(req.n), "best_of", 1, kMaxChoices);
  if (req.best_of < req.n)
    throw bad_request("'best_of' (" + std::to_string(req.best_of) + ") must be >= 'n' (" + std::to_string(req.n) + ")",
                      "best_of");
  p.use_beam_search = f::get_bool(body, "use_beam_search").value_or(false);
  if (req.stream && req.best_of > req.n)
    throw bad_request("'best_of' > 'n' cannot be streamed: the best sequences are known only at the end", "best_of");
  if (req.stream && p.use_beam_search)
    throw bad_request("beam search cannot be streamed: beams are re-ranked until the end", "use_beam_search");

  // Sampling. OpenAI's default temperature is 1; a model's generation_config.json wins.
  double default_temperature = p.use_beam_search ? 0.0 : (defaults && defaults->temperature ? *defaults->temperature : 1.0);
  p.temperature = f::number_in_range(f::get_number(body, "temperature").value_or(default_temperature), "temperature", 0, 100);
  p.top_p = f::number_in_range(f::get_number(body, "top_p").value_or(defaults && defaults->top_p ? *defaults->top_p : 1.0),
                               "top_p", 1e-9, 1);
  p.top_k = f::int_in_range(f::get_int(body, "top_k").value_or(defaults && defaults->top_k ? *defaults->top_k : 0),
                            "top_k", -1, 1 << 30);
  if (p.top_k < 0) p.top_k = 0;  // vLLM's -1 = off
  p.min_p = f::number_in_range(f::get_number(body, "min_p").value_or(0.0), "min_p", 0, 1);
  p.typical_p = f::number_in_range(f::get_number(body, "typical_p").value_or(1.0), "typical_p", 1e-9, 1);
  p.repetition_penalty = f::number_in_range(
      f::get_number(body, "repetition_penalty")
          .value_or(defaults && defaults->repetition_penalty ? *defaults->repetition_penalty : 1.0),
      "repetition_penalty", 1e-6, 100);
  p.presence_penalty = f::number_in_range(f::get_number(body, "presence_penalty").value_or(0.0), "presence_penalty", -2, 2);
  p.frequency_penalty =
      f::number_in_range(f::get_number(body, "frequency_penalty").value_or(0.0), "frequency_penalty", -2, 2);
  p.logit_bias = parse_logit_bias(body, limits.vocab_size);
  if (auto seed = f::get_int(body, "seed")) p.seed = static_cast<uint64_t>(*seed);

  p.max_tokens = static_cast<int>(std::min<int64_t>(max_tokens, 1 << 30));
  p.min_tokens = f::int_in_range(f::get_int(body, "min_tokens").value_or(0), "min_tokens", 0, 1 << 30);
  p.ignore_eos = f::get_bool(body, "ignore_eos").value_or(false);
  p.stop_token_ids = parse_stop_token_ids(body, limits.vocab_size);
  p.logprobs = req.logprobs.value_or(-1);
  if (req.echo && req.logprobs) p.prompt_logprobs = std::max(p.prompt_logprobs, *req.logprobs);

  if (p.use_beam_search) {
    p.num_beams = req.best_of;
    p.n = req.n;
    p.length_penalty =
        static_cast<float>(f::get_number(body, "length_penalty").value_or(1.0));
    p.early_stopping = f::get_bool(body, "early_stopping").value_or(false);
  } else {
    if (f::present(body, "length_penalty") || f::present(body, "early_stopping"))
      throw bad_request("'length_penalty' and 'early_stopping' apply only with 'use_beam_search'",
                        f::present(body, "length_penalty") ? "length_penalty" : "early_stopping");
    p.n = req.best_of;
  }

  req.text.stop = parse_stop(body);
  req.text.include_stop_str_in_output = f::get_bool(body, "include_stop_str_in_output").value_or(false);
  req.text.skip_special_tokens = f::get_bool(body, "skip_special_tokens").value_or(true);
  req.add_special_tokens = f::get_bool(body, "add_special_tokens").value_or(true);

  // Prompts last: tokenizing is the expensive part.
  for (auto& in : f::get_prompts(body, "prompt")) {
    CompletionPrompt prompt;
    if (in.text) {
      prompt.text = *in.text;
      prompt.ids = text.encode(*in.text, req.add_special_tokens);
    } else {
      for (int32_t id : in.ids)
        if (id >= limits.vocab_size)
          throw bad_request("prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(limits.vocab_size) + ")",
                            "prompt");
      prompt.ids = std::move(in.ids);
      if (req.echo) prompt.text = text.decode(prompt.ids, false);
    }
    if (prompt.ids.empty()) throw bad_request("the prompt is empty after tokenization", "prompt");
    int len = static_cast<int>(prompt.ids.size());
    int want = req.score_only ? 0 : p.max_tokens;
    // OpenAI's wording, with the numbers, so clients can trim and retry.
    // Scoring alone may exceed the context: the engine scores it with a sliding window.
    if (!req.score_only && len + want > limits.max_model_len)
      throw bad_request("This model's maximum context length is " + std::to_string(limits.max_model_len) +
                            " tokens. However, you requested " + std::to_string(len + want) + " tokens (" +
                            std::to_string(len) + " in the prompt, " + std::to_string(want) +
                            " for the completion). Please reduce the prompt or max_tokens.",
                        len >= limits.max_model_len ? "prompt" : "max_tokens");
    if (!req.score_only) engine::validate_sampling_params(p, len, limits.max_model_len, limits.vocab_size);
    req.prompts.push_back(std::move(prompt));
  }
  return req;
}

}  // namespace lmserve::server
