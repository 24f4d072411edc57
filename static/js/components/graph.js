// The thread graph: steps as SVG nodes in step order, parent -> child edges, turns that collapse.
import { svg, clip, ms } from "./svg.js";

const ROW = 44, GAP = 6, LANE = 26, GUTTER = 30, HEADER = 26;
let WIDTH = 330;
let kindNames = {};  // from the page's data: the server's one vocabulary of step kinds

function title(node) {
  if (node.pending) return `LLM call · ${node.model || "model"} · running`;
  const parts = [kindNames[node.kind] || node.kind];
  if (node.kind === "tool") parts.push(node.label);
  else if (node.model) parts.push(node.model);
  if (node.latencyMs !== null && node.latencyMs !== undefined) parts.push(ms(node.latencyMs));
  if (node.kind === "tool" && node.open) parts.push("open");
  return parts.join(" · ");
}

function subtitle(node) {
  if (node.kind === "tool") return `steps ${node.stepIds.join(" → ")}`;
  return node.label;
}

// Rows to draw: per turn a header (when there are several turns), then its nodes unless collapsed.
export function layout(data, collapsed) {
  const rows = [];
  const itemOf = new Map();
  const turns = data.turns;
  const byTurn = new Map(turns.map((t) => [t.index, []]));
  for (const node of data.nodes) byTurn.get(node.turn).push(node);
  let y = 8;
  for (const turn of turns) {
    if (turns.length > 1) {
      rows.push({ type: "turn", turn, y, collapsed: collapsed.has(turn.index) });
      y += HEADER;
    }
    if (turns.length > 1 && collapsed.has(turn.index)) {
      const summary = { type: "summary", turn, y, id: `turn-${turn.index}` };
      rows.push(summary);
      for (const node of byTurn.get(turn.index)) itemOf.set(node.id, summary);
      y += ROW + GAP;
      continue;
    }
    for (const node of byTurn.get(turn.index)) {
      const row = { type: "node", node, y };
      rows.push(row);
      itemOf.set(node.id, row);
      y += ROW + GAP;
    }
  }
  return { rows, itemOf, height: y + 8 };
}

function x(row) {
  return GUTTER + (row.type === "node" ? row.node.lane * LANE : 0);
}

function edgePath(from, to) {
  const x1 = x(from) + 10, x2 = x(to) + 10;
  if (x1 === x2 && to.y - from.y <= ROW + GAP + HEADER) {
    return `M${x1},${from.y + ROW} L${x2},${to.y}`;
  }
  // Longer or cross-lane edges swing out to the left so they do not cross the boxes between.
  const y1 = from.y + ROW / 2, y2 = to.y + ROW / 2;
  const bend = Math.min(GUTTER - 4, 10 + (to.y - from.y) / 40);
  return `M${x(from)},${y1} C${x(from) - bend},${y1} ${x(to) - bend},${y2} ${x(to)},${y2}`;
}

export function renderGraph(container, data, { collapsed, selected, onSelect, onToggle }) {
  kindNames = data.kindNames || {};
  const { rows, itemOf, height } = layout(data, collapsed);
  const maxLane = data.nodes.reduce((m, n) => Math.max(m, n.lane), 0);
  // Boxes fill the pane (labels get room) but never shrink below readable.
  WIDTH = Math.max(260, Math.min(560, (container.clientWidth || 360) - GUTTER - maxLane * LANE - 24));
  const width = GUTTER + maxLane * LANE + WIDTH + 10;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "list", "aria-label": "Steps" });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 8 8", refX: "7", refY: "4", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L8,4 L0,8 z", fill: "currentColor", class: "arrowhead" }));
  defs.append(marker);
  root.append(defs);

  const edges = svg("g", { class: "edges" });
  const drawn = new Set();
  for (const [from, to] of data.edges) {
    const a = itemOf.get(from), b = itemOf.get(to);
    if (!a || !b || a === b) continue;
    const key = `${a.y}:${b.y}`;
    if (drawn.has(key)) continue;
    drawn.add(key);
    edges.append(svg("path", { class: "edge", d: edgePath(a, b), "marker-end": "url(#arrow)", "data-from": from, "data-to": to }));
  }
  root.append(edges);

  for (const row of rows) {
    if (row.type === "turn") {
      const t = row.turn;
      const g = svg("g", { class: "turn-toggle", id: `turn-toggle-${t.index}`, tabindex: "0", role: "button",
        "aria-expanded": String(!row.collapsed), transform: `translate(${GUTTER},${row.y})` });
      // The whole header row is the click target, not just its text.
      g.append(svg("rect", { class: "hit", x: -GUTTER + 4, y: 0, width: width - 8, height: HEADER - 2, fill: "transparent" }));
      g.append(svg("line", { class: "turn-sep", x1: -GUTTER + 4, x2: width - GUTTER - 4, y1: 1, y2: 1 }));
      g.append(svg("text", { x: 0, y: 17 }, `${row.collapsed ? "▸" : "▾"} Turn ${t.number} · ${t.size} step${t.size === 1 ? "" : "s"}${t.errors ? ` · ${t.errors} error${t.errors === 1 ? "" : "s"}` : ""} · ${clip(t.label, 40)}`));
      g.addEventListener("click", () => onToggle(t.index));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onToggle(t.index); } });
      root.append(g);
      continue;
    }
    const isNode = row.type === "node";
    const node = row.node;
    const g = svg("g", {
      class: isNode ? `node k-${node.kind}${node.id === selected ? " selected" : ""}` : "node turn",
      id: isNode ? `step-${node.id}` : row.id,
      transform: `translate(${x(row)},${row.y})`,
      tabindex: "-1",
      role: "listitem",
      "data-kind": isNode ? node.kind : "turn",
      "data-node": isNode ? node.id : "",
    });
    if (isNode && node.pending) g.setAttribute("data-pending", "");
    g.append(svg("rect", { class: "box", width: WIDTH, height: ROW, rx: 6 }));
    g.append(svg("rect", { class: "bar", width: 5, height: ROW, rx: 2 }));
    if (isNode) {
      g.append(svg("text", { x: 12, y: 17 }, clip(`${node.stepIds[0]} · ${title(node)}`, Math.floor(WIDTH / 6.6))));
      g.append(svg("text", { x: 12, y: 34, class: "sub" }, clip(subtitle(node), Math.floor(WIDTH / 6.2))));
      g.append(svg("title", {}, `${title(node)}\n${node.label}`));
      g.addEventListener("click", () => onSelect(node.id));
    } else {
      g.append(svg("text", { x: 12, y: 17 }, `${row.turn.size} steps hidden`));
      g.append(svg("text", { x: 12, y: 34, class: "sub" }, "click to expand this turn"));
      g.addEventListener("click", () => onToggle(row.turn.index));
    }
    root.append(g);
  }
  container.replaceChildren(root);
}
