/* tracekit report: draws the embedded aggregates with the DOM and inline SVG. No framework, no fetch.
 * The data block (#tracekit-data) is built by tracekit/analyze/renderers/html.py (build_view). */
(function () {
  "use strict";

  var D = JSON.parse(document.getElementById("tracekit-data").textContent);
  // Sampled spans point into one shared table of resources (a process's attributes are sent once).
  D.samples.forEach(function (t) {
    t.spans.forEach(function (s) { s.resource = D.resources[s.resource_ref] || {}; s.attributes = s.attributes || {}; });
  });
  // The SVG namespace, taken from the inline <svg> in the page rather than spelled out here.
  var SVGNS = document.getElementById("tk-defs").namespaceURI;
  var LAYERS = D.layers;
  var COLORS = {};
  var css = getComputedStyle(document.documentElement);
  LAYERS.forEach(function (l) { COLORS[l] = css.getPropertyValue("--l-" + l).trim() || "#94a3b8"; });
  function color(layer) { return COLORS[layer] || COLORS.unknown; }

  // ---- small helpers ------------------------------------------------------------------------------
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function sv(tag, attrs, kids) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") e.textContent = v;
      else if (k === "style" && typeof v === "object") Object.assign(e.style, v);
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    });
  }
  function append(e, kids) {
    if (kids === null || kids === undefined) return;
    if (!Array.isArray(kids)) kids = [kids];
    kids.forEach(function (k) {
      if (k === null || k === undefined || k === false) return;
      if (Array.isArray(k)) { append(e, k); return; }
      e.appendChild(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
    });
  }
  function fmtMs(v) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    var a = Math.abs(v);
    if (a >= 100) return v.toFixed(0) + " ms";
    if (a >= 10) return v.toFixed(1) + " ms";
    return v.toFixed(2) + " ms";
  }
  function fmtPct(share) { return share === null || share === undefined ? "–" : (share * 100).toFixed(1) + "%"; }
  function fmtInt(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }
  function shortPod(pod) {
    if (!pod) return "";
    return pod.length > 26 ? pod.slice(0, 12) + "…" + pod.slice(-12) : pod;
  }
  function clip(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // ---- tooltip ------------------------------------------------------------------------------------
  var tip = document.getElementById("tk-tip");
  function tipRows(title, rows) {
    var t = el("table");
    rows.forEach(function (r) { if (r) t.appendChild(el("tr", null, [el("td", { class: "m", text: r[0] }), el("td", { text: r[1] })])); });
    return [el("b", { text: title }), t];
  }
  function showTip(evt, content) {
    tip.textContent = "";
    append(tip, content);
    tip.hidden = false;
    moveTip(evt);
  }
  function moveTip(evt) {
    if (tip.hidden) return;
    var x = evt.clientX + 14, y = evt.clientY + 14;
    var r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = evt.clientX - r.width - 14;
    if (y + r.height > window.innerHeight - 8) y = evt.clientY - r.height - 14;
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }
  function hideTip() { tip.hidden = true; }
  function withTip(node, contentFn) {
    node.addEventListener("mouseenter", function (e) { showTip(e, contentFn()); });
    node.addEventListener("mousemove", moveTip);
    node.addEventListener("mouseleave", hideTip);
    node.addEventListener("focus", function () {
      var r = node.getBoundingClientRect();
      showTip({ clientX: r.left + r.width / 2, clientY: r.bottom }, contentFn());
    });
    node.addEventListener("blur", hideTip);
    return node;
  }

  // ---- header and summary cards -------------------------------------------------------------------
  var S = D.summary;
  document.getElementById("tk-meta").textContent =
    "generated " + D.meta.generated_at + " · tracekit " + D.meta.tracekit_version;
  function card(id, key, value, sub, bad) {
    return el("div", { class: "tk-card" + (bad ? " bad" : ""), id: id }, [
      el("div", { class: "k", text: key }),
      el("div", { class: "v", text: value }),
      el("div", { class: "s", text: sub || "" })
    ]);
  }
  var errRate = S.traces ? S.error_traces / S.traces : 0;
  append(document.getElementById("tk-summary"), [
    card("tk-card-traces", "Traces", fmtInt(S.traces), D.samples.length + " waterfalls sampled"),
    card("tk-card-spans", "Spans", fmtInt(S.spans), S.traces ? (S.spans / S.traces).toFixed(1) + " per trace" : ""),
    card("tk-card-errors", "Failed requests", fmtInt(S.error_traces), fmtPct(errRate) + " of traces", S.error_traces > 0),
    card("tk-card-p50", "p50 end-to-end", fmtMs(S.duration.p50_ms), "mean " + fmtMs(S.duration.mean_ms)),
    card("tk-card-p95", "p95 end-to-end", fmtMs(S.duration.p95_ms), ""),
    card("tk-card-p99", "p99 end-to-end", fmtMs(S.duration.p99_ms), "max " + fmtMs(S.duration.max_ms))
  ]);

  // ---- request flow diagram -----------------------------------------------------------------------
  function renderFlow() {
    var host = document.getElementById("tk-flow");
    var nodes = D.flow.nodes, edges = D.flow.edges;
    if (!nodes.length) { host.appendChild(el("p", { class: "tk-empty", text: "No spans to draw a flow from." })); return; }
    var NW = 176, NH = 82, COLW = 300, ROWH = 120, PADX = 16, TOP = 40;
    var cols = [];
    nodes.forEach(function (n) { if (cols.indexOf(n.layer) < 0) cols.push(n.layer); });
    cols.sort(function (a, b) { return idx(a) - idx(b); });
    function idx(l) { var i = LAYERS.indexOf(l); return i < 0 ? LAYERS.length : i; }
    // Pods get a band of rows each, so a pod's containers line up across columns inside one box.
    var pods = [];
    nodes.forEach(function (n) { if (n.pod && pods.indexOf(n.pod) < 0) pods.push(n.pod); });
    pods.sort();
    var podStart = {}, rows = 0;
    pods.forEach(function (p) {
      podStart[p] = rows;
      var h = 1;
      cols.forEach(function (c) {
        var k = nodes.filter(function (n) { return n.pod === p && n.layer === c; }).length;
        if (k > h) h = k;
      });
      rows += h;
    });
    var loose = {};
    nodes.forEach(function (n) { if (!n.pod) (loose[n.layer] = loose[n.layer] || []).push(n); });
    Object.keys(loose).forEach(function (c) {
      // Databases sit beside the pod that uses them.
      loose[c].forEach(function (n) { if (n.host_pod && podStart[n.host_pod] !== undefined) n._row = podStart[n.host_pod]; });
      var free = loose[c].filter(function (n) { return n._row === undefined; });
      if (free.length > rows) rows = free.length;
    });
    rows = Math.max(rows, 1);
    Object.keys(loose).forEach(function (c) {
      var free = loose[c].filter(function (n) { return n._row === undefined; });
      var off = (rows - free.length) / 2;
      free.forEach(function (n, i) { n._row = off + i; });
    });
    var seen = {};
    nodes.forEach(function (n) {
      if (n.pod) {
        var key = n.pod + "|" + n.layer;
        seen[key] = (seen[key] || 0);
        n._row = podStart[n.pod] + seen[key]++;
      }
      n._x = PADX + cols.indexOf(n.layer) * COLW;
      n._y = TOP + 18 + n._row * ROWH;
    });
    var W = PADX * 2 + (cols.length - 1) * COLW + NW, H = TOP + 18 + rows * ROWH + 10;
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-label": "Request flow diagram", id: "tk-flow-svg",
      style: { maxWidth: W + "px", minWidth: Math.min(W, 960) + "px" } });
    cols.forEach(function (c, i) {
      svg.appendChild(sv("text", { x: PADX + i * COLW + NW / 2, y: 18, "text-anchor": "middle", class: "col-h", text: c === "service" ? "Service" : c }));
    });
    pods.forEach(function (p) {
      var mine = nodes.filter(function (n) { return n.pod === p; });
      var x0 = Math.min.apply(null, mine.map(function (n) { return n._x; })) - 12;
      var x1 = Math.max.apply(null, mine.map(function (n) { return n._x; })) + NW + 12;
      var y0 = Math.min.apply(null, mine.map(function (n) { return n._y; })) - 24;
      var y1 = Math.max.apply(null, mine.map(function (n) { return n._y; })) + NH + 10;
      svg.appendChild(sv("g", { class: "pod", "data-pod": p }, [
        sv("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 10 }),
        sv("text", { x: x0 + 10, y: y0 + 15, text: (D.flow.folded_pods || []).indexOf(p) >= 0 ? p : "pod " + shortPod(p) })
      ]));
    });
    var byId = {};
    nodes.forEach(function (n) { byId[n.id] = n; });
    var maxCount = Math.max.apply(null, edges.map(function (e) { return e.count; }).concat([1]));
    var fanOut = {}, fanIn = {};
    edges.forEach(function (e) { fanOut[e.from] = (fanOut[e.from] || 0) + 1; fanIn[e.to] = (fanIn[e.to] || 0) + 1; });
    function bez(t, p0, p1, p2, p3) {
      var u = 1 - t;
      return [0, 1].map(function (i) { return u * u * u * p0[i] + 3 * u * u * t * p1[i] + 3 * u * t * t * p2[i] + t * t * t * p3[i]; });
    }
    var edgeLayer = sv("g"), nodeLayer = sv("g"), labelLayer = sv("g");
    svg.appendChild(edgeLayer); svg.appendChild(nodeLayer); svg.appendChild(labelLayer);
    edges.forEach(function (e) {
      var a = byId[e.from], b = byId[e.to];
      if (!a || !b) return;
      var x1 = a._x + NW, y1 = a._y + NH / 2, x2 = b._x, y2 = b._y + NH / 2, d, lx, ly, anchor = "middle";
      if (b._x > a._x) {
        var mx = (x1 + x2) / 2;
        d = "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + (x2 - 2) + "," + y2;
        // Fan-out edges get their label near the target, fan-in edges near the source: that is where
        // the curves are apart, so the labels do not pile up on each other.
        if (fanOut[e.from] > 1 && fanOut[e.from] >= fanIn[e.to]) {
          lx = x2 - 12; ly = y2 - 40; anchor = "end";
        } else if (fanIn[e.to] > 1) {
          lx = x1 + 12; ly = y1 - 40; anchor = "start";
        } else {
          var p = bez(0.5, [x1, y1], [mx, y1], [mx, y2], [x2, y2]);
          lx = p[0]; ly = p[1] - 12;
        }
      } else if (b._x === a._x && b._y !== a._y) {
        // Same column (containers of one pod stacked): a straight arrow, the label beside it.
        var down = b._y > a._y;
        x1 = x2 = a._x + NW / 2;
        y1 = down ? a._y + NH : a._y; y2 = down ? b._y - 2 : b._y + NH + 2;
        d = "M" + x1 + "," + y1 + " L" + x2 + "," + y2;
        lx = x1 + 10; ly = (y1 + y2) / 2 - 4; anchor = "start";
      } else {
        // Backwards: loop under the boxes.
        x2 = b._x + NW / 2; y2 = b._y + NH; x1 = a._x + NW / 2; y1 = a._y + NH;
        var dip = Math.max(y1, y2) + 30;
        d = "M" + x1 + "," + y1 + " C" + x1 + "," + dip + " " + x2 + "," + dip + " " + x2 + "," + (y2 + 2);
        lx = (x1 + x2) / 2; ly = dip - 6;
      }
      var err = e.errors > 0;
      var g = sv("g", { class: "edge" + (err ? " err" : ""), tabindex: 0, "data-from": e.from, "data-to": e.to,
        "data-count": e.count, "data-errors": e.errors, "data-p50": e.p50_ms, "data-p95": e.p95_ms });
      g.appendChild(sv("path", { d: d, "stroke-width": 1.5 + 3.5 * Math.log(1 + e.count) / Math.log(1 + maxCount),
        "marker-end": err ? "url(#tk-arrow-err)" : "url(#tk-arrow)" }));
      edgeLayer.appendChild(g);
      var t = sv("text", { x: lx, y: ly - 4, "text-anchor": anchor });
      t.appendChild(sv("tspan", { text: fmtInt(e.count) + "×" }));
      if (err) t.appendChild(sv("tspan", { class: "e", text: " · " + fmtInt(e.errors) + " err" }));
      var t2 = sv("text", { x: lx, y: ly + 10, "text-anchor": anchor, text: fmtMs(e.p50_ms).replace(" ms", "") + " / " + fmtMs(e.p95_ms) });
      var lab = sv("g", { class: "edge" + (err ? " err" : "") }, [t, t2]);
      if (e.net_p50_ms !== undefined) lab.appendChild(sv("text", { x: lx, y: ly + 24, "text-anchor": anchor, text: "net " + fmtMs(e.net_p50_ms) }));
      labelLayer.appendChild(lab);
      var tipFn = function () {
        return tipRows(a.label + " → " + b.label, [
          ["calls", fmtInt(e.count)], ["errors", fmtInt(e.errors)], ["p50", fmtMs(e.p50_ms)], ["p95", fmtMs(e.p95_ms)],
          e.net_p50_ms !== undefined ? ["network p50", fmtMs(e.net_p50_ms)] : null,
          e.net_p95_ms !== undefined ? ["network p95", fmtMs(e.net_p95_ms)] : null
        ]);
      };
      withTip(g, tipFn); withTip(lab, tipFn);
    });
    nodes.forEach(function (n) {
      var err = n.errors > 0;
      var sub = n.kind === "k8s-service" ? "Kubernetes Service" : n.kind === "database" ? "database" :
        n.kind === "external" ? "outside the trace" : [n.container ? "container " + n.container : null].filter(Boolean).join("");
      if (!sub && n.kind === "process") sub = n.layer;
      var g = sv("g", { class: "node" + (err ? " has-err" : ""), tabindex: 0, "data-node": n.id, "data-layer": n.layer,
        "data-count": n.count, "data-errors": n.errors, "data-p50": n.p50_ms, "data-p95": n.p95_ms,
        transform: "translate(" + n._x + "," + n._y + ")" }, [
        sv("rect", { class: "box", width: NW, height: NH, rx: 8 }),
        sv("rect", { width: 6, height: NH, rx: 3, fill: color(n.layer) }),
        sv("text", { class: "t", x: 16, y: 21, text: clip(n.label, 20) }),
        sv("text", { class: "u", x: 16, y: 36, text: clip(sub, 28) })
      ]);
      var l3 = sv("text", { class: "n", x: 16, y: 55 });
      l3.appendChild(sv("tspan", { text: fmtInt(n.count) + " req" }));
      l3.appendChild(sv("tspan", { class: err ? "e" : "", text: " · " + fmtInt(n.errors) + " err" }));
      g.appendChild(l3);
      g.appendChild(sv("text", { class: "n", x: 16, y: 73, text: "p50 " + fmtMs(n.p50_ms) + " · p95 " + fmtMs(n.p95_ms) }));
      withTip(g, function () {
        return tipRows(n.label, [
          ["layer", n.layer], n.pod ? ["pod", n.pod] : null, n.container ? ["container", n.container] : null,
          n.namespace ? ["namespace", n.namespace] : null, n.node ? ["node", n.node] : null,
          ["requests", fmtInt(n.count)], ["errors", fmtInt(n.errors)], ["p50", fmtMs(n.p50_ms)], ["p95", fmtMs(n.p95_ms)]
        ]);
      });
      nodeLayer.appendChild(g);
    });
    host.appendChild(svg);
  }

  // ---- layer breakdown ----------------------------------------------------------------------------
  function presentLayers() {
    return LAYERS.filter(function (l) { return S.layers[l]; });
  }
  function renderLayers() {
    var share = document.getElementById("tk-share");
    var present = presentLayers();
    share.setAttribute("aria-label", present.map(function (l) { return l + " " + fmtPct(S.layers[l].share); }).join(", "));
    present.forEach(function (l) {
      var st = S.layers[l], w = (st.share || 0) * 100;
      if (w <= 0) return;
      var seg = el("div", { class: "tk-seg", "data-layer": l, style: { width: w + "%", background: color(l) },
        text: w >= 9 ? l + " " + w.toFixed(0) + "%" : "" });
      withTip(seg, function () { return tipRows(l, [["share", fmtPct(st.share)], ["mean", fmtMs(st.mean_ms)], ["p50", fmtMs(st.p50_ms)], ["p95", fmtMs(st.p95_ms)], ["p99", fmtMs(st.p99_ms)]]); });
      share.appendChild(seg);
    });
    var table = document.getElementById("tk-layer-table");
    table.appendChild(el("thead", null, el("tr", null, [
      el("th", { text: "layer" }), el("th", { class: "num", text: "share" }), el("th", { class: "num", text: "mean" }),
      el("th", { class: "num", text: "p50" }), el("th", { class: "num", text: "p95" }), el("th", { class: "num", text: "p99" })
    ])));
    var tb = el("tbody");
    present.forEach(function (l) {
      var st = S.layers[l];
      tb.appendChild(el("tr", { "data-layer": l }, [
        el("td", null, [el("span", { class: "tk-swatch", style: { background: color(l) } }), l]),
        el("td", { class: "num share", "data-value": st.share, text: fmtPct(st.share) }),
        el("td", { class: "num mean", "data-value": st.mean_ms, text: fmtMs(st.mean_ms) }),
        el("td", { class: "num p50", "data-value": st.p50_ms, text: fmtMs(st.p50_ms) }),
        el("td", { class: "num p95", "data-value": st.p95_ms, text: fmtMs(st.p95_ms) }),
        el("td", { class: "num p99", "data-value": st.p99_ms, text: fmtMs(st.p99_ms) })
      ]));
    });
    table.appendChild(tb);
    if (!present.length) table.appendChild(el("caption", { class: "tk-empty", text: "No layer times in this report." }));

    var bands = document.getElementById("tk-bands");
    var totals = D.buckets.map(function (b) { return Object.keys(b.layers).reduce(function (s, l) { return s + b.layers[l]; }, 0); });
    var maxT = Math.max.apply(null, totals.concat([1e-9]));
    D.buckets.forEach(function (b, i) {
      var bar = el("div", { class: "bar", style: { width: Math.max(0.5, totals[i] / maxT * 100) + "%" } });
      LAYERS.forEach(function (l) {
        var v = b.layers[l];
        if (!v) return;
        var seg = el("div", { class: "tk-seg", style: { width: (v / totals[i] * 100) + "%", background: color(l) } });
        withTip(seg, function () { return tipRows(b.label + ": " + l, [["mean", fmtMs(v)], ["of band total", fmtPct(v / totals[i])]]); });
        bar.appendChild(seg);
      });
      bands.appendChild(el("div", { class: "tk-band", "data-band": b.label }, [
        el("div", { class: "lbl" }, [b.label, el("small", { text: fmtInt(b.count) + " traces" })]),
        el("div", null, bar),
        el("div", { class: "tot", text: fmtMs(totals[i]) })
      ]));
    });
    var legend = el("div", { class: "tk-legend" });
    present.forEach(function (l) { legend.appendChild(el("span", null, [el("span", { class: "tk-swatch", style: { background: color(l) } }), l])); });
    bands.appendChild(legend);
    renderHistogram();
    renderRoutes();
  }
  function renderRoutes() {
    var routes = S.routes || {}, names = Object.keys(routes);
    if (!names.length) return;
    names.sort(function (a, b) { return routes[b].count - routes[a].count; });
    var host = document.getElementById("tk-routes");
    host.appendChild(el("h3", { text: "Routes" }));
    var table = el("table", { class: "tk-table", id: "tk-route-table" }, el("thead", null, el("tr", null, [
      el("th", { text: "route" }), el("th", { class: "num", text: "requests" }), el("th", { class: "num", text: "failed" }),
      el("th", { class: "num", text: "p50" }), el("th", { class: "num", text: "p95" }), el("th", { class: "num", text: "p99" }),
      el("th", { text: "where the time goes" })
    ])));
    var tb = el("tbody");
    names.slice(0, 30).forEach(function (name) {
      var r = routes[name], bar = el("div", { class: "tk-mini", style: { margin: "4px 0", minWidth: "160px" } });
      LAYERS.forEach(function (l) {
        var st = (r.layers || {})[l];
        if (!st || !st.share) return;
        var seg = el("div", { class: "tk-seg", style: { width: st.share * 100 + "%", background: color(l) } });
        withTip(seg, function () { return tipRows(name + ": " + l, [["mean", fmtMs(st.mean_ms)], ["share", fmtPct(st.share)]]); });
        bar.appendChild(seg);
      });
      tb.appendChild(el("tr", { "data-route": name }, [
        el("td", { class: "route", text: name }), el("td", { class: "num", text: fmtInt(r.count) }),
        el("td", { class: "num", text: fmtInt(r.errors) }), el("td", { class: "num", text: fmtMs(r.p50_ms) }),
        el("td", { class: "num", text: fmtMs(r.p95_ms) }), el("td", { class: "num", text: fmtMs(r.p99_ms) }), el("td", null, bar)
      ]));
    });
    table.appendChild(tb);
    host.appendChild(table);
  }
  function renderHistogram() {
    var h = D.histogram, host = document.getElementById("tk-hist");
    if (!h.ok.length) { host.appendChild(el("p", { class: "tk-empty", text: "No traces." })); return; }
    var W = 600, H = 120, B = h.ok.length, bw = W / B, maxC = 1;
    for (var i = 0; i < B; i++) maxC = Math.max(maxC, h.ok[i] + h.error[i]);
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + (H + 18), role: "img", "aria-label": "Histogram of end-to-end durations" });
    var step = (h.max_ms - h.min_ms) / B;
    for (var j = 0; j < B; j++) {
      (function (j) {
        var ok = h.ok[j], er = h.error[j], hOk = ok / maxC * H, hEr = er / maxC * H;
        var g = sv("g", null, [
          sv("rect", { x: j * bw + 0.5, y: H - hOk - hEr, width: bw - 1, height: hEr, fill: "#f87171" }),
          sv("rect", { x: j * bw + 0.5, y: H - hOk, width: bw - 1, height: hOk, fill: "#94a3b8" }),
          sv("rect", { x: j * bw, y: 0, width: bw, height: H, fill: "transparent" })
        ]);
        withTip(g, function () {
          return tipRows(fmtMs(h.min_ms + j * step) + " – " + fmtMs(h.min_ms + (j + 1) * step), [["ok", fmtInt(ok)], ["failed", fmtInt(er)]]);
        });
        svg.appendChild(g);
      })(j);
    }
    svg.appendChild(sv("line", { x1: 0, x2: W, y1: H + 0.5, y2: H + 0.5, stroke: "#cbd5e1" }));
    svg.appendChild(sv("text", { x: 0, y: H + 14, text: fmtMs(h.min_ms) }));
    svg.appendChild(sv("text", { x: W, y: H + 14, "text-anchor": "end", text: fmtMs(h.max_ms) }));
    host.appendChild(svg);
  }

  // ---- trace list and waterfall -------------------------------------------------------------------
  var samples = D.samples, selected = -1, options = [];
  var sampleIndex = {};
  samples.forEach(function (s, i) { sampleIndex[s.trace_id] = i; });

  function renderTraceList() {
    var list = document.getElementById("tk-trace-list");
    document.getElementById("tk-wf-hint").textContent = samples.length < S.traces
      ? "Waterfalls for " + samples.length + " of " + fmtInt(S.traces) + " traces: the slowest, the failed ones (one per failure first), and typical ones around the median. Use ↑/↓ to move through them; click a span for its attributes."
      : "Every trace of the input. Use ↑/↓ to move through them; click a span for its attributes.";
    var groups = [["slowest", "Slowest"], ["failed", "Failed"], ["typical", "Typical (around p50)"], ["sampled", "Traces"]];
    var placed = {};
    groups.forEach(function (g) {
      var members = [];
      samples.forEach(function (s, i) { if (!placed[i] && s.why.indexOf(g[0]) >= 0) { members.push(i); placed[i] = true; } });
      if (!members.length) return;
      list.appendChild(el("div", { class: "grp", role: "presentation", text: g[1] }));
      members.forEach(function (i) {
        var s = samples[i];
        var opt = el("div", { class: "tk-opt" + (s.status === "error" ? " err" : ""), role: "option", id: "tk-opt-" + i,
          "aria-selected": "false", "data-trace-id": s.trace_id, "data-index": i, onclick: function () { select(i, true); } }, [
          el("span", { class: "dot", "aria-hidden": "true" }),
          el("span", { class: "nm" }, [clip(s.root, 40), el("small", { text: s.trace_id.slice(0, 8) + "…" + s.trace_id.slice(-6) + (s.status === "error" ? " · failed" : "") })]),
          el("span", { class: "d", text: fmtMs(s.duration_ms) })
        ]);
        options.push(i);
        list.appendChild(opt);
      });
    });
    if (!samples.length) list.appendChild(el("p", { class: "tk-empty", text: "No traces." }));
    list.addEventListener("keydown", function (e) {
      var pos = options.indexOf(selected);
      if (e.key === "ArrowDown" || e.key === "j") pos = Math.min(options.length - 1, pos + 1);
      else if (e.key === "ArrowUp" || e.key === "k") pos = Math.max(0, pos - 1);
      else if (e.key === "Home") pos = 0;
      else if (e.key === "End") pos = options.length - 1;
      else return;
      e.preventDefault();
      select(options[pos], true);
    });
  }

  function select(i, focusList) {
    if (i === undefined || i < 0 || i >= samples.length) return;
    if (selected >= 0) document.getElementById("tk-opt-" + selected).setAttribute("aria-selected", "false");
    selected = i;
    var opt = document.getElementById("tk-opt-" + i);
    opt.setAttribute("aria-selected", "true");
    var list = document.getElementById("tk-trace-list");
    list.setAttribute("aria-activedescendant", opt.id);
    if (opt.scrollIntoView) opt.scrollIntoView({ block: "nearest" });
    if (focusList) list.focus({ preventScroll: true });
    renderWaterfall(samples[i]);
  }

  function renderWaterfall(t) {
    var head = document.getElementById("tk-trace-head"), wf = document.getElementById("tk-waterfall"),
      details = document.getElementById("tk-details");
    head.textContent = ""; wf.textContent = ""; details.textContent = "";
    head.setAttribute("data-trace-id", t.trace_id);
    append(head, [
      el("span", { class: "dur", id: "tk-wf-duration", "data-value": t.duration_ms, text: fmtMs(t.duration_ms) }),
      el("span", { class: "tk-pill" + (t.status === "error" ? " err" : ""), text: t.status === "error" ? "failed" : "ok" }),
      t.why.filter(function (w) { return w !== "failed" && w !== "sampled"; }).map(function (w) { return el("span", { class: "tk-pill", text: w }); }),
      el("span", { class: "id", text: "trace " + t.trace_id })
    ]);
    var mini = document.getElementById("tk-mini"), legend = document.getElementById("tk-wf-legend");
    mini.textContent = ""; legend.textContent = "";
    LAYERS.forEach(function (l) {
      var v = t.layers[l];
      if (!v) return;
      var seg = el("div", { class: "tk-seg", "data-layer": l, style: { width: (v / (t.duration_ms || 1) * 100) + "%", background: color(l) } });
      withTip(seg, function () { return tipRows(l, [["time", fmtMs(v)], ["share", fmtPct(v / (t.duration_ms || 1))]]); });
      mini.appendChild(seg);
    });

    if (t.diagnosis && t.diagnosis.failed_layer) {
      details.appendChild(el("div", { class: "tk-diag", id: "tk-wf-diagnosis" }, [
        "Broke in ", el("b", { text: t.diagnosis.failed_layer }), ": " + (t.diagnosis.reason || "")
      ]));
    }
    var spans = t.spans;
    if (!spans.length) { wf.appendChild(el("p", { class: "tk-empty", text: "This report was made without spans (include_spans=False)." })); return; }
    // Tree order: parents before children, siblings by start time.
    var byId = {}, kids = {}, roots = [];
    spans.forEach(function (s) { byId[s.span_id] = s; });
    spans.forEach(function (s) {
      if (s.parent_id && byId[s.parent_id]) (kids[s.parent_id] = kids[s.parent_id] || []).push(s);
      else roots.push(s);
    });
    var rows = [];
    (function walk(list, depth) {
      list.sort(function (a, b) { return a.start_ms - b.start_ms; });
      list.forEach(function (s) { rows.push([s, depth]); if (kids[s.span_id]) walk(kids[s.span_id], depth + 1); });
    })(roots, 0);
    var total = t.duration_ms || 0;
    spans.forEach(function (s) { total = Math.max(total, s.start_ms + s.duration_ms); });
    total = total || 1;
    function pct(ms) { return (ms / total * 100) + "%"; }

    var axis = el("div", { class: "tk-wf-axis" }, [el("div", { class: "cap", text: "service · operation" })]);
    var ticks = el("div", { class: "ticks" });
    for (var q = 0; q <= 4; q++) ticks.appendChild(el("span", { class: "tick" + (q === 4 ? " last" : ""), style: { left: q * 25 + "%" }, text: fmtMs(total * q / 4) }));
    axis.appendChild(ticks);
    wf.appendChild(axis);
    var rowEls = [];
    rows.forEach(function (pair, ri) {
      var s = pair[0], depth = pair[1];
      var err = s.status === "error";
      var lane = el("div", { class: "lane" });
      var bar = el("div", { class: "tk-bar" + (s.critical ? " critical" : "") + (err ? " err" : ""),
        style: { left: pct(s.start_ms), width: pct(s.duration_ms), background: color(s.layer) } });
      // Network time: the part of a CLIENT span its remote SERVER children do not cover.
      var gaps = [];
      if (s.kind === "client" && kids[s.span_id]) {
        var remote = kids[s.span_id].filter(function (c) { return c.kind === "server" || c.service !== s.service; });
        if (remote.length) gaps = uncovered(s, remote);
      }
      gaps.forEach(function (g) {
        var gd = el("div", { class: "tk-gap", "data-gap-ms": g[1] - g[0],
          style: { left: ((g[0] - s.start_ms) / (s.duration_ms || 1) * 100) + "%", width: ((g[1] - g[0]) / (s.duration_ms || 1) * 100) + "%" } });
        bar.appendChild(gd);
      });
      lane.appendChild(bar);
      // The duration goes after the bar, or before it when the bar reaches the right edge, or inside it
      // (white) when the bar spans nearly the whole lane.
      var endsLate = s.start_ms + s.duration_ms > total * 0.8, startsEarly = s.start_ms < total * 0.15;
      var lblStyle = !endsLate ? { left: "calc(" + pct(s.start_ms + s.duration_ms) + " + 6px)" }
        : !startsEarly ? { right: (100 - (s.start_ms / total * 100)) + "%", marginRight: "6px" }
        : { right: (100 - ((s.start_ms + s.duration_ms) / total * 100)) + "%", marginRight: "8px" };
      lane.appendChild(el("span", { class: "tk-bar-lbl" + (endsLate && startsEarly ? " inside" : ""), style: lblStyle, text: fmtMs(s.duration_ms) }));
      var origin = t.diagnosis && t.diagnosis.span_id === s.span_id;
      var row = el("div", { class: "tk-wf-row" + (err ? " err" : "") + (origin ? " origin" : ""), tabindex: 0, role: "button", "aria-pressed": "false",
        "data-span-id": s.span_id, "data-layer": s.layer, "data-critical": s.critical ? "true" : "false" }, [
        el("div", { class: "lbl", style: { paddingLeft: (10 + depth * 14) + "px" } }, [
          s.critical ? el("span", { class: "crit", title: "on the critical path", text: "◆" }) : null,
          el("span", { class: "tk-swatch", style: { background: color(s.layer) } }),
          el("span", { class: "svc", text: s.service }), " ", el("span", { class: "op", text: s.name }),
          origin ? el("span", { class: "tk-origin", title: "the diagnosis: where the request broke", text: "✕ broke here" }) : null,
          s.parent_id && !byId[s.parent_id] ? el("span", { class: "tk-pill", title: "its parent span " + s.parent_id + " is not in the trace", text: "orphan" }) : null
        ]),
        lane
      ]);
      withTip(row, function () {
        var net = gaps.reduce(function (a, g) { return a + g[1] - g[0]; }, 0);
        return tipRows(s.service + " · " + s.name, [
          ["time goes to", s.layer], s.span_layer && s.span_layer !== s.layer ? ["span layer", s.span_layer] : null, ["kind", s.kind], ["start", fmtMs(s.start_ms)], ["duration", fmtMs(s.duration_ms)],
          gaps.length ? ["network (not covered by the callee)", fmtMs(net)] : null,
          ["status", s.status], ["critical path", s.critical ? "yes" : "no"],
          (s.resource["k8s.pod.name"] || s.attributes["k8s.pod.name"]) ? ["pod", s.resource["k8s.pod.name"] || s.attributes["k8s.pod.name"]] : null,
          (s.resource["k8s.container.name"] || s.attributes["k8s.container.name"]) ? ["container", s.resource["k8s.container.name"] || s.attributes["k8s.container.name"]] : null
        ]);
      });
      function open() {
        rowEls.forEach(function (r) { r.setAttribute("aria-pressed", "false"); });
        row.setAttribute("aria-pressed", "true");
        showSpan(t, s, gaps);
      }
      row.addEventListener("click", open);
      row.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); }
        else if (e.key === "ArrowDown" && rowEls[ri + 1]) { e.preventDefault(); rowEls[ri + 1].focus(); }
        else if (e.key === "ArrowUp" && rowEls[ri - 1]) { e.preventDefault(); rowEls[ri - 1].focus(); }
      });
      rowEls.push(row);
      wf.appendChild(row);
    });
    if (t.dropped_spans) wf.appendChild(el("p", { class: "tk-empty", text: t.dropped_spans + " more spans not drawn." }));
    append(legend, [
      el("span", null, [el("span", { class: "critl" }), "critical path"]),
      el("span", null, [el("span", { class: "hatch" }), "network: client span not covered by the server span"])
    ]);
    LAYERS.forEach(function (l) {
      if (!t.layers[l]) return;
      legend.appendChild(el("span", null, [el("span", { class: "tk-swatch", style: { background: color(l) } }), l + " " + fmtMs(t.layers[l])]));
    });
    (t.warnings || []).forEach(function (w) { details.appendChild(el("p", { class: "tk-empty", text: "⚠ " + w })); });
  }

  function uncovered(s, children) {
    var a = s.start_ms, b = s.start_ms + s.duration_ms, out = [], cur = a;
    var iv = children.map(function (c) { return [Math.max(a, c.start_ms), Math.min(b, c.start_ms + c.duration_ms)]; })
      .filter(function (x) { return x[1] > x[0]; }).sort(function (x, y) { return x[0] - y[0]; });
    iv.forEach(function (x) { if (x[0] > cur) out.push([cur, x[0]]); cur = Math.max(cur, x[1]); });
    if (b > cur) out.push([cur, b]);
    return out.filter(function (g) { return g[1] - g[0] > 1e-6; });
  }

  function kvList(obj) {
    var keys = Object.keys(obj || {});
    keys.sort(function (x, y) {
      var kx = x.indexOf("k8s.") === 0 ? 0 : 1, ky = y.indexOf("k8s.") === 0 ? 0 : 1;
      return kx - ky || (x < y ? -1 : x > y ? 1 : 0);
    });
    var box = el("div", { class: "tk-kv" });
    keys.forEach(function (k) {
      var v = obj[k];
      box.appendChild(el("div", { class: "k" + (k.indexOf("k8s.") === 0 ? " k8s" : ""), text: k }));
      box.appendChild(el("div", { class: "v", text: typeof v === "string" ? v : JSON.stringify(v) }));
    });
    if (!keys.length) box.appendChild(el("div", { class: "k", text: "(none)" }));
    return box;
  }

  function showSpan(t, s, gaps) {
    var details = document.getElementById("tk-details");
    details.textContent = "";
    if (t.diagnosis && t.diagnosis.failed_layer) {
      details.appendChild(el("div", { class: "tk-diag" }, ["Broke in ", el("b", { text: t.diagnosis.failed_layer }), ": " + (t.diagnosis.reason || "")]));
    }
    var net = gaps.reduce(function (a, g) { return a + g[1] - g[0]; }, 0);
    details.appendChild(el("div", { class: "box", id: "tk-span-details", "data-span-id": s.span_id }, [
      el("h4", null, [el("span", { class: "tk-swatch", style: { background: color(s.layer) } }), s.service + " · " + s.name]),
      el("div", { class: "tk-kv" }, [
        el("div", { class: "k", text: "span" }), el("div", { class: "v", text: s.span_id + (s.parent_id ? "  (parent " + s.parent_id + ")" : "  (root)") }),
        el("div", { class: "k", text: "layer · kind" }), el("div", { class: "v", text: s.layer + (s.span_layer && s.span_layer !== s.layer ? " (span: " + s.span_layer + ")" : "") + " · " + s.kind }),
        el("div", { class: "k", text: "start · duration" }), el("div", { class: "v", text: fmtMs(s.start_ms) + " · " + fmtMs(s.duration_ms) + (gaps.length ? " (network " + fmtMs(net) + ")" : "") }),
        el("div", { class: "k", text: "status" }), el("div", { class: "v", text: s.status + (s.status_message ? ": " + s.status_message : "") + (s.critical ? " · on the critical path" : "") })
      ]),
      el("h3", { text: "Attributes" }), kvList(s.attributes),
      s.events && s.events.length ? el("h3", { text: "Events" }) : null,
      s.events && s.events.length ? el("div", { class: "tk-kv" }, s.events.map(function (ev) {
        return [el("div", { class: "k", text: fmtMs(ev.time_ms) }), el("div", { class: "v", text: ev.name + (ev.attributes ? " " + JSON.stringify(ev.attributes) : "") })];
      })) : null,
      el("h3", { text: "Resource" }), kvList(s.resource)
    ]));
  }

  // ---- failures -----------------------------------------------------------------------------------
  function renderFailures() {
    var host = document.getElementById("tk-failures");
    if (!D.failures.length) { host.appendChild(el("p", { class: "tk-empty", id: "tk-no-failures", text: "No failed requests." })); return; }
    var table = el("table", { class: "tk-table tk-fail", id: "tk-failure-table" }, el("thead", null, el("tr", null, [
      el("th", { text: "failed layer" }), el("th", { text: "reason" }), el("th", { class: "num", text: "requests" }),
      el("th", { class: "num", text: "p50" }), el("th", { text: "examples" })
    ])));
    var tb = el("tbody");
    D.failures.forEach(function (f) {
      var ex = el("td");
      f.examples.forEach(function (id) {
        var i = sampleIndex[id];
        ex.appendChild(el("button", { class: "ex", type: "button", disabled: i === undefined, title: i === undefined ? "not among the sampled waterfalls" : "open the waterfall",
          onclick: function () { select(i, true); document.getElementById("tk-wf-h").scrollIntoView({ behavior: "smooth" }); }, text: id.slice(0, 12) }));
      });
      tb.appendChild(el("tr", { "data-layer": f.layer, "data-count": f.count }, [
        el("td", { class: "layerc" }, [el("span", { class: "tk-swatch", style: { background: color(f.layer) } }), f.layer]),
        el("td", { class: "reason" }, [f.kind && f.kind !== f.reason ? el("span", { class: "tk-pill err", text: f.kind }) : null, " ", f.reason]),
        el("td", { class: "num cnt", text: fmtInt(f.count) }),
        el("td", { class: "num", text: fmtMs(f.p50_ms) }),
        ex
      ]));
    });
    table.appendChild(tb);
    host.appendChild(table);
  }

  function renderWarnings() {
    if (!D.warnings.length) return;
    document.getElementById("tk-warnings-panel").hidden = false;
    var ul = document.getElementById("tk-warnings");
    D.warnings.slice(0, 8).forEach(function (w) { ul.appendChild(el("li", { text: w })); });
    if (D.warnings.length > 8) {
      var more = el("ul");
      D.warnings.slice(8).forEach(function (w) { more.appendChild(el("li", { text: w })); });
      ul.parentNode.appendChild(el("details", null, [el("summary", { text: (D.warnings.length - 8) + " more warnings" }), more]));
    }
  }

  renderFlow();
  renderLayers();
  renderTraceList();
  renderFailures();
  renderWarnings();
  document.getElementById("tk-footer").textContent = "tracekit " + D.meta.tracekit_version + " · " + fmtInt(S.traces) +
    " traces, " + fmtInt(S.spans) + " spans · this file is self-contained and works offline";
  // Open the slowest trace first (it is listed first).
  if (options.length) select(options[0], false);
  document.body.setAttribute("data-ready", "true");
})();
