// TestServer: an in-process lmserve server on an ephemeral loopback port, serving the
// bundled demo/ model (gpt2-tiny weights + the real GPT-2 tokenizer).
#pragma once

#include <stdexcept>
#include <string>

#include "server/app.h"
#include "server/options.h"

namespace lmserve::server::test {

inline ServerOptions test_options() {
  ServerOptions o;
  o.model = std::string(LMSERVE_SOURCE_DIR) + "/demo";
  o.host = "127.0.0.1";
  o.port = 0;
  o.device = "cpu";
  o.threads = 2;
  o.io_threads = 2;
  o.log_requests = false;
  o.max_num_seqs = 64;
  o.kv_cache_tokens = 64 * 256;
  return o;
}

class TestServer {
 public:
  explicit TestServer(ServerOptions options = test_options())
      : app_(std::move(options), {.handle_signals = false, .print_progress = false}) {
    app_.start();
    if (!app_.wait_until_loaded()) throw std::runtime_error("test server: model failed to load");
  }
  unsigned short port() const { return app_.port(); }
  App& app() { return app_; }

 private:
  App app_;
};

}  // namespace lmserve::server::test
