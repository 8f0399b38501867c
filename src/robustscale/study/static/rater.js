// Rater page: number keys pick a class, L/H send it with a confidence; each answer is POSTed at
// once and the reply carries the next image, so closing the tab loses nothing.
(function () {
  const root = document.getElementById("rater");
  const form = document.getElementById("answer");
  const image = document.getElementById("image");
  const status = document.getElementById("status");
  const classButtons = Array.from(document.querySelectorAll("button.cls"));
  const confButtons = Array.from(document.querySelectorAll("button.conf"));
  let choice = null;
  let busy = false;

  function select(k) {
    if (k < 0 || k >= classButtons.length) return;
    choice = k;
    classButtons.forEach((b, i) => b.classList.toggle("selected", i === k));
    confButtons.forEach((b) => (b.disabled = false));
  }

  function show(item) {
    if (item.next === null) { window.location.reload(); return; }
    const n = item.next;
    for (const key of ["image_id", "phase", "issued", "nonce"]) form.elements[key].value = n[key];
    image.src = n.url;
    document.getElementById("batch").textContent = `Batch ${n.batch} of ${n.batches}`;
    document.getElementById("phase").textContent = `${n.phase} images`;
    document.getElementById("position").textContent = `image ${n.position} of ${n.batch_size}`;
    document.getElementById("overall").textContent = `${item.done} / ${item.total} answered`;
    document.getElementById("bar").value = item.done;
    choice = null;
    classButtons.forEach((b) => b.classList.remove("selected"));
    confButtons.forEach((b) => (b.disabled = true));
  }

  async function send(confidence) {
    if (choice === null || busy) return;
    busy = true;
    const body = new URLSearchParams(new FormData(form));
    body.set("choice", choice);
    body.set("confidence", confidence);
    try {
      const r = await fetch(`/r/${root.dataset.token}/answer`, {
        method: "POST", body, headers: { "X-CSRF-Token": root.dataset.csrf }, credentials: "same-origin",
      });
      if (r.ok) { status.textContent = ""; show(await r.json()); }
      else if (r.status === 409) { window.location.reload(); }  // answered elsewhere: resync
      else { status.textContent = `Not saved (${r.status}): ${(await r.json()).detail}`; }
    } catch (e) {
      status.textContent = "Not saved: network error, press the key again.";
    } finally { busy = false; }
  }

  classButtons.forEach((b) => b.addEventListener("click", () => select(Number(b.dataset.choice))));
  confButtons.forEach((b) => b.addEventListener("click", () => send(b.dataset.confidence)));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[0-9]$/.test(e.key)) select(Number(e.key));
    else if (e.key === "l" || e.key === "L") send("low");
    else if (e.key === "h" || e.key === "H") send("high");
  });
})();
