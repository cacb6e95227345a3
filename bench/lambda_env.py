"""A Lambda-like Python environment for cold-start measurements.

The dev venv is not what Lambda runs: it is Python 3.11 (the runtime is 3.12), it holds the dev
extras (rich, click, moto... and httpx imports its CLI, and with it rich, when click is
installed), and its packages carry compiled bytecode. On Lambda:

- ``/var/runtime`` provides boto3/botocore (with ``.pyc`` files);
- the layer (``/opt/python``) is what ``sam build`` makes of ``layers/reelhook`` with its
  Makefile: the requirements and the ``reelhook`` sources, precompiled ("unchecked-hash");
- ``/opt`` is read-only, so Python cannot cache bytecode it compiles: a layer without it (what
  the python3.12 build method ships: aws-lambda-builders unpacks wheels) compiles on every
  cold start. The ``no_pyc`` variant measures that.

This module builds that under ``bench/.lambda-env`` (ignored by git) with ``uv``: a Python
3.12 venv holding boto3 at the dev venv's version (compiled), and the layer twice, as
sources only and precompiled as the Makefile does. Building takes a few
seconds the first time and is reused while the inputs are unchanged.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import BENCH_DIR, ROOT, say

ENV_DIR = BENCH_DIR / ".lambda-env"
REQUIREMENTS = ROOT / "layers" / "reelhook" / "requirements.txt"
PACKAGE = ROOT / "layers" / "reelhook" / "reelhook"


@dataclass(frozen=True)
class LambdaEnv:
    python: str  # the interpreter to run
    python_version: str
    layer_paths: dict[str, str]  # variant ("pyc" / "no_pyc") -> PYTHONPATH
    lambda_like: bool  # False: fell back to the dev venv
    note: str = ""


def _python312() -> str | None:
    """A CPython 3.12 (the Lambda runtime's version): $BENCH_LAMBDA_PYTHON, PATH, or pyenv."""
    candidates = [os.environ.get("BENCH_LAMBDA_PYTHON", ""), shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    for candidate in filter(None, candidates):
        try:
            real = subprocess.run([candidate, "-c", "import sys; print(sys.executable)"], capture_output=True,
                                  text=True, check=True, timeout=30).stdout.strip()
        except (subprocess.SubprocessError, OSError):
            continue
        if real:
            return real
    return None


def _uv() -> str | None:
    candidate = Path(sys.executable).with_name("uv")
    return str(candidate) if candidate.exists() else shutil.which("uv")


def _boto3_version() -> str:
    import boto3

    return boto3.__version__


def _copy_package(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PACKAGE, target / "reelhook", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _compile(python: str, path: Path) -> None:
    # As layers/reelhook/Makefile compiles the deployed layer.
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(path)],
                   check=True,
                   stdout=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})


def build() -> LambdaEnv:
    python = _python312()
    uv = _uv()
    dev = LambdaEnv(sys.executable, sys.version.split()[0], {}, False)
    if python is None or uv is None:
        return _dev_fallback(dev, "no python3.12 or uv on PATH")
    key = hashlib.sha256(
        f"{python}|{_boto3_version()}|{REQUIREMENTS.read_text()}|unchecked-hash".encode()
    ).hexdigest()[:16]
    runtime, deps_src, deps_pyc = ENV_DIR / "runtime", ENV_DIR / "deps-src", ENV_DIR / "deps-pyc"
    stamp = ENV_DIR / f".built-{key}"
    if not stamp.exists():
        say("  building the Lambda-like environment (python3.12, runtime boto3, layer requirements)...")
        shutil.rmtree(ENV_DIR, ignore_errors=True)
        ENV_DIR.mkdir(parents=True)
        try:
            subprocess.run([uv, "venv", "-q", "--python", python, str(runtime)], check=True)
            runtime_python = str(runtime / "bin" / "python")
            subprocess.run([uv, "pip", "install", "-q", "--python", runtime_python, "--compile-bytecode",
                            f"boto3=={_boto3_version()}"], check=True)
            subprocess.run([uv, "pip", "install", "-q", "--python", runtime_python, "--target", str(deps_src),
                            "-r", str(REQUIREMENTS)], check=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            shutil.rmtree(ENV_DIR, ignore_errors=True)
            return _dev_fallback(dev, f"could not build the Lambda-like environment ({exc})")
        shutil.copytree(deps_src, deps_pyc, ignore=shutil.ignore_patterns("__pycache__"))
        _compile(runtime_python, deps_pyc)
        stamp.touch()
    runtime_python = str(runtime / "bin" / "python")
    # The reelhook sources change between runs: copy them fresh every time.
    code_src, code_pyc = ENV_DIR / "code-src", ENV_DIR / "code-pyc"
    _copy_package(code_src)
    _copy_package(code_pyc)
    _compile(runtime_python, code_pyc)
    version = subprocess.run([runtime_python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return LambdaEnv(
        python=runtime_python,
        python_version=version,
        layer_paths={"pyc": f"{code_pyc}:{deps_pyc}", "no_pyc": f"{code_src}:{deps_src}"},
        lambda_like=True,
    )


def _dev_fallback(dev: LambdaEnv, why: str) -> LambdaEnv:
    say(f"  note: {why}; measuring in the dev venv instead")
    return LambdaEnv(dev.python, dev.python_version, {"dev": str(ROOT / "layers" / "reelhook")}, False,
                     note=f"{why}: measured in the dev venv (Python {dev.python_version}, dev extras installed)")
