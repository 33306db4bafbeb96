"""The wheel works outside the checkout (issue 17): built from the tree, installed into a
fresh virtual environment, it runs `hil run` and `pytest --pyargs hil400hd_testcases` on a
simulated rig from a directory that is not the checkout, with the shipped rig files and
cases and the pytest plugin loaded through its ``pytest11`` entry point.

Fast and offline: the wheel is built without build isolation (this venv's setuptools and
wheel) and installed with ``--no-deps``; the fresh venv sees this venv's installed packages
through a ``.pth`` line naming its site-packages (a plain path line: the ``.pth`` files in
that directory, among them an editable install's finder pointing back at the checkout, are
not processed, so ``framework`` comes from the wheel alone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from setuptools import find_packages

from framework.netns import have_privileges, list_namespaces
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"hilt-pk{os.getpid() % 1000}"


def test_every_framework_package_is_in_the_wheel_list() -> None:
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = find_packages(str(ROOT), include=["framework", "framework.*"])
    assert sorted(p for p in listed["packages"] if p.startswith("framework")) == sorted(found)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("framework", "testcases", "rigs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "-w", str(dist), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("hil400hd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hil400hd_rigs/sim.yaml" in names and "hil400hd_testcases/conftest.py" in names
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True,
                   timeout=120)
    python = env / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "zz-host-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    return env


def _in(env: Path, *argv: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HIL_RIG")}
    clean["PATH"] = f"{env / 'bin'}:{clean.get('PATH', '')}"
    return subprocess.run(argv, cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=timeout)


def test_the_installed_framework_is_the_wheel_with_its_data(venv: Path, tmp_path: Path) -> None:
    py = str(venv / "bin" / "python")
    where = _in(venv, py, "-c", "import framework, framework.resources as r; "
                "print(framework.__file__); print(r.testcases_dir()); print(r.default_rig())",
                cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    lines = where.stdout.splitlines()
    assert all(line.startswith(str(venv)) for line in lines), lines
    assert Path(lines[2]).name == "sim.yaml" and Path(lines[2]).is_file()
    validate = _in(venv, str(venv / "bin" / "hil"), "rig", "validate", cwd=tmp_path)
    assert validate.returncode == 0 and "ok: rig 'sim'" in validate.stdout, validate.stderr
    version = _in(venv, str(venv / "bin" / "hil"), "--version", cwd=tmp_path)
    assert version.stdout.strip() == "hil 0.1.0 (installed)", version.stdout + version.stderr


needs_root = pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")


@needs_root
@pytest.mark.netns
@pytest.mark.timeout(600)
def test_hil_run_and_pytest_pyargs_outside_the_checkout(venv: Path, tmp_path: Path) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=PREFIX, phones=1, boot_time_s=0.2)
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = _in(venv, str(venv / "bin" / "hil"), "run", "--rig", str(rig), "--run-id", "w",
              "--settle", "0.4", "-k", "r2-host-ip", cwd=work)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (work / "reports" / "w" / "certification.json").is_file()  # ./reports, not site-packages
    assert (work / "reports" / "w" / "junit.xml").is_file()
    plain = _in(venv, str(venv / "bin" / "python"), "-m", "pytest", "--pyargs",
                "hil400hd_testcases", "--rig", str(rig), "--reports", str(work / "plain"),
                "-k", "r2-host-ip", "-p", "no:cacheprovider", "-q", cwd=work)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert " passed" in plain.stdout and "error" not in plain.stdout.lower(), plain.stdout[-2000:]
    assert list((work / "plain").glob("*/certification.json"))
    assert not [n for n in list_namespaces() if n.startswith(PREFIX)], "namespaces left behind"


def test_conftest_opt_in_and_entry_point_register_the_plugin_once(venv: Path,
                                                                  tmp_path: Path) -> None:
    # a checkout's root conftest.py names the plugin module too; the entry point carries
    # the module's name, so pytest finds it registered and does not register it again
    shutil.copy2(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_x.py").write_text("def test_x(request):\n"
                                        "    pm = request.config.pluginmanager\n"
                                        "    assert pm.has_plugin('framework.pytest_plugin')\n")
    proc = _in(venv, str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p",
               "no:cacheprovider", "test_x.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    listed = _in(venv, str(venv / "bin" / "python"), "-m", "pytest", "--help", cwd=tmp_path)
    assert listed.stdout.count("--rig=") + listed.stdout.count("--rig ") == 1, listed.stdout
