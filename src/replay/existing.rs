//! `replay --existing PATH`: the claims already in a cluster (for example the output of
//! `kubectl get ipamclaims -A -o yaml`), indexed for `--unique-addresses` and never judged.

use std::path::PathBuf;

use serde_json::Value;

use crate::cluster::{Claim, Claims};
use crate::replay::input::{visit_inputs, Input};

/// Why `--existing` cannot be used: the run stops before judging anything.
#[derive(Debug, thiserror::Error)]
pub enum ExistingError {
    /// `-` was given: stdin carries the documents to judge, not the existing claims.
    #[error("--existing reads files and directories, not stdin (-)")]
    Stdin,
    /// A path or a document could not be read.
    #[error("--existing {place}: {message}")]
    Unreadable {
        /// The file, or the document's place in it (`file#2.items[0]`).
        place: String,
        /// Why.
        message: String,
    },
}

/// Every claim of the files and directories `paths` (read as replay reads its inputs: JSON or
/// YAML, `List`s item by item, AdmissionReviews by their object). A claim without a
/// namespace is in `default`, as replay judges it.
pub fn read_existing(paths: &[PathBuf]) -> Result<Claims, ExistingError> {
    if paths.iter().any(|p| p.as_os_str() == "-") {
        return Err(ExistingError::Stdin);
    }
    let mut claims = Claims::new();
    let mut failure = None;
    visit_inputs(paths, &mut std::io::empty(), &mut |input| {
        if failure.is_some() {
            return;
        }
        match input {
            Input::Error(e) => {
                failure = Some(ExistingError::Unreadable {
                    place: e.source,
                    message: e.message,
                })
            }
            Input::Document(doc) => {
                let claim = match &doc.review {
                    Ok(review) => claim_of(review),
                    Err(e) => Err(e.clone()),
                };
                match claim {
                    Ok(claim) => claims.apply(claim),
                    Err(message) => {
                        failure = Some(ExistingError::Unreadable {
                            place: doc.place(),
                            message,
                        })
                    }
                }
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(claims),
    }
}

/// The claim a review (as replay reads a document) carries in `request.object`.
fn claim_of(review: &[u8]) -> Result<Claim, String> {
    let review: Value =
        serde_json::from_slice(review).map_err(|e| format!("not a JSON document: {e}"))?;
    let request = review.get("request").unwrap_or(&Value::Null);
    let object = request.get("object").unwrap_or(&Value::Null);
    let mut claim = Claim::from_object(object)
        .ok_or_else(|| "not an IPAMClaim with a metadata.name".to_owned())?;
    if claim.namespace.is_empty() {
        claim.namespace = request
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default")
            .to_owned();
    }
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::rules::conflicts::Claimant;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn indexes_every_item_of_a_kubectl_list() {
        let claims =
            read_existing(&[fixture("validate-unique-addresses/existing.yaml")]).expect("read");
        assert_eq!(claims.len(), 5);
        let other = Claimant {
            namespace: "ns1",
            name: "someone-else",
        };
        let holder = claims
            .holder("tenantred", "10.128.20.9".parse().unwrap(), &other)
            .expect("held");
        assert_eq!(
            (holder.namespace.as_str(), holder.name.as_str()),
            ("ns1", "vm-b.tenantred")
        );
    }

    #[test]
    fn refuses_stdin_and_names_what_cannot_be_read() {
        assert!(matches!(
            read_existing(&[PathBuf::from("-")]),
            Err(ExistingError::Stdin)
        ));
        let err = read_existing(&[fixture("no-such-file.yaml")]).unwrap_err();
        assert!(err.to_string().contains("no-such-file.yaml"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pod.yaml");
        std::fs::write(&path, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n").expect("write");
        let err = read_existing(&[path]).unwrap_err().to_string();
        assert!(err.contains("pod.yaml#1") && err.contains("Pod"), "{err}");
    }

    #[test]
    fn a_claim_without_namespace_is_in_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("claim.yaml");
        std::fs::write(
            &path,
            "apiVersion: k8s.cni.cncf.io/v1alpha1\nkind: IPAMClaim\nmetadata:\n  name: a\nspec:\n  network: red\n  interface: eth0\n  ipRequests: [10.0.0.5/24]\n",
        )
        .expect("write");
        let claims = read_existing(&[path]).expect("read");
        assert!(claims.holds("default", "a", "red", "10.0.0.5".parse().unwrap()));
    }
}
