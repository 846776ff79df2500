// Batch specs (rpo/batch_spec.hpp): every batch method parses, its canonical spec reads back to itself, evaluate()
// gives bit for bit what the entry point it names gives on the same batch, and bad specs and bad batches name what is
// wrong. The values themselves are checked against the independent PyTorch reference by the golden:batch:* tests.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rpo/batch_spec.hpp"
#include "rpo/spec.hpp"

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string spec_message(const char* spec) {
  try {
    (void)rpo::parse_batch_loss(spec);
  } catch (const rpo::spec_error& e) {
    return e.what();
  }
  return "(no error)";
}

rpo::batch_value array(std::vector<double> v) {
  const std::size_t n = v.size();
  return {std::move(v), {n}};
}
rpo::batch_value number(double x) { return {{x}, {}}; }

std::string evaluate_message(const rpo::batch_loss& l, const rpo::batch_fields& in) {
  try {
    (void)l.evaluate(in);
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::domain_error& e) {
    return e.what();
  }
  return "(no error)";
}

const std::vector<double> logp{-12.5, -20.25, -3.75, -40.0, -7.5, -9.0};
const std::vector<double> ref{-13.0, -19.5, -5.0, -38.25, -7.0, -11.5};

const rpo::batch_value* output(const rpo::batch_result& r, const std::string& name) {
  for (const auto& [n, v] : r.outputs)
    if (n == name) return &v;
  return nullptr;
}

}  // namespace

TEST_SUITE("batch_spec") {
  TEST_CASE("every batch method parses at its defaults and its canonical spec reads back to itself") {
    for (const rpo::batch_method_info& info : rpo::registered_batch_methods()) {
      CAPTURE(info.name);
      const std::string spec = info.name == "ld_dpo" ? "ld_dpo(alpha=0.5)" : info.name;
      const rpo::batch_loss l = rpo::parse_batch_loss(spec);
      CHECK(l.name() == info.name);
      CHECK(rpo::parse_batch_loss(l.spec()).spec() == l.spec());
      CHECK_FALSE(l.fields().empty());
      CHECK_FALSE(l.outputs().empty());
      CHECK_FALSE(info.paper.empty());
    }
    CHECK(rpo::parse_batch_loss("kto").spec() == "kto(beta=0.1, lambda_desirable=1, lambda_undesirable=1)");
    CHECK(rpo::parse_batch_loss("aot(unpaired=true)").spec() == "aot(beta=0.1, epsilon=0, unpaired=true)");
    CHECK(rpo::parse_batch_loss("wpo(loss=cdpo(beta=0.3))").spec() == "wpo(loss=cdpo(beta=0.3, epsilon=0.1))");
    CHECK(rpo::parse_batch_loss(" ld_dpo( alpha = 0 , loss = dpo ( beta = 0.2 ) ) ").spec() ==
          "ld_dpo(alpha=0, loss=dpo(beta=0.2))");
  }

  TEST_CASE("evaluate() is the entry point it names, to the bit") {
    const std::vector<std::uint8_t> labels{1, 0, 1, 1, 0, 0};
    const rpo::kto k{0.3, 1.25, 0.5};
    std::vector<double> grad(6), grad_ref(6), item(6);
    const double z0 = rpo::kto_reference_point<double>(ref, logp);
    const double want = rpo::evaluate_kto(k, rpo::kto_input<double>{logp, ref, labels, z0},
                                          rpo::kto_output<double>{item, grad, grad_ref});
    const rpo::batch_loss l = rpo::parse_batch_loss("kto(beta=0.3, lambda_desirable=1.25, lambda_undesirable=0.5)");
    const rpo::batch_result r = l.evaluate({{"logp", array(logp)},
                                            {"ref_logp", array(ref)},
                                            {"desirable", array({1, 0, 1, 1, 0, 0})},
                                            {"kl_logp", array(ref)},
                                            {"kl_ref_logp", array(logp)}});
    CHECK(r.loss == want);
    REQUIRE(output(r, "grad_logp") != nullptr);
    CHECK(output(r, "grad_logp")->values == grad);
    CHECK(output(r, "response_loss")->values == item);

    std::vector<double> pair_loss(3);
    const rpo::aot a{0.2, 0.1, true};
    const double aot_want =
        rpo::evaluate_aot(a, rpo::batch_input<double>{logp, ref, {}, {}, {}}, {pair_loss, grad, grad_ref});
    const rpo::batch_result ar = rpo::parse_batch_loss("aot(beta=0.2, epsilon=0.1, unpaired=true)")
                                     .evaluate({{"logp", array(logp)}, {"ref_logp", array(ref)}});
    CHECK(ar.loss == aot_want);
    CHECK(output(ar, "rank_loss")->values == pair_loss);
    CHECK(output(ar, "grad_ref_logp")->values == grad_ref);

    const std::vector<double> weights{0.5, 0.0, 2.5};
    const double wpo_want = rpo::evaluate_weighted(rpo::cdpo{0.3, 0.25}, rpo::batch_input<double>{logp, ref},
                                                   std::span<const double>(weights), {pair_loss, grad, grad_ref});
    const rpo::batch_result wr = rpo::parse_batch_loss("wpo(loss=cdpo(beta=0.3, epsilon=0.25))")
                                     .evaluate({{"logp", array(logp)}, {"ref_logp", array(ref)},
                                                {"group_weights", array(weights)}});
    CHECK(wr.loss == wpo_want);
    CHECK(output(wr, "grad_logp")->values == grad);

    // LD-DPO at alpha = 1 without a mask is the loss on the summed tokens.
    const rpo::batch_result lr = rpo::parse_batch_loss("ld_dpo(alpha=1, loss=dpo(beta=0.1))")
                                     .evaluate({{"token_logp", {{-1, -2, -3, -4}, {2, 2}}},
                                                {"token_ref_logp", {{-1.5, -2.5, -2, -4}, {2, 2}}}});
    const std::vector<double> seq{-3, -7}, seq_ref{-4, -6};
    std::vector<double> g(2);
    const double dpo_want = rpo::evaluate(rpo::dpo{}, rpo::batch_input<double>{seq, seq_ref}, {{}, g, {}});
    CHECK(lr.loss == dpo_want);
    CHECK(output(lr, "grad_token_logp")->values == std::vector<double>{g[0], g[0], g[1], g[1]});
    CHECK(output(lr, "grad_token_logp")->shape == std::vector<std::size_t>{2, 2});
  }

  TEST_CASE("bad batch specs name what is wrong") {
    CHECK(contains(spec_message("ktoo"), "unknown batch method \"ktoo\""));
    CHECK(contains(spec_message("ktoo"), "the batch methods are: kto, bco_unpaired, aot, gamma_po, wpo, ld_dpo"));
    CHECK(contains(spec_message("dpo"), "\"dpo\" is a loss of one group"));
    CHECK(contains(spec_message("kto(eta=1)"), "kto has no parameter \"eta\""));
    CHECK(contains(spec_message("kto(beta=0)"), "rpo::parse_batch_loss: beta must be"));
    CHECK(contains(spec_message("aot(epsilon=0.5)"), "epsilon must be in [0, 0.5)"));
    CHECK(contains(spec_message("gamma_po(iterations=0)"), "iterations = 0 must be an integer >= 1"));
    CHECK(contains(spec_message("gamma_po(tau=-1)"), "tau must be"));
    CHECK(contains(spec_message("wpo(loss=dpo(beta=0.1"),
                   "expected ')' to close the value that starts at position 9"));
    CHECK(contains(spec_message("wpo(loss=dpo(beta=0.1)"), "expected ',' or ')' at position 22"));
    CHECK(contains(spec_message("wpo(loss=dpo(beta=-1))"), "loss = \"dpo(beta=-1)\" is not a loss"));
    CHECK(contains(spec_message("ld_dpo"), "alpha must be given"));
    CHECK(contains(spec_message("ld_dpo(alpha=nan)"), "alpha must be in [0, 1]"));
    CHECK(contains(spec_message("ld_dpo(alpha=0.5, loss=simpo)"), "reads lengths"));
    CHECK(contains(spec_message("ld_dpo(alpha=0.5, loss=rpo_sqloo)"), "is not a loss of pairs"));
    // A nested value is a spec's argument only: for a loss of one group it is not a number.
    try {
      (void)rpo::parse_loss("dpo(beta=dpo(beta=1))");
      FAIL("no error");
    } catch (const rpo::spec_error& e) {
      CHECK(contains(e.what(), "beta = \"dpo(beta=1)\" is not a number"));
    }
  }

  TEST_CASE("bad batches name the field") {
    const rpo::batch_loss l = rpo::parse_batch_loss("kto");
    const rpo::batch_fields good{{"logp", array({-3, -5})}, {"ref_logp", array({-3, -5})},
                                 {"desirable", array({1, 0})}, {"z0", number(0)}};
    CHECK(evaluate_message(l, good) == "(no error)");
    auto with = [&](const char* name, rpo::batch_value v) {
      rpo::batch_fields f = good;
      f[name] = std::move(v);
      return evaluate_message(l, f);
    };
    CHECK(contains(with("desireable", array({1, 0})), "unknown field \"desireable\""));
    CHECK(contains(with("desirable", array({1, 0.5})), "field \"desirable\" entry 1 must be 0 or 1, but got 0.5"));
    CHECK(contains(with("z0", array({0})), "field \"z0\" must be a number"));
    CHECK(contains(with("logp", array({-3, std::numeric_limits<double>::quiet_NaN()})), "logp[1] must be finite"));
    CHECK(contains(with("ref_logp", array({-3})), "ref_logp has 1 entries"));
    CHECK(contains(with("kl_logp", array({-3})), "not both"));
    rpo::batch_fields missing = good;
    missing.erase("desirable");
    CHECK(contains(evaluate_message(l, missing), "field \"desirable\" is missing"));
    const rpo::batch_loss w = rpo::parse_batch_loss("wpo(loss=rpo_sqloo)");
    CHECK(contains(evaluate_message(w, {{"logp", array({-1, -2, -3})}, {"ref_logp", array({-1, -2, -3})},
                                        {"reward", array({1, 2, 3})}, {"group_weights", array({1})},
                                        {"offsets", array({0, 1.5, 3})}}),
                   "field \"offsets\" entry 1 must be an integer, but got 1.5"));
  }
}
