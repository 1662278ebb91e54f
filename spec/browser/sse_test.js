// Drives the system Chromium (never a downloaded one) against a page served
// by acoro.http: usage `node sse_test.js BASE_URL SCREENSHOT`. Prints one
// line: "OK ..." or "FAIL why"; exit 3 with "SKIP why" when Chromium cannot
// start (the Busted spec then marks itself pending with that reason).
"use strict";
const { chromium } = require("playwright-core");

const [base, shot] = process.argv.slice(2);
const VALUES = ["one", "two", "<script>alert(1)</script>"];

async function main() {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      // root has no user namespace sandbox in containers
      args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
      timeout: 30000,
    });
  } catch (e) {
    console.log("SKIP chromium cannot start: " + String(e.message).split("\n")[0]);
    process.exit(3);
  }
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(15000);
    let dialogs = 0;
    page.on("dialog", (d) => { dialogs++; d.dismiss().catch(() => {}); });
    let loads = 0;
    page.on("load", () => { loads++; });
    await page.goto(base + "/");
    await page.waitForFunction(() => document.getElementById("state").textContent === "open");
    for (const v of VALUES) {
      // the server pushes v to every open stream; the page shows it unasked
      const r = await fetch(base + "/push?value=" + encodeURIComponent(v), { method: "POST" });
      const n = Number(await r.text());
      if (r.status !== 200 || n < 1) throw new Error("push answered " + r.status + " " + n);
      await page.waitForFunction((want) => document.getElementById("value").textContent === want, v);
    }
    const seen = await page.evaluate(() => ({
      items: Array.from(document.querySelectorAll("#log li")).map((li) => li.textContent),
      scripts: document.querySelectorAll("#log script, #value script").length,
    }));
    await page.screenshot({ path: shot, fullPage: true });
    if (JSON.stringify(seen.items) !== JSON.stringify(VALUES)) throw new Error("log " + JSON.stringify(seen.items));
    if (seen.scripts !== 0) throw new Error("a pushed value became a script element");
    if (dialogs !== 0) throw new Error(dialogs + " dialog(s) opened");
    if (loads !== 1) throw new Error("the page loaded " + loads + " times");
    console.log("OK items=" + seen.items.length + " dialogs=0 loads=1");
  } catch (e) {
    console.log("FAIL " + String(e.message).split("\n")[0]);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main();
