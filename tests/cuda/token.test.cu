// The GPU fused pass (rpo/cuda/token.cuh) against the CPU one (rpo::evaluate_tokens, itself checked against a plain
// double loop in tests/unit/token.test.cpp): value, sequence log-probs, lengths, group losses and every entry of the
// gradient, for pair and group presets (one length-normalised), odd V, T = 1, fully masked responses, logits of
// magnitude 1e4, float / __half / __nv_bfloat16 storage, in place and into a buffer (aligned or not); and the
// errors: the CPU path's messages, with `out` left untouched.
#include "rpo/cuda/token.cuh"  // first: the header compiles on its own

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/device.hpp"
#include "rpo/presets.hpp"
#include "rpo/token.hpp"
#include "support/close.hpp"
#include "support/expect_error.hpp"
#include "support/token_case.hpp"

namespace {

using test::cuda::buffer;

using token_case = test::token_case<float>;

/// What one call gives, on either side.
struct result {
  float value = 0;
  std::vector<float> grad, logp, length, group_loss;
};

/// How many groups `loss` sees in `c`.
template <class L> std::size_t groups_of(const token_case& c) {
  constexpr std::int64_t k = decltype(rpo::as_loss(L{}))::group_size;
  if constexpr (k == 0) {
    return c.offsets.size() - 1;
  } else {
    return c.offsets.empty() ? static_cast<std::size_t>(c.shape.sequences / k) : c.offsets.size() - 1;
  }
}

/// The CPU fused pass on float logits (the values the GPU reads, after rounding to its storage).
template <class L>
result run_cpu(const L& loss, const token_case& c, const std::vector<float>& logits, rpo::token_reduction per,
               rpo::reduction how) {
  result r;
  r.grad.resize(logits.size());
  r.logp.resize(c.ref_logp.size());
  r.length.resize(c.ref_logp.size());
  r.group_loss.resize(groups_of<L>(c));
  const rpo::token_input<float> in{.tokens = {logits, c.target, c.mask, c.shape}, .per_sequence = per,
                                   .ref_logp = c.ref_logp, .reward = c.reward, .offsets = c.offsets};
  r.value = rpo::evaluate_tokens(loss, in,
                                 rpo::token_output<float>{.grad_logits = r.grad, .logp = r.logp, .length = r.length,
                                                          .group_loss = r.group_loss},
                                 how);
  return r;
}

template <class T> std::vector<T> to_storage(const std::vector<float>& x) {
  std::vector<T> out;
  out.reserve(x.size());
  for (const float v : x) out.push_back(rpo::cuda::detail::from_float<T>(v));
  return out;
}
template <class T> std::vector<float> to_floats(const std::vector<T>& x) {
  std::vector<float> out;
  out.reserve(x.size());
  for (const T v : x) out.push_back(rpo::cuda::detail::to_float(v));
  return out;
}

enum class where { buffer, in_place, misaligned_buffer };

/// The GPU fused pass on logits stored as T: into a buffer, in place, or into a buffer one element past a 16-byte
/// boundary (the scalar path of pass 2).
template <class T, class L>
result run_gpu(const L& loss, const token_case& c, rpo::token_reduction per, rpo::reduction how, where to) {
  const std::vector<T> host_logits = to_storage<T>(c.logits);
  const std::size_t n = host_logits.size(), skew = to == where::misaligned_buffer ? 1 : 0;
  buffer<T> logits(host_logits), grad(n + skew);
  buffer<std::int64_t> target(c.target), offsets(c.offsets);
  buffer<std::uint8_t> mask(c.mask);
  buffer<float> ref(c.ref_logp), reward(c.reward), logp(c.ref_logp.size()), length(c.ref_logp.size()),
      group_loss(groups_of<L>(c));
  const std::span<T> grad_span = to == where::in_place ? logits.span() : grad.span().subspan(skew, n);
  const rpo::cuda::token_input<T> in{
      .tokens = {logits.cspan(), target.cspan(), mask.cspan(), c.shape}, .per_sequence = per, .ref_logp = ref.cspan(),
      .reward = reward.cspan(), .offsets = c.offsets.empty() ? std::span<const std::int64_t>{} : offsets.cspan()};
  result r;
  r.value = rpo::cuda::evaluate_tokens(loss, in,
                                       rpo::cuda::token_output<T>{.grad_logits = grad_span, .logp = logp.span(),
                                                                  .length = length.span(),
                                                                  .group_loss = group_loss.span()},
                                       how);
  RPO_CUDA_TRY(cudaDeviceSynchronize());
  std::vector<T> g = to == where::in_place ? logits.download() : grad.download();
  if (skew != 0) g.erase(g.begin());
  r.grad = to_floats(g);
  r.logp = logp.download();
  r.length = length.download();
  r.group_loss = group_loss.download();
  return r;
}

/// Tolerances of a comparison: the loss, log-probs and group losses relative (with an absolute floor `atol_value`);
/// each gradient entry within rtol_grad relative plus atol_grad times the largest |entry| of the reference.
struct tolerance {
  double rtol_value = 1e-5, atol_value = 1e-6, rtol_grad = 1e-5, atol_grad = 1e-6;
};

void check_equal(const result& gpu, const result& cpu, const tolerance& tol) {
  CHECK_CLOSE(gpu.value, cpu.value, tol.rtol_value, tol.atol_value);
  REQUIRE(gpu.logp.size() == cpu.logp.size());
  for (std::size_t i = 0; i < cpu.logp.size(); ++i) {
    CHECK_CLOSE(gpu.logp[i], cpu.logp[i], tol.rtol_value, tol.atol_value);
    CHECK(gpu.length[i] == cpu.length[i]);
  }
  REQUIRE(gpu.group_loss.size() == cpu.group_loss.size());
  for (std::size_t i = 0; i < cpu.group_loss.size(); ++i)
    CHECK_CLOSE(gpu.group_loss[i], cpu.group_loss[i], tol.rtol_value, tol.atol_value);
  REQUIRE(gpu.grad.size() == cpu.grad.size());
  double largest = 0;
  for (const float g : cpu.grad) largest = std::max(largest, std::fabs(static_cast<double>(g)));
  std::size_t bad = 0;
  for (std::size_t i = 0; i < cpu.grad.size(); ++i) {
    if (test::rel_close(gpu.grad[i], cpu.grad[i], tol.rtol_grad, tol.atol_grad * largest)) continue;
    if (++bad <= 5) FAIL_CHECK("grad[" << i << "] = " << gpu.grad[i] << ", CPU " << cpu.grad[i]);
  }
  CHECK_MESSAGE(bad == 0, bad << " of " << cpu.grad.size() << " gradient entries differ");
}

/// GPU (float storage, into a buffer and in place) against CPU on several shapes: odd V, T = 1, a larger V, and a
/// fully masked response where the loss and the reduction allow one.
template <class L>
void check_shapes(const L& loss, rpo::token_reduction per, bool empty_allowed, std::vector<std::int64_t> offsets = {},
                  std::int64_t sequences = 4) {
  struct shape {
    std::int64_t tokens, vocab;
  };
  for (const shape s : {shape{7, 37}, shape{1, 1001}, shape{5, 4099}, shape{3, 32003}}) {
    CAPTURE(s.tokens);
    CAPTURE(s.vocab);
    token_case c(sequences, s.tokens, s.vocab, 2.0, static_cast<std::uint64_t>(s.vocab), empty_allowed ? 1 : -1);
    c.offsets = offsets;
    const result cpu = run_cpu(loss, c, c.logits, per, rpo::reduction::mean());
    const result gpu = run_gpu<float>(loss, c, per, rpo::reduction::mean(), where::buffer);
    check_equal(gpu, cpu, {});
    const result in_place = run_gpu<float>(loss, c, per, rpo::reduction::mean(), where::in_place);
    CHECK(in_place.value == gpu.value);
    CHECK_MESSAGE(in_place.grad == gpu.grad, "in place must give the buffer's bits");
  }
}

}  // namespace

TEST_SUITE("cuda token") {
  TEST_CASE("pairwise presets: GPU equals rpo::evaluate_tokens (float, rel 1e-5), in place and into a buffer") {
    RPO_REQUIRE_DEVICE();
    SUBCASE("dpo, a fully masked response") { check_shapes(rpo::dpo{}, rpo::token_reduction::sum, true); }
    SUBCASE("simpo (length-normalised)") { check_shapes(rpo::simpo{}, rpo::token_reduction::sum, false); }
    SUBCASE("rpo_bwd (explicit rewards), a fully masked response") {
      check_shapes(rpo::rpo_bwd{}, rpo::token_reduction::sum, true);
    }
    SUBCASE("ipo over the mean per token") { check_shapes(rpo::ipo{}, rpo::token_reduction::mean, false); }
  }

  TEST_CASE("group presets over ragged offsets: GPU equals rpo::evaluate_tokens (float, rel 1e-5)") {
    RPO_REQUIRE_DEVICE();
    SUBCASE("rpo_sqloo") { check_shapes(rpo::rpo_sqloo{}, rpo::token_reduction::sum, true, {0, 2, 5}, 5); }
    SUBCASE("listwise_dpo") { check_shapes(rpo::listwise_dpo{}, rpo::token_reduction::sum, false, {0, 3, 5}, 5); }
  }

  TEST_CASE("reductions: sum and sum_over(count) as on the CPU") {
    RPO_REQUIRE_DEVICE();
    const token_case c(6, 4, 257, 2.0, 3);
    for (const rpo::reduction how : {rpo::reduction::sum(), rpo::reduction::sum_over(7)}) {
      const result cpu = run_cpu(rpo::dpo{}, c, c.logits, rpo::token_reduction::sum, how);
      check_equal(run_gpu<float>(rpo::dpo{}, c, rpo::token_reduction::sum, how, where::buffer), cpu, {});
    }
  }

  TEST_CASE("a buffer off the logits' 16-byte alignment (scalar pass 2) gives the bits of the aligned one") {
    RPO_REQUIRE_DEVICE();
    const token_case c(2, 3, 1031, 2.0, 5);
    const result aligned = run_gpu<float>(rpo::dpo{}, c, rpo::token_reduction::sum, rpo::reduction::mean(), where::buffer);
    const result skewed =
        run_gpu<float>(rpo::dpo{}, c, rpo::token_reduction::sum, rpo::reduction::mean(), where::misaligned_buffer);
    CHECK(skewed.grad == aligned.grad);
    const result bf16 = run_gpu<__nv_bfloat16>(rpo::dpo{}, c, rpo::token_reduction::sum, rpo::reduction::mean(),
                                               where::misaligned_buffer);
    const result bf16_aligned =
        run_gpu<__nv_bfloat16>(rpo::dpo{}, c, rpo::token_reduction::sum, rpo::reduction::mean(), where::buffer);
    CHECK(bf16.grad == bf16_aligned.grad);
  }

  TEST_CASE("logits of magnitude 1e4: finite, and the CPU's values within float's spacing there") {
    RPO_REQUIRE_DEVICE();
    const token_case c(4, 3, 37, 1e4, 11);
    // |z| ≈ 4e4 has a float spacing of 2^-8 ≈ 3.9e-3: one ulp of a row's logsumexp, where the two sides' sums round
    // differently, moves that row's exponentials by 0.4% and its log-prob by 3.9e-3.
    const tolerance tol{.rtol_value = 1e-5, .atol_value = 3 * 3.9e-3, .rtol_grad = 5e-3, .atol_grad = 1e-6};
    for (const rpo::token_reduction per : {rpo::token_reduction::sum, rpo::token_reduction::mean}) {
      const result cpu = run_cpu(rpo::rpo_bwd{}, c, c.logits, per, rpo::reduction::mean());
      const result gpu = run_gpu<float>(rpo::rpo_bwd{}, c, per, rpo::reduction::mean(), where::in_place);
      CHECK(std::isfinite(gpu.value));
      for (const float g : gpu.grad) REQUIRE(std::isfinite(g));
      check_equal(gpu, cpu, tol);
    }
  }

  TEST_CASE_TEMPLATE("bf16 and fp16 storage: GPU equals the CPU on the rounded logits, the gradient within the "
                     "storage's rounding", T, __half, __nv_bfloat16) {
    RPO_REQUIRE_DEVICE();
    // The loss and log-probs come from the same rounded values in fp32 on both sides: rel 1e-5. The gradient is
    // rounded to T when written: at most half an ulp, 2^-8 (bf16) or 2^-11 (fp16) relative; below 2^-14 fp16 is
    // subnormal and keeps 2^-24 absolutely.
    const bool bf16 = std::is_same_v<T, __nv_bfloat16>;
    const tolerance tol{.rtol_value = 1e-5, .atol_value = 1e-6, .rtol_grad = bf16 ? 0x1p-8 : 0x1p-11,
                        .atol_grad = 1e-6};
    for (const std::int64_t vocab : {std::int64_t{37}, std::int64_t{4099}}) {
      token_case c(4, 5, vocab, 2.0, 17, 2);
      const std::vector<float> rounded = to_floats(to_storage<T>(c.logits));
      const result cpu = run_cpu(rpo::dpo{}, c, rounded, rpo::token_reduction::sum, rpo::reduction::mean());
      result gpu = run_gpu<T>(rpo::dpo{}, c, rpo::token_reduction::sum, rpo::reduction::mean(), where::buffer);
      if (!bf16)  // below 2^-14 fp16 is subnormal, with a fixed spacing of 2^-24: compare there absolutely
        for (std::size_t i = 0; i < gpu.grad.size(); ++i)
          if (std::fabs(cpu.grad[i]) < 0x1p-14f && std::fabs(gpu.grad[i] - cpu.grad[i]) <= 0x1p-24f) gpu.grad[i] = cpu.grad[i];
      check_equal(gpu, cpu, tol);
      const result in_place = run_gpu<T>(rpo::dpo{}, c, rpo::token_reduction::sum, rpo::reduction::mean(), where::in_place);
      CHECK(in_place.grad == run_gpu<T>(rpo::dpo{}, c, rpo::token_reduction::sum, rpo::reduction::mean(), where::buffer).grad);
    }
  }

  TEST_CASE("errors found on the device: the CPU's messages, and `out` and the logits left untouched") {
    RPO_REQUIRE_DEVICE();
    token_case c(2, 3, 5, 1.0, 7);
    c.mask = {0, 1, 1, 0, 1, 1};
    c.target = {-100, 0, 1, -100, 2, 3};
    const float sentinel = 12345.f;
    const auto call = [&](const auto& loss, const token_case& k, rpo::token_reduction per, bool with_reward = true) {
      buffer<float> logits(k.logits), grad(std::vector<float>(k.logits.size(), sentinel)), ref(k.ref_logp),
          reward(k.reward), logp(std::vector<float>(2, sentinel));
      buffer<std::int64_t> target(k.target);
      buffer<std::uint8_t> mask(k.mask);
      const rpo::cuda::token_input<float> in{.tokens = {logits.cspan(), target.cspan(), mask.cspan(), k.shape},
                                             .per_sequence = per, .ref_logp = ref.cspan(),
                                             .reward = with_reward ? reward.cspan() : std::span<const float>{}};
      try {
        rpo::cuda::evaluate_tokens(loss, in, rpo::cuda::token_output<float>{.grad_logits = grad.span(), .logp = logp.span()});
      } catch (...) {
        RPO_CUDA_TRY(cudaDeviceSynchronize());
        for (const float g : grad.download()) REQUIRE(g == sentinel);
        for (const float g : logp.download()) REQUIRE(g == sentinel);
        const std::vector<float> after = logits.download();  // bitwise: one case holds a NaN
        CHECK(std::memcmp(after.data(), k.logits.data(), after.size() * sizeof(float)) == 0);
        throw;
      }
    };
    const auto sum = rpo::token_reduction::sum;
    SUBCASE("a target id >= vocab at a response position") {
      token_case k = c;
      k.target[4] = 5;
      test::expect_error<std::invalid_argument>(
          [&] { call(rpo::dpo{}, k, sum); },
          {"rpo::dpo: target[4] (sequence 1, token 1) must be a token id in [0, vocab = 5), but got target[4] = 5"});
    }
    SUBCASE("a negative target id; the first bad one is named") {
      token_case k = c;
      k.target[5] = -1;
      k.target[2] = -7;
      test::expect_error<std::invalid_argument>([&] { call(rpo::dpo{}, k, sum); },
                                                {"target[2] (sequence 0, token 2)", "but got target[2] = -7"});
    }
    SUBCASE("an empty response with a length-normalised loss, and with a mean over tokens") {
      token_case k = c;
      k.mask = {0, 1, 1, 0, 0, 0};
      test::expect_error<std::domain_error>(
          [&] { call(rpo::simpo{}, k, sum); },
          {"rpo::simpo: sequence 1 has an empty response (its mask is all zero, length = 0), but this loss normalises "
           "its reward by the response length"});
      test::expect_error<std::domain_error>([&] { call(rpo::dpo{}, k, rpo::token_reduction::mean); },
                                            {"sequence 1 has an empty response", "per_sequence = mean"});
    }
    SUBCASE("a NaN logit in a response row") {
      token_case k = c;
      k.logits[4 * 5 + 2] = std::numeric_limits<float>::quiet_NaN();
      test::expect_error<std::domain_error>([&] { call(rpo::dpo{}, k, sum); },
                                            {"the log-prob of target[4] (sequence 1, token 1) must be finite"});
    }
    SUBCASE("the loss's own checks (rpo::evaluate): a reward it reads but was not given") {
      test::expect_error<std::invalid_argument>([&] { call(rpo::rpo_bwd{}, c, sum, false); },
                                                {"rpo::rpo_bwd: reward is read by this loss but was not given"});
    }
    SUBCASE("a masked target of -100 is never read") { CHECK_NOTHROW(call(rpo::dpo{}, c, sum)); }
  }
}

TEST_SUITE("cuda token host checks") {
  // These fail before the first CUDA call, so they run without a device. The spans point to host memory that is
  // never read (a check that let one through would fail at the first CUDA call instead).
  TEST_CASE("shapes, sizes, aliasing and parameters are checked on the host, with the CPU path's messages") {
    std::vector<float> logits(2 * 3 * 5), grad(logits.size()), small(7);
    std::vector<std::int64_t> target(6, 0);
    std::vector<std::uint8_t> mask(6, 1);
    const rpo::token_shape shape{2, 3, 5};
    const auto input = [&](std::span<const float> z, rpo::token_shape s, std::span<const std::int64_t> t) {
      return rpo::cuda::token_input<float>{.tokens = {z, t, mask, s}};
    };
    const auto call = [&](const auto& loss, const rpo::cuda::token_input<float>& in, std::span<float> g) {
      rpo::cuda::evaluate_tokens(loss, in, rpo::cuda::token_output<float>{.grad_logits = g});
    };
    test::expect_error<std::invalid_argument>([&] { call(rpo::dpo{}, input(logits, {2, 3, 0}, target), grad); },
                                              {"rpo::dpo: shape.vocab must be >= 1, but got shape.vocab = 0"});
    test::expect_error<std::invalid_argument>(
        [&] { call(rpo::dpo{}, input(small, shape, target), grad); },
        {"rpo::dpo: logits has 7 entries but must have sequences x tokens x vocab = 2 x 3 x 5 = 30"});
    test::expect_error<std::invalid_argument>(
        [&] { call(rpo::dpo{}, input(logits, shape, std::span(target).first(5)), grad); },
        {"rpo::dpo: target has 5 entries but must have sequences x tokens = 2 x 3 = 6"});
    test::expect_error<std::invalid_argument>([&] { call(rpo::dpo{}, input(logits, shape, target), small); },
                                              {"rpo::dpo: grad_logits has 7 entries but must have as many as logits, 30"});
    test::expect_error<std::invalid_argument>(
        [&] { call(rpo::dpo{}, input(logits, shape, target), std::span(logits).subspan(1).first(30 - 1)); },
        {"grad_logits has 29 entries"});
    std::vector<float> wide(31);
    test::expect_error<std::invalid_argument>(
        [&] { call(rpo::dpo{}, input(std::span(wide).first(30), shape, target), std::span(wide).subspan(1)); },
        {"rpo::dpo: grad_logits must be the logits' own memory (in place) or not overlap them"});
    test::expect_error<std::invalid_argument>([&] { call(rpo::dpo{.beta = -0.5}, input(logits, shape, target), grad); },
                                              {"rpo::dpo: beta must be finite and > 0, but got beta = -0.5"});
  }
}
