// A little vanilla JS: drag and drop with one request per file, live job progress, the slider.
"use strict";

function csrf(form) { return form.querySelector("[name=csrfmiddlewaretoken]").value; }

// The upload page: each chosen file becomes a card (its picture, the size it will have, then progress and
// ETA, then the result with download and open); cards stay when more files are chosen; one poll for all.
function setupUpload() {
  const form = document.getElementById("upload");
  if (!form) return;
  const drop = document.getElementById("drop");
  const input = form.querySelector("input[type=file]");
  const queue = document.getElementById("queue");
  const limits = JSON.parse(document.getElementById("limits").textContent);
  const cards = [];  // {file, el, width, height, job}
  input.required = false;  // the script keeps the chosen files itself, so the field is emptied after each pick
  ["dragenter", "dragover"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", ev => addFiles(ev.dataTransfer.files));
  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  const scaleSelect = form.querySelector("[name=scale]"), targetBox = document.getElementById("target");
  const field = name => form.querySelector(`[name=${name}]`);
  const showTarget = () => { targetBox.hidden = scaleSelect.value !== "target"; };
  scaleSelect.addEventListener("change", () => { showTarget(); cards.forEach(describe); });
  ["target_side", "target_length", "target_unit", "target_dpi", "network"].forEach(name => {
    if (field(name)) field(name).addEventListener("input", () => cards.forEach(describe));
  });
  showTarget();
  const network = field("network");  // absent when the server offers one network
  const format = form.querySelector("[name=format]"), quality = form.querySelector("label.quality");
  const lossy = () => { quality.hidden = ["png", "tiff"].includes(format.value); };  // lossless: no quality
  format.addEventListener("change", () => { lossy(); cards.forEach(describe); });
  lossy();

  function addFiles(files) {
    for (const file of Array.from(files)) {
      const card = { file, el: cardElement(file), width: null, height: null, job: null };
      cards.push(card);
      queue.appendChild(card.el);
      measure(card);
    }
  }

  function measure(card) {  // the browser applies the EXIF orientation, so these are the upright sizes
    const img = card.el.querySelector("img.before");
    img.addEventListener("load", () => { card.width = img.naturalWidth; card.height = img.naturalHeight; describe(card); });
    img.addEventListener("error", () => {  // a format this browser cannot show: the server reads its size
      card.el.dataset.status = "ready";
      card.el.querySelector(".size").textContent = "its size is read on upload";
    });
  }

  // The output size at the chosen scale, or why it is over the limits and the largest scale that fits.
  function describe(card) {
    if (card.job || card.width === null) return;
    if (scaleSelect.value === "target") { describeTarget(card); return; }
    const scale = +scaleSelect.value, fmt = form.querySelector("[name=format]").value;
    const reason = tooBig(card, scale, fmt);
    const size = card.el.querySelector(".size");
    card.el.dataset.status = reason ? "refused" : "ready";
    card.el.querySelector(".state").textContent = reason ? "not uploaded" : "ready to upload";
    if (!reason) {
      size.textContent = `${card.width}×${card.height} → ${card.width * scale}×${card.height * scale} px (x${scale})`;
      estimateWait(card, scale, fmt);
      return;
    }
    const fits = Array.from(scaleSelect.options).filter(o => o.value !== "target").map(o => +o.value).filter(s => !tooBig(card, s, fmt));
    size.textContent = reason + (fits.length ? ` The largest scale that fits is x${Math.max(...fits)}.` : "");
  }

  // A size asked for: the smallest scale of the network that reaches it, then the exact size it is resized
  // to, as the server computes them (upscale_worker/engine/target.py and limits.py; the server decides).
  function describeTarget(card) {
    const fmt = field("format").value, plan = targetPlan(card, fmt), size = card.el.querySelector(".size");
    card.el.dataset.status = plan.reason ? "refused" : "ready";
    card.el.querySelector(".state").textContent = plan.reason ? "not uploaded" : "ready to upload";
    if (plan.reason) { size.textContent = plan.reason; return; }
    size.textContent = `${card.width}×${card.height} → x${plan.scale} then resized to ${plan.width}×${plan.height} px`;
    estimateWait(card, plan.scale, fmt);
  }

  function targetPlan(card, fmt) {
    const side = field("target_side").value, unit = field("target_unit").value;
    const length = +field("target_length").value, dpi = +field("target_dpi").value;
    if (!(length > 0)) return { reason: "Enter the size to reach." };
    const perInch = { in: 1, cm: 2.54, mm: 25.4 }[unit];
    if (perInch && !(dpi > 0)) return { reason: `A print size in ${unit} needs a DPI (e.g. 300).` };
    if (!perInch && !Number.isInteger(length)) return { reason: "A size in pixels is a whole number." };
    const target = perInch ? Math.floor(length / perInch * dpi + 0.5) : length;
    const alongWidth = side === "width" || (side === "long_side" && card.width >= card.height);
    const [measured, other] = alongWidth ? [card.width, card.height] : [card.height, card.width];
    if (target <= measured) return { reason: `The picture is already ${measured} pixels on that side; ask for more.` };
    const network = field("network") ? field("network").value : Object.keys(limits.networkScales)[0];
    const scales = (limits.networkScales[network] || []).slice().sort((a, b) => a - b);
    const scale = scales.find(s => measured * s >= target);
    if (!scale) return { reason: `${target} pixels is beyond x${Math.max(...scales)} of this picture (${Math.max(...scales) * measured} pixels).` };
    const scaled = Math.max(1, Math.floor((2 * other * target + measured) / (2 * measured)));
    const [width, height] = alongWidth ? [target, scaled] : [scaled, target];
    const reason = tooBig(card, scale, null) || finalTooBig(width, height, fmt);
    return reason ? { reason } : { scale, width, height };
  }

  function finalTooBig(width, height, fmt) {  // the result as written: the format's side and megapixel caps
    const cap = limits.formatMegapixels[fmt], name = fmt.toUpperCase();
    if (Math.max(width, height) > limits.maxSide[fmt]) return `${width}×${height} is wider than ${name} allows (${limits.maxSide[fmt]} pixels).`;
    if (cap && width * height / 1e6 > cap) return `${width}×${height} is over the ${cap} megapixel limit for ${name}.`;
    return null;
  }

  async function estimateWait(card, scale, fmt) {  // the API's guess, from the speed of recent jobs
    const query = new URLSearchParams({ width: card.width, height: card.height, scale, output_format: fmt });
    if (network) query.set("network", network.value);  // each network has its own measured speed
    const asked = card.asked = query.toString();  // a later choice's answer wins, whichever arrives last
    try {
      const r = await fetch(form.dataset.estimateUrl + "?" + query, { headers: { "Accept": "application/json" } });
      const guess = r.ok ? await r.json() : null;
      if (guess && guess.total_seconds !== null && !card.job && card.el.dataset.status === "ready" && card.asked === asked) {
        card.el.querySelector(".state").textContent = "ready to upload · done in " + formatEta(guess.total_seconds).replace(" left", "");
      }
    } catch (e) { /* no guess: the card says less */ }
  }

  function tooBig(card, scale, fmt) {
    const lacks = network && (limits.networkRefusals[network.value] || {})[scale];  // RLFN has no x3
    if (lacks) return lacks;
    const mp = card.width * card.height / 1e6, out = mp * scale * scale;
    if (card.file.size > limits.maxBytes) return `Over the ${Math.round(limits.maxBytes / 2 ** 20)} MB limit.`;
    if (mp > limits.inputMegapixels) return `${mp.toFixed(1)} megapixels: over the ${limits.inputMegapixels} megapixel limit for an image.`;
    if (out > limits.outputMegapixels) return `x${scale} would make ${out.toFixed(0)} megapixels: over the ${limits.outputMegapixels} megapixel limit for a result.`;
    if (fmt && Math.max(card.width, card.height) * scale > limits.maxSide[fmt]) return `x${scale} would be wider than ${fmt.toUpperCase()} allows (${limits.maxSide[fmt]} pixels).`;
    return null;
  }

  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const ready = cards.filter(c => !c.job && c.el.dataset.status === "ready");
    if (!ready.length) { flash(cards.length ? "Nothing to upload: every chosen image is over the limits or sent already." : "Choose an image first."); return; }
    for (const card of ready) await send(card);
    poll();
  });

  async function send(card) {
    const state = card.el.querySelector(".state");
    card.el.dataset.status = "uploading";
    state.textContent = "uploading…";
    const body = new FormData(form);
    body.delete("image");
    body.append("image", card.file);
    try {
      const r = await fetch(form.action, { method: "POST", body, headers: { "Accept": "application/json", "X-CSRFToken": csrf(form) } });
      const data = await r.json().catch(() => ({ detail: "The server answered " + r.status + "." }));
      if (!r.ok) { refuse(card, data.detail || "refused"); return; }
      card.job = data;
      const name = card.el.querySelector(".name");
      const link = document.createElement("a");
      link.href = data.url; link.textContent = name.textContent; link.className = "name";
      name.replaceWith(link);
      update(card, data);
    } catch (e) {
      refuse(card, "the upload failed (" + e.message + ").");
    }
  }

  function refuse(card, why) {
    card.el.dataset.status = "error";
    card.el.querySelector(".state").textContent = why;
  }

  function update(card, job) {
    card.job = job;
    card.el.dataset.status = job.status;
    card.el.querySelector("progress").value = job.progress;
    const state = card.el.querySelector(".state");
    if (job.status === "queued") state.textContent = queuedText(job);
    else if (job.status === "running") state.textContent = Math.round(job.progress) + "% · " + formatEta(job.eta_seconds);
    else if (job.status === "done") showResult(card, job);
    else state.textContent = job.error || job.status;
    allLink();
  }

  function showResult(card, job) {
    if (card.el.querySelector(".result")) return;
    card.el.querySelector(".state").textContent = `done: ${job.output_width}×${job.output_height}` + (job.run_seconds ? ` in ${job.run_seconds.toFixed(1)} s` : "");
    const result = document.createElement("div");
    result.className = "result";
    const img = document.createElement("img");
    img.src = job.url + "/result-preview"; img.alt = "Upscaled " + card.file.name; img.className = "after";
    const get = document.createElement("a");
    get.href = job.url + "/result"; get.className = "button small get"; get.textContent = "Download"; get.setAttribute("download", "");
    const open = document.createElement("a");
    open.href = job.url; open.className = "button secondary small open"; open.textContent = "Open";
    result.append(img, get, open);
    card.el.appendChild(result);
  }

  function allLink() {  // one ZIP of the finished results on this page
    const done = cards.filter(c => c.job && c.job.status === "done");
    const row = document.getElementById("all"), link = row.querySelector("a");
    row.hidden = done.length < 2;
    link.href = form.dataset.downloadUrl + "?" + done.map(c => "job=" + c.job.id).join("&");
    const sent = cards.filter(c => c.job).length;
    link.textContent = `Download all (${done.length}` + (sent > done.length ? ` of ${sent} done)` : ")");
  }

  let polling = false;
  function poll() {  // one request for every card still waiting, backing off as watch() does
    if (polling) return;
    polling = true;
    let backoff = 500;
    const tick = async () => {
      const active = cards.filter(c => c.job && ["queued", "running"].includes(c.job.status));
      if (!active.length) { polling = false; return; }
      let soonest = null;
      try {
        const r = await fetch(form.dataset.statusUrl + "?" + active.map(c => "job=" + c.job.id).join("&"), { headers: { "Accept": "application/json" } });
        if (r.ok) {
          const byId = new Map((await r.json()).jobs.map(j => [j.id, j]));
          for (const card of active) {
            const job = byId.get(card.job.id);
            if (job) { update(card, job); if (job.eta_seconds != null) soonest = Math.min(soonest ?? job.eta_seconds, job.eta_seconds); }
          }
        }
      } catch (e) { /* keep polling through a blip */ }
      backoff = Math.min(backoff * 1.2, 3000);
      setTimeout(tick, nextPoll({ eta_seconds: soonest }, backoff));
    };
    tick();
  }

  function flash(text) {
    let note = document.getElementById("upload-note");
    if (!note) {
      note = document.createElement("p");
      note.id = "upload-note"; note.className = "message error"; note.setAttribute("role", "alert");
      form.after(note);
    }
    note.textContent = text;
  }
}

function cardElement(file) {
  const el = document.createElement("li");
  el.className = "card";
  el.dataset.status = "measuring";
  const img = document.createElement("img");
  img.className = "before"; img.alt = ""; img.src = URL.createObjectURL(file);
  const info = document.createElement("div");
  info.className = "info";
  const name = document.createElement("span");
  name.className = "name"; name.textContent = file.name;
  const size = document.createElement("small");
  size.className = "size"; size.textContent = "reading…";
  const bar = document.createElement("progress");
  bar.max = 100; bar.value = 0; bar.setAttribute("aria-label", "Progress of " + file.name);
  const state = document.createElement("small");
  state.className = "state"; state.textContent = "ready to upload";
  info.append(name, size, bar, state);
  el.append(img, info);
  return el;
}

// Poll like a patient person: back off from 0.5 s to 3 s, but look again when the worker expects to be done
// (its ETA), so a finished job shows at once without polls that would steal CPU from the worker's host.
function nextPoll(job, backoff) {
  const eta = job ? job.eta_seconds : null;
  if (eta === null || eta === undefined) return backoff;
  return Math.max(250, Math.min(eta * 1000, 3000));
}

function watch(url, onUpdate, onDone) {
  let backoff = 500;
  const tick = async () => {
    let job = null;
    try {
      const r = await fetch(url, { headers: { "Accept": "application/json" } });
      if (r.ok) {
        job = await r.json();
        onUpdate(job);
        if (!["queued", "running"].includes(job.status)) { if (onDone) onDone(job); return; }
      }
    } catch (e) { /* keep polling through a blip */ }
    backoff = Math.min(backoff * 1.2, 3000);
    setTimeout(tick, nextPoll(job, backoff));
  };
  tick();
}

function formatEta(s) {
  if (s === null || s === undefined) return "estimating…";
  if (s < 60) return "about " + Math.max(1, Math.ceil(s)) + " s left";
  return "about " + Math.round(s / 60) + " min left";
}

function queuedText(job) {  // the place in the queue and an ETA covering the wait, once a job has run
  if (!job.queue_position) return "waiting for a worker";
  const eta = job.eta_seconds === null ? "" : ", done in " + formatEta(job.eta_seconds).replace(" left", "");
  return "waiting for a worker (number " + job.queue_position + " in the queue" + eta + ")";
}

function setupJob() {
  const live = document.getElementById("live");
  if (!live || live.dataset.active !== "1") return;
  const bar = document.getElementById("progress"), percent = document.getElementById("percent");
  const eta = document.getElementById("eta"), status = document.getElementById("status");
  watch(live.dataset.statusUrl, job => {
    bar.value = job.progress;
    percent.textContent = Math.round(job.progress);
    status.textContent = job.status;
    status.className = "badge " + job.status;
    eta.textContent = job.status === "queued" ? queuedText(job) : formatEta(job.eta_seconds);
    showPartial(job.partial_url);
  }, () => setTimeout(() => window.location.reload(), 400));  // show 100% before the result
}

// The result while it is made: the worker stores a new partial preview every few seconds (a new URL each
// time). The next one is loaded and decoded off-screen, then put in place of the old, so nothing flickers.
let partialShown = null;
async function showPartial(url) {
  const old = document.getElementById("partial");
  if (!url || !old || url === partialShown || old.getAttribute("src") === url) return;
  partialShown = url;
  const next = new Image();
  next.src = url;
  try { await next.decode(); } catch (e) { return; }  // gone meanwhile (the job moved on): keep the old one
  if (partialShown !== url) return;  // a newer one was asked for while this one loaded
  next.id = old.id; next.alt = old.alt;
  old.replaceWith(next);
  document.getElementById("partial-figure").hidden = false;
}

// The zoomable comparison (OpenSeadragon): the input ("before", drawn with nearest so its own pixels show)
// and the result ("after") stacked at the same place; the slider clips the result at a screen position.
function setupCompare() {
  const el = document.getElementById("zoom");
  if (!el || !window.OpenSeadragon) return;
  const data = JSON.parse(document.getElementById("zoom-data").textContent);
  const slider = document.getElementById("slider"), split = document.getElementById("split");
  if (data.height) {  // the viewer hugs the picture's shape (within the CSS's min and max heights)
    el.style.height = "auto";
    el.style.aspectRatio = data.width + " / " + data.height;
  }
  const viewer = OpenSeadragon({
    element: el, drawer: "canvas", imageSmoothingEnabled: false, showNavigationControl: false,
    maxZoomPixelRatio: 8, visibilityRatio: 0.5, animationTime: 0.3, crossOriginPolicy: false,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false },
    gestureSettingsTouch: { clickToZoom: false, dblClickToZoom: false, pinchToZoom: true, flickEnabled: true },
  });
  viewer.open([{ tileSource: data.before, x: 0, y: 0, width: 1 }, { tileSource: data.after, x: 0, y: 0, width: 1 }]);
  const result = () => viewer.world.getItemAt(1);
  // One result pixel per device pixel: the viewport zoom that makes the result data.width device pixels wide.
  const actual = () => data.width / (window.devicePixelRatio * viewer.viewport.getContainerSize().x);
  const atActual = () => Math.abs(viewer.viewport.getZoom() / actual() - 1) < 0.02;
  // The split sits at the slider's share of the part of the picture on screen, so the slider's whole
  // travel sweeps over the picture at any zoom.
  const clip = () => {
    const item = result();
    if (!item) return;
    const width = viewer.viewport.getContainerSize().x, bounds = item.getBounds(true);
    const left = viewer.viewport.pixelFromPoint(bounds.getTopLeft(), true).x;
    const right = viewer.viewport.pixelFromPoint(bounds.getBottomRight(), true).x;
    const a = Math.max(0, left), b = Math.min(width, right);
    const x = a + (b - a) * slider.value / 100;
    const size = item.getContentSize();
    const from = Math.max(0, Math.min(size.x, item.viewportToImageCoordinates(viewer.viewport.pointFromPixel(new OpenSeadragon.Point(x, 0), true)).x));
    const now = item.getClip();  // set only on a change: a new clip redraws, and a redraw animates again
    if (!now || Math.abs(now.x - from) > 0.01) item.setClip(new OpenSeadragon.Rect(from, 0, size.x - from, size.y));
    split.style.left = (100 * x / width).toFixed(3) + "%";
  };
  const show = () => {  // the state a test or a screen reader can read
    el.dataset.zoom = atActual() ? "actual" : "other";
    const shown = result().viewportToImageZoom(viewer.viewport.getZoom(true)) * window.devicePixelRatio;
    el.dataset.pixelsPerScreenPixel = (1 / shown).toFixed(3);
    clip();
  };
  const toggle = point => {
    if (atActual()) viewer.viewport.goHome();
    else viewer.viewport.zoomTo(actual(), point);
  };
  viewer.addHandler("open", show);
  viewer.addHandler("animation", clip);
  viewer.addHandler("animation-finish", show);
  viewer.addHandler("resize", clip);
  // A mouse's double-click is the browser's dblclick; a finger's double tap is OpenSeadragon's.
  el.addEventListener("dblclick", ev => {
    const box = el.getBoundingClientRect();
    if (data.full) toggle(viewer.viewport.pointFromPixel(new OpenSeadragon.Point(ev.clientX - box.left, ev.clientY - box.top)));
  });
  viewer.addHandler("canvas-double-click", ev => {
    ev.preventDefaultAction = true;
    if (data.full && ev.originalEvent.pointerType !== "mouse") toggle(viewer.viewport.pointFromPixel(ev.position));
  });
  slider.addEventListener("input", clip);
  document.getElementById("zoom-fit").addEventListener("click", () => viewer.viewport.goHome());
  document.getElementById("zoom-actual").addEventListener("click", () => viewer.viewport.zoomTo(actual()));
}

function setupConfirm() {
  document.querySelectorAll("[data-confirm]").forEach(b => b.addEventListener("click", ev => {
    if (!window.confirm(b.dataset.confirm)) ev.preventDefault();
  }));
}

document.addEventListener("DOMContentLoaded", () => { setupUpload(); setupJob(); setupCompare(); setupConfirm(); });
