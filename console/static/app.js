// chargeguard console: keeps a page's live part current over server-sent
// events. The server sends the part's HTML, rendered from the same
// templates as the page; this only swaps it in. No other script runs.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) return;
  var es = new EventSource(live.getAttribute("data-live"));
  es.addEventListener("update", function (e) {
    // Leave the part alone while someone is typing or pressing a button in it.
    var a = document.activeElement;
    if (a && live.contains(a) && a.tagName === "TEXTAREA") return;
    live.innerHTML = e.data;
    document.body.classList.remove("stale");
  });
  es.onerror = function () { document.body.classList.add("stale"); };
  es.onopen = function () { document.body.classList.remove("stale"); };
})();
