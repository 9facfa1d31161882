"""The ``% `` text header of Prophesee ``.raw`` and ``.dat`` files, and the sensor it names.

A header is a run of lines that start with ``%`` (``% key value``), ended by
the first line that does not, or by ``% end`` (OpenEB 4+). Geometry comes from,
in order: ``% format EVT3;height=720;width=1280``, ``% geometry 1280x720``,
``% Width 640`` / ``% Height 480`` (DAT), and last from the sensor generation
the header names (``% sensor_generation``, ``% system_ID``, ``% plugin_name``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar

from ..errors import FormatError
from ..packet import Geometry
from .base import FileHeader

MAX_HEADER_BYTES = 1 << 20
"""Largest ``%`` header accepted (real headers are a few hundred bytes)."""

_GEOMETRY_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")

# OpenEB's system ids (decimal in headers) of the sensors whose size we know.
_SYSTEM_ID_GEOMETRY: dict[int, tuple[int, int]] = {
    **dict.fromkeys((0x14, 0x15, 0x17, 0x19, 0x1D, 0x21, 0x97, 0x99, 0xA1), (640, 480)),  # Gen2/3
    **dict.fromkeys((0x1C, 0x22, 0x23, 0x28, 0x29, 0xA2), (640, 480)),  # Gen 3.1
    **dict.fromkeys((0x1A, 0x1E, 0x1F, 0x20, 0x2E, 0x9A), (1280, 720)),  # Gen 4
    **dict.fromkeys((0x27, 0x30), (1280, 720)),  # Gen 4.1
    **dict.fromkeys((0x31, 0x32, 0x35, 0x3A), (1280, 720)),  # IMX636 / IMX646
    **dict.fromkeys((0x34, 0x36), (640, 512)),  # IMX637 / IMX647
    0x40: (320, 320),  # GenX320
}

# (substring of plugin_name / integrator text, geometry), most specific first.
_PLUGIN_GEOMETRY: tuple[tuple[str, tuple[int, int]], ...] = (
    ("genx320", (320, 320)),
    ("imx637", (640, 512)),
    ("imx647", (640, 512)),
    ("imx636", (1280, 720)),
    ("imx646", (1280, 720)),
    ("gen4", (1280, 720)),
    ("gen3", (640, 480)),
)

_GENERATION_GEOMETRY: dict[str, tuple[int, int]] = {
    "1.0": (304, 240),
    "2.0": (640, 480),
    "3.0": (640, 480),
    "3.1": (640, 480),
    "4.0": (1280, 720),
    "4.1": (1280, 720),
    "4.2": (1280, 720),
    "320.0": (320, 320),
}


@dataclass(slots=True)
class PercentHeader:
    """The parsed header: where data starts, ``key -> value`` and the raw lines."""

    data_offset: int
    fields: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        """A field by name, case-insensitive."""
        return self.fields.get(key.lower())


def sniff_percent_header(head: bytes) -> PercentHeader | None:
    """Parse a header from the first bytes of a file, or None when there is none."""
    if not head.startswith((b"% ", b"%\n", b"%\r")):
        return None
    try:
        return _parse(head, "head", complete=False)
    except FormatError:
        return None


def read_percent_header(f: BinaryIO, where: str) -> PercentHeader:
    """Read the ``%`` header at the start of ``f`` (bounded: ``MAX_HEADER_BYTES``)."""
    f.seek(0)
    head = f.read(MAX_HEADER_BYTES + 1)
    return _parse(head, where, complete=True)


def _parse(head: bytes, where: str, complete: bool) -> PercentHeader:
    header = PercentHeader(data_offset=0)
    pos = 0
    while pos < len(head) and head[pos : pos + 1] == b"%":
        # a data word may start with 0x25 ('%'): header lines are '%' then space or EOL
        nxt = head[pos + 1 : pos + 2]
        if nxt not in (b" ", b"\n", b"\r", b""):
            break
        end = head.find(b"\n", pos)
        if end < 0:
            if not complete or len(head) > MAX_HEADER_BYTES:
                raise FormatError(f"{where}: byte {pos}: header line without end of line "
                                  f"(header over {MAX_HEADER_BYTES} bytes, or truncated)")
            end = len(head) - 1
        line = head[pos + 1 : end].decode("utf-8", errors="replace").strip()
        pos = end + 1
        header.lines.append(line)
        if line == "end":
            break
        key, _, value = line.partition(" ")
        if key:
            header.fields.setdefault(key.lower(), value.strip())
    if pos > MAX_HEADER_BYTES:
        raise FormatError(f"{where}: byte {pos}: header longer than {MAX_HEADER_BYTES} bytes")
    header.data_offset = pos
    return header


def format_options(header: PercentHeader) -> tuple[str | None, dict[str, str]]:
    """``% format EVT3;height=720;width=1280`` → ``("EVT3", {"height": "720", ...})``."""
    text = header.get("format")
    if not text:
        return None, {}
    name, *options = (part.strip() for part in text.split(";"))
    parsed: dict[str, str] = {}
    for option in options:
        key, _, value = option.partition("=")
        parsed[key.strip().lower()] = value.strip()
    return name.upper() or None, parsed


def evt_version(header: PercentHeader) -> str | None:
    """The EVT version a ``.raw`` header declares: ``"2.0"``, ``"2.1"``, ``"3.0"`` or None."""
    name, _ = format_options(header)
    by_format = {"EVT2": "2.0", "EVT21": "2.1", "EVT3": "3.0"}
    if name in by_format:
        return by_format[name]
    version = header.get("evt")
    if version:
        version = version.strip()
        return {"2": "2.0", "3": "3.0", "2.0": "2.0", "2.1": "2.1", "3.0": "3.0"}.get(version)
    return None


def is_dat_header(header: PercentHeader) -> bool:
    """True for a ``.dat`` header (``% Data file containing ...`` or ``% Version``)."""
    first = header.lines[0] if header.lines else ""
    return first.startswith("Data file containing") or header.get("version") is not None


def raw_evt_version(header: PercentHeader) -> str | None:
    """The EVT version of a ``.raw`` header: stated, else implied by the sensor.

    A header without ``% evt`` / ``% format`` (old recordings) is EVT 2.0 for
    Gen3 sensors and EVT 3.0 for the later ones OpenEB knows, as OpenEB reads them.
    """
    stated = evt_version(header)
    if stated is not None or is_dat_header(header):
        return stated
    if header.get("system_id") is None and header.get("plugin_name") is None:
        return None
    geometry = _generation_geometry(header)
    if geometry is None:
        return None
    return "2.0" if tuple(geometry[:2]) == (640, 480) else "3.0"


def header_geometry(header: PercentHeader) -> Geometry | None:
    """The sensor geometry the header states or implies, or None."""
    _, options = format_options(header)
    width, height = _as_int(options.get("width")), _as_int(options.get("height"))
    if width and height:
        return Geometry(width, height)
    text = header.get("geometry")
    if text:
        match = _GEOMETRY_RE.match(text)
        if match:
            return Geometry(int(match.group(1)), int(match.group(2)))
    width, height = _as_int(header.get("width")), _as_int(header.get("height"))
    if width and height:
        return Geometry(width, height)
    return _generation_geometry(header)


def _generation_geometry(header: PercentHeader) -> Geometry | None:
    generation = header.get("sensor_generation")
    if generation:
        parts = generation.strip().split(".")
        key = f"{parts[0]}.{parts[1] if len(parts) > 1 else '0'}"
        if key in _GENERATION_GEOMETRY:
            return Geometry(*_GENERATION_GEOMETRY[key])
    system_id = _as_int(header.get("system_id"))
    if system_id is not None and system_id in _SYSTEM_ID_GEOMETRY:
        return Geometry(*_SYSTEM_ID_GEOMETRY[system_id])
    plugin = (header.get("plugin_name") or "").lower()
    for needle, size in _PLUGIN_GEOMETRY:
        if needle in plugin:
            return Geometry(*size)
    return None


def _as_int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def format_percent_header(lines: list[str]) -> bytes:
    """Header bytes from ``key value`` lines, ended by ``% end``."""
    body = "".join(f"% {line}\n" for line in lines)
    return (body + "% end\n").encode("utf-8")


def header_t_offset_us(fields: dict[str, str], where: str) -> int:
    """The ``% t_offset_us`` a spikegate writer stored (0 when absent): added to every t."""
    text = fields.get("t_offset_us")
    if text is None:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise FormatError(f"{where}: header: t_offset_us {text!r} is not an integer") from None
    if not 0 <= value < 1 << 62:
        raise FormatError(f"{where}: header: t_offset_us {value} is out of range")
    return value


def read_raw_header(f: BinaryIO, where: str, name: str, version: str
                    ) -> tuple[FileHeader, PercentHeader]:
    """The ``% `` header of a ``.raw`` file that must be EVT ``version`` (or say none)."""
    header = read_percent_header(f, where)
    found = evt_version(header)
    if found not in (None, version):
        raise FormatError(f"{where}: byte 0: header says EVT {found}, not EVT {version}")
    return FileHeader(name, header.data_offset, header_geometry(header),
                      dict(header.fields)), header


class RawEvtFormat:
    """The header side of the ``.raw`` EVT formats told by ``raw_evt_version`` (2.0, 3.0)."""

    name: str
    version: ClassVar[str]
    extensions: tuple[str, ...] = (".raw",)

    def sniff(self, head: bytes) -> bool:
        header = sniff_percent_header(head)
        return header is not None and raw_evt_version(header) == self.version

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        return read_raw_header(f, where, self.name, self.version)[0]


def raw_evt_header(version: str, geometry: Geometry | None, t_offset_us: int) -> bytes:
    """The ``% `` header our EVT writers put before the words (``version`` "2.0" or "3.0")."""
    lines = [f"evt {version}"]
    if geometry is not None:
        token = "EVT" + version.replace(".0", "")
        lines += [f"format {token};height={geometry.height};width={geometry.width}",
                  f"geometry {geometry.width}x{geometry.height}"]
    lines.append("generator spikegate")
    if t_offset_us:
        lines.append(f"t_offset_us {t_offset_us}")
    return format_percent_header(lines)
