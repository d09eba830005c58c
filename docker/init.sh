#!/bin/sh
# almoner-init: the one-shot `init` service of docker/compose.yml.
#
# Writes, into $ALMONER_KEYS_DIR (default /keys, the almoner-keys volume), the devnet key
# layout: validator-0.key ... validator-3.key, regulator.key, platform-1.key,
# platform-2.key, charity-1.key ... charity-3.key (mode 0600, owned by the image's user),
# then genesis.json naming validator-N.key as validators[N] and registering the parties.
# The genesis is written by `almoner genesis`, the command organisations run in a real
# genesis ceremony (docs/operators.md); the key files are exactly what `almoner keygen`
# writes.
#
# Idempotent: a key file that exists is kept, and an existing genesis.json is reused
# after checking that validator-N.key is still its validators[N].
set -eu

KEYS=${ALMONER_KEYS_DIR:-/keys}
CHAIN_ID=${ALMONER_CHAIN_ID:-almoner-docker}
# Genesis validator names, in order: validator-N.key is validators[N].
VALIDATORS="foundation platform regulator auditor"
PARTY_FILES="regulator platform-1 platform-2 charity-1 charity-2 charity-3"

say() { echo "almoner-init: $*"; }
die() { echo "almoner-init: $*" >&2; exit 1; }

pubkey() {
    python -c 'import json, sys; print(json.load(open(sys.argv[1]))["public_key"])' "$1"
}

[ -d "$KEYS" ] || die "$KEYS does not exist; mount the keys volume there"
[ -w "$KEYS" ] || die "$KEYS is not writable by uid $(id -u); chown it to $(id -u):$(id -g)"
cd "$KEYS"
umask 077

if [ -f genesis.json ]; then
    python - <<'EOF' || die "genesis.json and the validator key files in $KEYS disagree"
import json, sys

genesis = json.load(open("genesis.json"))
for n, validator in enumerate(genesis["validators"]):
    key = json.load(open(f"validator-{n}.key"))["public_key"]
    if key != validator["pubkey"]:
        sys.exit(f"almoner-init: validator-{n}.key is not genesis validators[{n}]")
EOF
    chain=$(python -c 'import json; print(json.load(open("genesis.json"))["chain_id"])')
    say "reusing $KEYS/genesis.json (chain $chain) and its keys"
    exit 0
fi

files=""
n=0
for name in $VALIDATORS; do
    files="$files validator-$n"
    n=$((n + 1))
done

# Missing keys are made in one process: ten `almoner keygen` runs would cost a CLI start
# each, seconds in all. Same code and file format, mode 0600. A key is renamed into place
# only once complete, so an interrupted init never leaves a truncated key behind.
# shellcheck disable=SC2086
python - $files $PARTY_FILES <<'EOF'
import os, sys

from almoner.node.chain.crypto import KeyPair
from almoner.node.chain.keys import write_key_file

for name in sys.argv[1:]:
    if os.path.exists(f"{name}.key"):
        print(f"almoner-init: keeping {name}.key")
        continue
    key = KeyPair.generate()
    write_key_file(f"{name}.key.tmp", key, overwrite=True)
    os.replace(f"{name}.key.tmp", f"{name}.key")
    print(f"almoner-init: new key {name}.key {key.public_key.hex()}")
EOF

set --
n=0
for name in $VALIDATORS; do
    set -- "$@" --validator "$name=$(pubkey "validator-$n.key")"
    n=$((n + 1))
done
set -- "$@" \
    --party "regulator:Charity Regulator:REG-0001:$(pubkey regulator.key)" \
    --party "platform:GiveNow Platform:PLT-0001:$(pubkey platform-1.key)" \
    --party "platform:CrowdAid Platform:PLT-0002:$(pubkey platform-2.key)" \
    --party "charity:Clean Water Foundation:CHR-0001:$(pubkey charity-1.key)" \
    --party "charity:Education Trust:CHR-0002:$(pubkey charity-2.key)" \
    --party "charity:Food Bank Network:CHR-0003:$(pubkey charity-3.key)"

hash=$(almoner genesis --chain-id "$CHAIN_ID" "$@" --out genesis.json.tmp)
chmod 0644 genesis.json.tmp
mv genesis.json.tmp genesis.json
say "wrote $KEYS/genesis.json for chain $CHAIN_ID, genesis hash $hash"
