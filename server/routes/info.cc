// GET endpoints that need no engine work: /health, /metrics, /v1/models.
#include <optional>

#include "server/routes/routes.h"
#include "server/schemas/errors.h"

namespace lmserve::server::routes {

void check_model_name(const ServerContext& ctx, const json& body) {
  auto it = body.find("model");
  if (it == body.end() || it->is_null()) return;
  if (!it->is_string()) throw bad_request("'model' must be a string", "model");
  if (it->get<std::string>() != ctx.model_name)
    throw not_found("The model '" + it->get<std::string>() + "' does not exist; this server serves '" +
                        ctx.model_name + "'",
                    "model_not_found");
}

Response health(ServerContext& ctx) {
  if (ctx.has_failed())
    return Response::json(503, {{"status", "error"}, {"error", ctx.load_error}});
  if (!ctx.is_ready()) return Response::json(503, {{"status", "loading"}});
  if (ctx.draining.load()) return Response::json(503, {{"status", "draining"}});
  return Response::json(200, {{"status", "ok"}});
}

Response metrics(ServerContext& ctx) {
  std::optional<engine::EngineStats> stats;
  if (ctx.is_ready()) stats = ctx.engine->stats();
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = ctx.metrics.scrape(stats ? &*stats : nullptr);
  return r;
}

Response models(ServerContext& ctx) {
  json card = {{"id", ctx.model_name},
               {"object", "model"},
               {"created", ctx.created},
               {"owned_by", "lmserve"},
               {"root", ctx.model_dir},
               {"parent", nullptr}};
  if (ctx.is_ready()) card["max_model_len"] = ctx.engine->max_model_len();
  return Response::json(200, {{"object", "list"}, {"data", json::array({card})}});
}

}  // namespace lmserve::server::routes
