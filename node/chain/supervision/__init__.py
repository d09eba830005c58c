"""Supervision's core: risk rules, features and anomaly scores over executed blocks.

Fed one executed block at a time (`engine.Supervisor`), with read access to the ledger
as of that block. Two front ends feed it: `almoner supervise` (node.audit.supervise) with
the blocks its own certified replay verified — the trust-nothing path — and the node
(node.server.supervision) with its own committed blocks, for its query API, explorer and
metrics. Both therefore compute the same signals from the same chain.
"""
