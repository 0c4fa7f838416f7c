"""DOCSTRING"""

from __future__ import annotations

from importlib import metadata

# The versions every reach below was written against and its guard test last passed on
# (requirements.txt pins them; an upgrade runs tests/framework/ first).
TESTED_VERSIONS = {
    "reflex": "0.10.1",
    "granian": "2.8.9",
    "python-engineio": "4.15.1",
    "python-socketio": "5.18.1",
    "sqladmin": "0.32.0",
}
_DISPLAY_NAMES = {"reflex": "Reflex", "granian": "Granian", "sqladmin": "sqladmin"}


def installed_version(package: str) -> str:
    """The installed version of the distribution ``package`` ("not installed" if none)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class FrameworkChanged(RuntimeError):
    """A hook point of ``package`` that a module of this package relies on is missing or has
    another shape (an upgrade). Raised at start (import of the app module), so the app does
    not run without the control the hook carries.

    ``str()`` names the package, the version installed, what changed, the module to update
    and the version it was tested with.
    """

    def __init__(self, package: str, what: str, module: str) -> None:
        self.package, self.what, self.module = package, what, module
        name = _DISPLAY_NAMES.get(package, package)
        super().__init__(
            f"{name} {installed_version(package)} changed {what}; "
            f"referral_app/infra/framework/{module}.py must be updated before this app may start "
            f"(written and tested for {name} {TESTED_VERSIONS.get(package, '?')}), so it does not start"
        )


def expect(ok: object, package: str, what: str, module: str) -> None:
    """Raise :class:`FrameworkChanged` (``package``, ``what``, ``module``) unless ``ok`` is true."""
    if not ok:
        raise FrameworkChanged(package, what, module)


def parameters(function: object) -> list[str]:
    """The parameter names of ``function`` ([] when it has no signature)."""
    import inspect

    try:
        return list(inspect.signature(function).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
