"""Draw the scaling curves of docs/performance.md from benchmark figures (``./scripts/bench --plot``).

- docs/performance-burst.png: fires at one instant against the time to answer (p50, p99, max), with the
  rate answered and the fires the provider gave up on, from
  ``benchmarks/burst.py --json``;
- docs/performance-scale.png: jobs against seconds and peak MB for validate, plan and apply, from
  ``benchmarks/scale.py --json`` when that benchmark exists (skipped, with a note, when it does not).

    python benchmarks/plot.py [--burst FILE] [--scale FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path | None) -> Any:
    if path is None or not path.exists():
        return None
    return json.loads(path.read_text())


def plot_burst(rows: list[dict[str, Any]], out: Path) -> None:
    """One curve pair (p50, p99) per set-up: one serve on SQLite, three on PostgreSQL."""
    import matplotlib.pyplot as plt

    rows = sorted((r for r in rows if r.get("max") and not r.get("sweep")), key=lambda r: r["n"])
    sizes = sorted({r["n"] for r in rows})
    fig, ax = plt.subplots(figsize=(5.6, 3.4), dpi=80)
    setups = {
        "sqlite": "one serve, SQLite",
        "postgres": "three serve, PostgreSQL",
    }
    for ledger, name in setups.items():
        mine = [r for r in rows if r.get("ledger", "sqlite") == ledger]
        if not mine:
            continue
        xs = [r["n"] for r in mine]
        line = ax.plot(xs, [r["p99"] for r in mine], "s-", label=f"{name}: p99")[0]
        ax.plot(xs, [r["p50"] for r in mine], "o:", color=line.get_color(), label=f"{name}: p50")
        for r in mine:
            note = f"{r['answered'] / r['max']:.0f}/s"
            if r["answered"] < r["n"]:
                note += f", {r['n'] - r['answered']} dead"
            ax.annotate(
                note, (r["n"], r["p99"]), fontsize=7, textcoords="offset points", xytext=(-10, 6)
            )
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.axhline(10, color="grey", linewidth=0.8)
    ax.set_xlabel("fires at one instant")
    ax.set_ylabel("seconds from T to durable claim")
    ax.set_title("Burst into serve: every job armed at one instant", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_scale(rows: list[dict[str, Any]], out: Path) -> None:
    """``rows``: {"command": "validate"|"plan"|"apply", "jobs": N, "seconds": S, "peak_mb": MB}."""
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_m) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    for command in sorted({r["command"] for r in rows}):
        mine = sorted((r for r in rows if r["command"] == command), key=lambda r: r["jobs"])
        jobs = [r["jobs"] for r in mine]
        ax_s.plot(jobs, [r["seconds"] for r in mine], "o-", label=command)
        ax_m.plot(jobs, [r.get("peak_mb") for r in mine], "o-", label=command)
    for ax, label in ((ax_s, "seconds"), (ax_m, "peak RSS, MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("jobs")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=Path, default=None)
    parser.add_argument("--scale", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[dev]'") from None
    burst = _load(args.burst)
    if burst:
        plot_burst(burst, args.out / "performance-burst.png")
        print(f"wrote {args.out / 'performance-burst.png'}")
    else:
        print("no burst figures: run benchmarks/burst.py --json FILE first")
    scale = _load(args.scale)
    if scale:
        plot_scale(scale, args.out / "performance-scale.png")
        print(f"wrote {args.out / 'performance-scale.png'}")
    else:
        print("no scale figures (benchmarks/scale.py --json FILE): the scaling plot is skipped")


if __name__ == "__main__":
    main()
