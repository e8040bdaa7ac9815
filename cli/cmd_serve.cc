// `lmserve serve`: the OpenAI-compatible HTTP server. Options come from (lowest first)
// built-in defaults, --config FILE, LMSERVE_API_KEY, then the flags below; each flag
// mirrors a key of configs/default.json.
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "server/app.h"
#include "server/options.h"

namespace {

using lmserve::server::ServerOptions;

struct ServeFlags {
  std::string config;
  ServerOptions values;  // flag targets; only flags given on the command line are applied
};

void register_serve(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  ServerOptions& v = flags->values;
  std::vector<std::pair<CLI::Option*, std::function<void(ServerOptions&)>>> overrides;
  // Each flag writes into `flags->values`; only flags actually given are copied over the
  // config file's values (pointer-to-member keeps flag and field in one place).
  auto flag = [&](const std::string& name, auto member, const std::string& help) {
    CLI::Option* opt = cmd->add_option(name, v.*member, help);
    overrides.emplace_back(opt, [flags, member](ServerOptions& target) { target.*member = flags->values.*member; });
  };
  cmd->add_option("--config", flags->config, "JSON config file (see configs/); flags override it");
  flag("--model", &ServerOptions::model, "Model folder: config.json, *.safetensors, tokenizer.json (default: the bundled demo/)");
  flag("--served-model-name", &ServerOptions::served_model_name, "Model name in the API (default: the folder's name)");
  flag("--host", &ServerOptions::host, "Address to listen on (default 127.0.0.1)");
  flag("--port", &ServerOptions::port, "Port (default 8000; 0 = any free port)");
  flag("--api-key", &ServerOptions::api_key, "Require 'Authorization: Bearer KEY' (also env LMSERVE_API_KEY)");
  flag("--allowed-origins", &ServerOptions::allowed_origins, "CORS origins allowed ('*' for any); CORS is off without it");
  flag("--device", &ServerOptions::device, "auto | cpu | cuda");
  flag("--dtype", &ServerOptions::dtype, "Weight dtype: f32 | f16 | bf16 (default: as stored)");
  flag("--threads", &ServerOptions::threads, "CPU compute threads (0 = all cores)");
  flag("--io-threads", &ServerOptions::io_threads, "HTTP I/O threads");
  flag("--max-num-seqs", &ServerOptions::max_num_seqs, "Running sequences at most");
  flag("--max-num-batched-tokens", &ServerOptions::max_num_batched_tokens, "Tokens per engine step (decode + chunked prefill)");
  flag("--max-queue", &ServerOptions::max_queue, "Waiting requests at most; beyond it requests get 429");
  flag("--max-model-len", &ServerOptions::max_model_len, "Context length (0 = the model's)");
  flag("--kv-cache-tokens", &ServerOptions::kv_cache_tokens, "CPU KV cache capacity in tokens (0 = automatic)");
  flag("--gpu-memory-utilization", &ServerOptions::gpu_memory_utilization, "CUDA: fraction of device memory to use");
  flag("--block-size", &ServerOptions::block_size, "KV cache block size in tokens");
  flag("--max-body-bytes", &ServerOptions::max_body_bytes, "Largest request body; larger gets 413");
  flag("--header-timeout", &ServerOptions::header_timeout, "Seconds to receive request headers (and keep-alive idle time)");
  flag("--body-timeout", &ServerOptions::body_timeout, "Seconds to receive a request body (and to write a response)");
  flag("--request-timeout", &ServerOptions::request_timeout, "Seconds a request may run (0 = no limit); then 504");
  flag("--shutdown-timeout", &ServerOptions::shutdown_timeout, "Seconds SIGTERM waits for in-flight requests");
  flag("--log-requests", &ServerOptions::log_requests, "One JSON line per request on stderr (true/false)");

  cmd->callback([flags, overrides] {
    ServerOptions options;
    if (!flags->config.empty()) lmserve::server::apply_options_file(options, flags->config);
    if (const char* key = std::getenv("LMSERVE_API_KEY"); key && *key) options.api_key = key;
    for (const auto& [opt, apply] : overrides)
      if (opt->count() > 0) apply(options);
    lmserve::server::App server(std::move(options), {.handle_signals = true, .print_progress = true});
    server.start();
    if (!server.wait_until_loaded()) throw std::runtime_error("the model could not be loaded (see above)");
    server.wait();
  });
}

LMSERVE_COMMAND(register_serve);

}  // namespace
