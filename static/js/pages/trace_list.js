// The trace list, live: when the server announces activity, fetch the rows (server-rendered,
// escaped) of traces changed since the newest sequence number shown, with the page's filters,
// and put them at the top. A hello newer than the page (after a reconnect, say) brings back
// whatever was missed the same way.
import { coalesce, connectLive } from "../components/live.js";

const params = new URLSearchParams(location.search);
const firstPage = !params.has("cursor");
let lastSeq = Math.max(0, ...[...document.querySelectorAll("tr[data-seq]")].map((row) => Number(row.dataset.seq) || 0));

const catchUp = coalesce(async () => {
  const url = new URL(location.href);
  url.searchParams.set("partial", "rows");
  url.searchParams.set("changed_after", lastSeq);
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const template = document.createElement("template");
  template.innerHTML = (await response.text()).trim();
  const rows = [...template.content.querySelectorAll("tr[data-seq]")];
  if (!rows.length) return;
  const tbody = document.querySelector("table.traces tbody");
  if (!tbody) {
    location.reload(); // the empty state or "no match": the first matching trace replaces it
    return;
  }
  for (const row of rows.reverse()) {
    document.getElementById(row.id)?.remove();
    row.classList.add("fresh");
    tbody.prepend(row);
    lastSeq = Math.max(lastSeq, Number(row.dataset.seq) || 0);
  }
});

if (firstPage) {
  connectLive("/ws/traces/", {
    onMessage: (message) => {
      if (message.type === "trace.deleted") {
        for (const row of document.querySelectorAll("tr[data-trace-id]")) {
          if (row.dataset.traceId === message.traceId) row.remove();
        }
      } else if (message.type === "stream.state") {
        for (const row of document.querySelectorAll("tr[data-trace-id]")) {
          if (row.dataset.traceId === message.traceId) row.querySelector("[data-stream-state]").hidden = !message.running;
        }
      } else if (message.seq > lastSeq) catchUp();
    },
  });
}
