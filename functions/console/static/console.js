// The console's only script (the pages' CSP allows no inline script): live refresh.
// Every element with data-live="<ms>" and an id is refreshed in place: the page fetches its source
// (data-from, a URL relative to the page, else the page itself) and swaps in the new content of the
// element with the same id. An element with a data-from is loaded at once too (the runs list's
// counts). Nothing is fetched while the tab is hidden, and a section the reader is typing in is left
// alone. Without script the pages work, just not live (data-from's placeholder is a link).
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser) return;
  var groups = {}, swaps = 0;
  Array.prototype.forEach.call(document.querySelectorAll("[data-live][id]"), function (el) {
    var from = el.getAttribute("data-from") || "", every = Math.max(1000, parseInt(el.getAttribute("data-live"), 10) || 5000);
    var key = every + " " + from;
    (groups[key] = groups[key] || {from: from, every: every, elements: [], timer: null, busy: false}).elements.push(el);
  });

  function editing(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    return Array.prototype.some.call(el.querySelectorAll("textarea, input:not([type=hidden])"), function (f) {
      return f.value !== "";
    });
  }

  function refresh(group) {
    if (group.busy || document.hidden) return;
    group.busy = true;
    fetch(group.from || location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}, cache: "no-store"})
      .then(function (reply) { return reply.ok ? reply.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        group.elements.forEach(function (el) {
          var next = fresh.getElementById(el.id);
          if (next && !editing(el) && next.innerHTML !== el.innerHTML) el.innerHTML = next.innerHTML;
        });
        swaps += 1;
        document.documentElement.setAttribute("data-refreshed", String(swaps));
      })
      .catch(function () { /* offline or the server restarting: try again next time */ })
      .then(function () { group.busy = false; });
  }

  function schedule() {
    Object.keys(groups).forEach(function (key) {
      var group = groups[key];
      if (group.timer !== null) clearInterval(group.timer);
      group.timer = document.hidden ? null : setInterval(function () { refresh(group); }, group.every);
    });
  }

  document.addEventListener("visibilitychange", function () {
    schedule();
    if (!document.hidden) Object.keys(groups).forEach(function (key) { refresh(groups[key]); });
  });
  schedule();
  Object.keys(groups).forEach(function (key) { if (groups[key].from) refresh(groups[key]); });
})();
