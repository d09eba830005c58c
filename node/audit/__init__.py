"""What runs against nodes it does not trust: the client, verify, archives, node audits.

It imports the ledger core (`almoner.node.chain`) and `almoner.consensus`, never the server:
everything a regulator checks is re-derived from certified blocks.
"""
