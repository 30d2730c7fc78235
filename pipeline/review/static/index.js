// The videos: drawn at once from /api/videos, the "stale stages" column filled when `dvc status` answers.
import { api, el, load, shareBar } from "/static/common.js";

const { colours, videos: rows } = await load("/videos", "the videos");
let order = { key: "mean_confidence", up: true }; // unannotated, least sure first
let stale = () => "checking…";

function sortValue(row, key) {
  const v = row[key];
  return v === null || v === undefined ? Infinity : v;
}

function draw() {
  const sorted = [...rows].sort((a, b) => {
    const [x, y] = [sortValue(a, order.key), sortValue(b, order.key)];
    return (x < y ? -1 : x > y ? 1 : 0) * (order.up ? 1 : -1);
  });
  document.querySelector("#videos tbody").replaceChildren(...sorted.map((r) => el("tr", { "data-testid": "video-row" },
    el("td", {}, el("a", { href: `/videos/${encodeURIComponent(r.key)}` }, r.key)),
    el("td", {}, r.climb), el("td", {}, r.view), el("td", {}, r.status),
    el("td", {}, r.duration_s === null ? "-" : `${r.duration_s} s`),
    el("td", r.person_warning ? { class: "low-share", title: r.person_warning, "data-testid": "low-share" } : {},
      r.person_share === null ? "-" : `${(100 * r.person_share).toFixed(0)} %${r.person_warning ? " ⚠ low" : ""}`),
    el("td", {}, shareBar(r.phase_shares, colours)),
    el("td", {}, r.mean_confidence === null ? "-" : r.mean_confidence.toFixed(3)),
    el("td", {}, ...Object.entries(r.accuracy).map(([h, a]) => el("div", {}, `${h}: ${a.toFixed(1)} %`)),
      Object.keys(r.accuracy).length ? "" : "-"),
    el("td", { class: "wrap", "data-testid": "stale" }, stale(r.key)))));
}

for (const th of document.querySelectorAll("th[data-sort]")) {
  th.addEventListener("click", () => {
    order = { key: th.dataset.sort, up: order.key === th.dataset.sort ? !order.up : true };
    draw();
  });
}
draw();
try {
  const answer = await api("/stale");
  stale = answer.stale === null ? () => `unknown: ${answer.reason}` : (key) => key in answer.stale ? answer.stale[key].join(", ") || "up to date" : "unknown: added since";
} catch (e) {
  stale = () => `unknown: ${e.message}`;
}
draw();
