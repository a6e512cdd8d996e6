"""Mutation testing: one small fault in flower_app/ at a time; the tests must notice.

Each mutant is one edit of a module's syntax tree: a comparison flipped at
its boundary or negated, an arithmetic or boolean operator swapped, a
`not` dropped, an integer constant off by one, a boolean constant
inverted. It is written into a scratch copy of the checkout, and the fast
tests that exercise the module (`TARGETS`) run against it with -x; if they
pass, the mutant survived. Docstrings, other strings and annotations are
not mutated.

    python -m tests.mutation [--jobs 2] [--only PATH ...] [--again FILE] [--list]

`--again mutation-results.json` reruns only the mutants that survived there.

Prints each survivor with its place and edit, then the score; writes them
all to mutation-results.json. About 45 minutes on 2 cores.
"""

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT = ["tests/test_rules.py", "tests/test_codec.py", "tests/test_series.py"]
CLIENT = ["tests/test_mod.py", "tests/test_egress.py"]
VALUES = "tests/test_values.py"
SERVER = [
    "tests/test_strategy.py",
    "tests/test_aggregation.py",
    "tests/test_hostile_input.py",
    "tests/test_fuzz.py",
]
REPORTING = [
    "tests/test_tables.py",
    "tests/test_plots.py",
    "tests/test_plot_data.py",
    "tests/test_report_page.py",
    "tests/test_every_field_shown.py",
    "tests/test_report_readability.py",
]
TRACKERS = [
    "tests/test_trackers.py",
    "tests/test_run_folder.py",
    "tests/test_every_field_shown.py",
]
OUTCOMES = [*REPORTING, *TRACKERS, "tests/test_outcomes.py", "tests/test_cli.py"]
KINDS = "tests/test_rule_kinds.py::"
EVERY_KIND = [
    f"{KINDS}test_python_gives_protovalidates_verdict_on_every_kind",
    f"{KINDS}test_the_plan_runs_only_where_every_rule_is_its_own",
    f"{KINDS}test_every_rule_kind_has_cases",
    f"{KINDS}test_the_catalogue_walks_validate_proto",
]
"""The rule-kind tests that need no other language's toolchain."""
OWN_RULES = [
    "tests/test_own_rules.py::test_a_broken_rule_is_refused_on_the_node_before_sending",
    "tests/test_own_rules.py::test_a_broken_rule_is_refused_by_the_server_too",
    "tests/test_own_rules.py::test_good_reports_are_accepted_logged_and_read_back",
]
GENERATE = "tests/test_metadata_run.py"
TARGETS = {
    "flower_app/protocol/plan.py": [*UNIT, *EVERY_KIND, VALUES],
    "flower_app/protocol/protovalidation.py": [*UNIT, *EVERY_KIND, *OWN_RULES],
    "flower_app/protocol/validation.py": [*UNIT, *EVERY_KIND, *OWN_RULES, GENERATE],
    "flower_app/protocol/field_rules.py": [
        *UNIT,
        *EVERY_KIND,
        "tests/test_json_schema.py",
        "tests/test_generated.py",
    ],
    "flower_app/protocol/rule_kinds.py": EVERY_KIND,
    "flower_app/codegen/json_schema.py": [
        "tests/test_json_schema.py",
        "tests/test_generated.py",
    ],
    "flower_app/codegen/integer_pattern.py": ["tests/test_json_schema.py"],
    "flower_app/codegen/reference.py": ["tests/test_generated.py"],
    "flower_app/codegen/__main__.py": [GENERATE, "tests/test_generated.py"],
    "flower_app/codegen/generate.py": [GENERATE],
    "flower_app/protocol/rules.py": [
        *UNIT,
        *CLIENT,
        VALUES,
        "tests/test_hostile_input.py",
        "tests/test_protovalidate_oracle.py",
    ],
    "flower_app/protocol/codec.py": [*UNIT, *CLIENT, "tests/test_hostile_input.py"],
    "flower_app/protocol/series.py": UNIT,
    "flower_app/protocol/schema.py": [
        *UNIT,
        *CLIENT,
        "tests/test_protovalidate_oracle.py",
        "tests/test_metadata_run.py",
    ],
    "flower_app/codegen/buf_validate.py": ["tests/test_buf_validate.py"],
    "flower_app/codegen/image.py": [
        "tests/test_generated.py",
        "tests/test_breaking.py",
    ],
    "flower_app/protocol/text.py": [
        "tests/test_codec.py",
        "tests/test_text.py",
        "tests/test_hostile_input.py",
    ],
    "flower_app/protocol/canonical_json.py": [
        "tests/test_canonical_json.py",
        "tests/test_golden_vectors.py",
        "tests/test_cli.py",
    ],
    "flower_app/protocol/display.py": [
        "tests/test_display.py",
        *SERVER,
        *CLIENT,
        VALUES,
        "tests/test_cli.py",
    ],
    "flower_app/protocol/metadata_log.py": [
        "tests/test_metadata_log.py",
        *SERVER,
        "tests/test_cli.py",
    ],
    "flower_app/server/admission.py": [*SERVER, VALUES],
    "flower_app/server/aggregation.py": SERVER,
    "flower_app/server/strategy.py": [*SERVER, *CLIENT, VALUES],
    "flower_app/server/round_log.py": SERVER,
    "flower_app/outcomes/model.py": [*OUTCOMES, *SERVER],
    "flower_app/outcomes/replay.py": OUTCOMES,
    "flower_app/outcomes/statistics.py": [*OUTCOMES, *SERVER, "tests/test_display.py"],
    "flower_app/outcomes/stragglers.py": [*OUTCOMES, *SERVER],
    "flower_app/outcomes/summary.py": [
        "tests/test_outcomes.py",
        "tests/test_metadata_run.py",
    ],
    "flower_app/protocol/records.py": [*OUTCOMES, "tests/test_metadata_log.py"],
    "flower_app/client/mod.py": CLIENT,
    "flower_app/client/egress.py": [*CLIENT, VALUES],
    "flower_app/app/settings.py": ["tests/test_settings.py"],
    "flower_app/app/client_app.py": ["tests/test_client_app.py"],
    "flower_app/app/task.py": ["tests/test_task.py", "tests/test_client_app.py"],
    "flower_app/reporting/clients.py": ["tests/test_clients.py", *REPORTING],
    "flower_app/reporting/tables.py": REPORTING,
    "flower_app/reporting/plots.py": REPORTING,
    "flower_app/reporting/html.py": REPORTING,
    "flower_app/reporting/trackers/convert.py": TRACKERS,
    "flower_app/reporting/trackers/live.py": [*TRACKERS, "tests/test_metadata_run.py"],
    "flower_app/reporting/trackers/replay.py": TRACKERS,
    "flower_app/reporting/trackers/mlflow_backend.py": TRACKERS,
    "flower_app/reporting/trackers/tensorboard_backend.py": TRACKERS,
    "flower_app/reporting/runs.py": ["tests/test_runs_list.py"],
    "flower_app/reporting/report.py": [*REPORTING, "tests/test_cli.py"],
    "flower_app/cli.py": ["tests/test_cli.py", "tests/test_run_folder.py"],
}
"""Each module mutated, with the fast tests that exercise it."""

_COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINARY = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
_BOOLEAN = {ast.And: ast.Or, ast.Or: ast.And}


@dataclass(frozen=True)
class Mutant:
    """One edit: where, what, and what the tests said."""

    path: str
    index: int
    line: int
    edit: str
    killed: bool | None = None


class _Mutator(ast.NodeTransformer):
    """Find mutation points in order; apply the one numbered `target`."""

    def __init__(self, target: int = -1) -> None:
        self.target, self.count = target, 0
        self.found: list[tuple[int, str]] = []

    def _point(self, node: ast.AST, edit: str) -> bool:
        """Count a point; say whether it is the one to apply."""
        self.found.append((getattr(node, "lineno", 0), edit))
        self.count += 1
        return self.count - 1 == self.target

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node  # a docstring
        return self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.body = [self.visit(statement) for statement in node.body]
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [
            None if d is None else self.visit(d) for d in node.args.kw_defaults
        ]
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # message text

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for position, op in enumerate(node.ops):
            swap = _COMPARE.get(type(op))
            if swap and self._point(node, f"{type(op).__name__} -> {swap.__name__}"):
                node.ops[position] = swap()
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swap = _BINARY.get(type(node.op))
        name = type(node.op).__name__
        if swap and self._point(node, f"{name} -> {swap.__name__}"):
            node.op = swap()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        swap = _BOOLEAN[type(node.op)]
        if self._point(node, f"{type(node.op).__name__} -> {swap.__name__}"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._point(node, "drop not"):
            return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._point(node, f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int) and self._point(node, f"{value} -> {value + 1}"):
            return ast.copy_location(ast.Constant(value + 1), node)
        return node


def mutants(path: str) -> list[Mutant]:
    """List the mutation points of one module."""
    finder = _Mutator()
    finder.visit(ast.parse((ROOT / path).read_text()))
    return [Mutant(path, i, line, edit) for i, (line, edit) in enumerate(finder.found)]


def mutated_source(mutant: Mutant, source: str) -> str:
    """Return the module's `source` with the mutant's edit applied."""
    tree = ast.parse(source)
    tree = _Mutator(mutant.index).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def run(mutant: Mutant, copy: Path) -> Mutant:
    """Put the mutant into `copy`, run its tests there, put the original back.

    The mutant is made from the copy's source, so the checkout can be
    edited while a run goes on.
    """
    target = copy / mutant.path
    original = target.read_text()
    target.write_text(mutated_source(mutant, original))
    env = {**os.environ, "PYTHONPATH": f"{copy}{os.pathsep}{copy / 'generated/python'}"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    try:
        result = subprocess.run(
            [*command, "-m", "not e2e", *TARGETS[mutant.path]],
            cwd=copy,
            env=env,
            capture_output=True,
            timeout=600,
        )
        killed = result.returncode != 0
    except subprocess.TimeoutExpired:
        killed = True
    finally:
        target.write_text(original)
    return Mutant(mutant.path, mutant.index, mutant.line, mutant.edit, killed)


def scratch_copies(jobs: int, folder: Path) -> Iterator[Path]:
    """Copy the checkout `jobs` times, without its caches and toolchains."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "__pycache__", "build", "*.egg-info"
    )
    for job in range(jobs):
        yield Path(shutil.copytree(ROOT, folder / f"copy-{job}", ignore=ignore))


def main(argv: list[str] | None = None) -> int:
    """Run every mutant; print survivors and the score."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=list(TARGETS))
    parser.add_argument("--list", action="store_true", help="list, do not run")
    parser.add_argument("--output", type=Path, default=ROOT / "mutation-results.json")
    parser.add_argument("--again", type=Path, help="rerun survivors of a results file")
    args = parser.parse_args(argv)
    todo = [m for path in args.only for m in mutants(path)]
    if args.again:
        earlier = json.loads(args.again.read_text())
        survived = {(m["path"], m["index"]) for m in earlier if not m["killed"]}
        todo = [m for m in todo if (m.path, m.index) in survived]
    if args.list:
        for m in todo:
            print(f"{m.path}:{m.line}: {m.edit}")
        print(f"{len(todo)} mutants")
        return 0
    with tempfile.TemporaryDirectory() as name:
        copies = list(scratch_copies(args.jobs, Path(name)))
        with ThreadPoolExecutor(args.jobs) as pool:
            batches = [todo[job :: args.jobs] for job in range(args.jobs)]
            done = [
                m
                for batch in pool.map(
                    lambda pair: [run(m, pair[1]) for m in pair[0]],
                    zip(batches, copies, strict=True),
                )
                for m in batch
            ]
    survivors = [m for m in done if not m.killed]
    for m in survivors:
        print(f"survived: {m.path}:{m.line}: {m.edit}")
    killed = len(done) - len(survivors)
    print(f"{killed} of {len(done)} mutants killed ({killed / len(done):.1%})")
    args.output.write_text(json.dumps([asdict(m) for m in done], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
