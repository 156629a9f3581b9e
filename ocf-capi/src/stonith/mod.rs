//! `stonith.h`: cluster-glue's reset service ("what can you reset, reset this one by name"),
//! source-compatible with cluster-glue's public functions.
//!
//! Two kinds of device:
//! - type `ocf` ([`node`]): the local node's cluster fencer. Its host list is what the node's
//!   devices can fence; a reset is a request to the fencer, merged with every other request
//!   for that node into one device action;
//! - every cluster-glue plugin type (`null`, `external/ssh`, ...; [`glue`]): run as ocf's
//!   stonith devices run them, through the `stonith` command, answering exactly what
//!   libstonith answers for the same configuration and requests.
//!
//! Configuration follows libstonith: every configuration name of a plugin must be given (else
//! `S_INVAL`); a value with no word in it is `S_BADCONFIG`; other names are ignored; the
//! device must be configured before status, host list and reset (else `S_INVAL`); host names
//! are lower-cased. Where ocf is stricter than the `null` plugin (documented in the guide):
//! an operation other than `ST_GENERIC_RESET`, `ST_POWERON` and `ST_POWEROFF` is `S_INVAL`
//! for every type (the `null` plugin says `S_OK` to any number); NULL pointers and handles this
//! library did not make are `S_INVAL` (or NULL) instead of a crash; a plugin's own checks of a
//! value (an address, a login) come back from the first status, host list or reset rather than
//! from `stonith_set_config`, since `stonith` has no "check the configuration" command.

pub mod codes;
pub mod config;
pub mod ffi;
pub mod glue;
pub mod node;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, c_char, c_int};
use std::sync::{Mutex, OnceLock};

use codes::{
    S_BADCONFIG, S_INVAL, S_OOPS, ST_CONF_XML, ST_DEVICEDESCR, ST_DEVICEID, ST_DEVICENAME,
    ST_GENERIC_RESET, ST_POWEROFF, ST_POWERON,
};
use node::NodeSettings;

use crate::last_error;

/// `Stonith`: what the host sees of a device (its type); the rest stays in the library.
#[repr(C)]
#[derive(Debug)]
pub struct Stonith {
    /// `stype`: the device's type, as given to `stonith_new`.
    pub stype: *mut c_char,
}

/// `StonithNVpair`: one configuration name and value; an array ends with a NULL name.
#[repr(C)]
#[derive(Debug)]
pub struct StonithNVpair {
    /// `s_name`.
    pub s_name: *mut c_char,
    /// `s_value`.
    pub s_value: *mut c_char,
}

/// What kind of device a handle is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Type `ocf`: the node's cluster fencer.
    Node,
    /// A cluster-glue plugin type.
    Glue {
        /// The plugin type.
        plugin: String,
    },
}

/// A configured device.
#[derive(Clone)]
enum Configured {
    Node(NodeSettings),
    /// The plugin's configuration names and values, as its environment.
    Glue(Vec<(String, String)>),
}

impl std::fmt::Debug for Configured {
    /// Names only: a plugin's values may be passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node(s) => f.debug_tuple("Node").field(s).finish(),
            Self::Glue(env) => f
                .debug_tuple("Glue")
                .field(&env.iter().map(|(n, _)| n).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// `text` with the values of the secret parameters in `env` (a password, a key: by name)
/// replaced, for messages built from what a plugin printed.
fn redact(text: &str, env: &[(String, String)]) -> String {
    env.iter()
        .filter(|(name, value)| ocf_fencing::is_secret_parameter(name) && !value.is_empty())
        .fold(text.to_owned(), |t, (_, value)| {
            t.replace(value.as_str(), "***")
        })
}

/// A NULL-terminated C array of C strings owned by a handle.
struct CArray {
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl CArray {
    fn new(items: &[String]) -> Self {
        let strings: Vec<CString> = items
            .iter()
            .map(|s| CString::new(s.replace('\0', "")).unwrap_or_default())
            .collect();
        let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Self {
            _strings: strings,
            pointers,
        }
    }
}

/// One device made by `stonith_new`.
struct Handle {
    public: Box<Stonith>,
    _stype: CString,
    kind: Kind,
    configured: Option<Configured>,
    names: Option<CArray>,
    info: BTreeMap<c_int, CString>,
    debug: c_int,
    log: Option<ffi::PilLogFun>,
}

// SAFETY: the raw pointers in a handle point into memory the handle owns; every access is
// serialised by the registry's mutex.
#[allow(unsafe_code)]
unsafe impl Send for Handle {}

/// Every handle, and every array handed to the host, behind one lock that is never held
/// while a device runs.
struct Registry {
    handles: BTreeMap<usize, Handle>,
    /// `char **` host lists given out (freed by `stonith_free_hostlist`).
    hostlists: BTreeSet<usize>,
    /// `StonithNVpair *` arrays given out (freed by `free_NVpair`).
    pairs: BTreeSet<usize>,
    /// `stonith_types()`'s answer, valid until the next call.
    types: Option<CArray>,
}

// SAFETY: as for `Handle`.
#[allow(unsafe_code)]
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    handles: BTreeMap::new(),
    hostlists: BTreeSet::new(),
    pairs: BTreeSet::new(),
    types: None,
});

/// Runs `f` on the registry (a panic while holding the lock leaves plain data behind).
fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    f(&mut REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// The plugin types cluster-glue offers here, listed once per process.
fn glue_types() -> &'static [String] {
    static TYPES: OnceLock<Vec<String>> = OnceLock::new();
    TYPES.get_or_init(glue::plugin_types)
}

/// Every type: `ocf` first, then cluster-glue's.
pub fn types() -> Vec<String> {
    std::iter::once(node::TYPE.to_owned())
        .chain(glue_types().iter().cloned())
        .collect()
}

/// `stonith_types()`: a NULL-terminated array, valid until the next call.
pub fn types_array() -> *mut *mut c_char {
    let array = CArray::new(&types());
    with_registry(|r| {
        let p = array.pointers.as_ptr().cast_mut().cast::<*mut c_char>();
        r.types = Some(array);
        p
    })
}

/// A plugin name that can only name a plugin (no path tricks), before asking `stonith`.
fn plausible_plugin(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['/', '-', '.'])
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
}

/// `stonith_new`: a device of `stype`, or `None` for a type nobody offers.
pub fn new(stype: &str) -> Option<usize> {
    let kind = if stype == node::TYPE {
        Kind::Node
    } else if plausible_plugin(stype) && glue_types().iter().any(|t| t == stype) {
        Kind::Glue {
            plugin: stype.to_owned(),
        }
    } else {
        last_error::set(format!(
            "stonith_new: no device type {stype:?} (types: ocf and cluster-glue's `stonith -L`)"
        ));
        return None;
    };
    let type_c = CString::new(stype).ok()?;
    let public = Box::new(Stonith {
        stype: type_c.as_ptr().cast_mut(),
    });
    let key = std::ptr::from_ref::<Stonith>(&public) as usize;
    with_registry(|r| {
        r.handles.insert(
            key,
            Handle {
                public,
                _stype: type_c,
                kind,
                configured: None,
                names: None,
                info: BTreeMap::new(),
                debug: 0,
                log: None,
            },
        );
    });
    Some(key)
}

/// The pointer the host gets for `key`.
pub fn public_ptr(key: usize) -> *mut Stonith {
    with_registry(|r| {
        r.handles
            .get_mut(&key)
            .map_or(std::ptr::null_mut(), |h| std::ptr::from_mut(&mut *h.public))
    })
}

/// `stonith_delete`: the handle and what it cached go.
pub fn delete(key: usize) -> bool {
    with_registry(|r| r.handles.remove(&key).is_some())
}

fn unknown(what: &str) -> c_int {
    last_error::set(format!(
        "{what}: not a device made by stonith_new (NULL, deleted, or foreign)"
    ));
    S_INVAL
}

fn kind_of(key: usize) -> Option<Kind> {
    with_registry(|r| r.handles.get(&key).map(|h| h.kind.clone()))
}

/// The configuration names of `kind`.
fn names_of(kind: &Kind) -> Result<Vec<String>, String> {
    match kind {
        Kind::Node => Ok(node::CONFIG_NAMES.iter().map(|s| (*s).to_owned()).collect()),
        Kind::Glue { plugin } => glue::config_names(plugin),
    }
}

/// `stonith_get_confignames`: a NULL-terminated array owned by the handle (NULL on failure).
pub fn confignames(key: usize) -> *const *const c_char {
    let Some(kind) = kind_of(key) else {
        unknown("stonith_get_confignames");
        return std::ptr::null();
    };
    if let Some(p) = with_registry(|r| {
        r.handles
            .get(&key)
            .and_then(|h| h.names.as_ref().map(|n| n.pointers.as_ptr()))
    }) {
        return p;
    }
    let names = match names_of(&kind) {
        Ok(n) => n,
        Err(e) => {
            last_error::set(format!("stonith_get_confignames: {e}"));
            return std::ptr::null();
        }
    };
    with_registry(|r| match r.handles.get_mut(&key) {
        Some(h) => h
            .names
            .get_or_insert_with(|| CArray::new(&names))
            .pointers
            .as_ptr(),
        None => std::ptr::null(),
    })
}

/// `stonith_get_info`: a string owned by the handle, or NULL for an unknown kind of
/// information.
pub fn info(key: usize, infotype: c_int) -> *const c_char {
    let Some(kind) = kind_of(key) else {
        unknown("stonith_get_info");
        return std::ptr::null();
    };
    if let Some(p) = with_registry(|r| {
        r.handles
            .get(&key)
            .and_then(|h| h.info.get(&infotype).map(|s| s.as_ptr()))
    }) {
        return p;
    }
    let text = match (&kind, infotype) {
        (Kind::Node, ST_DEVICEID) => Some("ocf cluster fencer".to_owned()),
        (Kind::Node, ST_DEVICEDESCR) => Some(node::DESCRIPTION.to_owned()),
        (Kind::Node, ST_CONF_XML) => Some(node::PARAMETERS_XML.to_owned()),
        (Kind::Node, ST_DEVICENAME) => with_registry(|r| match r.handles.get(&key) {
            Some(Handle {
                configured: Some(Configured::Node(s)),
                ..
            }) => s.located().ok().map(|l| l.path.display().to_string()),
            _ => None,
        }),
        (Kind::Glue { plugin }, ST_DEVICEID | ST_DEVICEDESCR | ST_CONF_XML) => {
            let i = glue::plugin_info(plugin);
            match infotype {
                ST_DEVICEID => i.id,
                ST_DEVICEDESCR => i.description,
                _ => i.parameters_xml,
            }
        }
        _ => None,
    };
    let Some(text) = text else {
        return std::ptr::null();
    };
    let Ok(c) = CString::new(text.replace('\0', "")) else {
        return std::ptr::null();
    };
    with_registry(|r| match r.handles.get_mut(&key) {
        // A device name follows the configuration: it is not kept.
        Some(h) if infotype == ST_DEVICENAME => {
            h.info.insert(infotype, c);
            h.info
                .get(&infotype)
                .map_or(std::ptr::null(), |s| s.as_ptr())
        }
        Some(h) => h.info.entry(infotype).or_insert(c).as_ptr(),
        None => std::ptr::null(),
    })
}

/// `stonith_set_config`: checks `pairs` against the type's names and keeps them.
pub fn set_config(key: usize, pairs: &[(String, Option<String>)]) -> c_int {
    let Some(kind) = kind_of(key) else {
        return unknown("stonith_set_config");
    };
    let configured = match &kind {
        Kind::Node => match NodeSettings::from_pairs(pairs) {
            Ok(s) => Configured::Node(s),
            Err(code) => return code,
        },
        Kind::Glue { plugin } => match glue_config(plugin, pairs) {
            Ok(env) => Configured::Glue(env),
            Err(code) => return code,
        },
    };
    with_registry(|r| match r.handles.get_mut(&key) {
        Some(h) => {
            h.configured = Some(configured);
            h.info.remove(&ST_DEVICENAME);
            codes::S_OK
        }
        None => unknown("stonith_set_config"),
    })
}

/// A plugin's environment from `pairs`: each of its names once, checked.
fn glue_config(
    plugin: &str,
    pairs: &[(String, Option<String>)],
) -> Result<Vec<(String, String)>, c_int> {
    let names = glue::config_names(plugin).map_err(|e| {
        last_error::set(format!("stonith_set_config ({plugin}): {e}"));
        S_OOPS
    })?;
    let mut env = Vec::with_capacity(names.len());
    for name in &names {
        let Some(value) = pairs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_ref())
        else {
            last_error::set(format!(
                "stonith_set_config ({plugin}): {name} is missing (the plugin takes: {})",
                names.join(", ")
            ));
            return Err(S_INVAL);
        };
        if let Err(refusal) = ocf_fencing::check_env_param(name, value) {
            last_error::set(format!(
                "stonith_set_config ({plugin}): parameter {name:?} refused: {refusal}"
            ));
            return Err(S_INVAL);
        }
        if config::split_hosts(value).is_empty() {
            last_error::set(format!("stonith_set_config ({plugin}): {name} is empty"));
            return Err(S_BADCONFIG);
        }
        env.push((name.clone(), value.clone()));
    }
    Ok(env)
}

/// `stonith_set_config_info`: the `-p` string.
pub fn set_config_info(key: usize, info: &str) -> c_int {
    match info_pairs(key, info) {
        Ok(pairs) => set_config(key, &pairs),
        Err(code) => code,
    }
}

/// The `-p` string of `key`'s type as pairs.
pub fn info_pairs(key: usize, info: &str) -> Result<Vec<(String, Option<String>)>, c_int> {
    let Some(kind) = kind_of(key) else {
        return Err(unknown("stonith_set_config_info"));
    };
    let names = names_of(&kind).map_err(|e| {
        last_error::set(format!("stonith_set_config_info: {e}"));
        S_OOPS
    })?;
    if kind == Kind::Node {
        // Type `ocf` takes no positional values: name=value words instead.
        return Ok(info
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(n, v)| (n.to_owned(), Some(v.to_owned())))
            .collect());
    }
    config::info_to_pairs(&names, info)
        .map(|p| p.into_iter().map(|(n, v)| (n, Some(v))).collect())
        .ok_or_else(|| {
            last_error::set(format!(
                "stonith_set_config_info: give {} value(s), in order: {}",
                names.len(),
                names.join(" ")
            ));
            S_INVAL
        })
}

/// `stonith_set_config_file`: the `-F` file.
pub fn set_config_file(key: usize, path: &std::path::Path) -> c_int {
    match config::read_config_file(path) {
        Ok(text) => set_config_info(key, &config::file_to_info(&text)),
        Err(e) => {
            last_error::set(format!("stonith_set_config_file: {e}"));
            S_BADCONFIG
        }
    }
}

/// `stonith_env_to_NVpair`: each configuration name with its environment variable's value
/// (`None` when unset).
pub fn env_pairs(key: usize) -> Option<Vec<(String, Option<String>)>> {
    let kind = kind_of(key)?;
    let names = names_of(&kind).ok()?;
    Some(
        names
            .into_iter()
            .map(|n| {
                let v = std::env::var(&n).ok();
                (n, v)
            })
            .collect(),
    )
}

fn configured(key: usize, what: &str) -> Result<(Kind, Configured), c_int> {
    with_registry(|r| match r.handles.get(&key) {
        None => Err(unknown(what)),
        Some(h) => {
            if let Some(c) = &h.configured {
                Ok((h.kind.clone(), c.clone()))
            } else {
                last_error::set(format!("{what}: call stonith_set_config first"));
                Err(S_INVAL)
            }
        }
    })
}

fn run_glue(plugin: &str, env: &[(String, String)], args: &[&str]) -> Result<glue::Ran, c_int> {
    let mut all = vec!["-t", plugin, "-E"];
    all.extend_from_slice(args);
    glue::run(&all, env, glue::RUN_TIMEOUT).map_err(|e| {
        last_error::set(format!("stonith ({plugin}): {e}"));
        S_OOPS
    })
}

/// `stonith_get_hostlist`: the hosts the device can reset, lower-cased.
pub fn hostlist(key: usize) -> Result<Vec<String>, c_int> {
    match configured(key, "stonith_get_hostlist")? {
        (_, Configured::Node(s)) => s.hostlist(),
        (Kind::Glue { plugin }, Configured::Glue(env)) => {
            let ran = run_glue(&plugin, &env, &["-l"])?;
            if ran.code != codes::S_OK {
                last_error::set(format!(
                    "stonith_get_hostlist ({plugin}): {}",
                    redact(ran.stderr.trim(), &env)
                ));
                return Err(ran.code);
            }
            Ok(ran
                .stdout
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_lowercase)
                .collect())
        }
        _ => Err(S_OOPS),
    }
}

/// `stonith_get_status`: whether the device can be reached.
pub fn status(key: usize) -> c_int {
    match configured(key, "stonith_get_status") {
        Err(code) => code,
        Ok((_, Configured::Node(s))) => s.status(),
        Ok((Kind::Glue { plugin }, Configured::Glue(env))) => {
            run_glue(&plugin, &env, &["-S"]).map_or_else(|code| code, |ran| ran.code)
        }
        Ok(_) => S_OOPS,
    }
}

/// `stonith_req_reset`: `operation` on `node` (lower-cased first).
pub fn reset(key: usize, operation: c_int, node: &str) -> c_int {
    let (kind, config) = match configured(key, "stonith_req_reset") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let verb = match operation {
        ST_GENERIC_RESET => "reset",
        ST_POWERON => "on",
        ST_POWEROFF => "off",
        other => {
            last_error::set(format!(
                "stonith_req_reset: operation {other} is none of ST_GENERIC_RESET (1), ST_POWERON (2), ST_POWEROFF (3)"
            ));
            return S_INVAL;
        }
    };
    match (kind, config) {
        (_, Configured::Node(s)) => s.reset(operation, node),
        (Kind::Glue { plugin }, Configured::Glue(env)) => {
            let lowered = node.to_lowercase();
            match run_glue(&plugin, &env, &["-T", verb, "--", &lowered]) {
                Ok(ran) => {
                    if ran.code != codes::S_OK {
                        last_error::set(format!(
                            "stonith_req_reset ({plugin}, {verb} {lowered}): {}",
                            redact(ran.stderr.trim(), &env)
                        ));
                    }
                    ran.code
                }
                Err(code) => code,
            }
        }
        _ => S_OOPS,
    }
}

/// Remembers the debug level of a handle.
fn set_debug(key: usize, debug: c_int) {
    with_registry(|r| {
        if let Some(h) = r.handles.get_mut(&key) {
            h.debug = debug;
        }
    });
}

/// Remembers (or, with `None`, forgets) the log function of a handle.
fn set_log(key: usize, log: Option<ffi::PilLogFun>) {
    with_registry(|r| {
        if let Some(h) = r.handles.get_mut(&key) {
            h.log = log;
        }
    });
}

/// The log function and debug level set for `key`.
fn log_settings(key: usize) -> (Option<ffi::PilLogFun>, c_int) {
    with_registry(|r| r.handles.get(&key).map_or((None, 0), |h| (h.log, h.debug)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_messages_and_debug_output() {
        let env = vec![
            ("ipaddr".to_owned(), "10.0.0.9".to_owned()),
            ("password".to_owned(), "hunter2".to_owned()),
        ];
        assert_eq!(
            redact("login failed for hunter2 at 10.0.0.9", &env),
            "login failed for *** at 10.0.0.9"
        );
        let shown = format!("{:?}", Configured::Glue(env));
        assert!(
            !shown.contains("hunter2") && shown.contains("password"),
            "{shown}"
        );
    }

    #[test]
    fn plugin_names_cannot_walk_paths() {
        for bad in [
            "",
            "../null",
            "/usr/lib/x",
            "-L",
            "a..b",
            "null\n",
            ".hidden",
        ] {
            assert!(!plausible_plugin(bad), "{bad:?}");
        }
        for good in ["null", "external/ssh", "apcmastersnmp", "rcd_serial"] {
            assert!(plausible_plugin(good), "{good:?}");
        }
        assert!(new("../null").is_none());
        assert!(new("no-such-plugin").is_none());
    }

    #[test]
    fn an_unconfigured_device_refuses_and_a_deleted_one_is_unknown() {
        let key = new("ocf").unwrap();
        assert_eq!(status(key), S_INVAL);
        assert_eq!(hostlist(key), Err(S_INVAL));
        assert_eq!(reset(key, 1, "n1"), S_INVAL);
        assert!(!confignames(key).is_null());
        assert!(delete(key));
        assert!(!delete(key));
        assert_eq!(status(key), S_INVAL);
        assert!(
            last_error::get().contains("not a device"),
            "{}",
            last_error::get()
        );
    }
}
