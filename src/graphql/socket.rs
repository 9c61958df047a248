//! What an operation over a websocket may do.
//!
//! A socket lives for hours; the rights behind it must not be frozen at the
//! moment it opened. So, for every operation started on a socket:
//!
//! - only subscriptions run (queries and mutations go over HTTP, where the
//!   request timeout and the other request limits hold);
//! - the alias limit of HTTP applies (depth and complexity are the schema's own);
//! - the caller is resolved afresh from the socket's session: a revoked session,
//!   a deactivated user or a changed role applies to the next operation exactly
//!   as it does to the next HTTP request.

use std::sync::Arc;

use async_graphql::{
    ErrorExtensions, Request, ServerError, ServerResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    },
    parser::types::{ExecutableDocument, OperationType},
};
use uuid::Uuid;

use crate::{
    app::AppState,
    auth::{Caller, actor::Origin, session::SessionToken},
    error::AppError,
};

/// The session a websocket authenticated with, kept for the socket's life.
pub struct SocketSession {
    pub token: SessionToken,
    /// The organisation a super admin chose to act in, if any.
    pub organization_id: Option<Uuid>,
    pub origin: Origin,
}

/// The schema extension that applies the socket rules.
pub struct SocketRules;

impl ExtensionFactory for SocketRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SocketRules)
    }
}

#[async_trait::async_trait]
impl Extension for SocketRules {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let Some(socket) = ctx.data_opt::<SocketSession>() else {
            return next.run(ctx, request).await;
        };
        let state = ctx
            .data_opt::<AppState>()
            .ok_or_else(|| server_error(AppError::Internal(anyhow::anyhow!("no state"))))?;
        let caller = current_caller(state, socket).await.map_err(server_error)?;
        next.run(ctx, request.data(caller)).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if ctx.data_opt::<SocketSession>().is_none() {
            return Ok(document);
        }
        if document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != OperationType::Subscription)
        {
            return Err(server_error(AppError::bad_input(
                "query",
                "only subscriptions run over the websocket; send queries and mutations over HTTP",
            )));
        }
        if let Some(state) = ctx.data_opt::<AppState>() {
            let aliases = super::count_aliases(&document);
            if aliases > state.config.max_aliases {
                return Err(server_error(AppError::bad_input(
                    "query",
                    format!(
                        "uses {aliases} aliases; at most {} are allowed",
                        state.config.max_aliases
                    ),
                )));
            }
        }
        Ok(document)
    }
}

/// The socket's caller as of now: its session still open, its user active,
/// with the permissions their roles hold now.
async fn current_caller(state: &AppState, socket: &SocketSession) -> Result<Caller, AppError> {
    let actor = state
        .auth
        .resolve(&socket.token, socket.origin.clone())
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let actor = match socket.organization_id {
        Some(id) => state.auth.act_in(actor, id).await?,
        None => actor,
    };
    Ok(Caller {
        actor: Some(actor),
        origin: socket.origin.clone(),
    })
}

fn server_error(error: AppError) -> ServerError {
    let error = async_graphql::Error::from(error).extend();
    ServerError {
        message: error.message,
        source: None,
        locations: Vec::new(),
        path: Vec::new(),
        extensions: error.extensions,
    }
}
