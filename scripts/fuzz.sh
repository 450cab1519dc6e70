#!/usr/bin/env bash
# Builds each libFuzzer harness in fuzz/ and runs it for FUZZ_SECONDS (default 60) on a seed corpus of small valid
# files (fuzz/make-seeds.py). Each harness is compiled with swiftc -sanitize=fuzzer,address together with the
# sources of the module it tests, so the parser itself is instrumented; Tensor (which Data and Checkpoint import) is
# linked from the debug build. Results: .build/fuzz/<harness>.log, crashes as .build/fuzz/<harness>/crash-*.
#   usage: scripts/fuzz.sh [idx|cifar|safetensors|config ...]      (no argument: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
OUT=.build/fuzz
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(idx cifar safetensors config)

swift build --target Tensor >/dev/null && swift build --target FileIO >/dev/null
BIN=$(swift build --show-bin-path)
NUMERICS=$(find .build/checkouts -path "*swift-numerics/Sources/_NumericsShims/include" | head -1)
TENSOR_FLAGS=(-I "$BIN/Modules" -I Sources/CBLAS -I Sources/CZlib -Xcc -I -Xcc "$NUMERICS"
              $(pkg-config --cflags-only-I openblas | sed 's/-I/-Xcc -I/g'))
TENSOR_OBJECTS=("$BIN"/Tensor.build/*.o "$BIN"/FileIO.build/*.o "$BIN"/RealModule.build/*.o "$BIN"/_NumericsShims.build/*.o
                $(pkg-config --libs openblas zlib) -lm)

mkdir -p "$OUT"
python3 fuzz/make-seeds.py "$OUT/seeds"

build() {  # build <harness> <module> <sources...>
    local name=$1 module=$2
    shift 2
    echo "== building $name"
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g -use-ld=lld -module-name "$module" \
        "${TENSOR_FLAGS[@]}" "fuzz/$name.swift" "$@" "${TENSOR_OBJECTS[@]}" -o "$OUT/$name"
}

for h in "${HARNESSES[@]}"; do
    case $h in
        idx) build IDXFuzz Data Sources/Data/*.swift; exe=IDXFuzz; max=8192 ;;
        cifar) build CIFARFuzz Data Sources/Data/*.swift; exe=CIFARFuzz; max=12000 ;;
        safetensors) build SafeTensorsFuzz Checkpoint Sources/Checkpoint/*.swift; exe=SafeTensorsFuzz; max=4096 ;;
        config) build ConfigFuzz Train Sources/Train/TrainConfig.swift; exe=ConfigFuzz; max=4096 ;;
        *) echo "unknown harness $h (idx, cifar, safetensors, config)" >&2; exit 2 ;;
    esac
    corpus="$OUT/$h/corpus"
    mkdir -p "$corpus" "$OUT/$h"
    cp -n "$OUT/seeds/$h/"* "$corpus/" 2>/dev/null || true
    echo "== fuzzing $h for ${FUZZ_SECONDS}s"
    status=0
    ASAN_OPTIONS=detect_leaks=0 "$OUT/$exe" -max_total_time="$FUZZ_SECONDS" -max_len=$max -rss_limit_mb=2048 \
        -timeout=10 -dict=fuzz/json.dict -artifact_prefix="$OUT/$h/" -print_final_stats=1 "$corpus" \
        >"$OUT/$h.log" 2>&1 || status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$OUT/$h.log" | grep -o '[0-9]*$' || echo "?")
    crashes=$(find "$OUT/$h" -maxdepth 1 \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    echo "== $h: exit $status, $runs executions, $crashes crash/oom/timeout artifacts (log: $OUT/$h.log)"
done
