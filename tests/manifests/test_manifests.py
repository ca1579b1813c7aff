"""Offline checks of manifests/ (DESIGN §8): nothing here needs a cluster or a network.

1. the base and the three overlays render with `kubectl kustomize`, and so do the cert-manager
   overlay with the unique-addresses component (components/unique-addresses), with the networks
   component (components/networks) and with both (in either order), the self-signed overlay
   with the networks component, and the openshift overlay with every component;
2. every rendered built-in object validates against Kubernetes' OpenAPI schemas in strict mode
   (kubernetes-validate) for the oldest and the newest Kubernetes versions we support;
3. the samples validate against the generated CRD's openAPIV3Schema, and replay to their
   expected verdicts once the binary has `replay`;
4. manifests/crd/crd.yaml is exactly what `ipamclaim-webhook crd` prints, the optional CRD piece
   (manifests/crd) renders exactly it, no overlay renders a CRD (the network stack owns it),
   and `make undeploy DELETE_CRD=1` deletes only a CRD that carries our label;
5. the rendered output keeps the webhook settings and the restricted pod security of DESIGN §8
   with no fixed user, group or fsGroup, the openshift overlay takes its certificates from the
   service-ca operator alone, and every policy rule is shown to fail on a manifest that breaks
   it.

test_openshift.py adds what OpenShift enforces (restricted-v2 applied to the rendered pods) and
what the image needs (the binary run as other users, writing nothing); test_monitoring.py checks
the monitoring component.

Run through tests/manifests/run.sh (it prepares the virtualenv). The last line printed is
`N passed, N failed[, N skipped]`; the exit status is non-zero on any failure.
"""

import base64
import copy
import datetime
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MANIFESTS = os.path.join(ROOT, "manifests")
SAMPLES = os.path.join(MANIFESTS, "samples")
CRD_DIR = os.path.join(MANIFESTS, "crd")
CRD_FILE = os.path.join(CRD_DIR, "crd.yaml")
CRD_NAME = "ipamclaims.k8s.cni.cncf.io"
BIN = os.path.join(ROOT, os.environ.get("BIN", "target/debug/ipamclaim-webhook"))

# The oldest Kubernetes we claim (the captured fixtures come from a 1.28 API server) and the
# newest whose schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.28", "1.37")

NAMESPACE = "ipamclaim-webhook"
SERVICE = "ipamclaim-webhook"
ACCOUNT = "ipamclaim-webhook"
# The rendering of the cert-manager overlay with components/unique-addresses.
UNIQUE = "unique-addresses"
# The rendering of the cert-manager overlay with components/networks.
NETWORKS = "networks"
# The rendering of the cert-manager overlay with both (networks listed first).
BOTH = "unique-addresses+networks"
# The rendering of the self-signed overlay with components/networks.
SELF_SIGNED_NETWORKS = "self-signed+networks"
# The rendering of the openshift overlay with every component: monitoring, unique-addresses and
# networks.
OPENSHIFT_COMPOSED = "openshift+components"
# What --unique-addresses may do with the API, and nothing more.
UNIQUE_RULES = [{"apiGroups": ["k8s.cni.cncf.io"], "resources": ["ipamclaims"],
                 "verbs": ["get", "list", "watch"]}]
# What its reservations across replicas may do: Leases in the webhook's namespace, and nothing
# more (no list or watch: a replica collects the Leases it wrote or read).
RESERVATION_RULES = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "verbs": ["get", "create", "update", "delete"]}]
RESERVATION_NAMESPACE_ENV = "IPAMCLAIM_WEBHOOK_RESERVATION_NAMESPACE"
# What --check-networks may do with the API, and nothing more.
NETWORKS_RULES = [{"apiGroups": ["k8s.cni.cncf.io"], "resources": ["network-attachment-definitions"],
                   "verbs": ["get", "list", "watch"]}]
# Each rendering with components: the certificates' overlay, and the API readers in it.
COMPOSED = {
    UNIQUE: ("cert-manager", {"unique"}),
    NETWORKS: ("cert-manager", {"networks"}),
    BOTH: ("cert-manager", {"unique", "networks"}),
    SELF_SIGNED_NETWORKS: ("self-signed", {"networks"}),
    OPENSHIFT_COMPOSED: ("openshift", {"unique", "networks"}),
}
# The API server: the `kubernetes` Service's port, and its endpoints' usual one.
API_SERVER_PORTS = {443, 6443}
TLS_SECRET = "ipamclaim-webhook-tls"
GROUP = "k8s.cni.cncf.io"
WEBHOOK_PORT = 8443
PROBE_PORT = 8080
MAX_TIMEOUT_SECONDS = 10

# Custom resources have no schema in kubernetes-validate: skipped there by name, never by
# accident (any other kind without a schema is a failure).
CUSTOM_KINDS = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate"),
                ("monitoring.coreos.com/v1", "ServiceMonitor"),
                ("monitoring.coreos.com/v1", "PrometheusRule")}
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ClusterRole",
    "ClusterRoleBinding",
}


# === rendering ===


def kustomize(path):
    """Renders a kustomization; returns (documents, error text or None)."""
    run = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if run.returncode != 0:
        return None, f"kubectl kustomize {path} failed: {run.stderr.strip()}"
    return [d for d in yaml.safe_load_all(run.stdout) if d], None


def make_certs(out):
    """A throwaway CA and serving certificate in `out`: from `ipamclaim-webhook certs` when the
    binary has it, else from openssl. Never inside the repository."""
    run = subprocess.run([BIN, "certs", "--out", out], capture_output=True, text=True)
    if run.returncode == 0 and all(
        os.path.isfile(os.path.join(out, f)) for f in ("ca.crt", "tls.crt", "tls.key")
    ):
        return "ipamclaim-webhook certs"
    if shutil.which("openssl") is None:
        raise RuntimeError("neither `ipamclaim-webhook certs` nor openssl can make test certificates")
    dns = f"{SERVICE}.{NAMESPACE}.svc"

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=out, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=ipamclaim-webhook test CA")
    openssl("req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", f"/CN={dns}")
    with open(os.path.join(out, "san.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{dns},DNS:{dns}.cluster.local\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-out", "tls.crt", "-extfile", "san.ext")
    return "openssl"


class Rendered:
    """Everything rendered once per run: the base, the cert-manager and openshift overlays, the
    self-signed overlay prepared in a throwaway copy of manifests/ (so no key ever lands in the
    repository), and two overlays with components, written as a user writes them."""

    tmp = None
    docs = {}
    errors = {}
    ca_pem = None
    leaf_pem = None
    cert_source = None

    @classmethod
    def setup(cls):
        if cls.tmp:
            return
        cls.tmp = tempfile.mkdtemp(prefix="ipamclaim-manifests-")
        for name in ("base", "cert-manager", "openshift"):
            path = os.path.join(MANIFESTS, "base" if name == "base" else f"overlays/{name}")
            cls.docs[name], cls.errors[name] = kustomize(path)
        try:
            certs = os.path.join(cls.tmp, "certs")
            os.mkdir(certs)
            cls.cert_source = make_certs(certs)
            with open(os.path.join(certs, "ca.crt")) as f:
                cls.ca_pem = f.read()
            with open(os.path.join(certs, "tls.crt")) as f:
                cls.leaf_pem = f.read()
            copy_dir = cls.fresh_copy("prepared")
            overlay = os.path.join(copy_dir, "overlays", "self-signed")
            run = subprocess.run([os.path.join(overlay, "prepare.sh"), certs],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"prepare.sh failed: {run.stderr.strip()}")
            cls.docs["self-signed"], cls.errors["self-signed"] = kustomize(overlay)
            # The prepared copy holds the certificates: a user's kustomization beside it.
            user = cls.user_kustomization_in(copy_dir, "self-signed", ("networks",))
            cls.docs[SELF_SIGNED_NETWORKS], cls.errors[SELF_SIGNED_NETWORKS] = kustomize(user)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            cls.docs["self-signed"], cls.errors["self-signed"] = None, str(e)
            cls.docs[SELF_SIGNED_NETWORKS], cls.errors[SELF_SIGNED_NETWORKS] = None, str(e)
        cls.docs[UNIQUE], cls.errors[UNIQUE] = kustomize(cls.with_unique_addresses("unique"))
        cls.docs[NETWORKS], cls.errors[NETWORKS] = kustomize(
            cls.user_kustomization("networks", "cert-manager", ("networks",)))
        cls.docs[BOTH], cls.errors[BOTH] = kustomize(
            cls.user_kustomization("both", "cert-manager", ("networks", "unique-addresses")))
        cls.docs[OPENSHIFT_COMPOSED], cls.errors[OPENSHIFT_COMPOSED] = kustomize(
            cls.user_kustomization("openshift-composed", "openshift",
                                   ("monitoring", "unique-addresses", "networks")))

    @classmethod
    def with_unique_addresses(cls, name):
        """The cert-manager overlay with the unique-addresses component."""
        return cls.user_kustomization(name, "cert-manager", ("unique-addresses",))

    @classmethod
    def user_kustomization(cls, name, overlay, components):
        """A kustomization as a user writes one: an overlay with components, beside a copy of
        manifests/ (a component is used from a kustomization's `components:`, never rendered
        alone)."""
        return cls.user_kustomization_in(cls.fresh_copy(name), overlay, components)

    @classmethod
    def user_kustomization_in(cls, copy_dir, overlay, components):
        """[user_kustomization] in a copy of manifests/ made already."""
        user = os.path.join(copy_dir, "my-cluster")
        os.mkdir(user)
        with open(os.path.join(user, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                    f"resources:\n  - ../overlays/{overlay}\ncomponents:\n"
                    + "".join(f"  - ../components/{c}\n" for c in components))
        return user

    @classmethod
    def fresh_copy(cls, name):
        """A copy of manifests/ without anything prepare.sh writes (as in a fresh clone)."""
        cls.setup()
        dest = os.path.join(cls.tmp, name)
        shutil.copytree(MANIFESTS, dest, ignore=shutil.ignore_patterns(
            "cabundle-patch.yaml", "*.crt", "*.key", "*.pem"))
        return dest

    @classmethod
    def teardown(cls):
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            cls.tmp = None

    @classmethod
    def get(cls, test, name):
        cls.setup()
        if cls.docs.get(name) is None:
            test.fail(f"{name} did not render: {cls.errors.get(name)}")
        return cls.docs[name]


# The renderings are shared with test_monitoring.py and test_openshift.py, which run after this
# module's tests: made on first use, removed when the whole run ends (main), not with this module.
def setUpModule():
    Rendered.setup()


# === 1. rendering ===


class RenderTest(unittest.TestCase):
    def assert_renders(self, name, kinds):
        docs = Rendered.get(self, name)
        have = {d["kind"] for d in docs}
        self.assertFalse(set(kinds) - have, f"{name} lacks {sorted(set(kinds) - have)}")

    BASE_KINDS = ("Namespace", "ServiceAccount", "Deployment",
                  "PodDisruptionBudget", "Service", "NetworkPolicy",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")

    def test_base_renders(self):
        self.assert_renders("base", self.BASE_KINDS)

    def test_cert_manager_overlay_renders(self):
        self.assert_renders("cert-manager", self.BASE_KINDS + ("Issuer", "Certificate"))

    def test_self_signed_overlay_renders(self):
        self.assert_renders("self-signed", self.BASE_KINDS + ("Secret",))

    def test_openshift_overlay_renders(self):
        # The base and nothing else: the service-ca operator makes the Secret and the caBundle.
        self.assert_renders("openshift", self.BASE_KINDS)
        self.assertEqual(sorted(d["kind"] for d in Rendered.get(self, "openshift")),
                         sorted(d["kind"] for d in Rendered.get(self, "base")))

    def test_openshift_overlay_composes_with_every_component(self):
        self.assert_renders(OPENSHIFT_COMPOSED, self.BASE_KINDS + (
            "ClusterRole", "ClusterRoleBinding", "ServiceMonitor", "PrometheusRule", "ConfigMap"))

    def test_networks_component_renders_on_every_certificate_overlay(self):
        for name, kinds in ((NETWORKS, ("Issuer", "Certificate")), (BOTH, ("Issuer", "Certificate")),
                            (SELF_SIGNED_NETWORKS, ("Secret",))):
            with self.subTest(rendering=name):
                self.assert_renders(name, self.BASE_KINDS + kinds + (
                    "ClusterRole", "ClusterRoleBinding"))

    def test_no_overlay_renders_a_crd(self):
        # The network stack owns the IPAMClaim CRD (DESIGN §8): a second owner would fight it.
        for name in ("base", "cert-manager", "self-signed", "openshift", UNIQUE, NETWORKS, BOTH,
                     SELF_SIGNED_NETWORKS, OPENSHIFT_COMPOSED):
            kinds = [d["kind"] for d in Rendered.get(self, name)]
            self.assertNotIn("CustomResourceDefinition", kinds, f"{name} renders a CRD")

    def test_crd_piece_renders_exactly_crd_yaml(self):
        docs, error = kustomize(CRD_DIR)
        self.assertIsNone(error)
        self.assertEqual(docs, [load_crd()])

    def test_unique_addresses_component_renders(self):
        self.assert_renders(UNIQUE, self.BASE_KINDS + ("Issuer", "Certificate", "ClusterRole",
                                                       "ClusterRoleBinding"))

    def test_self_signed_overlay_refuses_to_render_unprepared(self):
        # Without prepare.sh there is no Secret and no caBundle: rendering must fail, not
        # produce webhooks that the API server cannot call.
        overlay = os.path.join(Rendered.fresh_copy("unprepared"), "overlays", "self-signed")
        docs, _ = kustomize(overlay)
        self.assertIsNone(docs, "the self-signed overlay rendered without prepare.sh")

    def test_prepare_refuses_a_certificate_not_signed_by_the_ca(self):
        # A caBundle that does not vouch for the serving certificate is the classic
        # "x509: certificate signed by unknown authority" outage.
        if shutil.which("openssl") is None:
            self.skipTest("openssl is needed to make a second CA")
        certs = os.path.join(Rendered.tmp, "mismatched")
        os.mkdir(certs)
        make_certs(certs)
        other = os.path.join(Rendered.tmp, "other-ca")
        os.mkdir(other)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out",
                        "ca.crt", "-days", "1", "-subj", "/CN=another CA"],
                       cwd=other, check=True, capture_output=True)
        shutil.copy(os.path.join(other, "ca.crt"), os.path.join(certs, "ca.crt"))
        overlay = os.path.join(Rendered.fresh_copy("mismatch-copy"), "overlays", "self-signed")
        run = subprocess.run([os.path.join(overlay, "prepare.sh"), certs],
                             capture_output=True, text=True)
        self.assertNotEqual(run.returncode, 0, "prepare.sh accepted a leaf from another CA")
        self.assertFalse(os.path.exists(os.path.join(overlay, "cabundle-patch.yaml")))

    def test_generated_certificates_and_patch_are_git_ignored(self):
        git = shutil.which("git")
        inside = git and subprocess.run([git, "-C", ROOT, "rev-parse", "--is-inside-work-tree"],
                                        capture_output=True).returncode == 0
        if not inside:
            self.skipTest("not a git work tree")
        overlay = "manifests/overlays/self-signed"
        for path in (f"{overlay}/certs/tls.key", f"{overlay}/certs/tls.crt",
                     f"{overlay}/certs/ca.crt", f"{overlay}/cabundle-patch.yaml"):
            run = subprocess.run([git, "-C", ROOT, "check-ignore", "-q", "--no-index", path])
            self.assertEqual(run.returncode, 0, f"{path} is not git-ignored")
        # And nothing that git would pick up under manifests/ holds a private key.
        files = subprocess.run([git, "-C", ROOT, "ls-files", "-co", "--exclude-standard",
                                "manifests"], capture_output=True, text=True, check=True)
        for path in files.stdout.split():
            full = os.path.join(ROOT, path)
            if os.path.isfile(full):
                with open(full, errors="replace") as f:
                    self.assertNotIn("PRIVATE KEY", f.read(), f"{path} holds a private key")


# === 2. Kubernetes schemas ===


def schema_failures(docs, version):
    """Validates each built-in object strictly; returns (failures, skipped custom kinds)."""
    failures, skipped = [], []
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        name = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if key in CUSTOM_KINDS:
            skipped.append(name)
            continue
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            failures.append(f"{name} against {version}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            failures.append(f"{name}: {e.message} (a custom kind? list it in CUSTOM_KINDS)")
    return failures, skipped


class KubernetesSchemaTest(unittest.TestCase):
    def test_bundled_schemas_include_the_versions_we_support(self):
        bundled = {kubernetes_validate.utils.major_minor(v)
                   for v in kubernetes_validate.utils.all_versions()}
        for version in KUBERNETES_VERSIONS:
            self.assertIn(version, bundled)

    def test_catches_an_unknown_field(self):
        # Strict mode is what makes this check worth having: prove it bites.
        dep = next(d for d in Rendered.get(self, "base") if d["kind"] == "Deployment")
        dep = copy.deepcopy(dep)
        dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
        failures, _ = schema_failures([dep], KUBERNETES_VERSIONS[0])
        self.assertTrue(failures)


def add_schema_tests():
    for overlay in ("base", "cert-manager", "self-signed", "openshift", UNIQUE, NETWORKS, BOTH,
                    SELF_SIGNED_NETWORKS, OPENSHIFT_COMPOSED):
        for version in KUBERNETES_VERSIONS:
            def test(self, overlay=overlay, version=version):
                failures, skipped = schema_failures(Rendered.get(self, overlay), version)
                self.assertEqual(failures, [])
                if overlay in ("cert-manager", UNIQUE, NETWORKS, BOTH, OPENSHIFT_COMPOSED):
                    self.assertTrue(skipped, "custom resources were expected and skipped")
            name = f"test_{re.sub('[-+]', '_', overlay)}_validates_strictly_against_{version.replace('.', '_')}"
            setattr(KubernetesSchemaTest, name, test)


add_schema_tests()


# === 3. samples ===


def load_crd():
    with open(CRD_FILE) as f:
        return yaml.safe_load(f)


def crd_version_schema(crd):
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def to_json_schema(node):
    """Translates a structural OpenAPI v3 schema to JSON Schema: `nullable` becomes a null
    type, integer formats go, and objects with declared properties reject undeclared ones (the
    API server would prune them silently: in a sample that is a typo)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items()
           if not k.startswith("x-kubernetes-") and k != "nullable"}
    if out.get("format") in ("int32", "int64"):
        del out["format"]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def sample_validator(crd):
    schema = to_json_schema(crd_version_schema(crd))
    # Every object also has apiVersion, kind and metadata, which the CRD schema leaves implicit.
    schema["properties"].update({
        "apiVersion": {"const": f"{GROUP}/v1alpha1"},
        "kind": {"const": crd["spec"]["names"]["kind"]},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string"}}},
    })
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def date_time(value):  # RFC 3339, as metav1.Time
        if not isinstance(value, str):
            return True
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            raise ValueError(f"{value!r} is not RFC 3339")
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return jsonschema.Draft7Validator(schema, format_checker=checker)


def sample_errors(validator, path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if len(docs) != 1:
        return [f"expected one object, found {len(docs)}"]
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(docs[0])]


def expected_verdicts():
    """expected.txt: `SAMPLE allowed|denied [FIELD]` per line; FIELD is a path the denial
    must name."""
    verdicts = {}
    with open(os.path.join(SAMPLES, "expected.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                sample, verdict, *field = line.split()
                verdicts[sample] = (verdict, field[0] if field else None)
    return verdicts


def replay_available():
    # A binary without the subcommand may fail, or (while the CLI is being built) ignore its
    # arguments: only a usage text naming `replay` counts.
    run = subprocess.run([BIN, "replay", "--help"], capture_output=True, text=True)
    return run.returncode == 0 and re.search(r"(?i)usage:.*\breplay\b", run.stdout) is not None


class SampleTest(unittest.TestCase):
    def test_every_sample_has_an_expected_verdict(self):
        verdicts = expected_verdicts()
        files = sorted(f for f in os.listdir(SAMPLES) if f.endswith((".yaml", ".yml")))
        self.assertEqual(sorted(verdicts), files)
        for sample, (verdict, _) in verdicts.items():
            self.assertIn(verdict, ("allowed", "denied"), sample)
        self.assertIn("allowed", [v for v, _ in verdicts.values()])
        self.assertIn("denied", [v for v, _ in verdicts.values()])

    def test_samples_validate_against_the_crd_schema(self):
        # Valid and invalid alike: the invalid samples are what only the webhook can catch
        # (the CRD schema says "array of strings" and "string").
        validator = sample_validator(load_crd())
        for sample in sorted(expected_verdicts()):
            with self.subTest(sample=sample):
                self.assertEqual(sample_errors(validator, os.path.join(SAMPLES, sample)), [])

    def test_crd_schema_check_catches_a_bad_sample(self):
        validator = sample_validator(load_crd())
        bad = os.path.join(Rendered.tmp, "bad-sample.yaml")
        with open(bad, "w") as f:
            f.write(f"apiVersion: {GROUP}/v1alpha1\nkind: IPAMClaim\nmetadata: {{name: x}}\n"
                    "spec: {network: n, interfaces: eth0}\n"
                    "status: {ips: [], conditions: [{type: A, status: Maybe, reason: R,"
                    " lastTransitionTime: yesterday}]}\n")
        errors = " ".join(sample_errors(validator, bad))
        for expected in ("interfaces", "'interface' is a required property", "Maybe", "yesterday"):
            self.assertIn(expected, errors)

    def test_samples_replay_to_their_expected_verdicts(self):
        if not replay_available():
            self.skipTest(f"{BIN} has no replay command yet")
        for sample, (verdict, field) in sorted(expected_verdicts().items()):
            with self.subTest(sample=sample):
                run = subprocess.run([BIN, "replay", "--output", "json",
                                      os.path.join(SAMPLES, sample)],
                                     capture_output=True, text=True)
                self.assertIn(run.returncode, (0, 1), f"replay failed: {run.stderr.strip()}")
                self.assertEqual("allowed" if run.returncode == 0 else "denied", verdict,
                                 run.stdout + run.stderr)
                if field:
                    self.assertIn(field, run.stdout)


# === 4. CRD drift ===


class CrdDriftTest(unittest.TestCase):
    def test_crd_yaml_is_what_the_binary_prints(self):
        run = subprocess.run([BIN, "crd"], capture_output=True)
        self.assertEqual(run.returncode, 0, f"{BIN} crd failed: {run.stderr.decode()}")
        with open(CRD_FILE, "rb") as f:
            committed = f.read()
        if committed != run.stdout:
            diff = "".join(difflib.unified_diff(
                committed.decode().splitlines(True), run.stdout.decode().splitlines(True),
                "manifests/crd/crd.yaml", f"{os.path.relpath(BIN, ROOT)} crd"))
            self.fail(f"manifests/crd/crd.yaml has drifted; run `make manifests`\n{diff[:4000]}")

    def test_crd_carries_the_label_undeploy_goes_by(self):
        labels = load_crd()["metadata"].get("labels", {})
        self.assertEqual(labels.get("app.kubernetes.io/part-of"), "ipamclaim-webhook")


class FakeKubectl:
    """A stand-in for kubectl that records its calls and answers `get crd` as told: whether
    the cluster has the CRD, and the value of its app.kubernetes.io/part-of label."""

    SCRIPT = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
if args[:2] == ["get", "crd"]:
    exists = os.environ.get("FAKE_CRD_EXISTS") == "1"
    if any(a.startswith("jsonpath=") or a.startswith("-o=jsonpath") for a in args) or "-o" in args:
        if exists:
            sys.stdout.write(os.environ.get("FAKE_CRD_OWNER", ""))
        sys.exit(0)
    sys.exit(0 if exists else 1)
sys.exit(0)
'''

    def __init__(self, directory):
        self.path = os.path.join(directory, "kubectl")
        self.log = os.path.join(directory, "kubectl.log")
        with open(self.path, "w") as f:
            f.write(self.SCRIPT)
        os.chmod(self.path, 0o755)

    def run_make(self, target, exists, owner="", **variables):
        open(self.log, "w").close()
        env = dict(os.environ, FAKE_KUBECTL_LOG=self.log, FAKE_CRD_EXISTS="1" if exists else "0",
                   FAKE_CRD_OWNER=owner)
        variables.setdefault("OVERLAY", "cert-manager")
        args = ["make", "--no-print-directory", "-C", ROOT, target, f"KUBECTL={self.path}"] \
            + [f"{k}={v}" for k, v in variables.items()]
        run = subprocess.run(args, env=env, capture_output=True, text=True)
        with open(self.log) as f:
            calls = [json.loads(line) for line in f]
        return run, calls


class CrdOwnershipTest(unittest.TestCase):
    """`make deploy` and `make undeploy` against a fake kubectl: the CRD is ours to install
    only when asked, and ours to delete only when it carries our label."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("make") is None:
            raise unittest.SkipTest("make is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="ipamclaim-fake-kubectl-")
        cls.kubectl = FakeKubectl(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def deleted_crd(self, calls):
        return [c for c in calls if c[:1] == ["delete"] and "crd" in c]

    def test_undeploy_keeps_the_crd_by_default(self):
        run, calls = self.kubectl.run_make("undeploy", exists=True, owner="ipamclaim-webhook")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(self.deleted_crd(calls), [])

    def test_undeploy_never_deletes_a_crd_it_did_not_install(self):
        run, calls = self.kubectl.run_make("undeploy", exists=True, owner="", DELETE_CRD=1)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(self.deleted_crd(calls), [])
        self.assertIn("kept crd/", run.stderr)

    def test_undeploy_delete_crd_removes_ours(self):
        run, calls = self.kubectl.run_make("undeploy", exists=True, owner="ipamclaim-webhook",
                                           DELETE_CRD=1)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(self.deleted_crd(calls), [["delete", "crd", CRD_NAME]])

    def test_deploy_openshift_needs_neither_cert_manager_nor_prepared_certificates(self):
        # BIN points nowhere: a prepare-certs (or build) step would fail the run.
        run, calls = self.kubectl.run_make("deploy", exists=True, OVERLAY="openshift",
                                           BIN="/nonexistent/ipamclaim-webhook", CARGO="false")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual([c for c in calls if c[:1] == ["apply"]],
                         [["apply", "-k", "manifests/overlays/openshift"]])
        self.assertNotIn("prepare.sh", run.stdout + run.stderr)
        self.assertNotIn("cert-manager", run.stdout + run.stderr)

    def test_deploy_installs_the_crd_only_when_asked(self):
        run, calls = self.kubectl.run_make("deploy", exists=False)
        self.assertEqual(run.returncode, 0, run.stderr)
        applied = [c for c in calls if c[:1] == ["apply"]]
        self.assertEqual(applied, [["apply", "-k", "manifests/overlays/cert-manager"]])
        self.assertIn("no IPAMClaim CRD", run.stderr)
        run, calls = self.kubectl.run_make("deploy", exists=False, WITH_CRD=1)
        self.assertEqual(run.returncode, 0, run.stderr)
        applied = [c for c in calls if c[:1] == ["apply"]]
        self.assertEqual(applied, [["apply", "-k", "manifests/crd"],
                                   ["apply", "-k", "manifests/overlays/cert-manager"]])


# === 5. policy ===


def find(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def arg_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def quantity(text):
    """A memory quantity (`128Mi`, `1Gi`, `500M`, bytes) in bytes; None when absent or unreadable."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9, "": 1}
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(text or ""))
    if not m or m.group(2) not in units:
        return None
    return int(m.group(1)) * units[m.group(2)]


def port_of(listen):
    return int(listen.rsplit(":", 1)[1]) if listen else None


def side_effects(kind, unique):
    """The sideEffects a configuration declares: with --unique-addresses the validating webhook
    writes reservation Leases, never for a dry run; otherwise nothing writes."""
    return "NoneOnDryRun" if unique and kind.startswith("Validating") else "None"


def webhook_violations(docs, overlay, ca_pem=None, unique=False):
    """The admission settings of DESIGN §8 (and §9 with `unique`); returns what breaks them."""
    bad = []
    services = {(s["metadata"].get("namespace"), s["metadata"]["name"]): s
                for s in find(docs, "Service")}
    for kind, path in (("ValidatingWebhookConfiguration", "/validate"),
                       ("MutatingWebhookConfiguration", "/mutate")):
        configs = find(docs, kind)
        if len(configs) != 1:
            bad.append(f"expected one {kind}, found {len(configs)}")
            continue
        config = configs[0]
        hooks = config.get("webhooks") or []
        if not hooks:
            bad.append(f"{kind} has no webhooks")
        annotations = config["metadata"].get("annotations") or {}
        inject = annotations.get("cert-manager.io/inject-ca-from")
        if overlay == "cert-manager":
            ca_certs = [c for c in find(docs, "Certificate")
                        if c["spec"].get("isCA") and
                        inject == f"{c['metadata'].get('namespace')}/{c['metadata']['name']}"]
            if not ca_certs:
                bad.append(f"{kind}: inject-ca-from {inject!r} does not name a CA Certificate")
        elif inject:
            bad.append(f"{kind}: unexpected inject-ca-from in {overlay}")
        for h in hooks:
            where = f"{kind} {h.get('name')}"
            if h.get("admissionReviewVersions") != ["v1", "v1beta1"]:
                bad.append(f"{where}: admissionReviewVersions {h.get('admissionReviewVersions')}")
            for field, want in (("sideEffects", side_effects(kind, unique)), ("failurePolicy", "Fail"),
                                ("matchPolicy", "Equivalent")):
                if h.get(field) != want:
                    bad.append(f"{where}: {field} {h.get(field)!r}, want {want!r}")
            timeout = h.get("timeoutSeconds")
            if not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
                bad.append(f"{where}: timeoutSeconds {timeout!r}, want 1..{MAX_TIMEOUT_SECONDS}")
            if kind.startswith("Mutating") and h.get("reinvocationPolicy") != "IfNeeded":
                bad.append(f"{where}: reinvocationPolicy {h.get('reinvocationPolicy')!r}")
            rules = h.get("rules") or []
            covered = set()
            for r in rules:
                if r.get("apiGroups") != [GROUP] or r.get("apiVersions") != ["v1alpha1"]:
                    bad.append(f"{where}: rule for {r.get('apiGroups')} {r.get('apiVersions')}")
                if r.get("scope") != "Namespaced":
                    bad.append(f"{where}: rule scope {r.get('scope')!r}")
                if set(r.get("resources") or []) - {"ipamclaims", "ipamclaims/status"}:
                    bad.append(f"{where}: rule matches more than IPAMClaims: {r.get('resources')}")
                covered |= {(op, res) for op in r.get("operations") or []
                            for res in r.get("resources") or []}
            want = {(op, res) for op in ("CREATE", "UPDATE")
                    for res in ("ipamclaims", "ipamclaims/status")}
            if covered != want:
                bad.append(f"{where}: rules cover {sorted(covered)}, want {sorted(want)}")
            cc = h.get("clientConfig") or {}
            svc = cc.get("service") or {}
            if "url" in cc:
                bad.append(f"{where}: clientConfig.url instead of the Service")
            if svc.get("path") != path or svc.get("port") != 443:
                bad.append(f"{where}: service path {svc.get('path')!r} port {svc.get('port')!r}")
            if (svc.get("namespace"), svc.get("name")) not in services:
                bad.append(f"{where}: no Service {svc.get('namespace')}/{svc.get('name')}")
            bundle = cc.get("caBundle")
            if overlay == "self-signed":
                if not bundle:
                    bad.append(f"{where}: no caBundle")
                elif ca_pem is not None and base64.b64decode(bundle).decode() != ca_pem:
                    bad.append(f"{where}: caBundle is not the CA's ca.crt")
            elif bundle:
                bad.append(f"{where}: a caBundle written in {overlay} (its injector, cert-manager's "
                           "cainjector or OpenShift's service-ca operator, writes it)")
    return bad


# cert-manager.io/v1 fields we may use: kubernetes-validate has no schema for custom resources,
# so a typo here (`renewbefore`) would otherwise reach the cluster unnoticed.
CERT_MANAGER_FIELDS = {
    "Certificate": {
        "": {"secretName", "secretTemplate", "commonName", "dnsNames", "ipAddresses", "uris",
             "emailAddresses", "subject", "literalSubject", "duration", "renewBefore",
             "renewBeforePercentage", "privateKey", "usages", "issuerRef", "isCA",
             "revisionHistoryLimit", "keystores", "additionalOutputFormats",
             "encodeUsagesInRequest", "nameConstraints", "otherNames", "signatureAlgorithm"},
        "privateKey": {"algorithm", "size", "encoding", "rotationPolicy"},
        "issuerRef": {"name", "kind", "group"},
    },
    "Issuer": {"": {"selfSigned", "ca", "acme", "vault", "venafi"},
               "ca": {"secretName", "crlDistributionPoints", "ocspServers",
                      "issuingCertificateURLs"}},
}


def cert_manager_field_violations(docs):
    bad = []
    for d in docs:
        fields = CERT_MANAGER_FIELDS.get(d["kind"]) if d.get("apiVersion") == "cert-manager.io/v1" else None
        if fields is None:
            continue
        for part, known in fields.items():
            node = d.get("spec") or {}
            node = node.get(part) or {} if part else node
            for key in set(node) - known:
                bad.append(f"{d['kind']}/{d['metadata']['name']}: unknown field spec.{part + '.' if part else ''}{key}")
    return bad


def cert_manager_violations(docs):
    bad = cert_manager_field_violations(docs)
    certs = {c["metadata"]["name"]: c for c in find(docs, "Certificate")}
    issuers = {i["metadata"]["name"]: i for i in find(docs, "Issuer")}
    serving = [c for c in certs.values() if c["spec"].get("secretName") == TLS_SECRET]
    if len(serving) != 1:
        return [f"expected one Certificate writing {TLS_SECRET}, found {len(serving)}"]
    spec = serving[0]["spec"]
    want = {f"{SERVICE}.{NAMESPACE}.svc", f"{SERVICE}.{NAMESPACE}.svc.cluster.local"}
    if not want <= set(spec.get("dnsNames") or []):
        bad.append(f"serving Certificate dnsNames {spec.get('dnsNames')}, want {sorted(want)}")
    if not spec.get("renewBefore") or not spec.get("duration"):
        bad.append("serving Certificate without duration/renewBefore")
    if spec.get("isCA"):
        bad.append("the serving Certificate is a CA")
    issuer = issuers.get(spec.get("issuerRef", {}).get("name"))
    ca_secret = issuer and issuer["spec"].get("ca", {}).get("secretName")
    ca_cert = [c for c in certs.values()
               if c["spec"].get("isCA") and c["spec"].get("secretName") == ca_secret]
    if not ca_cert:
        bad.append("the serving Certificate is not issued by a CA Issuer backed by a CA Certificate")
    return bad


# OpenShift's service-ca operator (issue 30): the Service annotation that makes it issue the
# serving certificate into a Secret, the webhook-configuration annotation that makes it write its
# CA into every caBundle, and the pod-template annotation that pins the SCC.
SERVING_CERT_ANNOTATION = "service.beta.openshift.io/serving-cert-secret-name"
INJECT_CABUNDLE_ANNOTATION = "service.beta.openshift.io/inject-cabundle"
REQUIRED_SCC_ANNOTATION = "openshift.io/required-scc"
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def service_ca_violations(docs, overlay):
    """In the openshift overlay, certificates come from the service-ca operator and from
    nothing else: the Service names the Secret the pod mounts, both webhook configurations ask
    for the CA bundle (webhook_violations refuses a caBundle written here), the pod template
    pins restricted-v2, and no cert-manager object and no Secret of our own is rendered (the
    operator does not take over a Secret it did not create, so the pods would mount ours). In
    every other overlay, no service-ca annotation: two injectors would fight over the caBundle."""
    bad = []
    if overlay != "openshift":
        for d in docs:
            for key in (d["metadata"].get("annotations") or {}):
                if key.startswith(("service.beta.openshift.io/", "service.alpha.openshift.io/")):
                    bad.append(f"{d['kind']}/{d['metadata']['name']}: {key} in {overlay}")
        return bad
    services = [s for s in find(docs, "Service") if s["metadata"]["name"] == SERVICE]
    for s in services:
        secret = (s["metadata"].get("annotations") or {}).get(SERVING_CERT_ANNOTATION)
        if secret != TLS_SECRET:
            bad.append(f"Service {SERVICE}: {SERVING_CERT_ANNOTATION} {secret!r}, want {TLS_SECRET}")
    for kind in WEBHOOK_KINDS:
        for config in find(docs, kind):
            inject = (config["metadata"].get("annotations") or {}).get(INJECT_CABUNDLE_ANNOTATION)
            if inject != "true":
                bad.append(f"{kind}: {INJECT_CABUNDLE_ANNOTATION} {inject!r}, want \"true\"")
    for dep in find(docs, "Deployment"):
        scc = (dep["spec"]["template"]["metadata"].get("annotations") or {}).get(
            REQUIRED_SCC_ANNOTATION)
        if scc != "restricted-v2":
            bad.append(f"pod template {REQUIRED_SCC_ANNOTATION} {scc!r}, want restricted-v2")
    for d in docs:
        if d.get("apiVersion", "").startswith("cert-manager.io/"):
            bad.append(f"{d['kind']}/{d['metadata']['name']}: cert-manager in the openshift overlay")
        if d["kind"] == "Secret" and d["metadata"]["name"] == TLS_SECRET:
            bad.append(f"Secret {TLS_SECRET} rendered: the service-ca operator would not replace it")
    return bad


def pod_violations(docs, readers=frozenset()):
    """Replicas, disruption budget, spread, restricted Pod Security, probes and shutdown; with
    `readers` (the API readers in: "unique", "networks"), each one's flag and the token they
    need."""
    bad = []
    deployments = find(docs, "Deployment")
    if len(deployments) != 1:
        return [f"expected one Deployment, found {len(deployments)}"]
    dep = deployments[0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels") or {}
    replicas = spec.get("replicas", 1)
    if replicas < 2:
        bad.append(f"replicas {replicas}, want at least 2")
    if (spec.get("strategy", {}).get("rollingUpdate") or {}).get("maxUnavailable") not in (0, "0%"):
        bad.append("a rollout may take a ready replica away first (maxUnavailable is not 0)")

    pdbs = [p for p in find(docs, "PodDisruptionBudget")
            if matches(p["spec"].get("selector", {}).get("matchLabels"), labels)]
    if not pdbs:
        bad.append("no PodDisruptionBudget selects the webhook pods")
    for p in pdbs:
        min_available = p["spec"].get("minAvailable")
        if not isinstance(min_available, int) or not 1 <= min_available < replicas:
            bad.append(f"PodDisruptionBudget minAvailable {min_available!r}: want 1..replicas-1")

    spread = [t for t in pod.get("topologySpreadConstraints") or []
              if t.get("topologyKey") == "kubernetes.io/hostname"
              and matches(t.get("labelSelector", {}).get("matchLabels"), labels)]
    if not spread:
        bad.append("no topologySpreadConstraint over kubernetes.io/hostname for the webhook pods")

    if readers:
        if pod.get("automountServiceAccountToken") is not True:
            bad.append(f"{' and '.join(READER_FLAGS[r] for r in sorted(readers))} without the "
                       "service-account token mounted")
    elif pod.get("automountServiceAccountToken") is not False:
        bad.append("pod automountServiceAccountToken is not false")
    accounts = {a["metadata"]["name"]: a for a in find(docs, "ServiceAccount")}
    account = accounts.get(pod.get("serviceAccountName"))
    if account is None:
        bad.append(f"pod serviceAccountName {pod.get('serviceAccountName')!r} is not rendered")
    elif account.get("automountServiceAccountToken") is not False:
        bad.append("ServiceAccount automountServiceAccountToken is not false")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            bad.append(f"pod {field}")
    for v in pod.get("volumes") or []:
        if "hostPath" in v:
            bad.append(f"hostPath volume {v['name']}")

    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        bad.append("pod runAsNonRoot is not true")
    # No fixed IDs: the image's numeric user on most clusters; on OpenShift restricted-v2
    # assigns them from the namespace's range and refuses any other (issue 30).
    for field in FIXED_ID_FIELDS:
        if field in psc:
            bad.append(f"pod securityContext.{field} {psc[field]!r}: no fixed IDs (OpenShift "
                       "assigns them from the namespace's range)")
    bad += secret_mode_violations(pod)
    containers = pod.get("containers") or []
    if len(containers) != 1:
        bad.append(f"expected one container, found {len(containers)}")
    for c in containers + (pod.get("initContainers") or []):
        where = f"container {c['name']}"
        csc = c.get("securityContext") or {}
        for field in ("runAsUser", "runAsGroup"):
            if field in csc:
                bad.append(f"{where}: securityContext.{field} {csc[field]!r}: no fixed IDs")
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{where}: runAsNonRoot is not true")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            bad.append(f"{where}: seccompProfile {seccomp!r}, want RuntimeDefault")
        if csc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{where}: allowPrivilegeEscalation is not false")
        if csc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{where}: readOnlyRootFilesystem is not true")
        if csc.get("privileged"):
            bad.append(f"{where}: privileged")
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
            bad.append(f"{where}: capabilities {caps}, want drop [ALL] and no add")
        res = c.get("resources") or {}
        for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
            missing = [k for k in keys if k not in (res.get(part) or {})]
            if missing:
                bad.append(f"{where}: no resources.{part} {missing}")

    if not containers:
        return bad
    c = containers[0]
    args = c.get("args") or []
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if not args or args[0] != "serve":
        bad.append(f"args {args[:1]}, want serve first")
    for reader, flag in READER_FLAGS.items():
        if reader in readers and flag not in args:
            bad.append(f"the {READER_COMPONENTS[reader]} component without {flag}")
        if reader not in readers and any(a.startswith(flag) for a in args):
            bad.append(f"{flag} without its RBAC, token and egress (use the "
                       f"{READER_COMPONENTS[reader]} component)")
    if not readers and any(a.startswith("--kubeconfig") for a in args):
        bad.append("--kubeconfig without a flag that reads the API")
    if "unique" in readers:
        bad += reservation_pod_violations(c, args)
    if ports.get("webhook") != WEBHOOK_PORT or port_of(arg_value(args, "--listen")) != WEBHOOK_PORT:
        bad.append(f"webhook port {ports.get('webhook')} / --listen {arg_value(args, '--listen')}")
    if ports.get("probes") != PROBE_PORT or port_of(arg_value(args, "--probe-listen")) != PROBE_PORT:
        bad.append(f"probe port {ports.get('probes')} / --probe-listen {arg_value(args, '--probe-listen')}")
    # On an IPv6-only cluster the pod has only an IPv6 address: an IPv4 bind is never reached.
    for flag in ("--listen", "--probe-listen"):
        value = arg_value(args, flag)
        if value is not None and not value.startswith("["):
            bad.append(f"{flag} {arg_value(args, flag)!r} binds IPv4 only; want [::] (both families)")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") not in ("probes", PROBE_PORT) \
                or get.get("scheme", "HTTP") != "HTTP":
            bad.append(f"{probe} {get}, want HTTP {path} on the probe port")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
    tls = mounts.get("/tls")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    if not tls or not tls.get("readOnly") or \
            (volumes.get(tls["name"], {}).get("secret") or {}).get("secretName") != TLS_SECRET:
        bad.append(f"Secret {TLS_SECRET} is not mounted read-only at /tls")
    for flag, want in (("--tls-cert", "/tls/tls.crt"), ("--tls-key", "/tls/tls.key")):
        if arg_value(args, flag) != want:
            bad.append(f"{flag} {arg_value(args, flag)!r}, want {want}")
    bad += mounted_path_violations(pod, c)
    # The memory budget the server keeps must fit the container's limit, with headroom for the
    # allocator: at most seven eighths of it, and the limit at most 128 MiB (issue 18).
    limit = quantity((c.get("resources") or {}).get("limits", {}).get("memory"))
    budget = quantity(arg_value(args, "--memory-budget"))
    if limit is None or limit > 128 * 2**20:
        bad.append(f"memory limit {limit} bytes, want at most 128Mi")
    elif budget is None or budget * 8 > limit * 7:
        bad.append(f"--memory-budget {arg_value(args, '--memory-budget')!r} is not at most "
                   f"seven eighths of the memory limit ({limit} bytes)")
    shutdown = arg_value(args, "--shutdown-timeout")
    # The server keeps accepting for --shutdown-delay (default 5 s) before it starts draining.
    delay = (arg_value(args, "--shutdown-delay") or "5").removesuffix("s")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if shutdown is None or not delay.isdigit() or not grace > int(delay) + int(shutdown):
        bad.append(f"terminationGracePeriodSeconds {grace} is not longer than --shutdown-delay "
                   f"{delay} plus --shutdown-timeout {shutdown}")
    return bad


# The options of `serve` that name a file or directory, by what the server does with it
# (test_openshift.py checks that `serve --help` has no other): it reads the first kind, and the
# second is the only place it ever writes. The root filesystem is read-only and the image holds
# nothing but the binary, so each must lie on a volume the pod mounts.
PATH_READ_FLAGS = ("--tls-cert", "--tls-key", "--client-ca", "--kubeconfig")
PATH_WRITE_FLAGS = ("--record-denied",)
# Volume types the server can write to (the kubelet mounts Secret, ConfigMap, projected and
# downward API volumes read-only).
WRITABLE_VOLUME_TYPES = ("emptyDir", "persistentVolumeClaim", "ephemeral")


def path_options(container):
    """{flag: path} of the container's path options, from its args and from the environment
    variables `serve` reads them from (IPAMCLAIM_WEBHOOK_<FLAG>)."""
    found = {}
    args = container.get("args") or []
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    for flag in PATH_READ_FLAGS + PATH_WRITE_FLAGS:
        value = arg_value(args, flag)
        if value is None:
            value = env.get("IPAMCLAIM_WEBHOOK_" + flag[2:].upper().replace("-", "_"))
        if value is not None:
            found[flag] = value
    return found


def mount_of(pod, container, path):
    """(volumeMount, volume) holding `path` in the container, the deepest mount first; None."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    best = None
    for m in container.get("volumeMounts") or []:
        root = m["mountPath"].rstrip("/")
        if (path == root or path.startswith(root + "/")) and \
                (best is None or len(root) > len(best[0]["mountPath"].rstrip("/"))):
            best = (m, volumes.get(m["name"], {}))
    return best


def mounted_path_violations(pod, container):
    """Every file the server reads lies on a mounted volume, and the directory it writes on a
    writable volume (emptyDir, a claim): on the read-only root filesystem nothing else is there."""
    bad = []
    for flag, path in path_options(container).items():
        if not path.startswith("/"):
            bad.append(f"{flag} {path!r} is relative: the working directory is the read-only root")
            continue
        found = mount_of(pod, container, path)
        if found is None:
            bad.append(f"{flag} {path!r} is on no mounted volume (the root filesystem is read-only)")
        elif flag in PATH_WRITE_FLAGS:
            mount, volume = found
            if mount.get("readOnly") or not any(t in volume for t in WRITABLE_VOLUME_TYPES):
                bad.append(f"{flag} {path!r} is on volume {mount['name']}, which the server "
                           f"cannot write (want a writable {', '.join(WRITABLE_VOLUME_TYPES)})")
    return bad


# The pod-level fields that fix an ID (issue 30); a container can fix the first two as well.
FIXED_ID_FIELDS = ("runAsUser", "runAsGroup", "fsGroup", "supplementalGroups")


def secret_mode_violations(pod):
    """Every Secret volume's files read-only and readable by a process that is neither their
    owner nor in their group: with no fsGroup the kubelet writes them as root:root with exactly
    the volume's mode, and the server runs as the image's user (manifests/base/deployment.yaml
    says why that exposes nothing)."""
    bad = []
    for v in pod.get("volumes") or []:
        secret = v.get("secret")
        if secret is None:
            continue
        modes = [("defaultMode", secret.get("defaultMode", 0o644))] + \
            [(f"items[{i}].mode", item["mode"]) for i, item in enumerate(secret.get("items") or [])
             if "mode" in item]
        for where, mode in modes:
            if mode != 0o444:
                bad.append(f"Secret volume {v['name']} {where} {mode:#o}, want 0o444 (read-only, "
                           "readable by a UID that neither owns the files nor is in their group)")
    return bad


# The flag of each API reader, its component, and exactly the RBAC rules it needs.
READER_FLAGS = {"unique": "--unique-addresses", "networks": "--check-networks"}
READER_COMPONENTS = {"unique": "unique-addresses", "networks": "networks"}
READER_RULES = {"unique": UNIQUE_RULES, "networks": NETWORKS_RULES}


def rbac_violations(docs, readers):
    """For each API reader in (`readers`: "unique", "networks"), one ClusterRole with exactly its
    rules (get, list, watch on its one resource, nothing else), bound to the webhook's
    ServiceAccount by one ClusterRoleBinding; with --unique-addresses the Role of its
    reservations; no other RBAC object."""
    bad = []
    roles = find(docs, "ClusterRole")
    bindings = find(docs, "ClusterRoleBinding")
    if "unique" in readers:
        # The Role of the reservations across replicas, and nothing more.
        bad += reservation_rbac_violations(docs)
    else:
        for d in docs:
            if d["kind"] in ("Role", "RoleBinding"):
                bad.append(f"RBAC object {d['kind']}/{d['metadata']['name']}: not needed")
    if len(roles) != len(readers) or len(bindings) != len(readers):
        return bad + [f"expected {len(readers)} ClusterRoles and as many ClusterRoleBindings, "
                      f"found {len(roles)} and {len(bindings)}"]
    wanted = sorted(json.dumps(READER_RULES[r], sort_keys=True) for r in readers)
    found = sorted(json.dumps(r.get("rules"), sort_keys=True) for r in roles)
    if found != wanted:
        bad.append(f"ClusterRole rules {found}, want exactly {wanted}, one role each")
    for role in roles:
        if role.get("aggregationRule"):
            bad.append(f"ClusterRole {role['metadata']['name']} aggregates other roles")
    names = {r["metadata"]["name"] for r in roles}
    want = [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]
    refs = []
    for binding in bindings:
        ref = binding.get("roleRef") or {}
        refs.append(ref.get("name"))
        if ref.get("kind") != "ClusterRole" or ref.get("name") not in names:
            bad.append(f"ClusterRoleBinding refers to {ref}")
        if binding.get("subjects") != want:
            bad.append(f"ClusterRoleBinding subjects {binding.get('subjects')}, want {want}")
    if sorted(refs) != sorted(names):
        bad.append(f"ClusterRoleBindings refer to {sorted(refs)}, want each of {sorted(names)} once")
    return bad


def reservation_rbac_violations(docs):
    """The reservations across replicas: exactly one Role, in the webhook's namespace, on
    leases with exactly RESERVATION_RULES, bound by exactly one RoleBinding there to the
    webhook's ServiceAccount. A ClusterRole on leases would reach every namespace's Leases
    (leader elections included): refused by the ClusterRole check and this one."""
    bad = []
    roles = find(docs, "Role")
    bindings = find(docs, "RoleBinding")
    if len(roles) != 1 or len(bindings) != 1:
        return [f"expected one Role and one RoleBinding (the reservation Leases), found "
                f"{len(roles)} and {len(bindings)}"]
    role, binding = roles[0], bindings[0]
    for d in (role, binding):
        if d["metadata"].get("namespace") != NAMESPACE:
            bad.append(f"{d['kind']}/{d['metadata']['name']} in namespace "
                       f"{d['metadata'].get('namespace')!r}, want {NAMESPACE}")
    if role.get("rules") != RESERVATION_RULES:
        bad.append(f"Role rules {role.get('rules')}, want exactly {RESERVATION_RULES}")
    ref = binding.get("roleRef") or {}
    if ref.get("kind") != "Role" or ref.get("name") != role["metadata"]["name"]:
        bad.append(f"RoleBinding refers to {ref}")
    want = [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]
    if binding.get("subjects") != want:
        bad.append(f"RoleBinding subjects {binding.get('subjects')}, want {want}")
    for d in find(docs, "ClusterRole"):
        for rule in d.get("rules") or []:
            if {"leases", "*"} & set(rule.get("resources") or []):
                bad.append(f"ClusterRole/{d['metadata']['name']} on {rule.get('resources')}: "
                           "Leases only in the webhook's namespace (a Role)")
    return bad


def reservation_pod_violations(container, args):
    """The reservation Leases live in the pod's own namespace, named by the downward API (the
    Role grants nothing elsewhere), and are not turned off."""
    bad = []
    env = {e["name"]: e for e in container.get("env") or []}
    var = env.get(RESERVATION_NAMESPACE_ENV) or {}
    source = (var.get("valueFrom") or {}).get("fieldRef") or {}
    if source.get("fieldPath") != "metadata.namespace" or "value" in var:
        bad.append(f"{RESERVATION_NAMESPACE_ENV} is not the pod's namespace from the downward API")
    if arg_value(args, "--reservation-namespace") is not None:
        bad.append("--reservation-namespace in args: the Leases go to the pod's namespace")
    if arg_value(args, "--reservations") not in (None, "Leases"):
        bad.append(f"--reservations {arg_value(args, '--reservations')}: with two replicas the "
                   "reservations must be Leases")
    if "IPAMCLAIM_WEBHOOK_RESERVATIONS" in env:
        bad.append("IPAMCLAIM_WEBHOOK_RESERVATIONS set: the reservations must stay Leases")
    return bad


def egress_violations(policy, readers):
    """No egress at all; with an API reader (--unique-addresses, --check-networks), TCP to the
    API server's ports only."""
    egress = policy["spec"].get("egress")
    if "Egress" not in (policy["spec"].get("policyTypes") or []):
        return ["the NetworkPolicy does not restrict egress"]
    if not readers:
        return [] if egress == [] else [f"egress {egress}: the webhook opens no connection"]
    bad = []
    if not egress:
        bad.append("an API reader with no egress: the watch cannot reach the API server")
    for rule in egress or []:
        ports = rule.get("ports") or []
        if not ports:
            bad.append("a NetworkPolicy egress rule allows every port")
        for port in ports:
            if port.get("port") not in API_SERVER_PORTS or port.get("protocol", "TCP") != "TCP" \
                    or "endPort" in port:
                bad.append(f"the NetworkPolicy allows egress to {port}")
    return bad


def cluster_violations(docs, readers=frozenset()):
    """Namespace, Service, NetworkPolicy, and no RBAC at all (with `readers`, only the read
    access each of them needs)."""
    bad = rbac_violations(docs, readers) if readers else []
    for d in docs:
        if d["kind"] in RBAC_KINDS and not readers:
            bad.append(f"RBAC object {d['kind']}/{d['metadata']['name']}: the webhook needs none")
        ns = d["metadata"].get("namespace")
        if d["kind"] not in CLUSTER_SCOPED and ns != NAMESPACE:
            bad.append(f"{d['kind']}/{d['metadata']['name']} in namespace {ns!r}")
    if [n["metadata"]["name"] for n in find(docs, "Namespace")] != [NAMESPACE]:
        bad.append(f"expected the Namespace {NAMESPACE}")
    deployments = find(docs, "Deployment")
    labels = deployments[0]["spec"]["template"]["metadata"].get("labels", {}) if deployments else {}
    svc = [s for s in find(docs, "Service") if s["metadata"]["name"] == SERVICE]
    if not svc:
        bad.append(f"no Service {SERVICE}")
    else:
        spec = svc[0]["spec"]
        if not matches(spec.get("selector"), labels):
            bad.append("the Service does not select the webhook pods")
        if not any(p.get("port") == 443 and p.get("targetPort") in ("webhook", WEBHOOK_PORT)
                   for p in spec.get("ports") or []):
            bad.append("the Service has no port 443 to the webhook port")
    policies = [p for p in find(docs, "NetworkPolicy")
                if matches(p["spec"].get("podSelector", {}).get("matchLabels"), labels)]
    if not policies:
        bad.append("no NetworkPolicy selects the webhook pods")
    for p in policies:
        bad += egress_violations(p, readers)
        if "Ingress" not in (p["spec"].get("policyTypes") or []):
            bad.append("the NetworkPolicy does not restrict ingress")
        for rule in p["spec"].get("ingress") or []:
            ports = rule.get("ports") or []
            if not ports:
                bad.append("a NetworkPolicy ingress rule admits every port")
            for port in ports:
                if port.get("port") not in (WEBHOOK_PORT, PROBE_PORT, "webhook", "probes") \
                        or "endPort" in port:
                    bad.append(f"the NetworkPolicy admits port {port}")
    return bad


def policy_violations(docs, overlay, ca_pem=None, readers=None):
    """Everything this section checks. `overlay` is where the certificates come from
    (cert-manager, self-signed, openshift; a rendering of COMPOSED stands for its overlay with
    its components); `readers`, the API readers in ("unique", "networks"; for a rendering of
    COMPOSED, its own by default)."""
    if overlay in COMPOSED:
        overlay, composed = COMPOSED[overlay]
        readers = composed if readers is None else readers
    readers = frozenset(readers or ())
    bad = webhook_violations(docs, overlay, ca_pem, "unique" in readers) + pod_violations(docs, readers) \
        + cluster_violations(docs, readers) + service_ca_violations(docs, overlay)
    if overlay == "cert-manager":
        bad += cert_manager_violations(docs)
    if overlay == "self-signed":
        secrets = [s for s in find(docs, "Secret") if s["metadata"]["name"] == TLS_SECRET]
        if not secrets or secrets[0].get("type") != "kubernetes.io/tls" \
                or not {"tls.crt", "tls.key"} <= set(secrets[0].get("data") or {}):
            bad.append(f"no kubernetes.io/tls Secret named exactly {TLS_SECRET}")
    return bad


class PolicyTest(unittest.TestCase):
    def assert_policy(self, overlay):
        docs = Rendered.get(self, overlay)
        self.assertEqual(policy_violations(docs, overlay, Rendered.ca_pem), [])

    def test_base_keeps_the_policy(self):
        self.assert_policy("base")

    def test_cert_manager_overlay_keeps_the_policy(self):
        self.assert_policy("cert-manager")

    def test_self_signed_overlay_keeps_the_policy(self):
        self.assert_policy("self-signed")

    def test_unique_addresses_component_keeps_the_policy(self):
        self.assert_policy(UNIQUE)

    def test_networks_component_keeps_the_policy_alone_with_unique_addresses_and_self_signed(self):
        for name in (NETWORKS, BOTH, SELF_SIGNED_NETWORKS):
            with self.subTest(rendering=name):
                self.assert_policy(name)

    def test_openshift_overlay_keeps_the_policy(self):
        self.assert_policy("openshift")

    def test_openshift_overlay_with_every_component_keeps_the_policy(self):
        self.assert_policy(OPENSHIFT_COMPOSED)

    def test_openshift_overlay_changes_only_what_the_service_ca_needs(self):
        # Against the base: the three annotations, nothing else.
        base = {(d["kind"], d["metadata"]["name"]): d for d in Rendered.get(self, "base")}
        for d in Rendered.get(self, "openshift"):
            d = copy.deepcopy(d)
            meta = d["spec"]["template"]["metadata"] if d["kind"] == "Deployment" else d["metadata"]
            for key in (SERVING_CERT_ANNOTATION, INJECT_CABUNDLE_ANNOTATION, REQUIRED_SCC_ANNOTATION):
                (meta.get("annotations") or {}).pop(key, None)
            if meta.get("annotations") == {}:
                del meta["annotations"]
            self.assertEqual(d, base[(d["kind"], d["metadata"]["name"])], d["kind"])

    def test_unique_addresses_component_changes_only_what_it_needs(self):
        # Against the overlay it is applied to: the same objects plus the RBAC, and in the
        # Deployment and NetworkPolicy only the flag, the token, the memory budget (room for the
        # index) and egress.
        plain = {(d["kind"], d["metadata"]["name"]): d for d in Rendered.get(self, "cert-manager")}
        with_component = {(d["kind"], d["metadata"]["name"]): d
                          for d in Rendered.get(self, UNIQUE)}
        added = set(with_component) - set(plain)
        self.assertEqual({k for k, _ in added},
                         {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
        self.assertFalse(set(plain) - set(with_component))
        for key, doc in plain.items():
            if key[0] not in ("Deployment", "NetworkPolicy", "ValidatingWebhookConfiguration"):
                self.assertEqual(with_component[key], doc, key)
        # The validating webhook declares the Leases it writes, and nothing else changes.
        hook = copy.deepcopy(with_component[("ValidatingWebhookConfiguration", "ipamclaim-webhook")])
        self.assertEqual(hook["webhooks"][0]["sideEffects"], "NoneOnDryRun")
        hook["webhooks"][0]["sideEffects"] = "None"
        self.assertEqual(hook, plain[("ValidatingWebhookConfiguration", "ipamclaim-webhook")])
        dep = copy.deepcopy(with_component[("Deployment", "ipamclaim-webhook")])
        pod = at(dep, "spec", "template", "spec")
        container = pod["containers"][0]
        self.assertEqual(container.pop("env"), [{"name": RESERVATION_NAMESPACE_ENV, "valueFrom": {
            "fieldRef": {"fieldPath": "metadata.namespace"}}}])
        self.assertEqual(container["args"].pop(), "--unique-addresses")
        self.assertIs(pod.pop("automountServiceAccountToken"), True)
        # The index gets 40 MiB of the same limit: the budget shrinks by as much.
        self.assertEqual(container["resources"]["limits"]["memory"], "128Mi")
        self.assertEqual(arg_value(container["args"], "--memory-budget"), "72Mi")
        base_dep = copy.deepcopy(plain[("Deployment", "ipamclaim-webhook")])
        base_pod = at(base_dep, "spec", "template", "spec")
        base_pod.pop("automountServiceAccountToken")
        base_args = base_pod["containers"][0]["args"]
        self.assertEqual(arg_value(base_args, "--memory-budget"), "112Mi")
        base_args[base_args.index("--memory-budget") + 1] = "72Mi"
        self.assertEqual(dep, base_dep)

    def test_networks_component_changes_only_what_it_needs(self):
        # Against the overlay it is applied to: the same objects plus its RBAC, and in the
        # Deployment and NetworkPolicy only the flag, the token and egress. No memory change:
        # the server plans the network index within --memory-budget.
        plain = {(d["kind"], d["metadata"]["name"]): d for d in Rendered.get(self, "cert-manager")}
        with_component = {(d["kind"], d["metadata"]["name"]): d
                          for d in Rendered.get(self, NETWORKS)}
        added = set(with_component) - set(plain)
        self.assertEqual(added, {("ClusterRole", "ipamclaim-webhook-networks"),
                                 ("ClusterRoleBinding", "ipamclaim-webhook-networks")})
        self.assertFalse(set(plain) - set(with_component))
        for key, doc in plain.items():
            if key[0] not in ("Deployment", "NetworkPolicy"):
                self.assertEqual(with_component[key], doc, key)
        dep = copy.deepcopy(with_component[("Deployment", "ipamclaim-webhook")])
        pod = at(dep, "spec", "template", "spec")
        self.assertEqual(pod["containers"][0]["args"].pop(), "--check-networks")
        self.assertIs(pod.pop("automountServiceAccountToken"), True)
        base_dep = copy.deepcopy(plain[("Deployment", "ipamclaim-webhook")])
        at(base_dep, "spec", "template", "spec").pop("automountServiceAccountToken")
        self.assertEqual(dep, base_dep)
        policy = with_component[("NetworkPolicy", "ipamclaim-webhook")]
        unique_policy = next(d for d in Rendered.get(self, UNIQUE) if d["kind"] == "NetworkPolicy")
        self.assertEqual(policy, unique_policy, "one egress rule, whichever component adds it")

    def test_both_components_compose_in_either_order(self):
        # One ServiceAccount, one token mount, one egress rule, each component's role, both
        # flags, and the room the unique-addresses component makes for the claims' index.
        docs = Rendered.get(self, BOTH)
        reversed_docs, error = kustomize(Rendered.user_kustomization(
            "both-reversed", "cert-manager", ("unique-addresses", "networks")))
        self.assertIsNone(error)
        flags = ("--check-networks", "--unique-addresses")
        def without_flags(rendered):
            rendered = copy.deepcopy(rendered)
            args = container_of(rendered)["args"]
            self.assertEqual(sorted(a for a in args if a in flags), sorted(flags))
            args[:] = [a for a in args if a not in flags]
            return rendered
        self.assertEqual(without_flags(reversed_docs), without_flags(docs))
        self.assertEqual(len(find(docs, "ServiceAccount")), 1)
        self.assertEqual(sorted(r["metadata"]["name"] for r in find(docs, "ClusterRole")),
                         ["ipamclaim-webhook-networks", "ipamclaim-webhook-unique-addresses"])
        self.assertIs(pod_of(docs)["automountServiceAccountToken"], True)
        self.assertEqual(arg_value(container_of(docs)["args"], "--memory-budget"), "72Mi")
        self.assertEqual(len(kind_of(docs, "NetworkPolicy")["spec"]["egress"]), 1)

    def test_self_signed_ca_bundle_is_the_ca_not_the_leaf(self):
        docs = Rendered.get(self, "self-signed")
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            for h in find(docs, kind)[0]["webhooks"]:
                bundle = base64.b64decode(h["clientConfig"]["caBundle"]).decode()
                self.assertEqual(bundle, Rendered.ca_pem)
                self.assertNotEqual(bundle, Rendered.leaf_pem)


def at(doc, *path):
    for p in path:
        doc = doc[p]
    return doc


def kind_of(docs, kind):
    return next(d for d in docs if d["kind"] == kind)


def pod_of(docs):
    return at(kind_of(docs, "Deployment"), "spec", "template", "spec")


def container_of(docs):
    return pod_of(docs)["containers"][0]


def validating(docs):
    return kind_of(docs, "ValidatingWebhookConfiguration")["webhooks"][0]


def mutating(docs):
    return kind_of(docs, "MutatingWebhookConfiguration")["webhooks"][0]


def set_arg(docs, flag, value):
    args = container_of(docs)["args"]
    args[args.index(flag) + 1] = value


# Each loosening someone might try, applied to the rendered output: the policy must catch all.
LOOSENINGS = {
    "failurePolicy Ignore": lambda d: validating(d).update(failurePolicy="Ignore"),
    "mutating sideEffects Some": lambda d: mutating(d).update(sideEffects="Some"),
    "matchPolicy Exact": lambda d: validating(d).update(matchPolicy="Exact"),
    "only v1 reviews": lambda d: mutating(d).update(admissionReviewVersions=["v1"]),
    "timeout 30s": lambda d: validating(d).update(timeoutSeconds=30),
    "no UPDATE": lambda d: validating(d)["rules"][0].update(operations=["CREATE"]),
    "no status subresource": lambda d: mutating(d)["rules"][0].update(resources=["ipamclaims"]),
    "matches pods too": lambda d: validating(d)["rules"][0]["resources"].append("pods"),
    "reinvocationPolicy Never": lambda d: mutating(d).update(reinvocationPolicy="Never"),
    "wrong path": lambda d: mutating(d)["clientConfig"]["service"].update(path="/validate"),
    "one replica": lambda d: kind_of(d, "Deployment")["spec"].update(replicas=1),
    "no PDB": lambda d: d.remove(kind_of(d, "PodDisruptionBudget")),
    "PDB blocks every drain": lambda d: kind_of(d, "PodDisruptionBudget")["spec"].update(minAvailable=2),
    "no spread": lambda d: pod_of(d).pop("topologySpreadConstraints"),
    "a ClusterRole": lambda d: d.append({"apiVersion": "rbac.authorization.k8s.io/v1",
                                         "kind": "ClusterRole", "metadata": {"name": "x"}}),
    "pod token mounted": lambda d: pod_of(d).update(automountServiceAccountToken=True),
    "account token mounted": lambda d: kind_of(d, "ServiceAccount").update(automountServiceAccountToken=True),
    "root user": lambda d: pod_of(d)["securityContext"].update(runAsUser=0),
    "a fixed UID again": lambda d: pod_of(d)["securityContext"].update(runAsUser=65532),
    "a fixed UID in the container": lambda d: container_of(d)["securityContext"].update(runAsUser=65532),
    "a fixed group": lambda d: pod_of(d)["securityContext"].update(runAsGroup=65532),
    "a fixed group in the container": lambda d: container_of(d)["securityContext"].update(runAsGroup=65532),
    "a fixed fsGroup": lambda d: pod_of(d)["securityContext"].update(fsGroup=65532),
    "fixed supplemental groups": lambda d: pod_of(d)["securityContext"].update(supplementalGroups=[65532]),
    "key unreadable without an fsGroup": lambda d: pod_of(d)["volumes"][0]["secret"].update(defaultMode=0o440),
    "Secret volume writable": lambda d: pod_of(d)["volumes"][0]["secret"].update(defaultMode=0o644),
    "Secret volume with the default mode": lambda d: pod_of(d)["volumes"][0]["secret"].pop("defaultMode"),
    "--record-denied on no volume": lambda d: container_of(d)["args"].extend(
        ["--record-denied", "/var/lib/denied"]),
    "--record-denied into the Secret": lambda d: container_of(d)["args"].extend(
        ["--record-denied", "/tls/denied"]),
    "--record-denied set from the environment": lambda d: container_of(d).setdefault("env", []).append(
        {"name": "IPAMCLAIM_WEBHOOK_RECORD_DENIED", "value": "/denied"}),
    "--client-ca on no volume": lambda d: container_of(d)["args"].extend(
        ["--client-ca", "/etc/ipamclaim/ca.crt"]),
    "container runs as root": lambda d: container_of(d)["securityContext"].update(runAsNonRoot=False),
    "writable root": lambda d: container_of(d)["securityContext"].update(readOnlyRootFilesystem=False),
    "privilege escalation": lambda d: container_of(d)["securityContext"].update(allowPrivilegeEscalation=True),
    "NET_ADMIN": lambda d: container_of(d)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
    "keeps capabilities": lambda d: container_of(d)["securityContext"]["capabilities"].update(drop=[]),
    "unconfined seccomp": lambda d: (pod_of(d)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
                                     container_of(d)["securityContext"].pop("seccompProfile")),
    "no memory limit": lambda d: container_of(d)["resources"].pop("limits"),
    "memory limit over 128Mi": lambda d: container_of(d)["resources"]["limits"].update(memory="256Mi"),
    "memory budget over the limit": lambda d: set_arg(d, "--memory-budget", "128Mi"),
    "liveness on the webhook port": lambda d: container_of(d)["livenessProbe"]["httpGet"].update(port="webhook"),
    "grace shorter than shutdown": lambda d: set_arg(d, "--shutdown-timeout", "30"),
    "webhook on IPv4 only": lambda d: set_arg(d, "--listen", "0.0.0.0:8443"),
    "probes on IPv4 only": lambda d: set_arg(d, "--probe-listen", "0.0.0.0:8080"),
    "grace shorter than delay plus shutdown": lambda d: set_arg(d, "--shutdown-delay", "10"),
    "hostNetwork": lambda d: pod_of(d).update(hostNetwork=True),
    "NetworkPolicy admits every port": lambda d: kind_of(d, "NetworkPolicy")["spec"]["ingress"].append({}),
    "NetworkPolicy admits port 22": lambda d: kind_of(d, "NetworkPolicy")["spec"]["ingress"][0]["ports"].append({"port": 22}),
    "NetworkPolicy opens egress": lambda d: kind_of(d, "NetworkPolicy")["spec"].update(egress=[{}]),
    "Service to the probe port": lambda d: kind_of(d, "Service")["spec"]["ports"][0].update(targetPort="probes"),
}


def cluster_role(docs):
    return kind_of(docs, "ClusterRole")


def role(docs):
    return kind_of(docs, "Role")


def leases_in_a_cluster_role(docs):
    """The Role's rule moved into a ClusterRole bound cluster-wide: every namespace's Leases."""
    docs.remove(role(docs))
    docs.remove(kind_of(docs, "RoleBinding"))
    docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "ipamclaim-webhook-reservations"},
                 "rules": copy.deepcopy(RESERVATION_RULES)})
    docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "ipamclaim-webhook-reservations"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "ipamclaim-webhook-reservations"},
                 "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]})


def webhook_config(docs, kind):
    return kind_of(docs, kind)["metadata"].setdefault("annotations", {})


# Each loosening of the openshift overlay's certificates: the policy must catch all.
SERVICE_CA_LOOSENINGS = {
    "no serving certificate": lambda d: kind_of(d, "Service")["metadata"]["annotations"].clear(),
    "serving certificate into another Secret": lambda d: kind_of(d, "Service")["metadata"][
        "annotations"].update({SERVING_CERT_ANNOTATION: "other"}),
    "no CA bundle for the validating webhook": lambda d: webhook_config(
        d, "ValidatingWebhookConfiguration").pop(INJECT_CABUNDLE_ANNOTATION),
    "no CA bundle for the mutating webhook": lambda d: webhook_config(
        d, "MutatingWebhookConfiguration").pop(INJECT_CABUNDLE_ANNOTATION),
    "CA bundle injection off": lambda d: webhook_config(
        d, "MutatingWebhookConfiguration").update({INJECT_CABUNDLE_ANNOTATION: "false"}),
    "a caBundle written here": lambda d: validating(d)["clientConfig"].update(
        caBundle=base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()),
    "cert-manager injection too": lambda d: webhook_config(
        d, "ValidatingWebhookConfiguration").update(
            {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/ipamclaim-webhook-ca"}),
    "a cert-manager Certificate": lambda d: d.append(
        {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
         "metadata": {"name": "ipamclaim-webhook-serving", "namespace": NAMESPACE},
         "spec": {"secretName": TLS_SECRET}}),
    "a Secret of our own": lambda d: d.append(
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": TLS_SECRET, "namespace": NAMESPACE}}),
    "no pinned SCC": lambda d: kind_of(d, "Deployment")["spec"]["template"]["metadata"][
        "annotations"].pop(REQUIRED_SCC_ANNOTATION),
    "anyuid pinned": lambda d: kind_of(d, "Deployment")["spec"]["template"]["metadata"][
        "annotations"].update({REQUIRED_SCC_ANNOTATION: "anyuid"}),
}


# Each loosening of the unique-addresses component: the policy must catch all.
UNIQUE_LOOSENINGS = {
    "ClusterRole may update": lambda d: cluster_role(d)["rules"][0]["verbs"].append("update"),
    "ClusterRole reads Secrets": lambda d: cluster_role(d)["rules"].append(
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
    "ClusterRole on every resource": lambda d: cluster_role(d)["rules"][0].update(resources=["*"]),
    "ClusterRole on every group": lambda d: cluster_role(d)["rules"][0].update(apiGroups=["*"]),
    "binding to another account": lambda d: kind_of(d, "ClusterRoleBinding")["subjects"][0].update(name="default"),
    "binding to cluster-admin": lambda d: kind_of(d, "ClusterRoleBinding")["roleRef"].update(name="cluster-admin"),
    "a Role too": lambda d: d.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                      "metadata": {"name": "x", "namespace": NAMESPACE}}),
    "no ClusterRole": lambda d: d.remove(cluster_role(d)),
    "no token": lambda d: pod_of(d).update(automountServiceAccountToken=False),
    "no flag": lambda d: container_of(d)["args"].remove("--unique-addresses"),
    "no egress": lambda d: kind_of(d, "NetworkPolicy")["spec"].update(egress=[]),
    "egress to every port": lambda d: kind_of(d, "NetworkPolicy")["spec"]["egress"].append({}),
    "egress to DNS": lambda d: kind_of(d, "NetworkPolicy")["spec"]["egress"][0]["ports"].append({"port": 53, "protocol": "UDP"}),
    "egress port range": lambda d: kind_of(d, "NetworkPolicy")["spec"]["egress"][0]["ports"][0].update(endPort=8443),
    # The reservations across replicas (DESIGN §9).
    "Leases through a ClusterRole": leases_in_a_cluster_role,
    "ClusterRole on leases too": lambda d: cluster_role(d)["rules"].append(copy.deepcopy(RESERVATION_RULES[0])),
    "Role may list leases": lambda d: role(d)["rules"][0]["verbs"].append("list"),
    "Role may watch leases": lambda d: role(d)["rules"][0]["verbs"].append("watch"),
    "Role may patch leases": lambda d: role(d)["rules"][0]["verbs"].append("patch"),
    "Role with every verb": lambda d: role(d)["rules"][0].update(verbs=["*"]),
    "Role on every resource": lambda d: role(d)["rules"][0].update(resources=["*"]),
    "Role reads Secrets": lambda d: role(d)["rules"].append(
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
    "Role in another namespace": lambda d: role(d)["metadata"].update(namespace="kube-system"),
    "no Role": lambda d: d.remove(role(d)),
    "RoleBinding to another account": lambda d: kind_of(d, "RoleBinding")["subjects"][0].update(name="default"),
    "RoleBinding to a ClusterRole": lambda d: kind_of(d, "RoleBinding")["roleRef"].update(kind="ClusterRole", name="admin"),
    "validating sideEffects None": lambda d: validating(d).update(sideEffects="None"),
    "validating sideEffects Some": lambda d: validating(d).update(sideEffects="Some"),
    "mutating sideEffects NoneOnDryRun": lambda d: mutating(d).update(sideEffects="NoneOnDryRun"),
    "no reservation namespace": lambda d: container_of(d).pop("env"),
    "reservation namespace written out": lambda d: container_of(d)["env"].__setitem__(
        0, {"name": RESERVATION_NAMESPACE_ENV, "value": "kube-system"}),
    "reservation namespace from the node": lambda d: container_of(d)["env"][0]["valueFrom"]["fieldRef"].update(
        fieldPath="spec.nodeName"),
    "reservations in memory": lambda d: container_of(d)["args"].extend(["--reservations", "Memory"]),
    "reservations in memory from the environment": lambda d: container_of(d)["env"].append(
        {"name": "IPAMCLAIM_WEBHOOK_RESERVATIONS", "value": "Memory"}),
}


def networks_role(docs):
    return next(d for d in docs if d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "ipamclaim-webhook-networks")


def networks_binding(docs):
    return next(d for d in docs if d["kind"] == "ClusterRoleBinding"
                and d["metadata"]["name"] == "ipamclaim-webhook-networks")


def merge_networks_role_into_unique(docs):
    """One role reading both resources instead of one role each."""
    unique = next(d for d in docs if d["kind"] == "ClusterRole"
                  and d["metadata"]["name"] == "ipamclaim-webhook-unique-addresses")
    unique["rules"] += networks_role(docs)["rules"]
    docs.remove(networks_role(docs))
    docs.remove(networks_binding(docs))


# Each loosening of the networks component, with unique-addresses beside it: the policy must
# catch all (the RBAC is exactly what each flag needs).
NETWORKS_LOOSENINGS = {
    "networks role reads IPAMClaims too": lambda d: networks_role(d)["rules"][0]["resources"].append("ipamclaims"),
    "networks role may create": lambda d: networks_role(d)["rules"][0]["verbs"].append("create"),
    "networks role on every group": lambda d: networks_role(d)["rules"][0].update(apiGroups=["*"]),
    "networks role reads Secrets": lambda d: networks_role(d)["rules"].append(
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
    "networks binding to another account": lambda d: networks_binding(d)["subjects"][0].update(name="default"),
    "networks binding to cluster-admin": lambda d: networks_binding(d)["roleRef"].update(name="cluster-admin"),
    "no networks role": lambda d: d.remove(networks_role(d)),
    "one role for both": merge_networks_role_into_unique,
    "no --check-networks": lambda d: container_of(d)["args"].remove("--check-networks"),
    "no token": lambda d: pod_of(d).update(automountServiceAccountToken=False),
    "no egress": lambda d: kind_of(d, "NetworkPolicy")["spec"].update(egress=[]),
    "egress to DNS": lambda d: kind_of(d, "NetworkPolicy")["spec"]["egress"][0]["ports"].append({"port": 53, "protocol": "UDP"}),
}


class PolicyCanFailTest(unittest.TestCase):
    """Every rule of the policy is shown to catch the loosening it exists for."""

    def test_each_networks_loosening_is_caught(self):
        docs = Rendered.get(self, BOTH)
        for name, loosen in NETWORKS_LOOSENINGS.items():
            with self.subTest(loosening=name):
                broken = copy.deepcopy(docs)
                loosen(broken)
                self.assertTrue(policy_violations(broken, BOTH), f"{name} went unnoticed")
        # The networks component's RBAC where only --unique-addresses is on is too much.
        self.assertTrue(policy_violations(copy.deepcopy(docs), "cert-manager", readers={"unique"}))

    def test_the_check_networks_flag_without_the_component_is_caught(self):
        docs = copy.deepcopy(Rendered.get(self, "base"))
        container_of(docs)["args"].append("--check-networks")
        self.assertTrue(policy_violations(docs, "base"))
        docs = copy.deepcopy(Rendered.get(self, UNIQUE))
        container_of(docs)["args"].append("--check-networks")
        self.assertTrue(policy_violations(docs, UNIQUE), "the flag beside unique-addresses alone")

    def test_each_unique_addresses_loosening_is_caught(self):
        docs = Rendered.get(self, UNIQUE)
        for name, loosen in UNIQUE_LOOSENINGS.items():
            with self.subTest(loosening=name):
                broken = copy.deepcopy(docs)
                loosen(broken)
                self.assertTrue(policy_violations(broken, UNIQUE), f"{name} went unnoticed")

    def test_the_flag_without_the_component_is_caught(self):
        docs = copy.deepcopy(Rendered.get(self, "base"))
        container_of(docs)["args"].append("--unique-addresses")
        self.assertTrue(policy_violations(docs, "base"))

    def test_each_loosening_is_caught(self):
        docs = Rendered.get(self, "base")
        for name, loosen in LOOSENINGS.items():
            with self.subTest(loosening=name):
                broken = copy.deepcopy(docs)
                loosen(broken)
                self.assertTrue(policy_violations(broken, "base"), f"{name} went unnoticed")

    def test_each_openshift_loosening_is_caught(self):
        docs = Rendered.get(self, "openshift")
        for name, loosen in SERVICE_CA_LOOSENINGS.items():
            with self.subTest(loosening=name):
                broken = copy.deepcopy(docs)
                loosen(broken)
                self.assertTrue(policy_violations(broken, "openshift"), f"{name} went unnoticed")

    def test_service_ca_annotations_elsewhere_are_caught(self):
        # With cert-manager's cainjector, a second injector would fight over the caBundle.
        docs = copy.deepcopy(Rendered.get(self, "cert-manager"))
        webhook_config(docs, "MutatingWebhookConfiguration")[INJECT_CABUNDLE_ANNOTATION] = "true"
        self.assertTrue(policy_violations(docs, "cert-manager"))
        docs = copy.deepcopy(Rendered.get(self, "self-signed"))
        kind_of(docs, "Service")["metadata"]["annotations"] = {SERVING_CERT_ANNOTATION: TLS_SECRET}
        self.assertTrue(policy_violations(docs, "self-signed", Rendered.ca_pem))

    def test_cert_manager_without_injection_is_caught(self):
        docs = copy.deepcopy(Rendered.get(self, "cert-manager"))
        kind_of(docs, "MutatingWebhookConfiguration")["metadata"]["annotations"].clear()
        self.assertTrue(policy_violations(docs, "cert-manager"))
        docs = copy.deepcopy(Rendered.get(self, "cert-manager"))
        kind_of(docs, "ValidatingWebhookConfiguration")["metadata"]["annotations"][
            "cert-manager.io/inject-ca-from"] = f"{NAMESPACE}/ipamclaim-webhook-serving"
        self.assertTrue(policy_violations(docs, "cert-manager"), "injecting the leaf went unnoticed")

    def test_cert_manager_field_typo_is_caught(self):
        docs = copy.deepcopy(Rendered.get(self, "cert-manager"))
        cert = next(c for c in find(docs, "Certificate") if not c["spec"].get("isCA"))
        cert["spec"]["renewbefore"] = cert["spec"].pop("renewBefore")
        self.assertTrue(policy_violations(docs, "cert-manager"))

    def test_self_signed_with_the_leaf_as_ca_bundle_is_caught(self):
        docs = copy.deepcopy(Rendered.get(self, "self-signed"))
        validating(docs)["clientConfig"]["caBundle"] = base64.b64encode(
            Rendered.leaf_pem.encode()).decode()
        self.assertTrue(policy_violations(docs, "self-signed", Rendered.ca_pem))


# === runner ===


class CountingResult(unittest.TextTestResult):
    """Counts tests, not subtests: a test with a failing subtest is one failure."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed_ids = set()

    def _mark(self, test):
        self.failed_ids.add(getattr(test, "test_case", test).id())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._mark(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._mark(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._mark(test)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    # The monitoring component's and OpenShift's checks live in their own files and use this
    # module's helpers: register this run as `test_manifests` so that they share it instead of
    # importing a copy.
    sys.modules.setdefault("test_manifests", sys.modules[__name__])
    import test_monitoring
    import test_openshift
    suite.addTests(unittest.defaultTestLoader.loadTestsFromModule(test_monitoring))
    suite.addTests(unittest.defaultTestLoader.loadTestsFromModule(test_openshift))
    if len(sys.argv) > 1:  # run.sh WORD...: only the tests whose id holds one of the words
        def flatten(s):
            for t in s:
                yield from (flatten(t) if isinstance(t, unittest.TestSuite) else [t])
        suite = unittest.TestSuite(t for t in flatten(suite)
                                   if any(w in t.id() for w in sys.argv[1:]))
    # One stream, so that the closing line really comes last.
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=CountingResult)
    print(f"kubernetes-validate {kubernetes_validate.__version__}; Kubernetes "
          f"{', '.join(KUBERNETES_VERSIONS)}; binary {os.path.relpath(BIN, ROOT)}", flush=True)
    try:
        result = runner.run(suite)
    finally:
        Rendered.teardown()
    # Errors in setUpModule are not per test: count them as failures too.
    failed = len(result.failed_ids)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    if Rendered.cert_source:
        print(f"(self-signed overlay rendered with certificates from {Rendered.cert_source})")
    line = f"{passed} passed, {failed} failed"
    print(line + (f", {skipped} skipped" if skipped else ""), flush=True)
    return 0 if failed == 0 and result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
