#!/bin/sh
# Builds the native pieces into build/ (Node-API only, so headers of any Node >= 12 serve and
# the results load in every later Node):
# - kernel-stamp.node: the kernel's receive time of a UDP datagram (see kernel-stamp.c);
# - udp-io.node: UDP sockets read in batches (see udp-io.c).
# Never fails the install: without a C compiler or headers sipspan reads UDP through node:dgram
# and times datagrams from the event loop, and says so at start.
cd "$(dirname "$0")/.." || exit 0
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "sipspan: no C compiler ($cc): UDP through node:dgram, receive times from the event loop" >&2
  exit 0
fi
include=""
for dir in "$(dirname "$(dirname "$(command -v node)")")/include/node" /usr/local/include/node /usr/include/node; do
  if [ -f "$dir/node_api.h" ] && [ -f "$dir/uv.h" ]; then include=$dir; break; fi
done
if [ -z "$include" ]; then
  echo "sipspan: no Node-API headers (node_api.h, uv.h): UDP through node:dgram, receive times from the event loop" >&2
  exit 0
fi
mkdir -p build
for name in kernel-stamp udp-io; do
  out=build/$name.node
  if "$cc" -O2 -Wall -Wextra -fPIC -shared -I"$include" -o "$out.tmp" "native/$name.c"; then
    mv "$out.tmp" "$out"
  else
    rm -f "$out.tmp"
    echo "sipspan: native/$name.c did not build: sipspan runs without it and says so at start" >&2
  fi
done
exit 0
