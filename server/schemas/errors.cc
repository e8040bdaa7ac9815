// OpenAI-style error bodies and the status each kind of error maps to.
#include "server/schemas/errors.h"

namespace lmserve::server {

ApiError bad_request(const std::string& message, const std::string& param) {
  return ApiError(400, "invalid_request_error", message, param);
}
ApiError not_found(const std::string& message, const std::string& code) {
  return ApiError(404, "invalid_request_error", message, {}, code);
}
ApiError unauthorized(const std::string& message) {
  return ApiError(401, "invalid_request_error", message, {}, "invalid_api_key");
}
ApiError overloaded(const std::string& message) {
  // 429 with OpenAI's rate-limit type so SDKs apply their retry/backoff logic.
  return ApiError(429, "rate_limit_error", message, {}, "queue_full");
}
ApiError unavailable(const std::string& message) {
  return ApiError(503, "service_unavailable", message);
}
ApiError payload_too_large(const std::string& message) {
  return ApiError(413, "invalid_request_error", message, {}, "payload_too_large");
}
ApiError internal_error(const std::string& message) {
  return ApiError(500, "internal_error", message);
}

nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param, const std::string& code) {
  nlohmann::json err;
  err["message"] = message;
  err["type"] = type;
  err["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  err["code"] = code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code);
  return {{"error", std::move(err)}};
}

nlohmann::json error_body(const ApiError& e) {
  return error_body(e.what(), e.type(), e.param(), e.code());
}

}  // namespace lmserve::server
