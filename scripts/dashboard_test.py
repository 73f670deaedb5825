#!/usr/bin/python3
"""The dashboard in a real browser (headless Chromium from Debian, driven by Selenium).

Starts `hosttwin run` on a temporary data directory, starts a probe process that listens on a port,
loads each page, waits for live data and checks the DOM for real values: the hostname, the probe process
and its port, a chart point against the query API, live updates. Then it travels back to before the probe
started (the time slider, by keyboard) and checks the probe is gone from the tables, reopens that URL,
compares two moments in the "what changed" panel, and checks the narrow layout, dark mode, page weight
and the browser console. Screenshots go to --shots.

    scripts/dashboard_test.py --hosttwin .build/debug/hosttwin [--shots DIR]
"""
import argparse, calendar, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(base, path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    return body["data"] if isinstance(body, dict) and body.get("status") == "success" else body


def wait(what, fn, timeout=30, every=0.25):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # not there yet
            last = e
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")


def browser(width=1400, height=1800):
    o = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"]:
        o.add_argument(a)
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=o)


def wait_for_charts(d, timeout=30):
    """Waits until the host page has drawn its charts' first data."""
    wait("the host page's charts", lambda: d.execute_script("return document.querySelector('main').dataset.chartsReady") == "1", timeout=timeout)


def console_errors(d):
    return [l["message"] for l in d.get_log("browser") if l["level"] == "SEVERE"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosttwin", required=True)
    ap.add_argument("--shots", default=os.path.join(tempfile.gettempdir(), "hosttwin-dashboard-shots"))
    args = ap.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hosttwin-dashboard-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    twin = subprocess.Popen([args.hosttwin, "run", "--data-dir", os.path.join(work, "data"), "--listen", f"127.0.0.1:{port}",
                             "--interval", "1s", "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "run.log"), "w"))
    probe = None
    d = None
    try:
        wait("the twin's first ticks", lambda: get(base, "/healthz").get("ticks", 0) >= 3)
        hostname = get(base, "/api/v1/summary")["host"]["hostname"]
        time.sleep(2)
        before_probe = time.time()
        time.sleep(2)
        # The probe: python under another name (the kernel names a process after the file it executed).
        os.symlink(os.path.realpath(sys.executable), os.path.join(work, "htprobe"))
        probe = subprocess.Popen([os.path.join(work, "htprobe"), "-c",
                                  "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n"
                                  "print(s.getsockname()[1],flush=True)\ntime.sleep(900)"], stdout=subprocess.PIPE, text=True)
        probe_port = int(probe.stdout.readline())
        wait("the probe in the twin", lambda: any(e["attributes"].get("name") == "htprobe" for e in get(base, "/api/v1/twin/entities/processes")["entities"]))
        wait("the probe's port in the twin", lambda: any(e["attributes"].get("port") == probe_port for e in get(base, "/api/v1/twin/entities/listening_ports")["entities"]))
        print(f"twin on {base}, host {hostname}, probe pid {probe.pid} listening on {probe_port}", flush=True)

        d = browser()
        # Overview.
        d.get(base + "/")
        card = wait("the host card", lambda: d.find_element(By.CSS_SELECTOR, f'.card[data-host="{hostname}"] .row b'))
        check(d.find_element(By.CSS_SELECTOR, ".card h2").text == hostname, "overview: a card for the host, named " + hostname)
        cpu_text = wait("the CPU figure", lambda: d.find_elements(By.CSS_SELECTOR, ".card .row b")[0].text)
        check("%" in cpu_text and any(c.isdigit() for c in cpu_text), f"overview: CPU shows a value ({cpu_text})")
        d.save_screenshot(os.path.join(args.shots, "overview.png"))
        errs = console_errors(d); check(not errs, f"overview: no console errors {errs}")

        # Host page, live.
        d.get(base + "/host?range=5m")
        wait_for_charts(d)
        check(d.find_element(By.ID, "hostname").text == hostname, "host page: the hostname")
        points = {c.get_attribute("id"): int(c.get_attribute("data-points") or 0) for c in d.find_elements(By.CSS_SELECTOR, ".charts .chart")}
        check(len(points) == 7 and all(n > 0 for n in points.values()), f"host page: 7 charts, each with points {points}")
        check("Live" in d.find_element(By.ID, "mode").text, "host page: says it is live")
        # A chart point against the API.
        cpu = d.find_element(By.ID, "chart-memory")
        q, step = cpu.get_attribute("data-query"), cpu.get_attribute("data-step")
        t, v = int(cpu.get_attribute("data-last-time")), float(cpu.get_attribute("data-last-value"))
        r = get(base, "/api/v1/query_range", query=q, start=t / 1000, end=t / 1000, step=step + "s")["result"]
        series = sorted(r, key=lambda s: json.dumps(s["metric"], sort_keys=True))
        check(any(abs(float(s["values"][0][1]) - v) <= 1e-9 * max(1, abs(v)) for s in series), f"host page: the memory chart's last point {v} equals the API's value at {t}")
        # Hover: the tooltip shows the value of the point under the pointer.
        canvas = d.find_element(By.CSS_SELECTOR, "#chart-load canvas")
        ActionChains(d).move_to_element_with_offset(canvas, canvas.size["width"] // 2 - 5, 0).perform()
        tip_rows = wait("the hover tooltip", lambda: d.find_elements(By.CSS_SELECTOR, "#chart-load .chart-tip div"))
        tip_t, tip_v = int(tip_rows[0].get_attribute("data-time")), float(tip_rows[0].get_attribute("data-value"))
        load = d.find_element(By.ID, "chart-load")
        r = get(base, "/api/v1/query_range", query=load.get_attribute("data-query"), start=tip_t / 1000, end=tip_t / 1000, step=load.get_attribute("data-step") + "s")["result"]
        check(any(abs(float(s["values"][0][1]) - tip_v) <= 1e-9 * max(1, abs(tip_v)) for s in r), f"host page: hover shows {tip_v} at {tip_t}, as the API says")
        # The value axis: whole steps, distinct labels, the data inside (a quiet network's 0-1 B/s read "1 B/s" three times).
        axes = d.execute_async_script("""
            const done = arguments[arguments.length - 1];
            import('/assets/chart.js').then(({ axisTicks }) => done([[0, 1, 'bytes/s'], [0, 3000, 'bytes/s'], [12, 13.7, 'percent'],
                [0, 0.003, ''], [-3, 7, ''], [0, 5.2e9, 'bytes'], [0, 1e-9, '']].map(([lo, hi, u]) => [lo, hi, u, axisTicks(lo, hi, u)])));""")
        for lo, hi, unit, ticks in axes:
            vals, labels = ticks["values"], ticks["labels"]
            check(3 <= len(vals) <= 7 and vals[0] <= lo and vals[-1] >= hi and len(set(labels)) == len(labels),
                  f"host page: value axis over [{lo}, {hi}] {unit or 'plain'}: {labels}")
        # One definition of filesystem use: the fullest-filesystem tile is df's Use%, as the API summary (and `status`) say.
        tile = float(wait("the filesystem tile", lambda: d.find_element(By.CSS_SELECTOR, '.tile[data-tile="fs"]').get_attribute("data-value")))
        pseudo = {"tmpfs", "devtmpfs", "overlay", "squashfs", "ramfs", "proc", "sysfs", "nsfs", "autofs"}
        summary_fs = [f["used_percent"] for f in get(base, "/api/v1/summary")["summary"]["filesystems"] if f["fstype"] not in pseudo]
        check(bool(summary_fs) and abs(tile - max(summary_fs)) <= 0.5, f"host page: fullest filesystem {tile:.2f} % is the summary's df Use% {max(summary_fs or [0]):.2f} %")
        # Live: the charts move on without a reload.
        first = int(d.find_element(By.ID, "chart-cpu").get_attribute("data-last-time"))
        newer = wait("a live update", lambda: int(d.find_element(By.ID, "chart-cpu").get_attribute("data-last-time")) > first, timeout=15)
        check(bool(newer), "host page: the CPU chart received newer points from the live stream")
        # The probe in the process table (filtered by typing), its port in the ports tab.
        filt = d.find_element(By.ID, "filter")
        filt.send_keys("htprobe")
        rows = wait("the probe's row", lambda: [r for r in d.find_elements(By.CSS_SELECTOR, "#table tbody tr") if "htprobe" in r.text])
        check(str(probe.pid) in rows[0].text, f"processes: the probe (pid {probe.pid}) is listed")
        check("q=htprobe" in d.current_url, "the filter is in the URL")
        d.save_screenshot(os.path.join(args.shots, "host.png"))
        tab = d.find_element(By.CSS_SELECTOR, '[data-tab="processes"]')
        tab.send_keys(Keys.ARROW_RIGHT)  # keyboard: the next tab, Listening ports
        wait("the ports tab", lambda: "tab=listening_ports" in d.current_url)
        ports = wait("the ports table", lambda: d.find_elements(By.CSS_SELECTOR, '#table table[data-kind="listening_ports"] tbody tr'))
        check(any(str(probe_port) in r.text for r in ports), f"listening ports: {probe_port} is listed (reached with the arrow key)")
        errs = console_errors(d); check(not errs, f"host page: no console errors {errs}")

        # Time travel by keyboard: the slider's Home key goes to the oldest stored moment, before the probe.
        slider = d.find_element(By.ID, "slider")
        slider.send_keys(Keys.HOME)
        wait("the as-of URL", lambda: "at=" in d.current_url)
        at = urllib.parse.parse_qs(urllib.parse.urlparse(d.current_url).query)["at"][0]
        check(calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) < before_probe, f"time travel: as of {at}, before the probe started")
        check("As of" in d.find_element(By.ID, "mode").text, "time travel: the page says it shows the past")
        ports = wait("the ports table as of then", lambda: d.find_elements(By.CSS_SELECTOR, '#table table[data-kind="listening_ports"] tbody tr'))
        check(not any(str(probe_port) in r.text for r in ports) and len(ports) > 0, f"time travel: {probe_port} is not listed as of {at} ({len(ports)} ports)")
        d.find_element(By.CSS_SELECTOR, '[data-tab="processes"]').click()
        wait("the process table as of then", lambda: d.find_elements(By.CSS_SELECTOR, '#table table[data-kind="processes"]'))
        procs = d.find_elements(By.CSS_SELECTOR, "#table tbody tr")
        check(not any("htprobe" in r.text for r in procs), "time travel: the probe is not in the process table")
        d.save_screenshot(os.path.join(args.shots, "time-travel.png"))
        # The link reopens the same moment.
        shared = d.current_url
        d.get(shared)
        wait_for_charts(d)
        check(d.find_element(By.ID, "slider").get_attribute("value") == str(int(calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ"))) * 1000),
              "time travel: the shared link reopens the same moment")
        tbl = wait("the reopened table", lambda: d.find_elements(By.CSS_SELECTOR, '#table table[data-kind="processes"] tbody tr'))
        check(len(tbl) > 0 and not any("htprobe" in r.text for r in tbl), "time travel: the reopened link shows the same table")

        # What changed between before the probe and now.
        frm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before_probe))
        d.get(base + "/host?diff_from=" + frm + "&diff_to=now&range=5m")
        diff = wait("the diff", lambda: [e for e in d.find_elements(By.CSS_SELECTOR, "#diff li.added") if "htprobe" in e.text])
        check(bool(diff), "what changed: the probe appeared between the two moments")
        errs = console_errors(d); check(not errs, f"time travel: no console errors {errs}")

        # Page weight of the host page: its own files, and everything loaded until the first data.
        d.get(base + "/host")
        wait_for_charts(d)
        # Until the first data: what the table tab loads after the charts depends on the host's processes.
        wait("the process table", lambda: d.find_elements(By.CSS_SELECTOR, '#table table[data-kind="processes"]'))
        sizes = d.execute_script("""
            const nav = performance.getEntriesByType('navigation')[0];
            const first = Number(document.body.dataset.firstDataMs);
            const loaded = performance.getEntriesByType('resource');
            const res = loaded.filter(r => r.responseEnd <= first);
            const later = loaded.filter(r => r.responseEnd > first).reduce((n, r) => n + r.encodedBodySize, 0);
            const own = res.filter(r => r.name.includes('/assets/')).reduce((n, r) => n + r.encodedBodySize, 0) + nav.encodedBodySize;
            const all = res.reduce((n, r) => n + r.encodedBodySize, 0) + nav.encodedBodySize;
            const top = loaded.map(r => [r.encodedBodySize, r.name.replace(location.origin, '')]).sort((a, b) => b[0] - a[0]).slice(0, 4);
            return [own, all, first, top, later, document.querySelector('#rowcount')?.textContent];""")
        print(f"      host page: own files {sizes[0]} B, everything loaded until the first data {sizes[1]} B (after {sizes[2]} ms);"
              f" then {sizes[4]} B more for the process table ({sizes[5]}); the largest responses:", flush=True)
        for size, name in sizes[3]:
            print(f"        {size:>8} B  {name[:150]}", flush=True)
        check(sizes[1] <= 300 * 1024, f"host page: loads in <= 300 KB until its first data ({sizes[1]} B)")

        # Dark mode and the narrow screen.
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        d.get(base + "/host")
        wait_for_charts(d)
        bg = d.execute_script("return getComputedStyle(document.body).backgroundColor")
        rgb = [int(x) for x in bg[bg.index("(") + 1:bg.index(")")].split(",")[:3]]
        check(sum(rgb) < 150, f"dark mode: dark background ({bg})")
        d.save_screenshot(os.path.join(args.shots, "host-dark.png"))
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        d.set_window_size(390, 1600)
        d.get(base + "/host")
        wait_for_charts(d)
        over = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        check(over[0] <= over[1] + 1, f"narrow screen: no sideways scrolling (content {over[0]} px in {over[1]} px)")
        d.save_screenshot(os.path.join(args.shots, "host-narrow.png"))
        errs = console_errors(d); check(not errs, f"narrow/dark: no console errors {errs}")
        # Forecast and anomalies.
        d.set_window_size(1400, 1800)
        # A young twin forecasts once it holds a few whole minutes (1-minute steps).
        wait("a forecast from the API", lambda: get(base, "/api/v1/twin/forecast", query="node_memory_MemAvailable_bytes", horizon="1h", history="600s"), timeout=300, every=5)
        d.get(base + "/forecast")
        rows = wait("the exhaustion table", lambda: d.find_elements(By.CSS_SELECTOR, "#exhaustion tr[data-resource]"), timeout=40)
        check(any(r.get_attribute("data-resource") == "memory" for r in rows), "forecast: time to exhaustion of memory")
        fc = wait("the forecast chart", lambda: int(d.find_element(By.ID, "fc-chart").get_attribute("data-points") or 0) > 1)
        check(bool(fc), "forecast: history and forecast drawn")
        wait("the anomaly list", lambda: "series" in d.find_element(By.ID, "anomalous").text, timeout=40)
        d.save_screenshot(os.path.join(args.shots, "forecast.png"))
        errs = console_errors(d); check(not errs, f"forecast: no console errors {errs}")
        # Alerts: the built-in rules' health, the alerts now and as of a time before the twin began, a silence.
        subprocess.run([args.hosttwin, "silence", "add", "alertname=DashboardTest", "--comment", "dashboard test", "--for", "1h",
                        "--data-dir", os.path.join(work, "data")], check=True, stdout=subprocess.DEVNULL)
        d.get(base + "/alerts")
        rules = wait("the rules line", lambda: "rules in" in d.find_element(By.ID, "al-rules").text and d.find_element(By.ID, "al-rules").text, timeout=30)
        check(bool(rules) and "4 groups" in rules, f"alerts: the built-in rule groups listed ({rules})")
        check("Loading" not in d.find_element(By.ID, "al-active").text, "alerts: the active alerts table filled")
        silenced = wait("the silence listed", lambda: "alertname=DashboardTest" in d.find_element(By.ID, "al-silences").text, timeout=30)
        check(bool(silenced), "alerts: the silence added with `hosttwin silence add` is listed")
        d.save_screenshot(os.path.join(args.shots, "alerts.png"))
        d.get(base + "/alerts?at=2000-01-01T00:00:00Z")
        past = wait("alerts as of 2000", lambda: "No alert was pending or firing then" in d.find_element(By.ID, "al-active").text, timeout=30)
        check(bool(past), "alerts: time travel to before the twin shows none")
        errs = console_errors(d); check(not errs, f"alerts: no console errors {errs}")

    finally:
        if d:
            d.quit()
        if probe:
            probe.kill()
        twin.send_signal(signal.SIGTERM)
        try:
            rc = twin.wait(timeout=20)
            check(rc == 0, f"hosttwin run stopped cleanly (exit {rc})")
        except subprocess.TimeoutExpired:
            twin.kill()
            check(False, "hosttwin run stopped within 20 s of SIGTERM")
        shutil.rmtree(work, ignore_errors=True)
    signin_checks(args)
    print(f"screenshots in {args.shots}")
    if failures:
        print(f"{len(failures)} dashboard check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("dashboard: all checks passed")


def signin_checks(args):
    """A server that requires tokens: the page asks for one, then shows live data with it."""
    work = tempfile.mkdtemp(prefix="hosttwin-dashboard-auth-")
    data = os.path.join(work, "data")
    token = subprocess.run([args.hosttwin, "token", "create", "--role", "reader", "--name", "browser", "--data-dir", data],
                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    twin = subprocess.Popen([args.hosttwin, "run", "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--auth", "required",
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = None
    try:
        def health():
            with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                return json.load(r).get("ticks", 0) >= 3
        wait("the token-protected twin", health)
        d = browser()
        d.get(base + "/host?range=5m")
        field = wait("the sign-in form", lambda: d.find_element(By.ID, "token"))
        check("needs a token" in d.find_element(By.ID, "signin").text, "auth required: the page asks for a token")
        d.save_screenshot(os.path.join(args.shots, "signin.png"))
        field.send_keys("htw_000000000000_" + "0" * 64 + Keys.ENTER)
        wait("the refusal", lambda: "refused" in d.find_element(By.ID, "signin").text)
        check(True, "auth required: a wrong token is refused and the form says so")
        d.find_element(By.ID, "token").send_keys(token + Keys.ENTER)
        wait_for_charts(d)
        points = {c.get_attribute("id"): int(c.get_attribute("data-points") or 0) for c in d.find_elements(By.CSS_SELECTOR, ".charts .chart")}
        check(len(points) == 7 and all(n > 0 for n in points.values()), f"auth required: with the token, 7 charts with points {points}")
        cpu = d.find_element(By.ID, "chart-cpu")
        first = int(cpu.get_attribute("data-last-time") or 0)
        moved = wait("the live stream (fetch, with the token)", lambda: int(cpu.get_attribute("data-last-time") or 0) > first, timeout=30)
        check(bool(moved), "auth required: the live stream moves the CPU chart")
        d.save_screenshot(os.path.join(args.shots, "host-with-token.png"))
    except Exception as e:
        check(False, f"auth required: {e}")
    finally:
        if d:
            d.quit()
        twin.send_signal(signal.SIGTERM)
        twin.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
