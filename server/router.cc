// Routing, authentication, readiness and error mapping (no sockets here).
#include "server/router.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "engine/sampling/params.h"
#include "server/routes/routes.h"
#include "server/schemas/errors.h"

namespace lmserve::server {

using nlohmann::json;

Response Response::json(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

namespace {

enum class Access { Public, Protected };

struct Route {
  const char* path;
  const char* method;
  Access access;
  bool needs_model;  // 503 until the model is loaded
};

// /health and /metrics stay open so orchestrators and scrapers need no secret.
constexpr Route kRoutes[] = {
    {"/v1/completions", "POST", Access::Protected, true},
    {"/v1/embeddings", "POST", Access::Protected, true},
    {"/v1/perplexity", "POST", Access::Protected, true},
    {"/tokenize", "POST", Access::Protected, true},
    {"/detokenize", "POST", Access::Protected, true},
    {"/v1/models", "GET", Access::Protected, false},
    {"/health", "GET", Access::Public, false},
    {"/metrics", "GET", Access::Public, false},
};

const Route* find_route(const std::string& path) {
  for (const Route& r : kRoutes)
    if (path == r.path) return &r;
  return nullptr;
}

// Constant-time for equal lengths: the key must not leak through response timing.
bool same_secret(const std::string& given, const std::string& key) {
  if (given.size() != key.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i]);
  return diff == 0;
}

void check_api_key(const ServerContext& ctx, const ApiRequest& req) {
  const std::string& key = ctx.options.api_key;
  if (key.empty()) return;
  const std::string prefix = "Bearer ";
  if (req.authorization.size() <= prefix.size() || req.authorization.compare(0, prefix.size(), prefix) != 0)
    throw unauthorized("missing API key: send 'Authorization: Bearer <key>'");
  if (!same_secret(req.authorization.substr(prefix.size()), key)) throw unauthorized("incorrect API key");
}

json parse_body(const std::string& body) {
  if (body.empty()) throw bad_request("request body is empty; expected a JSON object");
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    throw bad_request(std::string("request body is not valid JSON: ") + e.what());
  }
}

RouteResult dispatch(ServerContext& ctx, const Route& route, const ApiRequest& req) {
  const std::string path = route.path;
  if (path == "/health") return routes::health(ctx);
  if (path == "/metrics") return routes::metrics(ctx);
  if (path == "/v1/models") return routes::models(ctx);
  json body = parse_body(req.body);
  if (path == "/v1/completions") return routes::completions(ctx, body, req);
  if (path == "/v1/embeddings") return routes::embeddings(ctx, body, req);
  if (path == "/v1/perplexity") return routes::perplexity(ctx, body, req);
  if (path == "/tokenize") return routes::tokenize(ctx, body);
  return routes::detokenize(ctx, body);
}

}  // namespace

std::string endpoint_label(const std::string& path) {
  const Route* r = find_route(path);
  return r ? r->path : "other";
}

std::vector<std::pair<std::string, std::string>> cors_headers(const ServerContext& ctx, const std::string& origin) {
  const auto& allowed = ctx.options.allowed_origins;
  if (allowed.empty() || origin.empty()) return {};
  bool any = std::find(allowed.begin(), allowed.end(), "*") != allowed.end();
  if (!any && std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) return {};
  return {{"Access-Control-Allow-Origin", any ? "*" : origin},
          {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
          {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
          {"Access-Control-Max-Age", "600"},
          {"Vary", "Origin"}};
}

RouteResult handle_request(ServerContext& ctx, const ApiRequest& req) {
  try {
    if (req.method == "OPTIONS") {
      // CORS preflight: answered only when CORS is on for this origin.
      if (cors_headers(ctx, req.origin).empty())
        throw ApiError(405, "invalid_request_error", "OPTIONS is only answered for allowed CORS origins");
      Response r;
      r.status = 204;
      r.content_type.clear();
      return r;
    }
    const Route* route = find_route(req.path);
    if (!route) throw not_found("no such endpoint: " + req.method + " " + req.path, "not_found");
    if (req.method != route->method)
      throw ApiError(405, "invalid_request_error",
                     std::string("method ") + req.method + " not allowed on " + route->path + "; use " + route->method);
    if (route->access == Access::Protected) check_api_key(ctx, req);
    if (route->needs_model && !ctx.is_ready()) {
      if (ctx.has_failed()) throw unavailable("model failed to load: " + ctx.load_error);
      throw unavailable("the model is still loading");
    }
    return dispatch(ctx, *route, req);
  } catch (const ApiError& e) {
    return Response::json(e.status(), error_body(e));
  } catch (const engine::InvalidParameter& e) {
    return Response::json(400, error_body(e.what(), "invalid_request_error", e.param()));
  } catch (const std::invalid_argument& e) {
    return Response::json(400, error_body(e.what(), "invalid_request_error"));
  } catch (const std::exception& e) {
    return Response::json(500, error_body(std::string("internal error: ") + e.what(), "internal_error"));
  }
}

}  // namespace lmserve::server
