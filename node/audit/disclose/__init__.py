"""Disclosure: per charity and period, what came in, what went out and what regulators
said, from a chain the caller verified, as CSV, JSON, IATI 2.03 XML and Parquet."""
