"""rpo.torch.loss under torch.autograd.gradcheck (float64): the library's analytic gradients against finite
differences, w.r.t. logp and ref_logp, for every registered preset at its defaults (the pairwise ones and the 7 that
take groups of any size) and every valid composition of the general form (every distance x reward x target x
sampling that composes: pair, loo, all_pairs, best_worst, softmax, plackett_luce), with each reduction; pairs with
and without offsets, groups ragged (K = 2 to 6) with offsets.

Run by CTest as python:torch_gradcheck; by hand, from python/tests:
    PYTHONPATH=<build>/python /usr/bin/python3 -m unittest -v test_torch_gradcheck.py
"""
import itertools
import unittest

import numpy as np
import torch

import rpo
import rpo.torch
import support

GROUPS = 3
REDUCTIONS = (("mean", None), ("sum", None), ("sum_over", 7))


def tensors(batch):
    return {k: torch.from_numpy(v) for k, v in batch.items()}


class TestGradcheck(unittest.TestCase):
    def check(self, spec, rng):
        loss = rpo.Loss(spec)
        batch = tensors(support.random_batch(loss, GROUPS, rng))
        n = batch["logp"].shape[0]
        # ref_logp is an input of every check, read or not: where the loss does not read it, its gradient is 0.
        logp = batch.pop("logp").requires_grad_(True)
        ref_logp = batch.pop("ref_logp", torch.from_numpy(-rng.uniform(5.0, 60.0, n))).requires_grad_(True)
        if support.is_group_loss(loss):
            layouts = (batch.pop("offsets"),)    # ragged groups: offsets are required
        else:
            layouts = (None, torch.from_numpy(support.pair_offsets(GROUPS)))
        for offsets in layouts:
            for reduction, count in REDUCTIONS:
                with self.subTest(spec=spec, reduction=reduction, offsets=None if offsets is None else offsets.tolist()):
                    def f(lp, ref):
                        return rpo.torch.loss(spec, lp, ref, offsets=offsets, reduction=reduction, count=count,
                                              **batch)
                    self.assertTrue(torch.autograd.gradcheck(f, (logp, ref_logp), eps=1e-6, atol=1e-8, rtol=1e-6))

    def test_presets(self):
        rng = np.random.default_rng(11)
        presets = support.presets()
        self.assertGreaterEqual(len(presets), 17)
        self.assertTrue(set(support.GROUP_PRESETS) <= {info["name"] for info in presets})
        for info in presets:
            self.check(info["name"], rng)

    def test_general_form(self):
        rng = np.random.default_rng(12)
        specs = support.general_specs()
        # every valid composition: the enumeration agrees with what rpo.Loss accepts
        self.assertEqual(len(specs), len(support.compositions()))
        for spec in specs:
            self.check(spec, rng)

    def test_enumeration_matches_the_library(self):
        # support.valid_composition mirrors spec.hpp's rules: rpo.Loss accepts exactly those, for every reward model
        for distance, reward, target, sampling in itertools.product(support.DISTANCES, support.REWARDS,
                                                                     support.TARGETS, support.SAMPLINGS):
            spec = f"rpo(distance={distance}, reward={reward}, target={target}, sampling={sampling})"
            try:
                rpo.Loss(spec)
                valid = True
            except ValueError:
                valid = False
            self.assertEqual(valid, support.valid_composition(distance, target, sampling), spec)

    def test_only_logp_requires_grad(self):
        for spec in ("rpo_bwd", "rpo_softmax_bwd"):
            loss = rpo.Loss(spec)
            batch = tensors(support.random_batch(loss, GROUPS, np.random.default_rng(13)))
            logp = batch.pop("logp").requires_grad_(True)
            self.assertTrue(torch.autograd.gradcheck(lambda lp: rpo.torch.loss(loss, lp, **batch), (logp,)))
            self.assertIsNone(batch["ref_logp"].grad)


if __name__ == "__main__":
    unittest.main()
