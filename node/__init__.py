"""Almoner's node and tools, in four layers; each may import only the ones below it.

::

        almoner.cli ──────────────┬──────────────┐
            │                     │              │
      node.devnet ──┐             │              │
            │       ▼             ▼              │
            │   node.audit    node.server        │   (audit and server never import
            │       │             │              │    each other)
            ▼       ▼             ▼              │
        node.chain  (formats, contract, Merkle log, store, certified-block check)
            │
            ▼
      almoner.consensus   (pure state machine: imports nothing of node)

- `chain`: the ledger core. No asyncio, no HTTP (fastapi, uvicorn, httpx), no server,
  audit, devnet or cli.
- `server`: the networked node: API, consensus driver, p2p transport, mempool, catch-up,
  config, metrics.
- `audit`: what a regulator or platform runs against nodes it does not trust: the client,
  verify, archives, node audits, supervision and disclosure.
- `devnet`: a local network of real node processes; only the CLI and tests import it.

`node.errors` is the one error tree, shared by every layer. `tests/test_layers.py` checks
these rules on the syntax tree of every module.
"""
