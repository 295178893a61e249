"""``python -m dualbus``: the same command line as the ``dualbus`` script."""

from dualbus.cli import main

main()
