"""Benchmarks that print ratios against a baseline measured in the same run.

Each module runs on its own (``python -m bench.quota_engine``); see ``bench/README.md``.
"""
