"""Provider registry: every module in this package that defines ``PROVIDER`` is a provider.

Modules are discovered by name and imported on first use, so a function that serves one
provider's webhook imports only that provider's module.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reelhook.providers.base import Provider
    from reelhook.spec import ModelSpec

_NOT_PROVIDERS = frozenset({"base"})


@cache
def provider_names() -> tuple[str, ...]:
    found = (m.name for m in pkgutil.iter_modules(__path__))
    return tuple(sorted(name for name in found if name not in _NOT_PROVIDERS and not name.startswith("_")))


@cache
def get_provider(name: str) -> Provider:
    if name not in provider_names():
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}").PROVIDER


@cache
def all_models() -> dict[str, ModelSpec]:
    models: dict[str, ModelSpec] = {}
    for name in provider_names():
        for spec in get_provider(name).models:
            models[spec.id] = spec
    return models


def get_model(model_id: str) -> ModelSpec:
    return all_models()[model_id]
