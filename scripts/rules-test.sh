#!/usr/bin/env bash
# Rule compatibility with Prometheus 2.42: every unit-test file of conformance/rules (promtool's format)
# through `promtool test rules` and `hosttwin rules test`; each file must get the same verdict from both
# (files named failing*.test.yml hold wrong expectations on purpose and must fail under both). Then
# `promtool check rules` and `hosttwin rules check` on the rule files themselves.
#
#   scripts/rules-test.sh            # HOSTTWIN=path/to/hosttwin picks the binary (default: a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prometheus-lib.sh
ensure_prometheus
if [ -z "${HOSTTWIN:-}" ]; then
  swift build --product hosttwin >/dev/null
  HOSTTWIN=$PWD/.build/debug/hosttwin
fi
failures=0; files=0
for t in conformance/rules/*.test.yml; do
  files=$((files + 1))
  p=0; promtool test rules "$t" >/tmp/rules-promtool.out 2>&1 || p=$?
  h=0; "$HOSTTWIN" rules test "$t" >/tmp/rules-hosttwin.out 2>&1 || h=$?
  want=0; case "$(basename "$t")" in failing*) want=1 ;; esac
  verdict() { [ "$1" = 0 ] && echo pass || echo fail; }
  if [ "$(verdict $p)" != "$(verdict $want)" ] || [ "$(verdict $h)" != "$(verdict $want)" ]; then
    echo "MISMATCH $t: promtool $(verdict $p), hosttwin $(verdict $h), expected $(verdict $want)"
    sed 's/^/  promtool: /' /tmp/rules-promtool.out; sed 's/^/  hosttwin: /' /tmp/rules-hosttwin.out
    failures=$((failures + 1))
  else
    echo "ok $t: both $(verdict $h)"
  fi
done
for r in conformance/rules/*.yml; do
  case "$r" in *.test.yml) continue ;; esac
  p=0; promtool check rules "$r" >/dev/null 2>&1 || p=$?
  h=0; "$HOSTTWIN" rules check "$r" >/dev/null 2>&1 || h=$?
  if [ "$p" = 0 ] && [ "$h" = 0 ]; then echo "ok $r: both check it"; else echo "MISMATCH $r: promtool check exit $p, hosttwin exit $h"; failures=$((failures + 1)); fi
done
"$HOSTTWIN" rules check --default
echo "rules: $files test files, $failures mismatches"
[ "$failures" = 0 ]
