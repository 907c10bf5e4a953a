"""What a gateway process loads: `serve` must not pay for the other commands or for scrape-only code."""

from __future__ import annotations

import subprocess
import sys

from llmswitch.cli import build_parser


def test_serve_imports_neither_the_advisor_nor_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from llmswitch.cli import build_parser\n"
        "from llmswitch.gateway import Gateway\n"
        "from llmswitch.runner import run_gateway\n"
        "build_parser(full=False).parse_args(['serve', '--port', '1'])\n"
        "print(sorted({m.split('.')[0] if not m.startswith('llmswitch.') else '.'.join(m.split('.')[:2])"
        " for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "llmswitch.advisor" not in out and "prometheus_client" not in out


def test_the_full_parser_still_has_every_command() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"serve", "usage", "advise"} <= set(sub.choices)  # type: ignore[arg-type]
    core = next(a for a in build_parser(full=False)._actions if a.dest == "command")
    assert set(core.choices) == {"serve", "usage", "native"}  # type: ignore[arg-type]
