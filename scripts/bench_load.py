#!/usr/bin/env python3
"""Helpers of scripts/bench-load.sh and scripts/bench-server-instructions.sh (standard library
only).

  start LOG PROBE_PORT -- CMD...   start CMD detached, logging to LOG; print "PID STARTUP_MS",
                                   the time from exec until GET /healthz on PROBE_PORT answers 200
  wait-ready PROBE_PORT SECONDS [PATH]
                                   wait until GET PATH (/readyz) answers 200
  bodies REVIEW_JSON DIR           write DIR/review.json (the review, compact as the API server
                                   sends it) and DIR/denied.json (the same with one address out of
                                   range: denied, one cause)
  free-port                        print a free TCP port of 127.0.0.1
  metric PROBE_PORT NAME           print the value of one metric of GET /metrics (empty if absent)
  deployed-args DEPLOYMENT_YAML    print the args of `serve` in the Deployment, less those the
                                   harness sets itself (addresses, files, shutdown times)
  h2load STDOUT LOG                print one JSON object: requests/s, failures and latency
                                   percentiles of one h2load run (from its --log-file)
  report RESULTS OUT_MD OUT_SVG    write the results table (Markdown) and the latency plot (SVG)
"""

import json
import math
import re
import socket
import subprocess
import sys
import time


def start(log_path, probe_port, cmd):
    """Starts the server and times it until /healthz answers."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with open(log_path, "ab") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = started + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with status {proc.returncode} before /healthz answered; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", probe_port), timeout=0.05) as s:
                s.sendall(request)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    ready = time.monotonic()
                    print(proc.pid, f"{(ready - started) * 1000:.1f}")
                    return
        except OSError:
            pass
        time.sleep(0.0005)
    proc.kill()
    sys.exit(f"/healthz did not answer within 10 s; see {log_path}")


def http_get(port, path):
    """Status and body of GET path on 127.0.0.1:port, or (0, b"") when unreachable."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


def wait_ready(port, seconds, path="/readyz"):
    """Waits until path answers 200 (/readyz: the --unique-addresses index is built)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if http_get(port, path)[0] == 200:
            return
        time.sleep(0.1)
    sys.exit(f"{path} on port {port} did not answer 200 within {seconds} s")


def bodies(review_path, out_dir):
    """The load's two reviews: the fixture compact, and the same denied for one cause."""
    with open(review_path) as f:
        review = json.load(f)
    compact = {"separators": (",", ":")}
    with open(f"{out_dir}/review.json", "w") as f:
        json.dump(review, f, **compact)
        f.write("\n")
    review["request"]["object"]["status"]["ips"][0] = "10.128.20.8/33"
    with open(f"{out_dir}/denied.json", "w") as f:
        json.dump(review, f, **compact)
        f.write("\n")


def free_port():
    """Prints a TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def metric(port, name):
    """Prints one unlabelled metric's value from /metrics, or nothing."""
    _, body = http_get(port, "/metrics")
    for line in body.decode(errors="replace").splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            print(value.strip())
            return


# Flags the harness sets itself, each with its value: where to listen, the certificate files,
# and shutdown times (so that a stop takes no seconds). None of them changes a review's cost.
HARNESS_FLAGS = {"--listen", "--probe-listen", "--tls-cert", "--tls-key", "--shutdown-delay", "--shutdown-timeout"}


def deployed_args(path):
    """The container's args in the Deployment (a YAML list of plain or quoted scalars, read
    without a YAML library), from `serve` on, less HARNESS_FLAGS and their values."""
    args, indent = None, None
    for raw in open(path):
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if args is None:
            if line.strip() == "args:":
                args = []
            continue
        stripped = line.lstrip()
        if not stripped.startswith("- "):
            break
        if indent is None:
            indent = len(line) - len(stripped)
        elif len(line) - len(stripped) != indent:
            break
        value = stripped[2:].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        args.append(value)
    if not args or args[0] != "serve":
        sys.exit(f"no `serve` args in {path}")
    out, skip = [], False
    for arg in args[1:]:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in HARNESS_FLAGS:
            skip = "=" not in arg
            continue
        out.append(arg)
    print(" ".join(out))


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def h2load(stdout_path, log_path):
    """Summarises one h2load run."""
    text = open(stdout_path).read()
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
        text,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (finished and counts and codes):
        sys.exit(f"cannot read h2load's summary in {stdout_path}")
    latencies = []
    non_2xx = 0
    for line in open(log_path):
        parts = line.split()
        if len(parts) < 3:
            continue
        if not parts[1].startswith("2"):
            non_2xx += 1
        latencies.append(int(parts[2]) / 1000.0)
    latencies.sort()
    print(json.dumps({
        "rps": float(finished.group(3)),
        "requests": int(counts.group(4)),
        "failed": int(counts.group(5)) + int(counts.group(6)) + int(counts.group(7)) + non_2xx,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "p999_ms": percentile(latencies, 99.9),
        "max_ms": latencies[-1] if latencies else float("nan"),
    }))


def load(results_path):
    """Load runs, server starts and peak memory, each a list of dicts."""
    kinds = {"run": [], "server": [], "peak": [], "meta": [], "log": []}
    for line in open(results_path):
        if line.strip():
            row = json.loads(line)
            kinds[row["kind"]].append(row)
    return kinds


def median(values):
    values = sorted(values)
    if not values:
        return float("nan")
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def fmt(v, digits=2):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


# Below this share of one CPU at saturation the server was waiting for requests: the load
# generator, not the server, bounded its requests/s.
CLIENT_BOUND_CPU = 0.9

SERVERS = ("product", "before", "unique", "deny", "deny-quiet", "floor", "skim")


def report(results_path, md_path, svg_path):
    kinds = load(results_path)
    runs, servers, peaks = kinds["run"], kinds["server"], kinds["peak"]
    protos = [p for p in ("h1", "h2") if any(r["proto"] == p for r in runs)]
    names = {"h1": "HTTP/1.1 keep-alive", "h2": "HTTP/2"}
    flags = kinds["meta"][0]["deployed_flags"] if kinds["meta"] else "?"

    sat, cost, cpu_share, rounds_of, least = {}, {}, {}, {}, {}
    for proto in protos:
        for server in SERVERS:
            rounds = [r for r in runs if r["proto"] == proto and r["server"] == server and r["mode"] == "saturation"]
            if not rounds:
                continue
            rounds_of[(proto, server)] = rounds
            sat[(proto, server)] = median([r["rps"] for r in rounds])
            cpu_share[(proto, server)] = median([r["server_cpu"] for r in rounds])
            cost[(proto, server)] = median([r["server_cpu"] * 1e6 / r["rps"] for r in rounds])
            # A round where the load generator (sharing the machine) could not keep the server
            # busy costs more per request (fewer requests per wake-up): the least is the round
            # nearest to the server's own cost.
            least[(proto, server)] = min(r["server_cpu"] * 1e6 / r["rps"] for r in rounds)

    # The headline first: server CPU per review at the deployed flags, floor / product.
    lines = []
    for proto in protos:
        if (proto, "product") not in cost or (proto, "floor") not in cost:
            continue
        floor, product = cost[(proto, "floor")], cost[(proto, "product")]
        lines.append(
            f"**{names[proto]}: server CPU per review at the deployed flags, floor / product = "
            f"{fmt(floor, 1)} µs / {fmt(product, 1)} µs = {fmt(floor / product)}** "
            f"(median of {len(rounds_of[(proto, 'product')])} saturation rounds; the least of each: "
            f"{fmt(least[(proto, 'floor')], 1)} µs / {fmt(least[(proto, 'product')], 1)} µs = "
            f"{fmt(least[(proto, 'floor')] / least[(proto, 'product')])})"
        )
    lines.append("")
    lines.append(f"Deployed flags: `serve {flags}` (manifests/base/deployment.yaml, less the harness's "
                 "addresses, files and shutdown times), no `RUST_LOG` (the default filter).")
    lines.append("")
    lines.append("| protocol | CPU per review (median of the rounds) | value | the least round of each |")
    lines.append("|---|---|---|---|")
    logs = {r["proto"]: r for r in kinds["log"]}
    for proto in protos:
        product = cost.get((proto, "product"))
        floor = cost.get((proto, "floor"))
        if (proto, "before") in cost and floor:
            lines.append(
                f"| {names[proto]} | before (BEFORE_BIN), floor / before | "
                f"{fmt(floor, 1)} µs / {fmt(cost[(proto, 'before')], 1)} µs = {fmt(floor / cost[(proto, 'before')])} | "
                f"{fmt(least[(proto, 'floor')] / least[(proto, 'before')])} |"
            )
        if (proto, "unique") in cost and product:
            u = cost[(proto, "unique")]
            lines.append(
                f"| {names[proto]} | --unique-addresses (claims indexed), unique / product | "
                f"{fmt(u, 1)} µs / {fmt(product, 1)} µs = {fmt(u / product)} ({(u / product - 1) * 100:+.1f} %) | "
                f"{(least[(proto, 'unique')] / least[(proto, 'product')] - 1) * 100:+.1f} % |"
            )
        if (proto, "deny") in cost and product:
            d = cost[(proto, "deny")]
            log = logs.get(proto, {})
            dropped = log.get("dropped_lines")
            lines.append(
                f"| {names[proto]} | every review denied (a line each within --request-log-limit, the rest counted), deny / product | "
                f"{fmt(d, 1)} µs / {fmt(product, 1)} µs = {fmt(d / product)} ({(d / product - 1) * 100:+.1f} %); "
                f"log lines dropped: {'n/a' if dropped is None else int(dropped)} of {log.get('log_lines', 'n/a')} written | "
                f"{(least[(proto, 'deny')] / least[(proto, 'product')] - 1) * 100:+.1f} % |"
            )
        if (proto, "deny-quiet") in cost and (proto, "deny") in cost and product:
            q, d = cost[(proto, "deny-quiet")], cost[(proto, "deny")]
            lines.append(
                f"| {names[proto]} | every review denied, no line (RUST_LOG=warn): deny-quiet / product; "
                f"the lines' cost per review, deny − deny-quiet | {fmt(q, 1)} µs / {fmt(product, 1)} µs = {fmt(q / product)} "
                f"({(q / product - 1) * 100:+.1f} %); {d - q:+.1f} µs a review | "
                f"{(least[(proto, 'deny-quiet')] / least[(proto, 'product')] - 1) * 100:+.1f} %; "
                f"{least[(proto, 'deny')] - least[(proto, 'deny-quiet')]:+.1f} µs a review |"
            )
    lines.append("")

    lines.append("| protocol | server | saturation req/s: median (rounds) | server CPU | CPU µs / request | p50 ms | p99 ms | p99.9 ms | failed |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for proto in protos:
        for server in SERVERS:
            rounds = rounds_of.get((proto, server))
            if not rounds:
                continue
            best = sorted(rounds, key=lambda r: r["rps"])[len(rounds) // 2]
            cpu = cpu_share[(proto, server)]
            bound = " (client-bound)" if cpu < CLIENT_BOUND_CPU else ""
            lines.append(
                f"| {names[proto]} | {server} | {fmt(sat[(proto, server)], 0)}{bound} "
                f"({', '.join(fmt(r['rps'], 0) for r in rounds)}) | {fmt(cpu * 100, 0)} % | "
                f"{fmt(cost[(proto, server)], 1)} | "
                f"{fmt(best['p50_ms'])} | {fmt(best['p99_ms'])} | {fmt(best['p999_ms'])} | "
                f"{sum(r['failed'] for r in rounds)} |"
            )
    lines.append("")
    lines.append(f"(client-bound: the server used less than {CLIENT_BOUND_CPU:.0%} of its CPU, so the load "
                 "generator on the other CPU set the requests/s; compare CPU per request instead.)")
    lines.append("")
    lines.append("| protocol | offered req/s | server | achieved req/s | p50 ms | p99 ms | p99.9 ms | failed |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for proto in protos:
        for r in sorted((r for r in runs if r["proto"] == proto and r["mode"] == "rate"),
                        key=lambda r: (r["offered"], r["server"] != "product")):
            lines.append(
                f"| {names[proto]} | {fmt(r['offered'], 0)} ({r['fraction']:.0%}) | {r['server']} | "
                f"{fmt(r['rps'], 0)} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['p999_ms'])} | {r['failed']} |"
            )
    lines.append("")
    lines.append("| server | start-up ms: median, max (starts) | idle RSS MiB | peak RSS MiB |")
    lines.append("|---|---|---|---|")
    for server in ("product", "floor"):
        rows = [s for s in servers if s["server"] == server]
        if not rows:
            continue
        starts = [s["startup_ms"] for s in rows]
        idle = max(s["idle_rss_kib"] for s in rows) / 1024
        peak = max((p["peak_rss_kib"] for p in peaks if p["server"] == server), default=0) / 1024
        lines.append(
            f"| {server} | {fmt(median(starts), 1)}, {fmt(max(starts), 1)} ({len(starts)}) | "
            f"{fmt(idle, 1)} | {fmt(peak, 1) if peak else 'n/a'} |"
        )
    lines.append("")
    lines.append("| ratio product / floor | value | target |")
    lines.append("|---|---|---|")
    for proto in protos:
        if (proto, "product") in sat and (proto, "floor") in sat:
            lines.append(
                f"| {names[proto]} server CPU per request at the deployed flags, floor / product | "
                f"{fmt(cost[(proto, 'floor')], 1)} µs / {fmt(cost[(proto, 'product')], 1)} µs = "
                f"{fmt(cost[(proto, 'floor')] / cost[(proto, 'product')])} | ≥ 0.75 |"
            )
            bound = [s for s in ("product", "floor") if cpu_share[(proto, s)] < CLIENT_BOUND_CPU]
            lines.append(
                f"| {names[proto]} saturation throughput | {fmt(sat[(proto, 'product')] / sat[(proto, 'floor')])}"
                f"{' (client-bound: ' + ', '.join(bound) + ')' if bound else ''} | (bounded by the load generator on two cores) |"
            )
        if (proto, "before") in sat and (proto, "floor") in sat:
            lines.append(
                f"| {names[proto]} saturation throughput, before / floor | "
                f"{fmt(sat[(proto, 'before')] / sat[(proto, 'floor')])} (CPU per request {fmt(cost[(proto, 'before')], 1)} µs) | (BEFORE_BIN, in the same rounds) |"
            )
        if (proto, "skim") in sat and (proto, "floor") in sat:
            lines.append(
                f"| {names[proto]} saturation throughput, skim / floor | "
                f"{fmt(sat[(proto, 'skim')] / sat[(proto, 'floor')])} | (the most a webhook reading the review with serde_json could reach) |"
            )
        half = {r["server"]: r for r in runs if r["proto"] == proto and r["mode"] == "rate" and abs(r["fraction"] - 0.5) < 1e-6}
        if "product" in half and "floor" in half:
            lines.append(
                f"| {names[proto]} p99 at half saturation | {fmt(half['product']['p99_ms'])} ms vs "
                f"{fmt(half['floor']['p99_ms'])} ms = {fmt(half['product']['p99_ms'] / half['floor']['p99_ms'])} | product p99 < 2 ms |"
            )
    for rows, key, label, target in ((peaks, "peak_rss_kib", "peak RSS", "< 50 MiB"), (servers, "idle_rss_kib", "idle RSS", "< 20 MiB")):
        prod = max((s[key] for s in rows if s["server"] == "product"), default=0)
        floor = max((s[key] for s in rows if s["server"] == "floor"), default=0)
        if prod and floor:
            lines.append(f"| {label} | {fmt(prod / 1024, 1)} MiB vs {fmt(floor / 1024, 1)} MiB = {fmt(prod / floor)} | product {target} |")
    starts = [s["startup_ms"] for s in servers if s["server"] == "product"]
    if starts:
        lines.append(f"| product start-up (max of {len(starts)}) | {fmt(max(starts), 1)} ms | < 100 ms |")

    with open(md_path, "w") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(runs, protos, names, svg_path)


def nice_step(raw):
    """1, 2 or 5 times a power of ten, at least `raw`."""
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def plot(runs, protos, names, svg_path):
    """Latency percentiles against offered load, one panel per protocol, log-scale latency."""
    width, height, panel_w = 980, 430, 440
    left, top, plot_w, plot_h = 70, 50, 340, 300
    colors = {"p50_ms": "#1f77b4", "p99_ms": "#d62728", "p999_ms": "#9467bd"}
    labels = {"p50_ms": "p50", "p99_ms": "p99", "p999_ms": "p99.9"}
    rate_runs = [r for r in runs if r["mode"] == "rate"]
    values = [r[k] for r in rate_runs for k in colors if r[k] > 0 and not math.isnan(r[k])]
    if not values:
        return
    y_lo = 10 ** math.floor(math.log10(min(values)))
    y_hi = 10 ** math.ceil(math.log10(max(values)))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">'
        "POST /validate latency against offered load (product solid, floor dashed)</text>",
    ]
    for i, proto in enumerate(protos):
        x0 = i * panel_w + left
        mine = [r for r in rate_runs if r["proto"] == proto]
        if not mine:
            continue
        step = nice_step(max(r["offered"] for r in mine) / 5)
        x_hi = step * math.ceil(max(r["offered"] for r in mine) * 1.05 / step)

        def px(v):
            return x0 + v / x_hi * plot_w

        def py(v):
            return top + plot_h - (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)) * plot_h

        out.append(f'<text x="{x0 + plot_w / 2}" y="{top - 10}" text-anchor="middle" font-size="13">{names[proto]}</text>')
        out.append(f'<rect x="{x0}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>')
        decade = y_lo
        while decade <= y_hi * 1.0001:
            for m in (1, 2, 5):
                v = decade * m
                if v > y_hi * 1.0001:
                    break
                y = py(v)
                out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
                out.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
            decade *= 10
        for k in range(round(x_hi / step) + 1):
            v = step * k
            x = px(v)
            out.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="black"/>')
            out.append(f'<text x="{x:.1f}" y="{top + plot_h + 17}" text-anchor="middle">{v:.0f}</text>')
        out.append(f'<text x="{x0 + plot_w / 2}" y="{top + plot_h + 35}" text-anchor="middle">offered load (requests/s)</text>')
        out.append(
            f'<text x="{x0 - 50}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'transform="rotate(-90 {x0 - 50} {top + plot_h / 2})">latency (ms, log scale)</text>'
        )
        for server, dash in (("product", ""), ("floor", ' stroke-dasharray="6,4"')):
            series = sorted((r for r in mine if r["server"] == server), key=lambda r: r["offered"])
            for key, color in colors.items():
                pts = [(px(r["offered"]), py(r[key])) for r in series if r[key] > 0]
                if len(pts) < 1:
                    continue
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
                for x, y in pts:
                    out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>')
    legend_x = width - 110
    for j, (key, color) in enumerate(colors.items()):
        y = top + 15 + j * 18
        out.append(f'<line x1="{legend_x}" y1="{y}" x2="{legend_x + 25}" y2="{y}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{legend_x + 30}" y="{y + 4}">{labels[key]}</text>')
    y = top + 15 + 3 * 18
    out.append(f'<line x1="{legend_x}" y1="{y}" x2="{legend_x + 25}" y2="{y}" stroke="black" stroke-width="2"/>')
    out.append(f'<text x="{legend_x + 30}" y="{y + 4}">product</text>')
    y += 18
    out.append(f'<line x1="{legend_x}" y1="{y}" x2="{legend_x + 25}" y2="{y}" stroke="black" stroke-width="2" stroke-dasharray="6,4"/>')
    out.append(f'<text x="{legend_x + 30}" y="{y + 4}">floor</text>')
    out.append("</svg>")
    with open(svg_path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(argv):
    if len(argv) >= 4 and argv[0] == "start" and "--" in argv:
        sep = argv.index("--")
        start(argv[1], int(argv[2]), argv[sep + 1:])
    elif len(argv) in (3, 4) and argv[0] == "wait-ready":
        wait_ready(int(argv[1]), float(argv[2]), *argv[3:])
    elif len(argv) == 3 and argv[0] == "bodies":
        bodies(argv[1], argv[2])
    elif len(argv) == 1 and argv[0] == "free-port":
        free_port()
    elif len(argv) == 3 and argv[0] == "metric":
        metric(int(argv[1]), argv[2])
    elif len(argv) == 2 and argv[0] == "deployed-args":
        deployed_args(argv[1])
    elif len(argv) == 3 and argv[0] == "h2load":
        h2load(argv[1], argv[2])
    elif len(argv) == 4 and argv[0] == "report":
        report(argv[1], argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
