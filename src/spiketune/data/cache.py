"""On-disk cache of per-clip audio features, safe for concurrent processes.

Each clip's features are stored in their own `.npz` file named by a SHA-256 key.
The key covers the clip's absolute path, size and modification time in
nanoseconds, plus every front-end setting. A changed setting or file therefore
misses only its own entries, and stale entries are left on disk unused.
Writers create a temporary file in the cache folder and rename it with
`os.replace`, which is atomic on POSIX and Windows, so a reader sees either no
entry or a complete one, even while other processes write the same entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Bump when the feature computation changes in a way the settings do not capture.
CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """Return the default feature cache folder.

    Returns
    -------
    pathlib.Path
        `$XDG_CACHE_HOME/spiketune/audio`, or `~/.cache/spiketune/audio` when
        `XDG_CACHE_HOME` is unset.
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spiketune" / "audio"


def feature_cache_key(path: Path, settings: dict[str, object]) -> str:
    """Compute the cache key of one clip under given front-end settings.

    NOTE: the key uses size and mtime, not a hash of the content, so a rewrite
    that keeps both (same size and a restored mtime) reuses stale features.

    Parameters
    ----------
    path : pathlib.Path
        Audio file.
    settings : dict
        JSON-serialisable front-end settings.

    Returns
    -------
    str
        Hex SHA-256 digest.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    identity = {
        "version": CACHE_FORMAT_VERSION,
        "path": str(resolved),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "settings": settings,
    }
    encoded = json.dumps(identity, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


class FeatureCache:
    """Folder of cached feature arrays with hit and miss counters.

    Parameters
    ----------
    directory : str or pathlib.Path
        Cache folder. It is created on the first write.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def entry_path(self, key: str) -> Path:
        """Return the file that stores the entry for `key`."""
        return self.directory / f"{key}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """Read the arrays stored under `key`.

        An unreadable entry, for example one truncated by a full disk, counts
        as a miss and is logged, so the caller recomputes and overwrites it.

        Parameters
        ----------
        key : str
            Cache key from `feature_cache_key`.

        Returns
        -------
        dict or None
            Arrays by name, or None on a miss.
        """
        path = self.entry_path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return arrays

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store arrays under `key` with an atomic rename.

        Parameters
        ----------
        key : str
            Cache key from `feature_cache_key`.
        arrays : dict
            Arrays by name.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            dir=self.directory, prefix=f".{key[:16]}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **arrays)
            os.replace(temp_name, self.entry_path(key))
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
