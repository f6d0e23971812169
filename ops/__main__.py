"""`python -m ops` is the `agora` command."""

from ops.cli import main

main()
