"""The readers' answers to bad input hold on the oldest and the newest msgspec the project admits.

msgspec words its errors differently from release to release (0.23 reports invalid UTF-8 as a
``DecodeError`` where earlier releases raised ``UnicodeDecodeError``), so the readers decide from the
input and the exception types, never from a message. This runs the readers' tests (bad input,
truncation, concatenated documents, the Jaeger source's error paths) in a throwaway venv per release:
the lower bound in pyproject.toml, and the newest release the range admits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[3]
UV = ROOT / ".tools" / "bin" / "uv"
HERE = Path(__file__).parent


def msgspec_requirement() -> Requirement:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(r for r in map(Requirement, dependencies) if r.name == "msgspec")


def lower_bound(requirement: Requirement) -> str:
    (bound,) = [s.version for s in requirement.specifier if s.operator == ">="]
    return bound


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [os.fspath(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("release", ["oldest", "newest"])
def test_readers_on_msgspec_release(tmp_path: Path, release: str) -> None:
    assert UV.exists(), f"{UV} is missing: run `make install` first"
    requirement = msgspec_requirement()
    oldest = lower_bound(requirement)
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    run(UV, "venv", "--quiet", "--python", sys.executable, venv, env=env)
    wanted = f"msgspec=={oldest}" if release == "oldest" else str(requirement)
    # Everything else exactly as the lock has it (the tests import what the project imports), with
    # msgspec alone replaced: a hand-kept package list went stale whenever a module gained an import.
    locked = tmp_path / "locked.txt"
    run(UV, "export", "--frozen", "--quiet", "--no-hashes", "--all-extras", "--no-emit-project", "-o", locked)
    override = tmp_path / "override.txt"
    override.write_text(wanted + "\n")
    run(UV, "pip", "install", "--quiet", "--python", python, "-r", locked, "--override", override, env=env)
    version = run(python, "-c", "import msgspec; print(msgspec.__version__)").strip()
    if release == "oldest":
        assert version == oldest
    else:
        assert requirement.specifier.contains(version)

    out = run(
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        HERE,
        env={**env, "PYTHONPATH": os.fspath(ROOT)},
    )
    assert " passed" in out and " failed" not in out, out[-2000:]
