"""`python -m almoner.cli` runs the same entry point as the `almoner` script."""

from almoner.cli.main import main

main()
