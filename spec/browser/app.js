// The page's own code: every value the server pushes (Server-Sent Events)
// is shown at once, as text (textContent: markup in a value stays text).
"use strict";
(function () {
  const state = document.getElementById("state");
  const value = document.getElementById("value");
  const log = document.getElementById("log");
  const es = new EventSource("/events");
  es.onopen = function () { state.textContent = "open"; };
  es.onerror = function () { state.textContent = "reconnecting"; };
  es.addEventListener("value", function (ev) {
    value.textContent = ev.data;
    const li = document.createElement("li");
    li.textContent = ev.data;
    log.appendChild(li);
  });
})();
