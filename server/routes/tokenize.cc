// POST /tokenize and POST /detokenize (vLLM's shapes).
#include "server/routes/routes.h"
#include "server/schemas/errors.h"
#include "server/schemas/fields.h"

namespace lmserve::server::routes {

Response tokenize(ServerContext& ctx, const json& body) {
  fields::require_object(body);
  fields::reject_unknown(body, {"model", "prompt", "add_special_tokens"});
  check_model_name(ctx, body);
  auto prompt = fields::get_string(body, "prompt");
  if (!prompt) throw bad_request("'prompt' is required and must be a string", "prompt");
  bool add_special = fields::get_bool(body, "add_special_tokens").value_or(true);
  std::vector<int32_t> ids = ctx.text->encode(*prompt, add_special);
  json strs = json::array();
  for (int32_t id : ids) strs.push_back(ctx.text->token_text(id));
  return Response::json(200, {{"count", ids.size()},
                              {"max_model_len", ctx.engine->max_model_len()},
                              {"tokens", ids},
                              {"token_strs", strs}});
}

Response detokenize(ServerContext& ctx, const json& body) {
  fields::require_object(body);
  fields::reject_unknown(body, {"model", "tokens", "skip_special_tokens"});
  check_model_name(ctx, body);
  if (!fields::present(body, "tokens") || !body["tokens"].is_array())
    throw bad_request("'tokens' is required and must be a list of token ids", "tokens");
  bool skip_special = fields::get_bool(body, "skip_special_tokens").value_or(false);
  std::vector<int32_t> ids;
  for (const json& t : body["tokens"]) {
    if (!t.is_number_integer()) throw bad_request("'tokens' must hold integers, got " + t.dump(), "tokens");
    int64_t id = t.get<int64_t>();
    if (id < 0 || id >= ctx.text->vocab_size())
      throw bad_request("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                            std::to_string(ctx.text->vocab_size()) + ")",
                        "tokens");
    ids.push_back(static_cast<int32_t>(id));
  }
  return Response::json(200, {{"prompt", ctx.text->decode(ids, skip_special)}});
}

}  // namespace lmserve::server::routes
