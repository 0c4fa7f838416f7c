"""Every file a docstring, comment or document names exists (issue 19: docstrings named
files that had moved, and the profiler filtered on a path that no longer existed)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "referral_app"
PACKAGES = "domain|infra|api|state|admin|services|pages|components|i18n"
# `referral_app/infra/db.py`, or `infra/db.py` relative to the app's package.
NAMED_FILE = re.compile(rf"(?<![\w./-])(?:referral_app/)?(?:{PACKAGES})/[a-z_/]+\.py\b")
# The frameworks have packages of these names too (e.g. Reflex's state/manager/token.py).
FRAMEWORKS = ("reflex", "reflex_base", "fastapi", "starlette", "sqladmin", "granian", "engineio", "socketio")


def _framework_roots() -> list[Path]:
    roots = []
    for name in FRAMEWORKS:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(location) for location in spec.submodule_search_locations)
    return roots


def _sources() -> list[Path]:
    files = [*APP.rglob("*.py"), *(ROOT / "bench").rglob("*.py"), *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    return [path for path in files if path.is_file()]


def test_every_named_file_exists():
    frameworks = _framework_roots()
    missing = []
    for source in _sources():
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            for name in NAMED_FILE.findall(line):
                relative = name.removeprefix("referral_app/")
                if (APP / relative).exists() or any((root / relative).exists() for root in frameworks):
                    continue
                missing.append(f"{source.relative_to(ROOT)}:{number}: {name}")
    assert missing == []
