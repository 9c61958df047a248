//! GraphQL subscriptions over websockets (`graphql-transport-ws`).
//!
//! Browsers cannot set headers on a websocket, so the session comes from the
//! cookie of the upgrade request or from `{"token": …}` in `connection_init`.
//! The cookie counts only when the upgrade comes from a trusted origin. Only
//! subscriptions run on a socket, and each resolves its caller afresh
//! (`graphql::limits`). When that session is revoked (on any instance) or
//! expires, the socket is closed with code 4401 shortly after `sessionEvents`
//! has delivered its value.

use std::time::Duration;

use async_graphql::{
    Data,
    http::{ALL_WEBSOCKET_PROTOCOLS, WsMessage},
};
use async_graphql_poem::GraphQLProtocol;
use futures_util::{SinkExt, StreamExt, future};
use poem::{
    IntoResponse, Request, handler,
    web::{
        Data as PoemData,
        websocket::{CloseCode, Message, WebSocket},
    },
};
use tokio::sync::oneshot;

use super::{Presented, origin_of, presented_token, trusted_origin};
use crate::{
    auth::session::{EndReason, SessionToken, wait_for_end},
    error::AppError,
    graphql::{SocketSchema, socket::SocketSession},
    state::AppState,
};

/// Close code sent when the session behind the socket ends.
pub const SESSION_ENDED: u16 = 4401;

#[handler]
pub async fn endpoint(
    req: &Request,
    websocket: WebSocket,
    protocol: GraphQLProtocol,
    state: PoemData<&AppState>,
    schema: PoemData<&SocketSchema>,
) -> impl IntoResponse {
    // A browser sends the cookie to any page's websocket: it counts only from
    // a page of ours. A bearer token or one in `connection_init` is no ambient
    // credential.
    let cookie_token = match presented_token(req) {
        Presented::Cookie(token) if trusted_origin(req) => Some(token),
        Presented::Bearer(token) => Some(token),
        _ => None,
    };
    let origin = origin_of(req);
    let state = state.clone();
    let schema = schema.0.0.clone();
    websocket
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let (mut sink, stream) = socket.split();
            let input = stream
                .take_while(|message| future::ready(message.is_ok()))
                .filter_map(|message| {
                    future::ready(message.ok().filter(|m| m.is_text() || m.is_binary()))
                })
                .map(Message::into_bytes);

            let (session_tx, session_rx) = oneshot::channel();
            let auth = state.auth.clone();
            let on_init = move |payload: serde_json::Value| async move {
                let token = payload
                    .get("token")
                    .and_then(serde_json::Value::as_str)
                    .and_then(SessionToken::parse)
                    .or(cookie_token)
                    .ok_or(AppError::Unauthenticated)?;
                // A super admin may act inside another organisation, as over HTTP.
                let organization_id = payload
                    .get("organizationId")
                    .and_then(serde_json::Value::as_str)
                    .map(|id| {
                        id.parse()
                            .map_err(|_| AppError::bad_input("organizationId", "is not a valid id"))
                    })
                    .transpose()?;
                let actor = auth
                    .actor_for(&token, organization_id, origin.clone())
                    .await?
                    .ok_or(AppError::Unauthenticated)?;
                let _ = session_tx.send(actor.session()?.clone());
                // Each operation resolves its caller from this session afresh
                // (graphql::limits): rights are never frozen at the upgrade.
                let mut data = Data::default();
                data.insert(SocketSession {
                    token,
                    organization_id,
                    origin,
                });
                Ok(data)
            };
            let mut outgoing = async_graphql::http::WebSocket::new(schema, input, protocol.0)
                .on_connection_init(on_init)
                .keepalive_timeout(Duration::from_secs(60));

            let store = state.auth.store().clone();
            let session_end = async move {
                match session_rx.await {
                    Ok(id) => wait_for_end(store, id).await,
                    Err(_) => future::pending().await,
                }
            };
            tokio::pin!(session_end);

            loop {
                tokio::select! {
                    message = outgoing.next() => match message {
                        Some(message) => {
                            if forward(&mut sink, message).await.is_err() {
                                return;
                            }
                        }
                        None => break,
                    },
                    reason = &mut session_end => {
                        // Let sessionEvents deliver its value, then close.
                        let grace = tokio::time::sleep(Duration::from_millis(250));
                        tokio::pin!(grace);
                        loop {
                            tokio::select! {
                                () = &mut grace => break,
                                message = outgoing.next() => match message {
                                    Some(message) => if forward(&mut sink, message).await.is_err() { return; },
                                    None => break,
                                },
                            }
                        }
                        let why = match reason {
                            EndReason::Revoked => "session revoked",
                            EndReason::Expired => "session expired",
                        };
                        let _ = sink.send(Message::Close(Some((CloseCode::from(SESSION_ENDED), why.to_owned())))).await;
                        break;
                    }
                }
            }
            let _ = sink.close().await;
        })
}

async fn forward<S>(sink: &mut S, message: WsMessage) -> Result<(), ()>
where
    S: futures_util::Sink<Message> + Unpin,
{
    let frame = match message {
        WsMessage::Text(text) => Message::Text(text),
        WsMessage::Close(code, reason) => Message::Close(Some((CloseCode::from(code), reason))),
    };
    sink.send(frame).await.map_err(drop)
}
