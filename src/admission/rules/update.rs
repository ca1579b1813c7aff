//! UPDATE: spec immutability, and ratcheting as Kubernetes ratchets CRD validation: an error on
//! a value unchanged since `oldObject` comes back as a warning instead of denying. Also the
//! entry point of validation ([`validate`]), which applies both on UPDATE.

use crate::admission::answer::field::{
    BadValue, CappedErrors, ErrorList, FieldError, Path, Report,
};
use crate::admission::json::{self, Raw, Str};
use crate::admission::model::view::{Claim, Condition, Field, List, RawOf, Spec, Status};
use crate::admission::rules::object::{check_object, validate_condition};

/// The verdict on one object: the errors found, sorted as they are found and kept only as far
/// as an answer lists them (see [`CappedErrors`]).
#[derive(Debug, Default, PartialEq)]
pub struct Verdict<'a> {
    /// Errors that deny the request.
    pub errors: CappedErrors<'a>,
    /// Errors on values unchanged since `oldObject` (ratcheting): reported as warnings only.
    pub ratcheted: CappedErrors<'a>,
}

/// Validates `object`; on UPDATE (`old` given) also checks spec immutability and ratchets
/// errors on values that did not change, like Kubernetes CRD validation ratcheting.
///
/// Each error is sorted as it is found, and only the first ones are kept: judging a review
/// costs as much as reading it, however many errors it has.
pub fn validate<'a>(object: &Claim<'a>, old: Option<&Claim<'a>>) -> Verdict<'a> {
    let Some(old) = old else {
        let mut errors = CappedErrors::default();
        check_object(object, &mut errors);
        return Verdict {
            errors,
            ratcheted: CappedErrors::default(),
        };
    };
    let mut ratchet = Ratchet::new(object, old);
    check_object(object, &mut ratchet);
    let mut verdict = ratchet.verdict;
    for e in immutability(object, old) {
        verdict.errors.push(e);
    }
    verdict
}

/// UPDATE: the spec is immutable. Each changed spec field is an error; the whole `spec` when
/// it appears or disappears.
pub(super) fn immutability<'a>(object: &Claim<'a>, old: &Claim<'a>) -> ErrorList<'a> {
    let mut errs = ErrorList::new();
    match (object.spec, old.spec) {
        (Field::Value(new_spec), Field::Value(old_spec)) => {
            let strings = [
                ("network", new_spec.network, old_spec.network),
                ("interface", new_spec.interface, old_spec.interface),
            ];
            for (field, new_value, old_value) in strings {
                if !same(new_value.raw(), old_value.raw(), RawOf::same_value) {
                    let value = new_value.raw().map(|v| match v {
                        RawOf::Str(s) => BadValue::Str(s.decode()),
                        RawOf::Raw(raw) => BadValue::of(raw),
                    });
                    errs.push(immutable(Path::new("spec").child(field), value));
                }
            }
            let (new_value, old_value) = (new_spec.ip_requests.raw(), old_spec.ip_requests.raw());
            if !same(new_value, old_value, Raw::same_value) {
                let path = Path::new("spec").child("ipRequests");
                errs.push(immutable(path, new_value.map(BadValue::of)));
            }
        }
        (new_spec, old_spec) => {
            let (new_value, old_value) = (spec_raw(&new_spec), spec_raw(&old_spec));
            if !same(new_value, old_value, Raw::same_value) {
                errs.push(immutable(Path::new("spec"), new_value.map(BadValue::of)));
            }
        }
    }
    errs
}

/// `spec` as text, unless absent or `null`.
pub(super) fn spec_raw<'a>(spec: &Field<'a, Spec<'a>>) -> Option<Raw<'a>> {
    match *spec {
        Field::Value(spec) => Some(spec.raw),
        Field::Other(raw) => Some(raw),
        Field::Absent | Field::Null => None,
    }
}

/// Whether two values (`None` for absent or `null`) are the same.
pub(super) fn same<T>(a: Option<T>, b: Option<T>, same_value: impl Fn(&T, &T) -> bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_value(&a, &b),
        _ => false,
    }
}

pub(super) fn immutable<'a>(path: Path, new_value: Option<BadValue<'a>>) -> FieldError<'a> {
    FieldError {
        kind: crate::admission::answer::field::ErrorType::Invalid,
        path,
        value: new_value.unwrap_or(BadValue::Null),
        detail: "field is immutable".to_owned(),
    }
}

/// Ratcheting: sorts each error of the new object, as validation finds it, into those that
/// deny and those about values unchanged from the old object, which are reported as warnings.
///
/// An error is ratcheted when the old object had the very same error (same type, field,
/// value and detail) — conditions are matched by their `type`, as the list is keyed by it —
/// and, for errors inside an atomic list (`status.ips`, `spec.ipRequests`), the whole list is
/// unchanged, since Kubernetes does not correlate the items of an atomic list.
///
/// What an error is matched against is found without judging every item of the old object:
/// an unchanged atomic list has exactly the errors it had (the rules read nothing else), a
/// condition's errors are those of the one old condition of its type, judged alone when
/// needed, and every other field has a handful of errors at most, judged at the first error.
/// So sorting the errors of a review costs as much as reading it, however many errors there
/// are, and a valid object costs nothing more.
pub(super) struct Ratchet<'r, 'a> {
    object: &'r Claim<'a>,
    old: &'r Claim<'a>,
    /// What the errors are matched against, made at the first error.
    index: Option<OldIndex<'a>>,
    /// The condition being judged: its index and its text.
    condition: Option<(usize, Raw<'a>)>,
    /// The errors of the old condition last looked at, and its index.
    old_condition_errors: Option<(usize, ErrorList<'a>)>,
    /// Where the errors go.
    verdict: Verdict<'a>,
}

/// What [`Ratchet`] matches errors against.
pub(super) struct OldIndex<'a> {
    /// Whether `status.ips` and `spec.ipRequests` are the same in both objects.
    same_list: [bool; 2],
    /// The old conditions by `type`, the first of each type (see [`OldConditions`]).
    old_conditions: OldConditions<'a>,
    /// The old object's errors outside list items, by path.
    old_errors: std::collections::HashMap<String, Vec<FieldError<'a>>>,
}

/// The atomic lists whose items are never correlated with the old object's.
pub(super) const ATOMIC_LISTS: [(&str, &str); 2] = [("status", "ips"), ("spec", "ipRequests")];
/// The start of the path of a condition.
pub(super) const CONDITION_PREFIX: &str = "status.conditions[";

/// A list member of a claim as `value[parent][list]` finds it: missing, `null`, or a value.
#[derive(Clone, Copy)]
pub(super) enum Member<'a> {
    Missing,
    Null,
    Is(Raw<'a>),
}

// === impl Member ===

impl<'a> Member<'a> {
    /// `claim[parent][list]` for one of the [`ATOMIC_LISTS`].
    pub(super) fn of(claim: &Claim<'a>, (parent, _): (&str, &str)) -> Self {
        let field = match (parent, claim.status, claim.spec) {
            ("status", Field::Value(status), _) => status.ips,
            ("spec", _, Field::Value(spec)) => spec.ip_requests,
            _ => return Member::Missing,
        };
        match field {
            Field::Absent => Member::Missing,
            Field::Null => Member::Null,
            Field::Value(list) => Member::Is(list.raw),
            Field::Other(raw) => Member::Is(raw),
        }
    }

    pub(super) fn same(&self, other: &Member<'_>) -> bool {
        match (self, other) {
            (Member::Missing, Member::Missing) | (Member::Null, Member::Null) => true,
            (Member::Is(a), Member::Is(b)) => a.same_value(b),
            _ => false,
        }
    }
}

/// The old object's conditions that have a `type`, the first of each type, sorted by type for
/// a binary search: a string type by where its text stands in the list, any other by its
/// fingerprint. Each entry is the condition's index and where its text starts.
pub(super) struct OldConditions<'a> {
    /// The list's text.
    text: &'a str,
    /// `(type, index, item)` for string types.
    strs: Vec<(u32, u32, u32)>,
    /// `(fingerprint, index, item)` for types of any other JSON type (`null` included).
    others: Vec<(u128, u32, u32)>,
}

// === impl OldConditions ===

impl<'a> OldConditions<'a> {
    pub(super) fn new(old: &Claim<'a>) -> Self {
        let list = match old.status {
            Field::Value(Status {
                conditions: Field::Value(list),
                ..
            }) => Some(list),
            _ => None,
        };
        let text = list.map_or("", |l| l.raw.text);
        let mut index = OldConditions {
            text,
            strs: Vec::new(),
            others: Vec::new(),
        };
        for (i, item) in list.iter().flat_map(List::items).enumerate() {
            let Some(t) = Condition::type_value(item) else {
                continue;
            };
            let (i, at) = (i as u32, json::offset(text, item.text));
            match t.as_str() {
                Some(s) => index.strs.push((json::offset(text, s.raw()), i, at)),
                None => index.others.push((t.fingerprint(), i, at)),
            }
        }
        let str_at = |at: u32| Str::at(text, at);
        // Stable, so that the first of each type comes first.
        index
            .strs
            .sort_by(|a, b| str_at(a.0).cmp_decoded(&str_at(b.0)));
        index.others.sort_by_key(|o| o.0);
        index
    }

    pub(super) fn is_empty(&self) -> bool {
        self.strs.is_empty() && self.others.is_empty()
    }

    /// The index and text of the first old condition whose type is `t`.
    pub(super) fn find(&self, t: Raw<'_>) -> Option<(usize, Raw<'a>)> {
        let (index, at) = match t.as_str() {
            Some(s) => {
                let str_at = |at: u32| Str::at(self.text, at);
                let first = self
                    .strs
                    .partition_point(|e| str_at(e.0).cmp_decoded(&s).is_lt());
                let &(found, index, at) = self.strs.get(first)?;
                (str_at(found) == s).then_some((index, at))?
            }
            None => {
                let fingerprint = t.fingerprint();
                let first = self.others.partition_point(|e| e.0 < fingerprint);
                let &(found, index, at) = self.others.get(first)?;
                (found == fingerprint).then_some((index, at))?
            }
        };
        let mut reader = json::Reader::new(&self.text[at as usize..]);
        let item = reader.skip().ok()?;
        Some((index as usize, item))
    }
}

/// The old object's errors outside list items: every error but those of the items of the
/// atomic lists and of the conditions (which [`Ratchet`] matches otherwise). Items are not
/// judged at all.
#[derive(Default)]
pub(super) struct FieldsOnly<'a>(ErrorList<'a>);

impl<'a> Report<'a> for FieldsOnly<'a> {
    fn push(&mut self, e: FieldError<'a>) {
        self.0.push(e);
    }

    fn items(&self) -> bool {
        false
    }
}

// === impl Ratchet ===

impl<'a> OldIndex<'a> {
    pub(super) fn new(object: &Claim<'a>, old: &Claim<'a>) -> Self {
        let same_list =
            ATOMIC_LISTS.map(|which| Member::of(object, which).same(&Member::of(old, which)));
        let mut fields = FieldsOnly::default();
        check_object(old, &mut fields);
        let mut old_errors: std::collections::HashMap<String, Vec<FieldError<'a>>> =
            std::collections::HashMap::new();
        for e in fields.0 {
            old_errors.entry(e.path.to_string()).or_default().push(e);
        }
        OldIndex {
            same_list,
            old_conditions: OldConditions::new(old),
            old_errors,
        }
    }
}

impl<'r, 'a> Ratchet<'r, 'a> {
    pub(super) fn new(object: &'r Claim<'a>, old: &'r Claim<'a>) -> Self {
        Ratchet {
            object,
            old,
            index: None,
            condition: None,
            old_condition_errors: None,
            verdict: Verdict::default(),
        }
    }

    /// Whether `error` is about a value unchanged from the old object.
    pub(super) fn is_unchanged(&mut self, error: &FieldError<'a>) -> bool {
        let (object, old) = (self.object, self.old);
        let index = self.index.get_or_insert_with(|| OldIndex::new(object, old));
        let path = error.path.as_str();
        for ((parent, list), same) in ATOMIC_LISTS.iter().zip(index.same_list) {
            let Some(rest) = path
                .strip_prefix(parent)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.strip_prefix(list))
            else {
                continue;
            };
            if rest.starts_with('[') {
                // An item's errors depend on the list alone: an unchanged list had them all.
                return same;
            }
            if rest.is_empty() && !same {
                return false;
            }
        }
        if path.starts_with(CONDITION_PREFIX) {
            return self.condition_unchanged(error);
        }
        index.old_errors.get(path).is_some_and(|old| {
            old.iter()
                .any(|o| o.kind == error.kind && o.value == error.value && o.detail == error.detail)
        })
    }

    /// The `type` of the new condition `i`, whatever its JSON type.
    pub(super) fn new_type(&self, i: usize) -> Option<Raw<'a>> {
        match self.condition {
            Some((current, item)) if current == i => Condition::type_value(item),
            // Validation names the condition it judges before its errors; should it not, the
            // list is read to find it.
            _ => match self.object.status {
                Field::Value(Status {
                    conditions: Field::Value(list),
                    ..
                }) => list.items().nth(i).and_then(Condition::type_value),
                _ => None,
            },
        }
    }

    /// Whether an error under `status.conditions[i]` was an error of the old condition of the
    /// same `type` too, at its own index there.
    pub(super) fn condition_unchanged(&mut self, error: &FieldError<'a>) -> bool {
        let Some(old_conditions) = self.index.as_ref().map(|i| &i.old_conditions) else {
            return false;
        };
        if old_conditions.is_empty() {
            return false;
        }
        let path = error.path.as_str();
        let Some((new_index, tail)) = path[CONDITION_PREFIX.len()..].split_once(']') else {
            return false;
        };
        let Some((old_index, old_item)) = new_index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.new_type(i))
            .and_then(|t| old_conditions.find(t))
        else {
            return false;
        };
        // The errors of one condition come one after the other: judging the old one once per
        // new condition is enough.
        if self.old_condition_errors.as_ref().map(|(i, _)| *i) != Some(old_index) {
            let mut errs = ErrorList::new();
            let old_path = Path::new("status").child("conditions").index(old_index);
            // The first condition of a type is never a duplicate: no list to check against.
            validate_condition(
                old_item,
                Condition::read(old_item),
                &old_path,
                false,
                &mut errs,
            );
            self.old_condition_errors = Some((old_index, errs));
        }
        let Some((_, old_errors)) = &self.old_condition_errors else {
            return false;
        };
        let old_path = format!("{CONDITION_PREFIX}{old_index}]{tail}");
        let mut old_detail = None;
        old_errors.iter().any(|o| {
            o.path.as_str() == old_path
                && o.kind == error.kind
                && o.value == error.value
                && o.detail
                    == *old_detail.get_or_insert_with(|| error.detail.replace(path, &old_path))
        })
    }
}

impl<'a> Report<'a> for Ratchet<'_, 'a> {
    fn push(&mut self, e: FieldError<'a>) {
        if self.is_unchanged(&e) {
            self.verdict.ratcheted.push(e);
        } else {
            self.verdict.errors.push(e);
        }
    }

    fn condition(&mut self, index: usize, item: Raw<'a>) {
        self.condition = Some((index, item));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::answer::field::CappedErrors;
    use crate::admission::rules::testing::*;
    use serde_json::{json, Value};

    #[test]
    fn ratchets_an_unchanged_schema_fault() {
        let mut old = claim();
        set(&mut old, "/status/conditions/0/status", json!(2));
        set(&mut old, "/status/conditions/0/reason", json!(""));
        let mut new = old.clone();
        set(&mut new, "/status/ips", json!(["10.128.20.9/24"]));
        let verdict = validate_json(&new, Some(&old));
        assert!(verdict.errors.is_empty(), "{:?}", verdict.errors);
        assert_eq!(verdict.ratcheted.len(), 3);
    }

    #[test]
    fn rejects_changed_network_on_update() {
        let old = claim();
        let new = with("/spec/network", json!("blue"));
        let v = validate_json(&new, Some(&old));
        let msgs: Vec<String> = v.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec!["spec.network: Invalid value: \"blue\": field is immutable"]
        );
    }

    #[test]
    fn rejects_every_changed_spec_field() {
        let old = claim();
        let mut new = with("/spec/network", json!("blue"));
        set(&mut new, "/spec/interface", json!("eth1"));
        set(&mut new, "/spec/ipRequests", json!(["10.0.0.1/24"]));
        let v = validate_json(&new, Some(&old));
        assert_eq!(v.errors.len(), 3, "{:?}", v.errors);
        assert_eq!(
            v.errors.kept.0[2].to_string(),
            "spec.ipRequests: Invalid value: [\"10.0.0.1/24\"]: field is immutable"
        );
    }

    #[test]
    fn rejects_spec_appearing_on_update() {
        let old = without("/spec");
        let new = claim();
        let v = validate_json(&new, Some(&old));
        let msgs: Vec<String> = v.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec!["spec: Invalid value: {\"interface\":\"pod16367aacb67\",\"network\":\"tenantred\"}: field is immutable"]
        );
    }

    #[test]
    fn accepts_unchanged_spec_on_status_update() {
        let old = without("/status");
        let v = validate_json(&claim(), Some(&old));
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn ratchets_an_invalid_value_unchanged_since_the_old_object() {
        // A claim created before the webhook was installed, with an interface name CNI refuses,
        // must still accept status updates.
        let old = with("/spec/interface", json!("eth:0"));
        let mut new = old.clone();
        set(&mut new, "/status/ips", json!(["10.1.2.3/24"]));
        let v = validate_json(&new, Some(&old));
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert_eq!(v.ratcheted.len(), 1);
    }

    /// A claim written with a bare IP before the webhook (or before issue 26) keeps taking
    /// status updates that leave its addresses alone: the error comes back as a warning.
    #[test]
    fn ratchets_an_unchanged_bare_ip() {
        let old = with("/status/ips", json!(["10.0.0.5"]));
        let mut new = old.clone();
        set(
            &mut new,
            "/status/ownerPod/name",
            json!("virt-launcher-vm-a-abcde"),
        );
        let v = validate_json(&new, Some(&old));
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert_eq!(v.ratcheted.len(), 1);
        let v = validate_json(&with("/status/ips", json!(["10.0.0.6"])), Some(&old));
        assert_eq!(
            v.errors.len(),
            1,
            "a changed list is judged: {:?}",
            v.errors
        );
    }

    #[test]
    fn does_not_ratchet_a_changed_invalid_value() {
        let old = with("/status/ips", json!(["winner"]));
        let new = with("/status/ips", json!(["10.1.2.3/24", "winner"]));
        let v = validate_json(&new, Some(&old));
        assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
        assert!(v.ratcheted.is_empty());
    }

    #[test]
    fn does_not_ratchet_items_of_a_changed_atomic_list() {
        let old = with("/status/ips", json!(["winner", "10.1.2.3/24"]));
        let new = with("/status/ips", json!(["winner", "10.1.2.4/24"]));
        let v = validate_json(&new, Some(&old));
        assert_eq!(v.errors.len(), 1);
    }

    #[test]
    fn ratchets_conditions_matched_by_type_after_reordering() {
        let bad = json!({"type": "Old", "status": "True", "reason": "bad reason", "lastTransitionTime": "2026-01-01T00:00:00Z"});
        let good = json!({"type": "Ready", "status": "True", "reason": "Ok", "lastTransitionTime": "2026-01-01T00:00:00Z"});
        let old = with("/status/conditions", json!([bad.clone(), good.clone()]));
        let new = with("/status/conditions", json!([good, bad]));
        let v = validate_json(&new, Some(&old));
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert_eq!(v.ratcheted.len(), 1);
    }

    #[test]
    fn does_not_ratchet_on_create() {
        let v = validate_json(&with("/spec/interface", json!("eth:0")), None);
        assert_eq!(v.errors.len(), 1);
    }

    /// Ratcheting as the contract states it, judged the plain way: every error of the new
    /// object against every error of the old one. The model the streaming [`Ratchet`] must
    /// agree with.
    fn ratcheted_by_model(object: &Value, old: &Value) -> (Vec<String>, Vec<String>) {
        let old_errors = validate_object_json(old);
        let list_of = |path: &str| {
            ATOMIC_LISTS.into_iter().find(|(parent, list)| {
                path.strip_prefix(parent)
                    .and_then(|r| r.strip_prefix('.'))
                    .and_then(|r| r.strip_prefix(list))
                    .is_some_and(|r| r.is_empty() || r.starts_with('['))
            })
        };
        let (mut denied, mut ratcheted) = (Vec::new(), Vec::new());
        for e in validate_object_json(object) {
            let path = e.path.as_str();
            let list_same = list_of(path).is_none_or(|(parent, list)| {
                member(object, parent, list) == member(old, parent, list)
            });
            let old_path = match path.strip_prefix(CONDITION_PREFIX) {
                None => Some(path.to_owned()),
                Some(rest) => rest.split_once(']').and_then(|(i, tail)| {
                    let t = object.pointer(&format!("/status/conditions/{i}/type"))?;
                    let j = old
                        .pointer("/status/conditions")?
                        .as_array()?
                        .iter()
                        .position(|c| c.get("type") == Some(t))?;
                    Some(format!("{CONDITION_PREFIX}{j}]{tail}"))
                }),
            };
            let unchanged = list_same
                && old_path.is_some_and(|old_path| {
                    old_errors.iter().any(|o| {
                        o.path.as_str() == old_path
                            && o.kind == e.kind
                            && o.value == e.value
                            && o.detail == e.detail.replace(path, &old_path)
                    })
                });
            if unchanged {
                ratcheted.push(e.to_string());
            } else {
                denied.push(e.to_string());
            }
        }
        denied.extend(
            immutability_json(object, old)
                .iter()
                .map(ToString::to_string),
        );
        (denied, ratcheted)
    }

    fn all(errors: &CappedErrors) -> Vec<String> {
        assert_eq!(errors.more, 0, "the model cases stay under the cap");
        errors.iter().map(ToString::to_string).collect()
    }

    fn arbitrary_claim() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let address = prop::sample::select(vec![
            json!("10.1.2.3/24"),
            json!("10.1.2.3/16"),
            json!("2001:DB8::1/64"),
            json!("2001:db8::1/64"),
            json!("2001:db8::1"),
            json!("winner"),
            json!("010.1.2.3"),
            json!(5),
        ]);
        let condition = (
            prop::sample::select(vec![json!("A"), json!("B"), json!("bad type"), json!(7)]),
            prop::sample::select(vec![json!("True"), json!("Maybe")]),
            prop::sample::select(vec![json!("Ok"), json!("bad reason"), json!("")]),
            prop::sample::select(vec![json!("2026-11-26T23:00:00Z"), json!("now")]),
        )
            .prop_map(|(t, st, r, ltt)| {
                json!({"type": t, "status": st, "reason": r, "lastTransitionTime": ltt})
            });
        let conditions = prop_oneof![
            prop::collection::vec(condition, 0..5).prop_map(Value::Array),
            Just(json!("not a list")),
            Just(json!([3])),
        ];
        (
            prop::collection::vec(address.clone(), 0..5),
            prop::collection::vec(address, 0..4),
            conditions,
            prop::sample::select(vec![json!("eth0"), json!("eth:0"), json!("a very long name")]),
            prop::sample::select(vec![json!("vm-a"), json!("VM_A")]),
            any::<bool>(),
        )
            .prop_map(|(ips, requests, conditions, interface, name, with_status)| {
                let mut c = json!({
                    "metadata": {"name": name},
                    "spec": {"network": "tenantred", "interface": interface, "ipRequests": requests},
                });
                if with_status {
                    c["status"] = json!({"ips": ips, "conditions": conditions});
                }
                c
            })
    }

    proptest::proptest! {
        #[test]
        fn ratchets_like_the_plain_model(
            old in arbitrary_claim(),
            new in arbitrary_claim(),
            keep in proptest::prelude::any::<[bool; 4]>(),
        ) {
            // Parts of the new object copied from the old one, so that unchanged lists,
            // conditions and names are common.
            let mut new = new;
            for (copy, pointer) in keep.iter().zip(["/status/ips", "/spec/ipRequests", "/status/conditions", "/metadata/name"]) {
                if let (true, Some(value)) = (*copy, old.pointer(pointer)) {
                    if let Some(slot) = new.pointer_mut(pointer) {
                        *slot = value.clone();
                    }
                }
            }
            let v = validate_json(&new, Some(&old));
            let (denied, ratcheted) = ratcheted_by_model(&new, &old);
            proptest::prop_assert_eq!(all(&v.errors), denied);
            proptest::prop_assert_eq!(all(&v.ratcheted), ratcheted);
        }
    }

    #[test]
    fn ratchets_a_long_unchanged_list_and_denies_it_changed() {
        let ips: Vec<Value> = (0..5_000).map(|i| json!(format!("x{i}"))).collect();
        let old = with("/status/ips", Value::Array(ips.clone()));
        let v = validate_json(&old.clone(), Some(&old));
        assert!(v.errors.is_empty());
        assert_eq!(v.ratcheted.len(), 5_000);
        let mut changed = ips;
        changed.push(json!("10.1.2.3/24"));
        let v = validate_json(&with("/status/ips", Value::Array(changed)), Some(&old));
        assert_eq!(v.errors.len(), 5_000);
        assert!(v.ratcheted.is_empty());
    }

    #[test]
    fn ratchets_long_condition_lists_matched_by_type_in_any_order() {
        let conditions: Vec<Value> = (0..3_000)
            .map(|i| json!({"type": format!("T{i}"), "status": "True", "reason": "bad reason", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
            .collect();
        let old = with("/status/conditions", Value::Array(conditions.clone()));
        let reversed: Vec<Value> = conditions.into_iter().rev().collect();
        let v = validate_json(
            &with("/status/conditions", Value::Array(reversed)),
            Some(&old),
        );
        assert!(v.errors.is_empty(), "{:?}", v.errors.kept.0.first());
        assert_eq!(v.ratcheted.len(), 3_000);
    }
}
