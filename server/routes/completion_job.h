// CompletionJob: turns the engine outputs of a /v1/completions call into OpenAI's
// response — whole (non-streaming) or as SSE chunks. Owns the per-choice text streams
// (detokenization, stop strings), the legacy logprobs objects and usage counts.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api.h"
#include "server/context.h"
#include "server/schemas/completion.h"

namespace lmserve::server {

// OpenAI's legacy logprobs object, built token by token.
struct LegacyLogprobs {
  nlohmann::json tokens = nlohmann::json::array();
  nlohmann::json token_logprobs = nlohmann::json::array();
  nlohmann::json top_logprobs = nlohmann::json::array();
  nlohmann::json text_offset = nlohmann::json::array();
  size_t size() const { return tokens.size(); }
  // Entries [from, size()) as a logprobs object.
  nlohmann::json slice(size_t from) const;
};

class CompletionJob : public Job {
 public:
  CompletionJob(ServerContext& ctx, CompletionRequest request, std::string id);

  JobStep on_output(EngineEvent&& event) override;
  bool finished() const override { return requests_done_ == request_count_; }
  Response final_response() override;
  int prompt_tokens() const override { return prompt_tokens_; }
  int completion_tokens() const override { return completion_tokens_; }

 private:
  struct Choice {
    int prompt_index = 0;
    int sequence_index = 0;
    std::unique_ptr<SequenceText> text_stream;
    std::string text;  // echo prefix + generated text released so far
    LegacyLogprobs logprobs;
    size_t char_offset = 0;  // text_offset of the next token (code points)
    bool echoed = false;
    bool finished = false;
    std::string finish_reason;
    nlohmann::json stop_reason = nullptr;
    nlohmann::json prompt_logprobs = nullptr;  // vLLM extension, per position
    float cumulative_logprob = 0.0f;
    size_t sent_text = 0;  // streaming cursors
    size_t sent_logprobs = 0;
    bool sent_finish = false;
  };
  struct PromptState {
    std::vector<Choice> choices;  // best_of (or beam n) of them
    std::vector<engine::Clock::time_point> token_times;
    bool done = false;
  };

  Choice& choice(int prompt_index, int sequence_index);
  void add_echo(Choice& c, const engine::PromptLogprobs* prompt_logprobs);
  void add_token(Choice& c, const engine::GeneratedToken& token);
  void finish_prompt(int prompt_index, const engine::RequestOutput& out);
  nlohmann::json top_object(const std::vector<engine::TokenLogprob>& top, std::optional<engine::GeneratedToken> sampled) const;
  nlohmann::json chunk(const Choice& c, int index, const std::string& text, nlohmann::json logprobs,
                       bool with_finish) const;
  std::string stream_updates();
  nlohmann::json usage() const;

  ServerContext& ctx_;
  CompletionRequest request_;
  std::string id_;
  int64_t created_ = 0;
  std::vector<PromptState> prompts_;
  std::map<std::string, int> prompt_of_request_;
  int request_count_ = 0;
  int requests_done_ = 0;
  int prompt_tokens_ = 0;
  int completion_tokens_ = 0;
  std::optional<std::string> error_;
};

}  // namespace lmserve::server
