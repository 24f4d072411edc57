// The self-contained HTML export of a trace (inlined into the file, no module loading): filter the
// steps by text, and show the embedded export document.
(() => {
  const filter = document.getElementById("filter");
  filter.addEventListener("input", () => {
    const wanted = filter.value.toLowerCase();
    for (const step of document.querySelectorAll(".standalone-step")) {
      step.hidden = wanted !== "" && !step.textContent.toLowerCase().includes(wanted);
    }
  });
  document.getElementById("show-raw").addEventListener("click", () => {
    const raw = document.getElementById("raw");
    if (!raw.textContent) {
      raw.textContent = JSON.stringify(JSON.parse(document.getElementById("export-document").textContent), null, 2);
    }
    raw.hidden = !raw.hidden;
  });
})();
