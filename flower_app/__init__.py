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
  The strategy's `outcomes` (`Outcomes`, a `RoundOutcomes` per stage and
  round) say what every reply came to.
- Typed instructions: `instructions_config(message)` on the server,
  `read_instructions(Type, msg)` in the ClientApp; `type_url_of(Type)`.
- Errors: `MetadataDecodeError` (with its `Reason`) for a payload refused,
  `CorruptLogError` for a damaged log, `LogBusyError` for a second writer.
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
    "CorruptLogError": "flower_app.protocol.metadata_log",
    "Limits": "flower_app.protocol.rules",
    "LogBusyError": "flower_app.protocol.metadata_log",
    "MetadataDecodeError": "flower_app.protocol.rules",
    "MetadataLog": "flower_app.protocol.metadata_log",
    "MetadataMod": "flower_app.client.mod",
    "MetadataOptions": "flower_app.server.strategy",
    "MetadataRun": "flower_app.run",
    "MetadataStrategy": "flower_app.server.strategy",
    "Outcomes": "flower_app.outcomes.model",
    "Policy": "flower_app.server.aggregation",
    "Reason": "flower_app.protocol.rules",
    "RoundOutcomes": "flower_app.outcomes.model",
    "instructions_config": "flower_app.protocol.codec",
    "metadata_mod": "flower_app.client.mod",
    "read_instructions": "flower_app.protocol.codec",
    "read_log": "flower_app.protocol.metadata_log",
    "reply_metadata": "flower_app.client.mod",
    "report": "flower_app.client.mod",
    "type_url_of": "flower_app.protocol.codec",
}
__all__ = [
    "CorruptLogError",
    "Limits",
    "LogBusyError",
    "MetadataDecodeError",
    "MetadataLog",
    "MetadataMod",
    "MetadataOptions",
    "MetadataRun",
    "MetadataStrategy",
    "Outcomes",
    "Policy",
    "Reason",
    "RoundOutcomes",
    "instructions_config",
    "metadata_mod",
    "read_instructions",
    "read_log",
    "reply_metadata",
    "report",
    "type_url_of",
]

if TYPE_CHECKING:
    from flower_app.client.mod import (
        MetadataMod,
        metadata_mod,
        reply_metadata,
        report,
    )
    from flower_app.outcomes.model import Outcomes, RoundOutcomes
    from flower_app.protocol.codec import (
        instructions_config,
        read_instructions,
        type_url_of,
    )
    from flower_app.protocol.metadata_log import (
        CorruptLogError,
        LogBusyError,
        MetadataLog,
        read_log,
    )
    from flower_app.protocol.rules import Limits, MetadataDecodeError, Reason
    from flower_app.run import MetadataRun
    from flower_app.server.aggregation import Policy
    from flower_app.server.strategy import MetadataOptions, MetadataStrategy


def __getattr__(name: str) -> object:
    """Load a public name from the module that defines it."""
    if name not in _HOME:
        raise AttributeError(f"module 'flower_app' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
