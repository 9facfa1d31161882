"""Uploaded ``.nir`` models: size-limited, validated by loading, stored as data, never run.

An upload is streamed to a hidden temporary file in the models directory,
counted against ``max_bytes`` as it arrives, then loaded with the core's graph
loader (``spikegate.models.graph.load_graph``) in a separate, short-lived
process with a memory and time limit: a file crafted to crash or exhaust the
HDF5 library takes that process down, not the gateway. Only a file that
loads is renamed to its final name, with mode 0600. Nothing in it is
imported, unpickled or executed.

Run as ``python -m spikegate.service.model_store PATH``: the check itself,
printing one JSON line (``{"layers": n}`` or ``{"error": "..."}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import sys
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


CHECK_TIMEOUT_S = 60.0
"""Longest a model check may take before the upload is refused."""
CHECK_MEMORY_BYTES = 4 << 30
"""Address-space limit of the checking process."""


def count_layers(path: Path) -> int:
    """Load ``path`` as the core would; the number of layers (nodes). Raises on anything bad."""
    from spikegate.models.graph import load_graph

    return len(load_graph(path).layers)


def _limit_memory() -> None:  # runs in the child, before the loader
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHECK_MEMORY_BYTES, CHECK_MEMORY_BYTES))


async def check_model_file(path: Path) -> int:
    """Load ``path`` in a separate process; its layer count, or ``ValueError`` saying why not."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "spikegate.service.model_store", str(path),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, preexec_fn=_limit_memory,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), CHECK_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ValueError(f"loading took longer than {CHECK_TIMEOUT_S:g} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    code = proc.returncode
    try:
        answer = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
    except (IndexError, ValueError):
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("layers"), int) and code == 0:
        return int(answer["layers"])
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        raise ValueError(answer["error"])
    if code is not None and code < 0:
        raise ValueError(f"the loader crashed ({signal.Signals(-code).name})")
    raise ValueError(f"the loader failed (exit status {code})")


def _main(argv: list[str]) -> int:
    """The check, in the child: one JSON line on stdout."""
    try:
        answer: dict[str, object] = {"layers": count_layers(Path(argv[1]))}
    except MemoryError:
        answer = {"error": f"loading needs more than {CHECK_MEMORY_BYTES >> 30} GiB"}
    except Exception as exc:  # any failure to load means: refused, with its sentence
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        answer = {"error": text}
    print(json.dumps(answer), flush=True)
    return 0 if "layers" in answer else 1


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
                layers = await check_model_file(part)
            except ValueError as exc:  # any failure to load means: refused
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


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
