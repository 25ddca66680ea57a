"""``python -m distnet``: the command line."""

from distnet.cli import main

main()
