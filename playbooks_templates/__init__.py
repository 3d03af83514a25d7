"""The Jinja templates steps compile into; a package so they install with opsjob."""
