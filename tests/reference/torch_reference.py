#!/usr/bin/python3
"""PyTorch reference for every pairwise loss of rpo, and the golden vectors written from it.

What it is. An independent implementation, in float64 PyTorch, of each loss that a spec string such as
`dpo(beta=0.1)` or `rpo(distance=bwd_kl, reward=implicit, target=reward_gap, sampling=pair, beta=0.2, eta=1.0)`
names: the distance D(a - gamma || b), the reward model r_pi, the target b and the pair sampling scheme. Values come
from the formulas in docs/distance.md, docs/reward.md, docs/target.md, docs/sampling.md and docs/presets.md; the
gradients (d loss / d logp and d loss / d ref_logp of both responses) come from torch autograd.

The independence rule. This file is written from the documentation and reference/RPO.md, reference/LOSSES.md
only. It must never read, import or call rpo's own code (include/, the Python module), so that a mistake shared by
the library and its test cannot pass unnoticed. Keep it that way when you edit it.

Golden vectors. Run as a script, it writes tests/data/golden/<case>.jsonl and tests/data/golden/cases.tsv
(`<case>\\t<spec>` per line, sorted by case), and deletes stale *.jsonl files there. Each .jsonl file holds 24 pairs
drawn from a seed fixed by the case name, one JSON object per line:

    {"logp": [l0, l1], "ref_logp": [..], "length": [n0, n1], "reward": [..], "loss": x,
     "grad_logp": [g0, g1], "grad_ref_logp": [h0, h1]}

response 0 the chosen one, with only the input fields that the loss reads. Regenerate (the output is committed;
use Debian's python3, which has torch):

    /usr/bin/python3 tests/reference/torch_reference.py [--out DIR]

As a module it offers `parse_spec`, `loss_and_grads` (one pair) and `batch_loss` (a differentiable torch loss over
G pairs), for the Python binding tests.
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
SAMPLINGS = ("pair",)

# target.md#hard_label: only these distances have a finite b = +inf limit; distance.md#hinge: the hinge takes no b.
HARD_LABEL_DISTANCES = ("bwd_kl", "logistic", "hinge")
FINITE_TARGET_DISTANCES = ("sq", "bwd_kl", "fwd_kl", "logistic")


def composition_is_valid(distance, target):
    """Whether D composes with the target (loss.md#static-checks)."""
    if target == "hard":
        return distance in HARD_LABEL_DISTANCES
    return distance in FINITE_TARGET_DISTANCES


def _component(distance, reward, beta, target, target_value=None, gamma=0.0):
    """The description of one composition, with the input fields it reads (reward.md and target.md, "reads")."""
    target_desc = {"name": target}
    if TARGET_PARAMETER[target] is not None:
        target_desc[TARGET_PARAMETER[target][0]] = target_value
    inputs = ["logp"]
    if reward in ("implicit", "implicit_norm"):
        inputs.append("ref_logp")
    if reward in ("implicit_norm", "ref_free_norm"):
        inputs.append("length")
    if target == "reward_gap":
        inputs.append("reward")
    return {"distance": distance, "reward": {"name": reward, "beta": beta}, "target": target_desc,
            "gamma": gamma, "sampling": "pair", "inputs": tuple(inputs)}


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
}

# The rule each numeric parameter must satisfy (presets.md "Checks", reward.md, target.md).
PARAMETER_RULES = {
    "beta": ("finite and > 0", lambda v: v > 0),
    "tau": ("finite and > 0", lambda v: v > 0),
    "eta": ("finite and >= 0", lambda v: v >= 0),
    "epsilon": ("in (0, 0.5]", lambda v: 0 < v <= 0.5),
    "value": ("finite", lambda v: True),
    "gamma": ("finite", lambda v: True),
}

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


def _number(key, text):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key} must be a number, but got {key} = {text}") from None
    rule, holds = PARAMETER_RULES[key]
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
    params = {key: _number(key, arguments[key]) if key in arguments else default
              for key, default in defaults.items()}
    return {"name": name, "params": params, **compose(params)}


def _parse_general(arguments):
    """rpo(distance=D, reward=R[, target=reward_gap][, sampling=pair][, beta=][, eta= | value= | epsilon=][, gamma=])."""
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
    if not composition_is_valid(distance, target):
        raise ValueError(f"rpo: distance={distance} does not compose with target={target}")
    beta = _number("beta", arguments["beta"]) if "beta" in arguments else REWARD_DEFAULT_BETA[reward]
    gamma = _number("gamma", arguments["gamma"]) if "gamma" in arguments else 0.0
    params = {"distance": distance, "reward": reward, "target": target, "sampling": sampling, "beta": beta}
    target_value = None
    if target_key is not None:
        target_value = _number(target_key, arguments[target_key]) if target_key in arguments else target_default
        params[target_key] = target_value
    params["gamma"] = gamma
    return {"name": "rpo", "params": params,
            **_component(distance, reward, beta, target, target_value, gamma)}


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


def distance_value(distance, x, b):
    """D(x || b); b is None for the hard label b = +inf (distance.md, the table and each section)."""
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
    raise ValueError(f"unknown reward {name!r}")


def target_gap(target, reward):
    """b of each pair; None for the hard label (target.md, the table). `reward` has shape (G, 2) or is None."""
    name = target["name"]
    if name == "reward_gap":          # target.md#reward_gap: eta (r(y1) - r(y2))
        return target["eta"] * (reward[:, 0] - reward[:, 1])
    if name == "hard":                # target.md#hard_label: b = +inf, kept symbolic
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
    return a - desc["gamma"], target_gap(desc["target"], reward)


def pair_losses(desc, logp, ref_logp=None, length=None, reward=None):
    """D(a - gamma || b) of each pair, shape (G,) (sampling.md#pair, loss.md)."""
    x, b = pair_gaps(desc, logp, ref_logp, length, reward)
    return distance_value(desc["distance"], x, b)


# ------------------------------------------------------------------------------------------------------------------
# Entry points for the binding tests
# ------------------------------------------------------------------------------------------------------------------

def _as_pairs(name, values, requires_grad=False):
    """A 1-D sequence of 2G numbers (list or tensor) -> a float64 (G, 2) tensor, checked as the entry points check
    (errors.md): finite values, positive lengths. A tensor keeps its autograd graph; a list becomes a new leaf."""
    if isinstance(values, torch.Tensor):
        tensor = values.to(DTYPE)
    else:
        tensor = torch.tensor([float(v) for v in values], dtype=DTYPE, requires_grad=requires_grad)
    if tensor.dim() != 1 or tensor.numel() % 2 != 0:
        raise ValueError(f"{name} must be 1-D with an even number of entries (pairs), but has shape "
                         f"{tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor.detach()).all()):
        raise ValueError(f"{name} must be finite")
    if name == "length" and not bool((tensor.detach() > 0).all()):
        raise ValueError("length must be > 0")
    return tensor.reshape(-1, 2)


def _inputs(desc, logp, ref_logp, length, reward, requires_grad):
    """The (G, 2) tensors of the fields the loss reads; a read field that is missing raises ValueError."""
    given = {"logp": logp, "ref_logp": ref_logp, "length": length, "reward": reward}
    tensors = {}
    for field in desc["inputs"]:
        if given[field] is None:
            raise ValueError(f"{desc['name']}: this loss reads {field}, which was not given")
        tensors[field] = _as_pairs(field, given[field], requires_grad and field in ("logp", "ref_logp"))
    groups = {t.shape[0] for t in tensors.values()}
    if len(groups) != 1:
        raise ValueError(f"{desc['name']}: the fields have different numbers of entries")
    return tensors


def batch_loss(spec, logp, ref_logp=None, length=None, reward=None, reduction="mean"):
    """The loss of G pairs as a torch tensor that callers can backpropagate through.

    Inputs are 1-D sequences (lists or tensors) of 2G entries, pairs consecutive: chosen, rejected, chosen, ...
    Lists become float64 leaves with requires_grad (logp, ref_logp); tensors are used as given. reduction:
    "mean" (1/G) sum, "sum", or "none" (the G per-pair losses) (batch.md#reduction).
    """
    desc = parse_spec(spec)
    losses = pair_losses(desc, **_inputs(desc, logp, ref_logp, length, reward, requires_grad=True))
    if reduction == "mean":
        if losses.numel() == 0:
            raise ValueError("the batch is empty, and the mean over 0 groups is undefined")
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"unknown reduction {reduction!r} (expected mean, sum or none)")


def _value_and_grads(desc, tensors):
    """Loss and autograd gradients of one pair; `tensors` holds (1, 2) float64 tensors of the fields read."""
    leaves = {name: tensors[name].detach().requires_grad_(True) for name in ("logp", "ref_logp") if name in tensors}
    loss = pair_losses(desc, **{**tensors, **leaves})[0]
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    zero = torch.zeros(1, 2, dtype=DTYPE)

    def as_list(t):
        return [float(v) + 0.0 for v in t.reshape(-1)]  # + 0.0 turns -0.0 into 0.0

    return float(loss) + 0.0, as_list(grads["logp"]), as_list(grads.get("ref_logp", zero))


def loss_and_grads(spec, logp, ref_logp=None, length=None, reward=None):
    """(loss, [d/d logp0, d/d logp1], [d/d ref_logp0, d/d ref_logp1]) of one pair, in float64.

    The ref_logp gradient is 0 where the loss does not read ref_logp."""
    desc = parse_spec(spec)
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


def _general_specs():
    """[(case, spec)] of every valid distance x reward x target. Within each (distance, target), the four reward
    models alternate between gamma = 0 and a non-zero gamma, starting on the other foot for the next
    (distance, target): half of the cases get a margin, and every (distance, target) and reward model has both."""
    used = {}

    def next_value(table, key):
        values = table[key]
        used[key] = used.get(key, -1) + 1
        return values[used[key] % len(values)]

    pairs = [(d, t) for d in DISTANCES for t in TARGETS if composition_is_valid(d, t)]
    specs = []
    for group, (distance, target) in enumerate(pairs):
        for position, reward in enumerate(REWARDS):
            params = {"distance": distance, "reward": reward, "target": target, "sampling": "pair",
                      "beta": next_value(GENERAL_BETAS, reward)}
            if TARGET_PARAMETER[target] is not None:
                key = TARGET_PARAMETER[target][0]
                params[key] = next_value(GENERAL_TARGET_VALUES, key)
            with_margin = (group + position) % 2 == 1
            params["gamma"] = next_value({"gamma": GENERAL_GAMMAS}, "gamma") if with_margin else 0.0
            specs.append((f"rpo_{distance}_{reward}_{target}", _format("rpo", params)))
    return specs


def golden_cases():
    """[(case, spec)], sorted by case name: each preset at its defaults and at one other setting, and every valid
    distance x reward x target of the general form, half of them with a margin gamma."""
    cases = []
    for name, (defaults, _) in PRESETS.items():
        cases.append((f"{name}_default", _format(name, defaults)))
        cases.append((f"{name}_alt", _format(name, {**defaults, **PRESET_ALTERNATIVES[name]})))
    return sorted(cases + _general_specs())


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


def _inputs_with_gap(rng, reward, a, length):
    """logp and ref_logp of a pair whose policy gap r_pi(y0) - r_pi(y1) is a (before rounding)."""
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
    """Explicit rewards ~ N(0, 2); for every other large-gap pair, a target gap |b| in [5, 40]."""
    r1 = rng.gauss(0.0, 2.0)
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
    ref_logp = []
    for value in logp:
        ref = value + rng.gauss(0.0, 3.0)
        while ref >= 0:
            ref = value + rng.gauss(0.0, 3.0)
        ref_logp.append(ref)
    return logp, ref_logp, list(length)


def _draw_constructed(rng, desc, kind, index, b):
    """A pair with a chosen a - gamma: large (kind "large") or close to b (kind "near")."""
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
    logp, ref_logp = _inputs_with_gap(rng, desc["reward"], x + desc["gamma"], length)
    return logp, ref_logp, list(length)


def _pair_tensors(desc, fields):
    """The (1, 2) float64 tensors of the fields the loss reads."""
    return {name: torch.tensor([float(v) for v in fields[name]], dtype=DTYPE).reshape(1, 2)
            for name in desc["inputs"]}


def _record(desc, fields):
    """The JSON object of one pair: the fields the loss reads, then loss and gradients."""
    record = {field: fields[field] for field in ("logp", "ref_logp", "length", "reward") if field in desc["inputs"]}
    loss, grad_logp, grad_ref_logp = _value_and_grads(desc, _pair_tensors(desc, fields))
    record.update(loss=loss, grad_logp=grad_logp, grad_ref_logp=grad_ref_logp)
    return record


def _acceptable(desc, fields):
    """Whether a drawn pair is one the reference computes accurately and unambiguously."""
    x, b = pair_gaps(desc, **_pair_tensors(desc, fields))
    x = float(x[0])
    if abs(x) > MAX_GAP or (b is not None and abs(float(b.reshape(-1)[0])) > MAX_GAP):
        return False
    return desc["distance"] != "hinge" or abs(1.0 - x) > KINK_CLEARANCE


def draw_pair(rng, desc, kind, index):
    """The inputs of one pair of the given kind, rounded to 6 decimals (lengths are integers)."""
    while True:
        reward = _draw_rewards(rng, desc["target"], kind, index) if "reward" in desc["inputs"] else [0.0, 0.0]
        if kind in ("typical", "one_token"):
            logp, ref_logp, length = _draw_typical(rng, kind, index)
        else:
            b = None
            if desc["target"]["name"] != "hard":
                rewards = torch.tensor([reward], dtype=DTYPE)
                b = float(target_gap(desc["target"], rewards).reshape(-1)[0])
            logp, ref_logp, length = _draw_constructed(rng, desc, kind, index, b)
        fields = {"logp": [round(v, 6) for v in logp], "length": length, "reward": [round(v, 6) for v in reward]}
        if ref_logp is not None:   # None only for the reference-free rewards, which do not read it
            fields["ref_logp"] = [round(v, 6) for v in ref_logp]
        if _acceptable(desc, fields):
            return fields


def golden_lines(case, spec):
    """The JSON lines of one case, from a seed that depends only on the case name."""
    desc = parse_spec(spec)
    rng = random.Random(f"{SEED}:{case}")
    lines = []
    for index, kind in enumerate(PAIR_KINDS):
        record = _record(desc, draw_pair(rng, desc, kind, index))
        lines.append(json.dumps(record, separators=(", ", ": ")))
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


def main(argv=None):
    default_out = Path(__file__).resolve().parents[2] / "tests" / "data" / "golden"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out, help=f"output folder (default {default_out})")
    args = parser.parse_args(argv)
    count = write_golden(args.out)
    print(f"wrote {count} cases to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
