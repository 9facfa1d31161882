"""Actuator feedback channels: ``feedback`` (encoder values in, send-on-delta spikes out)."""
