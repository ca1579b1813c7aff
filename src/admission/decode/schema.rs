//! The declared fields of an IPAMClaim that the strict walk checks keys against, and what of
//! each value the walk keeps for the rules.

use crate::admission::json::{same_bytes, Read, Reader, Str};

/// The shape the walker expects at one place in the object.
///
/// Kept in sync with `src/admission/types.rs` (for `spec` and `status`, which a unit test
/// cross-checks against the generated CRD) and with `metav1.ObjectMeta` (for `metadata`).
#[derive(Debug)]
pub(super) enum Node {
    /// An object with exactly these fields; any other key is unknown.
    Object(&'static Fields),
    /// A list whose items have this shape.
    List(&'static Node),
    /// A string map such as labels: any key is allowed, only duplicates are reported.
    Map,
    /// Free-form content such as `fieldsV1`: any keys at any depth, only duplicates reported.
    Free,
    /// A scalar. Should a container turn up here instead, that is a type error for another
    /// layer; the walker reads it without checking its keys.
    Leaf,
}

/// The IPAMClaim object.
pub(super) static ROOT: Node = Node::Object(&Fields::new(&[
    field("apiVersion", Node::Leaf),
    field("kind", Node::Leaf),
    kept("metadata", OBJECT_META, Member::Metadata),
    kept("spec", SPEC, Member::Spec),
    kept("status", STATUS, Member::Status),
]));

/// `metav1.ObjectMeta`.
pub(super) const OBJECT_META: Node = Node::Object(&Fields::new(&[
    kept("name", Node::Leaf, Member::Name),
    kept("generateName", Node::Leaf, Member::GenerateName),
    field("namespace", Node::Leaf),
    field("selfLink", Node::Leaf),
    kept("uid", Node::Leaf, Member::Uid),
    field("resourceVersion", Node::Leaf),
    field("generation", Node::Leaf),
    field("creationTimestamp", Node::Leaf),
    field("deletionTimestamp", Node::Leaf),
    field("deletionGracePeriodSeconds", Node::Leaf),
    kept("labels", Node::Map, Member::Labels),
    field("annotations", Node::Map),
    field("ownerReferences", Node::List(&OWNER_REFERENCE)),
    field("finalizers", Node::List(&Node::Leaf)),
    field("managedFields", Node::List(&MANAGED_FIELDS_ENTRY)),
]));

/// `metav1.OwnerReference`.
pub(super) const OWNER_REFERENCE: Node = Node::Object(&Fields::new(&[
    field("apiVersion", Node::Leaf),
    field("kind", Node::Leaf),
    field("name", Node::Leaf),
    field("uid", Node::Leaf),
    field("controller", Node::Leaf),
    field("blockOwnerDeletion", Node::Leaf),
]));

/// `metav1.ManagedFieldsEntry`.
pub(super) const MANAGED_FIELDS_ENTRY: Node = Node::Object(&Fields::new(&[
    field("manager", Node::Leaf),
    field("operation", Node::Leaf),
    field("apiVersion", Node::Leaf),
    field("time", Node::Leaf),
    field("fieldsType", Node::Leaf),
    field("fieldsV1", Node::Free),
    field("subresource", Node::Leaf),
]));

/// `IPAMClaimSpec`.
pub(super) const SPEC: Node = Node::Object(&Fields::new(&[
    kept("network", Node::Leaf, Member::Network),
    kept("interface", Node::Leaf, Member::Interface),
    kept("ipRequests", Node::List(&Node::Leaf), Member::IpRequests),
]));

/// `IPAMClaimStatus`.
pub(super) const STATUS: Node = Node::Object(&Fields::new(&[
    kept("ips", Node::List(&Node::Leaf), Member::Ips),
    kept("ownerPod", OWNER_POD, Member::OwnerPod),
    kept("conditions", Node::List(&CONDITION), Member::Conditions),
]));

/// `OwnerPod`.
pub(super) const OWNER_POD: Node =
    Node::Object(&Fields::new(&[kept("name", Node::Leaf, Member::PodName)]));

/// `Condition`, shaped like `metav1.Condition`.
pub(super) const CONDITION: Node = Node::Object(&Fields::new(&[
    field("type", Node::Leaf),
    field("status", Node::Leaf),
    field("observedGeneration", Node::Leaf),
    field("lastTransitionTime", Node::Leaf),
    field("reason", Node::Leaf),
    field("message", Node::Leaf),
]));

/// A declared field: its name, its shape, and which member of the typed view it fills.
#[derive(Debug)]
pub(super) struct Declared {
    pub(super) name: &'static str,
    pub(super) node: Node,
    pub(super) member: Member,
}

/// The member of the typed view ([`Claim`] and below) a declared field fills; the walk keeps
/// exactly these (and, when not strict, skips the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Member {
    /// None: the field is only checked.
    None,
    /// `metadata` (kept trimmed to the four below).
    Metadata,
    /// `spec`.
    Spec,
    /// `status`.
    Status,
    /// `metadata.name`.
    Name,
    /// `metadata.generateName`.
    GenerateName,
    /// `metadata.labels`.
    Labels,
    /// `metadata.uid`.
    Uid,
    /// `spec.network`.
    Network,
    /// `spec.interface`.
    Interface,
    /// `spec.ipRequests`.
    IpRequests,
    /// `status.ips`.
    Ips,
    /// `status.ownerPod`.
    OwnerPod,
    /// `status.conditions`.
    Conditions,
    /// `status.ownerPod.name`.
    PodName,
}

/// A declared field that the typed view does not hold.
pub(super) const fn field(name: &'static str, node: Node) -> Declared {
    kept(name, node, Member::None)
}

/// A declared field that fills `member` of the typed view.
pub(super) const fn kept(name: &'static str, node: Node, member: Member) -> Declared {
    Declared { name, node, member }
}

/// The declared fields of an object, and a table to find a key among them without comparing it
/// with each: a key's first byte picks the few fields it can be.
#[derive(Debug)]
pub(super) struct Fields {
    pub(super) declared: &'static [Declared],
    /// By the low five bits of a key's first byte: one more than the index of each field it
    /// can be (at most [`LEADS`]), then zeros.
    pub(super) by_lead: [[u8; LEADS]; 32],
}

/// How many declared fields of one object may share the low five bits of their first byte.
pub(super) const LEADS: usize = 3;

// === impl Fields ===

impl Fields {
    pub(super) const fn new(declared: &'static [Declared]) -> Fields {
        assert!(declared.len() < u8::MAX as usize && declared.len() <= 64);
        let mut by_lead = [[0; LEADS]; 32];
        let mut i = 0;
        while i < declared.len() {
            let lead = &mut by_lead[(declared[i].name.as_bytes()[0] & 31) as usize];
            let mut j = 0;
            while lead[j] != 0 {
                j += 1;
                assert!(
                    j < LEADS,
                    "too many fields of one object share a first byte"
                );
            }
            lead[j] = i as u8 + 1;
            i += 1;
        }
        Fields { declared, by_lead }
    }

    /// Reads the key that comes next and its colon: the key, and the index of the declared
    /// field it names. A key written as a declared name is recognised by comparing it with the
    /// few names that start like it, without looking for its end first; any other key is read
    /// as usual (an escaped one decoded and looked up).
    #[inline(always)]
    pub(super) fn read_key<'a>(&self, reader: &mut Reader<'a>) -> Read<(Str<'a>, Option<usize>)> {
        if let Some(lead) = reader.key_lead() {
            for i in self.leading(lead) {
                if let Some(key) = reader.key_if(self.declared[i].name)? {
                    return Ok((key, Some(i)));
                }
            }
        }
        let key = reader.key()?;
        // A plain key that names a declared field was found above.
        let found = if key.is_escaped() {
            self.find(key.decode().as_bytes())
        } else {
            None
        };
        Ok((key, found))
    }

    /// The index of the declared field named `key` (unescaped).
    #[inline]
    pub(super) fn find(&self, key: &[u8]) -> Option<usize> {
        let &lead = key.first()?;
        self.leading(lead)
            .find(|&i| same_bytes(self.declared[i].name.as_bytes(), key))
    }

    /// The indices of the declared fields whose names may start with `lead`.
    #[inline(always)]
    pub(super) fn leading(&self, lead: u8) -> impl Iterator<Item = usize> + '_ {
        self.by_lead[usize::from(lead & 31)]
            .iter()
            .map_while(|&candidate| usize::from(candidate).checked_sub(1))
    }
}

/// Where a key lands in an object.
#[derive(Clone, Copy)]
pub(super) enum Slot {
    /// The field at this index of an [`Node::Object`].
    Declared(usize, &'static Declared),
    /// Any key of a [`Node::Map`] or [`Node::Free`] object; its value is free-form.
    Free,
    /// A key the object does not declare.
    Unknown,
}

// === impl Node ===

impl Node {
    /// Where `key` lands in an object walked against this node: its bytes are compared with
    /// the declared names, no allocation (an escaped key is decoded first, which is rare).
    #[inline(always)]
    pub(super) fn slot(&self, key: Str<'_>) -> Slot {
        match self {
            Node::Object(fields) => {
                let found = if key.is_escaped() {
                    fields.find(key.decode().as_bytes())
                } else {
                    fields.find(key.raw().as_bytes())
                };
                match found {
                    Some(i) => Slot::Declared(i, &fields.declared[i]),
                    None => Slot::Unknown,
                }
            }
            Node::Map | Node::Free => Slot::Free,
            // Keys are never looked up in an object that is not checked.
            Node::List(_) | Node::Leaf => Slot::Unknown,
        }
    }

    /// The shape of an item if this node is walked as a list.
    #[inline]
    pub(super) fn item(&self) -> &'static Node {
        match self {
            Node::List(item) => item,
            Node::Free => &Node::Free,
            Node::Object(_) | Node::Map | Node::Leaf => &Node::Leaf,
        }
    }

    /// What to walk an object or array against: the node itself if it fits the container,
    /// otherwise [`Node::Leaf`] so that a mistyped value is read without reports.
    pub(super) fn for_container(&'static self, is_object: bool) -> &'static Node {
        match (is_object, self) {
            (true, Node::Object(_) | Node::Map | Node::Free) => self,
            (false, Node::List(_) | Node::Free) => self,
            _ => &Node::Leaf,
        }
    }
}

/// Which part of a value the walk keeps (and so reads, when it is not strict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keep {
    /// Nothing: the value is only checked (or skipped).
    Nothing,
    /// The object: its `metadata` trimmed, `spec` and `status` whole.
    Root,
    /// `metadata`: `name`, `generateName`, `labels` and `uid`.
    Metadata,
    /// All of it.
    Whole,
}

// === impl Keep ===

impl Keep {
    /// What to keep of the member of an object kept as `self` that lands in `slot`. Every
    /// rule reads only what this keeps.
    pub(super) fn member(self, slot: Slot) -> Keep {
        match self {
            Keep::Nothing | Keep::Whole => self,
            // `Root` and `Metadata` walk the root and its `metadata`, which are always walked
            // against their declared fields.
            Keep::Root | Keep::Metadata => match slot {
                Slot::Declared(_, declared) => match declared.member {
                    Member::Metadata => Keep::Metadata,
                    Member::None => Keep::Nothing,
                    _ => Keep::Whole,
                },
                Slot::Free | Slot::Unknown => Keep::Nothing,
            },
        }
    }

    /// What to keep of the member `key` of an object kept as `self`, where the walk has not
    /// looked the key up: the same as [`Keep::member`].
    pub(super) fn member_named(self, key: Str<'_>) -> Keep {
        let node = match self {
            Keep::Nothing | Keep::Whole => return self,
            Keep::Root => &ROOT,
            Keep::Metadata => &OBJECT_META,
        };
        self.member(node.slot(key))
    }

    /// What to keep of an item of an array kept as `self`: a trimmed member that turns out
    /// not to be an object is kept whole.
    pub(super) fn item(self) -> Keep {
        match self {
            Keep::Nothing => Keep::Nothing,
            _ => Keep::Whole,
        }
    }
}
