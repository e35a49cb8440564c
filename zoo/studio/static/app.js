// zoo studio front end: plain JS over the JSON API (no build step, no external assets).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
};
const svgEl = (tag, attrs = {}) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
const fileUrl = (ref, q = "") => "/api/files/" + ref.split("/").map(encodeURIComponent).join("/") + q;

async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: {} };
  if (opts.json !== undefined) { init.body = JSON.stringify(opts.json); init.headers["Content-Type"] = "application/json"; }
  if (opts.body !== undefined) { init.body = opts.body; init.headers["Content-Type"] = "application/octet-stream"; }
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(data.error || `${r.status}`);
  return data;
}
const upload = (kind, file) => api(`/api/uploads?kind=${kind}&filename=${encodeURIComponent(file.name)}`,
  { method: "POST", body: file });

function toast(msg) {
  const t = $("toast"); t.textContent = msg; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 3000);
}
const fmtBytes = (n) => n == null ? "-" : n < 1e6 ? `${(n / 1e3).toFixed(0)} KB` : `${(n / 1e6).toFixed(1)} MB`;
const fmtEta = (s) => s == null ? "" : s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;

// --- pages ------------------------------------------------------------------------------------------
const loaders = {};
function show(page) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.page === page);
  for (const s of document.querySelectorAll(".page")) s.classList.toggle("active", s.id === "page-" + page);
  if (loaders[page]) loaders[page]();
  history.replaceState(null, "", "#" + page);
}
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.page));

// --- jobs: follow one over server-sent events -----------------------------------------------------
function follow(job, handlers) {
  const src = new EventSource(`/api/jobs/${job.id}/events`);
  src.addEventListener("message", (m) => { const e = JSON.parse(m.data); handlers.event && handlers.event(e); });
  src.addEventListener("preview", (m) => { const p = JSON.parse(m.data); handlers.preview && handlers.preview(p); });
  src.addEventListener("end", (m) => { src.close(); handlers.end && handlers.end(JSON.parse(m.data)); });
  return src;
}

// --- the forms' limits: read from /openapi.json, where they come from each option's one declaration -------
let schemas = {};
const FIELDS = {
  DreamRequest: { "dream-octaves": "octaves", "dream-octave-scale": "octave_scale", "dream-iterations": "iterations",
    "dream-step": "step", "dream-jitter": "jitter", "dream-tile": "tile", "dream-seed": "seed" },
  AtlasRequest: { "atlas-size": "size", "atlas-octaves": "octaves", "atlas-iterations": "iterations", "atlas-seed": "seed" },
  TrainRequest: { "train-iters": "max_iter", "train-batch": "batch", "train-lr": "base_lr" },
};
const bound = (p, key) => p[key] ?? (p.anyOf || []).map((a) => a[key]).find((v) => v != null);
async function loadLimits() {
  schemas = (await api("/openapi.json")).components.schemas;
  for (const [model, fields] of Object.entries(FIELDS)) {
    for (const [id, name] of Object.entries(fields)) {
      const p = schemas[model].properties[name]; const input = $(id);
      const lo = bound(p, "minimum") ?? bound(p, "exclusiveMinimum"); const hi = bound(p, "maximum");
      if (lo != null && Math.abs(lo) < 1e15) input.min = lo;
      if (hi != null && Math.abs(hi) < 1e15) input.max = hi;
      if (p["x-zoo-default"] != null && input.value === "") input.value = p["x-zoo-default"];
      input.dataset.flag = p["x-zoo-flag"] || "";
    }
  }
  nameRule("import-name", schemas.ImportRequest.properties.name, "import-status");
  nameRule("train-name", schemas.TrainRequest.properties.name, "train-error");
}
// A model name is checked with the server's own rule (the registry's pattern) and refused in its words.
function nameRule(id, p, say) {
  const input = $(id); const re = new RegExp(`^(?:${p.pattern})$`);
  const check = () => {
    const v = input.value.trim();
    input.setCustomValidity(!v || re.test(v) ? "" : `${p["x-zoo-flag"]}: ${p["x-zoo-says"]}, not ${JSON.stringify(v)}`);
  };
  input.addEventListener("input", check);
  input.addEventListener("invalid", () => { $(say).className = "error"; $(say).textContent = input.validationMessage; });
  check();
}

// --- brains (shared by every page) ------------------------------------------------------------------
let brains = [];
async function loadBrains() {
  brains = await api("/api/brains");
  for (const id of ["dream-model", "atlas-model", "train-model"]) {
    const sel = $(id); const keep = sel.value;
    sel.textContent = "";
    for (const b of brains) sel.append(el("option", { value: b.name, text: b.name + (b.cached || b.builtin ? "" : " (not fetched)") }));
    if (keep && brains.some((b) => b.name === keep)) sel.value = keep;
    else if (brains.some((b) => b.name === "efficientnet_lite0")) sel.value = "efficientnet_lite0";
  }
  return brains;
}

// --- Dream ------------------------------------------------------------------------------------------
const dream = { job: null, src: null, result: null };
const layersOf = () => $("dream-layers").value.split(";").map((s) => s.trim()).filter(Boolean);
function setLayers(list) { $("dream-layers").value = list.join("; "); markBlobs(); }
function markBlobs() {
  const chosen = new Set(layersOf().map((l) => l.split(":")[0]));
  for (const c of document.querySelectorAll(".blob-card")) c.classList.toggle("selected", chosen.has(c.dataset.blob));
}
function toggleLayer(blob) {
  const list = layersOf(); const i = list.findIndex((l) => l.split(":")[0] === blob);
  if (i >= 0) list.splice(i, 1); else list.push(blob);
  setLayers(list);
}

async function loadBlobs() {
  const name = $("dream-model").value; const box = $("dream-blobs");
  box.textContent = "";
  if (!name) return;
  try {
    const b = await api(`/api/brains/${encodeURIComponent(name)}`);
    for (const blob of b.blobs) {
      const img = blob.atlas ? el("img", { src: fileUrl(blob.atlas, "?thumb=96"), alt: blob.name, loading: "lazy" })
        : el("div", { class: "noimg", title: "no atlas yet (Atlas page)" });
      const card = el("div", { class: "blob-card", "data-blob": blob.name, title: blob.produces || blob.name }, img,
        el("div", { class: "name", text: blob.name }),
        el("div", { class: "muted", text: `${blob.shape.join("×")} · ${blob.channels} ch` }));
      card.addEventListener("click", () => toggleLayer(blob.name));
      box.append(card);
    }
    markBlobs();
  } catch (e) { box.append(el("p", { class: "error", text: e.message })); }
}
$("dream-model").addEventListener("change", () => { setLayers([]); loadBlobs(); });
$("dream-layers").addEventListener("input", markBlobs);

$("dream-class").addEventListener("input", async () => {
  const q = $("dream-class").value; const list = $("dream-class-list");
  if (q.length < 2) return;
  try {
    const r = await api(`/api/brains/${encodeURIComponent($("dream-model").value)}/labels?q=${encodeURIComponent(q)}&limit=30`);
    if ($("dream-class").value !== q) return;  // a later keystroke's answer is the one to show
    list.textContent = "";
    for (const l of r.labels) list.append(el("option", { value: l.label }));
    list.dataset.output = r.output;
  } catch (e) { /* a model without labels */ }
});
$("dream-class").addEventListener("keydown", (ev) => {
  if (ev.key !== "Enter") return;
  ev.preventDefault();
  const label = $("dream-class").value.trim();
  if (!label) return;
  setLayers([...layersOf(), `${$("dream-class-list").dataset.output || "prob"}:${label}`]);
  $("dream-class").value = "";
});

function setInput(ref, name) {
  $("dream-input").value = ref || "";
  $("dream-input-name").textContent = ref ? name || ref : "no image";
  if (ref) $("dream-init").value = "image";
  const t = $("dream-input-thumb");
  if (window.zooMedia && zooMedia.input(ref, t)) return;  // a sound or an SVG: media.js shows it
  t.hidden = !ref; if (ref) t.src = fileUrl(ref, "?thumb=64");
}
$("dream-image-file").addEventListener("change", async (ev) => {
  const f = ev.target.files[0]; if (!f) return;
  $("dream-error").textContent = "";
  try { const u = await upload("image", f); setInput(u.ref, `${u.name} (${u.width}×${u.height})`); }
  catch (e) { $("dream-error").textContent = e.message; setInput(null); }
  ev.target.value = "";
});
$("dream-clear-input").addEventListener("click", () => setInput(null));
$("dream-clear-guide").addEventListener("click", () => { $("dream-guide").value = ""; $("dream-guide-name").textContent = ""; });
$("dream-guide-file").addEventListener("change", async (ev) => {
  const f = ev.target.files[0]; if (!f) return;
  // a sound's guide is a sound (its features steer the sound dream): media.js knows the sound suffixes
  const kind = window.zooMedia && window.zooMedia.kindOf(f.name) === "sound" ? "sound" : "image";
  try { const u = await upload(kind, f); $("dream-guide").value = u.ref; $("dream-guide-name").textContent = u.name; }
  catch (e) { $("dream-error").textContent = e.message; }
  ev.target.value = "";
});

let presets = {};
async function loadPresets() {
  presets = (await api("/api/presets")).presets;
  for (const [k, p] of Object.entries(presets)) $("dream-preset").append(el("option", { value: k, text: `${k}: ${p.description}` }));
}
$("dream-preset").addEventListener("change", () => {
  const p = presets[$("dream-preset").value]; if (!p) return;
  const q = p.params;
  $("dream-octaves").value = q.octaves; $("dream-octave-scale").value = q.octave_scale; $("dream-iterations").value = q.iterations;
  $("dream-step").value = q.step; $("dream-jitter").value = q.jitter;
  if (p.model && brains.some((b) => b.name === p.model)) { $("dream-model").value = p.model; loadBlobs().then(() => p.layer && setLayers([p.layer])); }
});

function dreamSpec() {
  const num = (id) => $(id).value === "" ? null : Number($(id).value);
  const kind = $("dream-init").value; const arg = $("dream-init-arg").value.trim();
  const spec = {
    input: $("dream-input").value || null, init: kind === "image" || !arg ? kind : `${kind}:${arg}`,
    model: $("dream-model").value || null, layers: layersOf(),
    weights: $("dream-weights").value.split(";").map((s) => s.trim()).filter(Boolean).map(Number),
    guide: $("dream-guide").value || null, octaves: num("dream-octaves"), octave_scale: num("dream-octave-scale"),
    iterations: num("dream-iterations"), step: num("dream-step"), jitter: num("dream-jitter"), tile: num("dream-tile"),
    size: $("dream-size").value.trim() || null, seed: num("dream-seed") || 0, preset: $("dream-preset").value || null,
  };
  return window.zooMedia ? zooMedia.spec(spec) : spec;  // a sound's, stroke dream's or journey's fields
}

function dreamProgress(p) {
  if (!p || p.percent == null) return;
  $("dream-progress").value = p.percent;
  const part = p.frame ? `frame ${p.frame}/${p.frames} · ` : p.chunk ? `chunk ${p.chunk}/${p.chunks} · ` : "";
  const where = part + (p.octave ? `octave ${p.octave}/${p.octaves} · step ${p.step}/${p.steps}` +
    (p.tiles > 1 ? ` · tile ${p.tile}/${p.tiles}` : "") + " · " : "");
  $("dream-progress-text").textContent = `${where}${p.percent}%` + (p.eta_s != null && p.percent < 100 ? ` · ETA ${fmtEta(p.eta_s)}` : "");
}

function attachDream(job) {
  dream.job = job;
  if (dream.src) dream.src.close();
  $("dream-run").disabled = true; $("dream-stop").disabled = false;
  $("dream-result").hidden = true;
  localStorage.setItem("zoo.dreamJob", job.id);
  dream.src = follow(job, {
    event: (e) => {
      if (e.type === "progress" || e.type === "start") dreamProgress(e);
      if (e.type === "state" && e.state === "queued") $("dream-progress-text").textContent = "queued";
      if (e.type === "log") $("dream-progress-text").textContent = e.message;
    },
    preview: (p) => {
      const img = $("dream-preview"); img.src = p.url; img.hidden = false;
      img.dataset.n = String(Number(img.dataset.n) + 1);
      dreamProgress(p.progress);
    },
    end: (j) => {
      $("dream-run").disabled = false; $("dream-stop").disabled = true;
      localStorage.removeItem("zoo.dreamJob");
      if (j.state === "failed") { $("dream-error").textContent = j.error; $("dream-progress-text").textContent = "failed"; return; }
      if (j.state === "cancelled") { $("dream-progress-text").textContent = "cancelled"; return; }
      showResult(j.result, j.state);
    },
  });
}

function showResult(result, state) {
  if (window.zooMedia && zooMedia.result(result, state)) return;  // a sound, an SVG or a journey (media.js)
  if (!result || !result.image) return;
  dream.result = result;
  const ref = result.ref || ("outputs/" + result.image.split("/").pop());
  dream.result.ref = ref;
  const img = $("dream-preview"); img.src = fileUrl(ref); img.hidden = false;
  $("dream-result").hidden = false;
  $("dream-recipe").textContent = JSON.stringify(result.recipe, null, 1);
  $("dream-command").textContent = result.command;
  $("dl-png").href = fileUrl(ref, "?format=png");
  $("dl-jpeg").href = fileUrl(ref, "?format=jpeg");
  $("dl-tiff").href = fileUrl(ref, "?format=tiff");
  $("dream-progress-text").textContent = state === "stopped" ? `stopped: kept the image so far (${ref})` : `done: ${ref}`;
  if (state !== "stopped") $("dream-progress").value = 100;
  $("dream-result").dataset.ref = ref;
}

$("dream-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("dream-error").textContent = "";
  $("dream-preview").dataset.n = "0";
  $("dream-progress").value = 0;
  try { attachDream(await api("/api/dream", { method: "POST", json: dreamSpec() })); }
  catch (e) { $("dream-error").textContent = e.message; }
});
$("dream-stop").addEventListener("click", () => dream.job && api(`/api/jobs/${dream.job.id}/stop`, { method: "POST" }));
$("dream-use-input").addEventListener("click", () => { if (dream.result) setInput(dream.result.ref, dream.result.ref); toast("the result is the new input"); });

function fillFromRecipe(r) {
  const p = r.params || {};
  if (r.model && !brains.some((b) => b.name === r.model)) toast(`brain ${r.model} is not in this zoo`);
  $("dream-model").value = r.model;
  $("dream-octaves").value = p.octaves; $("dream-octave-scale").value = p.octave_scale; $("dream-iterations").value = p.iterations;
  $("dream-step").value = p.step; $("dream-jitter").value = p.jitter; $("dream-tile").value = p.tile || "";
  $("dream-seed").value = r.seed; $("dream-size").value = r.size || "";
  $("dream-weights").value = (r.weights || []).join("; ");
  $("dream-preset").value = r.preset || "";
  const [kind, arg] = (r.init || "image").split(/:(.*)/s);
  $("dream-init").value = kind; $("dream-init-arg").value = arg || "";
  setInput(r.input_ref, r.input_ref);
  if (r.input && !r.input_ref) toast(`its input ${r.input} is not in the studio: upload it again`);
  $("dream-guide").value = r.guide_ref || ""; $("dream-guide-name").textContent = r.guide_ref || "";
  loadBlobs().then(() => setLayers(r.layers || []));
  show("dream");
}

// Dropping a zoo output anywhere (a picture, sound, stroke SVG or video) loads its recipe into the Dream form.
document.addEventListener("dragover", (ev) => { ev.preventDefault(); $("drop-hint").hidden = false; });
document.addEventListener("dragleave", (ev) => { if (!ev.relatedTarget) $("drop-hint").hidden = true; });
document.addEventListener("drop", async (ev) => {
  ev.preventDefault(); $("drop-hint").hidden = true;
  const f = ev.dataTransfer && ev.dataTransfer.files[0];
  if (f) await dropRecipe(f);
});
async function dropRecipe(file) {
  try {
    const r = await api(`/api/recipe?filename=${encodeURIComponent(file.name || "dropped.png")}`, { method: "POST", body: file });
    fillFromRecipe(r.recipe);
    if (window.zooMedia) window.zooMedia.fill(r);  // a sound's, strokes' or journey's own options
    toast(`recipe of ${r.kind === "dream" ? "a picture" : "a " + r.kind} loaded into the Dream form`);
    $("dream-form").dataset.filled = "1";
  } catch (e) { $("dream-error").textContent = e.message; show("dream"); }
}
window.zooDropRecipe = dropRecipe;  // for tests that cannot synthesise a drag

// --- Brains -----------------------------------------------------------------------------------------
loaders.brains = async () => {
  await loadBrains();
  const box = $("brain-list"); box.textContent = "";
  for (const b of brains) {
    const status = b.cached ? "cached" : b.builtin ? "built in" : "not fetched";
    const card = el("div", { class: "card brain-card", "data-name": b.name },
      el("h3", { text: b.name }), el("div", { class: "muted", text: b.title }),
      el("dl", {}, el("dt", { text: "license" }), el("dd", { text: b.license }),
        el("dt", { text: "origin" }), el("dd", { text: b.origin }),
        el("dt", { text: "input" }), el("dd", { text: `${b.input.join("×")} ${b.channel_order}, scale ${b.scale}` }),
        el("dt", { text: "mean" }), el("dd", { text: Array.isArray(b.mean) ? b.mean.join(", ") : b.mean }),
        el("dt", { text: "classes" }), el("dd", { text: String(b.num_classes) }),
        el("dt", { text: "size" }), el("dd", { text: b.cached ? fmtBytes(b.bytes) : fmtBytes(b.download_bytes) })),
      el("div", { class: "row" }, el("span", { class: "badge " + (b.cached ? "yes" : "no"), text: status })));
    const bar = el("progress", { max: 100, value: 0, hidden: true });
    const row = el("div", { class: "row" });
    const fetchBtn = el("button", { type: "button", class: "brain-fetch", text: b.cached ? "verify" : "fetch" });
    fetchBtn.addEventListener("click", async () => {
      try {
        const job = await api(`/api/brains/${encodeURIComponent(b.name)}/fetch`, { method: "POST" });
        bar.hidden = false; fetchBtn.disabled = true;
        follow(job, {
          event: (e) => { if (e.type === "progress" && e.percent != null) bar.value = e.percent; if (e.type === "log") toast(e.message); },
          end: (j) => { fetchBtn.disabled = false; if (j.state === "failed") toast(j.error); loaders.brains(); },
        });
      } catch (e) { toast(e.message); }
    });
    const graphBtn = el("button", { type: "button", class: "brain-graph", text: "graph" });
    graphBtn.addEventListener("click", () => showGraph(b.name));
    const dreamBtn = el("button", { type: "button", text: "dream" });
    dreamBtn.addEventListener("click", () => { $("dream-model").value = b.name; setLayers([]); loadBlobs(); show("dream"); });
    row.append(fetchBtn, graphBtn, dreamBtn);
    if (b.cached || b.user) {
      const rm = el("button", { type: "button", class: "brain-remove", text: "remove" });
      rm.addEventListener("click", async () => {
        if (!confirm(`Remove ${b.name}?`)) return;
        try { await api(`/api/brains/${encodeURIComponent(b.name)}`, { method: "DELETE" }); toast(`${b.name} removed`); }
        catch (e) { toast(e.message); }
        loaders.brains();
      });
      row.append(rm);
    }
    card.append(row, bar);
    box.append(card);
  }
};

async function uploadIf(id, kind) {
  const f = $(id).files[0];
  return f ? (await upload(kind, f)).ref : null;
}
$("import-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const status = $("import-status"); status.className = "muted"; status.textContent = "uploading…";
  delete status.dataset.imported;
  try {
    const spec = { name: $("import-name").value.trim() };
    spec.prototxt = await uploadIf("import-prototxt", "prototxt");
    spec.weights = await uploadIf("import-weights", "weights");
    spec.mean = await uploadIf("import-mean", "mean");
    spec.labels = await uploadIf("import-labels", "labels");
    const mp = $("import-mean-pixel").value.trim();
    if (mp) spec.mean_pixel = mp.split(",").map(Number);
    if ($("import-channel-order").value) spec.channel_order = $("import-channel-order").value;
    if ($("import-scale").value) spec.scale = Number($("import-scale").value);
    status.textContent = "converting…";
    const card = await api("/api/brains/import", { method: "POST", json: spec });
    status.textContent = `imported ${card.name}: ${card.input.join("×")}, ${card.num_classes} outputs`;
    status.dataset.imported = card.name;
    await loaders.brains();
  } catch (e) { status.className = "error"; status.textContent = e.message; }
});

// --- Atlas ------------------------------------------------------------------------------------------
let atlasJob = null;
loaders.atlas = async () => {
  if (!brains.length) await loadBrains();
  const list = $("atlas-list"); list.textContent = "";
  for (const a of await api("/api/atlases")) {
    const full = await api(`/api/atlases/${encodeURIComponent(a.model)}`);
    const figs = el("div", { class: "atlas-figs" });
    for (const e of full.entries) {
      figs.append(el("figure", {}, el("img", { src: fileUrl(e.ref, "?thumb=160"), alt: e.blob, loading: "lazy" }),
        el("figcaption", { text: `${e.blob} ${e.shape.join("×")}` })));
    }
    list.append(el("div", { class: "card atlas-card", "data-model": a.model }, el("h3", { text: a.model }),
      el("code", { text: a.command }), figs));
  }
};
$("atlas-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("atlas-error").textContent = "";
  const spec = { model: $("atlas-model").value, start: $("atlas-start").value, size: Number($("atlas-size").value),
    octaves: Number($("atlas-octaves").value), iterations: Number($("atlas-iterations").value), seed: Number($("atlas-seed").value) };
  try {
    atlasJob = await api("/api/atlas", { method: "POST", json: spec });
    $("atlas-run").disabled = true; $("atlas-stop").disabled = false;
    follow(atlasJob, {
      event: (e) => {
        if (e.type === "progress") {
          $("atlas-progress").value = e.percent;
          $("atlas-progress-text").textContent = `blob ${e.index ?? ""}/${e.blobs ?? ""} ${e.blob ?? ""} · ${e.percent}%` +
            (e.eta_s != null ? ` · ETA ${fmtEta(e.eta_s)}` : "");
        }
      },
      preview: (p) => { $("atlas-preview").src = p.url; $("atlas-preview").hidden = false; },
      end: (j) => {
        $("atlas-run").disabled = false; $("atlas-stop").disabled = true;
        $("atlas-progress-text").textContent = j.state === "failed" ? "failed" : `${j.state}: ${j.result ? j.result.entries : 0} blobs`;
        if (j.state === "failed") $("atlas-error").textContent = j.error;
        else $("atlas-progress").value = 100;
        loaders.atlas(); loadBlobs();
      },
    });
  } catch (e) { $("atlas-error").textContent = e.message; }
});
$("atlas-stop").addEventListener("click", () => atlasJob && api(`/api/jobs/${atlasJob.id}/stop`, { method: "POST" }));

// --- Train ------------------------------------------------------------------------------------------
let trainJob = null;
loaders.train = async () => {
  if (!brains.length) await loadBrains();
  const d = await api("/api/datasets"); const list = $("train-dataset-list"); const box = $("train-datasets");
  list.textContent = ""; box.textContent = "";
  const sets = d.folders.flatMap((f) => f.datasets);
  for (const s of sets) {
    const text = `${s.classes.length} classes: ${s.classes.slice(0, 6).join(", ")}${s.classes.length > 6 ? ", …" : ""}`;
    list.append(el("option", { value: s.path, text }));
    const item = el("li", { class: "dataset", "data-path": s.path, title: s.path },
      el("code", { text: s.path }), el("span", { class: "muted", text: ` ${text}` }));
    item.addEventListener("click", () => { $("train-dataset").value = s.path; markDataset(); });
    box.append(item);
  }
  for (const b of d.builtin) list.append(el("option", { value: b, text: "built-in (downloads)" }));
  if (!$("train-dataset").value && sets.length) $("train-dataset").value = sets[0].path;
  markDataset();
  const runs = await api("/api/runs");
  const run = runs.find((r) => r.run === $("train-run").value);
  if (run) { drawPlot(run.rows); showPreviews(run.previews); }
};

function markDataset() {
  for (const li of document.querySelectorAll("#train-datasets li")) li.classList.toggle("selected", li.dataset.path === $("train-dataset").value);
}
$("train-dataset").addEventListener("input", markDataset);

function drawPlot(rows) {
  const c = $("train-plot"); const g = c.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
  c.dataset.points = String(rows.length);
  if (!rows.length) return;
  const L = 44, R = 44, T = 12, B = 28, w = c.width - L - R, h = c.height - T - B;
  const maxIt = Math.max(...rows.map((r) => r.iter), 1);
  const losses = rows.filter((r) => r.loss != null).map((r) => r.loss);
  const maxLoss = Math.max(...losses, 1e-6);
  g.strokeStyle = "#999"; g.strokeRect(L, T, w, h);
  g.fillStyle = "#333"; g.font = "11px sans-serif";
  g.fillText("0", L - 10, T + h + 12); g.fillText(String(maxIt), L + w - 10, T + h + 14);
  g.fillText(maxLoss.toFixed(2), 2, T + 10); g.fillText("1.0", L + w + 6, T + 10); g.fillText("iteration", L + w / 2 - 20, T + h + 24);
  const line = (key, color, scale) => {
    const pts = rows.filter((r) => r[key] != null);
    if (!pts.length) return;
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    pts.forEach((r, i) => { const x = L + w * r.iter / maxIt, y = T + h - h * r[key] / scale; if (i) g.lineTo(x, y); else g.moveTo(x, y); });
    g.stroke();
    for (const r of pts) { g.fillStyle = color; g.fillRect(L + w * r.iter / maxIt - 2, T + h - h * r[key] / scale - 2, 4, 4); }
  };
  line("loss", "#c33", maxLoss); line("batch_top1", "#36c", 1); line("val_top1", "#393", 1);
}
function showPreviews(refs) {
  const box = $("train-previews"); box.textContent = "";
  for (const r of refs) box.append(el("figure", {}, el("img", { src: fileUrl(r, "?thumb=120"), alt: r }), el("figcaption", { text: r.split("/").pop() })));
}
function attachTrain(job) {
  trainJob = job;
  $("train-start").disabled = true; $("train-stop").disabled = false;
  localStorage.setItem("zoo.trainJob", job.id);
  const run = job.spec.out ? job.spec.out.split("/").pop() : $("train-run").value;
  const previews = [];
  follow(job, {
    event: (e) => {
      if (e.type === "metrics") {
        drawPlot(e.rows);
        const last = e.rows[e.rows.length - 1] || {};
        $("train-progress-text").textContent = `iteration ${e.done}/${e.total} · loss ${last.loss != null ? last.loss.toFixed(3) : "-"}` +
          (last.val_top1 != null ? ` · held-out top-1 ${last.val_top1.toFixed(3)}` : "");
      }
      if (e.type === "checkpoint") { previews.push(`runs/${run}/${e.image}`); showPreviews(previews); }
      if (e.type === "state" && e.state === "running") $("train-progress-text").textContent = "preparing the data…";
    },
    end: (j) => {
      $("train-start").disabled = false; $("train-stop").disabled = true;
      localStorage.removeItem("zoo.trainJob");
      if (j.state === "failed") $("train-error").textContent = j.error;
      else if (j.state === "stopped" && j.result && j.result.iters) $("train-progress-text").textContent = `stopped at iteration ${j.result.iters}: checkpoint kept, Resume continues`;
      else $("train-progress-text").textContent = `${j.state}` + (j.result && j.result.exported ? `: exported ${j.result.exported}` : "");
      loadBrains();
    },
  });
}
function trainSpec(resume) {
  const spec = { run: $("train-run").value.trim(), resume, ckpt_every: 5, eval_every: 5, log_every: 1, workers: 0 };
  if ($("train-name").value.trim()) spec.name = $("train-name").value.trim();
  if (!resume) Object.assign(spec, {
    dataset: $("train-dataset").value.trim(), model: $("train-model").value, max_iter: Number($("train-iters").value),
    batch: Number($("train-batch").value), micro_batch: Number($("train-batch").value), base_lr: Number($("train-lr").value),
    lr_policy: $("train-policy").value, augment: $("train-augment").value.trim() || "none",
  });
  const iters = Number($("train-iters").value);
  spec.ckpt_every = spec.eval_every = Math.max(1, Math.round(iters / 4));
  return spec;
}
async function startTrain(resume) {
  $("train-error").className = "error"; $("train-error").textContent = "";
  if (!$("train-name").reportValidity()) return;
  try { attachTrain(await api("/api/train", { method: "POST", json: trainSpec(resume) })); }
  catch (e) { $("train-error").textContent = e.message; }
}
$("train-form").addEventListener("submit", (ev) => { ev.preventDefault(); startTrain(false); });
$("train-resume").addEventListener("click", () => startTrain(true));
$("train-stop").addEventListener("click", () => trainJob && api(`/api/jobs/${trainJob.id}/stop`, { method: "POST" }));
$("train-export").addEventListener("click", async () => {
  const name = $("train-name").value.trim();
  if (!name) { $("train-error").textContent = "give a name to export the brain as"; return; }
  if (!$("train-name").reportValidity()) return;
  try {
    const job = await api(`/api/runs/${encodeURIComponent($("train-run").value)}/export`, { method: "POST", json: { name } });
    follow(job, { end: (j) => { $("train-progress-text").textContent = j.state === "done" ? `exported ${name}` : j.error; loadBrains(); } });
  } catch (e) { $("train-error").textContent = e.message; }
});

// --- Gallery ----------------------------------------------------------------------------------------
loaders.gallery = async () => {
  const box = $("gallery"); box.textContent = "";
  for (const g of await api("/api/gallery")) {
    const r = g.recipe;
    const asInput = el("button", { type: "button", text: "use as input" });
    asInput.addEventListener("click", () => { setInput(g.ref, g.name); show("dream"); });
    const what = `${g.kind === "dream" ? "" : g.kind + " · "}${g.model || "default"} · ${g.layers.join(", ")}`;
    let shown, links;
    if (g.kind === "dream") {
      const use = el("button", { type: "button", text: "use recipe" });
      use.addEventListener("click", () => fillFromRecipe({ ...r, input_ref: g.input_ref, guide_ref: g.guide_ref }));
      shown = el("a", { href: fileUrl(g.ref), target: "_blank" }, el("img", { src: fileUrl(g.ref, "?thumb=256"), alt: g.name, loading: "lazy" }));
      links = [use, asInput, el("a", { href: fileUrl(g.ref, "?format=jpeg"), text: "JPEG" }), el("a", { href: fileUrl(g.ref, "?format=tiff"), text: "TIFF" })];
    } else {
      // a sound plays; a stroke SVG or a journey's animation is drawn as an image (no script runs in an <img>)
      shown = g.kind === "sound"
        ? el("div", {}, g.picture_ref ? el("img", { class: "spectrogram", src: fileUrl(g.picture_ref, "?thumb=256"), alt: "its spectrogram", loading: "lazy" }) : null,
          el("audio", { controls: true, preload: "none", src: fileUrl(g.ref) }))
        : el("img", { src: fileUrl(g.ref), alt: g.name, loading: "lazy" });
      links = [...(g.kind === "journey" ? [] : [asInput]), el("a", { href: fileUrl(g.ref), download: g.name, text: "download" })];
    }
    box.append(el("div", { class: "card gallery-item", "data-ref": g.ref, "data-kind": g.kind }, shown,
      el("div", { text: what + (r.interrupted ? " · stopped" : "") }),
      el("details", {}, el("summary", { text: "recipe" }), el("code", { text: g.command })),
      el("div", { class: "row" }, ...links)));
  }
};

// --- Jobs -------------------------------------------------------------------------------------------
loaders.jobs = async () => {
  const body = document.querySelector("#job-list tbody"); body.textContent = "";
  for (const j of await api("/api/jobs")) {
    const cell = el("td", {});  // only a job that can still be stopped gets a Stop button
    if (["queued", "running"].includes(j.state)) {
      const stop = el("button", { type: "button", text: "stop" });
      stop.addEventListener("click", async () => { await api(`/api/jobs/${j.id}/stop`, { method: "POST" }); loaders.jobs(); });
      cell.append(stop);
    }
    if (j.kind === "journey" && ["stopped", "failed"].includes(j.state)) {  // its finished frames are kept
      const again = el("button", { type: "button", text: "resume" });
      again.addEventListener("click", async () => { await api(`/api/jobs/${j.id}/resume`, { method: "POST" }); loaders.jobs(); });
      cell.append(again);
    }
    body.append(el("tr", { "data-state": j.state, "data-kind": j.kind }, el("td", { text: j.title || j.kind }),
      el("td", { text: j.state + (j.error ? `: ${j.error}` : "") }),
      el("td", { text: j.progress.percent != null ? `${j.progress.percent}%` : "" }), cell));
  }
};

// --- start: brains, presets, and any job still running (a reload keeps following it) ------------------
(async () => {
  try {
    await Promise.all([loadBrains(), loadPresets(), loadLimits()]);
    await loadBlobs();
    const jobs = await api("/api/jobs");
    const live = (kind) => jobs.find((j) => j.kind === kind && ["queued", "running"].includes(j.state));
    const d = live("dream"); if (d) attachDream(d);
    const t = live("train"); if (t) attachTrain(t);
    const page = location.hash.slice(1);
    show(["dream", "brains", "atlas", "train", "gallery", "jobs"].includes(page) ? page : "dream");
    document.body.dataset.ready = "1";
  } catch (e) { $("dream-error").textContent = e.message; }
})();
