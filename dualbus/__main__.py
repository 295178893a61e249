"""``python -m dualbus``: the same command line as the ``dualbus`` script."""

from dualbus.cli import main

# Guarded, as a main module should be: importing it (a tool, a test) runs no command.
if __name__ == "__main__":
    main()
