#!/usr/bin/env python3
"""Few-shot transfer of a study's losses, paired by seed: python3 scripts/compare_fewshot.py DIR [--loss clce]

Reads DIR/results.csv (written by `dtrain study`) and each finished run's DIR/runs/<run>/fewshot-<classifier>.json
(the last line of `dtrain fewshot --json`, as `scripts/studies.sh fewshot` writes them). Prints, per classifier, a
markdown table of every loss's mean episode accuracy (percent; mean ± sample std over seeds, with the seeds in
brackets) at each shot count, and then the chosen loss (default clce) minus every other loss, paired by seed, with
compare_losses.py's verdict (win / lose beyond two standard errors of the per-seed differences, else tie). Runs
that also have DIR/runs/<run>/analysis-novel.json (`dtrain analyze --json` on the novel classes) add a table of
their embedding space: isotropy and mean cosine similarities of same-class and different-class pairs.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_losses import paired_cell, take_option  # noqa: E402
from plot_study import load, mean_std  # noqa: E402

ORDER = ["ce", "clce", "clce-no-hnm", "supcon", "ce+supcon", "ce+hscl"]


def main(argv):
    args = argv[1:]
    chosen = take_option(args, "--loss", "clce")
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    directory = args[0]
    rows, _ = load(os.path.join(directory, "results.csv"))
    rows = [r for r in rows if r["status"] == "ok"]
    # (classifier, shots) -> loss -> seed -> accuracy
    scores, meta = {}, {}
    for r in rows:
        for classifier in ("prototype", "logreg"):
            path = os.path.join(directory, "runs", r["run"], f"fewshot-{classifier}.json")
            try:
                event = json.loads(open(path).read().strip().splitlines()[-1])
            except (OSError, ValueError, IndexError):
                continue
            meta[classifier] = (event["ways"], event["queries"], event["episodes"], event["classes"])
            for shots, s in event["shots"].items():
                scores.setdefault((classifier, int(shots)), {}).setdefault(r["loss"], {})[r["seed"]] = s["mean"]
    if not scores:
        print("compare_fewshot: no run has few-shot results yet", file=sys.stderr)
        return 2
    losses = sorted({loss for cell in scores.values() for loss in cell},
                    key=lambda l: (ORDER.index(l) if l in ORDER else len(ORDER), l))
    for classifier in [c for c in ("prototype", "logreg") if c in meta]:
        ways, queries, episodes, classes = meta[classifier]
        shot_counts = sorted(s for (c, s) in scores if c == classifier)
        print(f"**{classifier}**: {ways}-way episodes of classes {classes}, {queries} queries per class, {episodes} "
              f"episodes per shot count; mean episode accuracy (%), mean ± std over seeds (seeds)\n")
        print("| loss | " + " | ".join(f"{k}-shot" for k in shot_counts) + " |")
        print("| --- |" + " --- |" * len(shot_counts))
        for loss in losses:
            cells = []
            for k in shot_counts:
                values = list(scores[(classifier, k)].get(loss, {}).values())
                if not values:
                    cells.append("–")
                    continue
                m, sd = mean_std(values)
                cells.append(f"{m:.2f}" + (f" ± {sd:.2f}" if len(values) > 1 else "") + f" ({len(values)})")
            print(f"| {loss} | " + " | ".join(cells) + " |")
        if any(chosen in scores[(classifier, k)] for k in shot_counts):
            print(f"\n| {chosen} − other (points) | " + " | ".join(f"{k}-shot" for k in shot_counts) + " |")
            print("| --- |" + " --- |" * len(shot_counts))
            for loss in losses:
                if loss == chosen:
                    continue
                cells = []
                for k in shot_counts:
                    mine, theirs = scores[(classifier, k)].get(chosen, {}), scores[(classifier, k)].get(loss, {})
                    d = [mine[s] - theirs[s] for s in sorted(set(mine) & set(theirs))]
                    cells.append(paired_cell(d) if d else "–")
                print(f"| {loss} | " + " | ".join(cells) + " |")
        print()
    print("± is the sample std over seeds (of the per-seed differences in the paired table); each seed's figure is "
          "the mean over the episodes.")
    analysis = {}
    for r in rows:
        try:
            a = json.loads(open(os.path.join(directory, "runs", r["run"], "analysis-novel.json")).read()
                           .strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            continue
        analysis.setdefault(r["loss"], []).append((r["seed"], a))
    if analysis:
        print("\nEmbedding space of the novel classes' test images (`dtrain analyze`, L2-normalised embeddings; "
              "seeds as listed):\n")
        print("| loss | seeds | isotropy | same-class similarity | other-class similarity | gap |")
        print("| --- | --- | --- | --- | --- | --- |")
        for loss in [l for l in losses if l in analysis]:
            runs = analysis[loss]
            iso = mean_std([a["isotropy"] for _, a in runs])[0]
            pos = mean_std([a["similarity"]["positive_mean"] for _, a in runs])[0]
            neg = mean_std([a["similarity"]["negative_mean"] for _, a in runs])[0]
            print(f"| {loss} | {','.join(sorted(s for s, _ in runs))} | {iso:.3f} | {pos:.3f} | {neg:.3f} | "
                  f"{pos - neg:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
