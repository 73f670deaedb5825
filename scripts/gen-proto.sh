#!/usr/bin/env bash
# Regenerates Sources/TwinSync/RemoteWrite/RemoteWrite.pb.swift from remote.proto beside it. The generated
# file is committed, so builds need neither protoc nor the plugin; run this only after changing the .proto.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift of the swift-protobuf version Package.swift
# names (built here from the package's own checkout: `swift build -c release --product protoc-gen-swift`).
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}
[ -x "$plugin" ] || { echo "set PROTOC_GEN_SWIFT to a protoc-gen-swift binary (swift-protobuf 1.39)" >&2; exit 1; }
dir=Sources/TwinSync/RemoteWrite
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
protoc --plugin=protoc-gen-swift="$plugin" --proto_path="$dir" --swift_out="$tmp" --swift_opt=Visibility=Internal remote.proto
mv "$tmp/remote.pb.swift" "$dir/RemoteWrite.pb.swift"
echo "wrote $dir/RemoteWrite.pb.swift"
