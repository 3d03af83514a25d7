"""Operating an installation: doctor, retention, readiness and log formats."""
