// Running a Job over a connection: submit its engine requests, wait for their outputs
// (or the client hanging up, or the request timeout) and write the response — whole, or
// as a chunked SSE stream.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <string>
#include <utility>
#include <vector>

#include "server/api.h"
#include "server/context.h"

namespace lmserve::server::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct WriteTarget {
  boost::beast::tcp_stream& stream;
  unsigned version = 11;  // HTTP/1.x minor ×10 + major, as Beast counts it
  bool keep_alive = true;
  HeaderList extra_headers;  // CORS
  double write_timeout = 60.0;
};

// Writes a whole response; false when the client is gone.
boost::asio::awaitable<bool> write_response(WriteTarget& target, const Response& response);

struct JobResult {
  int status = 200;
  bool connection_ok = true;  // false: the client hung up or a write failed
};

boost::asio::awaitable<JobResult> run_job(WriteTarget& target, Job& job, ServerContext& ctx);

}  // namespace lmserve::server::http
