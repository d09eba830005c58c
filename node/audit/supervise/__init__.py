"""Supervision: risk signals and anomaly scores over a chain the caller verified itself.

Everything here reads the certified replay of `node.audit.verify` (an observer attached
to `verify_chain`), never a node's word: the signals a regulator acts on are derived from
the same bytes that were checked.
"""
