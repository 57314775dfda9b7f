"""`python -m rca` runs the CLI."""

from rca.cli.app import main

main()
