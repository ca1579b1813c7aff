"""OpenShift as it comes, and the image under any user (issue 30), checked offline.

1. restricted-v2, OpenShift's default SCC, applied to the rendered pod templates (the openshift
   overlay, alone and with both components, and the base) as the SCC admission applies it: it
   fills in what the pod leaves to it, then validates. The pods must be admitted, and must leave
   to it only what has to come from the namespace (UID, groups, SELinux level). Every rule is
   shown to refuse the loosening it exists for, and a base that fixes a UID again is refused end
   to end.
2. who the process is and whether it reads its key: the user and groups a container runtime
   gives the process (the image's USER on a plain cluster; the SCC's UID, group 0 and fsGroup on
   OpenShift) against the Secret's files as the kubelet writes them; and the Dockerfile's USER.
3. the binary under those users: laid out as the Dockerfile installs it, with the Secret's files
   laid out as the kubelet writes them, run as 65532:65532 with no supplementary group (a plain
   cluster; ordinary certificates) and as 1000680000 with group 0 and the fsGroup (OpenShift; a
   certificate shaped like the service-ca operator's: RSA, PKCS#1 key, the CA after the leaf),
   it serves and creates no file anywhere; with --record-denied it writes only into that
   directory; a key it cannot read keeps it from starting. Every path option of `serve` is known
   to be read or written (test_manifests.py checks each lies on a mounted volume). These run the
   binary as other users, so they need root (CI runs as root); they skip otherwise, saying so.

What this cannot check without an OpenShift cluster: the SCC admission itself (the model below
follows the SCC's documented strategies, not its code), the service-ca operator's Secret and
caBundle (only the annotations that ask for them), and the kubelet and CRI-O on a node.
"""

import copy
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import test_manifests as tm
from test_monitoring import LiveServer

DOCKERFILE = os.path.join(tm.ROOT, "Dockerfile")
CAPTURED = os.path.join(tm.ROOT, "tests", "fixtures", "captured")

# === 1. restricted-v2 ===

# restricted-v2 as issue 30 lists its strategies. Where that list is stricter than the SCC
# OpenShift ships (which also allows the capability NET_BIND_SERVICE, the volume types csi,
# ephemeral and image, and any supplemental group), the stricter rule is kept: a pod admitted
# here is admitted there.
RESTRICTED_V2 = {
    "name": "restricted-v2",
    "allowHostNetwork": False,
    "allowHostPID": False,
    "allowHostIPC": False,
    "allowHostPorts": False,
    "allowPrivilegedContainer": False,
    "allowPrivilegeEscalation": False,
    "allowedCapabilities": [],
    "requiredDropCapabilities": ["ALL"],
    "runAsUser": "MustRunAsRange",
    "fsGroup": "MustRunAs",
    "supplementalGroups": "MustRunAs",
    # MustRunAs with no level of its own: the level is the namespace's.
    "seLinuxContext": "MustRunAs",
    "seccompProfiles": ["runtime/default"],
    "volumes": ["configMap", "downwardAPI", "emptyDir", "persistentVolumeClaim", "projected",
                "secret"],
}

# The annotations OpenShift gives a namespace when it creates it (here the range of the error
# quoted in issue 30): the SCC takes the UID, the groups and the SELinux level from them.
NAMESPACE_ANNOTATIONS = {
    "openshift.io/sa.scc.uid-range": "1000680000/10000",
    "openshift.io/sa.scc.supplemental-groups": "1000680000/10000",
    "openshift.io/sa.scc.mcs": "s0:c26,c15",
}

# What the SCC may assign from the namespace; anything else it would fill in, the manifests
# state themselves, so that every cluster (and the restricted Pod Security Standard on clusters
# without SCCs) runs the same pod.
FROM_THE_NAMESPACE = ("runAsUser", "fsGroup", "supplementalGroups", "seLinuxOptions")

SECCOMP_NAMES = {"RuntimeDefault": "runtime/default", "Unconfined": "unconfined",
                 "Localhost": "localhost"}


def namespace_range(key, annotations=None):
    """(first, last) of a `start/size` range annotation."""
    start, size = (annotations or NAMESPACE_ANNOTATIONS)[key].split("/")
    return int(start), int(start) + int(size) - 1


def scc_admit(pod, scc=RESTRICTED_V2, annotations=None):
    """Admits a pod spec as the SCC admission does with one SCC: it fills in what the pod leaves
    unset (the namespace's UID, fsGroup, supplemental groups and SELinux level; the SCC's
    seccomp profile, dropped capabilities and no privilege escalation), then validates.

    Returns (the pod as admitted, the refusals in the SCC's words, the fields it filled in as
    (path, value) pairs)."""
    annotations = annotations or NAMESPACE_ANNOTATIONS
    uid_min, uid_max = namespace_range("openshift.io/sa.scc.uid-range", annotations)
    group_min, group_max = namespace_range("openshift.io/sa.scc.supplemental-groups", annotations)
    level = annotations["openshift.io/sa.scc.mcs"]
    pod = copy.deepcopy(pod)
    psc = pod.setdefault("securityContext", {})
    filled, refused = [], []

    def fill(where, key, value, path):
        if key not in where:
            where[key] = value
            filled.append((path, value))

    # Generate.
    if scc["fsGroup"] == "MustRunAs":
        fill(psc, "fsGroup", group_min, "spec.securityContext.fsGroup")
    if scc["supplementalGroups"] == "MustRunAs":
        fill(psc, "supplementalGroups", [group_min], "spec.securityContext.supplementalGroups")
    if scc["seLinuxContext"] == "MustRunAs":
        fill(psc, "seLinuxOptions", {"level": level}, "spec.securityContext.seLinuxOptions")
    if "seccompProfile" not in psc:
        fill(psc, "seccompProfile", {"type": "RuntimeDefault"},
             "spec.securityContext.seccompProfile")
    containers = [("containers", i, c) for i, c in enumerate(pod.get("containers") or [])] + \
        [("initContainers", i, c) for i, c in enumerate(pod.get("initContainers") or [])]
    for part, i, c in containers:
        csc = c.setdefault("securityContext", {})
        where = f"spec.{part}[{i}].securityContext"
        if "runAsUser" not in psc:
            fill(csc, "runAsUser", uid_min, f"{where}.runAsUser")
        if not scc["allowPrivilegeEscalation"]:
            fill(csc, "allowPrivilegeEscalation", False, f"{where}.allowPrivilegeEscalation")
        drop = csc.setdefault("capabilities", {}).setdefault("drop", [])
        for cap in scc["requiredDropCapabilities"]:
            if cap not in drop:
                drop.append(cap)
                filled.append((f"{where}.capabilities.drop", cap))

    # Validate.
    def refuse(path, value, detail):
        refused.append(f"{path}: Invalid value: {json.dumps(value)}: {detail}")

    for field, allowed, words in (("hostNetwork", "allowHostNetwork", "Host network"),
                                  ("hostPID", "allowHostPID", "Host PID"),
                                  ("hostIPC", "allowHostIPC", "Host IPC")):
        if pod.get(field) and not scc[allowed]:
            refuse(f"spec.securityContext.{field}", True, f"{words} is not allowed to be used")
    for i, v in enumerate(pod.get("volumes") or []):
        kinds = [k for k in v if k != "name"]
        for kind in kinds:
            if kind not in scc["volumes"]:
                refuse(f"spec.volumes[{i}]", kind, f"{kind} volumes are not allowed to be used")
    ranges = f"[{uid_min}, {uid_max}]"

    def check_uid(path, uid):
        if not uid_min <= uid <= uid_max:
            refuse(path, uid, f"must be in the ranges: {ranges}")

    if "runAsUser" in psc:
        check_uid("spec.securityContext.runAsUser", psc["runAsUser"])
    fs_group = psc.get("fsGroup")
    if fs_group is not None and not group_min <= fs_group <= group_max:
        refused.append(f"spec.securityContext.fsGroup: Invalid value: []int64{{{fs_group}}}: "
                       f"{fs_group} is not an allowed group")
    for g in psc.get("supplementalGroups") or []:
        if scc["supplementalGroups"] == "MustRunAs" and not group_min <= g <= group_max:
            refused.append(f"spec.securityContext.supplementalGroups: Invalid value: "
                           f"[]int64{{{g}}}: {g} is not an allowed group")

    def check_selinux(path, options):
        if options is None:
            return
        if options.get("level") != level:
            refuse(f"{path}.level", options.get("level"), f"must be {level}")
        for key in ("user", "role", "type"):
            if options.get(key):
                refuse(f"{path}.{key}", options[key], "must be empty")

    def check_seccomp(path, profile):
        name = SECCOMP_NAMES.get((profile or {}).get("type"), (profile or {}).get("type"))
        if profile is not None and name not in scc["seccompProfiles"]:
            refused.append(f"{path}: Forbidden: {name} is not an allowed seccomp profile. "
                           f"Valid values are {', '.join(scc['seccompProfiles'])}")

    check_selinux("spec.securityContext.seLinuxOptions", psc.get("seLinuxOptions"))
    check_seccomp("spec.securityContext.seccompProfile", psc.get("seccompProfile"))
    for part, i, c in containers:
        csc = c["securityContext"]
        where = f"spec.{part}[{i}].securityContext"
        if "runAsUser" in csc:
            check_uid(f"{where}.runAsUser", csc["runAsUser"])
        if csc.get("privileged") and not scc["allowPrivilegedContainer"]:
            refuse(f"{where}.privileged", True, "Privileged containers are not allowed")
        if csc.get("allowPrivilegeEscalation") and not scc["allowPrivilegeEscalation"]:
            refuse(f"{where}.allowPrivilegeEscalation", True,
                   "Allowing privilege escalation for containers is not allowed")
        for cap in csc["capabilities"].get("add") or []:
            if cap not in scc["allowedCapabilities"]:
                refuse(f"{where}.capabilities.add", cap, "capability may not be added")
        check_selinux(f"{where}.seLinuxOptions", csc.get("seLinuxOptions"))
        check_seccomp(f"{where}.seccompProfile", csc.get("seccompProfile"))
        for j, port in enumerate(c.get("ports") or []):
            if port.get("hostPort") and not scc["allowHostPorts"]:
                refuse(f"spec.{part}[{i}].ports[{j}].hostPort", port["hostPort"],
                       "Host ports are not allowed to be used")
    return pod, refused, filled


def with_token_volume(pod):
    """The pod as the ServiceAccount admission hands it on (before the SCC): with
    automountServiceAccountToken, a projected volume holding the token."""
    pod = copy.deepcopy(pod)
    if pod.get("automountServiceAccountToken"):
        pod.setdefault("volumes", []).append(
            {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {
                "path": "token"}}]}})
    return pod


def restricted_v2_violations(pod):
    """What keeps the pod from running unchanged under restricted-v2: the SCC's refusals, and
    every field the SCC would fill in that is not the namespace's to give."""
    _, refused, filled = scc_admit(with_token_volume(pod))
    return refused + [f"{path}: unset, restricted-v2 sets {json.dumps(value)}: state it"
                      for path, value in filled
                      if path.rsplit(".", 1)[-1] not in FROM_THE_NAMESPACE]


def psc_of(d):
    return tm.pod_of(d).setdefault("securityContext", {})


def csc_of(d):
    return tm.container_of(d).setdefault("securityContext", {})


# Each loosening restricted-v2 exists to refuse: the model must report each.
SCC_LOOSENINGS = {
    "a fixed UID again": lambda d: psc_of(d).update(runAsUser=65532),
    "a fixed UID in the container": lambda d: csc_of(d).update(runAsUser=65532),
    "root": lambda d: csc_of(d).update(runAsUser=0),
    "a fixed fsGroup": lambda d: psc_of(d).update(fsGroup=65532),
    "fixed supplemental groups": lambda d: psc_of(d).update(supplementalGroups=[65532]),
    "a fixed SELinux level": lambda d: psc_of(d).update(seLinuxOptions={"level": "s0:c1,c2"}),
    "an SELinux type": lambda d: csc_of(d).update(seLinuxOptions={"type": "spc_t"}),
    "NET_BIND_SERVICE added": lambda d: csc_of(d)["capabilities"].update(add=["NET_BIND_SERVICE"]),
    "NET_ADMIN added": lambda d: csc_of(d)["capabilities"].update(add=["NET_ADMIN"]),
    "capabilities kept": lambda d: csc_of(d)["capabilities"].update(drop=[]),
    "privileged": lambda d: csc_of(d).update(privileged=True),
    "privilege escalation": lambda d: csc_of(d).update(allowPrivilegeEscalation=True),
    "privilege escalation left to the SCC": lambda d: csc_of(d).pop("allowPrivilegeEscalation"),
    "unconfined seccomp": lambda d: psc_of(d).update(seccompProfile={"type": "Unconfined"}),
    "a localhost seccomp profile": lambda d: csc_of(d).update(
        seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}),
    "seccomp left to the SCC": lambda d: psc_of(d).pop("seccompProfile"),
    "hostNetwork": lambda d: tm.pod_of(d).update(hostNetwork=True),
    "hostPID": lambda d: tm.pod_of(d).update(hostPID=True),
    "hostIPC": lambda d: tm.pod_of(d).update(hostIPC=True),
    "a hostPort": lambda d: tm.container_of(d)["ports"][0].update(hostPort=8443),
    "a hostPath volume": lambda d: tm.pod_of(d)["volumes"].append(
        {"name": "host", "hostPath": {"path": "/etc"}}),
    "an nfs volume": lambda d: tm.pod_of(d)["volumes"].append(
        {"name": "nfs", "nfs": {"server": "nfs.example.com", "path": "/"}}),
}


class RestrictedV2Test(unittest.TestCase):
    def test_the_openshift_pod_runs_under_restricted_v2_unchanged(self):
        for name in ("openshift", tm.OPENSHIFT_COMPOSED, "base"):
            with self.subTest(rendering=name):
                pod = tm.pod_of(tm.Rendered.get(self, name))
                self.assertEqual(restricted_v2_violations(pod), [])

    def test_restricted_v2_assigns_only_the_namespace_s_ids(self):
        pod = tm.pod_of(tm.Rendered.get(self, "openshift"))
        admitted, refused, filled = scc_admit(pod)
        self.assertEqual(refused, [])
        self.assertEqual(sorted(p for p, _ in filled), [
            "spec.containers[0].securityContext.runAsUser",
            "spec.securityContext.fsGroup",
            "spec.securityContext.seLinuxOptions",
            "spec.securityContext.supplementalGroups"])
        self.assertEqual(admitted["containers"][0]["securityContext"]["runAsUser"], 1000680000)
        self.assertEqual(admitted["securityContext"]["fsGroup"], 1000680000)

    def test_each_loosening_is_refused(self):
        docs = tm.Rendered.get(self, "openshift")
        for name, loosen in SCC_LOOSENINGS.items():
            with self.subTest(loosening=name):
                broken = copy.deepcopy(docs)
                loosen(broken)
                self.assertTrue(restricted_v2_violations(tm.pod_of(broken)),
                                f"{name} went unnoticed")

    def test_refusals_read_like_openshift_s(self):
        docs = copy.deepcopy(tm.Rendered.get(self, "openshift"))
        csc_of(docs).update(runAsUser=65532)
        psc_of(docs).update(fsGroup=65532)
        self.assertEqual(restricted_v2_violations(tm.pod_of(docs)), [
            "spec.securityContext.fsGroup: Invalid value: []int64{65532}: 65532 is not an "
            "allowed group",
            "spec.containers[0].securityContext.runAsUser: Invalid value: 65532: must be in the "
            "ranges: [1000680000, 1000689999]"])

    def test_a_base_that_fixes_the_uid_again_is_refused_on_openshift(self):
        # End to end: the base's Deployment as it was before issue 30, rendered through the
        # openshift overlay. restricted-v2 and the policy both refuse it.
        copy_dir = tm.Rendered.fresh_copy("fixed-uid")
        deployment = os.path.join(copy_dir, "base", "deployment.yaml")
        with open(deployment) as f:
            text = f.read()
        fixed = text.replace("        runAsNonRoot: true\n        seccompProfile:",
                             "        runAsNonRoot: true\n        runAsUser: 65532\n"
                             "        seccompProfile:", 1)
        self.assertNotEqual(fixed, text, "the pod securityContext moved: update this test")
        with open(deployment, "w") as f:
            f.write(fixed)
        docs, error = tm.kustomize(os.path.join(copy_dir, "overlays", "openshift"))
        self.assertIsNone(error)
        self.assertIn("spec.securityContext.runAsUser: Invalid value: 65532: must be in the "
                      "ranges: [1000680000, 1000689999]",
                      restricted_v2_violations(tm.pod_of(docs)))
        self.assertTrue(tm.policy_violations(docs, "openshift"))


# === 2. who the process is, and whether it reads its key ===

# The image's /etc/passwd (distroless cc-debian12): the primary group of each user it names. A
# UID it does not name gets group 0 (CRI-O and containerd alike): OpenShift's "arbitrary UID,
# group 0".
IMAGE_PASSWD_GROUPS = {0: 0, 65532: 65532, 65534: 65534}


def dockerfile_stages(text):
    """The Dockerfile's stages, each a list of its instructions (continuation lines joined)."""
    stages, lines = [], re.sub(r"\\\n", " ", text).splitlines()
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def image_user(text):
    """(uid, gid or None) of the last stage's USER; raises ValueError when it is not a numeric,
    non-root user (the kubelet cannot check runAsNonRoot for a name, and the pod sets no UID)."""
    users = [i.split(None, 1)[1].strip() for i in dockerfile_stages(text)[-1]
             if i.upper().startswith("USER ")]
    if not users:
        raise ValueError("the runtime stage sets no USER: the image runs as root")
    m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    if not m:
        raise ValueError(f"USER {users[-1]}: not numeric, so the kubelet cannot check "
                         "runAsNonRoot")
    uid, gid = int(m.group(1)), m.group(2)
    if uid == 0:
        raise ValueError("USER 0: root")
    return uid, int(gid) if gid is not None else None


def binary_mode(text):
    """The mode the build stage installs the binary with (`install -m MODE`)."""
    for stage in dockerfile_stages(text):
        for i in stage:
            m = re.search(r"\binstall\b[^&]*?-m\s*([0-7]{3,4})\b[^&]*ipamclaim-webhook", i)
            if m:
                return int(m.group(1), 8)
    raise ValueError("no `install -m MODE ... ipamclaim-webhook` in the Dockerfile")


def read_dockerfile():
    with open(DOCKERFILE) as f:
        return f.read()


def process_identity(pod, container, image):
    """(uid, gid, supplementary groups) a container runtime gives the container's process: the
    container's or the pod's runAsUser/runAsGroup, else the image's USER; a UID the pod sets
    without a group takes its group from the image's /etc/passwd, else 0; the supplementary
    groups are the fsGroup and supplementalGroups."""
    psc = pod.get("securityContext") or {}
    csc = container.get("securityContext") or {}
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    if uid is None:
        uid = image[0]
        if gid is None:
            gid = image[1]
    if gid is None:
        gid = IMAGE_PASSWD_GROUPS.get(uid, 0)
    groups = {psc.get("fsGroup")} | set(psc.get("supplementalGroups") or [])
    return uid, gid, sorted(g for g in groups if g is not None and g != gid)


def secret_files(pod, volume):
    """(owner, group, mode) of a Secret volume's files as the kubelet writes them: root's; with
    an fsGroup, group-owned by it with group read added (it ORs 0440 into the files of a
    read-only volume), else group root and exactly the volume's mode."""
    mode = volume["secret"].get("defaultMode", 0o644)
    fs_group = (pod.get("securityContext") or {}).get("fsGroup")
    return (0, fs_group, mode | 0o440) if fs_group is not None else (0, 0, mode)


def can_read(identity, owner, group, mode):
    """Whether the kernel lets `identity` read a file of that owner, group and mode."""
    uid, gid, groups = identity
    if uid == 0:
        return True
    if uid == owner:
        return bool(mode & 0o400)
    if group == gid or group in groups:
        return bool(mode & 0o040)
    return bool(mode & 0o004)


def tls_volume(pod):
    return next(v for v in pod["volumes"] if "secret" in v)


def cluster_pod(docs, openshift):
    """The pod as the node runs it: on OpenShift after restricted-v2 has admitted it."""
    pod = tm.pod_of(docs)
    return scc_admit(with_token_volume(pod))[0] if openshift else pod


class ProcessIdentityTest(unittest.TestCase):
    def identity(self, name, openshift):
        pod = cluster_pod(tm.Rendered.get(self, name), openshift)
        return pod, process_identity(pod, pod["containers"][0], image_user(read_dockerfile()))

    def test_a_plain_cluster_runs_the_image_user_which_reads_the_key(self):
        pod, identity = self.identity("base", openshift=False)
        self.assertEqual(identity, (65532, 65532, []))
        self.assertTrue(can_read(identity, *secret_files(pod, tls_volume(pod))))

    def test_openshift_runs_a_uid_of_the_range_with_group_0_which_reads_the_key(self):
        pod, identity = self.identity("openshift", openshift=True)
        self.assertEqual(identity, (1000680000, 0, [1000680000]))
        self.assertEqual(secret_files(pod, tls_volume(pod)), (0, 1000680000, 0o444))
        self.assertTrue(can_read(identity, *secret_files(pod, tls_volume(pod))))

    def test_a_key_only_group_readable_is_unreadable_without_an_fsgroup(self):
        # Why the base mounts the Secret 0444 and not 0440: shown here, and by the live test.
        docs = copy.deepcopy(tm.Rendered.get(self, "base"))
        tls_volume(tm.pod_of(docs))["secret"]["defaultMode"] = 0o440
        pod = tm.pod_of(docs)
        identity = process_identity(pod, pod["containers"][0], image_user(read_dockerfile()))
        self.assertFalse(can_read(identity, *secret_files(pod, tls_volume(pod))))
        admitted = cluster_pod(docs, openshift=True)
        identity = process_identity(admitted, admitted["containers"][0],
                                    image_user(read_dockerfile()))
        self.assertTrue(can_read(identity, *secret_files(admitted, tls_volume(admitted))),
                        "on OpenShift the fsGroup makes it readable")

    def test_the_image_user_is_numeric_and_not_root(self):
        self.assertEqual(image_user(read_dockerfile()), (65532, 65532))

    def test_the_image_user_check_can_fail(self):
        text = read_dockerfile()
        for user in ("nonroot", "0:0", "0", "nonroot:nonroot"):
            with self.subTest(user=user):
                with self.assertRaises(ValueError):
                    image_user(re.sub(r"(?m)^USER .*$", f"USER {user}", text))
        with self.assertRaises(ValueError):
            image_user(re.sub(r"(?m)^USER .*$", "", text))

    def test_the_binary_is_installed_executable_by_anyone(self):
        mode = binary_mode(read_dockerfile())
        self.assertEqual(mode & 0o555, 0o555, f"{mode:#o}: another UID could not run it")
        self.assertFalse(mode & 0o022, f"{mode:#o}: writable by others")


# === 3. the binary under those users ===

# Where a process that owns nothing can create files on this machine, besides the directories
# made here: a write the image could not make (its root filesystem is read-only) shows up here.
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# --record-denied's volume in the pod that tests it.
DENIED_DIR = "/var/run/ipamclaim-webhook/denied"


def path_like_options(help_text):
    """The options of a `--help` text whose value names a file or a directory."""
    options = re.finditer(r"(?m)^\s+(--[a-z0-9-]+) <([A-Z_]+)>", help_text)
    return sorted({m.group(1) for m in options
                   if re.search(r"^(FILE|DIR|PATH)$|_(FILE|DIR|PATH|CERT|KEY|CA)$", m.group(2))})


def service_ca_shaped_certificates(out):
    """A pair shaped like the service-ca operator's Secret: an RSA 2048 key in PKCS#1 PEM
    (`BEGIN RSA PRIVATE KEY`), and tls.crt holding the leaf for the Service's name followed by
    the CA that signed it; ca.crt is that CA. None without openssl."""
    if shutil.which("openssl") is None:
        return None
    dns = f"{tm.SERVICE}.{tm.NAMESPACE}.svc"

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=out, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "1", "-subj", "/CN=openshift-service-serving-signer@1700000000")
    openssl("genrsa", "-traditional", "-out", "tls.key", "2048")
    openssl("req", "-new", "-key", "tls.key", "-out", "tls.csr", "-subj", f"/CN={dns}")
    with open(os.path.join(out, "san.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{dns},DNS:{dns}.cluster.local\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-out", "leaf.crt", "-extfile", "san.ext")
    with open(os.path.join(out, "tls.key")) as f:
        assert f.read().startswith("-----BEGIN RSA PRIVATE KEY-----")
    with open(os.path.join(out, "leaf.crt")) as leaf, open(os.path.join(out, "ca.crt")) as ca, \
            open(os.path.join(out, "tls.crt"), "w") as chain:
        chain.write(leaf.read() + ca.read())
    return out


def lay_out_secret(directory, files, owner, group, mode):
    """A Secret volume as the kubelet's atomic writer leaves it: the files in a timestamped
    directory, `..data` pointing at it, and each name a link through `..data`."""
    os.makedirs(directory)
    stamp = os.path.join(directory, "..2026_01_01_00_00_00.000000001")
    os.mkdir(stamp)
    for d in (directory, stamp):
        os.chown(d, owner, group)
        os.chmod(d, 0o755 | (0o2000 if group else 0))
    for name, source in files.items():
        target = os.path.join(stamp, name)
        shutil.copyfile(source, target)
        os.chown(target, owner, group)
        os.chmod(target, mode)
        os.symlink(os.path.join("..data", name), os.path.join(directory, name))
    os.symlink(os.path.basename(stamp), os.path.join(directory, "..data"))


def files_created_by(uid, since, roots, skip=()):
    """Every file or directory under `roots` (but not under `skip`) that `uid` owns and that
    changed since `since`."""
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if st.st_uid == uid and st.st_ctime >= since:
                    found.append(path)
    return sorted(set(found))


class Container:
    """The binary run for a rendered pod the way a node would run it, within a directory that
    stands for the container's root: the binary at /ipamclaim-webhook with the Dockerfile's
    mode, each Secret volume with `certs` laid out as the kubelet writes it for this pod, each
    emptyDir as the kubelet makes it (0777), and the process given the user and groups a
    container runtime gives it, in a world-writable working directory (and HOME), so that a
    write the read-only image could not make is seen rather than refused."""

    def __init__(self, directory, pod, certs):
        self.dir = directory
        self.pod = pod
        self.container = pod["containers"][0]
        self.identity = process_identity(pod, self.container, image_user(read_dockerfile()))
        self.root = os.path.join(directory, "root")
        self.scratch = os.path.join(directory, "scratch")
        os.makedirs(self.root)
        for d in (directory, self.root):
            os.chmod(d, 0o755)
        os.mkdir(self.scratch)
        os.chmod(self.scratch, 0o1777)
        self.binary = os.path.join(self.root, "ipamclaim-webhook")
        mode = binary_mode(read_dockerfile())
        st = os.stat(tm.BIN)
        try:
            # The debug binary is large: a link when it is already root's with the image's mode.
            if (st.st_uid, st.st_mode & 0o7777) != (0, mode):
                raise OSError("not as the image holds it")
            os.link(tm.BIN, self.binary)
        except OSError:
            shutil.copyfile(tm.BIN, self.binary)
            os.chmod(self.binary, mode)
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for mount in self.container.get("volumeMounts") or []:
            path = self.host_path(mount["mountPath"])
            volume = volumes[mount["name"]]
            if "secret" in volume:
                lay_out_secret(path, {k: os.path.join(certs, k) for k in ("tls.crt", "tls.key")},
                               *secret_files(pod, volume))
            elif "emptyDir" in volume:
                os.makedirs(path)
                os.chmod(path, 0o777)
        self.log_path = os.path.join(directory, "server.log")

    def host_path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def args(self):
        """The container's args with paths inside the root and listeners on loopback."""
        args = list(self.container["args"])
        for i, a in enumerate(args):
            if i and args[i - 1] in ("--listen", "--probe-listen"):
                args[i] = "127.0.0.1:0"
            elif i and args[i - 1] == "--shutdown-delay":
                args[i] = "0"
            elif a.startswith("/"):
                args[i] = self.host_path(a)
        return args

    def start(self):
        uid, gid, groups = self.identity
        self.since = time.time() - 1
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [self.binary, *self.args()], cwd=self.scratch, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log, user=uid, group=gid, extra_groups=groups,
                umask=0o022, env={"PATH": "/usr/bin:/bin", "HOME": self.scratch})
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def created_files(self):
        """What the process created: anywhere a process that owns nothing may write, and in
        this container's directories; not in those of other containers run beside it."""
        parent = os.path.dirname(self.dir)
        others = {os.path.join(parent, n) for n in os.listdir(parent)} - {self.dir}
        return files_created_by(self.identity[0], self.since, WORLD_WRITABLE + (self.dir,), others)


def review(invalid=False):
    with open(os.path.join(CAPTURED, "02-validate-create.json")) as f:
        body = json.load(f)
    if invalid:
        body["request"]["object"]["spec"]["interface"] = "a/b"
    return json.dumps(body).encode()


def exercise(container, ca_file, invalid=False):
    """Waits until the server is ready, then sends one review over TLS, trusting only
    `ca_file`; returns the AdmissionReview response."""
    listen, probe = LiveServer.wait_for_addresses(container.proc, container.log_path)
    ctx = ssl.create_default_context(cafile=ca_file)
    # The certificate names the Service, as the service-ca operator issues it; the chain is
    # still verified against the CA.
    ctx.check_hostname = False
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ctx))
    deadline = time.monotonic() + 20
    while True:
        try:
            with opener.open(f"http://{probe}/readyz", timeout=5) as r:
                if r.status == 200:
                    break
        except urllib.error.URLError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {container.log()[-2000:]}")
        time.sleep(0.05)
    req = urllib.request.Request(f"https://{listen}/validate", data=review(invalid),
                                 method="POST", headers={"Content-Type": "application/json"})
    with opener.open(req, timeout=10) as r:
        return json.loads(r.read())["response"]


class ImageUnderOtherUsersTest(unittest.TestCase):
    """The binary as the pods run it, under the users they run it as."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("running the binary as other users needs root (CI runs as "
                                    "root); the process model above still ran")
        cls.tmp = tempfile.mkdtemp(prefix="ipamclaim-openshift-")
        os.chmod(cls.tmp, 0o755)
        cls.plain_certs = os.path.join(cls.tmp, "plain-certs")
        run = subprocess.run([tm.BIN, "certs", "--out", cls.plain_certs], capture_output=True,
                             text=True)
        if run.returncode != 0:
            raise AssertionError(f"{tm.BIN} certs failed: {run.stderr}")
        os.mkdir(os.path.join(cls.tmp, "service-ca"))
        cls.service_ca_certs = service_ca_shaped_certificates(os.path.join(cls.tmp, "service-ca"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_pod(self, name, pod, certs, invalid=False):
        container = Container(os.path.join(self.tmp, name), pod, certs).start()
        try:
            answer = exercise(container, os.path.join(certs, "ca.crt"), invalid)
        finally:
            container.stop()
        return container, answer

    def test_serves_as_the_image_user_on_a_plain_cluster_and_writes_nothing(self):
        pod = cluster_pod(tm.Rendered.get(self, "base"), openshift=False)
        container, answer = self.run_pod("plain", pod, self.plain_certs)
        self.assertEqual(container.identity, (65532, 65532, []))
        self.assertTrue(answer["allowed"], answer)
        self.assertEqual(container.created_files(), [])

    def test_serves_as_an_openshift_user_with_a_service_ca_certificate_and_writes_nothing(self):
        if self.service_ca_certs is None:
            self.skipTest("openssl is needed to make a certificate shaped like service-ca's")
        pod = cluster_pod(tm.Rendered.get(self, "openshift"), openshift=True)
        container, answer = self.run_pod("openshift", pod, self.service_ca_certs)
        self.assertEqual(container.identity, (1000680000, 0, [1000680000]))
        self.assertTrue(answer["allowed"], answer)
        self.assertEqual(container.created_files(), [])

    def test_records_denials_only_into_its_volume(self):
        # A pod that records denials into an emptyDir, as docs/deploy.md shows: the policy
        # accepts it, and the server writes there and nowhere else. The same scan finding the
        # records shows it would find any other write.
        docs = copy.deepcopy(tm.Rendered.get(self, "openshift"))
        pod = tm.pod_of(docs)
        pod["volumes"].append({"name": "denied", "emptyDir": {"sizeLimit": "64Mi"}})
        pod["containers"][0]["volumeMounts"].append({"name": "denied", "mountPath": DENIED_DIR})
        pod["containers"][0]["args"] += ["--record-denied", DENIED_DIR]
        self.assertEqual(tm.mounted_path_violations(pod, pod["containers"][0]), [])
        container = Container(os.path.join(self.tmp, "record"), scc_admit(pod)[0],
                              self.plain_certs).start()
        try:
            answer = exercise(container, os.path.join(self.plain_certs, "ca.crt"), invalid=True)
            self.assertFalse(answer["allowed"], answer)
            denied = container.host_path(DENIED_DIR)
            deadline = time.monotonic() + 10
            while not os.listdir(denied) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            container.stop()
        created = container.created_files()
        inside = [p for p in created if p.startswith(denied + "/")]
        self.assertTrue(inside, f"no denial recorded: {container.log()[-2000:]}")
        self.assertEqual([p for p in created if p not in inside], [])

    def test_a_key_the_image_user_cannot_read_keeps_it_from_starting(self):
        # The loosening the Secret's 0444 guards against, shown on the real binary: 0440 with no
        # fsGroup leaves tls.key unreadable to 65532, and the server does not start.
        docs = copy.deepcopy(tm.Rendered.get(self, "base"))
        tls_volume(tm.pod_of(docs))["secret"]["defaultMode"] = 0o440
        container = Container(os.path.join(self.tmp, "unreadable"), tm.pod_of(docs),
                              self.plain_certs).start()
        try:
            with self.assertRaises(AssertionError):
                LiveServer.wait_for_addresses(container.proc, container.log_path, limit=15)
        finally:
            container.stop()
        self.assertRegex(container.log(), r"cannot read \S*/tls/tls\.(crt|key): Permission denied")


class PathOptionsTest(unittest.TestCase):
    def test_every_path_option_of_serve_is_known_to_read_or_write(self):
        run = subprocess.run([tm.BIN, "serve", "--help"], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(path_like_options(run.stdout),
                         sorted(tm.PATH_READ_FLAGS + tm.PATH_WRITE_FLAGS))

    def test_a_new_path_option_is_noticed(self):
        text = "Options:\n      --cache-dir <DIR>\n          Where to cache\n" \
               "      --tls-key <TLS_KEY>\n      --workers <WORKERS>\n" \
               "      --network-label <KEY>\n"
        self.assertEqual(path_like_options(text), ["--cache-dir", "--tls-key"])


if __name__ == "__main__":
    raise SystemExit("run through tests/manifests/run.sh (test_manifests.py loads this file)")
