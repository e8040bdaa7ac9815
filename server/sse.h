// Server-Sent Events framing: one `data: <json>` event per chunk, `data: [DONE]` last.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace lmserve::server::sse {

std::string event(const nlohmann::json& data);
std::string done();

}  // namespace lmserve::server::sse
