#!/usr/bin/python3
"""rpo against PyTorch autograd on the CPU, side by side in one run.

Cases:
  fused/<preset>/SxTxV   logits [S, T, V] (float32) -> log_softmax -> gather -> masked sum -> the preset's loss ->
                         backward, the way trainers write it, against rpo::evaluate_tokens (in place).
  pairs/<preset>/N       N pairs of sequence log-probs (float64) -> the loss -> backward, against rpo::evaluate, for
                         every registered loss that takes pairs (`rpo_torch_driver list`; --presets to choose).
PyTorch's loss formulas are tests/reference/torch_reference.py's (written from the docs, independently of rpo).
rpo runs through build/<preset>/bench/rpo_torch_driver (--driver), OMP_NUM_THREADS = --threads; PyTorch with
torch.set_num_threads(--threads). Every timing runs in its own process (PyTorch at V = 128256 needs about 17 GB),
and is the median of several calls after a warm-up. Before timing, each case checks that both sides give the same
loss and gradient on the same inputs: pairs at the case's size, fused cases at S x 8 tokens with the case's V.

Fields of --json (one record per case): case, shape, ours_s, torch_s, speedup (torch_s / ours_s), ours_peak_bytes,
torch_peak_bytes (growth of the peak resident set during the timed calls), and for fused cases bandwidth_fraction
(3 x the bytes of the logits / copy bandwidth, divided by ours_s; the copy bandwidth is a parallel memcpy measured
by the driver in the same run).

    /usr/bin/python3 bench/compare_torch.py --driver build/gcc/bench/rpo_torch_driver --json perf.json \
        --markdown perf.md        # perf.md: the table of docs/performance.md
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import torch_reference as ref  # noqa: E402

PAIR_SIZES = (64, 4096, 1 << 20)
FUSED = (("dpo", 16, 512, 32000), ("dpo", 16, 512, 128256))


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def median_seconds(reps, call):
    call()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def peak_meter():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_kib("VmRSS:")


# ---------------------------------------------------------------------------------------------------------------
# PyTorch's side
# ---------------------------------------------------------------------------------------------------------------

def torch_pair_loss(preset, logp, ref_logp, length, reward):
    """The mean over pairs of the preset's loss; inputs have shape (2G,), pairs consecutive."""
    desc = ref.parse_spec(preset)
    pair = lambda t: None if t is None else t.reshape(-1, 2)  # noqa: E731
    return ref.pair_losses(desc, pair(logp), pair(ref_logp), pair(length), pair(reward)).mean()


def torch_fused(preset, logits, target, mask, ref_logp, reward):
    """Trainer-style: log_softmax, gather, masked sum, the loss, backward; returns the loss (logits.grad is set)."""
    logp = torch.log_softmax(logits, dim=-1)
    token = torch.gather(logp, -1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    seq = (token * mask).sum(-1)
    length = mask.sum(-1)
    loss = torch_pair_loss(preset, seq, ref_logp, length, reward)
    loss.backward()
    return loss


def fused_inputs(S, T, V, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(S, T, V, generator=g) * 2
    target = torch.randint(0, V, (S, T), generator=g)
    mask = torch.ones(S, T)
    ref_logp = torch.full((S,), -100.0)
    reward = torch.zeros(S)
    reward[0::2] = 1
    return logits, target, mask, ref_logp, reward


def pair_inputs(n_pairs, seed=0, preset=""):
    rng = np.random.default_rng(seed)
    logp = rng.uniform(-200, -5, 2 * n_pairs)
    reward = rng.uniform(-3, 3, 2 * n_pairs)
    reward[0::2] = reward[1::2] + rng.uniform(0.01, 3, n_pairs)  # r_c > r_r, which ODPO needs
    if preset.split("(")[0] == "sppo_soft":   # its rewards are win probabilities in [0, 1]
        reward = 1.0 / (1.0 + np.exp(-reward))
    return {"logp": logp, "ref_logp": logp + rng.uniform(-10, 10, 2 * n_pairs),
            "length": np.round(rng.uniform(1, 200, 2 * n_pairs)), "reward": reward}


def worker(args):
    """One timing of PyTorch in this process; prints a JSON line."""
    torch.set_num_threads(args.threads)
    if args.worker == "fused":
        logits, target, mask, ref_logp, reward = fused_inputs(args.S, args.T, args.V)
        logits.requires_grad_(True)

        def call():
            logits.grad = None
            torch_fused(args.preset, logits, target, mask, ref_logp, reward)
    else:
        data = {k: torch.from_numpy(v) for k, v in pair_inputs(args.pairs, preset=args.preset).items()}
        logp = data["logp"].clone().requires_grad_(True)

        def call():
            logp.grad = None
            torch_pair_loss(args.preset, logp, data["ref_logp"], data["length"], data["reward"]).backward()
    call()
    before = peak_meter()
    seconds = median_seconds(args.reps, call)
    print(json.dumps({"seconds": seconds, "peak_extra_bytes": (status_kib("VmHWM:") - before) * 1024}))


# ---------------------------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------------------------

def run_json(command, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def close(a, b, rtol, atol):
    return np.all(np.abs(a - b) <= atol + rtol * np.abs(b))


def check_pairs(args, preset, n_pairs, directory):
    data = pair_inputs(n_pairs, preset=preset)
    for name, values in data.items():
        values.astype(np.float64).tofile(os.path.join(directory, name + ".f64"))
    ours = run_json([args.driver, "pairs", preset, directory, "1"], args.threads)
    grad = np.fromfile(os.path.join(directory, "grad.f64"))
    logp = torch.from_numpy(data["logp"]).requires_grad_(True)
    t = {k: torch.from_numpy(v) for k, v in data.items()}
    loss = torch_pair_loss(preset, logp, t["ref_logp"], t["length"], t["reward"])
    loss.backward()
    scale = float(np.max(np.abs(logp.grad.numpy()))) or 1.0
    if not (math.isclose(ours["loss"], loss.item(), rel_tol=1e-10, abs_tol=1e-12)
            and close(grad, logp.grad.numpy(), 1e-9, 1e-12 * scale)):
        raise SystemExit(f"pairs/{preset}/{n_pairs}: rpo and PyTorch disagree (loss {ours['loss']} vs {loss.item()})")


def check_fused(args, preset, S, V, directory):
    T = 8
    logits, target, mask, ref_logp, reward = fused_inputs(S, T, V, seed=1)
    mask[1, :3] = 0  # a prompt prefix in one response
    logits.numpy().astype(np.float32).tofile(os.path.join(directory, "logits.f32"))
    target.numpy().astype(np.int64).tofile(os.path.join(directory, "target.i64"))
    mask.numpy().astype(np.uint8).tofile(os.path.join(directory, "mask.u8"))
    ref_logp.numpy().astype(np.float32).tofile(os.path.join(directory, "ref_logp.f32"))
    reward.numpy().astype(np.float32).tofile(os.path.join(directory, "reward.f32"))
    ours = run_json([args.driver, "fused", preset, str(S), str(T), str(V), "1", directory], args.threads)
    grad = np.fromfile(os.path.join(directory, "grad.f32"), dtype=np.float32).reshape(S, T, V)
    logits.requires_grad_(True)
    loss = torch_fused(preset, logits, target, mask, ref_logp, reward)
    theirs = logits.grad.numpy()
    scale = float(np.max(np.abs(theirs)))
    if not (math.isclose(ours["loss"], loss.item(), rel_tol=1e-5, abs_tol=1e-6)
            and close(grad, theirs, 1e-4, 1e-5 * scale)):
        raise SystemExit(f"fused/{preset}/V={V}: rpo and PyTorch disagree (loss {ours['loss']} vs {loss.item()}, "
                         f"max |grad diff| {np.max(np.abs(grad - theirs))}, max |grad| {scale})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", default=os.path.join(HERE, "..", "build", "gcc", "bench", "rpo_torch_driver"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write one record per case to this file")
    parser.add_argument("--markdown", help="write the table of docs/performance.md to this file")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--presets", default="", help="comma-separated pairwise presets (default: every one the "
                                                      "driver lists)")
    parser.add_argument("--worker", choices=("fused", "pairs"), help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--S", type=int)
    parser.add_argument("--T", type=int)
    parser.add_argument("--V", type=int)
    parser.add_argument("--pairs", type=int)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    records = []
    me = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads)]
    print(f"{'case':34} {'ours (s)':>11} {'torch (s)':>11} {'speedup':>8} {'ours peak':>11} {'torch peak':>11} "
          f"{'floor':>6}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rpo-compare-") as directory:
        for preset, S, T, V in FUSED:
            name = f"fused/{preset}/{S}x{T}x{V}"
            if args.only not in name:
                continue
            check_fused(args, preset, S, V, directory)
            ours = run_json([args.driver, "fused", preset, str(S), str(T), str(V), "5"], args.threads)
            theirs = run_json(me + ["--worker", "fused", "--preset", preset, "--S", str(S), "--T", str(T), "--V", str(V),
                                    "--reps", "3"], args.threads)
            floor = 3.0 * S * T * V * 4 / ours["copy_bytes_per_second"]
            records.append({"case": name, "shape": [S, T, V], "ours_s": ours["seconds"], "torch_s": theirs["seconds"],
                            "speedup": theirs["seconds"] / ours["seconds"], "ours_peak_bytes": ours["peak_extra_bytes"],
                            "torch_peak_bytes": theirs["peak_extra_bytes"], "bandwidth_fraction": floor / ours["seconds"]})
            report(records[-1])
        presets = args.presets.split(",") if args.presets else subprocess.run(
            [args.driver, "list"], check=True, capture_output=True, text=True).stdout.split()
        for preset in presets:
            for n in PAIR_SIZES:
                name = f"pairs/{preset}/{n}"
                if args.only not in name:
                    continue
                check_pairs(args, preset, n, directory)
                reps = 2000 if n <= 64 else 200 if n <= 4096 else 5
                ours = run_json([args.driver, "pairs", preset, directory, str(reps)], args.threads)
                theirs = run_json(me + ["--worker", "pairs", "--preset", preset, "--pairs", str(n),
                                        "--reps", str(min(reps, 500))], args.threads)
                records.append({"case": name, "shape": [n], "ours_s": ours["seconds"], "torch_s": theirs["seconds"],
                                "speedup": theirs["seconds"] / ours["seconds"],
                                "ours_peak_bytes": ours["peak_extra_bytes"],
                                "torch_peak_bytes": theirs["peak_extra_bytes"]})
                report(records[-1])
    if args.json:
        with open(args.json, "w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(records))


def size(n_bytes):
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes // 1024} KiB"


def markdown(records):
    """The records as docs/performance.md's table."""
    lines = ["| case | shape | rpo (s) | PyTorch (s) | speedup | rpo peak extra | PyTorch peak extra | fraction of floor |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        floor = f"{r['bandwidth_fraction']:.2f}" if "bandwidth_fraction" in r else ""
        lines.append(f"| {r['case']} | {'x'.join(map(str, r['shape']))} | {r['ours_s']:.4g} | {r['torch_s']:.4g} | "
                     f"{r['speedup']:.1f}x | {size(r['ours_peak_bytes'])} | {size(r['torch_peak_bytes'])} | {floor} |")
    return "\n".join(lines) + "\n"


def report(r):
    floor = f"{r['bandwidth_fraction']:6.2f}" if "bandwidth_fraction" in r else " " * 6
    print(f"{r['case']:34} {r['ours_s']:11.4g} {r['torch_s']:11.4g} {r['speedup']:7.1f}x {r['ours_peak_bytes']:11d} "
          f"{r['torch_peak_bytes']:11d} {floor}", flush=True)


if __name__ == "__main__":
    main()
