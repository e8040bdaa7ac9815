// One HTTP/1.1 connection as a coroutine: read (with header/body timeouts and a body
// limit) → route → write, with keep-alive. Requests that need the engine run as Jobs:
// their outputs arrive from the engine thread through an AsyncQueue, so I/O threads
// never block on model work; a client that hangs up aborts its engine requests.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>

#include "server/context.h"

namespace lmserve::server::http {

// State shared by all sessions of one server.
struct SessionShared {
  explicit SessionShared(ServerContext& c) : ctx(c) {}
  ServerContext& ctx;
  std::atomic<int> in_flight{0};        // requests being handled (graceful shutdown waits on it)
  std::atomic<uint64_t> next_request{1};
};

boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, SessionShared& shared);

}  // namespace lmserve::server::http
