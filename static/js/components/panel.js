// The step panel: fetches the server-rendered (escaped) panel of a node into `panel`; only the
// latest selection may fill it.
let ticket = 0;

export async function loadPanel(panel, id) {
  const url = new URL(location.href);
  url.searchParams.set("step", id);
  url.searchParams.delete("view");
  url.searchParams.set("partial", "panel");
  const mine = ++ticket;
  panel.classList.add("loading");
  try {
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    const html = await response.text();
    if (mine !== ticket) return;
    if (response.ok) panel.innerHTML = html;
    else panel.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: `Could not load step ${id}.` }));
  } finally {
    if (mine === ticket) panel.classList.remove("loading");
  }
}

// The selected step is kept in ?step=, and the other view's tab opens on it.
export function rememberStep(id) {
  const url = new URL(location.href);
  url.searchParams.set("step", id);
  history.replaceState(null, "", url);
  for (const tab of document.querySelectorAll(".trace-tabs a[id^='tab-']")) {
    const link = new URL(tab.href);
    link.searchParams.set("step", id);
    tab.href = link;
  }
}
