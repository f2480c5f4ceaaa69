// optical-memory web: a few conveniences over pages that work without it.
"use strict";
document.addEventListener("keydown", (event) => {
  // left and right arrows step through a session's pages, unless typing
  if (event.target instanceof HTMLInputElement || event.altKey || event.ctrlKey || event.metaKey) return;
  const rel = { ArrowLeft: "prev", ArrowRight: "next" }[event.key];
  const link = rel && document.querySelector(`a[rel="${rel}"]`);
  if (link) link.click();
});
document.addEventListener("DOMContentLoaded", () => {
  // a click on the page image toggles between fitted and its stored size
  const image = document.getElementById("page-image");
  if (image) image.addEventListener("click", () => image.classList.toggle("natural"));
});
