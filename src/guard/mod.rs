//! Authorization after authentication: the guard layers
//! ([`RequireRole`](crate::RequireRole), [`RequireScope`](crate::RequireScope),
//! [`RequireClaims`](crate::RequireClaims),
//! [`RequireStepUp`](crate::RequireStepUp), [`RequireActor`](crate::delegation::RequireActor)),
//! their service [`Guard`] and its
//! [`GuardFuture`]. What a guard answers, and whose claims it judges, is
//! documented on [`Guard`].
//!
#![doc = include_str!("../docs/guard.md")]

pub(crate) mod actor;
pub(crate) mod rules;
mod service;
pub(crate) mod step_up;

pub use service::{Guard, GuardFuture};

use rules::{Check, Paths, Verdict, paths_from, token_claims};
