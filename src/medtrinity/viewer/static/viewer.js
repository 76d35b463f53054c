// The record page: ROI / mask / box / label toggles redraw the overlay (server-side, on a copy);
// arrow keys move to the previous / next record, Esc goes back to the gallery.
(function () {
  "use strict";
  var overlay = document.getElementById("overlay");
  if (overlay) {
    var redraw = function () {
      var hidden = [];
      document.querySelectorAll(".roi-toggle").forEach(function (box) {
        if (!box.checked) { hidden.push(box.dataset.index); }
      });
      var params = new URLSearchParams();
      if (hidden.length) { params.set("hide", hidden.join(",")); }
      ["masks", "boxes", "labels"].forEach(function (name) {
        if (!document.getElementById("show-" + name).checked) { params.set(name, "0"); }
      });
      var query = params.toString();
      overlay.src = "/overlay/" + overlay.dataset.id + ".png" + (query ? "?" + query : "");
    };
    document.querySelectorAll(".roi-toggle, #toggles input").forEach(function (box) {
      box.addEventListener("change", redraw);
    });
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA") && target.type !== "checkbox") { return; }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var ids = {ArrowLeft: ["prev-record", "prev-page"], ArrowRight: ["next-record", "next-page"], Escape: ["back"]};
    (ids[event.key] || []).some(function (id) {
      var link = document.getElementById(id);
      if (link) { window.location.href = link.href; return true; }
      return false;
    });
  });
})();
