// BPE tokenization: per-character initial symbols, then merges applied lowest rank first
// with a heap over a linked list of symbols (as HF's Word::merge_all).
#include "tokenizer/bpe_model.h"

#include <atomic>
#include <cstdio>
#include <queue>
#include <stdexcept>

#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

struct Symbol {
  int32_t id;
  uint32_t begin;
  uint32_t len;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

namespace {

std::pair<std::string, std::string> parse_merge(const Json& m, const std::string& path) {
  if (m.is_string()) {
    const std::string line = m.get<std::string>();
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      fail(path, "expected \"<left> <right>\", got \"" + line + "\"");
    }
    return {line.substr(0, space), line.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2) {
    return {as_string(m[0], json_path(path, 0)), as_string(m[1], json_path(path, 1))};
  }
  fail(path, "expected a \"<left> <right>\" string or a [left, right] pair");
}

// Words repeat a lot in text, so each thread keeps the tokens of the words it has seen. The
// cache is per thread (no sharing, no locks) and per model; it is dropped when it grows large.
struct WordCache {
  std::unordered_map<std::string, std::vector<ModelToken>, StringHash, std::equal_to<>> words;
};
constexpr size_t kMaxCachedWordBytes = 48;
constexpr size_t kMaxCachedWords = 1 << 16;
constexpr size_t kMaxCachedModels = 8;

WordCache& thread_word_cache(uint64_t serial) {
  thread_local std::unordered_map<uint64_t, WordCache> caches;
  auto it = caches.find(serial);
  if (it != caches.end()) return it->second;
  if (caches.size() >= kMaxCachedModels) caches.clear();
  return caches[serial];
}

std::atomic<uint64_t> next_model_serial{1};

}  // namespace

void BpeModel::MergeTable::reserve(size_t n) {
  size_t capacity = 16;
  while (capacity < n * 2) capacity <<= 1;
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, Merge{});
  mask_ = capacity - 1;
}

void BpeModel::MergeTable::insert_or_assign(uint64_t key, Merge m) {
  for (size_t i = slot(key);; i = (i + 1) & mask_) {
    if (keys_[i] == key || keys_[i] == kEmpty) {
      keys_[i] = key;
      values_[i] = m;
      return;
    }
  }
}

std::unique_ptr<BpeModel> BpeModel::from_json(const Json& j, const std::string& path) {
  auto model = std::make_unique<BpeModel>();
  model->serial_ = next_model_serial.fetch_add(1);
  if (const Json* dropout = member(j, "dropout")) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      fail(json_path(path, "dropout"), "unsupported option: BPE dropout is non-deterministic");
    }
  }
  model->unk_token_ = optional_string(j, path, "unk_token");
  model->continuing_subword_prefix_ = string_or(j, path, "continuing_subword_prefix", "");
  model->end_of_word_suffix_ = string_or(j, path, "end_of_word_suffix", "");
  model->byte_fallback_ = bool_or(j, path, "byte_fallback", false);
  model->fuse_unk_ = bool_or(j, path, "fuse_unk", false);
  model->ignore_merges_ = bool_or(j, path, "ignore_merges", false);

  const std::string vocab_path = json_path(path, "vocab");
  const Json& vocab = required(j, path, "vocab");
  require_object(vocab, vocab_path);
  model->vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = as_token_id(it.value(), json_path(vocab_path, it.key()));
    model->vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  model->tokens_by_id_.assign(static_cast<size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : model->vocab_) model->tokens_by_id_[static_cast<size_t>(id)] = &token;

  if (model->unk_token_) model->unk_id_ = model->token_to_id(*model->unk_token_);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    model->byte_token_ids_[static_cast<size_t>(b)] = model->token_to_id(name).value_or(-1);
  }

  const std::string merges_path = json_path(path, "merges");
  const Json* merges = member(j, "merges");
  model->merges_.reserve(merges && merges->is_array() ? merges->size() : 0);
  if (merges) {
    require_array(*merges, merges_path);
    const size_t prefix_len = model->continuing_subword_prefix_.size();
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string mpath = json_path(merges_path, i);
      auto [left, right] = parse_merge((*merges)[i], mpath);
      const auto left_id = model->token_to_id(left);
      const auto right_id = model->token_to_id(right);
      if (!left_id) fail(mpath, "token \"" + left + "\" is not in the vocabulary");
      if (!right_id) fail(mpath, "token \"" + right + "\" is not in the vocabulary");
      // The right part carries the continuing-subword prefix, which the merged token drops.
      std::string merged = left;
      merged.append(right, right.compare(0, prefix_len, model->continuing_subword_prefix_) == 0 ? prefix_len : 0);
      const auto merged_id = model->token_to_id(merged);
      if (!merged_id) fail(mpath, "merged token \"" + merged + "\" is not in the vocabulary");
      // A repeated pair keeps its last rank, as HF's HashMap collection does.
      model->merges_.insert_or_assign(pair_key(*left_id, *right_id), Merge{static_cast<int32_t>(i), *merged_id});
    }
  }
  return model;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_by_id_.size()) return nullptr;
  return tokens_by_id_[static_cast<size_t>(id)];
}

void BpeModel::merge_all(Symbol* symbols, size_t count) const {
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Candidate& o) const {  // priority_queue pops the largest: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Candidate> storage;
  storage.reserve(count);
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(storage));
  auto push_pair = [&](int32_t pos, int32_t next) {
    if (const Merge* m = merges_.find(pair_key(symbols[pos].id, symbols[next].id))) queue.push({m->rank, pos, m->new_id});
  };
  for (size_t i = 0; i + 1 < count; ++i) push_pair(static_cast<int32_t>(i), static_cast<int32_t>(i + 1));
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Skip stale entries: the pair at this position changed since it was queued.
    const Merge* m = merges_.find(pair_key(left.id, right.id));
    if (!m || m->new_id != top.new_id) continue;
    left.id = top.new_id;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev, top.pos);
    if (left.next >= 0) push_pair(top.pos, left.next);
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<ModelToken>& out) const {
  if (word.empty()) return;
  if (word.size() > kMaxCachedWordBytes) {
    tokenize_uncached(word, out);
    return;
  }
  WordCache& cache = thread_word_cache(serial_);
  auto it = cache.words.find(word);
  if (it == cache.words.end()) {
    std::vector<ModelToken> tokens;
    tokenize_uncached(word, tokens);
    if (cache.words.size() >= kMaxCachedWords) cache.words.clear();
    it = cache.words.emplace(std::string(word), std::move(tokens)).first;
  }
  out.insert(out.end(), it->second.begin(), it->second.end());
}

void BpeModel::tokenize_uncached(std::string_view word, std::vector<ModelToken>& out) const {
  if (ignore_merges_) {
    if (auto id = token_to_id(word)) {
      out.push_back({*id, 0, static_cast<uint32_t>(word.size())});
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id, uint32_t begin, uint32_t len) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, begin, len, index - 1, -1});
    if (index > 0) symbols[static_cast<size_t>(index - 1)].next = index;
  };
  std::optional<Symbol> pending_unk;
  auto flush_unk = [&] {
    if (pending_unk) add(pending_unk->id, pending_unk->begin, pending_unk->len);
    pending_unk.reset();
  };
  const bool decorate = !continuing_subword_prefix_.empty() || !end_of_word_suffix_.empty();
  std::string key;
  size_t i = 0;
  while (i < word.size()) {
    const size_t len = std::min(unicode::sequence_length(static_cast<unsigned char>(word[i])), word.size() - i);
    std::string_view piece = word.substr(i, len);
    if (decorate) {
      key.clear();
      if (i > 0) key += continuing_subword_prefix_;
      key.append(piece);
      if (i + len == word.size()) key += end_of_word_suffix_;
      piece = key;
    }
    const auto begin = static_cast<uint32_t>(i);
    i += len;
    if (auto id = token_to_id(piece)) {
      flush_unk();
      add(*id, begin, static_cast<uint32_t>(len));
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (unsigned char b : piece) all_bytes = all_bytes && byte_token_ids_[b] >= 0;
      if (all_bytes) {
        flush_unk();
        // Byte tokens of one character share its range; each is one byte of it.
        for (size_t k = 0; k < piece.size(); ++k) {
          const uint32_t b = std::min<uint32_t>(begin + static_cast<uint32_t>(k), begin + static_cast<uint32_t>(len) - 1);
          add(byte_token_ids_[static_cast<unsigned char>(piece[k])], b, k + 1 == piece.size() ? begin + len - b : 1);
        }
        continue;
      }
    }
    if (unk_token_) {
      if (!unk_id_) throw std::runtime_error("model.unk_token \"" + *unk_token_ + "\" is not in the vocabulary");
      if (pending_unk && fuse_unk_) {
        pending_unk->len = static_cast<uint32_t>(begin + len - pending_unk->begin);
      } else {
        flush_unk();
        pending_unk = Symbol{*unk_id_, begin, static_cast<uint32_t>(len), -1, -1};
      }
    }
    // Without unk_token or byte fallback, HF drops a character the vocabulary lacks.
  }
  flush_unk();
  merge_all(symbols.data(), symbols.size());
  for (const Symbol& s : symbols) {
    // Byte-fallback tokens of a decorated piece can count more bytes than the word has.
    if (s.len > 0) out.push_back({s.id, s.begin, std::min<uint32_t>(s.begin + s.len, static_cast<uint32_t>(word.size()))});
  }
}

}  // namespace lmserve::tokenizer
