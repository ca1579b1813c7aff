//! The list-and-watch of every IPAMClaim in the cluster (kube-rs `runtime::watcher`), turned
//! into index events.
//!
//! The watcher lists in pages (`limit`/`continue`), then watches from the list's
//! `resourceVersion` with bookmarks, resumes from the last version when a watch ends, and
//! re-lists when that version has expired (`410 Gone`). Here a re-list is collected into a
//! fresh [`Claims`] and swapped in whole once complete, so the last index keeps serving
//! meanwhile; errors are retried with backoff. `/readyz` waits for the first full list; an
//! RBAC refusal is logged once, naming the permission, and keeps it failing.
//!
//! The watch runs on the thread and client of [`client`], beside the watch of networks when
//! `--check-networks` is on too.

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
use tracing::info;

use crate::admission::model::types::{GROUP, KIND, PLURAL, VERSION};
use crate::cluster::client::{self, lean_metadata, Health, Named, Views};
use crate::cluster::index::{Claim, Claims};
use crate::cluster::shared::SharedIndex;

pub use crate::cluster::client::{Credentials, Watch, WatchError};

/// The resource the watch reads, as RBAC names it.
pub const RESOURCE: &str = "ipamclaims.k8s.cni.cncf.io";

/// The watch as its log lines name it.
const NAMED: Named = Named {
    what: "IPAMClaims",
    resource: RESOURCE,
    component: "unique-addresses",
};

/// Starts watching every IPAMClaim into `index`, alone on its client (`serve` starts every
/// watch the flags enable on one client: see [`client::start`]). Returns once the credentials
/// are loaded and the client built (a broken kubeconfig fails here); the API server is reached
/// in the background.
pub fn start(credentials: Credentials, index: Arc<SharedIndex>) -> Result<Watch, WatchError> {
    client::start(
        credentials,
        Views {
            claims: Some(index),
            networks: None,
        },
    )
}

/// Feeds `index` from the watch until the task is dropped.
pub(crate) async fn run(client: Client, index: &SharedIndex) {
    let api: Api<WatchedClaim> = Api::all(client);
    let mut events =
        std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut feed = Feed::new(index);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => feed.event(event),
            Err(e) => feed.broke(&e),
        }
    }
}

/// Turns watcher events into index events, and reports the watch's health.
struct Feed<'a> {
    index: &'a SharedIndex,
    /// The re-list being collected, swapped in whole once complete.
    relist: Option<(Claims, Instant)>,
    /// How the watch goes.
    health: Health,
}

// === impl Feed ===

impl<'a> Feed<'a> {
    fn new(index: &'a SharedIndex) -> Self {
        Feed {
            index,
            relist: None,
            health: Health::default(),
        }
    }

    fn event(&mut self, event: Event<WatchedClaim>) {
        match event {
            Event::Init => self.relist = Some((Claims::new(), Instant::now())),
            Event::InitApply(object) => {
                let (claims, _) = self
                    .relist
                    .get_or_insert_with(|| (Claims::new(), Instant::now()));
                if let Some(claim) = object.claim() {
                    claims.apply(claim);
                }
            }
            Event::InitDone => {
                let (mut claims, started) = self
                    .relist
                    .take()
                    .unwrap_or_else(|| (Claims::new(), Instant::now()));
                // A list is a whole cluster at once: give back what growing left unused.
                claims.shrink_to_fit();
                let (count, addresses) = (claims.len(), claims.addresses());
                self.index.reset(claims);
                self.healthy();
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                if self.index.mark_ready() {
                    info!(
                        claims = count,
                        addresses, elapsed_ms, "index of IPAMClaims ready: first list complete"
                    );
                } else {
                    info!(
                        claims = count,
                        addresses, elapsed_ms, "IPAMClaims re-listed"
                    );
                }
            }
            Event::Apply(object) => {
                if let Some(claim) = object.claim() {
                    self.index.apply(claim);
                }
                self.healthy();
            }
            Event::Delete(object) => {
                let meta = &object.metadata;
                self.index.delete(
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default(),
                    meta.uid.as_deref().unwrap_or_default(),
                );
                self.healthy();
            }
        }
    }

    /// An event arrived: the watch works.
    fn healthy(&mut self) {
        self.health.healthy(self.index, NAMED);
    }

    fn broke(&mut self, e: &watcher::Error) {
        self.health.broke(self.index, NAMED, e);
    }
}

/// An IPAMClaim as the watch reads it: only what the index keeps, read leniently, so that a
/// claim written under a newer or looser CRD (a field of another type, a missing one) never
/// breaks the list of all the others.
#[derive(Clone, Debug, Deserialize)]
pub struct WatchedClaim {
    #[serde(deserialize_with = "lean_metadata")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
}

// === impl WatchedClaim ===

impl WatchedClaim {
    /// The claim the index keeps of it.
    fn claim(&self) -> Option<Claim> {
        let meta = &self.metadata;
        Claim::from_parts(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default(),
            self.spec.as_ref(),
            self.status.as_ref(),
        )
    }
}

impl Resource for WatchedClaim {
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
    use crate::cluster::shared::DEFAULT_RESERVATION_TTL;
    use kube::core::Status;

    fn watched(json: &str) -> WatchedClaim {
        serde_json::from_str(json).expect("a watched claim")
    }

    const A: &str = r#"{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","metadata":{"name":"a","namespace":"ns1","uid":"u1","resourceVersion":"7","managedFields":[{"manager":"x"}]},"spec":{"network":"red","interface":"eth0"},"status":{"ips":["10.0.0.5/24"]}}"#;

    #[test]
    fn reads_only_what_the_index_keeps_and_tolerates_odd_shapes() {
        let claim = watched(A).claim().expect("claim");
        assert_eq!(
            claim.addresses,
            ["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(watched(A).metadata.resource_version.as_deref(), Some("7"));
        // Fields of unexpected types hold nothing, but do not fail the list.
        let odd = watched(
            r#"{"metadata":{"name":"b","namespace":"ns1"},"spec":{"network":7,"ipRequests":"x"},"status":{"ips":[1,null,"10.0.0.6"]}}"#,
        );
        assert!(odd.claim().expect("claim").addresses.is_empty());
        let no_spec = watched(r#"{"metadata":{"name":"c"}}"#);
        assert_eq!(no_spec.claim().expect("claim").network, "");
    }

    fn status(code: u16) -> Box<Status> {
        Box::new(Status::failure("refused", "Forbidden").with_code(code))
    }

    #[test]
    fn a_refusal_is_logged_once_and_keeps_readiness_failing_until_an_event() {
        let index = SharedIndex::new(DEFAULT_RESERVATION_TTL);
        let mut feed = Feed::new(&index);
        let refused = watcher::Error::InitialListFailed(kube::Error::Api(status(403)));
        feed.broke(&refused);
        feed.broke(&refused);
        assert_eq!(index.stats().watch_restarts, 2);
        let why = index.not_ready().expect("not ready");
        assert!(
            why.contains("forbidden to list ipamclaims.k8s.cni.cncf.io"),
            "{why}"
        );
        feed.event(Event::Init);
        feed.event(Event::InitApply(watched(A)));
        feed.event(Event::InitDone);
        assert_eq!(index.not_ready(), None);
        assert_eq!(index.stats().claims, 1);
    }

    #[test]
    fn a_relist_is_swapped_in_whole_and_the_old_index_serves_until_then() {
        let index = SharedIndex::new(DEFAULT_RESERVATION_TTL);
        let mut feed = Feed::new(&index);
        feed.event(Event::Init);
        feed.event(Event::InitApply(watched(A)));
        feed.event(Event::InitDone);
        assert!(index.is_ready());
        // A re-list that no longer shows `a`: until it completes, `a` still holds its address.
        feed.event(Event::Init);
        let b = A
            .replace(r#""name":"a""#, r#""name":"b""#)
            .replace("10.0.0.5", "10.0.0.6");
        feed.event(Event::InitApply(watched(&b)));
        assert_eq!(index.stats().claims, 1);
        let other = crate::admission::rules::conflicts::Claimant {
            namespace: "ns1",
            name: "z",
        };
        use crate::admission::rules::conflicts::Holders as _;
        assert!(index
            .holder("red", "10.0.0.5".parse().unwrap(), &other)
            .is_some());
        feed.event(Event::InitDone);
        assert!(index
            .holder("red", "10.0.0.5".parse().unwrap(), &other)
            .is_none());
        assert!(index
            .holder("red", "10.0.0.6".parse().unwrap(), &other)
            .is_some());
        // Watch events apply in order.
        feed.event(Event::Delete(watched(&b)));
        assert_eq!(index.stats().claims, 0);
        feed.event(Event::Apply(watched(A)));
        assert_eq!(index.stats().claims, 1);
    }
}
