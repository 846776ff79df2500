"""rpo's numpy API: rpo.Loss, rpo.Result, rpo.losses, rpo.__version__ (no torch needed).

Run by CTest as python:module; by hand, from python/tests:
    PYTHONPATH=<build>/python /usr/bin/python3 -m unittest -v test_module.py
"""
import concurrent.futures
import pickle
import re
import subprocess
import sys
import unittest

import numpy as np

import rpo
import support

# docs/batch.md's example: three (chosen, rejected) pairs under dpo(beta=0.2).
LOGP = np.array([-12.0, -20.0, -30.0, -28.0, -7.0, -9.0])
REF_LOGP = np.array([-13.5, -19.0, -31.0, -27.0, -8.0, -8.5])


class TestPackage(unittest.TestCase):
    def test_version_matches_config_hpp(self):
        self.assertRegex(rpo.__version__, r"^\d+\.\d+\.\d+$")

    def test_no_torch_import(self):
        # numpy-only users must not need torch: importing rpo and using it does not import torch.
        code = ("import sys, rpo; rpo.Loss('dpo').value_and_grad([-1.0, -2.0], [-1.0, -1.0]); "
                "sys.exit('torch' in sys.modules)")
        self.assertEqual(subprocess.run([sys.executable, "-c", code]).returncode, 0)

    def test_docstring_examples(self):
        import doctest
        self.assertEqual(doctest.testmod(rpo, verbose=False).failed, 0)

    def test_losses(self):
        infos = rpo.losses()
        names = [info["name"] for info in infos]
        self.assertEqual(names[-1], "rpo")
        self.assertEqual(len(names), len(set(names)))
        for name in ("dpo", "cdpo", "ipo", "ipo_normalized", "simpo", "hinge", "dpo_normalized", "rpo_sq", "rpo_fwd",
                     "rpo_bwd"):
            self.assertIn(name, names)
        for info in infos:
            self.assertEqual(set(info), {"name", "summary", "composition", "parameters"})
            self.assertTrue(info["summary"] and info["composition"])
            for parameter in info["parameters"]:
                self.assertEqual(set(parameter), {"name", "default", "description"})
                self.assertTrue(all(isinstance(v, str) for v in parameter.values()))
        dpo = infos[names.index("dpo")]
        self.assertEqual(dpo["parameters"], [{"name": "beta", "default": "0.1", "description": "beta > 0"}])

    def test_every_preset_parses_at_its_defaults(self):
        for info in support.presets():
            with self.subTest(info["name"]):
                loss = rpo.Loss(info["name"])
                defaults = ", ".join(f"{p['name']}={p['default']}" for p in info["parameters"])
                self.assertEqual(loss.spec, f"{info['name']}({defaults})")
                self.assertEqual(rpo.Loss(loss.spec).spec, loss.spec)
                self.assertTrue(info["composition"].startswith(loss.composition))


class TestLoss(unittest.TestCase):
    def test_properties(self):
        loss = rpo.Loss(" dpo( beta = 0.2 ) ")
        self.assertEqual(loss.name, "dpo")
        self.assertEqual(loss.spec, "dpo(beta=0.2)")
        self.assertEqual(loss.composition,
                         "distance::bernoulli_bwd_kl, reward::implicit, target::hard_label, sampling::pair")
        self.assertEqual(loss.inputs, ("logp", "ref_logp"))
        self.assertEqual(loss.group_size, 2)
        self.assertEqual(loss.min_group_size, 2)
        self.assertEqual(repr(loss), "rpo.Loss('dpo(beta=0.2)')")
        with self.assertRaises(AttributeError):
            loss.name = "ipo"

    def test_inputs(self):
        self.assertEqual(rpo.Loss("simpo").inputs, ("logp", "length"))
        self.assertEqual(rpo.Loss("rpo_sq").inputs, ("logp", "ref_logp", "reward"))
        self.assertEqual(rpo.Loss("rpo(distance=sq, reward=implicit_norm)").inputs,
                         ("logp", "ref_logp", "length", "reward"))
        self.assertEqual(rpo.Loss("rpo(distance=hinge, reward=ref_free, target=hard)").inputs, ("logp",))

    def test_general_compositions(self):
        # Exactly the valid compositions parse; the others raise a ValueError that says why.
        specs = support.general_specs()
        self.assertEqual(len(specs), 60)
        for spec in specs:
            with self.subTest(spec):
                loss = rpo.Loss(spec)
                self.assertEqual(loss.name, "rpo")
                self.assertEqual(rpo.Loss(loss.spec).spec, loss.spec)
        for distance in support.DISTANCES:
            for target in support.TARGETS:
                if not support.valid_composition(distance, target):
                    with self.subTest(distance=distance, target=target):
                        with self.assertRaisesRegex(ValueError, "distance="):
                            rpo.Loss(f"rpo(distance={distance}, reward=implicit, target={target})")

    def test_pickle(self):
        loss = rpo.Loss("cdpo(beta=0.3, epsilon=0.2)")
        copy = pickle.loads(pickle.dumps(loss))
        self.assertEqual(copy.spec, loss.spec)
        r1 = loss.value_and_grad(LOGP, REF_LOGP)
        r2 = copy.value_and_grad(LOGP, REF_LOGP)
        self.assertEqual(r1.loss, r2.loss)


class TestValueAndGrad(unittest.TestCase):
    def test_docs_example(self):
        r = rpo.Loss("dpo(beta=0.2)").value_and_grad(LOGP, REF_LOGP)
        self.assertIsInstance(r.loss, float)
        self.assertAlmostEqual(r.loss, 0.513815827016, places=11)
        np.testing.assert_allclose(r.group_loss, [0.474076984, 0.513015252, 0.554355244], atol=1e-9)
        np.testing.assert_allclose(r.grad_logp[:2], [-0.025169378, 0.025169378], atol=1e-9)
        np.testing.assert_allclose(r.grad_ref_logp, -r.grad_logp, rtol=1e-15)
        for a in (r.group_loss, r.grad_logp, r.grad_ref_logp):
            self.assertIsInstance(a, np.ndarray)
            self.assertEqual(a.dtype, np.float64)
        self.assertEqual(r.group_loss.shape, (3,))
        self.assertEqual(r.grad_logp.shape, (6,))
        self.assertIn("loss=0.5138", repr(r))

    def test_reductions(self):
        loss = rpo.Loss("rpo_bwd")
        batch = support.random_batch(loss, 5, np.random.default_rng(1))
        mean = loss.value_and_grad(**batch)
        total = loss.value_and_grad(**batch, reduction="sum")
        part = loss.value_and_grad(**batch, reduction="sum_over", count=8)
        np.testing.assert_array_equal(mean.group_loss, total.group_loss)
        np.testing.assert_array_equal(mean.group_loss, part.group_loss)
        self.assertAlmostEqual(total.loss, mean.group_loss.sum(), delta=1e-14 * abs(total.loss))
        self.assertAlmostEqual(mean.loss, total.loss / 5, delta=1e-14 * abs(mean.loss))
        self.assertAlmostEqual(part.loss, total.loss / 8, delta=1e-14 * abs(part.loss))
        for name in ("grad_logp", "grad_ref_logp"):
            np.testing.assert_allclose(getattr(mean, name), getattr(total, name) / 5, rtol=1e-14)
            np.testing.assert_allclose(getattr(part, name), getattr(total, name) / 8, rtol=1e-14)
        # integer counts and float counts alike
        self.assertEqual(loss.value_and_grad(**batch, reduction="sum_over", count=8.0).loss, part.loss)

    def test_micro_batches_add_up(self):
        loss = rpo.Loss("dpo(beta=0.2)")
        whole = loss.value_and_grad(LOGP, REF_LOGP)
        a = loss.value_and_grad(LOGP[:2], REF_LOGP[:2], reduction="sum_over", count=3)
        b = loss.value_and_grad(LOGP[2:], REF_LOGP[2:], reduction="sum_over", count=3)
        self.assertAlmostEqual(a.loss + b.loss, whole.loss, delta=1e-15)
        np.testing.assert_allclose(np.concatenate([a.grad_logp, b.grad_logp]), whole.grad_logp, rtol=1e-14)

    def test_offsets(self):
        loss = rpo.Loss("rpo_sq(beta=0.2, eta=0.5)")
        batch = support.random_batch(loss, 4, np.random.default_rng(2))
        plain = loss.value_and_grad(**batch)
        for offsets in (support.pair_offsets(4), [0, 2, 4, 6, 8], np.array([0, 2, 4, 6, 8], dtype=np.int32),
                        np.array([0, 2, 4, 6, 8], dtype=np.uint16)):
            with self.subTest(offsets=offsets):
                r = loss.value_and_grad(**batch, offsets=offsets)
                self.assertEqual(r.loss, plain.loss)
                np.testing.assert_array_equal(r.grad_logp, plain.grad_logp)
                np.testing.assert_array_equal(r.group_loss, plain.group_loss)

    def test_empty_batch(self):
        loss = rpo.Loss("dpo")
        r = loss.value_and_grad(np.array([]), np.array([]), reduction="sum")
        self.assertEqual(r.loss, 0.0)
        self.assertEqual(r.group_loss.shape, (0,))
        self.assertEqual(r.grad_logp.shape, (0,))
        self.assertEqual(loss.value_and_grad([], [], offsets=[0], reduction="sum_over", count=4).loss, 0.0)
        with self.assertRaisesRegex(ValueError, "the batch is empty"):
            loss.value_and_grad([], [])

    def test_conversions(self):
        loss = rpo.Loss("dpo(beta=0.2)")
        want = loss.value_and_grad(LOGP, REF_LOGP)
        # lists, integer arrays and non-contiguous views are converted; the result is the same
        self.assertEqual(loss.value_and_grad(list(LOGP), tuple(REF_LOGP)).loss, want.loss)
        self.assertEqual(loss.value_and_grad(LOGP.astype(np.int64), REF_LOGP).loss,
                         loss.value_and_grad(LOGP.astype(np.int64).astype(np.float64), REF_LOGP).loss)
        strided = np.empty(12)
        strided[::2] = LOGP
        strided[1::2] = np.nan
        r = loss.value_and_grad(strided[::2], REF_LOGP[::-1][::-1])
        self.assertEqual(r.loss, want.loss)
        np.testing.assert_array_equal(r.grad_logp, want.grad_logp)
        fortran = np.asfortranarray(np.stack([LOGP, REF_LOGP], axis=1))
        self.assertEqual(loss.value_and_grad(fortran[:, 0], fortran[:, 1]).loss, want.loss)
        # inputs are not modified
        logp, ref_logp = LOGP.copy(), REF_LOGP.copy()
        loss.value_and_grad(logp, ref_logp)
        np.testing.assert_array_equal(logp, LOGP)
        np.testing.assert_array_equal(ref_logp, REF_LOGP)

    def test_fields_the_loss_does_not_read(self):
        loss = rpo.Loss("simpo")
        rng = np.random.default_rng(3)
        batch = support.random_batch(loss, 3, rng, all_fields=True)
        r = loss.value_and_grad(**batch)
        np.testing.assert_array_equal(r.grad_ref_logp, np.zeros(6))
        # unread fields are not looked at, whatever their size
        self.assertEqual(loss.value_and_grad(batch["logp"], length=batch["length"], reward=[1.0]).loss, r.loss)

    def test_float32(self):
        rng = np.random.default_rng(4)
        for spec in [info["name"] for info in support.presets()] + support.general_specs()[::7]:
            loss = rpo.Loss(spec)
            with self.subTest(spec):
                batch = support.random_batch(loss, 4, rng)
                # logp float32 picks float32; the other fields are converted to it
                batch32 = {k: (v.astype(np.float32) if k == "logp" else v) for k, v in batch.items()}
                r32 = loss.value_and_grad(**batch32)
                r64 = loss.value_and_grad(**{k: v.astype(np.float32).astype(np.float64) for k, v in batch.items()})
                for name in ("group_loss", "grad_logp", "grad_ref_logp"):
                    self.assertEqual(getattr(r32, name).dtype, np.float32)
                    np.testing.assert_allclose(getattr(r32, name), getattr(r64, name), rtol=2e-4,
                                               atol=2e-5 * (1 + np.abs(getattr(r64, name)).max()))
                self.assertIsInstance(r32.loss, float)
                self.assertAlmostEqual(r32.loss, r64.loss, delta=2e-5 * (1 + abs(r64.loss)))
                # other dtypes of logp are computed in float64
                r16 = loss.value_and_grad(**{k: (v.astype(np.float16) if k == "logp" else v)
                                             for k, v in batch.items()})
                self.assertEqual(r16.grad_logp.dtype, np.float64)

    def test_threads(self):
        # The GIL is released while evaluating: threads get the same numbers as one thread.
        loss = rpo.Loss("rpo_fwd")
        batch = support.random_batch(loss, 20000, np.random.default_rng(5))
        want = loss.value_and_grad(**batch)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: loss.value_and_grad(**batch), range(8)))
        for r in results:
            self.assertEqual(r.loss, want.loss)
            np.testing.assert_array_equal(r.grad_logp, want.grad_logp)


class TestErrors(unittest.TestCase):
    def test_bad_spec_lists_the_names(self):
        for spec in ("dpx", "dpx(beta=0.1)"):
            with self.assertRaises(ValueError) as caught:
                rpo.Loss(spec)
            message = str(caught.exception)
            self.assertIn('"dpx"', message)
            for info in rpo.losses():
                self.assertIn(info["name"], message)

    def test_bad_spec_parameters(self):
        with self.assertRaisesRegex(ValueError, "beta must be finite and > 0"):
            rpo.Loss("dpo(beta=-1)")
        with self.assertRaisesRegex(ValueError, 'dpo has no parameter "tau"'):
            rpo.Loss("dpo(tau=1)")
        with self.assertRaisesRegex(ValueError, "expected"):
            rpo.Loss("dpo(beta=")
        with self.assertRaisesRegex(ValueError, "reward must be given"):
            rpo.Loss("rpo(distance=sq)")
        with self.assertRaises(TypeError):
            rpo.Loss(3)

    def test_missing_field(self):
        loss = rpo.Loss("rpo_sq")
        batch = support.random_batch(loss, 2, np.random.default_rng(6))
        del batch["reward"]
        with self.assertRaisesRegex(ValueError, r"rpo_sq: reward is read by this loss but was not given"):
            loss.value_and_grad(**batch)
        with self.assertRaisesRegex(ValueError, "ref_logp is read"):
            rpo.Loss("dpo").value_and_grad(LOGP)
        with self.assertRaisesRegex(ValueError, "logp must be given"):
            loss.value_and_grad(None)

    def test_non_finite_values(self):
        logp = LOGP.copy()
        logp[3] = np.nan
        with self.assertRaisesRegex(ValueError, re.escape("logp[3] must be finite, but got logp[3] = nan")):
            rpo.Loss("dpo").value_and_grad(logp, REF_LOGP)
        ref_logp = REF_LOGP.copy()
        ref_logp[4] = -np.inf
        with self.assertRaisesRegex(ValueError, re.escape("ref_logp[4]")):
            rpo.Loss("dpo").value_and_grad(LOGP, ref_logp)
        with self.assertRaisesRegex(ValueError, re.escape("length[1]")):
            rpo.Loss("simpo").value_and_grad(LOGP, length=[10.0, 0.0, 5, 5, 5, 5])
        # float32 too
        with self.assertRaisesRegex(ValueError, re.escape("logp[3]")):
            rpo.Loss("dpo").value_and_grad(logp.astype(np.float32), REF_LOGP)

    def test_shapes(self):
        loss = rpo.Loss("dpo")
        with self.assertRaisesRegex(ValueError, re.escape("logp must be 1-D, but has shape (3, 2)")):
            loss.value_and_grad(LOGP.reshape(3, 2), REF_LOGP)
        with self.assertRaisesRegex(ValueError, re.escape("ref_logp must be 1-D, but has shape (3, 2)")):
            loss.value_and_grad(LOGP, REF_LOGP.reshape(3, 2))
        with self.assertRaisesRegex(ValueError, re.escape("logp must be 1-D, but has shape ()")):
            loss.value_and_grad(1.0, 2.0)
        with self.assertRaisesRegex(ValueError, "ref_logp has 4 entries but logp has 6"):
            loss.value_and_grad(LOGP, REF_LOGP[:4])
        with self.assertRaisesRegex(ValueError, "not a multiple of the group size 2"):
            loss.value_and_grad(LOGP[:5], REF_LOGP[:5])
        with self.assertRaisesRegex(ValueError, "logp must hold real numbers"):
            loss.value_and_grad(["a", "b"], ["c", "d"])
        with self.assertRaisesRegex(ValueError, "logp must hold real numbers"):
            loss.value_and_grad(LOGP.astype(complex), REF_LOGP)
        with self.assertRaisesRegex(ValueError, "logp must be array-like .*inhomogeneous"):
            loss.value_and_grad([[1.0, 2.0], [3.0]], REF_LOGP)

    def test_offsets(self):
        loss = rpo.Loss("dpo")
        with self.assertRaisesRegex(ValueError, re.escape("offsets[0] must be 0, but got offsets[0] = 1")):
            loss.value_and_grad(LOGP, REF_LOGP, offsets=[1, 3, 5])
        with self.assertRaisesRegex(ValueError, "offsets must end at the number of responses 6"):
            loss.value_and_grad(LOGP, REF_LOGP, offsets=[0, 2, 4])
        with self.assertRaisesRegex(ValueError, re.escape("group 1 (offsets[1] to offsets[2]) has 3 responses")):
            loss.value_and_grad(LOGP, REF_LOGP, offsets=[0, 2, 5, 6])
        with self.assertRaisesRegex(ValueError, "offsets must hold integers"):
            loss.value_and_grad(LOGP, REF_LOGP, offsets=[0.0, 2.0, 4.0, 6.0])
        with self.assertRaisesRegex(ValueError, re.escape("offsets must be 1-D, but has shape (1, 4)")):
            loss.value_and_grad(LOGP, REF_LOGP, offsets=[[0, 2, 4, 6]])
        with self.assertRaisesRegex(ValueError, "offsets must have G \\+ 1 >= 1 entries"):
            loss.value_and_grad(LOGP, REF_LOGP, offsets=[])

    def test_reduction_arguments(self):
        loss = rpo.Loss("dpo")
        with self.assertRaisesRegex(ValueError, 'reduction must be "mean", "sum" or "sum_over", but got "max"'):
            loss.value_and_grad(LOGP, REF_LOGP, reduction="max")
        with self.assertRaisesRegex(ValueError, "needs count"):
            loss.value_and_grad(LOGP, REF_LOGP, reduction="sum_over")
        with self.assertRaisesRegex(ValueError, "count is used only with"):
            loss.value_and_grad(LOGP, REF_LOGP, reduction="sum", count=3)
        for count in (0, -1, float("nan"), float("inf")):
            with self.subTest(count=count), self.assertRaisesRegex(ValueError, "count must be finite and > 0"):
                loss.value_and_grad(LOGP, REF_LOGP, reduction="sum_over", count=count)
        with self.assertRaisesRegex(ValueError, "count must be a number"):
            loss.value_and_grad(LOGP, REF_LOGP, reduction="sum_over", count="3")


if __name__ == "__main__":
    unittest.main()
