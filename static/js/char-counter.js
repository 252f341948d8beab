// A live character count under each bounded text box (reviewapp.limits.BoundedTextarea). Without this script the
// limit is still said in words under the box and the server refuses a longer text, keeping what was typed; with
// it, the line under the box counts down as one types and says how far over the limit the text is. The words
// come from the server (data-left / data-over, translated); screen readers hear the count when typing pauses.
(function () {
  "use strict";
  const lang = document.documentElement.lang || undefined;

  function enhance(box) {
    const limit = Number(box.dataset.maxChars);
    const line = document.getElementById(box.id + "_limit");
    if (!limit || !line || line.dataset.counting) return;
    line.dataset.counting = "1";
    const spoken = document.createElement("span");
    spoken.className = "visually-hidden";
    spoken.setAttribute("aria-live", "polite");
    line.after(spoken);
    let pause = null;

    function update() {
      const length = box.value.length;
      const over = length > limit;
      const count = Math.abs(limit - length).toLocaleString(lang);
      const words = (over ? line.dataset.over : line.dataset.left).replace("%(count)s", count);
      line.textContent = words;
      line.classList.toggle("over", over);
      clearTimeout(pause);
      pause = setTimeout(function () { spoken.textContent = words; }, 1000);
    }

    box.addEventListener("input", update);
    update();
    spoken.textContent = "";
  }

  document.querySelectorAll("textarea[data-max-chars]").forEach(enhance);
})();
