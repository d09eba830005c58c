#!/bin/sh
# Entrypoint of the Almoner image.
#
#   node (default)  run a node. Configuration, in increasing precedence:
#                   1. $ALMONER_CONFIG (a node.toml you mount), or else
#                      /var/lib/almoner/node.toml, written on first start with defaults
#                      (genesis /keys/genesis.json, data_dir data, listen 0.0.0.0:8000);
#                   2. ALMONER_* variables (ALMONER_GENESIS, ALMONER_KEY, ALMONER_DATA_DIR,
#                      ALMONER_LISTEN, ALMONER_PEERS as JSON {pubkey_hex: url}, ...).
#                   ALMONER_PEER_KEYS is a convenience for compose files: whitespace-
#                   separated KEYFILE=URL (or PUBKEY=URL) items; the public keys are read
#                   from the key files and the result is exported as ALMONER_PEERS.
#   init            write keys and genesis for the compose network (see almoner-init).
#   anything else   is run as a command, e.g. `almoner keygen --out /keys/me.key`.
set -eu

HOME_DIR=/var/lib/almoner

peers_from_keys() {
    python - <<'EOF'
import json, os, sys

peers = {}
for item in os.environ["ALMONER_PEER_KEYS"].split():
    ref, sep, url = item.partition("=")
    if not sep or not url:
        sys.exit(f"almoner-entrypoint: ALMONER_PEER_KEYS item {item!r} is not KEYFILE=URL")
    if os.path.sep in ref or ref.endswith(".key"):
        try:
            with open(ref, encoding="utf-8") as handle:
                ref = json.load(handle)["public_key"]
        except (OSError, ValueError, KeyError) as exc:
            sys.exit(f"almoner-entrypoint: cannot read the public key of {ref}: {exc}")
    peers[ref] = url
print(json.dumps(peers))
EOF
}

run_node() {
    if [ -n "${ALMONER_PEER_KEYS:-}" ] && [ -z "${ALMONER_PEERS:-}" ]; then
        ALMONER_PEERS=$(peers_from_keys)
        export ALMONER_PEERS
    fi
    if [ -n "${ALMONER_CONFIG:-}" ]; then
        exec almoner node run --config "$ALMONER_CONFIG"
    fi
    if [ ! -f "$HOME_DIR/node.toml" ]; then
        cat >"$HOME_DIR/node.toml" <<'EOF'
# Written by the container on first start. ALMONER_<KEY> environment variables override
# every setting here; edit this file (it lives in the data volume) for the rest.
genesis = "/keys/genesis.json"
data_dir = "data"
listen = "0.0.0.0:8000"
EOF
    fi
    exec almoner node run --home "$HOME_DIR"
}

case "${1:-node}" in
    node) run_node ;;
    init) shift; exec almoner-init "$@" ;;
    *) exec "$@" ;;
esac
