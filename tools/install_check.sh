#!/bin/sh
# What make install promises a user (README, "finch as a library"): into a temporary prefix, then
# examples built outside the tree with pkg-config, against the shared library and the static one,
# and the public headers parsed as C++ (their extern "C" guards). Run by make test
# (tests/test_examples.c); prints "install check: ok" at the end.
#
#   sh tools/install_check.sh [BUILD]
set -eu
BUILD=${1:-build}
tmp=$(mktemp -d /tmp/finch-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s install PREFIX="$tmp/prefix" BUILD="$BUILD" > "$tmp/make.log" 2>&1 ||
    { cat "$tmp/make.log"; exit 1; }
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
echo "finch $(pkg-config --modversion finch) installed in a temporary prefix"
cc -std=c11 examples/01_tape.c $(pkg-config --cflags --libs finch) -o "$tmp/tape"
"$tmp/tape" | tail -n 1
cc -std=c11 examples/03_custom_op.c $(pkg-config --cflags finch) "$tmp/prefix/lib/libfinch.a" \
    $(pkg-config --static --libs finch | sed 's/-lfinch//') -o "$tmp/custom_op_static"
"$tmp/custom_op_static" | tail -n 1
if ldd "$tmp/custom_op_static" | grep -q libfinch; then echo "the static build links libfinch.so"; exit 1; fi
printf '#include "core/finch.h"\n#include "models/model_io.h"\n#include "attack/attack.h"\n#include "data/image.h"\nint main() { return FINCH_VERSION_MAJOR; }\n' > "$tmp/cxx.cpp"
c++ -std=c++17 -fsyntax-only $(pkg-config --cflags finch) "$tmp/cxx.cpp"
echo "install check: ok"
