// Names of the request-level enums as the API and the CLI print them.
#include "engine/request.h"

namespace lmserve::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Length: return "length";
    case FinishReason::Stop: return "stop";
    case FinishReason::Abort: return "abort";
    case FinishReason::None: break;
  }
  return "";
}

}  // namespace lmserve::engine
