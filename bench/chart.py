"""The PNG chart of BENCHMARKS.md (matplotlib, the ``bench`` extra; ``make bench`` installs it)."""

from __future__ import annotations

from pathlib import Path


def render(bars: list[tuple[str, float, str]], path: Path, title: str) -> bool:
    """Horizontal bars (label, events/s, group colour key) → ``path``; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a build machine
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colours = {"sluice": "#1f77b4", "debezium": "#d62728", "limit": "#7f7f7f"}
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(bars) + 1.4), dpi=110)
    labels = [b[0] for b in bars][::-1]
    values = [b[1] for b in bars][::-1]
    ax.barh(labels, values, color=[colours.get(b[2], "#2ca02c") for b in bars][::-1])
    ax.set_xscale("log")
    ax.set_xlabel("events (rows) per second, log scale")
    ax.set_title(title, fontsize=10)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    # From 1,000: on a log axis, bars starting at the smallest value would exaggerate gaps.
    ax.set_xlim(left=min(1000, min(values) / 2), right=max(values) * 4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True
