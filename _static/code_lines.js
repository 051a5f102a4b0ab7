/* Code that fits a phone. A code cell's lines are up to 68 characters, about 45 fit across a phone, and a
   code block that scrolls sideways hides the end of every long line. So each line of a code block becomes
   its own element, and on a narrow screen (_static/phone.css) a long line wraps, its continuation indented
   four characters past the line's first character, so that it cannot be mistaken for the next statement
   (the line's leading spaces get an element of their own, which phone.css replaces by a left padding).
   A printed output wraps on a narrow screen too, unless it is laid out in columns (two or more lines with
   runs of spaces inside them): a table that wraps is unreadable, so it scrolls in its own box.
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

  function isTable(text) {
    return text.split("\n").filter((row) => /\S {2,}\S/.test(row)).length >= 2;
  }

  function run() {
    document.querySelectorAll("article div.highlight > pre, article .cell_output pre").forEach((pre) => {
      if (pre.classList.contains("code-lines") || pre.classList.contains("output-text")) return;
      if (!pre.closest(".cell_output")) splitIntoLines(pre);
      else if (!isTable(pre.textContent)) pre.classList.add("output-text");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
