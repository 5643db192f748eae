// Drives Debian's headless Chromium (through playwright-core) over refzarr serve's browser pages
// and reports what they drew; browser_e2e.py decides whether that is right.
// Usage: node drive_pages.mjs <steps.json>   (steps: see browser_e2e.py)
// Output (stdout): one JSON object {results: [...one per step...], console, failed, outside}.
import { readFileSync } from "node:fs";

import { chromium } from "playwright-core";

const { base, chromium: executablePath, steps, timeout_ms: timeout = 15000 } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const origin = new URL(base).origin;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Root in a container has no user namespace for Chromium's sandbox; the pages are our own.
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
const log = { console: [], failed: [], outside: [], requests: 0 };
// Nothing may leave 127.0.0.1: every other request is recorded and refused.
await context.route("**/*", (route) => {
  const url = route.request().url();
  if (new URL(url).origin === origin) return route.continue();
  log.outside.push(url);
  return route.abort("blockedbyclient");
});
const page = await context.newPage();
page.on("console", (m) => {
  if (m.type() === "error" || m.type() === "warning") log.console.push(`${m.type()}: ${m.text()} (${page.url()})`);
});
page.on("pageerror", (e) => log.console.push(`uncaught: ${e.message} (${page.url()})`));
page.on("request", () => log.requests++);
page.on("requestfailed", (r) => log.failed.push(`${r.url()}: ${r.failure()?.errorText}`));
page.on("response", (r) => {
  if (r.status() >= 400) log.failed.push(`${r.url()}: HTTP ${r.status()}`);
});

// The viewer has drawn every tile it wants: two frames after the last change, aria-busy false.
async function viewerIdle() {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.waitForSelector("#view[aria-busy='false']", { timeout });
}

// The folder page is laid out (main's aria-busy false).
async function pageLaidOut() {
  await page.waitForSelector("main[aria-busy='false']", { timeout });
}

async function cardsIdle(times) {
  await pageLaidOut();
  times.laid_out_ms = performance.now() - times.started;
  for (const card of await page.locator(".card").all()) {
    await card.scrollIntoViewIfNeeded();
    await card.locator("xpath=self::*[@aria-busy='false']").waitFor({ timeout });
  }
}

function pixels(selector, box) {
  return page.evaluate(
    ({ selector, box }) => {
      const canvas = document.querySelector(selector);
      const b = box ?? { x: 0, y: 0, w: canvas.width, h: canvas.height };
      // Read through a copy: reading the page's canvas itself again and again makes Chromium warn
      // (willReadFrequently), a console message the page did not cause.
      const copy = document.createElement("canvas");
      copy.width = b.w;
      copy.height = b.h;
      const ctx = copy.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(canvas, b.x, b.y, b.w, b.h, 0, 0, b.w, b.h);
      const data = ctx.getImageData(0, 0, b.w, b.h).data;
      let s = "";
      for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
      return { w: b.w, h: b.h, rgba: btoa(s), level: canvas.dataset.level ?? null, z: canvas.dataset.z ?? null };
    },
    { selector, box },
  );
}

// The detectors detect: a request to elsewhere and a console error, made on purpose from a page
// of the server, must be caught (then they are taken out of the report).
const canary = "http://192.0.2.1/refzarr-canary";
await page.goto(new URL("/__refzarr__/style.css", base).href);
await page.evaluate((url) => fetch(url, { mode: "no-cors" }).catch(() => console.error("canary")), canary);
await page.waitForTimeout(200); // the console events of the blocked request arrive
const caught = {
  outside: log.outside.includes(canary),
  failed: log.failed.some((f) => f.startsWith(canary)),
  console: log.console.some((c) => c.startsWith("error: canary")),
};
log.outside = log.outside.filter((u) => u !== canary);
log.failed = log.failed.filter((f) => !f.startsWith(canary));
log.console = []; // all from the canary page: the blocked request's and the canary's own

const results = [];
for (const step of steps) {
  const started = performance.now();
  try {
    if (step.open) {
      // From a blank page, so that a URL differing only in its fragment loads anew too.
      await page.goto("about:blank");
      await page.goto(new URL(step.open, base).href, { waitUntil: "load" });
      const times = { started };
      if (step.wait === "viewer") await viewerIdle();
      else if (step.wait === "cards") await cardsIdle(times);
      else await pageLaidOut();
      results.push({ title: await page.title(), laid_out_ms: times.laid_out_ms });
    } else if (step.folders) {
      results.push({ folders: await page.locator(".folders a").allTextContents() });
    } else if (step.cards) {
      const cards = [];
      for (const card of await page.locator(".card").all()) {
        const key = await card.getAttribute("data-key");
        cards.push({
          key,
          href: await card.getAttribute("href"),
          state: await card.getAttribute("data-thumbnail"),
          name: await card.locator(".name").textContent(),
          shape: await card.locator(".shape").textContent(),
          meta: await card.locator(".meta").textContent(),
          channels: await card.locator(".chip").allTextContents(),
          thumbnail: await pixels(`.card[data-key="${key}"] canvas`),
        });
      }
      results.push({ cards });
    } else if ("capture" in step) {
      results.push(await pixels("#view", step.capture));
    } else if (step.click) {
      await page.click(step.click);
      await viewerIdle();
      results.push({});
    } else if (step.press) {
      await page.focus(step.press[0]);
      await page.keyboard.press(step.press[1]);
      await viewerIdle();
      results.push({ value: await page.inputValue(step.press[0]) });
    } else if (step.fill) {
      await page.fill(step.fill[0], step.fill[1]);
      await viewerIdle();
      results.push({});
    } else if (step.text) {
      results.push({ text: await page.locator(step.text).allTextContents(), url: page.url() });
    } else {
      results.push({ error: `unknown step ${JSON.stringify(step)}` });
    }
  } catch (e) {
    results.push({ error: `${JSON.stringify(step)}: ${e.message.split("\n")[0]}` });
  }
  results[results.length - 1].ms = performance.now() - started; // for tests/bench/browser_bench.py
}
await browser.close();
process.stdout.write(JSON.stringify({ results, caught, ...log }) + "\n");
