// StepGraphs (step_graphs.h): the capture / replay bookkeeping.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/step_graphs.h"

namespace lmserve::kernels::cuda {
namespace {

constexpr size_t kMinLaunchesToCapture = 8;  // shorter sequences are not worth a graph
constexpr size_t kMaxGraphs = 64;            // decode keys: batch sizes × context buckets
constexpr size_t kMaxSeenKeys = 512;         // prefill steps rarely repeat; forget them

}  // namespace

StepGraphs::~StepGraphs() { clear_graphs(); }

void StepGraphs::clear_graphs() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
}

void StepGraphs::discard() {
  pending_.clear();
  key_.clear();
}

void StepGraphs::run_directly(std::vector<std::function<void()>>& launches) {
  for (auto& launch : launches) launch();
}

void StepGraphs::flush(cudaStream_t stream) {
  if (pending_.empty()) return;
  std::vector<std::function<void()>> launches;
  launches.swap(pending_);
  std::string key;
  key.swap(key_);

  if (const auto it = graphs_.find(key); it != graphs_.end()) {
    LMSERVE_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
    return;
  }
  if (launches.size() < kMinLaunchesToCapture) {
    run_directly(launches);
    return;
  }
  if (seen_.size() >= kMaxSeenKeys) seen_.clear();
  if (++seen_[key] < 2) {  // first sighting: only a repeat earns a graph
    run_directly(launches);
    return;
  }

  LMSERVE_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    run_directly(launches);
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(stream, &broken);  // leave the stream usable before reporting
    if (broken) cudaGraphDestroy(broken);
    cudaGetLastError();
    throw;
  }
  cudaGraph_t graph = nullptr;
  LMSERVE_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  LMSERVE_CUDA_CHECK(err);
  if (graphs_.size() >= kMaxGraphs) clear_graphs();
  seen_.erase(key);
  graphs_.emplace(std::move(key), exec);
  LMSERVE_CUDA_CHECK(cudaGraphLaunch(exec, stream));
}

}  // namespace lmserve::kernels::cuda
