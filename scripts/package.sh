#!/usr/bin/env bash
# A self-contained release binary and a Debian package of it:
#
#   scripts/package.sh            -> dist/hosttwin (stripped) and dist/hosttwin_VERSION_ARCH.deb
#   scripts/package.sh --debug    -> the same from a debug build (CI: 8 minutes instead of 16 on 2 cores;
#                                    it checks the packaging, not the optimiser)
#   scripts/package.sh --order-minutes N   -> profile the running twin N minutes (default 15; 0: do not,
#                                             and link with the last order made, if any)
#
# A release binary has each function in its own section and is linked by lld in the order a running twin
# executes them: the release build is run on this host at the defaults and sampled with perf
# (scripts/order-file.sh; root), then linked again in that order, so the code that runs shares few of the
# 64 KiB blocks the kernel maps around each code fault (docs/OBSERVATION.md, "Memory of `run`"). Without
# root or perf the script says so and links with the last order made (the compiler's on a fresh tree).
#
# The binary links the Swift runtime statically (--static-swift-stdlib): it needs only glibc, libstdc++,
# libgcc, libm, zlib, libsqlite3, libzstd, liblz4 and libsnappy, all in Debian. The package installs it as /usr/bin/hosttwin
# with systemd units for `run`, `agent` and a hub (`serve`), a `hosttwin` system user, /etc/hosttwin for
# configuration, tokens and keys (0600) and /var/lib/hosttwin for data (0700). Builds in .build-static so
# the ordinary build is untouched. Prints what the binary weighs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is needed (Debian: dpkg)" >&2; exit 1; }
version=$(sed -n 's/.*version: "\([0-9.]*\)".*/\1/p' Sources/hosttwin/HostTwinCommand.swift | head -1)
arch=$(dpkg --print-architecture)
config=release
order_minutes=15
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) config=debug ;;
        --order-minutes) order_minutes=${2:?--order-minutes needs a number of minutes}; shift ;;
        *) echo "unknown argument: $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift
done
flags=()
order=$PWD/.build-static/hosttwin.order
if [ "$config" = release ]; then
    mkdir -p .build-static
    [ -f "$order" ] || : > "$order" # the first build links in the compiler's order
    flags=(-Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xswiftc -use-ld=lld
           -Xlinker "--symbol-ordering-file=$order" -Xlinker --no-warn-symbol-ordering)
fi
build() { swift build -c "$config" --static-swift-stdlib --product hosttwin --scratch-path .build-static "${flags[@]}"; }
start=$SECONDS
build
echo "built ($config) in $((SECONDS - start)) s"
bin=.build-static/$config/hosttwin
if [ "$config" = release ] && [ "$order_minutes" != 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v perf >/dev/null; then
        scripts/order-file.sh "$bin" "$order" "$order_minutes"
        rm -f "$bin"
        build # links again (the flags are the same, so nothing recompiles)
    else
        echo "code not profiled (linked in the last order made, if any): profiling the running twin needs root and perf (Debian: linux-perf)" >&2
    fi
fi
mkdir -p dist
cp "$bin" dist/hosttwin.unstripped
strip -o dist/hosttwin "$bin"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 dist/hosttwin "$root/usr/bin/hosttwin"
for unit in packaging/systemd/*.service; do install -D -m 0644 "$unit" "$root/lib/systemd/system/$(basename "$unit")"; done
install -D -m 0644 README.md "$root/usr/share/doc/hosttwin/README.md"
for doc in docs/*.md; do install -D -m 0644 "$doc" "$root/usr/share/doc/hosttwin/$(basename "$doc")"; done
install -D -m 0755 packaging/debian/postinst "$root/DEBIAN/postinst"
installed=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: hosttwin
Version: $version
Architecture: $arch
Maintainer: HostTwin <hosttwin@localhost>
Depends: libc6, libstdc++6, libgcc-s1, zlib1g, libsqlite3-0, libzstd1, liblz4-1, libsnappy1v5, adduser
Installed-Size: $installed
Section: admin
Priority: optional
Homepage: https://github.com/hosttwin/hosttwin
Description: live, versioned digital twin of Linux hosts
 HostTwin observes a host every second (CPU, memory, disks, network, processes, ports, connections,
 services, packages), stores what it saw compactly, and answers questions about any moment of the past.
 Agents push to hubs across datacenters (hosttwin agent, hosttwin serve).
CONTROL
deb="dist/hosttwin_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
size() { stat -c %s "$1"; }
echo "binary: $(size dist/hosttwin.unstripped) bytes unstripped, $(size dist/hosttwin) stripped, $(gzip -9 -c dist/hosttwin | wc -c) gzipped"
echo "package: $deb, $(size "$deb") bytes"
echo "links: $(ldd dist/hosttwin | awk '{print $1}' | tr '\n' ' ')"
