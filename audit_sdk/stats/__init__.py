"""Statistics helpers: bootstrap and analytic confidence intervals."""
