"""Typed view of the app's run config in `[tool.flwr.app.config]` of pyproject.toml.

The library reads its own keys (`output-dir`, `json-log`, `report`,
`trackers`, `mlflow-tracking-uri`) in `MetadataRun.from_context`; these are
the app's.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from flwr.app import Context, UserConfig
from flwr.common.config import get_fused_config_from_dir

from flower_app import Limits, type_url_of
from flower_meta.v1.metadata_pb2 import TrainInstructions, TrainProcessMetadata

APP_DIR = Path(__file__).resolve().parents[2]
"""The Flower app (or unpacked FAB) holding pyproject.toml."""


@dataclass(frozen=True)
class Settings:
    """Every run-config key the app reads, with its Python type."""

    num_server_rounds: int
    fraction_train: float
    fraction_evaluate: float
    local_epochs: int
    learning_rate: float
    server_learning_rate: float
    server_tau: float
    batch_size: int
    partitioning: str
    dirichlet_alpha: float
    convergence_tolerance: float
    dataset: str
    seed: int
    min_nodes: int
    round_timeout: float
    max_payload_bytes: int
    max_epochs: int
    aggregation: str
    downweight_factor: float
    straggler_factor: float
    client_log_cap: int

    @classmethod
    def from_context(cls, context: Context) -> "Settings":
        """Read the run config; an empty one means pyproject.toml's defaults.

        `flwr run` always fills the run config; the deprecated in-process
        `flwr.simulation.run_simulation` API leaves it empty.
        """
        return cls.from_run_config(context.run_config or pyproject_run_config())

    @property
    def run_config(self) -> dict[str, bool | int | float | str]:
        """The run config in effect, under its kebab-case keys."""
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}

    @property
    def train_instructions(self) -> TrainInstructions:
        """What the server asks of every ClientApp's training."""
        return TrainInstructions(
            local_epochs=self.local_epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            convergence_tolerance=self.convergence_tolerance,
            metadata_type_url=type_url_of(TrainProcessMetadata),
        )

    @property
    def fedadagrad_options(self) -> dict[str, Any]:
        """FedAdagrad's keyword arguments: sampling and server optimizer."""
        return {
            "fraction_train": self.fraction_train,
            "fraction_evaluate": self.fraction_evaluate,
            "min_train_nodes": self.min_nodes,
            "min_evaluate_nodes": self.min_nodes,
            "min_available_nodes": self.min_nodes,
            "eta": self.server_learning_rate,
            "eta_l": self.learning_rate,
            "tau": self.server_tau,
        }

    @property
    def limits(self) -> Limits:
        """What the server accepts: size and epoch limits, all local epochs."""
        return Limits(self.max_payload_bytes, self.max_epochs, self.local_epochs)

    @classmethod
    def from_run_config(cls, run_config: UserConfig) -> "Settings":
        """Read each field from its kebab-case key, checking its type."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = field.name.replace("_", "-")
            values[field.name] = value = _read(run_config, key, field.type)
            if key in RULES and not RULES[key][0](value):
                raise RunConfigError(
                    f"run config {key!r} must be {RULES[key][1]}, got {value!r}"
                )
        return cls(**values)


def pyproject_run_config() -> UserConfig:
    """Read the run config's defaults from the app's pyproject.toml."""
    return get_fused_config_from_dir(APP_DIR, {})


class RunConfigError(ValueError):
    """A run-config key that is missing, of the wrong type or out of range."""


def _finite(low: float, high: float = math.inf) -> Callable[[Any], bool]:
    return lambda v: low <= v < high and math.isfinite(v)


def _above(low: float) -> Callable[[Any], bool]:
    return lambda v: low < v and math.isfinite(v)


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "num-server-rounds": (_finite(1), ">= 1"),
    "fraction-train": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "fraction-evaluate": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "local-epochs": (_finite(1), ">= 1"),
    "learning-rate": (_above(0), "> 0"),
    "server-learning-rate": (_above(0), "> 0"),
    "server-tau": (_finite(0), ">= 0"),
    "batch-size": (_finite(1), ">= 1"),
    "partitioning": (lambda v: v in ("iid", "dirichlet"), "'iid' or 'dirichlet'"),
    "dirichlet-alpha": (_above(0), "> 0"),
    "convergence-tolerance": (_finite(0), ">= 0"),
    "dataset": (lambda v: bool(v.strip()), "a dataset name"),
    "seed": (_finite(0), ">= 0"),
    "min-nodes": (_finite(1), ">= 1"),
    "round-timeout": (_above(0), "> 0 (seconds)"),
    "max-payload-bytes": (_finite(1), ">= 1 (bytes)"),
    "max-epochs": (_finite(1), ">= 1"),
    "downweight-factor": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "straggler-factor": (_above(0), "> 0"),
    "client-log-cap": (_finite(0), ">= 0"),
}
"""Each key's allowed values, checked before anything runs; the server checks
`aggregation` against the library's own list."""


def _read(run_config: UserConfig, key: str, kind: object) -> bool | int | float | str:
    """Return `run_config[key]` as `kind`; an integer is a valid float."""
    if key not in run_config:
        raise RunConfigError(f"run config misses {key!r}: see [tool.flwr.app.config]")
    value = run_config[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) != (kind is bool) or not (
        isinstance(kind, type) and isinstance(value, kind)
    ):
        name = getattr(kind, "__name__", kind)
        raise RunConfigError(f"run config {key!r} must be {name}, got {value!r}")
    return value
