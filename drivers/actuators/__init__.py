"""drivers/actuators."""
