"""The compiled request path (llmswitch/native.py): used only when its build matches the sources."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import llmswitch.api.server
from llmswitch import native
from llmswitch.ledger.record import AttemptRecord
from llmswitch.pricing.usage import Usage
from llmswitch.routing.call import Call
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider

GatewayFactory = Callable[..., GatewayProcess]
SUFFIX = str(sysconfig.get_config_var("EXT_SUFFIX"))


def fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """A package tree and a build of it whose manifest matches (its 'modules' are placeholder files)."""
    root = tmp_path / "pkg"
    (root / "api").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "api" / "server.py").write_text("X = 1\n")
    build = tmp_path / "build"
    build.mkdir()
    (build / ("m" + SUFFIX)).write_bytes(b"")
    manifest = {
        "platform": native._platform(),
        "sources": native.source_digest(root),
        "modules": {"pkg.api.server": "m" + SUFFIX},
    }
    (build / native.MANIFEST).write_text(json.dumps(manifest))
    return root, build


def test_a_matching_build_is_used(tmp_path: Path) -> None:
    root, build = fake_build(tmp_path)
    files, state = native.check(build, root)
    assert files == {"pkg.api.server": build / ("m" + SUFFIX)} and state.startswith("compiled")


def test_a_build_is_ignored_once_any_source_changes(tmp_path: Path) -> None:
    root, build = fake_build(tmp_path)
    (root / "api" / "server.py").write_text("X = 2\n")
    files, state = native.check(build, root)
    assert files is None and "stale" in state
    (root / "api" / "server.py").write_text("X = 1\n")
    (root / "new.py").write_text("")  # a new module counts too
    assert "stale" in native.check(build, root)[1]


def test_a_build_for_another_python_or_with_files_missing_is_ignored(tmp_path: Path) -> None:
    root, build = fake_build(tmp_path)
    manifest = json.loads((build / native.MANIFEST).read_text())
    (build / native.MANIFEST).write_text(json.dumps({**manifest, "platform": {"python": "3.9"}}))
    files, state = native.check(build, root)
    assert files is None and "another Python" in state
    (build / native.MANIFEST).write_text(json.dumps(manifest))
    (build / ("m" + SUFFIX)).unlink()
    files, state = native.check(build, root)
    assert files is None and "incomplete" in state
    shutil.rmtree(build)
    assert native.check(build, root) == (None, "pure Python (no native build)")


@pytest.mark.skipif(
    shutil.which("cc") is None or os.environ.get("LLMSWITCH_PURE_PYTHON", "0") != "0",
    reason="no C compiler (or pure Python asked for): scripts/setup builds nothing",
)
def test_setup_built_the_request_path_and_it_is_what_runs() -> None:
    # scripts/setup compiles when a C compiler is there: the tests and benchmarks then run the
    # compiled modules, which must be current.
    assert native.STATE.startswith("compiled"), native.STATE
    assert str(llmswitch.api.server.__file__).endswith(SUFFIX)


def test_pure_python_on_request_serves_the_same(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    config = {
        "providers": {"a": provider(fresh_sim.url)},
        "models": {"m": {"deployments": [{"provider": "a", "model": "up"}]}},
    }
    pure = start_gateway(config, env={"LLMSWITCH_PURE_PYTHON": "1"})
    default = start_gateway(json.loads(json.dumps(config)))
    for gw in (pure, default):
        for _ in range(2):  # the second goes over a kept-alive upstream connection (the fast path)
            answer = client(gw).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
            assert answer.choices[0].message.content
        chunks = client(gw).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "request path pure Python (LLMSWITCH_PURE_PYTHON is set)" in pure.log()
    assert f"request path {native.STATE}" in default.log()


PER_REQUEST_RECORDS = (Call, AttemptRecord, Usage)
REQUIRED_SAMPLES: dict[str, Any] = {
    **dict.fromkeys(["request_id", "key_id", "model", "tags", "requested_model"], "a"),
    **dict.fromkeys(["provider", "upstream_model", "status"], "b"),
    **{"ts": 1.5, "started": 2.5, "attempt": 3, "body": {}, "raw": b"{}"},
    **{"stream": True, "want_usage": False},
}


@pytest.mark.parametrize("cls", PER_REQUEST_RECORDS, ids=lambda c: c.__name__)
def test_hand_written_inits_match_the_dataclass_fields(cls: type) -> None:
    """These classes write `__init__` out for mypyc; it must take exactly the fields, in order, with
    the same defaults (a default factory is taken as None and gives a fresh object)."""
    params = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    required = {p.name: p for p in params if p.default is inspect.Parameter.empty}
    # Values of the declared types: compiled code checks them.
    args = {name: REQUIRED_SAMPLES[name] for name in required}
    made, again = cls(**args), cls(**args)
    for f, p in zip(fields, params, strict=True):
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default and getattr(made, f.name) == f.default, f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert p.default is None, f.name
            assert getattr(made, f.name) == f.default_factory(), f.name
            assert getattr(made, f.name) is not getattr(again, f.name), f"{f.name} is shared"
        else:
            assert p.name in required and getattr(made, f.name) == args[p.name], f.name


@pytest.mark.skipif(not native.STATE.startswith("compiled"), reason="checks the compiled build")
@pytest.mark.parametrize("cls", PER_REQUEST_RECORDS, ids=lambda c: c.__name__)
def test_per_request_records_are_built_by_compiled_code(cls: type) -> None:
    # A dataclass-generated __init__ is a Python function even in a compiled module.
    assert not inspect.isfunction(cls.__init__)
