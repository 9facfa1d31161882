"""Uploaded ``.nir`` models: size-limited, validated by loading, stored as data, never run.

An upload is streamed to a hidden temporary file in the models directory,
counted against ``max_bytes`` as it arrives, then loaded with the core's graph
loader (``spikegate.models.graph.load_graph``; ``nir.read`` when that is not
available). Only a file that loads is renamed to its final name, with mode
0600. Nothing in it is imported, unpickled or executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from .schemas import MODEL_NAME_PATTERN, ModelInfo

_NAME = re.compile(MODEL_NAME_PATTERN)


class ModelRejectedError(ValueError):
    """The upload is not a NIR graph the core can load; the message says why."""


class ModelTooLargeError(ValueError):
    """The upload is larger than ``server.max_upload_bytes``."""


class ModelExistsError(ValueError):
    """A model of that name is stored already."""


def check_model_name(name: str) -> str:
    """``name`` if it is a plain ``<name>.nir`` file name; ``ValueError`` otherwise."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"model name {name[:80]!r} must be a plain file name ending in .nir "
            "(letters, digits, _ . -; at most 64 characters)")
    return name


def count_layers(path: Path) -> int:
    """Load ``path`` as the core would; the number of layers (nodes). Raises on anything bad."""
    try:
        from spikegate.models.graph import load_graph
    except ImportError:  # the core's loader is not there yet: NIR's own reader
        import nir

        return len(nir.read(str(path)).nodes)
    return len(load_graph(path).layers)


class ModelStore:
    """The models directory (created on first upload, mode 0700)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, name: str) -> Path:
        return self.root / check_model_name(name)

    def info(self, name: str, layers: int | None = None) -> ModelInfo:
        path = self.path_of(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise LookupError(f"no model named {name!r}") from None
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
        return ModelInfo(name=name, size_bytes=stat.st_size, sha256=digest.hexdigest(),
                         modified=modified, layers=layers)

    def list(self) -> list[ModelInfo]:
        if not self.root.is_dir():
            return []
        names = sorted(p.name for p in self.root.iterdir()
                       if p.is_file() and _NAME.fullmatch(p.name))
        return [self.info(n) for n in names]

    async def save(self, name: str, chunks: AsyncIterator[bytes],
                   replace: bool = False) -> ModelInfo:
        """Stream ``chunks`` in, validate by loading, then store as ``name``."""
        final = self.path_of(name)
        if final.exists() and not replace:
            raise ModelExistsError(f"a model named {name!r} exists already; "
                                   "delete it first or upload with ?replace=true")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = self.root / f".upload-{secrets.token_hex(8)}.part"
        try:
            size = 0
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ModelTooLargeError(
                            f"model {name!r} is larger than the limit of {self.max_bytes} bytes")
                    f.write(chunk)
            if size == 0:
                raise ModelRejectedError(f"model {name!r}: the upload is empty")
            try:
                layers = await asyncio.to_thread(count_layers, part)
            except Exception as exc:  # any failure to load means: refused
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                reason = reason.replace(str(part), name).replace(part.name, name)
                raise ModelRejectedError(
                    f"model {name!r} is not a NIR graph the core can load: {reason}") from None
            os.replace(part, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        return self.info(name, layers)

    def delete(self, name: str) -> None:
        try:
            self.path_of(name).unlink()
        except FileNotFoundError:
            raise LookupError(f"no model named {name!r}") from None
