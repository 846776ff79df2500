"""rpo.torch.loss: the torch.autograd.Function around the library. Dtypes and devices, float32 against float64,
agreement with the numpy path, the upstream gradient, which inputs get gradients, the spec cache, and errors; for
pairs and for the multi-response losses (ragged groups given by offsets).

Run by CTest as python:torch; by hand, from python/tests:
    PYTHONPATH=<build>/python /usr/bin/python3 -m unittest -v test_torch.py
"""
import re
import unittest

import numpy as np
import torch

import rpo
import rpo.torch
import support

LOGP = [-12.0, -20.0, -30.0, -28.0, -7.0, -9.0]
REF_LOGP = [-13.5, -19.0, -31.0, -27.0, -8.0, -8.5]

# docs/sampling.md's group (RPO.md 10.5): K = 4, log-ratios l, rewards r.
GROUP = {"logp": [0.3, -0.2, 1.1, -0.7], "ref_logp": [0.0, 0.0, 0.0, 0.0], "reward": [2.0, 0.5, 3.0, -1.0]}


def leaves(batch, dtype=torch.float64, device="cpu"):
    """Tensors of a batch: logp and ref_logp leaves that require grad, offsets int64, the rest constants."""
    return {k: (torch.tensor(v, dtype=torch.int64, device=device) if k == "offsets" else
                torch.tensor(v, dtype=dtype, device=device, requires_grad=k in ("logp", "ref_logp")))
            for k, v in batch.items()}


class TestTorch(unittest.TestCase):
    def test_docstring_examples(self):
        import doctest
        self.assertEqual(doctest.testmod(rpo.torch, verbose=False).failed, 0)

    def test_docs_example(self):
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP})
        value = rpo.torch.loss("dpo(beta=0.2)", t["logp"], t["ref_logp"])
        self.assertEqual(value.shape, ())
        self.assertEqual(value.dtype, torch.float64)
        self.assertAlmostEqual(value.item(), 0.513815827016, places=11)
        value.backward()
        self.assertAlmostEqual(t["logp"].grad[0].item(), -0.025169378, places=9)
        torch.testing.assert_close(t["ref_logp"].grad, -t["logp"].grad, rtol=1e-15, atol=0)

    def test_matches_numpy_path(self):
        rng = np.random.default_rng(31)
        specs = [info["name"] for info in support.presets()] + support.general_specs()[::5]
        self.assertEqual({support.spec_sampling(s) for s in specs if s.startswith("rpo(")}, set(support.SAMPLINGS))
        for spec in specs:
            loss = rpo.Loss(spec)
            for reduction, count in (("mean", None), ("sum", None), ("sum_over", 9)):
                with self.subTest(spec=spec, reduction=reduction):
                    # pairs: the numpy path without offsets, the torch path with; groups: offsets in both
                    batch = support.random_batch(loss, 4, rng, all_fields=True)
                    want = loss.value_and_grad(**batch, reduction=reduction, count=count)
                    self.assertEqual(want.group_loss.shape, (4,))
                    t = leaves({**batch, "offsets": batch.get("offsets", support.pair_offsets(4))})
                    value = rpo.torch.loss(spec, **t, reduction=reduction, count=count)
                    value.backward()
                    self.assertEqual(value.item(), want.loss)
                    np.testing.assert_array_equal(t["logp"].grad.numpy(), want.grad_logp)
                    np.testing.assert_array_equal(t["ref_logp"].grad.numpy(), want.grad_ref_logp)
                    self.assertIsNone(t["length"].grad)
                    self.assertIsNone(t["reward"].grad)

    def test_upstream_gradient(self):
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP})
        value = rpo.torch.loss("ipo", t["logp"], t["ref_logp"])
        (3.0 * value + value ** 2).backward()
        want = rpo.Loss("ipo").value_and_grad(np.array(LOGP), np.array(REF_LOGP))
        torch.testing.assert_close(t["logp"].grad, torch.tensor(want.grad_logp) * (3.0 + 2.0 * want.loss),
                                   rtol=1e-14, atol=0)

    def test_float32(self):
        rng = np.random.default_rng(32)
        group_specs = support.general_specs(support.SAMPLINGS[1:])[3::11]
        for spec in [info["name"] for info in support.presets()] + group_specs:
            loss = rpo.Loss(spec)
            for reduction, count in (("mean", None), ("sum", None), ("sum_over", 6)):
                with self.subTest(spec=spec, reduction=reduction):
                    batch = support.random_batch(loss, 4, rng, all_fields=True)
                    t32 = leaves(batch, torch.float32)
                    t64 = leaves(support.cast(batch, np.float32), torch.float64)
                    v32 = rpo.torch.loss(loss, **t32, reduction=reduction, count=count)
                    v64 = rpo.torch.loss(loss, **t64, reduction=reduction, count=count)
                    self.check_float32(v32, v64, t32, t64)

    def check_float32(self, v32, v64, t32, t64):
        (v32 + v64).backward()
        self.assertEqual(v32.dtype, torch.float32)
        self.assertEqual(t32["logp"].grad.dtype, torch.float32)
        self.assertEqual(t32["ref_logp"].grad.dtype, torch.float32)
        torch.testing.assert_close(v32.double(), v64, rtol=1e-5, atol=1e-6)
        for name in ("logp", "ref_logp"):
            torch.testing.assert_close(t32[name].grad.double(), t64[name].grad, rtol=2e-4,
                                       atol=2e-5 * (1 + t64[name].grad.abs().max().item()))

    def test_other_dtypes(self):
        # float16 logp: computed in float64, the loss and the gradient in the inputs' own dtypes
        logp = torch.tensor(LOGP, dtype=torch.float16, requires_grad=True)
        ref_logp = torch.tensor(REF_LOGP, dtype=torch.float64, requires_grad=True)
        value = rpo.torch.loss("dpo(beta=0.2)", logp, ref_logp)
        value.backward()
        self.assertEqual(value.dtype, torch.float16)
        self.assertEqual(logp.grad.dtype, torch.float16)
        self.assertEqual(ref_logp.grad.dtype, torch.float64)
        self.assertAlmostEqual(value.item(), 0.5138, places=3)

    def test_which_inputs_get_gradients(self):
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP})
        ref_logp = t["ref_logp"].detach()
        value = rpo.torch.loss("dpo", t["logp"], ref_logp)
        value.backward()
        self.assertIsNotNone(t["logp"].grad)
        self.assertIsNone(ref_logp.grad)
        # a loss that does not read ref_logp gives it a zero gradient
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP, "length": [10.0] * 6})
        rpo.torch.loss("simpo", **t).backward()
        torch.testing.assert_close(t["ref_logp"].grad, torch.zeros(6, dtype=torch.float64))
        # nothing requires grad, or no_grad: a plain tensor
        with torch.no_grad():
            value = rpo.torch.loss("dpo", t["logp"], t["ref_logp"])
        self.assertFalse(value.requires_grad)
        self.assertFalse(rpo.torch.loss("dpo", t["logp"].detach(), t["ref_logp"].detach()).requires_grad)
        # non-tensor ref_logp is accepted as a constant
        self.assertAlmostEqual(rpo.torch.loss("dpo(beta=0.2)", t["logp"].detach(), REF_LOGP).item(), 0.513815827016,
                               places=11)

    def test_double_backward_is_refused(self):
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP})
        value = rpo.torch.loss("dpo", t["logp"], t["ref_logp"])
        (grad,) = torch.autograd.grad(value, t["logp"], create_graph=True)
        with self.assertRaises(RuntimeError):
            grad.sum().backward()

    def test_spec_cache(self):
        rpo.torch._parse.cache_clear()
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP})
        for _ in range(3):
            rpo.torch.loss("cdpo(beta=0.3)", t["logp"], t["ref_logp"])
        info = rpo.torch._parse.cache_info()
        self.assertEqual((info.misses, info.hits), (1, 2))

    def test_errors(self):
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP})
        with self.assertRaisesRegex(ValueError, "the losses are: dpo, cdpo"):
            rpo.torch.loss("dpx", t["logp"], t["ref_logp"])
        with self.assertRaisesRegex(ValueError, "reward is read by this loss but was not given"):
            rpo.torch.loss("rpo_sq", t["logp"], t["ref_logp"])
        bad = torch.tensor(LOGP, dtype=torch.float64)
        bad[2] = float("nan")
        with self.assertRaisesRegex(ValueError, re.escape("logp[2] must be finite")):
            rpo.torch.loss("dpo", bad, t["ref_logp"])
        with self.assertRaisesRegex(ValueError, re.escape("logp must be 1-D, but has shape (3, 2)")):
            rpo.torch.loss("dpo", t["logp"].reshape(3, 2), t["ref_logp"])
        with self.assertRaisesRegex(ValueError, "offsets must end at the number of responses 6"):
            rpo.torch.loss("dpo", t["logp"], t["ref_logp"], offsets=torch.tensor([0, 2, 4]))
        with self.assertRaisesRegex(ValueError, "offsets must hold integers"):
            rpo.torch.loss("dpo", t["logp"], t["ref_logp"], offsets=torch.tensor([0.0, 2.0, 4.0, 6.0]))
        with self.assertRaises(TypeError):
            rpo.torch.loss("dpo", LOGP, t["ref_logp"])
        with self.assertRaises(TypeError):
            rpo.torch.loss(3, t["logp"], t["ref_logp"])

    def test_group_errors(self):
        t = leaves(GROUP)
        for name in support.GROUP_PRESETS:
            with self.subTest(name):
                with self.assertRaisesRegex(ValueError, re.escape(f"rpo::{name}: offsets must be given: this "
                                                                  "sampling scheme takes groups of any size")):
                    rpo.torch.loss(name, **t)
                with self.assertRaisesRegex(ValueError, re.escape("group 0 (offsets[0] to offsets[1]) has 1 responses, "
                                                                  "but this sampling scheme needs at least 2")):
                    rpo.torch.loss(name, **t, offsets=torch.tensor([0, 1, 4]))
                with self.assertRaisesRegex(ValueError, "offsets must hold integers"):
                    rpo.torch.loss(name, **t, offsets=torch.tensor([0.0, 4.0]))
        tied = leaves({**GROUP, "reward": [2.0, 0.5, 3.0, 0.5]})
        with self.assertRaisesRegex(ValueError, r"rpo::listwise_dpo: group 0 \(responses 0 to 3\) is ranked by its "
                                                r"explicit rewards, but responses 1 and 3 tie"):
            rpo.torch.loss("listwise_dpo", **tied, offsets=torch.tensor([0, 4]))
        # no gradient is left behind by a call that raised; the same leaves work with a valid call
        self.assertIsNone(tied["logp"].grad)
        rpo.torch.loss("rpo_softmax_bwd", **tied, offsets=torch.tensor([0, 4])).backward()
        self.assertIsNotNone(tied["logp"].grad)

    def test_groups(self):
        # docs/sampling.md's group, in torch: the loss, its gradient, and offsets as a tensor, a list or an array.
        for offsets in (torch.tensor([0, 4]), [0, 4], np.array([0, 4], dtype=np.int32), torch.tensor([0, 4]).int()):
            with self.subTest(offsets=offsets):
                t = leaves(GROUP)
                value = rpo.torch.loss("listwise_dpo(beta=0.2)", **t, offsets=offsets)
                value.backward()
                self.assertAlmostEqual(value.item(), 2.846566817262, delta=1e-11)
                torch.testing.assert_close(t["logp"].grad, torch.tensor(
                    [-0.075246431320, 0.017877534471, -0.139774848890, 0.197143745739], dtype=torch.float64),
                    rtol=0, atol=1e-11)
                torch.testing.assert_close(t["ref_logp"].grad, -t["logp"].grad, rtol=1e-15, atol=0)
                self.assertIsNone(t["reward"].grad)
        # a ragged batch, reduced by sum_over: its gradient is the sum of its groups', each over count
        rng = np.random.default_rng(33)
        loss = rpo.Loss("rpo_softmax_fwd(beta=0.3, eta=0.5)")
        batch = support.random_batch(loss, 5, rng)
        t = leaves(batch)
        value = rpo.torch.loss(loss, **t, reduction="sum_over", count=12)
        value.backward()
        want = loss.value_and_grad(**batch, reduction="sum", count=None)
        self.assertAlmostEqual(value.item(), want.loss / 12, delta=1e-15 * abs(want.loss))
        torch.testing.assert_close(t["logp"].grad, torch.from_numpy(want.grad_logp) / 12, rtol=1e-14, atol=0)

    @unittest.skipUnless(torch.cuda.is_available(), "no CUDA device")
    def test_cuda(self):
        t = leaves({"logp": LOGP, "ref_logp": REF_LOGP}, device="cuda")
        value = rpo.torch.loss("dpo(beta=0.2)", t["logp"], t["ref_logp"], offsets=torch.tensor([0, 2, 4, 6]).cuda())
        value.backward()
        self.assertEqual(value.device.type, "cuda")
        self.assertEqual(t["logp"].grad.device.type, "cuda")
        self.assertEqual(t["ref_logp"].grad.device.type, "cuda")
        self.assertAlmostEqual(value.item(), 0.513815827016, places=11)
        self.assertAlmostEqual(t["logp"].grad[0].item(), -0.025169378, places=9)

    @unittest.skipUnless(torch.cuda.is_available(), "no CUDA device")
    def test_cuda_groups(self):
        t = leaves(GROUP, device="cuda")
        value = rpo.torch.loss("rpo_sqloo(beta=0.2, eta=1)", **t, offsets=torch.tensor([0, 4]).cuda())
        value.backward()
        self.assertEqual(value.device.type, "cuda")
        self.assertEqual(t["logp"].grad.device.type, "cuda")
        self.assertAlmostEqual(value.item(), 3.41475555555556, delta=1e-12)
        torch.testing.assert_close(t["logp"].grad.cpu(), torch.tensor(
            [-0.149333333333, 0.099555555556, -0.298666666667, 0.348444444444], dtype=torch.float64), rtol=0, atol=1e-11)


if __name__ == "__main__":
    unittest.main()
