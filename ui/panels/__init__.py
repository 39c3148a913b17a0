"""The parts of a run's page, one module each."""
