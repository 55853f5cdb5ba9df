"""`dance evaluate` (being written)."""

import click


@click.command()
def evaluate_cmd() -> None:
    """Not available yet."""
    raise click.ClickException("dance evaluate is not available in this build yet.")
