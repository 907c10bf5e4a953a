"""Processes: start, pin and stop them; their tree's RSS and CPU; install the tools a run needs."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from fixtures import LITELLM_VENV, LITELLM_VERSION


class SetupError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_pids(root: int) -> set[int]:
    """A process and all its descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    pids, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent and p not in pids]
        pids.update(kids)
        frontier.extend(kids)
    return pids


def tree_rss_mb(root: int, pss: bool = False) -> float:
    """VmRSS of a process tree in MB; with `pss`, the proportional set size instead, which counts pages
    that forked workers share (copy-on-write) once rather than once per process."""
    source, key = ("smaps_rollup", "Pss:") if pss else ("status", "VmRSS:")
    total_kb = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
                if line.startswith(key):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return round(total_kb / 1024, 1)


def tree_cpu_s(root: int, main_threads: bool = False) -> float:
    """User + system CPU seconds used so far by a process tree's live processes; with `main_threads`,
    by their main threads only (an llmswitch worker's event loop; its other threads are the ledger
    writer and helpers)."""
    ticks = 0
    for pid in tree_pids(root):
        stat = f"/proc/{pid}/task/{pid}/stat" if main_threads else f"/proc/{pid}/stat"
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished children (each wrk run, once waited for)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Proc:
    """A child process in its own session (stopped by pid), optionally pinned with taskset."""

    def __init__(self, argv: list[str], log: Path, cores: str | None, env: dict[str, str] | None = None):
        self.log = log
        cmd = ["taskset", "-c", cores, *argv] if cores else argv
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=log.parent
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class RssSampler:
    """Peak RSS of a process tree while a `with` block runs."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every, self.peak, self.peak_pss = pid, every, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        self.peak = max(self.peak, tree_rss_mb(self.pid))
        self.peak_pss = max(self.peak_pss, tree_rss_mb(self.pid, pss=True))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# installing the tools
def nginx() -> str:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin") or "nginx"


def ensure_tools() -> None:
    """wrk and nginx (with the echo module, as nginx-light brings it on Debian 12), installed if missing."""
    if shutil.which("wrk") and shutil.which(nginx()):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SetupError("wrk and nginx are missing and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk", "nginx-light"], check=True, env=env)


def ensure_litellm() -> Path:
    """LiteLLM proxy at the pinned version, in its own virtualenv: returns its `litellm` executable."""
    stamp = LITELLM_VENV / f".installed-{LITELLM_VERSION}"
    if not stamp.exists():
        print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin/pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
        stamp.touch()
    return LITELLM_VENV / "bin/litellm"


def llmswitch_exe() -> list[str]:
    exe = Path(sys.executable).parent / "llmswitch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "llmswitch"]


def supports_workers() -> bool:
    out = subprocess.run([*llmswitch_exe(), "serve", "--help"], capture_output=True, text=True, check=False)
    return "--workers" in out.stdout
