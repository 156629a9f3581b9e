//! The C API's cost, measured against the Rust client of the same daemon in the same run:
//!
//! `capi_reset`: `stonith_req_reset` (type `ocf`, through libocf's C entry points) and
//! `DaemonFencer::fence` (the Rust client), each a whole incident on a served `LocalFencer`
//! with a null device; likewise `stonith_get_hostlist` against `DaemonFencer::targets`.
//! Interleaved pairs afterwards print the medians and their ratio. (The cluster-glue plugin
//! types run a `stonith` process per call; `ocf-capi/benches/c/reset_loop.c` times them
//! against libstonith from C, since both libraries export the same symbols.)
//!
//! `cargo bench -p benches --bench capi`.

// criterion_group! generates an undocumented function; the C entry points are unsafe to call.
#![allow(missing_docs, unsafe_code)]

use std::ffi::CString;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ocf::stonith::codes::{S_OK, ST_GENERIC_RESET};
use ocf::stonith::ffi as st;
use ocf::stonith::{Stonith, StonithNVpair};
use ocf_core::{NodeId, NodeName};
use ocf_fencing::{FenceAction, FenceDevice, FenceRequest, Fencer, FencerAdmin};
use ocf_ref::fencing::daemon_fencer::DaemonFencer;
use ocf_ref::fencing::devices::native::NullDevice;
use ocf_ref::fencing::fencer::LocalFencer;
use ocf_ref::membership::daemon::{self, NoMembership, ServeOptions, ServerHandle, local_socket};

fn name(s: &str) -> NodeName {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// A `LocalFencer` with a null device for n1..n3, served on a socket in `dir`.
async fn serve(dir: &Path) -> (ServerHandle, DaemonFencer) {
    let path = dir.join("node.sock");
    let fencer = LocalFencer::new();
    let device: Arc<dyn FenceDevice> = Arc::new(NullDevice::new(
        "null".parse().unwrap_or_else(|e| panic!("{e}")),
        ["n1", "n2", "n3"].map(name),
    ));
    fencer
        .register_device(Arc::clone(&device))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let claim = local_socket::claim(&path, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = ServeOptions::default()
        .with_fencer(Arc::new(fencer))
        .with_fence_devices(vec![device]);
    let server = daemon::serve_claimed(Arc::new(NoMembership(NodeId::new(1))), claim, options);
    (server, DaemonFencer::new(path))
}

/// A configured `ocf` device of the C API for the socket at `path`.
fn c_device(path: &Path) -> *mut Stonith {
    let socket = CString::new(path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut config = [
        StonithNVpair {
            s_name: c"socket".as_ptr().cast_mut(),
            s_value: socket.as_ptr().cast_mut(),
        },
        StonithNVpair {
            s_name: std::ptr::null_mut(),
            s_value: std::ptr::null_mut(),
        },
    ];
    // SAFETY: a NUL-terminated type name and a NULL-terminated pair array of C strings that
    // outlive the calls.
    unsafe {
        let s = st::stonith_new(c"ocf".as_ptr());
        assert!(!s.is_null(), "stonith_new(ocf)");
        assert_eq!(st::stonith_set_config(s, config.as_mut_ptr()), S_OK);
        s
    }
}

fn c_reset(s: *mut Stonith) {
    // SAFETY: a device made by stonith_new and a C string.
    let rc = unsafe { st::stonith_req_reset(s, ST_GENERIC_RESET, c"n2".as_ptr()) };
    assert_eq!(rc, S_OK);
}

fn c_hostlist(s: *mut Stonith) {
    // SAFETY: a device made by stonith_new; the list is freed by its free function.
    unsafe {
        let hosts = st::stonith_get_hostlist(s);
        assert!(!hosts.is_null());
        st::stonith_free_hostlist(hosts);
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn capi(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (server, rust) = rt.block_on(serve(dir.path()));
    let s = c_device(&dir.path().join("node.sock"));
    let request = || {
        FenceRequest::new(
            name("n2"),
            FenceAction::Reboot,
            "bench@rust".parse().unwrap_or_else(|e| panic!("{e}")),
        )
    };
    let rust_reset = || {
        rt.block_on(rust.fence(request()))
            .unwrap_or_else(|e| panic!("{e}"));
    };
    let rust_targets = || {
        rt.block_on(rust.targets())
            .unwrap_or_else(|e| panic!("{e}"));
    };

    let mut g = c.benchmark_group("capi_reset");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    g.bench_function("c_stonith_req_reset", |b| b.iter(|| c_reset(s)));
    g.bench_function("rust_daemon_fencer", |b| b.iter(rust_reset));
    g.bench_function("c_stonith_get_hostlist", |b| b.iter(|| c_hostlist(s)));
    g.bench_function("rust_targets", |b| b.iter(rust_targets));
    g.finish();

    let pairs = 300;
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..pairs {
        let t = Instant::now();
        c_reset(s);
        times[0].push(t.elapsed());
        let t = Instant::now();
        rust_reset();
        times[1].push(t.elapsed());
        let t = Instant::now();
        c_hostlist(s);
        times[2].push(t.elapsed());
        let t = Instant::now();
        rust_targets();
        times[3].push(t.elapsed());
    }
    let [c_r, r_r, c_h, r_h] = times.each_mut().map(|v| median(v));
    eprintln!(
        "capi: reset C {:.1} us vs Rust {:.1} us (x{:.2}); host list C {:.1} us vs Rust {:.1} us (x{:.2}); {pairs} interleaved pairs",
        c_r.as_secs_f64() * 1e6,
        r_r.as_secs_f64() * 1e6,
        c_r.as_secs_f64() / r_r.as_secs_f64(),
        c_h.as_secs_f64() * 1e6,
        r_h.as_secs_f64() * 1e6,
        c_h.as_secs_f64() / r_h.as_secs_f64(),
    );
    // SAFETY: the device made above, deleted once.
    unsafe { st::stonith_delete(s) };
    rt.block_on(server.shutdown());
}

criterion_group!(benches, capi);
criterion_main!(benches);
