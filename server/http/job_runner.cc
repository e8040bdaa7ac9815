// Job execution on a session's strand (see job_runner.h).
#include "server/http/job_runner.h"

#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "server/http/async_queue.h"
#include "server/schemas/errors.h"
#include "server/sse.h"

namespace lmserve::server::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using net::ip::tcp;
using namespace net::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = net::as_tuple(net::use_awaitable);

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

template <typename Message>
void add_common_headers(Message& m, const WriteTarget& target) {
  m.set(bhttp::field::server, "lmserve");
  for (const auto& [k, v] : target.extra_headers) m.set(k, v);
  m.keep_alive(target.keep_alive);
}

// Completes with true when the peer closed (EOF or error), false when it sent more bytes
// (a pipelined request: stop watching) or the wait was cancelled. Readiness alone is not
// trusted: a one-byte MSG_PEEK tells EOF (0) from data (> 0) from a spurious wake-up.
net::awaitable<bool> wait_for_hangup(tcp::socket& socket) {
  for (;;) {
    auto [ec] = co_await socket.async_wait(tcp::socket::wait_read, kTuple);
    if (ec == net::error::operation_aborted) co_return false;
    if (ec) co_return true;
    char byte;
    ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) co_return true;
    if (n > 0) co_return false;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) co_return true;
  }
}

net::awaitable<void> wait_for(net::steady_timer& timer) { co_await timer.async_wait(kTuple); }

class SseWriter {
 public:
  explicit SseWriter(WriteTarget& t) : target_(t), chunked_(t.version >= 11) {}

  net::awaitable<bool> start() {
    bhttp::response<bhttp::empty_body> res{bhttp::status::ok, target_.version};
    res.set(bhttp::field::content_type, "text/event-stream");
    res.set(bhttp::field::cache_control, "no-cache");
    res.set("X-Accel-Buffering", "no");  // reverse proxies must not buffer the stream
    add_common_headers(res, target_);
    if (chunked_) res.chunked(true);
    else target_.keep_alive = false;  // HTTP/1.0: the end of the stream is the end of the connection
    res.keep_alive(target_.keep_alive);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    target_.stream.expires_after(seconds(target_.write_timeout));
    auto [ec, n] = co_await bhttp::async_write_header(target_.stream, sr, kTuple);
    co_return !ec;
  }

  net::awaitable<bool> write(const std::string& data) {
    if (data.empty()) co_return true;
    target_.stream.expires_after(seconds(target_.write_timeout));
    boost::system::error_code ec;
    if (chunked_) std::tie(ec, std::ignore) = co_await net::async_write(target_.stream, bhttp::make_chunk(net::buffer(data)), kTuple);
    else std::tie(ec, std::ignore) = co_await net::async_write(target_.stream, net::buffer(data), kTuple);
    target_.stream.expires_never();
    co_return !ec;
  }

  net::awaitable<bool> finish() {
    if (!chunked_) co_return true;
    target_.stream.expires_after(seconds(target_.write_timeout));
    auto [ec, n] = co_await net::async_write(target_.stream, bhttp::make_chunk_last(), kTuple);
    co_return !ec;
  }

 private:
  WriteTarget& target_;
  bool chunked_;
};

Response submit_error(const engine::SubmitResult& r) {
  switch (r.status) {
    case engine::SubmitStatus::QueueFull:
      return Response::json(429, error_body(overloaded("the server is at capacity (waiting queue full: " + r.message +
                                                       "); retry later")));
    case engine::SubmitStatus::Invalid:
      return Response::json(400, error_body(r.message, "invalid_request_error", r.param));
    case engine::SubmitStatus::ShuttingDown:
      return Response::json(503, error_body(unavailable("the server is shutting down")));
    default:
      return Response::json(500, error_body(internal_error("unexpected submit status")));
  }
}

}  // namespace

net::awaitable<bool> write_response(WriteTarget& target, const Response& r) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), target.version};
  if (!r.content_type.empty()) res.set(bhttp::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  add_common_headers(res, target);
  res.body() = r.body;
  res.prepare_payload();
  target.stream.expires_after(seconds(target.write_timeout));
  auto [ec, n] = co_await bhttp::async_write(target.stream, res, kTuple);
  co_return !ec;
}

net::awaitable<JobResult> run_job(WriteTarget& target, Job& job, ServerContext& ctx) {
  engine::Engine& engine = *ctx.engine;
  auto queue = std::make_shared<AsyncQueue<EngineEvent>>(co_await net::this_coro::executor);
  std::vector<std::string> ids;
  for (engine::Request& r : job.requests()) {
    r.on_output = [queue](engine::RequestOutput&& out) {
      queue->push(EngineEvent{std::move(out), engine::Clock::now()});
    };
    std::string id = r.id;
    engine::SubmitResult submitted = engine.submit(std::move(r));
    if (submitted.status != engine::SubmitStatus::Accepted) {
      // All or nothing: a multi-prompt call must not leave half its prompts running.
      for (const auto& done : ids) engine.abort(done);
      Response err = submit_error(submitted);
      bool ok = co_await write_response(target, err);
      co_return JobResult{err.status, ok};
    }
    ids.push_back(std::move(id));
  }
  // Aborted requests' final outputs are not read any more; count them here.
  auto abort_all = [&] {
    for (const auto& id : ids) {
      engine.abort(id);
      ctx.metrics.observe_request({}, engine::FinishReason::Abort, 0, {});
    }
  };

  SseWriter sse(target);
  if (job.streaming() && !co_await sse.start()) {
    abort_all();
    co_return JobResult{499, false};
  }

  tcp::socket& socket = target.stream.socket();
  net::steady_timer deadline(co_await net::this_coro::executor);
  double limit = ctx.options.request_timeout;
  deadline.expires_after(limit > 0 ? seconds(limit) : std::chrono::hours(24 * 365));
  target.stream.expires_never();
  bool watch_hangup = true, client_gone = false, timed_out = false;

  while (!job.finished()) {
    std::optional<EngineEvent> event = queue->try_pop();
    if (!event) {
      if (watch_hangup) {
        auto r = co_await (queue->pop() || wait_for_hangup(socket) || wait_for(deadline));
        if (r.index() == 0) event = std::move(std::get<0>(r));
        else if (r.index() == 1) {
          if (std::get<1>(r)) client_gone = true;
          else watch_hangup = false;
        } else {
          timed_out = true;
        }
      } else {
        auto r = co_await (queue->pop() || wait_for(deadline));
        if (r.index() == 0) event = std::move(std::get<0>(r));
        else timed_out = true;
      }
      if (client_gone || timed_out) break;
      if (!event) continue;
    }
    // Take everything already queued, then write once: fewer, larger chunks under load.
    std::string data;
    std::optional<std::string> failure;
    try {
      while (event) {
        JobStep step = job.on_output(std::move(*event));
        for (const auto& stop : step.stops) engine.stop_sequence(stop.request_id, stop.sequence_index);
        data += step.stream_data;
        event = job.finished() ? std::nullopt : queue->try_pop();
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (failure) {
      // A response that cannot be assembled (e.g. an id the tokenizer lacks) ends the
      // request; the connection stays usable.
      abort_all();
      auto body = error_body(internal_error("cannot build the response: " + *failure));
      if (!job.streaming()) {
        bool ok = co_await write_response(target, Response::json(500, body));
        co_return JobResult{500, ok};
      }
      bool ok = co_await sse.write(data + sse::event(body) + sse::done()) && co_await sse.finish();
      co_return JobResult{500, ok};
    }
    if (job.streaming() && !co_await sse.write(data)) {
      client_gone = true;
      break;
    }
  }

  if (client_gone) {
    abort_all();
    co_return JobResult{499, false};
  }
  if (timed_out) {
    abort_all();
    ApiError err(504, "timeout", "the request did not finish within --request-timeout (" +
                                     std::to_string(static_cast<int>(limit)) + " s)");
    if (!job.streaming()) {
      bool ok = co_await write_response(target, Response::json(504, error_body(err)));
      co_return JobResult{504, ok};
    }
    bool ok = co_await sse.write(sse::event(error_body(err)) + sse::done()) && co_await sse.finish();
    co_return JobResult{504, ok};
  }
  Response final = job.final_response();
  if (!job.streaming()) {
    bool ok = co_await write_response(target, final);
    co_return JobResult{final.status, ok};
  }
  bool ok = co_await sse.write(final.body) && co_await sse.finish();
  co_return JobResult{200, ok};
}

}  // namespace lmserve::server::http
