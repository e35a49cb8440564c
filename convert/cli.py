"""CLI commands for convert/ (registered into the zoo app)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
