"""`python -m ttdr.cli`: the same program as the `ttdr` command."""

from ttdr.cli import main

main()
