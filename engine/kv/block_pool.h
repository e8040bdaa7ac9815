// BlockPool: the fixed set of KV-cache blocks and their reference counts.
//
// A block holds the keys and values of `block_size` consecutive positions of one
// sequence, in every layer. Blocks are shared by reference count: a beam-search fork
// or an n-way sampling request points several sequences at the prompt's blocks, and a
// block returns to the free list only when its last user lets go. The pool knows
// nothing of the storage itself (the backend owns it) — only which block ids are in use.
#pragma once

#include <cstdint>
#include <vector>

namespace lmserve::engine {

class BlockPool {
 public:
  BlockPool(int num_blocks, int block_size);

  int block_size() const { return block_size_; }
  int num_blocks() const { return static_cast<int>(ref_counts_.size()); }
  int num_free() const { return static_cast<int>(free_list_.size()); }
  int num_used() const { return num_blocks() - num_free(); }

  // A free block with reference count 1, or -1 when none is left.
  int32_t allocate();
  void retain(int32_t block);
  // Drops one reference; the block is free again at zero.
  void release(int32_t block);
  int ref_count(int32_t block) const { return ref_counts_.at(block); }

  // Blocks handed out by allocate() since creation (a test reads it to check that
  // a shared prompt was stored once).
  uint64_t total_allocations() const { return total_allocations_; }

 private:
  int block_size_;
  std::vector<int32_t> ref_counts_;
  std::vector<int32_t> free_list_;  // LIFO: recently freed blocks are reused first
  uint64_t total_allocations_ = 0;
};

}  // namespace lmserve::engine
