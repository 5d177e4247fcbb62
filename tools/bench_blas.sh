#!/bin/sh
# OpenBLAS against BLIS (Debian's libblis-serial-dev, installed if missing) on the matrix products
# finch's CPU convolutions make, one thread, ROUNDS rounds alternating the two; prints the median
# GFLOP/s of each shape and their ratio as a markdown table.
#
#   sh tools/bench_blas.sh [ROUNDS] [SECONDS_PER_SHAPE]
set -eu
ROUNDS=${1:-5}
SECS=${2:-0.3}
case $ROUNDS in '' | 0 | *[!0-9]*) echo "bench_blas.sh: ROUNDS must be a whole number of 1 or more, got '$ROUNDS'" >&2; exit 2 ;; esac
BLIS=/usr/lib/x86_64-linux-gnu/blis-serial
sh "$(dirname "$0")/install_deps.sh" libopenblas-dev libblis-serial-dev
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
SRC=$(dirname "$0")/bench_blas.c
cc -O2 -std=c11 -D_DEFAULT_SOURCE -I/usr/include/x86_64-linux-gnu "$SRC" -o "$DIR/openblas" -lopenblas
cc -O2 -std=c11 -D_DEFAULT_SOURCE -I/usr/include/x86_64-linux-gnu "$SRC" -o "$DIR/blis" -L$BLIS -Wl,-rpath,$BLIS -lblis
echo "OpenBLAS: $(OPENBLAS_VERBOSE=2 OPENBLAS_NUM_THREADS=1 "$DIR/openblas" 0.01 2>&1 | grep -m1 Core || echo 'core not printed')" >&2
r=1
while [ $r -le "$ROUNDS" ]; do
    OPENBLAS_NUM_THREADS=1 "$DIR/openblas" "$SECS" | sed "s/^/openblas\t/" >> "$DIR/all"
    BLIS_NUM_THREADS=1 "$DIR/blis" "$SECS" | sed "s/^/blis\t/" >> "$DIR/all"
    echo "round $r/$ROUNDS done" >&2
    r=$((r + 1))
done
echo "| product (M x N x K, one thread) | OpenBLAS GFLOP/s | BLIS GFLOP/s | BLIS / OpenBLAS |"
echo "|---|---|---|---|"
# median LIB SHAPE: the middle of LIB's rounds on SHAPE
median() {
    awk -F'\t' -v l="$1" -v s="$2" '$1 == l && $2 == s { print $3 }' "$DIR/all" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
cut -f2 "$DIR/all" | awk '!seen[$0]++' | while IFS= read -r shape; do
    o=$(median openblas "$shape")
    b=$(median blis "$shape")
    echo "| $shape | $o | $b | $(awk -v o="$o" -v b="$b" 'BEGIN { printf "%.2f", b / o }') |"
done
