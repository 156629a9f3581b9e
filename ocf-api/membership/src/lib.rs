#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod event;
mod membership;
mod view;

pub use error::MembershipError;
pub use event::{EventKind, MembershipEvent};
pub use membership::{Membership, Subscription};
pub use view::{Member, Quorum, View, ViewId};
