// Refreshes the page's content every 30 seconds, unless someone is typing in one of its forms.
// Without JavaScript, a <noscript> meta refresh reloads the page every minute instead.
(function () {
  "use strict";
  var EVERY = 30000;
  if (window.history.replaceState && /[?&]notice=/.test(window.location.search)) {
    var url = new URL(window.location.href);
    url.searchParams.delete("notice");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  function busy() {
    var inputs = document.querySelectorAll("#live form[method=post] input[type=text]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].value || inputs[i] === document.activeElement) return true;
    }
    return false;
  }
  function refresh() {
    if (busy()) return;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected || !response.ok) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null || busy()) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["live", "updated"].forEach(function (id) {
          var now = document.getElementById(id), next = fresh.getElementById(id);
          if (now && next) now.replaceWith(next);
        });
      })
      .catch(function () { /* the server is away; try again next time */ });
  }
  window.setInterval(refresh, EVERY);
})();
