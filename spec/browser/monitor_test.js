// Drives the system Chromium against the discoro web monitor of a real
// computation, for spec/monitor_browser_spec.lua:
//   node monitor_test.js BASE_URL TOKEN NODE_LOCATION SHOT_DIR NODE_MONITOR_URL
// The Lua spec runs the node and the client; this script asks it for each
// action by printing "STEP name" and waits for a line on stdin ("go", or
// "fail why") before it looks at the page again. It ends with one line,
// "OK ..." or "FAIL why", or exits 3 with "SKIP why" when Chromium cannot start.
"use strict";
const { chromium } = require("playwright-core");
const readline = require("readline");

const [base, token, nodeLoc, shots, nodeMonitor] = process.argv.slice(2);
const XSS = "<script>alert(1)</script>";
const RUN = 40; // the quick jobs of STEP run
const BLIP = 10; // the jobs run while the monitor is down
const LONG = 4; // the jobs running when the node is killed

const input = readline.createInterface({ input: process.stdin });
const answers = [];
let waiting = null;
input.on("line", (l) => { if (waiting) { const w = waiting; waiting = null; w(l); } else answers.push(l); });
input.on("close", () => { if (waiting) waiting("fail stdin closed"); });

// Asks the Lua side for an action; resolves once it is done.
async function step(name) {
  console.log("STEP " + name);
  const l = answers.length ? answers.shift() : await new Promise((r) => { waiting = r; });
  if (l !== "go") throw new Error("step " + name + ": " + l);
}

function check(cond, what) { if (!cond) throw new Error(what); }

const PAGES = ["/", "/node/" + encodeURIComponent(nodeLoc), "/server/127.0.0.1%3A1", "/static/app.js",
  "/static/app.css", "/api/status", "/api/events", "/metrics"];

// Every page and API: 401 without the token (or with a wrong one), 200 with it.
async function checkAuth() {
  for (const p of PAGES) {
    for (const headers of [{}, { Authorization: "Bearer wrong" + token }]) {
      const r = await fetch(base + p, { headers, redirect: "manual" });
      check(r.status === 401, "GET " + p + " without the token answered " + r.status);
      await r.arrayBuffer();
    }
    const ctl = new AbortController();
    const r = await fetch(base + p, { headers: { Authorization: "Bearer " + token }, signal: ctl.signal });
    check(r.status === 200, "GET " + p + " with the token answered " + r.status);
    if (p === "/api/events") {
      check(/^text\/event-stream/.test(r.headers.get("content-type")), "/api/events is " + r.headers.get("content-type"));
      ctl.abort(); // a stream: its head is the answer
    } else {
      await r.arrayBuffer();
    }
  }
  const r = await fetch(base + "/api/terminate", { method: "POST", body: '{"job":1}' });
  check(r.status === 401, "POST /api/terminate without the token answered " + r.status);
  const w = await fetch(base + "/?token=wrong" + token, { redirect: "manual" });
  check(w.status === 401, "/?token=WRONG answered " + w.status);
}

// Prometheus text format 0.0.4, line by line; returns {name: [{labels, value}]}.
function parseMetrics(text) {
  check(text.endsWith("\n"), "/metrics does not end with a newline");
  const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const LNAME = "[a-zA-Z_][a-zA-Z0-9_]*";
  const LVALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
  const VALUE = "(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|NaN|[+-]Inf)";
  const sampleRe = new RegExp("^(" + NAME + ")(\\{(?:" + LNAME + "=" + LVALUE + "(?:," + LNAME + "=" + LVALUE +
    ")*,?)?\\})? (" + VALUE + ")(?: (-?\\d+))?$");
  const helpRe = new RegExp("^# HELP (" + NAME + ") (.*)$");
  const typeRe = new RegExp("^# TYPE (" + NAME + ") (counter|gauge|histogram|summary|untyped)$");
  const types = {}, helps = {}, out = {}, seen = new Set();
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, i) => {
    const at = "/metrics line " + (i + 1) + " (" + JSON.stringify(line) + ")";
    let m;
    if ((m = helpRe.exec(line))) {
      check(!(m[1] in helps), at + ": second HELP");
      check(!/\\(?![\\n])/.test(m[2]), at + ": bad escape in HELP");
      helps[m[1]] = m[2];
    } else if ((m = typeRe.exec(line))) {
      check(!(m[1] in types), at + ": second TYPE");
      check(!out[m[1]], at + ": TYPE after its samples");
      types[m[1]] = m[2];
    } else if (line.startsWith("#")) {
      check(!/^# (HELP|TYPE)\b/.test(line), at + ": malformed HELP or TYPE");
    } else if ((m = sampleRe.exec(line))) {
      const name = m[1];
      const fam = types[name] ? name : name.replace(/_(bucket|sum|count)$/, "");
      check(types[fam], at + ": a sample with no TYPE before it");
      if (!/^(histogram|summary)$/.test(types[fam])) check(fam === name, at + ": suffix on a " + types[fam]);
      const labels = {};
      const body = (m[2] || "{}").slice(1, -1);
      const lre = new RegExp("(" + LNAME + ")=(" + LVALUE + ")", "g");
      let lm;
      while ((lm = lre.exec(body))) {
        check(!(lm[1] in labels), at + ": label " + lm[1] + " twice");
        labels[lm[1]] = JSON.parse(lm[2].replace(/\\n/g, "\\n"));
      }
      const key = name + JSON.stringify(Object.entries(labels).sort());
      check(!seen.has(key), at + ": the same series twice");
      seen.add(key);
      (out[name] = out[name] || []).push({ labels, value: Number(m[3].replace(/Inf$/, "Infinity")) });
    } else {
      check(line === "", at + ": not a comment, a sample or empty");
    }
  });
  return out;
}

async function checkMetrics() {
  const auth = { Authorization: "Bearer " + token };
  const m = await fetch(base + "/metrics", { headers: auth });
  check(/^text\/plain; version=0\.0\.4/.test(m.headers.get("content-type")), "/metrics is " + m.headers.get("content-type"));
  const metrics = parseMetrics(await m.text());
  const st = await (await fetch(base + "/api/status", { headers: auth })).json();
  const jobs = {};
  for (const s of metrics.acoro_discoro_jobs || []) jobs[s.labels.state] = s.value;
  for (const k of ["submitted", "running", "done", "failed", "requeued"]) {
    check(jobs[k] === st.jobs[k], "/metrics jobs " + k + " = " + jobs[k] + ", /api/status " + st.jobs[k]);
  }
  return st.jobs;
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);

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
  const errors = [];
  try {
    await checkAuth();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(20000);
    // the one dialog expected is terminate's confirm(), when armed
    let expectConfirm = null, badDialogs = [];
    page.on("dialog", (d) => {
      if (expectConfirm && d.type() === "confirm" && d.message().includes(expectConfirm)) {
        expectConfirm = null;
        d.accept().catch(() => {});
      } else {
        badDialogs.push(d.type() + ": " + d.message());
        d.dismiss().catch(() => {});
      }
    });
    page.on("pageerror", (e) => errors.push(e.message));
    let loads = 0;
    page.on("load", () => { loads++; });
    const row = "#nodes tr[data-location=\"" + nodeLoc + "\"]";

    // ?token= sets the cookie and leaves the address without it
    await page.goto(base + "/?token=" + encodeURIComponent(token));
    check(page.url() === base + "/", "after ?token= the page is at " + page.url());
    await page.waitForFunction(() => document.getElementById("conn").textContent === "live");
    await page.waitForFunction((sel) => {
      const r = document.querySelector(sel);
      return r && r.cells[2].textContent === "up" && r.cells[3].textContent === "2";
    }, row);
    check(await text(page, "#jobs-submitted") === "0", "jobs submitted before any: " + await text(page, "#jobs-submitted"));

    // live: the totals move while the page stays loaded
    await step("run " + RUN);
    await page.waitForFunction((n) => document.getElementById("jobs-done").textContent === String(n) &&
      document.getElementById("jobs-submitted").textContent === String(n), RUN);
    check(loads === 1, "the page loaded " + loads + " times");
    check(await text(page, "#jobs-failed") === "0", "failed: " + await text(page, "#jobs-failed"));
    check(await page.$eval(row, (r) => r.cells[9].textContent) === String(RUN), "the node's done count");
    check(await page.$eval(row, (r) => r.cells[0].textContent) === "spec-node", "the node's name");
    // the node's own monitor lists the computation and its servers
    const other = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await other.goto(nodeMonitor);
    await other.waitForFunction(() => {
      const r = document.querySelector("#computations tbody tr");
      return r && r.cells[1].textContent === "computation" && r.cells[3].textContent === "2";
    });
    check(await other.$eval("#nodes tbody tr", (r) => r.dataset.location) === nodeLoc, "the node's monitor's node");
    await other.screenshot({ path: shots + "/acoro-node.png", fullPage: true });
    await other.close();

    // the server goes away and comes back: the page says so, reconnects by
    // itself and takes the fresh snapshot (the jobs run meanwhile)
    await page.evaluate(() => {
      const c = document.getElementById("conn");
      window.connLog = [];
      new MutationObserver(() => window.connLog.push(c.textContent))
        .observe(c, { childList: true, characterData: true, subtree: true });
    });
    await step("blip " + BLIP);
    await page.waitForFunction(() => {
      const i = window.connLog.indexOf("reconnecting");
      return i >= 0 && window.connLog.indexOf("live", i) > i;
    });
    await page.waitForFunction((n) => document.getElementById("jobs-done").textContent === String(n), RUN + BLIP);
    check(loads === 1, "the page loaded " + loads + " times");
    // the charts have drawn their samples
    await page.waitForSelector("#rate-chart polyline.series", { state: "attached" });
    await page.waitForSelector("#cpu-chart polyline.series", { state: "attached" });
    // a header click sorts (by CPU idle, then the other way)
    await page.click("#nodes th[data-key=cpu]");
    check(await page.$eval("#nodes th[data-key=cpu]", (e) => e.getAttribute("aria-sort")) === "ascending", "sort");
    await page.click("#nodes th[data-key=cpu]");
    check(await page.$eval("#nodes th[data-key=cpu]", (e) => e.getAttribute("aria-sort")) === "descending", "sort back");

    // a job whose argument is markup: text on the node and server pages
    await step("hold " + XSS);
    await page.waitForFunction((sel) => document.querySelector(sel).cells[8].textContent === "1", row);
    await Promise.all([page.waitForNavigation(), page.click(row + " a")]);
    await page.waitForFunction(() => document.getElementById("conn").textContent === "live");
    check(await text(page, "#node-name") === "spec-node", "node name " + await text(page, "#node-name"));
    const serverLoc = await page.waitForFunction((x) => {
      for (const r of document.querySelectorAll("#servers tbody tr")) {
        for (const li of r.querySelectorAll("li")) if (li.textContent.includes(x)) return r.dataset.location;
      }
      return null;
    }, XSS).then((h) => h.jsonValue());
    check(await page.$$eval("#servers tbody tr", (rs) => rs.length) === 2, "the node page lists 2 servers");
    await page.screenshot({ path: shots + "/node.png", fullPage: true });
    await Promise.all([page.waitForNavigation(),
      page.click("#servers tr[data-location=\"" + serverLoc + "\"] a")]);
    check(await text(page, "#server-location") === serverLoc, "server location");
    const jobRow = await page.waitForSelector("#jobs tbody tr[data-job]");
    const jobId = await jobRow.getAttribute("data-job");
    check(await jobRow.$eval("td.args", (e) => e.textContent) === JSON.stringify(XSS), "args shown as " +
      await jobRow.$eval("td.args", (e) => e.textContent));
    check(await page.$$eval("main script", (s) => s.length) === 0, "an argument became a script element");
    await page.screenshot({ path: shots + "/server.png", fullPage: true });

    // terminate: confirm() first, then the job ends and its row goes
    expectConfirm = "Terminate job " + jobId;
    await page.click("#jobs tr[data-job=\"" + jobId + "\"] button.terminate");
    await page.waitForSelector("#jobs tr[data-job=\"" + jobId + "\"]", { state: "detached" });
    check(expectConfirm === null, "no confirm() before terminating");
    await step("terminated");
    const jobs = await checkMetrics();
    check(jobs.failed === 1 && jobs.done === RUN + BLIP && jobs.running === 0, "after terminate: " + JSON.stringify(jobs));

    // a node killed mid-run turns closed
    await Promise.all([page.waitForNavigation(), page.click("#crumbs a")]);
    await page.waitForFunction(() => document.getElementById("conn").textContent === "live");
    await step("long " + LONG);
    await page.waitForFunction((n) => document.getElementById("jobs-running").textContent === String(n), LONG);
    await page.screenshot({ path: shots + "/cluster.png", fullPage: true });
    await step("kill");
    await page.waitForFunction((sel) => document.querySelector(sel).cells[2].textContent === "closed", row,
      { timeout: 5000 });
    check(await page.$eval(row, (r) => r.classList.contains("st-closed")), "closed row style");

    check(badDialogs.length === 0, "dialog(s) opened: " + badDialogs.join("; "));
    check(errors.length === 0, "page errors: " + errors.join("; "));
    console.log("OK jobs=" + (RUN + BLIP) + " terminated=" + jobId + " dialogs=0");
  } catch (e) {
    let seen = "";
    try {
      seen = await browser.contexts()[0].pages()[0].evaluate(() => "page " + location.pathname + ", #conn " +
        document.getElementById("conn").textContent + ", charts: " +
        Array.from(document.querySelectorAll("svg")).map((s) => s.id + " " + s.children.length + " " +
          s.textContent.slice(-40)).join("; "));
    } catch (e2) { seen = "(no page: " + e2.message + ")"; }
    console.log("FAIL " + String(e.message).split("\n")[0] + " [" + seen + "; page errors: " + errors.join("; ") + "]");
    process.exitCode = 1;
  } finally {
    await browser.close();
    input.close();
  }
}

main();
