"""Development-only helpers for running reelhook locally (never shipped to Lambda)."""
