// rpo.hpp — the umbrella header: the scalar core, the four policy families, the composition, the presets, the
// span batch layer, the batch-level losses KTO, AOT and γ-PO and per-group weights (rpo/batchwise.hpp), the token
// layer (rpo/token.hpp) and its token weightings (rpo/token_weighting.hpp: LD-DPO, WPO).
// The Eigen and xtensor adaptors (rpo/eigen.hpp, rpo/xtensor.hpp) are included separately, so that this header needs
// nothing but the standard library.
// @sa docs/README.md
#pragma once

#include "rpo/batch.hpp"
#include "rpo/batchwise.hpp"
#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/distance.hpp"
#include "rpo/errors.hpp"
#include "rpo/extension.hpp"
#include "rpo/fields.hpp"
#include "rpo/loss.hpp"
#include "rpo/math.hpp"
#include "rpo/presets.hpp"
#include "rpo/reward.hpp"
#include "rpo/sampling.hpp"
#include "rpo/target.hpp"
#include "rpo/token.hpp"
#include "rpo/token_weighting.hpp"
