"""``python -m dualbus``: the same command line as the ``dualbus`` script."""

from dualbus.cli import main

# Guarded: a process the command spawns (multiprocessing's "spawn") imports this module again, and must not
# run the command a second time.
if __name__ == "__main__":
    main()
