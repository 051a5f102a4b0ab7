// Tables of definitions on a phone (see _static/phone.css). A table in a page's text (not a cell's output) with
// at most three columns (a term and what is said about it: the chapter map, the glossary, the summary's loss
// tables, Chainer against PyTorch) is marked "stack-on-phone", and each of its cells learns the heading of its
// column (data-label), which the phone's stacked layout writes before the cell's content. Wider tables, which
// compare numbers across rows, keep their columns and scroll sideways in their own box.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("article table").forEach((table) => {
    const headings = Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent.trim());
    if (table.closest(".cell_output") || headings.length < 2 || headings.length > 3) return;
    table.classList.add("stack-on-phone");
    table.querySelectorAll("tbody tr").forEach((row) => {
      Array.from(row.children).forEach((cell, i) => {
        if (!cell.textContent.trim()) cell.classList.add("stack-empty");  // nothing to say: no label either
        else if (headings[i]) cell.setAttribute("data-label", headings[i]);
      });
    });
  });
});
