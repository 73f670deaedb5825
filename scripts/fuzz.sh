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
targets="procfs exposition promql time chunk log regex sql http redaction policy config versions sync syncstream follow hubanswers detectorstate rules remotewrite urls tracepoint"
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
        promql) printf 'sum by (job) (rate(requests_total{code=~"5.."}[1m]))' > "$work/seed"
                printf 'max_over_time(count_over_time(temp[5m:30s])[10m:1m] offset 1m) > bool 2' > "$work/seed2"
                printf 'label_replace(topk(2, temp), "x", "$1", "room", "(.*)") or on(room) vector(1)' > "$work/seed3" ;;
        time) for v in now -5m +1h30m 2026-11-28T03:00:00Z '2026-11-28 03:00' 1700000000.5 1w2d; do printf '%s' "$v" > "$work/seed-$RANDOM"; done ;;
        regex) printf '(?i)node_(cpu|disk)_.*\nnode_cpu_seconds_total' > "$work/seed"; printf '(?P<a>[a-z]+)-(\\d{2,4})?$\nab-12' > "$work/seed2" ;;
        sql) printf "select name, user from processes where pid > 1 order by name limit 5" > "$work/seed"
             printf "with recursive r(i) as (select 1 union all select i+1 from r where i < 10) select count(*) from r" > "$work/seed2" ;;
        config) printf '{"listen":"127.0.0.1:9977","interval":"1s","collectors":{"packages":{"interval":"5m"},"thermal":{"enabled":false}},"retention":{"raw":"7d","1m":"90d"}}' > "$work/seed" ;;
        rules) cp conformance/rules/*.yml Sources/TwinRules/Resources/default-rules.yml "$work/" ;;
        policy) printf 'keep internal\nhash sensitive connections\ndrop sensitive users\nclass processes.name sensitive\n' > "$work/seed" ;;
        http) for r in "GET /api/v1/query?query=rate(requests_total%5B1m%5D)&time=1700000300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" \
                       "POST /api/v1/query_range HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 54\r\n\r\nquery=temp&start=1700000000&end=1700000600&step=60s&x=1" \
                       "GET /api/v1/twin/sql?query=select%201&at=-1h HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer htw_0123456789ab_00\r\n\r\n" \
                       "GET /api/v1/series?match[]=%7Broom%3D~%22a.*%22%7D&start=1&end=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" \
                       "GET /api/v1/twin/state?at=%2B1h HTTP/1.1\r\nHost: evil.example\r\n\r\n" \
                       "GET /assets/../app.js HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n" \
                       "GET /api/v1/label/room/values HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n"; do
                  printf '%b' "$r" > "$work/seed-$RANDOM"; done ;;
    esac
    echo "== $t: ${seconds}s" >&2
    started=$(date +%s)
    FUZZ_TARGET=$t "$bin" "$work" "$corpus" -max_total_time="$seconds" -artifact_prefix="$crashes/" \
        -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tee ".fuzz/$t.log" | grep -E "^#[0-9]+ *(DONE|pulse|INITED)|stat::|ERROR|SUMMARY" >&2 || true
    # Keep the saved corpus small: merge what the run found into a minimal set. Hand-written seeds
    # (`seed*`, which tests read by name) stay as they are.
    mkdir -p ".fuzz/merged/$t" && rm -rf ".fuzz/merged/$t"/*
    FUZZ_TARGET=$t "$bin" -merge=1 ".fuzz/merged/$t" "$corpus" "$work" >/dev/null 2>&1 || true
    find "${corpus:?}" -type f ! -name 'seed*' -delete && cp ".fuzz/merged/$t"/* "$corpus/" 2>/dev/null || true
    echo "== $t: $(( $(date +%s) - started ))s, corpus $(ls "$corpus" | wc -l) files, crashes $(ls "$crashes" | wc -l)" >&2
done
