//! The session behind a websocket.
//!
//! A socket lives for hours; the rights behind it must not be frozen at the
//! moment it opened. The socket keeps its session, and every operation started
//! on it resolves its caller afresh ([`current_caller`], applied by
//! [`super::limits::Limits`]): a revoked session, a deactivated user or a
//! changed role applies to the next operation exactly as to the next HTTP
//! request.

use uuid::Uuid;

use crate::{
    auth::{Caller, actor::Origin, session::SessionToken},
    error::AppError,
    state::AppState,
};

/// The session a websocket authenticated with, kept for the socket's life.
pub struct SocketSession {
    pub token: SessionToken,
    /// The organisation a super admin chose to act in, if any.
    pub organization_id: Option<Uuid>,
    pub origin: Origin,
}

/// The socket's caller as of now: its session still open, its user active,
/// with the permissions their roles hold now.
pub(super) async fn current_caller(
    state: &AppState,
    socket: &SocketSession,
) -> Result<Caller, AppError> {
    let actor = state
        .auth
        .actor_for(&socket.token, socket.organization_id, socket.origin.clone())
        .await?
        .ok_or(AppError::Unauthenticated)?;
    Ok(Caller {
        actor: Some(actor),
        origin: socket.origin.clone(),
        token: Some(socket.token.clone()),
    })
}
