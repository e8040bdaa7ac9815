// CollectJob: a Job that waits for the final output of each of its engine requests and
// then builds one JSON response from them (embeddings, perplexity).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/api.h"
#include "server/context.h"

namespace lmserve::server {

class CollectJob : public Job {
 public:
  using Build = std::function<Response(std::vector<engine::RequestOutput>& outputs)>;
  // `requests` in response order; `build` gets their final outputs in the same order.
  CollectJob(ServerContext& ctx, std::vector<engine::Request> requests, Build build);

  JobStep on_output(EngineEvent&& event) override;
  bool finished() const override { return done_ == static_cast<int>(outputs_.size()); }
  Response final_response() override;
  int prompt_tokens() const override { return prompt_tokens_; }
  int completion_tokens() const override { return 0; }

 private:
  ServerContext& ctx_;
  Build build_;
  std::map<std::string, size_t> slot_of_;
  std::vector<engine::RequestOutput> outputs_;
  std::vector<bool> have_;
  int done_ = 0;
  int prompt_tokens_ = 0;
  std::optional<std::string> error_;
};

}  // namespace lmserve::server
