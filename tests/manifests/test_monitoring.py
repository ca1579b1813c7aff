"""Checks of the monitoring component, manifests/components/monitoring (issue 15).

1. the base, the cert-manager and the openshift overlays render with the component added, and
   without it the base is unchanged: the component only adds its objects and the Service's
   metrics port;
2. the scrape path holds together: the ServiceMonitor selects the webhook Service, scrapes a
   named port of it that leads to the container's probe port (where `serve` answers /metrics),
   the NetworkPolicy admits that port, and the job label it produces is the one every rule and
   panel selects;
3. the alerts: `promtool check rules` on the PrometheusRule as rendered, `promtool test rules`
   with tests/manifests/monitoring/alerts_test.yaml on it, every alert with severity, summary,
   description and a runbook_url that leads to a heading of docs/, a firing and a non-firing
   unit test for every alert (and the unit tests fail when an alert is broken), and the latency
   threshold at half of the webhook configurations' timeoutSeconds and on a histogram bound;
4. the dashboard: valid JSON, every query parses (promtool check rules on a generated rule
   file), every query returns data on series shaped like the live server's (promtool test rules
   on them), and it shows what the issue asks for;
5. against a live server (the real binary, started here on loopback with --unique-addresses,
   its watch pointed by a kubeconfig at a stand-in API server written below, and made to count
   every kind of request): every `ipamclaim_webhook_*` metric and every label a rule, a panel
   or a unit-test series names is one the server exports, and every family it exports is on
   the dashboard. A second live server, without the flag, exports none of the index families,
   and the --unique-addresses alerts never fire on its series. Nothing here keeps a list of
   metric names.

promtool comes from Debian's `prometheus` package; run.sh installs it when it is missing.
These tests fail, never skip, without it.
"""

import base64
import copy
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import yaml

import test_manifests as tm

COMPONENT = os.path.join(tm.MANIFESTS, "components", "monitoring")
ALERT_TESTS = os.path.join(tm.ROOT, "tests", "manifests", "monitoring", "alerts_test.yaml")
CAPTURED = os.path.join(tm.ROOT, "tests", "fixtures", "captured")
DOCS = os.path.join(tm.ROOT, "docs")
PREFIX = "ipamclaim_webhook_"
MONITORING_API = "monitoring.coreos.com/v1"
SEVERITIES = {"warning", "critical"}
# What the component is rendered with: the base and the overlays that need no preparation.
OVERLAYS = ("base", "cert-manager", "openshift")

# Labels Prometheus adds to every series of a ServiceMonitor target (the Prometheus Operator's
# relabelling): allowed in selectors besides the labels the server exports.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

# Grafana's built-in interval variables and the dashboard's own, with values PromQL accepts:
# promtool sees a query exactly as Grafana sends it once it has filled these in. Any other
# `$variable` is a failure rather than a guess.
GRAFANA_VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "namespace": tm.NAMESPACE,
}

# ServiceMonitor fields we may use (monitoring.coreos.com/v1): kubernetes-validate has no schema
# for custom resources, so a typo (`endpoint:`, `scrapeInterval:`) would otherwise only show up
# as a scrape that never happens.
SERVICE_MONITOR_FIELDS = {
    "": {"jobLabel", "targetLabels", "podTargetLabels", "endpoints", "selector",
         "namespaceSelector", "sampleLimit", "scrapeProtocols", "targetLimit", "labelLimit",
         "labelNameLengthLimit", "labelValueLengthLimit", "keepDroppedTargets",
         "attachMetadata", "scrapeClass", "bodySizeLimit", "fallbackScrapeProtocol",
         "selectorMechanism", "serviceDiscoveryRole", "scrapeClassicHistograms",
         "convertClassicHistogramsToNHCB", "nativeHistogramBucketLimit",
         "nativeHistogramMinBucketFactor"},
    "endpoints": {"port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
                  "tlsConfig", "bearerTokenFile", "bearerTokenSecret", "authorization",
                  "honorLabels", "honorTimestamps", "trackTimestampsStaleness", "basicAuth",
                  "oauth2", "metricRelabelings", "relabelings", "proxyUrl", "noProxy",
                  "proxyFromEnvironment", "proxyConnectHeader", "followRedirects",
                  "enableHttp2", "filterRunning"},
}
PROMETHEUS_RULE_FIELDS = {"": {"groups"},
                          "groups": {"name", "interval", "rules", "limit", "partial_response_strategy",
                                     "query_offset", "labels"}}


# === promtool ===


def promtool():
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool is required (Debian package prometheus; "
                             "tests/manifests/run.sh installs it when it runs as root)")
    return path


def run_promtool(*args, cwd=None):
    run = subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=cwd,
                         timeout=120)
    return run.returncode, (run.stdout + run.stderr).strip()


# === rendering ===


class Monitored:
    """Rendered once per run: the base, the cert-manager and the openshift overlays, each with
    the component, from a throwaway copy of manifests/; and one scrape of each live server: with
    --unique-addresses (the one the names are checked against, it exports every family) and
    without it."""

    tmp = None
    docs = {}
    errors = {}
    scrape = None
    scrape_error = None
    plain_scrape = None
    plain_error = None
    watch_requests = None
    probe_addr = None

    @classmethod
    def setup(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ipamclaim-monitoring-")
        copy_dir = os.path.join(cls.tmp, "manifests")
        shutil.copytree(tm.MANIFESTS, copy_dir, ignore=shutil.ignore_patterns(
            "cabundle-patch.yaml", "*.crt", "*.key", "*.pem"))
        for name, resource in (("base", "../../base"), ("cert-manager", "../cert-manager"),
                               ("openshift", "../openshift")):
            overlay = os.path.join(copy_dir, "overlays", f"{name}-monitored")
            os.mkdir(overlay)
            with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
                yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                "kind": "Kustomization", "resources": [resource],
                                "components": ["../../components/monitoring"]}, f)
            cls.docs[name], cls.errors[name] = tm.kustomize(overlay)
        cls.docs["base-alone"], cls.errors["base-alone"] = tm.kustomize(
            os.path.join(copy_dir, "base"))
        live_errors = (AssertionError, OSError, subprocess.SubprocessError, urllib.error.URLError)
        try:
            cls.plain_scrape = LiveServer(os.path.join(cls.tmp, "plain")).scrape()
        except live_errors as e:
            cls.plain_error = str(e)
        api = None
        try:
            api = StandInAPI(os.path.join(cls.tmp, "api"), STANDIN_CLAIMS)
            cls.scrape = LiveServer(os.path.join(cls.tmp, "unique"), api).scrape()
        except live_errors as e:
            cls.scrape_error = str(e)
        finally:
            if api:
                cls.watch_requests = api.requests()
                api.stop()

    @classmethod
    def teardown(cls):
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def get(cls, test, name):
        if cls.docs.get(name) is None:
            test.fail(f"{name} with the monitoring component did not render: {cls.errors.get(name)}")
        return cls.docs[name]

    @classmethod
    def live(cls, test):
        if cls.scrape is None:
            test.fail(f"the live server could not be scraped: {cls.scrape_error}")
        return cls.scrape

    @classmethod
    def plain(cls, test):
        if cls.plain_scrape is None:
            test.fail(f"the live server without --unique-addresses could not be scraped: "
                      f"{cls.plain_error}")
        return cls.plain_scrape


def setUpModule():
    Monitored.setup()


def tearDownModule():
    Monitored.teardown()


def one(test, docs, kind, api=None):
    found = [d for d in docs if d["kind"] == kind and (api is None or d["apiVersion"] == api)]
    test.assertEqual(len(found), 1, f"expected one {kind}, found {len(found)}")
    return found[0]


def webhook_service(docs):
    return next(s for s in tm.find(docs, "Service") if s["metadata"]["name"] == tm.SERVICE)


def prometheus_rule(docs):
    return next(d for d in docs if d["kind"] == "PrometheusRule")


def dashboard_of(docs):
    maps = [c for c in tm.find(docs, "ConfigMap")
            if (c["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    if len(maps) != 1 or len(maps[0].get("data") or {}) != 1:
        raise AssertionError(f"expected one grafana_dashboard ConfigMap with one file, found {maps}")
    (name, text), = maps[0]["data"].items()
    return name, text


def alert_rules(docs):
    return [r for g in prometheus_rule(docs)["spec"]["groups"] for r in g["rules"]]


def write_rules(docs, directory, mutate=None):
    """Writes the rendered PrometheusRule's spec as the rule file promtool reads."""
    spec = copy.deepcopy(prometheus_rule(docs)["spec"])
    if mutate:
        mutate(spec)
    path = os.path.join(directory, "alerts.rules.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False)
    return path


# === the live server ===


class LiveServer:
    """The debug binary serving on loopback with throwaway certificates from `certs`, under
    --enforcement Warn so that one server counts every family: allowed, would_deny (an invalid
    claim), schema drift (an unknown field, under serve's default --field-validation Warn),
    denied (a review of another resource is refused in every mode) and refused (a body that is
    not a review, a wrong media type), on both webhooks.

    Given a StandInAPI, it runs with --unique-addresses and a kubeconfig for it, and the index
    is made to move too: the first list is indexed (/readyz passes), the first watch fails
    (410: a watch error, and a re-list), a review conflicts with a listed claim, another is
    admitted and reserved (the stand-in never shows it), and the open watch is ended as the API
    server ends every watch after a few minutes (a renewal, not an error)."""

    def __init__(self, directory, api=None):
        self.dir = directory
        self.api = api
        os.makedirs(directory)

    def scrape(self):
        certs = os.path.join(self.dir, "certs")
        run = subprocess.run([tm.BIN, "certs", "--out", certs], capture_output=True, text=True)
        if run.returncode != 0:
            raise AssertionError(f"{tm.BIN} certs failed: {run.stderr.strip()}")
        unique = []
        if self.api:
            # A reservation outlives any pause of a loaded machine between review and scrape.
            unique = ["--unique-addresses", "--kubeconfig", self.api.kubeconfig(self.dir),
                      "--reservation-ttl", "10m", "--reservation-namespace", tm.NAMESPACE]
        log_path = os.path.join(self.dir, "server.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [tm.BIN, "serve", "--listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0",
                 "--tls-cert", os.path.join(certs, "tls.crt"),
                 "--tls-key", os.path.join(certs, "tls.key"),
                 "--enforcement", "Warn", "--log-format", "json", "--workers", "1",
                 "--shutdown-delay", "0", "--shutdown-timeout", "2", *unique],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                # Loopback only: no proxy (kube-rs honours HTTPS_PROXY) and no other cluster.
                env={k: v for k, v in os.environ.items()
                     if not k.startswith("IPAMCLAIM_WEBHOOK_") and k != "KUBECONFIG"
                     and not k.lower().endswith("_proxy")})
        try:
            listen, probe = self.wait_for_addresses(proc, log_path)
            ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
            # No proxy, whatever the environment says: loopback only.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                 urllib.request.HTTPSHandler(context=ctx))
            if self.api:
                self.wait_for_index(opener, f"http://{probe}", proc, log_path)
            self.exercise(opener, f"https://{listen}")
            if self.api:
                self.exercise_index(opener, f"https://{listen}")
                # Ended cleanly, as the API server ends each watch: resumed, never counted.
                watches = self.api.count("watch")
                self.api.end_watches()
                self.api.wait(lambda: self.api.count("watch") > watches and self.api.holding,
                              "the watch to resume after its normal end")
            with opener.open(f"http://{probe}/metrics", timeout=10) as r:
                text = r.read().decode()
            if self.api:
                Monitored.probe_addr = probe
            return Exposition(text)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @staticmethod
    def wait_for_addresses(proc, log_path, limit=30):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with open(log_path) as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("message") == "serving":
                        return entry["listen"], entry["probe_listen"]
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(log_path) as f:
            raise AssertionError(f"the server did not start: {f.read()[-2000:]}")

    def wait_for_index(self, opener, probe, proc, log_path, limit=30):
        """Until /readyz passes (the first list is indexed) and the watch, after its first
        attempt failed with 410 and the claims were listed again, is held open."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with opener.open(f"{probe}/readyz", timeout=10) as r:
                    ready = r.status == 200
            except urllib.error.HTTPError:
                ready = False
            if ready and self.api.holding:
                return
            time.sleep(0.05)
        with open(log_path) as f:
            raise AssertionError(f"the index did not get ready and watching ({self.api.requests()}): "
                                 f"{f.read()[-2000:]}")

    @staticmethod
    def post(opener, url, body, content_type="application/json"):
        req = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": content_type})
        try:
            with opener.open(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b""

    @staticmethod
    def review(name):
        with open(os.path.join(CAPTURED, name)) as f:
            return json.load(f)

    @classmethod
    def exercise(cls, opener, base):
        valid = cls.review("02-validate-create.json")
        invalid = copy.deepcopy(valid)
        invalid["request"]["object"]["spec"]["interface"] = "a/b"
        # serve's default --field-validation Warn: admitted, counted as schema drift.
        drifted = copy.deepcopy(valid)
        drifted["request"]["object"]["spec"]["macRequest"] = "02:00:00:00:00:01"
        other = copy.deepcopy(valid)
        other["request"]["resource"]["resource"] = "pods"
        other["request"]["kind"]["kind"] = "Pod"
        calls = [
            ("/validate", json.dumps(valid), "application/json", 200),
            ("/validate", json.dumps(invalid), "application/json", 200),
            ("/validate", json.dumps(drifted), "application/json", 200),
            ("/validate", json.dumps(other), "application/json", 200),
            ("/mutate", json.dumps(cls.review("01-mutate-create.json")), "application/json", 200),
            ("/mutate", "not json", "application/json", 400),
            ("/validate", "{}", "text/plain", 415),
        ]
        for path, body, content_type, want in calls:
            status, _ = cls.post(opener, base + path, body, content_type)
            if status != want:
                raise AssertionError(f"POST {path} answered {status}, expected {want}")

    @classmethod
    def exercise_index(cls, opener, base):
        """A CREATE asking for an address a listed claim holds (a conflict: admitted with a
        warning under Warn), and one asking for a free address (admitted and reserved)."""
        def create(name, ip):
            review = copy.deepcopy(cls.review("02-validate-create.json"))
            request = review["request"]
            request["uid"] = f"uid-{name}"
            request["name"] = request["object"]["metadata"]["name"] = name
            request["object"]["metadata"]["uid"] = f"claim-{name}"
            request["object"]["spec"]["network"] = "red"
            request["object"]["spec"]["ipRequests"] = [ip]
            return json.dumps(review)

        for name, ip, conflict in (("vm-z.red", "10.0.0.5/24", True),
                                   ("vm-new.red", "10.0.0.77/24", False)):
            status, body = cls.post(opener, base + "/validate", create(name, ip))
            if status != 200:
                raise AssertionError(f"POST /validate of {name} answered {status}")
            warnings = json.loads(body)["response"].get("warnings") or []
            if conflict != any("already allocated" in w for w in warnings):
                raise AssertionError(f"{name} asking for {ip}: warnings {warnings}")


# === a stand-in for the Kubernetes API server ===


# What the stand-in lists: two claims on network red holding three addresses; the live server
# judges the reviews of exercise_index against them.
STANDIN_CLAIMS = [
    ("ns1", "vm-b.red", "red", ["10.0.0.5/24", "fd00:1ed::5/64"]),
    ("ns2", "vm-x.red", "red", ["10.0.0.50/24"]),
]


class StandInAPI:
    """As much of the Kubernetes API server as `serve --unique-addresses` uses, on loopback over
    TLS (a certificate from `certs` for 127.0.0.1; its CA goes into the kubeconfig with a bearer
    token, and anything else is answered 401): GET of IPAMClaims over all namespaces as a list
    (one page: an IPAMClaimList with its resourceVersion) and as a watch (`watch=true`), a
    chunked stream of events. The first watch gets what the API server sends for an expired
    version, an ERROR event with a 410 Status, and ends; later ones get a BOOKMARK and are held
    open until end_watches() ends them cleanly. It records every request."""

    PATH = "/apis/k8s.cni.cncf.io/v1alpha1/ipamclaims"
    TOKEN = "stand-in-token"

    def __init__(self, directory, claims):
        self.dir = directory
        os.makedirs(directory)
        self.rv = 100
        self.items = [self.claim(i, *c) for i, c in enumerate(claims)]
        self.changed = threading.Condition()
        self.served = []  # (verb, query, status)
        self.leases = {}  # reservation Leases by name
        self.lease_creates = []  # (name, status)
        self.epoch = 0
        self.holding = False
        self.stopping = False
        certs = os.path.join(directory, "certs")
        run = subprocess.run([tm.BIN, "certs", "--out", certs, "--ip", "127.0.0.1"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise AssertionError(f"{tm.BIN} certs failed: {run.stderr.strip()}")
        self.ca = os.path.join(certs, "ca.crt")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(os.path.join(certs, "tls.crt"), os.path.join(certs, "tls.key"))
        self.server = _TLSServer(("127.0.0.1", 0), _StandInHandler, tls, self)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def claim(self, i, namespace, name, network, ips):
        return {"apiVersion": "k8s.cni.cncf.io/v1alpha1", "kind": "IPAMClaim",
                "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{i}",
                             "resourceVersion": str(10 + i), "generation": 1,
                             "creationTimestamp": "2026-11-26T23:44:31Z"},
                "spec": {"network": network, "interface": "pod16367aacb67"},
                "status": {"ips": ips, "ownerPod": {"name": f"virt-launcher-{name}"}}}

    def kubeconfig(self, directory):
        host, port = self.server.server_address
        with open(self.ca, "rb") as f:
            ca = base64.b64encode(f.read()).decode()
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
                  "clusters": [{"name": "stand-in", "cluster": {
                      "server": f"https://{host}:{port}", "certificate-authority-data": ca}}],
                  "users": [{"name": "webhook", "user": {"token": self.TOKEN}}],
                  "contexts": [{"name": "stand-in",
                                "context": {"cluster": "stand-in", "user": "webhook"}}]}
        path = os.path.join(directory, "kubeconfig")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        return path

    def record(self, verb, query, status):
        with self.changed:
            self.served.append((verb, query, status))
            self.changed.notify_all()

    def requests(self):
        with self.changed:
            return list(self.served)

    def count(self, verb):
        return sum(1 for v, _, _ in self.requests() if v == verb)

    def wait(self, condition, what, limit=30):
        deadline = time.monotonic() + limit
        with self.changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}: {self.served}")
                self.changed.wait(min(left, 0.5))

    def end_watches(self):
        with self.changed:
            self.epoch += 1
            self.holding = False
            self.changed.notify_all()

    def stop(self):
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def list(self, handler, query):
        self.record("list", query, 200)
        handler.answer(200, {"apiVersion": "k8s.cni.cncf.io/v1alpha1", "kind": "IPAMClaimList",
                             "metadata": {"resourceVersion": str(self.rv), "continue": ""},
                             "items": self.items})

    def watch(self, handler, query):
        first = self.count("watch") == 0
        self.record("watch", query, 410 if first else 200)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        if first:
            handler.chunk({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": f"too old resource version: {query.get('resourceVersion')} ({self.rv})",
                "reason": "Expired", "code": 410}})
        else:
            handler.chunk({"type": "BOOKMARK", "object": {
                "kind": "IPAMClaim", "apiVersion": "k8s.cni.cncf.io/v1alpha1",
                "metadata": {"resourceVersion": str(self.rv)}}})
            with self.changed:
                epoch = self.epoch
                self.holding = True
                self.changed.notify_all()
                while self.epoch == epoch and not self.stopping:
                    self.changed.wait(0.5)
        handler.wfile.write(b"0\r\n\r\n")


class _TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """One thread per connection; the TLS handshake in that thread, not the accepting one."""

    daemon_threads = True

    def __init__(self, address, handler, tls, api):
        self.tls = tls
        self.api = api
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except OSError:
            pass  # the client went away (the server under test stopping)
        finally:
            conn.close()


class _StandInHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, event):
        data = (json.dumps(event) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def failure(self, code, reason, message):
        self.answer(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason,
                           "code": code})

    def do_POST(self):
        """The create of a reservation Lease (DESIGN §9): stored with a uid, a
        resourceVersion and a creationTimestamp; 409 AlreadyExists for a name taken."""
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        prefix = f"/apis/coordination.k8s.io/v1/namespaces/{tm.NAMESPACE}/leases"
        if self.headers.get("Authorization") != f"Bearer {api.TOKEN}":
            api.record("unauthorized", {}, 401)
            self.failure(401, "Unauthorized", "Unauthorized")
        elif url.path != prefix or not isinstance(body, dict):
            api.record(url.path, {}, 404)
            self.failure(404, "NotFound", "the server could not find the requested resource")
        else:
            name = body["metadata"]["name"]
            with api.changed:
                taken = name in api.leases
                if not taken:
                    # Versions of their own: the watch's sequence stays the claims'.
                    version = 1000 + len(api.leases)
                    body["metadata"].update(namespace=tm.NAMESPACE, uid=f"lease-{version}",
                                            resourceVersion=str(version),
                                            creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                            time.gmtime()))
                    api.leases[name] = body
                # Apart from `served`, which holds the watch's requests in order.
                api.lease_creates.append((name, 409 if taken else 201))
            if taken:
                self.failure(409, "AlreadyExists",
                             f'leases.coordination.k8s.io "{name}" already exists')
            else:
                self.answer(201, body)

    def do_GET(self):
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if self.headers.get("Authorization") != f"Bearer {api.TOKEN}":
            api.record("unauthorized", query, 401)
            self.failure(401, "Unauthorized", "Unauthorized")
        elif url.path != api.PATH:
            api.record(url.path, query, 404)
            self.failure(404, "NotFound", "the server could not find the requested resource")
        elif query.get("watch") in ("true", "1"):
            api.watch(self, query)
        else:
            api.list(self, query)


class Exposition:
    """The Prometheus text format as the server prints it. A family is known by its `# TYPE`
    (and `# HELP`) lines even when it has no sample yet; its sample names follow from its type
    (a histogram exports _bucket, _sum and _count, never its bare name)."""

    SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+\S+")
    LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.samples = {}  # sample name -> [labels]
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                self.types[name] = kind.strip()
            elif line.startswith("# HELP "):
                self.types.setdefault(line.split(None, 3)[2], "untyped")
            elif line and not line.startswith("#"):
                m = self.SAMPLE.match(line)
                if not m:
                    raise AssertionError(f"unparsable exposition line: {line!r}")
                self.samples.setdefault(m.group(1), []).append(
                    dict(self.LABEL.findall(m.group(2) or "")))

    def family_names(self, family):
        kind = self.types[family]
        if kind == "histogram":
            return {family + s for s in ("_bucket", "_sum", "_count")}
        if kind == "summary":
            return {family, family + "_sum", family + "_count"}
        if kind == "counter" and not family.endswith("_total"):
            return {family + "_total"}  # OpenMetrics names the family without _total
        return {family}

    def names(self):
        """Every series name a query can select."""
        names = set(self.samples)
        for family in self.types:
            names |= self.family_names(family)
        return names

    def labels(self, name):
        """Label names of the series `name` (a histogram's _bucket has `le`)."""
        found = {k for labels in self.samples.get(name, []) for k in labels}
        return found | ({"le"} if name.endswith("_bucket") else set())

    def bucket_bounds(self, name):
        return sorted(float(labels["le"]) for labels in self.samples.get(name, [])
                      if labels.get("le") not in (None, "+Inf"))


# === PromQL helpers ===


NAME = re.compile(r"(?<![A-Za-z0-9_:])" + PREFIX + r"[A-Za-z0-9_:]*")
SELECTOR = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"^\s*label_values\s*\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S)
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def substitute(expr):
    """Fills Grafana's variables in; raises on one it does not know."""
    def value(m):
        if m.group(1) not in GRAFANA_VARIABLES:
            raise AssertionError(f"unknown dashboard variable ${m.group(1)} in {expr!r}")
        return GRAFANA_VARIABLES[m.group(1)]
    return VARIABLE.sub(value, expr)


def unknown_metrics(queries, exposition):
    """Every `ipamclaim_webhook_*` name the queries use that the server does not export."""
    exported = exposition.names()
    return sorted({f"{where}: {name}" for where, q in queries for name in NAME.findall(q)
                   if name not in exported})


def unknown_labels(queries, exposition):
    """Label names in selectors of our metrics and in by/without/on clauses that no series
    of the server (nor Prometheus' target labels) carries."""
    everything = TARGET_LABELS | {"le"} | {k for name in exposition.samples
                                          for k in exposition.labels(name)}
    bad = set()
    for where, q in queries:
        for name, matchers in SELECTOR.findall(q):
            known = TARGET_LABELS | exposition.labels(name) if name.startswith(PREFIX) else None
            for label in MATCHER.findall(matchers):
                if known is not None and label not in known and label != "__name__":
                    bad.add(f"{where}: {name} has no label {label}")
        for group in GROUPING.findall(q):
            for label in (x.strip() for x in group.split(",")):
                if label and label not in everything:
                    bad.add(f"{where}: no series has the label {label} of ({group})")
    return sorted(bad)


def rule_queries(docs):
    return [(f"alert {r.get('alert') or r.get('record')}", r["expr"]) for r in alert_rules(docs)]


def dashboard_panels(dash):
    for p in dash.get("panels") or []:
        yield p
        yield from (p.get("panels") or [])  # collapsed rows hold their panels


def dashboard_queries(dash):
    """(where, PromQL) of every panel target and query variable, variables filled in."""
    out = []
    for p in dashboard_panels(dash):
        for t in p.get("targets") or []:
            out.append((f"panel {p.get('title')!r} {t.get('refId')}", substitute(t["expr"])))
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = LABEL_VALUES.match(q or "")
        if not m:
            raise AssertionError(f"variable {v.get('name')}: only label_values(selector, label) "
                                 f"is understood here, not {q!r}")
        out.append((f"variable {v['name']}", substitute(m.group(1))))
    return out


def series_labels(series):
    """`name{a="b", ...}` of a promtool input series -> (name, {labels})."""
    m = re.match(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$", series)
    if not m:
        raise AssertionError(f"unparsable series {series!r}")
    return m.group(1), dict(Exposition.LABEL.findall(m.group(2) or ""))


# === 1. rendering ===


class ComponentRenderTest(unittest.TestCase):
    ADDED = {("ServiceMonitor", MONITORING_API), ("PrometheusRule", MONITORING_API),
             ("ConfigMap", "v1")}

    def test_base_and_overlays_render_with_the_component(self):
        for name in OVERLAYS:
            with self.subTest(overlay=name):
                docs = Monitored.get(self, name)
                for kind, api in self.ADDED:
                    one(self, docs, kind, api)
                ports = {p["name"] for p in webhook_service(docs)["spec"]["ports"]}
                self.assertIn("metrics", ports)

    def test_component_is_a_kustomize_component(self):
        with open(os.path.join(COMPONENT, "kustomization.yaml")) as f:
            k = yaml.safe_load(f)
        self.assertEqual((k["apiVersion"], k["kind"]), ("kustomize.config.k8s.io/v1alpha1", "Component"))

    def test_without_the_component_the_base_is_unchanged(self):
        # The component adds its three objects and one Service port, and touches nothing else.
        alone = Monitored.get(self, "base-alone")
        self.assertEqual(alone, tm.kustomize(os.path.join(tm.MANIFESTS, "base"))[0],
                         "the copied base renders like the real one")
        for kind, _ in self.ADDED:
            self.assertFalse(tm.find(alone, kind), f"the base alone has a {kind}")
        self.assertNotIn("metrics", {p["name"] for p in webhook_service(alone)["spec"]["ports"]})
        self.assertEqual(component_changes(alone, Monitored.get(self, "base")), [])

    def test_a_component_touching_the_base_is_caught(self):
        docs = copy.deepcopy(Monitored.get(self, "base"))
        tm.kind_of(docs, "Deployment")["spec"]["replicas"] = 3
        self.assertTrue(component_changes(Monitored.docs["base-alone"], docs))

    def test_builtin_objects_validate_and_keep_the_policy(self):
        for name in OVERLAYS:
            docs = Monitored.get(self, name)
            builtin = [d for d in docs if d["apiVersion"] != MONITORING_API]
            for version in tm.KUBERNETES_VERSIONS:
                with self.subTest(overlay=name, kubernetes=version):
                    failures, _ = tm.schema_failures(builtin, version)
                    self.assertEqual(failures, [])
            with self.subTest(overlay=name, check="policy"):
                self.assertEqual(tm.policy_violations(docs, name), [])

    def test_monitoring_objects_use_known_fields(self):
        docs = Monitored.get(self, "base")
        self.assertEqual(monitoring_field_violations(docs), [])

    def test_a_monitoring_field_typo_is_caught(self):
        docs = copy.deepcopy(Monitored.get(self, "base"))
        sm = tm.kind_of(docs, "ServiceMonitor")
        sm["spec"]["endpoints"][0]["scrapeInterval"] = sm["spec"]["endpoints"][0].pop("interval")
        self.assertTrue(monitoring_field_violations(docs))


def component_changes(alone, with_component):
    """What the component changed besides adding its objects and the Service's metrics port."""
    added = {(d["kind"], d["metadata"]["name"]) for d in with_component} - \
        {(d["kind"], d["metadata"]["name"]) for d in alone}
    rest = []
    for d in with_component:
        if (d["kind"], d["metadata"]["name"]) in added:
            continue
        d = copy.deepcopy(d)
        if d["kind"] == "Service" and d["metadata"]["name"] == tm.SERVICE:
            d["spec"]["ports"] = [p for p in d["spec"]["ports"] if p.get("name") != "metrics"]
        rest.append(d)
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    bad = []
    for before, after in zip(sorted(alone, key=key), sorted(rest, key=key)):
        if before != after:
            bad.append(f"{before['kind']}/{before['metadata']['name']} changed")
    if len(alone) != len(rest):
        bad.append(f"{len(alone)} objects without the component, {len(rest)} kept with it")
    wanted = {("ServiceMonitor", "ipamclaim-webhook"), ("PrometheusRule", "ipamclaim-webhook"),
              ("ConfigMap", "ipamclaim-webhook-dashboard")}
    if added != wanted:
        bad.append(f"the component added {sorted(added)}, expected {sorted(wanted)}")
    return bad


def monitoring_field_violations(docs):
    bad = []
    for d in docs:
        if d.get("apiVersion") != MONITORING_API:
            continue
        fields = {"ServiceMonitor": SERVICE_MONITOR_FIELDS,
                  "PrometheusRule": PROMETHEUS_RULE_FIELDS}.get(d["kind"])
        if fields is None:
            bad.append(f"unexpected {d['kind']}")
            continue
        spec = d.get("spec") or {}
        for part, known in fields.items():
            nodes = [spec] if not part else spec.get(part) or []
            for node in nodes:
                for key in set(node) - known:
                    bad.append(f"{d['kind']}/{d['metadata']['name']}: unknown field "
                               f"spec.{part + '[].' if part else ''}{key}")
    return bad


# === 2. the scrape path ===


def scrape_path(docs):
    """Follows ServiceMonitor -> Service port -> container port -> --probe-listen and the
    NetworkPolicy; returns (problems, job label value)."""
    bad = []
    sm = tm.kind_of(docs, "ServiceMonitor")
    spec = sm["spec"]
    ns = sm["metadata"].get("namespace")
    allowed_ns = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns]
    services = [s for s in tm.find(docs, "Service")
                if s["metadata"].get("namespace") in allowed_ns
                and tm.matches((spec.get("selector") or {}).get("matchLabels"),
                               s["metadata"].get("labels") or {})]
    if [s["metadata"]["name"] for s in services] != [tm.SERVICE]:
        return [f"the ServiceMonitor selects {[s['metadata']['name'] for s in services]}, "
                f"expected exactly the Service {tm.SERVICE}"], None
    svc = services[0]
    job = (svc["metadata"].get("labels") or {}).get(spec.get("jobLabel")) \
        if spec.get("jobLabel") else svc["metadata"]["name"]
    if not job:
        bad.append(f"jobLabel {spec.get('jobLabel')!r} is not a label of the Service")
    container = tm.container_of(docs)
    container_ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    probe_port = tm.port_of(tm.arg_value(container.get("args") or [], "--probe-listen"))
    endpoints = spec.get("endpoints") or []
    if not endpoints:
        bad.append("the ServiceMonitor has no endpoints")
    for ep in endpoints:
        port = [p for p in svc["spec"]["ports"] if p.get("name") == ep.get("port")]
        if not port:
            bad.append(f"endpoint port {ep.get('port')!r} is not a named port of the Service "
                       f"(ports: {[p.get('name') for p in svc['spec']['ports']]})")
            continue
        target = port[0].get("targetPort", port[0]["port"])
        number = container_ports.get(target) if isinstance(target, str) else target
        if number is None or number != probe_port:
            bad.append(f"Service port {ep.get('port')} leads to {target!r} ({number}), not the "
                       f"probe port {probe_port} where /metrics is served")
        if ep.get("path", "/metrics") != "/metrics" or ep.get("scheme", "http") != "http":
            bad.append(f"endpoint scrapes {ep.get('scheme')}://…{ep.get('path')}, not http /metrics")
        names = {n for n, p in container_ports.items() if p == number}
        admitted = False
        labels = tm.kind_of(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
        for policy in tm.find(docs, "NetworkPolicy"):
            if not tm.matches(policy["spec"].get("podSelector", {}).get("matchLabels"), labels):
                continue
            if "Ingress" not in (policy["spec"].get("policyTypes") or []):
                admitted = True
            for rule in policy["spec"].get("ingress") or []:
                # A rule with sources would need Prometheus among them; ours admit any source.
                if rule.get("from"):
                    continue
                if any(p.get("port") in names | {number} for p in rule.get("ports") or []):
                    admitted = True
        if not admitted:
            bad.append(f"no NetworkPolicy ingress rule admits the metrics port {number} from "
                       "Prometheus")
    return bad, job


class ScrapePathTest(unittest.TestCase):
    def test_service_monitor_scrapes_the_probe_port_through_the_service(self):
        for name in OVERLAYS:
            with self.subTest(overlay=name):
                bad, job = scrape_path(Monitored.get(self, name))
                self.assertEqual(bad, [])
                self.assertEqual(job, "ipamclaim-webhook")

    def test_broken_scrape_paths_are_caught(self):
        breaks = {
            "port name not on the Service":
                lambda d: tm.kind_of(d, "ServiceMonitor")["spec"]["endpoints"][0].update(port="http-metrics"),
            "metrics port to the webhook port":
                lambda d: webhook_service(d)["spec"]["ports"][1].update(targetPort="webhook"),
            "selector matches nothing":
                lambda d: tm.kind_of(d, "ServiceMonitor")["spec"]["selector"]["matchLabels"].update(app="x"),
            "NetworkPolicy closes the probe port":
                lambda d: tm.kind_of(d, "NetworkPolicy")["spec"]["ingress"][0].update(
                    ports=[{"port": 8443, "protocol": "TCP"}]),
            "jobLabel not on the Service":
                lambda d: tm.kind_of(d, "ServiceMonitor")["spec"].update(jobLabel="app"),
            "https scheme":
                lambda d: tm.kind_of(d, "ServiceMonitor")["spec"]["endpoints"][0].update(scheme="https"),
        }
        for name, breaker in breaks.items():
            with self.subTest(broken=name):
                docs = copy.deepcopy(Monitored.get(self, "base"))
                breaker(docs)
                self.assertTrue(scrape_path(docs)[0], f"{name} went unnoticed")

    def test_rules_and_panels_select_the_job_the_service_monitor_produces(self):
        docs = Monitored.get(self, "base")
        _, job = scrape_path(docs)
        _, text = dashboard_of(docs)
        queries = rule_queries(docs) + dashboard_queries(json.loads(text))
        jobs = {(where, j) for where, q in queries for j in re.findall(r'\bjob\s*=\s*"([^"]*)"', q)}
        self.assertTrue(jobs, "no query selects a job")
        self.assertEqual(sorted(w for w, j in jobs if j != job), [])
        # Every query of our metrics selects the job: another exporter's series never count.
        unscoped = [w for w, q in queries
                    for sel in SELECTOR.findall(q) if sel[0].startswith(PREFIX) or sel[0] == "up"
                    if not re.search(r'\bjob\s*=', sel[1])]
        self.assertEqual(unscoped, [])


# === 3. the alerts ===


class AlertRulesTest(unittest.TestCase):
    def setUp(self):
        self.docs = Monitored.get(self, "base")
        self.dir = tempfile.mkdtemp(dir=Monitored.tmp)

    def promtool_test(self, mutate=None, only=None):
        """promtool test rules on the rules as rendered (mutated); with `only`, just the test
        groups that check that alert (the others cannot notice a change to it)."""
        write_rules(self.docs, self.dir, mutate)
        path = os.path.join(self.dir, "alerts_test.yaml")
        if only is None:
            shutil.copy(ALERT_TESTS, path)
        else:
            with open(ALERT_TESTS) as f:
                tests = yaml.safe_load(f)
            tests["tests"] = [t for t in tests["tests"]
                              if any(a["alertname"] == only for a in t.get("alert_rule_test") or [])]
            with open(path, "w") as f:
                yaml.safe_dump(tests, f, sort_keys=False)
        return run_promtool("test", "rules", "alerts_test.yaml", cwd=self.dir)

    def test_promtool_check_rules_passes_on_the_rendered_rule(self):
        code, out = run_promtool("check", "rules", write_rules(self.docs, self.dir))
        self.assertEqual(code, 0, out)
        self.assertIn(f"SUCCESS: {len(alert_rules(self.docs))} rules found", out)

    def test_promtool_check_rules_catches_a_bad_expression(self):
        def breaks(spec):
            spec["groups"][0]["rules"][0]["expr"] = "sum by (job (up)"
        code, _ = run_promtool("check", "rules", write_rules(self.docs, self.dir, breaks))
        self.assertNotEqual(code, 0)

    def test_promtool_unit_tests_pass(self):
        code, out = self.promtool_test()
        self.assertEqual(code, 0, out)
        self.assertIn("SUCCESS", out)

    def test_unit_tests_fail_when_an_alert_never_fires_or_always_fires(self):
        # Each alert has a test where it must fire and one where it must not: an alert
        # reduced to "never" or to "always" fails the unit tests.
        for i, rule in enumerate(alert_rules(self.docs)):
            for broken in ("vector(0) > 1", "vector(1)"):
                with self.subTest(alert=rule["alert"], severity=rule["labels"]["severity"], expr=broken):
                    def mutate(spec, i=i, broken=broken):
                        spec["groups"][0]["rules"][i]["expr"] = broken
                    code, _ = self.promtool_test(mutate, only=rule["alert"])
                    self.assertNotEqual(code, 0)

    def test_every_alert_is_tested_firing_and_not_firing(self):
        with open(ALERT_TESTS) as f:
            tests = yaml.safe_load(f)["tests"]
        fires, quiet = set(), set()
        for t in tests:
            for a in t.get("alert_rule_test") or []:
                if a.get("exp_alerts"):
                    fires |= {(a["alertname"], e["exp_labels"]["severity"]) for e in a["exp_alerts"]}
                else:
                    quiet.add(a["alertname"])
        alerts = {(r["alert"], r["labels"]["severity"]) for r in alert_rules(self.docs)}
        self.assertEqual(sorted(alerts - fires), [], "alerts never tested firing")
        self.assertEqual(sorted({a for a, _ in alerts} - quiet), [], "alerts never tested quiet")

    def test_every_alert_has_severity_summary_description_and_a_runbook(self):
        self.assertEqual(alert_annotation_problems(self.docs), [])

    def test_a_missing_or_dangling_runbook_is_caught(self):
        for name, mutate in (
                ("dangling anchor", lambda r: r["annotations"].update(
                    runbook_url="docs/monitoring.md#no-such-section")),
                ("no description", lambda r: r["annotations"].pop("description")),
                ("severity page", lambda r: r["labels"].update(severity="page"))):
            with self.subTest(broken=name):
                docs = copy.deepcopy(self.docs)
                mutate(alert_rules(docs)[0])
                self.assertTrue(alert_annotation_problems(docs))

    def test_latency_threshold_is_half_the_webhook_timeout_and_a_bucket_bound(self):
        self.assertEqual(latency_threshold_problems(self.docs, Monitored.live(self)), [])

    def test_a_latency_threshold_off_the_buckets_or_the_timeout_is_caught(self):
        live = Monitored.live(self)
        docs = copy.deepcopy(self.docs)
        tm.validating(docs)["timeoutSeconds"] = 8
        self.assertTrue(latency_threshold_problems(docs, live))
        # The buckets of the server before this component (up to 1 s): histogram_quantile
        # can never estimate past 1 s, so a 2.5 s threshold could never fire.
        old = Exposition("\n".join(line for line in live.text.splitlines()
                                   if not re.search(r'le="(2\.5|5|10)"', line)))
        self.assertTrue(latency_threshold_problems(self.docs, old))


def heading_anchors(path):
    """GitHub's anchors of a Markdown file's headings."""
    anchors, fenced = set(), False
    with open(path) as f:
        for line in f:
            if line.startswith("```"):
                fenced = not fenced
            m = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                text = re.sub(r"[`*_]", "", m.group(1)).strip().lower()
                anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text)))
    return anchors


def alert_annotation_problems(docs):
    bad = []
    for r in alert_rules(docs):
        where = f"{r.get('alert')} ({(r.get('labels') or {}).get('severity')})"
        if "alert" not in r:
            bad.append(f"{where}: not an alert")
            continue
        if (r.get("labels") or {}).get("severity") not in SEVERITIES:
            bad.append(f"{where}: severity not one of {sorted(SEVERITIES)}")
        notes = r.get("annotations") or {}
        for key in ("summary", "description", "runbook_url"):
            if not str(notes.get(key, "")).strip():
                bad.append(f"{where}: no {key}")
        url = notes.get("runbook_url", "")
        m = re.match(r"^docs/([\w.-]+\.md)#([\w-]+)$", url)
        if not m:
            bad.append(f"{where}: runbook_url {url!r} is not docs/PAGE.md#section")
            continue
        page = os.path.join(DOCS, m.group(1))
        if not os.path.isfile(page):
            bad.append(f"{where}: {url}: no such page")
        elif m.group(2) not in heading_anchors(page):
            bad.append(f"{where}: {url}: no such section")
    return bad


def latency_threshold_problems(docs, exposition):
    bad = []
    rules = [r for r in alert_rules(docs) if "histogram_quantile" in r["expr"]]
    if len(rules) != 1:
        return [f"expected one latency alert, found {len(rules)}"]
    expr = rules[0]["expr"]
    m = re.search(r"histogram_quantile\(\s*0\.99\b.*\)\s*>\s*([0-9.]+)\s*$", expr, re.S)
    if not m:
        return [f"the latency alert is not histogram_quantile(0.99, …) > N: {expr}"]
    threshold = float(m.group(1))
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for hook in tm.find(docs, kind)[0]["webhooks"]:
            if hook["timeoutSeconds"] / 2 != threshold:
                bad.append(f"threshold {threshold} s is not half of {hook['name']}'s "
                           f"timeoutSeconds {hook['timeoutSeconds']}")
    names = [n for n in NAME.findall(expr) if n.endswith("_bucket")]
    bounds = exposition.bucket_bounds(names[0]) if names else []
    if threshold not in bounds:
        bad.append(f"threshold {threshold} s is not a bucket bound of {names} as served "
                   f"({bounds}): histogram_quantile cannot cross it exactly"
                   + (" (nor at all: it is past the highest bound)" if bounds and threshold > bounds[-1] else ""))
    return bad


# === 4. the dashboard ===


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.docs = Monitored.get(self, "base")
        name, self.text = dashboard_of(self.docs)
        self.assertTrue(name.endswith(".json"))
        self.dash = json.loads(self.text)  # valid JSON, or this fails
        self.dir = tempfile.mkdtemp(dir=Monitored.tmp)

    def test_is_the_committed_dashboard_json(self):
        with open(os.path.join(COMPONENT, "dashboard.json")) as f:
            self.assertEqual(json.load(f), self.dash)
        self.assertTrue(self.dash.get("uid") and self.dash.get("title"))
        self.assertIsInstance(self.dash.get("schemaVersion"), int)

    def test_every_panel_queries_prometheus_through_the_datasource_variable(self):
        variables = {v["name"]: v for v in self.dash["templating"]["list"]}
        self.assertEqual((variables["datasource"]["type"], variables["datasource"]["query"]),
                         ("datasource", "prometheus"))
        panels = list(dashboard_panels(self.dash))
        self.assertTrue(panels)
        for p in panels:
            if p.get("type") == "row":
                continue
            with self.subTest(panel=p.get("title")):
                self.assertTrue(p.get("targets"), "a panel without a query")
                for t in p["targets"]:
                    ds = t.get("datasource") or p.get("datasource") or {}
                    self.assertEqual((ds.get("type"), ds.get("uid")), ("prometheus", "${datasource}"))
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")

    def test_every_query_parses(self):
        code, out = check_queries_parse(dashboard_queries(self.dash), self.dir)
        self.assertEqual(code, 0, out)

    def test_a_query_that_does_not_parse_is_caught(self):
        queries = dashboard_queries(self.dash)
        queries[0] = (queries[0][0], queries[0][1].replace("(", "", 1))
        code, _ = check_queries_parse(queries, self.dir)
        self.assertNotEqual(code, 0)

    def test_shows_what_an_operator_needs(self):
        queries = [q for _, q in dashboard_queries(self.dash)]

        def shown(*needles):
            return any(all(re.search(n, q) for n in needles) for q in queries)

        wanted = {
            "request rate by webhook and verdict":
                (r"rate\(ipamclaim_webhook_requests_total\b", r"by \(webhook, verdict\)"),
            "denials by cause": (r"ipamclaim_webhook_denials_total\b", r"by \(cause\)"),
            "latency p50": (r"histogram_quantile\(0\.5,", r"_request_duration_seconds_bucket"),
            "latency p99": (r"histogram_quantile\(0\.99,", r"_request_duration_seconds_bucket"),
            "in-flight requests": (r"ipamclaim_webhook_in_flight_requests\b",),
            "certificate time to expiry":
                (r"ipamclaim_webhook_certificate_not_after_seconds\b", r"time\(\)"),
            "reloads": (r"ipamclaim_webhook_certificate_reloads_total\b",),
            "panics": (r"ipamclaim_webhook_panics_total\b",),
            "replicas up": (r"\bup\{",),
            "index ready": (r"ipamclaim_webhook_index_ready\b",),
            "claims indexed, per pod": (r"ipamclaim_webhook_index_claims\b", r"by \(pod\)"),
            "addresses indexed, per pod": (r"ipamclaim_webhook_index_addresses\b", r"by \(pod\)"),
            "reservations": (r"ipamclaim_webhook_index_reservations\b",),
            "conflicts rate": (r"rate\(ipamclaim_webhook_address_conflicts_total\b",),
            "watch restarts": (r"ipamclaim_webhook_watch_restarts_total\b",),
            "time since the last watch event": (r"ipamclaim_webhook_watch_last_event_age_seconds\b",),
            "races caught through Leases": (r"ipamclaim_webhook_reservation_conflicts_total\b",),
            "reservations refused": (r"ipamclaim_webhook_reservation_errors_total\b",),
            "Lease writes by kind":
                (r"ipamclaim_webhook_reservation_writes_total\b", r"by \(write\)"),
            "Lease wait p99": (r"histogram_quantile\(0\.99,", r"_reservation_duration_seconds_bucket"),
            "Leases in flight": (r"ipamclaim_webhook_reservation_leases\b",),
        }
        self.assertEqual([w for w, needles in wanted.items() if not shown(*needles)], [])

    def test_every_query_returns_data_on_series_shaped_like_the_live_server(self):
        # promtool evaluates each query over the series the live server exports, labelled as
        # the ServiceMonitor labels them: a label typo, a missing `le` in a quantile or a job
        # that the scrape never produces returns nothing, and fails here.
        live = Monitored.live(self)
        _, job = scrape_path(self.docs)
        code, out = queries_on_live_series(dashboard_queries(self.dash), live, job, self.dir)
        self.assertEqual(code, 0, out)

    def test_a_query_with_a_wrong_label_value_returns_nothing_and_is_caught(self):
        live = Monitored.live(self)
        queries = [(w, q.replace('job="ipamclaim-webhook"', 'job="ipamclaim"'))
                   for w, q in dashboard_queries(self.dash)]
        code, _ = queries_on_live_series(queries[:1], live, "ipamclaim-webhook", self.dir)
        self.assertNotEqual(code, 0)


def check_queries_parse(queries, directory):
    """promtool check rules on one recording rule per query: promtool parses PromQL only
    inside rule files (`promtool query` needs a running Prometheus)."""
    path = os.path.join(directory, "dashboard.rules.yaml")
    rules = [{"record": f"dashboard:query_{i}", "expr": q} for i, (_, q) in enumerate(queries)]
    with open(path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False)
    return run_promtool("check", "rules", path)


def live_series(exposition, job, points=20):
    """promtool input series from the scrape: the ServiceMonitor's target labels added;
    counters and histograms growing at the rate they were scraped at (one a minute when 0),
    gauges flat; and `up`; `points` minutes of them."""
    target = {"job": job, "namespace": tm.NAMESPACE, "pod": "ipamclaim-webhook-0",
              "instance": Monitored.probe_addr or "127.0.0.1:8080", "service": tm.SERVICE,
              "endpoint": "metrics", "container": "webhook"}
    kinds = {}
    for family in exposition.types:
        for name in exposition.family_names(family):
            kinds[name] = exposition.types[family]
    out = [{"series": "up" + labels_text(target), "values": f"1x{points}"}]
    text_lines = [line for line in exposition.text.splitlines() if line and not line.startswith("#")]
    for line in text_lines:
        m = Exposition.SAMPLE.match(line)
        name, value = m.group(1), float(line.rsplit(None, 1)[1])
        labels = dict(Exposition.LABEL.findall(m.group(2) or ""))
        labels.update(target)
        if kinds.get(name) in ("counter", "histogram", "summary"):
            step = value if value > 0 else (0 if kinds[name] != "counter" else 1)
            values = f"{value:g}+{step:g}x{points}"
        else:
            values = f"{value:g}x{points}"
        out.append({"series": name + labels_text(labels), "values": values})
    return out


def labels_text(labels):
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def queries_on_live_series(queries, exposition, job, directory):
    tests = [{"interval": "1m", "input_series": live_series(exposition, job),
              "promql_expr_test": [{"expr": f"group({q})", "eval_time": "10m",
                                    "exp_samples": [{"labels": "{}", "value": 1}]}
                                   for _, q in queries]}]
    path = os.path.join(directory, "live_test.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}, f,
                       sort_keys=False)
    return run_promtool("test", "rules", path)


# === 5. names and labels against the live server ===


class LiveMetricsTest(unittest.TestCase):
    def setUp(self):
        self.docs = Monitored.get(self, "base")
        self.live = Monitored.live(self)
        self.queries = rule_queries(self.docs) + dashboard_queries(json.loads(dashboard_of(self.docs)[1]))

    def test_the_server_was_made_to_export_every_family(self):
        # A family with no sample yet prints nothing at all (prometheus-client): the scrape
        # must have samples of every family, else the name check would be checking too little.
        self.assertTrue(self.live.types)
        empty = [f for f in self.live.types
                 if not any(n in self.live.samples for n in self.live.family_names(f))]
        self.assertEqual(empty, [])
        self.assertTrue(all(f.startswith(PREFIX) for f in self.live.types), list(self.live.types))

    def test_every_metric_named_in_rules_and_panels_is_exported(self):
        used = {n for _, q in self.queries for n in NAME.findall(q)}
        self.assertGreaterEqual(len(used), 5, "the name check found almost nothing to check")
        self.assertEqual(unknown_metrics(self.queries, self.live), [])

    def test_every_label_named_in_rules_and_panels_is_exported(self):
        self.assertEqual(unknown_labels(self.queries, self.live), [])

    def test_a_rule_naming_a_metric_that_does_not_exist_is_caught(self):
        docs = copy.deepcopy(self.docs)
        rule = alert_rules(docs)[0]
        rule["expr"] = "increase(ipamclaim_webhook_panic_total[15m]) > 0"  # panics_total, typo
        self.assertEqual(unknown_metrics(rule_queries(docs), self.live),
                         [f"alert {rule['alert']}: ipamclaim_webhook_panic_total"])
        # A histogram's bare family name is no series either.
        self.assertTrue(unknown_metrics(
            [("q", "rate(ipamclaim_webhook_request_duration_seconds[5m])")], self.live))

    def test_a_rule_naming_an_index_metric_that_does_not_exist_is_caught(self):
        docs = copy.deepcopy(self.docs)
        rule = next(r for r in alert_rules(docs) if r["alert"] == "IPAMClaimWebhookIndexNotReady")
        rule["expr"] = rule["expr"].replace("ipamclaim_webhook_index_ready", "ipamclaim_webhook_index_readiness")
        self.assertEqual(unknown_metrics(rule_queries(docs), self.live),
                         ["alert IPAMClaimWebhookIndexNotReady: ipamclaim_webhook_index_readiness"])
        # Checked against the server without the flag, the index metrics would all be unknown:
        # the check needs the live server with --unique-addresses.
        self.assertIn("alert IPAMClaimWebhookWatchStale: ipamclaim_webhook_index_claims",
                      unknown_metrics(rule_queries(self.docs), Monitored.plain(self)))

    def test_a_panel_naming_a_metric_that_does_not_exist_is_caught(self):
        dash = json.loads(dashboard_of(self.docs)[1])
        next(dashboard_panels(dash))["targets"][0]["expr"] = "sum(ipamclaim_webhook_replicas)"
        self.assertTrue(unknown_metrics(dashboard_queries(dash), self.live))

    def test_a_label_that_does_not_exist_is_caught(self):
        for q in ('rate(ipamclaim_webhook_requests_total{job="x", result="refused"}[5m])',
                  'sum by (webhook, verdicts) (rate(ipamclaim_webhook_requests_total[5m]))'):
            with self.subTest(query=q):
                self.assertTrue(unknown_labels([("q", q)], self.live))

    def test_every_exported_family_is_on_the_dashboard(self):
        dash_queries = [q for _, q in dashboard_queries(json.loads(dashboard_of(self.docs)[1]))]
        missing = [f for f in self.live.types
                   if not any(n in NAME.findall(q) for q in dash_queries
                              for n in self.live.family_names(f))]
        self.assertEqual(missing, [], "exported but on no panel: add a panel")

    def test_alert_unit_test_series_are_shaped_like_the_live_server(self):
        # The promtool unit tests prove the alerts only if their input looks like the real
        # scrape: exported names, exported label names (plus target labels), the job the
        # ServiceMonitor produces.
        _, job = scrape_path(self.docs)
        with open(ALERT_TESTS) as f:
            tests = yaml.safe_load(f)["tests"]
        bad = unit_test_series_problems(tests, self.live, job)
        self.assertEqual(bad, [])
        broken = copy.deepcopy(tests)
        series = next(s for t in broken for s in t.get("input_series") or []
                      if "result=" in s["series"])
        series["series"] = series["series"].replace("result=", "outcome=")
        self.assertTrue(unit_test_series_problems(broken, self.live, job))


# === 5b. --unique-addresses: the index metrics, and only where the flag is ===


def index_families(live, plain):
    """Families the server exports only with --unique-addresses."""
    return sorted(set(live.types) - set(plain.types))


def unique_address_alerts(docs, live, plain):
    """Alert names whose expression selects a family only --unique-addresses exports."""
    names = {n for f in index_families(live, plain) for n in live.family_names(f)}
    return sorted({r["alert"] for r in alert_rules(docs) if set(NAME.findall(r["expr"])) & names})


def alerts_on_live_series(docs, alerts, exposition, job, directory):
    """promtool: none of `alerts` fires over an hour of the series `exposition` shapes."""
    series = live_series(exposition, job, points=60)
    tests = [{"interval": "1m", "input_series": series,
              "alert_rule_test": [{"eval_time": t, "alertname": a, "exp_alerts": []}
                                  for a in alerts for t in ("5m", "20m", "60m")]}]
    rules = write_rules(docs, directory)
    path = os.path.join(directory, "plain_test.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"rule_files": [os.path.basename(rules)], "evaluation_interval": "1m",
                        "tests": tests}, f, sort_keys=False)
    return run_promtool("test", "rules", os.path.basename(path), cwd=directory)


class UniqueAddressesLiveTest(unittest.TestCase):
    def setUp(self):
        self.docs = Monitored.get(self, "base")
        self.live = Monitored.live(self)
        self.plain = Monitored.plain(self)
        self.dir = tempfile.mkdtemp(dir=Monitored.tmp)

    def value(self, family):
        lines = [line for line in self.live.text.splitlines() if line.startswith(family + " ")]
        self.assertEqual(len(lines), 1, f"{family}: {lines}")
        return float(lines[0].split()[1])

    def test_the_index_metrics_moved_as_the_stand_in_drove_them(self):
        # Two claims holding three addresses listed; one conflict (vm-z.red asking for vm-b's
        # 10.0.0.5), admitted under Warn and so reserved like vm-new.red's free 10.0.0.77; the
        # first watch's 410 is one watch error, and the watch's normal end is none.
        self.assertEqual(self.value(PREFIX + "index_ready"), 1)
        self.assertEqual(self.value(PREFIX + "index_claims"), len(STANDIN_CLAIMS))
        self.assertEqual(self.value(PREFIX + "index_addresses"),
                         sum(len(c[3]) for c in STANDIN_CLAIMS))
        self.assertEqual(self.value(PREFIX + "index_reservations"), 2)
        self.assertEqual(self.value(PREFIX + "address_conflicts_total"), 1)
        self.assertEqual(self.value(PREFIX + "watch_restarts_total"), 1)
        self.assertLess(self.value(PREFIX + "watch_last_event_age_seconds"), 120)
        # Both admitted reviews reserved their address in a Lease too (one create each), and
        # nothing was caught, refused, taken over or collected.
        self.assertEqual(self.value(PREFIX + 'reservation_writes_total{write="created"}'), 2)
        self.assertEqual(self.value(PREFIX + 'reservation_writes_total{write="collected"}'), 0)
        self.assertEqual(self.value(PREFIX + "reservation_conflicts_total"), 0)
        self.assertEqual(self.value(PREFIX + 'reservation_errors_total{reason="api"}'), 0)
        self.assertEqual(self.value(PREFIX + "reservation_leases"), 2)
        self.assertEqual(self.value(PREFIX + "reservation_duration_seconds_count"), 2)

    def test_the_watch_listed_watched_relisted_after_410_and_resumed_after_a_normal_end(self):
        served = Monitored.watch_requests
        self.assertTrue(served, "the stand-in served nothing")
        self.assertEqual([(verb, status) for verb, _, status in served],
                         [("list", 200), ("watch", 410), ("list", 200), ("watch", 200),
                          ("watch", 200)])
        lists = [q for verb, q, _ in served if verb == "list"]
        watches = [q for verb, q, _ in served if verb == "watch"]
        self.assertTrue(all(q.get("limit") for q in lists), lists)
        self.assertTrue(all(q.get("resourceVersion") and q.get("allowWatchBookmarks") == "true"
                            for q in watches), watches)

    def test_without_the_flag_no_index_family_is_exported(self):
        extra = index_families(self.live, self.plain)
        self.assertTrue(extra, "the server with --unique-addresses exports nothing more")
        self.assertTrue(set(self.plain.types) < set(self.live.types))
        self.assertTrue(all(f.startswith(PREFIX) for f in extra), extra)

    def test_the_unique_addresses_alerts_select_index_families(self):
        self.assertEqual(unique_address_alerts(self.docs, self.live, self.plain),
                         ["IPAMClaimWebhookIndexNotReady", "IPAMClaimWebhookWatchRestarting",
                          "IPAMClaimWebhookWatchStale"])

    def test_the_unique_addresses_alerts_never_fire_for_a_server_without_the_flag(self):
        _, job = scrape_path(self.docs)
        alerts = unique_address_alerts(self.docs, self.live, self.plain)
        code, out = alerts_on_live_series(self.docs, alerts, self.plain, job, self.dir)
        self.assertEqual(code, 0, out)

    def test_an_alert_that_fires_without_the_flag_is_caught(self):
        # absent() of an index metric is true on every pod without --unique-addresses.
        _, job = scrape_path(self.docs)
        docs = copy.deepcopy(self.docs)
        rule = next(r for r in alert_rules(docs) if r["alert"] == "IPAMClaimWebhookIndexNotReady")
        rule["expr"] = 'absent(ipamclaim_webhook_index_ready{job="ipamclaim-webhook"} == 1)'
        alerts = unique_address_alerts(docs, self.live, self.plain)
        code, _ = alerts_on_live_series(docs, alerts, self.plain, job, self.dir)
        self.assertNotEqual(code, 0)


def unit_test_series_problems(tests, exposition, job):
    exported = exposition.names()
    bad = set()
    for t in tests:
        for s in t.get("input_series") or []:
            name, labels = series_labels(s["series"])
            if name == "up":
                known = TARGET_LABELS
            elif name in exported:
                known = TARGET_LABELS | exposition.labels(name)
            else:
                bad.add(f"{t['name']}: {name} is not exported")
                continue
            for label in set(labels) - known:
                bad.add(f"{t['name']}: {name} has no label {label}")
            if labels.get("job") not in (job, None) and name != "up":
                bad.add(f"{t['name']}: job {labels.get('job')!r}, the scrape gives {job!r}")
    return sorted(bad)


# === docs ===


class MonitoringDocsTest(unittest.TestCase):
    def test_links_between_the_docs_pages_resolve(self):
        # The runbooks send operators to sections of docs/deploy.md and to each other.
        bad = []
        for page in ("monitoring.md", "deploy.md"):
            with open(os.path.join(DOCS, page)) as f:
                text = f.read()
            for target, anchor in re.findall(r"\]\(([\w.-]*\.md)?#([\w-]+)\)", text):
                path = os.path.join(DOCS, target or page)
                if not os.path.isfile(path) or anchor not in heading_anchors(path):
                    bad.append(f"{page}: ({target}#{anchor})")
        self.assertEqual(bad, [])

    def test_every_alert_is_in_the_alerts_table(self):
        with open(os.path.join(DOCS, "monitoring.md")) as f:
            rows = [line for line in f if line.startswith("| [IPAMClaimWebhook")]
        documented = {(re.search(r"\[(\w+)\]", r).group(1), r.split("|")[2].strip()) for r in rows}
        alerts = {(r["alert"], r["labels"]["severity"]) for r in alert_rules(Monitored.get(self, "base"))}
        self.assertEqual(documented, alerts)
