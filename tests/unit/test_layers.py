"""The layers of the README's "How the pieces fit", in code: which part of the project may import which (read
from every file's imports), that nothing sits loose in bot/, and that nothing below the Telegram edge brings
aiogram in, not even through another module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "storage")

# The modules directly in bot/: the wiring (and the settings), and the services. Anything else there is a module
# nobody placed; put it in a layer's folder, or add it here deliberately.
WIRING = ("__main__", "app", "wiring", "startup")
SERVICES = (
    "admin",
    "assistant",
    "conversations",
    "drawing",
    "inflight",
    "memory",
    "models",
    "preferences",
    "quotas",
    "replicas",
    "retention",
    "search",
    "tools",
    "turns",
)
DIRECTLY_IN_BOT = {"__init__", "config", *WIRING, *SERVICES}

# Where a module lives: the longest dotted prefix of its name in this table names its layer. Package markers
# ("bot", "bot.midjourney") are layers of their own and are matched exactly, not as prefixes.
LAYER_OF: dict[str, str] = {
    "bot.core": "core",
    "bot.media": "media",
    "bot.clients": "clients",
    "bot.config": "config",
    "storage": "storage",
    **{f"bot.{name}": "services" for name in SERVICES},
    "bot.midjourney.jobs": "services",
    "bot.midjourney.prompts": "services",
    "bot.midjourney.tracker": "services",
    "bot.telegram": "telegram",
    "bot.midjourney.keyboard": "telegram",
    "bot.midjourney.view": "telegram",
    "handlers": "handlers",
    **{f"bot.{name}": "wiring" for name in WIRING},
    "aiogram": "aiogram",  # not ours, but where it may be imported is the point of the layers
}
PACKAGE_MARKERS = {"bot", "bot.midjourney"}  # their __init__ imports nothing (checked), so anyone may import them

# The diagram: what each layer's modules may import (itself only where listed). Handlers reach the services and
# the Telegram edge, never the clients, media or storage beneath them.
EVERYTHING = ("core", "media", "clients", "config", "storage", "services", "telegram", "handlers", "aiogram")
SERVICE = ("core", "media", "clients", "config", "storage", "services")
EDGE = (*SERVICE, "telegram", "aiogram")
RULES: dict[str, tuple[str, ...]] = {
    "core":     ("core",),
    "media":    ("core", "media"),
    "clients":  ("core", "media", "config", "clients"),
    "config":   ("core",),
    "storage":  ("storage",),
    "services": SERVICE,
    "telegram": EDGE,
    "handlers": ("core", "config", "services", "telegram", "handlers", "aiogram"),
    "wiring":   (*EVERYTHING, "wiring"),
    "package":  (),
}  # fmt: skip

# Imports that break the rules today, reported to be fixed; each entry must still occur (see the last test), so
# fixing one means deleting its line here.
KNOWN_BREACHES: dict[tuple[str, str], str] = {}

# What is checked to bring in no aiogram, by importing it in a fresh interpreter. No service imports aiogram
# today, so none is left out.
AIOGRAM_FREE = ("core", "media", "clients", "config", "storage", "services")


@dataclass(frozen=True, slots=True)
class Import:
    file: str  # relative to the project root, with forward slashes
    line: int
    module: str


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


PROJECT_MODULES = {module_name(path) for path in project_files()}


def layer_of(module: str) -> str | None:
    if module in PACKAGE_MARKERS:
        return "package"
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        layer = LAYER_OF.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    return None


def imports_of(path: Path) -> list[Import]:
    """Every import of the project or of aiogram the file makes, anywhere in it; `from x import y` counts as
    importing x.y when that is one of the project's modules (`from handlers import chat`)."""
    file = path.relative_to(ROOT).as_posix()
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=file)):
        if isinstance(node, ast.Import):
            found += [Import(file, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(Import(file, node.lineno, "." * node.level + (node.module or "")))
                continue
            assert node.module is not None
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append(Import(file, node.lineno, submodule if submodule in PROJECT_MODULES else node.module))
    return [found_import for found_import in found if found_import.module.split(".")[0] in (*PACKAGES, "aiogram")]


def rule_breaches() -> list[tuple[Import, str]]:
    """Every import (or file) that breaks the rules, with the sentence saying which; known breaches included."""
    problems: list[tuple[Import, str]] = []
    for path in project_files():
        file = path.relative_to(ROOT).as_posix()
        layer = layer_of(module_name(path))
        if layer is None:
            problems.append((Import(file, 0, ""), f"{file} belongs to no layer: add it to LAYER_OF"))
            continue
        for found in imports_of(path):
            if found.module.startswith("."):
                problems.append((found, f"{file}:{found.line} imports {found.module}: use the absolute name"))
                continue
            target = layer_of(found.module)
            if target == "package" or target in RULES[layer]:
                continue
            allowed = ", ".join(RULES[layer]) or "nothing of the project"
            problems.append(
                (
                    found,
                    f"{file}:{found.line} ({layer}) imports {found.module} ({target or 'no layer'}): "
                    f"{layer} may import {allowed}",
                )
            )
    return problems


def test_every_import_follows_the_layer_rules() -> None:
    """Each file of bot/, handlers/ and storage/ is in a layer and imports only what its layer may (RULES), by
    absolute names; only the breaches listed in KNOWN_BREACHES are let through."""
    problems = [message for found, message in rule_breaches() if (found.file, found.module) not in KNOWN_BREACHES]
    assert not problems, "imports that break the layers:\n" + "\n".join(problems)


def test_the_rules_name_only_known_layers() -> None:
    """The table itself is sound: every layer a module can be in has a rule, and rules name real layers."""
    layers = set(LAYER_OF.values()) | {"package"}
    assert set(RULES) == layers - {"aiogram"}
    assert {target for allowed in RULES.values() for target in allowed} <= layers


def test_nothing_sits_loose_in_bot() -> None:
    """The modules directly in bot/ are exactly the wiring and the services listed above."""
    found = {path.stem for path in (ROOT / "bot").glob("*.py")}
    loose, gone = sorted(found - DIRECTLY_IN_BOT), sorted(DIRECTLY_IN_BOT - found)
    assert not loose, f"modules in bot/ that are neither wiring nor a service: {loose}"
    assert not gone, f"listed as wiring or services but gone from bot/, update the lists: {gone}"


def test_known_breaches_are_still_breaches() -> None:
    """Each entry of KNOWN_BREACHES is an import the code still makes and the rules still forbid: once one is
    fixed (or the rules allow it), its line must go."""
    breaking = {(found.file, found.module) for found, _ in rule_breaches()}
    assert set(KNOWN_BREACHES) - breaking == set(), "no longer breaches: remove these from KNOWN_BREACHES"


# Run in a fresh interpreter: imports each module in turn, and names the first one after which aiogram was
# loaded, with the project modules that import loaded (the way aiogram came in is among them).
_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    before = set(sys.modules)
    importlib.import_module(name)
    if "aiogram" in sys.modules:
        loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("bot", "handlers", "storage"))
        print(json.dumps({"module": name, "loaded": loaded}))
        break
else:
    print(json.dumps(None))
"""


@pytest.mark.parametrize("layer", AIOGRAM_FREE)
def test_no_aiogram_below_the_edge(layer: str) -> None:
    """Importing every module of the layer, in a fresh interpreter, loads no aiogram, directly or indirectly."""
    modules = sorted(module for module in PROJECT_MODULES if layer_of(module) == layer)
    assert modules, f"no modules found for {layer}"
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    offender = json.loads(probe.stdout)
    assert offender is None, (
        f"importing {offender['module']} ({layer}) loads aiogram; it loaded: {', '.join(offender['loaded'])}"
    )
