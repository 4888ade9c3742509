// The status page's live part: polls /status.json (the same JSON as
// `ipoectl show ... --json`), draws bits per second per interface over the
// last 5 minutes, and refreshes the counters marked data-k. No library.
"use strict";
(function () {
  var PERIOD_MS = 3000;
  var SAMPLES = 100; // 5 minutes
  var prev = null;
  var history = {}; // interface index -> [{rx, tx, rxp, txp}] per second
  var polls = 0;

  function at(obj, path) {
    return path.split(".").reduce(function (o, k) {
      return o === null || o === undefined ? undefined : o[k];
    }, obj);
  }

  function si(x) {
    var units = ["", "k", "M", "G", "T"];
    var u = 0;
    while (x >= 1000 && u < units.length - 1) { x /= 1000; u++; }
    return (u === 0 ? x.toFixed(0) : x.toFixed(1)) + " " + units[u];
  }

  function bytes(n) {
    return n < 1000 ? n + " B" : si(n) + "B";
  }

  function dur(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24,
        m = Math.floor(s / 60) % 60, x = s % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + x + "s";
    return x + "s";
  }

  function refresh(j) {
    var els = document.querySelectorAll("[data-k]");
    for (var i = 0; i < els.length; i++) {
      var v = at(j, els[i].getAttribute("data-k"));
      if (v === undefined || v === null) continue;
      var f = els[i].getAttribute("data-f");
      els[i].textContent = f === "bytes" ? bytes(v) : f === "dur" ? dur(v) : String(v);
    }
  }

  function draw(fig, samples) {
    var max = 1;
    samples.forEach(function (s) { max = Math.max(max, s.rx, s.tx); });
    ["rx", "tx"].forEach(function (k) {
      var pts = samples.map(function (s, i) {
        var x = (i + SAMPLES - samples.length) * 600 / (SAMPLES - 1);
        var y = 128 - (s[k] / max) * 110;
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      fig.querySelector("polyline." + k).setAttribute("points", pts.join(" "));
    });
    fig.querySelector("text.max").textContent = "max " + si(max) + "bit/s";
    var last = samples[samples.length - 1];
    fig.querySelector(".rate").textContent =
      "rx " + si(last.rx) + "bit/s, " + si(last.rxp) + " pkt/s · tx " +
      si(last.tx) + "bit/s, " + si(last.txp) + " pkt/s";
  }

  function sample(j) {
    // The router's clock when it read the counters (the browser's is a
    // fallback): a throttled tab or a clock that jumps bends no rate.
    var clock = at(j, "router.clock_ms");
    var now = typeof clock === "number" ? clock / 1000 : Date.now() / 1000;
    var list = at(j, "interfaces.interfaces") || [];
    if (prev && now > prev.t) {
      var dt = now - prev.t;
      list.forEach(function (iface, i) {
        var p = prev.list[i];
        if (!p) return;
        var rate = function (k, mul) { return Math.max(0, (iface[k] - p[k]) * mul / dt); };
        var h = history[i] || (history[i] = []);
        h.push({ rx: rate("rx_bytes", 8), tx: rate("tx_bytes", 8),
                 rxp: rate("rx_packets", 1), txp: rate("tx_packets", 1) });
        if (h.length > SAMPLES) h.shift();
        var fig = document.querySelector("figure.chart[data-index=\"" + i + "\"]");
        if (fig) draw(fig, h);
      });
    }
    prev = { t: now, list: list };
  }

  function tick() {
    fetch("/status.json", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      })
      .then(function (j) {
        sample(j);
        refresh(j);
        polls++;
        document.body.setAttribute("data-polls", String(polls));
        var live = document.getElementById("live");
        live.className = "";
        live.textContent = "live, updated " + new Date().toLocaleTimeString();
      })
      .catch(function () {
        var live = document.getElementById("live");
        live.className = "stale";
        live.textContent = "the router did not answer, retrying";
      })
      .then(function () { setTimeout(tick, PERIOD_MS); });
  }

  tick();
})();
