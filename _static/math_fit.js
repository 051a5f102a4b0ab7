/* Formulas, at every width and on a phone.

   1. Punctuation stays with its formula. The theme lays an inline formula out in a flex box (its span.math), and
      a browser may break a line between such a box and the full stop or comma that follows it, which then starts
      the next line. Each formula followed by punctuation is put, with that punctuation, in a span that does not
      break (class "math-tail").
   2. On a narrow screen (the width at which _static/phone.css takes over), a formula wider than its column is set
      smaller so that it fits: MathJax sets formulas about a quarter larger than the text, and sizes everything in
      a formula in em, so its font size scales all of it. It goes down to SMALLEST, 90 % of the size of the text
      around it. An inline formula so set takes a line of its own (with its punctuation); a display equation keeps
      its box. The book writes its long formulas on several lines (display) or as two formulas that may part at a
      relation sign (inline), so that at 390 px every one fits this way (the phone test checks it).
   3. A formula that would need to be smaller still keeps its size and scrolls. MathJax 3 does not break a formula
      across lines, so such an inline formula would run past the column's edge and be cut off there: it gets a
      box of its own that scrolls sideways, on a line of its own, as display equations have; its punctuation
      stays beside the box, which is narrower by its width. A formula that fits is left as it is.
   4. A formula written as two (`$a = b$ $= c$`: parts that only a space separates) keeps one size: where one part
      was set smaller, the others are set to the same size.
   5. A formula box that scrolls shows that it does: its right edge fades while there is more to its right (class
      "math-more"), so that a formula cut at the box's edge does not look finished. Display equations too. */
(function () {
  "use strict";
  const NARROW = window.matchMedia("(max-width: 600px)");
  const INLINE = 'article mjx-container:not([display="true"])';
  const PUNCTUATION = /^[.,;:!?)\]]+/;
  const SCROLLERS = '.math-scroll, .math-scroll-block, mjx-container[display="true"]';  // boxes that may scroll
  const DISPLAY = 'article mjx-container[display="true"]';
  const SMALLEST = 0.9;  // to fit a phone's column, a formula is set no smaller than 90 % of the text

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

  // The left and right edges of the text column where an element sits: the content box of its nearest block
  // ancestor (a paragraph, a list item, an exercise's box), and never outside the article's.
  function columnEdges(element, article) {
    let block = element.parentElement;
    while (block && block !== article && getComputedStyle(block).display.startsWith("inline")) {
      block = block.parentElement;
    }
    const edges = (el) => {
      const style = getComputedStyle(el), box = el.getBoundingClientRect();
      return [box.left + parseFloat(style.paddingLeft) + parseFloat(style.borderLeftWidth),
              box.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth)];
    };
    const [blockLeft, blockRight] = edges(block || article), [articleLeft, articleRight] = edges(article);
    return [Math.max(blockLeft, articleLeft), Math.min(blockRight, articleRight)];
  }

  function showMore(box) {
    box.classList.toggle("math-more", box.scrollLeft + box.clientWidth < box.scrollWidth - 1);
  }

  // Sets a formula `wide` px wide smaller so that it is `room` px wide, if that is no less than SMALLEST of the
  // size of the text around it; MathJax's own size is kept in data-fit-size. Returns whether it did.
  function setSmaller(formula, wide, room) {
    const size = parseFloat(getComputedStyle(formula).fontSize);
    const fitting = Math.floor((size * (room - 2)) / wide * 10) / 10;
    if (fitting >= size || fitting < SMALLEST * parseFloat(getComputedStyle(formula.parentElement).fontSize)) {
      return false;
    }
    if (formula.dataset.fitSize === undefined) formula.dataset.fitSize = formula.style.fontSize;
    formula.style.fontSize = `${fitting}px`;
    return true;
  }

  // A display equation wider than its box: set smaller. Not every part scales exactly with the font (rounding),
  // so it measures again, up to 3 times.
  function fitDisplay(equation) {
    for (let pass = 0; pass < 3; pass += 1) {
      const wide = equation.scrollWidth, room = equation.clientWidth;
      if (room === 0 || wide <= room + 1) return;  // it fits, or is hidden (in a folded solution)
      if (!setSmaller(equation, wide, room)) return;
    }
  }

  // The parts of one formula written as two or more: runs of inline formulas that only white space separates.
  function formulaRuns(article) {
    const runs = [];
    let last = null;
    article.querySelectorAll(INLINE).forEach((formula) => {
      const holder = formula.parentElement;
      const tail = holder.parentElement.classList.contains("math-tail");  // punctuation follows: a run ends
      const box = tail ? holder.parentElement : holder;
      const between = box.previousSibling;
      const joined = last && between && between.nodeType === Node.TEXT_NODE && !between.nodeValue.trim() &&
        between.previousSibling === last;
      if (joined) runs[runs.length - 1].push(formula);
      else runs.push([formula]);
      last = tail ? null : box;
    });
    return runs.filter((run) => run.length > 1);
  }

  // Point 4: each part of a formula set smaller makes the others of its formula as small.
  function matchParts(article) {
    formulaRuns(article).forEach((run) => {
      const set = run.filter((formula) => formula.dataset.fitSize !== undefined);
      if (set.length === 0) return;
      const size = Math.min(...set.map((formula) => parseFloat(formula.style.fontSize)));
      run.forEach((formula) => {
        const scrolls = formula.classList.contains("math-scroll") ||
          formula.parentElement.classList.contains("math-scroll-block");
        if (scrolls) return;  // a part that scrolls keeps its size
        if (formula.dataset.fitSize === undefined) formula.dataset.fitSize = formula.style.fontSize;
        formula.style.fontSize = `${size}px`;
      });
    });
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
    article.querySelectorAll("mjx-container[data-fit-size]").forEach((formula) => {
      formula.style.fontSize = formula.dataset.fitSize;  // MathJax's own size
      delete formula.dataset.fitSize;
    });
    if (NARROW.matches) {
      article.querySelectorAll(DISPLAY).forEach(fitDisplay);
      document.querySelectorAll(INLINE).forEach((formula) => {
        const holder = formula.parentElement;
        const tail = holder.parentElement.classList.contains("math-tail") ? holder.parentElement : null;
        const box = tail || holder;
        const [left, right] = columnEdges(box, article);
        const past = () =>
          Math.max(formula.getBoundingClientRect().right, box.getBoundingClientRect().right) > right + 1;
        if (!past()) return;
        // Wider than the column: set smaller, it fits on a line of its own (with its punctuation, if any) ...
        const punctuation = box.getBoundingClientRect().width - holder.getBoundingClientRect().width;
        if (setSmaller(formula, formula.getBoundingClientRect().width, right - left - punctuation) && !past()) {
          return;
        }
        // ... or it scrolls in a box of its own.
        if (getComputedStyle(formula).display === "block") {  // in the theme's flex span.math: the span scrolls
          holder.classList.add("math-scroll-block");
          if (tail) tail.classList.add("math-scroll-with");  // a flex row: the box, then its punctuation
          box.style.maxWidth = `${Math.max(0, right - box.getBoundingClientRect().left)}px`;
        } else {
          formula.classList.add("math-scroll");
        }
      });
      matchParts(article);
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
