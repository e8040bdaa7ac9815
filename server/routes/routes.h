// One function per endpoint, from a parsed request to a response (or an engine Job).
// None of them touches a socket; the router picks one by path and method.
#pragma once

#include <nlohmann/json.hpp>

#include "server/api.h"
#include "server/context.h"

namespace lmserve::server::routes {

using nlohmann::json;

RouteResult completions(ServerContext& ctx, const json& body, const ApiRequest& request);
RouteResult embeddings(ServerContext& ctx, const json& body, const ApiRequest& request);
RouteResult perplexity(ServerContext& ctx, const json& body, const ApiRequest& request);
Response tokenize(ServerContext& ctx, const json& body);
Response detokenize(ServerContext& ctx, const json& body);
Response models(ServerContext& ctx);
Response health(ServerContext& ctx);
Response metrics(ServerContext& ctx);

// 404 when `body` names a model other than the served one.
void check_model_name(const ServerContext& ctx, const json& body);

}  // namespace lmserve::server::routes
