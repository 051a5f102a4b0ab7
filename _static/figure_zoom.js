/* Figures on a phone. A chapter's figures are drawn for the 676 px column of a wide screen, where their
   text is 9 pt or more; on a 390 px phone they shrink to about half and their text with them. So on a
   narrow screen (the width at which _static/phone.css takes over) a figure that the column shrinks says
   under it that a tap enlarges it, and a tap opens it over the page at the size it has on a wide screen,
   in a box that scrolls both ways. A tap outside the figure, the close button, Escape or the browser's
   back button closes it. On a wide screen nothing changes. */
(function () {
  "use strict";
  const NARROW = window.matchMedia("(max-width: 600px)");
  const FIGURES = "article .cell_output img, article figure img";  // a chapter's output, a page's drawn figure
  let overlay = null;

  function shrunk(img) {
    return img.naturalWidth > 0 && img.naturalWidth > img.clientWidth * 1.15;
  }

  function close(fromHistory) {
    if (!overlay) return;
    overlay.remove();
    overlay = null;
    document.documentElement.classList.remove("figure-zoom-open");
    if (!fromHistory && history.state && history.state.figureZoom) history.back();
  }

  function open(img) {
    close(false);
    overlay = document.createElement("div");
    overlay.className = "figure-zoom";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.setAttribute("aria-label", "The figure at full size");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "figure-zoom-close";
    button.textContent = "\u00d7 close";
    const box = document.createElement("div");
    box.className = "figure-zoom-box";
    const big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.width = img.naturalWidth;
    box.appendChild(big);
    overlay.append(button, box);
    overlay.addEventListener("click", (event) => {
      if (event.target === overlay || event.target === box || event.target === button) close(false);
    });
    document.body.appendChild(overlay);
    document.documentElement.classList.add("figure-zoom-open");
    history.pushState({ figureZoom: true }, "");  // the back button closes the figure, not the page
    button.focus();
  }

  function mark() {
    document.querySelectorAll(FIGURES).forEach((img) => {
      const wanted = NARROW.matches && shrunk(img);
      img.classList.toggle("figure-zoomable", wanted);
      if (wanted) {
        img.setAttribute("role", "button");
        img.setAttribute("tabindex", "0");
        img.setAttribute("aria-label", "Enlarge the figure");
      } else {
        img.removeAttribute("role");
        img.removeAttribute("tabindex");
        img.removeAttribute("aria-label");
      }
    });
  }

  document.addEventListener("click", (event) => {
    const img = event.target.closest && event.target.closest("img.figure-zoomable");
    if (img && NARROW.matches) open(img);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close(false);
    const img = event.target.closest && event.target.closest("img.figure-zoomable");
    if (img && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      open(img);
    }
  });
  window.addEventListener("popstate", () => close(true));
  window.addEventListener("load", mark);  // every image has its size by then
  NARROW.addEventListener("change", () => { close(false); mark(); });
  window.addEventListener("resize", mark);
})();
