"""Shared helpers of the Python tests: random batches (pairs, or ragged groups given by offsets) and the compositions
of the general form.

The tests run from this folder (CTest sets it as the working directory), so `import support` finds this file.
"""
import contextlib
import io
import itertools
import pathlib
import re

import numpy as np

import rpo

DISTANCES = ("sq", "bwd_kl", "fwd_kl", "logistic", "hinge")
REWARDS = ("implicit", "implicit_norm", "ref_free", "ref_free_norm")
TARGETS = ("reward_gap", "hard", "constant", "smoothed")
SAMPLINGS = ("pair", "loo", "all_pairs", "best_worst", "softmax", "plackett_luce")
# docs/target.md#hard_label and docs/distance.md#hinge: which distance takes which kind of target.
HARD_LABEL_DISTANCES = ("bwd_kl", "logistic", "hinge")
FINITE_TARGET_DISTANCES = ("sq", "bwd_kl", "fwd_kl", "logistic")
# docs/sampling.md, the table: the schemes with rules of their own, as (the one target, its distances).
# leave_one_out contrasts t_i - m_{-i}(t), so it needs a reward gap and a distance that takes a finite target;
# softmax needs a distance between distributions; Plackett-Luce is a hard label at every position of the ranking.
SCHEME_RULES = {
    "loo": ("reward_gap", FINITE_TARGET_DISTANCES),
    "softmax": ("reward_gap", ("bwd_kl", "fwd_kl", "logistic")),
    "plackett_luce": ("hard", ("bwd_kl", "logistic")),
}
# A non-default value of each target's parameter.
TARGET_PARAMETER = {"reward_gap": "eta=0.75", "hard": None, "constant": "value=0.625", "smoothed": "epsilon=0.2"}
# The presets with groups of any size K >= 2 (group_size == 0), docs/presets.md.
GROUP_PRESETS = ("rpo_sqloo", "rpo_sqpairs", "rpo_softmax_bwd", "rpo_softmax_fwd", "infonca", "listwise_dpo",
                 "dpo_best_worst", "nca", "swepo")
MAX_GROUP = 6
# No two rewards of a group closer than this, in float64 and after rounding to float32: the schemes that rank a group
# by reward (all_pairs with a label target, best_worst, plackett_luce) see no tie.
MIN_REWARD_SEPARATION = 1e-3


def presets():
    """The registered presets (every loss but the general form), as rpo.losses() lists them."""
    return [info for info in rpo.losses() if info["name"] != "rpo"]


def is_group_loss(loss):
    """Whether `loss` (an rpo.Loss) takes groups of any size, given by offsets."""
    return loss.group_size == 0


def valid_composition(distance, target, sampling="pair"):
    """Whether the general form composes distance, target and sampling (docs/spec.md, docs/sampling.md)."""
    if sampling in SCHEME_RULES:
        only_target, distances = SCHEME_RULES[sampling]
        return target == only_target and distance in distances
    if target == "hard":
        return distance in HARD_LABEL_DISTANCES
    return distance in FINITE_TARGET_DISTANCES


def takes_margin(target, sampling):
    """Whether the general form takes gamma: with pairs, any target; with all_pairs and best_worst, a label target
    (its pairs are oriented by reward); never with leave-one-out, the listwise schemes, or a reward gap over a group
    (include/rpo/spec.hpp, takes_margin)."""
    return sampling == "pair" or (sampling in ("all_pairs", "best_worst") and target != "reward_gap")


def compositions(samplings=SAMPLINGS):
    """Every valid (distance, reward, target, sampling) of the general form, in a fixed order."""
    return [(d, r, t, s) for s in samplings for d, r, t in itertools.product(DISTANCES, REWARDS, TARGETS)
            if valid_composition(d, t, s)]


def general_specs(samplings=SAMPLINGS):
    """One spec of the general form per valid composition, with non-default beta, target parameter and (where the
    composition takes one) gamma, cycled so that no parameter follows the composition. sampling=pair is written out
    only for half of the pairwise specs (it is the default)."""
    betas = itertools.cycle(("0.3", "0.05", "1.5"))
    gammas = itertools.cycle(("0", "0.4", "-0.25", "1"))
    specs = []
    for index, (distance, reward, target, sampling) in enumerate(compositions(samplings)):
        parts = [f"distance={distance}", f"reward={reward}", f"target={target}"]
        if sampling != "pair" or index % 2 == 1:
            parts.append(f"sampling={sampling}")
        parts.append(f"beta={next(betas)}")
        if TARGET_PARAMETER[target]:
            parts.append(TARGET_PARAMETER[target])
        if takes_margin(target, sampling):
            parts.append(f"gamma={next(gammas)}")
        specs.append(f"rpo({', '.join(parts)})")
    return specs


def spec_sampling(spec):
    """The sampling key of a general spec (pair when it is left out)."""
    for part in spec[spec.index("(") + 1:-1].split(","):
        key, _, value = part.partition("=")
        if key.strip() == "sampling":
            return value.strip()
    return "pair"


def group_sizes(groups, rng):
    """`groups` sizes K in 2..MAX_GROUP, at least one K = 2 and (for two groups or more) one K > 2."""
    sizes = rng.integers(2, MAX_GROUP + 1, groups)
    if groups >= 1:
        sizes[rng.integers(groups)] = 2
    if groups >= 2 and (sizes == 2).all():
        sizes[(np.flatnonzero(sizes == 2)[0] + 1) % groups] = rng.integers(3, MAX_GROUP + 1)
    return sizes


def offsets_of(sizes):
    """The offsets [0, K0, K0 + K1, ..., N] of groups of the given sizes."""
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def distinct_rewards(size, rng, scale):
    """`size` rewards ~ U(-scale, scale), no two closer than MIN_REWARD_SEPARATION (drawn again until so)."""
    while True:
        reward = rng.uniform(-scale, scale, size)
        values = np.sort(reward.astype(np.float32).astype(np.float64))
        if size < 2 or np.diff(values).min() >= MIN_REWARD_SEPARATION:
            return reward


def random_batch(loss, groups, rng, dtype=np.float64, all_fields=False, offsets=None):
    """A batch of `groups` groups for `loss`: a dict of the fields it reads (all four with all_fields), at typical
    values: log-probs of a few tens of nats, the responses of a group and the policy and its reference a few nats
    apart, positive lengths, rewards of order 1.

    For a pairwise loss (group_size == 2): consecutive (chosen, rejected) pairs, without offsets unless offsets=True
    (then "offsets" is [0, 2, ..., 2 * groups]). For a loss that takes groups of any size (group_size == 0): ragged
    groups of K = 2 to 6 responses (at least one K = 2), described by "offsets" (int64), with distinct rewards in
    every group (no ties: the schemes that rank by reward accept them) and policy scores s_i = r_pi(y_i) spread by
    at most about 12 within a group for beta <= 1.5 (for every reward model), so that the reference's textbook
    formulas stay accurate. Float fields have `dtype`."""
    if not is_group_loss(loss):
        fields = _pair_fields(groups, rng)
        if loss.name == "odpo":   # its offset log(r_c - r_r) needs the chosen reward above the rejected one
            pairs = fields["reward"].reshape(-1, 2)
            fields["reward"] = np.stack([pairs.max(axis=1), pairs.min(axis=1)], axis=1).reshape(-1)
        if loss.name == "sppo_soft":   # its rewards are win probabilities in [0, 1] (methods.md#sppo_soft)
            fields["reward"] = 1.0 / (1.0 + np.exp(-fields["reward"]))
        if offsets:
            fields["offsets"] = pair_offsets(groups)
    else:
        fields = _group_fields(group_sizes(groups, rng), rng)
    keep = set(fields) if all_fields else set(loss.inputs) | {"offsets"}
    return {k: (v if k == "offsets" else v.astype(dtype)) for k, v in fields.items() if k in keep}


def _pair_fields(pairs, rng):
    n = 2 * pairs
    # A rejected response a few nats from its chosen one: gaps of order 1 for every reward model, also the
    # reference-free ones, where the gradients are not vanishingly small.
    chosen = -rng.uniform(5.0, 60.0, pairs)
    logp = np.stack([chosen, chosen + rng.normal(0.0, 3.0, pairs)], axis=1).reshape(n)
    return {
        "logp": logp,
        "ref_logp": logp + rng.normal(0.0, 3.0, n),
        "length": rng.integers(3, 120, n).astype(np.float64),
        "reward": rng.normal(0.0, 2.0, n),
    }


def _group_fields(sizes, rng):
    logp, ref_logp, length, reward = [], [], [], []
    for size in sizes:
        # A group's log-probs within 8 nats of each other, each 4 nats at most from its reference; lengths within
        # 25% of each other (so that the length-normalised scores, logp / n, do not spread far either).
        base, n0 = -rng.uniform(5.0, 60.0), rng.uniform(10.0, 120.0)
        lp = base + rng.uniform(-4.0, 4.0, size)
        logp.append(lp)
        ref_logp.append(lp + rng.uniform(-4.0, 4.0, size))
        length.append(np.round(n0 * np.exp(rng.uniform(-0.1, 0.1, size))))
        reward.append(distinct_rewards(size, rng, 3.0))
    return {"logp": np.concatenate(logp), "ref_logp": np.concatenate(ref_logp), "length": np.concatenate(length),
            "reward": np.concatenate(reward), "offsets": offsets_of(sizes)}


def group_count(batch):
    """The number of groups of a batch from random_batch."""
    if "offsets" in batch:
        return len(batch["offsets"]) - 1
    return len(batch["logp"]) // 2


def response_count(batch):
    return len(batch["logp"])


def cast(batch, dtype, fields=("logp", "ref_logp", "length", "reward")):
    """The batch with `fields` converted to dtype (offsets stay integers)."""
    return {k: (v.astype(dtype) if k in fields and k != "offsets" else v) for k, v in batch.items()}


def pair_offsets(pairs):
    """The offsets that describe `pairs` consecutive pairs: [0, 2, 4, ..., 2 * pairs]."""
    return np.arange(0, 2 * pairs + 1, 2, dtype=np.int64)


def readme_example(heading):
    """The first ```python block after `heading` in python/README.md, as source text."""
    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text[text.index(heading):], re.S).group(1)


def run_readme_example(code):
    """Runs a README example as written, its prints swallowed (it asserts nothing but that it runs)."""
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "python/README.md", "exec"), {})
