// SSE framing. JSON dumps never contain a raw newline (it is escaped), so one `data:`
// line per event is always well-formed.
#include "server/sse.h"

namespace lmserve::server::sse {

std::string event(const nlohmann::json& data) {
  std::string out = "data: ";
  // Invalid UTF-8 can only come from a broken tokenizer; replace rather than fail mid-stream.
  out += data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += "\n\n";
  return out;
}

std::string done() { return "data: [DONE]\n\n"; }

}  // namespace lmserve::server::sse
