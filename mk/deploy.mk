# Deployment targets, included by the Makefile (`include mk/deploy.mk`). They use its BIN, CARGO,
# CERTS_DIR and build/certs targets; the defaults below only matter when this file runs alone.

BIN        ?= $(or $(shell scripts/target-dir.sh),target)/debug/ipamclaim-webhook
CARGO      ?= cargo
CERTS_DIR  ?= certs
KUBECTL    ?= kubectl
DOCKER     ?= docker
IMG        ?= ipamclaim-webhook:latest
OVERLAY    ?= cert-manager
OVERLAYS   := cert-manager self-signed
OVERLAY_DIR = manifests/overlays/$(OVERLAY)

##@ Deployment

.PHONY: manifests
manifests: build ## Regenerate manifests/base/crd.yaml from `ipamclaim-webhook crd`.
	$(BIN) crd > manifests/base/crd.yaml.tmp
	mv manifests/base/crd.yaml.tmp manifests/base/crd.yaml

.PHONY: prepare-certs
prepare-certs: $(CERTS_DIR)/tls.crt ## Copy certs/ into the self-signed overlay and write its caBundle patch.
	manifests/overlays/self-signed/prepare.sh $(CERTS_DIR)

.PHONY: render
render: $(if $(filter self-signed,$(OVERLAY)),prepare-certs) ## Print the manifests of OVERLAY (cert-manager or self-signed).
	@$(KUBECTL) kustomize $(OVERLAY_DIR)

.PHONY: deploy
deploy: $(if $(filter self-signed,$(OVERLAY)),prepare-certs) ## Install into the current kubectl context (OVERLAY=cert-manager|self-signed; cert-manager needs cert-manager installed).
	@case " $(OVERLAYS) " in *" $(OVERLAY) "*) ;; *) echo "OVERLAY must be one of: $(OVERLAYS)" >&2; exit 2;; esac
	$(KUBECTL) apply -k $(OVERLAY_DIR)
	$(KUBECTL) -n ipamclaim-webhook rollout status deployment/ipamclaim-webhook --timeout=180s

# The webhook configurations go first, so that IPAMClaim writes are never refused by a webhook
# whose pods are already gone. The CRD stays unless DELETE_CRD=1: deleting it deletes every
# IPAMClaim in the cluster.
.PHONY: undeploy
undeploy: $(if $(filter self-signed,$(OVERLAY)),prepare-certs) ## Remove from the current kubectl context, keeping the CRD and the claims (DELETE_CRD=1 removes them too).
	@case " $(OVERLAYS) " in *" $(OVERLAY) "*) ;; *) echo "OVERLAY must be one of: $(OVERLAYS)" >&2; exit 2;; esac
	$(KUBECTL) delete validatingwebhookconfiguration,mutatingwebhookconfiguration ipamclaim-webhook --ignore-not-found
	$(KUBECTL) kustomize $(OVERLAY_DIR) \
		| awk -v keep_crd=$(if $(filter 1,$(DELETE_CRD)),0,1) ' \
			function flush() { if (doc != "" && !(keep_crd && doc ~ /(^|\n)kind: CustomResourceDefinition\n/)) printf "---\n%s", doc; doc = "" } \
			/^---$$/ { flush(); next } { doc = doc $$0 "\n" } END { flush() }' \
		| $(KUBECTL) delete --ignore-not-found -f -

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
