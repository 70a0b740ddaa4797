"""Test configuration shared by the suite."""

# The reference generator needs Kwant; the tests only read the numbers it stored.
collect_ignore = ["reference/generate_kwant_reference.py"]
