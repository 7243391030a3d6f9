"""`python -m anomstream` = the `anomstream` command."""

from anomstream.cli import main

main()
