//! cluster-glue plugin types, run as ocf's stonith devices run them: the `stonith` command
//! (`$OCF_STONITH`, else `/usr/sbin/stonith`) with `-E`, its configuration in the child's
//! environment (never in argv, never on disk), the child started from an empty environment
//! plus `PATH` and `LANG=C`, in its own process group, killed whole when it overruns.
//!
//! Blocking, as libstonith's calls are: the calling thread waits; two short-lived threads
//! read the child's output so a chatty plugin cannot fill a pipe and stall.

use std::ffi::c_int;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::codes::{S_OOPS, S_TIMEOUT, code_of_exit};

/// How long one `stonith` run may take before its process group is killed.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The most output kept from a run, per stream.
const OUTPUT_LIMIT: usize = 1 << 20;

/// How a run ended.
#[derive(Debug)]
pub struct Ran {
    /// The `S_*` code (the exit code; `S_TIMEOUT` when killed for time, `S_OOPS` otherwise).
    pub code: c_int,
    /// Standard output.
    pub stdout: String,
    /// Standard error (for messages).
    pub stderr: String,
}

/// The `stonith` program.
pub fn program() -> PathBuf {
    ocf_ref::fencing::devices::stonith::stonith_program()
}

/// Runs `stonith` with `args` and `env` (the plugin's configuration), within `timeout`.
pub fn run(args: &[&str], env: &[(String, String)], timeout: Duration) -> Result<Ran, String> {
    run_program(&program(), args, env, timeout)
}

fn run_program(
    stonith: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Ran, String> {
    let mut command = Command::new(stonith);
    command
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().map_err(|e| {
        format!(
            "cannot run {}: {e}; is cluster-glue installed?",
            stonith.display()
        )
    })?;
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let started = Instant::now();
    let mut sleep = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                kill_group(child.id());
                let _ = child.wait();
                break None;
            }
            Ok(None) => {
                std::thread::sleep(sleep);
                sleep = (sleep * 2).min(Duration::from_millis(20));
            }
            Err(e) => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(format!("waiting for {} failed: {e}", stonith.display()));
            }
        }
    };
    // Whatever the plugin left behind in its group goes with it.
    kill_group(child.id());
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    let code = match status {
        None => S_TIMEOUT,
        Some(s) => match s.code() {
            Some(c) => code_of_exit(Some(c)),
            None => S_OOPS,
        },
    };
    Ok(Ran {
        code,
        stdout,
        stderr,
    })
}

fn reader(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Kills the process group `pid` leads (the plugin and whatever it started); the group may be
/// gone already.
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ =
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

/// The plugin types `stonith -L` lists (empty when `stonith` cannot run).
pub fn plugin_types() -> Vec<String> {
    run(&["-L"], &[], Duration::from_secs(30))
        .ok()
        .filter(|r| r.code == 0)
        .map(|r| {
            r.stdout
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The configuration names of `plugin` (`stonith -t PLUGIN -n`).
pub fn config_names(plugin: &str) -> Result<Vec<String>, String> {
    let ran = run(&["-t", plugin, "-n"], &[], Duration::from_secs(30))?;
    if ran.code != 0 {
        return Err(format!(
            "stonith -t {plugin} -n failed: {}",
            ran.stderr.trim()
        ));
    }
    Ok(ran.stdout.split_whitespace().map(str::to_owned).collect())
}

/// What `stonith -t PLUGIN -m` says: the device's short and long descriptions and its
/// parameters' XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginInfo {
    /// `<shortdesc>` of the device (`ST_DEVICEID`).
    pub id: Option<String>,
    /// `<longdesc>` of the device (`ST_DEVICEDESCR`).
    pub description: Option<String>,
    /// The `<parameters>` element (`ST_CONF_XML`).
    pub parameters_xml: Option<String>,
}

/// The plugin's meta-data, read once.
pub fn plugin_info(plugin: &str) -> PluginInfo {
    match run(&["-t", plugin, "-m"], &[], Duration::from_secs(30)) {
        Ok(ran) if ran.code == 0 => parse_info(&ran.stdout),
        _ => PluginInfo::default(),
    }
}

/// The device's own descriptions are the ones before `<parameters>`.
fn parse_info(xml: &str) -> PluginInfo {
    let head = xml.split("<parameters").next().unwrap_or(xml);
    PluginInfo {
        id: element_text(head, "shortdesc"),
        description: element_text(head, "longdesc"),
        parameters_xml: xml.find("<parameters").and_then(|start| {
            let end = xml[start..].find("</parameters>")? + start + "</parameters>".len();
            Some(xml[start..end].to_owned())
        }),
    }
}

/// The text of the first `<tag ...>text</tag>` in `xml`, trimmed and unescaped.
fn element_text(xml: &str, tag: &str) -> Option<String> {
    let open = xml.find(&format!("<{tag}"))?;
    let body = open + xml[open..].find('>')? + 1;
    let end = body + xml[body..].find(&format!("</{tag}>"))?;
    Some(
        xml[body..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_descriptions_come_before_the_parameters() {
        let xml = "<resource-agent name=\"null\">\n<longdesc lang=\"en\">\nDummy &amp; co\nline 2\n</longdesc>\n\
            <shortdesc lang=\"en\">NULL STONITH device</shortdesc>\n<parameters><parameter name=\"hostlist\">\
            <shortdesc lang=\"en\">Hostlist</shortdesc></parameter></parameters></resource-agent>";
        let info = parse_info(xml);
        assert_eq!(info.id.as_deref(), Some("NULL STONITH device"));
        assert_eq!(info.description.as_deref(), Some("Dummy & co\nline 2"));
        assert!(info.parameters_xml.unwrap().ends_with("</parameters>"));
        assert_eq!(parse_info("garbage"), PluginInfo::default());
    }

    #[test]
    fn a_missing_program_is_an_error_that_says_so() {
        let missing = std::path::Path::new("/nonexistent/stonith");
        let e = run_program(missing, &["-L"], &[], Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("/nonexistent/stonith"), "{e}");
    }

    #[test]
    fn an_overrun_is_killed_with_its_group_and_answers_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("stonith");
        std::fs::write(&script, "#!/bin/sh\nsleep 30 &\nsleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let started = Instant::now();
        let ran = run_program(&script, &[], &[], Duration::from_millis(200)).unwrap();
        assert_eq!(ran.code, S_TIMEOUT);
        // The output readers ended: nothing in the group kept the pipes open.
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
