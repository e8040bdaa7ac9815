// ApiError: every failure the HTTP API reports, with its status and the OpenAI error body
// {"error": {"message", "type", "param", "code"}}. Routes and schema parsers throw it;
// the router turns it (and engine::InvalidParameter) into a response.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace lmserve::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::string param = {},
           std::string code = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)),
        param_(std::move(param)), code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string type_;
  std::string param_;
  std::string code_;
};

// The shapes OpenAI uses for each status.
ApiError bad_request(const std::string& message, const std::string& param = {});
ApiError not_found(const std::string& message, const std::string& code = {});
ApiError unauthorized(const std::string& message);
ApiError overloaded(const std::string& message);
ApiError unavailable(const std::string& message);
ApiError payload_too_large(const std::string& message);
ApiError internal_error(const std::string& message);

nlohmann::json error_body(const ApiError& e);
// The same body for any status/message (e.g. Beast parse errors).
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = {}, const std::string& code = {});

}  // namespace lmserve::server
