"""Test configuration shared by the suite."""

import os

# The reference generator needs Kwant; the tests only read the numbers it stored.
collect_ignore = ["reference/generate_kwant_reference.py"]

# The compiled RGF recursion is compiled (or loaded from numba's cache) in the test process
# when first used, instead of in a separate process while the NumPy recursion runs: every
# test then takes the same road on every run. tests/test_rgf_kernel.py compares the roads.
os.environ.setdefault("MESOSCOPIC_RGF_KERNEL", "compiled")
