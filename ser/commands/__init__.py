"""CLI command families; each module exposes `COMMANDS`, a list of click commands."""
