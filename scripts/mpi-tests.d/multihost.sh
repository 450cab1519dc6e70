# Sourced by scripts/mpi-tests.sh: mpirun --hostfile across several "hosts" that are network namespaces of this
# machine, each joined to a bridge by a veth pair, with addresses of this test's own; ranks talk TCP only
# (--mca btl tcp,self) over that subnet, and an rsh agent starts Open MPI's daemon inside each namespace (with its
# own hostname, or ORTE takes the remote daemon for a local one). Checks `dtrain doctor` across the hosts and that
# a 5-step training run on 2 hosts x 2 ranks matches the 1-rank run (rank-count invariance across a network).
# Needs root (namespaces); everything it creates is deleted at the end.
echo "== multihost: mpirun --hostfile across 2 network namespaces over TCP"
MH="$WORK/multihost"; mkdir -p "$MH"
MH_NET=10.213.47                       # the test's own subnet on the bridge; hosts .11 and .12
MH_BR="dtbr$$"; MH_HOSTS=(a b)
mh_skip=""
if [ "$(id -u)" != 0 ]; then mh_skip="not root: creating network namespaces needs root"
elif ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then mh_skip="ip (iproute2) or unshare missing"
elif ! ip netns add "dtprobe$$" 2>"$MH/probe.err"; then mh_skip="ip netns add fails here: $(head -1 "$MH/probe.err")"
else ip netns del "dtprobe$$"; fi
if [ -n "$mh_skip" ] && [ "${CI:-}" = true ]; then fail "multihost: $mh_skip (CI must run this test)"
elif [ -n "$mh_skip" ]; then echo "  SKIPPED: $mh_skip"
else
    mh_clean() {
        local h
        for h in "${MH_HOSTS[@]}"; do ip netns del "dtns$$$h" 2>/dev/null; ip link del "dtv$$$h" 2>/dev/null; done
        ip link del "$MH_BR" 2>/dev/null
    }
    trap 'mh_clean; rm -rf "$WORK"' EXIT
    mh_setup() {
        ip link add "$MH_BR" type bridge && ip addr add "$MH_NET.1/24" dev "$MH_BR" && ip link set "$MH_BR" up || return 1
        local i=11 h
        : >"$MH/hosts"
        for h in "${MH_HOSTS[@]}"; do
            ip netns add "dtns$$$h" \
            && ip link add "dtv$$$h" type veth peer name "dtv$$${h}p" \
            && ip link set "dtv$$${h}p" netns "dtns$$$h" \
            && ip link set "dtv$$$h" master "$MH_BR" && ip link set "dtv$$$h" up \
            && ip netns exec "dtns$$$h" ip addr add "$MH_NET.$i/24" dev "dtv$$${h}p" \
            && ip netns exec "dtns$$$h" ip link set "dtv$$${h}p" up \
            && ip netns exec "dtns$$$h" ip link set lo up || return 1
            echo "$MH_NET.$i slots=2" >>"$MH/hosts"
            i=$((i + 1))
        done
    }
    # The rsh agent: mpirun calls it as `AGENT HOST COMMAND…`; it runs COMMAND in HOST's namespace, under a
    # hostname of its own. On a real cluster this is plain ssh.
    cat >"$MH/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case "\$host" in
$(i=11; for h in "${MH_HOSTS[@]}"; do echo "    $MH_NET.$i) ns=dtns$$$h ;;"; i=$((i + 1)); done)
    *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns; \$*"
AGENT
    chmod +x "$MH/agent"
    if ! mh_setup 2>"$MH/setup.err"; then fail "multihost: network setup: $(head -1 "$MH/setup.err")"
    else
        ok "multihost: bridge $MH_NET.1/24, hosts $(cut -d' ' -f1 "$MH/hosts" | tr '\n' ' ')(namespaces, veth)"
        MH_MPI=(--hostfile "$MH/hosts" --mca plm_rsh_agent "$MH/agent" --mca btl tcp,self
                --mca btl_tcp_if_include "$MH_NET.0/24" --mca oob_tcp_if_include "$MH_NET.0/24")
        if timeout 180 $MPIRUN "${MH_MPI[@]}" -n 4 "$BIN" doctor --json --iterations 2 \
                >"$MH/doctor.json" 2>"$MH/doctor.err" \
           && python3 - "$MH/doctor.json" >"$MH/doctor.hosts" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
hosts = sorted({r["host"] for r in d["perRank"]})
assert d["ok"] is True and d["ranks"] == 4, (d["ok"], d["ranks"])
assert len(hosts) == 2, hosts
print(" ".join(hosts))
PY
        then ok "mpirun --hostfile -n 4 over TCP: dtrain doctor ok on 4 ranks, hosts $(cat "$MH/doctor.hosts")"
        else fail "doctor across namespaces"; tail -8 "$MH/doctor.err"; fi
        MH_TRAIN=(--dataset synthetic --train-limit 400 --test-limit 100 --model mlp --loss clce --batch-size 26
                  --max-steps 5 --log-every 1 --quiet --warmup-epochs 0 --lr 0.2)
        [ -f "$WORK/cluster-ref-1/metrics.jsonl" ] || timeout 120 $MPIRUN -n 1 "$BIN" train "${MH_TRAIN[@]}" \
            --out "$WORK/cluster-ref-1" >/dev/null 2>&1
        if timeout 240 $MPIRUN "${MH_MPI[@]}" -n 4 "$BIN" train "${MH_TRAIN[@]}" --out "$MH/train" \
                >"$MH/train.out" 2>"$MH/train.err"; then
            if worst=$(python3 scripts/compare_runs.py "$WORK/cluster-ref-1/metrics.jsonl" "$MH/train/metrics.jsonl"); then
                ok "train on 2 hosts x 2 ranks over TCP matches 1 rank over 5 steps (worst rel. diff $worst)"
            else fail "train across hosts differs from 1 rank ($worst)"; fi
        else fail "train across namespaces"; tail -8 "$MH/train.err"; fi
    fi
    mh_clean
    trap 'rm -rf "$WORK"' EXIT
    if ip link show "$MH_BR" >/dev/null 2>&1 || ip netns list | grep -q "dtns$$"; then fail "multihost: cleanup left links"
    else ok "multihost: namespaces, veths and bridge deleted"; fi
fi
