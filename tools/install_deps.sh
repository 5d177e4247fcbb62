#!/bin/sh
# Installs the Debian packages named on the command line that are missing. As root it runs
# apt-get; otherwise it prints the exact command to run and fails.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "finch: installing missing packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq $missing >/dev/null || {
        echo "finch: apt-get install failed for:$missing" >&2; exit 1; }
else
    echo "finch: missing packages:$missing" >&2
    echo "finch: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
