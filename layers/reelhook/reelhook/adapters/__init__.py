"""Adapters: the only modules that talk to AWS or to the network."""
