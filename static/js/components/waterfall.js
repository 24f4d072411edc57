// The span tree with its waterfall: nested rows (turn -> LLM call -> its tool spans) with bars on one
// shared time axis, zoomable to a time range (drag across the axis, or the buttons), groups that
// collapse and still show their totals. Only the rows in view are in the DOM, so a 5,000-step run
// scrolls like a short one; every row stays reachable. Labels go in through textContent.
import { clip, ms } from "./svg.js";

const ROW = 22;        // px per row: fixed, so a row's place is its index times this
const OVERSCAN = 15;   // rows drawn beyond each edge of the view
const MAX_HEIGHT = 440;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const tokens = (n) => n.toLocaleString("en-US");
const money = (usd) => (usd >= 1 ? `$${usd.toFixed(2)}` : usd > 0 ? `$${usd.toPrecision(2)}` : "$0");

// "1.20 s · 1,240 tok · $0.0123 · 2 errors": what a row (or a collapsed group, for its subtree) adds up to.
function figures({ dur, tokens: tok = 0, cost = null, errors = 0, steps }, known) {
  const parts = [];
  if (steps !== undefined) parts.push(`${steps} step${steps === 1 ? "" : "s"}`);
  parts.push(known ? ms(dur) || "0 ms" : "–");
  if (tok) parts.push(`${tokens(tok)} tok`);
  if (cost !== null && cost !== undefined) parts.push(money(cost));
  if (errors) parts.push(`${errors} error${errors === 1 ? "" : "s"}`);
  return parts.join(" · ");
}

export function createWaterfall(root, { onSelect, kindNames = {} }) {
  const tools = el("div", "wf-tools");
  const zoomIn = el("button", "", "zoom in");
  const zoomOut = el("button", "", "zoom out");
  const reset = el("button", "", "reset zoom");
  const expand = el("button", "", "expand all");
  const collapse = el("button", "", "collapse all");
  const range = el("span", "wf-range muted");
  for (const [button, id] of [[zoomIn, "wf-zoom-in"], [zoomOut, "wf-zoom-out"], [reset, "wf-zoom-reset"],
                              [expand, "wf-expand"], [collapse, "wf-collapse"]]) {
    button.type = "button";
    button.id = id;
  }
  tools.append(zoomIn, zoomOut, reset, expand, collapse, range);
  const axis = el("div", "wf-row wf-axis");
  const axisTrack = el("span", "wf-track wf-ticks");
  axisTrack.title = "Drag across the axis to zoom into that time range";
  const brush = el("span", "wf-brush");
  brush.hidden = true;
  axis.append(el("span", "wf-name muted", "step"), axisTrack, el("span", "wf-figs muted", "time · tokens · cost"));
  const scroller = el("div", "wf-scroll");
  scroller.tabIndex = 0;
  const spacer = el("div", "wf-spacer");
  scroller.append(spacer);
  root.replaceChildren(tools, axis, scroller);

  const state = { rows: [], labels: new Map(), collapsed: new Set(), visible: [], from: 0, to: 1, zoomed: false,
                  selected: null, pending: [], origin: 0, totalMs: 0 };

  function label(row) {
    if (row.kind === "turn") return row.number ? `Turn ${row.number} · ${row.label}` : row.label;
    if (row.kind === "pending") return row.label;
    const node = state.labels.get(row.id);
    return `${kindNames[row.kind] || row.kind} · ${node ? node.label : row.id}`;
  }

  function recompute() {
    const visible = [];
    for (let i = 0; i < state.rows.length;) {
      visible.push(i);
      i = state.collapsed.has(state.rows[i].id) ? state.rows[i].end : i + 1;
    }
    state.visible = visible;
    const count = visible.length + state.pending.length;
    spacer.style.height = `${count * ROW}px`;
    scroller.style.height = `${Math.min(count * ROW, MAX_HEIGHT) + 2}px`;
  }

  function place(bar, start, dur) {
    const span = state.to - state.from || 1;
    const left = (start - state.from) / span, right = (start + dur - state.from) / span;
    bar.hidden = right < 0 || left > 1;
    const a = Math.max(left, 0), b = Math.min(right, 1);
    bar.style.left = `${a * 100}%`;
    bar.style.width = `max(${(b - a) * 100}%, 2px)`;
  }

  function drawRow(row, index) {
    const collapsed = state.collapsed.has(row.id);
    const group = Boolean(row.total);
    const classes = ["wf-row", `k-${row.kind}`];
    if (group) classes.push("group");
    if (collapsed) classes.push("collapsed");
    if (row.errors || (collapsed && row.total.errors)) classes.push("has-error");
    const node = row.node ?? row.id;
    if (row.kind !== "turn" && node === state.selected) classes.push("selected");
    const line = el("div", classes.join(" "));
    line.style.top = `${index * ROW}px`;
    line.dataset.row = row.id;
    line.dataset.node = node;
    line.id = `wf-${row.id}`;
    line.dataset.depth = row.depth;
    const name = el("span", "wf-name");
    name.style.paddingLeft = `${row.depth * 14}px`;
    if (group) {
      const toggle = el("button", "wf-toggle", collapsed ? "▸" : "▾");
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", String(!collapsed));
      toggle.setAttribute("aria-label", collapsed ? "expand" : "collapse");
      name.append(toggle);
    } else {
      name.append(el("span", "wf-leaf"));
    }
    const text = label(row);
    name.append(el("span", "wf-label", clip(text, 140)));
    line.title = text;
    const track = el("span", "wf-track");
    // A collapsed group (and a turn, which has no time of its own) is drawn as the span of its subtree.
    const whole = group && (collapsed || row.kind === "turn");
    const shown = whole ? row.total : row;
    if (shown.start !== null && shown.start !== undefined) {
      // A step with no reported duration is a moment on the axis, not a bar.
      const moment = !whole && !row.known && !shown.dur;
      const bar = el("span", `wf-bar k-${row.kind}${moment ? " moment" : row.known || whole ? "" : " unknown"}${whole ? " whole" : ""}`);
      place(bar, shown.start, shown.dur);
      bar.title = `starts at +${ms(shown.start) || "0 ms"}, ${whole || row.known ? ms(shown.dur) || "0 ms" : "latency not reported"}`;
      track.append(bar);
    }
    const figs = el("span", "wf-figs", whole ? figures(row.total, true) : figures(row, row.known || row.kind === "pending"));
    line.append(name, track, figs);
    return line;
  }

  function drawPending(call, index) {
    const line = el("div", "wf-row k-pending");
    line.style.top = `${index * ROW}px`;
    line.id = `wf-pending-${call.id}`;
    line.dataset.pending = call.id;
    const name = el("span", "wf-name");
    name.append(el("span", "wf-leaf"), el("span", "wf-label", `LLM call · ${call.model || "model"} · ${call.streaming ? "streaming" : "waiting for upstream"}`));
    const track = el("span", "wf-track");
    const start = call.startedAt - state.origin, dur = Math.max(Date.now() - call.startedAt, 0);
    const bar = el("span", "wf-bar k-pending");
    place(bar, start, dur);
    track.append(bar);
    line.append(name, track, el("span", "wf-figs", `${ms(dur) || "0 ms"} · running`));
    return line;
  }

  function drawAxis() {
    const span = state.to - state.from;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((q) => {
      const tick = el("span", "wf-tick", ms(state.from + span * q) || "0");
      tick.style.left = `${q * 100}%`;
      return tick;
    });
    axisTrack.replaceChildren(...ticks, brush);
    range.textContent = state.zoomed
      ? `showing ${ms(state.from) || "0 ms"} – ${ms(state.to)} of ${ms(state.totalMs) || "0 ms"}`
      : `${state.rows.filter((r) => r.kind !== "turn").length} steps over ${ms(state.totalMs) || "0 ms"}`;
    reset.disabled = !state.zoomed;
  }

  function draw() {
    const top = scroller.scrollTop;
    const first = Math.max(Math.floor(top / ROW) - OVERSCAN, 0);
    const last = Math.min(Math.ceil((top + (scroller.clientHeight || MAX_HEIGHT)) / ROW) + OVERSCAN,
                          state.visible.length + state.pending.length);
    const lines = [];
    for (let i = first; i < last; i++) {
      if (i < state.visible.length) lines.push(drawRow(state.rows[state.visible[i]], i));
      else lines.push(drawPending(state.pending[i - state.visible.length], i));
    }
    spacer.replaceChildren(...lines);
    drawAxis();
  }

  let frame = 0;
  scroller.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
  });

  function zoomTo(from, to) {
    const min = 1; // ms: narrower than this shows nothing more
    if (to - from < min) [from, to] = [(from + to - min) / 2, (from + to + min) / 2];
    state.from = Math.max(from, 0);
    state.to = Math.min(to, full());
    state.zoomed = state.from > 0 || state.to < full();
    draw();
  }
  const full = () => Math.max(state.totalMs, ...state.pending.map((c) => Date.now() - state.origin), 1);
  zoomIn.addEventListener("click", () => {
    const quarter = (state.to - state.from) / 4;
    zoomTo(state.from + quarter, state.to - quarter);
  });
  zoomOut.addEventListener("click", () => {
    const half = (state.to - state.from) / 2;
    zoomTo(state.from - half, state.to + half);
  });
  reset.addEventListener("click", () => zoomTo(0, full()));
  expand.addEventListener("click", () => { state.collapsed.clear(); recompute(); draw(); });
  collapse.addEventListener("click", () => {
    for (const row of state.rows) if (row.kind === "turn" && row.total) state.collapsed.add(row.id);
    recompute();
    draw();
  });

  // Brushing: drag across the axis to zoom into that range.
  axisTrack.addEventListener("pointerdown", (event) => {
    const box = axisTrack.getBoundingClientRect();
    const at = (x) => Math.min(Math.max((x - box.left) / box.width, 0), 1);
    const start = at(event.clientX);
    axisTrack.setPointerCapture(event.pointerId);
    brush.hidden = false;
    const move = (e) => {
      const a = Math.min(start, at(e.clientX)), b = Math.max(start, at(e.clientX));
      brush.style.left = `${a * 100}%`;
      brush.style.width = `${(b - a) * 100}%`;
    };
    move(event);
    const up = (e) => {
      axisTrack.removeEventListener("pointermove", move);
      axisTrack.removeEventListener("pointerup", up);
      brush.hidden = true;
      const a = Math.min(start, at(e.clientX)), b = Math.max(start, at(e.clientX));
      if ((b - a) * box.width < 4) return; // a click, not a drag
      const span = state.to - state.from;
      zoomTo(state.from + a * span, state.from + b * span);
    };
    axisTrack.addEventListener("pointermove", move);
    axisTrack.addEventListener("pointerup", up);
  });

  spacer.addEventListener("click", (event) => {
    const line = event.target.closest(".wf-row");
    if (!line || !line.dataset.row) return;
    if (event.target.closest(".wf-toggle")) {
      const id = line.dataset.row;
      if (state.collapsed.has(id)) state.collapsed.delete(id);
      else state.collapsed.add(id);
      recompute();
      draw();
      return;
    }
    if (line.dataset.node) onSelect(line.dataset.node);
  });

  function indexOfNode(id) {
    return state.rows.findIndex((row) => row.kind !== "turn" && row.id === id);
  }

  return {
    // tree: the server's build_tree; nodes: the graph's, for labels. Collapsed rows and zoom are kept.
    update(tree, nodes, { collapseOver = Infinity } = {}) {
      const first = !state.rows.length;
      state.rows = tree.rows;
      state.origin = tree.origin;
      state.totalMs = tree.totalMs;
      state.labels = new Map(nodes.map((n) => [n.id, n]));
      if (first && tree.rows.length > collapseOver) {
        for (const row of tree.rows) if (row.kind === "turn" && row.total) state.collapsed.add(row.id);
      }
      if (!state.zoomed) [state.from, state.to] = [0, full()];
      recompute();
      draw();
    },
    // Select a step: its collapsed ancestors open and it scrolls into view.
    select(id, { reveal = true } = {}) {
      state.selected = id;
      const index = indexOfNode(id);
      if (index >= 0 && reveal) {
        let depth = state.rows[index].depth;
        for (let j = index - 1; j >= 0 && depth > 0; j--) {
          const row = state.rows[j];
          if (row.depth < depth && row.end > index) {
            state.collapsed.delete(row.id);
            depth = row.depth;
          }
        }
        recompute();
        const at = state.visible.indexOf(index) * ROW;
        if (at < scroller.scrollTop || at + ROW > scroller.scrollTop + scroller.clientHeight) {
          scroller.scrollTop = Math.max(at - scroller.clientHeight / 2, 0);
        }
      }
      draw();
    },
    // Proxied calls still running: {id, model, startedAt (epoch ms), streaming}, drawn as rows at the end.
    setPending(calls) {
      state.pending = calls;
      if (!state.zoomed) [state.from, state.to] = [0, full()];
      recompute();
      draw();
    },
  };
}
