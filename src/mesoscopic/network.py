"""Multi-terminal Büttiker circuits."""
