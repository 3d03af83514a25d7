"""Notebooks that run against a live opsjob server; a package so they install with opsjob."""
