# Sourced by scripts/mpi-tests.sh: `dtrain plot` on one run and on two overlaid, from a `make install`ed copy run in
# another folder (the plotting script is found in PREFIX/share/dtrain/scripts). Needs matplotlib; says SKIPPED
# without it (CI installs it).
echo "== plot: dtrain plot RUN_DIR..., installed with make install PREFIX=..."
PL="$WORK/plot"; mkdir -p "$PL"
if ! python3 -c "import matplotlib" 2>/dev/null; then
    if [ "${CI:-}" = true ]; then fail "plot: matplotlib missing in CI"; else echo "  SKIPPED: python3 has no matplotlib (make plot-deps)"; fi
else
    for loss in ce clce; do
        timeout 120 $MPIRUN -n 2 "$BIN" train --dataset synthetic --train-limit 400 --test-limit 100 --model mlp \
            --loss $loss --batch-size 40 --epochs 2 --log-every 2 --quiet --out "$PL/$loss" >/dev/null 2>&1 \
            || fail "plot: train $loss"
    done
    if make -s install PREFIX="$PL/prefix" BIN="$BIN" >"$PL/install.out" 2>&1 && [ -x "$PL/prefix/bin/dtrain" ] \
       && [ -f "$PL/prefix/share/dtrain/scripts/plot_run.py" ]; then
        ok "make install PREFIX=…: bin/dtrain and share/dtrain/scripts"
    else fail "make install"; cat "$PL/install.out"; fi
    if (cd "$PL" && timeout 60 "$PL/prefix/bin/dtrain" plot "$PL/clce" 2>"$PL/one.err") && [ -s "$PL/clce/curves.png" ] \
       && (cd "$PL" && timeout 60 "$PL/prefix/bin/dtrain" plot "$PL/ce" "$PL/clce" --out "$PL/both.png" 2>"$PL/two.err") \
       && [ -s "$PL/both.png" ]; then
        ok "installed dtrain plot (run from another folder): clce/curves.png, and ce + clce overlaid in both.png"
    else fail "dtrain plot"; cat "$PL/one.err" "$PL/two.err" 2>/dev/null | tail -5; fi
    if "$BIN" plot "$PL/nowhere" >/dev/null 2>"$PL/bad.err"; then fail "dtrain plot of a missing run succeeded"
    elif grep -q "metrics.jsonl: no such file" "$PL/bad.err"; then ok "dtrain plot of a folder without metrics.jsonl: clear error"
    else fail "dtrain plot missing-run message"; cat "$PL/bad.err"; fi
fi
