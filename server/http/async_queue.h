// AsyncQueue: hands values from any thread (the engine thread's output callbacks) to one
// coroutine on an asio strand, without blocking either side.
//
// push() posts onto the strand; the strand owns the deque and the wake-up timer, so the
// consumer's "check empty, then wait" cannot race with a push (both run on the strand).
// pop() returns nullopt when the awaiting coroutine is cancelled (awaitable_operators ||).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <memory>
#include <optional>

namespace lmserve::server::http {

template <typename T>
class AsyncQueue : public std::enable_shared_from_this<AsyncQueue<T>> {
 public:
  // `strand` must be the executor the consuming coroutine runs on.
  explicit AsyncQueue(boost::asio::any_io_executor strand) : strand_(strand), timer_(strand) {}

  // Thread-safe.
  void push(T value) {
    boost::asio::post(strand_, [self = this->shared_from_this(), value = std::move(value)]() mutable {
      self->items_.push_back(std::move(value));
      self->timer_.cancel();
    });
  }

  // On the strand only.
  std::optional<T> try_pop() {
    if (items_.empty()) return std::nullopt;
    T value = std::move(items_.front());
    items_.pop_front();
    return value;
  }

  // On the strand only; one consumer.
  boost::asio::awaitable<std::optional<T>> pop() {
    // Report cancellation as nullopt instead of an exception out of the wait.
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    while (items_.empty()) {
      timer_.expires_at(boost::asio::steady_timer::time_point::max());
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      auto state = co_await boost::asio::this_coro::cancellation_state;
      if (state.cancelled() != boost::asio::cancellation_type::none) co_return std::nullopt;
    }
    co_return try_pop();
  }

 private:
  boost::asio::any_io_executor strand_;
  boost::asio::steady_timer timer_;
  std::deque<T> items_;
};

}  // namespace lmserve::server::http
