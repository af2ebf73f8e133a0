"""bosco: one pseudo-CDN and one publish step for the static assets of a multi-repo web application."""

import os

__version__ = "0.1.0"

# bosco's numpy work is element-wise and never calls BLAS: without this, importing numpy starts one
# OpenBLAS thread per core (tens of ms of start-up on every command that verifies code).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
