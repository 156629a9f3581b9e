#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// Implements a trait for pointers to an implementation (`&T`, `&mut T`, `Box<T>`, `Arc<T>`)
/// by forwarding every method to the pointee: the one way this crate writes such impls.
macro_rules! forward_pointers {
    ($trait:ident for [$($ptr:ty),+ $(,)?] $body:tt) => {
        $(
            #[async_trait::async_trait]
            impl<T: $trait + ?Sized> $trait for $ptr $body
        )+
    };
}
pub(crate) use forward_pointers;

mod error;
mod event;
mod membership;
mod view;

pub use error::{Cause, MembershipError, MembershipErrorKind};
pub use event::{EventKind, MembershipEvent};
pub use membership::{Membership, Subscription};
pub use view::{InvalidView, Member, Quorum, View, ViewId};

// Compile-time promises: both traits are dyn-compatible, and a pointer to an implementation
// (`&T`, `Box<T>`, `Arc<T>`, also to a `dyn`) is one.
const _: fn() = || {
    fn membership<M: Membership>() {}
    fn subscription<S: Subscription>() {}
    membership::<std::sync::Arc<dyn Membership>>();
    membership::<Box<dyn Membership>>();
    membership::<&'static dyn Membership>();
    subscription::<Box<dyn Subscription>>();
};
