// Tokenizer loading (tokenizer.json + tokenizer_config.json), encode and decode.
#include "tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/json_util.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processors.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return ss.str();
}

Json parse_json(const std::string& text, const std::string& source) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw std::runtime_error(source + ": invalid JSON: " + e.what());
  }
}

// tokenizer_config.json writes special tokens as "<s>" or {"content": "<s>", ...}.
std::optional<std::string> config_token(const Json& config, const std::string& key) {
  const Json* m = member(config, key);
  if (!m) return std::nullopt;
  if (m->is_string()) return m->get<std::string>();
  if (m->is_object()) return as_string(required(*m, key, "content"), json_path(key, "content"));
  fail(key, "expected a string or an object with \"content\"");
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::shared_ptr<const Tokenizer> Tokenizer::from_dir(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  const auto json_text = read_file(path);
  if (!json_text) throw std::runtime_error(path + ": cannot open");
  const auto config = read_file(dir + "/tokenizer_config.json");
  return from_json(*json_text, path, config.value_or(""));
}

std::shared_ptr<const Tokenizer> Tokenizer::from_json(const std::string& json_text, const std::string& source,
                                                      const std::string& config_json) {
  const Json j = parse_json(json_text, source);
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  bool has_post_processor = false;
  try {
    require_object(j, "(root)");
    const Json& model = require_object(required(j, "", "model"), "model");
    const std::string model_type = string_or(model, "model", "type", "BPE");
    if (model_type != "BPE") fail("model.type", "unsupported model \"" + model_type + "\" (only BPE is supported)");
    t->model_ = BpeModel::from_json(model, "model");
    if (const Json* n = member(j, "normalizer")) t->normalizer_ = make_normalizer(*n, "normalizer");
    if (const Json* p = member(j, "pre_tokenizer")) t->pre_tokenizer_ = make_pre_tokenizer(*p, "pre_tokenizer");
    if (const Json* p = member(j, "post_processor")) {
      t->post_processor_ = make_post_processor(*p, "post_processor");
      has_post_processor = true;
    }
    if (const Json* d = member(j, "decoder")) t->decoder_ = make_decoder(*d, "decoder");
    t->added_ = std::make_unique<AddedVocabulary>();
    if (const Json* a = member(j, "added_tokens")) t->added_->load(*a, "added_tokens", t->normalizer_.get());
  } catch (const std::runtime_error& e) {  // LoadError, and regex compile errors that name their path
    throw std::runtime_error(source + ": " + e.what());
  }

  int64_t max_id = t->model_->max_id();
  for (const auto& token : t->added_->tokens()) max_id = std::max<int64_t>(max_id, token.id);
  t->vocab_size_ = static_cast<size_t>(max_id + 1);

  if (!config_json.empty()) {
    const std::string config_source = "tokenizer_config.json";
    const Json config = parse_json(config_json, config_source);
    try {
      require_object(config, "(root)");
      auto resolve = [&](const std::string& key) -> std::optional<SpecialTokenRef> {
        const auto token = config_token(config, key);
        if (!token) return std::nullopt;
        const auto id = t->token_to_id(*token);
        if (!id) fail(key, "token \"" + *token + "\" is not in the vocabulary");
        return SpecialTokenRef{*id, *token};
      };
      const auto bos = resolve("bos_token");
      const auto eos = resolve("eos_token");
      if (bos) t->bos_id_ = bos->id;
      if (eos) t->eos_id_ = eos->id;
      // tokenizer.json's post-processor is what HF tokenizers applies; the transformers flags
      // only decide BOS/EOS for files that have none.
      if (!has_post_processor) {
        const bool add_bos = bool_or(config, "", "add_bos_token", false);
        const bool add_eos = bool_or(config, "", "add_eos_token", false);
        if ((add_bos && !bos) || (add_eos && !eos)) {
          fail(add_bos && !bos ? "add_bos_token" : "add_eos_token", "set but the token itself is not defined");
        }
        if (add_bos || add_eos) {
          t->post_processor_ = make_bos_eos_processor(add_bos ? bos : std::nullopt, add_eos ? eos : std::nullopt);
        }
      }
    } catch (const LoadError& e) {
      throw std::runtime_error(config_source + ": " + e.what());
    }
  }
  return t;
}

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (auto bad = unicode::first_invalid_byte(text)) {
    throw std::runtime_error("encode: invalid UTF-8 at byte " + std::to_string(*bad));
  }
  if (text.size() >= UINT32_MAX / 2) throw std::runtime_error("encode: text of " + std::to_string(text.size()) + " bytes is too long");
  std::vector<Split> splits = added_->extract_and_normalize(text, normalizer_.get());
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(splits);

  Encoding e;
  e.ids.reserve(text.size() / 3 + 4);
  auto push = [&](int32_t id, const std::string& token, Offsets range) {
    e.ids.push_back(id);
    e.tokens.push_back(token);
    e.offsets.emplace_back(range.first, range.second);
  };
  std::vector<ModelToken> model_tokens;
  for (const Split& split : splits) {
    if (split.added_id >= 0) {
      push(split.added_id, added_->find_by_id(split.added_id)->content, split.text.input_range(0, split.text.size()));
      continue;
    }
    model_tokens.clear();
    model_->tokenize(split.text.str(), model_tokens);
    for (const ModelToken& mt : model_tokens) push(mt.id, *model_->id_to_token(mt.id), split.text.input_range(mt.begin, mt.end));
  }
  e.special_tokens_mask.assign(e.ids.size(), 0);
  if (post_processor_) post_processor_->process(e, add_special_tokens);
  return e;
}

std::vector<std::string> Tokenizer::token_strings(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const AddedToken* added = added_->find_by_id(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
      continue;
    }
    const std::string* token = model_->id_to_token(id);
    if (!token) {
      throw std::runtime_error("decode: token id " + std::to_string(id) + " is not in the vocabulary (size " +
                               std::to_string(vocab_size_) + ")");
    }
    // HF skips by content, so a model token spelled like a special added token is skipped too.
    if (skip_special_tokens) {
      const AddedToken* same = added_->find_by_content(*token);
      if (same && same->special) continue;
    }
    tokens.push_back(*token);
  }
  return tokens;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens = token_strings(ids, skip_special_tokens);
  std::string text;
  if (decoder_) {
    decoder_->decode_chain(tokens);
    for (const auto& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text += tokens[i];
    }
  }
  return text;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* added = added_->find_by_id(id)) return added->content;
  if (const std::string* token = model_->id_to_token(id)) return *token;
  throw std::runtime_error("token id " + std::to_string(id) + " is not in the vocabulary (size " +
                           std::to_string(vocab_size_) + ")");
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* added = added_->find_by_content(token)) return added->id;
  return model_->token_to_id(token);
}

bool Tokenizer::contains_id(int32_t id) const {
  return added_->find_by_id(id) != nullptr || model_->id_to_token(id) != nullptr;
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* added = added_->find_by_id(id);
  return added && added->special;
}

size_t Tokenizer::decoder_leading_chars_affected() const {
  return decoder_ ? decoder_->leading_chars_affected() : 0;
}

}  // namespace lmserve::tokenizer
