// The editable segmentation: segments {label, start, end} in frames tiling [0, n), with undo and redo.
export class Edits {
  constructor(segments) { this.segments = segments; this.past = []; this.future = []; }

  index(frame) { return this.segments.findIndex((s) => s.start <= frame && frame < s.end); }
  labelAt(frame) { return this.segments[this.index(frame)]?.label; }
  checkpoint() { this.past.push(JSON.stringify(this.segments)); this.future = []; }

  // The class from the playhead to the next boundary (the segment's end). False if it has that class already.
  setClass(frame, label) {
    if (this.labelAt(frame) === label) return false;
    this.checkpoint();
    this.split(frame, false);
    this.segments[this.index(frame)].label = label;
    return true;
  }

  // A boundary at `frame`: the segment holding it becomes two. False if one is there already.
  split(frame, record = true) {
    const i = this.index(frame), s = this.segments[i];
    if (s.start === frame) return false;
    if (record) this.checkpoint();
    this.segments.splice(i, 1, { ...s, end: frame }, { ...s, start: frame });
    return true;
  }

  // The boundary nearest `frame`, if within `reach` frames, goes; the segment before it extends over the one after.
  removeBoundary(frame, reach = 3) {
    const near = this.segments.map((s, j) => [Math.abs(s.start - frame), j]).slice(1).filter(([d]) => d <= reach);
    if (!near.length) return false;
    const i = near.sort((a, b) => a[0] - b[0])[0][1];
    this.checkpoint();
    this.segments[i - 1].end = this.segments[i].end;
    this.segments.splice(i, 1);
    return true;
  }

  // Boundary `index` (the start of segment `index`) to `frame`, keeping both neighbours at least one frame long.
  // False if it stays where it is.
  moveBoundary(index, frame, record = true) {
    const [before, after] = [this.segments[index - 1], this.segments[index]];
    const at = Math.max(before.start + 1, Math.min(after.end - 1, frame));
    if (at === after.start) return false;
    if (record) this.checkpoint();
    before.end = after.start = at;
    return true;
  }

  // The first boundary after `frame` (step 1) or before it (step -1); `frame` itself if there is none.
  nextBoundary(frame, step) {
    const starts = this.segments.slice(1).map((s) => s.start).filter((b) => (b - frame) * step > 0);
    return starts.length ? (step > 0 ? starts[0] : starts.at(-1)) : frame;
  }

  undo() { return this.swap(this.past, this.future); }
  redo() { return this.swap(this.future, this.past); }
  swap(from, to) {
    if (!from.length) return false;
    to.push(JSON.stringify(this.segments));
    this.segments.splice(0, this.segments.length, ...JSON.parse(from.pop()));
    return true;
  }
}
