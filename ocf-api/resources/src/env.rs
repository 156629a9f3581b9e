//! The environment an agent runs in: variable names and a builder for the exact set.
//!
//! OCF passes everything but the action through the environment: where the agent library is
//! (`OCF_ROOT`), which API version the caller speaks, the instance's name, its parameters
//! (`OCF_RESKEY_<name>`) and the caller's meta attributes (`OCF_RESKEY_CRM_meta_<name>`,
//! among them the operation's timeout and interval in milliseconds).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::EnvError;
use crate::{Action, AgentId};

/// Where agents live unless `OCF_ROOT` says otherwise.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";
/// The agents' root directory (`resource.d/` and `lib/` are below it).
pub const OCF_ROOT: &str = "OCF_ROOT";
/// The major API version the caller speaks (`1`).
pub const OCF_RA_VERSION_MAJOR: &str = "OCF_RA_VERSION_MAJOR";
/// The minor API version the caller speaks (`1`).
pub const OCF_RA_VERSION_MINOR: &str = "OCF_RA_VERSION_MINOR";
/// The resource instance's name.
pub const OCF_RESOURCE_INSTANCE: &str = "OCF_RESOURCE_INSTANCE";
/// The agent's type (`Dummy`).
pub const OCF_RESOURCE_TYPE: &str = "OCF_RESOURCE_TYPE";
/// The agent's provider (`heartbeat`).
pub const OCF_RESOURCE_PROVIDER: &str = "OCF_RESOURCE_PROVIDER";
/// The depth of a monitor (0 basic, 10/20 deeper checks).
pub const OCF_CHECK_LEVEL: &str = "OCF_CHECK_LEVEL";
/// Set to ask shell agents (ocf-shellfuncs) to trace themselves.
pub const OCF_TRACE_RA: &str = "OCF_TRACE_RA";
/// The prefix of parameter variables: `OCF_RESKEY_<name>`.
pub const RESKEY_PREFIX: &str = "OCF_RESKEY_";
/// The prefix of meta attribute variables: `OCF_RESKEY_CRM_meta_<name>`.
pub const META_PREFIX: &str = "OCF_RESKEY_CRM_meta_";
/// The meta attribute carrying the operation's timeout in milliseconds.
pub const META_TIMEOUT: &str = "timeout";
/// The meta attribute carrying a recurring operation's interval in milliseconds (0: one-shot).
pub const META_INTERVAL: &str = "interval";
/// The meta attribute naming a migration's target node.
pub const META_MIGRATE_TARGET: &str = "migrate_target";
/// The meta attribute naming a migration's source node.
pub const META_MIGRATE_SOURCE: &str = "migrate_source";
/// The API version this crate speaks, as (major, minor).
pub const API_VERSION: (u32, u32) = (1, 1);

/// The node lists Pacemaker passes to `notify` (each as `notify_<name>`, space separated).
pub const NOTIFY_LISTS: [&str; 16] = [
    "active_resource",
    "active_uname",
    "inactive_resource",
    "available_uname",
    "start_resource",
    "start_uname",
    "stop_resource",
    "stop_uname",
    "promote_resource",
    "promote_uname",
    "demote_resource",
    "demote_uname",
    "promoted_resource",
    "promoted_uname",
    "unpromoted_resource",
    "unpromoted_uname",
];

/// The rule every parameter name (and meta attribute name, after `-` becomes `_`) follows:
/// the name becomes part of a variable (`OCF_RESKEY_<name>`) that a `/bin/sh` agent must be
/// able to read, so it is a POSIX shell variable name.
pub const NAME_RULE: &str = "[A-Za-z_][A-Za-z0-9_]*";

/// The rule every instance name (`OCF_RESOURCE_INSTANCE`) follows: a Pacemaker resource id,
/// optionally with a clone suffix (`web`, `db-1`, `vip.eth0`, `web:0`): 1 to
/// [`MAX_INSTANCE_LEN`] characters of ASCII letters, digits, `_`, `.`, `-`, `+` and `:`, the first
/// a letter, digit or `_`. Agents put it into file names, log lines and shell commands, so
/// white space, control characters (a newline), `/`, `;`, `$` and quotes are refused, as is the
/// empty string (an instance with no name).
pub const INSTANCE_RULE: &str = "[A-Za-z0-9_][A-Za-z0-9_.:+-]*, at most 255 characters";

/// The longest instance name accepted.
pub const MAX_INSTANCE_LEN: usize = 255;

/// True when `name` matches [`NAME_RULE`]: a POSIX shell variable name.
///
/// ```
/// use ocf_resources::env::is_env_name;
/// assert!(is_env_name("state") && is_env_name("_x1"));
/// assert!(!is_env_name("my-param") && !is_env_name("a b") && !is_env_name("$(id)"));
/// assert!(!is_env_name("") && !is_env_name("1st"));
/// ```
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a parameter name against [`NAME_RULE`].
pub fn check_param_name(name: &str) -> Result<(), EnvError> {
    if is_env_name(name) {
        Ok(())
    } else {
        Err(EnvError::BadParamName {
            name: name.to_owned(),
        })
    }
}

/// The variable suffix of meta attribute `name`: `-` becomes `_`, as Pacemaker passes them
/// (`clone-max` is `OCF_RESKEY_CRM_meta_clone_max`).
pub fn meta_suffix(name: &str) -> String {
    name.replace('-', "_")
}

/// Checks a meta attribute name: after `-` becomes `_`, it must match [`NAME_RULE`].
pub fn check_meta_name(name: &str) -> Result<(), EnvError> {
    if is_env_name(&meta_suffix(name)) {
        Ok(())
    } else {
        Err(EnvError::BadMetaName {
            name: name.to_owned(),
        })
    }
}

/// Checks an instance name against [`INSTANCE_RULE`].
///
/// ```
/// use ocf_resources::env::check_instance;
/// assert!(check_instance("web").is_ok() && check_instance("web:0").is_ok());
/// assert!(check_instance("").is_err());
/// assert!(check_instance("a\nb").is_err() && check_instance("a;b").is_err());
/// ```
pub fn check_instance(instance: &str) -> Result<(), EnvError> {
    let reason = if instance.is_empty() {
        "is empty"
    } else if instance.len() > MAX_INSTANCE_LEN {
        "is longer than 255 characters"
    } else if !instance
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        "must start with a letter, a digit or '_'"
    } else if !instance
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'+' | b':'))
    {
        "may only hold ASCII letters, digits, '_', '.', '-', '+' and ':'"
    } else {
        return Ok(());
    };
    Err(EnvError::BadInstance {
        instance: instance.to_owned(),
        reason,
    })
}

/// The variable name of parameter `name`.
pub fn reskey(name: &str) -> String {
    format!("{RESKEY_PREFIX}{name}")
}

/// The variable name of meta attribute `name` (`-` becomes `_`, as Pacemaker does).
pub fn meta_key(name: &str) -> String {
    format!("{META_PREFIX}{}", meta_suffix(name))
}

/// Whether a notification comes before or after the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyType {
    /// Before the operation (`pre`).
    Pre,
    /// After the operation (`post`).
    Post,
}

impl NotifyType {
    /// The value of `notify_type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotifyType::Pre => "pre",
            NotifyType::Post => "post",
        }
    }
}

/// What a `notify` action is told: the type, the operation and the node/resource lists.
///
/// ```
/// use ocf_resources::{Action, env::{Notify, NotifyType}};
/// let n = Notify::new(NotifyType::Pre, Action::Start).list("start_uname", ["node1", "node2"]);
/// let vars = n.variables();
/// assert_eq!(vars["OCF_RESKEY_CRM_meta_notify_type"], "pre");
/// assert_eq!(vars["OCF_RESKEY_CRM_meta_notify_operation"], "start");
/// assert_eq!(vars["OCF_RESKEY_CRM_meta_notify_start_uname"], "node1 node2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notify {
    /// Before or after.
    #[serde(rename = "type")]
    pub kind: NotifyType,
    /// The operation notified about (start, stop, promote, demote).
    pub operation: Action,
    /// Lists by name (see [`NOTIFY_LISTS`]), each a list of node or resource names.
    pub lists: BTreeMap<String, Vec<String>>,
}

impl Notify {
    /// A notification with empty lists.
    pub fn new(kind: NotifyType, operation: Action) -> Self {
        Self {
            kind,
            operation,
            lists: BTreeMap::new(),
        }
    }

    /// Sets one list (`start_uname`, `active_resource`, ...).
    #[must_use]
    pub fn list<I, S>(mut self, name: &str, items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.lists
            .insert(name.to_owned(), items.into_iter().map(Into::into).collect());
        self
    }

    /// The `OCF_RESKEY_CRM_meta_notify_*` variables; every known list is present (empty when
    /// not set), as agents test them without checking for existence.
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        vars.insert(meta_key("notify_type"), self.kind.as_str().to_owned());
        vars.insert(
            meta_key("notify_operation"),
            self.operation.as_str().to_owned(),
        );
        for name in NOTIFY_LISTS {
            vars.insert(meta_key(&format!("notify_{name}")), String::new());
        }
        for (name, items) in &self.lists {
            vars.insert(meta_key(&format!("notify_{name}")), items.join(" "));
        }
        vars
    }
}

/// Builds the exact OCF 1.1 environment for one action.
///
/// ```
/// use std::time::Duration;
/// use ocf_resources::env::EnvBuilder;
/// let id = "ocf:heartbeat:Dummy".parse()?;
/// let env = EnvBuilder::new("/usr/lib/ocf", &id, "web")
///     .param("state", "/tmp/web.state")
///     .meta("clone_max", "2")
///     .timeout(Duration::from_secs(20))
///     .interval(Duration::from_secs(10))
///     .check_level(10)
///     .build()?;
/// assert_eq!(env["OCF_ROOT"], "/usr/lib/ocf");
/// assert_eq!(env["OCF_RA_VERSION_MAJOR"], "1");
/// assert_eq!(env["OCF_RA_VERSION_MINOR"], "1");
/// assert_eq!(env["OCF_RESOURCE_INSTANCE"], "web");
/// assert_eq!(env["OCF_RESOURCE_TYPE"], "Dummy");
/// assert_eq!(env["OCF_RESOURCE_PROVIDER"], "heartbeat");
/// assert_eq!(env["OCF_RESKEY_state"], "/tmp/web.state");
/// assert_eq!(env["OCF_RESKEY_CRM_meta_clone_max"], "2");
/// assert_eq!(env["OCF_RESKEY_CRM_meta_timeout"], "20000");
/// assert_eq!(env["OCF_RESKEY_CRM_meta_interval"], "10000");
/// assert_eq!(env["OCF_CHECK_LEVEL"], "10");
/// assert!(!env.contains_key("OCF_TRACE_RA"));
///
/// // Names a shell agent could not read are refused, not passed on invisibly.
/// assert!(EnvBuilder::new("/usr/lib/ocf", &id, "web").param("my-param", "1").build().is_err());
/// // A meta attribute set explicitly reaches the agent as given (a recurring monitor by hand).
/// let env = EnvBuilder::new("/usr/lib/ocf", &id, "web")
///     .meta("interval", "10000")
///     .build()?;
/// assert_eq!(env["OCF_RESKEY_CRM_meta_interval"], "10000");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EnvBuilder {
    root: String,
    agent: AgentId,
    instance: String,
    params: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    timeout: Option<Duration>,
    interval: Duration,
    check_level: Option<u32>,
    notify: Option<Notify>,
    trace: bool,
}

impl EnvBuilder {
    /// A builder for `agent` running as `instance` with agents under `root`.
    pub fn new(root: impl Into<String>, agent: &AgentId, instance: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            agent: agent.clone(),
            instance: instance.into(),
            params: BTreeMap::new(),
            meta: BTreeMap::new(),
            timeout: None,
            interval: Duration::ZERO,
            check_level: None,
            notify: None,
            trace: false,
        }
    }

    /// Adds one parameter (`OCF_RESKEY_<name>`).
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Adds parameters.
    #[must_use]
    pub fn params<'a>(
        mut self,
        params: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        self.params
            .extend(params.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// Adds one meta attribute (`OCF_RESKEY_CRM_meta_<name>`).
    #[must_use]
    pub fn meta(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.insert(name.into(), value.into());
        self
    }

    /// Adds meta attributes.
    #[must_use]
    pub fn metas<'a>(mut self, meta: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        self.meta
            .extend(meta.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// Sets the operation's timeout (`OCF_RESKEY_CRM_meta_timeout`, milliseconds).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the operation's interval (`OCF_RESKEY_CRM_meta_interval`, milliseconds; always
    /// present, 0 for a one-shot operation or probe).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the monitor depth (`OCF_CHECK_LEVEL`).
    #[must_use]
    pub fn check_level(mut self, level: u32) -> Self {
        self.check_level = Some(level);
        self
    }

    /// Sets the notification variables (for `notify`).
    #[must_use]
    pub fn notify(mut self, notify: Notify) -> Self {
        self.notify = Some(notify);
        self
    }

    /// Asks the agent to trace itself (`OCF_TRACE_RA=1`).
    #[must_use]
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    /// The variables, sorted by name.
    ///
    /// Refuses (naming the culprit) a parameter name that is not a shell variable name
    /// ([`NAME_RULE`]), a meta attribute name that is not one after `-` becomes `_`, and an
    /// instance name that breaks [`INSTANCE_RULE`]: such a variable would be invisible to a
    /// `/bin/sh` agent, which would then act on a configuration nobody gave it.
    ///
    /// Precedence: parameters, then the timeout/interval set on the builder, then meta
    /// attributes set explicitly (so `meta("interval", "10000")` reaches the agent as given),
    /// then notify, then the fixed `OCF_*` identity variables.
    pub fn build(self) -> Result<BTreeMap<String, String>, EnvError> {
        check_instance(&self.instance)?;
        let mut env = BTreeMap::new();
        for (k, v) in self.params {
            check_param_name(&k)?;
            env.insert(reskey(&k), v);
        }
        if let Some(t) = self.timeout {
            env.insert(
                meta_key(META_TIMEOUT),
                ocf_core::millis::as_millis(t).to_string(),
            );
        }
        env.insert(
            meta_key(META_INTERVAL),
            ocf_core::millis::as_millis(self.interval).to_string(),
        );
        for (k, v) in self.meta {
            check_meta_name(&k)?;
            env.insert(meta_key(&k), v);
        }
        if let Some(n) = self.notify {
            env.extend(n.variables());
        }
        if let Some(level) = self.check_level {
            env.insert(OCF_CHECK_LEVEL.to_owned(), level.to_string());
        }
        if self.trace {
            env.insert(OCF_TRACE_RA.to_owned(), "1".to_owned());
        }
        env.insert(OCF_ROOT.to_owned(), self.root);
        env.insert(OCF_RA_VERSION_MAJOR.to_owned(), API_VERSION.0.to_string());
        env.insert(OCF_RA_VERSION_MINOR.to_owned(), API_VERSION.1.to_string());
        env.insert(OCF_RESOURCE_INSTANCE.to_owned(), self.instance);
        env.insert(
            OCF_RESOURCE_TYPE.to_owned(),
            self.agent.agent_type().to_owned(),
        );
        env.insert(
            OCF_RESOURCE_PROVIDER.to_owned(),
            self.agent.provider().to_owned(),
        );
        Ok(env)
    }
}
