"""CLI command groups, one module per area. Each exposes `register(app)`.

Command modules import torch (and other heavy libraries) inside the command functions only,
so that `robustscale --help` is fast and the laws commands work without torch installed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from robustscale.fileio import _jsonable


def print_json(obj: Any) -> None:
    """The one JSON object a `--json` command prints on stdout (and nothing else)."""
    sys.stdout.write(json.dumps(obj, default=_jsonable) + "\n")
    sys.stdout.flush()
