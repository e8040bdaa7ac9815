// Assembling /v1/completions responses from engine outputs (see completion_job.h).
#include "server/routes/completion_job.h"

#include <algorithm>
#include <ctime>

#include "server/sse.h"

namespace lmserve::server {

using nlohmann::json;

namespace {

// text_offset counts characters, as Python and JavaScript clients index strings.
size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

json LegacyLogprobs::slice(size_t from) const {
  auto part = [from](const json& a) {
    json out = json::array();
    for (size_t i = from; i < a.size(); ++i) out.push_back(a[i]);
    return out;
  };
  return {{"tokens", part(tokens)},
          {"token_logprobs", part(token_logprobs)},
          {"top_logprobs", part(top_logprobs)},
          {"text_offset", part(text_offset)}};
}

CompletionJob::CompletionJob(ServerContext& ctx, CompletionRequest request, std::string id)
    : ctx_(ctx), request_(std::move(request)), id_(std::move(id)), created_(std::time(nullptr)) {
  streaming_ = request_.stream;
  int sequences = request_.params.n;
  for (size_t pi = 0; pi < request_.prompts.size(); ++pi) {
    const CompletionPrompt& prompt = request_.prompts[pi];
    engine::Request r;
    r.id = id_ + "-" + std::to_string(pi);
    r.kind = request_.score_only ? engine::RequestKind::Score : engine::RequestKind::Generate;
    r.prompt = prompt.ids;
    r.params = request_.params;
    r.score.top_logprobs = request_.logprobs.value_or(0);
    r.stream = request_.stream || !request_.text.stop.empty();  // stop strings need tokens as they come
    prompt_of_request_[r.id] = static_cast<int>(pi);
    prompt_tokens_ += static_cast<int>(prompt.ids.size());

    PromptState state;
    int count = request_.score_only ? 1 : sequences;
    for (int s = 0; s < count; ++s) {
      Choice c;
      c.prompt_index = static_cast<int>(pi);
      c.sequence_index = s;
      c.text_stream = ctx_.text->start_sequence(prompt.ids, request_.text);
      state.choices.push_back(std::move(c));
    }
    prompts_.push_back(std::move(state));
    requests_.push_back(std::move(r));
  }
  request_count_ = static_cast<int>(requests_.size());
}

CompletionJob::Choice& CompletionJob::choice(int prompt_index, int sequence_index) {
  auto& choices = prompts_.at(prompt_index).choices;
  if (sequence_index < 0 || sequence_index >= static_cast<int>(choices.size()))
    throw std::runtime_error("engine returned sequence index " + std::to_string(sequence_index) + " of " +
                             std::to_string(choices.size()));
  return choices[sequence_index];
}

json CompletionJob::top_object(const std::vector<engine::TokenLogprob>& top,
                               std::optional<engine::GeneratedToken> sampled) const {
  json obj = json::object();
  for (const auto& t : top) {
    std::string s = ctx_.text->token_text(t.id);
    if (!obj.contains(s)) obj[s] = t.logprob;
  }
  // Like OpenAI and vLLM, the chosen token is always present (up to K + 1 entries).
  if (sampled) {
    std::string s = ctx_.text->token_text(sampled->id);
    if (!obj.contains(s)) obj[s] = sampled->logprob;
  }
  return obj;
}

void CompletionJob::add_echo(Choice& c, const engine::PromptLogprobs* plp) {
  c.echoed = true;
  const CompletionPrompt& prompt = request_.prompts[c.prompt_index];
  if (!request_.echo) {
    if (plp && request_.params.prompt_logprobs >= 0) {
      c.prompt_logprobs = json::array();
      for (size_t i = 0; i < prompt.ids.size(); ++i) {
        if (i >= plp->token_logprobs.size() || !plp->token_logprobs[i]) {
          c.prompt_logprobs.push_back(nullptr);
          continue;
        }
        json pos = json::object();
        pos[std::to_string(prompt.ids[i])] = {{"logprob", *plp->token_logprobs[i]},
                                              {"decoded_token", ctx_.text->token_text(prompt.ids[i])}};
        if (i < plp->top.size())
          for (const auto& t : plp->top[i])
            if (!pos.contains(std::to_string(t.id)))
              pos[std::to_string(t.id)] = {{"logprob", t.logprob}, {"decoded_token", ctx_.text->token_text(t.id)}};
        c.prompt_logprobs.push_back(std::move(pos));
      }
    }
    return;
  }
  if (request_.logprobs) {
    for (size_t i = 0; i < prompt.ids.size(); ++i) {
      std::string tok = ctx_.text->token_text(prompt.ids[i]);
      c.logprobs.tokens.push_back(tok);
      c.logprobs.text_offset.push_back(c.char_offset);
      c.char_offset += code_points(tok);
      bool has = plp && i < plp->token_logprobs.size() && plp->token_logprobs[i];
      if (!has) {  // position 0 has no context: null, as lm-evaluation-harness expects
        c.logprobs.token_logprobs.push_back(nullptr);
        c.logprobs.top_logprobs.push_back(nullptr);
        continue;
      }
      c.logprobs.token_logprobs.push_back(*plp->token_logprobs[i]);
      engine::GeneratedToken self{prompt.ids[i], *plp->token_logprobs[i], {}};
      c.logprobs.top_logprobs.push_back(top_object(i < plp->top.size() ? plp->top[i] : std::vector<engine::TokenLogprob>{}, self));
    }
  }
  c.text += prompt.text;
  c.char_offset = code_points(prompt.text);
}

void CompletionJob::add_token(Choice& c, const engine::GeneratedToken& token) {
  if (request_.logprobs) {
    std::string tok = ctx_.text->token_text(token.id);
    c.logprobs.tokens.push_back(tok);
    c.logprobs.token_logprobs.push_back(token.logprob);
    c.logprobs.top_logprobs.push_back(top_object(token.top, token));
    c.logprobs.text_offset.push_back(c.char_offset);
    c.char_offset += code_points(tok);
  }
  SequenceText::Delta delta = c.text_stream->add(token.id);
  c.text += delta.text;
  if (delta.stopped) {
    c.finished = true;
    c.finish_reason = "stop";
    c.stop_reason = delta.matched;
  }
}

void CompletionJob::finish_prompt(int pi, const engine::RequestOutput& out) {
  PromptState& state = prompts_[pi];
  state.done = true;
  ++requests_done_;
  completion_tokens_ += out.num_generated_tokens;
  engine::FinishReason overall = engine::FinishReason::Length;
  for (Choice& c : state.choices) {
    if (!c.echoed) add_echo(c, nullptr);
    if (!c.finished) {
      c.text += c.text_stream->finish();
      c.finished = true;
      if (c.finish_reason.empty()) c.finish_reason = out.error ? "error" : (request_.score_only ? "length" : "abort");
    }
    if (c.finish_reason == "stop") overall = engine::FinishReason::Stop;
    if (c.finish_reason == "abort") overall = engine::FinishReason::Abort;
  }
  ctx_.metrics.observe_request(out.timing, overall, out.num_generated_tokens, state.token_times);
}

JobStep CompletionJob::on_output(EngineEvent&& event) {
  JobStep step;
  engine::RequestOutput& out = event.output;
  auto it = prompt_of_request_.find(out.request_id);
  if (it == prompt_of_request_.end() || prompts_[it->second].done) return step;
  int pi = it->second;
  PromptState& state = prompts_[pi];
  if (out.error) error_ = *out.error;

  if (out.prompt_logprobs)
    for (Choice& c : state.choices)
      if (!c.echoed) add_echo(c, &*out.prompt_logprobs);
  bool any_tokens = false;
  for (const engine::SequenceOutput& seq : out.sequences) {
    Choice& c = choice(pi, seq.index);
    if (!c.echoed) add_echo(c, nullptr);
    c.cumulative_logprob = seq.cumulative_logprob;
    if (seq.beam_score) c.cumulative_logprob = *seq.beam_score;  // ranks beams as the engine did
    if (c.finished) continue;  // tokens the engine made before it saw our stop request
    for (const auto& token : seq.new_tokens) {
      any_tokens = true;
      add_token(c, token);
      if (c.finished) {
        step.stops.push_back({out.request_id, seq.index});
        break;
      }
    }
    if (!c.finished && seq.finish_reason != engine::FinishReason::None) {
      c.text += c.text_stream->finish();
      c.finished = true;
      c.finish_reason = engine::finish_reason_name(seq.finish_reason);
      if (seq.stop_token) c.stop_reason = *seq.stop_token;
    }
  }
  if (any_tokens) state.token_times.push_back(event.received);
  if (out.finished) finish_prompt(pi, out);
  if (streaming_) step.stream_data = stream_updates();
  return step;
}

json CompletionJob::chunk(const Choice& c, int index, const std::string& text, json logprobs, bool with_finish) const {
  json choice = {{"index", index},
                 {"text", text},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", with_finish ? json(c.finish_reason) : json(nullptr)},
                 {"stop_reason", with_finish ? c.stop_reason : json(nullptr)}};
  json body = {{"id", "cmpl-" + id_},
               {"object", "text_completion"},
               {"created", created_},
               {"model", ctx_.model_name},
               {"choices", json::array({std::move(choice)})}};
  if (request_.include_usage) body["usage"] = nullptr;
  return body;
}

std::string CompletionJob::stream_updates() {
  std::string data;
  if (error_) {
    data += sse::event({{"error", {{"message", *error_}, {"type", "internal_error"}, {"param", nullptr}, {"code", nullptr}}}});
    error_.reset();
  }
  for (size_t pi = 0; pi < prompts_.size(); ++pi) {
    for (Choice& c : prompts_[pi].choices) {
      bool new_text = c.text.size() > c.sent_text;
      bool new_logprobs = c.logprobs.size() > c.sent_logprobs;
      bool finish_now = c.finished && !c.sent_finish;
      if (!new_text && !new_logprobs && !finish_now) continue;
      json lp = request_.logprobs ? c.logprobs.slice(c.sent_logprobs) : json(nullptr);
      int index = static_cast<int>(pi) * request_.n + c.sequence_index;
      data += sse::event(chunk(c, index, c.text.substr(c.sent_text), std::move(lp), finish_now));
      c.sent_text = c.text.size();
      c.sent_logprobs = c.logprobs.size();
      c.sent_finish = c.sent_finish || finish_now;
    }
  }
  return data;
}

json CompletionJob::usage() const {
  return {{"prompt_tokens", prompt_tokens_},
          {"completion_tokens", completion_tokens_},
          {"total_tokens", prompt_tokens_ + completion_tokens_}};
}

Response CompletionJob::final_response() {
  if (streaming_) {
    Response r;
    r.body = stream_updates();
    if (request_.include_usage) {
      json last = {{"id", "cmpl-" + id_},
                   {"object", "text_completion"},
                   {"created", created_},
                   {"model", ctx_.model_name},
                   {"choices", json::array()},
                   {"usage", usage()}};
      r.body += sse::event(last);
    }
    r.body += sse::done();
    return r;
  }
  if (error_) return Response::json(500, {{"error", {{"message", *error_}, {"type", "internal_error"}, {"param", nullptr}, {"code", nullptr}}}});
  json choices = json::array();
  for (size_t pi = 0; pi < prompts_.size(); ++pi) {
    std::vector<const Choice*> ranked;
    for (const Choice& c : prompts_[pi].choices) ranked.push_back(&c);
    // best_of: the n sequences with the highest cumulative log-probability (OpenAI's rule);
    // beam search results come ranked already, and a stable sort keeps that order.
    if (!request_.params.use_beam_search)
      std::stable_sort(ranked.begin(), ranked.end(),
                       [](const Choice* a, const Choice* b) { return a->cumulative_logprob > b->cumulative_logprob; });
    if (request_.best_of == request_.n && !request_.params.use_beam_search)
      std::sort(ranked.begin(), ranked.end(),
                [](const Choice* a, const Choice* b) { return a->sequence_index < b->sequence_index; });
    for (int k = 0; k < request_.n && k < static_cast<int>(ranked.size()); ++k) {
      const Choice& c = *ranked[k];
      json choice = {{"index", static_cast<int>(pi) * request_.n + k},
                     {"text", c.text},
                     {"logprobs", request_.logprobs ? c.logprobs.slice(0) : json(nullptr)},
                     {"finish_reason", c.finish_reason},
                     {"stop_reason", c.stop_reason}};
      if (!c.prompt_logprobs.is_null()) choice["prompt_logprobs"] = c.prompt_logprobs;
      choices.push_back(std::move(choice));
    }
  }
  return Response::json(200, {{"id", "cmpl-" + id_},
                              {"object", "text_completion"},
                              {"created", created_},
                              {"model", ctx_.model_name},
                              {"choices", std::move(choices)},
                              {"usage", usage()}});
}

}  // namespace lmserve::server
