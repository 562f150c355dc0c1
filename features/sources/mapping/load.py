"""Loading a mapping file: YAML, then the pydantic models, then the contract rules.

Every problem comes back as one :class:`MappingError` line naming the file and the keys.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from features.sources.mapping.rules import check_spec
from features.sources.mapping.spec import MappingError, MappingSpec


def _loader() -> type[yaml.SafeLoader]:
    """YAML 1.2 booleans: only true/false; ``Yes``/``No`` stay text (value maps need them)."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return Loader


def describe(err: ValidationError) -> str:
    """Pydantic errors as ``key.path: problem`` items on one line."""
    items = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top)"
        what = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        items.append(f"{where}: {what.removeprefix('Value error, ')}")
    return "; ".join(items)


def load_mapping(path: Path) -> MappingSpec:
    """Read and validate a mapping file; errors name the file and the mapping key."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_loader())  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise MappingError(f"mapping file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"{path}: {describe(exc)}") from exc
    problems = check_spec(spec)
    if problems:
        raise MappingError(f"{path}: " + "; ".join(problems))
    return spec
