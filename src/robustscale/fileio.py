"""Atomic file writes: a temp file beside the target, then rename, so nothing is half-written.

Files get the permissions an ordinary `open()` would give (0666 less the user's umask), not
`mkstemp`'s private 0600, so a report or a run folder can be shared and served.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once.
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto `path` only if the block succeeds.

    With `make_parents=False` a missing parent folder is an error (the user named a wrong path).
    """
    from robustscale.errors import RobustscaleError

    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise RobustscaleError(f"{path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str, *, make_parents: bool = True) -> None:
    with atomic_path(path, make_parents=make_parents) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any, *, make_parents: bool = True) -> None:
    """JSON with non-finite floats written as null: NaN/Infinity are not JSON and mislead users."""
    write_text(path, dumps(obj, indent=2) + "\n", make_parents=make_parents)


def dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` that writes NaN/Infinity as null and understands numpy values and paths."""
    return json.dumps(finite(obj), allow_nan=False, default=_jsonable, **kwargs)


def finite(obj: Any) -> Any:
    """A copy of a JSON-like object with every non-finite float replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return finite(obj.tolist())
    return obj


def write_table(path: str | os.PathLike, df: Any, *, make_parents: bool = True) -> Path:
    """Write a pandas DataFrame as .csv or .parquet (by the suffix), atomically."""
    from robustscale.errors import RobustscaleError

    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise RobustscaleError(f"{path}: expected a .csv or .parquet file name")
    with atomic_path(path, make_parents=make_parents) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def write_npz(path: str | os.PathLike, *, compressed: bool = False, **arrays: Any) -> Path:
    """Write numpy arrays to one .npz file, atomically."""
    import numpy as np

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return path


def _jsonable(x: Any) -> Any:
    """Paths in JSON output (numpy values are already plain lists and numbers: `finite` ran first)."""
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
