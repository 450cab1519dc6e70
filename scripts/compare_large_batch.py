#!/usr/bin/env python3
"""Small-batch CLCE against large-batch SupCon, paired by seed:
python3 scripts/compare_large_batch.py DIR [--small clce:64,ce:64] [--min-large 512]

Reads DIR/results.csv of a `--preset large-batch` or `large-batch-steps` study and prints two markdown tables: every
cell's accuracy as mean ± sample std over its seeds (their count in brackets), and, for each small-batch run (loss:batch, default clce at 64 and ce at 64), its accuracy minus that of supcon and ce+supcon at
every batch >= --min-large (default 512), as the mean over the seeds both ran ± the sample std of the per-seed
differences, with compare_losses.py's verdict (win / lose beyond two standard errors, else tie; one seed: a tie
within 0.3 points). Then the best small-batch CLCE cell against the best large-batch SupCon cell.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_losses import paired_cell, take_option  # noqa: E402
from plot_study import load, mean_std  # noqa: E402


def main(argv):
    args = argv[1:]
    small = [tuple(x.split(":")) for x in take_option(args, "--small", "clce:64,ce:64").split(",")]
    min_large = int(take_option(args, "--min-large", "512"))
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rows, _ = load(os.path.join(args[0], "results.csv"))
    rows = [r for r in rows if r["status"] == "ok" and r["test_accuracy"]]
    acc, evals = {}, {}
    for r in rows:
        acc[(r["loss"], r["batch-size"], r["seed"])] = 100 * float(r["test_accuracy"])
        evals[r["loss"]] = r["test_eval"]
    large = sorted({(l, b) for (l, b, _) in acc if l in ("supcon", "ce+supcon") and int(b) >= min_large},
                   key=lambda x: (x[0] != "supcon", int(x[1])))
    if not large or not any((l, b) in {(k[0], k[1]) for k in acc} for l, b in small):
        print("compare_large_batch: the study has no finished cells to compare yet", file=sys.stderr)
        return 2

    def seeds(cell):
        return {s for (l, b, s) in acc if (l, b) == cell}

    def diff(a, b):
        common = sorted(seeds(a) & seeds(b))
        return [acc[(*a, s)] - acc[(*b, s)] for s in common]

    batches = sorted({int(b) for (_, b, _) in acc})
    print("| loss \\ batch | " + " | ".join(map(str, batches)) + " |")
    print("| --- |" + " --- |" * len(batches))
    for loss in [l for l in ("supcon", "ce+supcon", "clce", "ce") if l in evals] + \
            sorted(l for l in evals if l not in ("supcon", "ce+supcon", "clce", "ce")):
        cells = []
        for b in batches:
            values = [acc[(loss, str(b), s)] for s in seeds((loss, str(b)))]
            if not values:
                cells.append("–")
            else:
                m, sd = mean_std(values)
                cells.append(f"{m:.2f}" + (f" ± {sd:.2f}" if len(values) > 1 else "") + f" ({len(values)})")
        print(f"| {loss} ({evals[loss]}) | " + " | ".join(cells) + " |")
    print()

    header = [f"{l} ({evals[l]}) at {b}" for l, b in large]
    print("| small batch − large batch (points) | " + " | ".join(header) + " |")
    print("| --- |" + " --- |" * len(large))
    for cell in small:
        if not seeds(cell):
            continue
        cells = [paired_cell(d) if (d := diff(cell, other)) else "–" for other in large]
        print(f"| {cell[0]} ({evals.get(cell[0], '?')}) at {cell[1]} | " + " | ".join(cells) + " |")

    def best(cells):
        scored = [(mean_std([acc[(*c, s)] for s in seeds(c)])[0], c) for c in cells if seeds(c)]
        return max(scored) if scored else None

    clce = best([(l, b) for (l, b, _) in acc if l == "clce"])
    supcon = best([c for c in large if c[0] == "supcon"])
    if clce and supcon:
        d = diff(clce[1], supcon[1])
        print(f"\nChosen after the fact (the highest mean of each): CLCE at batch {clce[1][1]} ({clce[0]:.2f}) against SupCon "
              f"at batch "
              f"{supcon[1][1]} ({supcon[0]:.2f}); paired difference " + (paired_cell(d) if d else "–") + ".")
    print("\n± is the sample std of the per-seed differences; seeds as far as both cells ran.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
