//! The API calls of the reservations across replicas: the Leases of one namespace (create;
//! get; update conditioned on the resourceVersion read; delete conditioned on uid and
//! resourceVersion) and the GET of one claim, each answer sorted into what the flow acts on.

use std::net::IpAddr;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};

use crate::admission::model::types::{GROUP, KIND, PLURAL, VERSION};
use crate::cluster::index::Claim;
use crate::cluster::leases::decide::Seen;
use crate::cluster::leases::lease::ClaimRef;

/// What a create came to.
#[derive(Debug)]
pub enum Created {
    /// Written: the address is reserved. The Lease as stored.
    Created(Box<Lease>),
    /// Another writer made it first (409 AlreadyExists).
    Exists,
}

/// What a conditioned update or delete came to.
#[derive(Debug)]
pub enum Changed<T> {
    /// Done.
    Done(T),
    /// The Lease changed since it was read (409 Conflict: another writer won).
    Stale,
    /// The Lease is gone (404).
    Gone,
}

/// The API client of the reservations, bound to the namespace of their Leases.
#[derive(Clone)]
pub struct LeaseClient {
    client: Client,
    leases: Api<Lease>,
}

impl std::fmt::Debug for LeaseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseClient").finish_non_exhaustive()
    }
}

/// An API answer with this status code.
fn status_is(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

// === impl LeaseClient ===

impl LeaseClient {
    /// A client of the Leases in `namespace`.
    pub fn new(client: Client, namespace: &str) -> Self {
        LeaseClient {
            leases: Api::namespaced(client.clone(), namespace),
            client,
        }
    }

    /// Creates `lease`: etcd lets one writer of a name succeed, once.
    pub async fn create(&self, lease: &Lease) -> Result<Created, kube::Error> {
        match self.leases.create(&PostParams::default(), lease).await {
            Ok(stored) => Ok(Created::Created(Box::new(stored))),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(Created::Exists),
            Err(e) => Err(e),
        }
    }

    /// The Lease `name`, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<Lease>, kube::Error> {
        self.leases.get_opt(name).await
    }

    /// Replaces the Lease, conditioned on the resourceVersion in its metadata.
    pub async fn update(&self, lease: &Lease) -> Result<Changed<Lease>, kube::Error> {
        let name = lease.metadata.name.as_deref().unwrap_or_default();
        match self
            .leases
            .replace(name, &PostParams::default(), lease)
            .await
        {
            Ok(stored) => Ok(Changed::Done(stored)),
            Err(e) if status_is(&e, 409) => Ok(Changed::Stale),
            Err(e) if status_is(&e, 404) => Ok(Changed::Gone),
            Err(e) => Err(e),
        }
    }

    /// Deletes the Lease `name` if it still has this uid and resourceVersion: a Lease taken
    /// over or renewed since it was read (same object, same uid, another resourceVersion) is
    /// left alone.
    pub async fn delete(
        &self,
        name: &str,
        uid: &str,
        resource_version: &str,
    ) -> Result<Changed<()>, kube::Error> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()).filter(|u| !u.is_empty()),
                resource_version: Some(resource_version.to_owned()).filter(|v| !v.is_empty()),
            }),
            ..DeleteParams::default()
        };
        match self.leases.delete(name, &params).await {
            Ok(_) => Ok(Changed::Done(())),
            Err(e) if status_is(&e, 409) => Ok(Changed::Stale),
            Err(e) if status_is(&e, 404) => Ok(Changed::Gone),
            Err(e) => Err(e),
        }
    }

    /// Whether the claim `holder` (by namespace and name, whatever its uid) holds `ip` on
    /// `network` in the API server now.
    pub async fn holds(
        &self,
        holder: &ClaimRef,
        network: &str,
        ip: IpAddr,
    ) -> Result<Seen, kube::Error> {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL);
        let claims: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &holder.namespace, &resource);
        let Some(object) = claims.get_opt(&holder.name).await? else {
            return Ok(Seen::NotHolding);
        };
        let claim = Claim::from_parts(
            &holder.namespace,
            &holder.name,
            "",
            object.data.get("spec"),
            object.data.get("status"),
        );
        let holding =
            claim.is_some_and(|c| c.network == network && c.addresses.binary_search(&ip).is_ok());
        Ok(if holding {
            Seen::Holding
        } else {
            Seen::NotHolding
        })
    }
}
