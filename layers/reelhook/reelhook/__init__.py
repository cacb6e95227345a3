"""reelhook: reliable AI video generation on AWS (shared code shipped as a Lambda layer)."""

__version__ = "0.1.0"
