/* tracekit diff page: draws the embedded diff (#tracekit-diff-data, built by tracekit/diff/html.py)
 * with the DOM and inline SVG. No framework, no fetch. */
(function () {
  "use strict";

  var D = JSON.parse(document.getElementById("tracekit-diff-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var css = getComputedStyle(document.documentElement);
  function color(layer) { return css.getPropertyValue("--l-" + layer).trim() || "#94a3b8"; }

  function el(tag, attrs, kids) { return build(document.createElement(tag), attrs, kids); }
  function sv(tag, attrs, kids) { return build(document.createElementNS(SVGNS, tag), attrs, kids); }
  function build(e, attrs, kids) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, String(v));
    });
    (kids || []).forEach(function (k) {
      if (k === null || k === undefined) return;
      e.appendChild(typeof k === "string" ? document.createTextNode(k) : k);
    });
    return e;
  }
  function fmtMs(v, sign) {
    if (v === 0) return (sign ? "±" : "") + "0 ms";
    var a = Math.abs(v), d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 0.1 ? 2 : 3;
    var s = v.toFixed(d);
    return (sign && v >= 0 ? "+" : "") + s + " ms";
  }
  function fmtP(p) { return p < 0.001 ? p.toExponential(1) : p.toPrecision(2); }
  function pct(x) { return Math.round(x * 100) + "%"; }
  var conf = pct(D.settings.confidence);

  // ---- header ------------------------------------------------------------------------------------
  function sideText(name, side) {
    return name + ": " + side.traces.toLocaleString("en-US") + (side.traces === 1 ? " trace" : " traces") +
      " from " + side.sources.join(", ");
  }
  document.getElementById("dk-meta").textContent =
    sideText("baseline", D.baseline) + "\n" + sideText("candidate", D.candidate);
  var head = document.getElementById("dk-headline");
  head.textContent = D.headline;
  head.className = "dk-headline " + D.verdict;
  document.getElementById("dk-method").textContent =
    "Each curve is the share of requests (up) that spent at most that long in the layer (across, up to " +
    "the larger p99 of the two sides); the dashed one is the baseline. Shift: Hodges-Lehmann estimate of the typical change per request, with its " +
    conf + " interval; p: Mann-Whitney U, Benjamini-Hochberg over " + D.settings.comparisons +
    " comparisons; unchanged below " + fmtMs(D.settings.min_shift_ms) + " or " +
    pct(D.settings.min_shift_ratio) + " of the baseline median.";

  // ---- ECDFs -------------------------------------------------------------------------------------
  var W = 320, H = 150, L = 34, R = 8, T = 8, B = 22;
  function stepPath(points, x, y) {
    var n = points.length, d = "";
    for (var i = 0; i < n; i++) {
      var px = x(points[i]), py = y(n === 1 ? 1 : i / (n - 1));
      d += (i === 0 ? "M" + px.toFixed(1) + "," + y(0).toFixed(1) + "L" : "L") + px.toFixed(1) + "," + py.toFixed(1);
    }
    return d;
  }
  function ecdf(layer, row) {
    var base = row.distribution.baseline, cand = row.distribution.candidate;
    // Across to the larger p99 of the two sides: a tail of a few slow requests would squeeze the rest
    // into the left edge. Beyond it the curves run along the right edge.
    var max = Math.max(row.baseline.p99_ms, row.candidate.p99_ms) ||
      Math.max(base.length ? base[base.length - 1] : 0, cand.length ? cand[cand.length - 1] : 0) || 1;
    var x = function (v) { return L + (W - L - R) * (Math.min(v, max) / max); };
    var y = function (q) { return T + (H - T - B) * (1 - q); };
    var svg = sv("svg", { "class": "dk-ecdf", viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": layer + ": baseline and candidate distributions", "data-layer": layer });
    svg.appendChild(sv("line", { "class": "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }));
    svg.appendChild(sv("line", { "class": "axis", x1: L, y1: y(0), x2: L, y2: y(1) }));
    [0, 0.5, 1].forEach(function (q) {
      svg.appendChild(sv("text", { x: L - 4, y: y(q) + 3, "text-anchor": "end", text: pct(q) }));
    });
    [0, 0.5, 1].forEach(function (f) {
      svg.appendChild(sv("text", { x: x(max * f), y: H - 6, "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle",
        text: fmtMs(max * f) + (f === 1 ? " (p99)" : "") }));
    });
    if (base.length) svg.appendChild(sv("path", { "class": "base", d: stepPath(base, x, y), "data-side": "baseline",
      "data-points": base.length }));
    if (cand.length) svg.appendChild(sv("path", { "class": "cand", d: stepPath(cand, x, y), stroke: color(layer),
      "data-side": "candidate", "data-points": cand.length }));
    return svg;
  }

  var grid = document.getElementById("dk-layers");
  Object.keys(D.layers).forEach(function (layer) {
    var row = D.layers[layer];
    grid.appendChild(el("div", { "class": "dk-layer " + row.verdict, "data-layer": layer }, [
      el("div", { "class": "dk-layer-head" }, [
        el("span", { "class": "dk-layer-name" }, [
          el("span", { "class": "dk-swatch", style: "background:" + color(layer) }), layer]),
        el("span", { "class": "dk-verdict " + row.verdict, text: row.verdict })
      ]),
      el("div", { "class": "dk-shift", text: "shift " + fmtMs(row.shift_ms, true) + " (" + conf + " CI " +
        fmtMs(row.ci_ms[0], true) + " to " + fmtMs(row.ci_ms[1], true) + "), p " + fmtP(row.p_value) }),
      ecdf(layer, row),
      el("div", { "class": "dk-legend", text: "dashed: baseline p50 " + fmtMs(row.baseline.p50_ms) +
        " · solid: candidate p50 " + fmtMs(row.candidate.p50_ms) })
    ]));
  });

  // ---- tables ------------------------------------------------------------------------------------
  function table(node, header, rows) {
    node.appendChild(el("thead", {}, [el("tr", {}, header.map(function (h) { return el("th", { text: h }); }))]));
    node.appendChild(el("tbody", {}, rows));
    return node;
  }
  function cells(row) {
    var b = row.baseline, c = row.candidate;
    return [
      el("td", { "class": "p50", "data-baseline": b.p50_ms, "data-candidate": c.p50_ms, text: fmtMs(b.p50_ms) + " → " + fmtMs(c.p50_ms) }),
      el("td", { "class": "p95", text: fmtMs(b.p95_ms) + " → " + fmtMs(c.p95_ms) }),
      el("td", { "class": "p99", text: fmtMs(b.p99_ms) + " → " + fmtMs(c.p99_ms) }),
      el("td", { "class": "shift", "data-value": row.shift_ms, text: fmtMs(row.shift_ms, true) }),
      el("td", { "class": "ci", text: fmtMs(row.ci_ms[0], true) + " … " + fmtMs(row.ci_ms[1], true) }),
      el("td", { "class": "p", "data-value": row.p_value, text: fmtP(row.p_value) }),
      el("td", { "class": "verdict text", text: row.verdict })
    ];
  }
  var cols = ["p50", "p95", "p99", "shift", conf + " CI", "p", "verdict"];
  table(document.getElementById("dk-layer-table"), ["layer"].concat(cols), Object.keys(D.layers).map(function (layer) {
    return el("tr", { "data-layer": layer }, [el("td", { text: layer })].concat(cells(D.layers[layer])));
  }));

  var changed = [];
  D.routes.forEach(function (entry) {
    Object.keys(entry.layers).forEach(function (layer) {
      var row = entry.layers[layer];
      if (row.verdict !== "unchanged") changed.push([entry.route, layer, row]);
    });
  });
  changed.sort(function (a, b) {
    return (a[2].verdict === b[2].verdict ? 0 : a[2].verdict === "regressed" ? -1 : 1) ||
      Math.abs(b[2].shift_ms) - Math.abs(a[2].shift_ms);
  });
  var routes = document.getElementById("dk-routes");
  if (!changed.length) routes.appendChild(el("p", { "class": "dk-empty",
    text: D.routes.length + " route(s) compared; none changed beyond noise." }));
  else routes.appendChild(table(el("table", { "class": "dk-table", id: "dk-route-table" }), ["route", "layer"].concat(cols),
    changed.map(function (item) {
      return el("tr", { "data-route": item[0], "data-layer": item[1] },
        [el("td", { "class": "text", text: item[0] }), el("td", { "class": "text", text: item[1] })].concat(cells(item[2])));
    })));

  if (D.routes_not_compared.length) routes.appendChild(el("p", { "class": "dk-hint", id: "dk-routes-skipped",
    text: D.routes_not_compared.length + " route(s) not compared (fewer than " + D.settings.min_route_traces +
      " requests on a side): " + D.routes_not_compared.slice(0, 10).map(function (r) {
        return r.route + " (" + r.baseline + " / " + r.candidate + ")";
      }).join(", ") + (D.routes_not_compared.length > 10 ? ", …" : "") }));

  var failures = document.getElementById("dk-failures");
  if (!D.failure_kinds.length) failures.appendChild(el("p", { "class": "dk-empty", text: "No failed request on either side." }));
  else failures.appendChild(table(el("table", { "class": "dk-table", id: "dk-failure-table" }),
    ["layer", "kind", "baseline", "candidate", "p (layer)", "layer verdict"], D.failure_kinds.map(function (k) {
      var layer = D.failures[k.layer];
      return el("tr", { "data-layer": k.layer, "data-kind": k.kind }, [el("td", { text: k.layer }),
        el("td", { "class": "text", text: k.kind }), el("td", { "class": "baseline", text: String(k.baseline) }),
        el("td", { "class": "candidate", text: String(k.candidate) }),
        el("td", { "class": "p", "data-value": layer.p_value, text: fmtP(layer.p_value) }),
        el("td", { "class": "verdict text", text: layer.verdict })]);
    })));
  if (D.new_failure_reason_counts.length) {
    failures.appendChild(el("h2", { text: "Failure reasons new in the candidate" }));
    failures.appendChild(el("ul", { id: "dk-new-reasons" }, D.new_failure_reason_counts.map(function (r) {
      return el("li", { text: r.candidate + " × " + r.reason });
    })));
  }
  document.getElementById("dk-footer").textContent = "tracekit " + D.meta.version + " · " + D.meta.generated;
  document.body.setAttribute("data-ready", "true");
})();
