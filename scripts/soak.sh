#!/bin/sh
# Soak sipspan with a SIPp mix (INVITE/ACK/re-INVITE/BYE over UDP and TCP,
# messages above 1300 bytes, REGISTER, OPTIONS, CANCEL) for 30 minutes by
# default, then kill -9 it under load and restart it. Not run in CI.
#
#   scripts/soak.sh                  # 30 minutes, then the kill -9 phase
#   scripts/soak.sh --minutes 3      # a short run
#   scripts/soak.sh --otlp           # also count spans at an OTLP/HTTP stand-in
#   scripts/soak.sh --scale 2        # double every SIPp rate
#
# Needs sipp on PATH. Prints a JSON summary and PASS/FAIL; report.json (with
# the RSS/fd samples) goes to --out DIR or a new directory under $TMPDIR.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
node_bin=node
if [ -x "$root/node_modules/node/bin/node" ]; then node_bin="$root/node_modules/node/bin/node"; fi
command -v sipp >/dev/null 2>&1 || { echo "soak: sipp not found on PATH" >&2; exit 2; }
exec "$node_bin" "$root/scripts/soak/soak.ts" "$@"
