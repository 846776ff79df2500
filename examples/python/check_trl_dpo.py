#!/usr/bin/python3
"""Checks a TRL-style DPO loss, line by line, against rpo's reference with `rpo-eval --check`.

The loss below is written the way TRL's DPOTrainer writes its "sigmoid" loss (with the label smoothing of its
older versions): per-pair losses from the policy's and the reference's summed log-probs of the chosen and rejected
responses. The script evaluates it at random pairs, takes its gradients with autograd, writes one JSON line per
pair with the inputs and what the implementation computed, and asks rpo-eval whether those numbers are right.

    /usr/bin/python3 examples/python/check_trl_dpo.py --rpo-eval build/gcc/tools/rpo-eval
    /usr/bin/python3 examples/python/check_trl_dpo.py --rpo-eval build/gcc/tools/rpo-eval --bug  # finds the bug

Exit code: 0 when rpo-eval agrees, 1 when it reports mismatches (with --bug, the other way round).
docs/rpo_eval.md walks through it.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F


def trl_style_dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
                       reference_rejected_logps, beta=0.1, label_smoothing=0.0, bug=False):
    """Per-pair DPO losses in TRL's form: -logsigmoid(beta * logits), logits the difference of log-ratios."""
    pi_logratios = policy_chosen_logps - policy_rejected_logps
    ref_logratios = reference_chosen_logps - reference_rejected_logps
    if bug:  # a sign error of the kind LOSSES.md's user reports describe: the reference ratio added, not subtracted
        ref_logratios = -ref_logratios
    logits = pi_logratios - ref_logratios
    return (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing)


def write_cases(path, beta, label_smoothing, bug, pairs=32, seed=0):
    """One JSON line per pair: inputs as rpo-eval reads them (response 0 chosen) and the expected outputs."""
    generator = torch.Generator().manual_seed(seed)
    logp = -torch.rand(pairs, 2, generator=generator, dtype=torch.float64) * 300
    ref_logp = logp + torch.randn(pairs, 2, generator=generator, dtype=torch.float64) * 5
    logp.requires_grad_(True)
    ref_logp.requires_grad_(True)
    losses = trl_style_dpo_loss(logp[:, 0], logp[:, 1], ref_logp[:, 0], ref_logp[:, 1], beta, label_smoothing, bug)
    losses.sum().backward()  # the pairs are independent: each pair's gradient is its own loss's
    with open(path, "w") as out:
        for i in range(pairs):
            out.write(json.dumps({
                "logp": logp[i].tolist(), "ref_logp": ref_logp[i].tolist(),
                "loss": losses[i].item(), "grad_logp": logp.grad[i].tolist(),
                "grad_ref_logp": ref_logp.grad[i].tolist()}) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpo-eval", default="rpo-eval", help="the rpo-eval executable")
    parser.add_argument("--bug", action="store_true", help="check a version with a sign error")
    args = parser.parse_args()

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for spec, beta, smoothing in [("dpo(beta=0.1)", 0.1, 0.0), ("cdpo(beta=0.25, epsilon=0.1)", 0.25, 0.1)]:
            cases = pathlib.Path(tmp) / "cases.jsonl"
            write_cases(cases, beta, smoothing, args.bug)
            result = subprocess.run([args.rpo_eval, "--loss", spec, "--check", "--input", str(cases)],
                                    capture_output=True, text=True)
            report = result.stdout.splitlines()
            print("\n".join(report if len(report) <= 4 else report[:3] + ["..."] + report[-1:]))
            if result.returncode not in (0, 1):
                sys.exit(f"rpo-eval failed: {result.stderr}")
            failures += result.returncode
    found = failures != 0
    print("rpo-eval found mismatches" if found else "rpo-eval agrees with this implementation")
    return 0 if found == args.bug else 1


if __name__ == "__main__":
    sys.exit(main())
