// POST /v1/embeddings: one engine Embed request per input; float or base64 vectors.
#include <cstring>

#include "server/routes/collect_job.h"
#include "server/routes/routes.h"
#include "server/schemas/errors.h"
#include "server/schemas/fields.h"

namespace lmserve::server::routes {

namespace {

std::string base64(const unsigned char* data, size_t size) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    uint32_t v = uint32_t(data[i]) << 16;
    if (i + 1 < size) v |= uint32_t(data[i + 1]) << 8;
    if (i + 2 < size) v |= data[i + 2];
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < size ? table[(v >> 6) & 63] : '=';
    out += i + 2 < size ? table[v & 63] : '=';
  }
  return out;
}

}  // namespace

// OpenAI's base64 format is the little-endian float32 bytes (what numpy.frombuffer reads).
std::string embedding_base64(const std::vector<float>& v) {
  static_assert(sizeof(float) == 4);
  std::vector<unsigned char> bytes(v.size() * 4);
  std::memcpy(bytes.data(), v.data(), bytes.size());  // x86-64 and aarch64 are little-endian
  return base64(bytes.data(), bytes.size());
}

RouteResult embeddings(ServerContext& ctx, const json& body, const ApiRequest& request) {
  fields::require_object(body);
  fields::reject_unknown(body, {"model", "input", "encoding_format", "pooling", "normalize", "user",
                                "add_special_tokens", "dimensions"});
  check_model_name(ctx, body);
  fields::get_string(body, "user");
  std::string format = fields::get_string(body, "encoding_format").value_or("float");
  if (format != "float" && format != "base64")
    throw bad_request("'encoding_format' must be 'float' or 'base64', got '" + format + "'", "encoding_format");
  engine::EmbedOptions embed;
  std::string pooling = fields::get_string(body, "pooling").value_or("mean");
  if (pooling == "mean") embed.pooling = engine::Pooling::Mean;
  else if (pooling == "last") embed.pooling = engine::Pooling::Last;
  else throw bad_request("'pooling' must be 'mean' or 'last', got '" + pooling + "'", "pooling");
  embed.normalize = fields::get_bool(body, "normalize").value_or(true);
  const int hidden = ctx.engine->model_config().hidden_size;
  if (auto dims = fields::get_int(body, "dimensions"); dims && *dims != hidden)
    throw bad_request("'dimensions' must be the model's hidden size " + std::to_string(hidden) +
                          " (truncated embeddings are not supported), got " + std::to_string(*dims),
                      "dimensions");
  bool add_special = fields::get_bool(body, "add_special_tokens").value_or(true);

  const int max_len = ctx.engine->max_model_len();
  const int vocab = ctx.engine->model_config().vocab_size;
  std::vector<engine::Request> requests;
  auto inputs = fields::get_prompts(body, "input");
  for (size_t i = 0; i < inputs.size(); ++i) {
    engine::Request r;
    r.id = request.request_id + "-" + std::to_string(i);
    r.kind = engine::RequestKind::Embed;
    r.embed = embed;
    r.prompt = inputs[i].text ? ctx.text->encode(*inputs[i].text, add_special) : inputs[i].ids;
    if (r.prompt.empty()) throw bad_request("input " + std::to_string(i) + " is empty after tokenization", "input");
    if (static_cast<int>(r.prompt.size()) > max_len)
      throw bad_request("input " + std::to_string(i) + " has " + std::to_string(r.prompt.size()) +
                            " tokens; this model's maximum context length is " + std::to_string(max_len),
                        "input");
    for (int32_t id : r.prompt)
      if (id >= vocab) throw bad_request("input token id " + std::to_string(id) + " is outside the vocabulary", "input");
    requests.push_back(std::move(r));
  }
  std::string model = ctx.model_name;
  auto build = [format, model](std::vector<engine::RequestOutput>& outs) {
    json data = json::array();
    int tokens = 0;
    for (size_t i = 0; i < outs.size(); ++i) {
      tokens += outs[i].num_prompt_tokens;
      json item = {{"object", "embedding"}, {"index", i}};
      if (format == "base64") item["embedding"] = embedding_base64(outs[i].embedding);
      else item["embedding"] = outs[i].embedding;
      data.push_back(std::move(item));
    }
    return Response::json(200, {{"object", "list"},
                                {"data", std::move(data)},
                                {"model", model},
                                {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  };
  return std::make_unique<CollectJob>(ctx, std::move(requests), build);
}

}  // namespace lmserve::server::routes
