// Find in a long page: every match highlighted with the CSS Custom Highlight API (no DOM changes, so
// 5,000 server-rendered steps stay as they are), "n of m", Enter / Shift+Enter to move, and the
// current match opened (its fold) and scrolled into view.
const MAX_HIGHLIGHTS = 5000;

function textNodes(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node);
  return nodes;
}

export function createFinder(root, { input, count, onCurrent }) {
  let ranges = [];
  let current = -1;
  let nodes = null; // text nodes with their lower-cased text, built on first search

  function index() {
    nodes = textNodes(root).map((node) => ({ node, text: node.data.toLowerCase() }));
  }

  function search(query) {
    if (!nodes) index();
    ranges = [];
    current = -1;
    const needle = query.trim().toLowerCase();
    if (needle) {
      for (const { node, text } of nodes) {
        for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
          const range = new Range();
          range.setStart(node, at);
          range.setEnd(node, at + needle.length);
          ranges.push(range);
        }
      }
    }
    CSS.highlights.set("find", new Highlight(...ranges.slice(0, MAX_HIGHLIGHTS)));
    move(1);
  }

  function move(delta) {
    if (!ranges.length) {
      count.textContent = input.value.trim() ? "no match" : "";
      CSS.highlights.delete("find-current");
      return;
    }
    current = (current + delta + ranges.length) % ranges.length;
    const range = ranges[current];
    count.textContent = `${current + 1} of ${ranges.length}`;
    CSS.highlights.set("find-current", new Highlight(range));
    const el = range.startContainer.parentElement;
    for (let fold = el.closest("details"); fold; fold = fold.parentElement.closest("details")) fold.open = true;
    el.scrollIntoView({ block: "center" });
    onCurrent?.(el);
  }

  input.addEventListener("input", () => search(input.value));
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    move(event.shiftKey ? -1 : 1);
  });
  return { search, move, reset: () => { nodes = null; if (input.value) search(input.value); } };
}
