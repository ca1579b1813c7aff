# Deployment targets, included by the Makefile (`include mk/deploy.mk`). They use its BIN, CARGO,
# CERTS_DIR and build/certs targets; the defaults below only matter when this file runs alone.

BIN        ?= $(or $(shell scripts/target-dir.sh),target)/debug/ipamclaim-webhook
CARGO      ?= cargo
CERTS_DIR  ?= certs
KUBECTL    ?= kubectl
DOCKER     ?= docker
IMG        ?= ipamclaim-webhook:latest
OVERLAY    ?= cert-manager
# openshift needs neither cert-manager nor prepare-certs: the service-ca operator issues the
# certificate and injects the caBundle.
OVERLAYS   := cert-manager self-signed openshift
OVERLAY_DIR = manifests/overlays/$(OVERLAY)

##@ Deployment

CRD_NAME   := ipamclaims.k8s.cni.cncf.io
CRD_DIR    := manifests/crd

.PHONY: manifests
manifests: build ## Regenerate manifests/crd/crd.yaml from `ipamclaim-webhook crd`.
	$(BIN) crd > $(CRD_DIR)/crd.yaml.tmp
	mv $(CRD_DIR)/crd.yaml.tmp $(CRD_DIR)/crd.yaml

.PHONY: prepare-certs
prepare-certs: $(CERTS_DIR)/tls.crt ## Copy certs/ into the self-signed overlay and write its caBundle patch.
	manifests/overlays/self-signed/prepare.sh $(CERTS_DIR)

.PHONY: render
render: $(if $(filter self-signed,$(OVERLAY)),prepare-certs) ## Print the manifests of OVERLAY (cert-manager, self-signed or openshift).
	@$(KUBECTL) kustomize $(OVERLAY_DIR)

.PHONY: deploy
deploy: $(if $(filter self-signed,$(OVERLAY)),prepare-certs) ## Install into the current kubectl context (OVERLAY=cert-manager|self-signed|openshift; WITH_CRD=1 installs our IPAMClaim CRD too, for clusters without one).
	@case " $(OVERLAYS) " in *" $(OVERLAY) "*) ;; *) echo "OVERLAY must be one of: $(OVERLAYS)" >&2; exit 2;; esac
ifeq ($(WITH_CRD),1)
	$(KUBECTL) apply -k $(CRD_DIR)
	$(KUBECTL) wait --for condition=established --timeout=60s crd/$(CRD_NAME)
else
	@$(KUBECTL) get crd $(CRD_NAME) >/dev/null 2>&1 || echo "note: this cluster has no IPAMClaim CRD yet: the network stack (OVN-Kubernetes, KubeVirt) installs it; for a cluster without one, run make deploy WITH_CRD=1 (see docs/deploy.md)" >&2
endif
	$(KUBECTL) apply -k $(OVERLAY_DIR)
	$(KUBECTL) -n ipamclaim-webhook rollout status deployment/ipamclaim-webhook --timeout=180s

# The webhook configurations go first, so that IPAMClaim writes are never refused by a webhook
# whose pods are already gone. No overlay holds the CRD. DELETE_CRD=1 deletes it too, and only
# when it is ours (the label `crd` prints): deleting it deletes every IPAMClaim in the cluster,
# and a network stack's CRD is never ours to delete.
.PHONY: undeploy
undeploy: $(if $(filter self-signed,$(OVERLAY)),prepare-certs) ## Remove from the current kubectl context; the CRD and claims stay (DELETE_CRD=1 removes the CRD `deploy WITH_CRD=1` installed, never a network stack's).
	@case " $(OVERLAYS) " in *" $(OVERLAY) "*) ;; *) echo "OVERLAY must be one of: $(OVERLAYS)" >&2; exit 2;; esac
	$(KUBECTL) delete validatingwebhookconfiguration,mutatingwebhookconfiguration ipamclaim-webhook --ignore-not-found
	$(KUBECTL) delete --ignore-not-found -k $(OVERLAY_DIR)
ifeq ($(DELETE_CRD),1)
	@owner=$$($(KUBECTL) get crd $(CRD_NAME) --ignore-not-found -o jsonpath='{.metadata.labels.app\.kubernetes\.io/part-of}'); \
	if [ "$$owner" = ipamclaim-webhook ]; then \
		$(KUBECTL) delete crd $(CRD_NAME); \
	elif $(KUBECTL) get crd $(CRD_NAME) >/dev/null 2>&1; then \
		echo "kept crd/$(CRD_NAME): it was not installed by make deploy WITH_CRD=1 (no label app.kubernetes.io/part-of=ipamclaim-webhook); its owner is the network stack" >&2; \
	fi
endif

.PHONY: image
image: ## Build the container image IMG (default ipamclaim-webhook:latest); needs a Docker engine.
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
		echo "make image: no Docker engine reachable ('$(DOCKER) info' failed); build the Dockerfile where one runs." >&2; \
		exit 1; \
	fi
	DOCKER_BUILDKIT=1 $(DOCKER) build -t $(IMG) .

.PHONY: test-manifests
test-manifests: build ## Render and check the manifests offline (kustomize, Kubernetes schemas, CRD drift, policy).
	BIN=$(BIN) tests/manifests/run.sh
