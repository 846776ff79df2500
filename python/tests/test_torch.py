"""rpo.torch.loss: the torch.autograd.Function around the library. Dtypes and devices, float32 against float64,
agreement with the numpy path, the upstream gradient, which inputs get gradients, the spec cache, and errors.

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


def leaves(batch, dtype=torch.float64, device="cpu"):
    return {k: torch.tensor(v, dtype=dtype, device=device, requires_grad=k in ("logp", "ref_logp"))
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
        for spec in [info["name"] for info in support.presets()] + support.general_specs()[::5]:
            loss = rpo.Loss(spec)
            for reduction, count in (("mean", None), ("sum", None), ("sum_over", 9)):
                with self.subTest(spec=spec, reduction=reduction):
                    batch = support.random_batch(loss, 4, rng, all_fields=True)
                    want = loss.value_and_grad(**batch, reduction=reduction, count=count)
                    t = leaves(batch)
                    value = rpo.torch.loss(spec, **t, offsets=torch.tensor(support.pair_offsets(4)),
                                           reduction=reduction, count=count)
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
        for info in support.presets():
            loss = rpo.Loss(info["name"])
            with self.subTest(info["name"]):
                batch = support.random_batch(loss, 4, rng, all_fields=True)
                t32 = leaves(batch, torch.float32)
                t64 = leaves({k: v.astype(np.float32) for k, v in batch.items()}, torch.float64)
                v32 = rpo.torch.loss(loss, **t32)
                v64 = rpo.torch.loss(loss, **t64)
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


if __name__ == "__main__":
    unittest.main()
