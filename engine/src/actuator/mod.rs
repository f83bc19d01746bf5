//! Actions out: how an approved step reaches the estate.
//!
//! Every actuator does the same four things: **plan** (the exact request
//! it would send, shown before approval and kept in the audit), **execute**
//! (send it under an idempotency key and learn the outcome, as a receipt),
//! **status** (read a receipt's outcome again) and **undo**.
//!
//! - The embedded twin applies a step in-process, through
//!   [`observe::Remediable`](crate::observe::Remediable); its plan is
//!   [`embedded_plan`].
//! - [`HttpActuator`] sends orders over HTTP, signed ([`Signer`]), to the
//!   standalone twin (`data/actuators/twin.toml`) or as a webhook to a
//!   runbook system (`deploy/actuators/`), learning the outcome from the
//!   answer, a status URL or a signed callback ([`Callbacks`]).
//!
//! Which request each remediation becomes is data: an [`ActuatorMap`] per
//! estate.

mod callbacks;
mod http;
mod map;
mod signing;

pub use callbacks::{Awaited, Callbacks, UnknownAction};
pub use http::{Delivery, HttpActuator, HttpSettings};
pub use map::{ActuatorMap, Learn};
pub use signing::{SIGNATURE_HEADER, SignatureError, Signer, TOLERANCE_SECONDS};

use crate::protocol::{ActionOrder, ActuatorRequest};

/// The embedded twin's plan for `order`: applied in-process, so the
/// "request" is the call resolution makes.
pub fn embedded_plan(order: ActionOrder, key: &str) -> ActuatorRequest {
    ActuatorRequest {
        actuator: "embedded twin".into(),
        method: "APPLY".into(),
        url: format!("twin:///{}", order.remediation.target),
        idempotency_key: key.to_owned(),
        body: order,
    }
}

#[cfg(test)]
mod tests;
