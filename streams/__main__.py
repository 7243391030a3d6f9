"""`python -m streams` = the `anomstream` command."""

from streams.cli import main

main()
