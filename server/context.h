// ServerContext: what every route may use — options, the model's name, metrics, and
// (once loading finished) the engine and the text codec. Owned by App; routes get a
// reference. The engine pointer is published through `ready` (release/acquire).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "server/metrics.h"
#include "server/options.h"
#include "server/text.h"

namespace lmserve::server {

struct ServerContext {
  ServerContext(ServerOptions opts, std::string name)
      : options(std::move(opts)), model_name(std::move(name)), metrics(model_name) {}

  const ServerOptions options;
  const std::string model_name;  // served name, checked against a request's "model"
  std::string model_dir;
  int64_t created = 0;  // unix time the server started (for /v1/models)
  Metrics metrics;

  // Set once before `ready` becomes true; read only after checking it.
  engine::Engine* engine = nullptr;
  const TextCodec* text = nullptr;
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<bool> load_failed{false};
  std::string load_error;  // written once before load_failed is set; read only after it

  bool is_ready() const { return ready.load(std::memory_order_acquire); }
  bool has_failed() const { return load_failed.load(std::memory_order_acquire); }
};

}  // namespace lmserve::server
