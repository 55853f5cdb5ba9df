"""Command-line interface: `dance` (cli/dance.py) and `translate-video` (cli/translate.py).

The CLI only parses options, builds configs and calls library functions. Library errors
(:class:`vid2vid_app.errors.UserError`) become one-line messages with a non-zero exit.
"""

import os

# Idle OpenMP threads sleep instead of spinning. By default they keep polling for new work for a
# while after each parallel region (libgomp: about 300k iterations; Intel's runtime: 200 ms). Alone
# on a machine that costs little, but when other processes share the cores, the spinning threads
# take CPU time from the threads doing the work (ours and theirs): a tiny `dance train` step ran 17x
# slower beside another busy 2-thread process on 2 cores (bench/load_bench.py). The runtime reads
# these variables once, when PyTorch loads it, so they are set here, before any command imports
# torch; values the user set are kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")
