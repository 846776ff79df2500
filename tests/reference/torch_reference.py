#!/usr/bin/python3
"""PyTorch reference for every loss of rpo, pairwise and multi-response, and the golden vectors written from it.

What it is. An independent implementation, in float64 PyTorch, of each loss that a spec string such as
`dpo(beta=0.1)` or `rpo(distance=bwd_kl, reward=implicit, target=reward_gap, sampling=pair, beta=0.2, eta=1.0)`
names: the distance D(a - gamma || b), the reward model r_pi, the target b and the sampling scheme. Values come
from the formulas in docs/distance.md, docs/reward.md, docs/target.md, docs/sampling.md and docs/presets.md for
pairs, and for the multi-response schemes (a group of K >= 2 responses per prompt: sampling=loo, all_pairs,
best_worst, softmax, plackett_luce) from reference/RPO.md §3.5 (L-loo, L-pairs, L-soft), (E10), (E10f), §7 and
reference/LOSSES.md §4.11 (Plackett-Luce), §4.12 (InfoNCA, NCA), §4.10 (MPO/SWEPO); the methods beside the template
from LOSSES.md's formulas (§1-4, among them BCO with its shift delta §1.8, soft SPPO §1.9, ORPO §2.2, MADPO §4.7,
DNO §4.8). The gradients (d loss / d logp and d loss / d ref_logp of every response) come from torch autograd.

The independence rule. This file is written from the documentation and reference/RPO.md, reference/LOSSES.md
only. It must never read, import or call rpo's own code (include/, the Python module), so that a mistake shared by
the library and its test cannot pass unnoticed. Keep it that way when you edit it.

Golden vectors. Run as a script, it writes tests/data/golden/<case>.jsonl and tests/data/golden/cases.tsv
(`<case>\\t<spec>` per line, sorted by case), and deletes stale *.jsonl files there. The file of a pairwise case
(sampling=pair) holds 24 pairs drawn from a seed fixed by the case name, one JSON object per line:

    {"logp": [l0, l1], "ref_logp": [..], "length": [n0, n1], "reward": [..], "loss": x,
     "grad_logp": [g0, g1], "grad_ref_logp": [h0, h1]}

response 0 the chosen one, with only the input fields that the loss reads. The file of a multi-response case holds
16 groups (one prompt each) of K = 2 to 6 responses, K varying from line to line (several lines have K = 2), in
the same format with arrays of K entries:

    {"logp": [l0, .., l(K-1)], "ref_logp": [..], "length": [..], "reward": [r0, .., r(K-1)], "loss": x,
     "grad_logp": [..], "grad_ref_logp": [..]}

`loss` is the group's own loss (no reduction over lines). `reward` is present whenever the loss reads it: for
target=reward_gap, and for the schemes that order a group by explicit reward (all_pairs with a label target,
best_worst, plackett_luce); the rewards of a group are at least 1e-3 apart (no ties); for soft SPPO, whose rewards
are win probabilities, they lie in [0, 1]. Regenerate (the output is
committed; use Debian's python3, which has torch):

    /usr/bin/python3 tests/reference/torch_reference.py [--out DIR]

It also writes the batch methods' golden vectors (`rpo-eval --batch`; KTO, unpaired BCO, AOT, gamma-PO, WPO, LD-DPO,
from LOSSES.md, in the section "Batch methods" below): tests/data/golden/batch_cases.tsv (`<case>\t<batch spec>`)
and tests/data/golden/batch/<case>.jsonl, BATCHES_PER_CASE whole batches per case (the last one extreme), each line the
method's input fields, "loss" (the mean over the batch's items) and its outputs (docs/rpo_eval.md#batch).

As a module it offers `parse_spec`, `loss_and_grads` (one pair, or one group for the multi-response schemes),
`batch_loss` (a differentiable torch loss over G pairs) and `group_loss` (the same over G ragged groups given by
offsets), and `parse_batch_spec` and `evaluate_batch_reference` (one whole batch of a batch method), for the Python
binding tests.
"""
import argparse
import json
import math
import random
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

DTYPE = torch.float64

# ------------------------------------------------------------------------------------------------------------------
# The spec grammar: names, parameters, defaults, and which compositions are valid
# ------------------------------------------------------------------------------------------------------------------

DISTANCES = ("sq", "bwd_kl", "fwd_kl", "logistic", "hinge")
REWARD_DEFAULT_BETA = {"implicit": 0.1, "implicit_norm": 0.1, "ref_free": 0.1, "ref_free_norm": 2.0}  # reward.md
REWARDS = tuple(REWARD_DEFAULT_BETA)
TARGET_PARAMETER = {"reward_gap": ("eta", 1.0), "hard": None, "constant": ("value", 0.5),  # target.md
                    "smoothed": ("epsilon", 0.1)}
TARGETS = tuple(TARGET_PARAMETER)
SAMPLINGS = ("pair", "loo", "all_pairs", "best_worst", "softmax", "plackett_luce")

# target.md#hard_label: only these distances have a finite b = +inf limit; distance.md#hinge: the hinge takes no b.
HARD_LABEL_DISTANCES = ("bwd_kl", "logistic", "hinge")
FINITE_TARGET_DISTANCES = ("sq", "bwd_kl", "fwd_kl", "logistic")

# The multi-response schemes with rules of their own: the one target each takes, and its distances. loo: RPO.md §3.5
# (L-loo), any finite-target distance, on reward gaps only. softmax: (L-soft) and LOSSES.md §4.12, where the distance
# only picks the direction of the KL (or the cross-entropy). plackett_luce: LOSSES.md §4.11, a hard ranking; the two
# distances whose b = +inf limit is DPO give the same listwise DPO. all_pairs and best_worst compose as pairs do.
SCHEME_TARGET = {"loo": "reward_gap", "softmax": "reward_gap", "plackett_luce": "hard"}
SCHEME_DISTANCES = {"loo": ("sq", "bwd_kl", "fwd_kl", "logistic"), "softmax": ("bwd_kl", "fwd_kl", "logistic"),
                    "plackett_luce": ("bwd_kl", "logistic")}
# The schemes that order a group by explicit reward: they read the rewards whatever the target.
ORDERING_SAMPLINGS = ("all_pairs", "best_worst", "plackett_luce")
# The schemes without contrasts of two responses, and so without a margin gamma.
NO_MARGIN_SAMPLINGS = ("softmax", "plackett_luce")


def takes_margin(target, sampling):
    """Whether the general form takes a margin gamma (spec.md): with pairs, any target; with all_pairs and best_worst,
    the label targets (whose pairs are oriented by reward, the margin shifting the preferred response's gap); not the
    leave-one-out and listwise schemes, nor a reward-gap target over a group."""
    if sampling == "pair":
        return True
    return sampling in ("all_pairs", "best_worst") and target != "reward_gap"


def composition_is_valid(distance, target, sampling="pair"):
    """Whether D composes with the target under the sampling scheme (loss.md#static-checks, RPO.md §3.5)."""
    if sampling in SCHEME_TARGET:
        return target == SCHEME_TARGET[sampling] and distance in SCHEME_DISTANCES[sampling]
    if target == "hard":
        return distance in HARD_LABEL_DISTANCES
    return distance in FINITE_TARGET_DISTANCES


# The policies that only presets use (the general form does not name them; methods.md): reward models with a
# parameter of their own (reward.md), distances with one (distance.md), and ODPO's target (target.md).
PRESET_REWARDS = ("length_reg", "entropy", "alpha_shaped", "f_div", "log_odds")
PRESET_TARGET_PARAMETER = {"log_offset": ("alpha", 1.0)}


def _component(distance, reward, beta, target, target_value=None, gamma=0.0, sampling="pair", reward_extra=None,
               distance_params=None):
    """The description of one composition, with the input fields it reads (reward.md and target.md, "reads"; the
    schemes that order a group by explicit reward read the rewards too)."""
    target_desc = {"name": target}
    parameter = TARGET_PARAMETER.get(target) or PRESET_TARGET_PARAMETER.get(target)
    if parameter is not None:
        target_desc[parameter[0]] = target_value
    inputs = ["logp"]
    if reward in ("implicit", "implicit_norm", "length_reg", "entropy", "f_div"):
        inputs.append("ref_logp")
    if reward in ("implicit_norm", "ref_free_norm", "length_reg", "alpha_shaped", "log_odds"):
        inputs.append("length")
    if target in ("reward_gap", "log_offset") or sampling in ORDERING_SAMPLINGS:
        inputs.append("reward")
    return {"kind": "composition", "distance": distance, "distance_params": dict(distance_params or {}),
            "reward": {"name": reward, "beta": beta, **(reward_extra or {})}, "target": target_desc,
            "gamma": gamma, "sampling": sampling, "inputs": tuple(inputs)}


# presets.md, "Method -> composition": name -> (parameters with their defaults, parameters -> composition)
PRESETS = {
    "dpo": ({"beta": 0.1}, lambda p: _component("bwd_kl", "implicit", p["beta"], "hard")),
    "cdpo": ({"beta": 0.1, "epsilon": 0.1},
             lambda p: _component("logistic", "implicit", p["beta"], "smoothed", p["epsilon"])),
    "ipo": ({"tau": 0.1}, lambda p: _component("sq", "implicit", 1.0, "constant", 1.0 / (2.0 * p["tau"]))),
    "ipo_normalized": ({"tau": 0.1},
                       lambda p: _component("sq", "implicit_norm", 1.0, "constant", 1.0 / (2.0 * p["tau"]))),
    "simpo": ({"beta": 2.0, "gamma": 0.5},
              lambda p: _component("bwd_kl", "ref_free_norm", p["beta"], "hard", gamma=p["gamma"])),
    "hinge": ({"beta": 0.1}, lambda p: _component("hinge", "implicit", p["beta"], "hard")),
    "dpo_normalized": ({"beta": 5.0}, lambda p: _component("bwd_kl", "implicit_norm", p["beta"], "hard")),
    "rpo_sq": ({"beta": 0.2, "eta": 1.0},
               lambda p: _component("sq", "implicit", p["beta"], "reward_gap", p["eta"])),
    "rpo_fwd": ({"beta": 0.2, "eta": 1.0},
                lambda p: _component("fwd_kl", "implicit", p["beta"], "reward_gap", p["eta"])),
    "rpo_bwd": ({"beta": 0.2, "eta": 1.0},
                lambda p: _component("bwd_kl", "implicit", p["beta"], "reward_gap", p["eta"])),
    # Multi-response presets (groups of K >= 2 responses). RPO-sqloo and all-pairs RPO-sq: RPO.md §3.2, §3.3 in the
    # library's normalisation (L-loo), (L-pairs) of §3.5, at the pairwise RPO defaults (§6.1).
    "rpo_sqloo": ({"beta": 0.2, "eta": 1.0},
                  lambda p: _component("sq", "implicit", p["beta"], "reward_gap", p["eta"], sampling="loo")),
    "rpo_sqpairs": ({"beta": 0.2, "eta": 1.0},
                    lambda p: _component("sq", "implicit", p["beta"], "reward_gap", p["eta"], sampling="all_pairs")),
    # The official multi-response RPO, (E10), NeMo-Aligner PR #311: its defaults are beta = 0.2, eta = 0.2 (RPO.md
    # §6.3, §6.5), and it is those that this preset takes. (E10f) has no official code: the pairwise RPO defaults.
    "rpo_softmax_bwd": ({"beta": 0.2, "eta": 0.2},
                        lambda p: _component("bwd_kl", "implicit", p["beta"], "reward_gap", p["eta"],
                                             sampling="softmax")),
    "rpo_softmax_fwd": ({"beta": 0.2, "eta": 1.0},
                        lambda p: _component("fwd_kl", "implicit", p["beta"], "reward_gap", p["eta"],
                                             sampling="softmax")),
    # InfoNCA, LOSSES.md §4.12: -sum_i softmax(r/alpha)_i log softmax(beta l)_i, the cross-entropy of (L-soft) with
    # eta = 1/alpha. beta = 0.01 is the paper's (§1.6, the same paper); LOSSES.md gives no default temperature alpha,
    # and alpha = 1 takes the rewards as they are (the authors' code uses 1e-4, a nearly one-hot target).
    "infonca": ({"beta": 0.01, "alpha": 1.0},
                lambda p: _component("logistic", "implicit", p["beta"], "reward_gap", 1.0 / p["alpha"],
                                     sampling="softmax")),
    # Plackett-Luce listwise DPO, LOSSES.md §4.11 (DPO at K = 2), and DPO on the best and worst responses (RPO.md §7).
    "listwise_dpo": ({"beta": 0.1}, lambda p: _component("bwd_kl", "implicit", p["beta"], "hard",
                                                         sampling="plackett_luce")),
    "dpo_best_worst": ({"beta": 0.1}, lambda p: _component("bwd_kl", "implicit", p["beta"], "hard",
                                                           sampling="best_worst")),
    # The catalogue's methods that fit the template (LOSSES.md §1-4; presets.md, "Methods of the catalogue").
    # EXO-pair, LOSSES.md §1.5: KL(Bern sigma(a) || Bern(1 - eps)) is D_fwd(a || logit(1 - eps)).
    "exo_pair": ({"beta": 0.1, "epsilon": 1e-3},
                 lambda p: _component("fwd_kl", "implicit", p["beta"], "smoothed", p["epsilon"])),
    # CPO's preference term, LOSSES.md §2.1: -log sigma(beta (logp_c - logp_r)).
    "cpo_pref": ({"beta": 0.1}, lambda p: _component("bwd_kl", "ref_free", p["beta"], "hard")),
    # ODPO, LOSSES.md §4.1: -log sigma(a - alpha log(r_c - r_r)).
    "odpo": ({"beta": 0.1, "alpha": 1.0},
             lambda p: _component("bwd_kl", "implicit", p["beta"], "log_offset", p["alpha"])),
    # R-DPO, LOSSES.md §4.2: -log sigma(a + alpha (n_c - n_r)).
    "rdpo": ({"beta": 0.1, "alpha": 0.01},
             lambda p: _component("bwd_kl", "length_reg", p["beta"], "hard", reward_extra={"alpha": p["alpha"]})),
    # H-DPO, LOSSES.md §4.17: r = beta (alpha logp - ref_logp).
    "hdpo": ({"beta": 0.1, "alpha": 1.0},
             lambda p: _component("bwd_kl", "entropy", p["beta"], "hard", reward_extra={"alpha": p["alpha"]})),
    # AlphaPO, LOSSES.md §2.1: SimPO's margin on r = (1 - exp(-alpha logp/n))/alpha.
    "alphapo": ({"beta": 2.5, "alpha": 0.25, "gamma": 0.1},
                lambda p: _component("bwd_kl", "alpha_shaped", p["beta"], "hard", gamma=p["gamma"],
                                     reward_extra={"alpha": p["alpha"]})),
    # f-DPO, LOSSES.md §1.15: r = beta psi(l).
    "fdpo_forward_kl": ({"beta": 0.1}, lambda p: _component("bwd_kl", "f_div", p["beta"], "hard",
                                                            reward_extra={"f": "forward_kl"})),
    "fdpo_js": ({"beta": 0.1}, lambda p: _component("bwd_kl", "f_div", p["beta"], "hard",
                                                    reward_extra={"f": "js_divergence"})),
    "fdpo_alpha": ({"beta": 0.1, "alpha": 0.5},
                   lambda p: _component("bwd_kl", "f_div", p["beta"], "hard",
                                        reward_extra={"f": "alpha_divergence", "alpha": p["alpha"]})),
    # DiscoPOP, LOSSES.md §1.12, and FocalPO, §4.5: distances of their own, b = +inf.
    "discopop": ({"beta": 0.1, "tau": 0.05},
                 lambda p: _component("discopop", "implicit", p["beta"], "hard", distance_params={"tau": p["tau"]})),
    "focalpo": ({"beta": 0.1, "gamma": 0.05},
                lambda p: _component("focal", "implicit", p["beta"], "hard", distance_params={"gamma": p["gamma"]})),
}

# Losses beside the template (methods.md, "Outside the template" and "Weighted sums"), from LOSSES.md's formulas.
# A pair's log-ratios l_c = logp_c - ref_c and l_r = logp_r - ref_r; a = beta (l_c - l_r). Each returns (G,) losses.
def _log_ratios(logp, ref_logp):
    return logp[:, 0] - ref_logp[:, 0], logp[:, 1] - ref_logp[:, 1]


OUTSIDE = {
    # §1.7 robust DPO: [(1 - eps) softplus(-a) - eps softplus(a)] / (1 - 2 eps)
    "robust_dpo": lambda p, lc, lr, **_: ((1 - p["epsilon"]) * softplus(-p["beta"] * (lc - lr))
                                           - p["epsilon"] * softplus(p["beta"] * (lc - lr))) / (1 - 2 * p["epsilon"]),
    # §1.6 NCA-pair: -log sigma(beta l_c) - 1/2 log sigma(-beta l_c) - 1/2 log sigma(-beta l_r)
    "nca_pair": lambda p, lc, lr, **_: (-F.logsigmoid(p["beta"] * lc) - 0.5 * F.logsigmoid(-p["beta"] * lc)
                                         - 0.5 * F.logsigmoid(-p["beta"] * lr)),
    # §1.8 BCO-pair: -log sigma(beta l_c - delta) - log sigma(-(beta l_r - delta)), delta a constant (methods.md#bco_pair;
    # delta = 0 is TRL v1's; MPO's quality term has none)
    "bco_pair": lambda p, lc, lr, **_: (-F.logsigmoid(p["beta"] * lc - p.get("delta", 0.0))
                                         - F.logsigmoid(-(p["beta"] * lr - p.get("delta", 0.0)))),
    # §1.9 SPPO-hard: (l_c - 1/(2 beta))^2 + (l_r + 1/(2 beta))^2
    "sppo_hard": lambda p, lc, lr, **_: (lc - 0.5 / p["beta"]) ** 2 + (lr + 0.5 / p["beta"]) ** 2,
    # §1.9 soft SPPO: sum_y (l_y - eta (P_y - 1/2))^2, eta = 1/beta, P_y in [0, 1] the reward field (methods.md#sppo_soft)
    "sppo_soft": lambda p, lc, lr, reward, **_: ((lc - (reward[:, 0] - 0.5) / p["beta"]) ** 2
                                                  + (lr - (reward[:, 1] - 0.5) / p["beta"]) ** 2),
    # §1.11 APO-zero: 1 - sigma(beta l_c) + sigma(beta l_r); APO-down: sigma(beta l_c) + 1 - sigma(a)
    "apo_zero": lambda p, lc, lr, **_: 1 - torch.sigmoid(p["beta"] * lc) + torch.sigmoid(p["beta"] * lr),
    "apo_down": lambda p, lc, lr, **_: torch.sigmoid(p["beta"] * lc) + 1 - torch.sigmoid(p["beta"] * (lc - lr)),
    # §4.3 DPOP: -log sigma(beta (Delta - lambda max(0, ref_c - logp_c))), the penalty inside the sigmoid
    "dpop": lambda p, lc, lr, logp, ref_logp, **_: -F.logsigmoid(
        p["beta"] * (lc - lr - p["lambda"] * torch.relu(ref_logp[:, 0] - logp[:, 0]))),
    # §4.15 DPO-Shift: -log sigma(beta (l_c - lambda l_r))
    "dpo_shift": lambda p, lc, lr, **_: -F.logsigmoid(p["beta"] * (lc - p["lambda"] * lr)),
    # §4.8 DNO: -[P log sigma(u) + (1 - P) log sigma(-u)], u = beta (l_1 - l_2); the rewards carry logit P
    # (presets.md#dno): P = sigma(r_1 - r_2)
    "dno": lambda p, lc, lr, reward, **_: _dno(p, lc, lr, reward),
    # §4.7 MADPO: -w(m) log sigma(a), m = r_c - r_r, w constant (no gradient)
    "madpo": lambda p, lc, lr, reward, **_: _madpo_weight(p, reward[:, 0] - reward[:, 1])
    * -F.logsigmoid(p["beta"] * (lc - lr)),
}


def _dno(p, lc, lr, reward):
    prob = torch.sigmoid(reward[:, 0] - reward[:, 1])
    u = p["beta"] * (lc - lr)
    return -(prob * F.logsigmoid(u) + (1 - prob) * F.logsigmoid(-u))


def _madpo_weight(p, m):
    """LOSSES.md §4.7: w(m) = sigma(c(|m|) m)/sigma(m) if m > -tau, else 1;
    c(u) = c_min + (c_max - c_min)/(1 + ((c_max - 1)/(1 - c_min)) e^{lambda (u - tau)})."""
    c_max, c_min, lam, tau = p["c_max"], p["c_min"], p["lambda"], p["tau"]
    c = c_min + (c_max - c_min) / (1 + (c_max - 1) / (1 - c_min) * torch.exp(lam * (m.abs() - tau)))
    w = torch.sigmoid(c * m) / torch.sigmoid(m)
    return torch.where(m > -tau, w, torch.ones_like(w)).detach()


# Losses over a group of K responses beside the template (methods.md): one group's 1-D tensors -> a 0-d loss.
def _nca_group(p, logp, ref_logp, reward):
    """LOSSES.md §4.12: -sum_i [q_i log sigma(s_i) + (1/K) log sigma(-s_i)], q = softmax(r/alpha), s = beta l."""
    q = torch.softmax(reward / p["alpha"], dim=0)
    s = p["beta"] * (logp - ref_logp)
    return -(q * F.logsigmoid(s) + F.logsigmoid(-s) / s.shape[0]).sum()


def _swepo_group(p, logp, ref_logp, reward):
    """LOSSES.md §4.10: -log(sum_{Y+} e^v / sum_all e^v), Y+ = {r > mean r}, v = beta l + alpha |r - mean r|."""
    deviation = reward - reward.mean()
    v = p["beta"] * (logp - ref_logp) + p["alpha"] * deviation.abs()
    return torch.logsumexp(v, dim=0) - torch.logsumexp(v[deviation > 0], dim=0)


OUTSIDE_GROUP = {"nca": _nca_group, "swepo": _swepo_group}


def _outside_group(name):
    """A loss over groups beside the template: it reads logp, ref_logp and reward; its groups are drawn as InfoNCA's
    (a softmax over the group with eta = 1), so that they have distinct rewards and bounded score spreads."""
    return lambda p: {"kind": "outside_group", "formula": name, "params": dict(p), "sampling": "group", "gamma": 0.0,
                      "inputs": ("logp", "ref_logp", "reward"),
                      "draw_as": _component("logistic", "implicit", p["beta"], "reward_gap", 1.0, sampling="softmax")}


def _outside(name, rewards=False, probabilities=False):
    """The description of a loss outside the template: it reads logp and ref_logp (and the rewards when `rewards`); it
    is drawn as DPO with its beta (as RPO-bwd with eta = 1 when it reads rewards) (draw_as), so that the golden pairs
    cover large and small a = beta (l_c - l_r). With `probabilities` its rewards are win probabilities in [0, 1]
    (soft SPPO): draw_pair maps each drawn reward r to sigma(r), and uses (1, 0) and (0, 1) for some pairs."""
    target = ("reward_gap", 1.0) if rewards or probabilities else ("hard", None)
    return lambda p: {"kind": "outside", "formula": name, "params": dict(p), "sampling": "pair", "gamma": 0.0,
                      "inputs": ("logp", "ref_logp", "reward") if rewards or probabilities else ("logp", "ref_logp"),
                      "probabilities": probabilities,
                      "draw_as": _component("bwd_kl", "implicit", p["beta"], *target)}


def _weighted(terms):
    """A weighted sum [(weight, desc)] of pairwise losses (methods.md#sum); it reads what its terms read."""
    inputs = tuple(f for f in ("logp", "ref_logp", "length", "reward") if any(f in d["inputs"] for _, d in terms))
    draw_as = next((d.get("draw_as", d) for _, d in terms if d["kind"] != "nll"), None)
    return {"kind": "sum", "terms": terms, "sampling": "pair", "gamma": 0.0, "inputs": inputs, "draw_as": draw_as}


NLL = {"kind": "nll", "sampling": "pair", "gamma": 0.0, "inputs": ("logp", "length")}   # -logp_c / n_c (§1.13)

PRESETS.update({
    # Weighted sums with the NLL of the chosen response (LOSSES.md §2.1, §1.13, §1.18).
    "cpo": ({"beta": 0.1, "lambda": 1.0},
            lambda p: _weighted([(1.0, PRESETS["cpo_pref"][1]({"beta": p["beta"]})), (p["lambda"], NLL)])),
    "irpo": ({"beta": 0.1, "alpha": 1.0},
             lambda p: _weighted([(1.0, PRESETS["dpo"][1]({"beta": p["beta"]})), (p["alpha"], NLL)])),
    "mpo": ({"beta": 0.1, "preference": 0.8, "quality": 0.2, "generation": 1.0},
            lambda p: _weighted([(p["preference"], PRESETS["dpo"][1]({"beta": p["beta"]})),
                                 (p["quality"], _outside("bco_pair")({"beta": p["beta"]})),
                                 (p["generation"], NLL)])),
    # Outside the template (LOSSES.md §0.4's criterion).
    "robust_dpo": ({"beta": 0.1, "epsilon": 0.1}, _outside("robust_dpo")),
    "nca_pair": ({"beta": 0.01}, _outside("nca_pair")),
    "bco_pair": ({"beta": 0.1, "delta": 0.0}, _outside("bco_pair")),
    "sppo_hard": ({"beta": 0.1}, _outside("sppo_hard")),
    "sppo_soft": ({"beta": 0.1}, _outside("sppo_soft", probabilities=True)),
    "apo_zero": ({"beta": 0.1}, _outside("apo_zero")),
    "apo_down": ({"beta": 0.1}, _outside("apo_down")),
    "dpop": ({"beta": 0.1, "lambda": 50.0}, _outside("dpop")),
    "dpo_shift": ({"beta": 0.1, "lambda": 0.95}, _outside("dpo_shift")),
    # ORPO, LOSSES.md §2.2: NLL + lambda D_bwd(log-odds gap || inf) (reward.md#log_odds, beta = 1).
    "orpo": ({"lambda": 0.1},
             lambda p: _weighted([(p["lambda"], _component("bwd_kl", "log_odds", 1.0, "hard")), (1.0, NLL)])),
    # DNO, LOSSES.md §4.8, and MADPO, §4.7: pairs that read the rewards.
    "dno": ({"beta": 0.1}, _outside("dno", rewards=True)),
    "madpo": ({"beta": 0.1, "c_max": 2.0, "c_min": 0.5, "lambda": 1.0, "tau": 2.0}, _outside("madpo", rewards=True)),
    # NCA with K responses, §4.12, and MPO/SWEPO at set level, §4.10: groups of K >= 2.
    "nca": ({"beta": 0.01, "alpha": 1.0}, _outside_group("nca")),
    "swepo": ({"beta": 0.1, "alpha": 1.0}, _outside_group("swepo")),
})

# The rule each numeric parameter must satisfy (presets.md "Checks", reward.md, target.md).
PARAMETER_RULES = {
    "beta": ("finite and > 0", lambda v: v > 0),
    "tau": ("finite and > 0", lambda v: v > 0),
    "alpha": ("finite and > 0", lambda v: v > 0),   # infonca, hdpo
    "offset_alpha": ("finite and >= 0", lambda v: v >= 0),   # odpo
    "shape_alpha": ("finite", lambda v: True),   # rdpo, alphapo
    "f_alpha": ("in (0, 1]", lambda v: 0 < v <= 1),   # fdpo_alpha
    "tau_discopop": ("finite and > 0", lambda v: v > 0),
    "eta": ("finite and >= 0", lambda v: v >= 0),
    "epsilon": ("in (0, 0.5]", lambda v: 0 < v <= 0.5),
    "value": ("finite", lambda v: True),
    "gamma": ("finite", lambda v: True),
    "focal_gamma": ("finite and >= 0", lambda v: v >= 0),
    "lambda": ("finite and >= 0", lambda v: v >= 0),
    "weight": ("finite and >= 0", lambda v: v >= 0),
    "robust_epsilon": ("in [0, 0.5)", lambda v: 0 <= v < 0.5),
    "shift_lambda": ("in (0, 1]", lambda v: 0 < v <= 1),
    "c_max": ("finite and > 1", lambda v: v > 1),
    "c_min": ("in [0, 1)", lambda v: 0 <= v < 1),
    "threshold": ("finite and >= 0", lambda v: v >= 0),
    "delta": ("finite", lambda v: True),   # bco_pair
}
# Parameters whose rule depends on the preset (presets.md, "Checks"): preset -> {parameter: rule key}.
PRESET_PARAMETER_RULES = {"odpo": {"alpha": "offset_alpha"}, "rdpo": {"alpha": "shape_alpha"},
                          "alphapo": {"alpha": "shape_alpha"}, "fdpo_alpha": {"alpha": "f_alpha"},
                          "focalpo": {"gamma": "focal_gamma"}, "irpo": {"alpha": "weight"},
                          "mpo": {"preference": "weight", "quality": "weight", "generation": "weight"},
                          "robust_dpo": {"epsilon": "robust_epsilon"}, "dpo_shift": {"lambda": "shift_lambda"},
                          "madpo": {"tau": "threshold"}, "swepo": {"alpha": "offset_alpha"}}

_SPEC = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*", re.DOTALL)


def _split_arguments(spec, text):
    """'k=v, k2=v2' -> {'k': 'v', 'k2': 'v2'}; duplicates and malformed items raise ValueError."""
    arguments = {}
    if text is None or not text.strip():
        return arguments
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or not value:
            raise ValueError(f"{spec!r}: expected key=value, but got {item.strip()!r}")
        if key in arguments:
            raise ValueError(f"{spec!r}: parameter {key!r} given twice")
        arguments[key] = value
    return arguments


def _number(key, text, rule_key=None):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key} must be a number, but got {key} = {text}") from None
    rule, holds = PARAMETER_RULES[rule_key or key]
    if not (math.isfinite(value) and holds(value)):
        raise ValueError(f"{key} must be {rule}, but got {key} = {text}")
    return value


def _choice(key, text, allowed):
    if text not in allowed:
        raise ValueError(f"unknown {key} {text!r} (expected one of {', '.join(allowed)})")
    return text


def _parse_preset(name, arguments):
    defaults, compose = PRESETS[name]
    unknown = sorted(set(arguments) - set(defaults))
    if unknown:
        raise ValueError(f"{name}: unknown parameter {unknown[0]!r} (expected {', '.join(defaults) or 'none'})")
    rules = PRESET_PARAMETER_RULES.get(name, {})
    params = {key: _number(key, arguments[key], rules.get(key)) if key in arguments else default
              for key, default in defaults.items()}
    return {"name": name, "params": params, **compose(params)}


def _parse_general(arguments):
    """rpo(distance=D, reward=R[, target=reward_gap][, sampling=pair][, beta=][, eta= | value= | epsilon=][, gamma=]).

    gamma is accepted only where takes_margin(target, sampling) holds."""
    for required in ("distance", "reward"):
        if required not in arguments:
            raise ValueError(f"rpo: missing parameter {required!r}")
    distance = _choice("distance", arguments["distance"], DISTANCES)
    reward = _choice("reward", arguments["reward"], REWARDS)
    target = _choice("target", arguments.get("target", "reward_gap"), TARGETS)
    sampling = _choice("sampling", arguments.get("sampling", "pair"), SAMPLINGS)
    target_key, target_default = TARGET_PARAMETER[target] or (None, None)
    allowed = {"distance", "reward", "target", "sampling", "beta", "gamma"} | ({target_key} - {None})
    for key in arguments:
        if key not in allowed:
            detail = "" if key not in ("eta", "value", "epsilon") else f" with target={target}"
            raise ValueError(f"rpo: parameter {key!r} is not accepted{detail}")
    if not composition_is_valid(distance, target, sampling):
        if sampling == "pair":
            raise ValueError(f"rpo: distance={distance} does not compose with target={target}")
        raise ValueError(f"rpo: distance={distance} does not compose with target={target} under sampling={sampling}")
    beta = _number("beta", arguments["beta"]) if "beta" in arguments else REWARD_DEFAULT_BETA[reward]
    gamma = _number("gamma", arguments["gamma"]) if "gamma" in arguments else 0.0
    if "gamma" in arguments and not takes_margin(target, sampling):
        raise ValueError(f"rpo: target={target} with sampling={sampling} takes no margin, but got gamma = "
                         f"{arguments['gamma']}")
    params = {"distance": distance, "reward": reward, "target": target, "sampling": sampling, "beta": beta}
    target_value = None
    if target_key is not None:
        target_value = _number(target_key, arguments[target_key]) if target_key in arguments else target_default
        params[target_key] = target_value
    params["gamma"] = gamma
    return {"name": "rpo", "params": params,
            **_component(distance, reward, beta, target, target_value, gamma, sampling)}


def parse_spec(spec):
    """Parse `name(key=value, ...)` into the full description of the loss, defaults applied.

    Returns {"name", "params" (the spec's own parameters), "distance", "reward": {"name", "beta"},
    "target": {"name"[, "eta" | "value" | "epsilon"]}, "gamma", "sampling", "inputs" (the fields the loss reads)}.
    Raises ValueError for unknown names or parameters, invalid values and invalid compositions.
    """
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ValueError(f"{spec!r}: expected name(key=value, ...)")
    name, arguments = match.group(1), _split_arguments(spec, match.group(2))
    if name == "rpo":
        return _parse_general(arguments)
    if name in PRESETS:
        return _parse_preset(name, arguments)
    raise ValueError(f"unknown loss {name!r} (expected rpo or one of {', '.join(PRESETS)})")


# ------------------------------------------------------------------------------------------------------------------
# The loss, from the documented formulas
# ------------------------------------------------------------------------------------------------------------------

def softplus(x):
    """softplus(x) = log(1 + e^x) = -log sigma(-x) (math.md#softplus, #log_sigmoid).

    Written through logsigmoid because F.softplus switches to the identity above its threshold (20 by default),
    an error of e^-20 = 2e-9 that double precision must not carry.
    """
    return -F.logsigmoid(-x)


def bernoulli_kl(u, v):
    """KL(Bern sigma(u) || Bern sigma(v)), from its definition p log(p/q) + (1-p) log((1-p)/(1-q)) with
    log sigma written as logsigmoid (RPO.md (E3), (E4); math.md#bernoulli_kl_logit). Accurate in absolute terms,
    about 1e-16 * max(1, |u|, |v|), not relative to a tiny KL."""
    return (torch.sigmoid(u) * (F.logsigmoid(u) - F.logsigmoid(v))
            + torch.sigmoid(-u) * (F.logsigmoid(-u) - F.logsigmoid(-v)))


def distance_value(distance, x, b, params=None):
    """D(x || b); b is None for the hard label b = +inf (distance.md, the table and each section)."""
    if distance == "discopop":        # distance.md#discopop, LOSSES.md §1.12: m = sigma(x/tau), b = +inf only
        tau = params["tau"]           # (1 - m) softplus(-x) + m e^-x, with m e^-x = exp(log sigma(x/tau) - x)
        return torch.sigmoid(-x / tau) * softplus(-x) + torch.exp(F.logsigmoid(x / tau) - x)
    if distance == "focal":           # distance.md#focal, LOSSES.md §4.5: -P^gamma log P, P = sigma(x), b = +inf only
        log_p = F.logsigmoid(x)
        return -torch.exp(params["gamma"] * log_p) * log_p
    if distance == "sq":              # distance.md#squared: (a - b)^2, no 1/2 (RPO.md (E2))
        return (x - b) ** 2
    if distance == "hinge":           # distance.md#hinge: max(0, 1 - a), b = +inf only (LOSSES.md §1.3)
        return torch.relu(1.0 - x)
    if b is None:                     # distance.md: bwd_kl and logistic at b = +inf are softplus(-a), DPO
        return softplus(-x)
    if distance == "bwd_kl":          # distance.md#bernoulli_bwd_kl: KL(Bern sigma(b) || Bern sigma(a)) (E4)
        return bernoulli_kl(b, x)
    if distance == "fwd_kl":          # distance.md#bernoulli_fwd_kl: KL(Bern sigma(a) || Bern sigma(b)) (E3)
        return bernoulli_kl(x, b)
    if distance == "logistic":        # distance.md#logistic: sigma(b) softplus(-a) + sigma(-b) softplus(a)
        return torch.sigmoid(b) * softplus(-x) + torch.sigmoid(-b) * softplus(x)
    raise ValueError(f"unknown distance {distance!r}")


def policy_reward(reward, logp, ref_logp, length):
    """r_pi(y) of each response (reward.md, the table)."""
    beta = reward["beta"]
    name = reward["name"]
    if name == "implicit":            # reward.md#implicit: beta (logp - ref_logp)
        return beta * (logp - ref_logp)
    if name == "implicit_norm":       # reward.md#implicit_normalized: beta (logp - ref_logp) / n
        return beta * (logp - ref_logp) / length
    if name == "ref_free":            # reward.md#reference_free: beta logp
        return beta * logp
    if name == "ref_free_norm":       # reward.md#reference_free_normalized: (beta / n) logp
        return beta * logp / length
    if name == "length_reg":          # reward.md#length_regularized (R-DPO): beta (logp - ref_logp) + alpha n
        return beta * (logp - ref_logp) + reward["alpha"] * length
    if name == "entropy":             # reward.md#entropy_controlled (H-DPO): beta (alpha logp - ref_logp)
        return beta * (reward["alpha"] * logp - ref_logp)
    if name == "alpha_shaped":        # reward.md#alpha_shaped (AlphaPO): (beta/alpha)(1 - e^{-alpha logp/n})
        alpha = reward["alpha"]       # the exponent clamped at 80 (reward.md#max_exponent); alpha = 0: beta logp/n
        if alpha == 0:
            return beta * logp / length
        return beta / alpha * (1.0 - torch.exp(torch.clamp(-alpha * logp / length, max=MAX_EXPONENT)))
    if name == "log_odds":            # reward.md#log_odds (ORPO), LOSSES.md §2.2: beta log(p/(1 - p)), p = e^{logp/n}
        mean = logp / length          # log(1 - p) = log(-expm1(mean)) for mean < 0
        return beta * (mean - torch.log(-torch.expm1(mean)))
    if name == "f_div":               # reward.md#f_divergence (f-DPO), LOSSES.md §1.15: beta psi(l)
        ratio = logp - ref_logp
        f = reward["f"]
        if f == "forward_kl":         # psi = -e^{-l}, exponent clamped at 80
            return -beta * torch.exp(torch.clamp(-ratio, max=MAX_EXPONENT))
        if f == "js_divergence":      # psi = log sigma(l)
            return beta * F.logsigmoid(ratio)
        alpha = reward["alpha"]       # psi = e^{(alpha-1) l}/(alpha-1), exponent clamped at 80; alpha = 1: l
        if alpha == 1:
            return beta * ratio
        return beta * torch.exp(torch.clamp((alpha - 1.0) * ratio, max=MAX_EXPONENT)) / (alpha - 1.0)
    raise ValueError(f"unknown reward {name!r}")


MAX_EXPONENT = 80.0   # reward.md#max_exponent: the clamp of e^x in the AlphaPO and f-DPO rewards (TRL's 80)


def target_gap(target, reward):
    """b of each pair; None for the hard label (target.md, the table). `reward` has shape (G, 2) or is None."""
    name = target["name"]
    if name == "reward_gap":          # target.md#reward_gap: eta (r(y1) - r(y2))
        return target["eta"] * (reward[:, 0] - reward[:, 1])
    if name in ("hard", "log_offset"):   # target.md#hard_label: b = +inf, kept symbolic (ODPO's too)
        return None
    if name == "constant":            # target.md#constant: b = value
        return torch.tensor(target["value"], dtype=DTYPE)
    if name == "smoothed":            # target.md#smoothed_label: logit(1 - eps) = log((1 - eps)/eps)
        epsilon = target["epsilon"]
        return torch.tensor(math.log1p(-epsilon) - math.log(epsilon), dtype=DTYPE)
    raise ValueError(f"unknown target {name!r}")


def pair_gaps(desc, logp, ref_logp=None, length=None, reward=None):
    """(a - gamma, b) of each pair (sampling.md#pair): a = r_pi(y0) - r_pi(y1), response 0 the chosen one, and
    gamma the margin of target.md#margin. Inputs have shape (G, 2)."""
    score = policy_reward(desc["reward"], logp, ref_logp, length)
    a = score[:, 0] - score[:, 1]
    if desc["target"]["name"] == "log_offset":   # target.md#log_reward_offset: o = alpha log(r_c - r_r)
        a = a - desc["target"]["alpha"] * torch.log(reward[:, 0] - reward[:, 1])
    return a - desc["gamma"], target_gap(desc["target"], reward)


def pair_losses(desc, logp, ref_logp=None, length=None, reward=None):
    """D(a - gamma || b) of each pair, shape (G,) (sampling.md#pair, loss.md); for the losses outside the template,
    their formula; for a weighted sum, the sum of its weighted terms; for the NLL term, -logp_c / n_c."""
    kind = desc.get("kind", "composition")
    if kind == "outside":
        lc, lr = _log_ratios(logp, ref_logp)
        return OUTSIDE[desc["formula"]](desc["params"], lc, lr, logp=logp, ref_logp=ref_logp, reward=reward)
    if kind == "nll":
        return -logp[:, 0] / length[:, 0]
    if kind == "sum":
        return sum(weight * pair_losses(term, logp, ref_logp, length, reward) for weight, term in desc["terms"])
    x, b = pair_gaps(desc, logp, ref_logp, length, reward)
    return distance_value(desc["distance"], x, b, desc["distance_params"])


# Groups of K >= 2 responses (one prompt). Notation of RPO.md §3: s_i = r_pi(y_i) the policy scores, t_i = eta r_i the
# scaled explicit rewards, m_{-i}(z) = (1/(K-1)) sum_{j != i} z_j the leave-one-out mean. Sums run in index order, one
# addition at a time, so that the golden vectors do not depend on how a reduction kernel splits its work.

def _sequential_sum(values):
    """values[0] + values[1] + ... in index order (a 1-D tensor, or a list of 0-d tensors)."""
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def _mean(values):
    return _sequential_sum(values) / len(values)


def leave_one_out_mean(z):
    """m_{-i}(z) = (1/(K-1)) sum_{j != i} z_j for each i (RPO.md §3, notation)."""
    size = z.shape[0]
    return torch.stack([_sequential_sum(torch.cat([z[:i], z[i + 1:]])) for i in range(size)]) / (size - 1)


def logsumexp(z):
    """log sum_i e^{z_i}, shifted by max z (a constant of the gradient) so that no exponential overflows."""
    top = z.detach().max()
    return top + torch.log(_sequential_sum(torch.exp(z - top)))


def log_softmax(z):
    """log softmax(z)_i = z_i - log sum_j e^{z_j}."""
    return z - logsumexp(z)


def reward_order(reward):
    """The indices of a group's responses by explicit reward, highest first; tied rewards are an error (a scheme
    that orders the group cannot tell which one is preferred)."""
    values = [float(v) for v in reward]
    if len(set(values)) != len(values):
        raise ValueError("this sampling scheme orders the responses by explicit reward, but two rewards are equal")
    return sorted(range(len(values)), key=lambda i: -values[i])


def _oriented_pairs(desc, reward, size):
    """The K(K-1)/2 unordered pairs {i, j} of a group as (first, second) index lists (RPO.md §3.5, L-pairs). With
    target=reward_gap, in index order i < j: the gap eta (r_i - r_j) carries the sign. With a label target (hard,
    constant, smoothed), whose gap says that the first response is the preferred one, the higher-reward response
    comes first."""
    pairs = [(i, j) for i in range(size) for j in range(i + 1, size)]
    if desc["target"]["name"] != "reward_gap":
        rank = {index: position for position, index in enumerate(reward_order(reward))}
        pairs = [(i, j) if rank[i] < rank[j] else (j, i) for i, j in pairs]
    return [i for i, _ in pairs], [j for _, j in pairs]


def group_contrasts(desc, score, reward):
    """(x, b) of every contrast of a loo, all_pairs or best_worst group: x = the policy gap minus gamma, shape (C,),
    and b the target gap: shape (C,), a 0-d tensor (constant, smoothed label) or None (hard label, b = +inf)."""
    sampling, gamma = desc["sampling"], desc["gamma"]
    if sampling == "loo":             # RPO.md §3.5 (L-loo): s_i - m_{-i}(s) against t_i - m_{-i}(t)
        t = desc["target"]["eta"] * reward
        return score - leave_one_out_mean(score) - gamma, t - leave_one_out_mean(t)
    if sampling == "all_pairs":       # RPO.md §3.5 (L-pairs): every unordered pair
        first, second = _oriented_pairs(desc, reward, score.shape[0])
    elif sampling == "best_worst":    # RPO.md §7: the best response against the worst, by explicit reward
        order = reward_order(reward)
        first, second = [order[0]], [order[-1]]
    else:
        raise ValueError(f"sampling={sampling} has no pairwise contrasts")
    first, second = torch.tensor(first), torch.tensor(second)
    b = target_gap(desc["target"], torch.stack([reward[first], reward[second]], dim=1))
    return score[first] - score[second] - gamma, b


def softmax_loss(desc, score, reward):
    """RPO.md §3.5 (L-soft), p = softmax(s), q = softmax(eta r); the distance picks the direction:
    bwd_kl: KL(q || p) = sum_i q_i (log q_i - log p_i)  (E10, the official multi-response RPO);
    fwd_kl: KL(p || q) = sum_i p_i (log p_i - log q_i)  (E10f);
    logistic: the cross-entropy -sum_i q_i log p_i      (LOSSES.md §4.12, InfoNCA with eta = 1/alpha).
    At K = 2 they are D_bwd, D_fwd and the logistic distance of the gaps (a two-class softmax is a sigmoid)."""
    log_p = log_softmax(score)
    log_q = log_softmax(desc["target"]["eta"] * reward)
    distance = desc["distance"]
    if distance == "bwd_kl":
        return _sequential_sum(torch.exp(log_q) * (log_q - log_p))
    if distance == "fwd_kl":
        return _sequential_sum(torch.exp(log_p) * (log_p - log_q))
    if distance == "logistic":
        return -_sequential_sum(torch.exp(log_q) * log_p)
    raise ValueError(f"distance={distance} has no softmax form")


def plackett_luce_loss(score, reward):
    """LOSSES.md §4.11, with pi the order by explicit reward (pi(1) the best):
    -sum_{k=1}^{K-1} log softmax(s_pi(k), ..., s_pi(K))_1  (the k = K term of §4.11 is 0).
    Each term is written log(1 + sum_{j>k} e^{s_pi(j) - s_pi(k)}) = softplus(LSE(s_pi(k+1..K)) - s_pi(k)), accurate
    also when s_pi(k) dominates; at K = 2 it is softplus(-(s_best - s_worst)), DPO."""
    ordered = score[torch.tensor(reward_order(reward))]
    return _sequential_sum([softplus(logsumexp(ordered[k + 1:]) - ordered[k]) for k in range(len(ordered) - 1)])


def group_value(desc, logp, ref_logp=None, length=None, reward=None):
    """The loss of one group, a 0-d tensor; inputs are 1-D tensors of K entries (K = 2 for sampling=pair)."""
    sampling = desc["sampling"]
    if desc.get("kind") == "outside_group":
        return OUTSIDE_GROUP[desc["formula"]](desc["params"], logp, ref_logp, reward)
    if sampling == "pair":
        fields = {"logp": logp, "ref_logp": ref_logp, "length": length, "reward": reward}
        return pair_losses(desc, **{k: None if v is None else v.reshape(1, 2) for k, v in fields.items()})[0]
    score = policy_reward(desc["reward"], logp, ref_logp, length)
    if sampling == "softmax":
        return softmax_loss(desc, score, reward)
    if sampling == "plackett_luce":
        return plackett_luce_loss(score, reward)
    x, b = group_contrasts(desc, score, reward)
    # the mean over the contrasts: (1/K) sum_i for loo, (2/(K(K-1))) sum_{i<j} for all_pairs, one for best_worst
    return _mean(distance_value(desc["distance"], x, b))


# ------------------------------------------------------------------------------------------------------------------
# Entry points for the binding tests
# ------------------------------------------------------------------------------------------------------------------

def _as_vector(name, values, requires_grad=False):
    """A 1-D sequence of N numbers (list or tensor) -> a float64 (N,) tensor, checked as the entry points check
    (errors.md): finite values, positive lengths. A tensor keeps its autograd graph; a list becomes a new leaf."""
    if isinstance(values, torch.Tensor):
        tensor = values.to(DTYPE)
    else:
        tensor = torch.tensor([float(v) for v in values], dtype=DTYPE, requires_grad=requires_grad)
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D, but has shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor.detach()).all()):
        raise ValueError(f"{name} must be finite")
    if name == "length" and not bool((tensor.detach() > 0).all()):
        raise ValueError("length must be > 0")
    return tensor


def _group_inputs(desc, logp, ref_logp, length, reward, requires_grad):
    """The (N,) tensors of the fields the loss reads; a read field that is missing raises ValueError."""
    given = {"logp": logp, "ref_logp": ref_logp, "length": length, "reward": reward}
    tensors = {}
    for field in desc["inputs"]:
        if given[field] is None:
            raise ValueError(f"{desc['name']}: this loss reads {field}, which was not given")
        tensors[field] = _as_vector(field, given[field], requires_grad and field in ("logp", "ref_logp"))
    if len({t.shape[0] for t in tensors.values()}) != 1:
        raise ValueError(f"{desc['name']}: the fields have different numbers of entries")
    return tensors


def _inputs(desc, logp, ref_logp, length, reward, requires_grad):
    """The (G, 2) tensors of the fields a pairwise loss reads: consecutive pairs, chosen then rejected."""
    tensors = _group_inputs(desc, logp, ref_logp, length, reward, requires_grad)
    for field, tensor in tensors.items():
        if tensor.numel() % 2 != 0:
            raise ValueError(f"{field} must have an even number of entries (pairs), but has {tensor.numel()}")
    return {field: tensor.reshape(-1, 2) for field, tensor in tensors.items()}


def _group_bounds(desc, offsets, size):
    """[(begin, end)] of each group (batch.md#batch_input): offsets has G + 1 increasing entries from 0 to N. Without
    offsets, only pairs are possible (consecutive, chosen then rejected). Groups have exactly 2 responses for
    sampling=pair and at least 2 for the other schemes."""
    sampling = desc["sampling"]
    if offsets is None:
        if sampling != "pair":
            raise ValueError(f"{desc['name']}: sampling={sampling} takes groups of any size K >= 2; give offsets")
        if size % 2 != 0:
            raise ValueError(f"{desc['name']}: pairs need an even number of entries, but got {size}")
        return [(begin, begin + 2) for begin in range(0, size, 2)]
    values = offsets.tolist() if isinstance(offsets, torch.Tensor) else list(offsets)
    bounds = [int(v) for v in values]
    if bounds != values or not bounds or bounds[0] != 0 or bounds[-1] != size:
        raise ValueError(f"offsets must be integers from 0 to the number of responses {size}, but got {values}")
    groups = list(zip(bounds[:-1], bounds[1:]))
    for g, (begin, end) in enumerate(groups):
        if end - begin < 2 or (sampling == "pair" and end - begin != 2):
            need = "exactly 2" if sampling == "pair" else "at least 2"
            raise ValueError(f"{desc['name']}: group {g} (offsets[{g}] to offsets[{g + 1}]) has {end - begin} "
                             f"responses, but sampling={sampling} needs {need}")
    return groups


def _reduce(losses, reduction):
    """The reduction over groups (batch.md#reduction)."""
    if reduction == "mean":
        if losses.numel() == 0:
            raise ValueError("the batch is empty, and the mean over 0 groups is undefined")
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"unknown reduction {reduction!r} (expected mean, sum or none)")


def batch_loss(spec, logp, ref_logp=None, length=None, reward=None, reduction="mean", offsets=None):
    """The loss of G pairs as a torch tensor that callers can backpropagate through.

    Inputs are 1-D sequences (lists or tensors) of 2G entries, pairs consecutive: chosen, rejected, chosen, ...
    Lists become float64 leaves with requires_grad (logp, ref_logp); tensors are used as given. reduction:
    "mean" (1/G) sum, "sum", or "none" (the G per-pair losses) (batch.md#reduction). With offsets, or for a
    multi-response scheme, this is group_loss.
    """
    desc = parse_spec(spec)
    if offsets is not None or desc["sampling"] != "pair":
        return group_loss(spec, logp, ref_logp, length, reward, offsets=offsets, reduction=reduction)
    losses = pair_losses(desc, **_inputs(desc, logp, ref_logp, length, reward, requires_grad=True))
    return _reduce(losses, reduction)


def group_loss(spec, logp, ref_logp=None, length=None, reward=None, offsets=None, reduction="mean"):
    """The loss of G groups of responses (one prompt each) as a torch tensor that callers can backpropagate through.

    Inputs are 1-D sequences (lists or tensors) of N entries; group g is the responses offsets[g] to offsets[g+1] - 1
    (offsets: G + 1 increasing integers from 0 to N; ragged groups of K >= 2, or of exactly 2 for sampling=pair,
    where offsets may be left out for consecutive pairs). Lists become float64 leaves with requires_grad (logp,
    ref_logp); tensors are used as given. reduction: "mean" (1/G) sum, "sum", or "none" (the G per-group losses).
    """
    desc = parse_spec(spec)
    tensors = _group_inputs(desc, logp, ref_logp, length, reward, requires_grad=True)
    groups = _group_bounds(desc, offsets, tensors["logp"].shape[0])
    if desc["sampling"] == "pair":   # consecutive pairs: the pairwise path of batch_loss
        losses = pair_losses(desc, **{name: t.reshape(-1, 2) for name, t in tensors.items()})
    elif groups:
        losses = torch.stack([group_value(desc, **{name: t[begin:end] for name, t in tensors.items()})
                              for begin, end in groups])
    else:
        losses = tensors["logp"][:0]   # no group: empty, but still connected to the inputs
    return _reduce(losses, reduction)


def _value_and_grads(desc, tensors):
    """Loss and autograd gradients of one pair or group; `tensors` holds the float64 tensors of the fields read, of
    shape (1, 2) for a pair and (K,) for a group."""
    leaves = {name: tensors[name].detach().requires_grad_(True) for name in ("logp", "ref_logp") if name in tensors}
    inputs = {**tensors, **leaves}
    loss = pair_losses(desc, **inputs)[0] if tensors["logp"].dim() == 2 else group_value(desc, **inputs)
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    zero = torch.zeros_like(tensors["logp"])

    def as_list(t):
        return [float(v) + 0.0 for v in t.reshape(-1)]  # + 0.0 turns -0.0 into 0.0

    return float(loss) + 0.0, as_list(grads["logp"]), as_list(grads.get("ref_logp", zero))


def loss_and_grads(spec, logp, ref_logp=None, length=None, reward=None):
    """(loss, [d/d logp0, d/d logp1], [d/d ref_logp0, d/d ref_logp1]) of one pair, in float64; for a multi-response
    scheme, of one group of K >= 2 responses (K entries per field, K gradient entries).

    The ref_logp gradient is 0 where the loss does not read ref_logp."""
    desc = parse_spec(spec)
    if desc["sampling"] != "pair":
        tensors = _group_inputs(desc, logp, ref_logp, length, reward, requires_grad=False)
        if tensors["logp"].shape[0] < 2:
            raise ValueError(f"sampling={desc['sampling']} needs a group of at least 2 responses")
        return _value_and_grads(desc, tensors)
    tensors = _inputs(desc, logp, ref_logp, length, reward, requires_grad=False)
    if tensors["logp"].shape[0] != 1:
        raise ValueError("loss_and_grads takes one pair: two entries per field")
    return _value_and_grads(desc, tensors)


# ------------------------------------------------------------------------------------------------------------------
# The golden cases
# ------------------------------------------------------------------------------------------------------------------

SEED = "rpo-golden-v1"   # with the case name, the seed of each case's pairs

# One non-default setting per preset (the `_alt` cases).
PRESET_ALTERNATIVES = {
    "dpo": {"beta": 0.5},
    "cdpo": {"beta": 0.3, "epsilon": 0.25},
    "ipo": {"tau": 0.5},
    "ipo_normalized": {"tau": 0.05},
    "simpo": {"beta": 2.5, "gamma": 1.375},
    "hinge": {"beta": 0.05},
    "dpo_normalized": {"beta": 2.0},
    "rpo_sq": {"beta": 0.05, "eta": 0.5},
    "rpo_fwd": {"beta": 0.5, "eta": 2.0},
    "rpo_bwd": {"beta": 0.1, "eta": 3.0},
    "rpo_sqloo": {"beta": 0.1, "eta": 2.0},
    "rpo_sqpairs": {"beta": 0.05, "eta": 0.5},
    "rpo_softmax_bwd": {"beta": 0.2, "eta": 1.0},
    "rpo_softmax_fwd": {"beta": 0.5, "eta": 2.0},
    "infonca": {"beta": 0.1, "alpha": 0.25},   # eta = 1/alpha = 4 exactly: r/alpha and (1/alpha) r agree to the bit
    "listwise_dpo": {"beta": 0.5},
    "dpo_best_worst": {"beta": 0.25},
    "exo_pair": {"beta": 0.25, "epsilon": 0.05},
    "cpo_pref": {"beta": 0.05},
    "odpo": {"beta": 0.5, "alpha": 0.5},
    "rdpo": {"beta": 0.2, "alpha": -0.02},
    "hdpo": {"beta": 0.2, "alpha": 0.8},
    "alphapo": {"beta": 5.0, "alpha": -0.5, "gamma": 1.0},
    "fdpo_forward_kl": {"beta": 0.5},
    "fdpo_js": {"beta": 0.5},
    "fdpo_alpha": {"beta": 0.2, "alpha": 0.25},
    "discopop": {"beta": 0.5, "tau": 0.5},
    "focalpo": {"beta": 0.5, "gamma": 2.0},
    "cpo": {"beta": 0.5, "lambda": 0.25},
    "irpo": {"beta": 0.5, "alpha": 2.0},
    "mpo": {"beta": 0.25, "preference": 1.0, "quality": 0.5, "generation": 0.1},
    "robust_dpo": {"beta": 0.5, "epsilon": 0.3},
    "nca_pair": {"beta": 0.2},
    "bco_pair": {"beta": 0.5, "delta": -0.75},
    "sppo_hard": {"beta": 0.5},
    "sppo_soft": {"beta": 0.5},
    "apo_zero": {"beta": 0.5},
    "apo_down": {"beta": 0.5},
    "dpop": {"beta": 0.2, "lambda": 5.0},
    "dpo_shift": {"beta": 0.5, "lambda": 0.75},
    "orpo": {"lambda": 0.5},
    "dno": {"beta": 0.5},
    "madpo": {"beta": 0.25, "c_max": 3.0, "c_min": 0.25, "lambda": 0.5, "tau": 1.0},
    "nca": {"beta": 0.1, "alpha": 0.5},
    "swepo": {"beta": 0.25, "alpha": 0.5},
}

# Non-default parameters of the general-form cases (none is a default). Each list is cycled over the cases that use
# it, in order; lengths coprime with 4 keep a parameter value from following the reward model or the target.
GENERAL_BETAS = {"implicit": (0.25, 0.5, 0.05), "implicit_norm": (2.5, 0.5, 1.0), "ref_free": (0.05, 0.2, 0.15),
                 "ref_free_norm": (3.0, 1.5, 5.0)}
GENERAL_TARGET_VALUES = {"eta": (0.5, 2.0, 1.5, 0.0, 0.25), "value": (-1.5, 0.75, 2.0, 3.0, 0.25),
                         "epsilon": (0.05, 0.2, 0.3, 0.5, 0.01)}
GENERAL_GAMMAS = (0.5, -0.25, 1.5, 0.75, 2.0)


def _format(name, params):
    """`name(key=value, ...)`, numbers as the repr of a float (a plain decimal that round-trips)."""
    def text(value):
        return value if isinstance(value, str) else repr(float(value))
    return f"{name}({', '.join(f'{key}={text(value)}' for key, value in params.items())})"


def _general_specs(sampling="pair", used=None):
    """[(case, spec)] of every valid distance x reward x target under one sampling scheme. Within each
    (distance, target), the four reward models alternate between gamma = 0 and a non-zero gamma, starting on the
    other foot for the next (distance, target) and for the next scheme in SAMPLINGS: half of the cases get a
    margin, and every (distance, target) and reward model has both. softmax and plackett_luce take no margin
    (their specs leave gamma out). `used` holds how far each parameter list has been cycled through (a fresh start
    when None). Case names end in _<sampling>, except for pairs."""
    used = {} if used is None else used
    foot = SAMPLINGS.index(sampling)   # 0 for pairs
    suffix = "" if sampling == "pair" else f"_{sampling}"

    def next_value(table, key):
        values = table[key]
        used[key] = used.get(key, -1) + 1
        return values[used[key] % len(values)]

    pairs = [(d, t) for d in DISTANCES for t in TARGETS if composition_is_valid(d, t, sampling)]
    specs = []
    for group, (distance, target) in enumerate(pairs):
        for position, reward in enumerate(REWARDS):
            params = {"distance": distance, "reward": reward, "target": target, "sampling": sampling,
                      "beta": next_value(GENERAL_BETAS, reward)}
            if TARGET_PARAMETER[target] is not None:
                key = TARGET_PARAMETER[target][0]
                params[key] = next_value(GENERAL_TARGET_VALUES, key)
            if takes_margin(target, sampling):
                with_margin = (group + position + foot) % 2 == 1
                params["gamma"] = next_value({"gamma": GENERAL_GAMMAS}, "gamma") if with_margin else 0.0
            specs.append((f"rpo_{distance}_{reward}_{target}{suffix}", _format("rpo", params)))
    return specs


def golden_cases():
    """[(case, spec)], sorted by case name: each preset at its defaults and at one other setting, and every valid
    distance x reward x target x sampling of the general form, half of them with a margin gamma where the scheme
    takes one."""
    cases = []
    for name, (defaults, _) in PRESETS.items():
        cases.append((f"{name}_default", _format(name, defaults)))
        cases.append((f"{name}_alt", _format(name, {**defaults, **PRESET_ALTERNATIVES[name]})))
    used = {}   # the multi-response schemes go on cycling where the previous one stopped, for varied parameters
    general = _general_specs("pair") + [case for sampling in SAMPLINGS[1:] for case in _general_specs(sampling, used)]
    return sorted(cases + general)


# The 24 pairs of a case, in file order: typical draws; large gaps |a - gamma| in [8, 60] of alternating sign (every
# other one with a large target gap too); a - gamma close to b (relative gaps 1e-3 to 1e-1; near 0 for a hard label,
# near the kink a - gamma = 1 for the hinge); one-token responses.
PAIR_KINDS = ("typical",) * 8 + ("large",) * 6 + ("near",) * 6 + ("one_token",) * 4
MAX_GAP = 64.0          # |a - gamma| and |b| stay below this: the KL formulas above then err by < 1e-13
KINK_CLEARANCE = 1e-6   # the hinge is not differentiable at a - gamma = 1


def _negative(rng, low, high):
    return -rng.uniform(low, high)


def _log_uniform(rng, low, high):
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _split_log_ratio(rng, ratio):
    """(logp, ref_logp), both negative, with logp - ref_logp = ratio."""
    base = _negative(rng, 1.0, 300.0)
    return (base, base - ratio) if ratio >= 0 else (base + ratio, base)


def _solve_gap(rng, reward, a, length):
    """logp and ref_logp (None when not read) of a pair whose policy gap r_pi(y0) - r_pi(y1) is a, for the reward
    models that are not affine in logp with slope beta: draw everything but logp0, then solve for logp0 in
    [-3000, 0] by bisection (each of these rewards increases with logp). None when no root lies there."""
    uses_ref = reward["name"] not in ("alpha_shaped", "log_odds")
    logp1 = _negative(rng, 1.0, 300.0) if uses_ref else _negative(rng, 0.05, 30.0) * length[1]
    ref = [_negative(rng, 1.0, 300.0), _reference_of(rng, logp1)] if uses_ref else None

    def r(index, logp):
        t = lambda v: torch.tensor([float(v)], dtype=DTYPE)
        ref_value = t(ref[index]) if uses_ref else None
        return float(policy_reward(reward, t(logp), ref_value, t(length[index]))[0])

    goal = r(1, logp1) + a
    low, high = -3000.0, -1e-9
    if not (r(0, low) <= goal <= r(0, high)):
        return None
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if r(0, mid) < goal else (low, mid)
    return [0.5 * (low + high), logp1], ref


def _inputs_with_gap(rng, reward, a, length):
    """logp and ref_logp of a pair whose policy gap r_pi(y0) - r_pi(y1) is a (before rounding); None when the
    draw has no solution (the caller draws again)."""
    if reward["name"] in PRESET_REWARDS:
        return _solve_gap(rng, reward, a, length)
    d = a / reward["beta"]
    n0, n1 = length
    name = reward["name"]
    if name in ("implicit", "implicit_norm"):
        scale = (n0, n1) if name == "implicit_norm" else (1, 1)
        q1 = rng.gauss(0.0, 3.0) / scale[1]   # log-ratio (per token when normalised)
        ratios = ((q1 + d) * scale[0], q1 * scale[1])
        (l0, r0), (l1, r1) = (_split_log_ratio(rng, ratio) for ratio in ratios)
        return [l0, l1], [r0, r1]
    top = _negative(rng, 1.0, 300.0) if name == "ref_free" else _negative(rng, 0.05, 3.0)
    q = (top, top - d) if d >= 0 else (top + d, top)  # logp (per token when normalised), both negative
    scale = (n0, n1) if name == "ref_free_norm" else (1, 1)
    return [q[0] * scale[0], q[1] * scale[1]], None


def _draw_rewards(rng, target, kind, index):
    """Explicit rewards ~ N(0, 2); for every other large-gap pair, a target gap |b| in [5, 40]. For ODPO's offset
    (target.md#log_reward_offset), r_c - r_r is log-uniform in [1e-2, 20] above r_r ~ N(0, 2)."""
    r1 = rng.gauss(0.0, 2.0)
    if target["name"] == "log_offset":
        return [r1 + _log_uniform(rng, 1e-2, 20.0), r1]
    if kind == "large" and index % 2 == 1 and target["eta"] > 0:   # a large target gap too
        return [r1 + rng.choice((-1, 1)) * rng.uniform(5.0, 40.0) / target["eta"], r1]
    return [rng.gauss(0.0, 2.0), r1]


def _draw_typical(rng, kind, index):
    """logp ~ U[-300, -1] (U[-30, -0.01] for a one-token response), ref_logp = logp + N(0, 3) kept negative,
    lengths in 1..400."""
    if kind == "one_token":
        length = [(1, 1), (1, 1), (1, rng.randint(2, 400)), (rng.randint(2, 400), 1)][index % 4]
    else:
        length = (rng.randint(1, 400), rng.randint(1, 400))
    logp = [_negative(rng, 0.01, 30.0) if n == 1 and kind == "one_token" else _negative(rng, 1.0, 300.0)
            for n in length]
    return logp, [_reference_of(rng, value) for value in logp], list(length)


def _reference_of(rng, logp):
    """ref_logp = logp + N(0, 3), drawn again until it is negative."""
    ref = logp + rng.gauss(0.0, 3.0)
    while ref >= 0:
        ref = logp + rng.gauss(0.0, 3.0)
    return ref


def _draw_constructed(rng, desc, kind, index, b, reward=None):
    """A pair with a chosen a - gamma (minus ODPO's offset): large (kind "large") or close to b (kind "near");
    None when the draw has no solution."""
    sign = 1 if index % 2 == 0 else -1
    if kind == "large":
        x = sign * _log_uniform(rng, 8.0, 60.0)
        length = (rng.randint(1, 40), rng.randint(1, 40))
    else:
        small = sign * _log_uniform(rng, 1e-3, 1e-1)
        if desc["distance"] == "hinge":
            x = 1.0 + small
        elif b is None:
            x = small
        else:
            x = b + small * max(abs(b), 1.0)
        length = (rng.randint(1, 400), rng.randint(1, 400))
    shift = desc["gamma"]
    if desc["target"]["name"] == "log_offset":
        shift += desc["target"]["alpha"] * math.log(reward[0] - reward[1])
    solved = _inputs_with_gap(rng, desc["reward"], x + shift, length)
    if solved is None:
        return None
    logp, ref_logp = solved
    return logp, ref_logp, list(length)


def _pair_tensors(desc, fields):
    """The (1, 2) float64 tensors of the fields the loss reads."""
    return {name: torch.tensor([float(v) for v in fields[name]], dtype=DTYPE).reshape(1, 2)
            for name in desc["inputs"]}


def _record(desc, fields):
    """The JSON object of one pair or group: the fields the loss reads, then loss and gradients."""
    record = {field: fields[field] for field in ("logp", "ref_logp", "length", "reward") if field in desc["inputs"]}
    tensors = _pair_tensors(desc, fields) if desc["sampling"] == "pair" else _group_tensors(desc, fields)
    loss, grad_logp, grad_ref_logp = _value_and_grads(desc, tensors)
    record.update(loss=loss, grad_logp=grad_logp, grad_ref_logp=grad_ref_logp)
    return record


def _acceptable(desc, fields):
    """Whether a drawn pair is one the reference computes accurately and unambiguously (for a loss outside the
    template or a sum, judged on the composition it is drawn as)."""
    desc = desc.get("draw_as", desc)
    x, b = pair_gaps(desc, **_pair_tensors(desc, fields))
    x = float(x[0])
    if abs(x) > MAX_GAP or (b is not None and abs(float(b.reshape(-1)[0])) > MAX_GAP):
        return False
    return desc["distance"] != "hinge" or abs(1.0 - x) > KINK_CLEARANCE


CONSTRUCTION_TRIES = 200   # a bounded reward model (AlphaPO with alpha < 0) cannot reach every gap: draw typically


def draw_pair(rng, desc, kind, index):
    """The inputs of one pair of the given kind, rounded to 6 decimals (lengths are integers). A constructed kind
    that finds no acceptable pair in CONSTRUCTION_TRIES draws falls back to typical draws."""
    tries = 0
    record_desc, desc = desc, desc.get("draw_as", desc)
    while True:
        tries += 1
        if tries > CONSTRUCTION_TRIES and kind in ("large", "near"):
            kind = "typical"
        reward = _draw_rewards(rng, desc["target"], kind, index) if "reward" in desc["inputs"] else [0.0, 0.0]
        if record_desc.get("probabilities"):   # win probabilities (soft SPPO): sigma(r), or the hard labels
            reward = [1.0, 0.0] if index % 6 == 0 else [0.0, 1.0] if index % 6 == 3 else [
                1.0 / (1.0 + math.exp(-r)) for r in reward]
        if kind in ("typical", "one_token"):
            logp, ref_logp, length = _draw_typical(rng, kind, index)
        else:
            b = None
            if desc["target"]["name"] not in ("hard", "log_offset"):
                rewards = torch.tensor([reward], dtype=DTYPE)
                b = float(target_gap(desc["target"], rewards).reshape(-1)[0])
            constructed = _draw_constructed(rng, desc, kind, index, b, reward)
            if constructed is None:
                continue
            logp, ref_logp, length = constructed
        fields = {"logp": [round(v, 6) for v in logp], "length": length, "reward": [round(v, 6) for v in reward]}
        if ref_logp is not None:   # None only for the reference-free rewards, which do not read it
            fields["ref_logp"] = [round(v, 6) for v in ref_logp]
        if _acceptable(desc, fields):
            return fields


# The 16 groups of a multi-response case, in file order, as (kind, K): typical draws; moderately large gaps (policy
# scores spread over up to 60, every other one with a target spread eta (max r - min r) of 5 to 40 as well); groups
# in which every other response is one token long.
GROUP_KINDS = (("typical", 2), ("typical", 3), ("typical", 4), ("typical", 5), ("typical", 6), ("typical", 2),
               ("typical", 4), ("typical", 6), ("large", 3), ("large", 5), ("large", 2), ("large", 6), ("large", 4),
               ("one_token", 2), ("one_token", 3), ("one_token", 5))
MIN_REWARD_SEPARATION = 1e-3   # no two rewards of a group closer: the schemes that order by reward see no tie


def _draw_group_rewards(rng, target, kind, index, size):
    """Explicit rewards ~ N(0, 2); for every other large-gap group (target=reward_gap, eta > 0), rewards spread so
    that eta (max r - min r) is up to a draw from [5, 40]."""
    if kind == "large" and index % 2 == 1 and target["name"] == "reward_gap" and target["eta"] > 0:
        base, spread = rng.gauss(0.0, 2.0), rng.uniform(5.0, 40.0) / target["eta"]
        return [base + spread * rng.uniform(-0.5, 0.5) for _ in range(size)]
    return [rng.gauss(0.0, 2.0) for _ in range(size)]


def _draw_typical_group(rng, kind, index, size):
    """As _draw_typical, response by response; in a one-token group every other response has one token."""
    if kind == "one_token":
        length = [1 if (i + index) % 2 == 0 else rng.randint(2, 400) for i in range(size)]
    else:
        length = [rng.randint(1, 400) for _ in range(size)]
    logp = [_negative(rng, 0.01, 30.0) if n == 1 and kind == "one_token" else _negative(rng, 1.0, 300.0)
            for n in length]
    return logp, [_reference_of(rng, value) for value in logp], length


def _inputs_with_scores(rng, reward, scores, length):
    """logp and ref_logp (None for the reference-free rewards) of responses whose policy scores r_pi(y_i) are
    `scores` up to a common shift (before rounding)."""
    d = [u / reward["beta"] for u in scores]   # log-ratios, or log-probs (per token when normalised), up to a shift
    name = reward["name"]
    scale = length if name in ("implicit_norm", "ref_free_norm") else [1] * len(d)
    if name in ("implicit", "implicit_norm"):
        shift = rng.gauss(0.0, 3.0) if name == "implicit" else rng.gauss(0.0, 0.1)
        split = [_split_log_ratio(rng, (value + shift) * n) for value, n in zip(d, scale)]
        return [logp for logp, _ in split], [ref for _, ref in split]
    top = _negative(rng, 1.0, 300.0) if name == "ref_free" else _negative(rng, 0.05, 3.0)
    return [(top + value - max(d)) * n for value, n in zip(d, scale)], None   # all negative


def _draw_large_group(rng, desc, size):
    """A group whose policy scores are scale * U(-1, 1), scale from [8, 30] (log-uniform); lengths in 1..40."""
    scale = _log_uniform(rng, 8.0, 30.0)
    scores = [scale * rng.uniform(-1.0, 1.0) for _ in range(size)]
    length = [rng.randint(1, 40) for _ in range(size)]
    logp, ref_logp = _inputs_with_scores(rng, desc["reward"], scores, length)
    return logp, ref_logp, length


def _group_tensors(desc, fields):
    """The (K,) float64 tensors of the fields the loss reads."""
    return {name: torch.tensor([float(v) for v in fields[name]], dtype=DTYPE) for name in desc["inputs"]}


def _group_acceptable(desc, fields):
    """Whether a drawn group is one the reference computes accurately and unambiguously: rewards (when read) at
    least MIN_REWARD_SEPARATION apart; |x| and |b| of every contrast at most MAX_GAP (for softmax and
    plackett_luce, the spread max - min of the scores s and of eta r); the hinge's contrasts away from its kink."""
    tensors = _group_tensors(desc, fields)
    reward = tensors.get("reward")
    if reward is not None:
        values = sorted(float(v) for v in reward)
        if min(high - low for low, high in zip(values, values[1:])) < MIN_REWARD_SEPARATION:
            return False
    score = policy_reward(desc["reward"], tensors["logp"], tensors.get("ref_logp"), tensors.get("length"))
    if desc["sampling"] in NO_MARGIN_SAMPLINGS:
        # log_softmax keeps every target accurate, also a nearly one-hot one (InfoNCA's eta = 1/alpha = 1e4).
        return float(score.max() - score.min()) <= MAX_GAP
    x, b = group_contrasts(desc, score, reward)
    if float(x.abs().max()) > MAX_GAP or (b is not None and float(b.abs().max()) > MAX_GAP):
        return False
    return desc["distance"] != "hinge" or float((1.0 - x).abs().min()) > KINK_CLEARANCE


def draw_group(rng, desc, kind, index, size):
    """The inputs of one group of `size` responses of the given kind, rounded to 6 decimals (lengths are integers).
    A loss beside the template is drawn as the composition it names (draw_as)."""
    desc = desc.get("draw_as", desc)
    while True:
        reward = (_draw_group_rewards(rng, desc["target"], kind, index, size) if "reward" in desc["inputs"]
                  else [0.0] * size)
        if kind == "large":
            logp, ref_logp, length = _draw_large_group(rng, desc, size)
        else:
            logp, ref_logp, length = _draw_typical_group(rng, kind, index, size)
        fields = {"logp": [round(v, 6) for v in logp], "length": length, "reward": [round(v, 6) for v in reward]}
        if ref_logp is not None:   # None only for the reference-free rewards, which do not read it
            fields["ref_logp"] = [round(v, 6) for v in ref_logp]
        if _group_acceptable(desc, fields):
            return fields


def golden_lines(case, spec):
    """The JSON lines of one case, from a seed that depends only on the case name: 24 pairs for sampling=pair,
    16 groups (GROUP_KINDS) for the multi-response schemes."""
    desc = parse_spec(spec)
    rng = random.Random(f"{SEED}:{case}")
    lines = []
    if desc["sampling"] == "pair":
        draws = (draw_pair(rng, desc, kind, index) for index, kind in enumerate(PAIR_KINDS))
    else:
        draws = (draw_group(rng, desc, kind, index, size) for index, (kind, size) in enumerate(GROUP_KINDS))
    for fields in draws:
        lines.append(json.dumps(_record(desc, fields), separators=(", ", ": ")))
    return lines


def write_golden(out):
    out.mkdir(parents=True, exist_ok=True)
    cases = golden_cases()
    names = {case for case, _ in cases}
    for stale in sorted(out.glob("*.jsonl")):
        if stale.stem not in names:
            stale.unlink()
    for case, spec in cases:
        (out / f"{case}.jsonl").write_text("\n".join(golden_lines(case, spec)) + "\n", encoding="utf-8")
    (out / "cases.tsv").write_text("".join(f"{case}\t{spec}\n" for case, spec in cases), encoding="utf-8")
    return len(cases)

# ------------------------------------------------------------------------------------------------------------------
# Batch methods: one whole batch per line (rpo-eval --batch SPEC)
# ------------------------------------------------------------------------------------------------------------------
#
# The methods whose loss needs the whole batch (KTO, unpaired BCO, AOT, gamma-PO), a weight from outside the group
# (WPO) or the tokens (LD-DPO), written from reference/LOSSES.md §2.3, §1.8, §1.10, §4.6, §1.16, §1.17 and
# docs/methods.md (gamma-PO's margin optimiser, docs/methods.md#gamma_po_margins), with autograd gradients. Every
# method returns the mean over its items (responses, ranks, pairs or groups). As for the losses above, nothing here
# reads or calls rpo.
#
# Golden vectors: tests/data/golden/batch_cases.tsv (`<case>\t<batch spec>`) and tests/data/golden/batch/<case>.jsonl,
# a few batches per case, one JSON object per batch: the input fields of the method, then "loss" and the method's
# outputs (docs/rpo_eval.md#batch).

BATCH_DEFAULTS = {   # docs/rpo_eval.md#batch and docs/methods.md: the parameters of each batch method and defaults
    "kto": {"beta": 0.1, "lambda_desirable": 1.0, "lambda_undesirable": 1.0},
    "bco_unpaired": {"beta": 0.1},
    "aot": {"beta": 0.1, "epsilon": 0.0, "unpaired": "false"},
    "gamma_po": {"beta": 0.1, "gamma_beta_ratio": 0.5, "simpo": "false", "tau": 10.0, "iterations": 20, "step": 0.0,
                 "epsilon": 1e-10},
    "wpo": {"loss": "dpo"},
    "ld_dpo": {"alpha": None, "loss": "dpo"},   # alpha is required
}


def _split_batch_arguments(spec, text):
    """'k=v, loss=dpo(beta=0.1, ...)' -> {'k': 'v', 'loss': 'dpo(beta=0.1, ...)'}: commas inside parentheses belong
    to a nested loss spec."""
    items, depth, current = [], 0, ""
    for c in text or "":
        depth += (c == "(") - (c == ")")
        if c == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += c
    if current.strip():
        items.append(current)
    arguments = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value or key in arguments:
            raise ValueError(f"{spec!r}: bad argument {item.strip()!r}")
        arguments[key] = value
    return arguments


def parse_batch_spec(spec):
    """`name(key=value, ...)` of a batch method -> (name, parameters with defaults applied)."""
    match = _SPEC.fullmatch(spec)
    if match is None or match.group(1) not in BATCH_DEFAULTS:
        raise ValueError(f"{spec!r}: expected one of {', '.join(BATCH_DEFAULTS)}")
    name, arguments = match.group(1), _split_batch_arguments(spec, match.group(2))
    params = dict(BATCH_DEFAULTS[name])
    for key, value in arguments.items():
        if key not in params:
            raise ValueError(f"{name}: unknown parameter {key!r}")
        params[key] = value if key in ("loss", "unpaired", "simpo") else float(value)
    if name == "ld_dpo" and params["alpha"] is None:
        raise ValueError("ld_dpo: alpha is required")
    return name, params


def _t(values):
    return torch.tensor([float(v) for v in values], dtype=DTYPE)


def _leaf(values):
    return _t(values).requires_grad_(True)


def _listed(t):
    return [float(v) + 0.0 for v in t.detach().reshape(-1)]   # + 0.0 turns -0.0 into 0.0


def _grad_or_zero(grad, like):
    return torch.zeros_like(like) if grad is None else grad


def kto_batch(p, fields):
    """KTO, LOSSES.md §2.3: z0 = max(0, mean(kl_logp - kl_ref_logp)) without gradient (or z0 given); desirable
    lambda_D (1 - sigma(beta (l - z0))), undesirable lambda_U (1 - sigma(beta (z0 - l))), l = logp - ref_logp; the mean
    over the N responses. 1 - sigma(x) is written sigma(-x) (the same number, without cancellation)."""
    logp, ref = _leaf(fields["logp"]), _leaf(fields["ref_logp"])
    if "z0" in fields:
        z0 = torch.tensor(float(fields["z0"]), dtype=DTYPE)
    else:
        z0 = torch.clamp((_t(fields["kl_logp"]) - _t(fields["kl_ref_logp"])).mean(), min=0.0).detach()
    ratio = logp - ref
    desirable = _t(fields["desirable"]) == 1
    beta = p["beta"]
    losses = torch.where(desirable, p["lambda_desirable"] * torch.sigmoid(-beta * (ratio - z0)),
                         p["lambda_undesirable"] * torch.sigmoid(-beta * (z0 - ratio)))
    loss = losses.mean()
    g, h = torch.autograd.grad(loss, [logp, ref])
    return loss, {"response_loss": _listed(losses), "grad_logp": _listed(g), "grad_ref_logp": _listed(h)}


def bco_batch(p, fields):
    """Unpaired BCO, LOSSES.md §1.8: r = beta (logp - ref_logp) shifted by delta (a constant, 0 when not given);
    desirable -log sigma(r - delta), undesirable -log sigma(-(r - delta)), times the weight (1 when not given); the
    mean over the N responses."""
    logp, ref = _leaf(fields["logp"]), _leaf(fields["ref_logp"])
    shifted = p["beta"] * (logp - ref) - float(fields.get("delta", 0.0))
    desirable = _t(fields["desirable"]) == 1
    weight = _t(fields["weight"]) if "weight" in fields else torch.ones_like(shifted)
    losses = weight * torch.where(desirable, softplus(-shifted), softplus(shifted))
    loss = losses.mean()
    g, h = torch.autograd.grad(loss, [logp, ref])
    return loss, {"response_loss": _listed(losses), "grad_logp": _listed(g), "grad_ref_logp": _listed(h)}


def aot_batch(p, fields):
    """AOT, LOSSES.md §1.10. Paired: sort u = logp_c - logp_r and u_ref = ref_c - ref_r separately, delta_(k) = u_(k) -
    u_ref_(k). Unpaired: sort l_c and l_r separately, delta_(k) = l_c,(k) - l_r,(k). L = mean_k [(1 - eps)
    softplus(-beta delta_(k)) + eps softplus(beta delta_(k))]. Gradients through the sort: autograd."""
    logp, ref = _leaf(fields["logp"]), _leaf(fields["ref_logp"])
    lp, rf = logp.reshape(-1, 2), ref.reshape(-1, 2)
    if p["unpaired"] == "true":
        first, second = lp[:, 0] - rf[:, 0], lp[:, 1] - rf[:, 1]
    else:
        first, second = lp[:, 0] - lp[:, 1], rf[:, 0] - rf[:, 1]
    delta = torch.sort(first, stable=True).values - torch.sort(second, stable=True).values
    x, eps = p["beta"] * delta, p["epsilon"]
    losses = (1 - eps) * softplus(-x) + eps * softplus(x)
    loss = losses.mean()
    g, h = torch.autograd.grad(loss, [logp, ref])
    return loss, {"rank_loss": _listed(losses), "grad_logp": _listed(g), "grad_ref_logp": _listed(h)}


def gamma_po_margins_reference(p, gaps):
    """gamma-PO's margins from an empty queue (LOSSES.md §4.6, docs/methods.md#gamma_po_margins): n = B gaps g,
    gamma_j = gamma_0 n p_j; exponentiated-gradient descent from the uniform p on
    f(p) = (1/n) sum_j softplus(gamma_j - g_j) + tau sum_j (p_j + eps) log(n (p_j + eps)), with the gradient of f from
    autograd: p <- p exp(-eta df/dp) / sum(...), eta = step, or min(0.5/tau, 1) when step = 0; gamma is evaluated
    `iterations` times (iterations - 1 updates)."""
    n = gaps.numel()
    gamma_0 = p["gamma_beta_ratio"] * p["beta"]
    tau, eps = p["tau"], p["epsilon"]
    eta = p["step"] if p["step"] > 0 else min(0.5 / tau, 1.0)
    q = torch.full((n,), 1.0 / n, dtype=DTYPE)
    for _ in range(int(p["iterations"]) - 1):
        q = q.detach().requires_grad_(True)
        f = softplus(gamma_0 * n * q - gaps).sum() / n + tau * ((q + eps) * torch.log(n * (q + eps))).sum()
        (grad,) = torch.autograd.grad(f, [q])
        w = q.detach() * torch.exp(-eta * grad)
        q = w / w.sum()
    return (gamma_0 * n * q).detach()


def gamma_po_batch(p, fields):
    """gamma-PO, LOSSES.md §4.6: gamma-DPO L_i = -log sigma(a_i - (gamma_i - gamma_0)), a = beta (l_c - l_r);
    gamma-SimPO L_i = -log sigma(a_i - gamma_i), a = beta (logp_c / n_c - logp_r / n_r); the margins are constants,
    given or from gamma_po_margins_reference of the gaps a; the mean over the B pairs."""
    simpo = p["simpo"] == "true"
    logp = _leaf(fields["logp"])
    ref = None if simpo else _leaf(fields["ref_logp"])
    lp = logp.reshape(-1, 2)
    if simpo:
        n = _t(fields["length"]).reshape(-1, 2)
        gap = p["beta"] * (lp[:, 0] / n[:, 0] - lp[:, 1] / n[:, 1])
    else:
        rf = ref.reshape(-1, 2)
        gap = p["beta"] * ((lp[:, 0] - rf[:, 0]) - (lp[:, 1] - rf[:, 1]))
    margins = _t(fields["margins"]) if "margins" in fields else gamma_po_margins_reference(p, gap.detach())
    gamma_0 = p["gamma_beta_ratio"] * p["beta"]
    x = gap - margins if simpo else gap - (margins - gamma_0)
    losses = softplus(-x)
    loss = losses.mean()
    leaves = [logp] if simpo else [logp, ref]
    grads = torch.autograd.grad(loss, leaves)
    h = torch.zeros_like(logp) if simpo else grads[1]
    return loss, {"pair_loss": _listed(losses), "grad_logp": _listed(grads[0]), "grad_ref_logp": _listed(h)}


def wpo_batch(p, fields):
    """WPO, LOSSES.md §1.16: L_g <- c_g L_g with constant weights c_g (w(y_c) w(y_r)); the mean over the G groups of the
    weighted losses (not normalised by the weights)."""
    desc = parse_spec(p["loss"])
    logp = _leaf(fields["logp"])
    ref = _leaf(fields["ref_logp"]) if "ref_logp" in desc["inputs"] else None
    extra = {name: fields[name] for name in ("length", "reward") if name in desc["inputs"]}
    losses = batch_loss(p["loss"], logp, ref, reduction="none", offsets=fields.get("offsets"), **extra)
    weighted = _t(fields["group_weights"]) * losses
    loss = weighted.mean()
    leaves = [logp] + ([ref] if ref is not None else [])
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    g = _grad_or_zero(grads[0], logp)
    h = _grad_or_zero(grads[1], ref) if ref is not None else torch.zeros_like(logp)
    return loss, {"group_loss": _listed(weighted), "grad_logp": _listed(g), "grad_ref_logp": _listed(h)}


def _ld_weights(mask, alpha):
    """LD-DPO's token weights (LOSSES.md §1.17): with k the rank of a response token in its row (mask != 0, counted
    in order) and n_min the shorter response of the row's pair, 1 for k <= n_min, alpha for k > n_min, 0 off the
    mask."""
    m = mask.to(DTYPE)
    rank = torch.cumsum(m, dim=1)
    count = m.sum(dim=1).reshape(-1, 2)
    n_min = torch.minimum(count[:, 0], count[:, 1]).repeat_interleave(2).reshape(-1, 1)
    return torch.where(rank <= n_min, torch.ones_like(m), torch.full_like(m, alpha)) * m


def ld_dpo_batch(p, fields):
    """LD-DPO, LOSSES.md §1.17: logp~ = sum_{k <= n_min} log pi_k + alpha sum_{k > n_min} log pi_k per response, the same
    for the reference, then the pair loss on logp~ and ref~ (the mean over the pairs); token gradients by autograd."""
    desc = parse_spec(p["loss"])
    tokens = torch.tensor(fields["token_logp"], dtype=DTYPE).requires_grad_(True)
    mask = torch.tensor(fields["mask"], dtype=DTYPE) if "mask" in fields else torch.ones_like(tokens)
    weights = _ld_weights(mask, p["alpha"])
    logp = (weights * tokens).sum(dim=1)
    uses_ref = "ref_logp" in desc["inputs"]
    ref_tokens = torch.tensor(fields["token_ref_logp"], dtype=DTYPE).requires_grad_(True) if uses_ref else None
    ref = (weights * ref_tokens).sum(dim=1) if uses_ref else None
    losses = batch_loss(p["loss"], logp, ref, reward=fields.get("reward"), reduction="none")
    loss = losses.mean()
    leaves = [tokens] + ([ref_tokens] if uses_ref else [])
    grads = torch.autograd.grad(loss, leaves)
    out = {"group_loss": _listed(losses), "logp": _listed(logp)}
    if uses_ref:
        out["ref_logp"] = _listed(ref)
    out["grad_token_logp"] = [[float(v) + 0.0 for v in row] for row in grads[0].tolist()]
    if uses_ref:
        out["grad_token_ref_logp"] = [[float(v) + 0.0 for v in row] for row in grads[1].tolist()]
    return loss, out


BATCH_METHODS = {"kto": kto_batch, "bco_unpaired": bco_batch, "aot": aot_batch, "gamma_po": gamma_po_batch,
                 "wpo": wpo_batch, "ld_dpo": ld_dpo_batch}


def evaluate_batch_reference(spec, fields):
    """(loss, {output name: values}) of one batch of the batch method `spec`, in float64, gradients by autograd."""
    name, params = parse_batch_spec(spec)
    loss, outputs = BATCH_METHODS[name](params, fields)
    return float(loss) + 0.0, outputs


# The batch cases: each method at its defaults and at other parameters (AOT also unpaired; WPO also over groups).
BATCH_CASES = [
    ("aot_default", "aot(beta=0.1, epsilon=0.0, unpaired=false)"),
    ("aot_alt", "aot(beta=0.5, epsilon=0.2, unpaired=false)"),
    ("aot_unpaired", "aot(beta=0.25, epsilon=0.1, unpaired=true)"),
    ("bco_unpaired_default", "bco_unpaired(beta=0.1)"),
    ("bco_unpaired_alt", "bco_unpaired(beta=0.5)"),
    ("gamma_po_default", "gamma_po(beta=0.1, gamma_beta_ratio=0.5, simpo=false, tau=10.0, iterations=20, step=0.0, "
                         "epsilon=1e-10)"),
    ("gamma_po_simpo", "gamma_po(beta=2.5, gamma_beta_ratio=0.3, simpo=true, tau=3.0, iterations=8, step=0.25, "
                       "epsilon=0.0)"),
    ("kto_default", "kto(beta=0.1, lambda_desirable=1.0, lambda_undesirable=1.0)"),
    ("kto_alt", "kto(beta=0.5, lambda_desirable=1.25, lambda_undesirable=0.75)"),
    ("ld_dpo_default", "ld_dpo(alpha=0.5, loss=dpo(beta=0.1))"),
    ("ld_dpo_alt", "ld_dpo(alpha=0.0, loss=cdpo(beta=0.3, epsilon=0.25))"),
    ("wpo_default", "wpo(loss=dpo(beta=0.1))"),
    ("wpo_alt", "wpo(loss=ipo(tau=0.5))"),
    ("wpo_groups", "wpo(loss=rpo_sqloo(beta=0.1, eta=2.0))"),
]
BATCHES_PER_CASE = 4   # batch 3 of every case is the extreme one


def _r6(values):
    return [round(v, 6) for v in values]


def _labels(rng, n):
    """n labels with both kinds present."""
    labels = [rng.randint(0, 1) for _ in range(n)]
    labels[0], labels[-1] = 1, 0
    return labels


def _responses(rng, n, extreme, spread=3.0):
    """n log-probs in [-300, -1] and reference log-probs logp + N(0, spread) kept negative; extreme: log-ratios of
    +-(200 to 800), so that beta times them saturates every sigmoid."""
    logp = [_negative(rng, 1.0, 300.0) for _ in range(n)]
    if extreme:
        ref = [v - rng.choice((-1, 1)) * rng.uniform(200.0, 800.0) for v in logp]
    else:
        ref = [_reference_of(rng, v) if spread == 3.0 else v + rng.gauss(0.0, spread) for v in logp]
    return _r6(logp), _r6(ref)


def _draw_batch(rng, name, params, index):
    """The input fields of batch `index` of a case (index 3: extreme inputs)."""
    extreme = index == BATCHES_PER_CASE - 1
    if name in ("kto", "bco_unpaired"):
        n = rng.randint(3, 9)
        logp, ref = _responses(rng, n, extreme)
        fields = {"logp": logp, "ref_logp": ref, "desirable": _labels(rng, n)}
        if name == "kto":
            if index % 2 == 0:
                fields["z0"] = 0.0 if index == 0 else round(rng.uniform(0.0, 3.0), 6)
            else:   # the reference point from mismatched pairs; batch 1 has a negative mean (z0 clamped to 0)
                kl_logp, kl_ref = _responses(rng, n, False)
                shift = -4.0 if index == 1 else 2.0
                fields["kl_logp"], fields["kl_ref_logp"] = kl_logp, _r6([v - shift for v in kl_logp])
                fields["kl_ref_logp"] = _r6([r + rng.gauss(0.0, 0.5) for r in fields["kl_ref_logp"]])
        else:
            if index != 0:
                fields["delta"] = round(rng.gauss(0.0, 1.0), 6)
            if index >= 2:
                weight = [round(rng.uniform(0.0, 2.0), 6) for _ in range(n)]
                weight[1] = 0.0
                fields["weight"] = weight
        return fields
    if name in ("aot", "gamma_po"):
        b = rng.randint(3, 8)
        logp, ref = _responses(rng, 2 * b, extreme)
        fields = {"logp": logp}
        if name == "gamma_po" and params["simpo"] == "true":
            fields["length"] = [rng.randint(1, 400) for _ in range(2 * b)]
            if extreme:   # gaps of +-(20 to 60) per token and beta: saturated
                fields["length"] = [1] * (2 * b)
                fields["logp"] = _r6([-rng.uniform(0.0, 1.0) if i % 2 == (k % 2) else -rng.uniform(20.0, 60.0)
                                      for k in range(b) for i in range(2)])
        else:
            fields["ref_logp"] = ref
        if name == "gamma_po" and index == 1:   # margins given
            fields["margins"] = [round(rng.uniform(0.0, 0.2), 6) for _ in range(b)]
        return fields
    if name == "wpo":
        desc = parse_spec(params["loss"])
        if desc["sampling"] == "pair":
            b = rng.randint(3, 8)
            sizes = [2] * b
        else:
            sizes = [rng.randint(2, 5) for _ in range(rng.randint(3, 5))]
        n = sum(sizes)
        logp, ref = _responses(rng, n, extreme and desc["sampling"] == "pair", spread=3.0)
        if extreme and desc["sampling"] != "pair":   # large but finite log-ratio spreads in every group
            ref = _r6([v - rng.uniform(-40.0, 40.0) for v in logp])
        fields = {"logp": logp}
        if "ref_logp" in desc["inputs"]:
            fields["ref_logp"] = ref
        if "reward" in desc["inputs"]:
            fields["reward"] = _r6([rng.gauss(0.0, 2.0) for _ in range(n)])
        if desc["sampling"] != "pair":
            offsets = [0]
            for size in sizes:
                offsets.append(offsets[-1] + size)
            fields["offsets"] = offsets
        weights = [round(rng.uniform(0.0, 3.0), 6) for _ in sizes]
        weights[0] = 0.0
        if extreme:
            weights[-1] = 50.0
        fields["group_weights"] = weights
        return fields
    # ld_dpo: S = 2B rows of T positions; a response is a run of mask ones after masked prompt positions, and the
    # masked positions hold values the method must not read.
    b, t = rng.randint(2, 4), rng.randint(6, 12)
    tokens, ref_tokens, mask = [], [], []
    for s in range(2 * b):
        start = rng.randint(0, 3)
        length = rng.randint(1, t - start)
        if extreme and s % 2 == 1:
            length = 1   # one token against a long response
        row_mask = [1 if start <= k < start + length else 0 for k in range(t)]
        scale = 60.0 if extreme else 5.0
        row = [-rng.uniform(0.0, scale) for _ in range(t)]
        ref_row = [v + rng.gauss(0.0, 3.0 if not extreme else 30.0) for v in row]
        tokens.append(_r6(row))
        ref_tokens.append(_r6(ref_row))
        mask.append(row_mask)
    fields = {"token_logp": tokens}
    if "ref_logp" in parse_spec(params["loss"])["inputs"]:
        fields["token_ref_logp"] = ref_tokens
    if index != 0:
        fields["mask"] = mask
    # batch 0 has no mask: every position is a response token
    return fields


def batch_golden_lines(case, spec):
    """The JSON lines of one batch case, from a seed that depends only on the case name."""
    name, params = parse_batch_spec(spec)
    rng = random.Random(f"{SEED}:batch:{case}")
    lines = []
    for index in range(BATCHES_PER_CASE):
        fields = _draw_batch(rng, name, params, index)
        loss, outputs = evaluate_batch_reference(spec, fields)
        if not math.isfinite(loss):
            raise ValueError(f"{case}: batch {index} has a non-finite loss")
        lines.append(json.dumps({**fields, "loss": loss, **outputs}, separators=(", ", ": ")))
    return lines


def write_batch_golden(out):
    folder = out / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    names = {case for case, _ in BATCH_CASES}
    for stale in sorted(folder.glob("*.jsonl")):
        if stale.stem not in names:
            stale.unlink()
    for case, spec in BATCH_CASES:
        (folder / f"{case}.jsonl").write_text("\n".join(batch_golden_lines(case, spec)) + "\n", encoding="utf-8")
    (out / "batch_cases.tsv").write_text("".join(f"{case}\t{spec}\n" for case, spec in sorted(BATCH_CASES)),
                                         encoding="utf-8")
    return len(BATCH_CASES)


def main(argv=None):
    default_out = Path(__file__).resolve().parents[2] / "tests" / "data" / "golden"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out, help=f"output folder (default {default_out})")
    args = parser.parse_args(argv)
    count = write_golden(args.out)
    batch_count = write_batch_golden(args.out)
    print(f"wrote {count} cases and {batch_count} batch cases to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
