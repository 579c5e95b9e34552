// latentdb pages: the little script they use (embedded in the binary). Pages read
// without it; it shows the value of the token under the pointer in a corner.
(function () {
  "use strict";
  var tip = document.createElement("div");
  tip.id = "tip";
  document.body.appendChild(tip);
  document.addEventListener("mouseover", function (e) {
    var t = e.target.closest && e.target.closest(".t");
    if (!t || !t.dataset.v) { tip.style.display = "none"; return; }
    tip.textContent = "value " + t.dataset.v + (t.dataset.tok ? "  token " + t.dataset.tok : "");
    tip.style.display = "block";
  });
})();
