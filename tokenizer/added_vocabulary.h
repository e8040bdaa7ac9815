// Added tokens (tokenizer.json "added_tokens"): found in the text before normalization
// (normalized=false) or after it (normalized=true), leftmost-longest, honouring lstrip,
// rstrip and single_word, exactly where HF's AddedVocabulary finds them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_util.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/split.h"

namespace lmserve::tokenizer {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// Leftmost-longest matcher over a fixed set of byte strings (a small trie).
class TokenMatcher {
 public:
  void add(std::string_view pattern, int32_t token_index);
  bool empty() const { return nodes_.size() <= 1; }
  struct Match {
    size_t begin, end;
    int32_t token_index;
  };
  // Non-overlapping matches, scanning left to right and resuming after each match.
  std::vector<Match> find_all(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token_index = -1;
  };
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

class AddedVocabulary {
 public:
  // `j` is the "added_tokens" array; `normalizer` (may be null) normalizes the content of
  // normalized tokens, as HF matches them against normalized text.
  void load(const Json& j, const std::string& path, const Normalizer* normalizer);

  // Splits `text` into added tokens and normalized text pieces (HF extract_and_normalize).
  std::vector<Split> extract_and_normalize(std::string_view text, const Normalizer* normalizer) const;

  const AddedToken* find_by_id(int32_t id) const;
  const AddedToken* find_by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  void split_with_matcher(const NormalizedString& s, const TokenMatcher& matcher, std::vector<Split>& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  TokenMatcher raw_matcher_;         // normalized == false
  TokenMatcher normalized_matcher_;  // normalized == true, patterns normalized
};

}  // namespace lmserve::tokenizer
