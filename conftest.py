"""Root test configuration, loaded before NumPy is imported anywhere in the run."""

import importlib.util
import os

# The suite runs many small dense problems; one BLAS thread per process avoids
# oversubscription on small CI machines and keeps timings stable.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# mesoscopic.continuum needs the optional SymPy (the "continuum" extra); without it the
# doctest collection of the package leaves it out.
collect_ignore = [] if importlib.util.find_spec("sympy") else ["src/mesoscopic/continuum"]
