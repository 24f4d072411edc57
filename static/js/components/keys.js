// "/" focuses the search box on every page (unless the user is already typing somewhere).
export function isTyping(event) {
  const el = event.target;
  return event.ctrlKey || event.metaKey || event.altKey ||
    (el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName)));
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || isTyping(event)) return;
  const search = document.getElementById("global-search");
  if (!search) return;
  event.preventDefault();
  search.focus();
  search.select();
});
