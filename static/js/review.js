// The reviewer's pages, enhanced (each works without this script):
// - j / k move through the rows of a list (queue, approvals); Enter opens the focused row's case;
// - in a decision form: the action list narrows to what the chosen clauses permit, the duration shows
//   only for timed actions, the texts beside the form narrow to the chosen clauses, the four-eyes hint
//   says whether this decision will wait for approval, and Ctrl+Enter submits and takes the next case.
(function () {
  "use strict";
  const TIMED = ["rate_limit", "suspend"];

  function typing(el) {
    return el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
  }

  const rows = Array.from(document.querySelectorAll("a.row-link"));
  if (rows.length) {
    document.addEventListener("keydown", function (event) {
      if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key !== "j" && event.key !== "k") return;
      const at = rows.indexOf(document.activeElement);
      let next = at === -1 ? (event.key === "j" ? 0 : rows.length - 1) : at + (event.key === "j" ? 1 : -1);
      next = Math.max(0, Math.min(rows.length - 1, next));
      rows[next].focus();
      rows[next].closest("tr").scrollIntoView({ block: "nearest" });
      event.preventDefault();
    });
  }

  document.querySelectorAll("form[data-decision-form]").forEach(function (form) {
    const clauses = Array.from(form.querySelectorAll(".clause"));
    const action = form.querySelector("select[name=action]");
    const duration = form.querySelector("[data-duration]");
    const durationInput = duration && duration.querySelector("input");
    const hint = form.querySelector("[data-four-eyes]");
    const texts = Array.from(form.querySelectorAll("[data-clause-text]"));
    const submitNext = form.querySelector("[data-submit-next]");

    function update() {
      const chosen = clauses.filter(function (c) { return c.querySelector("input").checked; });
      const allowed = new Set();
      chosen.forEach(function (c) { c.dataset.actions.split(" ").forEach(function (a) { allowed.add(a); }); });
      if (action) {
        Array.from(action.options).forEach(function (option) {
          option.disabled = option.value !== "" && chosen.length > 0 && !allowed.has(option.value);
        });
        if (action.selectedOptions.length && action.selectedOptions[0].disabled) action.value = "";
      }
      const value = action ? action.value : "";
      if (duration) {
        duration.hidden = !TIMED.includes(value);
        durationInput.disabled = duration.hidden;  // a hidden duration is not sent
      }
      if (hint) {
        const severe = value === "terminate" || chosen.some(function (c) { return c.dataset.second === "1"; });
        hint.classList.toggle("four-eyes", severe);
        hint.textContent = severe
          ? "This decision will wait for a senior reviewer's approval: nothing is enforced or told to the holder before then."
          : value === "no_violation" ? "No violation: the case is decided and nothing is enforced."
          : value ? "This decision is enforced as soon as you submit it, and the holder is sent the statement of reasons."
          : "Choose the clauses, then an action they permit.";
      }
      const ids = new Set(chosen.map(function (c) { return c.querySelector("input").value; }));
      texts.forEach(function (t) { t.hidden = ids.size > 0 && !ids.has(t.dataset.clauseText); });
    }

    form.addEventListener("change", update);
    update();
    form.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit(submitNext || undefined);
      }
    });
  });
  // A campaign decision: "Select all" ticks every open account here instead of reloading the page, and the
  // count of chosen accounts stays in view. The confirmation page still says the exact count and action.
  document.querySelectorAll("form[data-campaign-form]").forEach(function (form) {
    const boxes = Array.from(form.querySelectorAll("input[name=accounts]"));
    const count = form.querySelector("[data-chosen-count]");
    const selectAll = form.querySelector("[data-select-all]");
    function recount() {
      const n = boxes.filter(function (b) { return b.checked; }).length;
      if (count) count.textContent = n + (n === 1 ? " account" : " accounts") + " chosen.";
    }
    if (selectAll) {
      selectAll.addEventListener("click", function (event) {
        event.preventDefault();
        boxes.forEach(function (b) {
          if (!b.closest("tr").classList.contains("researcher-row")) b.checked = true;
        });
        recount();
      });
    }
    form.addEventListener("change", recount);
    recount();
  });
})();
