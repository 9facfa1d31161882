import numpy as np
import pytest

from spikegate.drivers.packet import (
    EVENT_DTYPE,
    EventPacket,
    FormatError,
    Geometry,
    as_events,
    make_events,
)
from tests.conftest import make_packet


def test_dtype_fields_in_order() -> None:
    assert EVENT_DTYPE.names == ("t", "x", "y", "p")
    assert EVENT_DTYPE.itemsize == 13
    assert EVENT_DTYPE["t"] == np.dtype("<i8")


def test_packet_header_and_times() -> None:
    packet = make_packet(5, t0_us=100, dt_us=3, seq=7)
    assert len(packet) == 5
    assert (packet.t_first_us, packet.t_last_us) == (100, 112)
    assert packet.seq == 7 and packet.geometry.n_addresses == 32 * 32 * 2


def test_packet_refuses_other_dtype() -> None:
    with pytest.raises(FormatError, match="dtype"):
        EventPacket(np.zeros(3), source="s", geometry=Geometry(1, 1))


def test_as_events_converts_by_field_name() -> None:
    other = np.zeros(2, dtype=[("p", "i4"), ("y", "i4"), ("x", "i4"), ("t", "f8")])
    other["x"] = [3, 4]
    other["t"] = [1.0, 2.0]
    events = as_events(other)
    assert events.dtype == EVENT_DTYPE
    assert list(events["x"]) == [3, 4] and list(events["t"]) == [1, 2]
    with pytest.raises(FormatError, match="missing event field"):
        as_events(np.zeros(2, dtype=[("t", "i8")]))


def test_with_events_keeps_header() -> None:
    packet = make_packet(4, seq=3)
    out = packet.with_events(make_events([1], [2]))
    assert out.seq == 3 and out.source == packet.source and len(out) == 1
