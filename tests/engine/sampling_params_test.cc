// Unit tests of validate_sampling_params: defaults and edge values pass, each bad
// parameter is rejected with its name, context errors give the numbers.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/sampling/params.h"

namespace lmserve::engine {
namespace {

struct BadCase {
  std::string param;
  std::function<void(SamplingParams&)> edit;
  int prompt_len = 4;
};

TEST(ValidateSamplingParams, AcceptsDefaultsAndEdgeValues) {
  SamplingParams p;
  EXPECT_NO_THROW(validate_sampling_params(p, 4, 64, 100));
  p.max_tokens = 0;  // scoring only
  EXPECT_NO_THROW(validate_sampling_params(p, 4, 64, 100));
  p.max_tokens = 60;  // exactly fills the context
  p.temperature = 1.5f;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.n = 4096;
  p.logprobs = 20;
  p.prompt_logprobs = 0;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.logit_bias = {{0, 5.0f}, {99, -100.0f}};
  EXPECT_NO_THROW(validate_sampling_params(p, 4, 64, 100));
  SamplingParams beams;
  beams.use_beam_search = true;
  beams.num_beams = 8;
  beams.n = 8;
  beams.length_penalty = -0.5f;
  EXPECT_NO_THROW(validate_sampling_params(beams, 4, 64, 100));
}

TEST(ValidateSamplingParams, RejectsEachBadParameterByName) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<BadCase> cases = {
      {"temperature", [](SamplingParams& p) { p.temperature = -1.0f; }},
      {"temperature", [nan](SamplingParams& p) { p.temperature = nan; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0.0f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -1; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.1f; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"typical_p", [](SamplingParams& p) { p.typical_p = 0.0f; }},
      {"typical_p", [](SamplingParams& p) { p.typical_p = 2.0f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = -1.0f; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = 2.5f; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = -2.5f; }},
      {"n", [](SamplingParams& p) { p.n = 0; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = 21; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = -2; }},
      {"prompt_logprobs", [](SamplingParams& p) { p.prompt_logprobs = 21; }},
      {"num_beams", [](SamplingParams& p) { p.num_beams = 0; }},
      {"num_beams", [](SamplingParams& p) { p.num_beams = 4; }},  // without use_beam_search
      {"temperature",
       [](SamplingParams& p) {
         p.use_beam_search = true;
         p.num_beams = 4;
         p.temperature = 0.8f;
       }},
      {"n",
       [](SamplingParams& p) {
         p.use_beam_search = true;
         p.num_beams = 2;
         p.n = 3;
       }},
      {"max_tokens", [](SamplingParams& p) { p.max_tokens = -1; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = -1; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = p.max_tokens + 1; }},
      {"prompt", [](SamplingParams&) {}, 0},
      {"prompt", [](SamplingParams&) {}, 65},
      {"max_tokens", [](SamplingParams& p) { p.max_tokens = 61; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{100, 1.0f}}; }},
      {"logit_bias", [](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; }},
      {"logit_bias", [nan](SamplingParams& p) { p.logit_bias = {{3, nan}}; }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {5, 100}; }},
      {"eos_token_ids", [](SamplingParams& p) { p.eos_token_ids = std::vector<int32_t>{-3}; }},
      {"length_penalty",
       [](SamplingParams& p) { p.length_penalty = std::numeric_limits<float>::infinity(); }},
      {"no_repeat_ngram_size", [](SamplingParams& p) { p.no_repeat_ngram_size = -1; }},
  };
  for (const BadCase& c : cases) {
    SamplingParams p;
    c.edit(p);
    try {
      validate_sampling_params(p, c.prompt_len, 64, 100);
      ADD_FAILURE() << "accepted a bad " << c.param;
    } catch (const InvalidParameter& e) {
      EXPECT_EQ(e.param(), c.param) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.param == "n" ? "n" : c.param), std::string::npos)
          << "message does not name the parameter: " << e.what();
    }
  }
}

TEST(ValidateSamplingParams, ContextErrorGivesTheNumbers) {
  SamplingParams p;
  p.max_tokens = 100;
  try {
    validate_sampling_params(p, 30, 128, 1000);
    FAIL() << "accepted prompt + max_tokens beyond the context";
  } catch (const InvalidParameter& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("30"), std::string::npos) << m;
    EXPECT_NE(m.find("100"), std::string::npos) << m;
    EXPECT_NE(m.find("128"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace lmserve::engine
