"""The ledger core: canonical formats, keys and signatures, the contract, the Merkle log,
the store and the ledger that applies certified blocks.

Everything here is synchronous and deterministic, with no network and no event loop, so
that the node, the verifier and the tests replay exactly the same code.
"""
