"""What ``sam build`` made of template.yaml: the functions and the layer that would ship.

``make test`` runs ``make build`` first (the SAM CLI in .tools/sam, no container, a Python
3.12 from pyenv), so these tests read a fresh ``.aws-sam/build``. Run on their own, they
need a ``make build`` beforehand; a missing or stale build fails with that advice rather
than skipping, so a broken build cannot pass unnoticed.

The layer must hold the ``reelhook`` package and its runtime dependencies, compiled for
the function's runtime and architecture, and nothing the Lambda runtime already has
(boto3) or only a developer's machine needs (moto, pytest, the local stack, the CLI).
"""

from __future__ import annotations

import filecmp
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from reelhook_local.aws_resources import load_template
from tests.template_tools import ROOT, TEMPLATE_PATH

BUILD_DIR = ROOT / ".aws-sam" / "build"
BUILT_TEMPLATE = BUILD_DIR / "template.yaml"
LAYER_ID = "ReelhookLayer"
LAYER_SOURCE = ROOT / "layers" / "reelhook"
REQUIREMENTS = LAYER_SOURCE / "requirements.txt"

# Import names that must be in the layer, besides `reelhook` itself.
RUNTIME_IMPORTS = {"certifi", "pydantic", "pydantic_core", "aws_lambda_powertools"}
# The Lambda runtime provides these; shipping them would only shadow its copies.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}
# Developer-only: the test stack and tools, the local front and sandbox, the CLI.
DEV_ONLY = {"moto", "pytest", "_pytest", "hypothesis", "schemathesis", "cfnlint", "samtranslator", "ruff",
            "reelhook_local", "reelhook_client", "reelhook_cli"}

# Lambda's limit on a function's unzipped code plus all its layers.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024

# Where Lambda's manylinux wheels name the machine differently from the template.
WHEEL_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}

RUN_MAKE_BUILD = "run `make build` (sam build into .aws-sam/build)"


def need(condition: bool, problem: str) -> None:
    if not condition:
        pytest.fail(f"{problem}: {RUN_MAKE_BUILD}", pytrace=False)


@cache
def source_template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@cache
def built_template() -> dict[str, Any]:
    need(BUILT_TEMPLATE.is_file(), f"{BUILT_TEMPLATE.relative_to(ROOT)} is missing")
    return load_template(BUILT_TEMPLATE)


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def function_setting(name: str, key: str) -> Any:
    template = source_template()
    props = template["Resources"][name].get("Properties", {})
    return props.get(key, template.get("Globals", {}).get("Function", {}).get(key))


def handler_file(name: str) -> str:
    """``app.handler`` -> ``app.py``; ``pkg.mod.handler`` -> ``pkg/mod.py``."""
    module = str(function_setting(name, "Handler")).rsplit(".", 1)[0]
    return module.replace(".", "/") + ".py"


def layer_dir() -> Path:
    path = BUILD_DIR / LAYER_ID / "python"
    need(path.is_dir(), f"{path.relative_to(ROOT)} is missing")
    return path


def top_level_names(directory: Path) -> set[str]:
    """Importable names and distribution names (from *.dist-info) found in ``directory``."""
    names = set()
    for entry in directory.iterdir():
        if entry.name.endswith(".dist-info"):
            names.add(canonicalize_name(entry.name.removesuffix(".dist-info").rsplit("-", 1)[0]))
        else:
            names.add(entry.name.removesuffix(".py"))
    return names


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def assert_same_files(source: Path, built: Path) -> None:
    """Every Python file under ``source`` is in ``built`` with the same content."""
    stale = []
    for file in sorted(source.rglob("*.py")):
        if "__pycache__" in file.parts:
            continue
        target = built / file.relative_to(source)
        if not (target.is_file() and filecmp.cmp(file, target, shallow=False)):
            stale.append(str(file.relative_to(ROOT)))
    need(not stale, f"the build is older than {', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''}")


# ---------------------------------------------------------------------------- template


def test_built_template_has_every_function_and_the_layer() -> None:
    source, built = source_template(), built_template()
    need(set(functions(built)) == set(functions(source)),
         f"built functions {sorted(functions(built))} differ from template.yaml's {sorted(functions(source))}")
    # sam build points each resource at its own build directory.
    for name, resource in functions(built).items():
        assert resource["Properties"]["CodeUri"] == name
    assert built["Resources"][LAYER_ID]["Properties"]["ContentUri"] == LAYER_ID


# ---------------------------------------------------------------------------- functions


@pytest.mark.parametrize("name", sorted(functions(load_template(TEMPLATE_PATH))))
def test_every_function_is_built_with_its_handler(name: str) -> None:
    built_template()  # a missing build fails here with the advice, not below
    directory = BUILD_DIR / name
    need(directory.is_dir(), f"{directory.relative_to(ROOT)} is missing")
    handler = handler_file(name)
    need((directory / handler).is_file(), f"{name}'s {handler} is not in {directory.relative_to(ROOT)}")
    source = ROOT / str(source_template()["Resources"][name]["Properties"]["CodeUri"])
    assert_same_files(source, directory)
    # The function ships its handler only: shared code comes from the layer, and a copy here
    # would shadow it.
    assert not (directory / "reelhook").exists()
    assert tree_size(directory) + tree_size(layer_dir()) < LAMBDA_UNZIPPED_LIMIT


# ---------------------------------------------------------------------------- layer


def test_layer_holds_the_reelhook_package() -> None:
    package = layer_dir() / "reelhook"
    assert (package / "__init__.py").is_file()
    assert_same_files(LAYER_SOURCE / "reelhook", package)


def test_layer_holds_the_runtime_dependencies() -> None:
    found = top_level_names(layer_dir())
    assert found >= RUNTIME_IMPORTS, f"missing from the layer: {sorted(RUNTIME_IMPORTS - found)}"


def test_layer_dependency_versions_satisfy_requirements_txt() -> None:
    installed = {}
    for info in layer_dir().glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[canonicalize_name(name)] = Version(version)
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        need(name in installed, f"{requirement.name} is not installed in the layer")
        need(requirement.specifier.contains(installed[name], prereleases=True),
             f"the layer has {requirement.name} {installed[name]}, requirements.txt asks {requirement.specifier}")


def test_compiled_extensions_match_the_runtime_and_architecture() -> None:
    runtime = str(function_setting(next(iter(functions(source_template()))), "Runtime"))
    (architecture,) = function_setting(next(iter(functions(source_template()))), "Architectures")
    layer = source_template()["Resources"][LAYER_ID]
    assert layer["Properties"]["CompatibleArchitectures"] == [architecture]
    abi = "cpython-" + runtime.removeprefix("python").replace(".", "")  # python3.12 -> cpython-312
    machine = WHEEL_MACHINE[architecture]
    # The layer's Makefile asks pip for the runtime's wheels, whatever Python builds it.
    makefile = (LAYER_SOURCE / "Makefile").read_text()
    assert f"--python-version {runtime.removeprefix('python')}" in makefile
    assert re.search(rf"^WHEEL_PLATFORM \?= manylinux\w*_{machine}$", makefile, flags=re.M), makefile

    pydantic_core = sorted((layer_dir() / "pydantic_core").glob("_pydantic_core*.so"))
    assert pydantic_core, "pydantic_core has no compiled extension"
    for extension in pydantic_core:
        assert abi in extension.name and machine in extension.name, extension.name

    # No extension anywhere in the layer may target another Python or machine.
    wrong = [
        str(so.relative_to(layer_dir()))
        for so in layer_dir().rglob("*.so")
        if re.search(r"\.cpython-\d+", so.name) and not (abi in so.name and machine in so.name)
    ]
    assert not wrong, f"built for another Python or machine than {abi} {machine}: {wrong}"


def test_every_layer_module_ships_bytecode_the_runtime_trusts() -> None:
    """/opt is read-only on Lambda: a module without usable bytecode is compiled on every cold start.

    The bytecode must be for the runtime's Python and "unchecked-hash" (flags 0b01 in the pyc
    header): timestamp-checked bytecode would be recompiled whenever the zip round trip
    changed a source's mtime, which it does (zip keeps 2-second local times).
    """
    runtime = str(function_setting(next(iter(functions(source_template()))), "Runtime"))
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    missing, checked = [], []
    for source in layer_dir().rglob("*.py"):
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not compiled.is_file():
            missing.append(str(source.relative_to(layer_dir())))
        elif int.from_bytes(compiled.read_bytes()[4:8], "little") != 0b01:
            checked.append(str(compiled.relative_to(layer_dir())))
    assert not missing, f"{len(missing)} modules without {tag} bytecode, e.g. {missing[:5]}"
    assert not checked, f"{len(checked)} .pyc files are not unchecked-hash, e.g. {checked[:5]}"
    assert not (layer_dir() / "bin").exists(), "console scripts name the build machine's Python"


@pytest.mark.parametrize("name", sorted(RUNTIME_PROVIDED | DEV_ONLY))
def test_layer_leaves_out(name: str) -> None:
    found = top_level_names(layer_dir())
    assert canonicalize_name(name) not in found and name not in found, f"{name} must not ship in the layer"
