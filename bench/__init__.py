"""reelhook's benchmark suite: ``python -m bench`` (see BENCHMARKS.md for what it measures)."""
