#!/usr/bin/env python3
"""Writes Tests/EvaluationTests/Fixtures/probe_sklearn.json: the scikit-learn reference for dtrain's linear probe
and few-shot logistic regression (Sources/Evaluation/LogisticRegression.swift).

Features: overlapping Gaussian clusters (NumPy seed 0), rounded to float32 so both sides read the same numbers.
Linear probe: rows L2-normalised, then standardised with the training mean and population std;
    LogisticRegression(C = 1/(2·1e-4·n), lbfgs, multinomial) minimises C·Σ CE + ½‖W‖², i.e. mean CE + 1e-4·‖W‖².
Few-shot logreg (RFS): the first 5 rows of each class of the training set, L2-normalised, C = 1.
Usage: python3 scripts/probe_fixture.py   (needs numpy and scikit-learn)
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
D, K, n_train, n_test = 8, 4, 800, 400
centres = rng.normal(size=(K, D))


def draw(n):
    y = np.arange(n) % K
    x = centres[y] + 1.6 * rng.normal(size=(n, D))
    return x.astype(np.float32), y


x_train, y_train = draw(n_train)
x_test, y_test = draw(n_test)


def normalise(x):
    x = x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms > 0, x / np.where(norms > 0, norms, 1), 0)


def logreg(c):
    # multi_class is multinomial by default for lbfgs with K > 2 (the argument is deprecated in sklearn >= 1.5).
    return LogisticRegression(C=c, solver="lbfgs", tol=1e-10, max_iter=100000)


a, b = normalise(x_train), normalise(x_test)
mean, std = a.mean(axis=0), a.std(axis=0)
std = np.where(std**2 > 1e-12, std, 1)
a, b = (a - mean) / std, (b - mean) / std
probe = logreg(1 / (2 * 1e-4 * n_train)).fit(a, y_train)
probe_acc = float((probe.predict(b) == y_test).mean())
logits = a @ probe.coef_.T + probe.intercept_
logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
objective = float(-logp[np.arange(n_train), y_train].mean() + 1e-4 * (probe.coef_**2).sum())

support = np.concatenate([np.where(y_train == k)[0][:5] for k in range(K)])
s = normalise(x_train[support])
fewshot = logreg(1.0).fit(s, y_train[support])
fewshot_pred = fewshot.predict(normalise(x_test))

out = {
    "sklearn_version": sklearn.__version__,
    "embed_dim": D, "classes": K,
    "train": [float(v) for v in x_train.ravel()], "train_labels": y_train.tolist(),
    "test": [float(v) for v in x_test.ravel()], "test_labels": y_test.tolist(),
    "probe_C": 1 / (2 * 1e-4 * n_train),
    "probe_test_accuracy": probe_acc, "probe_objective": objective,
    "probe_coef": probe.coef_.ravel().tolist(), "probe_intercept": probe.intercept_.tolist(),
    "fewshot_support": support.tolist(),
    "fewshot_coef": fewshot.coef_.ravel().tolist(), "fewshot_intercept": fewshot.intercept_.tolist(),
    "fewshot_test_predictions": fewshot_pred.tolist(),
}
path = pathlib.Path(__file__).resolve().parent.parent / "Tests/EvaluationTests/Fixtures/probe_sklearn.json"
path.write_text(json.dumps(out) + "\n")
print(f"{path}: probe accuracy {probe_acc:.4f}, objective {objective:.6f}")
