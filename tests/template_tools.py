"""template.yaml as the tests see it: the SAM form, its Globals applied, and the offline
transform to plain CloudFormation. Shared by test_template.py and test_security.py.

Nothing here talks to AWS: the transform gets a region from the environment and a managed
policy loader that returns nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"


class NoManagedPolicies:
    """Stands in for samtranslator's boto3-backed loader: no AWS call, no policy names."""

    def load(self) -> dict[str, str]:
        return {}


def sam_transform(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation template ``sam deploy`` would submit (code locations made up), for
    ``parameters`` (the transform resolves some parameter references itself; defaults otherwise)."""
    from samtranslator.translator.transform import transform

    fragment = copy.deepcopy(template)
    for resource in fragment["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://placeholder-bucket/{props[key].strip('/')}.zip"
    with pytest.MonkeyPatch.context() as mp:
        # samtranslator asks a boto3 Session for the region (pseudo parameters); nothing else.
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        return transform(fragment, dict(parameters or {}), NoManagedPolicies(), feature_toggle=None)


def apply_globals(template: dict[str, Any]) -> dict[str, Any]:
    """The SAM template with its Globals merged into the resources by SAM's own code.

    Still the SAM form (``AWS::Serverless::*`` resources, their Metadata kept), without a
    ``Globals`` section: what a tool that merges Globals badly should be given instead.
    """
    from samtranslator.plugins.globals.globals_plugin import GlobalsPlugin

    merged = copy.deepcopy(template)
    GlobalsPlugin().on_before_transform_template(merged)
    return merged
