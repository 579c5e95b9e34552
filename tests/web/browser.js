// The pages in a real browser: Debian's chromium, headless, driven by playwright-core
// (npm, pinned in tools/fetch.sh). Run by tests/web/test_browser.py, which starts the
// servers and passes what to expect; prints one JSON object: {checks: [[name, ok,
// detail], ...]}.
// usage: node browser.js PLAYWRIGHT_DIR CONFIG.json
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require(process.argv[2]);
const cfg = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const checks = [];
const check = (name, ok, detail) => checks.push([name, !!ok, detail === undefined ? "" : String(detail)]);

// Distinct colours in a PNG, counted by the browser itself (a blank page has one or two).
async function colours(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width; c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length && seen.size < 1000; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, png.toString("base64"));
}

(async () => {
  const browser = await chromium.launch({ executablePath: cfg.chromium, args: ["--no-sandbox"] });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 1300 } });
  const page = await ctx.newPage();
  const errors = [];
  let dialogs = 0;
  page.on("console", (m) => { if (m.type() === "error") errors.push(page.url() + ": " + m.text()); });
  page.on("pageerror", (e) => errors.push(page.url() + ": " + e));
  page.on("dialog", async (d) => { dialogs++; await d.dismiss(); });
  const visit = async (url) => {
    const r = await page.goto(url);
    return r ? r.status() : 0;
  };
  const U = cfg.url, THE = cfg.the;
  // a latent page's costly sections load after it (page.js): wait until every
  // placeholder holds its fragment; true when all loaded without error
  const partsLoaded = async (p) => {
    const pg = p || page;
    await pg.waitForFunction(() => [...document.querySelectorAll(".part[data-part]")]
      .every((e) => e.dataset.state === "ok" || e.dataset.state === "failed"), null, { timeout: 30000 });
    return pg.evaluate(() => [...document.querySelectorAll(".part[data-part]")].every((e) => e.dataset.state === "ok"));
  };

  // the overview
  check("overview loads", (await visit(U)) === 200);
  check("overview has a density plot per dictionary", (await page.locator("svg.plot").count()) >= 1);
  const shot1 = await page.screenshot({ path: path.join(cfg.out, "overview.png"), fullPage: false });
  const c1 = await colours(page, shot1);
  check("overview screenshot is not blank", c1 > 20, c1 + " colours");

  // a latent's page against the CLI's JSON
  check("latent page loads", (await visit(U + "latent/res/" + THE)) === 200);
  const fire = page.locator("#top .ex").first().locator(".t.fire");
  const tok = Number(await fire.getAttribute("data-tok"));
  const v = Number(await fire.getAttribute("data-v"));
  const want = cfg.top.examples[0];
  const wantTok = want.context.tokens[want.pos - want.context.start];
  check("top example's highlighted token is the CLI's", tok === wantTok, tok + " vs " + wantTok);
  check("top example's value is the CLI's", Math.fround(v) === Math.fround(want.value), v + " vs " + want.value);
  check("its value shows on hover", await (async () => {
    await fire.hover();
    const t = await page.locator("#tip").textContent();
    return t.includes(String(Number(await fire.getAttribute("data-v"))));
  })());
  check("latent page shows the count", (await page.locator("#count").textContent()).trim() === String(cfg.latent.count));
  check("latent page has three sections to load", (await page.locator(".part[data-part]").count()) === 3);
  check("its sections load after it", await partsLoaded());
  check("latent page has samples of both kinds",
        (await page.locator("#samples .ex").count()) > 0 && (await page.locator("#samples_value .ex").count()) > 0);
  check("the samples' tokens carry their values", (await page.locator("#samples .t.fire[data-v]").count()) > 0 &&
        (await page.locator("#samples_value .t.fire[data-v]").count()) > 0);
  check("latent page has its co-occurring latents", (await page.locator("#cooc tr").count()) > 1);
  const shot2 = await page.screenshot({ path: path.join(cfg.out, "latent.png"), fullPage: false });
  const c2 = await colours(page, shot2);
  check("latent screenshot is not blank", c2 > 20, c2 + " colours");

  // follow a co-occurring latent (from the loaded fragment)
  const co = page.locator("#cooc a").first();
  const href = await co.getAttribute("href");
  await Promise.all([page.waitForNavigation(), co.click()]);
  await page.waitForLoadState();
  check("a co-occurring latent's link opens its page", page.url().endsWith(href) &&
        (await page.locator("h1").textContent()).includes(href.split("/").pop()), page.url());
  check("its sections load too", await partsLoaded() && (await page.locator("#samples .ex").count()) > 0);

  // the co-occurrence's scope, chosen by its links: switched in place
  await visit(U + "latent/res/" + THE);
  check("the co-occurrence loads at token scope", await partsLoaded() &&
        (await page.locator("nav.scope a.on").textContent()) === "token");
  const tokenRows = await page.locator("#cooc").innerHTML();
  await page.evaluate(() => { window.__same = 1; });
  await page.locator("nav.scope a", { hasText: "seq" }).click();
  await page.waitForFunction(() => {
    const on = document.querySelector("#co_part nav.scope a.on");
    return on && on.textContent === "seq" && document.querySelector("#co_part").dataset.state === "ok";
  }, null, { timeout: 30000 });
  check("the seq scope link switches the section in place", page.url().includes("scope=seq") &&
        (await page.locator("nav.scope a.on").textContent()) === "seq" &&
        (await page.locator("#cooc tr").count()) > 1 &&
        (await page.evaluate(() => window.__same)) === 1 && !page.url().includes("full=1"), page.url());
  check("the section is the seq scope's", (await page.locator("#co_part").textContent()).includes("In the same sequence") &&
        (await page.locator("#cooc").innerHTML()) !== tokenRows);
  check("the rest of the page stays", (await page.locator("#samples .ex").count()) > 0 &&
        (await page.locator("#count").textContent()).trim() === String(cfg.latent.count));
  await page.locator("nav.scope a", { hasText: "window:5" }).click();
  await page.waitForFunction(() => {
    const on = document.querySelector("#co_part nav.scope a.on");
    return on && on.textContent === "window:5" && document.querySelector("#co_part").dataset.state === "ok";
  }, null, { timeout: 30000 });
  check("and again to window:5", page.url().includes("scope=window:5") &&
        (await page.locator("#co_part").textContent()).includes("Within 5 positions") &&
        (await page.evaluate(() => window.__same)) === 1, page.url());
  await page.reload();
  check("the address keeps the scope", await partsLoaded() &&
        (await page.locator("nav.scope a.on").textContent()) === "window:5", page.url());

  // without script: a link to the whole page, whose scope links work as links
  {
    const nctx = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1100, height: 1300 } });
    const np = await nctx.newPage();
    np.on("console", (m) => { if (m.type() === "error") errors.push(np.url() + ": " + m.text()); });
    await np.goto(U + "latent/res/" + THE);
    const link = np.locator("#samples noscript a, #samples a").first();
    check("without script the page links to the whole page", (await link.isVisible()) &&
          (await link.getAttribute("href")).includes("full=1"));
    await Promise.all([np.waitForNavigation(), link.click()]);
    check("the whole page has every section inline", np.url().includes("full=1") &&
          (await np.locator("#samples .ex").count()) > 0 && (await np.locator("#samples_value .ex").count()) > 0 &&
          (await np.locator("#cooc tr").count()) > 1);
    await Promise.all([np.waitForNavigation(), np.locator("nav.scope a", { hasText: "seq" }).click()]);
    check("its seq scope link loads the whole page at that scope", np.url().includes("scope=seq") &&
          np.url().includes("full=1") && (await np.locator("nav.scope a.on").textContent()) === "seq" &&
          (await np.locator("#cooc tr").count()) > 1, np.url());
    await nctx.close();
  }

  // search by a planted token's text, then the first card
  check("search page loads", (await visit(U)) === 200);
  await page.fill("header input[name=text]", cfg.probe);
  await Promise.all([page.waitForNavigation(), page.press("header input[name=text]", "Enter")]);
  check("search lists cards", (await page.locator(".card").count()) > 0, page.url());
  const first = page.locator(".card h3 a").first();
  await Promise.all([page.waitForNavigation(), first.click()]);
  check("the first card is the planted latent", page.url().endsWith("/latent/res/" + THE), page.url());
  check("its page's sections load", await partsLoaded());

  // a sequence shaded by the latent; a token lists the latents at its position
  check("sequence page loads", (await visit(U + "seq/" + want.seq + "?dict=res&latent=" + THE)) === 200);
  const shadedTok = page.locator("#seq .t").nth(want.pos);
  check("the sequence marks the example's token with its value",
        Math.fround(Number(await shadedTok.getAttribute("data-v"))) === Math.fround(want.value));
  await shadedTok.click();
  check("a token's link goes to its latents", page.url().endsWith("#p" + want.pos) &&
        (await page.locator("#p" + want.pos + " a").count()) > 0, page.url());

  // a corpus full of markup: shown as text, nothing runs
  await page.addInitScript(() => { window.__ran = 0; });
  for (const p of ["", "latent/res/" + cfg.markup_latent, "seq/0?dict=res&latent=" + cfg.markup_latent]) {
    const st = await visit(cfg.markup_url + p);
    const loaded = await partsLoaded(); // (the fragments hold the corpus's text too)
    const ran = await page.evaluate(() => window.__ran || 0);
    check("markup page " + (p || "/") + " loads", st === 200 && loaded, st);
    check("markup page " + (p || "/") + " runs nothing of the corpus", dialogs === 0 && ran === 0 &&
          (await page.locator("main img, main b, main script").count()) === 0, dialogs);
  }
  check("the markup reads as text", (await page.locator("#seq").textContent()).includes("<script>"));
  await visit(cfg.markup_url + "latent/res/" + cfg.markup_latent);
  check("the markup reads as text in a loaded section", await partsLoaded() &&
        (await page.locator("#samples .ex").count()) > 0 &&
        (await page.locator("#samples").textContent()).includes("<") && dialogs === 0 &&
        (await page.evaluate(() => window.__ran || 0)) === 0 &&
        (await page.locator("main img, main b, main script").count()) === 0);

  check("no console errors", errors.length === 0, errors.slice(0, 5).join(" | "));
  await browser.close();
  process.stdout.write(JSON.stringify({ checks }) + "\n");
})().catch((e) => {
  process.stdout.write(JSON.stringify({ checks, error: String(e && e.stack || e) }) + "\n");
  process.exit(1);
});
