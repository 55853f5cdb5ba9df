"""`dance train` (being written)."""

import click


@click.command()
def train_cmd() -> None:
    """Not available yet."""
    raise click.ClickException("dance train is not available in this build yet.")
