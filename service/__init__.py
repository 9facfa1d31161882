"""Wiring: config, pipelines, the aiohttp app, the CLI."""
