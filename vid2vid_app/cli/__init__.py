"""Command-line interface: `dance` (cli/dance.py) and `translate-video` (cli/translate.py).

The CLI only parses options, builds configs and calls library functions. Library errors
(:class:`vid2vid_app.errors.UserError`) become one-line messages with a non-zero exit.
"""
