//! The one API client every watch shares, and the thread the watches run on: one set of
//! credentials and one connection pool for the views the flags enable (IPAMClaims for
//! `--unique-addresses`, NetworkAttachmentDefinitions for `--check-networks`), and what the
//! watches have in common (RBAC refusals, the lean metadata they keep).
//!
//! The watches run on a thread of their own with a small runtime, so that listing 100,000
//! claims or 10,000 NADs never holds up the admission workers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde::{Deserialize, Deserializer};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::cluster::networks::SharedNetworks;
use crate::cluster::shared::SharedIndex;

/// Where the API server's address and credentials come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    /// `KUBECONFIG` or `~/.kube/config` when present, else the pod's service account.
    #[default]
    Infer,
    /// `--kubeconfig FILE`.
    Kubeconfig(PathBuf),
}

/// Why the watches could not start. Nothing here reaches the API server: these are local
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
    #[error("cannot start the watch of {0}")]
    Thread(&'static str, #[source] std::io::Error),
}

/// The views to feed, each `None` when its flag is off (then its resource is never read).
#[derive(Clone, Debug, Default)]
pub struct Views {
    /// `--unique-addresses`: every IPAMClaim.
    pub claims: Option<Arc<SharedIndex>>,
    /// `--check-networks`: every NetworkAttachmentDefinition.
    pub networks: Option<Arc<SharedNetworks>>,
}

// === impl Views ===

impl Views {
    /// What the watches read, for errors and logs.
    fn what(&self) -> &'static str {
        match (&self.claims, &self.networks) {
            (Some(_), Some(_)) => "IPAMClaims and NetworkAttachmentDefinitions",
            (None, Some(_)) => "NetworkAttachmentDefinitions",
            _ => "IPAMClaims",
        }
    }
}

/// A thread of the cluster's own (the watches', the reservations'), running a small runtime
/// until stopped; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct Background {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Running watches; dropping it stops them and waits for their thread.
pub type Watch = Background;

impl Background {
    /// `thread`, which stops when `stop` is sent or dropped.
    pub(crate) fn new(stop: oneshot::Sender<()>, thread: std::thread::JoinHandle<()>) -> Self {
        Background {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a watch for each view of `views`, all on one API client built from `credentials`.
/// Returns once the credentials are loaded and the client built (a broken kubeconfig fails
/// here); the API server is reached in the background.
pub fn start(credentials: Credentials, views: Views) -> Result<Watch, WatchError> {
    let what = views.what();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), WatchError>>();
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("cluster-watch".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(WatchError::Thread(what, e)));
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
                    () = run(client, views) => {}
                    _ = stop_rx => debug!(watching = what, "watches stopped"),
                }
            });
        })
        .map_err(|e| WatchError::Thread(what, e))?;
    let watch = Background::new(stop_tx, thread);
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(watch),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            // The thread ended without a word: it panicked. Joining it (as `watch` is
            // dropped) reports nothing more.
            Err(WatchError::Thread(
                what,
                std::io::Error::other("the watch thread ended before it started"),
            ))
        }
    }
}

/// Feeds every view from its watch, on clones of one client (they share its connections),
/// until the task is dropped.
async fn run(client: Client, views: Views) {
    let claims = async {
        if let Some(index) = &views.claims {
            crate::cluster::watch::run(client.clone(), index).await;
        }
    };
    let networks = async {
        if let Some(networks) = &views.networks {
            crate::cluster::networks::watch::run(client.clone(), networks).await;
        }
    };
    futures_util::future::join(claims, networks).await;
}

/// The API client for `credentials` (the watches' and the reservations').
pub(crate) async fn connect(credentials: &Credentials) -> Result<Client, WatchError> {
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

/// The verb an RBAC refusal (403) denied, if `e` is one.
pub(crate) fn forbidden_verb(e: &watcher::Error) -> Option<&'static str> {
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

/// Whether `e` is the API server's `410 Gone` for an expired version (the watcher re-lists).
pub(crate) fn is_gone(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchError(status) if status.code == 410)
}

/// `metadata` reduced to what the indexes and the watcher read (name, namespace, uid, and the
/// resourceVersion a watch resumes from); managed fields and the rest are skipped unread.
pub(crate) fn lean_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn status(code: u16) -> Box<Status> {
        Box::new(Status::failure("refused", "Forbidden").with_code(code))
    }

    #[test]
    fn names_the_verb_an_rbac_refusal_denied_and_nothing_else() {
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
        assert!(is_gone(&watcher::Error::WatchError(status(410))));
        assert!(!is_gone(&watcher::Error::WatchError(status(403))));
    }

    #[test]
    fn a_broken_kubeconfig_fails_at_start_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, "not: [a kubeconfig").expect("write");
        let err = start(
            Credentials::Kubeconfig(path.clone()),
            Views {
                networks: Some(Arc::new(SharedNetworks::new())),
                ..Views::default()
            },
        )
        .expect_err("refused");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

/// A watched view (both indexes: claims and networks): where it records its watch, and its
/// clock.
pub(crate) trait Watched {
    /// What the view records of its watch.
    fn watch(&self) -> &WatchRecord;
    /// Now, on the view's clock.
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What a view records of its watch, for the metrics and `/readyz`: whether the first full
/// list is in, how often the watch broke, when it last delivered, and why it cannot proceed.
#[derive(Debug, Default)]
pub struct WatchRecord {
    ready: AtomicBool,
    restarts: AtomicU64,
    last_event: Mutex<Option<Instant>>,
    /// Why the watch cannot list or watch (an RBAC refusal), for `/readyz` to say.
    blocked: Mutex<Option<String>>,
}

// === impl WatchRecord ===

impl WatchRecord {
    /// An event (or a full list) arrived at `now`.
    pub fn saw_event(&self, now: Instant) {
        *self
            .last_event
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
    }

    /// The watch broke once.
    pub fn watch_broke(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Why the watch cannot proceed (`None` once it can).
    pub fn blocked_because(&self, reason: Option<String>) {
        *self.blocked.lock().unwrap_or_else(PoisonError::into_inner) = reason;
    }

    /// Marks the first full list indexed; true the first time.
    pub fn mark_ready(&self) -> bool {
        self.blocked_because(None);
        !self.ready.swap(true, Ordering::AcqRel)
    }

    /// Whether the first full list is indexed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Times the watch broke.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Time from the last event to `now`, if there was one.
    pub fn since_last_event(&self, now: Instant) -> Option<Duration> {
        let last = *self
            .last_event
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.map(|at| now.saturating_duration_since(at))
    }

    /// Why `/readyz` must fail because of the view `what` ("the IPAMClaim index"), or `None`
    /// when it is ready.
    pub fn not_ready(&self, what: &str) -> Option<String> {
        if self.is_ready() {
            return None;
        }
        let blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        Some(match blocked.as_deref() {
            Some(reason) => format!("{what} cannot be built: {reason}"),
            None => format!("{what} is not ready: the first list is not complete"),
        })
    }
}

/// One watch's health as its log lines and `/readyz` tell it.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// The watch broke and has not completed an event since.
    broken: bool,
    /// An RBAC refusal was logged and nothing has succeeded since.
    forbidden: bool,
}

/// What a watch reads, for its log lines: `what` (`IPAMClaims`), the RBAC `resource`
/// (`ipamclaims.k8s.cni.cncf.io`) and the kustomize `component` that grants it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Named {
    pub(crate) what: &'static str,
    pub(crate) resource: &'static str,
    pub(crate) component: &'static str,
}

// === impl Health ===

impl Health {
    /// An event arrived: the watch works.
    pub(crate) fn healthy(&mut self, view: &dyn Watched, named: Named) {
        view.watch().saw_event(view.now());
        if self.broken {
            info!("watch of {} resumed", named.what);
        }
        self.broken = false;
        if self.forbidden {
            view.watch().blocked_because(None);
        }
        self.forbidden = false;
    }

    /// The watch broke with `e`: an RBAC refusal is logged once and keeps `/readyz` failing;
    /// anything else is retried with backoff while the last index keeps serving.
    pub(crate) fn broke(&mut self, view: &dyn Watched, named: Named, e: &watcher::Error) {
        view.watch().watch_broke();
        let Named {
            what,
            resource,
            component,
        } = named;
        if let Some(verb) = forbidden_verb(e) {
            let reason = format!(
                "forbidden to {verb} {resource} at cluster scope: the service account needs get, list and watch on {resource}"
            );
            if !self.forbidden {
                // Once, not at every retry: the permission does not appear by itself.
                error!(
                    verb,
                    resource,
                    error = %e,
                    "cannot watch {what}: {reason} (a ClusterRole and binding, see manifests/components/{component}); /readyz fails until it is granted"
                );
            } else {
                debug!(error = %e, "watch of {what} still forbidden");
            }
            self.forbidden = true;
            self.broken = true;
            view.watch().blocked_because(Some(reason));
            return;
        }
        warn!(
            error = %e,
            relist = is_gone(e),
            ready = view.watch().is_ready(),
            "watch of {what} broke: retrying with backoff, the last index keeps serving"
        );
        self.broken = true;
    }
}
