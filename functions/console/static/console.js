// The console's only script (the pages' CSP allows no inline script): live refresh.
// Every element with data-live="<ms>" and an id is refreshed in place: the page fetches itself
// again and swaps in the new content of the same elements. It waits while the tab is hidden and
// leaves alone a section the reader is typing in. Without script the pages work, just not live.
(function () {
  "use strict";
  var live = Array.prototype.slice.call(document.querySelectorAll("[data-live][id]"));
  if (!live.length || !window.fetch || !window.DOMParser) return;
  var every = Math.max(1000, Math.min.apply(null, live.map(function (el) {
    return parseInt(el.getAttribute("data-live"), 10) || 5000;
  })));
  var timer = null, busy = false, swaps = 0;

  function editing(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    return Array.prototype.some.call(el.querySelectorAll("textarea, input:not([type=hidden])"), function (f) {
      return f.value !== "";
    });
  }

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}, cache: "no-store"})
      .then(function (reply) { return reply.ok ? reply.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        live.forEach(function (el) {
          var next = fresh.getElementById(el.id);
          if (next && !editing(el) && next.innerHTML !== el.innerHTML) el.innerHTML = next.innerHTML;
        });
        swaps += 1;
        document.documentElement.setAttribute("data-refreshed", String(swaps));
      })
      .catch(function () { /* offline or the server restarting: try again next time */ })
      .then(function () { busy = false; });
  }

  function schedule() {
    if (timer !== null) clearInterval(timer);
    timer = document.hidden ? null : setInterval(refresh, every);
  }

  document.addEventListener("visibilitychange", function () {
    schedule();
    if (!document.hidden) refresh();  // back to the tab: show what changed at once
  });
  schedule();
})();
