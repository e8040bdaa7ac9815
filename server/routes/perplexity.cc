// POST /v1/perplexity (lmserve's own): per-token log-probabilities of a text, their sum,
// mean negative log-likelihood and perplexity; long texts by a sliding window.
#include <cmath>

#include "server/routes/collect_job.h"
#include "server/routes/routes.h"
#include "server/schemas/errors.h"
#include "server/schemas/fields.h"

namespace lmserve::server::routes {

RouteResult perplexity(ServerContext& ctx, const json& body, const ApiRequest& request) {
  fields::require_object(body);
  fields::reject_unknown(body, {"model", "input", "top_logprobs", "window", "stride", "add_special_tokens"});
  check_model_name(ctx, body);
  engine::Request r;
  r.id = request.request_id + "-0";
  r.kind = engine::RequestKind::Score;
  r.score.top_logprobs = fields::int_in_range(fields::get_int(body, "top_logprobs").value_or(0), "top_logprobs", 0, 20);
  const int max_len = ctx.engine->max_model_len();
  r.score.window = fields::int_in_range(fields::get_int(body, "window").value_or(0), "window", 0, max_len);
  if (r.score.window == 1) throw bad_request("'window' must be 0 (the model's length) or >= 2", "window");
  int window = r.score.window ? r.score.window : max_len;
  r.score.stride = fields::int_in_range(fields::get_int(body, "stride").value_or(0), "stride", 0, window - 1);
  bool add_special = fields::get_bool(body, "add_special_tokens").value_or(true);

  auto inputs = fields::get_prompts(body, "input");
  if (inputs.size() != 1) throw bad_request("'input' must be one text or one list of token ids", "input");
  r.prompt = inputs[0].text ? ctx.text->encode(*inputs[0].text, add_special) : inputs[0].ids;
  if (r.prompt.size() < 2)
    throw bad_request("'input' needs at least 2 tokens to score (the first has no context), got " +
                          std::to_string(r.prompt.size()),
                      "input");
  const int vocab = ctx.engine->model_config().vocab_size;
  for (int32_t id : r.prompt)
    if (id >= vocab) throw bad_request("input token id " + std::to_string(id) + " is outside the vocabulary", "input");

  std::vector<int32_t> ids = r.prompt;
  const TextCodec* text = ctx.text;
  std::string model = ctx.model_name;
  auto build = [ids, text, model](std::vector<engine::RequestOutput>& outs) {
    const engine::RequestOutput& out = outs.at(0);
    if (!out.prompt_logprobs) throw internal_error("the engine returned no prompt log-probabilities");
    const auto& plp = *out.prompt_logprobs;
    json strs = json::array(), lps = json::array(), tops = json::array();
    double sum = 0;
    int scored = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      strs.push_back(text->token_text(ids[i]));
      if (i >= plp.token_logprobs.size() || !plp.token_logprobs[i]) {
        lps.push_back(nullptr);
        tops.push_back(nullptr);
        continue;
      }
      lps.push_back(*plp.token_logprobs[i]);
      sum += *plp.token_logprobs[i];
      ++scored;
      json alts = json::array();
      if (i < plp.top.size())
        for (const auto& t : plp.top[i])
          alts.push_back({{"id", t.id}, {"token", text->token_text(t.id)}, {"logprob", t.logprob}});
      tops.push_back(std::move(alts));
    }
    double mean_nll = scored ? -sum / scored : 0.0;
    return Response::json(200, {{"object", "perplexity"},
                                {"model", model},
                                {"num_tokens", ids.size()},
                                {"num_scored", scored},
                                {"tokens", ids},
                                {"token_strs", std::move(strs)},
                                {"token_logprobs", std::move(lps)},
                                {"top_logprobs", std::move(tops)},
                                {"sum_logprob", sum},
                                {"mean_nll", mean_nll},
                                {"perplexity", std::exp(mean_nll)},
                                {"usage", {{"prompt_tokens", ids.size()}, {"total_tokens", ids.size()}}}});
  };
  std::vector<engine::Request> requests;
  requests.push_back(std::move(r));
  return std::make_unique<CollectJob>(ctx, std::move(requests), build);
}

}  // namespace lmserve::server::routes
