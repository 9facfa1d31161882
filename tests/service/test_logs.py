"""Structured logs: one JSON object per line, with pipeline and source names as fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from spikegate.drivers.packet import EventPacket, Geometry
from spikegate.models.demo import TrackerNetwork
from spikegate.service.cli import build_parser
from spikegate.service.decoding import TrackerDecoder
from spikegate.service.logs import JsonFormatter, TextFormatter, configure_logging
from spikegate.service.pipeline import Pipeline
from tests.conftest import eventually


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("info", "json", stream)
    yield stream
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_extras(captured: io.StringIO) -> None:
    log = logging.getLogger("spikegate.test")
    log.warning("pipeline %s: odd", "demo", extra={"pipeline": "demo", "source": "cam0",
                                                    "shape": (2, 3), "obj": object()})
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("failed", extra={"pipeline": "demo"})
    first, second = lines(captured)
    assert first["level"] == "warning" and first["logger"] == "spikegate.test"
    assert first["message"] == "pipeline demo: odd"
    assert first["pipeline"] == "demo" and first["source"] == "cam0"
    assert first["shape"] == [2, 3] and str(first["obj"]).startswith("<object")
    assert str(first["ts"]).endswith("Z")
    assert second["level"] == "error" and "ValueError: boom" in str(second["exc"])


def test_text_lines_show_the_extras() -> None:
    record = logging.LogRecord("spikegate.x", logging.INFO, __file__, 1, "hello %s", ("you",),
                               None)
    record.pipeline = "demo"
    line = TextFormatter().format(record)
    assert line.endswith("INFO spikegate.x: hello you [pipeline=demo]")
    assert json.loads(JsonFormatter().format(record))["pipeline"] == "demo"


async def test_a_failing_source_logs_its_pipeline_and_name(captured: io.StringIO) -> None:
    class Broken:
        name = "cam0"
        geometry = Geometry(16, 16)

        async def packets(self) -> AsyncIterator[EventPacket]:
            raise OSError("unplugged")
            yield  # an async generator

    net = TrackerNetwork(Geometry(16, 16), n_x=2, n_y=2)
    p = Pipeline("line1", Broken(), net, TrackerDecoder(4, net.decode), [])
    await p.start()
    await eventually(lambda: p.source_done)
    await p.close()
    (entry,) = [e for e in lines(captured) if e["logger"] == "spikegate.pipeline"]
    assert entry["pipeline"] == "line1" and entry["source"] == "cam0"
    assert entry["level"] == "error" and "unplugged" in str(entry["message"])


def test_serve_takes_log_format() -> None:
    args = build_parser().parse_args(["serve", "--log-format", "json"])
    assert args.log_format == "json"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--log-format", "xml"])
