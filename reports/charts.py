"""Charts as SVG with Chinese labels: matplotlib with Debian's Noto Sans CJK, text as paths
(so the PDF needs no font for them and they print the same everywhere)."""
from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
_lock = threading.Lock()          # matplotlib's font cache is not thread-safe
_font: font_manager.FontProperties | None = None


def _cjk() -> font_manager.FontProperties:
    global _font
    if _font is None:
        if not CJK_FONT.exists():
            raise RuntimeError(f"{CJK_FONT} missing: install the Debian package fonts-noto-cjk")
        _font = font_manager.FontProperties(fname=str(CJK_FONT))
    return _font


def bar_chart(labels: list[str], values: list[float], title: str = "",
              horizontal: bool = False, ylabel: str = "") -> str:
    """A small bar chart as an SVG data: URI (empty data: an empty string)."""
    if not values:
        return ""
    with _lock:
        font = _cjk()
        fig = Figure(figsize=(6.4, 2.6 if not horizontal else 0.35 * len(values) + 0.9))
        ax = fig.add_subplot()
        positions = list(range(len(values)))
        if horizontal:
            ax.barh(positions, values, color="#2b6cb0")
            ax.set_yticks(positions, labels, fontproperties=font, fontsize=8)
            ax.invert_yaxis()
        else:
            ax.bar(positions, values, color="#2b6cb0")
            step = max(1, len(labels) // 16)
            ax.set_xticks(positions[::step], labels[::step], fontproperties=font, fontsize=7,
                          rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center")
        ax.tick_params(labelsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if ylabel:
            ax.set_ylabel(ylabel, fontproperties=font, fontsize=8)
        if title:
            ax.set_title(title, fontproperties=font, fontsize=9)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    # A data: URI for an <img>: WeasyPrint draws it with its SVG renderer (inline SVG's
    # style attributes would go through the HTML CSS parser and be dropped with warnings).
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue().encode()).decode()


matplotlib.rcParams["svg.fonttype"] = "path"
matplotlib.rcParams["svg.hashsalt"] = "watchkeeper"   # same data, same SVG
