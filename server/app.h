// App: wires a server together — I/O threads and listener first (so /health answers 503
// while loading), then backend, model, tokenizer and engine on a loader thread, then the
// ready flag. Shutdown (SIGTERM/SIGINT, or shutdown()) stops accepting, drains in-flight
// requests up to --shutdown-timeout, and tears down in dependency order.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/options.h"

namespace lmserve::server {

class App {
 public:
  struct Hooks {
    bool handle_signals = false;  // install SIGTERM/SIGINT handlers (the CLI does; tests do not)
    bool print_progress = true;   // load progress and ready lines on stdout
  };
  // Resolves the model folder (demo/ when options.model is empty) and the served name.
  App(ServerOptions options, Hooks hooks);
  ~App();  // shutdown() if still running
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Binds, starts the I/O threads and the model loader. Throws when it cannot listen.
  void start();
  unsigned short port() const;
  std::string url() const;
  // Blocks until the model is loaded (true) or failed to load (false).
  bool wait_until_loaded();
  // Blocks until a signal or shutdown() was requested, then shuts down. Returns 0.
  int wait();
  // Graceful shutdown; idempotent; safe from any thread except an I/O thread.
  void request_shutdown();
  void shutdown();

  const std::string& model_dir() const;
  const std::string& served_model_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmserve::server
