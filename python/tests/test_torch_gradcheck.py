"""rpo.torch.loss under torch.autograd.gradcheck (float64): the library's analytic gradients against finite
differences, w.r.t. logp and ref_logp, for every registered preset at its defaults and every valid composition of
the general form, with each reduction, with and without offsets.

Run by CTest as python:torch_gradcheck; by hand, from python/tests:
    PYTHONPATH=<build>/python /usr/bin/python3 -m unittest -v test_torch_gradcheck.py
"""
import unittest

import numpy as np
import torch

import rpo
import rpo.torch
import support

PAIRS = 3
REDUCTIONS = (("mean", None), ("sum", None), ("sum_over", 7))


def tensors(batch):
    return {k: torch.from_numpy(v) for k, v in batch.items()}


class TestGradcheck(unittest.TestCase):
    def check(self, spec, rng):
        loss = rpo.Loss(spec)
        batch = tensors(support.random_batch(loss, PAIRS, rng))
        # ref_logp is an input of every check, read or not: where the loss does not read it, its gradient is 0.
        logp = batch.pop("logp").requires_grad_(True)
        ref_logp = batch.pop("ref_logp", torch.from_numpy(-rng.uniform(5.0, 60.0, 2 * PAIRS))).requires_grad_(True)
        for offsets in (None, torch.from_numpy(support.pair_offsets(PAIRS))):
            for reduction, count in REDUCTIONS:
                with self.subTest(spec=spec, reduction=reduction, offsets=offsets is not None):
                    def f(lp, ref):
                        return rpo.torch.loss(spec, lp, ref, offsets=offsets, reduction=reduction, count=count,
                                              **batch)
                    self.assertTrue(torch.autograd.gradcheck(f, (logp, ref_logp), eps=1e-6, atol=1e-8, rtol=1e-6))

    def test_presets(self):
        rng = np.random.default_rng(11)
        presets = support.presets()
        self.assertGreaterEqual(len(presets), 10)
        for info in presets:
            self.check(info["name"], rng)

    def test_general_form(self):
        rng = np.random.default_rng(12)
        for spec in support.general_specs():
            self.check(spec, rng)

    def test_only_logp_requires_grad(self):
        loss = rpo.Loss("rpo_bwd")
        batch = tensors(support.random_batch(loss, PAIRS, np.random.default_rng(13)))
        logp = batch.pop("logp").requires_grad_(True)
        self.assertTrue(torch.autograd.gradcheck(lambda lp: rpo.torch.loss(loss, lp, **batch), (logp,)))
        self.assertIsNone(batch["ref_logp"].grad)


if __name__ == "__main__":
    unittest.main()
