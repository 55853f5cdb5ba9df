"""`translate-video` (being written)."""

import click


@click.group()
def translate_video() -> None:
    """Frame-wise pix2pix / CycleGAN over videos and images."""
