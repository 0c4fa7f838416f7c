"""The benchmarks (see README.md); ``python -m bench`` runs the whole one."""
