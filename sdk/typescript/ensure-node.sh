#!/usr/bin/env bash
# Make sure Node >= 18 and npm are present (the TypeScript SDK's tests run under Node).
# Installs Debian's nodejs and npm when missing and we are root (CI); otherwise says how.
set -euo pipefail
have_node() {
  command -v node >/dev/null && command -v npm >/dev/null &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ]
}
if have_node; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing nodejs and npm from Debian's packages" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
  have_node && exit 0
fi
echo "Node >= 18 with npm is required for the TypeScript SDK tests: apt-get install -y nodejs npm" >&2
exit 1
