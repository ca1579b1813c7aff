#!/usr/bin/env python3
"""Hostile reviews against the release server over HTTPS (standard library only).

Each shape is the typical status-update review (tests/fixtures captured-04, compact as the API
server sends it) with one list made long; `mutate-*` shapes go to /mutate, the others to
/validate. The script makes throwaway certificates with
`BIN certs`, starts `BIN serve` on loopback, posts every shape once to /validate, then the
normal review, and prints a Markdown table: HTTP status, verdict, causes and warnings listed,
answer bytes, and the time from the first byte sent to the last byte of the answer read.

  scripts/bench_hostile.py [--bin target/release/ipamclaim-webhook] [--items 300000]
                           [--field-validation Strict|Warn|Ignore] [--only NAME,...]
                           [--save DIR]

`--save DIR` writes each request body to DIR/NAME.json (to replay it, or to post it with curl).
Shapes larger than the server's 7 MiB body limit are cut down to fit and say so.
"""

import argparse
import copy
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPICAL = os.path.join(ROOT, "tests/fixtures/validate/captured-04-validate-update-status.request.json")
MAX_BODY = 7 * 1024 * 1024
TIME = "2026-11-26T23:00:00Z"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def splice(review, path, text):
    """The review's compact text with the value at `path` (keys from the review root) replaced
    by `text`, raw JSON: lists of 300,000 items are written directly, not through json."""
    marker = "@@SPLICE@@"
    r = copy.deepcopy(review)
    at = r
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = marker
    body = compact(r)
    return body.replace(json.dumps(marker), text, 1).encode()


def join(items):
    return "[" + ",".join(items) + "]"


def ipv4(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/24"


def condition(i):
    return (f'{{"type":"T{i}","status":"True","reason":"Allocated",'
            f'"lastTransitionTime":"{TIME}"}}')


def shapes(review, n):
    """(name, what it holds, body) for every shape, `n` items where the body limit allows."""
    obj = ["request", "object"]
    old = ["request", "oldObject"]
    out = []

    def add(name, what, body):
        out.append((name, what, body))

    add("ips-valid", f"status.ips: {n:,} distinct valid addresses",
        splice(review, obj + ["status", "ips"], join(f'"{ipv4(i)}"' for i in range(n))))
    add("ips-invalid", f"status.ips: {n:,} distinct invalid values",
        splice(review, obj + ["status", "ips"], join(f'"x{i}"' for i in range(n))))
    add("conditions-types", f"status.conditions: {n:,} items, distinct types, nothing else",
        splice(review, obj + ["status", "conditions"], join(f'{{"type":"T{i}"}}' for i in range(n))))
    fit = (MAX_BODY - 8192) // (len(condition(n)) + 1)
    m = min(n, fit)
    add("conditions-valid", f"status.conditions: {m:,} valid items, distinct types (as many as fit)",
        splice(review, obj + ["status", "conditions"], join(condition(i) for i in range(m))))
    spec = '{"network":"tenantred","interface":"pod16367aacb67",' + ",".join(
        f'"k{i}":0' for i in range(n)) + "}"
    add("spec-unknown-keys", f"spec: {n:,} unknown keys", splice(review, obj + ["spec"], spec))
    labels = "{" + ",".join(f'"l{i}":"v"' for i in range(n)) + "}"
    add("labels", f"metadata.labels: {n:,} labels", splice(review, obj + ["metadata", "labels"], labels))
    entry = '{"manager":"m","operation":"Update","apiVersion":"v1","time":"' + TIME + '","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}'
    m = min(n, (MAX_BODY - 8192) // (len(entry) + 1))
    add("managed-fields", f"metadata.managedFields: {m:,} entries (as many as fit)",
        splice(review, obj + ["metadata", "managedFields"], join([entry] * m)))

    # The worst ones found: the most errors, ratcheting's matching, long paths.
    m = (MAX_BODY - 8192) // 4
    add("ips-one-letter", f"status.ips: {m:,} times \"x\" (invalid and duplicate: two errors each)",
        splice(review, obj + ["status", "ips"], join(['"x"'] * m)))
    half = min(n, (MAX_BODY - 16384) // 2 // 8)
    bad = join(f'"x{i}"' for i in range(half))
    body = splice(review, obj + ["status", "ips"], bad)
    add("ips-invalid-ratcheted", f"status.ips: {half:,} invalid values, the same in oldObject (all ratcheted)",
        splice(json.loads(body), old + ["status"], '{"ips":' + bad + "}"))
    conds = [f'{{"type":"T{i}","reason":"bad reason"}}' for i in range((MAX_BODY - 16384) // 2 // 40)]
    body = splice(review, obj + ["status", "conditions"], join(conds))
    add("conditions-ratcheted", f"status.conditions: {len(conds):,} invalid, the same in oldObject in reverse order",
        splice(json.loads(body), old + ["status"],
               '{"ips":[],"conditions":' + join(reversed(conds)) + "}"))
    m = (MAX_BODY - 8192) // 3
    add("conditions-empty", f"status.conditions: {m:,} empty objects (four errors each)",
        splice(review, obj + ["status", "conditions"], join(["{}"] * m)))
    m = (MAX_BODY - 8192) // 10
    spec = '{"network":"tenantred","interface":"pod16367aacb67",' + ",".join(
        f'"{i:x}":0' for i in range(m)) + "}"
    add("spec-unknown-keys-max", f"spec: {m:,} unknown keys (as many as fit)", splice(review, obj + ["spec"], spec))
    add("number-7-MiB", "metadata.generation: a number of 7 million digits",
        splice(review, obj + ["metadata", "generation"], "9" * (MAX_BODY - 8192)))
    add("mutate-ips-non-canonical", f"/mutate, status.ips: {n:,} valid addresses none written canonically",
        splice(review, obj + ["status", "ips"], join(f'"2001:DB8::{i >> 16:x}:{i & 0xffff:x}"' for i in range(n))))
    long_key = "k" * (3 * 1024 * 1024)
    dups = ",".join(['"a":0'] * ((MAX_BODY - len(long_key) - 16384) // 6))
    fields = '{"' + long_key + '":{' + dups + "}}"
    entry = '{"manager":"m","operation":"Update","fieldsType":"FieldsV1","fieldsV1":' + fields + "}"
    add("duplicates-under-long-key", "managedFields[0].fieldsV1: a 3 MiB key holding 700,000 duplicate keys",
        splice(review, obj + ["metadata", "managedFields"], "[" + entry + "]"))
    # Distinct keys, each twice: every one a duplicate field of its own, named below the long key.
    pairs, size, i = [], 0, 0
    while size < MAX_BODY - len(long_key) - 16384:
        pair = f'"a{i}":0,"a{i}":0'
        pairs.append(pair)
        size += len(pair) + 1
        i += 1
    fields = '{"' + long_key + '":{' + ",".join(pairs[:-1]) + "}}"
    entry = '{"manager":"m","operation":"Update","fieldsType":"FieldsV1","fieldsV1":' + fields + "}"
    add("distinct-duplicates-under-long-key",
        f"managedFields[0].fieldsV1: a 3 MiB key holding {len(pairs) - 1:,} distinct keys, each twice",
        splice(review, obj + ["metadata", "managedFields"], "[" + entry + "]"))
    return out


def post(port, ca, body, timeout=120, path="/validate"):
    context = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    conn.connect()
    started = time.monotonic()
    conn.request("POST", path + "?timeout=10s", body=body,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.monotonic() - started
    conn.close()
    return resp.status, data, elapsed


def describe(status, data):
    if status != 200:
        return f"HTTP {status}", "", "", ""
    r = json.loads(data)["response"]
    st = r.get("status") or {}
    verdict = "allowed" if r["allowed"] else f"denied {st.get('code')}"
    causes = len((st.get("details") or {}).get("causes") or [])
    return verdict, str(causes), str(len(r.get("warnings") or [])), st.get("message", "")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/ipamclaim-webhook"))
    p.add_argument("--items", type=int, default=300_000)
    p.add_argument("--field-validation", default=None)
    p.add_argument("--only", default="")
    p.add_argument("--save", default="")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for an answer")
    args = p.parse_args()

    review = json.load(open(TYPICAL))
    normal = compact(review).encode()
    only = set(filter(None, args.only.split(",")))
    cases = [c for c in shapes(review, args.items) if not only or c[0] in only]

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([args.bin, "certs", "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ca = os.path.join(tmp, "ca.crt")
        print(f"server: {args.bin} serve, field validation {args.field_validation or 'default'}; "
              "a fresh server per shape (peak RSS is its VmHWM after both requests)")
        print()
        print("| shape | body bytes | answer | causes | warnings | answer bytes | seconds | normal review after | peak RSS MiB |")
        print("|---|---:|---|---:|---:|---:|---:|---|---:|")
        for name, what, body in cases:
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                with open(os.path.join(args.save, name + ".json"), "wb") as f:
                    f.write(body)
            server, port = start(args, tmp)
            try:
                try:
                    path = "/mutate" if name.startswith("mutate-") else "/validate"
                    status, data, elapsed = post(port, ca, body, args.timeout, path)
                    verdict, causes, warnings, _ = describe(status, data)
                    size, secs = f"{len(data):,}", f"{elapsed:.3f}"
                except (OSError, http.client.HTTPException) as e:
                    verdict, causes, warnings, size, secs = f"no answer: {e}", "", "", "", ""
                n_status, n_data, n_elapsed = post(port, ca, normal)
                n_verdict = describe(n_status, n_data)[0]
                rss = peak_rss_mib(server.pid)
            finally:
                stop(server)
            print(f"| {name}: {what} | {len(body):,} | {verdict} | {causes} | {warnings} | {size} | {secs} "
                  f"| {n_verdict}, {n_elapsed * 1000:.1f} ms | {rss} |", flush=True)


def start(args, tmp):
    """Starts the server on free loopback ports and waits until it accepts connections."""
    port, probe = free_port(), free_port()
    cmd = [args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--probe-listen", f"127.0.0.1:{probe}",
           "--tls-cert", os.path.join(tmp, "tls.crt"), "--tls-key", os.path.join(tmp, "tls.key")]
    if args.field_validation:
        cmd += ["--field-validation", args.field_validation]
    env = dict(os.environ, RUST_LOG="warn")
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop(server)
                sys.exit("the server did not start")
            time.sleep(0.05)


def stop(server):
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def peak_rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return f"{int(line.split()[1]) / 1024:.0f}"
    except OSError:
        pass
    return "?"


if __name__ == "__main__":
    main()
