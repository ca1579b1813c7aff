//! `replay --networks PATH`: the NetworkAttachmentDefinitions of a cluster (for example the
//! output of `kubectl get network-attachment-definitions -A -o yaml`), indexed for
//! `--check-networks` and never judged.

use std::path::PathBuf;

use serde_json::Value;

use crate::cluster::networks::watch::KIND;
use crate::cluster::networks::{Nad, Nads};
use crate::replay::input::{place, visit_raw};

/// Why `--networks` cannot be used: the run stops before judging anything.
#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    /// `-` was given: stdin carries the documents to judge, not the networks.
    #[error("--networks reads files and directories, not stdin (-)")]
    Stdin,
    /// A path or a document could not be read, or is not a NetworkAttachmentDefinition.
    #[error("--networks {place}: {message}")]
    Unreadable {
        /// The file, or the document's place in it (`file#2.items[0]`).
        place: String,
        /// Why.
        message: String,
    },
}

/// Every NetworkAttachmentDefinition of the files and directories `paths`, read as replay reads
/// its inputs (JSON or YAML, several documents a file, directories recursively): a NAD, or a
/// `List` (or `NetworkAttachmentDefinitionList`) of them. A NAD without a namespace is in
/// `default`, as `kubectl apply` would create it. Each config is parsed as the server's watch
/// parses it, so replay and the server judge with the same rules.
pub fn read_networks(paths: &[PathBuf]) -> Result<Nads, NetworksError> {
    if paths.iter().any(|p| p.as_os_str() == "-") {
        return Err(NetworksError::Stdin);
    }
    let mut nads: Vec<Nad> = Vec::new();
    let mut failure = None;
    visit_raw(paths, &mut std::io::empty(), &mut |raw| {
        if failure.is_some() {
            return;
        }
        let doc = match raw {
            Ok(doc) => doc,
            Err(e) => {
                failure = Some(NetworksError::Unreadable {
                    place: e.source,
                    message: e.message,
                });
                return;
            }
        };
        let unreadable = |item: Option<usize>, message: String| NetworksError::Unreadable {
            place: place(&doc.source, doc.index, item),
            message,
        };
        let value = match doc.text.as_deref().map(serde_json::from_slice::<Value>) {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => {
                failure = Some(unreadable(None, format!("not a JSON document: {e}")));
                return;
            }
            Err(e) => {
                failure = Some(unreadable(None, e.clone()));
                return;
            }
        };
        match kind_of(&value) {
            KIND => match nad_of(&value) {
                Ok(nad) => nads.push(nad),
                Err(e) => failure = Some(unreadable(None, e)),
            },
            "List" | "NetworkAttachmentDefinitionList" => {
                let items = match value.get("items") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(items)) => items.as_slice(),
                    Some(_) => {
                        failure = Some(unreadable(None, "the List's items are not a list".into()));
                        return;
                    }
                };
                for (i, item) in items.iter().enumerate() {
                    let nad = match kind_of(item) {
                        KIND => nad_of(item),
                        "" => Err(format!("item has no kind: expected a {KIND}")),
                        other => Err(format!("item is a {other}: expected a {KIND}")),
                    };
                    match nad {
                        Ok(nad) => nads.push(nad),
                        Err(e) => {
                            failure = Some(unreadable(Some(i), e));
                            return;
                        }
                    }
                }
            }
            "" => {
                failure = Some(unreadable(
                    None,
                    format!("document has no kind: {EXPECTED}"),
                ))
            }
            other => {
                failure = Some(unreadable(
                    None,
                    format!("document is a {other}: {EXPECTED}"),
                ))
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(nads.into_iter().collect()),
    }
}

/// What a `--networks` document may be.
const EXPECTED: &str = "expected a NetworkAttachmentDefinition or a List of them";

/// An object's `kind`, or "" when it has none.
fn kind_of(object: &Value) -> &str {
    object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The NAD an object describes, its config parsed; refused without a name.
fn nad_of(object: &Value) -> Result<Nad, String> {
    let meta = object.get("metadata");
    let text = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let name = text("name");
    if name.is_empty() {
        return Err(format!("a {KIND} without metadata.name"));
    }
    let namespace = match text("namespace") {
        "" => "default",
        namespace => namespace,
    };
    let config = object
        .get("spec")
        .and_then(|s| s.get("config"))
        .and_then(Value::as_str);
    Ok(Nad::parse(namespace, name, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::rules::networks::Definitions;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn indexes_every_item_of_a_kubectl_list() {
        let nads = read_networks(&[fixture("networks/nads.yaml")]).expect("read");
        let counts = nads.counts();
        assert_eq!((counts.nads, counts.networks), (15, 12), "{counts:?}");
        assert_eq!(counts.invalid, 1, "broken-net");
        let yellow = nads.network("tenantyellow").expect("tenantyellow");
        assert_eq!(yellow.definitions(), &Definitions::Disagree);
    }

    #[test]
    fn reads_a_directory_of_yaml_and_json_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let red = r#"{"name":"red","type":"ovn-k8s-cni-overlay","topology":"layer2","subnets":"10.0.0.0/24","allowPersistentIPs":true}"#;
        let json = serde_json::json!({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": KIND,
            "metadata": {"name": "red", "namespace": "ns1"}, "spec": {"config": red},
        });
        std::fs::write(dir.path().join("red.json"), json.to_string()).expect("write");
        std::fs::create_dir(dir.path().join("more")).expect("mkdir");
        let yaml = format!(
            "apiVersion: k8s.cni.cncf.io/v1\nkind: {KIND}\nmetadata:\n  name: blue\nspec:\n  config: '{}'\n---\napiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinitionList\nitems: []\n",
            red.replace("red", "blue")
        );
        std::fs::write(dir.path().join("more/blue.yaml"), yaml).expect("write");
        let nads = read_networks(&[dir.path().to_path_buf()]).expect("read");
        assert_eq!(nads.counts().networks, 2);
        let blue = nads.network("blue").expect("blue");
        assert_eq!(
            blue.namespaces().iter().map(|n| &**n).collect::<Vec<_>>(),
            ["default"],
            "no namespace: default"
        );
    }

    #[test]
    fn refuses_stdin_and_names_what_is_not_a_nad() {
        assert!(matches!(
            read_networks(&[PathBuf::from("-")]),
            Err(NetworksError::Stdin)
        ));
        let err = read_networks(&[fixture("no-such-file.yaml")]).unwrap_err();
        assert!(err.to_string().contains("no-such-file.yaml"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        for (file, text, expected) in [
            (
                "pod.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
                "pod.yaml#1: document is a Pod: expected a NetworkAttachmentDefinition or a List of them",
            ),
            (
                "list.yaml",
                "apiVersion: v1\nkind: List\nitems:\n- kind: NetworkAttachmentDefinition\n  metadata: {name: a}\n- kind: IPAMClaim\n  metadata: {name: b}\n",
                "list.yaml#1.items[1]: item is a IPAMClaim: expected a NetworkAttachmentDefinition",
            ),
            (
                "nameless.yaml",
                "kind: NetworkAttachmentDefinition\nmetadata: {}\n",
                "nameless.yaml#1: a NetworkAttachmentDefinition without metadata.name",
            ),
            ("broken.yaml", "kind: [", "broken.yaml#1: not valid YAML"),
        ] {
            let path = dir.path().join(file);
            std::fs::write(&path, text).expect("write");
            let err = read_networks(&[path]).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
