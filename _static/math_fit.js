/* Inline formulas, at every width and on a phone.

   1. Punctuation stays with its formula. The theme lays an inline formula out in a flex box (its span.math), and
      a browser may break a line between such a box and the full stop or comma that follows it, which then starts
      the next line. Each formula followed by punctuation is put, with that punctuation, in a span that does not
      break (class "math-tail").
   2. A formula wider than its column scrolls (on a narrow screen, the width at which _static/phone.css takes over).
      MathJax 3 does not break a formula across lines, so an inline formula wider than the column (a few of the
      book's are 400 to 550 px wide, against the 330 px column of a 390 px phone, less inside an exercise's box)
      ran past the column's edge and was cut off there. Such a formula gets a box of its own that scrolls sideways,
      on a line of its own, as display equations have; its punctuation stays beside the box, which is narrower by
      its width. A formula that fits is left as it is.
   3. A display equation a little wider than a phone's column is set a little smaller so that it fits: MathJax sets
      formulas about a quarter larger than the text, and sizes everything in a formula in em, so its font size
      scales all of it. It goes down to SMALLEST, 90 % of the size of the text around it; an equation that would
      need more than that keeps its size and scrolls. The book writes its long equations on several lines, so
      that at 390 px every one fits this way (the phone test checks it).
   4. A formula box that scrolls shows that it does: its right edge fades while there is more to its right (class
      "math-more"), so that a formula cut at the box's edge does not look finished. Display equations too. */
(function () {
  "use strict";
  const NARROW = window.matchMedia("(max-width: 600px)");
  const INLINE = 'article mjx-container:not([display="true"])';
  const PUNCTUATION = /^[.,;:!?)\]]+/;
  const SCROLLERS = '.math-scroll, .math-scroll-block, mjx-container[display="true"]';  // boxes that may scroll
  const DISPLAY = 'article mjx-container[display="true"]';
  const SMALLEST = 0.9;  // to fit a phone's column, a display equation is set no smaller than 90 % of the text

  function keepPunctuation() {
    document.querySelectorAll(INLINE).forEach((formula) => {
      const holder = formula.parentElement;
      if (!holder || holder.parentElement.classList.contains("math-tail")) return;
      const next = holder.nextSibling;
      const mark = next && next.nodeType === Node.TEXT_NODE && PUNCTUATION.exec(next.nodeValue);
      if (!mark) return;
      next.splitText(mark[0].length);  // next keeps the punctuation only
      const tail = document.createElement("span");
      tail.className = "math-tail";
      holder.before(tail);
      tail.append(holder, next);
    });
  }

  // The right edge of the text column where an element sits: the content box of its nearest block ancestor (a
  // paragraph, a list item, an exercise's box), and never past the article's.
  function columnRight(element, article) {
    let block = element.parentElement;
    while (block && block !== article && getComputedStyle(block).display.startsWith("inline")) {
      block = block.parentElement;
    }
    const edge = (el) => {
      const style = getComputedStyle(el);
      return el.getBoundingClientRect().right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
    };
    return Math.min(edge(block || article), edge(article));
  }

  function showMore(box) {
    box.classList.toggle("math-more", box.scrollLeft + box.clientWidth < box.scrollWidth - 1);
  }

  function fit() {
    const article = document.querySelector("article");
    if (!article) return;
    // Undo the last pass's marks (only on the elements it marked), then mark again if the screen is narrow.
    article.querySelectorAll(".math-more").forEach((box) => box.classList.remove("math-more"));
    article.querySelectorAll(".math-scroll-with").forEach((tail) => {
      tail.classList.remove("math-scroll-with");
      tail.style.removeProperty("max-width");
    });
    article.querySelectorAll(".math-scroll").forEach((formula) => formula.classList.remove("math-scroll"));
    article.querySelectorAll(".math-scroll-block").forEach((holder) => {
      holder.classList.remove("math-scroll-block");
      holder.style.removeProperty("max-width");
    });
    article.querySelectorAll(DISPLAY).forEach((equation) => {
      if (equation.dataset.fitSize === undefined) return;
      equation.style.fontSize = equation.dataset.fitSize;  // MathJax's own size
      delete equation.dataset.fitSize;
    });
    if (NARROW.matches) {
      article.querySelectorAll(DISPLAY).forEach((equation) => {
        const wide = equation.scrollWidth, room = equation.clientWidth;
        if (room === 0 || wide <= room + 1) return;  // it fits, or is hidden (in a folded solution)
        const size = parseFloat(getComputedStyle(equation).fontSize);
        const fitting = Math.floor((size * (room - 2)) / wide * 10) / 10;
        if (fitting < SMALLEST * parseFloat(getComputedStyle(equation.parentElement).fontSize)) return;
        equation.dataset.fitSize = equation.style.fontSize;
        equation.style.fontSize = `${fitting}px`;
      });
      document.querySelectorAll(INLINE).forEach((formula) => {
        const holder = formula.parentElement;
        const tail = holder.parentElement.classList.contains("math-tail") ? holder.parentElement : null;
        const box = tail || holder;
        const right = columnRight(box, article);
        if (Math.max(formula.getBoundingClientRect().right, box.getBoundingClientRect().right) <= right + 1) return;
        if (getComputedStyle(formula).display === "block") {  // in the theme's flex span.math: the span scrolls
          holder.classList.add("math-scroll-block");
          if (tail) tail.classList.add("math-scroll-with");  // a flex row: the box, then its punctuation
          box.style.maxWidth = `${Math.max(0, right - box.getBoundingClientRect().left)}px`;
        } else {
          formula.classList.add("math-scroll");
        }
      });
    }
    article.querySelectorAll(SCROLLERS).forEach(showMore);
  }

  // After the page's scripts have run, MathJax's startup promise settles once the formulas are typeset; their
  // widths are final once its web fonts have loaded too, so the check runs again then, and on a resize.
  window.addEventListener("load", () => {
    const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
    typeset.then(keepPunctuation).then(fit).then(() => (document.fonts ? document.fonts.ready : null)).then(fit);
  });
  NARROW.addEventListener("change", fit);
  window.addEventListener("resize", fit);
  // A formula in a folded solution or cell has no width until it is opened.
  document.addEventListener("toggle", fit, true);
  document.addEventListener("click", () => window.setTimeout(fit, 100));
  // Scrolled to its end, a box no longer fades (scroll events do not bubble: listen while capturing).
  document.addEventListener("scroll", (event) => {
    const box = event.target;
    if (box instanceof Element && box.matches(SCROLLERS)) showMore(box);
  }, { capture: true, passive: true });
})();
