//! The IPAMClaim custom resource (`k8s.cni.cncf.io/v1alpha1`), from which the CRD is generated.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the IPAMClaim resource.
pub const GROUP: &str = "k8s.cni.cncf.io";
/// API version of the IPAMClaim resource served by this webhook.
pub const VERSION: &str = "v1alpha1";
/// Kind of the IPAMClaim resource.
pub const KIND: &str = "IPAMClaim";
/// Plural resource name, as it appears in an AdmissionRequest's `resource`.
pub const PLURAL: &str = "ipamclaims";

/// The label (and its value) that `crd` puts on the CustomResourceDefinition it prints, so
/// that `make undeploy DELETE_CRD=1` can tell our CRD from the one a network stack installed
/// (which it must never delete).
pub const CRD_OWNER_LABEL: (&str, &str) = ("app.kubernetes.io/part-of", "ipamclaim-webhook");

/// The CustomResourceDefinition `ipamclaim-webhook crd` prints: the one generated from these
/// types, labelled with [`CRD_OWNER_LABEL`].
pub fn crd(
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt as _;
    let mut crd = IPAMClaim::crd();
    let (key, value) = CRD_OWNER_LABEL;
    crd.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(key.to_owned(), value.to_owned());
    crd
}

/// The desired state of a persistent IP allocation: which network and which pod interface.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "k8s.cni.cncf.io",
    version = "v1alpha1",
    kind = "IPAMClaim",
    plural = "ipamclaims",
    namespaced,
    status = "IPAMClaimStatus",
    doc = "IPAMClaim is the Schema for the IPAMClaim API: a persistent IP allocation for one pod interface on one network."
)]
#[serde(rename_all = "camelCase")]
pub struct IPAMClaimSpec {
    /// The network name for which this persistent allocation was created.
    pub network: String,
    /// The pod interface name for which this allocation was created.
    pub interface: String,
    /// The IP addresses requested for the interface (proposed upstream; at most one per IP family).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2))]
    pub ip_requests: Option<Vec<String>>,
}

/// The observed state: the addresses the IPAM side allocated, and who holds them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IPAMClaimStatus {
    /// The list of IP addresses (v4, v6) that were allocated for the pod interface.
    pub ips: Vec<String>,
    /// The pod holding the IPAMClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_pod: Option<OwnerPod>,
    /// Details for one aspect of the current state of this claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// The pod that currently holds the claim.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct OwnerPod {
    /// Name of the pod.
    pub name: String,
}

/// One condition of the claim, shaped like `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Type of condition in CamelCase or in foo.example.com/CamelCase.
    #[schemars(
        length(max = 316),
        regex(
            pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
        )
    )]
    pub r#type: String,
    /// Status of the condition, one of True, False, Unknown.
    pub status: ConditionStatus,
    /// The .metadata.generation that the condition was set based upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// The last time the condition transitioned from one status to another (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// A programmatic identifier for the reason of the last transition, in CamelCase.
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    )]
    pub reason: String,
    /// A human readable message about the transition.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// The three values of a condition's status.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known whether the condition holds.
    Unknown,
}
