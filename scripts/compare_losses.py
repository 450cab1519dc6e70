#!/usr/bin/env python3
"""CLCE against the other losses of a study, paired by seed: python3 scripts/compare_losses.py DIR [--loss clce]

Reads DIR/results.csv (written by `dtrain study`) and prints a markdown table: for every other loss and every value
of the other varying settings (batch size, ...), the accuracy difference (points) of the chosen loss minus that loss,
as the mean over the seeds both ran ± one sample standard deviation of the per-seed differences, and a verdict:

  win / lose  the mean difference is more than two standard errors (std/sqrt(n)) away from zero, n >= 2;
  tie         otherwise; with one seed, |difference| < 0.3 points (the seed-to-seed spread measured on this
              protocol, docs/RESULTS.md) is a tie and anything larger is marked "(1 seed)".

Every accuracy is the run's test_accuracy, with its evaluation (head, linear-probe, knn) named in the table.
"""
import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_study import load, mean_std  # noqa: E402  (results.csv reader and statistics shared with the plots)

SINGLE_SEED_NOISE = 0.3


def take_option(args, name, default):
    """The value after `name` in the argument list `args` (both removed from it), or `default` when absent."""
    if name not in args:
        return default
    i = args.index(name)
    value = args[i + 1]
    del args[i:i + 2]
    return value


def paired_cell(d):
    """The table cell for per-seed differences d (points): mean ± std and the verdict of the module's rule."""
    m, sd = mean_std(d)
    if len(d) == 1:
        verdict = "tie" if abs(m) < SINGLE_SEED_NOISE else ("win" if m > 0 else "lose") + " (1 seed)"
        return f"{m:+.2f} {verdict}"
    se = sd / math.sqrt(len(d))
    verdict = "win" if m - 2 * se > 0 else "lose" if m + 2 * se < 0 else "tie"
    return f"{m:+.2f} ± {sd:.2f} {verdict}"


def main(argv):
    args = argv[1:]
    loss = take_option(args, "--loss", "clce")
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rows, params = load(os.path.join(args[0], "results.csv"))
    rows = [r for r in rows if r["status"] == "ok" and r["test_accuracy"]]
    if not rows:
        print("compare_losses: no finished runs", file=sys.stderr)
        return 2
    others = [p for p in params if p not in ("loss", "seed", "lr", "eval") and len({r[p] for r in rows}) > 1]

    def number_or_text(v):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    acc = {}
    evals = defaultdict(set)
    for r in rows:
        key = tuple(r[p] for p in others)
        acc[(r["loss"], key, r["seed"])] = 100 * float(r["test_accuracy"])
        evals[r["loss"]].add(r["test_eval"])
    if not any(k[0] == loss for k in acc):
        print(f"compare_losses: no finished {loss} runs", file=sys.stderr)
        return 2
    keys = sorted({k[1] for k in acc}, key=lambda k: [number_or_text(v) for v in k])
    baselines = [l for l in dict.fromkeys(r["loss"] for r in rows) if l != loss]
    if not baselines:
        print(f"compare_losses: the study has no loss other than {loss} to compare with", file=sys.stderr)
        return 0

    print(f"| {loss} − baseline (points) | " + " | ".join(", ".join(f"{p} {v}" for p, v in zip(others, k)) or "all"
                                                     for k in keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    for base in baselines:
        cells = []
        for k in keys:
            seeds = sorted({s for (l, kk, s) in acc if l == loss and kk == k}
                           & {s for (l, kk, s) in acc if l == base and kk == k})
            d = [acc[(loss, k, s)] - acc[(base, k, s)] for s in seeds]
            if not d:
                cells.append("–")
                continue
            cells.append(paired_cell(d))
        label = f"{base} ({'/'.join(sorted(evals[base]))})"
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\n{loss} evaluated by {'/'.join(sorted(evals[loss]))}; ± is the sample std of the per-seed differences.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
