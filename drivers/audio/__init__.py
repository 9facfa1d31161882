"""drivers/audio."""
