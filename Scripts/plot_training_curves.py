#!/usr/bin/env python3
"""Draws Docs/training-curves.png from the progress logs of the built-in model's training runs.

The logs are what `calm train-autoencoder`, `calm train` and `calm train-baseline` print
(one "step N/T  loss X ... compute Y FLOP" line per step, and "step N: recon-acc mean A% sampled
B%" lines from the autoencoder's held-out checks). Needs matplotlib (pip install matplotlib).

usage: Scripts/plot_training_curves.py --ae LOG [LOG ...] --calm LOG [LOG ...] \
           --baseline LOG [LOG ...] --out Docs/training-curves.png
"""
import argparse
import re

STEP = re.compile(r"^step (\d+)/\d+\s+loss ([0-9.eE+-]+).*compute ([0-9.eE+-]+) FLOP")
RECON = re.compile(r"^step (\d+): recon-acc mean ([0-9.]+)%\s+sampled ([0-9.]+)%")


def read(paths):
    """Step lines and recon lines of logs that continue each other (later runs win on repeats).

    A resumed run counts its compute from zero, so the compute axis is rebuilt as
    step × (compute per step of the first line read): every step of a run costs the same.
    """
    steps, recon = {}, {}
    per_step = None
    for path in paths:
        with open(path) as f:
            for line in f:
                m = STEP.match(line)
                if m:
                    step, compute = int(m.group(1)), float(m.group(3))
                    if per_step is None:
                        per_step = compute / step
                    steps[step] = (float(m.group(2)), step * per_step)
                m = RECON.match(line)
                if m:
                    recon[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    return sorted(steps.items()), sorted(recon.items())


def smooth(values, alpha=0.05):
    out, ema = [], None
    for v in values:
        ema = v if ema is None else (1 - alpha) * ema + alpha * v
        out.append(ema)
    return out


def loss_panel(ax, steps, color, label, ylabel, title):
    """Raw losses (faint) and their moving average against compute in TFLOP."""
    x = [v[1] / 1e12 for _, v in steps]
    y = [v[0] for _, v in steps]
    ax.plot(x, y, color=color, alpha=0.25, lw=0.6)
    ax.plot(x, smooth(y), color=color, label=label)
    ax.set_xlabel("training compute (TFLOP)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper right")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ae", nargs="+", required=True)
    p.add_argument("--calm", nargs="+", required=True)
    p.add_argument("--baseline", nargs="+", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ae_steps, ae_recon = read(args.ae)
    calm_steps, _ = read(args.calm)
    base_steps, _ = read(args.baseline)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.plot([s for s, _ in ae_recon], [v[0] for _, v in ae_recon], "o-", label="mean latent")
    ax.plot([s for s, _ in ae_recon], [v[1] for _, v in ae_recon], "s--", label="latent + posterior noise")
    ax.axhline(99.5, color="grey", lw=0.8, ls=":", label="99.5% target")
    ax.set_ylim(90, 100)
    ax.set_xlabel("step (8 × 512 tokens)")
    ax.set_ylabel("held-out token reconstruction (%)")
    ax.set_title("Stage 1: autoencoder (K = 4)")
    ax.legend(loc="lower right")

    loss_panel(axes[1], calm_steps, "tab:blue", "energy loss (EMA)", "energy loss (N = 8, M = 100)",
               "Stage 2: CALM energy model")
    budget = base_steps[-1][1][1] / 1e12
    axes[1].axvline(budget, color="tab:orange", lw=0.8, ls="--", label="baseline's total compute")
    axes[1].legend(loc="upper right")
    loss_panel(axes[2], base_steps, "tab:orange", "cross-entropy (EMA)", "next-token cross-entropy (nats)",
               "Discrete Llama baseline (equal compute)")

    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
