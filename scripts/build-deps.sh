# Sourced by scripts/run.sh and scripts/test.sh: installs the system libraries the build links (Debian
# package names) when they are missing — zlib (the store), zstd (the sync protocol) and lz4 (apt's package
# lists, for pending security updates) and snappy (Prometheus remote_write bodies) — plus whatever
# the caller adds to `extra` (lines "HEADER_OR_COMMAND PACKAGE").
missing=""
[ -e /usr/include/zlib.h ] || missing="$missing zlib1g-dev"
[ -e /usr/include/zstd.h ] || missing="$missing libzstd-dev"
[ -e /usr/include/lz4frame.h ] || missing="$missing liblz4-dev"
[ -e /usr/include/snappy-c.h ] || missing="$missing libsnappy-dev"
while read -r probe package; do
    [ -n "$probe" ] || continue
    if [ "${probe#/}" != "$probe" ]; then [ -e "$probe" ] || missing="$missing $package"
    else command -v "$probe" >/dev/null || missing="$missing $package"; fi
done <<< "${extra:-}"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq $missing
    elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
        sudo apt-get update -qq && sudo apt-get install -y -qq $missing
    else
        echo "missing:$missing (install them: Debian/Ubuntu package names)" >&2
        exit 1
    fi
fi
