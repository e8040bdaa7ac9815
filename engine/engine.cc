// Engine: the thread-safe facade. Callers validate and enqueue commands under a short
// lock; the engine thread applies them between steps and runs EngineCore::step() while
// there is work. Callers never wait for model work.
#include "engine/engine.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <variant>

#include "engine/engine_core.h"
#include "engine/scoring/scoring.h"

namespace lmserve::engine {
namespace {

struct SubmitCommand {
  Request request;
  Clock::time_point arrival;
};
struct AbortCommand {
  std::string request_id;
};
struct StopCommand {
  std::string request_id;
  int sequence_index;
};
struct AbortAllCommand {};
using Command = std::variant<SubmitCommand, AbortCommand, StopCommand, AbortAllCommand>;

SubmitResult invalid(std::string param, std::string message) {
  return {SubmitStatus::Invalid, std::move(message), std::move(param)};
}

}  // namespace

struct Engine::Impl {
  Impl(std::unique_ptr<Model> model, const EngineOptions& opts)
      : options(opts),
        core(std::move(model), opts,
             [this](const std::string& id, bool delivered) { on_finished(id, delivered); }),
        config(core.model().config()),
        device(core.model().backend().name()) {
    stats = core.stats();
    thread = std::thread([this] { run(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    thread.join();
  }

  SubmitResult validate(const Request& r) const;
  void run();
  void apply(Command& command);
  // Engine thread: a request's final output is about to be / was delivered.
  void on_finished(const std::string& id, bool delivered) {
    std::lock_guard lock(mutex);
    if (!delivered) {
      active_ids.erase(id);
      return;
    }
    --in_flight;
    idle.notify_all();
  }
  void push(Command command) {
    {
      std::lock_guard lock(mutex);
      commands.push_back(std::move(command));
    }
    wake.notify_one();
  }

  EngineOptions options;
  EngineCore core;  // engine thread only
  const ModelConfig& config;
  std::string device;

  mutable std::mutex mutex;  // guards everything below
  std::condition_variable wake;  // engine thread: commands or stop
  std::condition_variable idle;  // drain(): a request finished
  std::deque<Command> commands;
  std::unordered_set<std::string> active_ids;  // accepted, final output not yet delivered
  int in_flight = 0;  // accepted requests whose final output has not been delivered
  int pending_submits = 0;
  bool accepting = true;
  bool stopping = false;
  EngineStats stats;
  std::thread thread;
};

SubmitResult Engine::Impl::validate(const Request& r) const {
  const int max_len = core.max_model_len();
  const int vocab = config.vocab_size;
  const int n = static_cast<int>(r.prompt.size());
  if (r.id.empty()) return invalid("request_id", "request id must not be empty");
  if (n == 0) return invalid("prompt", "prompt must not be empty");
  for (int i = 0; i < n; ++i) {
    if (r.prompt[i] < 0 || r.prompt[i] >= vocab)
      return invalid("prompt", "prompt token " + std::to_string(r.prompt[i]) + " at position " +
                                   std::to_string(i) + " is outside the vocabulary [0, " +
                                   std::to_string(vocab) + ")");
  }
  switch (r.kind) {
    case RequestKind::Generate: {
      try {
        validate_sampling_params(r.params, n, max_len, vocab);
      } catch (const InvalidParameter& e) {
        return invalid(e.param(), e.what());
      }
      const bool beams = r.params.use_beam_search;
      const int seats = beams ? r.params.num_beams : r.params.n;
      if (seats > options.max_num_seqs)
        return invalid(beams ? "num_beams" : "n",
                       std::string(beams ? "num_beams" : "n") + " is " + std::to_string(seats) +
                           ", more than the engine's max_num_seqs " +
                           std::to_string(options.max_num_seqs));
      break;
    }
    case RequestKind::Score: {
      const ScoreOptions& s = r.score;
      if (s.top_logprobs < 0 || s.top_logprobs > 20)
        return invalid("top_logprobs", "top_logprobs must be in [0, 20], got " + std::to_string(s.top_logprobs));
      const int window = s.window > 0 ? s.window : max_len;
      if (s.window < 0 || window < 2 || window > max_len)
        return invalid("window", "window must be in [2, " + std::to_string(max_len) + "], got " +
                                     std::to_string(s.window));
      if (s.stride < 0 || s.stride > window)
        return invalid("stride", "stride must be in [1, window], got " + std::to_string(s.stride));
      break;
    }
    case RequestKind::Embed:
      if (n > max_len)
        return invalid("prompt", "prompt has " + std::to_string(n) +
                                     " tokens, more than max_model_len " + std::to_string(max_len));
      break;
  }
  return {};
}

void Engine::Impl::apply(Command& command) {
  if (auto* s = std::get_if<SubmitCommand>(&command)) {
    core.add(std::move(s->request), s->arrival);
  } else if (auto* a = std::get_if<AbortCommand>(&command)) {
    core.abort(a->request_id);
  } else if (auto* st = std::get_if<StopCommand>(&command)) {
    core.stop_sequence(st->request_id, st->sequence_index);
  } else {
    core.abort_all();
  }
}

void Engine::Impl::run() {
  while (true) {
    std::deque<Command> batch;
    bool stop = false;
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [&] { return stopping || !commands.empty() || core.has_work(); });
      batch.swap(commands);
      stop = stopping;
    }
    for (Command& c : batch) {
      if (std::holds_alternative<SubmitCommand>(c)) {
        std::lock_guard lock(mutex);
        --pending_submits;
      }
      apply(c);
    }
    if (stop) {
      core.abort_all();
      std::lock_guard lock(mutex);
      stats = core.stats();
      return;
    }
    bool progressed = core.has_work() ? core.step() : false;
    {
      std::lock_guard lock(mutex);
      stats = core.stats();
    }
    if (!progressed && core.has_work()) {
      // Nothing schedulable right now (should not last): wait for a command instead of spinning.
      std::unique_lock lock(mutex);
      wake.wait_for(lock, std::chrono::milliseconds(5), [&] { return stopping || !commands.empty(); });
    }
  }
}

Engine::Engine(std::unique_ptr<Model> model, const EngineOptions& options)
    : impl_(std::make_unique<Impl>(std::move(model), options)) {}

Engine::~Engine() = default;

SubmitResult Engine::submit(Request request) {
  SubmitResult check = impl_->validate(request);
  if (check.status != SubmitStatus::Accepted) return check;
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->accepting || impl_->stopping)
      return {SubmitStatus::ShuttingDown, "the engine is shutting down", ""};
    if (impl_->active_ids.count(request.id))
      return invalid("request_id", "request id '" + request.id + "' is already in use");
    if (impl_->pending_submits + impl_->stats.num_waiting >= impl_->options.max_queue)
      return {SubmitStatus::QueueFull,
              "the waiting queue is full (" + std::to_string(impl_->options.max_queue) + " requests)", ""};
    impl_->active_ids.insert(request.id);
    ++impl_->in_flight;
    ++impl_->pending_submits;
    impl_->commands.push_back(SubmitCommand{std::move(request), Clock::now()});
  }
  impl_->wake.notify_one();
  return {};
}

void Engine::abort(const std::string& request_id) { impl_->push(AbortCommand{request_id}); }

void Engine::stop_sequence(const std::string& request_id, int sequence_index) {
  impl_->push(StopCommand{request_id, sequence_index});
}

void Engine::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  impl_->accepting = false;
  if (impl_->idle.wait_for(lock, timeout, [&] { return impl_->in_flight == 0; })) return;
  impl_->commands.push_back(AbortAllCommand{});
  impl_->wake.notify_one();
  impl_->idle.wait(lock, [&] { return impl_->in_flight == 0; });
}

EngineStats Engine::stats() const {
  std::lock_guard lock(impl_->mutex);
  EngineStats s = impl_->stats;
  s.num_waiting += impl_->pending_submits;
  return s;
}

const ModelConfig& Engine::model_config() const { return impl_->config; }
int Engine::max_model_len() const { return impl_->core.max_model_len(); }
const EngineOptions& Engine::options() const { return impl_->options; }
std::string Engine::device_name() const { return impl_->device; }

}  // namespace lmserve::engine
