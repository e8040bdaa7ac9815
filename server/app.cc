// Server wiring and lifecycle (see app.h).
#include "server/app.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>

#include "engine/engine.h"
#include "engine/model/model.h"
#include "kernels/backend.h"
#include "server/context.h"
#include "server/http/listener.h"
#include "server/http/session.h"
#include "server/text.h"

namespace lmserve::server {

namespace net = boost::asio;
using SteadyClock = std::chrono::steady_clock;

struct App::Impl {
  Hooks hooks;
  std::unique_ptr<ServerContext> ctx;
  std::unique_ptr<http::SessionShared> shared;
  std::unique_ptr<net::io_context> ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::unique_ptr<http::Listener> listener;
  std::unique_ptr<net::signal_set> signals;
  std::vector<std::thread> io_threads;
  std::thread loader;
  // Destroyed in reverse: engine (owns the model) before text and backend.
  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<TextCodec> text;
  std::unique_ptr<engine::Engine> engine;

  std::mutex mutex;
  std::condition_variable cv;
  bool loaded = false, load_failed = false, shutdown_requested = false, shut_down = false;

  void say(const std::string& line) {
    if (!hooks.print_progress) return;
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

  void load() {
    const ServerOptions& o = ctx->options;
    auto t0 = SteadyClock::now();
    try {
      std::string device = o.device == "auto" ? kernels::default_device() : o.device;
      say("lmserve: loading model " + ctx->model_dir + " on " + device + (o.dtype.empty() ? "" : " as " + o.dtype) +
          " ...");
      kernels::BackendOptions bo;
      bo.threads = o.threads;
      backend = kernels::make_backend(device, bo);
      engine::LoadOptions lo;
      lo.dtype = o.dtype;
      auto model = engine::Model::load(ctx->model_dir, *backend, lo);
      char params[32];
      std::snprintf(params, sizeof params, "%.1fM", static_cast<double>(model->parameter_count()) / 1e6);
      say(std::string("lmserve: weights loaded (") + params + " parameters); loading tokenizer ...");
      text = TextCodec::load(ctx->model_dir);
      engine = std::make_unique<engine::Engine>(std::move(model), o.engine_options());
      auto stats = engine->stats();
      ctx->metrics.set_cache_config(stats.block_size, stats.kv_blocks_total);
      ctx->engine = engine.get();
      ctx->text = text.get();
      ctx->ready.store(true, std::memory_order_release);
      double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.2f", secs);
      say("lmserve: model " + ctx->model_name + " ready in " + buf + " s on " + backend->name() + " (" +
          std::to_string(stats.kv_blocks_total) + " KV blocks of " + std::to_string(stats.block_size) +
          " tokens, max_model_len " + std::to_string(engine->max_model_len()) + ")");
      say("lmserve: serving on " + url());
      std::lock_guard lock(mutex);
      loaded = true;
    } catch (const std::exception& e) {
      ctx->load_error = e.what();
      ctx->load_failed.store(true, std::memory_order_release);
      std::fprintf(stderr, "error: cannot load model %s: %s\n", ctx->model_dir.c_str(), e.what());
      std::lock_guard lock(mutex);
      load_failed = true;
    }
    cv.notify_all();
  }

  std::string url() const {
    std::string host = ctx->options.host;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(listener ? listener->port() : 0);
  }
};

App::App(ServerOptions options, Hooks hooks) : impl_(std::make_unique<Impl>()) {
  namespace fs = std::filesystem;
  impl_->hooks = hooks;
  if (options.model.empty()) options.model = default_demo_model_dir();
  validate_options(options);
  std::string dir = options.model;
  std::string name = options.served_model_name;
  if (name.empty()) {
    fs::path p = fs::path(dir).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    name = p.filename().string();
    if (name.empty()) name = "model";
  }
  impl_->ctx = std::make_unique<ServerContext>(std::move(options), name);
  impl_->ctx->model_dir = dir;
  impl_->ctx->created = std::time(nullptr);
  impl_->shared = std::make_unique<http::SessionShared>(*impl_->ctx);
}

App::~App() { shutdown(); }

void App::start() {
  Impl& m = *impl_;
  const ServerOptions& o = m.ctx->options;
  m.ioc = std::make_unique<net::io_context>(o.io_threads);
  m.work.emplace(m.ioc->get_executor());
  m.listener = std::make_unique<http::Listener>(*m.ioc, o.host, o.port, *m.shared);
  m.listener->start();
  if (m.hooks.handle_signals) {
    m.signals = std::make_unique<net::signal_set>(*m.ioc, SIGINT, SIGTERM);
    m.signals->async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) request_shutdown();
    });
  }
  for (int i = 0; i < o.io_threads; ++i) m.io_threads.emplace_back([&m] { m.ioc->run(); });
  m.say("lmserve: listening on " + m.url() + " (model loading; /health answers 503 until ready)");
  m.loader = std::thread([&m] { m.load(); });
}

unsigned short App::port() const { return impl_->listener ? impl_->listener->port() : 0; }
std::string App::url() const { return impl_->url(); }
const std::string& App::model_dir() const { return impl_->ctx->model_dir; }
const std::string& App::served_model_name() const { return impl_->ctx->model_name; }

bool App::wait_until_loaded() {
  std::unique_lock lock(impl_->mutex);
  impl_->cv.wait(lock, [&] { return impl_->loaded || impl_->load_failed; });
  return impl_->loaded;
}

void App::request_shutdown() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutdown_requested = true;
  }
  impl_->cv.notify_all();
}

int App::wait() {
  {
    std::unique_lock lock(impl_->mutex);
    impl_->cv.wait(lock, [&] { return impl_->shutdown_requested; });
  }
  shutdown();
  return 0;
}

void App::shutdown() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mutex);
    if (m.shut_down) return;
    m.shut_down = true;
  }
  if (!m.ioc) return;
  auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(m.ctx->options.shutdown_timeout));
  m.ctx->draining.store(true);
  m.listener->stop();
  if (m.signals) {
    boost::system::error_code ignored;
    m.signals->cancel(ignored);
  }
  m.say("lmserve: shutting down; draining in-flight requests (up to " +
        std::to_string(static_cast<int>(m.ctx->options.shutdown_timeout)) + " s)");
  if (m.loader.joinable()) m.loader.join();
  if (m.engine) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    m.engine->drain(std::max(left, std::chrono::milliseconds(0)));
  }
  // Let the sessions write what the engine finished.
  while (m.shared->in_flight.load() > 0 && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  m.work.reset();
  m.ioc->stop();
  for (auto& t : m.io_threads) t.join();
  m.io_threads.clear();
  m.ctx->ready.store(false);
  m.engine.reset();
  m.listener.reset();
  m.signals.reset();
  m.ioc.reset();  // destroys the remaining session coroutines (idle keep-alive connections)
  m.text.reset();
  m.backend.reset();
}

}  // namespace lmserve::server
