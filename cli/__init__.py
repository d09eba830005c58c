"""The `almoner` command: argument parsing, output and progress, nothing more.

Each sub-command parses its options, calls into `node/` (or `consensus/` for certificate
checks) and prints a human view or, with `--json`, a machine view. Exit codes are fixed
by the CLI contract: 0 success, 1 the thing checked is wrong, 2 usage, I/O or network error.
Errors are one sentence on stderr; tracebacks are a bug.
"""
