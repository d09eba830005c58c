"""A local network of real `almoner node run` processes, and demo data for it.

Only the CLI and tests import this package.
"""
