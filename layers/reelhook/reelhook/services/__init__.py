"""Domain services: what reelhook does, written against adapters and provider modules."""
