"""`python -m rca` runs the CLI."""

from rca.cli import main

main()
