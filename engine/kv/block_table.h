// BlockTable: the blocks one sequence's positions live in, in order.
//
// Position p is in blocks()[p / block_size] at offset p % block_size. A table can be
// forked (the copy shares every block); the first write into a shared block goes to a
// private copy instead (copy-on-write), and the (source, copy) pair is reported so the
// backend can copy the cached keys and values before the step writes.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "engine/kv/block_pool.h"

namespace lmserve::engine {

using BlockCopy = std::pair<int32_t, int32_t>;  // (source block, destination block)

class BlockTable {
 public:
  explicit BlockTable(BlockPool* pool) : pool_(pool) {}
  ~BlockTable() { release(); }
  BlockTable(BlockTable&& other) noexcept;
  BlockTable& operator=(BlockTable&& other) noexcept;
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;

  // Positions that have a slot (written or reserved for this step).
  int num_tokens() const { return num_tokens_; }
  const std::vector<int32_t>& blocks() const { return blocks_; }
  int32_t slot(int position) const;

  // How many new blocks append_slots(n) would take (counting a copy-on-write).
  int blocks_needed(int n) const;
  // Reserves slots for positions num_tokens() .. num_tokens()+n-1. Returns false and
  // changes nothing when the pool has too few free blocks. A shared last block that
  // would be written is replaced by a private copy, appended to *copies.
  bool append_slots(int n, std::vector<BlockCopy>* copies);
  // Forgets the last n positions (a preempted or rolled-back step); blocks left empty are released.
  void truncate(int num_tokens);
  // A table sharing every block of this one.
  BlockTable fork() const;
  // Gives every block back to the pool.
  void release();

 private:
  BlockPool* pool_;
  std::vector<int32_t> blocks_;
  int num_tokens_ = 0;
};

}  // namespace lmserve::engine
