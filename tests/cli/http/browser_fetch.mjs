// A page of one origin fetch()es from refzarr serve on another, in Debian's headless Chromium
// (playwright-core): CORS must let it read a signed URL's keys, a ranged chunk (preflighted), a
// token-authorised key (preflighted Authorization), and see the status of refused ones.
// Usage: node browser_fetch.mjs <job.json>: {chromium, page, requests: [{url, headers}]}.
// Output (stdout): JSON {results: [{status, length, bytes_b64 | error}], console}.
import { readFileSync } from "node:fs";

import { chromium } from "playwright-core";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const browser = await chromium.launch({
  executablePath: job.chromium,
  headless: true,
  // Root in a container has no user namespace for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
const out = { results: [], console: [] };
try {
  const page = await browser.newPage();
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  await page.goto(job.page);
  for (const request of job.requests) {
    out.results.push(
      await page.evaluate(async ({ url, headers }) => {
        try {
          const r = await fetch(url, { headers, mode: "cors" });
          const bytes = new Uint8Array(await r.arrayBuffer());
          let s = "";
          for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
          return { status: r.status, length: bytes.length, bytes_b64: btoa(s), origin: location.origin };
        } catch (e) {
          return { error: String(e), origin: location.origin };
        }
      }, request),
    );
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
