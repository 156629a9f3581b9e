#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Round trips: meta-data XML write→parse, serde JSON, exit code ↔ number, action ↔ name.

use std::collections::BTreeMap;
use std::time::Duration;

use ocf_resources::metadata::{
    ActionSpec, Content, ContentType, Deprecation, Metadata, Parameter, Text,
};
use ocf_resources::validate::{ParamProblem, validate};
use ocf_resources::{Action, AgentId, AgentOutcome, ExitCode, Severity, Status};
use proptest::prelude::*;

/// Text as parsing returns it: no surrounding white space, no CR (XML normalises it).
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&\"'.,;:/_\\-\u{e9}\u{4e2d}\n]{0,24}".prop_map(|s| s.trim().to_owned())
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_\\-]{0,12}"
}

fn texts() -> impl Strategy<Value = Vec<Text>> {
    proptest::collection::vec(
        (proptest::option::of("[a-z]{2}"), text()).prop_map(|(l, t)| Text::new(l.as_deref(), t)),
        0..3,
    )
}

fn content() -> impl Strategy<Value = Content> {
    (
        prop_oneof![
            Just(ContentType::String),
            Just(ContentType::Integer),
            Just(ContentType::Boolean),
            Just(ContentType::Time),
            Just(ContentType::Select),
            word().prop_map(|w| ContentType::from_name(&w)),
        ],
        proptest::option::of(text()),
        proptest::collection::vec(text(), 0..4),
    )
        .prop_map(|(kind, default, options)| {
            let mut c = Content::new(kind).with_options(options);
            c.default = default;
            c
        })
}

fn parameter() -> impl Strategy<Value = Parameter> {
    (
        word(),
        any::<(bool, bool, bool)>(),
        proptest::option::of(word()),
        proptest::option::of((proptest::collection::vec(word(), 0..2), texts())),
        texts(),
        texts(),
        content(),
    )
        .prop_map(
            |(
                name,
                (required, unique, reloadable),
                group,
                deprecated,
                longdesc,
                shortdesc,
                content,
            )| {
                let mut p = Parameter::new(name, content)
                    .required(required)
                    .unique(unique)
                    .reloadable(reloadable);
                p.unique_group = group;
                p.deprecated = deprecated.map(|(replaced_with, desc)| {
                    let mut d = Deprecation::default();
                    d.replaced_with = replaced_with;
                    d.desc = desc;
                    d
                });
                p.longdesc = longdesc;
                p.shortdesc = shortdesc;
                p
            },
        )
}

fn action_spec() -> impl Strategy<Value = ActionSpec> {
    (
        prop::sample::select(Action::ALL.to_vec()),
        0u64..100_000,
        proptest::option::of(0u64..100_000),
        proptest::option::of(0u32..30),
        proptest::option::of(word()),
    )
        .prop_map(|(action, timeout, interval, depth, role)| {
            let mut a = ActionSpec::new(action, Duration::from_millis(timeout));
            if let Some(i) = interval {
                a = a.with_interval(Duration::from_millis(i));
            }
            if let Some(d) = depth {
                a = a.with_depth(d);
            }
            a.role = role;
            a
        })
}

fn metadata() -> impl Strategy<Value = Metadata> {
    (
        word(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        texts(),
        texts(),
        proptest::collection::vec(parameter(), 0..5),
        proptest::collection::vec(action_spec(), 0..6),
    )
        .prop_map(
            |(name, version, api, longdesc, shortdesc, parameters, actions)| {
                let mut m = Metadata::new(name);
                m.version = version;
                m.api_version = api;
                m.longdesc = longdesc;
                m.shortdesc = shortdesc;
                m.parameters = parameters;
                m.actions = actions;
                m
            },
        )
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        prop::sample::select(ExitCode::ALL.to_vec()).prop_map(|code| Status::Exited { code }),
        any::<i32>().prop_map(|code| Status::UnknownExitCode { code }),
        (0u64..1_000_000).prop_map(|ms| Status::TimedOut {
            after: Duration::from_millis(ms)
        }),
        (1i32..64).prop_map(|signal| Status::Signaled { signal }),
        text().prop_map(|path| Status::NotInstalled { path }),
        (text(), text()).prop_map(|(path, reason)| Status::NotExecutable { path, reason }),
    ]
}

proptest! {
    #[test]
    fn metadata_xml_round_trips(meta in metadata()) {
        let xml = meta.to_xml();
        let back = Metadata::parse(xml.as_bytes()).unwrap();
        prop_assert_eq!(back, meta);
    }

    #[test]
    fn metadata_json_round_trips(meta in metadata()) {
        let json = serde_json::to_string(&meta).unwrap();
        let back: Metadata = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, meta);
    }

    #[test]
    fn outcome_json_round_trips(status in status(), out in text(), err in text(), ms in 0u64..10_000_000, t in any::<(bool, bool)>()) {
        let mut o = AgentOutcome::new(status, Duration::from_millis(ms)).with_output(out, err);
        o.stdout_truncated = t.0;
        o.stderr_truncated = t.1;
        let json = serde_json::to_string(&o).unwrap();
        let back: AgentOutcome = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, o);
    }

    #[test]
    #[allow(clippy::single_match_else)]
    fn exit_code_number_round_trips(n in any::<i32>()) {
        match ExitCode::from_code(n) {
            Some(c) => {
                prop_assert_eq!(i32::from(c), n);
                let json = serde_json::to_string(&c).unwrap();
                prop_assert_eq!(&json, &n.to_string());
                prop_assert_eq!(serde_json::from_str::<ExitCode>(&json).unwrap(), c);
            }
            None => {
                prop_assert!(!(0..=9).contains(&n) && n != 190 && n != 191);
                prop_assert!(ExitCode::try_from(n).is_err());
                prop_assert!(serde_json::from_str::<ExitCode>(&n.to_string()).is_err());
            }
        }
    }

    #[test]
    fn agent_id_round_trips(p in word(), t in "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,15}") {
        let id = AgentId::new(p, t).unwrap();
        let s = id.to_string();
        prop_assert_eq!(s.parse::<AgentId>().unwrap(), id.clone());
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<AgentId>(&json).unwrap(), id);
    }

    #[test]
    fn validation_lists_every_problem(unknown in proptest::collection::btree_set("[a-z]{3,8}", 0..4)) {
        let mut meta = Metadata::new("X");
        meta.parameters.push(Parameter::new("port", Content::new(ContentType::Integer)).required(true));
        let params: BTreeMap<String, String> = unknown.iter().filter(|u| *u != "port").map(|u| (u.clone(), "v".to_owned())).collect();
        let err = validate(&meta, &params).unwrap_err();
        prop_assert_eq!(err.problems.len(), params.len() + 1);
    }
}

#[test]
fn every_exit_code_has_its_number_name_and_severity() {
    let table = [
        (0, "OCF_SUCCESS"),
        (1, "OCF_ERR_GENERIC"),
        (2, "OCF_ERR_ARGS"),
        (3, "OCF_ERR_UNIMPLEMENTED"),
        (4, "OCF_ERR_PERM"),
        (5, "OCF_ERR_INSTALLED"),
        (6, "OCF_ERR_CONFIGURED"),
        (7, "OCF_NOT_RUNNING"),
        (8, "OCF_RUNNING_PROMOTED"),
        (9, "OCF_FAILED_PROMOTED"),
        (190, "OCF_DEGRADED"),
        (191, "OCF_DEGRADED_PROMOTED"),
    ];
    for (n, name) in table {
        let c = ExitCode::from_code(n).unwrap();
        assert_eq!(c.name(), name);
    }
    // The names and numbers agree with the shell library agents source.
    if let Ok(lib) = std::fs::read_to_string("/usr/lib/ocf/lib/heartbeat/ocf-returncodes") {
        for line in lib.lines().filter(|l| l.starts_with("OCF_")) {
            let (name, n) = line.split_once('=').unwrap();
            let c = ExitCode::from_code(n.trim().parse().unwrap()).unwrap();
            assert!(c.name() == name || c.legacy_name() == Some(name), "{line}");
        }
    }
    assert_eq!(ExitCode::ErrGeneric.severity(), Severity::Soft);
    for c in [
        ExitCode::ErrArgs,
        ExitCode::ErrUnimplemented,
        ExitCode::ErrPerm,
        ExitCode::ErrInstalled,
    ] {
        assert_eq!(c.severity(), Severity::Hard);
    }
    assert_eq!(ExitCode::ErrConfigured.severity(), Severity::Fatal);
}

#[test]
fn per_action_meaning() {
    use ocf_resources::ResourceState;
    let v = ExitCode::NotRunning.verdict(Action::Monitor);
    assert!(v.success && v.state == Some(ResourceState::Stopped));
    assert!(!ExitCode::NotRunning.verdict(Action::Start).success);
    assert!(ExitCode::RunningPromoted.verdict(Action::Monitor).success);
    assert!(!ExitCode::FailedPromoted.verdict(Action::Monitor).success);
    assert!(ExitCode::Degraded.verdict(Action::Monitor).success);
    assert!(!ExitCode::ErrGeneric.verdict(Action::Monitor).success);
    assert!(ExitCode::Success.verdict(Action::Stop).success);
}

#[test]
fn every_action_round_trips_its_name() {
    for a in Action::ALL {
        assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
        assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
    }
    assert!("restart".parse::<Action>().is_err());
}

#[test]
fn validation_checks_types() {
    let mut meta = Metadata::new("X");
    meta.parameters
        .push(Parameter::new("n", Content::new(ContentType::Integer)));
    meta.parameters
        .push(Parameter::new("b", Content::new(ContentType::Boolean)));
    meta.parameters
        .push(Parameter::new("t", Content::new(ContentType::Time)));
    meta.parameters.push(Parameter::new(
        "s",
        Content::new(ContentType::Select).with_options(["a", "b"]),
    ));
    let good: BTreeMap<String, String> = [
        ("n", "-3"),
        ("b", "Yes"),
        ("t", "500ms"),
        ("s", "a"),
        ("trace_ra", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    validate(&meta, &good).unwrap();
    let bad: BTreeMap<String, String> = [("n", "3x"), ("b", "maybe"), ("t", "soon"), ("s", "c")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let err = validate(&meta, &bad).unwrap_err();
    assert_eq!(err.problems.len(), 4);
    assert!(
        err.problems
            .iter()
            .any(|p| matches!(p, ParamProblem::NotAnOption { .. }))
    );
    let msg = err.to_string();
    assert!(
        msg.contains("3x") && !msg.contains("ocf ") && !msg.contains("--"),
        "{msg}"
    );
}

#[test]
fn json_shapes_are_stable() {
    let o = AgentOutcome::new(
        Status::TimedOut {
            after: Duration::from_millis(1500),
        },
        Duration::from_millis(1502),
    );
    assert_eq!(
        serde_json::to_string(&o).unwrap(),
        r#"{"status":{"kind":"timed_out","after":1500},"stdout":"","stderr":"","stdout_truncated":false,"stderr_truncated":false,"duration_ms":1502}"#
    );
    let mut meta = Metadata::new("A");
    meta.parameters.push(
        Parameter::new("p", Content::new(ContentType::Select).with_options(["x"])).required(true),
    );
    meta.actions
        .push(ActionSpec::new(Action::Monitor, Duration::from_secs(20)));
    assert_eq!(
        serde_json::to_string(&meta).unwrap(),
        r#"{"name":"A","version":null,"api_version":"1.1","longdesc":[],"shortdesc":[],"parameters":[{"name":"p","required":true,"unique":false,"unique_group":null,"reloadable":false,"deprecated":null,"longdesc":[],"shortdesc":[],"content":{"type":"select","default":null,"options":["x"]}}],"actions":[{"name":"monitor","timeout":"20s","interval":null,"depth":null,"role":null,"start_delay":null}]}"#
    );
    let problem = ParamProblem::Missing { name: "p".into() };
    assert_eq!(
        serde_json::to_string(&problem).unwrap(),
        r#"{"problem":"missing","name":"p"}"#
    );
    let id: AgentId = "ocf:heartbeat:Dummy".parse().unwrap();
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        r#""ocf:heartbeat:Dummy""#
    );
}
