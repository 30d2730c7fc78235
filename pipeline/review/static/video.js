// One video: the frames stage's JPG at the playhead, its tracks aligned in time, and the editable track.
// Segments are {label, start, end} in frames (end exclusive) tiling [0, frames); the API takes seconds.
import { api, el, load } from "/static/common.js";
import { Edits } from "/static/edits.js";

const key = decodeURIComponent(location.pathname.split("/").pop());
document.getElementById("title").textContent = key;
const info = await load(`/videos/${encodeURIComponent(key)}`, `the video '${key}'`);
const { fps, frames: n, classes, colours } = info;
let version = info.version; // of the reviewed sheet this page started from (null: none yet): a save names it
const draftKey = `boulderseg-review:${key}`;
const base = info.tracks.truth || info.tracks.prediction || Object.values(info.tracks)[0]
  || [{ label: info.default, start: 0, end: n }];
// A draft is used only over the segmentation it was made from (a save elsewhere, or new frames, void it).
const runsOf = (segments) => segments.reduce((out, s) => {
  if (out.at(-1)?.label === s.label) out.at(-1).end = s.end;
  else out.push({ label: s.label, start: s.start, end: s.end });
  return out;
}, []);
let fingerprint = JSON.stringify([n, base]);
const stored = JSON.parse(localStorage.getItem(draftKey) || "null");
const draft = stored && stored.base === fingerprint ? stored : null;
const edits = new Edits(draft ? draft.segments : base.map((s) => ({ ...s })));
let frame = 0, playing = false, dirty = Boolean(draft), saved = Boolean(info.tracks.truth);

const img = document.getElementById("frame"), canvas = document.getElementById("box");
const tracks = document.getElementById("tracks"), playhead = document.getElementById("playhead");
const message = document.getElementById("message");
const cache = new Map();
const src = (i) => `/api/videos/${encodeURIComponent(key)}/frames/${i}.jpg`;

function preload(from, count) {
  for (let i = from; i < Math.min(n, from + count); i++) {
    if (!cache.has(i)) { const image = new Image(); image.src = src(i); cache.set(i, image); }
  }
  for (const i of cache.keys()) if (i < from - 2 * fps || i > from + 4 * fps) cache.delete(i);
}

function drawBox() {
  const box = info.boxes?.[frame];
  canvas.width = img.clientWidth; canvas.height = img.clientHeight;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (!box || !img.naturalWidth) return;
  const s = img.clientWidth / img.naturalWidth;
  g.strokeStyle = "#ff0"; g.lineWidth = 2;
  g.strokeRect(box[0] * s, box[1] * s, (box[2] - box[0]) * s, (box[3] - box[1]) * s);
}

function show(i) {
  frame = Math.max(0, Math.min(n - 1, i));
  const ready = cache.get(frame);
  if (!playing || (ready && ready.complete)) img.src = src(frame);
  preload(frame, playing ? 2 * fps : 3);
  const label = edits.labelAt(frame);
  document.getElementById("clock").textContent =
    `frame ${frame} / ${n - 1} · ${(frame / fps).toFixed(2)} s · ${label}${dirty ? " · unsaved" : ""}`;
  playhead.style.left = `calc(190px + (100% - 190px) * ${(frame + 0.5) / n})`;
  window.review.frame = frame;
}

function segmentsOf(runs, track) {
  return runs.map((s) => el("div", { class: "segment", "data-testid": "segment", "data-label": s.label,
    title: `${s.label} ${(s.start / fps).toFixed(2)}-${(s.end / fps).toFixed(2)} s`,
    style: { left: `${100 * s.start / n}%`, width: `${100 * (s.end - s.start) / n}%`, background: colours[s.label] || "#ccc" } }));
}

function track(name, testid, children, extra = {}) {
  const title = info.models?.[name] ? `${name}: ${info.models[name]}` : name;
  const node = el("div", { class: "track", "data-testid": testid, ...extra }, el("span", { class: "name", title }, name), ...children);
  node.addEventListener("mousedown", (e) => {
    if (e.target.classList.contains("handle")) return;
    const r = node.getBoundingClientRect();
    show(Math.floor((e.clientX - r.left) / r.width * n));
  });
  return node;
}

function editableTrack() {
  const node = track(`truth: ${dirty ? "editing" : saved ? "saved" : "not saved yet"}`, "track-truth",
    segmentsOf(edits.segments), { class: "track editable" });
  edits.segments.slice(1).forEach((s, i) => {
    const handle = el("div", { class: "handle", "data-testid": "boundary", style: { left: `${100 * s.start / n}%` } });
    handle.addEventListener("mousedown", (e) => drag(e, i + 1, node));
    node.append(handle);
  });
  return node;
}

function drag(event, index, node) {
  event.preventDefault();
  const r = node.getBoundingClientRect();
  let moved = false;
  const move = (e) => {
    if (!edits.moveBoundary(index, Math.round((e.clientX - r.left) / r.width * n), !moved)) return;
    moved = true; // one undo step per drag; no move, no change
    changed(false);
  };
  const up = () => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    if (moved) changed();
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
}

function curve(values) {
  const points = values.map((v, i) => `${(i + 0.5) / n * 1000},${(1 - v) * 100}`).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 1000 100");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.innerHTML = `<path d="M0 50H1000" stroke="#bbb" stroke-dasharray="4 4" vector-effect="non-scaling-stroke"/>
    <polyline fill="none" stroke="#333" stroke-width="2" vector-effect="non-scaling-stroke" points="${points}"/>`;
  return [svg, ...["1", "0.5", "0"].map((t, i) => el("span", { class: "tick", "data-testid": "tick", style: { top: `${50 * i}%` } }, t))];
}

function drawTracks() {
  const rows = [editableTrack()];
  for (const [name, runs] of Object.entries(info.tracks)) {
    if (name === "truth") continue;
    const head = name.includes(" + ") ? name.split(" + ")[1] : name;
    rows.push(track(name, `track-${head}`, segmentsOf(runs), { "data-backbone": name.split(" + ")[0] }));
  }
  if (info.confidence) rows.push(track("confidence", "track-confidence", curve(info.confidence), { class: "track curve" }));
  if (info.person) {
    const runs = [];
    info.person.forEach((p, i) => (runs.at(-1)?.label === p && runs.at(-1).end === i ? runs.at(-1).end++ :
      runs.push({ label: p, start: i, end: i + 1 })));
    rows.push(track("person in frame", "track-person", runs.filter((r) => r.label).map((r) => el("div", {
      class: "segment", style: { left: `${100 * r.start / n}%`, width: `${100 * (r.end - r.start) / n}%`, background: "#333" } }))));
  }
  tracks.replaceChildren(...rows, playhead);
}

function changed(record = true) {
  dirty = true;
  if (record) localStorage.setItem(draftKey, JSON.stringify({ base: fingerprint, segments: edits.segments }));
  drawTracks();
  show(frame);
  window.review.segments = edits.segments;
}

// A save names the version it was made on; one saved from another page since is refused (409), and the
// person chooses: reload (this page's edits are lost) or overwrite (save again on the version now saved).
async function save(base = version) {
  message.textContent = "saving…";
  try {
    const segments = edits.segments.map((s) => ({ label: s.label, start: s.start / fps, end: s.end / fps }));
    const answer = await api(`/videos/${encodeURIComponent(key)}/segments`, { method: "PUT",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ base, segments }) });
    version = answer.version;
    localStorage.removeItem(draftKey);
    fingerprint = JSON.stringify([n, runsOf(edits.segments)]); // what the server now sends as the base
    dirty = false;
    saved = true;
    message.textContent = `saved ${answer.sheet}: ${Object.entries(answer.seconds).map(([c, s]) => `${c} ${s} s`).join(", ")}` +
      (answer.replaced ? `; the version it replaced is kept as ${answer.replaced}` : "");
    window.review.saved = answer;
    if (!info.annotated) document.getElementById("add").hidden = false;
    drawTracks();
    show(frame);
  } catch (e) {
    message.replaceChildren(`not saved: ${e.message}`);
    if (e.status === 409) message.append(" ", el("button", { "data-testid": "reload", onclick: () =>
      confirm("Reload the version saved from the other page? This page's edits are lost.") && location.reload() }, "reload"),
    " ", el("button", { "data-testid": "overwrite", onclick: () => save(e.body.current) }, "overwrite"));
  }
}

function play() {
  playing = !playing;
  document.getElementById("play").textContent = playing ? "pause" : "play";
  if (!playing) return show(frame);
  const [t0, f0] = [performance.now(), frame];
  const step = (now) => {
    if (!playing) return;
    const next = f0 + Math.floor((now - t0) / 1000 * fps);
    if (next >= n) { playing = false; document.getElementById("play").textContent = "play"; return show(n - 1); }
    if (next !== frame) show(next);
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

const setClass = (label) => edits.setClass(frame, label) && changed();

// Keys work wherever the focus is (after a click on a track, a button, the body), except in a text field.
document.addEventListener("keydown", (e) => {
  const k = e.key;
  if (e.altKey || e.target.closest?.("input, textarea, select, [contenteditable]")) return;
  if (k === " ") play();
  else if (k === "ArrowRight" || k === "ArrowLeft") show(frame + (k === "ArrowRight" ? 1 : -1) * (e.shiftKey ? Math.round(fps) : 1));
  else if (["[", "]", "PageUp", "PageDown"].includes(k)) show(edits.nextBoundary(frame, k === "]" || k === "PageDown" ? 1 : -1));
  else if (/^[1-9]$/.test(k) && Number(k) <= classes.length) setClass(classes[Number(k) - 1]);
  else if (k === "b") { if (edits.split(frame)) changed(); }
  else if (k === "Delete" || k === "Backspace") { if (edits.removeBoundary(frame)) changed(); }
  else if ((e.ctrlKey || e.metaKey) && k.toLowerCase() === "z") { if (e.shiftKey ? edits.redo() : edits.undo()) changed(); }
  else if (k === "s" && !e.ctrlKey) save();
  else return;
  e.preventDefault();
});
document.getElementById("play").addEventListener("click", play);
document.getElementById("undo").addEventListener("click", () => edits.undo() && changed());
document.getElementById("redo").addEventListener("click", () => edits.redo() && changed());
document.getElementById("save").addEventListener("click", () => save());
document.getElementById("add").addEventListener("click", async () => {
  const climb = info.climb || prompt("Which climb does this video show? (its views share a cross-validation fold)");
  if (!climb) { message.textContent = "not added: no climb given"; return; }
  try {
    const added = await api(`/videos/${encodeURIComponent(key)}/add`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ climb }) });
    message.textContent = `added to the dataset: ${added.added}; \`dvc repro\` labels it and retrains.`;
    document.getElementById("add").hidden = true;
  } catch (e) { message.textContent = `not added: ${e.message}`; }
});
img.addEventListener("load", drawBox);
document.getElementById("classes").replaceChildren(...classes.map((c, i) => el("button", { "data-class": c,
  onclick: () => setClass(c) }, el("i", { style: { background: colours[c] } }), `${i + 1} ${c}`)));

window.review = { frame: 0, segments: edits.segments, fps, frames: n, classes };
drawTracks();
img.addEventListener("load", () => { window.review.ready ??= performance.now(); }, { once: true });
show(0);
