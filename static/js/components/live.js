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
