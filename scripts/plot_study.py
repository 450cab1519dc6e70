#!/usr/bin/env python3
"""Plots of a dtrain study: python3 scripts/plot_study.py DIR

Reads DIR/results.csv (written by `dtrain study`) and writes
  DIR/accuracy_vs_batch.png   test accuracy against global batch size (log2 axis), one line per loss, when batch-size varies
  DIR/accuracy_vs_lambda.png  test accuracy against lambda, one line per loss, when lambda varies
  DIR/accuracy_by_loss.png    test accuracy per loss as bars, when nothing but the loss and the seed varies (the
                              ablation preset, or a single configuration over seeds)
Each point or bar is the mean over the seeds of the successful runs, error bars one sample standard deviation. A
line groups the runs sharing every other varying setting; its label names the evaluation behind the accuracy.
Every plot names the dataset, model, epochs and train-limit of its runs below the title.
Exit status: 0 written (or nothing to plot), 2 bad usage or input, 3 matplotlib missing.
"""
import csv
import math
import os
import sys
from collections import OrderedDict

MISSING_MATPLOTLIB = 3
# Columns of results.csv that describe a run's settings (everything between `status` and `test_accuracy`).
# `eval` follows from the loss (a run without CE is scored by the linear probe): it does not split a line, and the
# points scored differently from the rest of their line are labelled instead.
IGNORED = {"seed", "lr", "eval"}


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return [], []
    header = list(rows[0].keys())
    params = header[header.index("status") + 1: header.index("test_accuracy")]
    return rows, params


def mean_std(values):
    n = len(values)
    m = sum(values) / n
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return m, s


def context(rows):
    """"dataset fashion-mnist, model mlp, 3 epochs, train-limit 2000": the settings every plot names (each one's
    values joined by / when runs differ)."""
    def values(name, unset):
        seen = []
        for r in rows:
            v = r.get(name, "") or unset
            if v not in seen:
                seen.append(v)
        return "/".join(seen) if seen else "?"
    # A fixed-steps study (`--steps`, e.g. the large-batch-steps preset): every run made the same number of steps at
    # different batch sizes, so name the steps, not the epochs that only set its warm-up's share.
    steps = {r.get("steps", "") for r in rows}
    batches = {r.get("batch-size", "") for r in rows}
    length = (f"{steps.pop()} steps each" if len(steps) == 1 and len(batches) > 1 and "" not in steps
              else f"{values('epochs', '?')} epochs")
    return (f"dataset {values('dataset', '?')}, model {values('model', '?')}, {length}, "
            f"train-limit {values('train-limit', 'all')}")


def plot_bars(rows, params, out_path, plt):
    """Bars of the mean test accuracy per loss (order of first appearance), error bars one sample std over seeds."""
    ok = [r for r in rows if r["status"] == "ok" and r["test_accuracy"] != ""]
    groups = OrderedDict()
    for r in ok:
        groups.setdefault(r["loss"], []).append((100 * float(r["test_accuracy"]), r["test_eval"]))
    if not groups:
        return False
    names = list(groups)
    stats = [mean_std([a for a, _ in groups[n]]) for n in names]
    fig, ax = plt.subplots(figsize=(max(4.8, 1.1 * len(names) + 2), 4.4))
    bars = ax.bar(range(len(names)), [m for m, _ in stats], yerr=[sd for _, sd in stats], capsize=4,
                  color=[f"C{i % 10}" for i in range(len(names))])
    for bar, name, (m, sd) in zip(bars, names, stats):
        evals = "/".join(sorted({e for _, e in groups[name]}))
        ax.annotate(f"{m:.1f}±{sd:.1f}\n({evals}, n={len(groups[name])})", (bar.get_x() + bar.get_width() / 2, m + sd),
                    textcoords="offset points", xytext=(0, 3), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20 if len(names) > 4 else 0)
    low = min(m - sd for m, sd in stats)
    ax.set_ylim(max(0, low - 10), min(100, max(m + sd for m, sd in stats) + 8))
    ax.set_ylabel("test accuracy (%)")
    seeds = len({r["seed"] for r in rows})
    ax.set_title(f"test accuracy by loss (mean ± std over {seeds} seed{'s' if seeds > 1 else ''})\n{context(rows)}",
                 fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return True


def plot_against(rows, params, x_name, out_path, log2, plt):
    ok = [r for r in rows if r["status"] == "ok" and r["test_accuracy"] != ""]
    varying = [p for p in params if p not in IGNORED and p != x_name and len({r[p] for r in rows}) > 1]
    lines = OrderedDict()
    for r in ok:
        key = tuple((p, r[p]) for p in varying)
        lines.setdefault(key, {}).setdefault(float(r[x_name]), []).append((100 * float(r["test_accuracy"]),
                                                                           r["test_eval"]))
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for key, points in lines.items():
        xs = sorted(points)
        stats = [mean_std([a for a, _ in points[x]]) for x in xs]
        evals = sorted({e for x in xs for _, e in points[x]})
        losses = {r["loss"] for r in ok}
        label = ", ".join(v if p == "loss" else f"{p}={v}" for p, v in key) or (losses.pop() if len(losses) == 1
                                                                                 else "runs")
        label += f" ({'/'.join(evals)})"
        ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3, label=label)
        if len(evals) > 1:
            counts = {e: sum(e2 == e for x in xs for _, e2 in points[x]) for e in evals}
            usual = max(evals, key=lambda e: counts[e])
            for x, (m, _) in zip(xs, stats):
                odd = sorted({e for _, e in points[x]} - {usual})
                if odd:
                    ax.annotate("/".join(odd), (x, m), textcoords="offset points", xytext=(-14, -18), ha="right",
                                va="top", fontsize=8, arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.4"})
    if log2:
        ax.set_xscale("log", base=2)
        xs = sorted({x for pts in lines.values() for x in pts})
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{int(x)}" if x == int(x) else f"{x:g}" for x in xs])
    ax.set_xlabel("global batch size (images)" if x_name == "batch-size" else x_name.replace("lambda", "λ"))
    ax.set_ylabel("test accuracy (%)")
    seeds = len({r["seed"] for r in rows})
    ax.set_title(f"test accuracy vs {'batch size' if x_name == 'batch-size' else 'λ'} "
                 f"(mean ± std over {seeds} seed{'s' if seeds > 1 else ''})\n{context(rows)}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return True


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory = argv[1]
    path = os.path.join(directory, "results.csv")
    if not os.path.exists(path):
        print(f"plot_study: no {path}", file=sys.stderr)
        return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_study: matplotlib is missing; install it with `make plot-deps` "
              "or `python3 -m pip install matplotlib`", file=sys.stderr)
        return MISSING_MATPLOTLIB
    rows, params = load(path)
    written = []
    for x_name, name, log2 in (("batch-size", "accuracy_vs_batch.png", True),
                               ("lambda", "accuracy_vs_lambda.png", False)):
        if x_name in params and len({r[x_name] for r in rows}) > 1:
            out = os.path.join(directory, name)
            if plot_against(rows, params, x_name, out, log2, plt):
                written.append(out)
    varying = [p for p in params if p not in IGNORED and len({r[p] for r in rows}) > 1]
    if set(varying) <= {"loss"}:
        out = os.path.join(directory, "accuracy_by_loss.png")
        if plot_bars(rows, params, out, plt):
            written.append(out)
    print("plot_study: wrote " + (", ".join(written) if written else
                                  "nothing (no successful run, or settings other than batch-size, lambda or loss vary)"),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
