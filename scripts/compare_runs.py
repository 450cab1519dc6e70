#!/usr/bin/env python3
"""compare_runs.py REF OTHER [LATER_GRAD_NORM_TOL]: the per-step loss, ce, contrastive and grad_norm of two runs'
metrics.jsonl agree within 1e-4 relative (grad_norm after the first step within the third argument, default 1e-4).
Prints the worst relative difference; exit status 1 when a value is off. Used by scripts/mpi-tests.d/*.sh."""
import json, sys
def steps(p):
    return [json.loads(l) for l in open(p) if '"step"' in l]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
later = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
assert len(a) == len(b) and len(a) > 0, f"step counts differ: {len(a)} vs {len(b)}"
worst, worst_norm, bad = 0.0, 0.0, False
for i, (x, y) in enumerate(zip(a, b)):
    for k in ("loss", "grad_norm", "ce", "contrastive"):
        d = abs(x[k] - y[k]) / max(abs(x[k]), 1e-12) if x[k] != 0 or y[k] != 0 else 0.0
        if k == "grad_norm" and i > 0:
            worst_norm = max(worst_norm, d); bad |= d > later
        else:
            worst = max(worst, d); bad |= d > 1e-4
print(f"{worst:.2e}" + (f", later grad_norm {worst_norm:.2e}" if later != 1e-4 else ""))
sys.exit(1 if bad else 0)
