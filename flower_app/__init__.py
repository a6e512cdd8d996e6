"""Typed Flower metadata from a protobuf schema, in place of the tutorial's pickle.

The library: `protocol` (wire format, rules, metadata log), `client` (the
ClientApp mod), `server` (the strategy wrapper) and `reporting` (report, CLI).
`app` is the example Flower app built on it.

The generated types are the top-level package `flower_meta` (protoc's own
import paths). An installed wheel ships it; a checkout or an unpacked FAB has
it in `generated/python`, which is put on the import path here.
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("flower_meta") is None:
    sys.path.append(
        str(Path(__file__).resolve().parent.parent / "generated" / "python")
    )
