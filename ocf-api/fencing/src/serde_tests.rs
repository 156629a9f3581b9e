//! JSON round trips of every data type, and the stable shapes others rely on.

use std::time::Duration;

use ocf_core::NodeName;
use proptest::prelude::*;

use crate::*;

fn name() -> impl Strategy<Value = NodeName> {
    "[a-z][a-z0-9.-]{0,15}".prop_map(|s| NodeName::new(s).unwrap())
}

fn device_id() -> impl Strategy<Value = DeviceId> {
    "[a-z][a-z0-9_-]{0,15}".prop_map(|s| DeviceId::new(s).unwrap())
}

fn fence_action() -> impl Strategy<Value = FenceAction> {
    prop::sample::select(FenceAction::ALL.to_vec())
}

fn device_action() -> impl Strategy<Value = DeviceAction> {
    prop::sample::select(DeviceAction::ALL.to_vec())
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,24}"
}

fn outcome() -> impl Strategy<Value = FenceOutcome> {
    prop_oneof![
        Just(FenceOutcome::Succeeded),
        text().prop_map(|reason| FenceOutcome::Failed { reason }),
        any::<u64>().prop_map(|after_ms| FenceOutcome::TimedOut { after_ms }),
    ]
}

fn attempt() -> impl Strategy<Value = DeviceAttempt> {
    (
        device_id(),
        device_action(),
        outcome(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(d, a, o, s, e)| DeviceAttempt::new(d, a, o, s, e))
}

fn record() -> impl Strategy<Value = FenceRecord> {
    (
        any::<u64>(),
        name(),
        fence_action(),
        prop::collection::vec("[a-z]{1,8}@[a-z0-9]{1,8}", 1..4),
        prop::option::of("[a-z0-9@-]{1,12}"),
        prop::collection::vec(
            (
                1u32..5,
                prop::collection::vec(attempt(), 0..3),
                any::<bool>(),
            ),
            0..3,
        ),
        prop::option::of(outcome()),
        any::<u64>(),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(id, target, action, reqs, incident, levels, outcome, s, e)| {
                let mut r = FenceRecord::start(
                    id,
                    target,
                    action,
                    RequesterId::new(reqs[0].clone()).unwrap(),
                    incident.map(|i| IncidentId::new(i).unwrap()),
                );
                r.requesters = reqs
                    .into_iter()
                    .map(|q| RequesterId::new(q).unwrap())
                    .collect();
                r.levels = levels
                    .into_iter()
                    .map(|(l, a, ok)| LevelAttempt::new(l, a, ok))
                    .collect();
                r.outcome = outcome;
                r.started_ms = s;
                r.ended_ms = e;
                r
            },
        )
}

fn parameter_type() -> impl Strategy<Value = ParameterType> {
    prop_oneof![
        Just(ParameterType::String),
        Just(ParameterType::Integer),
        Just(ParameterType::Boolean),
        Just(ParameterType::Second),
        prop::collection::vec("[a-z]{1,6}", 0..4).prop_map(ParameterType::Select),
        "[a-z]{1,6}".prop_map(ParameterType::Other),
    ]
}

fn metadata() -> impl Strategy<Value = DeviceMetadata> {
    (
        "fence_[a-z]{1,8}",
        text(),
        text(),
        prop::collection::vec(
            (
                "[a-z_]{1,12}",
                any::<bool>(),
                parameter_type(),
                prop::option::of(text()),
                text(),
                any::<bool>(),
            ),
            0..5,
        ),
        prop::collection::vec("[a-z-]{1,12}", 0..6),
    )
        .prop_map(|(n, sd, ld, params, actions)| {
            let mut md = DeviceMetadata::new(n);
            md.shortdesc = sd;
            md.longdesc = ld;
            md.actions = actions;
            md.parameters = params
                .into_iter()
                .map(|(name, required, kind, default, shortdesc, deprecated)| {
                    let mut p = DeviceParameter::new(name);
                    p.required = required;
                    p.kind = kind;
                    p.default = default;
                    p.shortdesc = shortdesc;
                    p.deprecated = deprecated;
                    p
                })
                .collect();
            md
        })
}

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let json = serde_json::to_string(value).unwrap();
    serde_json::from_str(&json).unwrap()
}

proptest! {
    #[test]
    fn records_round_trip(r in record()) {
        prop_assert_eq!(round_trip(&r), r);
    }

    #[test]
    fn metadata_round_trips(md in metadata()) {
        prop_assert_eq!(round_trip(&md), md);
    }

    #[test]
    fn requests_round_trip(t in name(), a in fence_action(), ms in 0u64..10_000_000, inc in prop::option::of("[a-z0-9@-]{1,12}")) {
        let mut r = FenceRequest::new(t, a, "x@y".parse().unwrap()).with_timeout(Duration::from_millis(ms));
        r.incident = inc.map(|i| IncidentId::new(i).unwrap());
        prop_assert_eq!(round_trip(&r), r);
    }

    #[test]
    fn targets_and_levels_round_trip(hosts in prop::collection::btree_map(name(), "[a-z0-9]{1,4}", 0..5), devs in prop::collection::vec(device_id(), 0..4)) {
        let map = Targets::host_map(hosts.clone());
        prop_assert_eq!(round_trip(&map), map);
        let list = Targets::hosts(hosts.keys().cloned());
        prop_assert_eq!(round_trip(&list), list);
        let level = TopologyLevel::new(devs);
        prop_assert_eq!(round_trip(&level), level);
    }

    #[test]
    fn plain_params_round_trip(p in prop::collection::btree_map("(ip|login|port|ipport)[0-9]{0,2}", text(), 0..5)) {
        let params: DeviceParams = p.into_iter().collect();
        prop_assert_eq!(round_trip(&params), params);
    }

    #[test]
    fn errors_round_trip(t in name(), d in device_id(), r in record(), reason in text()) {
        let errors = vec![
            FenceError::NoDevice { target: t.clone() },
            FenceError::Refused { target: t.clone(), refusal: Refusal::new("quorum", reason.clone()) },
            FenceError::Failed { target: t.clone(), action: FenceAction::Off, reason: reason.clone(), record: Box::new(r) },
            FenceError::device(d.clone(), DeviceAction::Status, Some(t.clone()), reason.clone()),
            FenceError::DeviceTimedOut { device: d, action: DeviceAction::Monitor, target: None, timeout_ms: 5 },
            FenceError::Topology { target: t, level: Some(2), reason },
            FenceError::Lagged { missed: 3 },
        ];
        // Errors are not `PartialEq` (a source has no equality): compare their JSON.
        for e in errors {
            let back: FenceError = round_trip(&e);
            prop_assert_eq!(back.kind(), e.kind());
            prop_assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&e).unwrap());
        }
    }
}

#[test]
fn stable_shapes() {
    let mut r = FenceRecord::start(
        7,
        "n3".parse().unwrap(),
        FenceAction::Reboot,
        "pacemaker@n1".parse().unwrap(),
        None,
    );
    r.started_ms = 1000;
    r.ended_ms = Some(1500);
    r.outcome = Some(FenceOutcome::Succeeded);
    r.levels = vec![LevelAttempt::new(
        1,
        vec![DeviceAttempt::new(
            "ipmi".parse().unwrap(),
            DeviceAction::Reboot,
            FenceOutcome::Succeeded,
            1000,
            1500,
        )],
        true,
    )];
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        concat!(
            r#"{"id":7,"target":"n3","action":"reboot","requesters":["pacemaker@n1"],"incident":null,"#,
            r#""levels":[{"level":1,"attempts":[{"device":"ipmi","action":"reboot","outcome":{"result":"succeeded"},"started_ms":1000,"ended_ms":1500}],"succeeded":true}],"#,
            r#""outcome":{"result":"succeeded"},"started_ms":1000,"ended_ms":1500}"#
        )
    );
    assert_eq!(r.duration(), Some(Duration::from_millis(500)));
    let e = FenceError::NoDevice {
        target: "n3".parse().unwrap(),
    };
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"kind":"no_device","target":"n3"}"#
    );
    assert_eq!(e.kind(), FenceErrorKind::NoDevice);
    let params: DeviceParams = [("password", "pw"), ("ip", "1.2.3.4")]
        .into_iter()
        .collect();
    assert_eq!(
        serde_json::to_string(&params).unwrap(),
        r#"{"ip":"1.2.3.4","password":"<redacted>"}"#
    );
}

#[test]
fn errors_never_show_secrets_they_were_not_given() {
    let e = FenceError::device(
        "d".parse().unwrap(),
        DeviceAction::Reboot,
        Some("n1".parse().unwrap()),
        "exit 1",
    );
    assert_eq!(e.to_string(), "fence device d: reboot of n1 failed: exit 1");
}
