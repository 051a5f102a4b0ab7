/* Code that fits a phone. A code cell's lines are up to 68 characters, about 45 fit across a phone, and a
   code block that scrolls sideways hides the end of every long line. So each line of a code block becomes
   its own element, and on a narrow screen (_static/phone.css) a long line wraps, its continuation indented
   four characters past the line's first character, so that it cannot be mistaken for the next statement
   (the line's leading spaces get an element of their own, which phone.css replaces by a left padding).
   A printed output wraps at every width, except the rows of a table. An output with two or more lines that
   have runs of spaces inside them (outside brackets) is laid out in columns, and a row that wraps is
   unreadable: each such row (and a line between two rows) is kept whole, and the table scrolls in its own box if
   the screen is narrower; any other line, such as a sentence printed with the table, wraps, its continuation
   indented.
   Only the markup changes: the characters, newlines included, stay exactly as they were, so the copy
   button copies the code as written. */
(function () {
  "use strict";

  function splitIntoLines(pre) {
    // The text pieces in order, each with the chain of elements between it and <pre> (Pygments' spans).
    const pieces = [];
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const chain = [];
      for (let el = node.parentNode; el !== pre; el = el.parentNode) chain.unshift(el);
      pieces.push({ text: node.nodeValue, chain: chain });
    }
    const lines = [];
    let line = null, indent = null;  // indent: the line's leading spaces, while nothing else has come
    function startLine() {
      line = document.createElement("span");
      line.className = "code-line";
      indent = document.createElement("span");
      indent.className = "code-indent";
      line.appendChild(indent);
      lines.push(line);
    }
    function append(text, chain) {
      if (!text) return;
      if (line === null) startLine();
      if (indent !== null) {  // leading spaces go to the line's indent, uncoloured
        const spaces = /^ */.exec(text)[0];
        indent.appendChild(document.createTextNode(spaces));
        text = text.slice(spaces.length);
        if (!text) return;
        indent = null;
      }
      let holder = document.createTextNode(text);
      for (let i = chain.length - 1; i >= 0; i--) {
        const copy = chain[i].cloneNode(false);
        copy.appendChild(holder);
        holder = copy;
      }
      line.appendChild(holder);
    }
    pieces.forEach((piece) => {
      const parts = piece.text.split("\n");
      parts.forEach((part, i) => {
        append(i < parts.length - 1 ? part + "\n" : part, piece.chain);
        if (i < parts.length - 1) line = null;  // the newline ends this line
      });
    });
    pre.replaceChildren(...lines);
    lines.forEach((el) => {
      const spaces = el.firstChild.textContent.length;
      if (spaces) el.style.setProperty("--indent", spaces + "ch");
      else el.firstChild.remove();
    });
    pre.classList.add("code-lines");
  }

  // A row of a table: a run of spaces between two columns. Inside brackets, spaces only align the numbers of a
  // printed array (NumPy's "[0.2  0.91]"), which is no column.
  const isRow = (line) => /\S {2,}\S/.test(line.replace(/\[[^\]]*\]/g, "[]"));

  function markOutput(pre) {
    pre.classList.add("output-text");  // wraps (_static/phone.css)
    const lines = pre.textContent.split("\n");
    const row = lines.map(isRow);
    // Only plain text is split: an output coloured by ANSI codes keeps its markup, and its table its columns.
    if (row.filter(Boolean).length < 2) return;
    if (pre.querySelector("span:not(:empty)")) {
      pre.classList.remove("output-text");
      return;
    }
    // A row, or a line between two rows (a row whose columns are one space apart), keeps its columns.
    const kept = row.map((isIt, i) => isIt || (i > 0 && i < lines.length - 1 && row[i - 1] && row[i + 1]));
    pre.replaceChildren(...lines.map((line, i) => {
      const span = document.createElement("span");
      span.textContent = i < lines.length - 1 ? line + "\n" : line;
      span.className = kept[i] ? "output-line output-row" : "output-line";
      return span;
    }));
    pre.classList.add("output-table");
  }

  function run() {
    document.querySelectorAll("article div.highlight > pre, article .cell_output pre").forEach((pre) => {
      if (pre.classList.contains("code-lines") || pre.classList.contains("output-text")) return;
      if (!pre.closest(".cell_output")) splitIntoLines(pre);
      else markOutput(pre);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
