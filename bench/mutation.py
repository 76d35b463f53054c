"""Mutation testing of the core modules (`make mutation`): mutmut on each module against its own tests, a score each.

For every module of `[tool.medtrinity.mutation.modules]` in pyproject.toml this script makes a fresh folder
mutants/<module>/ holding links to src/ and tests/ and a pyproject.toml whose `[tool.mutmut]` is the project's
plus `only_mutate` (that module) and `pytest_add_cli_args_test_selection` (its own test files), runs `mutmut run`
there, and reads the verdicts back. A surviving mutant listed in tests/mutation/equivalent.yaml — by name, with
the mutated line it must still have, and a reason — counts as killed: it cannot change what the code does.

    python bench/mutation.py                  every module
    python bench/mutation.py geometry store   the modules whose path contains one of the words

Score = (killed + timed out + listed equivalent) / mutants; a mutant no own test runs counts as surviving.
Exit status 1 when a module is under its `minimum`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "mutants"
# mutmut's exit codes (mutmut/stats.py): the ones that mean a test noticed the mutant.
KILLED_CODES = {1, 3, 24, -24, 36, 37, 152, 255, -11, -9}


@dataclass
class Outcome:
    module: str
    minimum: float
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (mutant name, its diff)

    @property
    def score(self) -> float:
        return 100.0 * (self.killed + self.equivalent) / self.total if self.total else 0.0


def settings() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _toml_value(value) -> str:
    # The values here are strings, numbers, booleans and lists of them, which JSON writes as valid TOML.
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def work_pyproject(project: dict, module: str, tests: list[str]) -> str:
    """The project's pytest and mutmut settings, narrowed to one module and its tests."""
    pytest_options = project["tool"]["pytest"]["ini_options"]
    mutmut = {**project["tool"]["mutmut"], "only_mutate": [module], "pytest_add_cli_args_test_selection": tests}
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in pytest_options.items()]
    lines += ["", "[tool.mutmut]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in mutmut.items()]
    return "\n".join(lines) + "\n"


def own_tests(patterns: list[str]) -> list[str]:
    found = sorted({path for pattern in patterns for path in glob.glob(pattern, root_dir=ROOT)})
    if not found:
        raise SystemExit(f"no test file matches {patterns}")
    return found


def prepare(folder: Path, project: dict, module: str, tests: list[str]) -> None:
    shutil.rmtree(folder, ignore_errors=True)  # results of an earlier run would hide a change of the tests
    folder.mkdir(parents=True)
    for name in ("src", "tests"):
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    (folder / "pyproject.toml").write_text(work_pyproject(project, module, tests))


def mutmut(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    return subprocess.run(command, cwd=folder, env=env, text=True, capture_output=True, check=False)


def last_progress(output: str) -> str:
    """mutmut's final counts line out of its spinner output (its progress lines are not separated by newlines)."""
    return output.replace("\r", "\n").split("⠋")[-1].strip().splitlines()[-1] if output.strip() else ""


def mutated_lines(diff: str) -> str:
    """The mutant's own lines of a `mutmut show` diff, stripped and joined: what equivalent.yaml pins."""
    return " / ".join(
        line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")
    )


def measure(
    module: str, spec: dict, project: dict, equivalents: dict, max_children: int | None, rerun: bool = True
) -> Outcome:
    tests = own_tests(spec["tests"])
    folder = WORK / Path(module).with_suffix("").relative_to("src/medtrinity").as_posix().replace("/", ".")
    meta = folder / "mutants" / (module + ".meta")
    if rerun or not meta.exists():
        prepare(folder, project, module, tests)
        print(f"== {module} against {', '.join(tests)}", flush=True)
        run = mutmut(folder, "run", *(["--max-children", str(max_children)] if max_children else []))
        if not meta.exists() or run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
            raise SystemExit(f"mutmut failed on {module} (exit status {run.returncode})")
        print("   ", last_progress(run.stdout).splitlines()[-1][-80:], flush=True)
    verdicts = json.loads(meta.read_text())["exit_code_by_key"]
    outcome = Outcome(module, float(spec.get("minimum", 0)), total=len(verdicts))
    for name, code in sorted(verdicts.items()):
        if code in KILLED_CODES:
            outcome.killed += 1
            continue
        diff = mutmut(folder, "show", name).stdout
        listed = equivalents.get(name)
        if listed and listed.get("mutated") == mutated_lines(diff):
            outcome.equivalent += 1
        else:
            outcome.survivors.append((name, diff))
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="measure only the modules whose path contains one of these words")
    parser.add_argument(
        "--report",
        action="store_true",
        help="report the results of the last run where there are some, without running mutmut again",
    )
    parser.add_argument("--max-children", type=int, help="mutants tested at once (default: mutmut's, the CPU count)")
    args = parser.parse_args(argv)
    project = settings()
    config = project["tool"]["medtrinity"]["mutation"]
    equivalents = yaml.safe_load((ROOT / config["equivalents"]).read_text()) or {}
    modules = {m: s for m, s in config["modules"].items() if not args.only or any(w in m for w in args.only)}
    if not modules:
        raise SystemExit(f"no module matches {args.only}; modules: {', '.join(config['modules'])}")
    outcomes = [
        measure(module, spec, project, equivalents, args.max_children, rerun=not args.report)
        for module, spec in modules.items()
    ]

    for outcome in outcomes:
        for name, diff in outcome.survivors:
            print(f"\nsurvived: {name}\n{diff}")
    print(f"\n{'module':<40} {'mutants':>7} {'killed':>6} {'equiv.':>6} {'survived':>8} {'score':>7} {'minimum':>7}")
    for o in outcomes:
        print(
            f"{o.module:<40} {o.total:>7} {o.killed:>6} {o.equivalent:>6} {len(o.survivors):>8} "
            f"{o.score:>6.1f}% {o.minimum:>6.0f}%"
        )
    below = [o.module for o in outcomes if o.score < o.minimum]
    if below:
        print(f"under the minimum: {', '.join(below)}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
