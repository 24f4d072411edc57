// A websocket that stays connected: reconnects with backoff (server restart, laptop sleep) and shows
// its state in #live-indicator. The server's hello carries the newest sequence number, and goes to
// the page like any message: a page behind it (events stored since it was rendered, or while it was
// disconnected) fetches from its last sequence number, so nothing is lost or doubled.

const indicator = () => document.getElementById("live-indicator");

function show(state, title) {
  const el = indicator();
  if (!el) return;
  el.hidden = false;
  el.dataset.state = state;
  el.textContent = state === "live" ? "● live" : state === "reconnecting" ? "○ reconnecting…" : "○ offline";
  el.title = title;
}

// path: e.g. "/ws/traces/"; onMessage(message) for each message, the hello included.
export function connectLive(path, { onMessage }) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
  let delay = 250;

  function open() {
    const socket = new WebSocket(url);
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "hello") {
        show("live", "Receiving new events as they are stored");
        delay = 250;
      }
      onMessage(message);
    });
    socket.addEventListener("close", () => {
      show("reconnecting", "Connection lost; retrying");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    });
  }

  open();
}

// Runs fn at most once at a time; calls made while it runs fold into one more run after it.
export function coalesce(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await fn();
        } catch (error) {
          console.error(error);
        }
      } while (again);
      running = null;
    })();
    return running;
  };
  return run;
}

// Proxied calls still running on this trace (call.started / call.text / call.ended messages, and the
// page's own list when it was rendered): onChange(calls) whenever they change, and every 250 ms while
// any runs, so their bars grow. An ended call stays until stored() says its step is on the page
// (or, should its step never come, for a few seconds).
export function trackCalls(initial, onChange) {
  const calls = new Map((initial || []).map((call) => [call.id, call]));
  let ticker = 0;
  const changed = () => {
    onChange([...calls.values()]);
    if (calls.size && !ticker) ticker = setInterval(() => onChange([...calls.values()]), 250);
    else if (!calls.size && ticker) ticker = clearInterval(ticker) || 0;
  };
  const drop = (ended) => {
    for (const call of ended) calls.delete(call.id);
    changed();
  };
  changed();
  return {
    // Whether the message was about a running call (and is handled).
    hear(message) {
      if (message.type === "call.started") calls.set(message.call.id, message.call);
      else if (message.type === "call.text" && calls.has(message.id)) {
        Object.assign(calls.get(message.id), { text: message.text, streaming: true });
      } else if (message.type === "call.ended" && calls.has(message.id)) {
        const call = calls.get(message.id);
        call.ended = true;
        setTimeout(() => calls.get(call.id) === call && drop([call]), 5000);
      } else return false;
      changed();
      return true;
    },
    stored() {
      drop([...calls.values()].filter((call) => call.ended));
    },
  };
}
