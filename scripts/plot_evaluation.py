#!/usr/bin/env python3
"""Figures of `dtrain eval` and `dtrain analyze` (called by them when matplotlib is available, or by hand).

  plot_evaluation.py confusion CONFUSION.csv OUT.png [TITLE]      confusion matrix (rows: true class), row-normalised
  plot_evaluation.py similarity HISTOGRAM.csv OUT.png [TITLE]     positive/negative cosine-similarity histograms
                                                                  (CLCE paper Figs. 3-4)
  plot_evaluation.py tsne EMBEDDINGS.npy LABELS.npy OUT.png [MAX_CLASSES] [NAMES.txt]
                                                                  t-SNE map of up to 20 classes (Fig. 5), by openTSNE
                                                                  when installed, else scikit-learn's TSNE

Needs matplotlib (and numpy; openTSNE or scikit-learn for tsne). Exits 2 with a message when one is missing.
t-SNE settings: the L2-normalised embeddings, perplexity 30, PCA initialisation, seed 0, at most 5000 points
(the first ones of each class in file order, evenly across the kept classes).
"""
import csv
import sys


def need(module):
    try:
        return __import__(module)
    except ImportError:
        sys.stderr.write(f"{module} is not installed (pip install {module})\n")
        sys.exit(2)


def plt():
    matplotlib = need("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as p
    return p


def confusion(path, out, title=""):
    np = need("numpy")
    with open(path) as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    counts = np.array([[int(v) for v in r[1:]] for r in rows[1:]], dtype=float)
    fraction = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    p = plt()
    k = len(names)
    fig, ax = p.subplots(figsize=(max(4, 0.35 * k + 2), max(4, 0.35 * k + 1.5)))
    im = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def similarity(path, out, title=""):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    lo = [float(r["bin_low"]) for r in rows]
    width = float(rows[0]["bin_high"]) - lo[0]
    pos = [int(r["positive"]) for r in rows]
    neg = [int(r["negative"]) for r in rows]
    p = plt()
    fig, ax = p.subplots(figsize=(5, 3.2))
    for counts, label, colour in [(pos, "positive pairs", "tab:blue"), (neg, "negative pairs", "tab:red")]:
        total = max(sum(counts), 1)
        ax.bar(lo, [c / total / width for c in counts], width=width, align="edge", alpha=0.5, label=label,
               color=colour)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.set_xlim(-1, 1)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def tsne(emb_path, labels_path, out, max_classes="20", names_path=None):
    np = need("numpy")
    x = np.load(emb_path).astype(np.float64)
    y = np.load(labels_path).astype(np.int64)
    classes = sorted(set(y.tolist()))[: int(max_classes)]
    per = max(1, 5000 // len(classes))
    keep = np.concatenate([np.where(y == c)[0][:per] for c in classes])
    x, y = x[keep], y[keep]
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    try:
        from openTSNE import TSNE as OpenTSNE
        z = np.asarray(OpenTSNE(perplexity=30, initialization="pca", random_state=0, n_jobs=1).fit(x))
        tool = "openTSNE"
    except ImportError:
        manifold = need("sklearn.manifold")
        z = manifold.TSNE(perplexity=min(30, len(x) - 1), init="pca", random_state=0).fit_transform(x)
        tool = "scikit-learn TSNE"
    names = None
    if names_path:
        with open(names_path) as f:
            names = [line.strip() for line in f if line.strip()]
    p = plt()
    fig, ax = p.subplots(figsize=(6, 6))
    cmap = p.get_cmap("tab20")
    for i, c in enumerate(classes):
        m = y == c
        ax.scatter(z[m, 0], z[m, 1], s=3, color=cmap(i % 20), label=names[c] if names and c < len(names) else str(c))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"t-SNE ({tool}, perplexity 30) of {len(x)} embeddings", fontsize=9)
    ax.legend(fontsize=6, markerscale=3, loc="best", ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("confusion", "similarity", "tsne"):
        sys.stderr.write(__doc__)
        sys.exit(1)
    {"confusion": confusion, "similarity": similarity, "tsne": tsne}[sys.argv[1]](*sys.argv[2:])
