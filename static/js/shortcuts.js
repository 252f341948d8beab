// Keyboard shortcuts for staff pages. Any element with data-shortcut="g h" (a two-key sequence) or
// data-shortcut="n" (one key) is clicked when its keys are typed outside a form field ("?" opens help);
// a form field with a shortcut (a text box, a checkbox) is focused instead, so typing can start there.
(function () {
  "use strict";
  const targets = new Map();
  document.querySelectorAll("[data-shortcut]").forEach(function (el) {
    targets.set(el.dataset.shortcut, el);
  });
  let pending = "";
  let timer = null;
  function activate(el) {
    if (el.matches("textarea, select, input:not([type=submit]):not([type=button]):not([type=reset])")) {
      el.focus();
      el.scrollIntoView({ block: "center" });
    } else {
      el.click();
    }
  }
  function typing(event) {
    const el = event.target;
    return el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
  }
  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "?") {
      const help = document.getElementById("shortcut-help");
      if (help && !help.open) help.showModal();
      event.preventDefault();
      return;
    }
    const sequence = pending ? pending + " " + event.key : event.key;
    clearTimeout(timer);
    if (targets.has(sequence)) {
      pending = "";
      event.preventDefault();
      activate(targets.get(sequence));
      return;
    }
    const isPrefix = Array.from(targets.keys()).some(function (keys) { return keys.startsWith(sequence + " "); });
    pending = isPrefix ? sequence : "";
    if (pending) timer = setTimeout(function () { pending = ""; }, 1200);
  });
})();
