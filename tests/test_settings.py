"""Run config: typed reads, and pyproject.toml's defaults when none is given."""

import pytest
from flwr.app import Context, RecordDict

from flower_app.app.settings import Settings


def _context(run_config: dict[str, int | float | str]) -> Context:
    return Context(
        run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config=run_config
    )


def _default_run_config() -> dict[str, int | float | str]:
    defaults = Settings.from_context(_context({}))
    return {field.replace("_", "-"): value for field, value in vars(defaults).items()}


def test_empty_run_config_means_pyproject_defaults() -> None:
    settings = Settings.from_context(_context({}))
    assert settings.num_server_rounds == 3
    assert settings.dataset == "digits"
    assert isinstance(settings.learning_rate, float)


def test_given_run_config_wins_and_integers_count_as_floats() -> None:
    defaults = Settings.from_context(_context({}))
    config = {field.replace("_", "-"): value for field, value in vars(defaults).items()}
    config |= {"learning-rate": 1, "num-server-rounds": 7}
    settings = Settings.from_context(_context(config))
    assert settings.learning_rate == 1.0
    assert isinstance(settings.learning_rate, float)
    assert settings.num_server_rounds == 7


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num-server-rounds", 2.5, "'num-server-rounds' must be int, got 2.5"),
        ("local-epochs", True, "'local-epochs' must be int, got True"),
        ("dataset", 3, "'dataset' must be str, got 3"),
    ],
)
def test_wrong_types_are_refused(key: str, value: object, message: str) -> None:
    config = _default_run_config()
    config[key] = value  # type: ignore[assignment]
    with pytest.raises(TypeError, match=message):
        Settings.from_run_config(config)


def test_missing_key_names_the_key() -> None:
    with pytest.raises(KeyError, match="run config misses 'num-server-rounds'"):
        Settings.from_run_config({"dataset": "digits"})
