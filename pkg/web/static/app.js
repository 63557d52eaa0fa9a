// dripflow UI enhancements. Every page works without this file; it adds
// confirmations, auto-submitting filters, local times, count previews and
// live run progress over server-sent events. It never re-renders a form or
// an input, so nothing a user is typing is lost.
(function () {
  "use strict";

  var terminal = { succeeded: true, failed: true, cancelled: true };

  function formatCount(n) {
    return Math.round(n).toLocaleString("en-US");
  }
  function formatPercent(p) {
    return p < 0 ? "—" : p.toFixed(1) + " %";
  }
  function formatSeconds(sec) {
    if (sec < 0 || !isFinite(sec)) return "—";
    if (sec < 10) return sec.toFixed(1) + "s";
    var t = Math.round(sec);
    var d = Math.floor(t / 86400), h = Math.floor(t / 3600) % 24, m = Math.floor(t / 60) % 60, s = t % 60;
    if (d > 0) return h ? d + "d " + h + "h" : d + "d";
    if (h > 0) return m ? h + "h " + m + "m" : h + "h";
    if (m > 0) return s ? m + "m " + s + "s" : m + "m";
    return s + "s";
  }
  function formatRate(r) {
    if (!(r > 0) || !isFinite(r)) return "—";
    return r >= 100 ? formatCount(r) + " rows/s" : r.toFixed(1) + " rows/s";
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localInputValue(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  // isoLocal writes d in the reader's time zone as ISO 8601 with the
  // zone's offset, "2026-12-02 00:40:16 +01:00": one unambiguous format on
  // every page (the CLI writes the same).
  function isoLocal(d) {
    var off = -d.getTimezoneOffset();
    var sign = off < 0 ? "-" : "+";
    off = Math.abs(off);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " +
      sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }
  // relativeTime says how long ago (or in how long) d is from now, as
  // people say it: "just now", "40 s ago", "3 min ago", "5 h ago",
  // "2 d ago", "in 10 min"; beyond a week it is the date itself.
  function relativeTime(d, now) {
    var s = Math.round((now - d.getTime()) / 1000);
    var future = s < 0;
    s = Math.abs(s);
    var t;
    if (s < 10) return future ? "in a few s" : "just now";
    if (s < 60) t = s + " s";
    else if (s < 3600) t = Math.floor(s / 60) + " min";
    else if (s < 86400) t = Math.floor(s / 3600) + " h";
    else if (s < 7 * 86400) t = Math.floor(s / 86400) + " d";
    else return isoLocal(d);
    return future ? "in " + t : t + " ago";
  }
  // <time data-relative> reads as a relative time, the ISO time (as
  // isoLocal writes it) in its title; refreshed as the clock moves.
  function relTime(el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) return;
    el.title = isoLocal(d);
    el.textContent = relativeTime(d, Date.now());
  }
  function localTime(el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) return;
    if (!el.title) el.title = el.getAttribute("datetime") + " (UTC)";
    el.textContent = isoLocal(d);
  }

  // Confirmations: <form data-confirm="…">.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  // Filters that apply as soon as they change.
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) {
      el.form.submit();
    }
  });

  function init() {
    document.querySelectorAll("time[data-local]").forEach(localTime);
    document.querySelectorAll("time[data-relative]").forEach(relTime);
    setInterval(function () { document.querySelectorAll("time[data-relative]").forEach(relTime); }, 15000);
    initRunForm();
    initRun();
    initFlowForm();
    document.querySelectorAll("[data-refresh][id]").forEach(autoRefresh);
  }

  // swapFrom fetches url and replaces the content of each element of els
  // by the element with the same id in the answer. It keeps an element
  // the answer lacks (a login page, an error) and reports whether the
  // first one was swapped.
  function swapFrom(els, url) {
    if (!window.fetch || !window.DOMParser) return Promise.resolve(false);
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (resp) {
      if (!resp.ok) return false;
      return resp.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var swapped = [];
        els.forEach(function (el) {
          var fresh = el && doc.getElementById(el.id);
          if (!fresh) { swapped.push(false); return; }
          el.innerHTML = fresh.innerHTML;
          el.querySelectorAll("time[data-local]").forEach(localTime);
          el.querySelectorAll("time[data-relative]").forEach(relTime);
          swapped.push(true);
        });
        return swapped[0];
      });
    }).catch(function () { return false; });
  }

  // Lists that refresh by themselves: <div id="…" data-refresh="5000">,
  // while the page is visible and the pointer is not over a link of it.
  function autoRefresh(el) {
    var every = parseInt(el.getAttribute("data-refresh"), 10);
    if (!(every >= 1000)) return;
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden || el.matches(":hover")) return;
      busy = true;
      swapFrom([el], window.location.href).then(function () { busy = false; });
    }, every);
  }

  // The flow form: show the settings of the chosen connector kinds only,
  // and a transform type's example settings. The server renders the same
  // on every post; this only saves a round trip.
  function initFlowForm() {
    var form = document.getElementById("flow-form");
    if (!form) return;
    form.querySelectorAll(".no-js").forEach(function (el) { el.hidden = true; });
    form.querySelectorAll("select[data-kind-select]").forEach(function (sel) {
      var side = sel.getAttribute("data-kind-select");
      var show = function () {
        form.querySelectorAll('fieldset.kind-settings[data-side="' + side + '"]').forEach(function (fs) {
          fs.hidden = fs.getAttribute("data-kind") !== sel.value;
        });
      };
      sel.addEventListener("change", show);
      show();
    });
    form.addEventListener("change", function (ev) {
      var sel = ev.target;
      var id = sel.getAttribute && sel.getAttribute("data-hint-for");
      if (!id) return;
      var area = document.getElementById(id);
      var opt = sel.options[sel.selectedIndex];
      if (area && opt) area.placeholder = opt.getAttribute("data-hint") || "";
    });
  }

  // The "start run" form: the reader's time zone, scheduling, previews.
  function initRunForm() {
    var form = document.getElementById("run-form");
    if (!form) return;
    var tz = form.querySelector("input[data-auto-tz]");
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
    if (tz && zone && tz.value === "UTC" && zone !== "UTC") {
      tz.value = zone;
      // Defaults of time params were written in UTC: show the same
      // instants in the reader's zone.
      form.querySelectorAll("input[data-utc]").forEach(function (input) {
        var d = new Date(input.getAttribute("data-utc"));
        if (!isNaN(d.getTime())) input.value = localInputValue(d);
      });
    }
    var startAt = form.querySelector("input[name=start_at]");
    var later = document.getElementById("when-later");
    if (startAt && later) {
      startAt.addEventListener("input", function () { if (startAt.value) later.checked = true; });
    }
    var button = form.querySelector("button[data-preview]");
    var out = document.getElementById("preview");
    if (!button || !out || !window.fetch || !window.FormData) return;
    button.addEventListener("click", function (ev) {
      ev.preventDefault();
      out.textContent = "Counting…";
      fetch(button.getAttribute("formaction"), {
        // Encoded like the form itself: URL-encoded, or multipart when it
        // uploads a file (a CSV param).
        method: "POST", credentials: "same-origin",
        body: form.enctype === "multipart/form-data" ? new FormData(form) : new URLSearchParams(new FormData(form)),
        headers: { "Accept": "application/json" }
      }).then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      }).then(function (res) {
        out.textContent = "";
        var p = document.createElement("p");
        if (!res.ok) {
          p.className = "error-text";
          p.textContent = res.body.error || "The preview failed.";
        } else {
          var b = res.body;
          p.className = "preview-result";
          var records = document.createElement("strong");
          records.textContent = (b.estimated ? "~" : "") + formatCount(b.records);
          var batches = document.createElement("strong");
          batches.textContent = formatCount(b.batches);
          p.appendChild(records);
          p.appendChild(document.createTextNode(" records" + (b.estimated ? " (estimated)" : "") + " in "));
          p.appendChild(batches);
          p.appendChild(document.createTextNode(" batches of " + formatCount(b.batch_size) + "."));
        }
        out.appendChild(p);
      }).catch(function () {
        out.textContent = "The preview failed; try again.";
      });
    });
  }

  // The run page: live progress from {base}/api/v1/runs/{id}/events.
  function initRun() {
    var run = document.getElementById("run");
    if (!run || !window.EventSource) return;
    if (terminal[run.getAttribute("data-status")]) return;
    var field = function (name) { return run.querySelector('[data-field="' + name + '"]'); };
    var set = function (name, text) { var el = field(name); if (el && el.textContent !== text) el.textContent = text; };
    var loaded = {};
    run.querySelectorAll("[data-batch]").forEach(function (el) {
      loaded[el.getAttribute("data-batch")] = el.textContent;
    });
    var chart = field("chart");
    var chartURL = run.getAttribute("data-chart");
    var chartAt = Date.now();

    function refreshChart(force) {
      if (!chart || (!force && Date.now() - chartAt < 5000)) return;
      chartAt = Date.now();
      chart.src = chartURL + "?t=" + chartAt;
    }

    function setTime(name, iso) {
      var el = field(name);
      if (!iso || !el) return;
      var have = el.querySelector("time");
      if (have && have.getAttribute("datetime") === iso) return;
      var t = document.createElement("time");
      t.setAttribute("datetime", iso);
      t.textContent = iso;
      el.textContent = "";
      el.appendChild(t);
      localTime(t);
    }

    // The batch table follows the counts: refreshed at most every 3 s
    // while they change, unless the reader has a batch's details open.
    var batches = document.getElementById("batches");
    var refreshing = false, refreshedAt = 0, pending = false;
    function refreshBatches() {
      var stale = field("stale");
      if (!batches || refreshing) { pending = true; return; }
      if (batches.querySelector("details[open]")) { if (stale) stale.hidden = false; return; }
      var wait = refreshedAt + 3000 - Date.now();
      if (wait > 0) {
        if (!pending) { pending = true; window.setTimeout(function () { pending = false; refreshBatches(); }, wait); }
        return;
      }
      refreshing = true;
      refreshedAt = Date.now();
      swapFrom([batches, document.getElementById("run-error-box")], window.location.href).then(function (ok) {
        refreshing = false;
        if (ok) {
          run.querySelectorAll("[data-batch]").forEach(function (el) { loaded[el.getAttribute("data-batch")] = el.textContent; });
          var st = field("stale");
          if (st) st.hidden = true;
        }
        if (pending) { pending = false; refreshBatches(); }
      });
    }

    // The timeline follows the run: refreshed at most every 2 s when the
    // run changes, and every 5 s while it is live (throttling and notes
    // change no count), once more after it ended (its finished event).
    var timeline = document.getElementById("timeline");
    var tlBusy = false, tlAt = 0, tlPending = false;
    function refreshTimeline() {
      if (!timeline) return;
      if (tlBusy) { tlPending = true; return; }
      var wait = tlAt + 2000 - Date.now();
      if (wait > 0) {
        if (!tlPending) { tlPending = true; window.setTimeout(function () { tlPending = false; refreshTimeline(); }, wait); }
        return;
      }
      tlBusy = true;
      tlAt = Date.now();
      swapFrom([timeline, document.getElementById("failed-before-box"), document.getElementById("held-box")], window.location.href).then(function () {
        tlBusy = false;
        if (tlPending) { tlPending = false; refreshTimeline(); }
      });
    }
    var tlTimer = window.setInterval(function () {
      if (!document.hidden) refreshTimeline();
    }, 5000);
    var tlLast = "";

    function update(r) {
      var p = r.progress;
      var tlKey = r.status + " " + JSON.stringify(p.batches || {});
      if (tlLast && tlKey !== tlLast) refreshTimeline();
      tlLast = tlKey;
      if (terminal[r.status]) {
        window.clearInterval(tlTimer);
        window.setTimeout(refreshTimeline, 2500);
      }
      run.setAttribute("data-status", r.status);
      var badge = field("status");
      if (badge) { badge.textContent = r.status; badge.className = "state state-" + r.status; }
      var bar = field("progress");
      if (bar) {
        if (p.percent >= 0) { bar.value = p.percent; } else { bar.removeAttribute("value"); }
        bar.textContent = formatPercent(p.percent);
      }
      set("percent", formatPercent(p.percent));
      set("processed", formatCount(p.processed));
      set("total", p.total < 0 ? (terminal[r.status] ? "not counted" : "counting…") : (p.total_estimated ? "~" : "") + formatCount(p.total));
      set("rate", formatRate(p.rate));
      set("eta", formatSeconds(p.eta_seconds));
      set("elapsed", formatSeconds(p.elapsed_seconds));
      set("written", formatCount(r.rows.written));
      set("skipped", formatCount(r.rows.skipped));
      setTime("started", r.started_at);
      setTime("finished", r.finished_at);
      var changed = false;
      run.querySelectorAll("[data-batch]").forEach(function (el) {
        var st = el.getAttribute("data-batch");
        var text = formatCount((p.batches && p.batches[st]) || 0);
        if (el.textContent !== text) el.textContent = text;
        if (text !== loaded[st]) changed = true;
      });
      if (changed) refreshBatches();
      var failed = (p.batches && p.batches.failed) || 0;
      run.querySelectorAll("form[data-when]").forEach(function (form) {
        var show = form.getAttribute("data-when").split(" ").indexOf(r.status) >= 0 &&
          (!form.hasAttribute("data-needs-failed") || failed > 0);
        if (form.hidden === show) form.hidden = !show;
      });
      refreshChart(terminal[r.status]);
    }

    var live = field("live");
    var es = new EventSource(run.getAttribute("data-events"));
    es.addEventListener("open", function () { if (live) live.hidden = false; });
    es.addEventListener("error", function () { if (live) live.hidden = true; });
    es.addEventListener("run", function (ev) {
      var r;
      try { r = JSON.parse(ev.data); } catch (e) { return; }
      update(r);
      if (terminal[r.status]) {
        // The server ends the stream when the run ends; do not reconnect.
        es.close();
        if (live) live.hidden = true;
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
