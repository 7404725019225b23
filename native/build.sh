#!/bin/sh
# Builds build/kernel-stamp.node, the one native piece: the kernel's receive
# time of a UDP datagram (see kernel-stamp.c). Node-API only, so headers of any
# Node >= 12 serve and the result loads in every later Node. Never fails the
# install: without a C compiler or headers sipspan times datagrams from the
# event loop and says so at start.
cd "$(dirname "$0")/.." || exit 0
out=build/kernel-stamp.node
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "sipspan: no C compiler ($cc): UDP receive times will come from the event loop" >&2
  exit 0
fi
include=""
for dir in "$(dirname "$(dirname "$(command -v node)")")/include/node" /usr/local/include/node /usr/include/node; do
  if [ -f "$dir/node_api.h" ]; then include=$dir; break; fi
done
if [ -z "$include" ]; then
  echo "sipspan: no Node-API headers (node_api.h): UDP receive times will come from the event loop" >&2
  exit 0
fi
mkdir -p build
if "$cc" -O2 -Wall -Wextra -fPIC -shared -I"$include" -o "$out.tmp" native/kernel-stamp.c; then
  mv "$out.tmp" "$out"
else
  rm -f "$out.tmp"
  echo "sipspan: native/kernel-stamp.c did not build: UDP receive times will come from the event loop" >&2
fi
exit 0
