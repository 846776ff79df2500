#!/usr/bin/python3
"""Draws the bandit lab's figures (docs/bandit_lab.md) from the CSV that rpo-bandit-lab writes.

    /usr/bin/python3 examples/bandit_lab/plot.py DIR [--out FIGDIR]

Reads DIR/curves.csv and DIR/optimum.csv; writes training.png, responses.png, rpo_vs_rloo.png, learnt_vs_truth.png
and iterations.png into FIGDIR (default: DIR). Needs Debian's python3-matplotlib; exits 77 (CTest's "skipped") when
matplotlib is missing, 2 on bad input.
"""
import argparse
import csv
import math
import os
import sys
from collections import defaultdict

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("plot.py: matplotlib is missing (apt-get install python3-matplotlib)", file=sys.stderr)
    sys.exit(77)

METHODS = ["RPO-sq", "RPO-fwd", "RPO-bwd", "DPO", "IPO", "SimPO"]


def load(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        print(f"plot.py: cannot read {path}: {e}", file=sys.stderr)
        sys.exit(2)


def mean_curve(rows, field):
    """Mean and min/max over seeds of `field`, by step."""
    by_step = defaultdict(list)
    for r in rows:
        by_step[int(r["step"])].append(float(r[field]))
    steps = sorted(by_step)
    return (steps, [sum(by_step[s]) / len(by_step[s]) for s in steps], [min(by_step[s]) for s in steps],
            [max(by_step[s]) for s in steps])


def select(rows, **want):
    return [r for r in rows if all(r[k] == str(v) for k, v in want.items())]


def final_rows(rows):
    """The last record of each run (experiment, method, reward model, regime, K, seed, learning rate)."""
    last = {}
    for r in rows:
        key = (r["experiment"], r["method"], r["reward_model"], r["regime"], r["k"], r["seed"], r["learning_rate"])
        if key not in last or int(r["step"]) >= int(last[key]["step"]):
            last[key] = r
    return list(last.values())


def band(ax, rows, field, label, **style):
    if not rows:
        return
    steps, mean, lo, hi = mean_curve(rows, field)
    (line,) = ax.plot(steps, mean, label=label, **style)
    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)


def training(curves, optimum, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = select(curves, experiment="grid", reward_model="judge", regime="online", k=4)
    for m in METHODS:
        band(axes[0], select(rows, method=m), "reward", m)
        band(axes[1], select(rows, method=m), "kl", m)
    for ax, field, name in ((axes[0], "reward", "true reward"), (axes[1], "kl", "KL(pi || pi_ref)")):
        ax.axhline(float(optimum["grid"][field]), color="black", linestyle="--", linewidth=1, label="pi*")
        ax.set_xlabel("step")
        ax.set_ylabel(name)
    axes[0].set_title("Online, K = 4, exact judge: reward")
    axes[1].set_title("KL to the reference")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "training.png"), dpi=110)


def responses(curves, out):
    finals = final_rows(select(curves, experiment="grid", reward_model="judge"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, regime in zip(axes, ("offline", "online")):
        for m in METHODS:
            ks, tv = [], []
            for k in sorted({int(r["k"]) for r in finals}):
                v = [float(r["tv"]) for r in finals if r["method"] == m and r["regime"] == regime and int(r["k"]) == k]
                if v:
                    ks.append(k)
                    tv.append(sum(v) / len(v))
            ax.plot(ks, tv, marker="o", label=m)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("K responses per group")
        ax.set_title(f"{regime}: distance to pi* after training")
    axes[0].set_ylabel("total variation to pi*")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "responses.png"), dpi=110)


def rpo_vs_rloo(curves, out):
    finals = final_rows(select(curves, experiment="rloo"))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for m, color in (("RPO-bwd", "tab:blue"), ("RLOO", "tab:red")):
        for rm, style in (("judge", "-"), ("noisy", ":")):
            rates = sorted({float(r["learning_rate"]) for r in finals})
            tv = []
            for rate in rates:
                v = [float(r["tv"]) for r in finals
                     if r["method"] == m and r["reward_model"] == rm and float(r["learning_rate"]) == rate]
                tv.append(sum(v) / len(v))
            ax.plot(rates, tv, style, marker="o", color=color,
                    label=f"{m}, {'exact judge' if rm == 'judge' else 'noisy judge'}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("SGD learning rate")
    ax.set_ylabel("final total variation to pi*")
    ax.set_title("Online RPO-bwd vs RLOO (K = 4)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "rpo_vs_rloo.png"), dpi=110)


def learnt_vs_truth(curves, optimum, out):
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rows = select(curves, experiment="overopt")
    band(ax, select(rows, reward_model="learnt"), "reward", "true reward, trained on the learnt model", color="tab:red")
    band(ax, select(rows, reward_model="learnt"), "model_reward", "learnt reward, trained on the learnt model",
         color="tab:red", linestyle="--")
    band(ax, select(rows, reward_model="judge"), "reward", "true reward, trained on the judge", color="tab:blue")
    ax.axhline(float(optimum["overopt"]["reward"]), color="black", linestyle="--", linewidth=1, label="pi* (judge)")
    ax.set_xlabel("step")
    ax.set_ylabel("expected reward")
    ax.set_title("Over-optimising a learnt reward model (hacking problem)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "learnt_vs_truth.png"), dpi=110)


def iterations(curves, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = select(curves, experiment="iterations")
    for m in ("RPO-bwd", "DPO"):
        band(axes[0], select(rows, method=m), "reward", m)
        band(axes[1], select(rows, method=m), "kl", m)
    rounds = sorted({(int(r["round"]), int(r["step"])) for r in rows})
    for ax in axes:
        for rnd in sorted({r for r, _ in rounds})[1:]:
            ax.axvline(max(s for r, s in rounds if r == rnd - 1), color="grey", linewidth=0.5)
        ax.set_xlabel("step (grey lines: pi_ref refreshed)")
    axes[0].set_ylabel("true reward")
    axes[1].set_ylabel("KL to the original pi_ref")
    axes[0].set_title("Iterative offline rounds: reward")
    axes[1].set_title("KL")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "iterations.png"), dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="the directory rpo-bandit-lab wrote (--out)")
    parser.add_argument("--out", help="where the PNG files go (default: DIR)")
    args = parser.parse_args()
    out = args.out or args.dir
    os.makedirs(out, exist_ok=True)
    curves = load(os.path.join(args.dir, "curves.csv"))
    optimum = {r["experiment"]: r for r in load(os.path.join(args.dir, "optimum.csv"))}
    if not curves or "grid" not in optimum or "overopt" not in optimum:
        print(f"plot.py: {args.dir} holds no complete lab output", file=sys.stderr)
        return 2
    training(curves, optimum, out)
    responses(curves, out)
    rpo_vs_rloo(curves, out)
    learnt_vs_truth(curves, optimum, out)
    iterations(curves, out)
    print(f"plot.py: wrote 5 figures to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
