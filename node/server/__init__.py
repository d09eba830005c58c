"""The networked node: HTTP API, consensus driver, p2p transport, mempool and catch-up.

It imports the ledger core (`almoner.node.chain`) and `almoner.consensus`, never the
regulator tools (`almoner.node.audit`) or devnet tooling.
"""
