// tests/support/token_case.hpp — a random token batch for the token-layer tests, on the CPU (tests/unit/token.test.cpp,
// in double) and on the GPU (tests/cuda/token.test.cu, in float): the same draws in the same order for either.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "rpo/token.hpp"

namespace test {

/// Logits of scale `scale`; per sequence a response between a prompt prefix and padding (targets −100 at masked
/// positions, never read), sequence `empty_sequence` fully masked; sequence-level ref log-probs and rewards.
/// `offsets` is left empty for the tests that group the sequences themselves.
template <class T> struct token_case {
  rpo::token_shape shape;
  std::vector<T> logits, ref_logp, reward;
  std::vector<std::int64_t> target, offsets;
  std::vector<std::uint8_t> mask;

  token_case(std::int64_t sequences, std::int64_t tokens, std::int64_t vocab, double scale, std::uint64_t seed,
             std::int64_t empty_sequence = -1)
      : shape{sequences, tokens, vocab} {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> z(0, scale);
    std::uniform_int_distribution<std::int64_t> id(0, vocab - 1), cut(0, tokens);
    std::uniform_real_distribution<double> ref(-5, 5), rw(-3, 3);
    const auto rows = static_cast<std::size_t>(sequences * tokens);
    logits.resize(rows * static_cast<std::size_t>(vocab));
    for (T& x : logits) x = static_cast<T>(z(rng));
    target.resize(rows);
    mask.resize(rows);
    for (std::int64_t s = 0; s < sequences; ++s) {
      std::int64_t a = cut(rng), b = cut(rng);
      if (a > b) std::swap(a, b);
      if (a == b) a = 0, b = tokens;  // a response of at least one token, unless asked otherwise
      for (std::int64_t t = 0; t < tokens; ++t) {
        const auto i = static_cast<std::size_t>(s * tokens + t);
        mask[i] = (t >= a && t < b && s != empty_sequence) ? 1 : 0;
        target[i] = mask[i] != 0 ? id(rng) : -100;
      }
      ref_logp.push_back(static_cast<T>(ref(rng)));
      reward.push_back(static_cast<T>(rw(rng)));
    }
  }

  /// A field in another scalar type.
  template <class U> std::vector<U> as(const std::vector<T>& v) const { return {v.begin(), v.end()}; }
};

}  // namespace test
