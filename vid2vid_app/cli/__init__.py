"""Command-line interface: `dance` (cli/dance.py) and `translate-video` (cli/translate.py).

The CLI only parses options, builds configs and calls library functions. Library errors
(:class:`vid2vid_app.errors.UserError`) become one-line messages with a non-zero exit.
"""

import os

# Idle OpenMP threads spin only briefly before they sleep. By default they keep polling for new
# work for a while after each parallel region (libgomp: 300k iterations; Intel's runtime: 200 ms):
# when other processes share the cores, the spinning threads take CPU time from the threads doing
# the work (ours and theirs), and a tiny `dance train` step ran 4-6x slower beside another busy
# 2-thread process on 2 cores. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) fixes that but made the
# same step 1.6x slower on an idle machine; a short spin keeps the idle speed and stays within
# 2.2x under that load (bench/load_bench.py). The runtime reads these variables once, when PyTorch
# loads it, so they are set here, before any command imports torch; values the user set are kept.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    os.environ.setdefault("KMP_BLOCKTIME", "1")
