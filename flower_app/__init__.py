"""Typed Flower metadata from a protobuf schema, in place of the tutorial's pickle.

The public API is what this package exports (`__all__`); every other module
is internal and may change between releases:

- ClientApp: `metadata_mod` (or `MetadataMod` for other types) times each
  call and attaches the metadata that `report(...)` (or the typed
  `reply_metadata(Type)`) fills.
- ServerApp: `MetadataRun.from_context(context)` owns a run's metadata log,
  run config, trackers and report; `run.wrap(strategy)` (a
  `MetadataStrategy`) puts any Flower strategy behind it; `MetadataOptions`
  names the metadata types once, with `Limits` and the aggregation `Policy`.
- Reading back: `read_log` and the `flower-meta` command.

The generated types are the top-level package `flower_meta` (protoc's own
import paths). An installed wheel ships it; a checkout or an unpacked FAB has
it in `generated/python`, which is then put on the import path here.
"""

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING


def _generated_code_importable() -> bool:
    try:
        return importlib.util.find_spec("flower_meta.v1.metadata_pb2") is not None
    except ModuleNotFoundError:
        return False


if not _generated_code_importable():
    sys.path.append(
        str(Path(__file__).resolve().parent.parent / "generated" / "python")
    )

# The names load on first use, so a ClientApp importing `flower_app.client`
# loads no server or reporting code.
_HOME = {
    "Limits": "flower_app.protocol.rules",
    "MetadataLog": "flower_app.protocol.metadata_log",
    "MetadataMod": "flower_app.client.mod",
    "MetadataOptions": "flower_app.server.strategy",
    "MetadataRun": "flower_app.run",
    "MetadataStrategy": "flower_app.server.strategy",
    "Policy": "flower_app.server.aggregation",
    "metadata_mod": "flower_app.client.mod",
    "read_log": "flower_app.protocol.metadata_log",
    "reply_metadata": "flower_app.client.mod",
    "report": "flower_app.client.mod",
}
__all__ = [
    "Limits",
    "MetadataLog",
    "MetadataMod",
    "MetadataOptions",
    "MetadataRun",
    "MetadataStrategy",
    "Policy",
    "metadata_mod",
    "read_log",
    "reply_metadata",
    "report",
]

if TYPE_CHECKING:
    from flower_app.client.mod import (
        MetadataMod,
        metadata_mod,
        reply_metadata,
        report,
    )
    from flower_app.protocol.metadata_log import MetadataLog, read_log
    from flower_app.protocol.rules import Limits
    from flower_app.run import MetadataRun
    from flower_app.server.aggregation import Policy
    from flower_app.server.strategy import MetadataOptions, MetadataStrategy


def __getattr__(name: str) -> object:
    """Load a public name from the module that defines it."""
    if name not in _HOME:
        raise AttributeError(f"module 'flower_app' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
