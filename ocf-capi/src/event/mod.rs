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
use std::sync::{Mutex, MutexGuard};
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
#[derive(Default)]
struct Registry {
    clients: BTreeMap<usize, Client>,
    cookies: BTreeMap<u64, (usize, Option<Payload>)>,
    next_cookie: u64,
    next_id: c_int,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    // A panic while holding the lock leaves plain data behind; go on with it.
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` on the registry.
fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard = registry();
    f(guard.get_or_insert_with(Registry::default))
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

/// Connects the client to its node and subscribes; the descriptor to poll.
pub fn activate(key: usize) -> Result<RawFd, c_int> {
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
    let session = connect(special)?;
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
        WireError::Connect { source, .. } => source.raw_os_error().unwrap_or(libc::ECONNREFUSED),
        WireError::Closed { .. } => libc::ECONNRESET,
        e if e.is_timeout() => libc::ETIMEDOUT,
        _ => libc::EPROTO,
    }
}

fn connect(special: bool) -> Result<Session, c_int> {
    let at = crate::locate(None, None)
        .map_err(|e| fail(libc::ENOENT, format!("oc_ev_activate: {e}")))?;
    let mut conn =
        Conn::connect(&at).map_err(|e| fail(wire_errno(&e), format!("oc_ev_activate: {e}")))?;
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
        if client.outstanding.is_some() {
            return Ok(None);
        }
        let Some(delivery) = session.queue.pop_front() else {
            if let Some(why) = &session.gone {
                last_error::set(why.clone());
                session.ended = true;
                return Err(-1);
            }
            return Ok(None);
        };
        let Some(callback) = client.callback else {
            return Ok(None);
        };
        let (code, payload) = match delivery {
            Delivery::Membership { code, membership } => match Payload::new(&membership) {
                Some(p) => (code, Some(p)),
                None => {
                    fail(
                        libc::ENOMEM,
                        "oc_ev_handle_event: out of memory for a membership",
                    );
                    session
                        .queue
                        .push_front(Delivery::Membership { code, membership });
                    return Err(-1);
                }
            },
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
        match r
            .clients
            .get(&key)
            .filter(|c| !c.unregistered)
            .and_then(|c| c.session.as_ref())
        {
            Some(s) => c_int::from(s.me == node_id),
            None => {
                fail(libc::EINVAL, "oc_ev_is_my_nodeid: the token is not active");
                0
            }
        }
    })
}
