"""Slow, obvious EVT 2.0 / 3.0 decoders: the oracles the numba kernels are tested against.

Written straight from OpenEB's decoder semantics (see drivers/files/evt3.py), one
word at a time, no buffers, no chunks.
"""

from __future__ import annotations


def decode_evt3(words: list[int], width: int = 2048, height: int = 2048) -> list[tuple]:
    events = []
    started = False
    loop = high = low = y = base = 0
    is_cd = has_base = False
    i = 0
    while i < len(words):
        w = words[i]
        kind, content = w >> 12, w & 0xFFF
        i += 1
        if not started:
            if kind == 0x8:
                started, high, low = True, content, 0
            continue
        t = (loop << 24) | (high << 12) | low
        row_ok = is_cd and y < height
        if kind == 0x2:
            if row_ok:
                events.append((t, content & 0x7FF, y, content >> 11))
        elif kind == 0x4:
            if i + 2 > len(words):
                break  # a truncated vector: the fast decoder raises FormatError
            mask = (content | (words[i] & 0xFFF) << 12 | (words[i + 1] & 0xFF) << 24)
            i += 2
            if not row_ok:
                continue
            x0 = base & 0xF7FF
            if has_base and x0 + 32 <= width:
                for k in range(32):
                    if mask >> k & 1:
                        events.append((t, (x0 + k) & 0xFFFF, y, base >> 11 & 1))
            else:
                has_base = False
            base += 32
        elif kind == 0x8:
            if high >= 2048 + content:
                loop += 1
            if high != content:
                low = 0
            high = content
        elif kind == 0x6:
            low = content
        elif kind == 0x0:
            y, is_cd = content, True
        elif kind == 0x1:
            is_cd = False
        elif kind == 0x3:
            base, has_base = content, True
    return events


def decode_evt2(words: list[int]) -> list[tuple]:
    events = []
    started = False
    high = loop = 0
    for w in words:
        kind = w >> 28
        if kind == 0x8:
            new_high = w & 0x0FFFFFFF
            if started and high - new_high >= 1 << 27:
                loop += 1
            high, started = new_high, True
        elif kind <= 1 and started:
            t = (loop << 34) + (high << 6) + (w >> 22 & 0x3F)
            events.append((t, w >> 11 & 0x7FF, w & 0x7FF, kind))
    return events
