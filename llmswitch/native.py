"""The request path compiled to C with mypyc, used when a build matches the sources; pure Python otherwise.

The gateway's per-request code is plain typed Python (mypy --strict clean), which mypyc compiles to C
extension modules with the same behaviour: about 1.8x less CPU per request on this code. The build is
optional and never trusted blindly:

- `llmswitch native build` (run by scripts/setup when a C compiler is there) compiles `HOT_MODULES`
  into `llmswitch/_native/`, with a manifest of the sha256 of every source file of the package, the
  Python version and the extension suffix;
- at import, `install()` puts an import finder for the compiled modules in front of the normal one only
  if the manifest matches exactly: a stale build (any source edited since) is ignored, not run;
- `LLMSWITCH_PURE_PYTHON=1` turns it off. `STATE` says which is in use and why (logged at start-up).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE / "_native"
MANIFEST = "manifest.json"

# What every request runs through: the HTTP server, dispatch, executor, upstream client, pass-through and
# stream relay, auth, pricing, metrics, the ledger's records and writer, and an `auto` model's decision.
# Cold code stays interpreted.
HOT_MODULES = (
    "llmswitch.api.server",
    "llmswitch.api.errors",
    "llmswitch.api.chat",
    "llmswitch.gateway",
    "llmswitch.metrics",
    "llmswitch.providers.http_client",
    "llmswitch.providers.openai",
    "llmswitch.providers.sse",
    "llmswitch.providers.stream_relay",
    "llmswitch.routing.call",
    "llmswitch.routing.deployment",
    "llmswitch.routing.executor",
    "llmswitch.routing.failure",
    "llmswitch.routing.fast_path",
    "llmswitch.routing.plan",
    "llmswitch.routing.auto_serve",  # an `auto` model's decision, made on every request it routes
    "llmswitch.routing.auto.features",
    "llmswitch.routing.auto.strategies",
    "llmswitch.ledger.record",
    "llmswitch.ledger.rows",
    "llmswitch.ledger.sqlite",
    "llmswitch.ledger.forward",
    "llmswitch.policy.auth",
    "llmswitch.pricing.book",
    "llmswitch.pricing.rates",
    "llmswitch.pricing.usage",
)

STATE = "pure Python (no native build)"


def source_digest(root: Path = PACKAGE) -> str:
    """sha256 over every .py file of the package (paths and contents), in a stable order."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _platform() -> dict[str, str]:
    return {"python": sys.version, "ext_suffix": str(sysconfig.get_config_var("EXT_SUFFIX"))}


def check(build_dir: Path = BUILD_DIR, root: Path = PACKAGE) -> tuple[dict[str, Path] | None, str]:
    """The compiled module files to use, or None with the reason why not."""
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None, "pure Python (no native build)"
    if manifest.get("platform") != _platform():
        return None, "pure Python (the native build is for another Python)"
    if manifest.get("sources") != source_digest(root):
        return None, "pure Python (the native build is stale: sources changed since; run scripts/setup)"
    files = {name: build_dir / file for name, file in manifest.get("modules", {}).items()}
    if not files or not all(f.is_file() for f in files.values()):
        return None, "pure Python (the native build is incomplete)"
    return files, f"compiled (mypyc, {len(files) - 1} modules)"


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules (and mypyc's shared library) in the build directory."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def install() -> None:
    """Use the native build if it matches the sources (called once, when llmswitch is imported)."""
    global STATE
    if os.environ.get("LLMSWITCH_PURE_PYTHON", "") not in ("", "0"):
        STATE = "pure Python (LLMSWITCH_PURE_PYTHON is set)"
        return
    files, STATE = check()
    if files is not None and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(files))


def build(build_dir: Path = BUILD_DIR) -> str:
    """Compile HOT_MODULES with mypyc into `build_dir` and write its manifest; returns the new state."""
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="llmswitch-native-") as tmp:
        work = Path(tmp)
        # A copy, so mypyc's in-place output and build/ never touch the source tree.
        shutil.copytree(PACKAGE, work / "llmswitch", ignore=shutil.ignore_patterns("__pycache__", "_native"))
        digest = source_digest(work / "llmswitch")
        sources = [str(Path(*name.split(".")).with_suffix(".py")) for name in HOT_MODULES]
        subprocess.run(
            # As in pyproject's [tool.mypy]: the auto router imports untyped optional packages.
            [sys.executable, "-m", "mypyc", "--ignore-missing-imports", *sources],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
            # Only the copy is analysed: another llmswitch on PYTHONPATH/MYPYPATH would be a duplicate module.
            env={
                **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")},
                "MYPY_CACHE_DIR": str(work / ".mypy_cache"),
            },
        )
        suffix = str(sysconfig.get_config_var("EXT_SUFFIX"))
        modules = {name: name + suffix for name in HOT_MODULES}
        shared = list(work.glob("*__mypyc" + suffix))
        if len(shared) != 1:
            raise RuntimeError(f"expected one mypyc runtime library, found {len(shared)}")
        modules[shared[0].name.removesuffix(suffix)] = shared[0].name
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        for name in HOT_MODULES:
            compiled = work / Path(*name.split(".")).with_suffix(suffix)
            shutil.copy2(compiled, build_dir / modules[name])
        shutil.copy2(shared[0], build_dir / shared[0].name)
        manifest = {"platform": _platform(), "sources": digest, "modules": modules}
        (build_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return check(build_dir)[1]
