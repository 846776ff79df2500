"""rpo's batch-level and token-level functions (python/src/batchwise.cpp): rpo.kto, rpo.kto_reference_point, rpo.aot,
rpo.evaluate_weighted, rpo.gamma_po_gaps, rpo.gamma_po, rpo.GammaPOMargins, rpo.wpo_weights,
rpo.length_desensitized_logp and its backward; rpo.evaluate_batch and rpo.batch_methods (the batch specs).

Every value is checked against an independent implementation written here from LOSSES.md (§2.3 KTO, §1.10 AOT, §1.16
WPO, §1.17 LD-DPO, §4.6 γ-PO) in numpy or PyTorch, never against a number rpo printed; the gradients against torch
autograd of those formulas (the torch cases are skipped when torch is missing). evaluate_weighted's base losses come
from tests/reference/torch_reference.py, the independent PyTorch reference of every spec.

Run by CTest as python:batchwise; by hand, from python/tests:
    PYTHONPATH=<build>/python:../../tests/reference /usr/bin/python3 -m unittest -v test_batchwise.py
"""
import unittest

import numpy as np

import rpo
import support

try:
    import torch
    import torch.nn.functional as F
    import torch_reference
except ImportError:  # the numpy-only cases still run
    torch = None

needs_torch = unittest.skipUnless(torch is not None, "needs torch (apt-get install python3-torch)")

RTOL, ATOL = 1e-12, 1e-14          # float64 against a float64 reference
RTOL32, ATOL32 = 2e-5, 1e-6        # float32 against a float64 reference


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))     # exact form, no overflow


def softplus(x):
    return np.logaddexp(0.0, x)


def reduce_scale(reduction, count, terms):
    return {"mean": 1.0 / terms, "sum": 1.0, "sum_over": 1.0 / (count or 1.0)}[reduction]


def unpaired_batch(rng, n):
    logp = -rng.uniform(5.0, 60.0, n)
    return logp, logp + rng.normal(0.0, 3.0, n)


def pair_batch(rng, pairs):
    chosen = -rng.uniform(5.0, 60.0, pairs)
    logp = np.stack([chosen, chosen + rng.normal(0.0, 3.0, pairs)], axis=1).reshape(-1)
    return logp, logp + rng.normal(0.0, 3.0, 2 * pairs), rng.integers(3, 120, 2 * pairs).astype(np.float64)


class TestKTO(unittest.TestCase):
    """LOSSES.md §2.3: desirable λ_D(1 − σ(β(ℓ − z0))), undesirable λ_U(1 − σ(β(z0 − ℓ))), z0 = max(0, mean KL)."""

    def reference(self, logp, ref_logp, desirable, z0, beta, wd, wu, reduction="mean", count=None):
        ell = logp - ref_logp
        terms = np.where(desirable, wd * (1.0 - sigmoid(beta * (ell - z0))), wu * (1.0 - sigmoid(beta * (z0 - ell))))
        return terms, terms.sum() * reduce_scale(reduction, count, len(terms))

    def test_reference_point(self):
        rng = np.random.default_rng(1)
        mlogp, mref = unpaired_batch(rng, 9)
        self.assertAlmostEqual(rpo.kto_reference_point(mlogp, mref), max(0.0, float(np.mean(mlogp - mref))), delta=1e-12)
        # clamped at 0 when the estimate is negative
        self.assertEqual(rpo.kto_reference_point([-5.0, -6.0], [-4.0, -4.0]), 0.0)
        self.assertAlmostEqual(rpo.kto_reference_point([-2.0, -5.0], [-4.0, -4.0]), 0.5, delta=0)
        self.assertAlmostEqual(rpo.kto_reference_point(mlogp.astype(np.float32), mref.astype(np.float32)),
                               max(0.0, float(np.mean(mlogp.astype(np.float32).astype(np.float64)
                                                      - mref.astype(np.float32).astype(np.float64)))), delta=1e-5)

    def test_values_and_defaults(self):
        rng = np.random.default_rng(2)
        logp, ref_logp = unpaired_batch(rng, 11)
        desirable = rng.integers(0, 2, 11).astype(bool)
        for kwargs, (beta, wd, wu) in [({}, (0.1, 1.0, 1.0)),
                                       ({"beta": 0.7, "lambda_desirable": 1.3, "lambda_undesirable": 0.4},
                                        (0.7, 1.3, 0.4))]:
            for z0 in (0.0, 1.75):
                with self.subTest(kwargs=kwargs, z0=z0):
                    r = rpo.kto(logp, ref_logp, desirable, z0, **kwargs)
                    self.assertIsInstance(r, rpo.KTOResult)
                    terms, loss = self.reference(logp, ref_logp, desirable, z0, beta, wd, wu)
                    np.testing.assert_allclose(r.response_loss, terms, rtol=RTOL, atol=ATOL)
                    self.assertAlmostEqual(r.loss, loss, delta=1e-12 * abs(loss))
                    np.testing.assert_array_equal(r.grad_ref_logp, -r.grad_logp)
        # z0 defaults to 0 (TRL's apo_zero_unpaired), as kto_input's
        np.testing.assert_array_equal(rpo.kto(logp, ref_logp, desirable).response_loss,
                                      rpo.kto(logp, ref_logp, desirable, 0.0).response_loss)
        # integer labels read as booleans
        np.testing.assert_array_equal(rpo.kto(logp, ref_logp, desirable.astype(np.int64)).grad_logp,
                                      rpo.kto(logp, ref_logp, list(desirable)).grad_logp)

    @needs_torch
    def test_gradients_and_reductions(self):
        rng = np.random.default_rng(3)
        logp, ref_logp = unpaired_batch(rng, 13)
        desirable = rng.integers(0, 2, 13).astype(bool)
        z0 = rpo.kto_reference_point(*unpaired_batch(rng, 13))
        for reduction, count in (("mean", None), ("sum", None), ("sum_over", 40)):
            with self.subTest(reduction=reduction):
                lp = torch.tensor(logp, requires_grad=True)
                rf = torch.tensor(ref_logp, requires_grad=True)
                ell = lp - rf
                d = torch.tensor(desirable)
                terms = torch.where(d, 1.2 * (1 - torch.sigmoid(0.3 * (ell - z0))),
                                    0.8 * (1 - torch.sigmoid(0.3 * (z0 - ell))))
                loss = terms.sum() * reduce_scale(reduction, count, 13)
                loss.backward()
                r = rpo.kto(logp, ref_logp, desirable, z0, beta=0.3, lambda_desirable=1.2, lambda_undesirable=0.8,
                            reduction=reduction, count=count)
                self.assertAlmostEqual(r.loss, loss.item(), delta=1e-12 * abs(loss.item()))
                np.testing.assert_allclose(r.grad_logp, lp.grad.numpy(), rtol=1e-10, atol=1e-15)
                np.testing.assert_allclose(r.grad_ref_logp, rf.grad.numpy(), rtol=1e-10, atol=1e-15)

    def test_float32(self):
        rng = np.random.default_rng(4)
        logp, ref_logp = unpaired_batch(rng, 7)
        desirable = [1, 0, 1, 1, 0, 0, 1]
        r = rpo.kto(logp.astype(np.float32), ref_logp, desirable, 0.5)
        self.assertEqual(r.grad_logp.dtype, np.float32)
        self.assertEqual(r.response_loss.dtype, np.float32)
        terms, loss = self.reference(logp.astype(np.float32).astype(np.float64),
                                     ref_logp.astype(np.float32).astype(np.float64), np.array(desirable, bool), 0.5,
                                     0.1, 1.0, 1.0)
        np.testing.assert_allclose(r.response_loss, terms, rtol=RTOL32, atol=ATOL32)
        self.assertAlmostEqual(r.loss, loss, delta=1e-5)

    def test_errors(self):
        good = dict(logp=[-1.0, -2.0], ref_logp=[-1.5, -2.5], desirable=[1, 0])
        cases = [
            (dict(good, desirable=[1, 2]), r"desirable\[1\] must be 0 \(undesirable\) or 1 \(desirable\), but got "
                                           r"desirable\[1\] = 2"),
            (dict(good, desirable=[1, -1]), r"desirable\[1\] must be 0"),
            (dict(good, desirable=[1.0, 0.0]), r"rpo.kto: desirable must hold booleans or integers"),
            (dict(good, ref_logp=[-1.0]), r"rpo::evaluate_kto: ref_logp"),
            (dict(good, logp=[-1.0, np.nan]), r"rpo::evaluate_kto: logp\[1\] must be finite"),
            (dict(good, logp=[[-1.0, -2.0]]), r"rpo.kto: logp must be 1-D, but has shape \(1, 2\)"),
            (dict(good, z0=np.inf), r"rpo::evaluate_kto: z0 must be finite"),
            (dict(good, beta=0.0), r"rpo::evaluate_kto: beta must be finite and > 0, but got beta = 0"),
            (dict(good, lambda_undesirable=-1.0), r"lambda_undesirable must be finite and >= 0"),
            (dict(good, reduction="max"), r"reduction must be \"mean\", \"sum\" or \"sum_over\""),
            (dict(good, reduction="sum_over"), r"needs count"),
            (dict(logp=[], ref_logp=[], desirable=[]), r"rpo::evaluate_kto: .*empty"),
        ]
        for kwargs, pattern in cases:
            with self.subTest(pattern=pattern):
                with self.assertRaisesRegex(ValueError, pattern):
                    rpo.kto(**kwargs)
        with self.assertRaisesRegex(ValueError, r"rpo::kto_reference_point: no mismatched pairs"):
            rpo.kto_reference_point([], [])
        with self.assertRaisesRegex(ValueError, r"rpo::kto_reference_point: mismatched_ref_logp"):
            rpo.kto_reference_point([-1.0, -2.0], [-1.0])
        with self.assertRaisesRegex(ValueError, r"mismatched_logp\[0\] must be finite"):
            rpo.kto_reference_point([np.nan], [-1.0])


class TestBCO(unittest.TestCase):
    """LOSSES.md §1.8, unpaired: w·(−log σ(βℓ − δ)) if desirable, w·(−log σ(−(βℓ − δ))) if not."""

    @needs_torch
    def test_values_gradients_and_reductions(self):
        rng = np.random.default_rng(31)
        logp, ref_logp = unpaired_batch(rng, 11)
        desirable = rng.integers(0, 2, 11).astype(bool)
        weight = rng.uniform(0.0, 2.0, 11)
        for reduction, count, w, delta in (("mean", None, None, 0.0), ("sum", None, weight, -0.4),
                                           ("sum_over", 30, weight, 0.7)):
            with self.subTest(reduction=reduction):
                lp = torch.tensor(logp, requires_grad=True)
                rf = torch.tensor(ref_logp, requires_grad=True)
                x = 0.3 * (lp - rf) - delta
                terms = torch.where(torch.tensor(desirable), -F.logsigmoid(x),
                                    -F.logsigmoid(-x))
                if w is not None:
                    terms = terms * torch.tensor(w)
                loss = terms.sum() * reduce_scale(reduction, count, 11)
                loss.backward()
                r = rpo.bco(logp, ref_logp, desirable, delta, weight=w, beta=0.3, reduction=reduction, count=count)
                self.assertAlmostEqual(r.loss, loss.item(), delta=1e-12 * abs(loss.item()))
                np.testing.assert_allclose(r.response_loss, terms.detach().numpy(), rtol=1e-12, atol=1e-15)
                np.testing.assert_allclose(r.grad_logp, lp.grad.numpy(), rtol=1e-10, atol=1e-15)
                np.testing.assert_allclose(r.grad_ref_logp, rf.grad.numpy(), rtol=1e-10, atol=1e-15)

    def test_errors(self):
        good = dict(logp=[-1.0, -2.0], ref_logp=[-1.5, -2.5], desirable=[1, 0])
        cases = [
            (dict(good, weight=[1.0, -0.5]), r"rpo::evaluate_bco: weight\[1\] must be finite and >= 0"),
            (dict(good, weight=[1.0]), r"rpo::evaluate_bco: weight has 1 entries but must have 2"),
            (dict(good, delta=np.nan), r"rpo::evaluate_bco: delta must be finite"),
            (dict(good, desirable=[1, 3]), r"rpo.bco: desirable\[1\] must be 0"),
            (dict(good, beta=-1.0), r"rpo::evaluate_bco: beta must be finite and > 0"),
        ]
        for kwargs, pattern in cases:
            with self.subTest(pattern=pattern):
                with self.assertRaisesRegex(ValueError, pattern):
                    rpo.bco(**kwargs)


def aot_reference(torch_lp, torch_rf, beta, epsilon, unpaired):
    """LOSSES.md §1.10 in torch: the per-rank terms (torch.sort is differentiable through the permutation)."""
    lc, lr, rc, rr = torch_lp[0::2], torch_lp[1::2], torch_rf[0::2], torch_rf[1::2]
    if unpaired:
        delta = torch.sort(lc - rc).values - torch.sort(lr - rr).values
    else:
        delta = torch.sort(lc - lr).values - torch.sort(rc - rr).values
    return (1 - epsilon) * F.softplus(-beta * delta) + epsilon * F.softplus(beta * delta)


@needs_torch
class TestAOT(unittest.TestCase):
    def test_values_and_gradients(self):
        rng = np.random.default_rng(5)
        logp, ref_logp, _ = pair_batch(rng, 9)
        for unpaired in (False, True):
            for beta, epsilon in ((0.1, 0.0), (0.8, 0.2)):
                for reduction, count in (("mean", None), ("sum", None), ("sum_over", 20)):
                    with self.subTest(unpaired=unpaired, beta=beta, epsilon=epsilon, reduction=reduction):
                        lp = torch.tensor(logp, requires_grad=True)
                        rf = torch.tensor(ref_logp, requires_grad=True)
                        terms = aot_reference(lp, rf, beta, epsilon, unpaired)
                        loss = terms.sum() * reduce_scale(reduction, count, 9)
                        loss.backward()
                        kwargs = {} if (beta, epsilon) == (0.1, 0.0) else {"beta": beta, "epsilon": epsilon}
                        r = rpo.aot(logp, ref_logp, unpaired=unpaired, reduction=reduction, count=count, **kwargs)
                        self.assertIsInstance(r, rpo.Result)
                        np.testing.assert_allclose(r.group_loss, terms.detach().numpy(), rtol=RTOL, atol=ATOL)
                        self.assertAlmostEqual(r.loss, loss.item(), delta=1e-12 * abs(loss.item()))
                        np.testing.assert_allclose(r.grad_logp, lp.grad.numpy(), rtol=1e-10, atol=1e-15)
                        np.testing.assert_allclose(r.grad_ref_logp, rf.grad.numpy(), rtol=1e-10, atol=1e-15)
        # offsets that make every group a pair are the same batch
        a, b = rpo.aot(logp, ref_logp), rpo.aot(logp, ref_logp, offsets=support.pair_offsets(9))
        np.testing.assert_array_equal(a.grad_logp, b.grad_logp)
        self.assertEqual(a.loss, b.loss)

    def test_float32(self):
        rng = np.random.default_rng(6)
        logp, ref_logp, _ = pair_batch(rng, 6)
        r = rpo.aot(logp.astype(np.float32), ref_logp, beta=0.5, unpaired=True)
        self.assertEqual(r.grad_logp.dtype, np.float32)
        lp = torch.tensor(logp.astype(np.float32).astype(np.float64))
        rf = torch.tensor(ref_logp.astype(np.float32).astype(np.float64))
        terms = aot_reference(lp, rf, 0.5, 0.0, True)
        np.testing.assert_allclose(r.group_loss, terms.numpy(), rtol=RTOL32, atol=ATOL32)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"rpo::evaluate_aot"):
            rpo.aot([-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0])
        with self.assertRaisesRegex(ValueError, r"rpo::evaluate_aot: epsilon must be in \[0, 0.5\)"):
            rpo.aot([-1.0, -2.0], [-1.0, -2.0], epsilon=0.5)
        with self.assertRaisesRegex(ValueError, r"rpo::evaluate_aot: ref_logp\[1\] must be finite"):
            rpo.aot([-1.0, -2.0], [-1.0, np.inf])
        with self.assertRaisesRegex(ValueError, r"rpo.aot: offsets must hold integers"):
            rpo.aot([-1.0, -2.0], [-1.0, -2.0], offsets=[0.0, 2.0])
        with self.assertRaisesRegex(ValueError, r"rpo::evaluate_aot"):
            rpo.aot([-1.0, -2.0, -3.0, -4.0], [-1.0, -2.0, -3.0, -4.0], offsets=[0, 3, 4])


@needs_torch
class TestEvaluateWeighted(unittest.TestCase):
    """LOSSES.md §1.16: L_g ← c_g·L_g, ∂(cL)/∂logp = c·∂L/∂logp; the base L_g from torch_reference.py."""

    def check(self, spec, batch, weights, reduction="mean", count=None, rtol=1e-10):
        fields = {k: v for k, v in batch.items() if k != "offsets"}
        lp = torch.tensor(fields["logp"], requires_grad=True)
        rf = torch.tensor(fields.get("ref_logp", np.zeros_like(fields["logp"])), requires_grad=True)
        tensors = {"logp": lp, "ref_logp": rf}
        for name in ("length", "reward"):
            if name in fields:
                tensors[name] = torch.tensor(fields[name])
        base = torch_reference.group_loss(spec, offsets=batch.get("offsets"), reduction="none", **tensors)
        weighted = torch.tensor(weights) * base
        loss = weighted.sum() * reduce_scale(reduction, count, len(weights))
        loss.backward()
        r = rpo.evaluate_weighted(rpo.Loss(spec), weights, reduction=reduction, count=count, **batch)
        self.assertIsInstance(r, rpo.Result)
        np.testing.assert_allclose(r.group_loss, weighted.detach().numpy(), rtol=rtol, atol=1e-14)
        self.assertAlmostEqual(r.loss, loss.item(), delta=rtol * abs(loss.item()) + 1e-14)
        np.testing.assert_allclose(r.grad_logp, lp.grad.numpy(), rtol=rtol, atol=1e-14)
        ref_grad = np.zeros(len(fields["logp"])) if rf.grad is None else rf.grad.numpy()  # a loss without ref_logp
        np.testing.assert_allclose(r.grad_ref_logp, ref_grad, rtol=rtol, atol=1e-14)

    def test_pairs(self):
        rng = np.random.default_rng(7)
        for spec in ("dpo(beta=0.2)", "simpo(beta=2, gamma=0.5)", "ipo(tau=0.3)"):
            loss = rpo.Loss(spec)
            batch = support.random_batch(loss, 6, rng)
            weights = rng.uniform(0.0, 2.5, 6)
            weights[2] = 0.0
            for reduction, count in (("mean", None), ("sum", None), ("sum_over", 16)):
                with self.subTest(spec=spec, reduction=reduction):
                    self.check(spec, batch, weights, reduction, count)

    def test_groups(self):
        rng = np.random.default_rng(8)
        for spec in ("rpo_sqloo", "listwise_dpo(beta=0.2)"):
            loss = rpo.Loss(spec)
            batch = support.random_batch(loss, 5, rng)
            with self.subTest(spec=spec):
                self.check(spec, batch, rng.uniform(0.1, 3.0, 5), rtol=1e-9)

    def test_unit_weights_are_value_and_grad(self):
        rng = np.random.default_rng(9)
        loss = rpo.Loss("dpo(beta=0.2)")
        batch = support.random_batch(loss, 5, rng)
        a, b = rpo.evaluate_weighted(loss, np.ones(5), **batch), loss.value_and_grad(**batch)
        self.assertEqual(a.loss, b.loss)
        np.testing.assert_array_equal(a.group_loss, b.group_loss)
        np.testing.assert_array_equal(a.grad_logp, b.grad_logp)

    def test_wpo_end_to_end(self):
        """WPO as LOSSES.md §1.16 writes it: DPO weighted by w(y_c)·w(y_r), the weights from the logits."""
        rng = np.random.default_rng(10)
        logits = rng.normal(0.0, 2.0, (4, 5, 7))
        target = rng.integers(0, 7, (4, 5))
        mask = np.ones((4, 5), bool)
        mask[1, 3:] = False
        w = rpo.wpo_weights(logits, target, mask)
        np.testing.assert_allclose(w, wpo_reference(logits, target, mask), rtol=1e-12)
        logp, ref_logp, _ = pair_batch(rng, 2)
        self.check("dpo(beta=0.1)", {"logp": logp, "ref_logp": ref_logp}, w[0::2] * w[1::2])

    def test_float32(self):
        rng = np.random.default_rng(11)
        loss = rpo.Loss("dpo")
        batch = support.random_batch(loss, 4, rng, dtype=np.float32)
        r = rpo.evaluate_weighted(loss, [0.5, 1.0, 2.0, 0.0], **batch)
        self.assertEqual(r.grad_logp.dtype, np.float32)
        self.assertEqual(r.group_loss.dtype, np.float32)
        plain = loss.value_and_grad(**batch)
        np.testing.assert_allclose(r.group_loss, plain.group_loss * np.float32([0.5, 1.0, 2.0, 0.0]), rtol=1e-6)

    def test_errors(self):
        loss = rpo.Loss("dpo")
        batch = {"logp": [-1.0, -2.0, -3.0, -4.0], "ref_logp": [-1.0, -2.0, -3.0, -4.5]}
        cases = [
            (dict(group_weights=[1.0]), r"evaluate_weighted: group_weights has 1 entries but the batch has 2 "
                                        r"groups \(one weight per group\)"),
            (dict(group_weights=[1.0, -0.5]), r"group_weights\[1\] must be finite and >= 0, but got "
                                              r"group_weights\[1\] = -0.5"),
            (dict(group_weights=[np.nan, 1.0]), r"group_weights\[0\] must be finite and >= 0"),
            (dict(group_weights=[[1.0, 1.0]]), r"group_weights must be 1-D"),
            (dict(group_weights=[1.0, 1.0], reduction="sum_over", count=0), r"count must be finite and > 0"),
        ]
        for kwargs, pattern in cases:
            with self.subTest(pattern=pattern):
                with self.assertRaisesRegex(ValueError, pattern):
                    rpo.evaluate_weighted(loss, **kwargs, **batch)
        with self.assertRaisesRegex(ValueError, r"logp\[1\] must be finite"):
            rpo.evaluate_weighted(loss, [1.0, 1.0], [-1.0, np.nan, -3.0, -4.0], batch["ref_logp"])
        with self.assertRaisesRegex(ValueError, r"ref_logp"):
            rpo.evaluate_weighted(loss, [1.0, 1.0], batch["logp"])
        with self.assertRaisesRegex(ValueError, r"mean over 0 groups is undefined"):
            rpo.evaluate_weighted(loss, [], [], [])
        self.assertEqual(rpo.evaluate_weighted(loss, [], [], [], reduction="sum").loss, 0.0)
        with self.assertRaises(TypeError):   # not an rpo.Loss
            rpo.evaluate_weighted("dpo", [1.0, 1.0], **batch)


def gaps_reference(logp, ref_logp, length, beta, simpo):
    if simpo:
        return beta * (logp[0::2] / length[0::2] - logp[1::2] / length[1::2])
    return beta * ((logp[0::2] - ref_logp[0::2]) - (logp[1::2] - ref_logp[1::2]))


def margins_reference(gaps, gamma_0, tau, iterations=20, epsilon=1e-10, step=None):
    """LOSSES.md §4.6 / docs/methods.md#gamma_po_margins in numpy: exponentiated gradient from the uniform p on
    f(p) = (1/n)Σ softplus(γ_j − g_j) + τ Σ (p_j + ε) log(n(p_j + ε)), γ = γ_0·n·p; returns γ of every gap."""
    n = len(gaps)
    eta = step if step else min(0.5 / tau, 1.0)
    p = np.full(n, 1.0 / n)
    for _ in range(iterations - 1):
        gamma = gamma_0 * n * p
        grad = gamma_0 * sigmoid(gamma - gaps) + tau * (1.0 + np.log(n * (p + epsilon)))
        w = p * np.exp(-eta * (grad - grad.min()))
        p = w / w.sum()
    return gamma_0 * n * p


class TestGammaPO(unittest.TestCase):
    def test_gaps(self):
        rng = np.random.default_rng(12)
        logp, ref_logp, length = pair_batch(rng, 7)
        np.testing.assert_allclose(rpo.gamma_po_gaps(logp, ref_logp), gaps_reference(logp, ref_logp, length, 0.1, False),
                                   rtol=1e-12)
        np.testing.assert_allclose(rpo.gamma_po_gaps(logp, length=length, beta=2.5, simpo=True),
                                   gaps_reference(logp, ref_logp, length, 2.5, True), rtol=1e-12)
        self.assertEqual(rpo.gamma_po_gaps(logp.astype(np.float32), ref_logp).dtype, np.float32)

    @needs_torch
    def test_loss_values_and_gradients(self):
        rng = np.random.default_rng(13)
        logp, ref_logp, length = pair_batch(rng, 8)
        margins = rng.uniform(0.0, 2.0, 8)
        for simpo, beta, ratio in ((False, 0.1, 0.5), (False, 0.4, 0.3), (True, 2.5, 0.4)):
            for reduction, count in (("mean", None), ("sum", None), ("sum_over", 20)):
                with self.subTest(simpo=simpo, beta=beta, reduction=reduction):
                    lp = torch.tensor(logp, requires_grad=True)
                    rf = torch.tensor(ref_logp, requires_grad=True)
                    n = torch.tensor(length)
                    gamma = torch.tensor(margins)
                    if simpo:
                        a = beta * (lp[0::2] / n[0::2] - lp[1::2] / n[1::2])
                        terms = F.softplus(-(a - gamma))
                    else:
                        a = beta * ((lp[0::2] - rf[0::2]) - (lp[1::2] - rf[1::2]))
                        terms = F.softplus(-(a - (gamma - ratio * beta)))
                    loss = terms.sum() * reduce_scale(reduction, count, 8)
                    loss.backward()
                    kwargs = {"length": length} if simpo else {"ref_logp": ref_logp}
                    if (simpo, beta, ratio) != (False, 0.1, 0.5):
                        kwargs.update(beta=beta, gamma_beta_ratio=ratio, simpo=simpo)
                    r = rpo.gamma_po(margins, logp, reduction=reduction, count=count, **kwargs)
                    np.testing.assert_allclose(r.group_loss, terms.detach().numpy(), rtol=RTOL, atol=ATOL)
                    self.assertAlmostEqual(r.loss, loss.item(), delta=1e-12 * abs(loss.item()))
                    np.testing.assert_allclose(r.grad_logp, lp.grad.numpy(), rtol=1e-10, atol=1e-15)
                    expected_ref = np.zeros_like(ref_logp) if simpo else rf.grad.numpy()
                    np.testing.assert_allclose(r.grad_ref_logp, expected_ref, rtol=1e-10, atol=1e-15)

    def test_equal_margins_are_dpo(self):
        rng = np.random.default_rng(14)
        logp, ref_logp, _ = pair_batch(rng, 5)
        r = rpo.gamma_po(np.full(5, 0.2 * 0.5), logp, ref_logp, beta=0.2)
        d = rpo.Loss("dpo(beta=0.2)").value_and_grad(logp, ref_logp)
        # The same expressions (equal to the last bit in C++, tests/unit/gamma_po.test.cpp), but here compiled in two
        # translation units with different flags: the module's own sources for the machine (RPO_PYTHON_NATIVE, where
        # the compiler may fuse a multiply and an add), the registry behind rpo.Loss for baseline x86-64. A few ulp.
        self.assertAlmostEqual(r.loss, d.loss, delta=4e-16 * abs(d.loss))
        np.testing.assert_allclose(r.grad_logp, d.grad_logp, rtol=4e-16, atol=0)

    def test_margins_against_reference(self):
        rng = np.random.default_rng(15)
        gaps = rng.normal(0.0, 1.5, 12)
        for kwargs, (ratio, beta, tau) in (({}, (0.5, 0.1, 10.0)),
                                          ({"beta": 2.0, "gamma_beta_ratio": 0.3, "tau": 3.0}, (0.3, 2.0, 3.0))):
            with self.subTest(kwargs=kwargs):
                m = rpo.GammaPOMargins(**kwargs)
                self.assertAlmostEqual(m.gamma_0, ratio * beta, delta=1e-15)
                margins = m.compute(gaps)
                np.testing.assert_allclose(margins, margins_reference(gaps, ratio * beta, tau), rtol=1e-10)
                # larger gaps get larger margins; the mean margin is γ_0 (Σ p = 1) with an empty queue
                order = np.argsort(gaps)
                self.assertTrue(np.all(np.diff(margins[order]) > 0))
                self.assertAlmostEqual(margins.mean(), ratio * beta, delta=1e-12)
                np.testing.assert_array_equal(m.queue, gaps)

    def test_queue(self):
        rng = np.random.default_rng(16)
        past, gaps = rng.normal(0.0, 1.0, 8), rng.normal(0.0, 1.0, 5)
        m = rpo.GammaPOMargins(beta=0.5, tau=5.0, iterations=12)
        m.push(past)
        np.testing.assert_array_equal(m.queue, past)
        # opt_size 256 > 8 + 5: every past gap takes part, and the optimisation over the set is order-free
        margins = m.compute(gaps)
        np.testing.assert_allclose(margins, margins_reference(np.concatenate([past, gaps]), 0.25, 5.0, 12)[8:],
                                   rtol=1e-10)
        np.testing.assert_array_equal(m.queue, np.concatenate([past, gaps]))
        m.clear()
        self.assertEqual(len(m.queue), 0)
        # the FIFO drops the oldest past capacity
        small = rpo.GammaPOMargins(capacity=4)
        small.push([1.0, 2.0, 3.0])
        small.push([4.0, 5.0])
        np.testing.assert_array_equal(small.queue, [2.0, 3.0, 4.0, 5.0])
        # opt_size = B: no past gap takes part
        alone = rpo.GammaPOMargins(opt_size=5)
        alone.push(past)
        np.testing.assert_allclose(alone.compute(gaps), margins_reference(gaps, 0.05, 10.0), rtol=1e-10)
        # float32 gaps give float32 margins
        self.assertEqual(rpo.GammaPOMargins().compute(gaps.astype(np.float32)).dtype, np.float32)

    def test_errors(self):
        logp, ref_logp = [-1.0, -2.0, -3.0, -4.0], [-1.0, -2.0, -3.0, -4.5]
        with self.assertRaisesRegex(ValueError, r"rpo::evaluate_gamma_po: margins has 1 entries but must have 2"):
            rpo.gamma_po([0.1], logp, ref_logp)
        with self.assertRaisesRegex(ValueError, r"rpo::evaluate_gamma_po: margins\[1\] must be finite"):
            rpo.gamma_po([0.1, np.nan], logp, ref_logp)
        with self.assertRaisesRegex(ValueError, r"rpo::evaluate_gamma_po: .*length"):
            rpo.gamma_po([0.1, 0.1], logp, simpo=True)
        with self.assertRaisesRegex(ValueError, r"rpo::gamma_po_gaps: beta must be finite and > 0, but got beta = -1"):
            rpo.gamma_po_gaps(logp, ref_logp, beta=-1.0)
        with self.assertRaisesRegex(ValueError, r"rpo::gamma_po_margins: tau must be finite and > 0, but got tau = 0"):
            rpo.GammaPOMargins(tau=0.0)
        with self.assertRaisesRegex(ValueError, r"rpo::gamma_po_margins: iterations must be >= 1"):
            rpo.GammaPOMargins(iterations=0)
        with self.assertRaisesRegex(ValueError, r"rpo.GammaPOMargins: capacity must be in \[0, "):
            rpo.GammaPOMargins(capacity=-1)
        with self.assertRaisesRegex(ValueError, r"rpo.GammaPOMargins: iterations must be an integer"):
            rpo.GammaPOMargins(iterations=2.5)
        m = rpo.GammaPOMargins()
        with self.assertRaisesRegex(ValueError, r"rpo::gamma_po_margins: gaps\[1\] must be finite"):
            m.compute([0.5, np.inf])
        self.assertEqual(len(m.queue), 0)    # unchanged after a failure
        with self.assertRaisesRegex(ValueError, r"rpo.GammaPOMargins.push: gaps\[0\] must be finite"):
            m.push([np.nan])


def wpo_reference(logits, target, mask):
    """LOSSES.md §1.16 in numpy: w = exp(mean over response tokens of log π_t − log Σ_v π_v²)."""
    z = logits.astype(np.float64)
    top = z.max(axis=-1, keepdims=True)
    lse = top[..., 0] + np.log(np.exp(z - top).sum(axis=-1))
    lse2 = 2 * top[..., 0] + np.log(np.exp(2 * (z - top)).sum(axis=-1))
    logpi = np.take_along_axis(z, np.maximum(target, 0)[..., None], axis=-1)[..., 0] - lse
    log_sum_sq = lse2 - 2 * lse
    m = np.ones(target.shape, bool) if mask is None else mask.astype(bool)
    return np.exp(np.where(m, logpi - log_sum_sq, 0.0).sum(axis=1) / m.sum(axis=1))


class TestWPOWeights(unittest.TestCase):
    def test_values(self):
        rng = np.random.default_rng(17)
        logits = rng.normal(0.0, 3.0, (6, 9, 50))
        target = rng.integers(0, 50, (6, 9))
        mask = rng.random((6, 9)) < 0.7
        mask[:, 0] = True
        target[~mask] = -100                                   # masked targets are not read
        np.testing.assert_allclose(rpo.wpo_weights(logits, target, mask), wpo_reference(logits, target, mask),
                                   rtol=1e-12)
        target = rng.integers(0, 50, (6, 9))
        np.testing.assert_allclose(rpo.wpo_weights(logits, target), wpo_reference(logits, target, None), rtol=1e-12)
        # integer masks: nonzero marks a response token (256 included: no uint8 wrap-around)
        np.testing.assert_array_equal(rpo.wpo_weights(logits, target, mask.astype(np.int64) * 256),
                                      rpo.wpo_weights(logits, target, mask))
        # large logits stay finite (streamed max), 0 <= w <= V
        big = logits * 1e3
        w = rpo.wpo_weights(big, target, mask)
        np.testing.assert_allclose(w, wpo_reference(big, target, mask), rtol=1e-10)
        self.assertTrue(np.all((w >= 0) & (w <= 50)))

    def test_float32(self):
        rng = np.random.default_rng(18)
        logits = rng.normal(0.0, 2.0, (4, 6, 33)).astype(np.float32)
        target = rng.integers(0, 33, (4, 6))
        w = rpo.wpo_weights(logits, target)
        self.assertEqual(w.dtype, np.float32)
        np.testing.assert_allclose(w, wpo_reference(logits, target, None), rtol=1e-5)

    def test_errors(self):
        logits, target = np.zeros((2, 3, 4)), np.zeros((2, 3), np.int64)
        cases = [
            (dict(logits=np.zeros((2, 3))), r"rpo.wpo_weights: logits must be 3-D, but has shape \(2, 3\)"),
            (dict(target=np.zeros((2, 4), np.int64)), r"rpo.wpo_weights: target must have the shape \(S, T\) = "
                                                     r"\(2, 3\)"),
            (dict(target=np.zeros((2, 3))), r"target must hold integers"),
            (dict(target=np.full((2, 3), 4)), r"rpo::wpo_weights: .*target"),
            (dict(mask=np.zeros((2, 2), bool)), r"mask must have shape \(2, 3\)"),
            (dict(mask=np.array([[1, 1, 1], [0, 0, 0]])), r"rpo::wpo_weights: .*sequence 1"),
            (dict(logits=np.full((2, 3, 4), np.nan)), r"rpo::wpo_weights: .*finite"),
        ]
        for kwargs, pattern in cases:
            with self.subTest(pattern=pattern):
                with self.assertRaisesRegex(ValueError, pattern):
                    rpo.wpo_weights(**{"logits": logits, "target": target, **kwargs})


def ld_reference(token_logp, mask, alpha):
    """LOSSES.md §1.17 in numpy: per pair, n_min = the shorter response length; logp = head + α·tail."""
    s, t = token_logp.shape
    m = np.ones((s, t), bool) if mask is None else mask.astype(bool)
    n = m.sum(axis=1)
    out = np.zeros(s)
    for i in range(s):
        n_min = min(n[i - i % 2], n[i - i % 2 + 1])
        k = np.cumsum(m[i])                                   # 1-based rank of each response token
        head = m[i] & (k <= n_min)
        tail = m[i] & (k > n_min)
        out[i] = token_logp[i][head].sum() + alpha * token_logp[i][tail].sum()
    return out


class TestLengthDesensitized(unittest.TestCase):
    def batch(self, rng):
        token_logp = -rng.uniform(0.0, 5.0, (6, 10))
        mask = np.zeros((6, 10), bool)
        for i, (start, n) in enumerate([(2, 5), (2, 8), (1, 9), (0, 3), (4, 6), (4, 6)]):
            mask[i, start:start + n] = True
        return token_logp, mask

    def test_values(self):
        rng = np.random.default_rng(19)
        token_logp, mask = self.batch(rng)
        for alpha in (0.0, 0.35, 1.0):
            with self.subTest(alpha=alpha):
                np.testing.assert_allclose(rpo.length_desensitized_logp(token_logp, mask, alpha),
                                           ld_reference(token_logp, mask, alpha), rtol=1e-13)
        # alpha = 1 is the masked sum; no mask is every position
        np.testing.assert_allclose(rpo.length_desensitized_logp(token_logp, mask, 1.0),
                                   np.where(mask, token_logp, 0.0).sum(axis=1), rtol=1e-13)
        np.testing.assert_allclose(rpo.length_desensitized_logp(token_logp, None, 0.5),
                                   token_logp.sum(axis=1), rtol=1e-13)
        r32 = rpo.length_desensitized_logp(token_logp.astype(np.float32), mask, 0.5)
        self.assertEqual(r32.dtype, np.float32)
        np.testing.assert_allclose(r32, ld_reference(token_logp.astype(np.float32).astype(np.float64), mask, 0.5),
                                   rtol=1e-6)

    @needs_torch
    def test_backward_is_autograd(self):
        rng = np.random.default_rng(20)
        token_logp, mask = self.batch(rng)
        upstream = rng.normal(0.0, 1.0, 6)
        for alpha in (0.0, 0.6, 1.0):
            with self.subTest(alpha=alpha):
                x = torch.tensor(token_logp, requires_grad=True)
                m = torch.tensor(mask)
                rank = torch.cumsum(m.to(torch.int64), dim=1)
                n = m.sum(dim=1)
                n_min = torch.minimum(n[0::2], n[1::2]).repeat_interleave(2)[:, None]
                head = m & (rank <= n_min)
                tail = m & (rank > n_min)
                seq = (x * head).sum(dim=1) + alpha * (x * tail).sum(dim=1)
                (seq * torch.tensor(upstream)).sum().backward()
                got = rpo.length_desensitized_logp_backward(upstream, mask, alpha)
                self.assertEqual(got.shape, (6, 10))
                np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-15, atol=0)
        self.assertEqual(rpo.length_desensitized_logp_backward(upstream.astype(np.float32), mask, 0.5).dtype,
                         np.float32)
        np.testing.assert_array_equal(rpo.length_desensitized_logp_backward(upstream, None, 0.3, tokens=4),
                                      np.repeat(upstream[:, None], 4, axis=1))

    def test_errors(self):
        x, mask = np.zeros((4, 3)), np.ones((4, 3), bool)
        with self.assertRaisesRegex(ValueError, r"rpo::length_desensitized_logp: alpha must be in \[0, 1\]"):
            rpo.length_desensitized_logp(x, mask, 1.5)
        with self.assertRaisesRegex(ValueError, r"rpo::length_desensitized_logp: shape.sequences must be even"):
            rpo.length_desensitized_logp(np.zeros((3, 3)), None, 0.5)
        with self.assertRaisesRegex(ValueError, r"rpo.length_desensitized_logp: token_logp must be 2-D"):
            rpo.length_desensitized_logp(np.zeros(4), None, 0.5)
        with self.assertRaisesRegex(ValueError, r"rpo.length_desensitized_logp: mask must have shape \(4, 3\)"):
            rpo.length_desensitized_logp(x, np.ones((4, 2), bool), 0.5)
        with self.assertRaisesRegex(ValueError, r"rpo.length_desensitized_logp: mask must hold booleans or integers"):
            rpo.length_desensitized_logp(x, np.ones((4, 3)), 0.5)
        with self.assertRaisesRegex(ValueError, r"rpo.length_desensitized_logp_backward: without a mask, tokens"):
            rpo.length_desensitized_logp_backward(np.zeros(4), None, 0.5)
        with self.assertRaisesRegex(ValueError, r"tokens = 5 differs from the mask's shape \(4, 3\)"):
            rpo.length_desensitized_logp_backward(np.zeros(4), mask, 0.5, tokens=5)
        with self.assertRaisesRegex(ValueError, r"rpo::length_desensitized_logp_backward: alpha must be in"):
            rpo.length_desensitized_logp_backward(np.zeros(4), mask, -0.1)
        with self.assertRaisesRegex(ValueError, r"rpo.length_desensitized_logp_backward: mask must have shape"):
            rpo.length_desensitized_logp_backward(np.zeros(2), mask, 0.5)


class TestEvaluateBatch(unittest.TestCase):
    """rpo.evaluate_batch (the batch specs of rpo/batch_spec.hpp, as rpo-eval --batch) against the functions of their
    own (rpo.kto, rpo.bco, rpo.aot, rpo.gamma_po, rpo.GammaPOMargins, rpo.evaluate_weighted,
    rpo.length_desensitized_logp), which the classes above check against independent references; and, with torch,
    against torch_reference.py's batch methods."""

    def same(self, got, expected, rtol=1e-13):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-15)

    def test_kto_and_bco(self):
        rng = np.random.default_rng(31)
        logp, ref = unpaired_batch(rng, 7)
        desirable = np.array([1, 0, 1, 1, 0, 0, 1], bool)
        kl_logp, kl_ref = unpaired_batch(rng, 7)
        z0 = rpo.kto_reference_point(kl_logp, kl_ref)
        for spec, params in (("kto", {}), ("kto(beta=0.5, lambda_desirable=1.25, lambda_undesirable=0.5)",
                                           {"beta": 0.5, "lambda_desirable": 1.25, "lambda_undesirable": 0.5})):
            with self.subTest(spec=spec):
                expected = rpo.kto(logp, ref, desirable, z0=z0, **params)
                for r in (rpo.evaluate_batch(spec, logp=logp, ref_logp=ref, desirable=desirable, z0=z0),
                          rpo.evaluate_batch(spec, logp=logp, ref_logp=ref, desirable=desirable, kl_logp=kl_logp,
                                             kl_ref_logp=kl_ref)):
                    self.assertEqual(r["loss"], expected.loss)
                    for name in ("response_loss", "grad_logp", "grad_ref_logp"):
                        self.same(r[name], getattr(expected, name))
        weight = rng.uniform(0.0, 2.0, 7)
        expected = rpo.bco(logp, ref, desirable, delta=0.3, weight=weight, beta=0.5)
        r = rpo.evaluate_batch("bco_unpaired(beta=0.5)", logp=logp, ref_logp=ref, desirable=desirable.astype(int),
                               delta=0.3, weight=weight)
        self.assertEqual(r["loss"], expected.loss)
        self.same(r["grad_logp"], expected.grad_logp)
        self.same(r["response_loss"], expected.response_loss)

    def test_aot_and_gamma_po(self):
        rng = np.random.default_rng(32)
        logp, ref, length = pair_batch(rng, 6)
        for unpaired in (False, True):
            expected = rpo.aot(logp, ref, beta=0.3, epsilon=0.1, unpaired=unpaired)
            r = rpo.evaluate_batch(f"aot(beta=0.3, epsilon=0.1, unpaired={str(unpaired).lower()})", logp=logp,
                                   ref_logp=ref)
            self.assertEqual(r["loss"], expected.loss)
            self.same(r["rank_loss"], expected.group_loss)
            self.same(r["grad_logp"], expected.grad_logp)
            self.same(r["grad_ref_logp"], expected.grad_ref_logp)
        margins = rng.uniform(0.0, 0.2, 6)
        expected = rpo.gamma_po(margins, logp, ref, beta=0.2)
        r = rpo.evaluate_batch("gamma_po(beta=0.2)", logp=logp, ref_logp=ref, margins=margins)
        self.assertEqual(r["loss"], expected.loss)
        self.same(r["pair_loss"], expected.group_loss)
        self.same(r["grad_logp"], expected.grad_logp)
        # Without margins: rpo.GammaPOMargins of the batch's gaps, from an empty queue.
        for simpo in (False, True):
            beta = 2.5 if simpo else 0.2
            optimiser = rpo.GammaPOMargins(beta=beta, gamma_beta_ratio=0.3, simpo=simpo, tau=4.0, iterations=9)
            gaps = rpo.gamma_po_gaps(logp, ref, length, beta=beta, simpo=simpo)
            computed = optimiser.compute(gaps)
            expected = rpo.gamma_po(computed, logp, ref, length, beta=beta, gamma_beta_ratio=0.3, simpo=simpo)
            spec = f"gamma_po(beta={beta}, gamma_beta_ratio=0.3, simpo={str(simpo).lower()}, tau=4, iterations=9)"
            fields = {"logp": logp, ("length" if simpo else "ref_logp"): length if simpo else ref}
            r = rpo.evaluate_batch(spec, **fields)
            self.assertEqual(r["loss"], expected.loss)
            self.same(r["grad_logp"], expected.grad_logp)

    def test_wpo_and_ld_dpo(self):
        rng = np.random.default_rng(33)
        logp, ref, _ = pair_batch(rng, 5)
        weights = rng.uniform(0.0, 3.0, 5)
        expected = rpo.evaluate_weighted(rpo.Loss("cdpo(beta=0.3, epsilon=0.2)"), weights, logp, ref)
        r = rpo.evaluate_batch("wpo(loss=cdpo(beta=0.3, epsilon=0.2))", logp=logp, ref_logp=ref,
                               group_weights=weights)
        self.assertEqual(r["loss"], expected.loss)
        self.same(r["group_loss"], expected.group_loss)
        self.same(r["grad_logp"], expected.grad_logp)
        self.same(r["grad_ref_logp"], expected.grad_ref_logp)
        # LD-DPO: the desensitised sequence log-probs, the loss on them, and the token chain rule.
        token_logp = -rng.uniform(0.0, 5.0, (4, 8))
        token_ref = token_logp + rng.normal(0.0, 1.0, (4, 8))
        mask = np.zeros((4, 8), bool)
        for i, (start, n) in enumerate([(1, 6), (1, 3), (0, 2), (2, 6)]):
            mask[i, start:start + n] = True
        alpha = 0.4
        seq = rpo.length_desensitized_logp(token_logp, mask, alpha)
        seq_ref = rpo.length_desensitized_logp(token_ref, mask, alpha)
        expected = rpo.Loss("dpo(beta=0.2)").value_and_grad(seq, ref_logp=seq_ref)
        r = rpo.evaluate_batch("ld_dpo(alpha=0.4, loss=dpo(beta=0.2))", token_logp=token_logp,
                               token_ref_logp=token_ref, mask=mask)
        self.assertEqual(r["loss"], expected.loss)
        self.same(r["logp"], seq)
        self.same(r["ref_logp"], seq_ref)
        self.same(r["group_loss"], expected.group_loss)
        self.same(r["grad_token_logp"],
                  rpo.length_desensitized_logp_backward(expected.grad_logp, mask, alpha, tokens=8))
        self.same(r["grad_token_ref_logp"],
                  rpo.length_desensitized_logp_backward(expected.grad_ref_logp, mask, alpha, tokens=8))

    @needs_torch
    def test_against_torch_reference(self):
        for case, spec in torch_reference.BATCH_CASES:
            name, params = torch_reference.parse_batch_spec(spec)
            rng = torch_reference.random.Random(f"test:{case}")
            for index in range(torch_reference.BATCHES_PER_CASE):
                with self.subTest(case=case, batch=index):
                    fields = torch_reference._draw_batch(rng, name, params, index)
                    loss, outputs = torch_reference.evaluate_batch_reference(spec, fields)
                    r = rpo.evaluate_batch(spec, **fields)
                    self.assertAlmostEqual(r["loss"], loss, delta=1e-10 * abs(loss) + 1e-13)
                    for key, values in outputs.items():
                        np.testing.assert_allclose(r[key], np.array(values), rtol=1e-9, atol=1e-12)

    def test_batch_methods(self):
        methods = {m["name"]: m for m in rpo.batch_methods()}
        self.assertEqual(list(methods), ["kto", "bco_unpaired", "aot", "gamma_po", "wpo", "ld_dpo"])
        self.assertEqual(methods["kto"]["spec"], "kto(beta=0.1, lambda_desirable=1, lambda_undesirable=1)")
        self.assertEqual(methods["aot"]["parameters"]["unpaired"][0], "false")

    def test_errors(self):
        logp, ref = np.array([-3.0, -5.0]), np.array([-3.0, -5.0])
        cases = [
            (("ktoo",), {}, "unknown batch method \"ktoo\""),
            (("dpo",), {}, "is a loss of one group"),
            (("kto(beta=-1)",), {}, "beta must be"),
            (("kto",), {"logp": logp, "ref_logp": ref, "desireable": [1, 0], "z0": 0.0},
             "unknown field \"desireable\""),
            (("kto",), {"logp": logp, "ref_logp": ref, "z0": 0.0}, "field \"desirable\" is missing"),
            (("kto",), {"logp": logp, "ref_logp": ref, "desirable": [1, 2], "z0": 0.0},
             "field \"desirable\" entry 1 must be 0 or 1, but got 2"),
            (("kto",), {"logp": logp, "ref_logp": np.zeros(3), "desirable": [1, 0], "z0": 0.0},
             "ref_logp has 3 entries"),
            (("kto",), {"logp": logp, "ref_logp": ref, "desirable": [1, 0], "z0": [0.0]},
             "field \"z0\" must be a number"),
            (("kto",), {"logp": np.zeros((2, 2, 2)), "ref_logp": ref, "desirable": [1, 0], "z0": 0.0},
             "must be a number, a 1-D or a 2-D array"),
            (("kto",), {"logp": ["a", "b"], "ref_logp": ref, "desirable": [1, 0], "z0": 0.0}, "must hold numbers"),
            (("kto",), {"logp": [np.nan, -1.0], "ref_logp": ref, "desirable": [1, 0], "z0": 0.0}, "logp[0]"),
            (("wpo(loss=dpo)",), {"logp": logp, "ref_logp": ref, "group_weights": [1.0, 2.0]},
             "group_weights has 2 entries but the batch has 1 groups"),
        ]
        for args, kwargs, message in cases:
            with self.subTest(args=args, kwargs=list(kwargs)):
                with self.assertRaises(ValueError) as caught:
                    rpo.evaluate_batch(*args, **kwargs)
                self.assertIn(message, str(caught.exception))


class TestDocs(unittest.TestCase):
    def test_readme_example_runs(self):
        """python/README.md's example of these functions runs as written (it prints, so it asserts nothing else)."""
        code = support.readme_example("## Batch-level and token-level functions")
        self.assertIn("rpo.wpo_weights", code)
        support.run_readme_example(code)

    def test_every_function_has_a_docstring(self):
        for name in ("kto", "kto_reference_point", "bco", "aot", "evaluate_weighted", "gamma_po_gaps", "gamma_po",
                     "wpo_weights", "length_desensitized_logp", "length_desensitized_logp_backward", "evaluate_batch",
                     "batch_methods"):
            with self.subTest(name):
                self.assertIn(name, rpo.__all__)
                self.assertGreater(len(getattr(rpo, name).__doc__), 200)
        for cls, methods in ((rpo.GammaPOMargins, ("compute", "push", "clear")), (rpo.KTOResult, ())):
            self.assertTrue(cls.__doc__)
            for method in methods:
                self.assertTrue(getattr(cls, method).__doc__)


if __name__ == "__main__":
    unittest.main()
