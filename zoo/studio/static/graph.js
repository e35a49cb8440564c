// The graph view of the Brains page, and a local Microscope: click a blob to see its channels' pictures
// (the cached ones at once; the rest made by a `channels` job, each appearing when it is written), click
// a channel to dream with it. The server lays the graph out (zoo/studio/graph_layout.py); this only draws.
"use strict";

const graphView = { model: null, blob: null, src: null, job: null };
const encPath = (s) => s.split("/").map(encodeURIComponent).join("/");
const pictureUrl = (ref) => "/api/channel-pictures/" + encPath(ref);

async function showGraph(name) {
  const view = $("graph-view"); view.textContent = "";
  $("graph-title").textContent = name;
  $("graph-channels").hidden = true;
  const size = $("dream-size").value.match(/^(\d+)(?:x(\d+))?$/);
  const q = size ? `?width=${size[1]}&height=${size[2] || size[1]}` : "";
  let g;
  try { g = await api(`/api/brains/${encodeURIComponent(name)}/graph${q}`); }
  catch (e) {
    try { g = await api(`/api/brains/${encodeURIComponent(name)}/graph`); } catch (e2) { view.append(el("p", { class: "error", text: e2.message })); return; }
  }
  graphView.model = name;
  $("graph-title").textContent = `${name} at ${g.size.join("×")}`;
  view.append(drawGraph(g.layout, name));
}

// Straight down a lane, curved (vertical at both ends) between rows: a curve stays between its rows.
function edgePath(points) {
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i - 1], [x2, y2] = points[i];
    if (x1 === x2) d += ` L${x2},${y2}`;
    else { const ym = (y1 + y2) / 2; d += ` C${x1},${ym} ${x2},${ym} ${x2},${y2}`; }
  }
  return d;
}

function drawGraph(L, name) {
  const svg = svgEl("svg", { width: L.width, height: L.height, class: "graph" });
  const title = (parent, text) => { const t = svgEl("title"); t.textContent = text; parent.append(t); };
  for (const e of L.edges) {
    const p = svgEl("path", { class: e.skip ? "edge skip" : "edge", d: edgePath(e.points) });
    title(p, `${e.blob}: ${e.from} → ${e.to}`);
    svg.append(p);
  }
  const [px, py] = L.pad;
  for (const n of L.nodes) {
    const grp = svgEl("g", { class: "layer " + n.type, transform: `translate(${n.x},${n.y})`, "data-layer": n.name });
    grp.append(svgEl("rect", { width: n.w, height: n.h, rx: 4 }));
    title(grp, n.lines.map((l) => l.full).join("\n"));
    n.lines.forEach((line, k) => {
      const t = svgEl("text", { x: px, y: py + k * L.line + L.font_px });
      t.textContent = line.text;
      if (line.blob) {
        t.setAttribute("data-blob", line.blob);
        t.setAttribute("class", line.dreamable ? "graph-blob" : "blob-line");
        if (line.dreamable) t.addEventListener("click", () => openChannels(name, line.blob));
      }
      grp.append(t);
    });
    svg.append(grp);
  }
  return svg;
}

// --- the channels of one blob -------------------------------------------------------------------------
async function openChannels(name, blob, settings) {
  for (const o of document.querySelectorAll("#graph-view .graph-blob")) o.classList.toggle("selected", o.dataset.blob === blob);
  if (graphView.src) { graphView.src.close(); graphView.src = null; }
  graphView.blob = blob;
  const box = $("graph-channels"); box.hidden = false; box.textContent = "";
  const s = settings || { size: 128, steps: 64, seed: 0 };
  let info;
  try { info = await api(`/api/brains/${encodeURIComponent(name)}/channels/${encPath(blob)}?size=${s.size}&steps=${s.steps}&seed=${s.seed}`); }
  catch (e) { box.append(el("p", { class: "error", text: e.message })); return; }
  if (!settings && !info.pictures.length && info.variants.length) {  // pictures made with other settings: show those
    const v = info.variants.reduce((a, b) => (b.pictures > a.pictures ? b : a));
    if (v.pictures) return openChannels(name, blob, v);
  }
  drawChannels(box, name, blob, info);
  const jobs = await api("/api/jobs");
  const live = jobs.find((j) => j.kind === "channels" && ["queued", "running"].includes(j.state) &&
    j.spec.model === name && j.spec.blob === blob);
  if (live) followChannels(live, name, blob);
}

function drawChannels(box, name, blob, info) {
  box.dataset.blob = blob; box.dataset.model = name;
  const dreamBlob = el("button", { type: "button", id: "graph-dream-blob", text: `dream on ${blob}` });
  dreamBlob.addEventListener("click", () => dreamWith(name, blob));
  box.append(el("h3", { text: blob }),
    el("div", { class: "muted", text: `${info.channels} channels · pictures ${info.size} px, ${info.steps} steps, seed ${info.seed}` }),
    el("div", { class: "row" }, dreamBlob));
  if (!info.weights) box.append(el("p", { class: "muted", text: `fetch ${name} to make its channel pictures` }));
  else if (!info.complete) box.append(makeControls(name, blob, info));
  for (const v of info.variants) {
    const b = el("button", { type: "button", class: "small", text: `${v.size} px, ${v.steps} steps: ${v.pictures} pictures` });
    b.addEventListener("click", () => openChannels(name, blob, v));
    box.append(b);
  }
  const grid = el("div", { id: "graph-channel-grid", class: "channel-grid" });
  const have = Object.fromEntries(info.pictures.map((p) => [p.channel, p.ref]));
  for (let c = 0; c < info.channels; c++) {
    const fig = el("figure", { class: "channel", "data-channel": String(c), title: `dream with --layer ${blob}:${c}` },
      have[c] != null ? el("img", { src: pictureUrl(have[c]), alt: `${blob}:${c}`, loading: "lazy" }) : el("div", { class: "noimg" }),
      el("figcaption", { text: String(c) }));
    fig.addEventListener("click", () => dreamWith(name, `${blob}:${c}`));
    grid.append(fig);
  }
  box.append(grid);
}

function makeControls(name, blob, info) {
  const missing = info.channels - info.pictures.length;
  const run = el("button", { type: "button", id: "graph-make-channels", class: "primary",
    text: `make ${missing} channel picture${missing === 1 ? "" : "s"}` });
  const stop = el("button", { type: "button", id: "graph-stop-channels", text: "stop", disabled: true });
  const bar = el("progress", { id: "graph-channels-progress", max: 100, value: 0 });
  const text = el("div", { id: "graph-channels-text", class: "muted", text: `${info.pictures.length} of ${info.channels} made` });
  run.addEventListener("click", async () => {
    try {
      const job = await api("/api/channels", { method: "POST", json: { model: name, blob, size: info.size,
        iterations: info.steps, seed: info.seed } });
      followChannels(job, name, blob);
    } catch (e) { text.className = "error"; text.textContent = e.message; }
  });
  stop.addEventListener("click", () => graphView.job && api(`/api/jobs/${graphView.job.id}/stop`, { method: "POST" }));
  return el("div", { class: "channel-controls" }, el("div", { class: "row" }, run, stop), bar, text);
}

function followChannels(job, name, blob) {
  graphView.job = job;
  const run = $("graph-make-channels"), stop = $("graph-stop-channels");
  if (run) run.disabled = true;
  if (stop) stop.disabled = false;
  const say = (t) => { const e = $("graph-channels-text"); if (e) e.textContent = t; };
  graphView.src = follow(job, {
    event: (e) => {
      if (graphView.blob !== blob) return;
      if (e.type === "progress" && $("graph-channels-progress")) $("graph-channels-progress").value = e.percent;
      if (e.type === "progress" || e.type === "start") say(`${e.done} of ${e.total} made · ${e.percent}%`);
      if (e.type === "channel") {
        const fig = document.querySelector(`#graph-channel-grid figure[data-channel="${e.channel}"]`);
        if (fig && !fig.querySelector("img")) fig.firstChild.replaceWith(el("img", { src: pictureUrl(e.ref), alt: `${blob}:${e.channel}` }));
      }
    },
    end: (j) => {
      if (run) run.disabled = false;
      if (stop) stop.disabled = true;
      if (j.state === "failed") { say(j.error); return; }
      say(j.state === "stopped" ? `stopped: ${j.result.pictures} of ${j.result.total} made; make resumes` : `done: ${j.result.pictures} pictures`);
      if (j.state === "done") for (const b of [run, stop]) if (b) b.hidden = true;
    },
  });
}

// A channel (or a whole blob) into the Dream form, with its brain, ready to dream.
function dreamWith(name, layer) {
  $("dream-model").value = name;
  loadBlobs().then(() => setLayers([layer]));
  $("dream-layers").value = layer;
  show("dream");
  toast(`--layer ${layer} on ${name}: ready to dream`);
}
