// CollectJob: gathers final engine outputs, then builds one response.
#include "server/routes/collect_job.h"

#include "server/schemas/errors.h"

namespace lmserve::server {

CollectJob::CollectJob(ServerContext& ctx, std::vector<engine::Request> requests, Build build)
    : ctx_(ctx), build_(std::move(build)) {
  requests_ = std::move(requests);
  outputs_.resize(requests_.size());
  have_.assign(requests_.size(), false);
  for (size_t i = 0; i < requests_.size(); ++i) {
    requests_[i].stream = false;
    slot_of_[requests_[i].id] = i;
    prompt_tokens_ += static_cast<int>(requests_[i].prompt.size());
  }
}

JobStep CollectJob::on_output(EngineEvent&& event) {
  auto it = slot_of_.find(event.output.request_id);
  if (it == slot_of_.end() || have_[it->second]) return {};
  engine::RequestOutput& out = event.output;
  engine::RequestOutput& slot = outputs_[it->second];
  // Outputs may come in pieces; keep what each carries.
  if (out.prompt_logprobs) slot.prompt_logprobs = std::move(out.prompt_logprobs);
  if (!out.embedding.empty()) slot.embedding = std::move(out.embedding);
  if (out.error) error_ = *out.error;
  if (out.finished) {
    slot.request_id = out.request_id;
    slot.finished = true;
    slot.num_prompt_tokens = out.num_prompt_tokens;
    slot.timing = out.timing;
    have_[it->second] = true;
    ++done_;
    ctx_.metrics.observe_request(out.timing, out.error ? engine::FinishReason::Abort : engine::FinishReason::Length,
                                 0, {});
  }
  return {};
}

Response CollectJob::final_response() {
  if (error_) return Response::json(500, error_body(*error_, "internal_error"));
  try {
    return build_(outputs_);
  } catch (const ApiError& e) {
    return Response::json(e.status(), error_body(e));
  }
}

}  // namespace lmserve::server
