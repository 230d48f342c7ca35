#!/usr/bin/env python3
"""Plots the curves of any `calm train*` progress log: the training loss against the step, and
every held-out figure the recipe reports, one panel each.

The recipes print one "step N/T  loss X  lr ...  compute Y FLOP" line per step and, with
--eval-corpus/--eval-data, "step N: <held-out report>" lines:
  train-autoencoder  recon-acc mean A%  sampled B%  (...)  sigma S  KL/dim K
  train              held-out energy loss L (marginal M, gap G; ...)  Brier-1 B  BrierLM X (...)
  train-baseline     held-out cross-entropy L (perplexity P; ...)
  train-tm           held-out loss L (reg R, nce N; ...)
Logs given together continue each other (a resumed run's log after the first; later lines win
on repeated steps). `--run LABEL=LOG[,LOG...]` (repeatable) overlays several runs instead, and
`--x compute` puts the training FLOPs on the x axis (the "compute" column), which is how runs of
different step costs compare (equal-FLOPs experiments; a resumed run's log counts its compute from
0, so it is continued from the earlier log's count). Needs matplotlib (pip install matplotlib).

usage: Scripts/plot_progress.py LOG [LOG ...] --out curves.png [--title TEXT] [--smooth N]
       Scripts/plot_progress.py --run A=a.log --run B=b1.log,b2.log --x compute --out curves.png
"""
import argparse
import re

STEP = re.compile(r"^step (\d+)/\d+\s+loss ([0-9.eE+-]+)\s+lr ([0-9.eE+-]+)")
COMPUTE = re.compile(r"compute ([0-9.eE+-]+) FLOP")
REPORT = re.compile(r"^step (\d+): (.*)$")
# (panel title, pattern over the report text); each group is one curve named by the label list
FIGURES = [
    ("reconstruction (%)", re.compile(r"recon-acc mean ([0-9.]+)%\s+sampled ([0-9.]+)%"), ["mean", "sampled"]),
    ("posterior sigma", re.compile(r"sigma ([0-9.]+)"), ["sigma"]),
    ("KL per dimension", re.compile(r"KL/dim ([0-9.]+)"), ["KL/dim"]),
    ("held-out energy loss", re.compile(r"held-out energy loss ([0-9.eE+-]+) \(marginal ([0-9.eE+-]+)"), ["model", "marginal"]),
    ("gap to the marginal predictor", re.compile(r"gap ([0-9.eE+-]+)"), ["gap"]),
    ("held-out Brier (x100)", re.compile(r"Brier-1 ([0-9.eE+-]+)\s+BrierLM ([0-9.eE+-]+)"), ["Brier-1", "BrierLM"]),
    ("held-out cross-entropy", re.compile(r"held-out cross-entropy ([0-9.eE+-]+)"), ["cross-entropy"]),
    ("held-out TM loss", re.compile(r"held-out loss ([0-9.eE+-]+) \(reg ([0-9.eE+-]+), nce ([0-9.eE+-]+)"), ["loss", "reg", "nce"]),
]


def read(paths):
    """Step lines as (step, (loss, lr, compute or None)) and held-out reports as (step, text)."""
    steps, reports = {}, {}
    for path in paths:
        offset = None  # runs resumed by builds before 2026-12-07 count compute from 0: continue the earlier log's count
        with open(path, errors="replace") as f:
            for line in f:
                m = STEP.match(line)
                if m:
                    step, c = int(m.group(1)), COMPUTE.search(line)
                    compute = float(c.group(1)) if c else None
                    if offset is None and compute is not None:
                        before = steps.get(step - 1, (0, 0, None))[2]
                        offset = before if before is not None and compute < before else 0.0
                    if compute is not None:
                        compute += offset
                    steps[step] = (float(m.group(2)), float(m.group(3)), compute)
                    continue
                m = REPORT.match(line)
                if m:
                    reports[int(m.group(1))] = m.group(2)
    return sorted(steps.items()), sorted(reports.items())


def value(label, figure, text):
    """A report's figure; BrierLM is left out (NaN, a gap in the curve) where some Brier-n <= 0 (the
    trainer says so; older logs show it by Brier-1), since the reference's max(product, 0)^(1/4) is
    positive for two negative Brier-n."""
    if label == "BrierLM":
        brier1 = re.search(r"Brier-1 ([0-9.eE+-]+)", text)
        if "BrierLM not meaningful" in text or (brier1 and float(brier1.group(1)) <= 0):
            return float("nan")
    return float(figure)


def smoothed(values, n):
    if n <= 1:
        return values
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= n:
            total -= values[i - n]
        out.append(total / min(i + 1, n))
    return out


def panels_of(steps, reports, smooth, x_of):
    """(title, [(label, xs, ys)]) for one run; x_of maps a step to the x axis."""
    xs = [x_of(s) for s, _ in steps]
    panels = [("training loss", [("loss", xs, smoothed([v[0] for _, v in steps], smooth))]),
              ("learning rate", [("lr", xs, [v[1] for _, v in steps])])]
    for title, pattern, labels in FIGURES:
        points = [(s, pattern.search(text), text) for s, text in reports]
        points = [(s, m, text) for s, m, text in points if m]
        if points:
            panels.append((title, [(label, [x_of(s) for s, _, _ in points],
                                    [value(label, m.group(i + 1), text) for _, m, text in points])
                                   for i, label in enumerate(labels)]))
    return panels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("logs", nargs="*")
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=LOG[,LOG...]",
                        help="overlay this run (repeatable) instead of the positional logs")
    parser.add_argument("--x", choices=["step", "compute"], default="step")
    parser.add_argument("--out", required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--smooth", type=int, default=20, help="moving average of the training loss over N steps")
    args = parser.parse_args()
    runs = []
    for spec in args.run:
        label, _, paths = spec.rpartition("=")  # labels may hold "=" (K=4); paths rarely do
        if not paths:
            raise SystemExit(f"--run {spec}: expected LABEL=LOG[,LOG...]")
        runs.append((label, paths.split(",")))
    if args.logs:
        runs.append(("", args.logs))
    if not runs:
        raise SystemExit("give LOG files or --run LABEL=LOG")
    merged = {}  # panel title -> curves, in first-seen order
    for label, paths in runs:
        steps, reports = read(paths)
        if not steps:
            raise SystemExit("no 'step N/T  loss X' lines in " + ", ".join(paths))
        if args.x == "compute":
            compute = {s: v[2] for s, v in steps if v[2] is not None}
            if not compute:
                raise SystemExit("--x compute: no 'compute X FLOP' column in " + ", ".join(paths))
            def x_of(s, c=compute):  # a report's step has its step line; else the last one before it
                return c[s] if s in c else max((v for k, v in c.items() if k <= s), default=0.0)
        else:
            x_of = lambda s: s
        for title, curves in panels_of(steps, reports, args.smooth, x_of):
            named = [((f"{label} {name}" if len(curves) > 1 else label) if label else name, xs, ys) for name, xs, ys in curves]
            merged.setdefault(title, []).extend(named)
    panels = list(merged.items())
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, curves) in zip(axes.flat, panels):
        for label, xs, ys in curves:
            ax.plot(xs, ys, label=label, marker="o" if len(xs) < 40 else None, markersize=3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training compute (FLOP)" if args.x == "compute" else "step")
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: {len(runs)} run(s), {len(panels)} panels")


if __name__ == "__main__":
    main()
