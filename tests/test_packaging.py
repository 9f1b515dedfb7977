"""The wheel installs into a fresh virtual environment and its CLI works from there."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (path,) = out.glob("audit_sdk-*.whl")
    return path


def test_wheel_installs_plugins_under_the_audit_sdk_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert not {"plugins", "adapters", "reports", "tests"} & top_level
    for expected in (
        "audit_sdk/plugins/detectors/group_fairness.py",
        "audit_sdk/adapters/baseline_recommenders.py",
        "audit_sdk/reports/templates/report.html.j2",
        "audit_sdk/py.typed",
    ):
        assert expected in names, expected
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[audit_sdk]" in text
    assert "audit-sdk = audit_sdk.cli:main" in text


def test_cli_runs_from_a_fresh_virtual_environment(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The fresh environment borrows third-party dependencies from this one (a plain path
    # entry: the editable install of audit-sdk itself is not visible there).
    (Path(purelib) / "_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    cli = env_dir / "bin" / "audit-sdk"
    where = subprocess.run(
        [str(python), "-c", "import audit_sdk.plugins as p; print(p.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert where.startswith(str(env_dir)), where

    listed = subprocess.run(
        [str(cli), "plugins", "--json"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    components = json.loads(listed.stdout)["components"]
    names = {(c["kind"], c["name"]) for c in components}
    assert {("detector", "group_fairness"), ("adapter", "item_knn"), ("reporter", "html")} <= names
    assert all(c["distribution"] == "audit-sdk" for c in components)

    config = tmp_path / "audit.yaml"
    config.write_text(
        "dataset:\n  params: {n_users: 300, n_artists: 60}\nbaselines: [popularity]\n"
        "stats: {bootstrap_resamples: 100}\n"
    )
    run = subprocess.run(
        [str(cli), "run", str(config), "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "report.html").is_file()
    gate = subprocess.run(
        [str(cli), "gate", str(tmp_path / "out" / "report.json")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert gate.returncode in (0, 1), gate.stderr
