//! `ocf members --backend corosync`: the local corosync's view, read directly (no daemon).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use ocf_membership::{Membership, MembershipError, MembershipEvent, Subscription, View};

use super::CliResult;
use super::output::{print_json, print_json_line};
use crate::membership::corosync::CorosyncMembership;
use crate::membership::daemon::client::DEFAULT_TIMEOUT;

/// Prints the local corosync's current view (`json`: the [`View`] as JSON), or with `watch`
/// streams its events (`json`: one [`MembershipEvent`] per line) until interrupted or the
/// stream ends. Fails with a message naming corosync when it is not running or refuses us.
///
/// Connecting and reading the view (or the watch's first view) must finish within the
/// client's [`DEFAULT_TIMEOUT`], so a stuck corosync cannot hang the command.
pub async fn run_members(json: bool, watch: bool) -> CliResult {
    run_members_with_timeout(json, watch, DEFAULT_TIMEOUT).await
}

/// [`run_members`] with another deadline for connecting and reading the first view.
pub async fn run_members_with_timeout(json: bool, watch: bool, timeout: Duration) -> CliResult {
    let timed_out = || {
        format!(
            "the local corosync did not answer within {} ms; is it stuck?",
            timeout.as_millis()
        )
    };
    let membership = tokio::time::timeout(timeout, CorosyncMembership::connect())
        .await
        .map_err(|_| timed_out())??;
    if watch {
        let events = tokio::time::timeout(timeout, membership.subscribe())
            .await
            .map_err(|_| timed_out())??;
        return watch_events(events, json).await;
    }
    let view = tokio::time::timeout(timeout, membership.current_view())
        .await
        .map_err(|_| timed_out())??
        .ok_or(
            "corosync has not reported a view yet (it may be forming its ring); try again in a \
             moment",
        )?;
    if json {
        print_json(&view)?;
    } else {
        print!("{}", render_view(&view));
    }
    Ok(ExitCode::SUCCESS)
}

async fn watch_events(mut events: Box<dyn Subscription>, json: bool) -> CliResult {
    if let Some(view) = events.initial_view() {
        eprint!("current view:\n{}", render_view(view));
    }
    loop {
        let next = tokio::select! {
            next = events.next_event() => next,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let next = match next {
            // Events were dropped for us; the stream goes on after the gap.
            Err(MembershipError::Lagged { missed }) => {
                eprintln!("fell behind: {missed} events were missed; watching on");
                continue;
            }
            other => other?,
        };
        let Some(event) = next else {
            return Ok(ExitCode::SUCCESS);
        };
        if json {
            print_json_line(&event)?;
        } else {
            print!("{}", render_event(&event));
        }
    }
}

/// A view for people: a header line and one line per member.
fn render_view(view: &View) -> String {
    let q = view.quorum();
    let mut text = format!(
        "view {}  quorate: {}  votes: {}/{} (quorum {})\n",
        view.id,
        if view.is_quorate() { "yes" } else { "no" },
        q.votes,
        q.expected_votes,
        q.threshold
    );
    for m in view.members() {
        let _ = writeln!(text, "  {:>10}  {:<20}  votes {}", m.id, m.name, m.votes);
    }
    text
}

/// An event for people: its sequence number and OCF name, then the view.
fn render_event(event: &MembershipEvent) -> String {
    format!(
        "#{} {}\n{}",
        event.seq,
        event.kind.ocf_name(),
        render_view(&event.view)
    )
}
