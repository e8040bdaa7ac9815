// The per-connection coroutine (see session.h).
#include "server/http/session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <variant>

#include "server/http/job_runner.h"
#include "server/router.h"
#include "server/schemas/errors.h"

namespace lmserve::server::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using net::ip::tcp;

namespace {

constexpr auto kTuple = net::as_tuple(net::use_awaitable);
constexpr uint32_t kHeaderLimit = 64 * 1024;

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

std::string make_request_id(uint64_t counter) {
  // Unique across restarts (time prefix) and within a run (counter); short enough to read.
  char buf[40];
  std::snprintf(buf, sizeof buf, "%llx%06llx", static_cast<unsigned long long>(std::time(nullptr)),
                static_cast<unsigned long long>(counter & 0xffffff));
  return buf;
}

void log_request(const ServerContext& ctx, const std::string& id, const std::string& method,
                 const std::string& endpoint, int status, int prompt_tokens, int completion_tokens,
                 double latency_ms, const std::string& remote) {
  if (!ctx.options.log_requests) return;
  nlohmann::json line = {{"ts", std::time(nullptr)},
                         {"id", id},
                         {"method", method},
                         {"endpoint", endpoint},
                         {"status", status},
                         {"prompt_tokens", prompt_tokens},
                         {"completion_tokens", completion_tokens},
                         {"latency_ms", std::round(latency_ms * 1000) / 1000},
                         {"remote", remote}};
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);  // one write: lines never interleave
}

// Errors before a request could be routed (parse errors, limits): answer and close.
net::awaitable<void> reject(beast::tcp_stream& stream, SessionShared& shared, int status, const std::string& message,
                            const std::string& code) {
  WriteTarget target{stream, 11, false, {}, shared.ctx.options.body_timeout};
  co_await write_response(target, Response::json(status, error_body(message, "invalid_request_error", {}, code)));
  // Lingering close: read (and drop) what the client is still sending for a moment, so
  // closing with unread data does not reset the connection before it reads the error.
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 16384> scratch;
  stream.expires_after(std::chrono::seconds(1));
  for (size_t drained = 0; !ec && drained < (64u << 20);) {
    auto [read_ec, n] = co_await stream.async_read_some(net::buffer(scratch), kTuple);
    ec = read_ec;
    drained += n;
  }
  shared.ctx.metrics.observe_http("other", status);
  log_request(shared.ctx, "-", "-", "other", status, 0, 0, 0, "");
}

}  // namespace

net::awaitable<void> run_session(tcp::socket socket, SessionShared& shared) {
  ServerContext& ctx = shared.ctx;
  const ServerOptions& opt = ctx.options;
  std::string remote;
  {
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;

  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(static_cast<uint64_t>(opt.max_body_bytes));
    // The header timeout also bounds how long an idle keep-alive connection is kept.
    stream.expires_after(seconds(opt.header_timeout));
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted)
      break;
    if (ec == bhttp::error::body_limit) {
      co_await reject(stream, shared, 413,
                      "request body exceeds --max-body-bytes (" + std::to_string(opt.max_body_bytes) + ")",
                      "payload_too_large");
      break;
    }
    if (ec == bhttp::error::header_limit) {
      co_await reject(stream, shared, 431, "request headers exceed 64 KiB", "headers_too_large");
      break;
    }
    if (ec) {
      co_await reject(stream, shared, 400, "malformed HTTP request: " + ec.message(), "bad_request");
      break;
    }
    if (!parser.is_done()) {
      auto& header = parser.get();
      auto expect = header[bhttp::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, header.version()};
        stream.expires_after(seconds(opt.body_timeout));
        co_await bhttp::async_write(stream, cont, kTuple);
      }
      stream.expires_after(seconds(opt.body_timeout));
      auto [body_ec, m] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
      if (body_ec == bhttp::error::body_limit) {
        co_await reject(stream, shared, 413,
                        "request body exceeds --max-body-bytes (" + std::to_string(opt.max_body_bytes) + ")",
                        "payload_too_large");
        break;
      }
      // A timeout has already closed the socket (Beast closes it to cancel the read), so a
      // slow body ends the connection without a response.
      if (body_ec) break;
    }
    stream.expires_never();

    bhttp::request<bhttp::string_body> req = parser.release();
    auto start = std::chrono::steady_clock::now();
    ApiRequest api;
    api.method = std::string(req.method_string());
    std::string target(req.target());
    api.path = target.substr(0, target.find('?'));
    api.body = std::move(req.body());
    api.authorization = std::string(req[bhttp::field::authorization]);
    api.origin = std::string(req[bhttp::field::origin]);
    api.request_id = make_request_id(shared.next_request.fetch_add(1));

    shared.in_flight.fetch_add(1);
    WriteTarget out{stream, req.version(), req.keep_alive() && !ctx.draining.load(), cors_headers(ctx, api.origin),
                    opt.body_timeout};
    int status = 200, prompt_tokens = 0, completion_tokens = 0;
    bool connection_ok = true;
    RouteResult routed = handle_request(ctx, api);
    if (auto* response = std::get_if<Response>(&routed)) {
      status = response->status;
      connection_ok = co_await write_response(out, *response);
    } else {
      Job& job = *std::get<std::unique_ptr<Job>>(routed);
      JobResult result = co_await run_job(out, job, ctx);
      status = result.status;
      connection_ok = result.connection_ok;
      prompt_tokens = job.prompt_tokens();
      completion_tokens = job.completion_tokens();
    }
    shared.in_flight.fetch_sub(1);

    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::string endpoint = endpoint_label(api.path);
    ctx.metrics.observe_http(endpoint, status);
    log_request(ctx, api.request_id, api.method, endpoint, status, prompt_tokens, completion_tokens, ms, remote);
    if (!connection_ok || !out.keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

}  // namespace lmserve::server::http
