"""Headerless record formats (NAS, N-MNIST): any bytes decode or raise FormatError only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import nas, nmnist

from .format_bytes import decode_bytes


@pytest.mark.parametrize("module, chunk_bytes", [(nas, 64), (nmnist, 16)], ids=["nas", "nmnist"])
@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_format_error(module, chunk_bytes: int, data: bytes) -> None:
    try:
        decode_bytes(module.FORMAT, data, chunk_bytes)
    except FormatError:
        assert len(data) % module.RECORD_BYTES or data.startswith(b"#!AER-DAT")
