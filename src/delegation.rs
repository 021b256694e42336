//! Delegation (RFC 8693 §4): tokens an agent or a service holds on behalf
//! of a user. [`ActorChain`] and [`Actor`] are what
//! [`Claims::act`](crate::Claims::act) and
//! [`Claims::may_act`](crate::Claims::may_act) read; [`RequireActor`] is
//! the guard that admits only listed actors through a bounded chain.
//!
//! The principal is always the token's own subject: an actor is
//! information about who presents the token, never whose rights it
//! carries.
//!
//! ```
//! use tower_jwt_auth::delegation::RequireActor;
//!
//! // An agent acting directly for the user, nothing deeper.
//! let agents = RequireActor::any(["agent-7"]);
//! # let _ = agents;
//! ```

pub use crate::claims::{Actor, ActorChain};
pub use crate::guard::actor::RequireActor;
