// `lmserve tokenize` and `lmserve detokenize`: text <-> token ids with the tokenizer.json of a
// model folder (weights not needed). --jsonl FILE runs a batch: one JSON result line per input
// line, an {"error": ...} line for a bad one, and the other lines still run.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/token_ids.h"
#include "tokenizer/tokenizer.h"

namespace lmserve::cli {
namespace {

using nlohmann::json;
using tokenizer::Tokenizer;

// Never throws on odd bytes: anything not UTF-8 becomes U+FFFD in the output.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }


// Runs `handle` on every line of FILE ("-" = stdin), printing its JSON or {"error": ...}.
template <typename Handle>
void run_jsonl(const std::string& path, Handle&& handle) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw std::runtime_error("--jsonl: cannot open " + path);
    in = &file;
  }
  std::string line;
  size_t number = 0;
  while (std::getline(*in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    json out;
    try {
      const json request = json::parse(line);
      if (!request.is_object()) throw std::invalid_argument("expected a JSON object");
      out = handle(request);
    } catch (const std::exception& e) {
      out = {{"error", "line " + std::to_string(number) + ": " + e.what()}};
    }
    std::printf("%s\n", dump(out).c_str());
  }
}

template <typename T>
T field_or(const json& request, const char* key, T fallback) {
  auto it = request.find(key);
  if (it == request.end() || it->is_null()) return fallback;
  return it->get<T>();
}

struct TokenizeOptions {
  std::string model, text, jsonl;
  bool has_text = false;  // --text "" is a valid (empty) text
  bool no_special = false, json = false;
};

json encoding_json(const Tokenizer& tok, const std::string& text, bool add_special_tokens) {
  const auto e = tok.encode(text, add_special_tokens);
  return {{"ids", e.ids}, {"tokens", e.tokens}};
}

void run_tokenize(const TokenizeOptions& o) {
  if (o.has_text == !o.jsonl.empty()) throw std::invalid_argument("--text, --jsonl: give exactly one");
  const auto tok = Tokenizer::from_dir(o.model);
  if (!o.jsonl.empty()) {
    run_jsonl(o.jsonl, [&](const json& request) {
      if (!request.contains("text") || !request["text"].is_string()) throw std::invalid_argument("\"text\": expected a string");
      return encoding_json(*tok, request["text"].get<std::string>(), field_or(request, "add_special_tokens", !o.no_special));
    });
    return;
  }
  const auto e = tok->encode(o.text, !o.no_special);
  if (o.json) {
    std::printf("%s\n", dump(json{{"ids", e.ids}, {"tokens", e.tokens}}).c_str());
    return;
  }
  std::printf("%zu tokens\n", e.ids.size());
  for (size_t i = 0; i < e.ids.size(); ++i) {
    std::printf("%8d  %-24s  bytes %zu..%zu\n", e.ids[i], dump(json(e.tokens[i])).c_str(), e.offsets[i].first,
                e.offsets[i].second);
  }
}

struct DetokenizeOptions {
  std::string model, ids, jsonl;
  bool skip_special = false, json = false;
};

void run_detokenize(const DetokenizeOptions& o) {
  if (o.ids.empty() == o.jsonl.empty()) throw std::invalid_argument("--ids, --jsonl: give exactly one");
  const auto tok = Tokenizer::from_dir(o.model);
  if (!o.jsonl.empty()) {
    run_jsonl(o.jsonl, [&](const json& request) {
      if (!request.contains("ids") || !request["ids"].is_array()) throw std::invalid_argument("\"ids\": expected an array");
      std::vector<int32_t> ids;
      for (const auto& v : request["ids"]) {
        if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX) {
          throw std::invalid_argument("\"ids\": " + dump(v) + " is not a token id");
        }
        ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      return json{{"text", tok->decode(ids, field_or(request, "skip_special_tokens", o.skip_special))}};
    });
    return;
  }
  const std::string text = tok->decode(parse_ids_csv(o.ids, "--ids"), o.skip_special);
  if (o.json) std::printf("%s\n", dump(json{{"text", text}}).c_str());
  else std::printf("%s\n", text.c_str());
}

void register_tokenize(CLI::App& app) {
  auto t = std::make_shared<TokenizeOptions>();
  CLI::App* tokenize = app.add_subcommand("tokenize", "Text to token ids with the model folder's tokenizer.json");
  tokenize->add_option("--model", t->model, "Folder holding tokenizer.json (weights not needed)")->required();
  CLI::Option* text = tokenize->add_option("--text", t->text, "Text to tokenize");
  tokenize->add_option("--jsonl", t->jsonl,
                       "Batch: lines {\"text\":..., \"add_special_tokens\":bool} in, {\"ids\":[...],\"tokens\":[...]} out "
                       "(- = stdin)");
  tokenize->add_flag("--no-special", t->no_special, "Do not add special tokens (BOS/EOS)");
  tokenize->add_flag("--json", t->json, "Print one JSON document {\"ids\":[...],\"tokens\":[...]}");
  tokenize->callback([t, text] {
    t->has_text = text->count() > 0;
    run_tokenize(*t);
  });

  auto d = std::make_shared<DetokenizeOptions>();
  CLI::App* detokenize = app.add_subcommand("detokenize", "Token ids to text with the model folder's tokenizer.json");
  detokenize->add_option("--model", d->model, "Folder holding tokenizer.json (weights not needed)")->required();
  detokenize->add_option("--ids", d->ids, "Token ids, comma-separated");
  detokenize->add_option("--jsonl", d->jsonl,
                         "Batch: lines {\"ids\":[...], \"skip_special_tokens\":bool} in, {\"text\":...} out (- = stdin)");
  detokenize->add_flag("--skip-special", d->skip_special, "Drop special tokens from the text");
  detokenize->add_flag("--json", d->json, "Print one JSON document {\"text\":...}");
  detokenize->callback([d] { run_detokenize(*d); });
}

}  // namespace
}  // namespace lmserve::cli

LMSERVE_COMMAND(lmserve::cli::register_tokenize);
