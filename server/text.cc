// TextCodec over lmserve_tokenizer and lmserve_text: encoding, decoding, per-token
// strings (precomputed once: logprobs look them up for every token), and SequenceText on
// text::TextStream (incremental detokenization, stop strings held back until resolved).
#include "server/text.h"

#include <algorithm>
#include <stdexcept>

#include "engine/text/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace lmserve::server {

namespace {

using lmserve::tokenizer::Tokenizer;

// SequenceText over lmserve_text's TextStream (detokenization + stop-string hold-back).
class StreamText : public SequenceText {
 public:
  StreamText(std::shared_ptr<const Tokenizer> tok, std::span<const int32_t> prompt,
             const TextCodec::StreamOptions& options)
      : stream_(std::move(tok), prompt,
                text::StopOptions{options.stop, options.include_stop_str_in_output, options.skip_special_tokens}) {}

  Delta add(int32_t token) override {
    if (stream_.stopped()) return Delta{{}, true, {}};
    text::TextDelta d = stream_.push(token);
    return Delta{std::move(d.text), d.stopped(), d.stop.value_or("")};
  }

  std::string finish() override {
    if (stream_.stopped()) return {};
    return stream_.finish().text;
  }

 private:
  text::TextStream stream_;
};

class TokenizerCodec : public TextCodec {
 public:
  explicit TokenizerCodec(std::shared_ptr<const Tokenizer> tok) : tok_(std::move(tok)) {
    token_text_.resize(tok_->vocab_size());
    for (size_t id = 0; id < token_text_.size(); ++id) {
      int32_t i = static_cast<int32_t>(id);
      if (tok_->contains_id(i)) token_text_[id] = tok_->decode(std::span<const int32_t>(&i, 1), false);
    }
  }

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const override {
    try {
      return tok_->encode_ids(text, add_special_tokens);
    } catch (const std::runtime_error& e) {
      throw std::invalid_argument(std::string("cannot tokenize the text: ") + e.what());
    }
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    for (int32_t id : ids)
      if (!tok_->contains_id(id))
        throw std::invalid_argument("token id " + std::to_string(id) + " is not in the tokenizer's vocabulary");
    return tok_->decode(ids, skip_special_tokens);
  }

  std::string token_text(int32_t id) const override {
    if (id < 0 || static_cast<size_t>(id) >= token_text_.size()) return {};
    return token_text_[id];
  }

  int vocab_size() const override { return static_cast<int>(tok_->vocab_size()); }

  std::unique_ptr<SequenceText> start_sequence(std::span<const int32_t> prompt,
                                               const StreamOptions& options) const override {
    return std::make_unique<StreamText>(tok_, prompt, options);
  }

 private:
  std::shared_ptr<const Tokenizer> tok_;
  std::vector<std::string> token_text_;
};

}  // namespace

std::unique_ptr<TextCodec> TextCodec::load(const std::string& model_dir) {
  return std::make_unique<TokenizerCodec>(Tokenizer::from_dir(model_dir));
}

}  // namespace lmserve::server
