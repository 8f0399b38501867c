// Quiz: picking a class (number key, tap, or the filter of a long class list) answers the
// current image and moves on; Back (or the left arrow) returns to an earlier image, whose answer
// is shown and can be changed. Nothing is sent until Submit (or Enter once all are answered).
(function () {
  const root = document.getElementById("quiz");
  const form = document.getElementById("quiz-form");
  const image = document.getElementById("image");
  const back = document.getElementById("back");
  const submit = document.getElementById("submit");
  const n = Number(root.dataset.n);
  const answers = new Array(n).fill(null);
  const picker = window.ClassPicker(answer);
  let k = 0;

  function show(j) {
    k = Math.max(0, Math.min(n - 1, j));
    image.src = `/quiz/${root.dataset.study}/image/${k}`;
    document.getElementById("k").textContent = k + 1;
    picker.reset();
    picker.mark(answers[k]);
    back.disabled = k === 0;
    submit.disabled = answers.includes(null);
    window.scrollTo(0, 0);
    picker.focus();
  }

  function answer(c) {
    if (c < 0 || c >= picker.count) return;
    answers[k] = c;
    form.elements[`answer_${k}`].value = c;
    if (k < n - 1) show(k + 1);
    else { picker.mark(c); submit.disabled = answers.includes(null); submit.focus(); }
  }

  function send() { if (!answers.includes(null)) form.submit(); }

  back.addEventListener("click", () => show(k - 1));
  submit.addEventListener("click", send);
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "ArrowLeft" || e.key === "Backspace") { e.preventDefault(); show(k - 1); }
    else if (e.key === "ArrowRight" && answers[k] !== null) { e.preventDefault(); show(k + 1); }
    else if (e.key === "Enter" && document.activeElement !== submit) { e.preventDefault(); send(); }
    else if (/^[0-9]$/.test(e.key) && !picker.many) answer(Number(e.key));
    else if (picker.many && e.key.length === 1) picker.startTyping();
  });
  show(0);
})();
