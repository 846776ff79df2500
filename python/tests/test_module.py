"""rpo's numpy API: rpo.Loss, rpo.Result, rpo.losses, rpo.__version__ (no torch needed), for pairs and for the
multi-response losses (ragged groups of K >= 2 responses given by offsets).

Run by CTest as python:module; by hand, from python/tests:
    PYTHONPATH=<build>/python /usr/bin/python3 -m unittest -v test_module.py
"""
import concurrent.futures
import itertools
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

# docs/sampling.md's group (RPO.md 10.5): K = 4, beta = 0.2, eta = 1, log-ratios l, rewards r.
GROUP = {"logp": np.array([0.3, -0.2, 1.1, -0.7]), "ref_logp": np.zeros(4), "reward": np.array([2.0, 0.5, 3.0, -1.0]),
         "offsets": np.array([0, 4])}


def group_alone(batch, g):
    """Group g of a batch from support.random_batch, as a batch of its own (offsets [0, K])."""
    begin, end = batch["offsets"][g], batch["offsets"][g + 1]
    out = {k: v[begin:end] for k, v in batch.items() if k != "offsets"}
    out["offsets"] = np.array([0, end - begin])
    return out


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
                     "rpo_bwd") + support.GROUP_PRESETS:
            self.assertIn(name, names)
        # exactly the presets in support.GROUP_PRESETS take groups of any size
        self.assertEqual(sorted(info["name"] for info in support.presets() if rpo.Loss(info["name"]).group_size == 0),
                         sorted(support.GROUP_PRESETS))
        general = {p["name"]: p for p in infos[-1]["parameters"]}
        self.assertEqual(general["sampling"]["default"], "pair")
        self.assertEqual(general["sampling"]["description"].split("|"), list(support.SAMPLINGS))
        for info in infos:
            self.assertEqual(set(info), {"name", "summary", "composition", "paper", "libraries", "parameters"})
            self.assertTrue(info["summary"] and info["composition"] and info["paper"] and info["libraries"])
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

    def test_group_properties(self):
        schemes = {"rpo_sqloo": "leave_one_out", "rpo_sqpairs": "all_pairs", "rpo_softmax_bwd": "softmax",
                   "rpo_softmax_fwd": "softmax", "infonca": "softmax", "listwise_dpo": "plackett_luce",
                   "dpo_best_worst": "best_worst"}
        beside = {"nca": "extension::nca_group", "swepo": "extension::set_contrast"}  # beside the template
        self.assertEqual(set(schemes) | set(beside), set(support.GROUP_PRESETS))
        for name in support.GROUP_PRESETS:
            with self.subTest(name):
                loss = rpo.Loss(name)
                self.assertEqual(loss.group_size, 0)
                self.assertEqual(loss.min_group_size, 2)
                if name in beside:
                    self.assertTrue(loss.composition.startswith(beside[name]), loss.composition)
                else:
                    self.assertTrue(loss.composition.endswith(f"sampling::{schemes[name]}"), loss.composition)
                # every group preset reads the rewards: as a target, or to rank the group
                self.assertEqual(loss.inputs, ("logp", "ref_logp", "reward"))
        loss = rpo.Loss("rpo(distance=bwd_kl, reward=ref_free, target=hard, sampling=best_worst, gamma=0.5)")
        self.assertEqual(loss.spec, "rpo(distance=bwd_kl, reward=ref_free, target=hard, sampling=best_worst, beta=0.1, "
                                    "gamma=0.5)")
        self.assertEqual(loss.composition, "distance::bernoulli_bwd_kl, reward::reference_free, "
                                           "target::margin<target::hard_label>, sampling::best_worst")
        self.assertEqual((loss.group_size, loss.min_group_size), (0, 2))
        # no margin around a reward gap over a group: the canonical spec has no gamma
        loss = rpo.Loss("rpo(distance=sq, reward=implicit, sampling=loo)")
        self.assertEqual(loss.spec, "rpo(distance=sq, reward=implicit, target=reward_gap, sampling=loo, beta=0.1, eta=1)")
        self.assertEqual(loss.composition,
                         "distance::squared, reward::implicit, target::reward_gap, sampling::leave_one_out")

    def test_inputs(self):
        self.assertEqual(rpo.Loss("simpo").inputs, ("logp", "length"))
        self.assertEqual(rpo.Loss("rpo_sq").inputs, ("logp", "ref_logp", "reward"))
        self.assertEqual(rpo.Loss("rpo(distance=sq, reward=implicit_norm)").inputs,
                         ("logp", "ref_logp", "length", "reward"))
        self.assertEqual(rpo.Loss("rpo(distance=hinge, reward=ref_free, target=hard)").inputs, ("logp",))
        # the schemes that rank a group by reward read the rewards, whatever the target
        for sampling in ("all_pairs", "best_worst"):
            self.assertEqual(rpo.Loss(f"rpo(distance=hinge, reward=ref_free, target=hard, sampling={sampling})").inputs,
                             ("logp", "reward"))
        self.assertEqual(rpo.Loss("rpo(distance=logistic, reward=ref_free_norm, target=hard, "
                                  "sampling=plackett_luce)").inputs, ("logp", "length", "reward"))
        self.assertEqual(rpo.Loss("rpo(distance=fwd_kl, reward=ref_free, sampling=softmax)").inputs,
                         ("logp", "reward"))

    def test_general_compositions(self):
        # Exactly the valid compositions parse; the others raise a ValueError that says why.
        specs = support.general_specs()
        # 15 (distance, target) with pairs, 4 with loo, 15 with all_pairs and best_worst, 3 with softmax, 2 with
        # plackett_luce; times 4 reward models.
        self.assertEqual(len(support.general_specs(("pair",))), 60)
        self.assertEqual(len(specs), 4 * (15 + 4 + 15 + 15 + 3 + 2))
        for spec in specs:
            with self.subTest(spec):
                loss = rpo.Loss(spec)
                self.assertEqual(loss.name, "rpo")
                self.assertEqual(rpo.Loss(loss.spec).spec, loss.spec)
                sampling = support.spec_sampling(spec)
                self.assertIn(f"sampling={sampling},", loss.spec)
                self.assertEqual(loss.group_size, 2 if sampling == "pair" else 0)
                self.assertEqual(loss.min_group_size, 2)
        for distance, target, sampling in itertools.product(support.DISTANCES, support.TARGETS, support.SAMPLINGS):
            spec = f"rpo(distance={distance}, reward=implicit, target={target}, sampling={sampling})"
            with self.subTest(spec):
                if not support.valid_composition(distance, target, sampling):
                    # the message says which composition and why (spec.hpp, why_not)
                    with self.assertRaisesRegex(ValueError, re.escape(f"distance={distance}, target={target}, "
                                                                      f"sampling={sampling}: ")):
                        rpo.Loss(spec)
                    continue
                loss = rpo.Loss(spec)
                # gamma exactly where the form takes a margin
                with_gamma = spec[:-1] + ", gamma=0.5)"
                if support.takes_margin(target, sampling):
                    self.assertIn("gamma=0.5)", rpo.Loss(with_gamma).spec)
                    self.assertIn("gamma=0)", loss.spec)
                else:
                    self.assertNotIn("gamma", loss.spec)
                    with self.assertRaisesRegex(ValueError, "gamma applies only"):
                        rpo.Loss(with_gamma)
        with self.assertRaisesRegex(ValueError, "sampling = \"triples\" is not one of: pair, loo"):
            rpo.Loss("rpo(distance=sq, reward=implicit, sampling=triples)")

    def test_pickle(self):
        loss = rpo.Loss("cdpo(beta=0.3, epsilon=0.2)")
        copy = pickle.loads(pickle.dumps(loss))
        self.assertEqual(copy.spec, loss.spec)
        r1 = loss.value_and_grad(LOGP, REF_LOGP)
        r2 = copy.value_and_grad(LOGP, REF_LOGP)
        self.assertEqual(r1.loss, r2.loss)
        for spec in ("listwise_dpo(beta=0.3)", "rpo(distance=logistic, reward=ref_free, target=smoothed, "
                                               "sampling=all_pairs, gamma=0.25)"):
            loss = rpo.Loss(spec)
            copy = pickle.loads(pickle.dumps(loss))
            self.assertEqual((copy.spec, copy.group_size), (loss.spec, 0))
            self.assertEqual(copy.value_and_grad(**GROUP).loss, loss.value_and_grad(**GROUP).loss)


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
        rng = np.random.default_rng(1)
        for spec in ("rpo_bwd",) + support.GROUP_PRESETS + ("rpo(distance=hinge, reward=implicit_norm, target=hard, "
                                                            "sampling=all_pairs, gamma=0.5)",):
            loss = rpo.Loss(spec)
            with self.subTest(spec):
                batch = support.random_batch(loss, 5, rng)
                mean = loss.value_and_grad(**batch)
                total = loss.value_and_grad(**batch, reduction="sum")
                part = loss.value_and_grad(**batch, reduction="sum_over", count=8)
                self.assertEqual(mean.group_loss.shape, (5,))
                self.assertEqual(mean.grad_logp.shape, (support.response_count(batch),))
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
                batch32 = support.cast(batch, np.float32, fields=("logp",))
                r32 = loss.value_and_grad(**batch32)
                r64 = loss.value_and_grad(**support.cast(support.cast(batch, np.float32), np.float64))
                for name in ("group_loss", "grad_logp", "grad_ref_logp"):
                    self.assertEqual(getattr(r32, name).dtype, np.float32)
                    np.testing.assert_allclose(getattr(r32, name), getattr(r64, name), rtol=2e-4,
                                               atol=2e-5 * (1 + np.abs(getattr(r64, name)).max()))
                self.assertIsInstance(r32.loss, float)
                self.assertAlmostEqual(r32.loss, r64.loss, delta=2e-5 * (1 + abs(r64.loss)))
                # other dtypes of logp are computed in float64
                r16 = loss.value_and_grad(**support.cast(batch, np.float16, fields=("logp",)))
                self.assertEqual(r16.grad_logp.dtype, np.float64)

    def test_threads(self):
        # The GIL is released while evaluating: threads get the same numbers as one thread.
        for spec, groups in (("rpo_fwd", 20000), ("rpo_softmax_fwd", 5000)):
            loss = rpo.Loss(spec)
            batch = support.random_batch(loss, groups, np.random.default_rng(5))
            want = loss.value_and_grad(**batch)
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda _: loss.value_and_grad(**batch), range(8)))
            for r in results:
                self.assertEqual(r.loss, want.loss)
                np.testing.assert_array_equal(r.grad_logp, want.grad_logp)


class TestGroups(unittest.TestCase):
    """The multi-response losses: groups of K >= 2 responses, ragged, given by offsets (docs/sampling.md)."""

    def test_docs_examples(self):
        # docs/sampling.md's examples on one group of K = 4; RPO.md 3.5 and 10.5 print sqloo, sqpairs, (E10), (E10f).
        cases = {
            "rpo_sqloo(beta=0.2, eta=1)": (3.41475555555556, [-0.149333333333, 0.099555555556, -0.298666666667,
                                                               0.348444444444]),
            "rpo_sqpairs(beta=0.2, eta=1)": (5.12213333333333, None),
            "rpo(distance=bwd_kl, reward=implicit, target=hard, sampling=all_pairs, beta=0.2)": (0.600684983007, None),
            "dpo_best_worst(beta=0.2)": (0.529260449030, [0.0, 0.0, -0.082191913188, 0.082191913188]),
            "rpo_softmax_bwd(beta=0.2, eta=1)": (0.435037981149, [0.2 * g for g in (0.006051170422, 0.176277945926,
                                                                                     -0.379943213864, 0.197614097515)]),
            "rpo_softmax_fwd(beta=0.2, eta=1)": (0.684222915836, None),
            "infonca(beta=0.2, alpha=1)": (1.259341671056, None),
            "listwise_dpo(beta=0.2)": (2.846566817262, [-0.075246431320, 0.017877534471, -0.139774848890,
                                                        0.197143745739]),
        }
        for spec, (value, grad) in cases.items():
            with self.subTest(spec):
                r = rpo.Loss(spec).value_and_grad(**GROUP)
                self.assertAlmostEqual(r.loss, value, delta=1e-11)
                np.testing.assert_array_equal(r.group_loss, [r.loss])
                if grad is not None:
                    np.testing.assert_allclose(r.grad_logp, grad, rtol=0, atol=1e-11)
                # log-ratios: the reference's gradient is the opposite of the policy's
                np.testing.assert_allclose(r.grad_ref_logp, -r.grad_logp, rtol=1e-15)
                # best-vs-worst touches only the best and the worst response
                if spec.startswith("dpo_best_worst"):
                    self.assertEqual(r.grad_logp[0], 0.0)
                    self.assertEqual(r.grad_logp[1], 0.0)

    def test_ragged_groups_are_independent(self):
        # A group's loss and gradient are the group's alone, whatever the other groups' sizes.
        rng = np.random.default_rng(40)
        for spec in support.GROUP_PRESETS + tuple(support.general_specs(support.SAMPLINGS[1:])[::9]):
            loss = rpo.Loss(spec)
            with self.subTest(spec):
                batch = support.random_batch(loss, 6, rng)
                sizes = np.diff(batch["offsets"])
                self.assertIn(2, sizes)
                self.assertTrue(((sizes >= 2) & (sizes <= support.MAX_GROUP)).all())
                whole = loss.value_and_grad(**batch, reduction="sum")
                for g in range(6):
                    alone = loss.value_and_grad(**group_alone(batch, g), reduction="sum")
                    begin, end = batch["offsets"][g], batch["offsets"][g + 1]
                    self.assertEqual(alone.group_loss[0], whole.group_loss[g])
                    np.testing.assert_array_equal(alone.grad_logp, whole.grad_logp[begin:end])
                    np.testing.assert_array_equal(alone.grad_ref_logp, whole.grad_ref_logp[begin:end])

    def test_micro_batches_add_up(self):
        loss = rpo.Loss("rpo_softmax_bwd")
        batch = support.random_batch(loss, 7, np.random.default_rng(41))
        whole = loss.value_and_grad(**batch)
        cut = 3   # groups 0..2, then 3..6
        split = batch["offsets"][cut]
        first = {k: v[:split] for k, v in batch.items() if k != "offsets"}
        second = {k: v[split:] for k, v in batch.items() if k != "offsets"}
        a = loss.value_and_grad(**first, offsets=batch["offsets"][:cut + 1], reduction="sum_over", count=7)
        b = loss.value_and_grad(**second, offsets=batch["offsets"][cut:] - split, reduction="sum_over", count=7)
        self.assertAlmostEqual(a.loss + b.loss, whole.loss, delta=1e-14 * abs(whole.loss))
        np.testing.assert_array_equal(np.concatenate([a.group_loss, b.group_loss]), whole.group_loss)
        np.testing.assert_allclose(np.concatenate([a.grad_logp, b.grad_logp]), whole.grad_logp, rtol=1e-14)

    def test_two_responses_are_a_pair(self):
        # docs/sampling.md: every multi-response scheme at K = 2 is the pairwise loss (the presets are rpo_sq, dpo,
        # rpo_bwd, rpo_fwd), with the higher-reward response as the chosen one where the scheme ranks by reward.
        rng = np.random.default_rng(42)
        pairs = {"rpo_sqloo(beta=0.3, eta=0.5)": "rpo_sq(beta=0.3, eta=0.5)",
                 "rpo_sqpairs(beta=0.3, eta=0.5)": "rpo_sq(beta=0.3, eta=0.5)",
                 "rpo_softmax_bwd(beta=0.3, eta=0.5)": "rpo_bwd(beta=0.3, eta=0.5)",
                 "rpo_softmax_fwd(beta=0.3, eta=0.5)": "rpo_fwd(beta=0.3, eta=0.5)",
                 "infonca(beta=0.3, alpha=2)": "rpo(distance=logistic, reward=implicit, beta=0.3, eta=0.5)",
                 "listwise_dpo(beta=0.3)": "dpo(beta=0.3)",
                 "dpo_best_worst(beta=0.3)": "dpo(beta=0.3)"}
        pair_batch = support.random_batch(rpo.Loss("rpo_sq"), 8, rng, all_fields=True)
        # the chosen response (index 0 of each pair) has the higher reward
        reward = pair_batch["reward"].reshape(-1, 2)
        pair_batch["reward"] = np.stack([reward.max(axis=1) + 0.5, reward.min(axis=1)], axis=1).reshape(-1)
        for group_spec, pair_spec in pairs.items():
            with self.subTest(group_spec):
                group = rpo.Loss(group_spec).value_and_grad(**pair_batch, offsets=support.pair_offsets(8))
                pair = rpo.Loss(pair_spec).value_and_grad(**pair_batch)
                for name in ("group_loss", "grad_logp", "grad_ref_logp"):
                    want = getattr(pair, name)
                    np.testing.assert_allclose(getattr(group, name), want, rtol=0,
                                               atol=1e-12 * np.abs(want).max())

    def test_ties(self):
        # A tie is fine for the schemes that do not rank by reward, an error for those that do.
        batch = {"logp": np.array([-3.0, -4.0, -2.5, -6.0, -5.0]), "ref_logp": np.array([-3.5, -3.0, -2.0, -6.5, -5.5]),
                 "reward": np.array([1.0, 0.5, 1.0, 2.0, 2.0]), "offsets": np.array([0, 3, 5])}
        for spec in ("rpo_sqloo", "rpo_sqpairs", "rpo_softmax_bwd", "rpo_softmax_fwd", "infonca",
                     "rpo(distance=fwd_kl, reward=implicit, sampling=all_pairs)"):
            with self.subTest(spec):
                r = rpo.Loss(spec).value_and_grad(**batch)
                self.assertTrue(np.isfinite(r.group_loss).all())
        for spec in ("listwise_dpo", "rpo(distance=sq, reward=implicit, target=constant, sampling=all_pairs)",
                     "rpo(distance=logistic, reward=ref_free, target=hard, sampling=plackett_luce)"):
            with self.subTest(spec):
                with self.assertRaisesRegex(ValueError, r"group 0 \(responses 0 to 2\) is ranked by its explicit "
                                                        r"rewards, but responses 0 and 2 tie"):
                    rpo.Loss(spec).value_and_grad(**batch)
        # best-vs-worst needs only the extremes to differ: group 0 is fine, group 1 (all equal) is not
        with self.assertRaisesRegex(ValueError, r"dpo_best_worst: group 1 \(responses 3 to 4\) has its best and "
                                                r"worst explicit rewards tied"):
            rpo.Loss("dpo_best_worst").value_and_grad(**batch)
        r = rpo.Loss("dpo_best_worst").value_and_grad(**{**batch, "reward": np.array([1.0, 0.5, 1.0, 2.0, 3.0])})
        self.assertEqual(r.grad_logp[2], 0.0)   # the best is the first of the tied highest rewards


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

    def test_group_errors(self):
        batch = {k: v for k, v in GROUP.items() if k != "offsets"}
        for name in support.GROUP_PRESETS:
            loss = rpo.Loss(name)
            with self.subTest(name):
                # a loss that takes groups of any size needs offsets: consecutive pairs are not assumed
                with self.assertRaisesRegex(ValueError, re.escape(f"rpo::{name}: offsets must be given: this "
                                                                  "sampling scheme takes groups of any size")):
                    loss.value_and_grad(**batch)
                # a group of one response
                with self.assertRaisesRegex(ValueError, re.escape(f"rpo::{name}: group 1 (offsets[1] to offsets[2]) "
                                                                  "has 1 responses, but this sampling scheme needs at "
                                                                  "least 2")):
                    loss.value_and_grad(**batch, offsets=[0, 2, 3, 4])
                with self.assertRaisesRegex(ValueError, "has 0 responses"):
                    loss.value_and_grad(**batch, offsets=[0, 2, 2, 4])
                with self.assertRaisesRegex(ValueError, re.escape("offsets[0] must be 0")):
                    loss.value_and_grad(**batch, offsets=[1, 4])
                with self.assertRaisesRegex(ValueError, "offsets must end at the number of responses 4"):
                    loss.value_and_grad(**batch, offsets=[0, 3])
                with self.assertRaisesRegex(ValueError, "reward is read by this loss but was not given"):
                    loss.value_and_grad(batch["logp"], batch["ref_logp"], offsets=[0, 4])
                # an empty batch: offsets [0] is G = 0 groups
                r = loss.value_and_grad([], [], reward=[], offsets=[0], reduction="sum")
                self.assertEqual((r.loss, r.group_loss.shape, r.grad_logp.shape), (0.0, (0,), (0,)))
        # the general form says the same, beginning with its canonical spec
        general = rpo.Loss("rpo(distance=bwd_kl, reward=ref_free, target=hard, sampling=plackett_luce)")
        with self.assertRaisesRegex(ValueError, re.escape(general.spec + ": offsets must be given")):
            general.value_and_grad(batch["logp"], reward=batch["reward"])

    def test_tied_rewards(self):
        loss = rpo.Loss("listwise_dpo")
        tied = {**GROUP, "reward": np.array([2.0, 0.5, 2.0, -1.0])}
        with self.assertRaisesRegex(ValueError, re.escape("rpo::listwise_dpo: group 0 (responses 0 to 3) is ranked by "
                                                          "its explicit rewards, but responses 0 and 2 tie "
                                                          "(reward[0] = reward[2] = 2)")):
            loss.value_and_grad(**tied)
        # the indices are those of the batch, in the group that ties
        batch = {k: np.concatenate([GROUP[k], GROUP[k]]) for k in ("logp", "ref_logp", "reward")}
        batch["reward"][5] = batch["reward"][7]
        with self.assertRaisesRegex(ValueError, re.escape("group 1 (responses 4 to 7) is ranked by its explicit "
                                                          "rewards, but responses 5 and 7 tie")):
            loss.value_and_grad(**batch, offsets=[0, 4, 8])
        # float32: rewards that tie once rounded to float32 tie
        with self.assertRaisesRegex(ValueError, "tie"):
            loss.value_and_grad(GROUP["logp"].astype(np.float32), GROUP["ref_logp"],
                                reward=[2.0, 0.5, 2.0 + 1e-12, -1.0], offsets=[0, 4])

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
