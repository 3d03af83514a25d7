"""The file store, its HTTP-facing catalog and the safe tree walker."""
