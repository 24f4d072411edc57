// LLM calls and tool spans as bars on one shared time axis; the slowest stand out in red.
import { clip, ms } from "./svg.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function renderTimeline(container, timeline, onSelect) {
  const { bars, totalMs } = timeline;
  if (!bars.length) {
    container.replaceChildren(el("p", "muted", "No LLM calls or tool spans in this trace."));
    return;
  }
  const durations = bars.map((b) => b.durationMs).sort((a, b) => a - b);
  // "Slow" = in the top 10% and over 500 ms, so a trace of uniformly fast calls shows no red.
  const slow = Math.max(500, durations[Math.floor(durations.length * 0.9)] || 0);
  const span = totalMs || 1;
  const fragment = document.createDocumentFragment();
  // The shared axis: ticks at quarters of the trace's span.
  const axis = el("div", "tl-row tl-axis");
  axis.append(el("span", "tl-label muted", `${bars.length} calls and spans`));
  const ticks = el("span", "tl-track tl-ticks");
  for (const q of [0, 0.25, 0.5, 0.75, 1]) {
    const tick = el("span", "tl-tick", q === 0 ? "0" : ms(span * q));
    tick.style.left = `${q * 100}%`;
    ticks.append(tick);
  }
  axis.append(ticks, el("span", "tl-ms muted", "latency"));
  fragment.append(axis);
  bars.forEach((bar, i) => {
    const row = el("div", `tl-row${bar.durationMs >= slow ? " slow" : ""}`);
    row.id = `tl-${i}`;
    if (bar.node) row.dataset.node = bar.node;
    row.append(el("span", "tl-label", clip(`${bar.kind === "tool" ? "tool" : bar.kind} · ${bar.label}`, 60)));
    const track = el("span", "tl-track");
    const b = el("span", `tl-bar k-${bar.kind}${bar.known ? "" : " unknown"}`);
    b.style.left = `${(bar.start / span) * 100}%`;
    b.style.width = `${Math.max((bar.durationMs / span) * 100, 0.2)}%`;
    b.title = `${bar.label}: starts at +${ms(bar.start) || "0 ms"}, ${bar.known ? ms(bar.durationMs) : "latency not reported"}`;
    track.append(b);
    row.append(track, el("span", "tl-ms", bar.known ? ms(bar.durationMs) : "?"));
    if (bar.node) row.addEventListener("click", () => onSelect(bar.node));
    fragment.append(row);
  });
  container.replaceChildren(fragment);
}
