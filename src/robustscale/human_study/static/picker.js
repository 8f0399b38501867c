// Class picker of the rater page and the quiz. Up to 10 classes: a grid of buttons, picked by a
// tap or a number key (the page handles the keys). More classes: a list with a filter box above
// it: typing narrows the list (names that start with the text first), arrows move the
// highlight, Enter picks it; a tap on a class picks it at once. `onPick(k)` gets the class index.
window.ClassPicker = function (onPick) {
  const buttons = Array.from(document.querySelectorAll("button.cls"));
  const filter = document.getElementById("filter");
  const list = document.getElementById("classes");
  let active = null;

  function highlight(b) {
    active = b;
    buttons.forEach((x) => x.classList.toggle("active", x === b));
    if (b) b.scrollIntoView({ block: "nearest" });
  }

  function visible() { return buttons.filter((b) => !b.hidden); }

  function narrow() {
    const q = filter.value.trim().toLowerCase();
    buttons.forEach((b) => { b.hidden = q !== "" && !b.dataset.name.includes(q); });
    const shown = visible();
    highlight(q === "" ? null : shown.find((b) => b.dataset.name.startsWith(q)) || shown[0] || null);
  }

  function move(step) {
    const shown = visible();
    if (!shown.length) return;
    const i = shown.indexOf(active);
    highlight(shown[Math.min(shown.length - 1, Math.max(0, i < 0 ? 0 : i + step))]);
  }

  buttons.forEach((b) => b.addEventListener("click", () => onPick(Number(b.dataset.choice))));
  if (filter) {
    filter.addEventListener("input", narrow);
    filter.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") { e.preventDefault(); move(e.key === "ArrowDown" ? 1 : -1); }
      else if (e.key === "Enter") {
        e.preventDefault();
        const pick = active || (visible().length === 1 ? visible()[0] : null);
        if (pick) { filter.blur(); onPick(Number(pick.dataset.choice)); }
      } else if (e.key === "Escape") { filter.value = ""; narrow(); }
      e.stopPropagation();  // typed letters are a class name, not the page's L/H/U keys
    });
  }

  return {
    many: filter !== null,
    count: buttons.length,
    mark(k) { buttons.forEach((b, i) => b.classList.toggle("selected", i === k)); },
    reset() {
      if (filter) { filter.value = ""; narrow(); }
      list.scrollTop = 0;
    },
    // the filter takes the keyboard on desktops; on touch screens it waits for a tap, so that no
    // on-screen keyboard covers the image
    focus() { if (filter && window.matchMedia("(pointer: fine)").matches) filter.focus({ preventScroll: true }); },
    startTyping() { if (filter) filter.focus({ preventScroll: true }); },
  };
};
