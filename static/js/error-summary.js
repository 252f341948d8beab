// The error summary of a refused form (templates/core/_error_summary.html): focus it on load, so a screen
// reader reads it and the page opens where it is, and make each link focus its field, not just scroll.
(function () {
  "use strict";
  const summary = document.querySelector("[data-error-summary]");
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", function (event) {
    const link = event.target.closest("a[href^='#']");
    if (!link) return;
    const target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    const field = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
    (field || target).focus();
    (field || target).scrollIntoView({ block: "center" });
  });
})();
