"""Errors of the drivers layer: sentences with a place."""


class FormatError(ValueError):
    """Bad input, with a place: ``FormatError("rec.raw: byte 4096: truncated EVT3 word")``."""
