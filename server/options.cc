// Loading ServerOptions from JSON config files; the key names match the CLI flags with
// '-' replaced by '_'.
#include "server/options.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace lmserve::server {

using nlohmann::json;

engine::EngineOptions ServerOptions::engine_options() const {
  engine::EngineOptions e;
  e.max_num_seqs = max_num_seqs;
  e.max_num_batched_tokens = max_num_batched_tokens;
  e.max_queue = max_queue;
  e.max_model_len = max_model_len;
  e.kv_cache_tokens = kv_cache_tokens;
  e.gpu_memory_utilization = static_cast<float>(gpu_memory_utilization);
  e.block_size = block_size;
  return e;
}

namespace {

template <typename T>
void read_value(const json& v, T& out, const std::string& where) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw std::runtime_error(where + ": expected a boolean, got " + v.dump());
    out = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) throw std::runtime_error(where + ": expected an integer, got " + v.dump());
    out = v.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw std::runtime_error(where + ": expected a number, got " + v.dump());
    out = v.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw std::runtime_error(where + ": expected a string, got " + v.dump());
    out = v.get<std::string>();
  } else {
    if (!v.is_array()) throw std::runtime_error(where + ": expected a list of strings, got " + v.dump());
    out.clear();
    for (const json& s : v) {
      if (!s.is_string()) throw std::runtime_error(where + ": expected a list of strings, got " + v.dump());
      out.push_back(s.get<std::string>());
    }
  }
}

// One table drives reading, writing and the docs test, so a new option is one line here.
template <typename Fn>
void for_each_option(ServerOptions& o, Fn&& fn) {
  fn("model", o.model);
  fn("served_model_name", o.served_model_name);
  fn("device", o.device);
  fn("dtype", o.dtype);
  fn("threads", o.threads);
  fn("max_num_seqs", o.max_num_seqs);
  fn("max_num_batched_tokens", o.max_num_batched_tokens);
  fn("max_queue", o.max_queue);
  fn("max_model_len", o.max_model_len);
  fn("kv_cache_tokens", o.kv_cache_tokens);
  fn("gpu_memory_utilization", o.gpu_memory_utilization);
  fn("block_size", o.block_size);
  fn("host", o.host);
  fn("port", o.port);
  fn("io_threads", o.io_threads);
  fn("api_key", o.api_key);
  fn("allowed_origins", o.allowed_origins);
  fn("max_body_bytes", o.max_body_bytes);
  fn("header_timeout", o.header_timeout);
  fn("body_timeout", o.body_timeout);
  fn("request_timeout", o.request_timeout);
  fn("shutdown_timeout", o.shutdown_timeout);
  fn("log_requests", o.log_requests);
}

}  // namespace

void apply_options_json(ServerOptions& options, const json& config, const std::string& source) {
  if (!config.is_object()) throw std::runtime_error(source + ": expected a JSON object");
  for (auto it = config.begin(); it != config.end(); ++it) {
    bool known = false;
    for_each_option(options, [&](const char* key, auto& field) {
      if (it.key() != key) return;
      known = true;
      read_value(it.value(), field, source + ": " + key);
    });
    // "_comment" keys document config files in place.
    if (!known && it.key().rfind("_comment", 0) != 0)
      throw std::runtime_error(source + ": unknown option '" + it.key() + "'");
  }
}

void apply_options_file(ServerOptions& options, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open config file");
  json config;
  try {
    config = json::parse(in);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
  apply_options_json(options, config, path);
}

json options_to_json(const ServerOptions& options) {
  ServerOptions copy = options;
  json out = json::object();
  for_each_option(copy, [&](const char* key, auto& field) { out[key] = field; });
  return out;
}

void validate_options(const ServerOptions& o) {
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("invalid option " + what);
  };
  check(o.port >= 0 && o.port <= 65535, "--port: must be in [0, 65535]");
  check(o.io_threads >= 1 && o.io_threads <= 256, "--io-threads: must be in [1, 256]");
  check(o.threads >= 0, "--threads: must be >= 0");
  check(o.max_num_seqs >= 1, "--max-num-seqs: must be >= 1");
  check(o.max_num_batched_tokens >= 1, "--max-num-batched-tokens: must be >= 1");
  check(o.max_queue >= 0, "--max-queue: must be >= 0");
  check(o.max_model_len >= 0, "--max-model-len: must be >= 0");
  check(o.kv_cache_tokens >= 0, "--kv-cache-tokens: must be >= 0");
  check(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1,
        "--gpu-memory-utilization: must be in (0, 1]");
  check(o.block_size >= 1, "--block-size: must be >= 1");
  check(o.max_body_bytes >= 1024, "--max-body-bytes: must be >= 1024");
  check(o.header_timeout > 0, "--header-timeout: must be > 0");
  check(o.body_timeout > 0, "--body-timeout: must be > 0");
  check(o.request_timeout >= 0, "--request-timeout: must be >= 0");
  check(o.shutdown_timeout >= 0, "--shutdown-timeout: must be >= 0");
  check(o.device == "auto" || o.device == "cpu" || o.device == "cuda", "--device: must be auto, cpu or cuda");
}

std::string default_demo_model_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("LMSERVE_DEMO_DIR"); env && *env) return env;
  std::error_code ec;
  // A build tree records its source directory in CMakeCache.txt; walk up from the executable.
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      if (fs::exists(dir / "demo" / "config.json", ec)) return (dir / "demo").string();
      std::ifstream cache(dir / "CMakeCache.txt");
      std::string line;
      const std::string key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
      while (cache && std::getline(cache, line)) {
        if (line.rfind(key, 0) == 0) {
          fs::path demo = fs::path(line.substr(key.size())) / "demo";
          if (fs::exists(demo / "config.json", ec)) return demo.string();
        }
      }
    }
  }
#ifdef LMSERVE_DEFAULT_SOURCE_DIR
  return (fs::path(LMSERVE_DEFAULT_SOURCE_DIR) / "demo").string();
#else
  return "demo";
#endif
}

}  // namespace lmserve::server
