"""Benchmarks run by `make bench` (`python -m bench`). They print what they measure and never assert."""
