// The router: picks the route for a path and method, applies API-key authentication,
// readiness and JSON parsing, and turns every exception into an OpenAI error response.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "server/api.h"
#include "server/context.h"

namespace lmserve::server {

RouteResult handle_request(ServerContext& ctx, const ApiRequest& request);

// The metrics/log label of a path: the route's own path, or "other" (bounded cardinality).
std::string endpoint_label(const std::string& path);

// CORS response headers for `origin` (empty when CORS is off or the origin is not allowed).
std::vector<std::pair<std::string, std::string>> cors_headers(const ServerContext& ctx, const std::string& origin);

}  // namespace lmserve::server
