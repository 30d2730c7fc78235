"""The competition report, per climb and view, as coaches read it: from the truth where a video is annotated, from
the model's prediction otherwise (each row says which). The figures are `predict`'s report.json figures
(`pipeline.views.phases.report`) over the same labels."""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.annotations.segments import LabelPolicy
from pipeline.core import params
from pipeline.review.data import colours, entry, manifest, model_of, predicted
from pipeline.views import downloads
from pipeline.views.downloads import csv_text  # noqa: F401 - the server's CSV download
from pipeline.views.look import video_frames
from pipeline.views.phases import report as phase_report

COLUMNS = ["climb", "view", "video", "source", "model", "duration_s", "attempts", "time_to_first_attempt_s",
           "reading_before_attempt_s", "brushing_total_s"]


def rows(p: params.Params, root: Path) -> list[dict]:
    """One row per video that has labels or a prediction: the report's figures, seconds per phase (frames with
    nobody in them are the default class's in a prediction) and the bundle that made a prediction."""
    out = []
    for key in [*p.videos, *p.unannotated]:
        if manifest(root, key) is None:
            continue
        df, info = video_frames(p, key, root)
        if "label" in df:
            labels, source, model = list(df["label"]), "truth", None
        elif (guess := predicted(p, key, root)) is not None:
            labels, source, model = list(guess["label"]), "prediction", model_of(key, root)
        else:
            continue
        person = list(df["person"]) if "person" in df else []
        r = phase_report(labels, person, fps=info["fps"], duration=info["duration_s"])
        v = entry(p, key)
        out.append({
            "climb": v.climb or "", "view": v.view or "", "video": key, "source": source, "model": model,
            "duration_s": r["duration_s"], "attempts": r["attempts"],
            "time_to_first_attempt_s": r["time_to_first_attempt_s"],
            "reading_before_attempt_s": r["reading_before_attempt_s"],
            "brushing_total_s": r["phases"].get("brushing", {}).get("total_s", 0.0),
            "phases_s": {c: r["phases"].get(c, {}).get("total_s", 0.0) for c in p.labels.classes},
        })
    return sorted(out, key=lambda r: (r["climb"], r["view"], r["video"]))


def table(report_rows: list[dict], classes: list[str]) -> pd.DataFrame:
    """The report as one flat table (CSV and .xlsx): reading times joined with `;`, one column per phase."""
    flat = [{**{c: r[c] for c in COLUMNS},
             "reading_before_attempt_s": "; ".join(f"{s:g}" for s in r["reading_before_attempt_s"]),
             **{f"{c}_s": r["phases_s"][c] for c in classes}} for r in report_rows]
    return pd.DataFrame(flat, columns=[*COLUMNS, *(f"{c}_s" for c in classes)])


def xlsx_bytes(frame: pd.DataFrame) -> bytes:
    """The report table as an .xlsx download: names anyone typed are text, never formulas."""
    return downloads.xlsx_bytes(frame, sheet="report")


def script_json(value: object) -> str:
    """`value` as JSON that stays inert inside a <script> element: no `<`, `>` or `&` (a name holding
    `<!--<script>` or `</script>` would end or change the element), each written as its \\u escape."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html_page(report_rows: list[dict], classes: Sequence[str], *, default: str = LabelPolicy.default,
              title: str = "Competition report") -> str:
    """A standalone page to share (no server): the table, per video a bar of its time per phase and the model
    that made a prediction, and the rows as JSON."""
    colour = colours(classes, default)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["climb", "view", "video", "source", "attempts",
                                                           "first attempt (s)", "reading before attempts (s)",
                                                           "brushing (s)", "time per phase"])
    body = []
    for r in report_rows:
        total = sum(r["phases_s"].values()) or 1.0
        bar = "".join(f'<span class="seg" title="{html.escape(c)} {s:g} s" style="width:{100 * s / total:.2f}%;'
                      f'background:{colour[c]}"></span>' for c, s in r["phases_s"].items() if s > 0)
        first = "-" if r["time_to_first_attempt_s"] is None else f"{r['time_to_first_attempt_s']:g}"
        source = r["source"] if r["model"] is None else f"{r['source']} of {r['model']}"
        cells = [r["climb"], r["view"], r["video"], source, str(r["attempts"]), first,
                 ", ".join(f"{s:g}" for s in r["reading_before_attempt_s"]) or "-", f"{r['brushing_total_s']:g}"]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + f'<td><div class="bar">{bar}'
                    "</div></td></tr>")
    legend = " ".join(f'<span class="key"><span class="seg" style="background:{colour[c]}"></span>'
                      f"{html.escape(c)}{' (no phase; in a prediction: nobody in frame)' if c == default else ''}"
                      "</span>" for c in classes)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}"
            ".bar{display:flex;width:320px;height:14px;background:#eee}.seg{display:inline-block;height:14px}"
            ".key .seg{width:14px;margin:0 4px 0 12px;vertical-align:middle}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Source: <b>truth</b> where a video is annotated, the model's "
            f"<b>prediction</b> otherwise (which model: in its row).</p><p>{legend}</p><table><thead><tr>{head}</tr>"
            "</thead><tbody>" + "".join(body) + "</tbody></table><script type='application/json' id='data'>"
            f"{script_json(report_rows)}</script></body></html>")
