// StepGraphs: replays a repeated sequence of kernel launches as one CUDA graph, without
// any change to the Backend interface (opt-in: LMSERVE_CUDA_GRAPHS=1).
//
// With graphs on, CudaBackend queues its kernel launches instead of issuing them, and
// writes every value that shapes a launch (op, pointers, sizes, grid-shaping metadata) into
// a key. Anything that is not a kernel launch (upload, download, copy, allocate, release,
// synchronize) first flushes the queue. A decode step (uploads, then ~15 launches per
// layer, then the logits download) therefore flushes as one sequence; the second time the
// same key is seen it is captured into a graph, and from then on launched with one
// cudaGraphLaunch: no per-kernel launch cost on the host, shorter gaps on the device.
// The data behind the pointers (positions, block tables, activations) is read when the
// graph runs, so only the key has to match, not the contents.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace lmserve::kernels::cuda {

class StepGraphs {
 public:
  explicit StepGraphs(bool enabled) : enabled_(enabled) {}
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  bool enabled() const { return enabled_; }

  // Appends scalars or pointers to the key of the launch being queued.
  template <typename... T>
  void key(const T&... values) {
    (append(values), ...);
  }
  void queue(std::function<void()> launch) { pending_.push_back(std::move(launch)); }

  // Issues what is queued on `stream`: a cached graph, a fresh capture, or plain launches.
  void flush(cudaStream_t stream);
  // Drops the queue (the backend is going away).
  void discard();

 private:
  template <typename T>
  void append(const T& v) {
    static_assert(std::is_arithmetic_v<T> || std::is_pointer_v<T> || std::is_enum_v<T>,
                  "keys are built from scalars and pointers only (no padding bytes)");
    const size_t at = key_.size();
    key_.resize(at + sizeof(T));
    std::memcpy(key_.data() + at, &v, sizeof(T));
  }
  void run_directly(std::vector<std::function<void()>>& launches);
  void clear_graphs();

  bool enabled_;
  std::string key_;
  std::vector<std::function<void()>> pending_;
  std::unordered_map<std::string, cudaGraphExec_t> graphs_;
  std::unordered_map<std::string, int> seen_;
};

}  // namespace lmserve::kernels::cuda
