//! The walk as serde_json reads it: where the walk refuses a value, serde_json refuses it too and
//! says why in its own words, position included; the pipeline quotes those words.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::admission::decode::envelope::{GroupVersion, Request, Review};
use crate::admission::decode::schema::Keep;
use crate::admission::decode::walk::{self, Walked, MAX_DEPTH};
use crate::admission::json::Str;

/// A value read by serde_json where and as [`Walked::read`] reads it (every value when strict,
/// else only the members kept; containers past [`MAX_DEPTH`] opened with their contents
/// skipped), keeping nothing: serde_json then refuses exactly what the walk refuses, and says
/// why in its own words.
///
/// A mirror of the walk rather than the walk itself because only serde_json can word its own
/// refusal (position included); it runs only on bodies the one pass could not read, and the
/// fixtures, the bad-input catalogue and `decode::tests` hold the two to the same verdicts.
#[derive(Clone, Copy)]
pub struct ObjectSkeleton {
    pub(super) strict: bool,
    pub(super) keep: Keep,
    pub(super) depth: usize,
}

// === impl ObjectSkeleton ===

impl ObjectSkeleton {
    /// The root of an object.
    pub fn root(strict: bool) -> Self {
        ObjectSkeleton {
            strict,
            keep: Keep::Root,
            depth: 0,
        }
    }

    /// A member or item kept as `keep`: read, or skipped unread.
    pub(super) fn child(self, keep: Keep) -> Option<Self> {
        (self.strict || keep != Keep::Nothing).then_some(ObjectSkeleton {
            keep,
            depth: self.depth + 1,
            ..self
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for ObjectSkeleton {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ObjectSkeleton {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        use serde::de::IgnoredAny;
        let item = (self.depth < MAX_DEPTH)
            .then(|| self.child(self.keep.item()))
            .flatten();
        loop {
            let more = match item {
                Some(item) => seq.next_element_seed(item)?.is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::IgnoredAny;
        if self.depth >= MAX_DEPTH {
            while map.next_key::<IgnoredAny>()?.is_some() {
                map.next_value::<IgnoredAny>()?;
            }
            return Ok(());
        }
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.child(self.keep.member_named(Str::plain(&key))) {
                Some(member) => map.next_value_seed(member)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

// === The review as serde_json reads it ===

/// Decodes what the one pass does not: serde_json reads the review over the same types and
/// reads or skips every member of the objects exactly where the walk does, so that it refuses
/// what the walk refuses, in its own words. What it accepts is then walked from the text it
/// found the objects in.
pub(super) fn by_serde(text: &str, strict: bool) -> Result<Review<'_>, String> {
    let checked = if strict {
        serde_json::from_str::<MapOnly<ReviewIn<'_, Skeleton<true>, Skeleton<false>>>>(text)
            .map(|_| ())
    } else {
        serde_json::from_str::<MapOnly<ReviewIn<'_, Skeleton<false>, Skeleton<false>>>>(text)
            .map(|_| ())
    };
    checked.map_err(|e| e.to_string())?;
    let MapOnly(review) = serde_json::from_str::<MapOnly<ReviewIn<'_, &RawValue, &RawValue>>>(text)
        .map_err(|e| e.to_string())?;
    pub(super) fn walk(raw: Option<&str>, strict: bool) -> Result<Option<Box<Walked<'_>>>, String> {
        match raw {
            None => Ok(None),
            Some(raw) => walk::walk(raw, strict)
                .map(|w| Some(Box::new(w)))
                .map_err(|_| "request.object or request.oldObject cannot be read".to_owned()),
        }
    }
    let request = match review.request {
        None => None,
        Some(MapOnly(r)) => Some(Request {
            uid: r.uid,
            kind: r.kind.map(|k| GroupVersion {
                group: k.group,
                version: k.version,
                kind: k.kind,
            }),
            resource: r.resource.map(|r| GroupVersion {
                group: r.group,
                version: r.version,
                kind: r.resource,
            }),
            sub_resource: r.sub_resource,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            object: walk(r.object.map(RawValue::get), strict)?,
            old_object: walk(r.old_object.map(RawValue::get), false)?,
            dry_run: r.dry_run,
        }),
    };
    Ok(Review {
        api_version: review.api_version,
        kind: review.kind,
        request,
    })
}

/// Decodes `T` only from a JSON object: serde's derived structs also accept an array of their
/// fields in order, which no API server sends and which must not be judged as a review.
pub(super) struct MapOnly<T>(T);

// === impl MapOnly ===

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Objects<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Objects<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Objects(std::marker::PhantomData))
            .map(MapOnly)
    }
}

/// The envelope as serde decodes it, `request.object` read as `O` and `request.oldObject` as
/// `P`.
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a, O: Deserialize<'de>, P: Deserialize<'de>"))]
pub(super) struct ReviewIn<'a, O, P> {
    #[serde(rename = "apiVersion", default, borrow)]
    pub(super) api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) request: Option<MapOnly<RequestIn<'a, O, P>>>,
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "'de: 'a, O: Deserialize<'de>, P: Deserialize<'de>")
)]
pub(super) struct RequestIn<'a, O, P> {
    #[serde(default, borrow)]
    pub(super) uid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) kind: Option<Gvk<'a>>,
    #[serde(default, borrow)]
    pub(super) resource: Option<Gvr<'a>>,
    #[serde(default, borrow)]
    pub(super) sub_resource: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) namespace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) operation: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) object: Option<O>,
    #[serde(default)]
    pub(super) old_object: Option<P>,
    #[serde(default)]
    pub(super) dry_run: Option<bool>,
}

/// `request.kind` as serde decodes it (`metav1.GroupVersionKind`).
#[derive(Deserialize)]
pub(super) struct Gvk<'a> {
    #[serde(borrow)]
    pub(super) group: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) version: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) kind: Cow<'a, str>,
}

/// `request.resource` as serde decodes it (`metav1.GroupVersionResource`).
#[derive(Deserialize)]
pub(super) struct Gvr<'a> {
    #[serde(borrow)]
    pub(super) group: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) version: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) resource: Cow<'a, str>,
}

/// An object read by serde_json where and as the walk reads it (every value when `STRICT`,
/// else only the members the rules read), keeping nothing.
pub(super) struct Skeleton<const STRICT: bool>;

impl<'de, const STRICT: bool> Deserialize<'de> for Skeleton<STRICT> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ObjectSkeleton::root(STRICT).deserialize(d)?;
        Ok(Skeleton)
    }
}
