// `lmserve embed`: the pooled final hidden states of a text (mean or last position,
// L2-normalized unless --no-normalize).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_cli.h"

namespace lmserve::cli {
namespace {

struct EmbedCliOptions {
  std::string model;
  std::string ids;
  std::string text;
  std::string pooling = "mean";
  bool no_normalize = false;
  int threads = 0;
  std::string device;
  bool json = false;
};

void run_embed(const EmbedCliOptions& o) {
  if (o.ids.empty() == o.text.empty()) throw std::invalid_argument("--ids, --text: give exactly one");
  if (o.pooling != "mean" && o.pooling != "last")
    throw std::invalid_argument("--pooling must be mean or last, got '" + o.pooling + "'");
  std::vector<int32_t> tokens;
  std::string prompt_option = "--ids";
  if (!o.ids.empty()) {
    tokens = parse_ids_csv(o.ids, "--ids");
  } else {
    prompt_option = "--text";
#ifdef LMSERVE_HAVE_TOKENIZER
    TokenizerPtr tok = load_tokenizer_if_present(o.model);
    if (!tok) throw std::invalid_argument("--text needs " + o.model + "/tokenizer.json (or use --ids)");
    tokens = tok->encode_ids(o.text, /*add_special_tokens=*/true);
#else
    throw std::invalid_argument("--text needs the tokenizer, which this build of lmserve lacks (use --ids)");
#endif
  }
  EngineRun run = make_engine(o.model, o.device, o.threads, 1, static_cast<int>(tokens.size()), 0);
  engine::Request r;
  r.id = "embed";
  r.kind = engine::RequestKind::Embed;
  r.prompt = tokens;
  r.embed = {o.pooling == "mean" ? engine::Pooling::Mean : engine::Pooling::Last, !o.no_normalize};
  r.stream = false;
  std::vector<float> embedding;
  run_request(*run.engine, std::move(r), prompt_option, [&](engine::RequestOutput&& out) {
    if (!out.embedding.empty()) embedding = std::move(out.embedding);
  });
  if (o.json) {
    nlohmann::json doc = {{"embedding", embedding}, {"num_tokens", tokens.size()}};
    std::printf("%s\n", doc.dump().c_str());
  } else {
    std::printf("num_tokens: %zu  dim: %zu\n", tokens.size(), embedding.size());
    for (size_t i = 0; i < embedding.size(); ++i) std::printf(i + 1 < embedding.size() ? "%.6g " : "%.6g\n", embedding[i]);
  }
}

void register_embed(CLI::App& app) {
  auto opts = std::make_shared<EmbedCliOptions>();
  CLI::App* cmd = app.add_subcommand("embed", "Pooled final hidden states of a text");
  cmd->add_option("--model", opts->model, "Model folder (config.json + safetensors)")->required();
  cmd->add_option("--ids", opts->ids, "Token ids, comma-separated (no tokenizer needed)");
  cmd->add_option("--text", opts->text, "Text (needs tokenizer.json in the model folder)");
  cmd->add_option("--pooling", opts->pooling, "mean (default) or last");
  cmd->add_flag("--no-normalize", opts->no_normalize, "Return the raw pooled vector (no L2 normalization)");
  cmd->add_option("--threads", opts->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--device", opts->device, "cpu or cuda (default: cuda when available)");
  cmd->add_flag("--json", opts->json, "Print one JSON document");
  cmd->callback([opts] { run_embed(*opts); });
}

LMSERVE_COMMAND(register_embed);

}  // namespace
}  // namespace lmserve::cli
