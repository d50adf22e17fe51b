#!/usr/bin/python3
"""Renders docs/grafana/glupy-dashboard.json without Grafana (which Debian
does not package): each panel's PromQL is evaluated by a real Prometheus and
drawn with Chart.js in headless Chromium, on the dashboard's grid. It is an
approximation of what Grafana shows, not a Grafana screenshot.

    docs/grafana/render_dashboard.py --prometheus-url http://127.0.0.1:9090 --out shot.png
    docs/grafana/render_dashboard.py --demo --prometheus /path/to/prometheus --out shot.png

--demo (as root) starts two bricks with examples/profiler.py, the collector
(python3 -m glupy.flow --http), an endpoint serving `glupy status
--prometheus` for those bricks, and a Prometheus scraping both every 5 s;
runs a varying workload for --minutes, then renders. Prometheus: Debian's
`prometheus` package (apt-get download prometheus; dpkg -x it to run it
without installing its service).
"""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHART_JS = Path("/usr/share/javascript/chart.js/chart.min.js")

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>dashboard</title>
<style>
 body { margin: 0; background: #111217; color: #d8d9da; font: 12px sans-serif; }
 header { padding: 8px 14px; background: #181b1f; border-bottom: 1px solid #2c3235; }
 h1 { font-size: 16px; margin: 0 0 2px; color: #fff; } .note { color: #f2cc0c; }
 #grid { position: relative; margin: 6px; }
 .panel { position: absolute; box-sizing: border-box; background: #181b1f; border: 1px solid #2c3235;
          border-radius: 2px; padding: 4px 8px 6px; display: flex; flex-direction: column; }
 .panel h2 { font-size: 12px; margin: 0 0 4px; color: #ccccdc; font-weight: 600; }
 .row { position: absolute; font-size: 14px; color: #ccccdc; font-weight: 600; padding: 6px 2px; }
 .body { position: relative; flex: 1; min-height: 0; overflow: hidden; }
 table { width: 100%; border-collapse: collapse; } td, th { text-align: left; padding: 2px 6px;
 border-bottom: 1px solid #2c3235; } th { color: #8e8e8e; font-weight: normal; }
</style><script>CHART_JS</script></head><body>
<header><h1 id="title"></h1><div class="note">Rendered by docs/grafana/render_dashboard.py: each panel's
PromQL from glupy-dashboard.json evaluated by Prometheus VERSION, drawn with Chart.js. Not Grafana itself
(Debian has no Grafana); an approximation of the same panels. Variables: all values.</div></header>
<div id="grid"></div>
<script>
const CONFIG = CONFIG_JSON;
const PALETTE = ["#7eb26d","#eab839","#6ed0e0","#ef843c","#e24d42","#1f78c1","#ba43a9","#705da0",
                 "#508642","#cca300","#447ebc","#c15c17","#890f02","#0a437c","#6d1f62","#584477"];
const UNIT = {ops: v => v.toFixed(v < 10 ? 1 : 0) + " ops/s", s: v => v < 1e-3 ? (v * 1e6).toFixed(0) + " µs"
  : v < 1 ? (v * 1e3).toFixed(1) + " ms" : v.toFixed(2) + " s", percentunit: v => (v * 100).toFixed(1) + "%",
  short: v => String(+v.toFixed(2))};
async function prom(path, params) {
  const r = await fetch("api/v1/" + path + "?" + new URLSearchParams(params));
  const body = await r.json();
  if (body.status !== "success") throw new Error(body.error);
  return body.data;
}
function expand(expr, vars) {
  return expr.replace(/\\$__rate_interval/g, CONFIG.rate_interval)
             .replace(/\\$\\{?(\\w+)\\}?/g, (m, name) => name in vars ? vars[name] : ".*");
}
const legend = (format, metric) => format.replace(/\\{\\{\\s*(\\w+)\\s*\\}\\}/g, (m, k) => metric[k] || "");
async function drawPanel(panel, vars, box) {
  const div = document.createElement("div");
  div.className = "panel"; Object.assign(div.style, box);
  div.innerHTML = `<h2></h2><div class="body"></div>`;
  div.querySelector("h2").textContent = panel.title.replace(/\\$(\\w+)/g, (m, n) => vars[n] || "all");
  document.getElementById("grid").appendChild(div);
  const body = div.querySelector(".body");
  const unit = UNIT[(panel.fieldConfig.defaults || {}).unit] || UNIT.short;
  if (panel.type === "table") {
    const rows = [];
    for (const t of panel.targets) for (const r of (await prom("query", {query: expand(t.expr, vars)})).result)
      rows.push([legend(t.legendFormat, r.metric), unit(+r.value[1])]);
    body.innerHTML = "<table><tr><th>series</th><th>value</th></tr>" + rows.map(r =>
      `<tr><td>${r[0]}</td><td>${r[1]}</td></tr>`).join("") + "</table>";
    return;
  }
  const end = CONFIG.end, start = end - CONFIG.minutes * 60;
  const datasets = [];
  for (const t of panel.targets) {
    const {result} = await prom("query_range", {query: expand(t.expr, vars), start, end, step: CONFIG.step});
    for (const s of result) {
      const color = PALETTE[datasets.length % PALETTE.length];
      datasets.push({label: legend(t.legendFormat, s.metric), borderColor: color, backgroundColor: color + "88",
        data: s.values.map(([x, y]) => ({x, y: isFinite(+y) ? +y : null}))});
    }
  }
  const stacked = ((panel.fieldConfig.defaults.custom || {}).stacking || {}).mode === "normal";
  datasets.forEach((d, i) => { d.fill = stacked ? (i ? "-1" : "origin") : false; });
  const canvas = document.createElement("canvas"); body.appendChild(canvas);
  new Chart(canvas, {type: "line", data: {datasets}, options: {animation: false, parsing: false,
    responsive: true, maintainAspectRatio: false, elements: {point: {radius: 0}, line: {borderWidth: 1.3}},
    plugins: {legend: {position: "right", labels: {color: "#ccc", boxWidth: 8, font: {size: 10}}}},
    scales: {x: {type: "linear", min: start, max: end, ticks: {color: "#999", maxTicksLimit: 6,
      callback: v => new Date(v * 1000).toLocaleTimeString([], {hour12: false, hour: "2-digit", minute: "2-digit"})},
      grid: {color: "#2c3235"}},
      y: {stacked, beginAtZero: true, ticks: {color: "#999", callback: unit}, grid: {color: "#2c3235"}}}}});
}
async function main() {
  const dash = await (await fetch("dashboard.json")).json();
  document.getElementById("title").textContent = dash.title;
  const cell = (document.body.clientWidth - 12) / 24, unitH = 30;
  let shift = 0, bottom = 0;
  const place = (g, extraY) => ({left: g.x * cell + "px", top: (g.y + extraY) * unitH + "px",
    width: g.w * cell - 4 + "px", height: g.h * unitH - 4 + "px"});
  for (const panel of dash.panels) {
    const g = panel.gridPos;
    if (panel.type === "row") {
      const div = document.createElement("div"); div.className = "row"; div.textContent = panel.title;
      Object.assign(div.style, place(g, shift)); document.getElementById("grid").appendChild(div);
      continue;
    }
    if (panel.repeat) {
      const variable = dash.templating.list.find(v => v.name === panel.repeat);
      const metric = variable.definition.match(/label_values\\((.*),\\s*(\\w+)\\)$/);
      const values = (await prom("label/" + metric[2] + "/values", {"match[]": expand(metric[1], {})})).slice(0, CONFIG.repeat_max);
      const perRow = panel.maxPerRow || 4, w = 24 / perRow;
      values.forEach((value, i) => drawPanel(panel, {[panel.repeat]: value},
        place({x: (i % perRow) * w, y: g.y + Math.floor(i / perRow) * g.h, w, h: g.h}, shift)));
      shift += (Math.ceil(values.length / perRow) - 1) * g.h;
    } else {
      await drawPanel(panel, {}, place(g, shift));
    }
    bottom = Math.max(bottom, (g.y + g.h + shift) * unitH);
  }
  document.getElementById("grid").style.height = bottom + "px";
  setTimeout(() => { window.rendered = bottom + 80; }, 1500);
}
main().catch(e => { document.body.append("render failed: " + e); window.rendered = -1; });
</script></body></html>"""


def serve(prometheus_url, dashboard, config):
    """The page, the dashboard and a proxy to Prometheus's API on one port."""
    page = (PAGE.replace("CHART_JS", CHART_JS.read_text())
            .replace("CONFIG_JSON", json.dumps(config))
            .replace("VERSION", config["version"])).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.startswith("/api/v1/"):
                with urllib.request.urlopen(prometheus_url.rstrip("/") + self.path, timeout=30) as r:
                    body, kind = r.read(), "application/json"
            elif self.path == "/dashboard.json":
                body, kind = dashboard.read_bytes(), "application/json"
            else:
                body, kind = page, "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def screenshot(url, out, width=1600, ready="return window.rendered"):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--hide-scrollbars",
                     "--disable-component-update", "--disable-sync", f"--window-size={width},1200",
                     f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    try:
        driver.get(url)
        deadline = time.monotonic() + 60
        height = None
        while time.monotonic() < deadline and not height:
            height = driver.execute_script(ready)
            time.sleep(0.3)
        if not height or height < 0:
            raise SystemExit("the dashboard did not render: " + driver.execute_script(
                "return document.body.innerText")[-500:])
        driver.set_window_size(width, height)
        time.sleep(1)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def render(prometheus_url, out, minutes, dashboard):
    with urllib.request.urlopen(prometheus_url.rstrip("/") + "/api/v1/status/buildinfo") as r:
        version = json.load(r)["data"]["version"]
    config = {"end": time.time(), "minutes": minutes, "step": max(5, minutes * 60 // 240),
              "rate_interval": "20s", "repeat_max": 9, "version": version}
    server = serve(prometheus_url, dashboard, config)
    try:
        screenshot(f"http://127.0.0.1:{server.server_address[1]}/", out)
    finally:
        server.shutdown()


# ---------------------------------------------------------------------- demo

def demo(args):
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO / "python"))
    import glusterlib
    from glupy import cli, hostmetrics
    from prometheus_client import generate_latest

    work = Path(tempfile.mkdtemp(prefix="glupy-dashboard-"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    flow = subprocess.Popen([sys.executable, "-m", "glupy.flow", "--listen", "udp:127.0.0.1:0",
                             "--http", "127.0.0.1:0", "--quiet"], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    udp = int(flow.stderr.readline().rpartition(":")[2])
    flow_url = flow.stderr.readline().split()[1]
    cluster = glusterlib.Cluster(work)
    prometheus = None
    try:
        layer = ("features/glupy", {"module-name": "profiler", "module-path": str(REPO / "examples"),
                                    "sink": f"udp:127.0.0.1:{udp}", "flush-interval": "0.2"}, "vol0-glupy")
        bricks = [cluster.brick([layer]) for _ in range(2)]
        clients = [cluster.gfapi(b) for b in bricks]
        pids = [b.pid for b in bricks]

        class HostMetrics(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                processes = [cli.process_status(p) for p in cli.process_table() if p["pid"] in pids]
                body = generate_latest(hostmetrics.registry_for(processes))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass
        host = ThreadingHTTPServer(("127.0.0.1", 0), HostMetrics)
        threading.Thread(target=host.serve_forever, daemon=True).start()

        port = glusterlib.free_port()
        targets = [urllib.parse.urlsplit(flow_url).netloc, f"127.0.0.1:{host.server_address[1]}"]
        (work / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": "5s"},
            "scrape_configs": [{"job_name": "glupy", "static_configs": [{"targets": targets}]}]}))
        prometheus = subprocess.Popen(
            [args.prometheus, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w"))
        workload(clients, args.minutes * 60)
        time.sleep(6)
        if args.page_out:  # the collector's own live page after the same workload
            screenshot(flow_url, args.page_out, width=1400, ready="return window.flow.state.updates"
                       " > 0 && document.body.scrollHeight + 20")
        render(f"http://127.0.0.1:{port}", args.out, args.minutes, args.dashboard)
    finally:
        if prometheus is not None:
            prometheus.send_signal(signal.SIGTERM)
            prometheus.wait(20)
        cluster.cleanup()
        flow.send_signal(signal.SIGTERM)
        flow.wait(10)
        glusterlib.finish_closing()


def workload(clients, seconds):
    """Files written, read, looked up (some missing) at a rate that varies."""
    chunk = os.urandom(16384)
    for n, client in enumerate(clients):
        client.mkdir(f"/projects{n}")
    started, i = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        phase = (time.monotonic() - started) / 60
        for n, client in enumerate(clients):
            if n == 1 and math.sin(phase * 2) < -0.3:
                continue  # the second brick idles now and then
            name = f"/projects{n}/file-{i % 40}"
            with client.creat(name) as handle:
                for _ in range(1 + i % 4):
                    handle.write(chunk)
            with client.open(name) as handle:
                handle.read(16384)
            client.stat(name)
            try:
                client.stat(f"/projects{n}/missing-{i}")
            except FileNotFoundError:
                pass
            if i % 7 == 0:
                client.setxattr(name, "user.tag", b"x")
            if i % 5 == 0:
                client.unlink(name)
        i += 1
        time.sleep(0.02 + 0.03 * (1 + math.sin(phase * 3)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus-url", help="a Prometheus that scrapes the metrics")
    parser.add_argument("--demo", action="store_true", help="make the data first (see above)")
    parser.add_argument("--prometheus", default="prometheus", help="--demo: the binary")
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--dashboard", type=Path, default=HERE / "glupy-dashboard.json")
    parser.add_argument("--out", type=Path, default=HERE / "dashboard.png")
    parser.add_argument("--page-out", type=Path, help="--demo: also a screenshot of the live page")
    args = parser.parse_args()
    if args.demo:
        demo(args)
    elif args.prometheus_url:
        render(args.prometheus_url, args.out, args.minutes, args.dashboard)
    else:
        parser.error("--prometheus-url or --demo")


if __name__ == "__main__":
    main()
