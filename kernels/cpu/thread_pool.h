// A small fixed-size thread pool with a blocking parallel_for, used by every CPU kernel.
//
// Work is split into chunks that threads claim dynamically; kernels must therefore
// never let a chunk boundary change the order of a reduction (see backend.h, batch
// invariance). Exceptions thrown by the body are rethrown in the calling thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lmserve::kernels::cpu {

class ThreadPool {
 public:
  // threads <= 0 means std::thread::hardware_concurrency(). The calling thread counts
  // as one of them, so `threads - 1` workers are started.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Calls body(begin, end) over disjoint ranges covering [0, count), each at most
  // `grain` long (grain >= 1), and returns when all are done.
  void parallel_for(int64_t count, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& body);

 private:
  void worker_loop();
  void run_chunks();

  int size_ = 1;
  std::vector<std::thread> workers_;

  std::mutex submit_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  int busy_workers_ = 0;

  // The current job; written under mutex_ before generation_ is bumped.
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t count_ = 0;
  int64_t grain_ = 1;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

}  // namespace lmserve::kernels::cpu
