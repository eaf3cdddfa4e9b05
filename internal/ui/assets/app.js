// The Driftless view: polls this server's JSON endpoints and renders them. Everything from the
// cluster is set as text (textContent), never as markup.
"use strict";

(function () {
  var state = { info: null, poll: 2000, skew: 0, route: null, timer: null, lastJSON: "", seq: 0,
    filter: { namespace: "", user: "", since: "24h", what: "" } };

  // h builds an element: h("td", {class: "num"}, "text", childNode, ...).
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k === "text") el.textContent = v; else el.setAttribute(k, v === true ? "" : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(el, x); }); return; }
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }

  function now() { return Date.now() + state.skew; }
  function isZero(t) { return !t || t.indexOf("0001-01-01") === 0; }
  function dur(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d > 0) return d + "d " + hh + "h";
    if (hh > 0) return hh + "h " + m + "m";
    if (m > 0) return m + "m " + sec + "s";
    return sec + "s";
  }
  function utc(t) { return new Date(t).toISOString().slice(0, 19).replace("T", " "); }
  // when renders a time as "3m 10s ago" with the exact time as its datetime and title.
  function when(t, never) {
    if (isZero(t)) return h("span", { class: "muted", text: never || "never" });
    var ms = now() - new Date(t).getTime();
    var text = ms >= 0 ? dur(ms) + " ago" : "in " + dur(-ms);
    return h("time", { datetime: t, title: utc(t) + " UTC", "data-ago": t, text: text });
  }
  function short(sha) { return sha ? sha.slice(0, 12) : ""; }
  function badge(kind, text) { return h("span", { class: "badge " + kind, text: text }); }
  function empty(text) { return h("p", { class: "empty", text: text }); }
  function errorBox(text) { return h("p", { class: "error", role: "alert", text: text }); }
  function notes(list) { return (list || []).map(function (n) { return h("p", { class: "note", text: n }); }); }

  // diffBlock renders a unified diff with + and - lines marked (as text, with a prefix kept).
  function diffBlock(diff, label) {
    var pre = h("pre", { "aria-label": label, tabindex: "0" });
    diff.replace(/\n$/, "").split("\n").forEach(function (line) {
      var cls = line.indexOf("+++") === 0 || line.indexOf("---") === 0 ? "hunk" :
        line[0] === "+" ? "add" : line[0] === "-" ? "del" : line.indexOf("@@") === 0 ? "hunk" : "";
      pre.appendChild(h("span", { class: cls, text: line + "\n" }));
    });
    return pre;
  }

  function table(caption, headers, rows) {
    return h("table", null,
      h("caption", { text: caption }),
      h("thead", null, h("tr", null, headers.map(function (x) { return h("th", { scope: "col", text: x }); }))),
      h("tbody", null, rows));
  }

  // Routes: #/sources, #/sources/NAME, #/break-glass, #/ledger?namespace=..&user=..&since=..&what=..
  function parseRoute() {
    var hash = location.hash || "#/sources";
    if (hash.indexOf("#/") !== 0) return null;
    var q = "", path = hash.slice(1), i = path.indexOf("?");
    if (i >= 0) { q = path.slice(i + 1); path = path.slice(0, i); }
    var parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    var params = new URLSearchParams(q);
    if (parts[0] === "sources" && parts.length === 2) return { view: "objects", nav: "sources", source: parts[1], params: params };
    if (parts[0] === "break-glass") return { view: "break-glass", nav: "break-glass", params: params };
    if (parts[0] === "ledger") return { view: "ledger", nav: "ledger", params: params };
    return { view: "sources", nav: "sources", params: params };
  }

  var views = {
    sources: {
      title: function () { return "Sources"; },
      url: function () { return "/api/sources"; },
      render: renderSources
    },
    objects: {
      title: function (r) { return "Objects of source " + r.source; },
      url: function (r) {
        var ns = state.info && state.info.namespace ? "?namespace=" + encodeURIComponent(state.info.namespace) : "";
        return "/api/sources/" + encodeURIComponent(r.source) + "/objects" + ns;
      },
      render: renderObjects
    },
    "break-glass": {
      title: function () { return "Break-glass"; },
      url: function () {
        var ns = state.info && state.info.namespace ? "?namespace=" + encodeURIComponent(state.info.namespace) : "";
        return "/api/break-glass" + ns;
      },
      render: renderBreakGlass
    },
    ledger: {
      title: function () { return "Ledger"; },
      url: function () {
        var p = new URLSearchParams();
        Object.keys(state.filter).forEach(function (k) { if (state.filter[k]) p.set(k, state.filter[k]); });
        return "/api/ledger?" + p.toString();
      },
      setup: setupLedger,
      render: renderLedger
    }
  };

  function go() {
    var r = parseRoute();
    if (!r) return; // an in-page anchor such as the skip link
    state.route = r;
    state.lastJSON = "";
    state.seq++;
    var v = views[r.view];
    document.getElementById("title").textContent = v.title(r);
    document.title = v.title(r) + " · Driftless";
    document.querySelectorAll("nav a[data-view]").forEach(function (a) {
      if (a.getAttribute("data-view") === r.nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    var root = document.getElementById("view");
    root.textContent = "";
    var results = h("div", { id: "results" }, h("p", { text: "Loading…" }));
    if (v.setup) v.setup(root, r);
    root.appendChild(results);
    tick();
  }

  function tick() {
    clearTimeout(state.timer);
    var r = state.route, v = views[r.view], seq = state.seq;
    fetch(v.url(r), { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (res.status === 401) throw new Error("logged out: start driftless ui again and open the link it prints");
        return res.text().then(function (body) {
          var data;
          try { data = JSON.parse(body); } catch (e) { throw new Error("HTTP " + res.status + ": " + body); }
          if (!res.ok) throw new Error(data.error || "HTTP " + res.status);
          return data;
        });
      })
      .then(function (data) {
        if (seq !== state.seq) return;
        if (data.now) state.skew = new Date(data.now).getTime() - Date.now();
        var copy = Object.assign({}, data); delete copy.now;
        var json = JSON.stringify(copy);
        document.getElementById("updated").textContent = "Updated " + utc(now()) + " UTC; refreshes every " + Math.round(state.poll / 1000) + " s.";
        if (json !== state.lastJSON) {
          state.lastJSON = json;
          replaceResults(v.render(data, r));
        }
      })
      .catch(function (e) {
        if (seq !== state.seq) return;
        state.lastJSON = "";
        replaceResults(errorBox("Cannot reach the view's server: " + e.message));
      })
      .then(function () { if (seq === state.seq) state.timer = setTimeout(tick, state.poll); });
  }

  // replaceResults swaps the results, keeping open <details> open and the focus where it was.
  function replaceResults(node) {
    var old = document.getElementById("results");
    var open = {};
    old.querySelectorAll("details[open][data-key]").forEach(function (d) { open[d.getAttribute("data-key")] = true; });
    var focused = document.activeElement && old.contains(document.activeElement) ? document.activeElement.getAttribute("data-key") ||
      (document.activeElement.parentElement && document.activeElement.parentElement.getAttribute("data-key")) : null;
    var fresh = h("div", { id: "results" }, node);
    fresh.querySelectorAll("details[data-key]").forEach(function (d) { if (open[d.getAttribute("data-key")]) d.open = true; });
    old.replaceWith(fresh);
    if (focused) {
      var again = fresh.querySelector('[data-key="' + CSS.escape(focused) + '"]');
      if (again) (again.tagName === "DETAILS" ? again.querySelector("summary") : again).focus();
    }
    refreshClocks();
  }

  function refreshClocks() {
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var left = new Date(el.getAttribute("data-until")).getTime() - now();
      el.textContent = left > 0 ? dur(left) + " left" : "expired: being reverted to Git";
    });
    document.querySelectorAll("[data-ago]").forEach(function (el) {
      var ms = now() - new Date(el.getAttribute("data-ago")).getTime();
      el.textContent = ms >= 0 ? dur(ms) + " ago" : "in " + dur(-ms);
    });
  }

  // --- sources ---
  function renderSources(d) {
    if (d.error) return errorBox("Cannot read the sources: " + d.error);
    if (!d.sources.length) return empty("No sources yet: no source has synced in " + nsName() + ". Once the reconciler syncs a source, it shows here.");
    var rows = d.sources.map(function (s) {
      return h("tr", { "data-source": s.source },
        h("th", { scope: "row" }, h("a", { href: "#/sources/" + encodeURIComponent(s.source), text: s.source })),
        h("td", null, s.ready ? badge("ok", "Ready") : badge("bad", "Not ready: " + (s.readyReason || s.result || "never synced"))),
        h("td", null, s.revision ? [h("code", { text: short(s.revision) }), " ", s.subject ? "“" + s.subject + "”" : "", h("br"), h("span", { class: "muted", text: s.author || "" })] : h("span", { class: "muted", text: "none applied yet" })),
        h("td", null, when(s.lastAttempt)),
        h("td", { class: "num" }, String(s.objectsManaged)),
        h("td", { class: "num" }, String(s.driftReverts)),
        h("td", { class: "num" }, s.breakGlass && s.breakGlass.length ? h("a", { href: "#/break-glass", text: String(s.breakGlass.length) }) : "0"));
    });
    var out = [table("Every source the reconciler syncs", ["Source", "Ready", "Revision", "Last sync", "Objects", "Drift reverts", "Break-glass"], rows)];
    d.sources.forEach(function (s) {
      var sec = h("section", { class: "source", "aria-labelledby": "src-" + s.source },
        h("h2", { id: "src-" + s.source, text: "Source " + s.source }),
        h("dl", { class: "facts" },
          h("dt", { text: "Repository" }), h("dd", null, h("code", { text: s.url || "" }), " ", s.ref || "", s.path ? " path " + s.path : ""),
          h("dt", { text: "Applied" }), h("dd", null, s.revision ? [h("code", { text: short(s.revision) }), " by " + (s.author || "(unknown)") + ", committed ", when(s.commitTime), ", applied ", when(s.lastApplied)] : "nothing yet"),
          h("dt", { text: "Ready" }), h("dd", null, s.ready ? "yes" : "no", s.readyMessage ? ": " + s.readyMessage : ""),
          h("dt", { text: "Last sync" }), h("dd", null, when(s.lastAttempt), s.message ? ": " + s.message : ""),
          h("dt", { text: "Last change" }), h("dd", null, s.lastChange ? [when(s.lastChangeTime), ": " + s.lastChange] : h("span", { class: "muted", text: "none recorded" }))),
        (s.violations || []).length ? h("div", null, h("h3", { text: "Policy violations that stopped the last sync" }),
          h("ul", null, s.violations.map(function (v) { return h("li", { text: (v.object ? v.object + ": " : "") + (v.message || JSON.stringify(v)) }); }))) : null,
        h("p", null, h("a", { href: "#/sources/" + encodeURIComponent(s.source), text: "Objects of " + s.source + " and their diffs" })),
        h("h3", { text: "History" }),
        s.history.length ? table("The last syncs of " + s.source + ", newest first", ["Synced", "Result", "Commit", "Author", "Subject", "What it did"], s.history.map(function (e) {
          return h("tr", null, h("td", null, when(e.time)),
            h("td", null, badge(e.result === "Applied" ? "ok" : "bad", e.result + (e.count > 1 ? " ×" + e.count : ""))),
            h("td", null, e.revision ? h("code", { text: short(e.revision) }) : h("span", { class: "muted", text: "not fetched" })),
            h("td", { text: e.author || "" }), h("td", { text: e.subject || "" }), h("td", { text: e.message || "" }));
        })) : empty("No sync recorded yet."));
      out.push(sec);
    });
    return out;
  }

  // --- objects ---
  function stateBadge(s) {
    var kind = { "in sync": "ok", "break-glass": "warn", "changed outside Git": "bad" }[s] || "info";
    return badge(kind, s);
  }
  function renderObjects(d, r) {
    var out = [h("p", null, h("a", { href: "#/sources", text: "← All sources" }))];
    if (d.error) return out.concat(errorBox("Cannot read source " + r.source + ": " + d.error));
    if (!d.found) out.push(empty("No source named " + r.source + " has a status yet."));
    out.push(h("p", { class: "note", text: d.diffNote }));
    out = out.concat(notes(d.notes));
    if ((d.forbidden || []).length) {
      out.push(h("details", { class: "note", "data-key": "forbidden" },
        h("summary", { text: "Not shown: objects of " + d.forbidden.length + " kinds your RBAC does not let you list" }),
        h("p", { class: "mono", text: d.forbidden.join(", ") })));
    }
    if (!d.objects.length) return out.concat(empty("No object you may list carries the label driftless.dev/source=" + r.source + "."));
    if (d.revision) out.push(h("p", null, "Source at ", h("code", { text: short(d.revision) }), "; " + d.objects.length + " objects."));
    out.push(h("div", { class: "objects" }, table("Live objects of " + r.source, ["Object", "State", "Applied at", "Written by others", "Diff"], d.objects.map(function (o) {
      var writers = (o.writers || []).map(function (w) {
        return h("li", null, h("code", { text: w.manager }), " (" + w.operation + (w.person ? ", a person's tool" : "") + ") ", isZero(w.time) ? "" : when(w.time), ": ", h("code", { text: w.fields.join(", ") }));
      });
      return h("tr", { "data-object": o.object },
        h("th", { scope: "row", text: o.object }),
        h("td", null, stateBadge(o.state), o.breakGlass ? [h("br"), "by " + (o.breakGlass.by || "(not recorded)") + ", ", h("span", { class: "countdown", "data-until": o.breakGlass.until })] : null),
        h("td", null, o.revision ? h("code", { text: short(o.revision) }) : h("span", { class: "muted", text: "not recorded" })),
        h("td", null, writers.length ? h("ul", null, writers) : h("span", { class: "muted", text: "nobody" })),
        h("td", null, o.diff ? h("details", { "data-key": "diff:" + o.object }, h("summary", { text: "Diff (" + o.diff.split("\n").length + " lines)" }), diffBlock(o.diff, "Diff of " + o.object)) : h("span", { class: "muted", text: "no difference" })));
    }))));
    return out;
  }

  // --- break-glass ---
  function patchBlock(s, key) {
    var out = [];
    if (s.patch) {
      out.push(h("h4", { text: s.active === false ? "Patch to commit (rebased on Git at " + short(s.endRevision) + ")" : "Patch to commit to keep the change (rebased on the current Git; apply it as a merge patch to the overlay)" }));
      out.push(h("pre", { "aria-label": "Patch to commit for " + s.object, tabindex: "0", "data-key": key, text: s.patch }));
    } else {
      out.push(h("p", { class: "muted", text: s.ending ? "Nothing to commit: Git has every change of the session." : "No change to commit yet: the object still matches Git." }));
    }
    if ((s.conflicts || []).length) {
      out.push(h("div", { class: "conflicts", role: "note" },
        h("h4", { text: "⚠ Conflicts: the session and Git both changed these; the patch leaves them out, decide and commit by hand" }),
        h("ul", null, s.conflicts.map(function (c) {
          return h("li", { class: "conflict" }, h("strong", { text: "conflict " }), h("code", { text: c.field }), ": yours ", h("code", { text: c.yours }), ", Git ", h("code", { text: c.git }));
        }))));
    }
    if (s.note) out.push(h("p", { class: "note", text: s.note }));
    return out;
  }
  function renderBreakGlass(d) {
    if (d.error) return errorBox("Cannot read the break-glass record: " + d.error);
    var out = [h("h2", { text: "Active sessions" })];
    if (!d.active.length) out.push(empty("No active break-glass" + (state.info && state.info.namespace ? " in namespace " + state.info.namespace : "") + ". Objects in protected namespaces change only through Git."));
    d.active.forEach(function (s) {
      var id = "bg-" + s.object.replace(/[^A-Za-z0-9]+/g, "-");
      out.push(h("article", { class: "session", "aria-labelledby": id, "data-session": s.object },
        h("h3", { id: id, text: s.object }),
        h("dl", { class: "facts" },
          h("dt", { text: "Who" }), h("dd", { class: "by", text: (s.by || "(not recorded)") + (s.group ? " (group " + s.group + ")" : "") }),
          h("dt", { text: "Reason" }), h("dd", { class: "reason", text: s.reason || "" }),
          h("dt", { text: "Time left" }), h("dd", null, h("span", { class: "countdown", "data-until": s.until, role: "timer", "aria-live": "off" }), " (expires ", h("time", { datetime: s.until, text: utc(s.until) + " UTC" }), "; then the object is reverted to Git)"),
          h("dt", { text: "Started" }), h("dd", null, when(s.start), s.startRevision ? [" with Git at ", h("code", { text: short(s.startRevision) })] : ""),
          h("dt", { text: "Source" }), h("dd", { text: s.source }),
          s.managers ? [h("dt", { text: "Written by" }), h("dd", { text: s.managers })] : null),
        patchBlock(s, "patch:" + s.object)));
    });
    out.push(h("h2", { text: "Recently ended" }));
    if (!d.ended.length) out.push(empty("No ended break-glass session on record."));
    else out.push(table("Ended sessions, newest first", ["Object", "By", "Reason", "Ended", "Patch to commit"], d.ended.map(function (s) {
      s.active = false;
      return h("tr", null, h("th", { scope: "row", text: s.object }), h("td", { text: s.by || "(not recorded)" }), h("td", { text: s.reason || "" }),
        h("td", null, s.ending + " ", when(s.end)),
        h("td", null, h("details", { "data-key": "ended:" + s.object + s.start }, h("summary", { text: s.patch ? "Patch" + ((s.conflicts || []).length ? " and " + s.conflicts.length + " conflicts" : "") : "Nothing to commit" }), patchBlock(s, "endpatch:" + s.object + s.start))));
    })));
    return out;
  }

  // --- ledger ---
  var whats = [["", "everything"], ["denied", "denied attempts"], ["safe operation", "safe operations"], ["revert", "drift reverts"], ["break-glass", "changes under break-glass"], ["break-glass ended", "break-glass ends"], ["revision applied", "applied revisions"]];
  var sinces = [["15m", "15 minutes"], ["1h", "1 hour"], ["6h", "6 hours"], ["24h", "24 hours"], ["168h", "7 days"], ["720h", "30 days"], ["2160h", "90 days"]];
  function setupLedger(root, r) {
    var f = state.filter;
    ["namespace", "user", "since", "what"].forEach(function (k) { if (r.params.has(k)) f[k] = r.params.get(k); });
    if (!r.params.has("namespace") && state.info && state.info.namespace) f.namespace = state.info.namespace;
    function sel(id, options, value) {
      return h("select", { id: id, name: id }, options.map(function (o) { return h("option", { value: o[0], selected: o[0] === value, text: o[1] }); }));
    }
    var form = h("form", { class: "filters", role: "search", "aria-label": "Filter the ledger" },
      h("label", { for: "f-namespace" }, "Namespace", h("input", { id: "f-namespace", name: "namespace", type: "search", value: f.namespace, placeholder: "all namespaces", autocomplete: "off" })),
      h("label", { for: "f-user" }, "User", h("input", { id: "f-user", name: "user", type: "search", value: f.user, placeholder: "anyone", autocomplete: "off" })),
      h("label", { for: "f-since" }, "In the last", sel("f-since", sinces, f.since)),
      h("label", { for: "f-what" }, "Show", sel("f-what", whats, f.what)));
    var debounce;
    function changed() {
      clearTimeout(debounce);
      debounce = setTimeout(function () {
        f.namespace = form.elements.namespace.value.trim();
        f.user = form.elements.user.value.trim();
        f.since = form.elements["f-since"].value;
        f.what = form.elements["f-what"].value;
        var p = new URLSearchParams();
        Object.keys(f).forEach(function (k) { if (f[k]) p.set(k, f[k]); });
        history.replaceState(null, "", "#/ledger?" + p.toString());
        state.lastJSON = "";
        state.seq++;
        tick();
      }, 250);
    }
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", function (e) { e.preventDefault(); changed(); });
    root.appendChild(form);
  }
  var categoryBadge = { "denied": "bad", "revert": "warn", "break-glass": "warn", "break-glass ended": "info", "safe operation": "ok", "revision applied": "info" };
  function renderLedger(d) {
    var out = [];
    if (d.disabled) out.push(errorBox("The ledger is disabled in this installation (ledger.disabled in the DriftlessConfig): denials, break-glass, safe operations and reverts are not recorded."));
    out = out.concat(notes(d.notes));
    if (d.error) return out.concat(errorBox("Cannot read the ledger: " + d.error));
    if (!d.entries.length) {
      out.push(empty(d.disabled ? "No ledger entries." : "No ledger entries match these filters in the last " + d.filter.since + "."));
      return out;
    }
    out.push(h("p", { class: "muted", text: d.matched > d.entries.length ? "Showing the newest " + d.entries.length + " of " + d.matched + " matching entries." : d.matched + " matching entries, newest first." }));
    out.push(table("Ledger entries", ["Time", "What", "Who", "Decision", "Object", "Details"], d.entries.map(function (e) {
      var detail = [];
      if (e.message) detail.push(h("div", { text: e.message }));
      if (e.fields && e.fields.length) detail.push(h("div", null, "fields: ", h("code", { text: e.fields.join(", ") })));
      if (e.breakGlass && e.breakGlass.reason) detail.push(h("div", { text: "break-glass reason: " + e.breakGlass.reason }));
      if (e.revision) detail.push(h("div", null, h("code", { text: short(e.revision.commit) }), " " + (e.revision.subject || "") + (e.revision.author ? " by " + e.revision.author : "")));
      if (e.reason) detail.push(h("div", { class: "muted", text: e.reason }));
      return h("tr", { "data-category": e.category, "data-user": e.user || "" },
        h("td", null, when(e.time)),
        h("td", null, badge(categoryBadge[e.category] || "info", e.category)),
        h("td", { class: "user", text: e.user || e.by || "" }),
        h("td", { text: (e.operation ? e.operation + " " : "") + e.decision }),
        h("td", { class: "object", text: e.what + (e.source ? " (source " + e.source + ")" : "") }),
        h("td", null, detail));
    })));
    return out;
  }

  function nsName() { return state.info ? "namespace " + state.info.driftlessNamespace : "the Driftless namespace"; }

  function start() {
    fetch("/api/info", { credentials: "same-origin", cache: "no-store" })
      .then(function (res) { if (!res.ok) throw new Error("HTTP " + res.status); return res.json(); })
      .then(function (info) {
        state.info = info;
        if (info.pollMillis > 0) state.poll = info.pollMillis;
        var who = document.getElementById("who");
        who.textContent = info.error ? info.error : "Viewing as " + info.user + (info.context ? " (context " + info.context + ")" : "") +
          (info.namespace ? ", namespace " + info.namespace : "");
      })
      .catch(function (e) { document.getElementById("who").textContent = "Who you are is unknown: " + e.message; })
      .then(function () {
        window.addEventListener("hashchange", go);
        document.getElementById("skip").addEventListener("click", function (e) { e.preventDefault(); document.getElementById("main").focus(); });
        setInterval(refreshClocks, 1000);
        go();
      });
  }
  start();
})();
