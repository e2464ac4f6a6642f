"""voltbus."""
