(function () {
  "use strict";
  var input = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-filter]"));
  function apply() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var n = 0;
    items.forEach(function (el) {
      var hay = el.getAttribute("data-filter");
      var ok = terms.every(function (t) { return hay.indexOf(t) >= 0; });
      el.classList.toggle("hidden", !ok);
      if (ok) { n++; }
    });
    shown.textContent = n + " of " + items.length + " scenarios shown";
    document.querySelectorAll("[data-group]").forEach(function (g) {
      var any = g.querySelector("[data-filter]:not(.hidden)");
      g.classList.toggle("hidden", !any);
    });
  }
  if (input) {
    input.addEventListener("input", apply);
    var q = new URLSearchParams(location.search).get("filter");
    if (q) { input.value = q; }
    apply();
  }
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var text = document.getElementById(b.getAttribute("data-for")).textContent;
      if (navigator.clipboard) {
        navigator.clipboard.writeText(text).then(function () { b.textContent = "copied"; });
      }
    });
  });
  // A link to a sync round or a state (report.html#s1-e7) opens it.
  function openTarget() {
    var el = location.hash.length > 1 ? document.getElementById(location.hash.slice(1)) : null;
    for (var n = el; n; n = n.parentElement) {
      if (n.tagName === "DETAILS") { n.open = true; }
    }
    if (el) { el.scrollIntoView({block: "center"}); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  document.body.setAttribute("data-ready", "true");
})();
