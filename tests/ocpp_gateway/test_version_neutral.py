"""The core speaks no OCPP version: the model, the outbox, the sender and the station import nothing
version-specific (issue 11), so a second version is an adapter beside protocol/v16, not a copy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import voltbus_ocpp

PACKAGE = Path(voltbus_ocpp.__file__).parent
# Outside protocol/, only these two may name a version: the factory that picks the adapter for
# the configured version, and the settings, which check VOLTBUS_OCPP_CONFIG against the 1.6 keys
# (it applies to 1.6 only, docs/ocpp.md). Every other module, a new one too, is checked.
CHOOSERS = {"protocols.py", "settings.py"}
NEUTRAL = sorted([*(PACKAGE / "model").glob("*.py"), *(
    p for p in PACKAGE.glob("*.py") if p.name not in CHOOSERS)])
VERSIONED = ("voltbus_ocpp.protocol.v", "ocpp.v16", "ocpp.v201", "ocpp.v20")


def imports(path: Path, source: str | None = None) -> list[str]:
    """Every module a file imports (relative imports resolved against the package)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
                base = ".".join([*parts[:-node.level], *([base] if base else [])])
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return found


@pytest.mark.parametrize("path", NEUTRAL, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_imports_nothing_version_specific(path: Path) -> None:
    bad = [m for m in imports(path) if m.startswith(VERSIONED)]
    assert bad == [], f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_core_list_covers_the_station_outbox_and_model() -> None:
    """The modules issue 11 names are among those checked (a rename would not drop them)."""
    names = {str(p.relative_to(PACKAGE)) for p in NEUTRAL}
    assert {"station.py", "offline_queue.py", "records.py", "messenger.py", "model/station.py",
            "model/connector.py"} <= names
    assert {p.name for p in PACKAGE.glob("*.py")} - {p.name for p in NEUTRAL} == CHOOSERS


@pytest.mark.parametrize("path", sorted((PACKAGE / "model").glob("*.py")),
                         ids=lambda p: p.name)
def test_the_model_does_not_import_the_ocpp_package_at_all(path: Path) -> None:
    assert [m for m in imports(path) if m == "ocpp" or m.startswith("ocpp.")] == []


def test_the_check_sees_a_versioned_import() -> None:
    """The rule is not vacuous: both import forms are caught, relative ones too."""
    source = ("from ocpp.v16 import call\nfrom ..protocol.v16 import convert\n"
              "import voltbus_ocpp.protocol.v16.handlers\n")
    found = imports(PACKAGE / "model" / "connector.py", source)
    assert [m for m in found if m.startswith(VERSIONED)] == [
        "ocpp.v16", "ocpp.v16.call", "voltbus_ocpp.protocol.v16",
        "voltbus_ocpp.protocol.v16.convert", "voltbus_ocpp.protocol.v16.handlers"]


@pytest.mark.parametrize("path", sorted((PACKAGE / "protocol" / "v201").glob("*.py")),
                         ids=lambda p: p.name)
def test_201_stands_beside_16_not_on_it(path: Path) -> None:
    assert [m for m in imports(path) if m.startswith(("voltbus_ocpp.protocol.v16",
                                                      "ocpp.v16"))] == []
