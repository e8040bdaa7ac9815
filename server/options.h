// ServerOptions: every setting of `lmserve serve`. Precedence, lowest first: the defaults
// below (configs/default.json lists the same values), a --config JSON file, the
// LMSERVE_API_KEY environment variable, command-line flags.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace lmserve::server {

struct ServerOptions {
  // Model and device.
  std::string model;              // folder with config.json, weights, tokenizer.json; "" = demo/
  std::string served_model_name;  // "" = the model folder's name
  std::string device = "auto";    // auto | cpu | cuda
  std::string dtype;              // "" = as stored (CPU) / backend default (CUDA)
  int threads = 0;                // CPU compute threads, 0 = all cores

  // Engine (see engine::EngineOptions).
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_queue = 1024;
  int max_model_len = 0;
  int kv_cache_tokens = 0;
  double gpu_memory_utilization = 0.9;
  int block_size = 16;

  // HTTP.
  std::string host = "127.0.0.1";
  int port = 8000;
  int io_threads = 2;
  std::string api_key;                       // "" = no authentication
  std::vector<std::string> allowed_origins;  // CORS; empty = no CORS headers
  int64_t max_body_bytes = 8 << 20;
  double header_timeout = 30.0;    // s to receive a request's headers (also keep-alive idle)
  double body_timeout = 60.0;      // s to receive its body
  double request_timeout = 600.0;  // s a request may wait for the engine; 0 = no limit
  double shutdown_timeout = 30.0;  // s SIGTERM waits for in-flight requests
  bool log_requests = true;        // one JSON line per request on stderr

  engine::EngineOptions engine_options() const;
};

// Applies the keys of a JSON object onto `options`. Unknown keys and wrong types are
// errors: std::runtime_error("<source>: <key>: ...").
void apply_options_json(ServerOptions& options, const nlohmann::json& config, const std::string& source);
// Reads a config file (throws naming the file).
void apply_options_file(ServerOptions& options, const std::string& path);
nlohmann::json options_to_json(const ServerOptions& options);
// Range checks (ports, counts, timeouts); throws std::runtime_error naming the option.
void validate_options(const ServerOptions& options);

// demo/ of the source tree: next to the executable's build tree when it is run from one
// (…/build/X/cli/lmserve → source dir recorded in CMakeCache), else the source directory
// compiled in (LMSERVE_DEFAULT_SOURCE_DIR), else the LMSERVE_DEMO_DIR environment variable.
std::string default_demo_model_dir();

}  // namespace lmserve::server
