"""`python -m cli` runs the same entry point as the `almoner` script."""

from cli.main import main

main()
