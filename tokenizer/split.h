// The pre-tokenized form of a text: an ordered list of splits, each either an added token
// already resolved to its id, or normalized text still waiting for pre-tokenization and the
// model. Also the splitting primitives HF defines (SplitDelimiterBehavior, char patterns).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/normalized_string.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

struct Split {
  NormalizedString text;
  int32_t added_id = -1;  // >= 0: this split is the added token with that id
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Parses HF's behavior names ("Removed", "Isolated", ...); throws LoadError naming `path`.
SplitBehavior parse_split_behavior(const std::string& name, const std::string& path);

// Cuts `s` according to `matches` (which cover all of s) and `behavior`, appending the
// resulting pieces (possibly empty ones) to `out`, as HF NormalizedString::split does.
void split_normalized(const NormalizedString& s, const std::vector<MatchRange>& matches, SplitBehavior behavior,
                      std::vector<NormalizedString>& out);

// Matches made of single characters for which `pred` holds (HF's `Fn(char) -> bool` pattern).
template <typename Pred>
std::vector<MatchRange> find_char_matches(const std::string& text, Pred&& pred) {
  std::vector<MatchRange> out;
  if (text.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  size_t last = 0, i = 0, len = 0;
  while (i < text.size()) {
    const char32_t cp = unicode::decode_at(text, i, len);
    if (pred(cp)) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + len, true});
      last = i + len;
    }
    i += len;
  }
  if (last < text.size()) out.push_back({last, text.size(), false});
  return out;
}

inline void invert_matches(std::vector<MatchRange>& matches) {
  for (auto& m : matches) m.is_match = !m.is_match;
}

// Applies fn(NormalizedString&, std::vector<NormalizedString>& out) to every split that is not
// an added token; empty pieces are dropped, as HF's PreTokenizedString::split does.
template <typename Fn>
void split_each(std::vector<Split>& splits, Fn&& fn) {
  std::vector<Split> next;
  next.reserve(splits.size() * 2);
  std::vector<NormalizedString> pieces;
  for (auto& split : splits) {
    if (split.added_id >= 0) {
      next.push_back(std::move(split));
      continue;
    }
    pieces.clear();
    fn(split.text, pieces);
    for (auto& piece : pieces) {
      if (!piece.empty()) next.push_back(Split{std::move(piece), -1});
    }
  }
  splits.swap(next);
}

}  // namespace lmserve::tokenizer
