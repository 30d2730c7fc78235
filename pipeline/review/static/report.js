import { el, load, shareBar } from "/static/common.js";

const { classes, colours, rows } = await load("/report", "the report");
document.getElementById("legend").replaceChildren(...classes.map((c) => el("span", {}, el("i", { style: { background: colours[c] } }), c)));
document.getElementById("rows").replaceChildren(...rows.map((r) => {
  const total = Object.values(r.phases_s).reduce((a, b) => a + b, 0) || 1;
  const shares = Object.fromEntries(Object.entries(r.phases_s).map(([c, s]) => [c, s / total]));
  return el("tr", { "data-testid": "report-row", "data-video": r.video },
    el("td", {}, r.climb), el("td", {}, r.view), el("td", {}, el("a", { href: `/videos/${encodeURIComponent(r.video)}` }, r.video)),
    el("td", {}, r.model ? `${r.source} of ${r.model}` : r.source), el("td", {}, String(r.attempts)),
    el("td", {}, r.time_to_first_attempt_s === null ? "-" : String(r.time_to_first_attempt_s)),
    el("td", {}, r.reading_before_attempt_s.join(", ") || "-"), el("td", {}, String(r.brushing_total_s)),
    el("td", {}, shareBar(shares, colours)));
}));
