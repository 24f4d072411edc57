// The trace page: draws the span tree and the graph from the json_script data, keeps the selected
// step in ?step= (shared by both, and by the conversation tab), and swaps in the server-rendered
// (escaped) step panel on selection.
import { renderGraph } from "../components/graph.js";
import { createWaterfall } from "../components/waterfall.js";
import { isTyping } from "../components/keys.js";
import { coalesce, connectLive, trackCalls } from "../components/live.js";
import { openLinkedDetails } from "../components/details.js";
import { loadPanel, rememberStep } from "../components/panel.js";

// Runs with more steps than this start with every turn collapsed except the selected one.
const COLLAPSE_OVER = 80;

let data = JSON.parse(document.getElementById("trace-graph").textContent);
const graphEl = document.getElementById("graph");
const panel = document.getElementById("step-panel");
let nodeById = new Map(data.nodes.map((n) => [n.id, n]));
const state = { selected: data.selected, collapsed: new Set() };

if (data.nodes.length > COLLAPSE_OVER && data.turns.length > 1) {
  const keep = nodeById.get(state.selected)?.turn;
  for (const turn of data.turns) if (turn.index !== keep) state.collapsed.add(turn.index);
}

// Proxied calls still running: a node each at the end of the last turn, as in the tree.
let pendingNodes = [];
let pendingKey = "";

function withPending(graph) {
  const last = graph.nodes[graph.nodes.length - 1];
  if (!pendingNodes.length || !last) return graph;
  const nodes = pendingNodes.map((call) => ({
    id: `pending-${call.id}`, kind: "pending", pending: true, stepIds: ["…"], lane: 0, turn: last.turn, latencyMs: null,
    model: call.model, label: call.streaming ? "streaming…" : "waiting for upstream",
  }));
  return { ...graph, nodes: [...graph.nodes, ...nodes], edges: [...graph.edges, ...nodes.map((n) => [last.id, n.id])] };
}

function showPending(calls) {
  tree.setPending(calls);
  const running = calls.filter((call) => !call.ended);
  // Redrawn when a call starts, starts streaming or ends: not on every tick of its growing bar.
  const key = running.map((call) => `${call.id}:${call.streaming ? 1 : 0}`).join(",");
  if (key === pendingKey) return;
  [pendingNodes, pendingKey] = [running, key];
  draw();
}

function draw() {
  renderGraph(graphEl, withPending(data), { collapsed: state.collapsed, selected: state.selected, onSelect: select, onToggle: toggle });
  markFlags();
  const el = document.getElementById(`step-${state.selected}`);
  if (el) el.scrollIntoView({ block: "nearest" });
}

// A flag's steps are outlined in the graph, with the flag's message as their tooltip (SVG <title>).
function markFlags() {
  for (const flag of data.flags || []) {
    for (const stepId of flag.stepIds) {
      const el = document.getElementById(`step-${stepId}`);
      if (!el) continue;
      el.classList.add("flagged");
      const title = el.querySelector(":scope > title") ?? el.appendChild(document.createElementNS("http://www.w3.org/2000/svg", "title"));
      title.textContent = `${title.textContent}\n⚑ ${flag.message}`.trim();
    }
  }
}

// Re-fetch graph and tree from the server and redraw, keeping selection and collapsed turns.
// Live updates call this when new events arrive on the trace.
async function refresh() {
  const url = new URL(location.href);
  url.searchParams.set("partial", "graph");
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const fresh = await response.json();
  data = { ...fresh, selected: state.selected };
  nodeById = new Map(data.nodes.map((n) => [n.id, n]));
  draw();
  tree.update(data.tree, data.nodes);
  tree.select(state.selected, { reveal: false });
  return fresh.summary;
}

function toggle(turn) {
  if (state.collapsed.has(turn)) state.collapsed.delete(turn);
  else state.collapsed.add(turn);
  draw();
}

async function select(id) {
  const node = nodeById.get(id);
  if (!node) return;
  const previous = state.selected;
  state.selected = id;
  if (state.collapsed.has(node.turn)) {
    state.collapsed.delete(node.turn);
    draw();
  } else {
    document.getElementById(`step-${previous}`)?.classList.remove("selected");
    const el = document.getElementById(`step-${id}`);
    el?.classList.add("selected");
    el?.scrollIntoView({ block: "nearest" });
  }
  tree.select(id);
  rememberStep(id);
  await loadPanel(panel, id);
}

function step(delta) {
  const index = data.nodes.findIndex((n) => n.id === state.selected);
  const next = data.nodes[Math.min(Math.max(index + delta, 0), data.nodes.length - 1)];
  if (next && next.id !== state.selected) select(next.id);
}

document.addEventListener("keydown", (event) => {
  if (isTyping(event)) return;
  if (event.key === "j") step(1);
  else if (event.key === "k") step(-1);
});
document.getElementById("expand-all").addEventListener("click", () => { state.collapsed.clear(); draw(); });
document.getElementById("collapse-all").addEventListener("click", () => {
  for (const turn of data.turns) state.collapsed.add(turn.index);
  draw();
});

const tree = createWaterfall(document.getElementById("tree"), { onSelect: select, kindNames: data.kindNames || {} });
draw();
tree.update(data.tree, data.nodes, { collapseOver: COLLAPSE_OVER });
if (state.selected) tree.select(state.selected);

// Live: new events on this trace (or a hello newer than the page) redraw graph and tree and
// refresh the header totals; the same re-fetch brings back whatever was missed.
let lastSeq = data.lastSeq || 0;
const head = document.getElementById("trace-head");
const update = coalesce(async () => {
  await refresh();
  calls.stored();
  lastSeq = Math.max(lastSeq, data.lastSeq || 0);
  const url = new URL(location.href);
  url.searchParams.set("partial", "head");
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  if (response.ok) head.innerHTML = await response.text(); // Django's template, escaped server-side
});
// Flag markers and "previous call" links name a step: select it in place when it is a node here.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-step]");
  if (!link || !nodeById.has(link.dataset.step)) return;
  event.preventDefault();
  select(link.dataset.step);
});
const traceId = document.getElementById("trace-id").textContent;
// Deleted (here, in another tab or by the API): nothing of it is left to show.
function showDeleted() {
  const notice = document.createElement("section");
  notice.className = "trace-deleted";
  notice.id = "trace-deleted";
  const text = document.createElement("p");
  text.textContent = `Trace ${traceId} was deleted. `;
  const back = document.createElement("a");
  back.href = "/";
  back.textContent = "All traces";
  text.append(back);
  notice.append(text);
  document.querySelector("main").replaceChildren(notice);
}
const calls = trackCalls(data.pending, showPending);
connectLive(`/ws/traces/${encodeURIComponent(traceId).replaceAll("%2F", "/")}`, {
  onMessage: (message) => {
    if (message.type === "stream.state") document.getElementById("stream-state").hidden = !message.running;
    // Moved: its OTel spans joined their conversation's trace (otlp/store.py).
    else if (message.type === "trace.deleted" && message.movedTo) location.replace(`/traces/${encodeURIComponent(message.movedTo)}`);
    else if (message.type === "trace.deleted") showDeleted();
    else if (calls.hear(message)) return;
    else if (message.seq > lastSeq) update();
  },
});
openLinkedDetails();
// For tests and bench/pages.py: the graph, tree and handlers are in place.
performance.mark("whyops-ready");
document.body.dataset.ready = "1";
