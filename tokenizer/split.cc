// Split behaviors, mirroring HF tokenizers' NormalizedString::split (see split.h).
#include "tokenizer/split.h"

#include <algorithm>

#include "tokenizer/json_util.h"

namespace lmserve::tokenizer {

SplitBehavior parse_split_behavior(const std::string& name, const std::string& path) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  fail(path, "unsupported split behavior \"" + name + "\"");
}

void split_normalized(const NormalizedString& s, const std::vector<MatchRange>& matches, SplitBehavior behavior,
                      std::vector<NormalizedString>& out) {
  struct Piece {
    size_t begin, end;
    bool remove;
  };
  std::vector<Piece> pieces;
  pieces.reserve(matches.size());
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& m : matches) pieces.push_back({m.begin, m.end, false});
      break;
    case SplitBehavior::Removed:
      for (const auto& m : matches) pieces.push_back({m.begin, m.end, m.is_match});
      break;
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (const auto& m : matches) {
        if (m.is_match == previous_match && !pieces.empty()) pieces.back().end = m.end;
        else pieces.push_back({m.begin, m.end, false});
        previous_match = m.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const auto& m : matches) {
        if (m.is_match && !previous_match && !pieces.empty()) pieces.back().end = m.end;
        else pieces.push_back({m.begin, m.end, false});
        previous_match = m.is_match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) pieces.back().begin = it->begin;
        else pieces.push_back({it->begin, it->end, false});
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
  }
  for (const auto& p : pieces) {
    if (!p.remove) out.push_back(s.slice(p.begin, p.end));
  }
}

}  // namespace lmserve::tokenizer
