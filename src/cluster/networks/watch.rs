//! The list-and-watch of every NetworkAttachmentDefinition in the cluster (kube-rs
//! `runtime::watcher`), turned into index events.
//!
//! As for IPAMClaims ([`crate::cluster::watch`]): the watcher lists in pages, watches from the
//! list's `resourceVersion`, resumes, and re-lists after `410 Gone`; a re-list is collected
//! into a fresh [`Nads`] and swapped in whole once complete, so the last index keeps serving;
//! errors are retried with backoff; `/readyz` waits for the first full list; an RBAC refusal
//! is logged once, naming the permission, and keeps it failing. Each NAD's config is parsed
//! here, once per event, before the index's lock is taken.
//!
//! The watch runs on the thread and client of [`client`], beside the watch of IPAMClaims when
//! `--unique-addresses` is on too.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use kube::{Api, Client, Resource};
use serde::Deserialize;
use serde_json::Value;
use tracing::{debug, info};

use crate::cluster::client::{self, lean_metadata, Health, Named, Views};
use crate::cluster::networks::config::Nad;
use crate::cluster::networks::index::Nads;
use crate::cluster::networks::shared::SharedNetworks;

pub use crate::cluster::client::{Credentials, Watch, WatchError};

/// The API group of NetworkAttachmentDefinitions.
pub const GROUP: &str = "k8s.cni.cncf.io";
/// Their version.
pub const VERSION: &str = "v1";
/// Their kind.
pub const KIND: &str = "NetworkAttachmentDefinition";
/// Their resource name.
pub const PLURAL: &str = "network-attachment-definitions";
/// The resource the watch reads, as RBAC names it.
pub const RESOURCE: &str = "network-attachment-definitions.k8s.cni.cncf.io";

/// The watch as its log lines name it.
const NAMED: Named = Named {
    what: "NetworkAttachmentDefinitions",
    resource: RESOURCE,
    component: "networks",
};

/// Starts watching every NetworkAttachmentDefinition into `networks`, alone on its client
/// (`serve` starts every watch the flags enable on one client: see [`client::start`]). Returns
/// once the credentials are loaded and the client built (a broken kubeconfig fails here); the
/// API server is reached in the background.
pub fn start(credentials: Credentials, networks: Arc<SharedNetworks>) -> Result<Watch, WatchError> {
    client::start(
        credentials,
        Views {
            claims: None,
            networks: Some(networks),
        },
    )
}

/// Feeds `networks` from the watch until the task is dropped.
pub(crate) async fn run(client: Client, networks: &SharedNetworks) {
    let api: Api<WatchedNad> = Api::all(client);
    let mut events =
        std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut feed = Feed::new(networks);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => feed.event(event),
            Err(e) => feed.broke(&e),
        }
    }
}

/// Turns watcher events into index events, and reports the watch's health.
struct Feed<'a> {
    networks: &'a SharedNetworks,
    /// The re-list being collected (parsed NADs), indexed and swapped in whole once complete.
    relist: Option<(Vec<Nad>, Instant)>,
    /// How the watch goes.
    health: Health,
}

// === impl Feed ===

impl<'a> Feed<'a> {
    fn new(networks: &'a SharedNetworks) -> Self {
        Feed {
            networks,
            relist: None,
            health: Health::default(),
        }
    }

    fn event(&mut self, event: Event<WatchedNad>) {
        match event {
            Event::Init => self.relist = Some((Vec::new(), Instant::now())),
            Event::InitApply(object) => {
                let (nads, _) = self
                    .relist
                    .get_or_insert_with(|| (Vec::new(), Instant::now()));
                if let Some(nad) = object.nad() {
                    nads.push(nad);
                }
            }
            Event::InitDone => {
                let (nads, started) = self
                    .relist
                    .take()
                    .unwrap_or_else(|| (Vec::new(), Instant::now()));
                let mut index: Nads = nads.into_iter().collect();
                // A list is a whole cluster at once: give back what growing left unused.
                index.shrink_to_fit();
                let counts = index.counts();
                self.networks.reset(index);
                self.healthy();
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let first = self.networks.mark_ready();
                info!(
                    nads = counts.nads,
                    networks = counts.networks,
                    without_rules = counts.unruled,
                    invalid_configs = counts.invalid,
                    disagreeing = counts.disagreeing,
                    unnamed = counts.unnamed,
                    elapsed_ms,
                    "{}",
                    if first {
                        "index of networks ready: first list of NetworkAttachmentDefinitions complete"
                    } else {
                        "NetworkAttachmentDefinitions re-listed"
                    }
                );
            }
            Event::Apply(object) => {
                if let Some(nad) = object.nad() {
                    self.networks.apply(nad);
                }
                self.healthy();
            }
            Event::Delete(object) => {
                let meta = &object.metadata;
                self.networks.delete(
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default(),
                );
                self.healthy();
            }
        }
    }

    /// An event arrived: the watch works.
    fn healthy(&mut self) {
        self.health.healthy(self.networks, NAMED);
    }

    fn broke(&mut self, e: &watcher::Error) {
        self.health.broke(self.networks, NAMED, e);
    }
}

/// A NetworkAttachmentDefinition as the watch reads it: its name and namespace and
/// `spec.config`, read leniently, so that one odd NAD never breaks the list of all the others.
#[derive(Clone, Debug, Deserialize)]
pub struct WatchedNad {
    #[serde(deserialize_with = "lean_metadata")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<Value>,
}

// === impl WatchedNad ===

impl WatchedNad {
    /// The NAD the index keeps of it, its config parsed; `None` without a name.
    fn nad(&self) -> Option<Nad> {
        let meta = &self.metadata;
        let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let config = self
            .spec
            .as_ref()
            .and_then(|s| s.get("config"))
            .and_then(Value::as_str);
        let nad = Nad::parse(namespace, name, config);
        if let crate::admission::rules::networks::Addressing::Unruled(why) = &nad.addressing {
            debug!(namespace, name, network = ?nad.network, reason = %why, "NetworkAttachmentDefinition without address rules");
        }
        Some(nad)
    }
}

impl Resource for WatchedNad {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(KIND)
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(GROUP)
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(VERSION)
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(PLURAL)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::rules::networks::Networks as _;
    use kube::core::Status;

    fn watched(namespace: &str, name: &str, config: &str) -> WatchedNad {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "3",
                         "managedFields": [{"manager": "x"}]},
            "spec": {"config": config},
        }))
        .expect("a watched NAD")
    }

    const RED: &str = r#"{"name":"red","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.0.0.0/24","allowPersistentIPs":true}"#;
    const BLUE: &str = r#"{"name":"blue","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.1.0.0/24","allowPersistentIPs":true}"#;

    #[test]
    fn reads_only_what_the_index_keeps_and_tolerates_odd_shapes() {
        let nad = watched("ns1", "a", RED).nad().expect("nad");
        assert_eq!(nad.network.as_deref(), Some("red"));
        let odd: WatchedNad = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "b", "namespace": "ns1"}, "spec": {"config": {"name": "x"}}
        }))
        .expect("odd");
        assert_eq!(odd.nad().expect("nad").network, None);
        let nameless: WatchedNad =
            serde_json::from_value(serde_json::json!({"metadata": {}})).expect("nameless");
        assert!(nameless.nad().is_none());
    }

    fn status(code: u16) -> Box<Status> {
        Box::new(Status::failure("refused", "Forbidden").with_code(code))
    }

    #[test]
    fn a_refusal_is_logged_once_and_keeps_readiness_failing_until_a_list() {
        let networks = SharedNetworks::new();
        let mut feed = Feed::new(&networks);
        let refused = watcher::Error::InitialListFailed(kube::Error::Api(status(403)));
        feed.broke(&refused);
        feed.broke(&refused);
        assert_eq!(networks.stats().watch_restarts, 2);
        let why = networks.not_ready().expect("not ready");
        assert!(
            why.contains("forbidden to list network-attachment-definitions.k8s.cni.cncf.io"),
            "{why}"
        );
        feed.event(Event::Init);
        feed.event(Event::InitApply(watched("ns1", "a", RED)));
        feed.event(Event::InitDone);
        assert_eq!(networks.not_ready(), None);
        assert_eq!(networks.stats().counts.networks, 1);
    }

    #[test]
    fn a_relist_is_swapped_in_whole_and_the_old_index_serves_until_then() {
        let networks = SharedNetworks::new();
        let mut feed = Feed::new(&networks);
        feed.event(Event::Init);
        feed.event(Event::InitApply(watched("ns1", "a", RED)));
        feed.event(Event::InitDone);
        assert!(networks.is_ready());
        feed.event(Event::Init);
        feed.event(Event::InitApply(watched("ns1", "b", BLUE)));
        assert!(networks.network("red").is_some());
        assert!(networks.network("blue").is_none());
        feed.event(Event::InitDone);
        assert!(networks.network("red").is_none());
        assert!(networks.network("blue").is_some());
        // Watch events apply in order.
        feed.event(Event::Apply(watched("ns2", "c", RED)));
        assert!(networks.network("red").is_some());
        feed.event(Event::Delete(watched("ns1", "b", BLUE)));
        assert!(networks.network("blue").is_none());
    }
}
