// POST /v1/completions: parse and validate, then hand a CompletionJob to the session.
#include "server/routes/completion_job.h"
#include "server/routes/routes.h"

namespace lmserve::server::routes {

RouteResult completions(ServerContext& ctx, const json& body, const ApiRequest& request) {
  check_model_name(ctx, body);
  CompletionLimits limits;
  limits.max_model_len = ctx.engine->max_model_len();
  limits.vocab_size = ctx.engine->model_config().vocab_size;
  limits.model = &ctx.engine->model_config();
  CompletionRequest parsed = parse_completion_request(body, *ctx.text, limits);
  return std::make_unique<CompletionJob>(ctx, std::move(parsed), request.request_id);
}

}  // namespace lmserve::server::routes
