"""drivers/net."""
