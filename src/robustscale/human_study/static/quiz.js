// Quiz: a number key (or a click) answers the current image; after the last one the form posts.
(function () {
  const root = document.getElementById("quiz");
  const form = document.getElementById("quiz-form");
  const image = document.getElementById("image");
  const n = Number(root.dataset.n);
  const nClasses = document.querySelectorAll("button.cls").length;
  let k = 0;

  function answer(c) {
    if (k >= n || c < 0 || c >= nClasses) return;
    form.elements[`answer_${k}`].value = c;
    k += 1;
    if (k === n) { form.submit(); return; }
    image.src = `/quiz/${root.dataset.study}/image/${k}`;
    document.getElementById("k").textContent = k + 1;
  }

  document.querySelectorAll("button.cls").forEach((b) =>
    b.addEventListener("click", () => answer(Number(b.dataset.choice))));
  document.addEventListener("keydown", (e) => {
    if (/^[0-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey) answer(Number(e.key));
  });
})();
