// A trace that has no event yet: wait on its live group, and show the trace when its first event is stored.
import { connectLive } from "../components/live.js";

const traceId = document.getElementById("waiting").dataset.trace;
connectLive(`/ws/traces/${encodeURIComponent(traceId).replaceAll("%2F", "/")}`, {
  onMessage: (message) => {
    if (message.type === "event.new" || message.type === "trace.update" || (message.type === "hello" && message.seq > 0)) {
      location.reload();
    }
  },
});
document.body.dataset.ready = "1";
