/* spp live topology page: hand-written SVG, no library.
 *
 * Reads /ui/events (server-sent events: one JSON snapshot per second, built by
 * spp.ctl.ui.snapshot) and draws the stack as a layered graph:
 *
 *   [spp_primary: pool + idle ports] | ports | processes of layer 0 | ports | layer 1 | ports ...
 *
 * A process's layer is its longest path from the processes that feed it (a ring
 * written by vf:1 and read by mirror:2 puts mirror:2 one layer right of vf:1);
 * processes of one layer are stacked.  A port sits in the gutter right of the
 * last process that writes it, or left of the first that reads it; ports and
 * processes are ordered by the barycentre of their neighbours to keep edges short.
 * The layout is recomputed only when the topology changes; otherwise each
 * snapshot only rewrites counters.  window.sppTopology.render(snapshot) draws any
 * snapshot (the tests feed a generated 10-process, 100-port one).
 */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const PORT_W = 172, PORT_H = 62, COMP_W = 180, COMP_H = 46, PAD = 10, HEAD = 46, CGAP = 8;
  const PROC_W = COMP_W + 2 * PAD, GUTTER = PORT_W + 72, EMPTY_GUTTER = 56, GAP = 14, TOP = 34, MARGIN = 20;
  const KIND_NAMES = { primary: "spp_primary", vf: "spp_vf", mirror: "spp_mirror", nfv: "spp_nfv", pcap: "spp_pcap" };
  const TYPES = ["phy", "ring", "vhost", "tap", "nullpmd", "pcap", "memif"];

  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const svg = document.getElementById("graph");
  const canvas = document.getElementById("canvas");
  const state = { snap: null, sig: null, layout: null, selected: null, scale: null, userZoom: false,
                  lastMessage: 0, refs: null, source: null };

  // -- formatting ---------------------------------------------------------------
  function num(n) {
    n = Number(n) || 0;
    const a = Math.abs(n);
    if (a < 1000) return String(Math.round(n * 10) / 10);
    const units = [["G", 1e9], ["M", 1e6], ["k", 1e3]];
    for (const [u, v] of units) if (a >= v) return (n / v).toPrecision(3).replace(/\.?0+$/, "") + " " + u;
    return String(n);
  }
  const pps = (x) => num(x) + (Math.abs(x) >= 1000 ? "pps" : " pps");
  const bps = (x) => num(x) + (Math.abs(x) >= 1000 ? "bit/s" : " bit/s");
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const clip = (s, n) => (s.length > n ? s.slice(0, n - 1) + "…" : s);
  const sum = (o) => Object.values(o || {}).reduce((a, b) => a + (Number(b) || 0), 0);
  const ptype = (uid) => { const t = String(uid).split(":")[0]; return TYPES.includes(t) ? t : "port"; };

  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  // -- model ------------------------------------------------------------------------
  function signature(snap) {
    return JSON.stringify([
      snap.processes.map((p) => [p.id, p.up, p.components.map((c) => [c.id, c.type, c.rx, c.tx])]),
      snap.ports.map((p) => p.uid),
      snap.port_mirrors.map((m) => [m.name, m.source, m.destination]),
    ]);
  }

  function index(snap) {
    const ports = new Map(snap.ports.map((p) => [p.uid, p]));
    const comps = new Map();
    for (const p of snap.processes) for (const c of p.components) comps.set(c.id, { comp: c, proc: p });
    return { ports, comps, procs: new Map(snap.processes.map((p) => [p.id, p])) };
  }

  // -- layout -----------------------------------------------------------------------
  function layout(snap) {
    const primary = snap.processes.find((p) => p.kind === "primary") || null;
    const secs = snap.processes.filter((p) => p.kind !== "primary");
    const writers = new Map(), readers = new Map();
    const add = (m, k, v) => { if (!m.has(k)) m.set(k, new Set()); m.get(k).add(v); };
    const procOf = new Map();
    for (const p of snap.processes) for (const c of p.components) {
      procOf.set(c.id, p.id);
      for (const u of c.tx) add(writers, u, p.id);
      for (const u of c.rx) add(readers, u, p.id);
    }
    // process graph, cycles broken by DFS, then longest-path layers
    const succ = new Map(secs.map((p) => [p.id, new Set()]));
    for (const [u, ws] of writers) for (const w of ws) for (const r of readers.get(u) || [])
      if (w !== r && succ.has(w) && succ.has(r)) succ.get(w).add(r);
    const color = new Map(), dag = new Map(secs.map((p) => [p.id, []])), order = [];
    function dfs(v) {
      color.set(v, 1);
      for (const w of succ.get(v)) {
        if (color.get(w) === 1) continue; // back edge: dropped
        dag.get(v).push(w);
        if (!color.get(w)) dfs(w);
      }
      color.set(v, 2); order.push(v);
    }
    // start from the processes that take traffic in from outside (non-ring ports): flows read left to right
    const external = (p) => p.components.some((c) => c.rx.some((u) => ptype(u) !== "ring")) ? 0 : 1;
    const starts = secs.map((p, i) => [external(p), i, p]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((e) => e[2]);
    for (const p of starts) if (!color.get(p.id)) dfs(p.id);
    const layer = new Map(secs.map((p) => [p.id, 0]));
    for (const v of order.reverse()) for (const w of dag.get(v)) layer.set(w, Math.max(layer.get(w), layer.get(v) + 1));
    const nLayers = secs.length ? Math.max(...layer.values()) + 1 : 0;

    const groups = secs.map((p) => ({ proc: p, layer: layer.get(p.id), comps: p.components.map((c) => ({ comp: c, h: COMP_H })) }));
    const layers = Array.from({ length: nLayers }, () => []);
    for (const g of groups) layers[g.layer].push(g);
    const gutters = Array.from({ length: nLayers + 1 }, () => []);
    const idle = [];
    const portItems = new Map();
    for (const port of snap.ports) {
      const ws = [...(writers.get(port.uid) || [])].filter((id) => layer.has(id)).map((id) => layer.get(id));
      const rs = [...(readers.get(port.uid) || [])].filter((id) => layer.has(id)).map((id) => layer.get(id));
      const item = { port, h: PORT_H, y: 0, nb: [] };
      portItems.set(port.uid, item);
      if (ws.length) gutters[Math.max(...ws) + 1].push(item);
      else if (rs.length) gutters[Math.min(...rs)].push(item);
      else idle.push(item);
    }
    // neighbours (component items) of each port item, and of each component
    const compItems = new Map();
    for (const g of groups) for (const ci of g.comps) { ci.group = g; ci.nb = []; compItems.set(ci.comp.id, ci); }
    for (const ci of compItems.values()) for (const u of [...ci.comp.rx, ...ci.comp.tx]) {
      const pi = portItems.get(u);
      if (pi) { pi.nb.push(ci); ci.nb.push(pi); }
    }
    // x positions
    let x = MARGIN;
    const primaryBox = primary ? { x, w: PROC_W } : null;
    if (primary) x += PROC_W + 24;
    const gx = [], lx = [];
    for (let i = 0; i <= nLayers; i++) {
      const w = gutters[i].length ? GUTTER : EMPTY_GUTTER;
      gx.push(x + (w - PORT_W) / 2); x += w;
      if (i < nLayers) { lx.push(x); x += PROC_W; }
    }
    for (let i = 0; i <= nLayers; i++) for (const it of gutters[i]) it.x = gx[i];
    for (const g of groups) g.x = lx[g.layer];
    const width = x + MARGIN;

    const groupH = (g) => (g.comps.length ? HEAD + PAD + g.comps.length * (COMP_H + CGAP) - CGAP + PAD : HEAD + 22);
    const setComps = (g) => g.comps.forEach((ci, i) => { ci.x = g.x + PAD; ci.y = g.y + HEAD + PAD + i * (COMP_H + CGAP); });
    const stack = (items, hOf) => { let y = TOP; for (const it of items) { it.y = y; y += hOf(it) + GAP; } };
    const centre = (it) => it.y + it.h / 2;
    const bary = (it, fallback) => (it.nb.length ? it.nb.reduce((a, n) => a + centre(n), 0) / it.nb.length : fallback);
    for (const g of groups) g.h = groupH(g);
    const restackLayers = () => layers.forEach((l) => { stack(l, (g) => g.h); l.forEach(setComps); });
    const restackGutters = () => gutters.forEach((gt) => stack(gt, (it) => it.h));
    restackLayers(); restackGutters();
    for (let iter = 0; iter < 4; iter++) {
      for (const gt of gutters) {
        gt.forEach((it) => { it.key = bary(it, centre(it)); });
        gt.sort((a, b) => a.key - b.key);
      }
      restackGutters();
      for (const l of layers) {
        for (const g of l) {
          g.comps.forEach((ci) => { ci.key = bary(ci, centre(ci)); });
          g.comps.sort((a, b) => a.key - b.key);
          const ks = g.comps.filter((ci) => ci.nb.length).map((ci) => ci.key);
          g.key = ks.length ? ks.reduce((a, b) => a + b, 0) / ks.length : g.y;
        }
        l.sort((a, b) => a.key - b.key);
      }
      restackLayers();
    }
    // final placement: keep the order, move each item towards its neighbours, never overlap
    const place = (items, want) => { let floor = TOP; for (const it of items) { it.y = Math.max(floor, want(it)); floor = it.y + it.h + GAP; } };
    for (let iter = 0; iter < 3; iter++) {
      for (const gt of gutters) place(gt, (it) => bary(it, it.y + it.h / 2) - it.h / 2);
      for (const l of layers) {
        place(l, (g) => {
          const linked = g.comps.filter((ci) => ci.nb.length);
          if (!linked.length) return g.y;
          const off = linked.reduce((a, ci) => a + (centre(ci) - g.y), 0) / linked.length;
          return linked.reduce((a, ci) => a + bary(ci, 0), 0) / linked.length - off;
        });
        l.forEach(setComps);
      }
    }
    // placing only ever pushes down: lift the whole drawing back to the top
    const placed = [...gutters.flat(), ...groups];
    if (placed.length) {
      const lift = Math.min(...placed.map((it) => it.y)) - TOP;
      for (const it of placed) it.y -= lift;
      groups.forEach(setComps);
    }
    // the primary: pool and the ports no component uses
    let primaryItem = null;
    if (primary) {
      idle.forEach((it, i) => { it.x = primaryBox.x + (PROC_W - PORT_W) / 2; it.y = TOP + HEAD + 30 + i * (PORT_H + GAP); });
      primaryItem = { proc: primary, x: primaryBox.x, y: TOP, h: HEAD + 30 + Math.max(0, idle.length * (PORT_H + GAP) - GAP) + PAD + (idle.length ? 0 : 8), comps: [] };
      primaryItem.comps = primary.components.map((c, i) => ({ comp: c, h: COMP_H, x: primaryBox.x + PAD,
        y: primaryItem.y + primaryItem.h + i * (COMP_H + CGAP) }));
      if (primaryItem.comps.length) primaryItem.h += primaryItem.comps.length * (COMP_H + CGAP) + PAD;
      for (const ci of primaryItem.comps) compItems.set(ci.comp.id, ci);
    } else {
      idle.forEach((it, i) => { it.x = MARGIN; it.y = TOP + i * (PORT_H + GAP); });
    }
    let height = TOP;
    for (const it of portItems.values()) height = Math.max(height, it.y + it.h);
    for (const g of groups) height = Math.max(height, g.y + g.h);
    if (primaryItem) height = Math.max(height, primaryItem.y + primaryItem.h);
    return { width: Math.max(width, 400), height: height + MARGIN + 20, groups, primaryItem, portItems, compItems,
             gutters, gx, lx, nLayers };
  }

  // -- drawing ----------------------------------------------------------------------
  function curve(a, b, bend) {
    const dx = Math.max(40, Math.abs(b.x - a.x) / 2) * (bend || 1);
    const s1 = a.side, s2 = b.side;
    return `M${a.x},${a.y} C${a.x + s1 * dx},${a.y} ${b.x + s2 * dx},${b.y} ${b.x},${b.y}`;
  }
  function anchors(from, to) {
    const fc = from.x + (from.w || 0) / 2, tc = to.x + (to.w || 0) / 2;
    const right = tc >= fc;
    return [
      { x: right ? from.x + from.w : from.x, y: from.y + from.h / 2, side: right ? 1 : -1 },
      { x: right ? to.x : to.x + to.w, y: to.y + to.h / 2, side: right ? -1 : 1 },
    ];
  }

  function draw(snap) {
    const L = layout(snap);
    state.layout = L;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const defs = el("defs", {}, svg);
    const mk = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#6b7894" }, mk);
    const mk2 = el("marker", { id: "arrowm", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9b3fd1" }, mk2);
    // edges that cross other columns run beneath the process boxes; the others above them
    const gHeads = el("g", {}, svg), gLong = el("g", { class: "long" }, svg), gProcs = el("g", {}, svg);
    const gEdges = el("g", {}, svg), gPorts = el("g", {}, svg), gMirrors = el("g", {}, svg);
    if (L.primaryItem) el("text", { class: "colhead", x: L.primaryItem.x + 2, y: 22 }, gHeads, "primary · idle ports");
    const refs = { ports: new Map(), comps: new Map(), procs: new Map(), edges: [], mirrors: [] };
    const procBoxes = L.groups.map((g) => ({ g, w: PROC_W }));
    if (L.primaryItem) procBoxes.unshift({ g: L.primaryItem, w: PROC_W });
    for (const { g, w } of procBoxes) {
      const p = g.proc;
      const root = el("g", { class: `proc k-${p.kind}`, "data-proc": p.id, transform: `translate(${g.x},${g.y})` }, gProcs);
      el("rect", { class: "box", width: w, height: g.h, rx: 8 }, root);
      el("rect", { class: "head", width: w, height: HEAD - 4, rx: 8 }, root);
      el("rect", { class: "head", y: HEAD - 14, width: w, height: 10 }, root);
      el("circle", { class: "dot", cx: 14, cy: 15, r: 5 }, root);
      const label = (KIND_NAMES[p.kind] || p.kind) + (p.client_id !== null && p.client_id !== undefined ? " " + p.client_id : "");
      el("text", { class: "title", x: 25, y: 19 }, root, label);
      const meta = el("text", { class: "meta", x: 10, y: HEAD - 11 }, root, "");
      const tip = el("title", {}, root, "");
      let pool = null;
      if (p.kind === "primary") pool = { text: el("text", { class: "meta", x: 10, y: HEAD + 16 }, root, ""), bg: el("rect", { class: "qbg", x: 10, y: HEAD + 21, width: w - 20, height: 5, rx: 2, fill: "#e6ebf2" }, root), fill: el("rect", { x: 10, y: HEAD + 21, width: 0, height: 5, rx: 2, fill: "#2f6fdb" }, root) };
      root.addEventListener("click", (e) => { if (e.target.closest(".comp") || e.target.closest(".port")) return; select("proc", p.id); });
      if (p.kind !== "primary" && !g.comps.length) el("text", { class: "meta", x: 10, y: HEAD + 12 }, root, "no component");
      refs.procs.set(p.id, { root, meta, tip, pool });
      for (const ci of g.comps) {
        const c = ci.comp;
        const cg = el("g", { class: "comp", "data-comp": c.id, transform: `translate(${ci.x - g.x},${ci.y - g.y})` }, root);
        el("rect", { width: COMP_W, height: COMP_H, rx: 5 }, cg);
        el("text", { class: "name", x: 9, y: 17 }, cg, clip(c.name, 18));
        el("text", { class: "meta", x: COMP_W - 8, y: 17, "text-anchor": "end" }, cg, c.type);
        const line = el("text", { class: "meta", x: 9, y: 36 }, cg, "");
        const drop = el("text", { class: "drop", x: COMP_W - 8, y: 36, "text-anchor": "end" }, cg, "");
        cg.addEventListener("click", () => select("comp", c.id));
        refs.comps.set(c.id, { g: cg, line, drop });
      }
    }
    const box = (it, w) => ({ x: it.x, y: it.y, w, h: it.h });
    for (const ci of L.compItems.values()) {
      for (const [side, list] of [["rx", ci.comp.rx], ["tx", ci.comp.tx]]) for (const u of list) {
        const pi = L.portItems.get(u);
        if (!pi) continue;
        const [a, b] = side === "rx" ? anchors(box(pi, PORT_W), box(ci, COMP_W)) : anchors(box(ci, COMP_W), box(pi, PORT_W));
        const long = Math.abs((pi.x + PORT_W / 2) - (ci.x + COMP_W / 2)) > GUTTER / 2 + PROC_W / 2 + 8;
        const path = el("path", { class: "edge", d: curve(a, b), "marker-end": "url(#arrow)", "data-port": u, "data-dir": side }, long ? gLong : gEdges);
        refs.edges.push({ path, uid: u, side });
      }
    }
    for (const pi of L.portItems.values()) {
      const p = pi.port;
      const t = ptype(p.uid);
      const pg = el("g", { class: `port t-${t}`, "data-port": p.uid, transform: `translate(${pi.x},${pi.y})` }, gPorts);
      el("rect", { class: "body", width: PORT_W, height: PORT_H, rx: 6 }, pg);
      el("path", { class: "tagp", d: `M0,6 a6,6 0 0 1 6,-6 h${PORT_W - 12} a6,6 0 0 1 6,6 v13 h-${PORT_W} z` }, pg);
      el("text", { class: "uid", x: 8, y: 14 }, pg, p.uid);
      const sub = el("text", { class: "sub", x: PORT_W - 7, y: 14, "text-anchor": "end" }, pg, "");
      const rate = el("text", { class: "rate", x: 8, y: 35 }, pg, "");
      const drop = el("text", { class: "drop", x: 8, y: 50 }, pg, "");
      let qfill = null;
      if (p.ring) {
        el("rect", { class: "qbg", x: 8, y: PORT_H - 6, width: PORT_W - 16, height: 3, rx: 1.5 }, pg);
        qfill = el("rect", { class: "qfill", x: 8, y: PORT_H - 6, width: 0, height: 3, rx: 1.5 }, pg);
      }
      const tip = el("title", {}, pg, "");
      pg.addEventListener("click", () => select("port", p.uid));
      refs.ports.set(p.uid, { g: pg, sub, rate, drop, qfill, tip });
    }
    for (const m of snap.port_mirrors) {
      const s = L.portItems.get(m.source), d = L.portItems.get(m.destination);
      if (!s || !d) continue;
      const a = { x: s.x + PORT_W / 2, y: s.y + PORT_H, side: 0 }, b = { x: d.x + PORT_W / 2, y: d.y, side: 0 };
      const down = b.y >= a.y;
      const sa = down ? a : { x: s.x + PORT_W / 2, y: s.y, side: 0 };
      const sb = down ? b : { x: d.x + PORT_W / 2, y: d.y + PORT_H, side: 0 };
      const dy = Math.max(30, Math.abs(sb.y - sa.y) / 2) * (down ? 1 : -1);
      const path = el("path", { class: "mirror", d: `M${sa.x},${sa.y} C${sa.x + 30},${sa.y + dy} ${sb.x + 30},${sb.y - dy} ${sb.x},${sb.y}`, "marker-end": "url(#arrowm)", "data-mirror": m.name }, gMirrors);
      const mx = (sa.x + sb.x) / 2 + 22, my = (sa.y + sb.y) / 2;
      const bg = el("rect", { class: "mlabel", x: mx - 2, y: my - 11, width: 10, height: 15, rx: 3 }, gMirrors);
      const label = el("text", { class: "mlabel", x: mx, y: my }, gMirrors, "");
      refs.mirrors.push({ m: m.name, path, label, bg });
    }
    state.refs = refs;
    applyScale();
  }

  function update(snap) {
    const refs = state.refs;
    const idx = index(snap);
    for (const [uid, r] of refs.ports) {
      const p = idx.ports.get(uid);
      if (!p) continue;
      const st = p.stats, rt = p.rates, drops = sum(st.drops);
      r.rate.textContent = `rx ${pps(rt.rx_pps)}  tx ${pps(rt.tx_pps)}`;
      r.drop.textContent = drops ? `drops ${num(rt.drop_pps)}/s · ${num(drops)} total` : "no drops";
      r.drop.setAttribute("class", drops ? "drop" : "drop zero");
      r.g.classList.toggle("hasdrops", rt.drop_pps > 0);
      r.g.classList.toggle("unknown", !p.known);
      r.sub.textContent = p.ring ? `${p.ring.count}/${p.ring.size}` : clip(p.iface || "", 13);
      if (r.qfill && p.ring) {
        const f = p.ring.size ? p.ring.count / p.ring.size : 0;
        r.qfill.setAttribute("width", String(Math.round((PORT_W - 16) * f)));
        r.qfill.setAttribute("class", f >= 0.9 ? "qfill full" : "qfill");
      }
      r.g.dataset.rxPackets = st.rx_packets; r.g.dataset.txPackets = st.tx_packets; r.g.dataset.drops = drops;
      r.g.dataset.rxPps = rt.rx_pps; r.g.dataset.txPps = rt.tx_pps;
      r.tip.textContent = `${uid}: rx ${st.rx_packets} pkts, tx ${st.tx_packets} pkts, ${drops} dropped`;
    }
    for (const e of refs.edges) {
      const p = idx.ports.get(e.uid);
      const moving = p && (e.side === "rx" ? p.rates.rx_pps : p.rates.tx_pps) > 0;
      e.path.setAttribute("class", "edge" + (moving ? " flow" : "") + (p && p.rates.drop_pps > 0 && e.side === "tx" ? " drops" : ""));
    }
    for (const [id, r] of refs.comps) {
      const found = idx.comps.get(id);
      if (!found) continue;
      const c = found.comp, d = sum(c.drops);
      r.line.textContent = (c.core !== null && c.core !== undefined ? `core ${c.core}` : "") + (c.filename ? ` · ${clip(String(c.filename), 14)}` : "");
      r.drop.textContent = d ? `drops ${num(d)}` + (c.drop_rate ? ` (${num(c.drop_rate)}/s)` : "") : "";
      r.g.classList.toggle("hasdrops", c.drop_rate > 0);
      r.g.dataset.drops = d;
    }
    for (const [id, r] of refs.procs) {
      const p = idx.procs.get(id);
      if (!p) continue;
      r.root.classList.toggle("down", p.state === "down");
      r.root.classList.toggle("waiting", p.state === "waiting");
      r.root.dataset.state = p.state || (p.up ? "up" : "down");
      const text = p.up ? [p.pid ? `pid ${p.pid}` : "", p.details && p.details.file_prefix ? `prefix ${p.details.file_prefix}` : "", p.components.length ? `${p.components.length} component${p.components.length > 1 ? "s" : ""}` : ""].filter(Boolean).join(" · ") || "up"
                        : p.state === "waiting" ? p.error : "down: " + (p.error || "?");
      r.meta.textContent = clip(text, 31);
      r.meta.setAttribute("class", p.state === "down" ? "meta err" : "meta");
      r.tip.textContent = `${id}: ${p.up ? "up" : p.state + ": " + p.error}`;
      if (r.pool) {
        const pool = snap.pool;
        if (pool && pool.n_bufs) {
          r.pool.text.textContent = `pool ${num(pool.in_use)} of ${num(pool.n_bufs)} buffers in use`;
          r.pool.fill.setAttribute("width", String(Math.round((PROC_W - 20) * Math.min(1, pool.in_use / pool.n_bufs))));
        } else r.pool.text.textContent = p.up ? "pool: unknown" : "";
      }
    }
    for (const r of refs.mirrors) {
      const m = snap.port_mirrors.find((x) => x.name === r.m);
      if (!m) continue;
      r.label.textContent = `${m.name}: ${pps(m.rates ? m.rates.pps : 0)}`;
      const w = r.label.getComputedTextLength ? r.label.getComputedTextLength() : 80;
      r.bg.setAttribute("width", String(w + 6));
    }
    summary(snap);
    details();
    document.getElementById("empty").hidden = snap.processes.length > 0;
  }

  function summary(snap) {
    const down = snap.processes.filter((p) => p.state === "down").length;
    let inPps = 0, dropPps = 0;
    for (const p of snap.ports) { if (p.type !== "ring") inPps += p.rates.rx_pps; dropPps += p.rates.drop_pps; }
    const parts = [
      `<b>${snap.processes.length}</b> process${snap.processes.length === 1 ? "" : "es"}` + (down ? ` <span class="bad">(${down} down)</span>` : ""),
      `<b>${snap.ports.length}</b> ports`,
      `in <b>${esc(pps(inPps))}</b>`,
      dropPps > 0 ? `<span class="bad">drops ${esc(num(dropPps))}/s</span>` : "drops 0/s",
    ];
    if (snap.pool && snap.pool.n_bufs) parts.push(`pool ${esc(num(snap.pool.in_use))}/${esc(num(snap.pool.n_bufs))}`);
    parts.push(`${snap.streams} viewer${snap.streams === 1 ? "" : "s"}`);
    parts.push(new Date(snap.time * 1000).toLocaleTimeString());
    for (const e of snap.errors || []) parts.push(`<span class="bad">${esc(e)}</span>`);
    document.getElementById("summary").innerHTML = parts.join(" · ");
  }

  // -- details panel -------------------------------------------------------------------
  function select(kind, id) {
    state.selected = { kind, id };
    for (const e of svg.querySelectorAll(".sel")) e.classList.remove("sel");
    const sel = kind === "port" ? `.port[data-port="${CSS.escape(id)}"]` : kind === "comp" ? `.comp[data-comp="${CSS.escape(id)}"]` : `.proc[data-proc="${CSS.escape(id)}"]`;
    const node = svg.querySelector(sel);
    if (node) node.classList.add("sel");
    details();
  }
  const row = (k, v, cls) => `<tr class="${cls || ""}"><td>${esc(k)}</td><td class="n">${esc(v)}</td></tr>`;
  function dropsTable(drops) {
    const keys = Object.keys(drops || {}).sort();
    if (!keys.length) return `<p class="sub">none counted</p>`;
    return "<table>" + keys.map((k) => row(k, Number(drops[k]).toLocaleString(), drops[k] ? "drop" : "zero")).join("") + "</table>";
  }
  function details() {
    const box = document.getElementById("details");
    const snap = state.snap, s = state.selected;
    if (!snap || !s) return;
    const idx = index(snap);
    let html = "";
    if (s.kind === "port") {
      const p = idx.ports.get(s.id);
      if (!p) { box.innerHTML = `<p class="hint">${esc(s.id)} is gone.</p>`; return; }
      const st = p.stats, rt = p.rates;
      const users = [];
      for (const pr of snap.processes) for (const c of pr.components) {
        if (c.rx.includes(p.uid)) users.push(`${c.id} (rx)`);
        if (c.tx.includes(p.uid)) users.push(`${c.id} (tx)`);
      }
      html += `<h2>port ${esc(p.uid)}</h2><p class="sub">${esc(p.type)}${p.iface ? " · " + esc(p.iface) : ""}${p.ring ? ` · ${p.ring.count} of ${p.ring.size} slots queued` : ""}${p.known ? "" : " · no counters reported"}</p>`;
      html += "<h3>rates</h3><table>" + row("rx", pps(rt.rx_pps) + " · " + bps(rt.rx_bps)) + row("tx", pps(rt.tx_pps) + " · " + bps(rt.tx_bps))
        + row("drops", num(rt.drop_pps) + "/s", rt.drop_pps ? "drop" : "") + "</table>";
      html += "<h3>counters</h3><table>" + ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "errors"].map((k) => row(k, Number(st[k]).toLocaleString(), k === "errors" && st[k] ? "drop" : "")).join("") + "</table>";
      html += `<h3>drops by reason</h3>` + dropsTable(st.drops);
      html += `<h3>used by</h3><p>${users.length ? users.map(esc).join("<br>") : "no component"}</p>`;
      const ms = snap.port_mirrors.filter((m) => m.source === p.uid || m.destination === p.uid);
      if (ms.length) html += "<h3>port mirrors</h3>" + ms.map(mirrorHtml).join("");
    } else if (s.kind === "comp") {
      const f = idx.comps.get(s.id);
      if (!f) { box.innerHTML = `<p class="hint">${esc(s.id)} is gone.</p>`; return; }
      const c = f.comp;
      html += `<h2>${esc(c.name)}</h2><p class="sub">${esc(c.type)} in ${esc(f.proc.id)}${c.core !== null && c.core !== undefined ? " · core " + esc(c.core) : ""}</p>`;
      html += `<table>${row("rx ports", c.rx.join(", ") || "—")}${row("tx ports", c.tx.join(", ") || "—")}${row("drops/s", num(c.drop_rate || 0), c.drop_rate ? "drop" : "")}</table>`;
      html += `<h3>drops by reason</h3>` + dropsTable(c.drops);
      for (const u of [...c.rx, ...c.tx]) {
        const p = idx.ports.get(u);
        if (p) html += `<h3>${esc(u)}</h3><table>${row("rx", pps(p.rates.rx_pps))}${row("tx", pps(p.rates.tx_pps))}${row("dropped", sum(p.stats.drops).toLocaleString(), sum(p.stats.drops) ? "drop" : "")}</table>`;
      }
    } else {
      const p = idx.procs.get(s.id);
      if (!p) { box.innerHTML = `<p class="hint">${esc(s.id)} is gone.</p>`; return; }
      html += `<h2>${esc(KIND_NAMES[p.kind] || p.kind)}${p.client_id !== null && p.client_id !== undefined ? " " + esc(p.client_id) : ""}</h2>`;
      html += `<p class="sub">${p.up ? "up" : p.state === "waiting" ? esc(p.error) : `<span class="err">down: ${esc(p.error)}</span>`}${p.pid ? " · pid " + esc(p.pid) : ""}</p>`;
      html += "<table>" + row("components", p.components.length) + row("ports", (p.ports || []).join(", ") || "—");
      for (const [k, v] of Object.entries(p.details || {})) if (k !== "classifier_table") html += row(k, typeof v === "object" ? JSON.stringify(v) : v);
      html += "</table>";
      const ct = (p.details || {}).classifier_table;
      if (ct && ct.length) html += "<h3>classifier table</h3><table>" + ct.map((e) => row(`${e.type} ${e.value}`, e.port)).join("") + "</table>";
      if (p.kind === "primary" && snap.pool) html += "<h3>pool</h3><table>" + Object.entries(snap.pool).map(([k, v]) => row(k, Number(v).toLocaleString())).join("") + "</table>";
      if (p.kind === "primary" && snap.port_mirrors.length) html += "<h3>port mirrors</h3>" + snap.port_mirrors.map(mirrorHtml).join("");
    }
    box.innerHTML = html;
  }
  function mirrorHtml(m) {
    const st = m.stats || {};
    return `<p><b>${esc(m.name)}</b>: ${esc(m.source)} (${esc(m.direction || "both")}) → ${esc(m.destination)}</p><table>`
      + ["packets", "filtered", "nombuf", "full", "errors"].map((k) => row(k, Number(st[k] || 0).toLocaleString(), k !== "packets" && k !== "filtered" && st[k] ? "drop" : "")).join("") + "</table>";
  }

  // -- zoom -----------------------------------------------------------------------------
  function fitScale() {
    const L = state.layout;
    if (!L) return 1;
    return Math.min(1, (canvas.clientWidth - 4) / L.width, (canvas.clientHeight - 4) / L.height);
  }
  function applyScale() {
    const L = state.layout;
    if (!L) return;
    if (!state.userZoom) state.scale = Math.max(0.8, fitScale());
    svg.setAttribute("viewBox", `0 0 ${L.width} ${L.height}`);
    svg.setAttribute("width", String(Math.round(L.width * state.scale)));
    svg.setAttribute("height", String(Math.round(L.height * state.scale)));
  }
  function zoom(s) { state.userZoom = true; state.scale = Math.min(3, Math.max(0.15, s)); applyScale(); }
  document.getElementById("zoom-in").onclick = () => zoom((state.scale || 1) * 1.25);
  document.getElementById("zoom-out").onclick = () => zoom((state.scale || 1) / 1.25);
  document.getElementById("zoom-fit").onclick = () => zoom(fitScale());
  document.getElementById("zoom-one").onclick = () => zoom(1);
  window.addEventListener("resize", () => applyScale());

  // -- data -------------------------------------------------------------------------------
  function render(snap) {
    state.snap = snap;
    state.lastMessage = Date.now();
    const sig = signature(snap);
    if (sig !== state.sig) {
      state.sig = sig;
      draw(snap);
      if (state.selected) select(state.selected.kind, state.selected.id);
    }
    update(snap);
  }
  function setConn(cls, text) {
    const c = document.getElementById("conn");
    c.className = "conn " + cls;
    c.querySelector("span").textContent = text;
  }
  function connect() {
    const url = "ui/events" + (token ? "?token=" + encodeURIComponent(token) : "");
    const es = new EventSource(new URL(url, location.href.replace(/\/ui\/?(\?.*)?$/, "/")).href);
    state.source = es;
    es.onopen = () => setConn("live", "live");
    es.onmessage = (ev) => {
      let snap;
      try { snap = JSON.parse(ev.data); } catch (e) { setConn("lost", "bad data from spp-ctl"); return; }
      setConn("live", "live");
      render(snap);
    };
    es.onerror = () => setConn("lost", es.readyState === EventSource.CLOSED ? "stream closed (reload the page)" : "reconnecting…");
  }
  setInterval(() => {
    if (state.lastMessage && state.snap && Date.now() - state.lastMessage > 3000 * (state.snap.interval || 1))
      setConn("lost", `no update for ${Math.round((Date.now() - state.lastMessage) / 1000)} s`);
  }, 1000);

  window.sppTopology = {
    render: (snap) => { if (state.source) { state.source.close(); state.source = null; } state.userZoom = false; render(snap); setConn("wait", "static snapshot"); },
    state, layout,
  };
  if (!params.has("static")) connect();
})();
