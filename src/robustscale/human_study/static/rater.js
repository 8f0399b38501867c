// Rater page: a class is picked (number key, tap, or typed in the filter of a long class list),
// then L/H (or the fixed bar's buttons) send it with a confidence; U undoes the last answer
// of the phase. Each new image starts at the top of the page. Each answer is POSTed at once and the reply carries the next image, so closing
// the tab loses nothing. Keys pressed while a request is in flight wait in a queue and run, in
// order, once it is done; a break screen marks each change of phase or batch.
(function () {
  const root = document.getElementById("rater");
  const form = document.getElementById("answer");
  const image = document.getElementById("image");
  const status = document.getElementById("status");
  const undoButton = document.getElementById("undo");
  const interstitial = document.getElementById("interstitial");
  const picker = window.ClassPicker((k) => press(`c:${k}`));
  const confButtons = Array.from(document.querySelectorAll("button.conf"));
  const queue = [];
  let choice = null;
  let segment = { batch: Number(root.dataset.batch), phase: root.dataset.phase };

  function select(k) {
    if (k < 0 || k >= picker.count) return;
    choice = k;
    picker.mark(k);
    confButtons.forEach((b) => (b.disabled = false));
  }

  function announce(n) {
    const title = document.getElementById("interstitial-title");
    const text = document.getElementById("interstitial-text");
    if (n.batch !== segment.batch) {
      title.textContent = `Batch ${segment.batch} done`;
      text.textContent = `Next: batch ${n.batch} of ${n.batches}, starting with ${n.batch_size} adversarial images.`;
    } else {
      title.textContent = "Adversarial images done";
      text.textContent = `Next: the clean versions of the same ${n.batch_size} images.`;
    }
    interstitial.hidden = false;
    document.getElementById("continue").focus();
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
    undoButton.disabled = !n.can_undo;
    choice = null;
    picker.mark(null);
    picker.reset();
    confButtons.forEach((b) => (b.disabled = true));
    window.scrollTo(0, 0);  // the next image from its top, wherever the last answer left the page
    picker.focus();
    if (n.batch !== segment.batch || n.phase !== segment.phase) announce(n);
    segment = { batch: n.batch, phase: n.phase };
  }

  async function post(path, body) {
    try {
      const r = await fetch(`/r/${root.dataset.token}/${path}`, {
        method: "POST", body, headers: { "X-CSRF-Token": root.dataset.csrf }, credentials: "same-origin",
      });
      if (r.ok) { status.textContent = ""; show(await r.json()); }
      else if (r.status === 409 && path === "answer") { window.location.reload(); }  // answered elsewhere: resync
      else { status.textContent = `Not done (${r.status}): ${(await r.json()).detail}`; queue.length = 0; }
    } catch (e) {
      status.textContent = "Not saved: network error, press the key again.";
      queue.length = 0;  // the keys after it were meant for images that did not come
    }
  }

  function send(confidence) {
    if (choice === null) return Promise.resolve();
    const body = new URLSearchParams(new FormData(form));
    body.set("choice", choice);
    body.set("confidence", confidence);
    return post("answer", body);
  }

  function undo() {
    if (undoButton.disabled) return Promise.resolve();
    return post("undo", new URLSearchParams());
  }

  function act(key) {
    if (key.startsWith("c:")) select(Number(key.slice(2)));
    else if (/^[0-9]$/.test(key)) { if (!picker.many) select(Number(key)); }
    else if (key === "l" || key === "L") return send("low");
    else if (key === "h" || key === "H") return send("high");
    else if (key === "u" || key === "U") return undo();
    return Promise.resolve();
  }

  // One action at a time, in the order given: a key pressed during a save waits, and keys meant
  // for the next phase wait behind its break screen.
  let pumping = false;
  async function pump() {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length && interstitial.hidden) await act(queue.shift());
    } finally { pumping = false; }
  }

  function press(key) { queue.push(key); pump(); }

  function resume() { interstitial.hidden = true; picker.focus(); pump(); }

  confButtons.forEach((b) => b.addEventListener("click", () => press(b.dataset.confidence === "low" ? "l" : "h")));
  undoButton.addEventListener("click", () => press("u"));
  document.getElementById("continue").addEventListener("click", resume);
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (!interstitial.hidden && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); resume(); }
    else if (/^[0-9lLhHuU]$/.test(e.key)) { e.preventDefault(); press(e.key); }
    else if (picker.many && interstitial.hidden && e.key.length === 1) picker.startTyping();  // the key lands in the filter
  });
  picker.focus();
})();
