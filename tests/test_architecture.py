"""Dependencies point one way: the example app uses the library, never the reverse.

The library's parts and what each may import of this project:
protocol (the wire contract) imports nothing of ours but the generated types;
outcomes (the one model of a run's outcomes) imports protocol; client imports
protocol; server and reporting import outcomes and protocol; codegen imports
protocol; `run` (which owns a run's outputs) imports server and reporting;
`cli` (`flower-meta`) sits on top, over reporting and codegen; extras
(which names the extra a missing package comes with) imports nothing. Only
`app` may import them all, and the ClientApp imports no server or reporting
code, not even indirectly.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import flower_app
from flower_meta.v1.metadata_pb2 import EvaluateProcessMetadata, TrainProcessMetadata
from tests.helpers import ROOT

PACKAGE = ROOT / "flower_app"
HOME: dict[str, str] = flower_app._HOME
ALLOWED = {
    "protocol": {"protocol"},
    "outcomes": {"outcomes", "protocol"},
    "client": {"client", "protocol"},
    "server": {"server", "outcomes", "protocol"},
    "reporting": {"reporting", "outcomes", "protocol"},
    "extras": set(),
    "run": {"server", "reporting", "outcomes", "protocol", "extras"},
    "codegen": {"codegen", "protocol"},
    "cli": {"reporting", "codegen", "outcomes", "protocol", "extras"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The flower_app modules a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "flower_app":
            found |= {HOME[alias.name] for alias in node.names if alias.name in HOME}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules and name != "flower_app"}


GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _part(m) in ALLOWED))
def test_library_modules_import_only_what_their_part_may(module: str) -> None:
    parts = {_part(name) for name in GRAPH[module]}
    assert parts <= ALLOWED[_part(module)], f"{module} imports {GRAPH[module]}"


def test_nothing_outside_the_app_imports_the_app() -> None:
    offenders = {
        module
        for module, imports in GRAPH.items()
        if _part(module) != "app" and any(_part(name) == "app" for name in imports)
    }
    assert not offenders


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in GRAPH.get(todo.pop(), set()) - seen:
            seen.add(name)
            todo.append(name)
    return seen


def test_the_client_app_reaches_no_server_or_reporting_code() -> None:
    reached = _reachable("flower_app.app.client_app")
    assert "flower_app.client.mod" in reached  # the graph is read right
    assert not {m for m in reached if _part(m) in {"server", "reporting"}}
    assert "flower_app.app.server_app" not in reached


GENERIC = [
    *(PACKAGE / "protocol").glob("*.py"),
    *(PACKAGE / "reporting").glob("*.py"),
    *(PACKAGE / "outcomes").glob("*.py"),
    PACKAGE / "server" / "round_log.py",
    *(ROOT / "examples" / "typescript" / "src").glob("*.ts"),
    *(ROOT / "examples" / "cpp").glob("rules.*"),
]
"""The validators in three languages, the display and the report code."""


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: str(p.relative_to(ROOT)))
def test_generic_code_names_no_field_of_the_metadata(path: Path) -> None:
    names = {
        field.name
        for message in (TrainProcessMetadata, EvaluateProcessMetadata)
        for field in message.DESCRIPTOR.fields
    }
    text = path.read_text()
    assert not {name for name in names if re.search(rf"\b{name}\b", text)}


def test_loading_the_client_app_loads_no_server_or_reporting_code() -> None:
    probe = (
        "import sys, flower_app.app.client_app, flower_app; "
        "flower_app.metadata_mod; "
        "print(sorted(m for m in sys.modules if m.startswith('flower_app.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "'flower_app.client.mod'" in loaded.stdout
    for part in ("server", "reporting", "run"):
        assert f"'flower_app.{part}" not in loaded.stdout, loaded.stdout


PUBLIC = {
    # ClientApp
    "MetadataMod",
    "metadata_mod",
    "report",
    "reply_metadata",
    "read_instructions",
    # ServerApp
    "MetadataRun",
    "MetadataStrategy",
    "MetadataOptions",
    "Limits",
    "Policy",
    "instructions_config",
    "type_url_of",
    # what a run came to, and what goes wrong
    "Outcomes",
    "RoundOutcomes",
    "MetadataDecodeError",
    "Reason",
    "CorruptLogError",
    "LogBusyError",
    # reading back
    "MetadataLog",
    "read_log",
}
"""The public API, by what users do with it: it grows only on purpose."""
SECTION = re.compile(
    r"^ *(Parameters|Returns|Attributes|Raises|Yields)\n *-{3,}$", re.M
)


def test_the_public_names_are_all_documented_and_load() -> None:
    import flower_app

    assert set(flower_app.__all__) == PUBLIC
    for name in flower_app.__all__:
        value = getattr(flower_app, name)
        doc = getattr(value, "__doc__", None) or ""
        assert len(doc.split()) >= 8, f"{name} has no docstring"
        if name not in {"metadata_mod", "Reason", "CorruptLogError", "LogBusyError"}:
            assert SECTION.search(doc), f"{name}'s docstring has no numpydoc section"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = flower_app.nothing


def test_the_example_app_uses_only_the_public_api() -> None:
    """What the example does is what a user may copy."""
    for path in (PACKAGE / "app").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = node.module
                if module == "flower_app":
                    assert {a.name for a in node.names} <= PUBLIC, path
                else:
                    inside = module.startswith(("flower_app.app", "flower_meta"))
                    assert inside or not module.startswith("flower_app"), (
                        f"{path.name} imports {module}"
                    )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("flower_app.") or (
                        alias.name.startswith("flower_app.app")
                    ), f"{path.name} imports {alias.name}"


HOMONYMS = {"DIGITS", "MODULE", "PACKAGE", "FILE"}
"""Constants of one name that mean different things in different modules
(a label's digits and the digits dataset; buf's module and a wheel's
module file; ...): each says what it is in its docstring."""


def _constants(path: Path) -> set[str]:
    """The module-level constants (UPPER_CASE names, private ones too) a file sets."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        found |= {
            t.id
            for t in targets
            if isinstance(t, ast.Name) and t.id.strip("_").isupper() and len(t.id) > 1
        }
    return found


def test_each_constant_and_default_lives_in_one_place() -> None:
    where: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in _constants(path):
            where.setdefault(name, []).append(str(path.relative_to(ROOT)))
    twice = {
        name: paths
        for name, paths in where.items()
        if len(paths) > 1 and name not in HOMONYMS
    }
    assert not twice
    # the defaults the review found defined two or three times stay single
    for name in ("STRAGGLER_FACTOR", "TRACKED_CLIENTS", "DRAWN_CLIENTS", "BATCH"):
        assert len(where[name]) == 1, name


FLOWER_SIGNATURES = {"start"}
"""Overrides of Flower's methods: they keep Flower's own defaults
(`Strategy.start(num_rounds=3, timeout=3600)`)."""


def test_no_default_is_written_as_a_bare_number() -> None:
    """A parameter's numeric default names its constant (`STRAGGLER_FACTOR`),
    so changing a default is one edit; counters and ids starting at 0 aside."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = node.args.posonlyargs + node.args.args
            pairs = list(
                zip(
                    arguments[len(arguments) - len(node.args.defaults) :],
                    node.args.defaults,
                    strict=True,
                )
            ) + list(zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True))
            found += [
                f"{path.relative_to(ROOT)}: {node.name}"
                f"({argument.arg}={default.value!r})"
                for argument, default in pairs
                if isinstance(default, ast.Constant)
                and type(default.value) in (int, float)
                and default.value != 0
                and node.name not in FLOWER_SIGNATURES
            ]
    assert not found


def test_the_old_duplicates_are_gone() -> None:
    """One shape of a round's outcomes, one meaning of "run folder" (where a
    run writes: `protocol/files.py`; a folder named by the user is found by
    `find_run_folder`)."""
    assert not (PACKAGE / "server" / "round_report.py").exists()
    assert not (PACKAGE / "reporting" / "run_records.py").exists()
    definitions = [
        path
        for path in PACKAGE.rglob("*.py")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name == "run_folder"
    ]
    assert definitions == [PACKAGE / "protocol" / "files.py"]
