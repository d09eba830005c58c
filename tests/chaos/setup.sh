#!/usr/bin/env bash
# Tools the chaos harness needs (CI runs as root on a clean machine): ip/tc (iproute2),
# nft (nftables: partitions and packet loss inside the harness's own namespaces),
# libfaketime (one node's clock skewed). Installs only what is missing.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need+=(libfaketime)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "chaos: missing ${need[*]} and not root; the harness falls back to what it has" >&2
    exit 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
