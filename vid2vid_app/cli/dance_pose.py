"""`dance pose` (being written)."""

import click


@click.command()
def pose_cmd() -> None:
    """Not available yet."""
    raise click.ClickException("dance pose is not available in this build yet.")
