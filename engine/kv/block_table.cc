#include "engine/kv/block_table.h"

#include <stdexcept>

namespace lmserve::engine {

BlockTable::BlockTable(BlockTable&& other) noexcept
    : pool_(other.pool_), blocks_(std::move(other.blocks_)), num_tokens_(other.num_tokens_) {
  other.blocks_.clear();
  other.num_tokens_ = 0;
}

BlockTable& BlockTable::operator=(BlockTable&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = other.pool_;
    blocks_ = std::move(other.blocks_);
    num_tokens_ = other.num_tokens_;
    other.blocks_.clear();
    other.num_tokens_ = 0;
  }
  return *this;
}

int32_t BlockTable::slot(int position) const {
  const int bs = pool_->block_size();
  if (position < 0 || position >= num_tokens_) throw std::out_of_range("KV slot of an unreserved position");
  return blocks_[position / bs] * bs + position % bs;
}

int BlockTable::blocks_needed(int n) const {
  const int bs = pool_->block_size();
  const int have = static_cast<int>(blocks_.size());
  const int need = (num_tokens_ + n + bs - 1) / bs;
  int extra = need > have ? need - have : 0;
  // Writing into a partly filled block that others share needs a private copy.
  if (n > 0 && num_tokens_ % bs != 0 && pool_->ref_count(blocks_.back()) > 1) ++extra;
  return extra;
}

bool BlockTable::append_slots(int n, std::vector<BlockCopy>* copies) {
  if (n <= 0) return true;
  if (blocks_needed(n) > pool_->num_free()) return false;
  const int bs = pool_->block_size();
  if (num_tokens_ % bs != 0 && pool_->ref_count(blocks_.back()) > 1) {
    const int32_t copy = pool_->allocate();
    copies->emplace_back(blocks_.back(), copy);
    pool_->release(blocks_.back());
    blocks_.back() = copy;
  }
  const int need = (num_tokens_ + n + bs - 1) / bs;
  while (static_cast<int>(blocks_.size()) < need) blocks_.push_back(pool_->allocate());
  num_tokens_ += n;
  return true;
}

void BlockTable::truncate(int num_tokens) {
  if (num_tokens >= num_tokens_) return;
  const int bs = pool_->block_size();
  const size_t keep = static_cast<size_t>((num_tokens + bs - 1) / bs);
  while (blocks_.size() > keep) {
    pool_->release(blocks_.back());
    blocks_.pop_back();
  }
  num_tokens_ = num_tokens;
}

BlockTable BlockTable::fork() const {
  BlockTable copy(pool_);
  copy.blocks_ = blocks_;
  copy.num_tokens_ = num_tokens_;
  for (int32_t b : blocks_) pool_->retain(b);
  return copy;
}

void BlockTable::release() {
  for (int32_t b : blocks_) pool_->release(b);
  blocks_.clear();
  num_tokens_ = 0;
}

}  // namespace lmserve::engine
