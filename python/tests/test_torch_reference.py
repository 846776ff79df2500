"""rpo against the independent PyTorch reference tests/reference/torch_reference.py (float64): the loss, the
per-group losses and the autograd gradients w.r.t. logp and ref_logp, to 1e-12 relative to the largest entry, for
every registered preset (at its defaults and at other parameters; the pairwise ones and the 7 that take groups of any
size) and every valid composition of the general form (every sampling scheme: pair, loo, all_pairs, best_worst,
softmax, plackett_luce), at random points, under each reduction. Pairs are consecutive (and also given by offsets);
groups are ragged, K = 2 to 6, given by offsets, with distinct rewards and policy scores spread by at most about 12
within a group. Both the numpy path (rpo.Loss.value_and_grad) and the torch path (rpo.torch.loss) are compared with
the reference's group_loss.

Run by CTest as python:torch_reference, with tests/reference on PYTHONPATH; by hand, from python/tests:
    PYTHONPATH=<build>/python:../../tests/reference /usr/bin/python3 -m unittest -v test_torch_reference.py
"""
import unittest

import numpy as np
import torch

import rpo
import rpo.torch
import support

try:
    import torch_reference
except ModuleNotFoundError as error:
    if error.name != "torch_reference":
        raise
    torch_reference = None

RTOL = 1e-12
GROUPS = 6
COUNT = 10  # the count of reduction="sum_over"

# Non-default parameters of each preset, as far as rpo.losses() names them: a multiple of the default, or for
# parameters whose default is 0 or that have a bounded range, a fixed value.
OTHER_VALUES = {"epsilon": "0.3", "gamma": "0.75", "eta": "2.5"}
# The same for a parameter whose range depends on the preset (both bounded by 1).
OTHER_PRESET_VALUES = {("fdpo_alpha", "alpha"): "0.25", ("dpo_shift", "lambda"): "0.75", ("madpo", "c_min"): "0.25"}


def other_spec(info):
    values = []
    for p in info["parameters"]:
        value = OTHER_PRESET_VALUES.get((info["name"], p["name"]),
                                        OTHER_VALUES.get(p["name"], repr(float(p["default"]) * 2.5)))
        values.append(f"{p['name']}={value}")
    return f"{info['name']}({', '.join(values)})"


def specs():
    out = []
    for info in support.presets():
        out += [info["name"], other_spec(info)]
    return out + support.general_specs()


def assert_close(test, got, want, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    # Relative to the largest entry of the vector, not entry by entry: the reference differentiates the Bernoulli KL
    # by autograd, accurate in absolute terms only (its docstring), so a tiny entry carries a large relative error
    # there (rpo's analytic one does not: it matches 50-digit mpmath to ~1e-15 entry by entry).
    scale = max(np.abs(want).max(initial=0.0), 1e-300)
    error = np.abs(got - want).max(initial=0.0) / scale
    test.assertLessEqual(error, RTOL, f"{what}: max relative error {error:.3g}\n got  {got}\n want {want}")


@unittest.skipIf(torch_reference is None,
                 "tests/reference/torch_reference.py is missing (the independent PyTorch reference); "
                 "these tests compare against it once it exists")
class TestAgainstReference(unittest.TestCase):
    def reference(self, spec, batch, reduction):
        """The reference's loss, its per-group losses and its autograd gradients (zeros for a field the loss does
        not read), from torch_reference.group_loss; `batch` holds the fields the loss reads, and offsets (optional
        for pairs)."""
        fields = {k: v for k, v in batch.items() if k != "offsets"}
        offsets = batch.get("offsets")
        offsets = None if offsets is None else [int(v) for v in offsets]
        leaves = {k: torch.tensor(v, requires_grad=k in ("logp", "ref_logp")) for k, v in fields.items()}
        ref_reduction = "sum" if reduction == "sum_over" else reduction
        value = torch_reference.group_loss(spec, **leaves, offsets=offsets, reduction=ref_reduction)
        if reduction == "sum_over":
            value = value / COUNT
        wrt = [leaves[k] for k in ("logp", "ref_logp") if k in leaves]
        grads = dict(zip([k for k in ("logp", "ref_logp") if k in leaves],
                         torch.autograd.grad(value, wrt, allow_unused=True)))
        zero = np.zeros(len(fields["logp"]))
        out = {k: (zero if grads.get(k) is None else grads[k].numpy()) for k in ("logp", "ref_logp")}
        per_group = torch_reference.group_loss(spec, **{k: torch.tensor(v) for k, v in fields.items()},
                                               offsets=offsets, reduction="none")
        return float(value), per_group.detach().numpy(), out["logp"], out["ref_logp"]

    def test_specs_cover_every_scheme(self):
        names = {spec.partition("(")[0] for spec in specs()}
        self.assertTrue(set(support.GROUP_PRESETS) <= names)
        self.assertEqual({support.spec_sampling(spec) for spec in specs() if spec.startswith("rpo(")},
                         set(support.SAMPLINGS))
        self.assertEqual(len([spec for spec in specs() if spec.startswith("rpo(")]), len(support.compositions()))

    def test_parse_spec_agrees(self):
        # the fields each loss reads, as the reference derives them from the documentation
        for spec in specs():
            with self.subTest(spec):
                self.assertEqual(tuple(rpo.Loss(spec).inputs),
                                 tuple(torch_reference.parse_spec(spec)["inputs"]))

    def test_numpy_path(self):
        rng = np.random.default_rng(21)
        for spec in specs():
            loss = rpo.Loss(spec)
            for reduction in ("mean", "sum", "sum_over"):
                with self.subTest(spec=spec, reduction=reduction):
                    # pairs: with offsets under "sum" (the reference checks them), consecutive otherwise
                    batch = support.random_batch(loss, GROUPS, rng, offsets=reduction == "sum")
                    count = COUNT if reduction == "sum_over" else None
                    got = loss.value_and_grad(**batch, reduction=reduction, count=count)
                    value, per_group, grad_logp, grad_ref_logp = self.reference(spec, batch, reduction)
                    self.assertEqual(got.group_loss.shape, (GROUPS,))
                    assert_close(self, got.loss, value, "loss")
                    assert_close(self, got.group_loss, per_group, "group_loss")
                    assert_close(self, got.grad_logp, grad_logp, "grad_logp")
                    assert_close(self, got.grad_ref_logp, grad_ref_logp, "grad_ref_logp")

    def test_torch_path(self):
        rng = np.random.default_rng(22)
        for spec in specs():
            loss = rpo.Loss(spec)
            with self.subTest(spec=spec):
                batch = support.random_batch(loss, GROUPS, rng, all_fields=True)
                leaves = {k: torch.tensor(v, requires_grad=k in ("logp", "ref_logp")) for k, v in batch.items()}
                value = rpo.torch.loss(spec, **leaves)
                value.backward()
                want = self.reference(spec, {k: v for k, v in batch.items() if k in loss.inputs + ("offsets",)},
                                      "mean")
                assert_close(self, value.item(), want[0], "loss")
                assert_close(self, leaves["logp"].grad.numpy(), want[2], "grad_logp")
                assert_close(self, leaves["ref_logp"].grad.numpy(), want[3], "grad_ref_logp")


if __name__ == "__main__":
    unittest.main()
