// Plain numbers the engine produces for metrics; the server turns them into
// Prometheus series (server/metrics is the only place that knows Prometheus).
#pragma once

#include <cstdint>

namespace lmserve::engine {

struct EngineStats {
  int num_running = 0;       // requests with sequences in the running set
  int num_waiting = 0;       // requests queued (incl. preempted)
  int kv_blocks_total = 0;
  int kv_blocks_used = 0;
  int block_size = 0;
  uint64_t num_preemptions = 0;
  uint64_t prompt_tokens_total = 0;      // prompt tokens computed (prefill)
  uint64_t generation_tokens_total = 0;  // tokens generated
  uint64_t steps_total = 0;
  double kv_cache_usage() const {
    return kv_blocks_total ? static_cast<double>(kv_blocks_used) / kv_blocks_total : 0.0;
  }
};

}  // namespace lmserve::engine
