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
//! The watch runs on a thread of its own with a small runtime, so that listing 100,000 claims
//! never holds up the admission workers.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use kube::{Api, Client, Config, Resource};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::admission::model::types::{GROUP, KIND, PLURAL, VERSION};
use crate::cluster::index::{Claim, Claims};
use crate::cluster::shared::SharedIndex;

/// The resource the watch reads, as RBAC names it.
pub const RESOURCE: &str = "ipamclaims.k8s.cni.cncf.io";

/// Where the API server's address and credentials come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    /// `KUBECONFIG` or `~/.kube/config` when present, else the pod's service account.
    #[default]
    Infer,
    /// `--kubeconfig FILE`.
    Kubeconfig(PathBuf),
}

/// Why the watch could not start. Nothing here reaches the API server: these are local
/// problems, reported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// `--kubeconfig` could not be read or used.
    #[error("cannot use kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error("cannot find Kubernetes credentials (KUBECONFIG, ~/.kube/config or the pod's service account)")]
    Infer(#[source] kube::config::InferConfigError),
    /// The API client could not be built from the credentials.
    #[error("cannot build the Kubernetes API client")]
    Client(#[source] kube::Error),
    /// The watch thread or its runtime could not be started.
    #[error("cannot start the watch of IPAMClaims")]
    Thread(#[source] std::io::Error),
}

/// A running watch; dropping it stops the watch and waits for its thread.
#[derive(Debug)]
pub struct Watch {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts watching every IPAMClaim into `index`. Returns once the credentials are loaded and
/// the client built (a broken kubeconfig fails here); the API server is reached in the
/// background.
pub fn start(credentials: Credentials, index: Arc<SharedIndex>) -> Result<Watch, WatchError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), WatchError>>();
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("ipamclaim-watch".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(WatchError::Thread(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let client = match connect(&credentials).await {
                    Ok(client) => {
                        let _ = ready_tx.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                tokio::select! {
                    () = run(client, &index) => {}
                    _ = stop_rx => debug!("watch of IPAMClaims stopped"),
                }
            });
        })
        .map_err(WatchError::Thread)?;
    let mut watch = Watch {
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(watch),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            // The thread ended without a word: it panicked. Joining it reports nothing more.
            watch.stop.take();
            Err(WatchError::Thread(std::io::Error::other(
                "the watch thread ended before it started",
            )))
        }
    }
}

/// The API client for `credentials`.
async fn connect(credentials: &Credentials) -> Result<Client, WatchError> {
    let config = match credentials {
        Credentials::Infer => Config::infer().await.map_err(WatchError::Infer)?,
        Credentials::Kubeconfig(path) => {
            let kubeconfig_err = |source| WatchError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_err)?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(kubeconfig_err)?
        }
    };
    Client::try_from(config).map_err(WatchError::Client)
}

/// Feeds `index` from the watch until the task is dropped.
async fn run(client: Client, index: &SharedIndex) {
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
    /// The watch broke and has not completed an event since.
    broken: bool,
    /// An RBAC refusal was logged and nothing has succeeded since.
    forbidden: bool,
}

// === impl Feed ===

impl<'a> Feed<'a> {
    fn new(index: &'a SharedIndex) -> Self {
        Feed {
            index,
            relist: None,
            broken: false,
            forbidden: false,
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
        self.index.saw_event();
        if self.broken {
            info!("watch of IPAMClaims resumed");
        }
        self.broken = false;
        if self.forbidden {
            self.index.blocked_because(None);
        }
        self.forbidden = false;
    }

    fn broke(&mut self, e: &watcher::Error) {
        self.index.watch_broke();
        if let Some(verb) = forbidden_verb(e) {
            let reason = format!(
                "forbidden to {verb} {RESOURCE} at cluster scope: the service account needs get, list and watch on {RESOURCE}"
            );
            if !self.forbidden {
                // Once, not at every retry: the permission does not appear by itself.
                error!(
                    verb,
                    resource = RESOURCE,
                    error = %e,
                    "cannot watch IPAMClaims: {reason} (a ClusterRole and binding, see manifests/components/unique-addresses); /readyz fails until it is granted"
                );
            } else {
                debug!(error = %e, "watch of IPAMClaims still forbidden");
            }
            self.forbidden = true;
            self.broken = true;
            self.index.blocked_because(Some(reason));
            return;
        }
        let gone = matches!(e, watcher::Error::WatchError(status) if status.code == 410);
        warn!(
            error = %e,
            relist = gone,
            ready = self.index.is_ready(),
            "watch of IPAMClaims broke: retrying with backoff, the last index keeps serving"
        );
        self.broken = true;
    }
}

/// The verb an RBAC refusal (403) denied, if `e` is one.
fn forbidden_verb(e: &watcher::Error) -> Option<&'static str> {
    let forbidden =
        |err: &kube::Error| matches!(err, kube::Error::Api(status) if status.code == 403);
    match e {
        watcher::Error::InitialListFailed(err) if forbidden(err) => Some("list"),
        watcher::Error::WatchStartFailed(err) | watcher::Error::WatchFailed(err)
            if forbidden(err) =>
        {
            Some("watch")
        }
        watcher::Error::WatchError(status) if status.code == 403 => Some("watch"),
        _ => None,
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

/// `metadata` reduced to what the index and the watcher read (name, namespace, uid, and the
/// resourceVersion the watch resumes from); managed fields and the rest are skipped unread.
fn lean_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Lean {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        uid: Option<String>,
        #[serde(default)]
        resource_version: Option<String>,
    }
    let lean = Lean::deserialize(d)?;
    Ok(ObjectMeta {
        name: lean.name,
        namespace: lean.namespace,
        uid: lean.uid,
        resource_version: lean.resource_version,
        ..ObjectMeta::default()
    })
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
    fn names_the_verb_of_a_refusal() {
        let api = |code| kube::Error::Api(status(code));
        assert_eq!(
            forbidden_verb(&watcher::Error::InitialListFailed(api(403))),
            Some("list")
        );
        assert_eq!(
            forbidden_verb(&watcher::Error::WatchStartFailed(api(403))),
            Some("watch")
        );
        assert_eq!(
            forbidden_verb(&watcher::Error::WatchError(status(403))),
            Some("watch")
        );
        assert_eq!(
            forbidden_verb(&watcher::Error::WatchError(status(410))),
            None
        );
        assert_eq!(
            forbidden_verb(&watcher::Error::InitialListFailed(api(500))),
            None
        );
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
