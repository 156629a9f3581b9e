//! Checking a parameter set against an agent's meta-data.
//!
//! The agent's own answer is the truth: a caller uses this check to warn, and refuses to run
//! an action only in an explicit strict mode, and then only an action that brings a resource
//! up or changes it ([`may_refuse`]). Refusing a `stop` would turn a clean stop into a failed
//! one, which a cluster escalates to fencing; refusing a `monitor` would hide the resource's
//! real state (a probe of an unconfigured agent answers 7, not 6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Action;
use crate::error::ValidationError;
use crate::metadata::{ContentType, Metadata, parse_duration};

/// Parameters every shell agent accepts through `ocf-shellfuncs` without listing them in its
/// meta-data (tracing switches); they are never reported as unknown.
pub const IMPLICIT_PARAMETERS: [&str; 2] = ["trace_ra", "trace_file"];

/// One thing wrong with a parameter set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParamProblem {
    /// A required parameter is missing or empty.
    Missing {
        /// The parameter.
        name: String,
    },
    /// The agent does not know this parameter.
    Unknown {
        /// The parameter.
        name: String,
    },
    /// The value does not have the parameter's type.
    WrongType {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// The type expected (`integer`, `boolean`, `time`).
        expected: String,
    },
    /// The value is not one of a `select`'s options.
    NotAnOption {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// The allowed values.
        options: Vec<String>,
    },
}

impl std::fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamProblem::Missing { name } => write!(f, "required parameter {name} is missing"),
            ParamProblem::Unknown { name } => write!(f, "unknown parameter {name}"),
            ParamProblem::WrongType {
                name,
                value,
                expected,
            } => write!(f, "parameter {name}={value:?} is not a valid {expected}"),
            ParamProblem::NotAnOption {
                name,
                value,
                options,
            } => write!(
                f,
                "parameter {name}={value:?} is not one of {}",
                options.join(", ")
            ),
        }
    }
}

/// True when a strict caller may refuse to run `action` because the parameters failed
/// [`validate`]: start, promote, reload, reload-agent, migrate_to, migrate_from and recover.
/// Never for stop, demote, monitor, status, notify, meta-data, validate-all, methods or usage:
/// those always reach the agent, whose answer is the truth.
///
/// ```
/// use ocf_resources::Action;
/// use ocf_resources::validate::may_refuse;
/// assert!(may_refuse(Action::Start));
/// assert!(!may_refuse(Action::Stop) && !may_refuse(Action::Monitor));
/// ```
pub const fn may_refuse(action: Action) -> bool {
    matches!(
        action,
        Action::Start
            | Action::Promote
            | Action::Reload
            | Action::ReloadAgent
            | Action::MigrateTo
            | Action::MigrateFrom
            | Action::Recover
    )
}

/// True for the boolean spellings Pacemaker accepts (`true/false`, `yes/no`, `on/off`,
/// `y/n`, `1/0`, any case).
pub fn is_boolean(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "1" | "0"
    )
}

/// True for a decimal integer with an optional sign.
pub fn is_integer(value: &str) -> bool {
    let v = value.trim();
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `params` against `meta`: every required parameter present and non-empty, no
/// unknown names (apart from [`IMPLICIT_PARAMETERS`]), integers, booleans, times and selects
/// well-formed. Lists every problem, not just the first.
///
/// ```
/// use std::collections::BTreeMap;
/// use ocf_resources::metadata::{Content, ContentType, Metadata, Parameter};
/// use ocf_resources::validate::{validate, ParamProblem};
/// let mut meta = Metadata::new("Demo");
/// meta.parameters.push(Parameter::new("port", Content::new(ContentType::Integer)).required(true));
/// let mut params = BTreeMap::new();
/// params.insert("port".to_owned(), "eighty".to_owned());
/// params.insert("colour".to_owned(), "red".to_owned());
/// let err = validate(&meta, &params).unwrap_err();
/// assert_eq!(err.problems.len(), 2);
/// assert!(matches!(err.problems[0], ParamProblem::Unknown { .. }));
/// ```
pub fn validate(meta: &Metadata, params: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    let mut problems = Vec::new();
    for name in params.keys() {
        if meta.parameter(name).is_none() && !IMPLICIT_PARAMETERS.contains(&name.as_str()) {
            problems.push(ParamProblem::Unknown { name: name.clone() });
        }
    }
    for p in &meta.parameters {
        let value = params.get(&p.name);
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            if p.required {
                problems.push(ParamProblem::Missing {
                    name: p.name.clone(),
                });
            }
            continue;
        };
        let wrong = |expected: &str| ParamProblem::WrongType {
            name: p.name.clone(),
            value: value.clone(),
            expected: expected.to_owned(),
        };
        match &p.content.kind {
            ContentType::Integer if !is_integer(value) => problems.push(wrong("integer")),
            ContentType::Boolean if !is_boolean(value) => problems.push(wrong("boolean")),
            ContentType::Time if parse_duration(value).is_none() => problems.push(wrong("time")),
            ContentType::Select
                if !p.content.options.is_empty() && !p.content.options.contains(value) =>
            {
                problems.push(ParamProblem::NotAnOption {
                    name: p.name.clone(),
                    value: value.clone(),
                    options: p.content.options.clone(),
                });
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ValidationError {
            agent: meta.name.clone(),
            problems,
        })
    }
}
