"""CLI command groups, one module per command or group, each named after it and exposing
`register(app)`.

Command modules import torch (and other heavy libraries) inside the command functions only,
so that `robustscale --help` is fast and the laws commands work without torch installed.
Output goes through `robustscale.commands.output` (`--json` + `emit`).
"""
