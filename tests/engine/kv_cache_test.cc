// Block pool and block table bookkeeping: reference counts, forks, copy-on-write.
#include <gtest/gtest.h>

#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"

namespace lmserve::engine {
namespace {

TEST(BlockPool, AllocatesUntilEmptyAndReusesReleasedBlocks) {
  BlockPool pool(3, 4);
  const int a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.num_used(), 3);
  pool.release(b);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(pool.allocate(), b);
  EXPECT_EQ(pool.total_allocations(), 4u);
}

TEST(BlockPool, SharedBlockIsFreedByItsLastUser) {
  BlockPool pool(2, 4);
  const int a = pool.allocate();
  pool.retain(a);
  EXPECT_EQ(pool.ref_count(a), 2);
  pool.release(a);
  EXPECT_EQ(pool.num_free(), 1);
  pool.release(a);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_THROW(pool.release(a), std::logic_error);
}

TEST(BlockTable, SlotsFollowBlocks) {
  BlockPool pool(8, 4);
  BlockTable table(&pool);
  std::vector<BlockCopy> copies;
  ASSERT_TRUE(table.append_slots(6, &copies));
  ASSERT_EQ(table.blocks().size(), 2u);
  EXPECT_EQ(table.slot(0), table.blocks()[0] * 4);
  EXPECT_EQ(table.slot(5), table.blocks()[1] * 4 + 1);
  EXPECT_THROW(table.slot(6), std::out_of_range);
  EXPECT_TRUE(copies.empty());
}

TEST(BlockTable, RefusesWhenThePoolIsShortAndChangesNothing) {
  BlockPool pool(2, 4);
  BlockTable table(&pool);
  std::vector<BlockCopy> copies;
  EXPECT_FALSE(table.append_slots(9, &copies));
  EXPECT_EQ(table.num_tokens(), 0);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockTable, ForkSharesBlocksAndCopiesTheSharedPartialBlockOnWrite) {
  BlockPool pool(8, 4);
  std::vector<BlockCopy> copies;
  BlockTable parent(&pool);
  ASSERT_TRUE(parent.append_slots(6, &copies));  // one full block, one half-full
  BlockTable child = parent.fork();
  EXPECT_EQ(pool.num_used(), 2);
  EXPECT_EQ(pool.ref_count(parent.blocks()[1]), 2);

  EXPECT_EQ(child.blocks_needed(1), 1);  // the copy
  ASSERT_TRUE(child.append_slots(1, &copies));
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].first, parent.blocks()[1]);
  EXPECT_EQ(copies[0].second, child.blocks()[1]);
  EXPECT_EQ(child.blocks()[0], parent.blocks()[0]);  // the full block stays shared
  EXPECT_EQ(pool.ref_count(parent.blocks()[1]), 1);

  // The parent now owns its partial block alone: no copy.
  copies.clear();
  ASSERT_TRUE(parent.append_slots(1, &copies));
  EXPECT_TRUE(copies.empty());
  child.release();
  parent.release();
  EXPECT_EQ(pool.num_used(), 0);
}

TEST(BlockTable, ForkAtABlockBoundaryNeedsNoCopy) {
  BlockPool pool(8, 4);
  std::vector<BlockCopy> copies;
  BlockTable parent(&pool);
  ASSERT_TRUE(parent.append_slots(8, &copies));
  BlockTable child = parent.fork();
  ASSERT_TRUE(child.append_slots(1, &copies));
  EXPECT_TRUE(copies.empty());
  EXPECT_EQ(pool.num_used(), 3);
}

TEST(BlockTable, TruncateReleasesEmptiedBlocks) {
  BlockPool pool(8, 4);
  std::vector<BlockCopy> copies;
  BlockTable table(&pool);
  ASSERT_TRUE(table.append_slots(9, &copies));
  EXPECT_EQ(pool.num_used(), 3);
  table.truncate(4);
  EXPECT_EQ(pool.num_used(), 1);
  EXPECT_EQ(table.num_tokens(), 4);
}

}  // namespace
}  // namespace lmserve::engine
