// 08 — from logits to the gradient of a preference loss in one fused pass (rpo/token.hpp).
// Two responses (chosen, rejected) of 4 positions over a vocabulary of 6; the first position of each is prompt
// (masked out). The pass computes the sequence log-probs, the DPO loss and d loss / d logits, here in place.
#include <cstdint>
#include <cstdio>
#include <vector>

#include <rpo.hpp>

int main() {
  const rpo::token_shape shape{.sequences = 2, .tokens = 4, .vocab = 6};
  std::vector<float> logits(2 * 4 * 6);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 7) % 11) * 0.3f - 1.5f;
  const std::vector<std::int64_t> target{-100, 2, 5, 1, -100, 0, 3, 3};  // -100: masked, never read
  const std::vector<std::uint8_t> mask{0, 1, 1, 1, 0, 1, 1, 1};
  const std::vector<float> ref_logp{-5.0f, -5.5f};  // reference sequence log-probs, summed the same way

  std::vector<float> seq_logp(2);
  const rpo::token_input<float> in{.tokens = {.logits = logits, .target = target, .mask = mask, .shape = shape},
                                   .ref_logp = ref_logp};
  const float loss = rpo::evaluate_tokens(rpo::dpo{.beta = 0.1}, in,
                                          rpo::token_output<float>{.grad_logits = logits, .logp = seq_logp});
  std::printf("sequence log-probs   chosen %+.6f  rejected %+.6f\n", static_cast<double>(seq_logp[0]),
              static_cast<double>(seq_logp[1]));
  std::printf("DPO loss             %.6f\n", static_cast<double>(loss));
  std::printf("d loss / d logits of chosen token 1:");
  for (int v = 0; v < 6; ++v) std::printf(" %+.6f", static_cast<double>(logits[6 + static_cast<std::size_t>(v)]));
  std::printf("\n");
}
