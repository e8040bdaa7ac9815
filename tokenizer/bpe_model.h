// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocabulary, ranked
// merges, byte_fallback, unk_token/fuse_unk, ignore_merges, continuing_subword_prefix and
// end_of_word_suffix. Tokenizing is read-only, so one model serves any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_util.h"

namespace lmserve::tokenizer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// One model token of a word: its id and byte range [begin, end) within the word.
struct ModelToken {
  int32_t id;
  uint32_t begin;
  uint32_t end;
};

class BpeModel {
 public:
  // `j` is the "model" object; errors name paths below `path`.
  static std::unique_ptr<BpeModel> from_json(const Json& j, const std::string& path);

  // Appends the tokens of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<ModelToken>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr when the model has no token with this id.
  const std::string* id_to_token(int32_t id) const;
  // Largest id in the vocabulary, or -1 when it is empty.
  int32_t max_id() const { return static_cast<int32_t>(tokens_by_id_.size()) - 1; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // Open-addressing table of merges: the lookup on the hot path of every word.
  class MergeTable {
   public:
    void reserve(size_t n);
    void insert_or_assign(uint64_t key, Merge m);
    const Merge* find(uint64_t key) const {
      for (size_t i = slot(key);; i = (i + 1) & mask_) {
        if (keys_[i] == key) return &values_[i];
        if (keys_[i] == kEmpty) return nullptr;
      }
    }

   private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask_; }
    std::vector<uint64_t> keys_{kEmpty};
    std::vector<Merge> values_{Merge{}};
    size_t mask_ = 0;
  };

  void tokenize_uncached(std::string_view word, std::vector<ModelToken>& out) const;
  void merge_all(struct Symbol* symbols, size_t count) const;

  TokenMap vocab_;
  std::vector<const std::string*> tokens_by_id_;  // points into vocab_ keys; nullptr for gaps
  MergeTable merges_;
  uint64_t serial_ = 0;  // identifies this model in the per-thread word caches
  std::optional<std::string> unk_token_;
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_token_ids_{};  // id of "<0xXX>", or -1
};

}  // namespace lmserve::tokenizer
