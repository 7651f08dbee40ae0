"""``python -m switchboard.cli``."""

from switchboard.cli import main

main()
