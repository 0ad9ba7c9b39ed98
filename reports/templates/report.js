// Filtering of the long tables and the hex toggle of wire traces. The
// report reads fine without it.
(function () {
  "use strict";
  document.querySelectorAll(".filters").forEach(function (box) {
    var table = document.getElementById(box.dataset.table);
    if (!table) { return; }
    var text = box.querySelector(".filter-text");
    var state = box.querySelector(".filter-state");
    var differs = box.querySelector(".filter-differs");
    var count = box.querySelector(".filter-count");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    function apply() {
      var words = text ? text.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
      var want = state ? state.value : "";
      var shown = 0;
      rows.forEach(function (row) {
        var hay = row.textContent.toLowerCase();
        var ok = words.every(function (w) { return hay.indexOf(w) >= 0; }) &&
          (!want || row.dataset.state === want) &&
          (!differs || !differs.checked || row.dataset.differs === "1");
        row.classList.toggle("hidden", !ok);
        if (ok) { shown++; }
      });
      if (count) { count.textContent = shown + " of " + rows.length; }
    }
    [text, state, differs].forEach(function (el) {
      if (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); }
    });
    apply();
  });
  var hex = document.getElementById("show-hex");
  if (hex) {
    hex.addEventListener("change", function () { document.body.classList.toggle("show-hex", hex.checked); });
  }
})();
