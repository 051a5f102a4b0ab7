/* Inline formulas on a phone. MathJax 3 does not break a formula across lines, so an inline formula wider than
   the column (a few of the book's are 400 to 550 px wide, against the 330 px column of a 390 px phone) ran past
   the screen's edge and was cut off there. On a narrow screen (the width at which _static/phone.css takes over)
   such a formula gets a box of its own that scrolls sideways, as display equations already have; a formula that
   fits is left as it is. */
(function () {
  "use strict";
  const NARROW = window.matchMedia("(max-width: 600px)");
  const INLINE = 'article mjx-container:not([display="true"])';

  function fit() {
    const article = document.querySelector("article");
    if (!article) return;
    // Undo the last pass's marks (only on the elements it marked), then mark again if the screen is narrow.
    article.querySelectorAll(".math-scroll-with").forEach((box) => {
      const parent = box.parentNode;
      box.replaceWith(...box.childNodes);
      parent.normalize();  // the punctuation joins the text it was taken from
    });
    article.querySelectorAll(".math-scroll").forEach((formula) => formula.classList.remove("math-scroll"));
    article.querySelectorAll(".math-scroll-block").forEach((holder) => {
      holder.classList.remove("math-scroll-block");
      holder.style.removeProperty("max-width");
    });
    if (!NARROW.matches) return;
    const right = article.getBoundingClientRect().right - parseFloat(getComputedStyle(article).paddingRight);
    document.querySelectorAll(INLINE).forEach((formula) => {
      const holder = formula.parentElement;
      if (formula.getBoundingClientRect().right <= right + 1) return;
      if (getComputedStyle(formula).display === "block") {
        // The theme lays an inline formula out in a flex box (its span.math), which makes the formula itself a
        // block: the span scrolls, on a line of its own, as wide as the column leaves it from where it starts.
        // Punctuation right after the formula (a full stop, a comma) stays with it, to its right, in a box
        // around both, instead of starting the next line on its own.
        holder.classList.add("math-scroll-block");
        let box = holder;
        const next = holder.nextSibling;
        const mark = next && next.nodeType === Node.TEXT_NODE && /^[.,;:!?)\]]+/.exec(next.nodeValue);
        if (mark) {
          next.splitText(mark[0].length);
          box = document.createElement("span");
          box.className = "math-scroll-with";
          holder.before(box);
          box.append(holder, next);
        }
        box.style.maxWidth = `${Math.max(0, right - box.getBoundingClientRect().left)}px`;
      } else {
        formula.classList.add("math-scroll");
      }
    });
  }

  // After the page's scripts have run, MathJax's startup promise settles once the formulas are typeset; their
  // widths are final once its web fonts have loaded too, so the check runs again then, and on a resize.
  window.addEventListener("load", () => {
    const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
    typeset.then(fit).then(() => (document.fonts ? document.fonts.ready : null)).then(fit);
  });
  NARROW.addEventListener("change", fit);
  window.addEventListener("resize", fit);
  // A formula in a folded solution or cell has no width until it is opened.
  document.addEventListener("toggle", fit, true);
  document.addEventListener("click", () => window.setTimeout(fit, 100));
})();
