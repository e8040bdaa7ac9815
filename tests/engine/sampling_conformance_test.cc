// Sampling conformance: for every fixture model, prompt and golden sampling setting,
// the filtered distribution computed from the golden last-position logits equals the
// golden one (kept ids exactly, probabilities within rel 1e-3 + abs 1e-7), and a seeded
// sampler's frequencies over 20 000 draws pass a chi-square test against it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/sampling/filters.h"
#include "engine/sampling/sampler.h"
#include "tests/engine/chi_square.h"
#include "tests/engine/golden.h"
#include "tests/engine/npy.h"

namespace lmserve::engine {
namespace {

using test::chi_square;
using test::ChiSquare;
using test::close_to;
using test::upper_gamma_q;

TEST(ChiSquareHelper, MatchesKnownQuantiles) {
  // chi2 with 1 dof at 3.841 → p = 0.05; Q(1, x) = e^-x; Q(0.5, x) = erfc(√x); for an
  // integer a, Q(a, x) = e^-x · Σ_{k<a} x^k / k! (both the series and the fraction branch).
  EXPECT_NEAR(upper_gamma_q(0.5, 3.841459 / 2), 0.05, 1e-6);
  EXPECT_NEAR(upper_gamma_q(1.0, 5.0), std::exp(-5.0), 1e-12);
  EXPECT_NEAR(upper_gamma_q(0.5, 0.3), std::erfc(std::sqrt(0.3)), 1e-12);
  for (double x : {3.0, 15.0, 40.0}) {
    double sum = 0.0, term = 1.0;
    for (int k = 0; k < 10; ++k) {
      sum += term;
      term *= x / (k + 1);
    }
    EXPECT_NEAR(upper_gamma_q(10.0, x), std::exp(-x) * sum, 1e-12) << x;
  }
  // A grossly wrong sampler fails.
  EXPECT_LT(chi_square({5000, 5000}, {6000, 4000}).p_value, 1e-10);
}

SamplingParams params_from_golden(const nlohmann::json& j) {
  SamplingParams p;
  p.temperature = j.at("temperature").get<float>();
  p.top_k = j.at("top_k").get<int>();
  p.top_p = j.at("top_p").get<float>();
  p.min_p = j.at("min_p").is_null() ? 0.0f : j.at("min_p").get<float>();
  return p;
}

constexpr int kDraws = 20000;
constexpr double kMinPValue = 1e-4;

class SamplingConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(SamplingConformance, FilteredDistributionsAndDrawsMatchGolden) {
  const std::string model = GetParam();
  const nlohmann::json golden = test::load_golden(model);
  const NpyArray logits =
      read_npy(test::golden_model_dir(model) + "/" + golden.at("last_logits_file").get<std::string>());
  const int vocab = golden.at("vocab_size").get<int>();
  ASSERT_EQ(logits.row_size(), static_cast<size_t>(vocab));

  int settings_checked = 0;
  double min_p_value = 1.0;
  for (const auto& prompt : golden.at("prompts")) {
    const auto row = logits.row(prompt.at("last_logits_row").get<size_t>());
    int setting_index = 0;
    for (const auto& setting : prompt.at("sampling")) {
      SCOPED_TRACE(model + " prompt " + std::to_string(prompt.at("index").get<int>()) +
                   " setting " + std::to_string(setting_index++) + " " + setting.at("params").dump());
      const SamplingParams params = params_from_golden(setting.at("params"));
      const SparseDistribution dist = filtered_distribution(row, params);
      const auto golden_ids = test::json_vector<int32_t>(setting.at("ids"));
      const auto golden_probs = test::json_vector<double>(setting.at("probs"));
      const bool truncated = setting.at("kept_truncated").get<bool>();

      ASSERT_EQ(static_cast<int>(dist.ids.size()), setting.at("num_kept").get<int>());
      ASSERT_EQ(golden_ids.size(), golden_probs.size());
      std::unordered_map<int32_t, float> ours;
      for (size_t i = 0; i < dist.ids.size(); ++i) ours[dist.ids[i]] = dist.probs[i];
      if (!truncated) {
        std::vector<int32_t> a = dist.ids, b = golden_ids;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        ASSERT_EQ(a, b) << "kept sets differ";
      }
      double listed_mass = 0.0;
      for (size_t i = 0; i < golden_ids.size(); ++i) {
        auto it = ours.find(golden_ids[i]);
        ASSERT_NE(it, ours.end()) << "golden keeps token " << golden_ids[i];
        EXPECT_TRUE(close_to(it->second, golden_probs[i], 1e-3, 1e-7))
            << "token " << golden_ids[i] << ": " << it->second << " vs " << golden_probs[i];
        listed_mass += golden_probs[i];
      }
      // Our order is most probable first; wherever golden probabilities differ by more
      // than the tolerance, the order must agree.
      for (size_t i = 1; i < dist.ids.size(); ++i) {
        ASSERT_GE(dist.probs[i - 1], dist.probs[i]);
      }

      // sample_next_token skips the final sort (a draw needs only a fixed order): the
      // same tokens with the same probabilities.
      const SparseDistribution unsorted = detail::filter_distribution(row, params, /*sorted=*/false);
      ASSERT_EQ(unsorted.ids.size(), dist.ids.size());
      for (size_t i = 0; i < unsorted.ids.size(); ++i) {
        ASSERT_EQ(unsorted.probs[i], ours.at(unsorted.ids[i])) << "token " << unsorted.ids[i];
      }
      // The sampler's own (unsorted) order for the filtered settings; most probable
      // first for the whole-vocabulary ones, where it keeps 20 000 inverse-CDF walks short.
      const SparseDistribution& sampled = truncated ? dist : unsorted;

      // Chi-square of seeded draws against the golden distribution; the tokens beyond
      // a truncated golden list form one bin with the remaining mass.
      SequenceRng rng(uint64_t{20261127} + settings_checked, 0);
      std::unordered_map<int32_t, size_t> bin_of;
      for (size_t i = 0; i < golden_ids.size(); ++i) bin_of[golden_ids[i]] = i;
      std::vector<double> expected(golden_ids.size() + (truncated ? 1 : 0));
      for (size_t i = 0; i < golden_ids.size(); ++i) expected[i] = kDraws * golden_probs[i];
      if (truncated) expected.back() = kDraws * std::max(0.0, 1.0 - listed_mass);
      std::vector<double> observed(expected.size(), 0.0);
      for (int d = 0; d < kDraws; ++d) {
        const int32_t id = draw(sampled, rng.uniform());
        auto it = bin_of.find(id);
        if (it != bin_of.end()) {
          observed[it->second] += 1.0;
        } else {
          ASSERT_TRUE(truncated) << "drew token " << id << " outside the golden kept set";
          observed.back() += 1.0;
        }
      }
      const ChiSquare chi = chi_square(expected, observed);
      EXPECT_GT(chi.p_value, kMinPValue) << "chi2 " << chi.statistic << " dof " << chi.dof;
      min_p_value = std::min(min_p_value, chi.p_value);
      ++settings_checked;
    }
  }
  EXPECT_EQ(settings_checked, 5 * static_cast<int>(golden.at("prompts").size()));
  RecordProperty("min_chi_square_p_value", std::to_string(min_p_value));
  std::printf("%s: %d settings, smallest chi-square p-value %.4g\n", model.c_str(), settings_checked,
              min_p_value);
}

INSTANTIATE_TEST_SUITE_P(Models, SamplingConformance, ::testing::ValuesIn(test::golden_model_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace lmserve::engine
