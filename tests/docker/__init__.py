"""Docker end-to-end test (`make test-docker`); not collected by pytest."""
