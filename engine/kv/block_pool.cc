#include "engine/kv/block_pool.h"

#include <stdexcept>
#include <string>

namespace lmserve::engine {

BlockPool::BlockPool(int num_blocks, int block_size)
    : block_size_(block_size), ref_counts_(num_blocks, 0) {
  if (num_blocks <= 0 || block_size <= 0) {
    throw std::invalid_argument("KV cache needs at least one block of at least one token (got " +
                                std::to_string(num_blocks) + " blocks of " +
                                std::to_string(block_size) + ")");
  }
  free_list_.reserve(num_blocks);
  for (int b = num_blocks - 1; b >= 0; --b) free_list_.push_back(b);
}

int32_t BlockPool::allocate() {
  if (free_list_.empty()) return -1;
  const int32_t block = free_list_.back();
  free_list_.pop_back();
  ref_counts_[block] = 1;
  ++total_allocations_;
  return block;
}

void BlockPool::retain(int32_t block) {
  if (ref_counts_.at(block) <= 0) throw std::logic_error("retain of a free KV block");
  ++ref_counts_[block];
}

void BlockPool::release(int32_t block) {
  if (ref_counts_.at(block) <= 0) throw std::logic_error("release of a free KV block");
  if (--ref_counts_[block] == 0) free_list_.push_back(block);
}

}  // namespace lmserve::engine
