// latentdb pages: the little script they use (embedded in the binary). Pages read
// without it; it shows the value of the token under the pointer in a corner, and
// fills a latent page's costly sections: each placeholder (.part[data-part]) names
// its fragment (/part/...), fetched after the page and put in its place; the
// co-occurrence's scope links fetch their fragment again in place (their href, the
// whole page at that scope, serves a reader without script).
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

  // Fetches url into the section el; a later load of the same section wins.
  function load(el, url) {
    var n = (el._loads = (el._loads || 0) + 1);
    el.classList.add("loading");
    el.setAttribute("aria-busy", "true");
    el.dataset.state = "loading";
    if (!el.querySelector("nav, table, .ex, .error")) el.innerHTML = "<p class=muted>loading\u2026</p>";
    var done = function (html, ok) {
      if (n !== el._loads) return;
      el.innerHTML = html;
      el.classList.remove("loading");
      el.removeAttribute("aria-busy");
      el.dataset.state = ok ? "ok" : "failed"; // (what the browser tests wait for)
      el.dispatchEvent(new CustomEvent("part-loaded", { bubbles: true }));
    };
    fetch(url, { headers: { Accept: "text/html" } })
      .then(function (r) { return r.text().then(function (t) { done(t, r.ok); }); })
      .catch(function (err) {
        var p = document.createElement("p");
        p.className = "muted error";
        p.textContent = "could not load this section: " + err;
        done(p.outerHTML, false);
      });
  }

  document.querySelectorAll(".part[data-part]").forEach(function (el) { load(el, el.dataset.part); });

  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest(".part nav.scope a[data-part]");
    if (!a || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    load(a.closest(".part"), a.dataset.part);
    // the address says the scope (the page reloads at it), without ?full=1
    var u = new URL(a.href);
    var q = u.search.slice(1).split("&").filter(function (kv) { return kv && kv.split("=")[0] !== "full"; });
    history.replaceState(null, "", u.pathname + (q.length ? "?" + q.join("&") : "") + u.hash);
  });
})();
