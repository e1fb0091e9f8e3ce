"""``report.html``: one self-contained page per run (no network, every picture embedded).

Contents: the run's settings; a metrics table (one row per category, plus the aggregate when
there are several); then per category the ROC curve, the PRO curve and the score histogram,
any notes (undefined metrics and why), and the review overlays (worst-scored normal images,
hardest anomalous images) with their scores and labels. Pictures are PNG ``data:`` URIs.
"""

from __future__ import annotations

import base64
import html
from typing import Any, Mapping, Sequence

import attrs

from pyimgano.workbench.review import ReviewImage

__all__ = ["CategorySection", "render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}h3{font-size:15px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.name,th.name{text-align:left}.plots img{margin:4px;border:1px solid #ddd}
.review figure{display:inline-block;margin:6px;vertical-align:top}
.review figcaption{font-size:12px;max-width:780px;word-break:break-all}
.note{color:#8a5300;font-size:13px}.settings{font-size:13px}code{font-size:12px}
"""

_COLUMNS = (
    ("image AUROC", "image_auroc"), ("AP", "average_precision"), ("precision", "precision"),
    ("recall", "recall"), ("F1", "f1"), ("pixel AUROC", "pixel_auroc"), ("AUPRO@0.3", "aupro"),
)
_PLOT_TITLES = {"plots/roc.png": "ROC", "plots/pro.png": "PRO", "plots/score_histogram.png": "score histogram"}
_REVIEW_TITLES = {
    "worst_normal": "Worst-scored normal images (highest scores: the nearest to a false alarm)",
    "hardest_anomalous": "Hardest anomalous images (lowest scores: the nearest to a miss)",
}


@attrs.frozen(eq=False)
class CategorySection:
    """What the page shows for one category."""

    name: str
    metrics: Mapping[str, Any]
    timing: Mapping[str, Any]
    plots: Mapping[str, bytes]  # {"plots/roc.png": PNG, ...}
    review: Sequence[ReviewImage]
    notes: Sequence[str] = ()


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _img(png: bytes, alt: str, width: int | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"{size}>'


def _metrics_row(name: str, metrics: Mapping[str, Any], timing: Mapping[str, Any]) -> str:
    cells = [f'<td class="name">{html.escape(name)}</td>']
    cells += [f"<td>{_fmt(metrics.get(key))}</td>" for _, key in _COLUMNS]
    confusion = metrics.get("confusion") or {}
    cells += [f"<td>{_fmt(confusion.get(k))}</td>" for k in ("tp", "fp", "tn", "fn")]
    cells.append(f"<td>{_fmt(metrics.get('threshold'), 6)}</td>")
    cells.append(f"<td>{_fmt(timing.get('fit_s'), 1)}</td><td>{_fmt(timing.get('images_per_s'), 2)}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _table(sections: Sequence[CategorySection], aggregate: Mapping[str, Any] | None) -> str:
    head = ['<th class="name">category</th>'] + [f"<th>{t}</th>" for t, _ in _COLUMNS]
    head += ["<th>TP</th><th>FP</th><th>TN</th><th>FN</th><th>threshold</th><th>fit s</th><th>images/s</th>"]
    rows = [_metrics_row(s.name, s.metrics, s.timing) for s in sections]
    if aggregate is not None and len(sections) > 1:
        mean = dict(aggregate.get("mean") or {})
        mean["confusion"] = aggregate.get("confusion")
        rows.append(_metrics_row(f"mean of {len(sections)}", mean, {}))
    return "<table><tr>" + "".join(head) + "</tr>" + "".join(rows) + "</table>"


def _review(images: Sequence[ReviewImage]) -> str:
    parts = []
    for kind, title in _REVIEW_TITLES.items():
        chosen = [r for r in images if r.kind == kind]
        if not chosen:
            continue
        parts.append(f"<h3>{html.escape(title)}</h3><div class=\"review\">")
        for r in chosen:
            label = "no threshold" if r.label is None else ("labelled anomalous" if r.label else "labelled normal")
            caption = f"score {r.score:.5g} ({label}); {html.escape(r.defect_type)}: {html.escape(r.path)}"
            parts.append(f"<figure>{_img(r.png, r.path)}<figcaption>{caption}</figcaption></figure>")
        parts.append("</div>")
    if parts:
        parts.insert(0, "<p class=\"settings\">Panels: image | anomaly map (one colour scale per category) | "
                        "ground-truth mask.</p>")
    return "".join(parts)


def _section(s: CategorySection) -> str:
    out = [f"<h2>Category {html.escape(s.name)}</h2>"]
    if s.plots:
        out.append('<div class="plots">' + "".join(_img(png, _PLOT_TITLES.get(k, k)) for k, png in sorted(s.plots.items()))
                   + "</div>")
    out += [f'<p class="note">{html.escape(n)}</p>' for n in s.notes]
    out.append(_review(s.review))
    return "".join(out)


def render_html(run: Mapping[str, Any], sections: Sequence[CategorySection], *, plots_note: str | None = None) -> str:
    """The page for a run report (``report.json`` body) and its category sections."""
    settings = [
        ("recipe", run.get("recipe")), ("dataset", run.get("dataset")), ("model", run.get("model")),
        ("status", run.get("status")), ("written", run.get("timestamp_utc")),
        ("pyimgano", run.get("pyimgano_version")),
    ]
    items = "".join(f"<li><b>{k}</b>: <code>{html.escape(str(v))}</code></li>" for k, v in settings if v is not None)
    body = [
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>pyimgano-train report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>pyimgano-train report</h1>",
        f'<ul class="settings">{items}</ul>',
        "<p class=\"settings\">Labels: score &gt; threshold is anomalous; the threshold is calibrated on held-out "
        "normal training images. Pixel metrics on maps and masks at most 256 px on their longer side.</p>",
        _table(sections, run.get("aggregate")),
    ]
    if plots_note:
        body.append(f'<p class="note">{html.escape(plots_note)}</p>')
    body += [_section(s) for s in sections]
    body.append("</body></html>\n")
    return "".join(body)
