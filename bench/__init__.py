"""Benchmarks: scripts that print figures (`python bench/<name>.py`); not timed tests.

A package so that type checkers can tell `bench/consensus.py` from the `consensus` package.
"""
