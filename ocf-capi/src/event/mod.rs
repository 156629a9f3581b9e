//! `oc_event.h`: the OCF event API 0.2 as heartbeat's CCM implemented it, served from the
//! node daemon's membership stream.
//!
//! A client registers (a token), sets a callback for `OC_EV_MEMB_CLASS`, activates (the
//! library connects to the node, asks its id, subscribes, and returns the socket's descriptor),
//! then calls [`oc_ev_handle_event`](ffi::oc_ev_handle_event) whenever its poll loop finds the
//! descriptor readable. Each membership is delivered by one callback whose payload stays valid
//! until the client calls `oc_ev_callback_done(cookie)`; the next event is delivered only after
//! that (CCM's rule: a client that keeps a payload past its callback must call
//! `oc_ev_handle_event` again after `oc_ev_callback_done`, since the descriptor may not turn
//! readable for events already read). The delivery rules are in [`translate`].
//!
//! Where ocf is stronger than CCM:
//! - every view is agreed: every node that installs instance V holds the same member list;
//! - the order is gapless: a client sees each view its node installs, in the node's order
//!   (a client too slow to read is told by the daemon and carries on after the gap; "in" and
//!   "out" stay relative to what it was last given, so they always add up);
//! - `m_instance` is the view id's instance, which never goes back on a node while its
//!   daemon runs (CCM's restarted at zero when the daemon reset; ocf's too, when the cluster's
//!   views restart);
//! - the daemon going away (a clean stop or a crash) ends the class: `oc_ev_handle_event`
//!   answers -1 from then on, as CCM's did, and [`ocf_last_error`](crate::last_error::ocf_last_error)
//!   says which.

pub mod ffi;
pub mod payload;
pub mod translate;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::time::Duration;

use ocf_ref::membership::daemon::local_api::{Reply, Request};

use crate::last_error;
use crate::wire::{Conn, DEFAULT_TIMEOUT, WireError};
use payload::Payload;
use translate::{Delivery, OC_EV_MEMB_CLASS, OC_EV_MS_EVICTED, Translator};

/// `oc_ev_callback_t`.
pub type Callback =
    unsafe extern "C" fn(event: u32, cookie: *mut c_void, size: usize, data: *const c_void);

/// One registered client.
struct Client {
    /// What the client's `oc_ev_t *` points at (CCM's token was an int).
    handle: Box<c_int>,
    callback: Option<Callback>,
    special: bool,
    session: Option<Session>,
    /// A callback of this client is running (a nested `oc_ev_handle_event` delivers nothing).
    in_callback: bool,
    /// `oc_ev_unregister` was called inside a callback: freed when it returns.
    unregistered: bool,
    /// The delivery whose `oc_ev_callback_done` has not come yet.
    outstanding: Option<u64>,
}

/// An activated client's connection and what it has read.
struct Session {
    conn: Conn,
    me: u32,
    translator: Translator,
    started: bool,
    queue: VecDeque<Delivery>,
    /// Why the stream ended, once it did (delivered after the queue drains).
    gone: Option<String>,
    ended: bool,
}

/// Every client and every payload handed out, behind one lock (never held across a callback).
struct Registry {
    clients: BTreeMap<usize, Client>,
    cookies: BTreeMap<u64, (usize, Option<Payload>)>,
    next_cookie: u64,
    next_id: c_int,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    clients: BTreeMap::new(),
    cookies: BTreeMap::new(),
    next_cookie: 0,
    next_id: 0,
});

/// Runs `f` on the registry. A panic while holding the lock leaves plain data behind; it goes
/// on with it.
fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    f(&mut REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// How long activation waits for the node's answer.
const ACTIVATE_TIMEOUT: Duration = DEFAULT_TIMEOUT;

/// Fails with `errno`, saying why.
fn fail(errno: c_int, why: impl Into<String>) -> c_int {
    last_error::set(why);
    errno
}

fn unknown_token() -> c_int {
    fail(
        libc::EINVAL,
        "oc_ev: unknown token (never registered, or unregistered already)",
    )
}

/// Registers a client; the key is the address of its token.
pub fn register() -> usize {
    with_registry(|r| {
        r.next_id = r.next_id.wrapping_add(1);
        let handle = Box::new(r.next_id);
        let key = std::ptr::from_ref::<c_int>(&handle) as usize;
        r.clients.insert(
            key,
            Client {
                handle,
                callback: None,
                special: false,
                session: None,
                in_callback: false,
                unregistered: false,
                outstanding: None,
            },
        );
        key
    })
}

/// The token pointer for `key`.
pub fn token_ptr(key: usize) -> *mut c_int {
    with_registry(|r| {
        r.clients
            .get_mut(&key)
            .map_or(std::ptr::null_mut(), |c| std::ptr::from_mut(&mut *c.handle))
    })
}

/// Ends a client: its connection closed, its payloads freed (inside a callback: when the
/// callback returns).
pub fn unregister(key: usize) -> c_int {
    with_registry(|r| {
        let Some(client) = r.clients.get_mut(&key) else {
            return unknown_token();
        };
        if client.unregistered {
            return unknown_token();
        }
        client.session = None;
        if client.in_callback {
            client.unregistered = true;
            return 0;
        }
        r.clients.remove(&key);
        free_payloads_of(r, key);
        0
    })
}

fn free_payloads_of(r: &mut Registry, key: usize) {
    let mine: Vec<u64> = r
        .cookies
        .iter()
        .filter(|(_, (k, _))| *k == key)
        .map(|(c, _)| *c)
        .collect();
    for cookie in mine {
        if let Some((_, Some(p))) = r.cookies.remove(&cookie) {
            p.free();
        }
    }
}

/// Sets the callback of `class` (only `OC_EV_MEMB_CLASS` is served), returning the previous.
pub fn set_callback(
    key: usize,
    class: c_int,
    callback: Option<Callback>,
) -> Result<Option<Callback>, c_int> {
    with_registry(|r| {
        let Some(client) = r.clients.get_mut(&key).filter(|c| !c.unregistered) else {
            return Err(unknown_token());
        };
        if class != OC_EV_MEMB_CLASS as c_int {
            return Err(fail(
                libc::EINVAL,
                format!(
                    "oc_ev_set_callback: class {class} is not served (only OC_EV_MEMB_CLASS, 2)"
                ),
            ));
        }
        Ok(std::mem::replace(&mut client.callback, callback))
    })
}

/// CCM's `oc_ev_special`: memberships without quorum are delivered too, as `OC_EV_MS_INVALID`.
pub fn special(key: usize, class: c_int) -> c_int {
    with_registry(|r| {
        let Some(client) = r.clients.get_mut(&key).filter(|c| !c.unregistered) else {
            return unknown_token();
        };
        if class != OC_EV_MEMB_CLASS as c_int {
            return fail(
                libc::EINVAL,
                format!("oc_ev_special: class {class} is not served"),
            );
        }
        client.special = true;
        if let Some(s) = client.session.as_mut()
            && !s.started
        {
            s.translator = Translator::new(true);
        }
        0
    })
}

/// Connects the client to its node (found as [`crate::locate()`] says) and subscribes; the
/// descriptor to poll.
pub fn activate(key: usize) -> Result<RawFd, c_int> {
    activate_at(key, None)
}

/// [`activate`] with the node's socket given (`None`: located).
pub fn activate_at(key: usize, at: Option<crate::Located>) -> Result<RawFd, c_int> {
    let special = with_registry(|r| {
        let Some(client) = r.clients.get(&key).filter(|c| !c.unregistered) else {
            return Err(unknown_token());
        };
        if client.session.is_some() {
            return Err(fail(
                libc::EINVAL,
                "oc_ev_activate: the token is active already",
            ));
        }
        if client.callback.is_none() {
            return Err(fail(
                libc::EMFILE,
                "oc_ev_activate: no callback set (call oc_ev_set_callback for OC_EV_MEMB_CLASS first)",
            ));
        }
        Ok(client.special)
    })?;
    // Connecting and asking happen outside the lock: other clients go on meanwhile.
    let at = match at {
        Some(at) => at,
        None => crate::locate(None, None)
            .map_err(|e| fail(libc::ENOENT, format!("oc_ev_activate: {e}")))?,
    };
    let session = connect(&at, special)?;
    let fd = session.conn.fd();
    with_registry(
        |r| match r.clients.get_mut(&key).filter(|c| !c.unregistered) {
            Some(client) if client.session.is_none() => {
                client.session = Some(session);
                Ok(fd)
            }
            _ => Err(fail(
                libc::EINVAL,
                "oc_ev_activate: the token was unregistered or activated meanwhile",
            )),
        },
    )
}

fn wire_errno(e: &WireError) -> c_int {
    match e {
        e if e.is_timeout() => libc::ETIMEDOUT,
        WireError::Connect { source, .. } => source.raw_os_error().unwrap_or(libc::ECONNREFUSED),
        WireError::Closed { .. } => libc::ECONNRESET,
        _ => libc::EPROTO,
    }
}

fn connect(at: &crate::Located, special: bool) -> Result<Session, c_int> {
    let mut conn =
        Conn::connect(at).map_err(|e| fail(wire_errno(&e), format!("oc_ev_activate: {e}")))?;
    let reply: Reply = conn
        .ask(&Request::LocalNode, ACTIVATE_TIMEOUT)
        .map_err(|e| fail(wire_errno(&e), format!("oc_ev_activate: {e}")))?;
    let Some(me) = reply.node_id.filter(|_| reply.ok) else {
        let errno = if reply.busy {
            libc::EBUSY
        } else {
            libc::EPROTO
        };
        return Err(fail(
            errno,
            format!(
                "oc_ev_activate: the ocf node at {at} did not give its id: {}",
                reply.error.as_deref().unwrap_or("no reason given")
            ),
        ));
    };
    conn.send(&Request::Subscribe, ACTIVATE_TIMEOUT)
        .map_err(|e| fail(wire_errno(&e), format!("oc_ev_activate: {e}")))?;
    Ok(Session {
        conn,
        me: me.get(),
        translator: Translator::new(special),
        started: false,
        queue: VecDeque::new(),
        gone: None,
        ended: false,
    })
}

impl Session {
    /// Reads what the daemon sent and queues the deliveries it makes.
    fn pump(&mut self) {
        if self.gone.is_some() {
            return;
        }
        match self.conn.read_ready() {
            Ok((lines, closed)) => {
                for line in lines {
                    self.take(&line);
                    if self.gone.is_some() {
                        return;
                    }
                }
                if closed {
                    self.gone = Some(format!(
                        "oc_ev: the ocf node at {} closed the connection without a word: it crashed or was killed",
                        self.conn.at()
                    ));
                }
            }
            Err(e) => self.gone = Some(format!("oc_ev: {e}")),
        }
    }

    fn take(&mut self, line: &[u8]) {
        let at = self.conn.at();
        let reply: Reply = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.gone = Some(format!(
                    "oc_ev: unreadable line from the ocf node at {at}: {e}"
                ));
                return;
            }
        };
        if !self.started {
            if !reply.ok {
                self.gone = Some(format!(
                    "oc_ev: the ocf node at {at} refused the subscription: {}",
                    reply.error.as_deref().unwrap_or("no reason given")
                ));
                return;
            }
            self.started = true;
            let first = self.translator.first(reply.view.as_ref());
            self.queue.extend(first);
            return;
        }
        if reply.end {
            self.gone = Some(format!("oc_ev: the ocf node at {at} shut down"));
        } else if let Some(event) = reply.event {
            let deliveries = self.translator.event(&event);
            self.queue.extend(deliveries);
        } else if let Some(missed) = reply.missed {
            last_error::set(format!(
                "oc_ev: this client fell {missed} events behind the ocf node at {at}; it goes on after the gap"
            ));
        } else {
            self.gone = Some(format!(
                "oc_ev: the ocf node at {at} ended the subscription: {}",
                reply.error.as_deref().unwrap_or("no reason given")
            ));
        }
    }
}

/// What one delivery needs outside the lock.
struct Call {
    callback: Callback,
    code: u32,
    cookie: u64,
    size: usize,
    data: *const c_void,
}

/// Reads what the node sent and delivers the queued events, one callback each, while each
/// callback is acknowledged; -1 once the class has ended (the daemon went away).
pub fn handle_event(key: usize) -> c_int {
    loop {
        let call = match next_call(key) {
            Ok(Some(call)) => call,
            Ok(None) => return 0,
            Err(code) => return code,
        };
        // SAFETY: the host registered `callback` for this class; `data` (when not NULL) is a
        // payload of `size` bytes that stays allocated until `oc_ev_callback_done(cookie)`
        // or the callback's return after an unregister.
        #[allow(unsafe_code)]
        unsafe {
            (call.callback)(call.code, call.cookie as *mut c_void, call.size, call.data);
        };
        let finished = with_registry(|r| {
            let client = r.clients.get_mut(&key)?;
            client.in_callback = false;
            if client.unregistered {
                r.clients.remove(&key);
                free_payloads_of(r, key);
                return None;
            }
            Some(())
        });
        if finished.is_none() {
            return 0;
        }
    }
}

/// The next delivery to make, if any (and allowed now).
fn next_call(key: usize) -> Result<Option<Call>, c_int> {
    with_registry(|r| {
        let Registry {
            clients,
            cookies,
            next_cookie,
            ..
        } = r;
        let Some(client) = clients.get_mut(&key).filter(|c| !c.unregistered) else {
            unknown_token();
            return Err(-1);
        };
        if client.in_callback {
            return Ok(None);
        }
        let Some(session) = client.session.as_mut() else {
            fail(libc::EINVAL, "oc_ev_handle_event: the token is not active");
            return Err(-1);
        };
        if session.ended {
            return Err(-1);
        }
        session.pump();
        // Waiting for `oc_ev_callback_done`, or no callback (set to NULL after activation):
        // the events stay queued.
        let Some(callback) = client.callback.filter(|_| client.outstanding.is_none()) else {
            return Ok(None);
        };
        let Some(delivery) = session.queue.pop_front() else {
            if let Some(why) = &session.gone {
                last_error::set(why.clone());
                session.ended = true;
                return Err(-1);
            }
            return Ok(None);
        };
        let (code, payload) = match delivery {
            Delivery::Membership { code, membership } => {
                let Some(p) = Payload::new(&membership) else {
                    fail(
                        libc::ENOMEM,
                        "oc_ev_handle_event: out of memory for a membership",
                    );
                    session
                        .queue
                        .push_front(Delivery::Membership { code, membership });
                    return Err(-1);
                };
                (code, Some(p))
            }
            Delivery::Evicted => (OC_EV_MS_EVICTED, None),
        };
        *next_cookie += 1;
        let cookie = *next_cookie;
        let (data, size) = payload
            .as_ref()
            .map_or((std::ptr::null(), 0), |p| (p.data(), p.size()));
        cookies.insert(cookie, (key, payload));
        client.outstanding = Some(cookie);
        client.in_callback = true;
        Ok(Some(Call {
            callback,
            code,
            cookie,
            size,
            data,
        }))
    })
}

/// Releases a delivery's payload; the client's next event may then be delivered.
pub fn callback_done(cookie: u64) -> c_int {
    with_registry(|r| {
        let Some((key, payload)) = r.cookies.remove(&cookie) else {
            return fail(
                libc::EINVAL,
                "oc_ev_callback_done: unknown cookie (not given by a callback, or done already)",
            );
        };
        if let Some(p) = payload {
            p.free();
        }
        if let Some(client) = r.clients.get_mut(&key)
            && client.outstanding == Some(cookie)
        {
            client.outstanding = None;
        }
        0
    })
}

/// 1 when `node_id` is this client's node, 0 otherwise (also for a token not activated).
pub fn is_my_nodeid(key: usize, node_id: u32) -> c_int {
    with_registry(|r| {
        let session = r
            .clients
            .get(&key)
            .filter(|c| !c.unregistered)
            .and_then(|c| c.session.as_ref());
        if let Some(s) = session {
            c_int::from(s.me == node_id)
        } else {
            fail(libc::EINVAL, "oc_ev_is_my_nodeid: the token is not active");
            0
        }
    })
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use std::cell::RefCell;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    use super::*;
    use crate::event::translate::{OC_EV_MS_NEW_MEMBERSHIP, OC_EV_MS_NOT_PRIMARY};

    thread_local! {
        /// (event, cookie, m_instance) of each callback on this thread.
        static SEEN: RefCell<Vec<(u32, u64, Option<u32>)>> = const { RefCell::new(Vec::new()) };
        /// What the callback does: 0 keep the payload, 1 call done, 2 unregister `TOKEN`.
        static MODE: RefCell<(u8, usize)> = const { RefCell::new((1, 0)) };
    }

    unsafe extern "C" fn record(
        event: u32,
        cookie: *mut c_void,
        _size: usize,
        data: *const c_void,
    ) {
        let instance = (!data.is_null())
            // SAFETY: a membership payload from this library.
            .then(|| unsafe { (*data.cast::<payload::OcMembership>()).m_instance });
        SEEN.with(|s| s.borrow_mut().push((event, cookie as u64, instance)));
        match MODE.with(|m| *m.borrow()) {
            (1, _) => {
                callback_done(cookie as u64);
            }
            (2, key) => {
                assert_eq!(unregister(key), 0);
            }
            _ => {}
        }
    }

    fn view(instance: u64, ids: &[u32], quorate: bool) -> serde_json::Value {
        let members: Vec<_> = ids
            .iter()
            .map(|i| serde_json::json!({"id": i, "name": format!("n{i}"), "votes": 1, "born_on": null}))
            .collect();
        serde_json::json!({"view_id": {"instance": instance, "coordinator": 1, "epoch": 0},
            "members": members, "joined": [], "left": [],
            "quorum": {"quorate": quorate, "votes": ids.len(), "expected_votes": 3, "threshold": 2}})
    }

    fn event(seq: u64, kind: &str, v: &serde_json::Value) -> String {
        serde_json::json!({"ok": true, "event": {"seq": seq, "kind": kind, "view": v}}).to_string()
    }

    /// A daemon that answers `local_node` and `subscribe` with `lines`, then holds the
    /// connection until `hold` ends.
    fn daemon(
        lines: Vec<String>,
    ) -> (
        tempfile::TempDir,
        crate::Located,
        std::thread::JoinHandle<()>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.contains("local_node"), "{line}");
            w.write_all(b"{\"ok\":true,\"node_id\":1}\n").unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert!(line.contains("subscribe"), "{line}");
            for l in lines {
                w.write_all(l.as_bytes()).unwrap();
                w.write_all(b"\n").unwrap();
            }
        });
        let at = crate::Located {
            path,
            source: "test".into(),
        };
        (dir, at, server)
    }

    fn client(mode: u8) -> usize {
        let key = register();
        set_callback(key, OC_EV_MEMB_CLASS as c_int, Some(record)).unwrap();
        MODE.with(|m| *m.borrow_mut() = (mode, key));
        SEEN.with(|s| s.borrow_mut().clear());
        key
    }

    fn seen() -> Vec<(u32, u64, Option<u32>)> {
        SEEN.with(|s| s.borrow().clone())
    }

    /// Calls handle_event until `n` callbacks were seen or it answers -1.
    fn pump_until(key: usize, n: usize) -> c_int {
        for _ in 0..200 {
            let rc = handle_event(key);
            if rc != 0 || seen().len() >= n {
                return rc;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        0
    }

    #[test]
    fn the_next_event_waits_for_callback_done_and_the_end_ends_the_class() {
        let first = serde_json::json!({"ok": true, "view": view(1, &[1, 2], true)}).to_string();
        let (_dir, at, server) = daemon(vec![
            first,
            event(1, "not_primary", &view(2, &[1], false)),
            event(2, "primary_restored", &view(3, &[1, 2, 3], true)),
            "{\"ok\":true,\"end\":true}".into(),
        ]);
        let key = client(0);
        activate_at(key, Some(at)).unwrap();
        server.join().unwrap();
        assert_eq!(pump_until(key, 1), 0);
        // The payload is kept: nothing more is delivered, however often we ask.
        for _ in 0..3 {
            assert_eq!(handle_event(key), 0);
        }
        let got = seen();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].2), (OC_EV_MS_NEW_MEMBERSHIP, Some(1)));
        assert_eq!(is_my_nodeid(key, 1), 1);
        assert_eq!(is_my_nodeid(key, 2), 0);
        assert_eq!(callback_done(got[0].1), 0);
        assert_eq!(
            callback_done(got[0].1),
            libc::EINVAL,
            "a cookie is done once"
        );
        MODE.with(|m| m.borrow_mut().0 = 1);
        let rc = pump_until(key, 3);
        let got = seen();
        assert_eq!(
            got.iter().map(|g| (g.0, g.2)).collect::<Vec<_>>(),
            [
                (OC_EV_MS_NEW_MEMBERSHIP, Some(1)),
                // NOT_PRIMARY carries the old membership.
                (OC_EV_MS_NOT_PRIMARY, Some(1)),
                (translate::OC_EV_MS_PRIMARY_RESTORED, Some(3)),
            ]
        );
        let rc = if rc == 0 { handle_event(key) } else { rc };
        assert_eq!(rc, -1, "the daemon's end ends the class");
        assert!(
            last_error::get().contains("shut down"),
            "{}",
            last_error::get()
        );
        assert_eq!(handle_event(key), -1);
        assert_eq!(unregister(key), 0);
        assert_eq!(unregister(key), libc::EINVAL);
    }

    #[test]
    fn unregistering_inside_the_callback_is_safe_and_a_crash_is_named() {
        let first = serde_json::json!({"ok": true, "view": view(4, &[1], true)}).to_string();
        let (_dir, at, server) = daemon(vec![
            first,
            event(1, "new_membership", &view(5, &[1, 2], true)),
        ]);
        let key = client(2);
        activate_at(key, Some(at)).unwrap();
        server.join().unwrap();
        assert_eq!(pump_until(key, 1), 0);
        assert_eq!(seen().len(), 1);
        assert_eq!(handle_event(key), -1, "the token is gone");

        // A daemon that hangs up without `end` crashed.
        let first = serde_json::json!({"ok": true, "view": view(4, &[1], true)}).to_string();
        let (_dir, at, server) = daemon(vec![first]);
        let key = client(1);
        activate_at(key, Some(at)).unwrap();
        server.join().unwrap();
        let mut rc = 0;
        for _ in 0..200 {
            rc = handle_event(key);
            if rc != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(rc, -1);
        assert_eq!(seen().len(), 1, "what came before the crash was delivered");
        assert!(
            last_error::get().contains("without a word"),
            "{}",
            last_error::get()
        );
        assert_eq!(unregister(key), 0);
    }

    #[test]
    fn events_wait_while_the_callback_is_unset() {
        let first = serde_json::json!({"ok": true, "view": view(7, &[1], true)}).to_string();
        let (_dir, at, server) = daemon(vec![first]);
        let key = client(1);
        activate_at(key, Some(at)).unwrap();
        server.join().unwrap();
        assert_eq!(
            set_callback(key, OC_EV_MEMB_CLASS as c_int, None),
            Ok(Some(record as Callback))
        );
        for _ in 0..20 {
            handle_event(key);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(seen().is_empty());
        set_callback(key, OC_EV_MEMB_CLASS as c_int, Some(record)).unwrap();
        pump_until(key, 1);
        assert_eq!(seen().len(), 1, "the event was kept, not dropped");
        assert_eq!(unregister(key), 0);
    }

    #[test]
    fn bad_uses_are_errors_not_crashes() {
        assert_eq!(handle_event(12345), -1);
        assert_eq!(unregister(12345), libc::EINVAL);
        assert_eq!(callback_done(999_999), libc::EINVAL);
        let key = register();
        assert_eq!(activate_at(key, None), Err(libc::EMFILE));
        assert!(set_callback(key, 3, Some(record)).is_err());
        assert_eq!(is_my_nodeid(key, 1), 0);
        assert_eq!(handle_event(key), -1, "not active");
        assert_eq!(unregister(key), 0);
    }
}
