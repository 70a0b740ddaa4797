"""Closed-form transport results from the Landauer-Büttiker formalism."""
