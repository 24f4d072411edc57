// The conversation view: the whole run, server-rendered; here only find, next / previous error,
// the kind filter, selection (the step panel beside it) and live updates.
import { createFinder } from "../components/finder.js";
import { isTyping } from "../components/keys.js";
import { coalesce, connectLive, trackCalls } from "../components/live.js";
import { loadPanel, rememberStep } from "../components/panel.js";

const conv = document.getElementById("conversation");
const panel = document.getElementById("step-panel");
const live = JSON.parse(document.getElementById("trace-live").textContent);
let selected = new URL(location.href).searchParams.get("step");

function select(id, { scroll = false } = {}) {
  for (const el of conv.querySelectorAll(".conv-item.selected")) el.classList.remove("selected");
  const el = document.getElementById(`c-${id}`);
  if (!el) return;
  el.classList.add("selected");
  if (scroll) el.scrollIntoView({ block: "center" });
  selected = id;
  rememberStep(id);
  loadPanel(panel, id);
}

conv.addEventListener("click", (event) => {
  if (event.target.closest("summary, a:not(.full-prompt), details.show-all")) return;
  const item = event.target.closest(".conv-item");
  if (!item) return;
  event.preventDefault();
  select(item.dataset.node);
});

const finder = createFinder(conv, {
  input: document.getElementById("trace-find"),
  count: document.getElementById("find-count"),
});
document.getElementById("find-next").addEventListener("click", () => finder.move(1));
document.getElementById("find-prev").addEventListener("click", () => finder.move(-1));

let errorAt = -1;
function nextError(delta) {
  const errors = [...conv.querySelectorAll(".conv-item.k-error")];
  const counter = document.getElementById("error-count");
  if (!errors.length) { counter.textContent = "no errors"; return; }
  errorAt = (errorAt + delta + errors.length) % errors.length;
  counter.textContent = `error ${errorAt + 1} of ${errors.length}`;
  const fold = errors[errorAt].closest("details.fold");
  if (fold) fold.open = true;
  select(errors[errorAt].dataset.node, { scroll: true });
}
document.getElementById("error-next").addEventListener("click", () => nextError(1));
document.getElementById("error-prev").addEventListener("click", () => nextError(-1));
document.addEventListener("keydown", (event) => {
  if (isTyping(event)) return;
  if (event.key === "n") nextError(1);
  else if (event.key === "p") nextError(-1);
  else if (event.key === "f" || event.key === "F3") { event.preventDefault(); document.getElementById("trace-find").focus(); }
});

for (const box of document.querySelectorAll("#kind-filter input")) {
  box.addEventListener("change", () => conv.classList.toggle(`hide-${box.value}`, !box.checked));
}

// Live: re-render the conversation when new events arrive; what is above the reader stays, so the
// page does not jump.
let lastSeq = live.lastSeq || 0;
const update = coalesce(async () => {
  const url = new URL(location.href);
  url.searchParams.set("partial", "conversation");
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const y = scrollY;
  const html = await response.text();
  const template = document.createElement("template");
  template.innerHTML = html; // Django's template, escaped server-side
  lastSeq = Math.max(lastSeq, Number(template.content.firstElementChild?.dataset.seq || 0));
  conv.replaceChildren(...template.content.firstElementChild.childNodes);
  if (selected) document.getElementById(`c-${selected}`)?.classList.add("selected");
  scrollTo(0, y);
  finder.reset();
  calls.stored();
});
const traceId = document.getElementById("trace-id").textContent;
// A proxied call still running: shown below the conversation, its streamed text growing (as text,
// never markup) until its stored answer replaces it. Growing below the reader moves nothing above.
let streamRunning = !document.getElementById("stream-state").hidden;
let running = [];
function showPending() {
  const call = running.at(-1);
  document.getElementById("pending-call").hidden = !call && !streamRunning;
  if (!call) return;
  const more = running.length > 1 ? ` (+${running.length - 1} more)` : "";
  document.getElementById("pending-state").textContent =
    `assistant · ${call.model || "LLM call"} · ${call.streaming ? "streaming" : "waiting for upstream"}${more}`;
  const text = document.getElementById("pending-text");
  if (text.textContent !== (call.text || "")) text.textContent = call.text || "";
}
const calls = trackCalls(live.pending, (now) => { running = now; showPending(); });
connectLive(`/ws/traces/${encodeURIComponent(traceId).replaceAll("%2F", "/")}`, {
  onMessage: (message) => {
    if (message.type === "stream.state") {
      document.getElementById("stream-state").hidden = !message.running;
      streamRunning = message.running;
      showPending();
    }
    else if (calls.hear(message)) return;
    else if (message.seq > lastSeq) update();
  },
});

if (selected && document.getElementById(`c-${selected}`)) select(selected, { scroll: true });
performance.mark("whyops-ready");
document.body.dataset.ready = "1";
