// The API reference, rendered from the server's own OpenAPI document (no CDN, no external viewer).
"use strict";
(async () => {
  const root = document.getElementById("api-docs");
  const spec = await (await fetch("/openapi.json")).json();
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; };
  root.textContent = "";
  root.append(el("p", spec.info.description || ""));
  const schemas = (spec.components || {}).schemas || {};
  const ref = (s) => s && s.$ref ? s.$ref.split("/").pop() : null;
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const sec = el("section", null, "card");
      sec.append(el("h3", `${method.toUpperCase()} ${path}`));
      if (op.summary) sec.append(el("div", op.summary));
      if (op.description) sec.append(el("p", op.description, "muted"));
      const params = (op.parameters || []).map((p) => `${p.name} (${p.in}${p.required ? ", required" : ""})`);
      if (params.length) sec.append(el("div", "parameters: " + params.join(", ")));
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      const name = body && ref(body.schema);
      if (name && schemas[name]) {
        const props = Object.entries(schemas[name].properties || {}).map(([k, v]) => `${k}${v.description ? ": " + v.description : ""}`);
        sec.append(el("div", `JSON body ${name}:`), el("pre", props.join("\n")));
      }
      root.append(sec);
    }
  }
})();
