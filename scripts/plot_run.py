#!/usr/bin/env python3
"""Training curves of dtrain runs: python3 plot_run.py [--out FILE] RUN_DIR [RUN_DIR ...]   (or `dtrain plot`)

Reads each RUN_DIR/metrics.jsonl (written by `dtrain train --out RUN_DIR`) and draws three panels against the
step: the loss (with its unweighted ce and contrastive terms for a single run), the learning rate, and the test accuracy
after each epoch (at the epoch's last logged step). Several runs are overlaid, one colour per run, the legend
naming each run by its folder. The title names the dataset, model, epochs and train-limit from RUN_DIR/config.json.
Writes FILE (default RUN_DIR/curves.png for one run, curves.png in the current folder for several).
Exit status: 0 written, 2 bad usage or input, 3 matplotlib missing.
"""
import json
import os
import sys

MISSING_MATPLOTLIB = 3


def read_run(directory):
    path = os.path.join(directory, "metrics.jsonl")
    steps, epochs, last_step = [], [], 0
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not JSON ({e})")
            if "step" in d:
                steps.append(d)
                last_step = d["step"]
            elif "test_accuracy" in d:
                epochs.append((last_step, d["test_accuracy"], d.get("eval", "")))
    config = {}
    try:
        with open(os.path.join(directory, "config.json")) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError):
        pass
    return steps, epochs, config


def describe(config):
    if not config:
        return ""
    limit = config.get("train-limit")
    return (f"{config.get('dataset', '?')}, {config.get('model', '?')}, {config.get('epochs', '?')} epochs, "
            f"train-limit {limit if limit is not None else 'all'}")


def main(argv):
    args = argv[1:]
    out = None
    if len(args) >= 2 and args[0] == "--out":
        out, args = args[1], args[2:]
    if not args or any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    runs = []
    for directory in args:
        try:
            steps, epochs, config = read_run(directory)
        except (OSError, ValueError) as e:
            print(f"plot_run: {e}", file=sys.stderr)
            return 2
        if not steps:
            print(f"plot_run: {directory}/metrics.jsonl has no logged steps", file=sys.stderr)
            return 2
        runs.append((os.path.basename(os.path.normpath(directory)), steps, epochs, config))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_run: matplotlib is missing; install it with `make plot-deps` "
              "or `python3 -m pip install matplotlib`", file=sys.stderr)
        return MISSING_MATPLOTLIB
    if out is None:
        out = os.path.join(args[0], "curves.png") if len(args) == 1 else "curves.png"
    fig, (ax_loss, ax_lr, ax_acc) = plt.subplots(1, 3, figsize=(14, 4.2))
    for i, (name, steps, epochs, _) in enumerate(runs):
        color = f"C{i % 10}"
        xs = [d["step"] for d in steps]
        ax_loss.plot(xs, [d["loss"] for d in steps], color=color, label=name)
        if len(runs) == 1:
            ax_loss.plot(xs, [d["ce"] for d in steps], color="C1", lw=0.8, label="ce term")
            ax_loss.plot(xs, [d["contrastive"] for d in steps], color="C2", lw=0.8, label="contrastive term")
        ax_lr.plot(xs, [d["lr"] for d in steps], color=color, label=name)
        if epochs:
            evals = sorted({e for _, _, e in epochs if e})
            ax_acc.plot([s for s, _, _ in epochs], [100 * a for _, a, _ in epochs], marker="o", color=color,
                        label=name + (f" ({'/'.join(evals)})" if evals else ""))
    for ax, title, ylabel in ((ax_loss, "training loss", "loss"), (ax_lr, "learning rate", "lr"),
                              (ax_acc, "test accuracy after each epoch", "accuracy (%)")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    contexts = sorted({describe(c) for _, _, _, c in runs} - {""})
    if contexts:
        fig.suptitle("; ".join(contexts) if len(contexts) <= 2 else f"{len(runs)} runs, settings differ",
                     fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"plot_run: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
