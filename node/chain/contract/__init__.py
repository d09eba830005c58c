"""The contract: the rules every transaction type is checked against, in the fixed order.

`engine` runs the pipeline; `registry`, `funds` and `evidence` hold the business rules of
each family of tx types; `base` the shared context and helpers.
"""
