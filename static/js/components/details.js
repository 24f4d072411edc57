// A link to a closed <details> (the trace's cost breakdown) opens it: browsers scroll to it but leave it shut.
function openTarget(hash) {
  const target = hash && hash.length > 1 ? document.getElementById(decodeURIComponent(hash.slice(1))) : null;
  if (target instanceof HTMLDetailsElement) target.open = true;
}

export function openLinkedDetails() {
  // Delegated: the live page re-renders the header the links are in.
  document.addEventListener("click", (event) => {
    const link = event.target.closest('a[href^="#"]');
    if (link) openTarget(link.getAttribute("href"));
  });
  window.addEventListener("hashchange", () => openTarget(location.hash));
  openTarget(location.hash);
}
