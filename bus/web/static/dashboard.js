// The bus dashboard's only script: live regions, confirmations, select-all. No dependencies.
// Live regions ([data-live]) are re-fetched as server-rendered, escaped HTML fragments
// (?partial=1) and swapped in when they change; nothing from the server is ever eval'd.
(function () {
  "use strict";

  var interval = parseInt(document.body.getAttribute("data-interval"), 10) || 2000;
  var status = document.getElementById("live-status");

  function setStatus(state, text) {
    if (!status) return;
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  function busy(region) {
    if (region.contains(document.activeElement) && document.activeElement !== document.body) return true;
    if (region.hasAttribute("data-pause-on-select") && region.querySelector("input[type=checkbox]:checked")) return true;
    if (region.hasAttribute("data-pause-on-hover") && region.matches(":hover")) return true;
    return region.querySelector("details[open]") !== null;
  }

  function partialUrl(region) {
    var url = new URL(region.getAttribute("data-live") || window.location.href, window.location.href);
    url.searchParams.set("partial", "1");
    return url.toString();
  }

  function refresh(region) {
    if (document.hidden) return Promise.resolve("hidden");
    if (busy(region)) return Promise.resolve("paused");
    return fetch(partialUrl(region), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (busy(region)) return "paused";
        if (region.getAttribute("data-last") !== html) {
          region.innerHTML = html;
          region.setAttribute("data-last", html);
        }
        return "live";
      });
  }

  function tick() {
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    if (!regions.length) return;
    Promise.all(regions.map(refresh))
      .then(function (states) {
        var paused = states.indexOf("paused") >= 0;
        var now = new Date().toLocaleTimeString();
        setStatus(paused ? "paused" : "live", paused ? "paused" : "live · " + now);
      })
      .catch(function () {
        setStatus("offline", "offline");
      })
      .then(function () {
        window.setTimeout(tick, interval);
      });
  }

  // Destructive forms: ask here, and tell the server the question was answered. Without
  // this script the server shows its own confirmation page instead.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    var existing = form.querySelector("input[name=confirm]");
    if (existing && existing.getAttribute("data-added")) existing.remove();
    if (!message) return;
    if (!window.confirm(message)) {
      event.preventDefault();
      return;
    }
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "confirm";
    input.value = "yes";
    input.setAttribute("data-added", "1");
    form.appendChild(input);
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    var name = box.getAttribute && box.getAttribute("data-select-all");
    if (!name) return;
    var form = box.form || document;
    form.querySelectorAll("input[type=checkbox][name='" + name + "']").forEach(function (other) {
      other.checked = box.checked;
    });
  });

  if (document.querySelector("[data-live]")) {
    document.querySelectorAll("[data-live]").forEach(function (region) {
      region.setAttribute("data-last", "");
    });
    setStatus("live", "live");
    window.setTimeout(tick, interval);
  } else {
    setStatus("static", "");
  }
})();
