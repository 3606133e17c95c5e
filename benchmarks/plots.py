"""PNG plots of a ``benchmarks/run.py`` result (matplotlib, headless)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["draw"]


def _rows(result: dict[str, Any], rid: str) -> list[dict[str, Any]]:
    return [r for r in result["rows"] if r["id"] == rid]


def _details(result: dict[str, Any], rid: str, key: str) -> Any:
    for r in _rows(result, rid):
        if key in r.get("details", {}):
            return r["details"][key]
    return None


def _cpu_wall_bars(ax: Any, cpu: dict[str, float], wall: dict[str, float]) -> None:
    """One pair of horizontal bars (CPU, wall ms) per fresh-process case, first case on top."""
    names = list(wall)
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], [cpu[n] for n in names], 0.4, label="CPU ms")
    ax.barh([i - 0.2 for i in y], [wall[n] for n in names], 0.4, label="wall ms")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()


def draw(result: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[Path] = []
    note = "quick run" if result.get("quick") else "full run"
    load = result.get("machine", {}).get("loadavg_at_end")
    sub = f"{note}; medians; {result.get('machine', {}).get('cpus')} CPUs, shared machine" + (
        f" (load {load[0]:.1f})" if load else ""
    )

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    # P1 + P6: fresh processes
    wall1 = _details(result, "P1", "median_wall_ms")
    cpu1 = _details(result, "P1", "median_cpu_ms")
    wall6 = _details(result, "P6", "median_wall_ms")
    if wall1 and cpu1:
        fig, axes = plt.subplots(1, 2 if wall6 else 1, figsize=(12 if wall6 else 7, 4.2))
        axes = axes if wall6 else [axes]
        ax = axes[0]
        _cpu_wall_bars(ax, cpu1, wall1)
        ax.set_xscale("log")
        ax.set_xlabel("ms per fresh process (log)")
        ax.set_title("P1: import time")
        ax.legend()
        if wall6:
            cpu6 = _details(result, "P6", "median_cpu_ms")
            ax = axes[1]
            _cpu_wall_bars(ax, cpu6, wall6)
            ax.set_xlabel("ms per fresh process")
            ax.set_title("P6: cold invocation (import + get + set over HTTP)")
            ax.legend()
        fig.suptitle(sub, fontsize=8, y=0.02)
        save(fig, "p1_p6_startup.png")

    # P3: requests per second
    p3 = _rows(result, "P3")
    res3 = p3[0]["details"] if p3 else None
    if res3:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        groups = [g for g in ("SQLite", "SQLite (thread pool)", "PostgreSQL") if g in res3]
        routes = ["no-op", "GET", "SET", "APPEND"]
        width = 0.8 / max(1, len(groups) + (1 if res3.get("webdis") else 0))
        for gi, g in enumerate(groups):
            vals = [res3[g][r]["rps"] for r in routes]
            bars = ax.bar([i + gi * width for i in range(len(routes))], vals, width, label=g)
            for b, r in zip(bars, routes, strict=True):
                ax.annotate(
                    f"{res3[g][r]['ratio']:.2f}×",
                    (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        web = res3.get("webdis")
        if web:
            gi = len(groups)
            vals = [0, web["GET"]["rps"], web["SET"]["rps"], web["APPEND (RPUSH)"]["rps"]]
            ax.bar(
                [i + gi * width for i in range(1, 4)],
                vals[1:],
                width,
                label="webdis + Redis (context)",
                color="#999999",
            )
        ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(routes))], routes)
        ax.set_ylabel("requests / second")
        ax.set_title(
            f"P3: one server process, {res3.get('generator')}; "
            "labels: fraction of the same backend's no-op"
        )
        ax.legend(fontsize=8)
        fig.suptitle(sub, fontsize=8, y=0.02)
        save(fig, "p3_rps.png")

    # P4: chat turn
    bpt = _details(result, "P4", "bytes_per_turn")
    upt = _details(result, "P4", "us_per_turn")
    growth = _details(result, "P4", "growth_us")
    if bpt and upt:
        labels = {
            "append": "`append` (botwire)",
            "tail_append": "`tail(20)` + `append`",
            "read_write": "GET whole list + PUT it back (original client's pattern)",
        }
        fig, axes = plt.subplots(1, 3 if growth else 2, figsize=(15 if growth else 10, 4.2))
        for name, label in labels.items():
            xs = sorted(int(k) for k in bpt[name])
            axes[0].plot(
                xs,
                [bpt[name][str(x) if str(x) in bpt[name] else x] for x in xs],
                marker="o",
                label=label,
            )
            axes[1].plot(
                xs,
                [upt[name][str(x) if str(x) in upt[name] else x] / 1000 for x in xs],
                marker="o",
                label=label,
            )
        axes[0].set(
            xscale="log",
            yscale="log",
            xlabel="history length (turns)",
            ylabel="bytes on the wire per turn",
            title="P4: bytes per chat turn",
        )
        axes[1].set(
            xscale="log",
            yscale="log",
            xlabel="history length (turns)",
            ylabel="ms per turn",
            title="P4: time per chat turn",
        )
        axes[0].legend(fontsize=7)
        if growth:
            win = 50
            smooth = [
                sorted(growth[i : i + win])[win // 2] / 1000
                for i in range(0, len(growth) - win + 1, win)
            ]
            axes[2].plot([i * win + win // 2 for i in range(len(smooth))], smooth)
            axes[2].set(
                xlabel="turn number",
                ylabel="ms per `append` (median of 50)",
                title="P4: one history, turn by turn",
                ylim=(0, max(smooth) * 1.3),
            )
        fig.suptitle(sub, fontsize=8, y=0.02)
        save(fig, "p4_chat_turn.png")

    # P2 + P5: latencies
    med2 = _details(result, "P2", "median_us")
    med5 = _details(result, "P5", "median_us")
    if med2 or med5:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        names, vals = [], []
        if med2:
            for k, label in (
                ("noop", "P2 baseline: http.client GET /_noop"),
                ("http.client key", "http.client GET of the key"),
                ("Memory.get", "P2: Memory.get"),
            ):
                names.append(label)
                vals.append(med2[k])
        if med5:
            keys = _details(result, "P5", "keys")
            names += ["P5 baseline: Memory.get, 1,000 keys", f"P5: Memory.get, {keys:,} keys"]
            vals += [med5["1,000 keys"], med5["big"]]
        ax.barh(range(len(names)), vals)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel("µs per request, warm keep-alive connection, loopback")
        ax.set_title("P2 / P5: warm reads")
        fig.suptitle(sub, fontsize=8, y=0.02)
        save(fig, "p2_p5_latency.png")
    return made


if __name__ == "__main__":
    path = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else (Path(__file__).parent / "results" / "latest.json")
    )
    for p in draw(json.loads(path.read_text()), path.parent):
        print(p)
