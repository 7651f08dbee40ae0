"""``python -m bench``: see :mod:`bench.cli`."""

# Worker processes are spawned, which re-imports this module as ``__mp_main__``: the CLI
# is imported only when run as a script, so a worker's memory holds only what it uses.
if __name__ == "__main__":
    from bench.cli import main

    main()
