// A little vanilla JS: drag and drop with one request per file, live job progress, the slider.
"use strict";

function csrf(form) { return form.querySelector("[name=csrfmiddlewaretoken]").value; }

function setupUpload() {
  const form = document.getElementById("upload");
  if (!form) return;
  const drop = document.getElementById("drop");
  const input = form.querySelector("input[type=file]");
  const queue = document.getElementById("queue");
  ["dragenter", "dragover"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", ev => { input.files = ev.dataTransfer.files; });

  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const files = Array.from(input.files);
    const created = [];
    for (const file of files) {
      const item = document.createElement("li");
      item.textContent = file.name + ": uploading…";
      queue.appendChild(item);
      const body = new FormData(form);
      body.delete("image");
      body.append("image", file);
      try {
        const r = await fetch(form.action, { method: "POST", body, headers: { "Accept": "application/json", "X-CSRFToken": csrf(form) } });
        const data = await r.json().catch(() => ({ detail: "The server answered " + r.status + "." }));
        if (r.ok) {
          created.push(data.id);
          item.innerHTML = "";
          const a = document.createElement("a");
          a.href = data.url; a.textContent = file.name;
          item.append(a, " ");
          const status = document.createElement("span");
          status.className = "status"; status.textContent = "queued";
          item.append(status);
          watch(data.url + "/status", job => {
            status.textContent = job.status + (job.status === "running" ? " " + Math.round(job.progress) + "%" : "");
            item.dataset.status = job.status;
          });
        } else {
          item.className = "error";
          item.textContent = file.name + ": " + (data.detail || "refused");
        }
      } catch (e) {
        item.className = "error";
        item.textContent = file.name + ": the upload failed (" + e.message + ").";
      }
    }
    input.value = "";
    if (created.length > 1) {  // one ZIP of every finished result of this upload
      const all = document.createElement("a");
      all.className = "download-all";
      all.href = "/jobs/download?" + created.map(id => "job=" + id).join("&");
      all.textContent = "Download all (" + created.length + " files, when finished)";
      queue.appendChild(all);
    }
  });
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
  }, () => setTimeout(() => window.location.reload(), 400));  // show 100% before the result
}

// The zoomable comparison (OpenSeadragon): the input ("before", drawn with nearest so its own pixels show)
// and the result ("after") stacked at the same place; the slider clips the result at a screen position.
function setupCompare() {
  const el = document.getElementById("zoom");
  if (!el || !window.OpenSeadragon) return;
  const data = JSON.parse(document.getElementById("zoom-data").textContent);
  const slider = document.getElementById("slider"), split = document.getElementById("split");
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
  const clip = () => {
    const item = result();
    if (!item) return;
    const x = slider.value / 100 * viewer.viewport.getContainerSize().x;
    const left = item.viewportToImageCoordinates(viewer.viewport.pointFromPixel(new OpenSeadragon.Point(x, 0), true)).x;
    const size = item.getContentSize(), from = Math.max(0, Math.min(size.x, left));
    const now = item.getClip();  // set only on a change: a new clip redraws, and a redraw animates again
    if (!now || Math.abs(now.x - from) > 0.01) item.setClip(new OpenSeadragon.Rect(from, 0, size.x - from, size.y));
    split.style.left = slider.value + "%";
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
