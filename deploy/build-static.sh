#!/bin/sh
# build-static.sh: build the same static gatehouse binary as deploy/Dockerfile,
# without Docker.
#
#   deploy/build-static.sh [OUTPUT]      (default OUTPUT: ./gatehouse at the repo root)
#
# Runs from any directory; builds ./cmd/gatehouse of the repository that holds
# this script. The flags must stay identical to the Dockerfile's:
# CGO_ENABLED=0 (no libc, so the result is static), -trimpath (no local paths
# in the binary), -ldflags="-s -w" (no symbol table or DWARF).
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(dirname -- "$here")
out=${1:-"$root/gatehouse"}
case $out in
/*) ;;
*) out="$(pwd)/$out" ;;
esac

cd "$root"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$out" ./cmd/gatehouse

# Report what was built; CI checks that `file` says "statically linked" and
# that ldd finds no dynamic dependencies.
if command -v file >/dev/null 2>&1; then
	file "$out"
fi
echo "built $out"
