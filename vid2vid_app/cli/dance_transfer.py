"""`dance transfer` (being written)."""

import click


@click.command()
def transfer_cmd() -> None:
    """Not available yet."""
    raise click.ClickException("dance transfer is not available in this build yet.")
