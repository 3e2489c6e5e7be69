"""Adapter: a local folder standing in for CrowdTwist's drop folder (`<data dir>/sftp/` when no SFTP host is set).

Same promise as the SFTP adapter: the file is copied under a hidden temporary name and linked to its final name
only when complete, so a reader polling the folder never sees half a file; an existing file is never replaced.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from sync_worker.core.errors import ConfigurationError, TransientError
from sync_worker.core.ports import Delivery

_CHUNK = 1024 * 1024


class FolderDrop:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def destination(self) -> str:
        return str(self.folder)

    def deliver(self, local: Path, name: str, *, progress: Callable[[int], None] | None = None) -> Delivery:
        final = self.folder / name
        temporary = self.folder / f".{name}.part"
        size = local.stat().st_size
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if final.exists():
                return self._already_there(final, size)
            _copy(local, temporary, progress)
            # link() refuses an existing name, where rename() would silently replace it.
            os.link(temporary, final)
        except FileExistsError:
            return self._already_there(final, size)
        except OSError as exc:
            raise TransientError(f"drop folder {self.folder}: {exc.strerror or exc}", system="drop") from None
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return self._already_there(final, size)

    def _already_there(self, final: Path, size: int) -> Delivery:
        found = final.stat().st_size
        if found != size:
            raise ConfigurationError(
                f"drop folder already holds a different {final.name} ({found} bytes): not replaced", system="drop"
            )
        return Delivery(name=final.name, size=found, destination=self.destination)


def _copy(source: Path, target: Path, progress: Callable[[int], None] | None) -> None:
    done = 0
    with source.open("rb") as reading, target.open("wb") as writing:
        while chunk := reading.read(_CHUNK):
            writing.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
        writing.flush()
        os.fsync(writing.fileno())
