"""P1 (``import botwire`` over a bare interpreter) and P6 (a cold invocation), in fresh processes.

Baselines, measured in the same run and interleaved with the figures: ``python -c pass``,
``import httpx``, and PyPI's ``botwire==0.2.1`` (the original client) installed in its own
throwaway venv.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import Row, Settings, clean_env, interleaved, log, median, process_times, server

__all__ = ["p1_import", "p6_cold"]

OLD_VERSION = "0.2.1"


def measure(
    cases: dict[str, list[str]], env: dict[str, str], runs: int
) -> tuple[dict[str, float], dict[str, float], dict[str, list[tuple[float, float]]]]:
    """Median wall and CPU ms of each command, interleaved over ``runs`` rounds."""
    for argv in cases.values():  # warm the page cache and the .pyc files
        process_times(argv, env)
    samples = interleaved({k: (lambda a=a: process_times(a, env)) for k, a in cases.items()}, runs)
    wall = {k: median([w for w, _ in v]) for k, v in samples.items()}
    cpu = {k: median([c for _, c in v]) for k, v in samples.items()}
    return wall, cpu, samples


@contextlib.contextmanager
def old_botwire() -> Iterator[str | None]:
    """The interpreter of a throwaway venv holding PyPI ``botwire==0.2.1`` (None if it fails)."""
    with tempfile.TemporaryDirectory(prefix="botwire-old-") as tmp:
        venv = Path(tmp) / "venv"
        base = getattr(sys, "_base_executable", sys.executable)
        try:
            subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
            py = str(venv / "bin" / "python")
            subprocess.run(
                [
                    py,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    f"botwire=={OLD_VERSION}",
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            log(f"  could not install botwire=={OLD_VERSION}: {exc}")
            yield None
            return
        yield py


def p1_import(settings: Settings, old_py: str | None) -> list[Row]:
    py = sys.executable
    env = clean_env()
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "import botwire": [py, "-c", "import botwire"],
        "from botwire import Memory": [py, "-c", "from botwire import Memory"],
        "import httpx": [py, "-c", "import httpx"],
    }
    if old_py:
        cases["0.2.1: python -c pass"] = [old_py, "-c", "pass"]
        cases["0.2.1: import botwire"] = [old_py, "-c", "import botwire"]
    runs = 15 if settings.quick else 40
    wall, cpu, samples = measure(cases, env, runs)
    details = {"median_wall_ms": wall, "median_cpu_ms": cpu, "runs": runs, "samples": samples}

    def over(name: str, base: str = "python -c pass") -> tuple[float, float]:
        return cpu[name] - cpu[base], wall[name] - wall[base]

    c, w = over("import botwire")
    rows = [
        Row(
            "P1",
            "`import botwire` over a bare interpreter (CPU ms)",
            c,
            "ms",
            f"`python -c pass` = {cpu['python -c pass']:.1f} ms CPU",
            "≤ 5 ms",
            c <= 5.0,
            note=f"wall: {w:+.1f} ms over {wall['python -c pass']:.1f} ms",
            details=details,
        )
    ]
    c, w = over("from botwire import Memory")
    rows.append(
        Row(
            "P1b",
            "`from botwire import Memory` over bare (CPU ms)",
            c,
            "ms",
            "`python -c pass`",
            "≤ 5 ms",
            c <= 5.0,
            note=f"wall: {w:+.1f} ms",
        )
    )
    c, w = over("import httpx")
    rows.append(
        Row(
            "P1c",
            "`import httpx` over bare (CPU ms; context)",
            c,
            "ms",
            "`python -c pass`",
            "—",
            None,
            note=f"wall: {w:+.1f} ms",
        )
    )
    if old_py:
        c, w = over("0.2.1: import botwire", "0.2.1: python -c pass")
        rows.append(
            Row(
                "P1d",
                f"PyPI botwire=={OLD_VERSION}: `import botwire` over bare (CPU ms; context)",
                c,
                "ms",
                "its own venv's `python -c pass`",
                "—",
                None,
                note=f"wall: {w:+.1f} ms",
            )
        )
    return rows


COLD = (
    "from botwire import Memory\n"
    "m = Memory('cold-ns')\n"
    "m.get('profile')\n"
    "m.set('profile', {'seen': True})\n"
)
# The floor under P6: the same two requests written by hand on the interpreter's _socket, with
# no client library at all (no retries, no checks, no JSON decoding): what the server and the
# protocol cost a fresh process whatever the client does.
COLD_FLOOR = (
    "import _socket, os\n"
    "host, port = os.environ['BOTWIRE_URL'].rsplit('/', 1)[-1].split(':')\n"
    "s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n"
    "s.connect((host, int(port)))\n"
    "s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)\n"
    "def ask(req):\n"
    "    s.sendall(req)\n"
    "    data = b''\n"
    "    while b'\\r\\n\\r\\n' not in data:\n"
    "        data += s.recv(65536)\n"
    "    head, _, body = data.partition(b'\\r\\n\\r\\n')\n"
    "    size = int(head.lower().split(b'content-length:')[1].split(b'\\r\\n')[0])\n"
    "    while len(body) < size:\n"
    "        body += s.recv(65536)\n"
    "    return body\n"
    "path = b'/v1/namespaces/cold-ns/keys/profile'\n"
    "ask(b'GET ' + path + b' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n')\n"
    'body = b\'{"value":{"seen":true}}\'\n'
    "ask(b'PUT ' + path + b' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n'\n"
    "    + b'Content-Type: application/json\\r\\n'\n"
    "    + b'Content-Length: ' + str(len(body)).encode() + b'\\r\\n\\r\\n' + body)\n"
)
COLD_OLD = (
    "from botwire import Memory\n"
    "import os\n"
    "m = Memory('cold-ns', base_url=os.environ['BOTWIRE_URL'])\n"
    "m.get('profile')\n"
    "m.set('profile', {'seen': True})\n"
)


def p6_cold(settings: Settings, old_py: str | None) -> list[Row]:
    py = sys.executable
    with server() as srv:
        env = clean_env(BOTWIRE_URL=srv.url)
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "import botwire": [py, "-c", "import botwire"],
            "cold invocation": [py, "-c", COLD],
            "protocol floor": [py, "-c", COLD_FLOOR],
        }
        if old_py:
            cases["0.2.1: cold invocation"] = [old_py, "-c", COLD_OLD]
        runs = 15 if settings.quick else 40
        wall, cpu, samples = measure(cases, env, runs)
    bare = "python -c pass"
    ratio = wall["cold invocation"] / wall[bare]
    rows = [
        Row(
            "P6",
            "cold invocation (fresh process, import, get + set over HTTP)",
            ratio,
            "×",
            f"`python -c pass` = {wall[bare]:.1f} ms",
            "≤ 1.3×",
            ratio <= 1.3,
            note=f"wall {wall['cold invocation']:.1f} ms "
            f"(+{wall['cold invocation'] - wall[bare]:.1f}); CPU "
            f"{cpu['cold invocation'] / cpu[bare]:.2f}× "
            f"(+{cpu['cold invocation'] - cpu[bare]:.1f} ms)",
            details={
                "median_wall_ms": wall,
                "median_cpu_ms": cpu,
                "runs": runs,
                "samples": samples,
            },
        )
    ]
    floor = wall["protocol floor"] / wall[bare]
    rows.append(
        Row(
            "P6c",
            "the floor under P6: the same GET + PUT by hand on `_socket`, no client (context)",
            floor,
            "×",
            "`python -c pass`",
            "—",
            None,
            note=f"wall {wall['protocol floor']:.1f} ms "
            f"(+{wall['protocol floor'] - wall[bare]:.1f}); botwire adds "
            f"{wall['cold invocation'] - wall['protocol floor']:.1f} ms to it",
        )
    )
    if old_py:
        old = wall["0.2.1: cold invocation"] / wall[bare]
        rows.append(
            Row(
                "P6b",
                f"PyPI botwire=={OLD_VERSION} cold invocation, same server "
                "(compat routes; context)",
                old,
                "×",
                "`python -c pass`",
                "—",
                None,
                note=f"wall {wall['0.2.1: cold invocation']:.1f} ms; CPU "
                f"{cpu['0.2.1: cold invocation'] / cpu[bare]:.2f}×",
            )
        )
    return rows


if __name__ == "__main__":
    s = Settings(quick=True, rounds=3, out=Path(os.devnull))
    with old_botwire() as old:
        for row in p1_import(s, old) + p6_cold(s, old):
            print(row.id, row.figure, f"{row.value:.2f}{row.unit}", row.baseline, row.met, row.note)
