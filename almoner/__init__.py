"""Almoner: a shared, append-only, signed donation ledger with BFT quorum consensus.

The one import name of the distribution. Its subpackages live in the repository's
top-level folders and are mapped here by setuptools' `package-dir` (and, in a checkout,
by the links in this folder):

- `almoner.consensus`: the pure Tendermint state machine (no I/O, no clock, no randomness);
- `almoner.node`: the ledger core (`chain`), the networked node (`server`), the regulator
  tools and client (`audit`) and local-network tooling (`devnet`);
- `almoner.cli`: the `almoner` command.
"""

__version__ = "0.1.0"
