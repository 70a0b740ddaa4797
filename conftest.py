"""Root test configuration, loaded before NumPy is imported anywhere in the run."""

import os

# The suite runs many small dense problems; one BLAS thread per process avoids
# oversubscription on small CI machines and keeps timings stable.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
