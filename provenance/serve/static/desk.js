// The desk's only script: drop a file on the form, and follow a running job until it ends.
"use strict";

function followJob(box) {
  const id = box.dataset.id;
  const stage = document.getElementById("stage");
  const bar = document.getElementById("bar");
  const poll = async () => {
    let job;
    try {
      const response = await fetch("/api/jobs/" + encodeURIComponent(id), { credentials: "same-origin" });
      if (!response.ok) { setTimeout(poll, 3000); return; }
      job = await response.json();
    } catch (e) {
      setTimeout(poll, 3000);
      return;
    }
    if (job.status === "done" || job.status === "failed") {
      window.location.reload();
      return;
    }
    const p = job.progress || {};
    stage.textContent = job.status + (p.stage ? ": " + p.stage : "");
    if (typeof p.fraction === "number") { bar.value = p.fraction; } else { bar.removeAttribute("value"); }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 500);
}

function dropZone(zone) {
  const input = document.getElementById("file");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("job");
  if (box && (box.dataset.status === "queued" || box.dataset.status === "running")) { followJob(box); }
  const zone = document.getElementById("drop");
  if (zone) { dropZone(zone); }
});
