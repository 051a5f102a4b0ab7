// Tables marked to stack on a phone (class "stack-on-phone", see _static/phone.css): each cell learns the
// heading of its column (data-label), which the phone's stacked layout writes before the cell's content.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.stack-on-phone").forEach((table) => {
    const headings = Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent.trim());
    table.querySelectorAll("tbody tr").forEach((row) => {
      Array.from(row.children).forEach((cell, i) => {
        if (!cell.textContent.trim()) cell.classList.add("stack-empty");  // nothing to say: no label either
        else if (headings[i]) cell.setAttribute("data-label", headings[i]);
      });
    });
  });
});
