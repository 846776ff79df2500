"""Shared helpers of the Python tests: random batches and the compositions of the general form.

The tests run from this folder (CTest sets it as the working directory), so `import support` finds this file.
"""
import itertools

import numpy as np

import rpo

DISTANCES = ("sq", "bwd_kl", "fwd_kl", "logistic", "hinge")
REWARDS = ("implicit", "implicit_norm", "ref_free", "ref_free_norm")
TARGETS = ("reward_gap", "hard", "constant", "smoothed")
# docs/target.md#hard_label and docs/distance.md#hinge: which distance takes which kind of target.
HARD_LABEL_DISTANCES = ("bwd_kl", "logistic", "hinge")
FINITE_TARGET_DISTANCES = ("sq", "bwd_kl", "fwd_kl", "logistic")
# A non-default value of each target's parameter.
TARGET_PARAMETER = {"reward_gap": "eta=0.75", "hard": None, "constant": "value=0.625", "smoothed": "epsilon=0.2"}


def presets():
    """The registered presets (every loss but the general form), as rpo.losses() lists them."""
    return [info for info in rpo.losses() if info["name"] != "rpo"]


def valid_composition(distance, target):
    if target == "hard":
        return distance in HARD_LABEL_DISTANCES
    return distance in FINITE_TARGET_DISTANCES


def general_specs():
    """One spec of the general form per valid composition, with non-default beta, target parameter and gamma
    (cycled, so that no parameter follows the composition)."""
    betas = itertools.cycle(("0.3", "0.05", "1.5"))
    gammas = itertools.cycle(("0", "0.4", "-0.25", "1"))
    specs = []
    for distance, reward, target in itertools.product(DISTANCES, REWARDS, TARGETS):
        if not valid_composition(distance, target):
            continue
        parts = [f"distance={distance}", f"reward={reward}", f"target={target}", f"beta={next(betas)}"]
        if TARGET_PARAMETER[target]:
            parts.append(TARGET_PARAMETER[target])
        parts.append(f"gamma={next(gammas)}")
        specs.append(f"rpo({', '.join(parts)})")
    return specs


def random_batch(loss, pairs, rng, dtype=np.float64, all_fields=False):
    """A batch of `pairs` (chosen, rejected) pairs for `loss`: a dict of the fields it reads (all four with
    all_fields), at typical values: log-probs of a few tens of nats, the two responses of a pair and the policy and
    its reference a few nats apart, positive lengths, rewards of order 1."""
    n = 2 * pairs
    # A rejected response a few nats from its chosen one: gaps of order 1 for every reward model, also the
    # reference-free ones, where the gradients are not vanishingly small.
    chosen = -rng.uniform(5.0, 60.0, pairs)
    logp = np.stack([chosen, chosen + rng.normal(0.0, 3.0, pairs)], axis=1).reshape(n)
    fields = {
        "logp": logp,
        "ref_logp": logp + rng.normal(0.0, 3.0, n),
        "length": rng.integers(3, 120, n).astype(np.float64),
        "reward": rng.normal(0.0, 2.0, n),
    }
    wanted = fields if all_fields else {k: v for k, v in fields.items() if k in loss.inputs}
    return {k: v.astype(dtype) for k, v in wanted.items()}


def pair_offsets(pairs):
    """The offsets that describe `pairs` consecutive pairs: [0, 2, 4, ..., 2 * pairs]."""
    return np.arange(0, 2 * pairs + 1, 2, dtype=np.int64)
