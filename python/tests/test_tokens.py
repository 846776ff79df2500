"""rpo.evaluate_tokens and rpo.torch.token_loss, the fused pass from logits for an rpo.Loss, against PyTorch autograd
through log_softmax, gather, the masked sum (or mean) and the independent reference loss of
tests/reference/torch_reference.py: the reduced loss, the per-group losses, the sequence log-probs and d loss / d
logits, in float64 (to 1e-10 relative to the largest entry) and float32 (to 1e-5); in place and into a new array;
pairs and ragged groups; bad input.

Run by CTest as python:tokens, with tests/reference on PYTHONPATH; by hand, from python/tests:
    PYTHONPATH=<build>/python:../../tests/reference /usr/bin/python3 -m unittest -v test_tokens.py
"""
import unittest
import zlib

import numpy as np
import torch

import rpo
import rpo.torch
import support
import torch_reference

PAIR_SPECS = ["dpo(beta=0.3)", "simpo", "ipo", "cdpo", "rpo_bwd(beta=0.2, eta=0.5)", "sppo_hard"]
GROUP_SPECS = ["rpo_sqloo", "rpo_softmax_bwd", "listwise_dpo"]


def draw(seed, sequences, tokens, vocab, scale=3.0):
    """Logits, targets (-100 at masked positions), a response of at least one token per sequence between a prompt and
    padding, and sequence-level ref_logp and rewards (distinct, for the schemes that rank by reward)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, scale, (sequences, tokens, vocab))
    mask = np.zeros((sequences, tokens), dtype=bool)
    for s in range(sequences):
        a, b = sorted(int(x) for x in rng.integers(0, tokens + 1, 2))
        if a == b:
            a, b = 0, tokens
        mask[s, a:b] = True
    target = np.where(mask, rng.integers(0, vocab, (sequences, tokens)), -100)
    ref_logp = rng.uniform(-5.0, 5.0, sequences)
    reward = rng.permutation(sequences) * 0.7 - 1.0
    return logits, target, mask, ref_logp, reward


def reference(spec, logits, target, mask, ref_logp, reward, offsets, per_sequence, reduction):
    """The trainers' way, in float64 autograd: log_softmax, gather, masked sum (or mean), the reference loss."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor(np.where(mask, target, 0))
    token_logp = torch.log_softmax(z, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    m = torch.tensor(mask, dtype=torch.float64)
    logp = (token_logp * m).sum(-1)
    length = m.sum(-1)
    if per_sequence == "mean":
        logp = logp / length
    kwargs = dict(ref_logp=torch.tensor(ref_logp), length=length, reward=torch.tensor(reward))
    loss = torch_reference.batch_loss(spec, logp, reduction=reduction, offsets=offsets, **kwargs)
    groups = torch_reference.batch_loss(spec, logp.detach(), reduction="none", offsets=offsets, **kwargs)
    loss.backward()
    return loss.item(), groups.detach().numpy(), logp.detach().numpy(), z.grad.numpy()


class EvaluateTokensTest(unittest.TestCase):
    def check_close(self, got, want, rtol, what):
        scale = max(float(np.max(np.abs(want))), 1e-300)
        np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale, err_msg=what)

    def run_case(self, spec, offsets, per_sequence, reduction, sequences):
        logits, target, mask, ref_logp, reward = draw(zlib.crc32(f"{spec}/{per_sequence}/{reduction}".encode()), sequences, 5, 37)
        loss, groups, logp, grad = reference(spec, logits, target, mask, ref_logp, reward, offsets, per_sequence,
                                             reduction)
        r = rpo.evaluate_tokens(rpo.Loss(spec), logits, target, mask, ref_logp=ref_logp, reward=reward,
                                offsets=offsets, per_sequence=per_sequence, reduction=reduction)
        what = f"{spec}, per_sequence={per_sequence}, reduction={reduction}"
        self.assertAlmostEqual(r.loss, loss, delta=1e-10 * max(abs(loss), 1.0), msg=what)
        self.check_close(r.group_loss, groups, 1e-10, what + ": group_loss")
        self.check_close(r.logp, logp, 1e-12, what + ": logp")
        np.testing.assert_array_equal(r.length, mask.sum(-1))
        self.check_close(r.grad_logits, grad, 1e-10, what + ": grad_logits")
        self.assertEqual(r.grad_logits.dtype, np.float64)
        self.assertEqual(r.grad_logits.shape, logits.shape)

    def test_pairs_against_autograd(self):
        for spec in PAIR_SPECS:
            for per_sequence in ("sum", "mean"):
                for reduction in ("mean", "sum"):
                    with self.subTest(spec=spec, per_sequence=per_sequence, reduction=reduction):
                        self.run_case(spec, None, per_sequence, reduction, 6)

    def test_groups_against_autograd(self):
        for spec in GROUP_SPECS:
            for per_sequence in ("sum", "mean"):
                with self.subTest(spec=spec, per_sequence=per_sequence):
                    self.run_case(spec, [0, 4, 6, 9], per_sequence, "mean", 9)

    def test_in_place_is_the_new_array_written_over_the_logits(self):
        logits, target, mask, ref_logp, _ = draw(5, 4, 6, 101)
        loss = rpo.Loss("dpo")
        fresh = rpo.evaluate_tokens(loss, logits, target, mask, ref_logp=ref_logp)
        own = logits.copy()
        r = rpo.evaluate_tokens(loss, own, target, mask, ref_logp=ref_logp, in_place=True)
        self.assertTrue(np.shares_memory(r.grad_logits, own))
        np.testing.assert_array_equal(own, fresh.grad_logits)
        self.assertEqual(r.loss, fresh.loss)

    def test_float32_against_the_float64_reference(self):
        logits, target, mask, ref_logp, reward = draw(7, 6, 4, 53)
        _, _, _, grad = reference("dpo", logits, target, mask, ref_logp, reward, None, "sum", "mean")
        r = rpo.evaluate_tokens(rpo.Loss("dpo"), logits.astype(np.float32), target, mask,
                                ref_logp=ref_logp.astype(np.float32))
        self.assertEqual(r.grad_logits.dtype, np.float32)
        self.check_close(r.grad_logits, grad, 1e-5, "float32")

    def test_logits_of_magnitude_1e4_are_finite(self):
        logits, target, mask, ref_logp, _ = draw(9, 4, 3, 17, scale=1e4)
        for dtype in (np.float64, np.float32):
            r = rpo.evaluate_tokens(rpo.Loss("dpo"), logits.astype(dtype), target, mask, ref_logp=ref_logp)
            self.assertTrue(np.isfinite(r.loss))
            self.assertTrue(np.all(np.isfinite(r.grad_logits)))

    def test_torch_token_loss_backward_is_the_autograd_gradient(self):
        logits, target, mask, ref_logp, reward = draw(11, 6, 5, 29)
        _, _, _, grad = reference("simpo", logits, target, mask, ref_logp, reward, None, "sum", "mean")
        z = torch.tensor(logits, requires_grad=True)
        value = rpo.torch.token_loss("simpo", z, torch.tensor(target), torch.tensor(mask))
        (2.0 * value).backward()
        self.assertEqual(value.dtype, torch.float64)
        self.check_close(z.grad.numpy(), 2.0 * grad, 1e-10, "token_loss")
        z32 = torch.tensor(logits, dtype=torch.float32, requires_grad=True)
        rpo.torch.token_loss(rpo.Loss("simpo"), z32, torch.tensor(target), torch.tensor(mask)).backward()
        self.assertEqual(z32.grad.dtype, torch.float32)
        self.check_close(z32.grad.numpy(), grad, 1e-5, "token_loss float32")

    def test_bad_input(self):
        logits, target, mask, ref_logp, _ = draw(13, 4, 3, 11)
        dpo, simpo = rpo.Loss("dpo"), rpo.Loss("simpo")
        bad = target.copy()
        bad[np.argwhere(mask)[0][0], np.argwhere(mask)[0][1]] = 11
        with self.assertRaisesRegex(ValueError, r"target.*11"):
            rpo.evaluate_tokens(dpo, logits, bad, mask, ref_logp=ref_logp)
        with self.assertRaisesRegex(ValueError, r"target must have the shape \(S, T\) = \(4, 3\)"):
            rpo.evaluate_tokens(dpo, logits, target[:, :2], mask, ref_logp=ref_logp)
        with self.assertRaisesRegex(ValueError, r"mask must have shape \(4, 3\)"):
            rpo.evaluate_tokens(dpo, logits, target, mask[:3], ref_logp=ref_logp)
        with self.assertRaisesRegex(ValueError, r"logits must be 3-D"):
            rpo.evaluate_tokens(dpo, logits[0], target, mask, ref_logp=ref_logp)
        with self.assertRaisesRegex(ValueError, r"in_place=True needs logits to be a writable, C-contiguous"):
            rpo.evaluate_tokens(dpo, logits.tolist(), target, mask, ref_logp=ref_logp, in_place=True)
        with self.assertRaisesRegex(ValueError, r"in_place=True needs"):
            rpo.evaluate_tokens(dpo, np.asfortranarray(logits), target, mask, ref_logp=ref_logp, in_place=True)
        with self.assertRaisesRegex(ValueError, r"per_sequence must be \"sum\" or \"mean\""):
            rpo.evaluate_tokens(dpo, logits, target, mask, ref_logp=ref_logp, per_sequence="max")
        with self.assertRaisesRegex(ValueError, r"ref_logp"):
            rpo.evaluate_tokens(dpo, logits, target, mask)
        empty = mask.copy()
        empty[1] = False
        with self.assertRaisesRegex(ValueError, r"sequence 1 has an empty response"):
            rpo.evaluate_tokens(simpo, logits, target, empty)
        with self.assertRaises(TypeError):
            rpo.torch.token_loss("dpo", logits, target, mask)

    def test_readme_example_runs(self):
        """python/README.md's example of the fused pass runs as written."""
        code = support.readme_example("## The fused pass from logits")
        self.assertIn("rpo.evaluate_tokens", code)
        support.run_readme_example(code)
        self.assertTrue(rpo.evaluate_tokens.__doc__ and rpo.torch.token_loss.__doc__)


if __name__ == "__main__":
    unittest.main()
