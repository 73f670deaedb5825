#!/usr/bin/env bash
# libFuzzer over HostTwin's parsers of outside input (Sources/TwinFuzzTargets).
#
#   scripts/fuzz.sh TARGET SECONDS    fuzz one target, growing its corpus; crashes go to .fuzz/crashes/TARGET
#   scripts/fuzz.sh all SECONDS       every target in turn, SECONDS each
#   scripts/fuzz.sh list              the targets
#
# The saved corpus of each target (Fuzz/corpus/TARGET, minimised with libFuzzer's -merge) is committed; the
# test suite replays it (FuzzCorpusTests), so CI needs no sanitizer build. The fuzzer binary is built with
# address sanitizer and libFuzzer's coverage in its own scratch path (.build-fuzz), leaving the normal build alone.
set -euo pipefail
cd "$(dirname "$0")/.."
targets="procfs exposition promql time chunk log regex sql http redaction"
if [ "${1:-}" = list ] || [ $# -lt 2 ]; then echo "targets: $targets"; echo "usage: scripts/fuzz.sh TARGET|all SECONDS"; exit 0; fi
target=$1 seconds=$2
echo "building the fuzzer (release, address sanitizer, libFuzzer coverage; the first build takes several minutes)" >&2
# SwiftPM links executables through a renamed main, which collides with the main that -sanitize=fuzzer links in;
# so: libFuzzer's coverage instrumentation and its no-main runtime, driven from Fuzz/HostTwinFuzz/main.swift.
rt=$(dirname "$(dirname "$(command -v swift)")")/lib/clang
rt=$(ls -d "$rt"/*/lib/linux | head -1)
HOSTTWIN_FUZZ=1 swift build -c release --product HostTwinFuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,indirect-calls,trace-cmp,inline-8bit-counters,pc-table \
    -Xlinker "$rt/libclang_rt.fuzzer_no_main-x86_64.a" -Xlinker -lstdc++ >&2
bin=.build-fuzz/release/HostTwinFuzz
[ "$target" = all ] && list=$targets || list=$target
for t in $list; do
    corpus=Fuzz/corpus/$t work=.fuzz/work/$t crashes=.fuzz/crashes/$t
    mkdir -p "$corpus" "$work" "$crashes"
    # Seeds: the saved corpus, plus real files for the parsers that read them.
    case $t in
        procfs) cp Tests/HostTwinTests/Fixtures/vm/proc/{stat,meminfo,diskstats,loadavg,vmstat} "$work/" 2>/dev/null || true ;;
        exposition) printf '# TYPE a counter\na{b="c"} 1 1700000000000\n' > "$work/seed" ;;
        promql) printf 'sum by (job) (rate(requests_total{code=~"5.."}[1m]))' > "$work/seed" ;;
    esac
    echo "== $t: ${seconds}s" >&2
    started=$(date +%s)
    FUZZ_TARGET=$t "$bin" "$work" "$corpus" -max_total_time="$seconds" -artifact_prefix="$crashes/" \
        -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tee ".fuzz/$t.log" | grep -E "^#[0-9]+ *(DONE|pulse|INITED)|stat::|ERROR|SUMMARY" >&2 || true
    # Keep the saved corpus small: merge what the run found into a minimal set.
    mkdir -p ".fuzz/merged/$t" && rm -rf ".fuzz/merged/$t"/*
    FUZZ_TARGET=$t "$bin" -merge=1 ".fuzz/merged/$t" "$corpus" "$work" >/dev/null 2>&1 || true
    rm -rf "${corpus:?}"/* && cp ".fuzz/merged/$t"/* "$corpus/" 2>/dev/null || true
    echo "== $t: $(( $(date +%s) - started ))s, corpus $(ls "$corpus" | wc -l) files, crashes $(ls "$crashes" | wc -l)" >&2
done
