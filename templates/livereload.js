/* bosco live reload (`bosco cdn -w --livereload`). Loaded by the fragments of watched services as
   <script src="<cdn>/_bosco/livereload.js" data-bosco-service="<service>">; listens on the
   WebSocket <cdn>/_bosco/socket (a socket takes none of the six HTTP connections a browser allows
   per host, so fonts and fetch() keep working with many tabs open) and, for rebuilds of the
   services on this page: CSS-only changes swap the matching stylesheet links in place (all of the
   service's when only sheets they @import changed), anything
   else reloads the page, a failed rebuild shows an overlay with the error until the next good
   rebuild. Reconnects after a second when the server goes away. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (window.__boscoLivereload || !me || !window.WebSocket) return;
  window.__boscoLivereload = true;
  var failures = {};

  function onPage(service) {
    return document.querySelector('script[data-bosco-service="' + CSS.escape(service) + '"]') !== null;
  }

  function showFailures() {
    var box = document.getElementById("bosco-overlay");
    var names = Object.keys(failures);
    if (!names.length) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = document.createElement("pre");
      box.id = "bosco-overlay";
      box.setAttribute("style", "position:fixed;inset:0;z-index:2147483647;overflow:auto;margin:0;" +
        "padding:2em;background:rgba(40,0,0,.93);color:#fee2e2;font:14px/1.5 ui-monospace,Menlo,monospace;" +
        "white-space:pre-wrap");
      document.documentElement.appendChild(box);
    }
    box.textContent = names.map(function (name) {
      return "bosco: " + name + " failed to rebuild\n\n" + failures[name].join("\n\n");
    }).join("\n\n\n");
  }

  function bare(url) {
    return url.split(/[?#]/)[0];
  }

  function decodedPath(url) {  // keys are raw names (café.css, my styles.css); hrefs are percent-encoded
    try {
      return decodeURIComponent(new URL(url).pathname);
    } catch (e) {
      return url;
    }
  }

  function swapStylesheets(service, keys) {
    var links = [].slice.call(document.querySelectorAll('link[rel="stylesheet"]'));
    function names(link, key) { return decodedPath(bare(link.href)).slice(-key.length - 1) === "/" + key; }
    // changed sheets no link names are pulled in by an @import: every sheet of their service is
    // fetched again (the browser revalidates what they import)
    var imported = !keys.some(function (key) { return links.some(function (link) { return names(link, key); }); });
    links.forEach(function (link) {
      var href = bare(link.href);
      var hit = keys.some(function (key) { return names(link, key); }) ||
        (imported && decodedPath(href).indexOf("/" + service + "/") !== -1);
      if (!hit) return;
      var fresh = link.cloneNode();
      fresh.href = href + "?bosco=" + Date.now();
      function done() { link.remove(); }
      fresh.addEventListener("load", done);
      fresh.addEventListener("error", done);
      link.after(fresh);
    });
  }

  function onRebuild(rebuild) {
    if (!onPage(rebuild.service)) return;
    if (!rebuild.ok) {
      failures[rebuild.service] = rebuild.errors;
      showFailures();
      return;
    }
    delete failures[rebuild.service];
    showFailures();
    if (!rebuild.changed.length && !rebuild.removed.length) return;
    if (rebuild.css_only) swapStylesheets(rebuild.service, rebuild.changed);
    else window.location.reload();
  }

  var url = new URL("socket", me.src);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";

  function connect() {
    var socket = new WebSocket(url.href);
    socket.onmessage = function (message) {
      var payload = JSON.parse(message.data);
      if (payload.event === "rebuild") onRebuild(payload.data);
    };
    socket.onclose = function () { setTimeout(connect, 1000); };
  }
  connect();
})();
