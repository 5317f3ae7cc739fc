"""``python -m mlarmor``."""

from mlarmor.cli import main

main()
