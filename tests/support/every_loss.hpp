// tests/support/every_loss.hpp — every loss a spec can name, at its defaults: each registered preset, then each
// valid general composition rpo(distance=..., reward=..., target=..., sampling=...) (the invalid ones are refused
// at parse time and skipped). For the suites and fuzz targets that must cover them all.
#pragma once

#include <string>
#include <vector>

#include "rpo/spec.hpp"

namespace test {

inline const std::vector<rpo::any_loss>& every_loss() {
  static const std::vector<rpo::any_loss> all = [] {
    std::vector<rpo::any_loss> out;
    for (const rpo::loss_info& info : rpo::registered_losses())
      if (info.name != "rpo") out.push_back(rpo::parse_loss(info.name));
    for (const char* d : {"sq", "fwd_kl", "bwd_kl", "logistic", "hinge"})
      for (const char* r : {"implicit", "implicit_norm", "ref_free", "ref_free_norm"})
        for (const char* t : {"reward_gap", "hard", "constant", "smoothed"})
          for (const char* s : {"pair", "loo", "all_pairs", "best_worst", "softmax", "plackett_luce"}) {
            try {
              out.push_back(rpo::parse_loss(std::string("rpo(distance=") + d + ", reward=" + r + ", target=" + t +
                                            ", sampling=" + s + ")"));
            } catch (const rpo::spec_error&) {
            }
          }
    return out;
  }();
  return all;
}

}  // namespace test
