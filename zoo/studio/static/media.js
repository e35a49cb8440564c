// zoo studio: sounds and vectors in the Dream form (issues 23 and 24). Loaded after app.js, whose helpers
// ($, el, api, upload, follow, fileUrl, bound, schemas, setInput, dream, show) it uses; app.js calls the
// hooks of window.zooMedia where the form branches: input(ref, thumb), spec(spec), result(result, state).
// Every field is built from the DreamRequest schema (/openapi.json), i.e. from each option's one declaration.
"use strict";

(() => {
  const media = { fields: null, kind: null };  // kind of the input: "sound", "svg" or null (a picture)
  const PARAMS = ["dream-octaves", "dream-octave-scale", "dream-iterations", "dream-step", "dream-jitter"];
  const idOf = (name) => "media-" + name.replace(/_/g, "-");
  const kindOf = (ref) => {
    if (!ref || !media.fields) return null;
    const low = ref.toLowerCase();
    if (media.fields.sound_suffixes.some((s) => low.endsWith(s))) return "sound";
    return media.fields.svg_suffixes.some((s) => low.endsWith(s)) ? "svg" : null;
  };

  // One input for a DreamRequest field: its type, choices, limits and default come from the schema.
  function field(name) {
    const p = schemas.DreamRequest.properties[name];
    const types = [p.type, ...(p.anyOf || []).map((a) => a.type)].filter((t) => t && t !== "null");
    const choices = p.enum || (p.anyOf || []).map((a) => a.enum).find(Boolean);
    let input;
    if (choices) {
      input = el("select", {});
      for (const c of choices) input.append(el("option", { value: c, text: c }));
    } else if (types[0] === "boolean") {
      input = el("input", { type: "checkbox" });
    } else if (types[0] === "integer" || types[0] === "number") {
      input = el("input", { type: "number", step: types[0] === "integer" ? "1" : "any" });
      const lo = bound(p, "minimum") ?? bound(p, "exclusiveMinimum"); const hi = bound(p, "maximum");
      if (lo != null && Math.abs(lo) < 1e15) input.min = lo;
      if (hi != null && Math.abs(hi) < 1e15) input.max = hi;
    } else {
      input = el("input", {});
    }
    const dflt = p["x-zoo-default"];
    if (dflt != null) { if (input.type === "checkbox") input.checked = !!dflt; else input.value = dflt; }
    input.id = idOf(name);
    input.dataset.name = name; input.dataset.kind = types[0] || "string";
    return el("label", { title: p.description || "", "data-field": name }, `${p["x-zoo-flag"].slice(2)} `, input);
  }
  function value(name) {
    const input = $(idOf(name));
    if (input.type === "checkbox") return input.checked;
    const v = input.value.trim();
    if (v === "") return null;
    return ["integer", "number"].includes(input.dataset.kind) ? Number(v) : v;
  }

  // The Make fieldset shows the fields of the chosen output; the Sound fieldset those of a sound input.
  function showMake() {
    const kind = $("media-kind").value;
    for (const l of $("media-make-fields").querySelectorAll("label")) {
      l.hidden = !(media.fields[kind] || []).includes(l.dataset.field);
    }
    if (kind === "journey" && (value("frames") || 1) < 2) $(idOf("frames")).value = 12;
    if (kind === "strokes" && value("strokes") == null) $(idOf("strokes")).value = 100;
  }
  // A sound dreams with the sound defaults (lighter than a still's) unless the form says otherwise.
  function soundParams(on) {
    for (const id of PARAMS) {
      const input = $(id);
      if (on) { input.dataset.kept = input.value; input.value = ""; input.placeholder = "sound default"; }
      else if (input.dataset.kept != null) { input.value = input.value || input.dataset.kept; input.placeholder = ""; delete input.dataset.kept; }
    }
  }

  async function spectrogram(ref) {
    const img = $("media-spec-in"); img.hidden = true;
    const body = { input: ref };
    for (const n of ["n_fft", "hop", "freq_scale", "stereo"]) body[n] = value(n);
    try {
      const r = await api("/api/spectrogram", { method: "POST", json: body });
      const shown = (made) => { if ($("dream-input").value === ref) { img.src = fileUrl(made); img.hidden = false; } };
      if (r.ref) shown(r.ref);
      else follow(r.job, { end: (j) => (j.state === "done" ? shown(j.result.ref) : ($("dream-error").textContent = j.error || j.state)) });
    } catch (e) { $("dream-error").textContent = e.message; }
  }

  function input(ref, thumb) {
    const was = media.kind;
    media.kind = kindOf(ref);
    $("media-sound").hidden = media.kind !== "sound";
    $("media-make").hidden = media.kind === "sound";
    $("media-input").hidden = media.kind !== "sound";
    if (media.kind === "sound" || was === "sound") soundParams(media.kind === "sound");
    if (media.kind === "sound") {
      thumb.hidden = true;
      $("media-audio-in").src = fileUrl(ref);
      spectrogram(ref);
    } else if (media.kind === "svg") {
      thumb.src = fileUrl(ref); thumb.hidden = false;  // drawn by the browser as an image: no script runs there
    }
    return media.kind !== null;
  }

  function spec(s) {
    if (media.kind === "sound") {
      for (const n of media.fields.sound) s[n] = value(n);
      s.size = null;  // a sound is dreamt at its own size: its spectrogram
      return s;
    }
    for (const n of media.fields[$("media-kind").value] || []) s[n] = value(n);
    return s;
  }

  function result(res, state) {
    const box = $("media-result");
    box.hidden = true;
    if (!res || !(res.sound || res.svg || res.video)) return false;
    const ref = res.ref;
    $("media-sound-result").hidden = !res.sound;
    $("media-use-input").hidden = !res.sound;
    if (res.sound) {
      $("media-audio-a").src = fileUrl(res.input_ref); $("media-audio-b").src = fileUrl(ref);
      $("media-spec-a").src = fileUrl(res.spectrogram_in); $("media-spec-b").src = fileUrl(res.spectrogram_out);
    }
    const preview = $("dream-preview");  // a sound's pictures are in the figures; an SVG or a WebP is drawn as it is
    if (res.sound || !ref) preview.hidden = true;
    else { preview.src = fileUrl(ref); preview.hidden = false; }
    const dl = $("dl-media");
    dl.hidden = !ref;
    if (ref) { dl.href = fileUrl(ref); dl.download = ref.split("/").pop(); dl.textContent = `download ${dl.download}`; }
    $("media-recipe").textContent = JSON.stringify(res.recipe, null, 1);
    $("media-command").textContent = res.command;
    dream.result = { ...res, ref };
    box.dataset.ref = ref || "";
    box.hidden = false;
    const kept = ref || (res.video ? `${res.written} finished frames in their folder` : "nothing");
    $("dream-progress-text").textContent = state === "stopped" ? `stopped: kept ${kept}` : `done: ${ref}`;
    if (state !== "stopped") $("dream-progress").value = 100;
    return true;
  }

  async function start() {
    media.fields = await api("/api/media");
    while (!schemas.DreamRequest) await new Promise((r) => setTimeout(r, 50));  // app.js reads the schema
    const sound = $("media-sound");
    for (const n of media.fields.sound) sound.append(field(n));
    for (const n of ["n_fft", "hop", "freq_scale", "stereo"]) {
      $(idOf(n)).addEventListener("change", () => media.kind === "sound" && spectrogram($("dream-input").value));
    }
    const make = $("media-make-fields");
    for (const n of new Set([...media.fields.strokes, ...media.fields.journey])) make.append(field(n));
    $("media-kind").addEventListener("change", showMake);
    showMake();
    $("media-file").accept = [...media.fields.sound_suffixes, ...media.fields.svg_suffixes, "audio/*"].join(",");
    $("dream-guide-file").accept = ["image/*", ...media.fields.sound_suffixes, "audio/*"].join(",");
    $("media-file").addEventListener("change", async (ev) => {
      const f = ev.target.files[0]; if (!f) return;
      const kind = kindOf(f.name) || "sound";
      $("dream-error").textContent = "";
      try {
        const u = await upload(kind, f);
        setInput(u.ref, kind === "svg" ? `${u.name} (${u.width}×${u.height})` : `${u.name} (${u.seconds} s, ${u.channels} ch, ${u.rate} Hz)`);
      } catch (e) { $("dream-error").textContent = e.message; setInput(null); }
      ev.target.value = "";
    });
    $("media-use-input").addEventListener("click", () => { if (dream.result) setInput(dream.result.ref, dream.result.ref); });
    $("dream-form").addEventListener("submit", () => { $("media-result").hidden = true; });
    const input = $("dream-input").value;
    if (input) setInput(input, $("dream-input-name").textContent);
    document.body.dataset.media = "1";
  }

  // A dropped output's own options (fillFromRecipe in app.js has set the picture recipe and the input).
  function set(name, v) {
    const input = $(idOf(name));
    if (!input || v == null) return;
    if (input.type === "checkbox") input.checked = !!v; else input.value = v;
  }
  function fill(r) {
    const rec = r.record || {};
    if (r.kind === "sound") {
      for (const n of media.fields.sound) set(n, (rec.sound || {})[n]);
      const p = r.recipe.params || {};  // the recipe's own steps, not the sound defaults the input brought
      const ids = { "dream-octaves": p.octaves, "dream-octave-scale": p.octave_scale, "dream-iterations": p.iterations,
        "dream-step": p.step, "dream-jitter": p.jitter };
      for (const [id, v] of Object.entries(ids)) if (v != null) { $(id).value = v; delete $(id).dataset.kept; }
    } else if (r.kind === "strokes" || r.kind === "journey") {
      $("media-kind").value = r.kind;
      if (r.kind === "strokes") { set("strokes", (rec.strokes || {}).count); set("underlay", (rec.strokes || {}).underlay); }
      else {
        const j = rec.journey || {};
        set("layer_path", (j.path || []).join(",")); set("fps", j.fps); set("hold", j.hold);
        set("frames", r.recipe.frames); set("zoom", r.recipe.zoom);
      }
      showMake();
    } else {
      $("media-kind").value = "picture"; showMake();
    }
  }

  window.zooMedia = { input, spec, result, kindOf, fill };
  start().catch((e) => { $("dream-error").textContent = e.message; });
})();
